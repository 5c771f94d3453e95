//! The `ferrygate` command: `serve` runs the gateway, `check` validates a
//! manifest; `plugin new|test` are in `main/plugin_cmd.rs`. Owns the command
//! line and exit codes only: the work is the library's.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ferrygate::config::{Config, ProcessEnv};
use ferrygate::gateway::{Gateway, GatewayError};
use ferrygate::plugin::LivePlugins;
use ferrygate::workers::Workers;

#[path = "main/plugin_cmd.rs"]
mod plugin_cmd;

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
    Plugin(plugin_cmd::PluginCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => check(&config),
        Command::Plugin(command) => plugin_cmd::run(command),
        Command::Serve { config, listen } => {
            ferrygate::logging::init();
            serve(config, listen)
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
