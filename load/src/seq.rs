//! Per-subscriber sequence tracking: tells in-order, gap, out-of-order and
//! duplicate arrivals apart with a sliding bitmap.

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
}
