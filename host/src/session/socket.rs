//! The session's two socket halves.
//!
//! Reading goes through tokio-tungstenite, which parses and validates client
//! frames (masking, fragmentation, UTF-8, size limits). Writing does not: every
//! outgoing byte goes through the session's [`Outbox`] and is written by the
//! session's writer as pre-encoded [`Frame`]s. [`ReadSide`] is the stream
//! tungstenite sees: reads come from the socket, and what tungstenite itself
//! writes (its pong and close replies, already framed) is queued in the outbox,
//! behind whatever was queued before it.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::tcp::OwnedReadHalf;

use crate::outbox::Outbox;
use crate::protocol::Frame;

/// The read half of the socket, with tungstenite's own writes sent to the outbox.
#[derive(Debug)]
pub(super) struct ReadSide {
    socket: OwnedReadHalf,
    outbox: Arc<Outbox>,
}

impl ReadSide {
    pub(super) fn new(socket: OwnedReadHalf, outbox: Arc<Outbox>) -> Self {
        Self { socket, outbox }
    }
}

impl AsyncRead for ReadSide {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_read(cx, buf)
    }
}

impl AsyncWrite for ReadSide {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // A full or closing outbox drops the reply, as it would any frame.
        let _ = self
            .outbox
            .push(Frame::encoded(Bytes::copy_from_slice(buf)));
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A batch of frames seen as one buffer, so that a vectored write hands the
/// kernel many shared frames in one syscall without copying them together.
#[derive(Debug, Default)]
pub(super) struct Batch {
    frames: std::collections::VecDeque<Bytes>,
    remaining: usize,
}

/// Frames smaller than this are copied together before writing.
const GATHER_BELOW_BYTES: usize = 2048;

/// Most slices handed to one vectored write.
const MAX_IOVECS: usize = 64;

impl Batch {
    /// Gives back the slots of a large, fully written batch.
    pub(super) fn compact(&mut self) {
        if self.frames.is_empty() && self.frames.capacity() > 256 {
            self.frames = std::collections::VecDeque::new();
        }
    }

    /// Appends `frames`, gathering runs of small frames into one buffer: the
    /// kernel handles one large slice much faster than many small ones, while
    /// large frames are still written straight from the shared buffer.
    pub(super) fn extend(&mut self, frames: impl IntoIterator<Item = Frame>) {
        let mut small = BytesMut::new();
        for frame in frames {
            let bytes = frame.into_bytes();
            self.remaining += bytes.len();
            if bytes.len() < GATHER_BELOW_BYTES {
                small.extend_from_slice(&bytes);
                continue;
            }
            if !small.is_empty() {
                self.frames.push_back(small.split().freeze());
            }
            self.frames.push_back(bytes);
        }
        if !small.is_empty() {
            self.frames.push_back(small.freeze());
        }
    }
}

impl Buf for Batch {
    fn remaining(&self) -> usize {
        self.remaining
    }

    fn chunk(&self) -> &[u8] {
        self.frames.front().map_or(&[], |b| b.as_ref())
    }

    fn advance(&mut self, mut count: usize) {
        self.remaining -= count.min(self.remaining);
        while count > 0 {
            let Some(front) = self.frames.front_mut() else {
                return;
            };
            if count < front.len() {
                front.advance(count);
                return;
            }
            count -= front.len();
            self.frames.pop_front();
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [io::IoSlice<'a>]) -> usize {
        let mut filled = 0;
        for (slot, frame) in dst.iter_mut().take(MAX_IOVECS).zip(&self.frames) {
            *slot = io::IoSlice::new(frame);
            filled += 1;
        }
        filled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_advances_across_frame_boundaries() {
        let mut batch = Batch::default();
        let large = "L".repeat(GATHER_BELOW_BYTES);
        batch.extend([
            Frame::text("ab"),
            Frame::text("cde"),
            Frame::text(&large),
            Frame::text("f"),
        ]);
        assert_eq!(batch.remaining(), 4 + 5 + 4 + GATHER_BELOW_BYTES + 3);
        let mut slices = [io::IoSlice::new(&[]); 8];
        assert_eq!(
            batch.chunks_vectored(&mut slices),
            3,
            "small frames gathered around the large one"
        );
        assert_eq!(batch.chunk(), b"\x81\x02ab\x81\x03cde");
        batch.advance(4);
        assert_eq!(batch.chunk(), b"\x81\x03cde");
        batch.advance(5);
        assert_eq!(&batch.chunk()[..2], &[0x81, 126]);
        batch.advance(4 + GATHER_BELOW_BYTES);
        assert_eq!(batch.chunk(), b"\x81\x01f");
        batch.advance(3);
        assert_eq!(batch.remaining(), 0);
        assert!(batch.chunk().is_empty());
    }
}
