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

use fred::prelude::{Client, ClientLike, PubsubInterface, Value};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use parking_lot::Mutex;

use super::history::Script;
use crate::broker::BrokerError;
use crate::broker::envelope;
use crate::broker::interest::Topic;
use crate::presence::{
    Beat, Change, ENTRY_TTL, EventKind, Gone, Member, Page, PresenceStore, WRITE_MEMORY, WriteId,
};
use crate::protocol::ChannelName;

/// KEYS: users, count, conns, node:N, node:N:w:<field>. ARGV: field, user ('':
/// anonymous), count, write id, record expiry ms. A retried write (this
/// node's count already the one asked, and the record names its id) is
/// answered from the record; any other is applied and its answer recorded.
const SET: &str = r#"
local old = tonumber(redis.call('HGET', KEYS[4], ARGV[1]) or '0')
local new = tonumber(ARGV[3])
if ARGV[2] ~= '' and old == new then
  local rec = redis.call('GET', KEYS[5])
  if rec then
    local id, b, a = string.match(rec, '^(%d+) (-?%d+) (-?%d+)$')
    if id == ARGV[4] then return {tonumber(b), tonumber(a)} end
  end
end
if new == 0 then redis.call('HDEL', KEYS[4], ARGV[1]) else redis.call('HSET', KEYS[4], ARGV[1], new) end
local d = new - old
if redis.call('INCRBY', KEYS[3], d) <= 0 then redis.call('DEL', KEYS[3]) end
if ARGV[2] == '' then return {old, new} end
local before = tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0')
local after = before + d
if after <= 0 then
  after = 0
  redis.call('HDEL', KEYS[2], ARGV[2])
  redis.call('ZREM', KEYS[1], ARGV[2])
else
  redis.call('HSET', KEYS[2], ARGV[2], after)
  if before <= 0 then redis.call('ZADD', KEYS[1], 0, ARGV[2]) end
end
redis.call('SET', KEYS[5], ARGV[4] .. ' ' .. before .. ' ' .. after, 'PX', ARGV[5])
return {before, after}
"#;

const REMOVE: &str = r#"
local fields = redis.call('HGETALL', KEYS[4])
local gone = {}
for i = 1, #fields, 2 do
  local f, n = fields[i], tonumber(fields[i + 1])
  if redis.call('DECRBY', KEYS[3], n) <= 0 then redis.call('DEL', KEYS[3]) end
  if string.sub(f, 1, 2) == 'u:' then
    local user = string.sub(f, 3)
    if redis.call('HINCRBY', KEYS[2], user, -n) <= 0 then
      redis.call('HDEL', KEYS[2], user)
      redis.call('ZREM', KEYS[1], user)
      gone[#gone + 1] = user
    end
  end
end
redis.call('DEL', KEYS[4])
return gone
"#;

const PAGE: &str = r#"
local users = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], '+', 'LIMIT', 0, ARGV[2])
local counts = {}
for i, user in ipairs(users) do counts[i] = redis.call('HGET', KEYS[2], user) or '0' end
return {redis.call('GET', KEYS[3]) or '0', users, counts}
"#;

/// KEYS: nodes, chans:N. ARGV: node, ttl ms, channel ('' for a heartbeat).
/// Returns 1 when the node's record was there.
const BEAT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local had = redis.call('ZSCORE', KEYS[1], ARGV[1])
if ARGV[3] == '' then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
else
  redis.call('ZADD', KEYS[1], 'NX', now + tonumber(ARGV[2]), ARGV[1])
  redis.call('SADD', KEYS[2], ARGV[3])
end
if had then return 1 else return 0 end
"#;

/// KEYS: nodes. ARGV: ttl ms. Claims every node whose deadline passed (its
/// deadline moves one TTL on) and returns them.
const CLAIM: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 100)
for _, node in ipairs(dead) do redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), node) end
return dead
"#;

/// KEYS: nodes, chans:N. ARGV: node. Returns the node's channels; with
/// ARGV[2] = 'forget', removes the node and its channel set instead.
const NODE: &str = r#"
if ARGV[2] == 'forget' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('DEL', KEYS[2])
  return {}
end
return redis.call('SMEMBERS', KEYS[2])
"#;

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

#[derive(Debug)]
struct Scripts {
    set: Script,
    remove: Script,
    page: Script,
    beat: Script,
    claim: Script,
    node: Script,
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
            scripts: Scripts {
                set: Script::new(SET),
                remove: Script::new(REMOVE),
                page: Script::new(PAGE),
                beat: Script::new(BEAT),
                claim: Script::new(CLAIM),
                node: Script::new(NODE),
            },
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

    async fn run(
        &self,
        script: &Script,
        keys: &[String],
        args: Vec<String>,
    ) -> Result<Value, BrokerError> {
        if !self.client.is_connected() {
            return Err(BrokerError::Unavailable(
                "Redis is not connected: presence cannot be read or written".to_owned(),
            ));
        }
        match tokio::time::timeout(self.timeout, script.run(&self.client, keys, args)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(BrokerError::Unavailable(format!("redis presence: {e}"))),
            Err(_) => Err(BrokerError::Unavailable(format!(
                "Redis did not answer a presence call within {:?}",
                self.timeout
            ))),
        }
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

fn malformed() -> BrokerError {
    BrokerError::Unavailable("redis presence: unexpected reply from a script".to_owned())
}
