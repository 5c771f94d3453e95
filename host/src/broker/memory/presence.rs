//! Presence in process, for the `memory` broker: one node, so a member's
//! total is this node's count. Per channel, users in a `BTreeMap` (id order,
//! so a cursor is a range start) and the total of connections. Joins and
//! leaves go straight into the hub. Heartbeats and sweeps have nothing to do.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::{self, BoxFuture};
use parking_lot::Mutex;

use crate::broker::BrokerError;
use crate::hub::Hub;
use crate::presence::{
    Beat, Change, EventKind, Gone, Member, Page, PresenceStore, WriteId, event_frame,
};
use crate::protocol::ChannelName;

#[derive(Debug, Default)]
struct Channel {
    users: BTreeMap<String, u64>,
    anonymous: u64,
}

impl Channel {
    fn connections(&self) -> u64 {
        self.users.values().sum::<u64>() + self.anonymous
    }
}

/// See the module docs.
#[derive(Debug)]
pub struct MemoryPresence {
    hub: Arc<Hub>,
    channels: Mutex<HashMap<ChannelName, Channel>>,
}

impl MemoryPresence {
    /// An empty table whose events go to `hub`.
    pub fn new(hub: Arc<Hub>) -> Self {
        Self {
            hub,
            channels: Mutex::new(HashMap::new()),
        }
    }
}

impl PresenceStore for MemoryPresence {
    fn set<'a>(
        &'a self,
        channel: &'a ChannelName,
        member: &'a Member,
        count: u32,
        // In process, an answer is never lost: nothing to remember.
        _write: WriteId,
    ) -> BoxFuture<'a, Result<Change, BrokerError>> {
        let mut channels = self.channels.lock();
        let entry = channels.entry(channel.clone()).or_default();
        let after = u64::from(count);
        let before = match member {
            Member::User(user) if after == 0 => entry.users.remove(user.as_ref()).unwrap_or(0),
            Member::User(user) => entry.users.insert(user.to_string(), after).unwrap_or(0),
            Member::Anonymous => std::mem::replace(&mut entry.anonymous, after),
        };
        if entry.users.is_empty() && entry.anonymous == 0 {
            channels.remove(channel);
        }
        future::ready(Ok(Change { before, after })).boxed()
    }

    fn heartbeat(&self) -> BoxFuture<'_, Result<Beat, BrokerError>> {
        future::ready(Ok(Beat::Kept)).boxed()
    }

    fn sweep(&self) -> BoxFuture<'_, Result<Vec<Gone>, BrokerError>> {
        future::ready(Ok(Vec::new())).boxed()
    }

    fn remove_node(&self) -> BoxFuture<'_, Result<Vec<Gone>, BrokerError>> {
        let channels = std::mem::take(&mut *self.channels.lock());
        let gone = channels
            .into_iter()
            .flat_map(|(channel, entry)| {
                entry.users.into_keys().map(move |user| Gone {
                    channel: channel.clone(),
                    user,
                })
            })
            .collect();
        future::ready(Ok(gone)).boxed()
    }

    fn page<'a>(
        &'a self,
        channel: &'a ChannelName,
        after: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Page, BrokerError>> {
        let channels = self.channels.lock();
        let Some(entry) = channels.get(channel) else {
            return future::ready(Ok(Page::default())).boxed();
        };
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let users: Vec<(String, u64)> = entry
            .users
            .range::<str, _>((start, Bound::Unbounded))
            .take(limit + 1)
            .map(|(user, count)| (user.clone(), *count))
            .collect();
        let page = Page::from_overfetch(entry.connections(), users, limit);
        future::ready(Ok(page)).boxed()
    }

    fn announce<'a>(
        &'a self,
        channel: &'a ChannelName,
        kind: EventKind,
        data: &'a str,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        self.hub
            .deliver_frame(channel, &event_frame(channel, kind, data));
        future::ready(Ok(())).boxed()
    }
}
