//! Prometheus metrics served on `GET /metrics`.
//!
//! Owns every counter and gauge and their names; callers only increment. Hot
//! paths touch plain atomics (a counter per batch, not per recipient); labelled
//! families are used where a label is bounded by an enum of this crate (error
//! codes, close reasons), so cardinality never depends on client input.

mod broker;
mod history;
mod plugin;
mod presence;
mod process;
mod session;

pub use plugin::{Cause, FunctionSource, PluginCounters, PluginMetrics, ReloadOutcome};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::close::CloseReason;
use crate::protocol::ErrorCode;

pub use broker::{BrokerMetrics, Malformed, MessageKind, PublishFailure};
pub use history::HistoryMetrics;
pub use presence::PresenceMetrics;
pub use session::{RefreshOutcome, SessionMetrics};

/// A label drawn from a fixed set of names.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    reason: &'static str,
}

/// The error code of a refused request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Code {
    code: &'static str,
}

/// Where a published message entered the gateway.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Source {
    source: &'static str,
}

/// Why an upgrade to WebSocket was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeRefusal {
    /// `max_connections` reached.
    Capacity,
    /// The gateway is draining.
    Draining,
    /// The `Origin` header is not in `allowed_origins`.
    Origin,
    /// Not a valid WebSocket handshake.
    BadHandshake,
    /// The auth plugin denied the connection.
    Auth,
    /// The auth plugin failed (trap, deadline, ...): refused, as auth fails closed.
    AuthFailed,
    /// `max_pending_connections` HTTP connections were open: answered 503
    /// at accept, before any request was read.
    Pending,
}

impl UpgradeRefusal {
    /// Every reason: each series is exported from the start, at 0, so that
    /// a dashboard or an alert on `reason="pending"` finds it before the
    /// first refusal.
    const ALL: [Self; 7] = [
        Self::Capacity,
        Self::Draining,
        Self::Origin,
        Self::BadHandshake,
        Self::Auth,
        Self::AuthFailed,
        Self::Pending,
    ];

    const fn as_str(self) -> &'static str {
        match self {
            Self::Capacity => "capacity",
            Self::Draining => "draining",
            Self::Origin => "origin",
            Self::BadHandshake => "bad_handshake",
            Self::Auth => "auth",
            Self::AuthFailed => "auth_failed",
            Self::Pending => "pending",
        }
    }
}

