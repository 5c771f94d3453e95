//! `[server]`: the listener, the HTTP API key and every per-connection limit.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

/// Upper bound of `max_inflight_rpc_per_connection`: each waiting rpc holds a
/// task and a reply slot until its answer or `rpc_timeout_ms`, so a few
/// thousand connections at this bound already mean millions of them.
pub const MAX_INFLIGHT_RPC: usize = 1024;

/// `[server]` with its defaults; each field is documented in `docs/configuration.md`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address of the one listener that serves WebSocket and HTTP.
    pub listen: SocketAddr,
    /// Key required by every `/v1/` endpoint; without one the HTTP API refuses all calls.
    pub api_key: Option<Secret>,
    /// Browser origins accepted on `/ws`; empty accepts any (auth is by token, not cookie).
    pub allowed_origins: Vec<String>,
    /// Largest client message (all fragments together); larger closes with 1009.
    pub max_frame_bytes: usize,
    /// Most WebSocket sessions at once; further upgrades get HTTP 503.
    pub max_connections: usize,
    /// Most channels one connection may be subscribed to.
    pub max_subscriptions_per_connection: usize,
    /// Most rpcs one connection may have awaiting an answer; one more is
    /// refused `rate_limited`. 1 to [`MAX_INFLIGHT_RPC`].
    pub max_inflight_rpc_per_connection: usize,
    /// Most bytes waiting to be written to one client before it is cut with 1013.
    pub max_queued_bytes: usize,
    /// Publishes one connection may make, as a token bucket.
    pub publish_rate: RateLimit,
    /// Requests of any kind (ping, subscribe, ...) one connection may make.
    pub request_rate: RateLimit,
    /// How often an idle connection is sent a WebSocket ping.
    pub ping_interval_ms: u64,
    /// A connection that sends nothing (not even a pong) for this long is closed.
    pub idle_timeout_ms: u64,
    /// On shutdown, client closes (1012) are spread over this period.
    pub drain_ms: u64,
    /// How long a close frame may take to reach a client before the socket is dropped.
    pub close_grace_ms: u64,
    /// Time allowed for an HTTP request head to arrive (408 past it).
    pub request_head_timeout_ms: u64,
    /// Largest HTTP request head (431 beyond).
    pub max_request_head_bytes: usize,
    /// Runtimes (threads) serving connections; 0 means one per available core.
    pub workers: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            api_key: None,
            allowed_origins: Vec::new(),
            max_frame_bytes: 64 * 1024,
            max_connections: 100_000,
            max_subscriptions_per_connection: 1024,
            max_inflight_rpc_per_connection: 16,
            max_queued_bytes: 1024 * 1024,
            publish_rate: RateLimit {
                per_second: 1000,
                burst: 1000,
            },
            request_rate: RateLimit {
                per_second: 2000,
                burst: 2000,
            },
            ping_interval_ms: 25_000,
            idle_timeout_ms: 60_000,
            drain_ms: 10_000,
            close_grace_ms: 5_000,
            request_head_timeout_ms: 10_000,
            max_request_head_bytes: 16 * 1024,
            workers: 0,
        }
    }
}

impl ServerConfig {
    /// Ping interval as a [`Duration`].
    pub fn ping_interval(&self) -> Duration {
        Duration::from_millis(self.ping_interval_ms)
    }

    /// Idle timeout as a [`Duration`].
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    /// Drain period as a [`Duration`].
    pub fn drain_period(&self) -> Duration {
        Duration::from_millis(self.drain_ms)
    }

    /// Close grace as a [`Duration`].
    pub fn close_grace(&self) -> Duration {
        Duration::from_millis(self.close_grace_ms)
    }

    pub(super) fn validate(&self) -> Result<(), InvalidKey> {
        const MAX_FRAME_CEILING: usize = 16 * 1024 * 1024;
        let checks: [(bool, &'static str, String); 13] = [
            (
                (256..=MAX_FRAME_CEILING).contains(&self.max_frame_bytes),
                "max_frame_bytes",
                format!("must be between 256 and {MAX_FRAME_CEILING}"),
            ),
            (
                self.max_connections >= 1,
                "max_connections",
                "must be at least 1".into(),
            ),
            (
                self.max_subscriptions_per_connection >= 1,
                "max_subscriptions_per_connection",
                "must be at least 1".into(),
            ),
            (
                (1..=MAX_INFLIGHT_RPC).contains(&self.max_inflight_rpc_per_connection),
                "max_inflight_rpc_per_connection",
                format!("must be between 1 and {MAX_INFLIGHT_RPC}"),
            ),
            (
                self.max_queued_bytes >= self.max_frame_bytes,
                "max_queued_bytes",
                "must be at least max_frame_bytes, so that a largest message can queue behind others".into(),
            ),
            (
                self.publish_rate.is_valid(),
                "publish_rate",
                RateLimit::RULE.into(),
            ),
            (
                self.request_rate.is_valid(),
                "request_rate",
                RateLimit::RULE.into(),
            ),
            (
                self.ping_interval_ms >= 100,
                "ping_interval_ms",
                "must be at least 100".into(),
            ),
            (
                self.idle_timeout_ms > self.ping_interval_ms,
                "idle_timeout_ms",
                "must be greater than ping_interval_ms, or healthy clients would be reaped".into(),
            ),
            (
                self.workers <= 1024,
                "workers",
                "must be at most 1024".into(),
            ),
            (
                self.max_request_head_bytes >= 8192,
                "max_request_head_bytes",
                "must be at least 8192 (the HTTP parser's minimum buffer)".into(),
            ),
            (
                self.request_head_timeout_ms >= 1,
                "request_head_timeout_ms",
                "must be at least 1".into(),
            ),
            (
                self.api_key
                    .as_ref()
                    .is_none_or(|key| !key.expose().is_empty()),
                "api_key",
                "must not be empty (leave it out to disable the HTTP API)".into(),
            ),
        ];
        match checks.into_iter().find(|(ok, _, _)| !ok) {
            Some((_, key, reason)) => Err(InvalidKey { key, reason }),
            None => Ok(()),
        }
    }
}

/// A key of `[server]` whose value is out of range.
#[derive(Debug)]
pub(super) struct InvalidKey {
    pub key: &'static str,
    pub reason: String,
}

/// A token bucket: `burst` requests at once, refilled at `per_second`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained rate.
    pub per_second: u32,
    /// Requests allowed back to back after a quiet period.
    pub burst: u32,
}

impl RateLimit {
    const RULE: &'static str = "needs per_second >= 1 and burst >= 1";

    fn is_valid(&self) -> bool {
        self.per_second >= 1 && self.burst >= 1
    }
}

/// A secret from the manifest: printed as `[redacted]` by `Debug`, so it never
/// reaches a log line by accident.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is compared or handed on.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub(super) fn replace(&mut self, value: String) {
        self.0 = value;
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}
