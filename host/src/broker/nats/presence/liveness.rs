//! Node liveness in the presence bucket: this node's heartbeat (`n.N`),
//! the sweep that finds dead nodes by server time, and the removal of a
//! node's entries from every user of its channels.
//!
//! Owns the `n.N` keys and the removal walk; per-user writes are
//! [`super::writes`]'s, deletes [`super::cleanup`]'s, totals `presence.rs`'s.

use async_nats::jetstream::kv::Operation;
use bytes::Bytes;
use futures_util::StreamExt;

use super::{Bucket, NatsPresence, READS_IN_FLIGHT, cleanup, unavailable, writes};
use crate::broker::BrokerError;
use crate::presence::{Beat, ENTRY_TTL, Gone};
use crate::protocol::ChannelName;

impl NatsPresence {
    /// Refreshes `n.N` (compare-and-set on its last revision; a beat found
    /// deleted is [`Beat::Lost`]), then writes the totals a burst left dirty.
    pub(super) async fn beat_once(&self) -> Result<Beat, BrokerError> {
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
    }

    /// Finds the dead nodes (a record stamped more than [`ENTRY_TTL`] before
    /// this node's own, or old `t` keys and no record) and removes them.
    pub(super) async fn sweep_once(&self) -> Result<Vec<Gone>, BrokerError> {
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
    }

    /// Removes `node` from every user of its channels, then its `t` keys.
    pub(super) async fn remove(
        &self,
        bucket: &Bucket,
        node: &str,
    ) -> Result<Vec<Gone>, BrokerError> {
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
}
