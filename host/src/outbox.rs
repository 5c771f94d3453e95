//! A connection's bounded outbound queue.
//!
//! Fan-out pushes shared [`Frame`]s here without blocking; the connection's
//! writer takes everything queued in one batch and writes it with few syscalls.
//! The queue is bounded in bytes: the push that would overflow it empties the
//! queue and asks for the session to close with 1013, so one slow client costs
//! at most `max_bytes` of memory and never slows a publisher down.
//!
//! The outbox knows nothing about sockets; the session's writer drains it.

use std::collections::VecDeque;

use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::close::CloseReason;
use crate::protocol::Frame;

/// Bookkeeping bytes charged per queued frame on top of its length, so that a
/// flood of tiny frames is bounded too.
const FRAME_OVERHEAD: usize = 64;

/// Above this many slots an empty queue gives its memory back, so that idle
/// connections stay small after a burst.
const SHRINK_ABOVE_SLOTS: usize = 64;

/// See the module docs.
#[derive(Debug)]
pub struct Outbox {
    state: Mutex<State>,
    /// The one consumer (the session's writer) waiting for work. Inline and
    /// allocation-free: an idle session's outbox is part of its idle memory.
    ready: AtomicWaker,
    /// Whoever waits in [`Outbox::closing`].
    closed: Notify,
    max_bytes: usize,
}

#[derive(Debug, Default)]
struct State {
    frames: VecDeque<Frame>,
    bytes: usize,
    close: Option<CloseReason>,
}

/// What happened to a pushed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued for the writer.
    Queued,
    /// The queue was full: this frame and `dropped` queued ones were discarded
    /// and the session is closing with 1013.
    Overflowed {
        /// Frames discarded, this one included.
        dropped: usize,
    },
    /// The session is already closing; the frame was discarded.
    Closed,
}

/// What the writer should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Frames were moved into the batch: write them.
    Frames,
    /// Nothing left to write: close the session for this reason.
    Close(CloseReason),
}

impl Outbox {
    /// An empty outbox holding at most `max_bytes`.
    pub fn new(max_bytes: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            ready: AtomicWaker::new(),
            closed: Notify::new(),
            max_bytes,
        }
    }

    /// Queues `frame` without waiting.
    pub fn push(&self, frame: Frame) -> Pushed {
        let mut state = self.state.lock();
        if state.close.is_some() {
            return Pushed::Closed;
        }
        let cost = frame.len() + FRAME_OVERHEAD;
        // An empty queue always takes one frame, so that a single message near
        // the size limit never counts as falling behind.
        if !state.frames.is_empty() && state.bytes + cost > self.max_bytes {
            let dropped = state.frames.len() + 1;
            state.discard();
            state.close = Some(CloseReason::SlowConsumer);
            drop(state);
            self.wake_for_close();
            return Pushed::Overflowed { dropped };
        }
        let was_empty = state.frames.is_empty();
        state.frames.push_back(frame);
        state.bytes += cost;
        drop(state);
        if was_empty {
            self.ready.wake();
        }
        Pushed::Queued
    }

    /// Asks the session to close; the first reason wins. Returns the number of
    /// queued frames discarded (see [`CloseReason::discards_pending`]).
    pub fn close(&self, reason: CloseReason) -> usize {
        let mut state = self.state.lock();
        if state.close.is_some() {
            return 0;
        }
        let discarded = if reason.discards_pending() {
            let n = state.frames.len();
            state.discard();
            n
        } else {
            0
        };
        state.close = Some(reason);
        drop(state);
        self.wake_for_close();
        discarded
    }

    /// Resolves once a close has been requested, whatever the reason; any
    /// number of tasks may wait.
    pub async fn closing(&self) {
        loop {
            let mut notified = std::pin::pin!(self.closed.notified());
            // Registered before the check, so a close in between still wakes it.
            notified.as_mut().enable();
            if self.state.lock().close.is_some() {
                return;
            }
            notified.await;
        }
    }

    /// The reason of the requested close, if any.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.state.lock().close
    }

    /// Waits for work: moves queued frames into `batch` (up to about
    /// `max_batch_bytes`) or reports the close once nothing is left to send.
    /// One consumer at a time (see [`Outbox::poll_next`]).
    pub async fn next(&self, batch: &mut Vec<Frame>, max_batch_bytes: usize) -> Next {
        std::future::poll_fn(|cx| self.poll_next(cx, batch, max_batch_bytes)).await
    }

    /// [`Outbox::next`] for a hand-written future: `Pending` registers `cx`'s
    /// waker, woken by the next push or close. The outbox keeps one waker, so
    /// it has one consumer: the session's writer.
    pub fn poll_next(
        &self,
        cx: &mut Context<'_>,
        batch: &mut Vec<Frame>,
        max_batch_bytes: usize,
    ) -> Poll<Next> {
        self.poll_take(cx, max_batch_bytes, |frame| batch.push(frame))
    }

    /// [`Outbox::poll_next`] handing each frame taken to `take`, in order,
    /// while the queue is locked (so `take` must be quick: the writer
    /// appends to its batch); no vector in between.
    pub fn poll_take(
        &self,
        cx: &mut Context<'_>,
        max_batch_bytes: usize,
        take: impl FnMut(Frame),
    ) -> Poll<Next> {
        let mut state = self.state.lock();
        if !state.frames.is_empty() {
            state.take(max_batch_bytes, take);
            return Poll::Ready(Next::Frames);
        }
        if let Some(reason) = state.close {
            return Poll::Ready(Next::Close(reason));
        }
        // Registered under the lock a push takes first, so no wake-up is lost.
        self.ready.register(cx.waker());
        Poll::Pending
    }

    /// The bound this outbox was made with, in bytes.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Bytes currently queued (frame lengths plus overhead).
    pub fn queued_bytes(&self) -> usize {
        self.state.lock().bytes
    }

    fn wake_for_close(&self) {
        self.closed.notify_waiters();
        self.ready.wake();
    }
}

