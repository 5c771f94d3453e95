//! Interest tracking: which broker subscriptions this instance wants, counted
//! per local subscriber, and which of them the broker has confirmed.
//!
//! Sessions call [`Interest::acquire`] / [`Interest::release`] (cheap, never
//! blocking). A count crossing 0↔1 queues the topic on an unbounded channel
//! that ONE task per broker consumes in order ([`reconcile`]); that task
//! compares the *current* wanted state with what it has subscribed and fixes
//! the difference. A quick unsubscribe+subscribe therefore ends subscribed,
//! whatever the interleaving: the last event for a topic is read after the
//! last change. Subscribes that queue up together go to the broker as one
//! batch with one confirmation (a server round trip), and a topic counts as
//! active only after the broker confirmed it; a reconnect that loses the
//! broker's subscriptions ([`Interest::resubscribe`]) makes every topic
//! unconfirmed again until it is subscribed anew. This module never talks to
//! a broker itself.
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
    /// forget every confirmation and subscribe again to everything wanted.
    Resubscribe,
}

/// See the module docs.
#[derive(Debug)]
pub struct Interest {
    state: Mutex<State>,
    work: mpsc::UnboundedSender<Work>,
    confirmed: watch::Sender<u64>,
    /// Longest [`Interest::wait_active`] waits (`[broker] timeout_ms`).
    limit: Duration,
}

#[derive(Debug, Default)]
struct State {
    wanted: HashMap<Topic, usize>,
    active: HashSet<Topic>,
}

/// How one broker subscribes and unsubscribes topics.
pub trait Subscriptions: Send {
    /// Subscribes every topic of `topics` (distinct, none of them active);
    /// resolves `Ok` only once the broker has confirmed all of them (a message
    /// published from then on reaches this instance), or fails, leaving none
    /// of them to be relied on. Never `Ok` while disconnected.
    fn subscribe(
        &mut self,
        topics: &[Topic],
    ) -> impl Future<Output = Result<(), BrokerError>> + Send;
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

/// Most work items the reconcile task takes at once: subscribes among them
/// share one broker confirmation.
const MAX_BATCH: usize = 1024;

/// How often a waiting subscribe looks at the connection state, so that a
/// lost broker answers it before `timeout_ms` runs out.
const CONNECTED_POLL: Duration = Duration::from_millis(50);

impl Interest {
    /// A tracker whose waits last at most `limit`, and the receiving end its
    /// reconcile task consumes.
    pub fn new(limit: Duration) -> (Arc<Self>, mpsc::UnboundedReceiver<Work>) {
        let (work, rx) = mpsc::unbounded_channel();
        let interest = Self {
            state: Mutex::new(State::default()),
            work,
            confirmed: watch::Sender::new(0),
            limit,
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

    /// Tells the reconcile task that the broker lost every subscription (a
    /// new connection): each is unconfirmed until subscribed again.
    pub fn resubscribe(&self) {
        let _ = self.work.send(Work::Resubscribe);
    }

    /// Whether the broker has confirmed the subscription to `topic`.
    pub fn is_active(&self, topic: &Topic) -> bool {
        self.state.lock().active.contains(topic)
    }

    /// Waits until the broker confirmed `topic` (`Ok`), or fails with why
    /// not: `connected()` is false, or the limit given to [`Interest::new`] passed.
    pub async fn wait_active(
        &self,
        topic: &Topic,
        connected: impl Fn() -> bool,
    ) -> Result<(), &'static str> {
        // Subscribed before the first look, so no confirmation is missed.
        let mut changes = self.confirmed.subscribe();
        let wait = async {
            loop {
                if !connected() {
                    return Err("the broker is not connected");
                }
                if self.is_active(topic) {
                    return Ok(());
                }
                tokio::select! {
                    changed = changes.changed() => if changed.is_err() {
                        return Err("the broker layer stopped");
                    },
                    () = tokio::time::sleep(CONNECTED_POLL) => {}
                }
            }
        };
        tokio::time::timeout(self.limit, wait).await.unwrap_or(Err(
            "no confirmation from the broker within [broker] timeout_ms",
        ))
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

    /// Marks `topic` confirmed; if nobody wants it any more (released while
    /// it was being subscribed), queues it again so that it is dropped.
    fn confirm(&self, topic: &Topic) {
        let mut state = self.state.lock();
        state.active.insert(topic.clone());
        if !state.wanted.contains_key(topic) {
            let _ = self.work.send(Work::Check(topic.clone()));
        }
        drop(state);
        self.confirmed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Forgets every confirmation; returns how many there were and every
    /// wanted topic, to be subscribed again.
    fn forget_active(&self) -> (usize, Vec<Topic>) {
        let mut state = self.state.lock();
        let forgotten = state.active.len();
        state.active.clear();
        (forgotten, state.wanted.keys().cloned().collect())
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
    let mut items = Vec::with_capacity(MAX_BATCH);
    let mut batch: Vec<Topic> = Vec::new();
    // The topics in `batch`: a resubscribe after a reconnect checks every
    // wanted topic at once, and a scan of `batch` per topic would make that
    // quadratic in the number of channels.
    let mut batched: HashSet<Topic> = HashSet::new();
    while work.recv_many(&mut items, MAX_BATCH).await > 0 {
        let mut checks = Vec::with_capacity(items.len());
        for item in items.drain(..) {
            match item {
                Work::Check(topic) => checks.push(topic),
                Work::Resubscribe => {
                    let (forgotten, wanted) = interest.forget_active();
                    gauge.dec_by(i64::try_from(forgotten).unwrap_or(i64::MAX));
                    checks.extend(wanted);
                }
            }
        }
        for topic in checks {
            match interest.decide(&topic) {
                Decision::Subscribe if batched.insert(topic.clone()) => batch.push(topic),
                Decision::Subscribe | Decision::Keep => {}
                // In event order, so an unsubscribe goes out before a later subscribe.
                Decision::Unsubscribe => {
                    broker.unsubscribe(&topic).await;
                    gauge.dec();
                }
            }
        }
        if batch.is_empty() {
            continue;
        }
        batched.clear();
        match broker.subscribe(&batch).await {
            Ok(()) => {
                for topic in batch.drain(..) {
                    gauge.inc();
                    interest.confirm(&topic);
                }
            }
            Err(error) => {
                tracing::warn!(topics = batch.len(), %error, "broker subscribe failed; retrying");
                retry_later(&interest, batch.drain(..).map(Work::Check).collect());
            }
        }
    }
}

fn retry_later(interest: &Arc<Interest>, work: Vec<Work>) {
    let sender = interest.work.clone();
    tokio::spawn(async move {
        tokio::time::sleep(RETRY).await;
        for item in work {
            let _ = sender.send(item);
        }
    });
}
