//! Delivery accounting: per-subscriber sequence tracking (unique, duplicate,
//! out-of-order) and sharded shared counters with a latency histogram.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use hdrhistogram::Histogram;

/// Sequence numbers remembered behind the highest one seen.
const WINDOW: u64 = 8192;

/// How one arrival relates to what the subscriber saw before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seq {
    /// The next expected number.
    InOrder,
    /// Ahead of the next expected number: some are missing (so far).
    Gap,
    /// A number below the highest seen and not seen before.
    OutOfOrder,
    /// Already seen.
    Duplicate,
}

/// Per-subscriber tracker: the highest number seen plus a bitmap of the
/// [`WINDOW`] numbers below it. Arrivals older than the window count as
/// out of order (they cannot be told from duplicates any more).
#[derive(Debug)]
pub struct SeqTracker {
    /// One past the highest sequence number seen.
    hi: u64,
    bits: Box<[u64]>,
}

impl Default for SeqTracker {
    fn default() -> Self {
        Self {
            hi: 0,
            bits: vec![0; (WINDOW / 64) as usize].into_boxed_slice(),
        }
    }
}

impl SeqTracker {
    fn bit(&mut self, seq: u64) -> (&mut u64, u64) {
        let i = seq % WINDOW;
        (&mut self.bits[(i / 64) as usize], 1 << (i % 64))
    }

    pub fn observe(&mut self, seq: u64) -> Seq {
        if seq >= self.hi {
            if seq - self.hi >= WINDOW {
                self.bits.fill(0);
            } else {
                for s in self.hi..seq {
                    let (w, m) = self.bit(s);
                    *w &= !m;
                }
            }
            let (w, m) = self.bit(seq);
            *w |= m;
            let out = if seq == self.hi {
                Seq::InOrder
            } else {
                Seq::Gap
            };
            self.hi = seq + 1;
            return out;
        }
        if self.hi - seq > WINDOW {
            return Seq::OutOfOrder;
        }
        let (w, m) = self.bit(seq);
        if *w & m != 0 {
            return Seq::Duplicate;
        }
        *w |= m;
        Seq::OutOfOrder
    }
}

/// Cumulative delivery counters.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    pub received: u64,
    pub unique: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub unparsable: u64,
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
        }
    }

    /// Records one arrival; `latency_ns` `None` when the payload was unparsable.
    pub fn record(&self, shard: usize, latency_ns: Option<u64>, seq: Option<Seq>) {
        let mut s = match self.shards[shard % self.shards.len()].lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let t = &mut s.totals;
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
            s.hist.saturating_record(ns.max(1_000));
        }
    }

    pub fn totals(&self) -> Totals {
        let mut sum = Totals::default();
        for sh in &self.shards {
            let g = match sh.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            let t = g.totals;
            sum.received += t.received;
            sum.unique += t.unique;
            sum.duplicates += t.duplicates;
            sum.out_of_order += t.out_of_order;
            sum.unparsable += t.unparsable;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_gaps_late_and_duplicates() {
        let mut t = SeqTracker::default();
        assert_eq!(t.observe(0), Seq::InOrder);
        assert_eq!(t.observe(1), Seq::InOrder);
        assert_eq!(t.observe(4), Seq::Gap);
        assert_eq!(t.observe(2), Seq::OutOfOrder);
        assert_eq!(t.observe(2), Seq::Duplicate);
        assert_eq!(t.observe(4), Seq::Duplicate);
        assert_eq!(t.observe(3), Seq::OutOfOrder);
        assert_eq!(t.observe(5), Seq::InOrder);
        assert_eq!(t.observe(0), Seq::Duplicate);
    }

    #[test]
    fn window_wraps_and_big_jumps_reset() {
        let mut t = SeqTracker::default();
        for s in 0..3 * WINDOW {
            assert_eq!(t.observe(s), Seq::InOrder);
        }
        // A skipped number is remembered as unseen after the bitmap wrapped.
        let base = 3 * WINDOW + 10;
        assert_eq!(t.observe(base), Seq::Gap);
        assert_eq!(t.observe(base - 5), Seq::OutOfOrder);
        assert_eq!(t.observe(base - 5), Seq::Duplicate);
        assert_eq!(t.observe(base + 10 * WINDOW), Seq::Gap);
        assert_eq!(t.observe(base + 10 * WINDOW - 1), Seq::OutOfOrder);
        // Older than the window: counted as out of order.
        assert_eq!(t.observe(1), Seq::OutOfOrder);
    }

    #[test]
    fn shared_totals_and_latency() {
        let s = Shared::new(4);
        for i in 0..100u64 {
            s.record(i as usize, Some(1_000_000 * (i + 1)), Some(Seq::InOrder));
        }
        s.record(0, None, Some(Seq::Duplicate));
        s.record(1, None, None);
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
