//! Ordered, pipelined publishing on the Redis command connection.
//!
//! A `PUBLISH` answers with a count, one round trip later. Waiting for it per
//! message would cap every client connection at one publish per round trip
//! (its reader waits for the ack), so publishes go through one queue to one
//! task, which sends whatever has queued up as one pipeline and waits for
//! the answers while the next batch gathers. One task and one connection keep
//! the order; the bounded queue pushes back on publishers when Redis falls
//! behind. A publish is thus acked once queued, as with NATS; a later
//! failure is counted in `ferrygate_broker_publish_failures_total{reason="error"}`.
//! rpc requests, which need the count, do not come through here.

use std::sync::Arc;

use fred::prelude::{Client, PubsubInterface};
use tokio::sync::mpsc;

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

/// The queue's sending end.
#[derive(Debug, Clone)]
pub struct Publisher {
    queue: mpsc::Sender<Outgoing>,
}

impl Publisher {
    /// Starts the task that publishes on `client`.
    pub fn spawn(client: Client, metrics: Arc<Metrics>) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(client, rx, metrics));
        Self { queue }
    }

    /// Queues `message`; waits only while the queue is full.
    pub async fn publish(&self, message: Outgoing) -> Result<(), BrokerError> {
        self.queue
            .send(message)
            .await
            .map_err(|_| BrokerError::Unavailable("the Redis publisher has stopped".to_owned()))
    }
}

async fn run(client: Client, mut queue: mpsc::Receiver<Outgoing>, metrics: Arc<Metrics>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
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
}
