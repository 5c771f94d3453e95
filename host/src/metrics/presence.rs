//! Presence metrics (`ferrygate_presence_*`): entries this instance holds,
//! store writes and heartbeats (and their failures), join/leave pushes
//! announced, and queries by source.
//!
//! Labels come from [`EventKind`] and fixed source names, never from input.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::presence::EventKind;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Source {
    source: &'static str,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct PresenceMetrics {
    /// (channel, member) entries this instance holds in the store now.
    pub entries: Gauge,
    /// Writes of this instance's counts to the store.
    pub writes: Counter,
    /// Writes the store refused or did not answer (retried at the next heartbeat).
    pub write_failures: Counter,
    /// Heartbeats the store took.
    pub heartbeats: Counter,
    /// Heartbeats that failed.
    pub heartbeat_failures: Counter,
    events: Family<Kind, Counter>,
    /// Join/leave pushes that could not be sent.
    pub event_failures: Counter,
    queries: Family<Source, Counter>,
    /// Queries answered `unavailable` because the store could not be read.
    pub query_failures: Counter,
}

impl PresenceMetrics {
    /// Registers every series under `registry` (which carries the `presence` prefix).
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "entries",
            "Presence entries (channel, member) this instance holds",
            self.entries.clone(),
        );
        registry.register(
            "writes",
            "Presence counts written to the store",
            self.writes.clone(),
        );
        registry.register(
            "write_failures",
            "Presence writes that failed (retried at the next heartbeat)",
            self.write_failures.clone(),
        );
        registry.register(
            "heartbeats",
            "Presence heartbeats the store took",
            self.heartbeats.clone(),
        );
        registry.register(
            "heartbeat_failures",
            "Presence heartbeats that failed",
            self.heartbeat_failures.clone(),
        );
        registry.register(
            "events",
            "Join and leave pushes announced, by kind",
            self.events.clone(),
        );
        registry.register(
            "event_failures",
            "Join and leave pushes that could not be sent",
            self.event_failures.clone(),
        );
        registry.register(
            "queries",
            "Presence queries, by source (ws, http)",
            self.queries.clone(),
        );
        registry.register(
            "query_failures",
            "Presence queries answered unavailable",
            self.query_failures.clone(),
        );
    }

    /// Counts one join or leave push announced.
    pub fn event_sent(&self, kind: EventKind) {
        self.events
            .get_or_create(&Kind {
                kind: kind.as_str(),
            })
            .inc();
    }

    /// Counts one query from `source` (`ws` or `http`).
    pub fn query(&self, source: &'static str) {
        self.queries.get_or_create(&Source { source }).inc();
    }
}
