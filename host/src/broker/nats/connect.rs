//! Turns `[broker]` into async-nats connect options: servers, credentials,
//! TLS, reconnect backoff, and the connection events that feed metrics.
//!
//! Only option building and the event callback live here; no message handling.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::{ConnectOptions, Event, ServerAddr};

use crate::broker::BrokerError;
use crate::config::{BrokerConfig, redact};
use crate::metrics::Metrics;

/// Longest pause between two reconnect attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Parsed server addresses; an unparsable URL is an error naming it.
pub fn servers(config: &BrokerConfig) -> Result<Vec<ServerAddr>, BrokerError> {
    config
        .urls_or_default()
        .iter()
        .map(|url| {
            url.parse::<ServerAddr>().map_err(|e| {
                let text = format!("bad NATS url {:?}: {e}", redact::url(url));
                BrokerError::Unavailable(config.secrets().apply(&text).into_owned())
            })
        })
        .collect()
}

/// Connect options for `config`, naming the connection after `node`; file
/// paths are relative to `base_dir`, the manifest's folder.
pub async fn options(
    config: &BrokerConfig,
    base_dir: &Path,
    node: &str,
    metrics: Arc<Metrics>,
) -> Result<ConnectOptions, BrokerError> {
    let mut options = match &config.credentials_file {
        Some(path) => ConnectOptions::with_credentials_file(base_dir.join(path))
            .await
            .map_err(|e| {
                BrokerError::Unavailable(format!(
                    "cannot read NATS credentials file {}: {e}",
                    path.display()
                ))
            })?,
        None => ConnectOptions::new(),
    };
    if let (Some(user), Some(password)) = (&config.username, &config.password) {
        options = options.user_and_password(user.clone(), password.expose().to_owned());
    }
    if let Some(token) = &config.token {
        options = options.token(token.expose().to_owned());
    }
    if config.tls {
        options = options.require_tls(true);
    }
    if let Some(ca) = &config.tls_ca_file {
        options = options.add_root_certificates(base_dir.join(ca));
    }
    if let (Some(cert), Some(key)) = (&config.tls_cert_file, &config.tls_key_file) {
        options = options.add_client_certificate(base_dir.join(cert), base_dir.join(key));
    }
    let first = Arc::new(AtomicBool::new(true));
    Ok(options
        .name(format!("ferrygate-{node}"))
        .connection_timeout(config.connect_timeout())
        // The library's own keepalive: a connection with two PINGs unanswered
        // is dropped and re-made. Our liveness probe (`broker::health`) is
        // what turns a hung server into `unavailable` first.
        .ping_interval(config.probing().interval)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .reconnect_delay_callback(backoff)
        .event_callback(move |event| {
            let metrics = Arc::clone(&metrics);
            let first = Arc::clone(&first);
            async move { on_event(&event, &metrics, &first) }
        }))
}

/// 0, 50, 100, 200 ms ... up to [`MAX_BACKOFF`], with jitter so that many
/// instances do not hammer a restarted server in step.
fn backoff(attempts: usize) -> Duration {
    if attempts <= 1 {
        return Duration::ZERO;
    }
    let exponent = u32::try_from(attempts.min(8)).unwrap_or(8);
    let base = Duration::from_millis(25 * (1 << exponent)).min(MAX_BACKOFF);
    base.mul_f64(rand::random_range(0.5..1.0))
}

fn on_event(event: &Event, metrics: &Metrics, first: &AtomicBool) {
    match event {
        Event::Connected => {
            metrics.broker.connected.set(1);
            if !first.swap(false, Ordering::AcqRel) {
                metrics.broker.reconnects.inc();
            }
            tracing::info!("nats connected");
        }
        Event::Disconnected => {
            metrics.broker.connected.set(0);
            tracing::warn!("nats connection lost; reconnecting");
        }
        Event::Closed => {
            metrics.broker.connected.set(0);
            tracing::warn!("nats connection closed");
        }
        Event::SlowConsumer(sid) => {
            tracing::warn!(sid, "nats dropped messages for a slow subscription");
        }
        Event::ServerError(_) | Event::ClientError(_) => {
            tracing::warn!(event = %event, "nats error");
        }
        other => tracing::info!(event = %other, "nats event"),
    }
}
