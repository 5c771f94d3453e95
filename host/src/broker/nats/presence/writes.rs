//! Compare-and-set writes of the `u.C.U` keys whose answer can be lost and
//! still be known. Each write is a JetStream publish with the key's
//! expected revision and a `Nats-Msg-Id`; the change it makes (the user's
//! total before and after) is computed from the revision it is conditional
//! on, so if it lands, that change is exact. When its acknowledgement does
//! not arrive (a timeout: it may have landed), the publish is remembered as
//! sent, and the retry (the same [`WriteId`]) sends the very same message
//! again: the stream's duplicate window (2 min, `WRITE_MEMORY`) answers
//! "duplicate" if the first one landed, the revision check lets it land
//! now if nothing changed since, and refuses it (a fresh read follows) if
//! it did not land and the key moved on. In each case the change is counted
//! once, so the join or leave it causes is announced once.
//!
//! Owns the sent-but-unanswered writes and the publish itself; which key,
//! what change and when are `presence.rs`'s.

use std::collections::HashMap;

use async_nats::HeaderMap;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::kv::Operation;
use bytes::Bytes;
use parking_lot::Mutex;

use super::{Bucket, MAX_CAS_ATTEMPTS, NatsPresence, Nodes, unavailable};
use crate::broker::BrokerError;
use crate::presence::{Change, WriteId};

/// One compare-and-set as sent.
#[derive(Debug, Clone)]
struct Sent {
    write: WriteId,
    msg_id: String,
    key: String,
    /// The revision it is conditional on (0: the key must not exist).
    revision: u64,
    /// The new node map; `None` deletes the key.
    value: Option<Bytes>,
    change: Change,
}

/// Writes sent whose acknowledgement did not arrive, by slot (the key, or
/// the key and the node a sweep removes from it). At most one per slot:
/// their callers retry it before any other write of the slot.
#[derive(Debug, Default)]
pub(super) struct Unanswered {
    sent: Mutex<HashMap<String, Sent>>,
}

impl Unanswered {
    /// Forgets every write (the node's entries were removed).
    pub(super) fn clear(&self) {
        self.sent.lock().clear();
    }
}

/// Applies `change` to the node map of `key` by compare-and-set, as write
/// `write` of `slot` by `node`; returns the user's total before and after.
/// An error leaves the outcome unknown: call again with the same `slot` and
/// `write` to learn it.
pub(super) async fn update(
    bucket: &Bucket,
    unanswered: &Unanswered,
    (slot, write, node): (&str, WriteId, &str),
    key: &str,
    change: impl Fn(&mut Nodes),
) -> Result<Change, BrokerError> {
    let retry = unanswered
        .sent
        .lock()
        .get(slot)
        .filter(|sent| sent.write == write)
        .cloned();
    if let Some(sent) = retry {
        let landed = send(bucket, &sent).await?;
        unanswered.sent.lock().remove(slot);
        if landed {
            return Ok(sent.change);
        }
    }
    for attempt in 0..MAX_CAS_ATTEMPTS {
        let (mut nodes, revision, entry) = NatsPresence::read::<Nodes>(bucket, key).await?;
        let before: u64 = nodes.values().sum();
        change(&mut nodes);
        let after: u64 = nodes.values().sum();
        let live = entry.is_some_and(|e| e.operation == Operation::Put);
        if nodes.is_empty() && !live {
            return Ok(Change { before, after });
        }
        let value = (!nodes.is_empty())
            .then(|| Bytes::from(serde_json::to_vec(&nodes).unwrap_or_default()));
        let sent = Sent {
            write,
            // Unique in the stream (the duplicate window is the stream's).
            msg_id: format!("{node}.{write}.{attempt}.{revision}.{slot}"),
            key: key.to_owned(),
            revision,
            value,
            change: Change { before, after },
        };
        unanswered.sent.lock().insert(slot.to_owned(), sent.clone());
        let landed = send(bucket, &sent).await?;
        unanswered.sent.lock().remove(slot);
        if landed {
            return Ok(sent.change);
        }
    }
    Err(BrokerError::Unavailable(format!(
        "nats presence: {key} kept changing ({MAX_CAS_ATTEMPTS} attempts)"
    )))
}

/// Publishes `sent`: `true` when it landed (now, or earlier: a duplicate),
/// `false` when the key is no longer at its revision (it did not land). A
/// landed delete's marker is purged ([`super::cleanup`]).
async fn send(bucket: &Bucket, sent: &Sent) -> Result<bool, BrokerError> {
    let subject = format!("{}{}", bucket.subject_prefix, sent.key);
    let mut headers = HeaderMap::new();
    headers.insert(
        async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
        async_nats::HeaderValue::from(sent.revision),
    );
    headers.insert(async_nats::header::NATS_MESSAGE_ID, sent.msg_id.as_str());
    if sent.value.is_none() {
        headers.insert("KV-Operation", "DEL");
    }
    let payload = sent.value.clone().unwrap_or_default();
    let ack = bucket
        .js
        .publish_with_headers(subject.clone(), headers, payload)
        .await
        .map_err(|e| unavailable("write", e))?
        .await;
    match ack {
        Ok(ack) => {
            if sent.value.is_none() {
                super::cleanup::purge_through(bucket, subject, ack.sequence).await;
            }
            Ok(true)
        }
        Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => Ok(false),
        Err(e) => Err(unavailable("write", e)),
    }
}
