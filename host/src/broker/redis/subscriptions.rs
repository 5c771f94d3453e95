//! Redis side of interest tracking: SUBSCRIBE (or SSUBSCRIBE, sharded pub/sub,
//! on a Redis Cluster) per wanted topic, on the dedicated subscriber client.
//!
//! A Redis connection forgets its subscriptions when it drops; the broker asks
//! for a resubscribe after every reconnect ([`Work::Resubscribe`]
//! (crate::broker::interest::Work)), and this type then subscribes again.
//! While disconnected, a subscribe is only recorded: the resubscribe does it.

use std::time::Duration;

use fred::prelude::{Client, ClientLike, PubsubInterface};

use crate::broker::BrokerError;
use crate::broker::envelope;
use crate::broker::interest::{Subscriptions, Topic};

/// How long one SUBSCRIBE waits for the server's confirmation.
const CONFIRM: Duration = Duration::from_secs(2);

/// See the module docs.
#[derive(Debug)]
pub struct RedisSubscriptions {
    client: Client,
    prefix: String,
    sharded: bool,
}

impl RedisSubscriptions {
    pub fn new(client: Client, prefix: String, sharded: bool) -> Self {
        Self {
            client,
            prefix,
            sharded,
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
    async fn subscribe(&mut self, topic: &Topic) -> Result<(), BrokerError> {
        if !self.client.is_connected() {
            return Ok(());
        }
        let name = channel(&self.prefix, topic);
        let subscribed = if self.sharded {
            tokio::time::timeout(CONFIRM, self.client.ssubscribe(name)).await
        } else {
            tokio::time::timeout(CONFIRM, self.client.subscribe(name)).await
        };
        subscribed.map_err(failed)?.map_err(failed)
    }

    async fn unsubscribe(&mut self, topic: &Topic) {
        let name = channel(&self.prefix, topic);
        let result = if self.sharded {
            tokio::time::timeout(CONFIRM, self.client.sunsubscribe(name)).await
        } else {
            tokio::time::timeout(CONFIRM, self.client.unsubscribe(name)).await
        };
        if !matches!(result, Ok(Ok(()))) {
            // A lost connection forgets the subscription anyway, and the
            // resubscribe after the reconnect only covers active topics.
            tracing::debug!(?topic, "redis unsubscribe did not complete");
        }
    }
}
