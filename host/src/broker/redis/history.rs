//! History in Redis: one stream and one hash per channel, written and read by
//! two Lua scripts so that each step is atomic on the server.
//!
//! Layout (`<prefix>` is `[broker] prefix`, `C` the channel name):
//! - `<prefix>:hist:C`, a stream: one entry per message, ID `<offset>-0`,
//!   fields `d` (the payload as published to subscribers) and `t` (Redis
//!   time in ms when it was kept). Trimmed to `size` by `XADD MAXLEN`, and by
//!   age from its head on every append and read.
//! - `<prefix>:histmeta:C`, a hash: `epoch` (created when absent, so a lost
//!   or expired history gets a new one) and `last` (the newest offset).
//!
//! Both keys expire after `ttl_s` without a publish. The append script
//! takes one or more messages (a batch of the appender,
//! `crate::history::appender`) and, for each in turn, increments `last`,
//! adds the entry and PUBLISHes the envelope with `offset` and `epoch` on
//! `<prefix>:ch:C`, all in one step: each message is its own stream entry
//! and its own Redis message, and live order is offset order on every
//! instance, whichever instance published. Scripts are run
//! with EVALSHA, loaded on first use and again after a `SCRIPT FLUSH`.

use std::sync::Arc;

use fred::prelude::{Client, ClientLike};
use fred::types::{ClusterHash, CustomCommand, Value};
use parking_lot::Mutex;
use serde_json::value::RawValue;

use crate::broker::BrokerError;
use crate::config::HistoryConfig;
use crate::history::{HistoryRead, Kept, Position, is_epoch};
use crate::protocol::{ChannelName, Frame};

const APPEND: &str = r#"
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local epoch = redis.call('HGET', KEYS[2], 'epoch')
if not epoch then
  epoch = ARGV[5]
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'epoch', epoch, 'last', 0)
end
local offset = 0
for i = 6, #ARGV do
  offset = redis.call('HINCRBY', KEYS[2], 'last', 1)
  redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[3], offset .. '-0', 'd', ARGV[i], 't', now)
  redis.call('PUBLISH', ARGV[1], '{"ferrygate":1,"node":"' .. ARGV[2] .. '","offset":' .. offset
    .. ',"epoch":"' .. epoch .. '","data":' .. ARGV[i] .. '}')
