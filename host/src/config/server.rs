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
    /// Admit clients with no auth plugin declared. Required (true) for a
    /// manifest without a plugin of kind `auth`, so that an open gateway is
    /// always a written decision; restart-only (see `plugin::reload`).
    pub allow_anonymous: bool,
    /// Browser origins accepted on `/ws`; empty accepts any (auth is by token, not cookie).
    pub allowed_origins: Vec<String>,
    /// Largest client message (all fragments together); larger closes with 1009.
    pub max_frame_bytes: usize,
    /// Most WebSocket sessions at once; further upgrades get HTTP 503.
    pub max_connections: usize,
    /// Most HTTP connections that are not sessions (not yet upgraded, API
    /// calls, keep-alive waits); one more is answered 503 at accept.
    pub max_pending_connections: usize,
    /// Most channels one connection may be subscribed to.
    pub max_subscriptions_per_connection: usize,
    /// Most rpcs one connection may have awaiting an answer; one more is
    /// refused `rate_limited`. 1 to `MAX_INFLIGHT_RPC`.
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
            allow_anonymous: false,
            allowed_origins: Vec::new(),
            max_frame_bytes: 64 * 1024,
            max_connections: 100_000,
            max_pending_connections: 4096,
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
        let within = |key: &'static str, value: u64, (low, high): (u64, u64), why: &str| {
            (low..=high)
                .contains(&value)
                .then_some(())
                .ok_or_else(|| InvalidKey {
                    key,
                    reason: format!("must be between {low} and {high} ({why})"),
                })
        };
        let size = |value: usize| u64::try_from(value).unwrap_or(u64::MAX);
        within(
            "max_frame_bytes",
            size(self.max_frame_bytes),
            MAX_FRAME_BYTES,
            "the largest message a client may send",
        )?;
        within(
            "max_connections",
            size(self.max_connections),
            MAX_CONNECTIONS,
            "sessions of one process",
        )?;
        within(
            "max_pending_connections",
            size(self.max_pending_connections),
            MAX_PENDING_CONNECTIONS,
            "HTTP connections that are not sessions yet",
        )?;
        within(
            "max_subscriptions_per_connection",
            size(self.max_subscriptions_per_connection),
            MAX_SUBSCRIPTIONS,
            "channels of one connection",
        )?;
        within(
            "max_inflight_rpc_per_connection",
            size(self.max_inflight_rpc_per_connection),
            (1, MAX_INFLIGHT_RPC as u64),
            "each waiting rpc holds a task and a reply slot",
        )?;
        within(
            "max_queued_bytes",
            size(self.max_queued_bytes),
            MAX_QUEUED_BYTES,
            "bytes held for one client",
        )?;
        if self.max_queued_bytes < self.max_frame_bytes {
            return Err(InvalidKey {
                key: "max_queued_bytes",
                reason: "must be at least max_frame_bytes, so that a largest message can queue behind others".into(),
            });
        }
        for (key, rate) in [
            ("publish_rate", self.publish_rate),
            ("request_rate", self.request_rate),
        ] {
            if !rate.is_valid() {
                return Err(InvalidKey {
                    key,
                    reason: RateLimit::RULE.into(),
                });
            }
        }
        within(
            "ping_interval_ms",
            self.ping_interval_ms,
            PING_INTERVAL_MS,
            "one hour at most",
        )?;
        within(
            "idle_timeout_ms",
            self.idle_timeout_ms,
            IDLE_TIMEOUT_MS,
            "one day at most",
        )?;
        if self.idle_timeout_ms <= self.ping_interval_ms {
            return Err(InvalidKey {
                key: "idle_timeout_ms",
                reason: "must be greater than ping_interval_ms, or healthy clients would be reaped"
                    .into(),
            });
        }
        within("drain_ms", self.drain_ms, DRAIN_MS, "one hour at most")?;
        within(
            "close_grace_ms",
            self.close_grace_ms,
            CLOSE_GRACE_MS,
            "ten minutes at most",
        )?;
        within(
            "request_head_timeout_ms",
            self.request_head_timeout_ms,
            REQUEST_HEAD_TIMEOUT_MS,
            "ten minutes at most",
        )?;
        within(
            "max_request_head_bytes",
            size(self.max_request_head_bytes),
            MAX_REQUEST_HEAD_BYTES,
            "the HTTP parser needs at least 8192",
        )?;
        within(
            "workers",
            size(self.workers),
            WORKERS,
            "0 means one per core",
        )?;
        if self
            .api_key
            .as_ref()
            .is_some_and(|key| key.expose().trim().is_empty())
        {
            return Err(InvalidKey {
                key: "api_key",
                reason:
                    "must not be empty or only whitespace (leave it out to disable the HTTP API)"
                        .into(),
            });
        }
        Ok(())
    }
}

// Bounds of `[server]` values, `(lowest, highest)`. The upper bounds keep
// every duration and size far from an overflow (`Instant + Duration`, byte
// counters) while staying well above any sane setting; each is documented
// in docs/configuration.md.

/// `max_frame_bytes`: 256 bytes to 16 MiB; a larger message belongs in object storage.
const MAX_FRAME_BYTES: (u64, u64) = (256, 16 << 20);
/// `max_connections`: ten million is beyond what one process can hold.
const MAX_CONNECTIONS: (u64, u64) = (1, 10_000_000);
/// `max_pending_connections`: 1 to one million; each holds a descriptor
/// for at most `request_head_timeout_ms` between requests.
const MAX_PENDING_CONNECTIONS: (u64, u64) = (1, 1_000_000);
/// `max_subscriptions_per_connection`: one million channels per client.
const MAX_SUBSCRIPTIONS: (u64, u64) = (1, 1_000_000);
/// `max_queued_bytes`: at most 1 GiB queued for one client.
const MAX_QUEUED_BYTES: (u64, u64) = (256, 1 << 30);
/// `publish_rate` / `request_rate`: `per_second` and `burst`, up to ten million.
const MAX_RATE: u32 = 10_000_000;
/// `ping_interval_ms`: 100 ms to one hour.
const PING_INTERVAL_MS: (u64, u64) = (100, 3_600_000);
/// `idle_timeout_ms`: up to one day (and above `ping_interval_ms`).
const IDLE_TIMEOUT_MS: (u64, u64) = (101, 86_400_000);
/// `drain_ms`: up to one hour.
const DRAIN_MS: (u64, u64) = (0, 3_600_000);
/// `close_grace_ms`: up to ten minutes.
const CLOSE_GRACE_MS: (u64, u64) = (0, 600_000);
/// `request_head_timeout_ms`: 1 ms to ten minutes.
const REQUEST_HEAD_TIMEOUT_MS: (u64, u64) = (1, 600_000);
/// `max_request_head_bytes`: 8 KiB (hyper's minimum buffer) to 1 MiB.
const MAX_REQUEST_HEAD_BYTES: (u64, u64) = (8192, 1 << 20);
/// `workers`: 0 (one per core) to 1024 threads.
const WORKERS: (u64, u64) = (0, 1024);

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
    const RULE: &'static str = "needs per_second and burst each between 1 and 10000000";

    fn is_valid(&self) -> bool {
        (1..=MAX_RATE).contains(&self.per_second) && (1..=MAX_RATE).contains(&self.burst)
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
