//! Ordered, pipelined publishing on the Redis command connection.
//!
//! A `PUBLISH` answers with a count, one round trip later. Waiting for it per
//! message would cap every client connection at one publish per round trip
//! (its reader waits for the ack), so publishes go through one queue to one
//! task, which sends whatever has queued up as one pipeline and waits for
//! the answers while the next batch gathers. One task and one connection keep
//! the order; the bounded queue pushes back on publishers when Redis falls
//! behind, and a publish that cannot be queued within `[broker] timeout_ms`
//! is refused. A publish is thus acked once queued, as with NATS; a later
//! failure is counted in `ferrygate_broker_publish_failures_total{reason="error"}`.
//! [`Publisher::flush`] waits until everything queued before it was answered
//! (shutdown). rpc requests, which need the count, do not come through here.

use std::sync::Arc;
use std::time::Duration;

use fred::prelude::{Client, PubsubInterface};
use tokio::sync::{mpsc, oneshot};

use crate::broker::BrokerError;
use crate::metrics::{MessageKind, Metrics, PublishFailure};

/// Most publishes sent as one pipeline.
const MAX_BATCH: usize = 512;

/// Publishes waiting for the task; beyond it, publishers wait.
const QUEUE: usize = 8192;

/// One message to publish.
#[derive(Debug)]
pub struct Outgoing {
    /// Redis channel.
    pub channel: String,
    /// Envelope text.
    pub payload: String,
    /// `SPUBLISH` instead of `PUBLISH`.
    pub sharded: bool,
    /// For the `messages_out` counter.
    pub kind: MessageKind,
}

/// What the task takes from the queue.
#[derive(Debug)]
enum Item {
    Publish(Outgoing),
    /// Answered once every publish queued before it has been answered.
    Flush(oneshot::Sender<()>),
}

/// The queue's sending end.
#[derive(Debug, Clone)]
pub struct Publisher {
    queue: mpsc::Sender<Item>,
    metrics: Arc<Metrics>,
    /// Longest wait for room in the queue (`[broker] timeout_ms`).
    timeout: Duration,
}

impl Publisher {
    /// Starts the task that publishes on `client`.
    pub fn spawn(client: Client, metrics: Arc<Metrics>, timeout: Duration) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(client, rx, Arc::clone(&metrics)));
        Self {
            queue,
            metrics,
            timeout,
        }
    }

    /// Queues `message`; waits only while the queue is full, at most the timeout.
    pub async fn publish(&self, message: Outgoing) -> Result<(), BrokerError> {
        match self
            .queue
            .send_timeout(Item::Publish(message), self.timeout)
            .await
        {
            Ok(()) => Ok(()),
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                self.metrics.broker.publish_failed(PublishFailure::Timeout);
                Err(BrokerError::Unavailable(format!(
                    "Redis did not take the message within {:?}",
                    self.timeout
                )))
            }
            Err(mpsc::error::SendTimeoutError::Closed(_)) => Err(BrokerError::Unavailable(
                "the Redis publisher has stopped".to_owned(),
            )),
        }
    }

    /// Waits, at most `limit`, until every publish queued so far was answered by Redis.
    pub async fn flush(&self, limit: Duration) -> Result<(), BrokerError> {
        let (tx, rx) = oneshot::channel();
        let flushed = tokio::time::timeout(limit, async {
            self.queue.send(Item::Flush(tx)).await.ok()?;
            rx.await.ok()
        });
        match flushed.await {
            Ok(Some(())) => Ok(()),
            Ok(None) => Err(BrokerError::Unavailable(
                "the Redis publisher has stopped".to_owned(),
            )),
            Err(_) => Err(BrokerError::Unavailable(format!(
                "Redis did not answer every publish within {limit:?}"
            ))),
        }
    }
}

async fn run(client: Client, mut queue: mpsc::Receiver<Item>, metrics: Arc<Metrics>) {
    let mut items = Vec::with_capacity(MAX_BATCH);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut flushes = Vec::new();
    while queue.recv_many(&mut items, MAX_BATCH).await > 0 {
        for item in items.drain(..) {
            match item {
                Item::Publish(message) => batch.push(message),
                Item::Flush(done) => flushes.push(done),
            }
        }
        send_batch(&client, &mut batch, &metrics).await;
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Sends `batch` as one pipeline and counts the answers.
async fn send_batch(client: &Client, batch: &mut Vec<Outgoing>, metrics: &Metrics) {
    if batch.is_empty() {
        return;
    }
    let pipeline = client.pipeline();
    let mut kinds = Vec::with_capacity(batch.len());
    for message in batch.drain(..) {
        // Queuing into a pipeline only buffers the command in memory.
        let queued: Result<(), _> = if message.sharded {
            pipeline.spublish(message.channel, message.payload).await
        } else {
            pipeline.publish(message.channel, message.payload).await
        };
        match queued {
            Ok(()) => kinds.push(message.kind),
            Err(_) => metrics.broker.publish_failed(PublishFailure::Error),
        }
    }
    let results = pipeline.try_all::<i64>().await;
    for (index, result) in results.iter().enumerate() {
        match (result, kinds.get(index)) {
            (Ok(_), Some(kind)) => metrics.broker.sent(*kind),
            (Ok(_), None) => {}
            (Err(error), _) => {
                metrics.broker.publish_failed(PublishFailure::Error);
                tracing::debug!(%error, "redis publish failed");
            }
        }
    }
}
