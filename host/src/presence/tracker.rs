//! This instance's side of presence: which of its connections are in which
//! presence channel, written to the broker's [`PresenceStore`], the join and
//! leave announcements that follow, and the heartbeat.
//!
//! Local state is the truth for this node: per (channel, member) the set of
//! local connections. A write sets the store to that set's size (absolute,
//! so a re-write after the store lost the node is harmless), one write at a
//! time per key, repeated until the store matches. A failed write's outcome
//! is unknown (it may have landed, its reply lost): it stays pending with
//! its [`WriteId`] and count, and the next heartbeat retries exactly it
//! before any other write of the key, so the store answers with the change
//! it made (see [`PresenceStore::set`]) and its join or leave is announced
//! once. Delivery never waits on presence.
//! Sessions call [`Presence::join`] and [`Presence::leave`]; nothing here
//! touches sockets or the hub.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;

use super::{Beat, EventKind, Gone, HEARTBEAT, Member, PresenceStore, WriteId, event_data};
use crate::connections::ConnId;
use crate::metrics::Metrics;
use crate::plugin::PluginSet;
use crate::protocol::ChannelName;

type Key = (ChannelName, Member);

/// Store writes of this instance in flight at once. A burst (10,000
/// sockets closed together) waits here for its turn rather than sending
/// every write at once, where each waits on all the others and most run out
/// of `[broker] timeout_ms` (measured in `docs/benchmarks.md` §10: 9,871 of
/// 10,000 leave writes timed out on NATS, then were retried one heartbeat
/// later). The wait for a turn is not counted against the timeout.
pub const MAX_WRITES_IN_FLIGHT: usize = 64;

#[derive(Debug)]
struct Entry {
    conns: HashSet<ConnId>,
    /// What the store holds for this node; `None` when unknown.
    stored: Option<u32>,
    /// A write whose outcome is unknown, retried as it was before any other.
    pending: Option<Pending>,
    /// The connection that joined or left last (for the push).
    last: Option<ConnId>,
    join_leave: bool,
    /// One write at a time per key, in order.
    lock: Arc<tokio::sync::Mutex<()>>,
}

/// A write that failed: it may have landed.
#[derive(Debug, Clone, Copy)]
struct Pending {
    write: WriteId,
    count: u32,
    /// [`Presence::losses`] when it was first sent.
    losses: u64,
}

/// See the module docs.
#[derive(Debug)]
pub struct Presence {
    store: Arc<dyn PresenceStore>,
    metrics: Arc<Metrics>,
    local: Mutex<HashMap<Key, Entry>>,
    closed: AtomicBool,
    /// The last [`WriteId`] given out.
    writes: AtomicU64,
    /// How many times the store lost this node ([`Beat::Lost`]): a pending
    /// write from before a loss, once answered, is written again.
    losses: AtomicU64,
    /// Turns to write ([`MAX_WRITES_IN_FLIGHT`]).
    turns: tokio::sync::Semaphore,
}

impl Presence {
    /// Local presence written to `store`.
    pub fn new(store: Arc<dyn PresenceStore>, metrics: Arc<Metrics>) -> Self {
        Self {
            store,
            metrics,
            local: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
            writes: AtomicU64::new(0),
            losses: AtomicU64::new(0),
            turns: tokio::sync::Semaphore::new(MAX_WRITES_IN_FLIGHT),
        }
    }

    /// The store, for queries.
    pub fn store(&self) -> &dyn PresenceStore {
        self.store.as_ref()
    }

    /// `conn` of `user` (`None`: anonymous) joined `channel`, a presence
    /// channel (`join_leave`: its route announces joins and leaves).
    /// Resolves once the store holds it, or the write failed (retried on the
    /// next heartbeat).
    pub async fn join(
        &self,
        channel: &ChannelName,
        user: Option<&str>,
        conn: &ConnId,
        join_leave: bool,
    ) {
        let key = (channel.clone(), Member::of(user));
        {
            let mut local = self.local.lock();
            let entry = local.entry(key.clone()).or_insert_with(|| Entry {
                conns: HashSet::new(),
                stored: Some(0),
                pending: None,
                last: None,
                join_leave,
                lock: Arc::default(),
            });
            entry.conns.insert(Arc::clone(conn));
            entry.last = Some(Arc::clone(conn));
            entry.join_leave = join_leave;
        }
        self.sync(&key).await;
    }

    /// `conn` of `user` left `channel`; a no-op unless it had joined it as
    /// a presence channel. The store is written in the background.
    pub fn leave(self: &Arc<Self>, channel: &ChannelName, user: Option<&str>, conn: &ConnId) {
        let key = (channel.clone(), Member::of(user));
        {
            let mut local = self.local.lock();
            let Some(entry) = local.get_mut(&key) else {
                return;
            };
            if !entry.conns.remove(conn) {
                return;
            }
            entry.last = Some(Arc::clone(conn));
        }
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        let presence = Arc::clone(self);
        tokio::spawn(async move { presence.sync(&key).await });
    }

