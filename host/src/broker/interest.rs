//! Interest tracking: which broker subscriptions this instance wants, counted
//! per local subscriber, and which of them the broker has confirmed.
//!
//! Sessions call [`Interest::acquire`] / [`Interest::release`] (cheap, never
//! blocking). A count crossing 0↔1 queues the topic on an unbounded channel
//! that ONE task per broker consumes in order ([`reconcile`]); that task
//! compares the *current* wanted state with what it has subscribed and fixes
//! the difference. A quick unsubscribe+subscribe therefore ends subscribed,
//! whatever the interleaving: the last event for a topic is read after the
//! last change. This module never talks to a broker itself.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};

use super::BrokerError;
use crate::connections::UserId;
use crate::protocol::ChannelName;

/// Something an instance subscribes to on the broker on behalf of local clients.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// A channel some local connection subscribed to.
    Channel(ChannelName),
    /// A user with at least one local connection.
    User(UserId),
}

/// Work for the reconcile task.
#[derive(Debug)]
pub enum Work {
    /// The wanted state of this topic may have changed.
    Check(Topic),
    /// The broker connection was re-established without its subscriptions:
    /// subscribe again to everything active.
    Resubscribe,
}

/// See the module docs.
#[derive(Debug)]
pub struct Interest {
    state: Mutex<State>,
    work: mpsc::UnboundedSender<Work>,
    confirmed: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct State {
    wanted: HashMap<Topic, usize>,
    active: HashSet<Topic>,
}

/// How one broker subscribes and unsubscribes a topic.
pub trait Subscriptions: Send {
    /// Subscribes `topic`; resolves once the broker has it (or has queued it
    /// for its reconnect), or fails.
    fn subscribe(&mut self, topic: &Topic) -> impl Future<Output = Result<(), BrokerError>> + Send;
    /// Drops the subscription to `topic`.
    fn unsubscribe(&mut self, topic: &Topic) -> impl Future<Output = ()> + Send;
}

/// What the reconcile task does for one topic.
enum Decision {
    Subscribe,
    Unsubscribe,
    Keep,
}

/// A subscribe that failed is tried again after this long.
const RETRY: Duration = Duration::from_millis(500);

impl Interest {
    /// A tracker and the receiving end its reconcile task consumes.
    pub fn new() -> (Arc<Self>, mpsc::UnboundedReceiver<Work>) {
        let (work, rx) = mpsc::unbounded_channel();
        let interest = Self {
            state: Mutex::new(State::default()),
            work,
            confirmed: watch::Sender::new(0),
        };
        (Arc::new(interest), rx)
    }

    /// One more local subscriber of `topic`.
    pub fn acquire(&self, topic: Topic) {
        let mut state = self.state.lock();
        let count = state.wanted.entry(topic.clone()).or_insert(0);
        *count += 1;
        if *count == 1 {
            // Sent under the lock, so that events reach the task in change order.
            let _ = self.work.send(Work::Check(topic));
        }
    }

    /// One local subscriber of `topic` fewer.
    pub fn release(&self, topic: &Topic) {
        let mut state = self.state.lock();
        let Some(count) = state.wanted.get_mut(topic) else {
            return;
        };
        *count -= 1;
        if *count == 0 {
            state.wanted.remove(topic);
            let _ = self.work.send(Work::Check(topic.clone()));
        }
    }

    /// Asks the reconcile task to subscribe again to everything active.
    pub fn resubscribe(&self) {
        let _ = self.work.send(Work::Resubscribe);
    }

    /// Whether the broker has confirmed the subscription to `topic`.
    pub fn is_active(&self, topic: &Topic) -> bool {
        self.state.lock().active.contains(topic)
    }

    /// Waits until `topic` is confirmed, `connected()` turns false, or `limit` passes.
    pub async fn wait_active(&self, topic: &Topic, limit: Duration, connected: impl Fn() -> bool) {
        let mut changes = self.confirmed.subscribe();
        let wait = async {
            while !self.is_active(topic) && connected() {
                // Wakes on every confirmation; a lost broker is seen on the next one
                // or when the limit passes.
                if changes.changed().await.is_err() {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(limit, wait).await;
    }

    /// What the broker must do for `topic`. An unsubscribe is decided and
    /// marked inactive in one step under the lock: a subscriber arriving
    /// after it waits for the next subscribe instead of trusting a
    /// subscription that is about to go.
    fn decide(&self, topic: &Topic) -> Decision {
        let mut state = self.state.lock();
        let wanted = state.wanted.contains_key(topic);
        let active = state.active.contains(topic);
        if wanted && !active {
            Decision::Subscribe
        } else if !wanted && active {
            state.active.remove(topic);
            Decision::Unsubscribe
        } else {
            Decision::Keep
        }
    }

    fn set_active(&self, topic: &Topic) {
        self.state.lock().active.insert(topic.clone());
        self.confirmed.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn active(&self) -> Vec<Topic> {
        self.state.lock().active.iter().cloned().collect()
    }
}

/// The one task that makes the broker's subscriptions follow [`Interest`].
/// Ends when every sender is gone (the gateway was dropped).
pub async fn reconcile(
    interest: Arc<Interest>,
    mut work: mpsc::UnboundedReceiver<Work>,
    mut broker: impl Subscriptions,
    gauge: prometheus_client::metrics::gauge::Gauge,
) {
    while let Some(item) = work.recv().await {
        match item {
            Work::Check(topic) => match interest.decide(&topic) {
                Decision::Subscribe => match broker.subscribe(&topic).await {
                    Ok(()) => {
                        interest.set_active(&topic);
                        gauge.inc();
                    }
                    Err(error) => {
                        tracing::warn!(?topic, %error, "broker subscribe failed; retrying");
                        retry_later(&interest, Work::Check(topic));
                    }
                },
                Decision::Unsubscribe => {
                    broker.unsubscribe(&topic).await;
                    gauge.dec();
                }
                Decision::Keep => {}
            },
            Work::Resubscribe => {
                for topic in interest.active() {
                    if let Err(error) = broker.subscribe(&topic).await {
                        tracing::warn!(?topic, %error, "broker resubscribe failed; retrying");
                        retry_later(&interest, Work::Resubscribe);
                        break;
                    }
                }
            }
        }
    }
}

fn retry_later(interest: &Arc<Interest>, work: Work) {
    let sender = interest.work.clone();
    tokio::spawn(async move {
        tokio::time::sleep(RETRY).await;
        let _ = sender.send(work);
    });
}
