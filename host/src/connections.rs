//! Every live WebSocket session of this instance, by connection id and by user.
//!
//! Owns admission (`max_connections`), the lookup that direct messages
//! (`/v1/send`) use, and the drain that closes every session on shutdown,
//! spread over a period so that clients do not all reconnect at once.
//! It holds outboxes, never sockets.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use crate::close::CloseReason;
use crate::outbox::Outbox;

/// A connection id: `<node>.<n>` (both lowercase base-36/hex tokens), unique
/// across instances and restarts; the broker subject `<prefix>.conn.<node>.<n>`
/// reaches it, and each instance subscribes `<prefix>.conn.<node>.*` only.
pub type ConnId = Arc<str>;

/// A user id, as the auth plugin names it.
pub type UserId = Arc<str>;

/// Tick of the drain loop; closes are batched per tick.
const DRAIN_TICK: Duration = Duration::from_millis(10);

/// See the module docs.
#[derive(Debug)]
pub struct Connections {
    inner: Mutex<Index>,
    reserved: AtomicUsize,
    max: usize,
    node: Arc<str>,
    next_id: AtomicU64,
}

#[derive(Debug, Default)]
struct Index {
    by_id: HashMap<ConnId, Entry>,
    by_user: HashMap<UserId, Vec<ConnId>>,
}

#[derive(Debug)]
struct Entry {
    user: Option<UserId>,
    outbox: Arc<Outbox>,
}

/// Admission for one session; frees its place when dropped.
#[derive(Debug)]
pub struct Slot {
    connections: Arc<Connections>,
}

/// A registered session; deregisters when dropped.
#[derive(Debug)]
pub struct Registration {
    slot: Slot,
    conn: ConnId,
}

impl Connections {
    /// An empty registry admitting at most `max` sessions, naming them after `node`.
    pub fn new(max: usize, node: Arc<str>) -> Self {
        Self {
            inner: Mutex::new(Index::default()),
            reserved: AtomicUsize::new(0),
            max,
            node,
            next_id: AtomicU64::new(1),
        }
    }

    /// Takes a place for a new session, or `None` when `max_connections` are open.
    pub fn reserve(self: &Arc<Self>) -> Option<Slot> {
        self.reserved
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()?;
        Some(Slot {
            connections: Arc::clone(self),
        })
    }

    /// Sessions open or being opened.
    pub fn len(&self) -> usize {
        self.reserved.load(Ordering::Acquire)
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pushes `frame` to connection `conn`; false when it is not here.
    pub fn send_to_conn(&self, conn: &str, push: impl FnOnce(&Outbox) -> bool) -> bool {
        let inner = self.inner.lock();
        inner
            .by_id
            .get(conn)
            .is_some_and(|entry| push(&entry.outbox))
    }

    /// Pushes to every connection of `user`; returns how many took it.
    pub fn send_to_user(&self, user: &str, mut push: impl FnMut(&Outbox) -> bool) -> usize {
        let inner = self.inner.lock();
        let Some(conns) = inner.by_user.get(user) else {
            return 0;
        };
        conns
            .iter()
            .filter_map(|conn| inner.by_id.get(conn))
            .filter(|entry| push(&entry.outbox))
            .count()
    }

    /// Asks every session to close with `reason`, spread evenly over `period`,
    /// then waits up to `grace` more for them to be gone.
    pub async fn close_all(&self, reason: CloseReason, period: Duration, grace: Duration) {
        let outboxes = self.outboxes();
        // At most one step per tick: thousands of sessions close in even
        // chunks, a handful one by one, either way spread over the whole period.
        let steps = outboxes
            .len()
            .min((period.as_millis() / DRAIN_TICK.as_millis()).max(1) as usize)
            .max(1);
        let per_step = outboxes.len().div_ceil(steps).max(1);
        let pause = period / steps as u32;
        for (index, chunk) in outboxes.chunks(per_step).enumerate() {
            if index > 0 {
                tokio::time::sleep(pause).await;
            }
            for outbox in chunk {
                outbox.close(reason);
            }
        }
        // Sessions whose upgrade was in flight when the drain began registered
        // after the snapshot; closing is idempotent, so sweep once more.
        for outbox in self.outboxes() {
            outbox.close(reason);
        }
        let deadline = tokio::time::Instant::now() + grace;
        while !self.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(DRAIN_TICK).await;
        }
    }
}

impl Connections {
    fn outboxes(&self) -> Vec<Arc<Outbox>> {
        let inner = self.inner.lock();
        inner
            .by_id
            .values()
            .map(|e| Arc::clone(&e.outbox))
            .collect()
    }
}

impl Slot {
    /// Registers the session under a fresh connection id.
    pub fn register(self, user: Option<UserId>, outbox: Arc<Outbox>) -> Registration {
        let connections = &self.connections;
        let n = connections.next_id.fetch_add(1, Ordering::Relaxed);
        let conn: ConnId = format!("{}.{n:x}", connections.node).into();
        {
            let mut inner = connections.inner.lock();
            if let Some(user) = &user {
                inner
                    .by_user
                    .entry(user.clone())
                    .or_default()
                    .push(conn.clone());
            }
            inner.by_id.insert(conn.clone(), Entry { user, outbox });
        }
        Registration { slot: self, conn }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.connections.reserved.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Registration {
    /// The session's connection id.
    pub fn conn(&self) -> &ConnId {
        &self.conn
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut inner = self.slot.connections.inner.lock();
        let Some(entry) = inner.by_id.remove(&self.conn) else {
            return;
        };
        if let Some(user) = entry.user
            && let Some(conns) = inner.by_user.get_mut(&user)
        {
            conns.retain(|c| c != &self.conn);
            if conns.is_empty() {
                inner.by_user.remove(&user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_is_capped_and_freed_on_drop() {
        let connections = Arc::new(Connections::new(2, "n".into()));
        let a = connections.reserve().expect("first");
        let _b = connections.reserve().expect("second");
        assert!(connections.reserve().is_none());
        drop(a);
        assert!(connections.reserve().is_some());
    }

    #[test]
    fn direct_delivery_by_conn_and_user() {
        let connections = Arc::new(Connections::new(10, "n".into()));
        let outbox = Arc::new(Outbox::new(1 << 20));
        let reg = connections
            .reserve()
            .expect("slot")
            .register(Some("alice".into()), Arc::clone(&outbox));
        let reg2 = connections
            .reserve()
            .expect("slot")
            .register(Some("alice".into()), Arc::new(Outbox::new(1 << 20)));
        assert!(reg.conn().starts_with("n."));
        assert_ne!(reg.conn(), reg2.conn());
        assert!(connections.send_to_conn(reg.conn(), |_| true));
        assert!(!connections.send_to_conn("n.999", |_| true));
        assert_eq!(connections.send_to_user("alice", |_| true), 2);
        drop(reg2);
        assert_eq!(connections.send_to_user("alice", |_| true), 1);
        drop(reg);
        assert_eq!(connections.send_to_user("alice", |_| true), 0);
        assert!(connections.is_empty());
    }
}
