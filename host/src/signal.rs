//! Process signals: the first SIGTERM or SIGINT starts a graceful drain, a
//! second one ends the process at once; SIGHUP reloads (see [`crate::watch`]).

use tokio::signal::unix::{SignalKind, signal};

/// Resolves on the first SIGTERM or SIGINT. Any later one exits the process
/// immediately with status 130, for an operator who does not want to wait.
pub async fn shutdown() {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; the gateway will only stop when killed");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::warn!("second signal: exiting without waiting for the drain");
        std::process::exit(130);
    });
}

/// SIGHUP, which reloads the manifest and its plugins; `None` (logged) when
/// the handler cannot be installed.
pub fn hangups() -> Option<tokio::signal::unix::Signal> {
    signal(SignalKind::hangup())
        .inspect_err(
            |error| tracing::warn!(%error, "cannot handle SIGHUP: reload with POST /v1/reload"),
        )
        .ok()
}
