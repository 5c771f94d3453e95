//! The writing half of a session: outbox batches and pings out, close last.
//!
//! Frames arrive already encoded and shared with other recipients; a batch is
//! handed to the kernel with vectored writes, so a burst of pushes costs a few
//! syscalls and no copies in user space. [`Writer`] is a state machine polled
//! by the session's connection future (`super::websocket`) and owns the
//! socket's write half, the ping period and the close deadline; it reads
//! nothing from the client.
//!
//! Closing: once a close is requested (the outbox says why), whatever is
//! queued and then the close frame must be written within `close_grace_ms`;
//! past that the client is not reading and the socket is shut down. A close
//! that discards pending frames (the queue overflowed) leaves only the bytes
//! of a write already started, then the close frame.

use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Buf;
use tokio::io::AsyncWrite;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::time::{Instant, Sleep};

use super::socket::{Batch, Gather, MAX_IOVECS};
use crate::close::CloseReason;
use crate::gateway::Gateway;
use crate::outbox::{Next, Outbox};
use crate::protocol::Frame;

/// Most bytes taken from the outbox per batch.
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// See the module docs.
pub(super) struct Writer {
    socket: OwnedWriteHalf,
    outbox: Arc<Outbox>,
    gateway: Arc<Gateway>,
    /// What is being written; holds no allocation while the session is
    /// idle, nor for a batch of one small frame.
    batch: Batch,
    /// Frames in `batch` not yet counted as delivered.
    unconfirmed: u64,
    /// When the next ping is queued.
    next_ping: Instant,
    /// The close is in `batch` (or sends no frame): shut down once written.
    last: Option<CloseReason>,
    /// When a requested close must be done: set when the writer first sees it.
    close_by: Option<Instant>,
    /// Finished, and why.
    done: Option<CloseReason>,
}

impl Writer {
    pub(super) fn new(socket: OwnedWriteHalf, outbox: Arc<Outbox>, gateway: Arc<Gateway>) -> Self {
        // Pings go out on a fixed period even while pushes flow: a subscriber
        // that only listens proves it is alive by its pongs. The first ping
        // is jittered, so that sessions opened in one burst (after a deploy)
        // do not all ping in the same millisecond forever after.
        let period = gateway.config.server.ping_interval();
        let next_ping = Instant::now() + period.mul_f64(rand::random_range(0.5..1.0));
        Self {
            socket,
            outbox,
            gateway,
            batch: Batch::default(),
            unconfirmed: 0,
            next_ping,
            last: None,
            close_by: None,
            done: None,
        }
    }

    fn ping_interval(&self) -> Duration {
        self.gateway.config.server.ping_interval()
    }

    /// When [`Writer::tick`] next has something to do.
    pub(super) fn deadline(&self) -> Instant {
        match (self.done, self.close_by) {
            (Some(_), _) => Instant::now() + Duration::from_secs(86_400),
            (None, Some(by)) => by,
            (None, None) => self.next_ping,
        }
    }

    /// The clock reached [`Writer::deadline`]: queues a ping, or gives up on
    /// a close the client did not take in time (`Some(reason)`: done).
    pub(super) fn tick(&mut self, now: Instant) -> Option<CloseReason> {
        if let Some(reason) = self.done {
            return Some(reason);
        }
        if let Some(by) = self.close_by {
            if now < by {
                return None;
            }
            let reason = self
                .last
                .or_else(|| self.outbox.close_reason())
                .unwrap_or(CloseReason::ClientClosed);
            self.done = Some(reason);
            return Some(reason);
        }
        if now >= self.next_ping {
            self.outbox.push(Frame::ping());
            // `MissedTickBehavior::Delay`: a late ping does not bunch the next.
            self.next_ping = now + self.ping_interval();
        }
        None
    }

