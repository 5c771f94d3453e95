//! Pipelined publishes: a connection's publishes to channels with history
//! wait for the store's acknowledgement without holding up the next request.
//!
//! A publish is decided (rate limit, route plugin, inbound transforms) and
//! queued in the channel's appender ([`crate::history::Appender`]) in the
//! session's reading order, so one connection's publishes keep their order
//! per channel; only the wait for the broker's answer runs on its own task,
//! which then queues the reply. Replies may therefore go out in completion
//! order (their ids tell them apart). At most
//! [`MAX_INFLIGHT_PUBLISHES`] wait at once; one more stops the session from
//! reading (back-pressure), never unbounded memory. Any request other than a
//! publish first waits until every publish before it was answered, so a
//! subscribe, rpc or ping sees the effect of the publishes sent before it.
//! Owns the in-flight bound; decides nothing about routes or history.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Session;
use super::requests::broker_error;
use crate::history::Appended;
use crate::protocol::{Frame, RequestId};

/// Most publishes of one connection that may wait for the history store at
/// once; the session reads no further request until one is answered. With
/// batched appends, this is also the most one connection adds to a
/// channel's append queue.
pub const MAX_INFLIGHT_PUBLISHES: usize = 256;

/// The in-flight publishes of one connection.
#[derive(Debug, Default)]
pub(super) struct Publishes {
    /// Made at the first publish to a channel with history: an idle
    /// connection's memory counts (docs/benchmarks.md section 1).
    slots: std::sync::OnceLock<Arc<Semaphore>>,
}

impl Publishes {
    /// A slot for one more publish; waits (the session stops reading) while
    /// [`MAX_INFLIGHT_PUBLISHES`] are in flight.
    pub(super) async fn slot(&self) -> Option<OwnedSemaphorePermit> {
        let slots = self
            .slots
            .get_or_init(|| Arc::new(Semaphore::new(MAX_INFLIGHT_PUBLISHES)));
        Arc::clone(slots).acquire_owned().await.ok()
    }

    /// Waits until every publish in flight was answered.
    pub(super) async fn settle(&self) {
        let Some(slots) = self.slots.get() else {
            return;
        };
        if slots.available_permits() == MAX_INFLIGHT_PUBLISHES {
            return;
        }
        // Every slot at once: held by no publish, so none is in flight.
        let all = MAX_INFLIGHT_PUBLISHES as u32;
        drop(slots.acquire_many(all).await);
    }
}

impl Session {
    /// Answers publish `id` once every one of `kept` (its appends, already
    /// queued) has an outcome: `ok` when all were stored, the first error
    /// otherwise. Holds `slot` until then.
    pub(super) fn answer_when_kept(
        &self,
        id: RequestId,
        kept: Vec<Appended>,
        slot: Option<OwnedSemaphorePermit>,
    ) {
        let gateway = Arc::clone(&self.gateway);
        let outbox = Arc::clone(&self.outbox);
        tokio::spawn(async move {
            let mut failure = None;
            for appended in kept {
                match crate::history::Publishing::Kept(appended).done().await {
                    Ok(()) => gateway.metrics.published("ws"),
                    Err(error) => {
                        failure.get_or_insert(error);
                    }
                }
            }
            let frame = match failure {
                None => Frame::ok(&id),
                Some(error) => {
                    let error = broker_error(&error);
                    gateway.metrics.request_error(error.code);
                    Frame::error(Some(&id), &error)
                }
            };
            gateway.hub.push(&outbox, frame);
            drop(slot);
        });
    }
}
