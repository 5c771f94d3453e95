//! The messages a subscribe with `since` replays, read from JetStream by one
//! ephemeral pull consumer (no acks, in memory) filtered to the channel's
//! subject: every kept message of the channel up to the position read
//! before, of which those after `since` are kept.
//!
//! The consumer is deleted once read (and expires by itself
//! [`INACTIVE`] after, should the delete be lost). Cost: one consumer
//! creation and the channel's kept messages (at most its route's `size`)
//! per recovering subscribe. Decides nothing about recovery: a message it
//! leaves out (expired, of another epoch, not an envelope) is a hole that
//! `crate::history::recovery` refuses.

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use futures_util::StreamExt;

use super::stream::HistoryStream;
use crate::broker::{BrokerError, envelope};
use crate::history::Kept;
use crate::protocol::{ChannelName, Frame};

/// How long the server keeps a replay consumer nobody reads.
pub const INACTIVE: Duration = Duration::from_secs(30);

/// What one replay read wants.
#[derive(Debug)]
pub struct Window<'a> {
    pub channel: &'a ChannelName,
    pub subject: &'a str,
    /// Messages after this offset ...
    pub after: u64,
    /// ... up to this stream sequence (the position read before) ...
    pub last_seq: u64,
    /// ... and this offset ...
    pub last_offset: u64,
    /// ... in this epoch ...
    pub epoch: &'a str,
    /// ... stored at or after this time (ms since the Unix epoch) ...
    pub oldest_ms: i128,
    /// ... at most this many ...
    pub max: usize,
    /// ... each at most this many bytes.
    pub max_bytes: usize,
}

/// Reads `window` (see the module docs), oldest first.
pub async fn read(stream: &HistoryStream, window: Window<'_>) -> Result<Vec<Kept>, BrokerError> {
    let failed = |e: &dyn std::fmt::Display| {
        BrokerError::Unavailable(format!("JetStream: replay of {}: {e}", window.channel))
    };
    let handle = stream
        .js()
        .get_stream_no_info(stream.name())
        .await
        .map_err(|e| failed(&e))?;
    let consumer = handle
        .create_consumer(pull::Config {
            filter_subject: window.subject.to_owned(),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::None,
            inactive_threshold: INACTIVE,
            memory_storage: true,
            ..Default::default()
        })
        .await
        .map_err(|e| failed(&e))?;
    let name = consumer.cached_info().name.clone();
    let pending = usize::try_from(consumer.cached_info().num_pending).unwrap_or(usize::MAX);
    let mut entries = Vec::new();
    let mut result = Ok(());
    if pending > 0 {
        match consumer.fetch().max_messages(pending).messages().await {
            Ok(mut messages) => {
                while let Some(message) = messages.next().await {
                    let message = match message {
                        Ok(message) => message,
                        Err(e) => {
                            result = Err(failed(&e));
                            break;
                        }
                    };
                    let Ok(info) = message.info() else { continue };
                    let (seq, left, at_ms) = (
                        info.stream_sequence,
                        info.pending,
                        info.published.unix_timestamp_nanos() / 1_000_000,
                    );
                    if seq > window.last_seq {
                        break;
                    }
                    if at_ms >= window.oldest_ms
                        && let Some(kept) = keep(&window, &message.payload)
                    {
                        entries.push(kept);
                    }
                    if seq == window.last_seq || left == 0 || entries.len() >= window.max {
                        break;
                    }
                }
            }
            Err(e) => result = Err(failed(&e)),
        }
    }
    tokio::spawn(async move {
        // Best effort: the server drops it after `INACTIVE` anyway.
        let _ = handle.delete_consumer(&name).await;
    });
    result.map(|()| entries)
}

/// The push frame of one stored message when it belongs in `window`.
fn keep(window: &Window<'_>, payload: &[u8]) -> Option<Kept> {
    let decoded = envelope::decode(payload, window.max_bytes).ok()?;
    let (offset, epoch) = decoded.at?;
    let wanted = epoch == window.epoch && offset > window.after && offset <= window.last_offset;
    wanted.then(|| Kept {
        offset,
        frame: Frame::push_at(window.channel, decoded.data, offset, &epoch),
    })
}
