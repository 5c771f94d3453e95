//! The Redis subscriber connection's two background tasks: the reader that
//! hands every pub/sub message to [`Inbound`]'s lane for its channel (or to
//! a waiting rpc), and the
//! watch that keeps the connected gauge and restores subscriptions after a
//! reconnect. Neither publishes anything but subscriptions.

use std::sync::Arc;
use std::time::Duration;

use fred::prelude::{Client, ClientLike, EventInterface, PubsubInterface};

use super::rpc;
use crate::broker::inbound::{Inbound, Route};
use crate::broker::interest::Interest;
use crate::metrics::Metrics;

/// Delivers what the subscriber connection receives.
pub fn spawn_reader(
    subscriber: &Client,
    prefix: &str,
    node: &str,
    inbound: Inbound,
    pending: Arc<rpc::Pending>,
    metrics: Arc<Metrics>,
) {
    let mut messages = subscriber.message_rx();
    let strip = format!("{prefix}:");
    let replies = format!("{prefix}:reply:{node}:");
    tokio::spawn(async move {
        loop {
            let message = match messages.recv().await {
                Ok(message) => message,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(lost)) => {
                    tracing::warn!(lost, "redis reader fell behind; messages lost");
                    metrics.broker.lagged.inc_by(lost);
                    continue;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            let Some(payload) = message.value.as_bytes().map(bytes::Bytes::copy_from_slice) else {
                metrics.broker.malformed(crate::metrics::Malformed::NotJson);
                continue;
            };
            let name: &str = &message.channel;
            if let Some(suffix) = name.strip_prefix(replies.as_str()) {
                pending.answer(suffix, payload);
                continue;
            }
            let route = name
                .strip_prefix(strip.as_str())
                .and_then(|rest| Route::parse(rest, ':'));
            // Decoded and fanned out on the route's lane (a worker).
            inbound.dispatch(route, payload).await;
        }
    });
}

/// Keeps the connected gauge and reconnect count, and after each (re)connect
/// re-makes this node's pattern subscriptions and asks for every wanted one
/// again. fred announces reconnects, but a flap can also be seen only as a
/// state change, so both trigger the (idempotent) resubscribe.
pub fn spawn_reconnect_watch(
    subscriber: &Client,
    prefix: &str,
    node: &str,
    interest: Arc<Interest>,
    metrics: Arc<Metrics>,
) {
    let patterns = vec![
        format!("{prefix}:conn:{node}.*"),
        format!("{prefix}:reply:{node}:*"),
    ];
    let client = subscriber.clone();
    let mut reconnects = subscriber.reconnect_rx();
    tokio::spawn(async move {
        let mut was_connected = false;
        let mut ever_connected = false;
        loop {
            let announced = tokio::select! {
                event = reconnects.recv() => event.is_ok(),
                () = tokio::time::sleep(Duration::from_millis(100)) => false,
            };
            let connected = client.is_connected();
            metrics.broker.connected.set(i64::from(connected));
            if connected && (announced || !was_connected) {
                if ever_connected && !was_connected {
                    metrics.broker.reconnects.inc();
                }
                ever_connected = true;
                if let Err(e) = client.psubscribe(patterns.clone()).await {
                    tracing::warn!(error = %e, "redis psubscribe failed");
                }
                interest.resubscribe();
                tracing::info!("redis connected");
            } else if !connected && was_connected {
                tracing::warn!("redis connection lost; reconnecting");
            }
            was_connected = connected;
        }
    });
}
