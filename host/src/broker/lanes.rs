//! Where broker messages are decoded and fanned out: one lane per worker
//! runtime, and every channel (user, connection) always on the same lane.
//!
//! A key (the channel name, user or connection id a message is routed by)
//! is hashed to one lane, so all of a channel's messages are handled on one
//! runtime, one after another, in the order the broker delivered them: per
//! channel order and exactly-once are those of the broker subscription, and
//! the hub's hold/floor logic sees them in that order. Different channels
//! spread over every worker. With no workers (tests, embedding) the lane is
//! the caller's runtime and delivery is inline, as before.
//!
//! Two ways onto a lane: NATS spawns each subject's reader task on its lane
//! ([`Lanes::spawn`]); Redis has one reader for every channel, which hands
//! each message to its lane's queue ([`Lanes::send`]), bounded so that a lane
//! that falls behind slows the reader (as delivery on the reader itself did)
//! instead of growing without bound. Owns no connection and decodes nothing.

use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use bytes::Bytes;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::inbound::{Inbound, Route};

/// Messages waiting in one lane's queue before the Redis reader waits.
pub const LANE_QUEUE: usize = 4096;

/// One broker message on its way to a lane: its parsed route and payload.
type Queued = (Option<Route>, Bytes);

/// See the module docs. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Lanes {
    lanes: Arc<[Lane]>,
}

#[derive(Debug)]
struct Lane {
    runtime: Handle,
    queue: mpsc::Sender<Queued>,
}

impl Lanes {
    /// One lane per runtime of `runtimes`, each delivering into `inbound`
    /// (empty: inline, on the caller's runtime).
    pub fn on(runtimes: &[Handle], inbound: &Inbound) -> Self {
        let lanes = runtimes
            .iter()
            .map(|runtime| {
                let (queue, messages) = mpsc::channel(LANE_QUEUE);
                runtime.spawn(drain(messages, inbound.clone()));
                Lane {
                    runtime: runtime.clone(),
                    queue,
                }
            })
            .collect();
        Self { lanes }
    }

    /// Whether messages are delivered inline, on the caller's runtime.
    pub fn is_inline(&self) -> bool {
        self.lanes.is_empty()
    }

    fn lane(&self, key: &str) -> Option<&Lane> {
        if self.lanes.is_empty() {
            return None;
        }
        // Fixed keys: the same channel maps to the same lane for the life
        // of the process (a reader replaced after a reconnect included).
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        let index = (hasher.finish() % self.lanes.len() as u64) as usize;
        self.lanes.get(index)
    }

    /// Runs `task` on the lane of `key` (inline: the caller's runtime).
    pub fn spawn<F>(&self, key: &str, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self.lane(key) {
            Some(lane) => lane.runtime.spawn(task),
            None => tokio::spawn(task),
        }
    }

    /// Hands one message to its lane's queue, waiting while the queue is
    /// full; inline, delivers it into `inbound` at once.
    pub async fn send(&self, inbound: &Inbound, route: Option<Route>, payload: Bytes) {
        let key = route.as_ref().map_or("", Route::key);
        match self.lane(key) {
            // A closed queue means its runtime is gone (process exit).
            Some(lane) => {
                let _ = lane.queue.send((route, payload)).await;
            }
            None => inbound.deliver(route, &payload),
        }
    }
}

/// A lane's consumer: delivers queued messages in order until every sender is gone.
async fn drain(mut messages: mpsc::Receiver<Queued>, inbound: Inbound) {
    let mut batch = Vec::with_capacity(64);
    while messages.recv_many(&mut batch, 64).await > 0 {
        for (route, payload) in batch.drain(..) {
            inbound.deliver(route, &payload);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use super::*;
    use crate::connections::Connections;
    use crate::hub::Hub;
    use crate::metrics::Metrics;

    fn inbound() -> Inbound {
        let metrics = Arc::new(Metrics::new());
        Inbound::new(
            Arc::new(Hub::new(Arc::clone(&metrics))),
            Arc::new(Connections::new(10, "node".into())),
            metrics,
            1024,
        )
    }

    #[tokio::test]
    async fn a_key_always_runs_on_one_worker_and_keys_spread_over_all() {
        let workers = crate::workers::Workers::start(2).expect("two runtimes");
        let lanes = Lanes::on(workers.handles(), &inbound());
        assert!(!lanes.is_inline());
        let mut threads: HashMap<String, BTreeSet<String>> = HashMap::new();
        for _ in 0..3 {
            for n in 0..32 {
                let key = format!("channel.{n}");
                let name = lanes
                    .spawn(&key, async {
                        std::thread::current().name().unwrap_or("?").to_owned()
                    })
                    .await
                    .expect("ran");
                assert!(name.starts_with("ferrygate-worker-"), "{name}");
                threads.entry(key).or_default().insert(name);
            }
        }
        assert!(threads.values().all(|names| names.len() == 1));
        let used: BTreeSet<&String> = threads.values().flatten().collect();
        assert_eq!(used.len(), 2, "32 keys use both workers");
    }
}
