//! Broker metrics (`ferrygate_broker_*`): connection state, traffic by kind,
//! malformed input by reason, interest subscriptions, failed publishes,
//! liveness probes that went unanswered.
//!
//! Labels come from the fixed enums below, never from broker input, so a
//! hostile backend cannot blow up the series count.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// What a broker message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// A channel publish.
    Channel,
    /// A message for every connection of one user.
    User,
    /// A message for one connection.
    Conn,
    /// An rpc request (out) or its reply (in).
    Rpc,
}

impl MessageKind {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Channel => "channel",
            Self::User => "user",
            Self::Conn => "conn",
            Self::Rpc => "rpc",
        }
    }
}

/// Why a broker message was dropped before reaching any client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Not UTF-8 JSON.
    NotJson,
    /// A ferrygate envelope of an unknown version or without `data`.
    BadEnvelope,
    /// Larger than `max_frame_bytes`.
    Oversize,
    /// A subject or channel the gateway cannot map to a target.
    BadSubject,
}

impl Malformed {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotJson => "not_json",
            Self::BadEnvelope => "bad_envelope",
            Self::Oversize => "oversize",
            Self::BadSubject => "bad_subject",
        }
    }
}

/// Why a message could not be handed to the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishFailure {
    /// The broker was disconnected or unresponsive: refused `unavailable`
    /// (a direct message reached local sockets only).
    Disconnected,
    /// The broker refused or the call failed.
    Error,
    /// The broker did not take it within `[broker] timeout_ms`: refused `unavailable`.
    Timeout,
    /// Larger than receivers accept: refused `too_large`.
    TooLarge,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct BrokerMetrics {
    /// 1 while the broker connection is up (always 1 for `memory`).
    pub connected: Gauge,
    /// Connections re-established after a loss.
    pub reconnects: Counter,
    /// Subjects or channels this instance is subscribed to on the broker.
    pub subscriptions: Gauge,
    /// Messages received from the broker and lost because the reader fell behind.
    pub lagged: Counter,
    /// Liveness probes a connected broker did not answer within `[broker] timeout_ms`.
    pub liveness_failures: Counter,
    /// 1 while routes of the manifest need JetStream (history or presence)
    /// and the NATS server answers that it has none; 0 otherwise (and for
    /// every other broker). Set by `broker::nats::jetstream`.
    pub jetstream_missing: Gauge,
    messages_in: Family<Kind, Counter>,
    messages_out: Family<Kind, Counter>,
    malformed: Family<Reason, Counter>,
    publish_failures: Family<Reason, Counter>,
}

impl BrokerMetrics {
    /// Registers every series under `registry` (which carries the `broker` prefix).
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "connected",
            "1 while the broker connection is up",
            self.connected.clone(),
        );
        registry.register(
            "reconnects",
            "Broker connections re-established after a loss",
            self.reconnects.clone(),
        );
        registry.register(
            "subscriptions",
            "Broker subjects or channels subscribed by this instance",
            self.subscriptions.clone(),
        );
        registry.register(
            "lagged",
            "Messages received from the broker but lost because this instance's reader fell behind",
            self.lagged.clone(),
        );
        registry.register(
            "liveness_failures",
            "Liveness probes a connected broker did not answer in time",
            self.liveness_failures.clone(),
        );
        registry.register(
            "jetstream_missing",
            "1 while history or presence routes need JetStream and the NATS server has none",
            self.jetstream_missing.clone(),
        );
        registry.register(
            "messages_in",
            "Messages received from the broker, by kind",
            self.messages_in.clone(),
        );
        registry.register(
            "messages_out",
            "Messages sent to the broker, by kind",
            self.messages_out.clone(),
        );
        registry.register(
            "malformed",
            "Broker messages dropped as malformed, by reason",
            self.malformed.clone(),
        );
        registry.register(
            "publish_failures",
            "Messages that could not be handed to the broker, by reason",
            self.publish_failures.clone(),
        );
    }

    /// Counts one message received.
    pub fn received(&self, kind: MessageKind) {
        self.messages_in
            .get_or_create(&Kind {
                kind: kind.as_str(),
            })
            .inc();
    }

    /// Counts one message sent.
    pub fn sent(&self, kind: MessageKind) {
        self.messages_out
            .get_or_create(&Kind {
                kind: kind.as_str(),
            })
            .inc();
    }

    /// Counts one malformed message dropped.
    pub fn malformed(&self, why: Malformed) {
        self.malformed
            .get_or_create(&Reason {
                reason: why.as_str(),
            })
            .inc();
    }

    /// Counts one message that did not reach the broker.
    pub fn publish_failed(&self, why: PublishFailure) {
        let reason = match why {
            PublishFailure::Disconnected => "disconnected",
            PublishFailure::Error => "error",
            PublishFailure::Timeout => "timeout",
            PublishFailure::TooLarge => "too_large",
        };
        self.publish_failures
            .get_or_create(&Reason { reason })
            .inc();
    }
}
