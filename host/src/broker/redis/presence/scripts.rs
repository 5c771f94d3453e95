//! The Lua scripts of Redis presence (each change atomic on the server)
//! and running one within the timeout. The key layout they work on is
//! described in `presence.rs`.
//!
//! Owns the script texts and their argument order; which script runs when
//! is `presence.rs`'s.

use fred::prelude::{ClientLike, Value};

use super::RedisPresence;
use crate::broker::BrokerError;
use crate::broker::redis::history::Script;

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

#[derive(Debug)]
pub(super) struct Scripts {
    pub(super) set: Script,
    pub(super) remove: Script,
    pub(super) page: Script,
    pub(super) beat: Script,
    pub(super) claim: Script,
    pub(super) node: Script,
}

impl Scripts {
    pub(super) const fn new() -> Self {
        Self {
            set: Script::new(SET),
            remove: Script::new(REMOVE),
            page: Script::new(PAGE),
            beat: Script::new(BEAT),
            claim: Script::new(CLAIM),
            node: Script::new(NODE),
        }
    }
}

impl RedisPresence {
    /// Runs `script` within `[broker] timeout_ms`; `unavailable` while
    /// Redis is disconnected, on an error, or past the timeout.
    pub(super) async fn run(
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
}

/// A script answered with a reply of an unexpected shape.
pub(super) fn malformed() -> BrokerError {
    BrokerError::Unavailable("redis presence: unexpected reply from a script".to_owned())
}
