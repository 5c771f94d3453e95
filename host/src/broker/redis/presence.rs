//! Presence in Redis: hashes and sorted sets, each change one Lua script so
//! it is atomic on the server, with node liveness as deadlines (Redis time)
//! in a sorted set.
//!
//! Layout (`P` is `[broker] prefix`, `C` a channel, `N` a node id; the
//! `{..}` are cluster hash tags, so each script touches one slot):
//! - `P:pres:{C}:users`, a sorted set, every score 0: the users present in
//!   `C`, in id order (`ZRANGEBYLEX` pages it from a cursor).
//! - `P:pres:{C}:count`, a hash: user -> connections over all nodes.
//! - `P:pres:{C}:conns`, a string: connections over all nodes, anonymous included.
//! - `P:pres:{C}:node:N`, a hash: node `N`'s own counts, `u:<user>` and `a`
//!   (anonymous). Removing a node replays these as decrements.
//! - `{P:pres}:nodes`, a sorted set: node -> deadline in ms, pushed
//!   [`ENTRY_TTL`] ahead by each heartbeat; a node whose deadline passed is dead.
//! - `{P:pres}:chans:N`, a set: the channels where `N` has entries.
//! - `P:pres:{C}:node:N:w:u:<user>`, a string expiring after
//!   [`WRITE_MEMORY`]: the id and answer (`"id before after"`) of `N`'s last
//!   write of the user, so a write that ran but whose reply was lost (a
//!   timeout, or fred re-sending it after a reconnect) is answered, when
//!   retried with its id, with the change it made, not with a no-op.
//!
//! A sweep claims a dead node by moving its deadline one TTL on (only one
//! instance wins the claim; if it dies while cleaning, the claim lapses),
//! runs the removal script per channel, then forgets the node. Events are
//! published on `P:ch:C` like messages, with `"presence"` in the envelope.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use fred::prelude::{Client, PubsubInterface, Value};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use parking_lot::Mutex;

use self::scripts::{Scripts, malformed};
use crate::broker::BrokerError;
use crate::broker::envelope;
use crate::broker::interest::Topic;
use crate::presence::{
    Beat, Change, ENTRY_TTL, EventKind, Gone, Member, Page, PresenceStore, WRITE_MEMORY, WriteId,
};
use crate::protocol::ChannelName;

mod scripts;

/// See the module docs.
#[derive(Debug)]
pub struct RedisPresence {
    client: Client,
    prefix: String,
    node: Arc<str>,
    sharded: bool,
    timeout: Duration,
    /// Channels already in this node's `chans` set.
    marked: Mutex<HashSet<ChannelName>>,
    scripts: Scripts,
}

impl RedisPresence {
    /// Presence on `client` under `prefix` for `node`; every call bounded by `timeout`.
    pub fn new(
        client: Client,
        prefix: String,
        node: Arc<str>,
        sharded: bool,
        timeout: Duration,
    ) -> Self {
        Self {
            client,
            prefix,
            node,
            sharded,
            timeout,
            marked: Mutex::new(HashSet::new()),
            scripts: Scripts::new(),
        }
    }

    /// `users`, `count`, `conns` and `node:N` of `channel`.
    fn channel_keys(&self, channel: &ChannelName, node: &str) -> [String; 4] {
        let base = format!("{}:pres:{{{channel}}}", self.prefix);
        [
            format!("{base}:users"),
            format!("{base}:count"),
            format!("{base}:conns"),
            format!("{base}:node:{node}"),
        ]
    }

    /// `nodes` and `chans:N`.
    fn node_keys(&self, node: &str) -> [String; 2] {
        let base = format!("{{{}:pres}}", self.prefix);
        [format!("{base}:nodes"), format!("{base}:chans:{node}")]
    }

    fn ttl_ms() -> String {
        ENTRY_TTL.as_millis().to_string()
    }

    /// Removes `node`'s entries channel by channel, then forgets the node.
    async fn remove(&self, node: &str) -> Result<Vec<Gone>, BrokerError> {
        let node_keys = self.node_keys(node);
        let channels = self
            .run(
                &self.scripts.node,
                &node_keys,
                vec![node.to_owned(), String::new()],
            )
            .await?;
        let mut gone = Vec::new();
        for channel in channels.into_array() {
            let Some(channel) = channel.as_string().and_then(|c| ChannelName::new(&c).ok()) else {
                continue;
            };
            let keys = self.channel_keys(&channel, node);
            let users = self.run(&self.scripts.remove, &keys, Vec::new()).await?;
            gone.extend(users.into_array().into_iter().filter_map(|user| {
                user.as_string().map(|user| Gone {
                    channel: channel.clone(),
                    user,
                })
            }));
        }
        self.run(
            &self.scripts.node,
            &node_keys,
            vec![node.to_owned(), "forget".to_owned()],
        )
        .await?;
        Ok(gone)
    }
}

