//! The in-process history store of the `memory` broker: a bounded ring of
//! push frames per channel, in shards behind their own locks.
//!
//! Bounds: a channel keeps at most its route's `size` messages, none older
//! than `ttl_s`, and at most [`MAX_CHANNEL_HISTORY_BYTES`]; all channels
//! together at most [`MAX_MEMORY_HISTORY_BYTES`] (an append past it is
//! refused, so the publish answers `unavailable` rather than being acked and
//! lost). A channel without a publish for `ttl_s` is forgotten by
//! [`MemoryHistory::sweep`], so millions of short-lived channels cost nothing
//! once idle. Each ring gets its own epoch when it is created: a process
//! restart or a forgotten channel gives a new epoch, never reused offsets.
//!
//! Owns no hub and no sockets: [`MemoryHistory::append`] hands the new frame
//! to a callback while it still holds the channel's lock, so that delivery
//! order is offset order.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::{HistoryRead, Kept, Position};
use crate::config::HistoryConfig;
use crate::protocol::{ChannelName, Frame};

/// Most bytes of push frames one channel keeps (plus `ENTRY_OVERHEAD`
/// each); older messages are evicted first. A replay must fit in half an
/// outbox (`max_queued_bytes`, 1 MiB by default) anyway, so more would only
/// hold memory.
pub const MAX_CHANNEL_HISTORY_BYTES: usize = 4 << 20;

/// Most bytes all channels' history may take in one process (frames plus
/// per-message and per-channel overhead): 512 MiB. Appends past it are
/// refused until messages expire.
pub const MAX_MEMORY_HISTORY_BYTES: usize = 512 << 20;

/// How often idle channels and expired messages are swept.
pub const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Bytes charged per kept message beyond its frame (offset, time, queue slot).
const ENTRY_OVERHEAD: usize = 48;

/// Bytes charged per channel (map slot, ring header, epoch, name).
const CHANNEL_OVERHEAD: usize = 160;

const SHARDS: usize = 64;

/// The store refused an append: the process-wide bound is reached.
#[derive(Debug, thiserror::Error)]
#[error(
    "the in-process history store is full ({MAX_MEMORY_HISTORY_BYTES} bytes); retry once messages expire"
)]
pub struct Full;

/// See the module docs.
#[derive(Debug)]
pub struct MemoryHistory {
    shards: Box<[Mutex<HashMap<ChannelName, Ring>>]>,
    hasher: RandomState,
    /// Random per process start: the first part of every epoch.
    process: String,
    /// Rings created so far: the second part.
    generation: AtomicU64,
    bytes: AtomicUsize,
    channels: AtomicUsize,
}

#[derive(Debug)]
struct Ring {
    epoch: Arc<str>,
    last: u64,
    entries: VecDeque<Entry>,
    bytes: usize,
    touched: Instant,
    ttl: Duration,
}

#[derive(Debug)]
struct Entry {
    offset: u64,
    at: Instant,
    frame: Frame,
}

impl Entry {
    fn cost(&self) -> usize {
        self.frame.len() + ENTRY_OVERHEAD
    }
}

