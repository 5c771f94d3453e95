//! The presence bucket: opening it (its stream made by hand with the
//! key-value conventions) and the two reads every other part is built on,
//! listing keys by subject and reading one key with its revision.
//!
//! Owns only access to the bucket; what the keys mean, and every write, is
//! `presence.rs`'s and its other children's.

use async_nats::connection::State;
use async_nats::jetstream::kv::{self, Operation, Store};
use async_nats::jetstream::stream::Stream;
use futures_util::TryStreamExt;

use super::{NatsPresence, unavailable};
use crate::broker::BrokerError;
use crate::presence::WRITE_MEMORY;

/// The bucket and its stream, opened once.
#[derive(Debug)]
pub(super) struct Bucket {
    pub(super) kv: Store,
    pub(super) stream: Stream,
    /// For deletes that report their sequence (`cleanup`).
    pub(super) js: async_nats::jetstream::Context,
    pub(super) subject_prefix: String,
}

impl NatsPresence {
    /// The bucket, opened (and its stream made) on first use; `unavailable`
    /// while NATS is disconnected or JetStream does not answer.
    pub(super) async fn bucket(&self) -> Result<&Bucket, BrokerError> {
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
    pub(super) async fn keys(
        &self,
        bucket: &Bucket,
        filter: &str,
    ) -> Result<Vec<String>, BrokerError> {
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
    pub(super) async fn read<T: serde::de::DeserializeOwned + Default>(
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
}
