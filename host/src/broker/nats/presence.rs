//! Presence in a NATS JetStream key-value bucket, `<prefix>_presence`
//! (history 1, file storage), created on first use.
//!
//! Keys (`C` and `U` are the channel and user id in lowercase hex, so any id
//! is one key token; `N` a node id):
//! - `u.C.U`: JSON `{"N":count,...}`, the user's connections per node.
//!   Changed by compare-and-set on the key's revision, so two instances
//!   writing one user never lose an update, and exactly one write sees the
//!   total go from or to 0 (the join or leave it announces).
//! - `t.C.N`: JSON `{"c":count}`, node `N`'s connections in `C`, anonymous
//!   included (only `N` writes it, coalesced: one write per channel in
//!   flight, failed ones again at the next heartbeat, `presence/totals.rs`);
//!   a page sums them for `connections`.
//! - `n.N`: node `N`'s heartbeat. Liveness is judged by server time: a node
//!   whose record was stamped more than [`ENTRY_TTL`] before the sweeper's
//!   own fresh one is dead. The sweeper that deletes the stale record (a
//!   compare-and-set on its revision) removes the node from every `u.C.*`
//!   of its channels (found from its `t.C.N` keys), then its `t` keys. A
//!   node with `t` keys older than the TTL and no record at all (its sweeper
//!   died mid-way) is removed the same way by the next sweep.
//!
//! Listing keys of a channel uses the bucket stream's subject listing
//! (`STREAM.INFO` with a subject filter), so a page costs one listing of
//! the channel's user keys plus one read per user on the page.
//!
//! Children: `bucket` (opening it, listing and reading keys), `liveness`
//! (heartbeat, sweep, removal of a node), `writes` (user keys), `totals`
//! (which `t` keys are dirty), `cleanup` (delete then purge).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_nats::Client;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use parking_lot::Mutex;
use tokio::sync::OnceCell;

use self::bucket::Bucket;
use self::totals::Totals;
use self::writes::Unanswered;
use super::subscriptions;
use crate::broker::BrokerError;
use crate::broker::envelope;
use crate::broker::interest::Topic;
use crate::presence::{
    Beat, Change, ENTRY_TTL, EventKind, Gone, Member, Page, PresenceStore, WriteId,
};
use crate::protocol::ChannelName;

mod bucket;
mod cleanup;
mod liveness;
mod totals;
mod writes;

/// Compare-and-set attempts on one key before the write is refused.
const MAX_CAS_ATTEMPTS: usize = 32;

/// Concurrent key reads of one page or sweep.
const READS_IN_FLIGHT: usize = 64;

type Nodes = BTreeMap<String, u64>;

/// See the module docs.
#[derive(Debug)]
pub struct NatsPresence {
    client: Client,
    prefix: String,
    node: Arc<str>,
    timeout: Duration,
    bucket: OnceCell<Bucket>,
    /// This node's counts per channel and member (for its `t` keys).
    mine: Mutex<HashMap<ChannelName, HashMap<Member, u32>>>,
    /// The revision of this node's last heartbeat.
    beat: Mutex<Option<u64>>,
    /// Which of this node's `t` keys need writing ([`totals`]).
    totals: Totals,
    /// User-key writes sent whose answer was lost ([`writes`]).
    unanswered: Unanswered,
}

fn hex(text: &str) -> String {
    crate::presence::encode_cursor(text)
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> BrokerError {
    BrokerError::Unavailable(format!("nats presence ({what}): {e}"))
}

impl NatsPresence {
    /// Presence on `client` in bucket `<prefix>_presence`, for `node`.
    pub fn new(client: Client, prefix: String, node: Arc<str>, timeout: Duration) -> Self {
        Self {
            client,
            prefix,
            node,
            timeout,
            bucket: OnceCell::new(),
            mine: Mutex::new(HashMap::new()),
            beat: Mutex::new(None),
            totals: Totals::default(),
            unanswered: Unanswered::default(),
        }
    }

    /// Writes this node's total of `channel` until the stored one is the
    /// latest, unless another call holds the channel's turn (it loops until
    /// nothing is dirty, so it writes this change too). On an error or a
    /// cancellation the channel stays dirty ([`totals`]).
    async fn write_total(&self, bucket: &Bucket, channel: &ChannelName) -> Result<(), BrokerError> {
        let Some(mut turn) = self.totals.turn(channel) else {
            return Ok(());
        };
        let key = format!("t.{}.{}", hex(channel.as_str()), self.node);
        while turn.next() {
            let total: u64 = self
                .mine
                .lock()
                .get(channel)
                .map_or(0, |members| members.values().map(|&n| u64::from(n)).sum());
            if total == 0 {
                cleanup::delete(bucket, &key)
                    .await
                    .map_err(|e| unavailable("total", e))?;
            } else {
                let value = serde_json::to_vec(&Total { c: total }).unwrap_or_default();
                bucket
                    .kv
                    .put(&key, value.into())
                    .await
                    .map_err(|e| unavailable("total", e))?;
            }
            turn.written();
        }
        Ok(())
    }

    async fn bounded<T>(
        &self,
        limit: Duration,
        work: impl std::future::Future<Output = Result<T, BrokerError>>,
    ) -> Result<T, BrokerError> {
        tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
            Err(BrokerError::Unavailable(format!(
                "NATS did not answer a presence call within {limit:?}"
            )))
        })
    }
}

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Total {
    c: u64,
}

