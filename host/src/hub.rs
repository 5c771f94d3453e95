//! Local fan-out: which of this instance's connections want which channel.
//!
//! Channels live in shards, each behind its own lock, so that publishes to
//! different channels rarely contend. A publish builds its push frame once and
//! appends the same shared bytes to each subscriber's outbox while holding the
//! channel's shard lock: every subscriber therefore sees a channel's messages in
//! one order, and a subscribe's `ok` reply is queued under the same lock, so no
//! push of that channel can overtake it. Nothing here blocks or awaits.
//!
//! The hub never talks to the broker: the broker calls [`Hub::deliver`], or
//! [`Hub::deliver_at`] for a channel with history. A subscribe that replays
//! history first [`Hub::hold`]s its member, reads the store, then
//! [`Hub::release`]s it: see `hub::member` for how that switch avoids gaps and
//! duplicates.

mod member;
mod members;

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::connections::ConnId;
use crate::history::Position;
use crate::metrics::Metrics;
use crate::outbox::{Outbox, Pushed};
use crate::protocol::{ChannelName, Frame};

const SHARDS: usize = 64;

/// One connection's membership in a channel.
#[derive(Debug, Clone)]
pub struct Subscriber {
    /// The subscribing connection.
    pub conn: ConnId,
    /// Where its pushes go.
    pub outbox: Arc<Outbox>,
}

/// Result of [`Hub::subscribe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscribed {
    /// The first local subscriber of the channel.
    First,
    /// The channel already had local subscribers.
    Joined,
}

/// Result of [`Hub::unsubscribe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsubscribed {
    /// The last local subscriber left.
    Last,
    /// Others remain.
    Left,
    /// The connection was not subscribed.
    NotSubscribed,
}

type Channels = HashMap<ChannelName, members::Members>;

/// See the module docs.
#[derive(Debug)]
pub struct Hub {
    shards: Box<[Mutex<Channels>]>,
    hasher: RandomState,
    metrics: Arc<Metrics>,
}

impl Hub {
    /// An empty hub.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            metrics,
        }
    }

    /// Adds `subscriber` to `channel` and queues `ack`, if any, to it before any push of
    /// that channel. The caller guarantees the connection is not yet subscribed.
    pub fn subscribe(
        &self,
        channel: &ChannelName,
        subscriber: Subscriber,
        ack: Option<Frame>,
    ) -> Subscribed {
        let mut shard = self.shard(channel).lock();
        if let Some(ack) = ack {
            self.push(&subscriber.outbox, ack);
        }
        Self::add(&mut shard, channel, member::Member::live(subscriber))
    }

    /// Adds `subscriber` to `channel` held: its pushes wait (bounded by its
    /// outbox size, beyond which it is closed with 1013) until
    /// [`Hub::release`]. The caller guarantees it is not yet subscribed.
    pub fn hold(&self, channel: &ChannelName, subscriber: Subscriber) -> Subscribed {
        let mut shard = self.shard(channel).lock();
        Self::add(&mut shard, channel, member::Member::held(subscriber))
    }

    /// Queues `ack`, then `replay`, then the pushes held for `conn` on
    /// `channel` that `floor` does not cover, and delivers live from then on,
    /// still dropping history pushes that `floor` covers. A connection no
    /// longer subscribed gets nothing.
    pub fn release(
        &self,
        channel: &ChannelName,
        conn: &ConnId,
        ack: Frame,
        replay: Vec<Frame>,
        floor: Option<Position>,
    ) {
        let mut shard = self.shard(channel).lock();
        let member = shard
            .get_mut(channel)
            .and_then(|members| members.get_mut(conn));
        if let Some(member) = member {
            member.release(self, ack, replay, floor);
        }
    }

    fn add(shard: &mut Channels, channel: &ChannelName, member: member::Member) -> Subscribed {
        match shard.get_mut(channel) {
            Some(members) => {
                members.push(member);
                Subscribed::Joined
            }
            None => {
                shard.insert(channel.clone(), members::Members::new(member));
                Subscribed::First
            }
        }
    }

    /// Removes `conn` from `channel`: O(1) whatever the channel's size (see
    /// `hub::members`), so that a drain or a network blip that makes a large
    /// channel's members leave at once costs linear, not quadratic, time.
    pub fn unsubscribe(&self, channel: &ChannelName, conn: &ConnId) -> Unsubscribed {
        let mut shard = self.shard(channel).lock();
        let Some(subscribers) = shard.get_mut(channel) else {
            return Unsubscribed::NotSubscribed;
        };
        if !subscribers.remove(conn) {
            return Unsubscribed::NotSubscribed;
        }
        if subscribers.is_empty() {
            shard.remove(channel);
            Unsubscribed::Last
        } else {
            Unsubscribed::Left
        }
    }

    /// Pushes `data` (JSON text) to every local subscriber of `channel`;
    /// returns how many it was queued for.
    pub fn deliver(&self, channel: &ChannelName, data: &str) -> usize {
        let mut shard = self.shard(channel).lock();
        let Some(members) = shard.get_mut(channel) else {
            return 0;
        };
        let frame = Frame::push(channel, data);
        members
            .iter_mut()
            .map(|m| m.offer(self, None, &frame))
            .filter(|&taken| taken)
            .count()
    }

    /// Pushes `frame`, the push of a channel with history at position `at`,
    /// to every local subscriber of `channel` that has not had it yet;
    /// returns how many it was queued (or held) for.
    pub fn deliver_at(&self, channel: &ChannelName, at: &Position, frame: &Frame) -> usize {
        let mut shard = self.shard(channel).lock();
        let Some(members) = shard.get_mut(channel) else {
            return 0;
        };
        members
            .iter_mut()
            .map(|m| m.offer(self, Some(at), frame))
            .filter(|&taken| taken)
            .count()
    }

    /// Pushes a ready `frame` (a join or leave) to every local subscriber
    /// of `channel`; returns how many it was queued for.
    pub fn deliver_frame(&self, channel: &ChannelName, frame: &Frame) -> usize {
        let mut shard = self.shard(channel).lock();
        let Some(members) = shard.get_mut(channel) else {
            return 0;
        };
        members
            .iter_mut()
            .map(|m| m.offer(self, None, frame))
            .filter(|&taken| taken)
            .count()
    }

    /// Number of channels with at least one local subscriber.
    pub fn channel_count(&self) -> usize {
        self.shards.iter().map(|shard| shard.lock().len()).sum()
    }

    /// Pushes one frame to one outbox, counting what a cut connection loses.
    pub(crate) fn push(&self, outbox: &Outbox, frame: Frame) -> bool {
        match outbox.push(frame) {
            Pushed::Queued => true,
            Pushed::Overflowed { dropped } => {
                self.metrics.slow_consumers.inc();
                self.metrics.frames_dropped.inc_by(dropped as u64);
                false
            }
            Pushed::Closed => {
                self.metrics.frames_dropped.inc();
                false
            }
        }
    }

    fn shard(&self, channel: &ChannelName) -> &Mutex<Channels> {
        let index = self.hasher.hash_one(channel) as usize % self.shards.len();
        &self.shards[index]
    }
}

#[cfg(test)]
mod tests;