    /// Writes `key`'s local count until the store holds it, announcing the
    /// join or leave the write caused.
    async fn sync(&self, key: &Key) {
        let Some(lock) = self.local.lock().get(key).map(|e| Arc::clone(&e.lock)) else {
            return;
        };
        let _turn = lock.lock().await;
        loop {
            if self.closed.load(Ordering::Acquire) {
                return;
            }
            let (write, last, join_leave) = {
                let mut local = self.local.lock();
                let Some(entry) = local.get(key) else { return };
                let write = match entry.pending {
                    Some(pending) => pending,
                    None => {
                        let count = u32::try_from(entry.conns.len()).unwrap_or(u32::MAX);
                        if entry.stored == Some(count) {
                            // Forget an empty key unless another write waits on it.
                            if count == 0 && Arc::strong_count(&entry.lock) == 2 {
                                local.remove(key);
                            }
                            self.count_entries(&local);
                            return;
                        }
                        Pending {
                            write: self.writes.fetch_add(1, Ordering::Relaxed) + 1,
                            count,
                            losses: self.losses.load(Ordering::Acquire),
                        }
                    }
                };
                (write, entry.last.clone(), entry.join_leave)
            };
            let (channel, member) = key;
            let result = {
                let Ok(_turn) = self.turns.acquire().await else {
                    return;
                };
                self.store
                    .set(channel, member, write.count, write.write)
                    .await
            };
            let change = {
                let mut local = self.local.lock();
                let Some(entry) = local.get_mut(key) else {
                    return;
                };
                match result {
                    Ok(change) => {
                        entry.pending = None;
                        // Lost since it was sent: whatever it did, the
                        // store no longer holds it.
                        let kept = write.losses == self.losses.load(Ordering::Acquire);
                        entry.stored = kept.then_some(write.count);
                        change
                    }
                    Err(error) => {
                        entry.pending = Some(write);
                        self.metrics.presence.write_failures.inc();
                        tracing::warn!(%channel, %error, "presence write failed or its answer was lost; retried as it was at the next heartbeat");
                        return;
                    }
                }
            };
            self.metrics.presence.writes.inc();
            let Some(user) = member.user() else { continue };
            if !join_leave {
                continue;
            }
            if change.before == 0 && change.after > 0 {
                let data = event_data(user, last.as_deref());
                self.announce(channel, EventKind::Join, &data).await;
            } else if change.before > 0 && change.after == 0 {
                let data = event_data(user, last.as_deref());
                self.announce(channel, EventKind::Leave, &data).await;
            }
        }
    }

    fn count_entries(&self, local: &HashMap<Key, Entry>) {
        let held = local.values().filter(|e| !e.conns.is_empty()).count();
        self.metrics.presence.entries.set(held as i64);
    }

    async fn announce(&self, channel: &ChannelName, kind: EventKind, data: &str) {
        match self.store.announce(channel, kind, data).await {
            Ok(()) => self.metrics.presence.event_sent(kind),
            Err(error) => {
                self.metrics.presence.event_failures.inc();
                tracing::warn!(%channel, %error, kind = kind.as_str(), "presence event not sent");
            }
        }
    }

    /// Announces the leaves of users removed with a node, on channels whose
    /// route (in `plugins`) has `join_leave`.
    async fn announce_gone(&self, gone: Vec<Gone>, plugins: &PluginSet) {
        for Gone { channel, user } in gone {
            if plugins.route_for(&channel).is_some_and(|r| r.join_leave) {
                self.announce(&channel, EventKind::Leave, &event_data(&user, None))
                    .await;
            }
        }
    }

    /// One heartbeat: refresh liveness (re-writing everything if the node
    /// was lost), retry dirty keys, sweep dead nodes.
    pub async fn beat(&self, plugins: &PluginSet) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        match self.store.heartbeat().await {
            Ok(beat) => {
                self.metrics.presence.heartbeats.inc();
                if beat == Beat::Lost {
                    tracing::warn!(
                        "this instance's presence entries were lost; writing them again"
                    );
                    self.losses.fetch_add(1, Ordering::AcqRel);
                    for entry in self.local.lock().values_mut() {
                        entry.stored = None;
                    }
                }
            }
            Err(error) => {
                self.metrics.presence.heartbeat_failures.inc();
                tracing::warn!(%error, "presence heartbeat failed");
                return;
            }
        }
        let dirty: Vec<Key> = self
            .local
            .lock()
            .iter()
            .filter(|(_, e)| e.pending.is_some() || e.stored != u32::try_from(e.conns.len()).ok())
            .map(|(key, _)| key.clone())
            .collect();
        futures_util::StreamExt::for_each_concurrent(
            futures_util::stream::iter(dirty),
            MAX_WRITES_IN_FLIGHT,
            |key| async move { self.sync(&key).await },
        )
        .await;
        match self.store.sweep().await {
            Ok(gone) => self.announce_gone(gone, plugins).await,
            Err(error) => tracing::warn!(%error, "presence sweep failed"),
        }
    }

    /// Removes this node's entries from the store at once (a clean drain)
    /// and announces the leaves; later joins and leaves write nothing.
    pub async fn drain(&self, plugins: &PluginSet) {
        self.closed.store(true, Ordering::Release);
        match self.store.remove_node().await {
            Ok(gone) => self.announce_gone(gone, plugins).await,
            Err(error) => {
                tracing::warn!(%error, "presence entries not removed at drain; they expire")
            }
        }
        self.local.lock().clear();
        self.metrics.presence.entries.set(0);
    }
}

/// Runs [`Presence::beat`] every [`HEARTBEAT`] until the gateway is gone.
pub async fn heartbeat(gateway: std::sync::Weak<crate::gateway::Gateway>) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(gateway) = gateway.upgrade() else {
            return;
        };
        let plugins = gateway.plugins.current();
        gateway.presence.beat(&plugins).await;
    }
}
