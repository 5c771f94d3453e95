//! History in JetStream: one stream per prefix ([`stream`]), one subject per
//! channel, offsets assigned with JetStream's optimistic concurrency.
//!
//! Each stored record is the envelope with its position,
//! `{"ferrygate":1,"node":"N","offset":K,"epoch":"E","data":D}` for one
//! message, or `{..,"offset":K,"epoch":"E","batch":[D1,..,Dn]}` for the n
//! messages at offsets K to K+n-1 that the appender
//! (`crate::history::appender`) handed over at once; stored on
//! `<prefix>.hist.C` with `Nats-Expected-Last-Subject-Sequence` set to the
//! stream sequence of the channel's previous message: JetStream stores it
//! only if nothing else was stored on the channel in between, so offsets rise
//! by exactly one and every writer (any instance) agrees on one order. A
//! writer that lost the race reads the new last message and tries again
//! (at most [`MAX_ATTEMPTS`] times). The stream's RePublish sends each
//! stored record, in stream order, to `<prefix>.ch.C`, the subject live
//! subscribers already listen to (a batch record is unpacked there, message
//! by message): no message is delivered before it is kept, and a refused
//! one (all of a refused record) is never delivered.
//!
//! The epoch lives in the messages: a channel without a live last message
//! (none yet, or the last one older than the route's `ttl_s`) starts a new
//! epoch (random) at offset 1. A subscribe to such a channel stores a
//! position marker (offset 0, `"data":null`, never delivered) so that the
//! position it answers stays valid. Instance restarts and deaths change
//! nothing; a deleted or recreated stream gives new epochs.
//!
//! Owns the per-channel cache of last positions (striped, bounded); the
//! replay read (direct gets along the chain of stored messages, shared by
//! concurrent recoveries) is [`replay`]; the record format and its two
//! JetStream calls are `record`.
//! Knows no hub and no session.

mod record;
mod replay;
pub mod stream;

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::broker::BrokerError;
use crate::config::HistoryConfig;
use crate::history::{HistoryRead, Position};
use crate::protocol::ChannelName;

use super::publish::within;
use record::{Last, Refused, fresh_epoch, kept_envelope, kept_record, now_ms};
use stream::HistoryStream;

/// Most tries of one append when other writers keep storing on the same
/// channel first; past it the publish is refused `unavailable` (nothing kept).
pub const MAX_ATTEMPTS: usize = 16;

/// Channels whose last position one stripe remembers; more are forgotten
/// (and read from JetStream again on their next publish).
const MAX_CACHED_PER_STRIPE: usize = 1024;

const STRIPES: usize = 64;

/// See the module docs.
#[derive(Debug)]
pub struct NatsHistory {
    stream: HistoryStream,
    node: Arc<str>,
    /// What a receiver accepts (`[server] max_frame_bytes`).
    max_bytes: usize,
    /// Bound of one JetStream request (`[broker] timeout_ms`).
    timeout: std::time::Duration,
    stripes: Box<[Mutex<HashMap<ChannelName, Last>>]>,
    hasher: RandomState,
    replay: replay::Reader,
}

impl NatsHistory {
    /// History of `prefix` through `js`, written as `node`; each JetStream
    /// request of a read bounded by `timeout`.
    pub fn new(
        js: async_nats::jetstream::Context,
        prefix: &str,
        node: Arc<str>,
        max_bytes: usize,
        timeout: std::time::Duration,
    ) -> Self {
        Self {
            stream: HistoryStream::new(js, prefix),
            node,
            max_bytes,
            timeout,
            stripes: (0..STRIPES).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            replay: replay::Reader::default(),
        }
    }

