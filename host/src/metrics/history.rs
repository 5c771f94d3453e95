//! History metrics (`ferrygate_history_*`): messages kept, appends refused,
//! replays served and messages replayed, recoveries that failed by reason,
//! and the in-process store's size.
//!
//! Reasons come from [`Unrecovered`], never from client input.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::history::recovery::Unrecovered;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct HistoryMetrics {
    /// Messages stored in a channel's history (and so delivered with an offset).
    pub appends: Counter,
    /// Publishes to a channel with history refused because the store could
    /// not keep them (answered `unavailable`).
    pub append_failures: Counter,
    /// Subscribes with `since` answered `recovered:true`.
    pub replays: Counter,
    /// Messages sent to clients by those replays.
    pub replayed: Counter,
    recoveries_failed: Family<Reason, Counter>,
    /// Channels with a ring in the in-process store (memory broker only;
    /// updated by its sweep, every second).
    pub channels: Gauge,
    /// Bytes the in-process store holds, frames and overhead (memory broker
    /// only; updated by its sweep).
    pub bytes: Gauge,
}

impl HistoryMetrics {
    /// Registers every series under `registry` (which carries the `history` prefix).
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "appends",
            "Messages kept in a channel's history",
            self.appends.clone(),
        );
        registry.register(
            "append_failures",
            "Publishes to channels with history refused because the store could not keep them",
            self.append_failures.clone(),
        );
        registry.register(
            "replays",
            "Subscribes with since answered recovered:true",
            self.replays.clone(),
        );
        registry.register(
            "replayed_messages",
            "Messages sent by replays",
            self.replayed.clone(),
        );
        registry.register(
            "recoveries_failed",
            "Subscribes with since answered recovered:false, by reason",
            self.recoveries_failed.clone(),
        );
        registry.register(
            "channels",
            "Channels with history in the in-process store",
            self.channels.clone(),
        );
        registry.register(
            "bytes",
            "Bytes held by the in-process history store",
            self.bytes.clone(),
        );
    }

    /// Counts one publish the store refused.
    pub fn append_failed(&self) {
        self.append_failures.inc();
    }

    /// Counts one subscribe with `since`: recovered (with `replayed`
    /// messages) or not, and why.
    pub fn recovery(&self, outcome: Result<usize, Unrecovered>) {
        match outcome {
            Ok(replayed) => {
                self.replays.inc();
                self.replayed.inc_by(replayed as u64);
            }
            Err(why) => {
                self.recoveries_failed
                    .get_or_create(&Reason {
                        reason: why.as_str(),
                    })
                    .inc();
            }
        }
    }
}
