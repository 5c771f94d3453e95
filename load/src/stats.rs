//! Delivery accounting shared by the subscribers: sharded counters and a
//! latency histogram, fed in batches.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use hdrhistogram::Histogram;

pub use crate::seq::{Seq, SeqTracker};

/// Cumulative delivery counters.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    pub received: u64,
    pub unique: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub unparsable: u64,
}

impl Totals {
    fn add(&mut self, o: &Totals) {
        self.received += o.received;
        self.unique += o.unique;
        self.duplicates += o.duplicates;
        self.out_of_order += o.out_of_order;
        self.unparsable += o.unparsable;
    }
}

/// A subscriber's arrivals not yet added to [`Shared`] (one lock per batch
/// instead of one per message).
#[derive(Debug)]
pub struct Local {
    totals: Totals,
    latencies: Vec<u64>,
}

impl Default for Local {
    fn default() -> Self {
        Self {
            totals: Totals::default(),
            latencies: Vec::with_capacity(Self::CAPACITY),
        }
    }
}

impl Local {
    /// Arrivals buffered before a flush is due.
    pub const CAPACITY: usize = 256;

    /// Records one arrival (`None`s for an unparsable payload); returns whether
    /// the batch is full and should be flushed.
    pub fn add(&mut self, latency_ns: Option<u64>, seq: Option<Seq>) -> bool {
        let t = &mut self.totals;
        t.received += 1;
        match seq {
            Some(Seq::InOrder | Seq::Gap) => t.unique += 1,
            Some(Seq::OutOfOrder) => {
                t.unique += 1;
                t.out_of_order += 1;
            }
            Some(Seq::Duplicate) => t.duplicates += 1,
            None => t.unparsable += 1,
        }
        if let Some(ns) = latency_ns {
            self.latencies.push(ns);
        }
        self.totals.received as usize >= Self::CAPACITY
    }
}

#[derive(Debug)]
struct Shard {
    totals: Totals,
    hist: Histogram<u64>,
}

/// Latency figures in milliseconds.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// Counters shared by all subscriber tasks, split into shards so that
/// subscribers on different threads rarely contend.
#[derive(Debug)]
pub struct Shared {
    shards: Vec<Mutex<Shard>>,
    /// Subscriber connections that ended during the run.
    pub disconnected: AtomicU64,
    /// Why they ended (close code and reason, or error), with counts.
    reasons: Mutex<BTreeMap<String, u64>>,
}

/// Histogram range: 1 µs to 100 s, in nanoseconds, 3 significant digits.
fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1_000, 100_000_000_000, 3).unwrap_or_else(|_| {
        // The bounds above are valid; this branch only keeps `unwrap` out.
        Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant digits is valid"))
    })
}

impl Shared {
    pub fn new(shards: usize) -> Self {
        Self {
            shards: (0..shards.max(1))
                .map(|_| {
                    Mutex::new(Shard {
                        totals: Totals::default(),
                        hist: new_hist(),
                    })
                })
                .collect(),
            disconnected: AtomicU64::new(0),
            reasons: Mutex::new(BTreeMap::new()),
        }
    }

    /// Adds a subscriber's batch to the shared figures and empties it.
    pub fn flush(&self, shard: usize, local: &mut Local) {
        if local.totals.received == 0 {
            return;
        }
        let mut s = match self.shards[shard % self.shards.len()].lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        s.totals.add(&local.totals);
        for &ns in &local.latencies {
            s.hist.saturating_record(ns.max(1_000));
        }
        drop(s);
        local.totals = Totals::default();
        local.latencies.clear();
    }

    pub fn totals(&self) -> Totals {
        let mut sum = Totals::default();
        for sh in &self.shards {
            let g = match sh.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            sum.add(&g.totals);
        }
        sum
    }

    /// Merges the latency histograms into one figure and clears them.
    pub fn take_latency(&self) -> Latency {
        let mut all = new_hist();
        for sh in &self.shards {
            let mut g = match sh.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            let _ = all.add(&g.hist);
            g.hist.reset();
        }
        let ms = |ns: u64| ns as f64 / 1e6;
        Latency {
            count: all.len(),
            p50_ms: ms(all.value_at_quantile(0.50)),
            p99_ms: ms(all.value_at_quantile(0.99)),
            p999_ms: ms(all.value_at_quantile(0.999)),
            max_ms: ms(all.max()),
        }
    }

    pub fn disconnected(&self) -> u64 {
        self.disconnected.load(Ordering::Relaxed)
    }

    /// Counts one subscriber connection that ended, and why.
    pub fn disconnect(&self, reason: String) {
        self.disconnected.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut g) = self.reasons.lock() {
            *g.entry(reason).or_default() += 1;
        }
    }

    /// Why subscribers disconnected, most frequent first.
    pub fn disconnect_reasons(&self) -> Vec<(String, u64)> {
        let mut v: Vec<_> = match self.reasons.lock() {
            Ok(g) => g.iter().map(|(k, n)| (k.clone(), *n)).collect(),
            Err(_) => Vec::new(),
        };
        v.sort_by_key(|e| std::cmp::Reverse(e.1));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_totals_and_latency() {
        let s = Shared::new(4);
        for i in 0..100u64 {
            let mut l = Local::default();
            assert!(!l.add(Some(1_000_000 * (i + 1)), Some(Seq::InOrder)));
            s.flush(i as usize, &mut l);
        }
        let mut l = Local::default();
        l.add(None, Some(Seq::Duplicate));
        l.add(None, None);
        s.flush(0, &mut l);
        assert_eq!(l.totals.received, 0);
        for _ in 1..Local::CAPACITY {
            assert!(!l.add(None, None));
        }
        assert!(l.add(None, None), "full");
        let t = s.totals();
        assert_eq!(
            (t.received, t.unique, t.duplicates, t.unparsable),
            (102, 100, 1, 1)
        );
        let l = s.take_latency();
        assert_eq!(l.count, 100);
        assert!((l.p50_ms - 50.0).abs() < 0.1, "{l:?}");
        assert!((l.max_ms - 100.0).abs() < 0.1, "{l:?}");
        assert_eq!(s.take_latency().count, 0);
    }
}