impl State {
    fn take(&mut self, max_batch_bytes: usize, mut take: impl FnMut(Frame)) {
        let mut taken = 0;
        while let Some(frame) = self.frames.front() {
            if taken > 0 && taken + frame.len() > max_batch_bytes {
                break;
            }
            taken += frame.len();
            self.bytes -= frame.len() + FRAME_OVERHEAD;
            if let Some(frame) = self.frames.pop_front() {
                take(frame);
            }
        }
        if self.frames.is_empty() && self.frames.capacity() > SHRINK_ABOVE_SLOTS {
            self.frames = VecDeque::new();
        }
    }

    fn discard(&mut self) {
        self.frames = VecDeque::new();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: usize) -> Frame {
        Frame::from("x".repeat(len))
    }

    #[tokio::test]
    async fn batches_everything_queued_in_order() {
        let outbox = Outbox::new(10_000);
        for i in 0..5 {
            assert_eq!(outbox.push(Frame::from(i.to_string())), Pushed::Queued);
        }
        let mut batch = Vec::new();
        assert_eq!(outbox.next(&mut batch, 1 << 20).await, Next::Frames);
        let texts: Vec<_> = batch.iter().map(Frame::as_str).collect();
        assert_eq!(texts, ["0", "1", "2", "3", "4"]);
        assert_eq!(outbox.queued_bytes(), 0);
    }

    #[tokio::test]
    async fn batch_size_is_bounded_but_always_makes_progress() {
        let outbox = Outbox::new(100_000);
        outbox.push(frame(5000));
        outbox.push(frame(10));
        let mut batch = Vec::new();
        outbox.next(&mut batch, 100).await;
        assert_eq!(batch.len(), 1, "an oversize frame still goes alone");
        batch.clear();
        outbox.next(&mut batch, 100).await;
        assert_eq!(batch.len(), 1);
    }

    #[tokio::test]
    async fn overflow_discards_and_closes_with_slow_consumer() {
        let outbox = Outbox::new(3 * (frame(100).len() + FRAME_OVERHEAD));
        for _ in 0..3 {
            assert_eq!(outbox.push(frame(100)), Pushed::Queued);
        }
        assert_eq!(outbox.push(frame(100)), Pushed::Overflowed { dropped: 4 });
        assert_eq!(outbox.push(frame(1)), Pushed::Closed);
        let mut batch = Vec::new();
        assert_eq!(
            outbox.next(&mut batch, 1 << 20).await,
            Next::Close(CloseReason::SlowConsumer)
        );
        assert!(batch.is_empty());
        outbox.closing().await;
    }

    #[test]
    fn an_empty_queue_takes_one_frame_of_any_size() {
        let outbox = Outbox::new(100);
        assert_eq!(outbox.push(frame(500)), Pushed::Queued);
        assert_eq!(outbox.push(frame(1)), Pushed::Overflowed { dropped: 2 });
    }

    #[tokio::test]
    async fn drain_close_sends_pending_frames_first() {
        let outbox = Outbox::new(10_000);
        outbox.push(frame(3));
        assert_eq!(outbox.close(CloseReason::Draining), 0);
        assert_eq!(
            outbox.close(CloseReason::SlowConsumer),
            0,
            "first reason wins"
        );
        let mut batch = Vec::new();
        assert_eq!(outbox.next(&mut batch, 1 << 20).await, Next::Frames);
        assert_eq!(
            outbox.next(&mut batch, 1 << 20).await,
            Next::Close(CloseReason::Draining)
        );
    }

    #[tokio::test]
    async fn a_waiting_writer_is_woken_by_a_push() {
        let outbox = std::sync::Arc::new(Outbox::new(10_000));
        let writer = {
            let outbox = outbox.clone();
            tokio::spawn(async move {
                let mut batch = Vec::new();
                outbox.next(&mut batch, 1 << 20).await;
                batch.len()
            })
        };
        tokio::task::yield_now().await;
        outbox.push(frame(1));
        assert_eq!(writer.await.expect("writer task"), 1);
    }
}