end
local cutoff = now - tonumber(ARGV[4])
while true do
  local head = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
  if #head == 0 or tonumber(head[1][2][4]) >= cutoff then break end
  redis.call('XDEL', KEYS[1], head[1][1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return {offset, epoch}
"#;

const READ: &str = r#"
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local epoch = redis.call('HGET', KEYS[2], 'epoch')
if not epoch then
  epoch = ARGV[4]
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'epoch', epoch, 'last', 0)
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
local last = tonumber(redis.call('HGET', KEYS[2], 'last'))
local cutoff = now - tonumber(ARGV[3])
while true do
  local head = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
  if #head == 0 or tonumber(head[1][2][4]) >= cutoff then break end
  redis.call('XDEL', KEYS[1], head[1][1])
end
local first = last + 1
local head = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if #head > 0 then first = tonumber(string.match(head[1][1], '^(%d+)')) end
local entries = {}
if ARGV[1] ~= '' and tonumber(ARGV[1]) < last then
  local got = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1] .. '-0', '+', 'COUNT', ARGV[2])
  for _, e in ipairs(got) do
    entries[#entries + 1] = e[1]
    entries[#entries + 1] = e[2][2]
  end
end
return {epoch, last, first, entries}
"#;

/// A Lua script and its SHA once loaded (shared with `presence`).
#[derive(Debug)]
pub(super) struct Script {
    text: &'static str,
    sha: Mutex<Option<Arc<str>>>,
}

impl Script {
    pub(super) const fn new(text: &'static str) -> Self {
        Self {
            text,
            sha: Mutex::new(None),
        }
    }

    /// EVALSHA with `keys` and `args`, loading the script when Redis does
    /// not know it (first use, restart, `SCRIPT FLUSH`).
    pub(super) async fn run(
        &self,
        client: &Client,
        keys: &[String],
        args: Vec<String>,
    ) -> Result<Value, fred::error::Error> {
        let cached = self.sha.lock().clone();
        let sha = match cached {
            Some(sha) => sha,
            None => self.load(client).await?,
        };
        match Self::evalsha(client, &sha, keys, &args).await {
            Err(error) if error.details().starts_with("NOSCRIPT") => {
                let sha = self.load(client).await?;
                Self::evalsha(client, &sha, keys, &args).await
            }
            result => result,
        }
    }

    async fn load(&self, client: &Client) -> Result<Arc<str>, fred::error::Error> {
        let command = CustomCommand::new_static("SCRIPT", ClusterHash::Random, false);
        let sha: String = client.custom(command, vec!["LOAD", self.text]).await?;
        let sha: Arc<str> = sha.into();
        *self.sha.lock() = Some(Arc::clone(&sha));
        Ok(sha)
    }

    async fn evalsha(
        client: &Client,
        sha: &str,
        keys: &[String],
        args: &[String],
    ) -> Result<Value, fred::error::Error> {
        let command = CustomCommand::new_static("EVALSHA", ClusterHash::FirstKey, false);
        let mut all = Vec::with_capacity(2 + keys.len() + args.len());
        all.extend([sha.to_owned(), keys.len().to_string()]);
        all.extend(keys.iter().cloned());
        all.extend(args.iter().cloned());
        client.custom(command, all).await
    }
}

/// The two scripts, shared by every call of one broker.
#[derive(Debug)]
pub struct RedisHistory {
    prefix: String,
    append: Script,
    read: Script,
}

impl RedisHistory {
    /// History under `prefix`.
    pub fn new(prefix: String) -> Self {
        Self {
            prefix,
            append: Script::new(APPEND),
            read: Script::new(READ),
        }
    }

    fn keys(&self, channel: &ChannelName) -> [String; 2] {
        [
            format!("{}:hist:{channel}", self.prefix),
            format!("{}:histmeta:{channel}", self.prefix),
        ]
    }

    /// Keeps each of `data` (at least one) as `channel`'s next messages and
    /// publishes each on the Redis channel `pubsub` with its offset and
    /// epoch, all in one script call; the position of the last one.
    pub async fn append(
        &self,
        client: &Client,
        channel: &ChannelName,
        pubsub: String,
        data: &[String],
        node: &str,
        policy: &HistoryConfig,
    ) -> Result<Position, BrokerError> {
        let mut args = Vec::with_capacity(5 + data.len());
        args.extend([
            pubsub,
            node.to_owned(),
            policy.size.to_string(),
            ttl_ms(policy),
            fresh_epoch(),
        ]);
        args.extend(data.iter().cloned());
        let reply = self
            .append
            .run(client, &self.keys(channel), args)
            .await
            .map_err(unavailable)?;
        let mut fields = reply.into_array().into_iter();
        let offset = fields.next().and_then(|v| v.as_u64());
        let epoch = fields.next().and_then(|v| v.as_string());
        match (offset, epoch) {
            (Some(offset), Some(epoch)) if offset > 0 && is_epoch(&epoch) => Ok(Position {
                epoch: epoch.into(),
                offset,
            }),
            _ => Err(malformed()),
        }
    }

    /// One consistent read of `channel`'s history (see `Broker::history`).
    pub async fn read(
        &self,
        client: &Client,
        channel: &ChannelName,
        policy: &HistoryConfig,
        after: Option<u64>,
        max: usize,
    ) -> Result<HistoryRead, BrokerError> {
        let args = vec![
            after.map(|a| a.to_string()).unwrap_or_default(),
            max.to_string(),
            ttl_ms(policy),
            fresh_epoch(),
        ];
        let reply = self
            .read
            .run(client, &self.keys(channel), args)
            .await
            .map_err(unavailable)?;
        let mut fields = reply.into_array().into_iter();
        let epoch = fields.next().and_then(|v| v.as_string());
        let last = fields.next().and_then(|v| v.as_u64());
        let first = fields.next().and_then(|v| v.as_u64());
        let (Some(epoch), Some(last), Some(first)) = (epoch, last, first) else {
            return Err(malformed());
        };
        if !is_epoch(&epoch) {
            return Err(malformed());
        }
        let raw = fields.next().map(Value::into_array).unwrap_or_default();
        let mut entries = Vec::with_capacity(raw.len() / 2);
        for pair in raw.chunks(2) {
            // An entry that is not ours (bad ID, not JSON) is left out: the
            // replay then has a hole and is refused as `evicted`.
            let [id, data] = pair else { break };
            let offset = id
                .as_str()
                .and_then(|id| id.strip_suffix("-0").and_then(|n| n.parse().ok()));
            let data = data.as_string();
            if let (Some(offset), Some(data)) = (offset, data)
                && serde_json::from_str::<&RawValue>(&data).is_ok()
            {
                let frame = Frame::push_at(channel, &data, offset, &epoch);
                entries.push(Kept { offset, frame });
            }
        }
        Ok(HistoryRead {
            position: Position {
                epoch: epoch.into(),
                offset: last,
            },
            first,
            entries,
        })
    }
}

fn ttl_ms(policy: &HistoryConfig) -> String {
    (policy.ttl_s * 1000).to_string()
}

/// A candidate epoch, used by the scripts only when the channel has none.
fn fresh_epoch() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn unavailable(error: fred::error::Error) -> BrokerError {
    BrokerError::Unavailable(format!("redis history: {error}"))
}

fn malformed() -> BrokerError {
    BrokerError::Unavailable("redis history: unexpected reply from the scripts".to_owned())
}
