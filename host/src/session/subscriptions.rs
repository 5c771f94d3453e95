//! What one connection is subscribed to: the channels it asked for, and the
//! channels it actually joined in the hub after its route plugin rewrote or
//! fanned them out. Two requests may lead to the same channel, so joins are
//! counted, and the hub sees one subscription per joined channel.

use std::collections::HashMap;

use crate::protocol::ChannelName;

/// See the module docs.
#[derive(Debug, Default)]
pub(super) struct Subscriptions {
    requested: HashMap<ChannelName, Vec<ChannelName>>,
    joined: HashMap<ChannelName, u32>,
}

impl Subscriptions {
    pub fn contains(&self, requested: &ChannelName) -> bool {
        self.requested.contains_key(requested)
    }

    /// The channels the client asked for, in no particular order.
    pub fn requested(&self) -> Vec<ChannelName> {
        self.requested.keys().cloned().collect()
    }

    /// How many of `targets` are not joined yet (duplicates counted once).
    pub fn count_new(&self, targets: &[ChannelName]) -> usize {
        let mut seen: Vec<&ChannelName> = Vec::with_capacity(targets.len());
        for target in targets {
            if !self.joined.contains_key(target) && !seen.contains(&target) {
                seen.push(target);
            }
        }
        seen.len()
    }

    /// Channels joined now.
    pub fn joined_len(&self) -> usize {
        self.joined.len()
    }

    /// Records that `requested` leads to `targets`; returns the channels to
    /// join in the hub (those not joined before).
    pub fn add(
        &mut self,
        requested: ChannelName,
        mut targets: Vec<ChannelName>,
    ) -> Vec<ChannelName> {
        targets.dedup();
        let mut new = Vec::new();
        for target in &targets {
            let count = self.joined.entry(target.clone()).or_insert(0);
            if *count == 0 {
                new.push(target.clone());
            }
            *count += 1;
        }
        self.requested.insert(requested, targets);
        new
    }

    /// Forgets `requested`; returns the channels to leave in the hub, or
    /// `None` if it was not subscribed.
    pub fn remove(&mut self, requested: &ChannelName) -> Option<Vec<ChannelName>> {
        let targets = self.requested.remove(requested)?;
        let mut left = Vec::new();
        for target in targets {
            if let Some(count) = self.joined.get_mut(&target) {
                *count -= 1;
                if *count == 0 {
                    self.joined.remove(&target);
                    left.push(target);
                }
            }
        }
        Some(left)
    }

    /// Forgets everything; returns every joined channel.
    pub fn clear(&mut self) -> Vec<ChannelName> {
        self.requested.clear();
        self.joined.drain().map(|(channel, _)| channel).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(name: &str) -> ChannelName {
        ChannelName::new(name).expect("valid channel")
    }

    #[test]
    fn two_requests_to_one_channel_join_it_once() {
        let mut subs = Subscriptions::default();
        assert_eq!(
            subs.add(ch("a"), vec![ch("x"), ch("y")]),
            vec![ch("x"), ch("y")]
        );
        assert_eq!(subs.count_new(&[ch("y"), ch("z"), ch("z")]), 1);
        assert_eq!(subs.add(ch("b"), vec![ch("y")]), Vec::<ChannelName>::new());
        assert_eq!(subs.joined_len(), 2);
        assert_eq!(subs.remove(&ch("a")), Some(vec![ch("x")]));
        assert_eq!(subs.remove(&ch("a")), None);
        assert_eq!(subs.remove(&ch("b")), Some(vec![ch("y")]));
        assert_eq!(subs.joined_len(), 0);
    }
}
