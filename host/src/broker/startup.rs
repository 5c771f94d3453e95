//! The start-up wait shared by the networked brokers: how long to wait for
//! the first connection, and what `on_unreachable` makes of a broker that
//! did not answer. Knows nothing of any client library.

use std::time::Duration;

use super::BrokerError;
use crate::config::{BrokerConfig, OnUnreachable};

/// Waits up to `connect_timeout_ms` for `is_connected()`; then either fails
/// with an error naming `name` and the URLs, or warns and lets the gateway
/// accept clients (whose publishes and subscribes answer `unavailable`)
/// while the client library keeps reconnecting.
pub async fn await_first_connection(
    config: &BrokerConfig,
    name: &str,
    is_connected: impl Fn() -> bool,
) -> Result<(), BrokerError> {
    let deadline = tokio::time::Instant::now() + config.connect_timeout();
    while !is_connected() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if is_connected() {
        return Ok(());
    }
    let urls = config.urls_for_log();
    match config.on_unreachable {
        OnUnreachable::Fail => Err(BrokerError::Unavailable(format!(
            "cannot reach {name} at {urls} within {:?} (set [broker] on_unreachable = \"degraded\" to start anyway)",
            config.connect_timeout()
        ))),
        OnUnreachable::Degraded => {
            tracing::warn!(%urls, "{name} unreachable: accepting clients, publishes and subscribes answer unavailable until it is reached; retrying in the background");
            Ok(())
        }
    }
}
