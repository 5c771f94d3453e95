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
//! concurrent recoveries) is [`replay`]. Knows no hub and no session.

mod replay;
pub mod stream;

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_nats::jetstream::context::{Publish, PublishErrorKind};
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use parking_lot::Mutex;

use crate::broker::{BrokerError, envelope};
use crate::config::HistoryConfig;
use crate::history::{HistoryRead, Position};
use crate::protocol::ChannelName;

use super::publish::within;
use stream::HistoryStream;

/// Most tries of one append when other writers keep storing on the same
/// channel first; past it the publish is refused `unavailable` (nothing kept).
pub const MAX_ATTEMPTS: usize = 16;

/// Channels whose last position one stripe remembers; more are forgotten
/// (and read from JetStream again on their next publish).
const MAX_CACHED_PER_STRIPE: usize = 1024;

const STRIPES: usize = 64;

/// A channel's newest stored message as this instance knows it.
#[derive(Debug, Clone)]
struct Last {
    /// Its stream sequence.
    seq: u64,
    /// The offset of its last message.
    offset: u64,
    epoch: Arc<str>,
    /// When JetStream stored it, in ms since the Unix epoch.
    at_ms: i128,
}

impl Last {
    fn live(&self, policy: &HistoryConfig, now_ms: i128) -> bool {
        now_ms - self.at_ms <= i128::from(policy.ttl_s) * 1000
    }
}

/// Why one store attempt did not keep the message.
enum Refused {
    /// Another writer stored on the channel first.
    Raced,
    Failed(BrokerError),
}

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

    /// The channel's last stored message, from the stream leader; `None`
    /// when there is none. One that is not a kept envelope (a backend
    /// published to the subject without an offset) reads as an expired one:
    /// the next message starts a new epoch after it.
    async fn last(&self, subject: &str) -> Result<Option<Last>, BrokerError> {
        let stream = self
            .stream
            .js()
            .get_stream_no_info(self.stream.name())
            .await
            .map_err(|e| BrokerError::Unavailable(format!("JetStream: {e}")))?;
        let message = match stream.get_last_raw_message_by_subject(subject).await {
            Ok(message) => message,
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => return Ok(None),
            Err(e) => {
                self.stream.forget().await;
                return Err(BrokerError::Unavailable(format!(
                    "JetStream: cannot read the last message of {subject}: {e}"
                )));
            }
        };
        let at_ms = message.time.unix_timestamp_nanos() / 1_000_000;
        // A batch record's last offset is its first plus the messages after it.
        let at = envelope::decode(&message.payload, usize::MAX)
            .ok()
            .and_then(|decoded| {
                let (first, epoch) = decoded.at?;
                Some((first + decoded.more.len() as u64, epoch))
            });
        Ok(Some(match at {
            Some((offset, epoch)) => Last {
                seq: message.sequence,
                offset,
                epoch: epoch.into(),
                at_ms,
            },
            None => Last {
                seq: message.sequence,
                offset: 0,
                epoch: fresh_epoch(),
                at_ms: i128::MIN / 2,
            },
        }))
    }

    /// Stores `payload` on `subject` if the subject's last stream sequence is
    /// still `expected` (0: no message); the new message's sequence.
    async fn store(&self, subject: &str, payload: String, expected: u64) -> Result<u64, Refused> {
        let publish = Publish::build()
            .payload(payload.into())
            .expected_last_subject_sequence(expected);
        let failed = |e: &dyn std::fmt::Display| {
            Refused::Failed(BrokerError::Unavailable(format!(
                "JetStream did not keep the message: {e}"
            )))
        };
        let sent = self
            .stream
            .js()
            .send_publish(subject.to_owned(), publish)
            .await
            .map_err(|e| failed(&e))?;
        match sent.await {
            Ok(ack) => Ok(ack.sequence),
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => Err(Refused::Raced),
            Err(e) => {
                if e.kind() == PublishErrorKind::StreamNotFound {
                    self.stream.forget().await;
                }
                Err(failed(&e))
            }
        }
    }
}

/// The envelope a history record is stored as: one message at `offset`,
/// or (more than one) the `batch` at `offset` onwards.
fn kept_record(node: &str, offset: u64, epoch: &str, data: &[String]) -> String {
    match data {
        [one] => kept_envelope(node, offset, epoch, one),
        _ => format!(
            r#"{{"ferrygate":{},"node":"{node}","offset":{offset},"epoch":"{epoch}","batch":[{}]}}"#,
            envelope::VERSION,
            data.join(",")
        ),
    }
}

/// The envelope of one message (or of a position marker, `data` `null`).
fn kept_envelope(node: &str, offset: u64, epoch: &str, data: &str) -> String {
    format!(
        r#"{{"ferrygate":{},"node":"{node}","offset":{offset},"epoch":"{epoch}","data":{data}}}"#,
        envelope::VERSION
    )
}

/// A new epoch: 16 random hex digits.
fn fresh_epoch() -> Arc<str> {
    format!("{:016x}", rand::random::<u64>()).into()
}

/// Now, in ms since the Unix epoch (this host's clock; JetStream stamps
/// messages with the server's).
fn now_ms() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i128)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_envelopes_decode_with_their_position() {
        let text = kept_envelope("n1", 7, "e1", r#"{"a":1}"#);
        let decoded = envelope::decode(text.as_bytes(), 1000).expect("valid");
        assert_eq!(decoded.at, Some((7, "e1".to_owned())));
        assert_eq!(decoded.data, r#"{"a":1}"#);
        let data = ["1".to_owned(), r#"{"b":2}"#.to_owned()];
        let text = kept_record("n1", 7, "e1", &data);
        let decoded = envelope::decode(text.as_bytes(), 1000).expect("valid");
        assert_eq!(decoded.at, Some((7, "e1".to_owned())));
        assert_eq!((decoded.data, decoded.more), ("1", vec![r#"{"b":2}"#]));
        assert!(crate::history::is_epoch(&fresh_epoch()));
        let last = Last {
            seq: 1,
            offset: 1,
            epoch: "e".into(),
            at_ms: 0,
        };
        let policy = HistoryConfig { size: 1, ttl_s: 2 };
        assert!(last.live(&policy, 2000));
        assert!(!last.live(&policy, 2001));
    }
}
