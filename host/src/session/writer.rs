//! The writing half of a session: outbox batches and pings out, close last.
//!
//! Frames arrive already encoded and shared with other recipients; a batch is
//! handed to the kernel with vectored writes, so a burst of pushes costs a few
//! syscalls and no copies in user space.

use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;

use super::socket::Batch;
use crate::close::CloseReason;
use crate::gateway::Gateway;
use crate::outbox::{Next, Outbox};
use crate::protocol::Frame;

/// Most bytes taken from the outbox per batch.
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// A frame vector larger than this is freed after use, so idle sessions stay small.
const MAX_RETAINED_BATCH: usize = 256;

/// Resolves when a write blocked on the client should be abandoned: at once
/// for a close that discards pending frames (the queue overflowed), and after
/// `grace` for any other close (a drained client that stopped reading must not
/// hold its session open forever).
async fn give_up(outbox: &Outbox, grace: std::time::Duration) -> CloseReason {
    outbox.closing().await;
    let reason = outbox.close_reason().unwrap_or(CloseReason::ClientClosed);
    if !reason.discards_pending() {
        tokio::time::sleep(grace).await;
    }
    reason
}

/// Writes until the outbox reports a close (then sends it) or the socket fails.
pub(super) async fn run(
    mut socket: OwnedWriteHalf,
    outbox: &Outbox,
    gateway: &Gateway,
) -> CloseReason {
    let config = &gateway.config.server;
    let mut frames = Vec::new();
    let mut batch = Batch::default();
    // Pings go out on a fixed period even while pushes flow: a subscriber that
    // only listens proves it is alive by its pongs, and the reader's idle
    // timeout counts what the client sends, not what it receives.
    // The first ping is jittered, so that sessions opened in one burst (after
    // a deploy) do not all ping in the same millisecond forever after.
    let first_ping = config.ping_interval().mul_f64(rand::random_range(0.5..1.0));
    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::now() + first_ping,
        config.ping_interval(),
    );
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let next = tokio::select! {
            next = outbox.next(&mut frames, MAX_BATCH_BYTES) => next,
            _ = ping.tick() => {
                outbox.push(Frame::ping());
                continue;
            }
        };
        match next {
            Next::Frames => {
                let count = frames.len() as u64;
                batch.extend(frames.drain(..));
                tokio::select! {
                    result = socket.write_all_buf(&mut batch) => {
                        if result.is_err() {
                            return CloseReason::ClientClosed;
                        }
                        gateway.metrics.frames_delivered.inc_by(count);
                        gateway.metrics.write_batches.inc();
                    }
                    reason = give_up(outbox, config.close_grace()) => {
                        // Past the grace the client is not reading: stop here.
                        // A slow consumer instead gets its close frame queued
                        // behind the bytes already started, on the next turn.
                        if !reason.discards_pending() {
                            let _ = socket.shutdown().await;
                            return reason;
                        }
                    }
                }
                if frames.capacity() > MAX_RETAINED_BATCH {
                    frames = Vec::new();
                }
                batch.compact();
            }
            Next::Close(reason) => {
                if reason.sends_close_frame() {
                    let text = reason.close_text(config.drain_period());
                    batch.extend([Frame::close(reason.code(), &text)]);
                    let _ = tokio::time::timeout(
                        config.close_grace(),
                        socket.write_all_buf(&mut batch),
                    )
                    .await;
                }
                let _ = socket.shutdown().await;
                return reason;
            }
        }
    }
}
