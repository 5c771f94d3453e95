//! The per-channel appender: every message kept in a channel's history on
//! this instance goes through it, so that appends to one channel are in the
//! order they were enqueued and several wait for one store round trip.
//!
//! [`Appender::enqueue`] is synchronous: the caller's message has its place
//! in the channel's queue when it returns, and only the waiting for the
//! broker's answer is left (the returned [`Appended`]). While a channel's
//! append is in flight, later messages queue; when it completes, the queue's
//! head (at most [`MAX_BATCH`] messages and [`MAX_BATCH_BYTES`] of data, and
//! one route policy) goes to the broker in one
//! [`Broker::publish_kept_batch`]. One task per channel with work drains its
//! queue and ends when it is empty, so an idle channel costs nothing.
//!
//! Owns the queues only: storing, offsets and delivery are the broker's;
//! sessions bound how much each connection has in flight.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::Position;
use crate::broker::{Broker, BrokerError};
use crate::config::HistoryConfig;
use crate::metrics::Metrics;
use crate::protocol::ChannelName;

/// Most messages one broker append carries (one Redis script call, one
/// JetStream record).
pub const MAX_BATCH: usize = 64;

/// Most bytes of message data one broker append carries (a single message
/// larger than this goes alone). Well under NATS's default 1 MiB payload
/// limit, with room for the record's envelope.
pub const MAX_BATCH_BYTES: usize = 256 * 1024;

/// One message waiting for its append.
struct Pending {
    data: String,
    policy: HistoryConfig,
    done: oneshot::Sender<Result<Position, BrokerError>>,
}

/// The outcome of one enqueued message: its position once stored, or why not.
pub type Appended = oneshot::Receiver<Result<Position, BrokerError>>;

/// See the module docs.
pub struct Appender {
    broker: Arc<dyn Broker>,
    metrics: Arc<Metrics>,
    /// Channels with an append in flight, and what queued behind it.
    queues: Mutex<HashMap<ChannelName, VecDeque<Pending>>>,
}

impl std::fmt::Debug for Appender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appender")
            .field("channels", &self.queues.lock().len())
            .finish_non_exhaustive()
    }
}

impl Appender {
    /// An appender in front of `broker`, counting appends in `metrics`.
    pub fn new(broker: Arc<dyn Broker>, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            broker,
            metrics,
            queues: Mutex::new(HashMap::new()),
        })
    }

    /// Queues `data` (JSON text) as `channel`'s next message under `policy`;
    /// its place in the channel's order is fixed when this returns. Must be
    /// called within a tokio runtime (it may start the channel's drain task).
    pub fn enqueue(
        self: &Arc<Self>,
        channel: &ChannelName,
        data: String,
        policy: HistoryConfig,
    ) -> Appended {
        let (done, appended) = oneshot::channel();
        let pending = Pending { data, policy, done };
        let mut queues = self.queues.lock();
        if let Some(queue) = queues.get_mut(channel) {
            queue.push_back(pending);
            return appended;
        }
        queues.insert(channel.clone(), VecDeque::from([pending]));
        drop(queues);
        let this = Arc::clone(self);
        let channel = channel.clone();
        tokio::spawn(async move { this.drain(channel).await });
        appended
    }

    /// Appends `channel`'s queue batch by batch until it is empty, then
    /// forgets the channel.
    async fn drain(&self, channel: ChannelName) {
        // However this task ends (a panic, a runtime shut down), the channel
        // does not stay marked busy with nobody draining it: what is still
        // queued is dropped, and its publishers are answered `unavailable`.
        let mut forget = Forget {
            queues: &self.queues,
            channel: &channel,
            armed: true,
        };
        loop {
            let batch = {
                let mut queues = self.queues.lock();
                let Some(queue) = queues.get_mut(&channel) else {
                    forget.armed = false;
                    return;
                };
                if queue.is_empty() {
                    queues.remove(&channel);
                    // A later enqueue may start another drain at once: not ours to forget.
                    forget.armed = false;
                    return;
                }
                take_batch(queue)
            };
            self.append(&channel, batch).await;
        }
    }

    async fn append(&self, channel: &ChannelName, batch: Vec<Pending>) {
        let policy = batch[0].policy;
        let mut data = Vec::with_capacity(batch.len());
        let mut waiters = Vec::with_capacity(batch.len());
        for pending in batch {
            data.push(pending.data);
            waiters.push(pending.done);
        }
        let results = self
            .broker
            .publish_kept_batch(channel, &data, &policy)
            .await;
        let mut results = results.into_iter();
        for waiter in waiters {
            let result = results.next().unwrap_or_else(|| {
                Err(BrokerError::Unavailable(
                    "the broker answered fewer appends than it was given".to_owned(),
                ))
            });
            match &result {
                Ok(_) => {
                    self.metrics.history.appends.inc();
                }
                Err(_) => self.metrics.history.append_failed(),
            }
            // A waiter that went away (its connection closed) still had its
            // message kept; nobody is left to tell.
            let _ = waiter.send(result);
        }
    }
}