    /// [`Writer::poll_write`] on the session's timer (pings, the close
    /// deadline) when the writer is all that is polled: while a request
    /// runs, and after the reader ended.
    pub(super) fn poll_timed(
        &mut self,
        cx: &mut Context<'_>,
        mut timer: Pin<&mut Sleep>,
    ) -> Poll<CloseReason> {
        loop {
            if timer.as_mut().poll(cx).is_ready() {
                if let Some(reason) = self.tick(Instant::now()) {
                    return Poll::Ready(reason);
                }
                timer.as_mut().reset(self.deadline());
                continue;
            }
            if let Poll::Ready(reason) = self.poll_write(cx) {
                return Poll::Ready(reason);
            }
            let deadline = self.deadline();
            if deadline < timer.deadline() {
                timer.as_mut().reset(deadline);
                continue;
            }
            return Poll::Pending;
        }
    }

    /// Writes until the socket would block or the outbox is empty;
    /// `Ready(reason)` once done: the close was written (or is abandoned,
    /// see [`Writer::tick`]) or the socket failed.
    pub(super) fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<CloseReason> {
        loop {
            if let Some(reason) = self.done {
                return Poll::Ready(reason);
            }
            if self.batch.has_remaining() {
                match self.poll_write_batch(cx) {
                    Poll::Ready(Ok(())) => continue,
                    Poll::Ready(Err(())) => return Poll::Ready(self.finish(cx, None)),
                    Poll::Pending => {
                        self.notice_close(cx);
                        return Poll::Pending;
                    }
                }
            }
            if self.unconfirmed > 0 {
                let metrics = &self.gateway.metrics;
                metrics.frames_delivered.inc_by(self.unconfirmed);
                metrics.write_batches.inc();
                self.unconfirmed = 0;
            }
            if let Some(reason) = self.last {
                return Poll::Ready(self.finish(cx, Some(reason)));
            }
            match self.take(cx) {
                Poll::Ready(()) => {}
                Poll::Pending => {
                    // Idle: give back what a batch of several large frames allocated.
                    self.batch.release();
                    return Poll::Pending;
                }
            }
        }
    }

    /// Moves what the outbox has into the batch; the close frame too once
    /// the outbox reports the close.
    fn take(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let (batch, unconfirmed) = (&mut self.batch, &mut self.unconfirmed);
        let mut gather = Gather::default();
        let next = self.outbox.poll_take(cx, MAX_BATCH_BYTES, |frame| {
            *unconfirmed += 1;
            gather.push(batch, frame);
        });
        gather.finish(batch);
        match std::task::ready!(next) {
            Next::Frames => {}
            Next::Close(reason) => {
                if reason.sends_close_frame() {
                    let config = &self.gateway.config.server;
                    let text = reason.close_text(config.drain_period());
                    self.batch.extend([Frame::close(reason.code(), &text)]);
                }
                self.last = Some(reason);
                self.close_by.get_or_insert_with(|| {
                    Instant::now() + self.gateway.config.server.close_grace()
                });
            }
        }
        Poll::Ready(())
    }

    /// A write is blocked: if a close was requested meanwhile, start its
    /// deadline, and after a close that discarded the queue, put the close
    /// frame behind the bytes already started.
    fn notice_close(&mut self, cx: &mut Context<'_>) {
        if self.close_by.is_some() {
            return;
        }
        let Some(reason) = self.outbox.close_reason() else {
            return;
        };
        self.close_by = Some(Instant::now() + self.gateway.config.server.close_grace());
        if reason.discards_pending() && self.last.is_none() {
            // The outbox was emptied by the close: all it has left is the close.
            let _ = self.take(cx);
        }
    }

    /// One vectored write of the batch; `Err` when the socket failed.
    fn poll_write_batch(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        let count = self.batch.chunks_vectored(&mut slices);
        match std::task::ready!(
            Pin::new(&mut self.socket).poll_write_vectored(cx, &slices[..count])
        ) {
            Ok(0) | Err(_) => Poll::Ready(Err(())),
            Ok(written) => {
                self.batch.advance(written);
                Poll::Ready(Ok(()))
            }
        }
    }

    /// Shuts the socket's write side and records why the writer is done: the
    /// close being sent, else the client's leaving (`None`: the write failed).
    fn finish(&mut self, cx: &mut Context<'_>, reason: Option<CloseReason>) -> CloseReason {
        let reason = reason.or(self.last).unwrap_or(CloseReason::ClientClosed);
        // A TCP half-close: immediate, never pending.
        let _ = Pin::new(&mut self.socket).poll_shutdown(cx);
        self.done = Some(reason);
        reason
    }
}
