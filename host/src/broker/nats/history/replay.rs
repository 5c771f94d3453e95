//! The messages a subscribe with `since` replays, read from JetStream by
//! direct gets (`$JS.API.DIRECT.GET.<stream>`, one message by stream
//! sequence; nats-server 2.9 answers one message per request) walking the
//! channel's chain backwards from the position read before.
//!
//! The chain: every history message is stored with the header
//! `Nats-Expected-Last-Subject-Sequence`, the stream sequence of the
//! channel's previous message (JetStream keeps the headers a message was
//! published with), so the message at offset K names where K - 1 is. A walk
//! costs one direct get per missed message and no server-side state (no
//! consumer to create, which nats-server serialises). A batch record (see
//! `super`) holds several consecutive offsets: the walk takes those after
//! the offset asked for, newest first, and goes on before the record's
//! first. Each get is bounded by `[broker] timeout_ms`, the walk as a whole
//! only by the number of messages asked for: a storm of walks that all
//! progress slowly completes instead of timing out together.
//!
//! Concurrent walks share their gets: [`Reader`] keeps each fetched message
//! by stream sequence (a stream sequence names one message for the life of
//! the stream; what a walk takes from it is checked against the channel's
//! subject, epoch and offset, and a cached message of another channel or
//! epoch, as after the stream was recreated, is read again), and a get
//! already in flight is
//! awaited, not repeated. So a storm of clients recovering the same channel
//! reads each missed message once per instance. Bounded by
//! [`MAX_CACHED_BYTES`]. Decides nothing about recovery: a walk that stops
//! early (a message expired, evicted, of another epoch, without the header)
//! leaves a hole that `crate::history::recovery` refuses.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE;
use async_nats::jetstream::stream::{DirectGetErrorKind, Stream};
use tokio::sync::OnceCell;

use super::stream::HistoryStream;
use crate::broker::{BrokerError, envelope};
use crate::history::Kept;
use crate::protocol::{ChannelName, Frame};

/// Payload bytes of fetched messages one instance keeps for later walks;
/// past it the whole cache is dropped (walks in flight keep what they hold).
pub const MAX_CACHED_BYTES: usize = 16 << 20;

/// What one cached message costs besides its subject and frame (map entry,
/// cell, `Stored`), in bytes, roughly.
const CELL_BYTES: usize = 128;

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
    /// ... each at most this many bytes; each get waits at most `timeout`.
    pub max_bytes: usize,
    pub timeout: std::time::Duration,
}

/// One stored message as a walk needs it.
#[derive(Debug)]
struct Stored {
    subject: Box<str>,
    /// Stream sequence of the subject's previous message (0: none), from the
    /// header it was stored with; `None` when it has none.
    prev: Option<u64>,
    /// When JetStream stored it, in ms since the Unix epoch.
    at_ms: i128,
    /// First offset, epoch and push frames (one per message, at consecutive
    /// offsets), when it is a kept record.
    kept: Option<(u64, Box<str>, Vec<Frame>)>,
}

impl Stored {
    /// Whether it is a kept message of `window`'s channel and epoch.
    fn belongs(&self, window: &Window<'_>) -> bool {
        *self.subject == *window.subject
            && self
                .kept
                .as_ref()
                .is_some_and(|(_, epoch, _)| **epoch == *window.epoch)
    }
}

/// Why a get brought no message; neither is cached.
enum Miss {
    /// The stream (or the replica that answered) has no message at that
    /// sequence: deleted, expired, evicted, or not there yet.
    NotFound,
    Failed(BrokerError),
}

#[derive(Debug, Default)]
struct Cache {
    cells: HashMap<u64, Arc<OnceCell<Arc<Stored>>>>,
    bytes: usize,
}

/// The replay reader of one instance: see the module docs.
#[derive(Debug, Default)]
pub struct Reader {
    cache: Mutex<Cache>,
}