/// Forgets a channel's queue when its drain task ends.
struct Forget<'a> {
    queues: &'a Mutex<HashMap<ChannelName, VecDeque<Pending>>>,
    channel: &'a ChannelName,
    /// False once the task removed the queue itself.
    armed: bool,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.queues.lock().remove(self.channel);
        }
    }
}

/// The queue's head that goes in one append: at least one message, then
/// more while they share its policy and fit [`MAX_BATCH`] and [`MAX_BATCH_BYTES`].
fn take_batch(queue: &mut VecDeque<Pending>) -> Vec<Pending> {
    let mut batch: Vec<Pending> = Vec::new();
    let mut bytes = 0;
    while let Some(next) = queue.front() {
        if let Some(first) = batch.first()
            && (batch.len() >= MAX_BATCH
                || bytes + next.data.len() > MAX_BATCH_BYTES
                || next.policy != first.policy)
        {
            break;
        }
        bytes += next.data.len();
        batch.extend(queue.pop_front());
    }
    batch
}

/// Spreads one outcome for a whole batch of `count` messages whose last one
/// is at `last` to each message: positions `last - count + 1 ..= last`, or
/// the same error for all (none of them was kept).
pub fn spread(
    result: Result<Position, BrokerError>,
    count: usize,
) -> Vec<Result<Position, BrokerError>> {
    match result {
        Ok(last) => (0..count as u64)
            .rev()
            .map(|back| {
                Ok(Position {
                    epoch: Arc::clone(&last.epoch),
                    offset: last.offset.saturating_sub(back),
                })
            })
            .collect(),
        Err(error) => {
            let text = error.to_string();
            let mut all: Vec<_> = (1..count)
                .map(|_| Err(BrokerError::Unavailable(text.clone())))
                .collect();
            all.insert(0, Err(error));
            all
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(bytes: usize, size: u32) -> Pending {
        Pending {
            data: "x".repeat(bytes),
            policy: HistoryConfig { size, ttl_s: 60 },
            done: oneshot::channel().0,
        }
    }

    #[test]
    fn batches_stop_at_count_bytes_and_policy() {
        let mut queue: VecDeque<_> = (0..MAX_BATCH + 3).map(|_| pending(1, 10)).collect();
        assert_eq!(take_batch(&mut queue).len(), MAX_BATCH);
        assert_eq!(take_batch(&mut queue).len(), 3);
        let mut queue = VecDeque::from([
            pending(MAX_BATCH_BYTES + 1, 10),
            pending(MAX_BATCH_BYTES / 2, 10),
            pending(MAX_BATCH_BYTES / 2, 10),
            pending(1, 10),
            pending(1, 20),
        ]);
        assert_eq!(
            take_batch(&mut queue).len(),
            1,
            "an oversize one goes alone"
        );
        assert_eq!(take_batch(&mut queue).len(), 2, "bytes bound the batch");
        assert_eq!(
            take_batch(&mut queue).len(),
            1,
            "another policy starts another"
        );
        assert_eq!(take_batch(&mut queue).len(), 1);
        assert!(queue.is_empty());
    }

    #[test]
    fn one_outcome_spreads_over_the_batch() {
        let last = Position {
            epoch: "e".into(),
            offset: 7,
        };
        let offsets: Vec<u64> = spread(Ok(last), 3)
            .into_iter()
            .map(|r| r.expect("kept").offset)
            .collect();
        assert_eq!(offsets, [5, 6, 7]);
        let failed = spread(Err(BrokerError::Unavailable("down".into())), 2);
        assert_eq!(failed.len(), 2);
        assert!(failed.iter().all(Result::is_err));
    }
}
