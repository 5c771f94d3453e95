//! NATS side of interest tracking: one subscription (and one reader task)
//! per wanted topic.
//!
//! async-nats replays every live subscription after a reconnect by itself,
//! so nothing here reacts to reconnects. Dropping a subscription (aborting its
//! reader, which owns it) sends UNSUB; the aborted reader delivers nothing
//! more, so a quick unsubscribe+subscribe never delivers a message twice.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::Client;
use async_nats::connection::State;
use futures_util::StreamExt;
use tokio::task::JoinHandle;

use crate::broker::BrokerError;
use crate::broker::inbound::{Inbound, Route};
use crate::broker::interest::{Subscriptions, Topic};

/// How long a subscribe waits for the server to confirm it (PING/PONG).
const CONFIRM: Duration = Duration::from_secs(2);

/// See the module docs.
#[derive(Debug)]
pub struct NatsSubscriptions {
    client: Client,
    prefix: String,
    inbound: Inbound,
    readers: HashMap<Topic, JoinHandle<()>>,
}

impl NatsSubscriptions {
    pub fn new(client: Client, prefix: String, inbound: Inbound) -> Self {
        Self {
            client,
            prefix,
            inbound,
            readers: HashMap::new(),
        }
    }
}

/// The subject of `topic` under `prefix`.
pub fn subject(prefix: &str, topic: &Topic) -> String {
    match topic {
        Topic::Channel(channel) => format!("{prefix}.ch.{channel}"),
        Topic::User(user) => format!(
            "{prefix}.user.{}",
            crate::broker::envelope::user_token(user)
        ),
    }
}

/// Subscribes `subject` and delivers what arrives until the returned task is aborted.
pub async fn read(
    client: &Client,
    prefix: &str,
    subject: String,
    inbound: Inbound,
) -> Result<JoinHandle<()>, BrokerError> {
    let mut subscriber = client
        .subscribe(subject)
        .await
        .map_err(|e| BrokerError::Unavailable(e.to_string()))?;
    let strip = format!("{prefix}.");
    Ok(tokio::spawn(async move {
        while let Some(message) = subscriber.next().await {
            let route = message
                .subject
                .strip_prefix(strip.as_str())
                .and_then(|rest| Route::parse(rest, '.'));
            inbound.deliver(route, &message.payload);
        }
    }))
}

impl Subscriptions for NatsSubscriptions {
    async fn subscribe(&mut self, topic: &Topic) -> Result<(), BrokerError> {
        if self.readers.contains_key(topic) {
            return Ok(());
        }
        let subject = subject(&self.prefix, topic);
        let reader = read(&self.client, &self.prefix, subject, self.inbound.clone()).await?;
        self.readers.insert(topic.clone(), reader);
        if self.client.connection_state() == State::Connected {
            // The server answers PONG after it has processed our SUB: from
            // then on, every message published to the subject reaches us.
            let _ = tokio::time::timeout(CONFIRM, self.client.flush()).await;
        }
        Ok(())
    }

    async fn unsubscribe(&mut self, topic: &Topic) {
        if let Some(reader) = self.readers.remove(topic) {
            reader.abort();
        }
    }
}
