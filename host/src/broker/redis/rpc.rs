//! Request/reply over Redis pub/sub, which has neither: the documented scheme.
//!
//! A request is published on `<prefix>:rpc:<method>` as the envelope plus a
//! `reply` key naming a fresh channel `<prefix>:reply:<node>:<n>` and the
//! caller's `conn` and `user` (absent when anonymous); a responder
//! publishes its answer (raw JSON or an envelope) there. Each instance has one
//! pattern subscription `<prefix>:reply:<node>:*`, so replies cost no
//! subscribe per request. PUBLISH returns how many subscribers took the
//! request: 0 means no responder. Owns the table of requests awaiting replies
//! and the broker's side of a call ([`RedisBroker::call`]: publish, then wait);
//! the reader hands the replies in.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use fred::prelude::PubsubInterface;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::{RedisBroker, unavailable};
use crate::broker::{Broker, BrokerError, Caller, RpcError};
use crate::metrics::{MessageKind, PublishFailure};
use crate::protocol::ChannelName;

impl RedisBroker {
    /// Asks the service behind `method` for `caller` and waits up to
    /// `timeout` for its reply (see the module docs).
    pub(super) async fn call(
        &self,
        method: &ChannelName,
        data: &str,
        caller: Caller<'_>,
        timeout: Duration,
    ) -> Result<String, RpcError> {
        if !self.is_connected() {
            return Err(unavailable().into());
        }
        let ticket = self.pending.open();
        let reply_to = format!("{}:reply:{}:{}", self.prefix, self.node, ticket.id);
        let channel = format!("{}:rpc:{method}", self.prefix);
        self.metrics.broker.sent(MessageKind::Rpc);
        let takers = self
            .publish_raw(channel, request(&self.node, &reply_to, caller, data), false)
            .await?;
        if takers == 0 {
            return Err(RpcError::NoResponders(method.clone()));
        }
        let mut ticket = ticket;
        match tokio::time::timeout(timeout, &mut ticket.reply).await {
            Ok(Ok(payload)) => self
                .inbound
                .check_reply(&payload)
                .map(str::to_owned)
                .map_err(|why| BrokerError::BadReply(why.as_str()).into()),
            Ok(Err(_)) | Err(_) => Err(RpcError::Timeout(timeout)),
        }
    }

    /// PUBLISH (or SPUBLISH when `sharded`) of `payload`; how many subscribers took it.
    async fn publish_raw(
        &self,
        channel: String,
        payload: String,
        sharded: bool,
    ) -> Result<i64, BrokerError> {
        let result = if sharded {
            tokio::time::timeout(
                self.timeout,
                self.commands.spublish::<i64, _, _>(channel, payload),
            )
            .await
        } else {
            tokio::time::timeout(
                self.timeout,
                self.commands.publish::<i64, _, _>(channel, payload),
            )
            .await
        };
        match result {
            Ok(Ok(takers)) => Ok(takers),
            Ok(Err(e)) => {
                self.metrics.broker.publish_failed(PublishFailure::Error);
                Err(BrokerError::Unavailable(format!("redis: {e}")))
            }
            Err(_) => {
                self.metrics.broker.publish_failed(PublishFailure::Timeout);
                Err(BrokerError::Unavailable(format!(
                    "Redis did not answer within {:?}",
                    self.timeout
                )))
            }
        }
    }
}

/// Requests in flight, by number.
#[derive(Debug, Default)]
pub struct Pending {
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, oneshot::Sender<Bytes>>>,
}

/// One request's place in [`Pending`]; removes itself when dropped
/// (answered, timed out, or abandoned by its caller).
#[derive(Debug)]
pub struct Ticket<'a> {
    pending: &'a Pending,
    /// The number in the reply channel name.
    pub id: u64,
    /// Resolves with the reply's payload.
    pub reply: oneshot::Receiver<Bytes>,
}

impl Pending {
    /// Registers a new request.
    pub fn open(&self) -> Ticket<'_> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().insert(id, tx);
        Ticket {
            pending: self,
            id,
            reply: rx,
        }
    }

    /// Hands a reply that arrived on `<prefix>:reply:<node>:<suffix>` to its
    /// request; false when none waits (late, or not ours).
    pub fn answer(&self, suffix: &str, payload: Bytes) -> bool {
        let Ok(id) = suffix.parse::<u64>() else {
            return false;
        };
        match self.waiting.lock().remove(&id) {
            Some(tx) => tx.send(payload).is_ok(),
            None => false,
        }
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.pending.waiting.lock().remove(&self.id);
    }
}

/// The request envelope: the usual one plus the reply channel and who calls.
/// `data` is JSON text, written as is.
pub fn request(node: &str, reply: &str, caller: Caller<'_>, data: &str) -> String {
    // Node ids, connection ids and reply channels are built from safe
    // characters only; a user id is any string, so it is JSON-escaped.
    let user = caller
        .user
        .map(|user| format!(r#","user":{}"#, serde_json::Value::from(user)))
        .unwrap_or_default();
    format!(
        r#"{{"ferrygate":{},"node":"{node}","reply":"{reply}","conn":"{}"{user},"data":{data}}}"#,
        crate::broker::envelope::VERSION,
        caller.conn,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replies_find_their_request_and_late_ones_are_dropped() {
        let pending = Pending::default();
        let mut first = pending.open();
        let second = pending.open();
        assert_ne!(first.id, second.id);
        assert!(pending.answer(&first.id.to_string(), Bytes::from_static(b"1")));
        assert_eq!(
            (&mut first.reply).await.ok(),
            Some(Bytes::from_static(b"1"))
        );
        let late = second.id.to_string();
        drop(second);
        assert!(
            !pending.answer(&late, Bytes::from_static(b"2")),
            "timed-out request is gone"
        );
        assert!(!pending.answer("not-a-number", Bytes::new()));
        assert!(pending.waiting.lock().is_empty());
    }

    #[test]
    fn request_envelope_is_json_with_reply_channel_and_caller() {
        let caller = Caller {
            user: Some(r#"al"ice\"#),
            conn: "node1.2a",
        };
        let text = request("node1", "p:reply:node1:7", caller, r#"{"id":1}"#);
        let value: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(value["reply"], "p:reply:node1:7");
        assert_eq!(value["data"]["id"], 1);
        assert_eq!(value["ferrygate"], 1);
        assert_eq!(value["conn"], "node1.2a");
        assert_eq!(value["user"], r#"al"ice\"#);
        let anonymous = Caller {
            user: None,
            conn: "node1.2b",
        };
        let text = request("node1", "p:reply:node1:8", anonymous, "null");
        let value: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert!(value.get("user").is_none(), "{value}");
        assert_eq!(value["data"], serde_json::Value::Null);
    }
}
