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

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_nats::Client;
use async_nats::connection::State;
use async_nats::jetstream::kv::{self, Operation, Store};
use async_nats::jetstream::stream::Stream;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt, TryStreamExt};
use parking_lot::Mutex;
use tokio::sync::OnceCell;

use self::totals::Totals;
use self::writes::Unanswered;
use super::subscriptions;
use crate::broker::BrokerError;
use crate::broker::envelope;
use crate::broker::interest::Topic;
use crate::presence::{
    Beat, Change, ENTRY_TTL, EventKind, Gone, Member, Page, PresenceStore, WRITE_MEMORY, WriteId,
};
use crate::protocol::ChannelName;

mod cleanup;
mod totals;
mod writes;

/// Compare-and-set attempts on one key before the write is refused.
const MAX_CAS_ATTEMPTS: usize = 32;

/// Concurrent key reads of one page or sweep.
const READS_IN_FLIGHT: usize = 64;

type Nodes = BTreeMap<String, u64>;

/// The bucket and its stream, opened once.
#[derive(Debug)]
struct Bucket {
    kv: Store,
    stream: Stream,
    /// For deletes that report their sequence (`cleanup`).
    js: async_nats::jetstream::Context,
    subject_prefix: String,
}

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

    async fn bucket(&self) -> Result<&Bucket, BrokerError> {
        if self.client.connection_state() != State::Connected {
            return Err(BrokerError::Unavailable(
                "NATS is disconnected: presence cannot be read or written".to_owned(),
            ));
        }
        self.bucket
            .get_or_try_init(|| async {
                let name = format!("{}_presence", self.prefix.replace('.', "_"));
                let js = async_nats::jetstream::new(self.client.clone());
                // The bucket's stream, made by hand with the key-value
                // conventions: async-nats' own `create_key_value` cannot read
                // nats-server 2.9's answer.
                let config = async_nats::jetstream::stream::Config {
                    name: format!("KV_{name}"),
                    subjects: vec![format!("$KV.{name}.>")],
                    max_messages_per_subject: 1,
                    discard: async_nats::jetstream::stream::DiscardPolicy::New,
                    allow_direct: true,
                    allow_rollup: true,
                    deny_delete: true,
                    // How long a write's `Nats-Msg-Id` is remembered
                    // (`writes.rs`); the server's default, said here.
                    duplicate_window: WRITE_MEMORY,
                    ..Default::default()
                };
                js.get_or_create_stream(config)
                    .await
                    .map_err(|e| unavailable("bucket", e))?;
                let kv = js
                    .get_key_value(&name)
                    .await
                    .map_err(|e| unavailable("bucket", e))?;
                let stream = js
                    .get_stream(format!("KV_{name}"))
                    .await
                    .map_err(|e| unavailable("bucket stream", e))?;
                Ok(Bucket {
                    kv,
                    stream,
                    js,
                    subject_prefix: format!("$KV.{name}."),
                })
            })
            .await
    }

    /// Every key matching `filter` (a key pattern), deleted ones included.
    async fn keys(&self, bucket: &Bucket, filter: &str) -> Result<Vec<String>, BrokerError> {
        let subjects = bucket
            .stream
            .info_with_subjects(format!("{}{filter}", bucket.subject_prefix))
            .await
            .map_err(|e| unavailable("listing", e))?;
        let subjects: Vec<(String, usize)> = subjects
            .try_collect()
            .await
            .map_err(|e| unavailable("listing", e))?;
        Ok(subjects
            .into_iter()
            .filter_map(|(subject, _)| {
                subject
                    .strip_prefix(&bucket.subject_prefix)
                    .map(str::to_owned)
            })
            .collect())
    }

    /// The value of `key` and the revision to write against (0: none).
    async fn read<T: serde::de::DeserializeOwned + Default>(
        bucket: &Bucket,
        key: &str,
    ) -> Result<(T, u64, Option<kv::Entry>), BrokerError> {
        let entry = bucket
            .kv
            .entry(key)
            .await
            .map_err(|e| unavailable("read", e))?;
        let Some(entry) = entry else {
            return Ok((T::default(), 0, None));
        };
        let value = if entry.operation == Operation::Put {
            serde_json::from_slice(&entry.value).unwrap_or_default()
        } else {
            T::default()
        };
        Ok((value, entry.revision, Some(entry)))
    }

    /// Removes `node` from every user of its channels, then its `t` keys.
    async fn remove(&self, bucket: &Bucket, node: &str) -> Result<Vec<Gone>, BrokerError> {
        let mut gone = Vec::new();
        for key in self.keys(bucket, &format!("t.*.{node}")).await? {
            let Some(channel_hex) = key.split('.').nth(1) else {
                continue;
            };
            let Some(channel) =
                crate::presence::decode_cursor(channel_hex).and_then(|c| ChannelName::new(&c).ok())
            else {
                continue;
            };
            let users = self.keys(bucket, &format!("u.{channel_hex}.*")).await?;
            let results: Vec<Result<Option<String>, BrokerError>> =
                futures_util::stream::iter(users)
                    .map(|key| async move {
                        // Its own slot: a retry (the next sweep here) of a
                        // removal whose answer was lost learns its outcome.
                        let slot = format!("{key} {node}");
                        let change = writes::update(
                            bucket,
                            &self.unanswered,
                            (&slot, 0, &self.node),
                            &key,
                            |nodes| {
                                nodes.remove(node);
                            },
                        )
                        .await?;
                        let left = change.before > 0 && change.after == 0;
                        Ok(left
                            .then(|| {
                                key.split('.')
                                    .nth(2)
                                    .and_then(crate::presence::decode_cursor)
                            })
                            .flatten())
                    })
                    .buffer_unordered(READS_IN_FLIGHT)
                    .collect()
                    .await;
            for result in results {
                if let Some(user) = result? {
                    gone.push(Gone {
                        channel: channel.clone(),
                        user,
                    });
                }
            }
            cleanup::delete(bucket, &key)
                .await
                .map_err(|e| unavailable("delete", e))?;
        }
        Ok(gone)
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
        self.bounded(self.timeout, async move {
            let bucket = self.bucket().await?;
            let key = format!("n.{}", self.node);
            let last = *self.beat.lock();
            let value = Bytes::from_static(b"1");
            let (revision, beat) = match last {
                Some(revision) => match bucket.kv.update(&key, value.clone(), revision).await {
                    Ok(revision) => (revision, Beat::Kept),
                    // Only this node puts `n.N`: still there, it is this
                    // node's own earlier beat whose answer was lost; gone,
                    // a sweeper judged this node dead and deleted it.
                    Err(_) => match Self::read::<serde_json::Value>(bucket, &key).await? {
                        (_, revision, Some(entry)) if entry.operation == Operation::Put => {
                            (revision, Beat::Kept)
                        }
                        _ => (
                            bucket
                                .kv
                                .put(&key, value)
                                .await
                                .map_err(|e| unavailable("heartbeat", e))?,
                            Beat::Lost,
                        ),
                    },
                },
                None => (
                    bucket
                        .kv
                        .put(&key, value)
                        .await
                        .map_err(|e| unavailable("heartbeat", e))?,
                    Beat::Kept,
                ),
            };
            *self.beat.lock() = Some(revision);
            // Totals a burst left unwritten, within half the budget so the
            // beat itself is reported in time; the rest wait a beat more.
            let flush = async {
                for channel in self.totals.dirty() {
                    if let Err(error) = self.write_total(bucket, &channel).await {
                        tracing::warn!(%channel, %error, "presence total still not written");
                    }
                }
            };
            if tokio::time::timeout(self.timeout / 2, flush).await.is_err() {
                tracing::warn!("presence totals not all written within the heartbeat");
            }
            Ok(beat)
        })
        .boxed()
    }

    fn sweep(&self) -> BoxFuture<'_, Result<Vec<Gone>, BrokerError>> {
        self.bounded(ENTRY_TTL, async move {
            let bucket = self.bucket().await?;
            let (_, _, own) =
                Self::read::<serde_json::Value>(bucket, &format!("n.{}", self.node)).await?;
            let Some(now) = own.map(|e| e.created) else {
                return Ok(Vec::new());
            };
            let ttl_ms = i128::try_from(ENTRY_TTL.as_millis()).unwrap_or(i128::MAX);
            let mut dead = Vec::new();
            for key in self.keys(bucket, "n.*").await? {
                let node = key.trim_start_matches("n.").to_owned();
                if node == *self.node {
                    continue;
                }
                let (_, revision, entry) = Self::read::<serde_json::Value>(bucket, &key).await?;
                if let Some(entry) = entry
                    && entry.operation == Operation::Put
                    && (now - entry.created).whole_milliseconds() > ttl_ms
                    && cleanup::delete_expect_revision(bucket, &key, revision).await
                {
                    dead.push(node);
                }
            }
            // Nodes whose sweeper died mid-way: `t` keys, no record, old.
            for key in self.keys(bucket, "t.*.*").await? {
                let Some(node) = key.split('.').nth(2).map(str::to_owned) else {
                    continue;
                };
                if node == *self.node || dead.contains(&node) {
                    continue;
                }
                let (_, _, record) =
                    Self::read::<serde_json::Value>(bucket, &format!("n.{node}")).await?;
                if record.is_some_and(|r| r.operation == Operation::Put) {
                    continue;
                }
                let (_, _, total) = Self::read::<serde_json::Value>(bucket, &key).await?;
                if total.is_some_and(|t| {
                    t.operation == Operation::Put && (now - t.created).whole_milliseconds() > ttl_ms
                }) {
                    dead.push(node);
                }
            }
            let mut gone = Vec::new();
            for node in dead {
                tracing::info!(%node, "removing the presence entries of a dead instance");
                gone.extend(self.remove(bucket, &node).await?);
            }
            Ok(gone)
        })
        .boxed()
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
