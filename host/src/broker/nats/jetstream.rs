//! Whether the NATS server has JetStream, for the routes that need it
//! (history and presence): without it their publishes, subscribes with
//! `since` and presence calls answer `unavailable` (fail closed, unchanged),
//! and this watch makes that visible from the start instead of at the first
//! refused call: an error-level log naming the routes and the fix (`-js`),
//! the gauge `ferrygate_broker_jetstream_missing` and `/readyz`'s body.
//!
//! Owns only the check (`$JS.API.INFO`, bounded by `[broker] timeout_ms`,
//! again every [`RECHECK_EVERY`] so a server restarted with `-js` is seen);
//! it refuses nothing itself.

use std::sync::{Arc, Weak};
use std::time::Duration;

use async_nats::Client;
use async_nats::connection::State;
use async_nats::jetstream::context::AccountErrorKind;

use crate::metrics::Metrics;

/// Pause between two checks of the server's JetStream.
pub const RECHECK_EVERY: Duration = Duration::from_secs(10);

/// What one check learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JetStream {
    Answers,
    Missing,
}

/// Watches the server behind `client` while `alive` can be upgraded (the
/// broker holds it), if `routes` (the channel patterns of the routes that
/// need JetStream) is not empty. Each check is bounded by `timeout`; one
/// that gets no verdict (disconnected, timed out) changes nothing.
pub fn watch<T: Send + Sync + 'static>(
    client: Client,
    routes: Vec<String>,
    metrics: Arc<Metrics>,
    alive: Weak<T>,
    timeout: Duration,
) {
    if routes.is_empty() {
        return;
    }
    tracing::debug!(?routes, "watching whether the NATS server has JetStream");
    let routes = routes.join(", ");
    tokio::spawn(async move {
        let js = async_nats::jetstream::new(client.clone());
        let mut known = None;
        loop {
            if alive.upgrade().is_none() {
                return;
            }
            let now = if client.connection_state() == State::Connected {
                check(&js, timeout).await
            } else {
                None
            };
            if let Some(now) = now.filter(|now| known != Some(*now)) {
                metrics
                    .broker
                    .jetstream_missing
                    .set(i64::from(now == JetStream::Missing));
                match now {
                    JetStream::Missing => tracing::error!(
                        routes = %routes,
                        "the NATS server has no JetStream: these history or presence routes answer unavailable until it has; start nats-server with -js (and -sd DIR for its storage)"
                    ),
                    JetStream::Answers if known.is_some() => tracing::info!(
                        routes = %routes,
                        "the NATS server has JetStream now: history and presence routes work"
                    ),
                    JetStream::Answers => {}
                }
                known = Some(now);
            }
            tokio::time::sleep(RECHECK_EVERY).await;
        }
    });
}

/// One `$JS.API.INFO`: `None` when it gave no verdict.
async fn check(js: &async_nats::jetstream::Context, timeout: Duration) -> Option<JetStream> {
    match tokio::time::timeout(timeout, js.query_account()).await {
        Ok(Ok(_)) => Some(JetStream::Answers),
        Ok(Err(e)) => match e.kind() {
            AccountErrorKind::JetStreamUnavailable | AccountErrorKind::JetStream(_) => {
                Some(JetStream::Missing)
            }
            AccountErrorKind::TimedOut | AccountErrorKind::Other => None,
        },
        Err(_) => None,
    }
}
