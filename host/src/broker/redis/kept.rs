//! History from the broker's side: appending a batch (one script call,
//! within `[broker] timeout_ms`, counted in the broker metrics) and reading
//! a channel's history within the same timeout; both refused `unavailable`
//! while Redis is not connected.
//!
//! Owns no state: the scripts and the key layout are [`super::history`]'s.

use super::RedisBroker;
use super::subscriptions;
use crate::broker::interest::Topic;
use crate::broker::{Broker, BrokerError};
use crate::config::HistoryConfig;
use crate::history::{HistoryRead, Position};
use crate::metrics::{MessageKind, PublishFailure};
use crate::protocol::ChannelName;

impl RedisBroker {
    /// Keeps `data` (one or more messages) in `channel`'s history, in one
    /// script call; the position of the last one. No local-only fallback: a
    /// message history cannot keep is refused, and all of `data` with it.
    pub(super) async fn keep(
        &self,
        channel: &ChannelName,
        data: &[String],
        policy: &HistoryConfig,
    ) -> Result<Position, BrokerError> {
        if !self.is_connected() {
            return Err(BrokerError::Unavailable(
                "Redis is not connected: the channel's history cannot keep the message".to_owned(),
            ));
        }
        for one in data {
            self.limit.check_kept(one)?;
        }
        let pubsub = subscriptions::channel(&self.prefix, &Topic::Channel(channel.clone()));
        let append = self
            .history
            .append(&self.commands, channel, pubsub, data, &self.node, policy);
        let kept = tokio::time::timeout(self.timeout, append)
            .await
            .unwrap_or_else(|_| {
                Err(BrokerError::Unavailable(format!(
                    "Redis did not keep the message within {:?}",
                    self.timeout
                )))
            });
        match &kept {
            Ok(_) => self.metrics.broker.sent(MessageKind::Channel),
            Err(_) => self.metrics.broker.publish_failed(PublishFailure::Error),
        }
        kept
    }

    /// One read of `channel`'s history ([`Broker::history`]).
    pub(super) async fn read_kept(
        &self,
        channel: &ChannelName,
        policy: &HistoryConfig,
        after: Option<u64>,
        max: usize,
    ) -> Result<HistoryRead, BrokerError> {
        if !self.is_connected() {
            return Err(BrokerError::Unavailable(
                "Redis is not connected: the channel's history cannot be read".to_owned(),
            ));
        }
        let read = self
            .history
            .read(&self.commands, channel, policy, after, max);
        tokio::time::timeout(self.timeout, read)
            .await
            .unwrap_or_else(|_| {
                Err(BrokerError::Unavailable(format!(
                    "Redis did not answer the history read within {:?}",
                    self.timeout
                )))
            })
    }
}
