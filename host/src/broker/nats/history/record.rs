//! One stored history record: its envelope (one message, a batch, or a
//! position marker), reading a channel's last record back from the stream
//! leader, and storing one only if the channel's last stream sequence is
//! still the one expected.
//!
//! Owns the record format and the two JetStream calls; the retry loop, the
//! cache of last positions and the replay read are `history.rs`'s.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_nats::jetstream::context::{Publish, PublishErrorKind};
use async_nats::jetstream::stream::LastRawMessageErrorKind;

use super::NatsHistory;
use crate::broker::{BrokerError, envelope};
use crate::config::HistoryConfig;

/// A channel's newest stored message as this instance knows it.
#[derive(Debug, Clone)]
pub(super) struct Last {
    /// Its stream sequence.
    pub(super) seq: u64,
    /// The offset of its last message.
    pub(super) offset: u64,
    pub(super) epoch: Arc<str>,
    /// When JetStream stored it, in ms since the Unix epoch.
    pub(super) at_ms: i128,
}

impl Last {
    /// Whether it is younger than the route's `ttl_s` at `now_ms`.
    pub(super) fn live(&self, policy: &HistoryConfig, now_ms: i128) -> bool {
        now_ms - self.at_ms <= i128::from(policy.ttl_s) * 1000
    }
}

/// Why one store attempt did not keep the message.
pub(super) enum Refused {
    /// Another writer stored on the channel first.
    Raced,
    /// JetStream did not keep it.
    Failed(BrokerError),
}

impl NatsHistory {
    /// The channel's last stored message, from the stream leader; `None`
    /// when there is none. One that is not a kept envelope (a backend
    /// published to the subject without an offset) reads as an expired one:
    /// the next message starts a new epoch after it.
    pub(super) async fn last(&self, subject: &str) -> Result<Option<Last>, BrokerError> {
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
    pub(super) async fn store(
        &self,
        subject: &str,
        payload: String,
        expected: u64,
    ) -> Result<u64, Refused> {
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
pub(super) fn kept_record(node: &str, offset: u64, epoch: &str, data: &[String]) -> String {
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
pub(super) fn kept_envelope(node: &str, offset: u64, epoch: &str, data: &str) -> String {
    format!(
        r#"{{"ferrygate":{},"node":"{node}","offset":{offset},"epoch":"{epoch}","data":{data}}}"#,
        envelope::VERSION
    )
}

/// A new epoch: 16 random hex digits.
pub(super) fn fresh_epoch() -> Arc<str> {
    format!("{:016x}", rand::random::<u64>()).into()
}

/// Now, in ms since the Unix epoch (this host's clock; JetStream stamps
/// messages with the server's).
pub(super) fn now_ms() -> i128 {
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
