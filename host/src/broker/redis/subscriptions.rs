//! Redis side of interest tracking: SUBSCRIBE (or SSUBSCRIBE, sharded pub/sub,
//! on a Redis Cluster) per wanted topic, on the dedicated subscriber client.
//!
//! fred resolves a SUBSCRIBE once it is *written* (its replies arrive out of
//! band, `Command::has_no_responses`), which proves nothing; so a batch of
//! SUBSCRIBEs is confirmed by a PING on the same connection, whose reply
//! Redis sends only after it has processed them. fred does wait for the
//! reply to an SSUBSCRIBE (to follow cluster redirections).
//!
//! A Redis connection forgets its subscriptions when it drops; the broker asks
//! for a resubscribe after every reconnect ([`Work::Resubscribe`]
//! (crate::broker::interest::Work)), and this type then subscribes again.
//! While disconnected, a subscribe fails (and is retried), never confirmed.

use std::time::Duration;

use futures_util::future::try_join_all;

use fred::prelude::{Client, ClientLike, PubsubInterface, Value};

use crate::broker::BrokerError;
use crate::broker::envelope;
use crate::broker::interest::{Subscriptions, Topic};

/// See the module docs.
#[derive(Debug)]
pub struct RedisSubscriptions {
    client: Client,
    prefix: String,
    sharded: bool,
    /// Longest wait for the server's replies (`[broker] timeout_ms`).
    confirm: Duration,
}

impl RedisSubscriptions {
    /// Subscriptions on `client` under `prefix`, confirmed within `confirm`.
    pub fn new(client: Client, prefix: String, sharded: bool, confirm: Duration) -> Self {
        Self {
            client,
            prefix,
            sharded,
            confirm,
        }
    }
}

/// The Redis channel of `topic` under `prefix`.
pub fn channel(prefix: &str, topic: &Topic) -> String {
    match topic {
        Topic::Channel(channel) => format!("{prefix}:ch:{channel}"),
        Topic::User(user) => format!("{prefix}:user:{}", envelope::user_token(user)),
    }
}

fn failed(e: impl std::fmt::Display) -> BrokerError {
    BrokerError::Unavailable(format!("redis subscribe: {e}"))
}

impl Subscriptions for RedisSubscriptions {
    async fn subscribe(&mut self, topics: &[Topic]) -> Result<(), BrokerError> {
        if !self.client.is_connected() {
            return Err(failed("Redis is not connected"));
        }
        // One command per channel, all in flight at once.
        let client = &self.client;
        let sharded = self.sharded;
        let each = topics.iter().map(|topic| {
            let name = channel(&self.prefix, topic);
            async move {
                if sharded {
                    client.ssubscribe(name).await
                } else {
                    client.subscribe(name).await
                }
            }
        });
        let confirmed = async {
            try_join_all(each).await?;
            if !sharded {
                // Answered after every SUBSCRIBE above was processed.
                client.ping::<Value>(None).await?;
            }
            Ok::<_, fred::error::Error>(())
        };
        tokio::time::timeout(self.confirm, confirmed)
            .await
            .map_err(|_| failed(format!("no reply within {:?}", self.confirm)))?
            .map_err(failed)
    }

    async fn unsubscribe(&mut self, topic: &Topic) {
        let name = channel(&self.prefix, topic);
        let result = if self.sharded {
            tokio::time::timeout(self.confirm, self.client.sunsubscribe(name)).await
        } else {
            tokio::time::timeout(self.confirm, self.client.unsubscribe(name)).await
        };
        if !matches!(result, Ok(Ok(()))) {
            // A lost connection forgets the subscription anyway, and the
            // resubscribe after the reconnect only covers wanted topics.
            tracing::debug!(?topic, "redis unsubscribe did not complete");
        }
    }
}