impl PresenceStore for RedisPresence {
    fn set<'a>(
        &'a self,
        channel: &'a ChannelName,
        member: &'a Member,
        count: u32,
        write: WriteId,
    ) -> BoxFuture<'a, Result<Change, BrokerError>> {
        async move {
            if count > 0 && !self.marked.lock().contains(channel) {
                let args = vec![self.node.to_string(), Self::ttl_ms(), channel.to_string()];
                self.run(&self.scripts.beat, &self.node_keys(&self.node), args)
                    .await?;
                self.marked.lock().insert(channel.clone());
            }
            let (field, user) = match member {
                Member::User(user) => (format!("u:{user}"), user.to_string()),
                Member::Anonymous => ("a".to_owned(), String::new()),
            };
            let [users, counts, conns, node] = self.channel_keys(channel, &self.node);
            let record = format!("{node}:w:{field}");
            let reply = self
                .run(
                    &self.scripts.set,
                    &[users, counts, conns, node, record],
                    vec![
                        field,
                        user,
                        count.to_string(),
                        write.to_string(),
                        WRITE_MEMORY.as_millis().to_string(),
                    ],
                )
                .await?;
            let mut fields = reply.into_array().into_iter().map(|v| v.as_u64());
            match (fields.next().flatten(), fields.next().flatten()) {
                (Some(before), Some(after)) => Ok(Change { before, after }),
                _ => Err(malformed()),
            }
        }
        .boxed()
    }

    fn heartbeat(&self) -> BoxFuture<'_, Result<Beat, BrokerError>> {
        async move {
            let args = vec![self.node.to_string(), Self::ttl_ms(), String::new()];
            let had = self
                .run(&self.scripts.beat, &self.node_keys(&self.node), args)
                .await?;
            if had.as_u64() == Some(1) {
                Ok(Beat::Kept)
            } else {
                self.marked.lock().clear();
                Ok(Beat::Lost)
            }
        }
        .boxed()
    }

    fn sweep(&self) -> BoxFuture<'_, Result<Vec<Gone>, BrokerError>> {
        async move {
            let [nodes, _] = self.node_keys(&self.node);
            let dead = self
                .run(&self.scripts.claim, &[nodes], vec![Self::ttl_ms()])
                .await?;
            let mut gone = Vec::new();
            for node in dead.into_array() {
                let Some(node) = node.as_string() else {
                    continue;
                };
                if *node == *self.node {
                    // Our own record lapsed (a long pause): the next
                    // heartbeat finds it and writes everything again.
                    continue;
                }
                tracing::info!(%node, "removing the presence entries of a dead instance");
                gone.extend(self.remove(&node).await?);
            }
            Ok(gone)
        }
        .boxed()
    }

    fn remove_node(&self) -> BoxFuture<'_, Result<Vec<Gone>, BrokerError>> {
        async move {
            let gone = self.remove(&self.node).await;
            self.marked.lock().clear();
            gone
        }
        .boxed()
    }

    fn page<'a>(
        &'a self,
        channel: &'a ChannelName,
        after: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Page, BrokerError>> {
        async move {
            let [users, count, conns, _] = self.channel_keys(channel, &self.node);
            let start = after.map_or_else(|| "-".to_owned(), |after| format!("({after}"));
            let reply = self
                .run(
                    &self.scripts.page,
                    &[users, count, conns],
                    vec![start, (limit + 1).to_string()],
                )
                .await?;
            let mut parts = reply.into_array().into_iter();
            let connections = parts
                .next()
                .and_then(|v| v.as_u64())
                .ok_or_else(malformed)?;
            let names = parts.next().map(Value::into_array).unwrap_or_default();
            let counts = parts.next().map(Value::into_array).unwrap_or_default();
            if names.len() != counts.len() {
                return Err(malformed());
            }
            let mut users = Vec::with_capacity(names.len());
            for (name, count) in names.into_iter().zip(counts) {
                match (name.as_string(), count.as_u64()) {
                    (Some(name), Some(count)) => users.push((name, count)),
                    _ => return Err(malformed()),
                }
            }
            Ok(Page::from_overfetch(connections, users, limit))
        }
        .boxed()
    }

    fn announce<'a>(
        &'a self,
        channel: &'a ChannelName,
        kind: EventKind,
        data: &'a str,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        async move {
            let name =
                super::subscriptions::channel(&self.prefix, &Topic::Channel(channel.clone()));
            let payload = envelope::encode_presence(&self.node, kind, data);
            let published = if self.sharded {
                tokio::time::timeout(
                    self.timeout,
                    self.client.spublish::<i64, _, _>(name, payload),
                )
                .await
            } else {
                tokio::time::timeout(
                    self.timeout,
                    self.client.publish::<i64, _, _>(name, payload),
                )
                .await
            };
            match published {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(BrokerError::Unavailable(format!("redis: {e}"))),
                Err(_) => Err(BrokerError::Unavailable(format!(
                    "Redis did not take a presence event within {:?}",
                    self.timeout
                ))),
            }
        }
        .boxed()
    }
}
