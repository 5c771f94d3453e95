//! The session's two socket halves.
//!
//! Reading goes through tokio-tungstenite, which parses and validates client
//! frames (masking, fragmentation, UTF-8, size limits). Writing does not: every
//! outgoing byte goes through the session's [`Outbox`] and is written by the
//! session's writer as pre-encoded [`Frame`]s. [`ReadSide`] is the stream
//! tungstenite sees: reads come from the socket, and what tungstenite itself
//! writes (its pong and close replies, already framed) is queued in the outbox,
//! behind whatever was queued before it.
//!
//! Memory: tungstenite keeps a read buffer for the life of the connection, so
//! it is given a small one ([`READ_BUFFER_BYTES`]); to still read the socket
//! in large gulps, [`ReadSide`] reads into a buffer on the stack and keeps
//! what tungstenite had no room for in a spill buffer that exists only until
//! tungstenite has taken it. An idle session holds no read buffer of its own.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::tcp::OwnedReadHalf;

use crate::outbox::Outbox;
use crate::protocol::Frame;

/// tungstenite's read buffer per connection (`WebSocketConfig::read_buffer_size`),
/// bytes: it is also the most tungstenite reads per call, so reads are staged
/// (see the module docs). It grows to hold a larger frame, and keeps that size.
pub const READ_BUFFER_BYTES: usize = 256;

/// Most bytes read from the socket in one syscall, staged on the stack.
const STAGE_BYTES: usize = 16 * 1024;

/// The read half of the socket, with tungstenite's own writes sent to the outbox.
#[derive(Debug)]
pub(super) struct ReadSide {
    socket: OwnedReadHalf,
    outbox: Arc<Outbox>,
    /// Bytes read from the socket that tungstenite has not taken yet; empty
    /// (no allocation) whenever it has taken everything.
    spill: Bytes,
}

impl ReadSide {
    pub(super) fn new(socket: OwnedReadHalf, outbox: Arc<Outbox>) -> Self {
        Self {
            socket,
            outbox,
            spill: Bytes::new(),
        }
    }
}

impl AsyncRead for ReadSide {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.spill.is_empty() {
            let n = buf.remaining().min(this.spill.len());
            buf.put_slice(&this.spill.split_to(n));
            if this.spill.is_empty() {
                // Free the allocation now, not when the next spill replaces it.
                this.spill = Bytes::new();
            }
            return Poll::Ready(Ok(()));
        }
        if buf.remaining() >= STAGE_BYTES {
            return Pin::new(&mut this.socket).poll_read(cx, buf);
        }
        let mut stage = [std::mem::MaybeUninit::<u8>::uninit(); STAGE_BYTES];
        let mut staged = ReadBuf::uninit(&mut stage);
        std::task::ready!(Pin::new(&mut this.socket).poll_read(cx, &mut staged))?;
        let read = staged.filled();
        let n = buf.remaining().min(read.len());
        buf.put_slice(&read[..n]);
        if n < read.len() {
            this.spill = Bytes::copy_from_slice(&read[n..]);
        }
        Poll::Ready(Ok(()))
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
///
/// The first chunk is held inline and small frames are copied together only
/// when there are two or more of them in a row, so the common batch (one
/// small frame, a fan-out push) costs no allocation and no copy: it is
/// written straight from the buffer every recipient shares.
#[derive(Debug, Default)]
pub(super) struct Batch {
    /// The chunk being written; empty only when the whole batch is.
    head: Bytes,
    /// The chunks after it.
    tail: std::collections::VecDeque<Bytes>,
    remaining: usize,
}

/// Frames smaller than this are copied together before writing.
const GATHER_BELOW_BYTES: usize = 2048;

/// Most slices handed to one vectored write.
pub(super) const MAX_IOVECS: usize = 64;

impl Batch {
    /// Gives back the chunk slots of a fully written batch, so that an idle
    /// session holds no batch memory.
    pub(super) fn release(&mut self) {
        if self.tail.is_empty() && self.tail.capacity() > 0 {
            self.tail = std::collections::VecDeque::new();
        }
    }

    /// Appends `frames` (see [`Gather`]).
    pub(super) fn extend(&mut self, frames: impl IntoIterator<Item = Frame>) {
        let mut gather = Gather::default();
        for frame in frames {
            gather.push(self, frame);
        }
        gather.finish(self);
    }

