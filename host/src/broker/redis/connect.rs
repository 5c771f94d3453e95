//! Turns `[broker]` into fred clients: server or cluster seeds, credentials,
//! TLS (`rediss://`), and an endless reconnect policy with backoff.
//!
//! Only client building lives here; no message handling.

use fred::prelude::{Builder, Client, Config, ReconnectPolicy, ServerConfig};

use crate::broker::BrokerError;
use crate::config::{BrokerConfig, redact};

/// Messages the subscriber connection may hold for the reader before the
/// oldest are lost (fred's default is 32, far too few for a burst).
const SUBSCRIBER_BACKLOG: usize = 16 * 1024;

/// fred's check for unresponsive connections runs at least this far apart.
const MIN_UNRESPONSIVE_CHECK: std::time::Duration = std::time::Duration::from_millis(50);

/// A new, not yet connected client for `config`; `subscriber` sizes its
/// message backlog for pub/sub traffic.
pub fn client(config: &BrokerConfig, subscriber: bool) -> Result<Client, BrokerError> {
    let urls = config.urls_or_default();
    let bad = |url: &str, e: fred::error::Error| {
        let text = format!("bad Redis url {:?}: {e}", redact::url(url));
        BrokerError::Unavailable(config.secrets().apply(&text).into_owned())
    };
    let first = urls
        .first()
        .ok_or_else(|| BrokerError::Unavailable("no Redis url".to_owned()))?;
    let mut fred_config = Config::from_url(first).map_err(|e| bad(first, e))?;
    if config.cluster {
        let mut seeds = Vec::with_capacity(urls.len());
        for url in &urls {
            let parsed = Config::from_url(url).map_err(|e| bad(url, e))?;
            for server in parsed.server.hosts() {
                seeds.push((server.host.to_string(), server.port));
            }
        }
        fred_config.server = ServerConfig::new_clustered(seeds);
    }
    if let Some(user) = &config.username {
        fred_config.username = Some(user.clone());
    }
    if let Some(password) = &config.password {
        fred_config.password = Some(password.expose().to_owned());
    }
    // Start-up reachability is decided by the gateway's own wait, not by
    // the first attempt: keep retrying.
    fred_config.fail_fast = false;
    let mut builder = Builder::from_config(fred_config);
    builder
        .with_connection_config(|connection| {
            connection.connection_timeout = config.connect_timeout();
            // fred's own heartbeat: a connection with a command unanswered for
            // `timeout_ms` is dropped and re-made (its commands retried). Our
            // liveness probe (`broker::health`) reports it unavailable first.
            connection.unresponsive.max_timeout = Some(config.timeout());
            connection.unresponsive.interval = (config.timeout() / 4).max(MIN_UNRESPONSIVE_CHECK);
        })
        .set_policy(ReconnectPolicy::new_exponential(0, 50, 2_000, 2));
    if subscriber {
        builder.with_performance_config(|performance| {
            performance.broadcast_channel_capacity = SUBSCRIBER_BACKLOG;
        });
    }
    builder
        .build()
        .map_err(|e| BrokerError::Unavailable(format!("redis: {e}")))
}
