//! This node's `t.C.N` keys (its connections per presence channel) written
//! coalesced: at most one write per channel in flight, and a burst of joins
//! or leaves on one channel ends in one or two writes of the latest total
//! rather than one write per connection queued behind a lock. A channel
//! whose write failed (or was cut by a timeout) stays dirty and is written
//! again at the next heartbeat ([`Totals::flush_all`]).
//!
//! Owns only the dirty/writing bookkeeping; the counts come from the
//! caller (`NatsPresence::mine`) and the bucket from `presence.rs`.

use std::collections::HashSet;

use parking_lot::Mutex;

use crate::protocol::ChannelName;

/// Which channels' totals need writing and which have a writer.
#[derive(Debug, Default)]
pub struct Totals {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    dirty: HashSet<ChannelName>,
    writing: HashSet<ChannelName>,
}

/// The writer's turn on one channel; dropping it (the write finished,
/// failed or its future was cancelled) hands the channel back, dirty again
/// if the last write did not complete.
#[derive(Debug)]
pub struct Turn<'a> {
    totals: &'a Totals,
    channel: ChannelName,
    clean: bool,
}

impl Totals {
    /// Marks `channel`'s total as changed.
    pub fn touch(&self, channel: &ChannelName) {
        self.state.lock().dirty.insert(channel.clone());
    }

    /// The channels whose total is not known to be stored.
    pub fn dirty(&self) -> Vec<ChannelName> {
        self.state.lock().dirty.iter().cloned().collect()
    }

    /// The turn to write `channel`, or `None` when another writer holds it
    /// (that writer will see the change: it loops until nothing is dirty).
    pub fn turn(&self, channel: &ChannelName) -> Option<Turn<'_>> {
        let mut state = self.state.lock();
        if !state.writing.insert(channel.clone()) {
            return None;
        }
        Some(Turn {
            totals: self,
            channel: channel.clone(),
            clean: true,
        })
    }

    /// Forgets every channel (the node's keys were removed at drain).
    pub fn clear(&self) {
        self.state.lock().dirty.clear();
    }
}

impl Turn<'_> {
    /// Takes the dirty mark for the next write: `false` when the stored
    /// total is already the latest (the turn is done).
    pub fn next(&mut self) -> bool {
        let taken = self.totals.state.lock().dirty.remove(&self.channel);
        self.clean = !taken;
        taken
    }

    /// The write just taken with [`Turn::next`] completed.
    pub fn written(&mut self) {
        self.clean = true;
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut state = self.totals.state.lock();
        state.writing.remove(&self.channel);
        if !self.clean {
            state.dirty.insert(self.channel.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(name: &str) -> ChannelName {
        ChannelName::new(name).expect("a channel name")
    }

    #[test]
    fn one_writer_per_channel_and_a_cut_write_stays_dirty() {
        let totals = Totals::default();
        let a = channel("room.a");
        totals.touch(&a);
        let mut turn = totals.turn(&a).expect("the first writer gets the turn");
        assert!(
            totals.turn(&a).is_none(),
            "a second writer waits on the first"
        );
        assert!(turn.next());
        // A change while the write is in flight: the writer loops once more.
        totals.touch(&a);
        turn.written();
        assert!(turn.next());
        // The second write is cut (its future dropped) before it completes.
        drop(turn);
        assert_eq!(
            totals.dirty(),
            vec![a.clone()],
            "written again at the next beat"
        );
        let mut turn = totals.turn(&a).expect("the turn was handed back");
        assert!(turn.next());
        turn.written();
        assert!(!turn.next());
        drop(turn);
        assert!(totals.dirty().is_empty());
    }
}