impl PresenceStore for NatsPresence {
    fn set<'a>(
        &'a self,
        channel: &'a ChannelName,
        member: &'a Member,
        count: u32,
        write: WriteId,
    ) -> BoxFuture<'a, Result<Change, BrokerError>> {
        async move {
            let bucket = self.bounded(self.timeout, self.bucket()).await?;
            let channel_hex = hex(channel.as_str());
            let old = {
                let mut mine = self.mine.lock();
                let members = mine.entry(channel.clone()).or_default();
                let old = if count == 0 {
                    members.remove(member)
                } else {
                    members.insert(member.clone(), count)
                }
                .unwrap_or(0);
                if members.is_empty() {
                    mine.remove(channel);
                }
                old
            };
            self.totals.touch(channel);
            let change = match member {
                Member::User(user) => {
                    let key = format!("u.{channel_hex}.{}", hex(user));
                    let node = self.node.to_string();
                    let update = writes::update(
                        bucket,
                        &self.unanswered,
                        (&key, write, &node),
                        &key,
                        |nodes| {
                            if count == 0 {
                                nodes.remove(&node);
                            } else {
                                nodes.insert(node.clone(), u64::from(count));
                            }
                        },
                    );
                    self.bounded(self.timeout, update).await?
                }
                Member::Anonymous => Change {
                    before: u64::from(old),
                    after: u64::from(count),
                },
            };
            // Best effort, after the user's change is known and on its own
            // budget, so a slow total never cuts that answer: a total not
            // written stays dirty and follows at the next heartbeat.
            let total = self.bounded(self.timeout, self.write_total(bucket, channel));
            if let Err(error) = total.await {
                tracing::warn!(%channel, %error, "presence total not written; retried at the next heartbeat");
            }
            Ok(change)
        }
        .boxed()
    }

    fn heartbeat(&self) -> BoxFuture<'_, Result<Beat, BrokerError>> {
        self.bounded(self.timeout, self.beat_once()).boxed()
    }

    fn sweep(&self) -> BoxFuture<'_, Result<Vec<Gone>, BrokerError>> {
        self.bounded(ENTRY_TTL, self.sweep_once()).boxed()
    }

    fn remove_node(&self) -> BoxFuture<'_, Result<Vec<Gone>, BrokerError>> {
        self.bounded(ENTRY_TTL, async move {
            let bucket = self.bucket().await?;
            let gone = self.remove(bucket, &self.node).await?;
            self.mine.lock().clear();
            self.totals.clear();
            self.unanswered.clear();
            cleanup::delete(bucket, &format!("n.{}", self.node))
                .await
                .map_err(|e| unavailable("delete", e))?;
            Ok(gone)
        })
        .boxed()
    }

    fn page<'a>(
        &'a self,
        channel: &'a ChannelName,
        after: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Page, BrokerError>> {
        self.bounded(self.timeout * 4, async move {
            let bucket = self.bucket().await?;
            let channel_hex = hex(channel.as_str());
            let mut connections = 0;
            for key in self.keys(bucket, &format!("t.{channel_hex}.*")).await? {
                connections += Self::read::<Total>(bucket, &key).await?.0.c;
            }
            let mut users: Vec<String> = self
                .keys(bucket, &format!("u.{channel_hex}.*"))
                .await?
                .iter()
                .filter_map(|key| {
                    key.split('.')
                        .nth(2)
                        .and_then(crate::presence::decode_cursor)
                })
                .filter(|user| after.is_none_or(|after| user.as_str() > after))
                .collect();
            users.sort_unstable();
            // Deleted keys still list: read in chunks until the page is full.
            let mut live: Vec<(String, u64)> = Vec::new();
            let mut rest = users.into_iter();
            while live.len() <= limit {
                let chunk: Vec<String> = rest.by_ref().take(limit + 1 - live.len()).collect();
                if chunk.is_empty() {
                    break;
                }
                let counted: Vec<Result<(String, u64), BrokerError>> =
                    futures_util::stream::iter(chunk)
                        .map(|user| {
                            let key = format!("u.{channel_hex}.{}", hex(&user));
                            async move {
                                let (nodes, _, _) = Self::read::<Nodes>(bucket, &key).await?;
                                Ok((user, nodes.values().sum()))
                            }
                        })
                        .buffered(READS_IN_FLIGHT)
                        .collect()
                        .await;
                for result in counted {
                    let (user, count) = result?;
                    if count > 0 {
                        live.push((user, count));
                    }
                }
            }
            Ok(Page::from_overfetch(connections, live, limit))
        })
        .boxed()
    }

    fn announce<'a>(
        &'a self,
        channel: &'a ChannelName,
        kind: EventKind,
        data: &'a str,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        self.bounded(self.timeout, async move {
            let subject = subscriptions::subject(&self.prefix, &Topic::Channel(channel.clone()));
            let payload = envelope::encode_presence(&self.node, kind, data);
            self.client
                .publish(subject, payload.into())
                .await
                .map_err(|e| unavailable("event", e))
        })
        .boxed()
    }
}