    fn push_chunk(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        self.remaining += chunk.len();
        if self.head.is_empty() {
            self.head = chunk;
        } else {
            self.tail.push_back(chunk);
        }
    }
}

/// Appends frames to a [`Batch`], gathering runs of small frames into one
/// buffer: the kernel handles one large slice much faster than many small
/// ones, while large frames, and a small one on its own, are written straight
/// from the shared buffer. Lives on the stack for one batch.
#[derive(Debug, Default)]
pub(super) struct Gather {
    /// A small frame not copied yet: copied only if another follows it.
    single: Option<Bytes>,
    gathered: BytesMut,
}

impl Gather {
    pub(super) fn push(&mut self, batch: &mut Batch, frame: Frame) {
        let bytes = frame.into_bytes();
        if bytes.len() >= GATHER_BELOW_BYTES {
            self.finish(batch);
            batch.push_chunk(bytes);
            return;
        }
        match self.single.take() {
            None if self.gathered.is_empty() => self.single = Some(bytes),
            None => self.gathered.extend_from_slice(&bytes),
            Some(first) => {
                self.gathered.reserve(first.len() + bytes.len());
                self.gathered.extend_from_slice(&first);
                self.gathered.extend_from_slice(&bytes);
            }
        }
    }

    /// Appends what is still held; call once the batch is complete.
    pub(super) fn finish(&mut self, batch: &mut Batch) {
        if let Some(single) = self.single.take() {
            batch.push_chunk(single);
        } else if !self.gathered.is_empty() {
            batch.push_chunk(self.gathered.split().freeze());
        }
    }
}

impl Buf for Batch {
    fn remaining(&self) -> usize {
        self.remaining
    }

    fn chunk(&self) -> &[u8] {
        &self.head
    }

    fn advance(&mut self, mut count: usize) {
        self.remaining -= count.min(self.remaining);
        while count > 0 && !self.head.is_empty() {
            if count < self.head.len() {
                self.head.advance(count);
                return;
            }
            count -= self.head.len();
            self.head = self.tail.pop_front().unwrap_or_default();
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [io::IoSlice<'a>]) -> usize {
        let chunks = std::iter::once(&self.head)
            .filter(|head| !head.is_empty())
            .chain(&self.tail);
        let mut filled = 0;
        for (slot, chunk) in dst.iter_mut().take(MAX_IOVECS).zip(chunks) {
            *slot = io::IoSlice::new(chunk);
            filled += 1;
        }
        filled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes written in one go come out whole and in order through reads of
    /// tungstenite's small size, and the spill is freed once taken.
    #[tokio::test]
    async fn staged_reads_hand_over_every_byte_and_free_the_spill() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let mut client = tokio::net::TcpStream::connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        let (read_half, _write_half) = server.into_split();
        let mut side = ReadSide::new(read_half, Arc::new(Outbox::new(1 << 20)));
        let sent: Vec<u8> = (0..3 * STAGE_BYTES + 7).map(|i| (i % 251) as u8).collect();
        client.write_all(&sent).await.expect("write");
        let mut received = Vec::new();
        let mut chunk = [0u8; READ_BUFFER_BYTES];
        while received.len() < sent.len() {
            let n = side.read(&mut chunk).await.expect("read");
            assert!(n > 0, "early end of stream");
            received.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(received, sent);
        assert!(side.spill.is_empty(), "nothing left over");
        drop(client);
        assert_eq!(side.read(&mut chunk).await.expect("read at end"), 0);
    }

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

    /// One small frame is written from the shared buffer itself: no copy.
    #[test]
    fn a_lone_small_frame_is_not_copied() {
        let frame = Frame::text("hello");
        let shared = frame.clone().into_bytes();
        let mut batch = Batch::default();
        batch.extend([frame]);
        assert_eq!(batch.chunk().as_ptr(), shared.as_ptr(), "the same buffer");
        assert_eq!(batch.remaining(), shared.len());
        let mut slices = [io::IoSlice::new(&[]); 4];
        assert_eq!(batch.chunks_vectored(&mut slices), 1);
        batch.advance(shared.len());
        assert_eq!(batch.remaining(), 0);
        assert!(batch.chunk().is_empty());
        batch.extend([Frame::text("a"), Frame::text("b")]);
        assert_eq!(batch.chunk(), b"\x81\x01a\x81\x01b", "two are gathered");
    }
}