impl Default for MemoryHistory {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryHistory {
    /// An empty store with a fresh random epoch prefix.
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            process: format!("{:016x}", rand::random::<u64>()),
            generation: AtomicU64::new(0),
            bytes: AtomicUsize::new(0),
            channels: AtomicUsize::new(0),
        }
    }

    /// Keeps `data` (JSON text) as the next message of `channel` under
    /// `policy`, and calls `deliver` with its position and push frame while
    /// the channel is still locked. Returns the new position.
    pub fn append(
        &self,
        channel: &ChannelName,
        data: &str,
        policy: &HistoryConfig,
        deliver: impl FnOnce(&Position, &Frame),
    ) -> Result<Position, Full> {
        let now = Instant::now();
        let mut shard = self.shard(channel).lock();
        let ring = self.ring(&mut shard, channel, policy.ttl(), now);
        ring.touched = now;
        self.expire(ring, now);
        let offset = ring.last + 1;
        let frame = Frame::push_at(channel, data, offset, &ring.epoch);
        let cost = frame.len() + ENTRY_OVERHEAD;
        let size = policy.size as usize;
        while !ring.entries.is_empty()
            && (ring.entries.len() >= size || ring.bytes + cost > MAX_CHANNEL_HISTORY_BYTES)
        {
            self.pop_oldest(ring);
        }
        if self.bytes.load(Ordering::Relaxed) + cost > MAX_MEMORY_HISTORY_BYTES {
            return Err(Full);
        }
        ring.last = offset;
        ring.bytes += cost;
        self.bytes.fetch_add(cost, Ordering::Relaxed);
        let position = Position {
            epoch: Arc::clone(&ring.epoch),
            offset,
        };
        deliver(&position, &frame);
        ring.entries.push_back(Entry {
            offset,
            at: now,
            frame,
        });
        Ok(position)
    }

    /// Reads `channel`'s position and, with `after`, up to `max` kept
    /// messages after that offset. A channel without a ring gets one (empty,
    /// with a new epoch), so the position a subscriber is told stays valid.
    pub fn read(
        &self,
        channel: &ChannelName,
        policy: &HistoryConfig,
        after: Option<u64>,
        max: usize,
    ) -> HistoryRead {
        let now = Instant::now();
        let mut shard = self.shard(channel).lock();
        let ring = self.ring(&mut shard, channel, policy.ttl(), now);
        self.expire(ring, now);
        let first = ring.entries.front().map_or(ring.last + 1, |e| e.offset);
        let entries = match after {
            None => Vec::new(),
            Some(after) => {
                // Offsets are contiguous in a ring: index arithmetic finds `after`.
                let skip = after.saturating_add(1).saturating_sub(first);
                let skip = usize::try_from(skip).unwrap_or(usize::MAX);
                ring.entries
                    .iter()
                    .skip(skip)
                    .take(max)
                    .map(|e| Kept {
                        offset: e.offset,
                        frame: e.frame.clone(),
                    })
                    .collect()
            }
        };
        HistoryRead {
            position: Position {
                epoch: Arc::clone(&ring.epoch),
                offset: ring.last,
            },
            first,
            entries,
        }
    }

    /// Drops expired messages, and the rings of channels without a publish
    /// (or a first read) for their `ttl_s`. Returns (channels, bytes) kept.
    pub fn sweep(&self) -> (usize, usize) {
        let now = Instant::now();
        for shard in &self.shards {
            let mut shard = shard.lock();
            shard.retain(|_, ring| {
                self.expire(ring, now);
                let idle = now.saturating_duration_since(ring.touched) > ring.ttl;
                if idle && ring.entries.is_empty() {
                    self.channels.fetch_sub(1, Ordering::Relaxed);
                    self.bytes.fetch_sub(CHANNEL_OVERHEAD, Ordering::Relaxed);
                    false
                } else {
                    true
                }
            });
        }
        (
            self.channels.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }

    fn ring<'s>(
        &self,
        shard: &'s mut HashMap<ChannelName, Ring>,
        channel: &ChannelName,
        ttl: Duration,
        now: Instant,
    ) -> &'s mut Ring {
        let ring = shard.entry(channel.clone()).or_insert_with(|| {
            let generation = self.generation.fetch_add(1, Ordering::Relaxed);
            self.channels.fetch_add(1, Ordering::Relaxed);
            self.bytes.fetch_add(CHANNEL_OVERHEAD, Ordering::Relaxed);
            Ring {
                epoch: format!("{}-{generation:x}", self.process).into(),
                last: 0,
                entries: VecDeque::new(),
                bytes: 0,
                touched: now,
                ttl,
            }
        });
        // A reload may have changed the route's `ttl_s`: the newest one applies.
        ring.ttl = ttl;
        ring
    }

    fn expire(&self, ring: &mut Ring, now: Instant) {
        while ring
            .entries
            .front()
            .is_some_and(|e| now.saturating_duration_since(e.at) > ring.ttl)
        {
            self.pop_oldest(ring);
        }
    }

    fn pop_oldest(&self, ring: &mut Ring) {
        if let Some(entry) = ring.entries.pop_front() {
            ring.bytes -= entry.cost();
            self.bytes.fetch_sub(entry.cost(), Ordering::Relaxed);
        }
    }

    fn shard(&self, channel: &ChannelName) -> &Mutex<HashMap<ChannelName, Ring>> {
        let index = self.hasher.hash_one(channel) as usize % self.shards.len();
        &self.shards[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(size: u32, ttl_s: u64) -> HistoryConfig {
        HistoryConfig { size, ttl_s }
    }

    fn ch(name: &str) -> ChannelName {
        ChannelName::new(name).expect("valid")
    }

    #[test]
    fn offsets_rise_by_one_and_the_ring_keeps_the_last_size() {
        let store = MemoryHistory::new();
        let (c, p) = (ch("c"), policy(3, 60));
        let mut delivered = Vec::new();
        for n in 1..=5 {
            let at = store
                .append(&c, &n.to_string(), &p, |at, _| delivered.push(at.offset))
                .expect("room");
            assert_eq!(at.offset, n);
        }
        assert_eq!(delivered, [1, 2, 3, 4, 5]);
        let read = store.read(&c, &p, Some(3), 100);
        assert_eq!((read.position.offset, read.first), (5, 3));
        let offsets: Vec<u64> = read.entries.iter().map(|k| k.offset).collect();
        assert_eq!(offsets, [4, 5]);
        assert!(
            read.entries[0]
                .frame
                .as_str()
                .contains(r#""data":4,"offset":4"#)
        );
        assert_eq!(store.read(&c, &p, Some(0), 1).entries[0].offset, 3);
        assert!(store.read(&c, &p, None, 100).entries.is_empty());
    }

    #[test]
    fn channels_have_their_own_epochs_and_idle_ones_are_forgotten() {
        let store = MemoryHistory::new();
        let p = policy(10, 1);
        let a = store.append(&ch("a"), "1", &p, |_, _| {}).expect("room");
        let b = store.read(&ch("b"), &p, None, 0).position;
        assert_ne!(a.epoch, b.epoch);
        assert!(crate::history::is_epoch(&a.epoch));
        assert_eq!(store.sweep().0, 2);
        std::thread::sleep(Duration::from_millis(1100));
        let (channels, bytes) = store.sweep();
        assert_eq!((channels, bytes), (0, 0));
        let again = store.append(&ch("a"), "2", &p, |_, _| {}).expect("room");
        assert_ne!(again.epoch, a.epoch);
        assert_eq!(again.offset, 1);
    }
}