/// Every metric the gateway exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// `process_*`, without the `ferrygate_` prefix (see `process`).
    process: Registry,
    /// Open WebSocket sessions.
    pub connections: Gauge,
    /// Sessions opened since start.
    pub connections_opened: Counter,
    upgrades_refused: Family<Reason, Counter>,
    /// Sessions closed, by reason.
    disconnects: Family<Reason, Counter>,
    /// Current (connection, channel) subscriptions.
    pub subscriptions: Gauge,
    published: Family<Source, Counter>,
    /// Frames written to client sockets (pushes, replies, messages).
    pub frames_delivered: Counter,
    /// Batches flushed to client sockets; frames per batch shows how well
    /// writes are coalesced.
    pub write_batches: Counter,
    /// Frames discarded because their connection was cut or closing.
    pub frames_dropped: Counter,
    /// Connections cut with 1013 because their queue overflowed.
    pub slow_consumers: Counter,
    request_errors: Family<Code, Counter>,
    /// HTTP API calls refused for a missing or wrong key.
    pub api_unauthorized: Counter,
    /// HTTP API calls whose body did not arrive within
    /// `request_head_timeout_ms` (answered 408).
    pub request_body_timeouts: Counter,
    /// Messages addressed to a connection or user (`/v1/send`) and delivered.
    pub direct_delivered: Counter,
    /// Plugin calls, failures and latency.
    pub plugins: PluginMetrics,
    /// Broker connection, traffic and faults.
    pub broker: BrokerMetrics,
    /// History appends, replays and failed recoveries.
    pub history: HistoryMetrics,
    /// Token refreshes and SSE streams.
    pub sessions: SessionMetrics,
    /// Presence entries, heartbeats, join/leave pushes and queries.
    pub presence: PresenceMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `ferrygate_` prefix.
    pub fn new() -> Self {
        let mut metrics = Self {
            connections: Gauge::default(),
            connections_opened: Counter::default(),
            upgrades_refused: Family::default(),
            disconnects: Family::default(),
            subscriptions: Gauge::default(),
            published: Family::default(),
            frames_delivered: Counter::default(),
            write_batches: Counter::default(),
            frames_dropped: Counter::default(),
            slow_consumers: Counter::default(),
            request_errors: Family::default(),
            api_unauthorized: Counter::default(),
            request_body_timeouts: Counter::default(),
            direct_delivered: Counter::default(),
            plugins: PluginMetrics::new(),
            broker: BrokerMetrics::default(),
            history: HistoryMetrics::default(),
            sessions: SessionMetrics::default(),
            presence: PresenceMetrics::default(),
            registry: Registry::with_prefix("ferrygate"),
            process: Registry::default(),
        };
        metrics
            .process
            .register_collector(Box::new(process::ProcessCollector));
        for why in UpgradeRefusal::ALL {
            let _ = metrics.upgrades_refused.get_or_create(&Reason {
                reason: why.as_str(),
            });
        }
        let r = &mut metrics.registry;
        r.register(
            "connections",
            "Open sessions (WebSocket and SSE)",
            metrics.connections.clone(),
        );
        r.register(
            "connections_opened",
            "Sessions opened (WebSocket and SSE)",
            metrics.connections_opened.clone(),
        );
        r.register(
            "upgrades_refused",
            "WebSocket upgrades and SSE streams refused, by reason",
            metrics.upgrades_refused.clone(),
        );
        r.register(
            "disconnects",
            "Sessions closed (WebSocket and SSE), by reason",
            metrics.disconnects.clone(),
        );
        r.register(
            "subscriptions",
            "Current channel subscriptions",
            metrics.subscriptions.clone(),
        );
        r.register(
            "messages_published",
            "Messages accepted for fan-out, by source",
            metrics.published.clone(),
        );
        r.register(
            "frames_delivered",
            "Frames written to client sockets",
            metrics.frames_delivered.clone(),
        );
        r.register(
            "write_batches",
            "Batches of frames flushed to client sockets",
            metrics.write_batches.clone(),
        );
        r.register(
            "frames_dropped",
            "Frames discarded for a connection that was cut or closing",
            metrics.frames_dropped.clone(),
        );
        r.register(
            "slow_consumers",
            "Connections closed with 1013 because they fell behind",
            metrics.slow_consumers.clone(),
        );
        r.register(
            "request_errors",
            "Client requests answered with an error, by code",
            metrics.request_errors.clone(),
        );
        r.register(
            "api_unauthorized",
            "HTTP API calls with a missing or wrong key",
            metrics.api_unauthorized.clone(),
        );
        r.register(
            "request_body_timeouts",
            "HTTP API calls whose body did not arrive in time (408)",
            metrics.request_body_timeouts.clone(),
        );
        r.register(
            "direct_delivered",
            "Direct messages delivered to a socket",
            metrics.direct_delivered.clone(),
        );
        metrics.plugins.register(r);
        metrics.sessions.register(r);
        metrics
            .broker
            .register(metrics.registry.sub_registry_with_prefix("broker"));
        metrics
            .history
            .register(metrics.registry.sub_registry_with_prefix("history"));
        metrics
            .presence
            .register(metrics.registry.sub_registry_with_prefix("presence"));
        metrics
    }

    /// Counts an upgrade refused for `why`.
    pub fn upgrade_refused(&self, why: UpgradeRefusal) {
        self.upgrades_refused
            .get_or_create(&Reason {
                reason: why.as_str(),
            })
            .inc();
    }

    /// Counts a session closed for `why`.
    pub fn disconnected(&self, why: CloseReason) {
        self.disconnects
            .get_or_create(&Reason {
                reason: why.as_str(),
            })
            .inc();
    }

    /// Counts a request refused with `code`.
    pub fn request_error(&self, code: ErrorCode) {
        self.request_errors
            .get_or_create(&Code {
                code: code.as_str(),
            })
            .inc();
    }

    /// Counts a message accepted for fan-out from `source` (`ws` or `http`).
    pub fn published(&self, source: &'static str) {
        self.published.get_or_create(&Source { source }).inc();
    }

    /// The Prometheus text exposition of every metric, the process's own
    /// (`process_*`) last.
    pub fn encode(&self) -> String {
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        let mut text = String::with_capacity(4096);
        // Writing into a String cannot fail.
        let _ = encode_registry(&mut text, &self.registry)
            .and_then(|()| encode_registry(&mut text, &self.process))
            .and_then(|()| encode_eof(&mut text));
        text
    }
}