impl Reader {
    /// Reads `window` (see the module docs), oldest first: the messages at
    /// offsets `after + 1 ..= last_offset` as long as the chain holds, fewer
    /// when it breaks. Errors only when JetStream does not answer.
    pub async fn read(
        &self,
        stream: &HistoryStream,
        window: Window<'_>,
    ) -> Result<Vec<Kept>, BrokerError> {
        let handle = stream
            .js()
            .get_stream_no_info(stream.name())
            .await
            .map_err(|e| failed(&window, &e))?;
        let missed = window.last_offset.saturating_sub(window.after);
        let mut entries = Vec::with_capacity(usize::try_from(missed).unwrap_or(0).min(window.max));
        let (mut seq, mut want) = (window.last_seq, window.last_offset);
        while want > window.after && entries.len() < window.max {
            let Some(mut stored) = self.get(&handle, seq, &window).await? else {
                break;
            };
            if !stored.belongs(&window) {
                // Another channel or epoch at this sequence: a message of a
                // deleted and recreated stream may still be cached. Once
                // from the server; what it says stands.
                self.forget(seq, &stored);
                match self.get(&handle, seq, &window).await? {
                    Some(fresh) if fresh.belongs(&window) => stored = fresh,
                    _ => break,
                }
            }
            let Some((first, _, frames)) = &stored.kept else {
                break;
            };
            let newest = *first + frames.len() as u64 - 1;
            if newest != want || stored.at_ms < window.oldest_ms {
                break;
            }
            // Newest first, down to the record's first or the offset after `after`.
            for (index, frame) in frames.iter().enumerate().rev() {
                let offset = *first + index as u64;
                if offset <= window.after || entries.len() >= window.max {
                    break;
                }
                entries.push(Kept {
                    offset,
                    frame: frame.clone(),
                });
            }
            want = first.saturating_sub(1);
            if want <= window.after || entries.len() >= window.max {
                break;
            }
            match stored.prev {
                // Sequences only fall along the chain: no walk loops.
                Some(prev) if prev > 0 && prev < seq => seq = prev,
                _ => break,
            }
        }
        entries.reverse();
        Ok(entries)
    }

    /// Drops the cached `stored` at `seq` (not a newer fetch that replaced it).
    fn forget(&self, seq: u64, stored: &Arc<Stored>) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let cached = cache.cells.get(&seq).and_then(|cell| cell.get());
        if cached.is_some_and(|cached| Arc::ptr_eq(cached, stored)) {
            cache.cells.remove(&seq);
        }
    }

    /// The message at `seq`, from the cache, from a get in flight, or read now.
    async fn get(
        &self,
        handle: &Stream<()>,
        seq: u64,
        window: &Window<'_>,
    ) -> Result<Option<Arc<Stored>>, BrokerError> {
        let cell = {
            let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            if cache.bytes > MAX_CACHED_BYTES {
                *cache = Cache::default();
            }
            let Cache { cells, bytes } = &mut *cache;
            Arc::clone(cells.entry(seq).or_insert_with(|| {
                *bytes += CELL_BYTES;
                Arc::default()
            }))
        };
        // A get that brought nothing leaves the cell empty: the next walk
        // (or a waiter of this one) asks again.
        let fetched = cell
            .get_or_try_init(|| async {
                let stored = fetch(handle, seq, window).await?;
                let frame = stored.kept.as_ref().map_or(0, |(_, _, frames)| {
                    frames.iter().map(Frame::len).sum::<usize>()
                });
                let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
                cache.bytes += stored.subject.len() + frame;
                Ok::<_, Miss>(stored)
            })
            .await;
        match fetched {
            Ok(stored) => Ok(Some(Arc::clone(stored))),
            Err(Miss::NotFound) => Ok(None),
            Err(Miss::Failed(error)) => Err(error),
        }
    }
}

/// One direct get of `seq`.
async fn fetch(handle: &Stream<()>, seq: u64, window: &Window<'_>) -> Result<Arc<Stored>, Miss> {
    let got = tokio::time::timeout(window.timeout, handle.direct_get(seq))
        .await
        .map_err(|_| {
            let waited = format!("no answer to a direct get within {:?}", window.timeout);
            Miss::Failed(failed(window, &waited))
        })?;
    let message = got.map_err(|e| match e.kind() {
        DirectGetErrorKind::NotFound => Miss::NotFound,
        _ => Miss::Failed(failed(window, &e)),
    })?;
    let prev = message
        .headers
        .get(NATS_EXPECTED_LAST_SUBJECT_SEQUENCE)
        .and_then(|value| value.as_str().parse().ok());
    // The frame names the walker's channel: checked against the subject
    // before anyone uses it.
    let kept = envelope::decode(&message.payload, window.max_bytes)
        .ok()
        .and_then(|decoded| {
            let (first, epoch) = decoded.at?;
            let all = std::iter::once(decoded.data).chain(decoded.more);
            let frames = (first..)
                .zip(all)
                .map(|(offset, data)| Frame::push_at(window.channel, data, offset, &epoch))
                .collect();
            Some((first, epoch.into_boxed_str(), frames))
        });
    Ok(Arc::new(Stored {
        subject: message.subject.as_str().into(),
        prev,
        at_ms: message.time.unix_timestamp_nanos() / 1_000_000,
        kept,
    }))
}

fn failed(window: &Window<'_>, error: &dyn std::fmt::Display) -> BrokerError {
    BrokerError::Unavailable(format!("JetStream: replay of {}: {error}", window.channel))
}
