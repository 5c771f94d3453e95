//! History and recovery (SPEC 3): the positions that pushes on a channel with
//! `history` carry, what a broker's history store answers, and the one publish
//! path that decides whether a message goes into history.
//!
//! Every message kept goes through the instance's [`Appender`] (per-channel
//! order, batches). The store itself belongs to each broker ([`memory`] here
//! for the in-process broker); what a subscribe with `since` gets is decided by [`recovery`], the
//! same for every broker. The switch from replay to live delivery (no gap, no
//! duplicate) is the hub's job: see [`crate::hub::Hub::hold`]. Nothing here
//! touches sockets or sessions.

pub mod appender;
pub mod memory;
pub mod recovery;

use std::sync::Arc;

pub use appender::{Appended, Appender};

use crate::broker::{Broker, BrokerError};
use crate::config::HistoryConfig;
use crate::plugin::PluginSet;
use crate::protocol::{ChannelName, Frame};

/// Most messages one subscribe replays. A client further behind gets
/// `recovered:false` (reason `too_many`) and re-syncs from its own source of
/// truth: that costs one state load instead of a flood that the outbox bound
/// (`max_queued_bytes`) would cut with 1013 anyway.
pub const MAX_REPLAY: usize = 10_000;

/// Longest epoch accepted from a broker, in bytes.
pub const MAX_EPOCH_BYTES: usize = 64;

/// A place in one channel's history: the epoch (one incarnation of the
/// history; a new one when it was lost) and an offset within it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// 1 to [`MAX_EPOCH_BYTES`] bytes of `[A-Za-z0-9_-]` (see [`is_epoch`]).
    pub epoch: Arc<str>,
    /// The channel's newest offset (0: nothing published in this epoch yet).
    pub offset: u64,
}

impl Position {
    /// Whether a push at `other` was already covered by this position: same
    /// epoch, offset at or below ours.
    pub fn covers(&self, other: &Position) -> bool {
        self.epoch == other.epoch && other.offset <= self.offset
    }

    /// `{"epoch":"E","offset":N}` fields, for a subscribe's result.
    pub fn insert_into(&self, result: &mut serde_json::Map<String, serde_json::Value>) {
        result.insert("epoch".into(), self.epoch.as_ref().into());
        result.insert("offset".into(), self.offset.into());
    }
}

/// Whether `epoch` may be sent to clients as is: 1 to [`MAX_EPOCH_BYTES`]
/// bytes of ASCII letters, digits, `_` or `-` (no JSON escaping needed).
pub fn is_epoch(epoch: &str) -> bool {
    !epoch.is_empty()
        && epoch.len() <= MAX_EPOCH_BYTES
        && epoch
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// One kept message: its offset and its push frame (with offset and epoch).
#[derive(Debug, Clone)]
pub struct Kept {
    /// Offset within the read's epoch.
    pub offset: u64,
    /// The push exactly as live subscribers got it.
    pub frame: Frame,
}

/// A consistent read of one channel's history (one instant of the store).
#[derive(Debug, Clone)]
pub struct HistoryRead {
    /// The epoch and newest offset.
    pub position: Position,
    /// The oldest offset still kept; `position.offset + 1` when none is.
    pub first: u64,
    /// Kept messages after the offset asked for, oldest first, at most the
    /// number asked for; empty when no offset was asked for.
    pub entries: Vec<Kept>,
}

/// The history policy of `channel`: its route's `history`, if any.
pub fn policy_for(plugins: &PluginSet, channel: &ChannelName) -> Option<HistoryConfig> {
    plugins.route_for(channel).and_then(|route| route.history)
}

/// How one publish to one channel proceeds: a plain publish is a future of
/// the broker's; a kept one already has its place in the channel's order.
pub enum Publishing<'a> {
    /// No history on the channel: [`Broker::publish`], not yet started.
    Plain(futures_util::future::BoxFuture<'a, Result<(), BrokerError>>),
    /// Queued in the [`Appender`]; resolves once the store holds it.
    Kept(Appended),
}

impl std::fmt::Debug for Publishing<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_kept() { "Kept" } else { "Plain" })
    }
}

impl Publishing<'_> {
    /// Waits for the broker's answer.
    pub async fn done(self) -> Result<(), BrokerError> {
        match self {
            Self::Plain(publish) => publish.await,
            Self::Kept(appended) => match appended.await {
                Ok(kept) => kept.map(drop),
                Err(_gone) => Err(BrokerError::Unavailable(
                    "the history append was cut short (shutdown)".to_owned(),
                )),
            },
        }
    }

    /// Whether the message goes into history (its answer waits for the store).
    pub fn is_kept(&self) -> bool {
        matches!(self, Self::Kept(_))
    }
}

/// Publishes `data` (JSON text) on `channel`: into the channel's history
/// through `appender` when its route keeps one (queued in order before this
/// returns; the broker refuses with [`BrokerError::Unavailable`] when it
/// cannot store it, so that nothing is acknowledged and lost), as a plain
/// publish through `broker` otherwise (started when awaited).
pub fn publish<'a>(
    broker: &'a dyn Broker,
    appender: &Arc<Appender>,
    plugins: &PluginSet,
    channel: &'a ChannelName,
    data: &'a str,
) -> Publishing<'a> {
    match policy_for(plugins, channel) {
        None => Publishing::Plain(broker.publish(channel, data)),
        Some(policy) => Publishing::Kept(appender.enqueue(channel, data.to_owned(), policy)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_are_checked_and_positions_compare_within_an_epoch() {
        assert!(is_epoch("k3j2-1f_A"));
        assert!(!is_epoch(""));
        assert!(!is_epoch("a\"b"));
        assert!(!is_epoch(&"a".repeat(MAX_EPOCH_BYTES + 1)));
        let at = |epoch: &str, offset| Position {
            epoch: epoch.into(),
            offset,
        };
        assert!(at("e", 5).covers(&at("e", 5)));
        assert!(at("e", 5).covers(&at("e", 1)));
        assert!(!at("e", 5).covers(&at("e", 6)));
        assert!(!at("e", 5).covers(&at("f", 1)));
    }
}
