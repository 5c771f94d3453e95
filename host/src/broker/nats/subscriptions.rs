//! NATS side of interest tracking: one subscription (and one reader task)
//! per wanted topic, confirmed by one server round trip ([`Probe`]) per batch.
//!
//! async-nats replays every live subscription after a reconnect by itself,
//! so nothing here reacts to reconnects. Dropping a subscription (stopping its
//! reader, which owns it) sends UNSUB. A reader runs on its channel's lane,
//! another thread than this task's, and may be in the middle of a batch when
//! it is stopped: so it checks its stop token before every delivery, and a
//! stopped reader delivers nothing more, even before the abort lands. A quick
//! unsubscribe+subscribe therefore never delivers a message twice (the old
//! subscription may still receive it until its UNSUB reaches the server).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::Client;
use async_nats::connection::State;
use futures_util::StreamExt;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::broker::BrokerError;
use crate::broker::inbound::{Inbound, Route};
use crate::broker::interest::{Subscriptions, Topic};

use super::probe::Probe;

/// See the module docs.
#[derive(Debug)]
pub struct NatsSubscriptions {
    client: Client,
    prefix: String,
    inbound: Inbound,
    probe: Arc<Probe>,
    /// Longest wait for the confirming round trip (`[broker] timeout_ms`).
    confirm: Duration,
    readers: HashMap<Topic, Reader>,
}

/// A subject's reader task; [`Reader::stop`] ends it. Dropped unstopped, it
/// runs as long as the client.
#[derive(Debug)]
pub struct Reader {
    task: JoinHandle<()>,
    stop: CancellationToken,
}

impl Reader {
    /// Delivers nothing more from now on, and ends the task (UNSUB).
    pub fn stop(self) {
        self.stop.cancel();
        self.task.abort();
    }
}

impl NatsSubscriptions {
    /// Subscriptions on `client` under `prefix`, delivering into `inbound`,
    /// confirmed by `probe` within `confirm`.
    pub fn new(
        client: Client,
        prefix: String,
        inbound: Inbound,
        probe: Arc<Probe>,
        confirm: Duration,
    ) -> Self {
        Self {
            client,
            prefix,
            inbound,
            probe,
            confirm,
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

/// What picks the lane of `topic`'s reader (see `broker::lanes`).
pub fn lane_key(topic: &Topic) -> &str {
    match topic {
        Topic::Channel(channel) => channel.as_str(),
        Topic::User(user) => user.as_ref(),
    }
}

/// Subscribes `subject` and delivers what arrives until the returned task is
/// aborted. The reader runs on the lane of `key`, so that decoding and
/// fan-out happen on that worker, never on the accepting thread.
pub async fn read(
    client: &Client,
    prefix: &str,
    subject: String,
    key: &str,
    inbound: Inbound,
) -> Result<Reader, BrokerError> {
    let mut subscriber = client
        .subscribe(subject)
        .await
        .map_err(|e| BrokerError::Unavailable(e.to_string()))?;
    let strip = format!("{prefix}.");
    let lane = inbound.clone();
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let task = lane.spawn_on_lane(key, async move {
        while let Some(message) = subscriber.next().await {
            if stopped.is_cancelled() {
                return;
            }
            let route = message
                .subject
                .strip_prefix(strip.as_str())
                .and_then(|rest| Route::parse(rest, '.'));
            inbound.deliver(route, &message.payload);
        }
    });
    Ok(Reader { task, stop })
}

impl Subscriptions for NatsSubscriptions {
    async fn subscribe(&mut self, topics: &[Topic]) -> Result<(), BrokerError> {
        if self.client.connection_state() != State::Connected {
            return Err(BrokerError::Unavailable("NATS is not connected".to_owned()));
        }
        let mut added = Vec::with_capacity(topics.len());
        let mut result = Ok(());
        for topic in topics {
            if self.readers.contains_key(topic) {
                continue;
            }
            let subject = subject(&self.prefix, topic);
            let key = lane_key(topic);
            match read(
                &self.client,
                &self.prefix,
                subject,
                key,
                self.inbound.clone(),
            )
            .await
            {
                Ok(reader) => {
                    self.readers.insert(topic.clone(), reader);
                    added.push(topic);
                }
                Err(error) => {
                    result = Err(error);
                    break;
                }
            }
        }
        // The probe comes back only after the server processed every SUB above:
        // from then on, each message published to those subjects reaches us.
        if result.is_ok() {
            result = self.probe.round_trip(self.confirm).await;
        }
        if result.is_err() {
            // Unconfirmed: dropped (UNSUB), and made anew when retried.
            for topic in added {
                if let Some(reader) = self.readers.remove(topic) {
                    reader.stop();
                }
            }
        }
        result
    }

    async fn unsubscribe(&mut self, topic: &Topic) {
        if let Some(reader) = self.readers.remove(topic) {
            reader.stop();
        }
    }
}
