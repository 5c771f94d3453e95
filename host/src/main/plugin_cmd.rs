//! `ferrygate plugin ...`: the tools for plugin authors, `new` (scaffold a
//! project) and `test` (replay recorded inputs offline). Only the command
//! line and exit codes live here; the work is `ferrygate::authoring`'s.
//! Owns nothing of `serve` or `check`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand)]
pub(crate) enum PluginCommand {
    /// Write a new plugin project (source, helpers, WIT, ferrygate.toml, README) into ./NAME.
    New {
        /// The language.
        #[arg(long, value_enum)]
        lang: LangArg,
        /// The plugin kind.
        #[arg(long, value_enum)]
        kind: KindArg,
        /// The plugin's name: lowercase letters, digits, `-`, `_`.
        name: String,
        /// Folder to create the project in.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Rust: the ferrygate-sdk dependency as TOML, e.g. `{ path = "../ferrygate/sdk" }`;
        /// by default a copy of the SDK is written into the project.
        #[arg(long)]
        sdk: Option<String>,
    },
    /// Run a plugin offline over recorded inputs (JSON lines) and print each decision, with its logs.
    Test {
        /// The component.
        wasm: PathBuf,
        /// The plugin kind.
        #[arg(long, value_enum)]
        kind: KindArg,
        /// JSON lines: `{"op":"connect"|"subscribe"|"publish"|"rpc", ...}`, as `record` writes them.
        #[arg(long)]
        input: PathBuf,
        /// The plugin's config as a JSON object.
        #[arg(long, default_value = "{}")]
        config: String,
        /// A grant (`clocks`, `random`); repeat for several.
        #[arg(long = "grant", value_enum)]
        grants: Vec<GrantArg>,
        /// `limits.memory_mib` (64 suits JavaScript and Python).
        #[arg(long, default_value_t = 64)]
        memory_mib: u32,
        /// `limits.time_ms`.
        #[arg(long, default_value_t = 500)]
        time_ms: u32,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum GrantArg {
    Clocks,
    Random,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum LangArg {
    Rust,
    Js,
    Python,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum KindArg {
    Auth,
    Route,
    Transform,
}

impl From<KindArg> for ferrygate::config::PluginKind {
    fn from(kind: KindArg) -> Self {
        match kind {
            KindArg::Auth => Self::Auth,
            KindArg::Route => Self::Route,
            KindArg::Transform => Self::Transform,
        }
    }
}

/// Runs one `plugin` subcommand; its exit code.
pub(crate) fn run(command: PluginCommand) -> ExitCode {
    match command {
        PluginCommand::New {
            lang,
            kind,
            name,
            dir,
            sdk,
        } => plugin_new(lang, kind, name, dir, sdk),
        PluginCommand::Test {
            wasm,
            kind,
            input,
            config,
            grants,
            memory_mib,
            time_ms,
        } => {
            let config = match serde_json::from_str(&config) {
                Ok(serde_json::Value::Object(map)) => map,
                _ => {
                    eprintln!("--config must be a JSON object");
                    return ExitCode::FAILURE;
                }
            };
            let replay = ferrygate::authoring::replay::Replay {
                wasm,
                kind: kind.into(),
                input,
                config,
                grants: grants
                    .into_iter()
                    .map(|g| match g {
                        GrantArg::Clocks => ferrygate::config::Grant::Clocks,
                        GrantArg::Random => ferrygate::config::Grant::Random,
                    })
                    .collect(),
                limits: (memory_mib, time_ms),
            };
            plugin_test(&replay)
        }
    }
}

/// `plugin new`: writes the project and says how to build it.
fn plugin_new(
    lang: LangArg,
    kind: KindArg,
    name: String,
    parent: PathBuf,
    rust_sdk: Option<String>,
) -> ExitCode {
    use ferrygate::authoring::scaffold::{self, Lang, Request};
    let lang = match lang {
        LangArg::Rust => Lang::Rust,
        LangArg::Js => Lang::Js,
        LangArg::Python => Lang::Python,
    };
    let request = Request {
        lang,
        kind: kind.into(),
        name,
        parent,
        rust_sdk,
    };
    match scaffold::write(&request) {
        Ok(dir) => {
            println!(
                "wrote {}: see its README.md to build it, then `ferrygate check --config ferrygate.toml`",
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// `plugin test`: the plugin's log lines and each decision on stdout; exit 1
/// when a decision differs from the recorded live one, 2 when it cannot run.
fn plugin_test(replay: &ferrygate::authoring::replay::Replay) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "warn,ferrygate::plugin::store=debug",
        ))
        .with_target(false)
        .without_time()
        .with_ansi(false)
        .with_writer(std::io::stdout)
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let mut out = std::io::stdout();
    match runtime.block_on(ferrygate::authoring::replay::run(replay, &mut out)) {
        Ok(summary) => {
            eprintln!(
                "{} calls, {} differ from the recorded decision, {} lines skipped",
                summary.calls, summary.differ, summary.skipped
            );
            if summary.differ > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}
