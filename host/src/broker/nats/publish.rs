//! What this instance sends on NATS: a message in its envelope (with the
//! failure it met counted), the admission before it, and the history
//! appends of `publish_kept_batch` (records sized to the server's
//! `max_payload`, each within `[broker] timeout_ms`).
//!
//! Owns no state: the client, limits and metrics are [`NatsBroker`]'s; what
//! a record holds and how offsets are agreed is [`super::history`]'s.

use std::time::Duration;

use async_nats::client::PublishErrorKind;

use super::{NatsBroker, unavailable};
use crate::broker::{Broker, BrokerError, envelope};
use crate::config::HistoryConfig;
use crate::history::Position;
use crate::metrics::{MessageKind, PublishFailure};
use crate::protocol::ChannelName;

impl NatsBroker {
    /// Publishes `data` in its envelope on `subject` within `[broker]
    /// timeout_ms`, counting it as `kind` (or the failure).
    pub(super) async fn publish_envelope(
        &self,
        subject: String,
        data: &str,
        kind: MessageKind,
    ) -> Result<(), BrokerError> {
        let payload = envelope::encode(&self.node, data);
        let published =
            tokio::time::timeout(self.timeout, self.client.publish(subject, payload.into()));
        match published.await {
            Ok(Ok(())) => {
                self.metrics.broker.sent(kind);
                Ok(())
            }
            Ok(Err(e)) if e.kind() == PublishErrorKind::MaxPayloadExceeded => {
                self.metrics.broker.publish_failed(PublishFailure::TooLarge);
                Err(BrokerError::TooLarge {
                    size: data.len(),
                    limit: self
                        .client
                        .server_info()
                        .max_payload
                        .saturating_sub(envelope::overhead(&self.node)),
                })
            }
            Ok(Err(e)) => {
                self.metrics.broker.publish_failed(PublishFailure::Error);
                Err(BrokerError::Unavailable(e.to_string()))
            }
            Err(_) => {
                self.metrics.broker.publish_failed(PublishFailure::Timeout);
                Err(BrokerError::Unavailable(format!(
                    "NATS did not take the message within {:?}",
                    self.timeout
                )))
            }
        }
    }

    /// Refuses `data` before any work: too large, or the broker away.
    pub(super) fn admit(&self, data: &str) -> Result<(), BrokerError> {
        self.fits(data)?;
        if !self.is_connected() {
            self.metrics
                .broker
                .publish_failed(PublishFailure::Disconnected);
            return Err(unavailable());
        }
        Ok(())
    }

    /// Keeps `data` as few records as fit, in order; each message's
    /// outcome. A refused record refuses the rest of the batch with it.
    pub(super) async fn keep_batch(
        &self,
        channel: &ChannelName,
        data: &[String],
        policy: &HistoryConfig,
    ) -> Vec<Result<Position, BrokerError>> {
        // Records of at most half the server's max_payload (with the
        // default 1 MiB, the appender's whole batch is one record).
        let room = self.client.server_info().max_payload / 2;
        let mut outcomes = Vec::with_capacity(data.len());
        let mut rest = data;
        while !rest.is_empty() {
            let mut take = 1;
            let mut bytes = rest[0].len();
            while take < rest.len() && bytes + rest[take].len() < room {
                bytes += rest[take].len() + 1;
                take += 1;
            }
            let kept = self.keep(channel, &rest[..take], policy).await;
            let failed = kept.is_err();
            outcomes.extend(crate::history::appender::spread(kept, take));
            rest = &rest[take..];
            if failed {
                // Not tried: a refused record (the store away, most
                // likely) refuses the rest of the batch with it.
                let why = "an earlier message of the batch was not kept";
                outcomes.extend(
                    rest.iter()
                        .map(|_| Err(BrokerError::Unavailable(why.to_owned()))),
                );
                break;
            }
        }
        outcomes
    }
}

impl NatsBroker {
    /// Keeps `data` (one or more messages) in `channel`'s history as one
    /// record; the position of the last one. No local-only fallback: a
    /// message history cannot keep is refused, and all of `data` with it.
    pub(super) async fn keep(
        &self,
        channel: &ChannelName,
        data: &[String],
        policy: &HistoryConfig,
    ) -> Result<Position, BrokerError> {
        for one in data {
            self.admit(one)?;
            self.limit.check_kept(one)?;
        }
        let append = self.history.append(channel, data, policy);
        let kept = within(self.timeout, "keep the message", append).await;
        match &kept {
            Ok(_) => self.metrics.broker.sent(MessageKind::Channel),
            Err(_) => self.metrics.broker.publish_failed(PublishFailure::Error),
        }
        kept
    }
}

/// `work` within `limit`, else `unavailable` saying that JetStream did not `what`.
pub(super) async fn within<T>(
    limit: Duration,
    what: &str,
    work: impl Future<Output = Result<T, BrokerError>>,
) -> Result<T, BrokerError> {
    tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
        Err(BrokerError::Unavailable(format!(
            "JetStream did not {what} within {limit:?}"
        )))
    })
}
