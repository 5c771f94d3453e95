//! The subscribers of one channel: a dense list that fan-out walks, plus,
//! once the channel is large, an index from connection id to list slot so
//! that a leave costs O(1) instead of a scan.
//!
//! Removal swaps the last member into the freed slot (`swap_remove`) and
//! fixes that member's index entry; members' order in the list is therefore
//! not their join order, which nothing relies on (every member gets every
//! push in the channel's order, whatever its slot). Small channels, the
//! common case, keep no index: scanning a few entries is cheaper than hashing
//! and costs no memory. Owns no lock; the hub's shard lock guards it.

use std::collections::HashMap;

use super::member::Member;
use crate::connections::ConnId;

/// Channels with more members than this get an index (and keep it).
pub const INDEX_FROM: usize = 16;

/// See the module docs.
#[derive(Debug)]
pub(super) struct Members {
    list: Vec<Member>,
    /// Slot in `list` of each member, when the channel is large.
    index: Option<HashMap<ConnId, usize>>,
}

impl Members {
    pub fn new(first: Member) -> Self {
        Self {
            list: vec![first],
            index: None,
        }
    }

    /// Adds `member` (the caller guarantees its connection is not a member yet).
    pub fn push(&mut self, member: Member) {
        if let Some(index) = &mut self.index {
            index.insert(member.subscriber.conn.clone(), self.list.len());
        }
        self.list.push(member);
        if self.index.is_none() && self.list.len() > INDEX_FROM {
            let index = self
                .list
                .iter()
                .enumerate()
                .map(|(slot, m)| (m.subscriber.conn.clone(), slot))
                .collect();
            self.index = Some(index);
        }
    }

    fn slot(&self, conn: &ConnId) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(conn).copied(),
            None => self.list.iter().position(|m| &m.subscriber.conn == conn),
        }
    }

    /// The member of connection `conn`, if it is one.
    pub fn get_mut(&mut self, conn: &ConnId) -> Option<&mut Member> {
        let slot = self.slot(conn)?;
        self.list.get_mut(slot)
    }

    /// Removes `conn`'s member; false when it was none.
    pub fn remove(&mut self, conn: &ConnId) -> bool {
        let Some(slot) = self.slot(conn) else {
            return false;
        };
        self.list.swap_remove(slot);
        if let Some(index) = &mut self.index {
            index.remove(conn);
            if let Some(moved) = self.list.get(slot) {
                index.insert(moved.subscriber.conn.clone(), slot);
            }
        }
        true
    }

    /// Every member, for fan-out.
    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, Member> {
        self.list.iter_mut()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::hub::Subscriber;
    use crate::outbox::Outbox;

    fn member(n: usize) -> Member {
        Member::live(Subscriber {
            conn: ConnId::from(format!("c{n}")),
            outbox: Arc::new(Outbox::new(1024)),
        })
    }

    fn conns(members: &mut Members) -> Vec<String> {
        let mut names: Vec<String> = members
            .iter_mut()
            .map(|m| m.subscriber.conn.to_string())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn removal_keeps_every_other_member_findable_below_and_above_the_index_threshold() {
        for size in [3, INDEX_FROM + 40] {
            let mut members = Members::new(member(0));
            for n in 1..size {
                members.push(member(n));
            }
            assert_eq!(members.index.is_some(), size > INDEX_FROM);
            // Remove every third, in an order that moves members around.
            for n in (0..size).rev().filter(|n| n % 3 == 0) {
                assert!(members.remove(&ConnId::from(format!("c{n}"))));
                assert!(!members.remove(&ConnId::from(format!("c{n}"))));
            }
            let mut left: Vec<String> = (0..size)
                .filter(|n| n % 3 != 0)
                .map(|n| format!("c{n}"))
                .collect();
            left.sort();
            assert_eq!(conns(&mut members), left);
            for name in &left {
                let conn = ConnId::from(name.as_str());
                let found = members.get_mut(&conn).map(|m| m.subscriber.conn.clone());
                assert_eq!(found.as_deref(), Some(name.as_str()));
            }
            for name in &left {
                assert!(members.remove(&ConnId::from(name.as_str())));
            }
            assert!(members.is_empty());
        }
    }
}
