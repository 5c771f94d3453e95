//! Deleting presence keys without leaving them behind. A key-value delete
//! writes a marker that the bucket keeps (history 1: the marker replaces the
//! value), so every user ever seen in a channel, and every node that ever
//! ran, would stay in the bucket and in the listing each page reads. Here a
//! delete is followed by a purge of the key's subject bounded by the
//! marker's own stream sequence: what another instance wrote after the
//! marker survives, the marker and what came before it go.
//!
//! Owns only the delete-then-purge of one key; which keys and when is
//! `presence.rs`'s.

use bytes::Bytes;

use super::Bucket;

/// Deletes `key` if it is still at `revision` (compare-and-set), then
/// purges its marker. `false`: the key changed (or NATS did not answer), the
/// caller reads it again. A failed purge only leaves the marker, as a plain
/// delete would.
pub(super) async fn delete_expect_revision(bucket: &Bucket, key: &str, revision: u64) -> bool {
    delete_marked(bucket, key, Some(revision)).await.is_ok()
}

/// Deletes `key` whatever it holds (keys with one writer: a node's totals
/// and heartbeat), then purges its marker.
pub(super) async fn delete(bucket: &Bucket, key: &str) -> Result<(), async_nats::Error> {
    delete_marked(bucket, key, None).await
}

/// Writes the delete marker (compare-and-set on `expect` when given), then
/// purges it.
async fn delete_marked(
    bucket: &Bucket,
    key: &str,
    expect: Option<u64>,
) -> Result<(), async_nats::Error> {
    let subject = format!("{}{key}", bucket.subject_prefix);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("KV-Operation", "DEL");
    if let Some(revision) = expect {
        headers.insert(
            async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
            async_nats::HeaderValue::from(revision),
        );
    }
    let ack = bucket
        .js
        .publish_with_headers(subject.clone(), headers, Bytes::new())
        .await?
        .await?;
    purge_through(bucket, subject, ack.sequence).await;
    Ok(())
}

/// Purges `subject`'s messages up to and including stream sequence
/// `sequence` (the purge API's `seq` is exclusive).
pub(super) async fn purge_through(bucket: &Bucket, subject: String, sequence: u64) {
    let purged = bucket
        .stream
        .purge()
        .filter(subject)
        .sequence(sequence.saturating_add(1))
        .await;
    if let Err(error) = purged {
        tracing::debug!(%error, "presence key deleted; its marker stays");
    }
}
