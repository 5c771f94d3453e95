//! The `ferrygate` command: `serve` runs the gateway, `check` validates a manifest.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ferrygate::config::{Config, ProcessEnv};
use ferrygate::gateway::{Gateway, GatewayError};
use ferrygate::plugin::LivePlugins;
use ferrygate::workers::Workers;

/// Exit status for a manifest that cannot be used (sysexits `EX_CONFIG`).
const EXIT_CONFIG: u8 = 78;

#[derive(Parser)]
#[command(
    name = "ferrygate",
    version,
    about = "WebSocket gateway with cross-instance fan-out and Wasm plugins"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// Manifest (ferrygate.toml). Without one: 127.0.0.1:8080, in-process broker, no plugins.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Listen address; overrides `[server] listen`.
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Validate a manifest and exit: 0 when valid, 1 with the file, line and key at fault.
    Check {
        /// Manifest to check.
        #[arg(long)]
        config: PathBuf,
    },
    /// Tools for plugin authors.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

#[derive(Subcommand)]
enum PluginCommand {
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
enum GrantArg {
    Clocks,
    Random,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LangArg {
    Rust,
    Js,
    Python,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum KindArg {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => check(&config),
        Command::Plugin(PluginCommand::New {
            lang,
            kind,
            name,
            dir,
            sdk,
        }) => plugin_new(lang, kind, name, dir, sdk),
        Command::Plugin(PluginCommand::Test {
            wasm,
            kind,
            input,
            config,
            grants,
            memory_mib,
            time_ms,
        }) => {
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
        Command::Serve { config, listen } => {
            ferrygate::logging::init();
            serve(config, listen)
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

/// Validates the manifest, then compiles and starts every plugin it names
/// (exports the right world, imports only what is granted, accepts its config).
fn check(path: &std::path::Path) -> ExitCode {
    let config = match Config::load(path, &ProcessEnv) {
        Ok(loaded) => loaded.config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    // Warnings on stderr: a cache directory `check` cannot use (so it fills
    // no cache for the gateway), invalid cache entries, plugins' warnings.
    ferrygate::logging::hide_secrets_of(&config);
    ferrygate::logging::init_at("warn");
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let metrics = ferrygate::metrics::PluginMetrics::new();
    match runtime.block_on(LivePlugins::start(&config, &metrics)) {
        Ok(plugins) => {
            let set = plugins.current();
            let names: Vec<String> = set
                .plugins()
                .map(|p| format!("{} ({} {})", p.name(), p.kind().as_str(), p.version()))
                .collect();
            if names.is_empty() {
                println!("{}: ok (no plugins)", path.display());
            } else {
                println!("{}: ok; plugins: {}", path.display(), names.join(", "));
            }
            // Every import of every plugin, so an author sees at once what
            // is stubbed (and which grant would make it real).
            for plugin in set.plugins() {
                println!("plugin `{}` imports:", plugin.name());
                for import in plugin.imports() {
                    println!("  {import}");
                }
            }
            if let Some((hits, misses)) = plugins.artifact_counts()
                && hits + misses > 0
            {
                println!(
                    "artifact cache: {hits} of {} plugins loaded from it, {misses} compiled and stored",
                    hits + misses
                );
            }
            if let Some(counts) = plugins.function_counts()
                && counts.hits + counts.misses > 0
            {
                let invalid = match counts.corrupt {
                    0 => String::new(),
                    n => format!(" ({n} invalid entries deleted and compiled again)"),
                };
                println!(
                    "compiled: {} of {} functions from the function cache{invalid}",
                    counts.hits,
                    counts.hits + counts.misses
                );
            }
            if !config.has_auth() {
                println!(
                    "note: no auth plugin; every client is admitted anonymously ([server] allow_anonymous = true)"
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}

fn serve(path: Option<PathBuf>, listen: Option<SocketAddr>) -> ExitCode {
    // Absolute, so that the file watcher's paths and the manifest's agree
    // whatever the working directory.
    let path = path.map(|p| std::path::absolute(&p).unwrap_or(p));
    let mut config = match &path {
        Some(path) => match Config::load(path, &ProcessEnv) {
            Ok(loaded) => loaded.config,
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::from(EXIT_CONFIG);
            }
        },
        None => {
            tracing::warn!(
                "no --config given: running on defaults, every client is allowed and the HTTP API is disabled (no api_key)"
            );
            let mut config = Config::default();
            // The loud development default of SPEC 2: open, and saying so.
            config.server.allow_anonymous = true;
            config
        }
    };
    if let Some(listen) = listen {
        config.server.listen = listen;
    }
    ferrygate::logging::hide_secrets_of(&config);
    // The main runtime only accepts, handles signals, reloads and drains;
    // connections and the broker are served by per-core worker runtimes (see
    // `ferrygate::workers`, `ferrygate::broker::lanes`).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let address = config.server.listen;
        let listener = match ferrygate::server::bind(address) {
            Ok(listener) => listener,
            Err(e) => {
                tracing::error!(%address, error = %e, "cannot listen");
                return ExitCode::FAILURE;
            }
        };
        let workers = match Workers::start(config.server.workers) {
            Ok(workers) => workers,
            Err(e) => {
                tracing::error!(error = %e, "cannot start worker runtimes");
                return ExitCode::FAILURE;
            }
        };
        // The broker runs on the workers: nothing it receives is handled here.
        let gateway = match Gateway::start_on(config, path, &workers).await {
            Ok(gateway) => gateway,
            Err(e) => {
                tracing::error!("{e}");
                // A plugin that does not load is a manifest problem; a broker
                // that cannot be reached is not.
                return match e {
                    GatewayError::Plugins(_) => ExitCode::from(EXIT_CONFIG),
                    GatewayError::Broker(_) => ExitCode::FAILURE,
                };
            }
        };
        let triggers = ferrygate::watch::Triggers::install(&gateway);
        let local = listener.local_addr().map_or(address, |a| a);
        tracing::info!(address = %local, node = %gateway.node, workers = workers.len(), "ferrygate listening (ws://{local}/ws)");
        // Reloads run on this runtime, never on the workers that deliver.
        let reloads = tokio::spawn(triggers.run(std::sync::Arc::clone(&gateway)));
        ferrygate::server::run(listener, gateway, workers, ferrygate::signal::shutdown()).await;
        reloads.abort();
        tracing::info!("stopped");
        ExitCode::SUCCESS
    })
}
