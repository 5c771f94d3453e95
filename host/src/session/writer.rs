//! The writing half of a session: outbox batches and pings out, close last.

use futures_util::{Sink, SinkExt};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Bytes, Message};

use crate::close::CloseReason;
use crate::gateway::Gateway;
use crate::outbox::{Next, Outbox};

/// Most payload bytes taken from the outbox per batch; bounds the socket
/// library's own buffer while still amortizing each write syscall.
const MAX_BATCH_BYTES: usize = 64 * 1024;

/// A batch vector larger than this is freed after use, so idle sessions stay small.
const MAX_RETAINED_BATCH: usize = 256;

/// Writes until the outbox reports a close (then sends it) or the socket fails.
pub(super) async fn run<S>(mut sink: S, outbox: &Outbox, gateway: &Gateway) -> CloseReason
where
    S: Sink<Message, Error = tungstenite::Error> + Unpin,
{
    let config = &gateway.config.server;
    let mut batch = Vec::new();
    // Pings go out on a fixed period even while pushes flow: a subscriber that
    // only listens proves it is alive by its pongs, and the reader's idle
    // timeout counts what the client sends, not what it receives.
    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::now() + config.ping_interval(),
        config.ping_interval(),
    );
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let next = tokio::select! {
            next = outbox.next(&mut batch, MAX_BATCH_BYTES) => next,
            _ = ping.tick() => {
                if sink.send(Message::Ping(Bytes::new())).await.is_err() {
                    return CloseReason::ClientClosed;
                }
                continue;
            }
        };
        match next {
            Next::Frames => {
                let count = batch.len() as u64;
                tokio::select! {
                    result = write_batch(&mut sink, &mut batch) => {
                        if result.is_err() {
                            return CloseReason::ClientClosed;
                        }
                        gateway.metrics.frames_delivered.inc_by(count);
                        gateway.metrics.write_batches.inc();
                    }
                    // A client that stopped reading blocks the write; once its
                    // queue overflows there is no point waiting for it: the
                    // next turn of the loop sends the close instead.
                    _ = outbox.aborted() => batch.clear(),
                }
                if batch.capacity() > MAX_RETAINED_BATCH {
                    batch = Vec::new();
                }
            }
            Next::Close(reason) => {
                if reason.sends_close_frame() {
                    let frame = CloseFrame {
                        code: CloseCode::from(reason.code()),
                        reason: reason.as_str().into(),
                    };
                    let _ = tokio::time::timeout(
                        config.close_grace(),
                        sink.send(Message::Close(Some(frame))),
                    )
                    .await;
                }
                return reason;
            }
        }
    }
}

async fn write_batch<S>(sink: &mut S, batch: &mut Vec<crate::protocol::Frame>) -> Result<(), ()>
where
    S: Sink<Message, Error = tungstenite::Error> + Unpin,
{
    for frame in batch.drain(..) {
        sink.feed(Message::Text(frame.into_text()))
            .await
            .map_err(drop)?;
    }
    sink.flush().await.map_err(drop)
}