    /// Keeps `data` (at least one message) as `channel`'s next messages, in
    /// one record; resolves once JetStream acknowledged it (PubAck) with the
    /// position of the last one. Live delivery is the stream's RePublish.
    /// The caller (the appender) has one append per channel in flight; the
    /// cache of last positions is locked only to read and update it, and a
    /// second writer (another instance) is caught by JetStream's check.
    pub async fn append(
        &self,
        channel: &ChannelName,
        data: &[String],
        policy: &HistoryConfig,
    ) -> Result<Position, BrokerError> {
        let count = data.len() as u64;
        if count == 0 {
            return Err(BrokerError::Unavailable("nothing to keep".to_owned()));
        }
        self.stream.ensure(policy).await?;
        let subject = self.stream.subject(channel.as_str());
        let index = self.hasher.hash_one(channel) as usize % self.stripes.len();
        let known = &self.stripes[index];
        for _ in 0..MAX_ATTEMPTS {
            let cached = known.lock().get(channel).cloned();
            let last = match cached {
                Some(last) => Some(last),
                None => self.last(&subject).await?,
            };
            let (epoch, offset) = match last.as_ref().filter(|l| l.live(policy, now_ms())) {
                Some(live) => (Arc::clone(&live.epoch), live.offset + 1),
                None => (fresh_epoch(), 1),
            };
            let payload = kept_record(&self.node, offset, &epoch, data);
            match self
                .store(&subject, payload, last.map_or(0, |l| l.seq))
                .await
            {
                Ok(seq) => {
                    let newest = Last {
                        seq,
                        offset: offset + count - 1,
                        epoch: Arc::clone(&epoch),
                        at_ms: now_ms(),
                    };
                    let mut known = known.lock();
                    if known.len() >= MAX_CACHED_PER_STRIPE {
                        known.clear();
                    }
                    known.insert(channel.clone(), newest);
                    return Ok(Position {
                        epoch,
                        offset: offset + count - 1,
                    });
                }
                Err(Refused::Raced) => {
                    known.lock().remove(channel);
                }
                Err(Refused::Failed(error)) => {
                    known.lock().remove(channel);
                    return Err(error);
                }
            }
        }
        Err(BrokerError::Unavailable(format!(
            "JetStream: {MAX_ATTEMPTS} writers stored on {channel} first; nothing was kept"
        )))
    }

    /// One consistent read of `channel`'s history (see `Broker::history`):
    /// its last stored message (read from the stream leader), then, with
    /// `after`, the kept messages after it up to that one.
    pub async fn read(
        &self,
        channel: &ChannelName,
        policy: &HistoryConfig,
        after: Option<u64>,
        max: usize,
    ) -> Result<HistoryRead, BrokerError> {
        let subject = self.stream.subject(channel.as_str());
        let position = self.position(channel, &subject, policy);
        let last = within(self.timeout, "read the position", position).await?;
        // The oldest offset the route's `size` still keeps.
        let first = last
            .offset
            .saturating_sub(u64::from(policy.size))
            .saturating_add(1)
            .max(1);
        let entries = match after {
            Some(after)
                if after < last.offset
                    && after + 1 >= first
                    && last.offset - after <= max as u64 =>
            {
                // Bounded per direct get, not as a whole: a walk that
                // progresses goes on (at most `max` messages).
                let window = replay::Window {
                    channel,
                    subject: &subject,
                    after,
                    last_seq: last.seq,
                    last_offset: last.offset,
                    epoch: &last.epoch,
                    oldest_ms: now_ms() - i128::from(policy.ttl_s) * 1000,
                    max,
                    max_bytes: self.max_bytes,
                    timeout: self.timeout,
                };
                self.replay.read(&self.stream, window).await?
            }
            _ => Vec::new(),
        };
        Ok(HistoryRead {
            position: Position {
                epoch: last.epoch,
                offset: last.offset,
            },
            first,
            entries,
        })
    }

    /// The channel's live last position, or a marker stored to make one.
    async fn position(
        &self,
        channel: &ChannelName,
        subject: &str,
        policy: &HistoryConfig,
    ) -> Result<Last, BrokerError> {
        self.stream.ensure(policy).await?;
        let mut attempts = 0;
        let last = loop {
            let last = self.last(subject).await?;
            if let Some(live) = last.as_ref().filter(|l| l.live(policy, now_ms())) {
                break live.clone();
            }
            // No live position: a marker makes one that later publishes continue.
            let epoch = fresh_epoch();
            let marker = kept_envelope(&self.node, 0, &epoch, "null");
            match self.store(subject, marker, last.map_or(0, |l| l.seq)).await {
                Ok(seq) => {
                    let at_ms = now_ms();
                    break Last {
                        seq,
                        offset: 0,
                        epoch,
                        at_ms,
                    };
                }
                Err(Refused::Raced) if attempts < MAX_ATTEMPTS => attempts += 1,
                Err(Refused::Raced) => {
                    return Err(BrokerError::Unavailable(format!(
                        "JetStream: {channel} kept changing during its history read"
                    )));
                }
                Err(Refused::Failed(error)) => return Err(error),
            }
        };
        Ok(last)
    }
}
