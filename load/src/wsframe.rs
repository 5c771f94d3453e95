//! RFC 6455 framing for the client side, without I/O.
//!
//! [`FrameReader`] owns one reusable read buffer: the socket reads into its
//! spare capacity (no zeroing), and [`FrameReader::next`] then parses as many
//! server frames out of it as are complete, allocating nothing per frame. A
//! frame is handed out as a [`Span`] of the buffer, valid until the next read.
//! Fragmented messages are reassembled into a second buffer; control frames
//! may come between their fragments. Masked server frames, reserved bits,
//! reserved opcodes and oversized frames are errors. [`encode`] writes a
//! masked client frame.

use anyhow::{Result, bail};

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// Largest frame or reassembled message accepted.
pub const MAX_MESSAGE: usize = 16 << 20;
/// Smallest read buffer (the upgrade response must fit without regrowing).
const MIN_BUFFER: usize = 1024;

/// Where a frame's payload lies. Valid until the next read into the buffer
/// (and, for a reassembled message, until the next [`FrameReader::next`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    start: usize,
    end: usize,
    reassembled: bool,
}

/// One complete item from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// A whole text or binary message (reassembled if it was fragmented).
    Data(Span),
    /// A ping; the reply is a pong with the same payload.
    Ping(Span),
    Pong,
    /// A close frame; its payload is the status code and reason, if any.
    Close(Span),
}

/// Parses server frames out of a reusable read buffer.
#[derive(Debug)]
pub struct FrameReader {
    /// Bytes read so far; `buf[pos..]` are not parsed yet.
    buf: Vec<u8>,
    pos: usize,
    /// Size of the incomplete frame at `pos`, once its header is in (else 0).
    want: usize,
    /// Capacity the buffer is kept at, grown only for larger frames.
    base: usize,
    /// The fragmented message being reassembled.
    msg: Vec<u8>,
    /// A fragmented message is in progress.
    fragmented: bool,
    /// `msg` was handed out complete; it is cleared on the next call.
    msg_done: bool,
}

impl FrameReader {
    /// A reader whose buffer holds `capacity` bytes (at least 1 KiB).
    pub fn new(capacity: usize) -> Self {
        let base = capacity.max(MIN_BUFFER);
        Self {
            buf: Vec::with_capacity(base),
            pos: 0,
            want: 0,
            base,
            msg: Vec::new(),
            fragmented: false,
            msg_done: false,
        }
    }

    /// The buffer to read into next: already-parsed bytes are dropped (the
    /// unparsed rest moves to the front), and there is spare capacity for at
    /// least the rest of an incomplete frame. Read into its spare capacity only
    /// (`read_buf`/`try_read_buf` do); never change the bytes it holds.
    pub fn read_buf(&mut self) -> &mut Vec<u8> {
        if self.pos > 0 {
            if self.pos == self.buf.len() {
                self.buf.clear();
            } else {
                self.buf.drain(..self.pos);
            }
            self.pos = 0;
        }
        if self.buf.is_empty() && self.buf.capacity() > 4 * self.base {
            // A large frame grew the buffer; give the memory back.
            self.buf = Vec::with_capacity(self.base);
        }
        let need = self.want.max(self.base).max(self.buf.len() + MIN_BUFFER);
        if self.buf.capacity() < need {
            self.buf.reserve_exact(need - self.buf.len());
        }
        &mut self.buf
    }

    /// The bytes read but not parsed yet.
    pub fn unparsed(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Marks `n` unparsed bytes as consumed (the upgrade response's head).
    pub fn skip(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
    }

    /// Whether a fragmented message is part-way through.
    pub fn mid_message(&self) -> bool {
        self.fragmented
    }

    /// The payload of a frame handed out by [`FrameReader::next`].
    pub fn bytes(&self, span: Span) -> &[u8] {
        let from = if span.reassembled {
            &self.msg
        } else {
            &self.buf
        };
        from.get(span.start..span.end).unwrap_or_default()
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed, or an
    /// error when the stream breaks RFC 6455 (the connection is then unusable).
    pub fn next(&mut self) -> Result<Option<Frame>> {
        if self.msg_done {
            self.msg.clear();
            self.msg_done = false;
        }
        loop {
            let rest = &self.buf[self.pos..];
            let [b0, b1, ..] = *rest else {
                return Ok(None);
            };
            if b1 & 0x80 != 0 {
                bail!("masked frame from the server");
            }
            if b0 & 0x70 != 0 {
                bail!("frame with reserved bits set (no extension was negotiated)");
            }
            let (fin, op) = (b0 & 0x80 != 0, b0 & 0x0F);
            let (head, len) = match b1 & 0x7F {
                126 => match *rest {
                    [_, _, a, b, ..] => (4, u64::from(u16::from_be_bytes([a, b]))),
                    _ => return Ok(None),
                },
                127 => match rest.get(2..10) {
                    Some(l) => {
                        let mut be = [0u8; 8];
                        be.copy_from_slice(l);
                        (10, u64::from_be_bytes(be))
                    }
                    None => return Ok(None),
                },
                n => (2, u64::from(n)),
            };
            let len = match usize::try_from(len) {
                Ok(l) if l <= MAX_MESSAGE => l,
                _ => bail!("frame of {len} bytes (limit {MAX_MESSAGE})"),
            };
            if op >= OP_CLOSE && (!fin || len > 125) {
                bail!("control frame {op:#x} fragmented or over 125 bytes");
            }
            let total = head + len;
            if rest.len() < total {
                self.want = total;
                return Ok(None);
            }
            self.want = 0;
            let (start, end) = (self.pos + head, self.pos + total);
            self.pos = end;
            let span = Span {
                start,
                end,
                reassembled: false,
            };
            match op {
                OP_TEXT | OP_BINARY if self.fragmented => {
                    bail!("data frame inside a fragmented message")
                }
                OP_TEXT | OP_BINARY if fin => return Ok(Some(Frame::Data(span))),
                OP_TEXT | OP_BINARY | OP_CONTINUATION => {
                    if op == OP_CONTINUATION && !self.fragmented {
                        bail!("continuation frame outside a fragmented message");
                    }
                    if self.msg.len() + len > MAX_MESSAGE {
                        bail!("fragmented message over {MAX_MESSAGE} bytes");
                    }
                    self.fragmented = !fin;
                    self.msg.extend_from_slice(&self.buf[start..end]);
                    if fin {
                        self.msg_done = true;
                        return Ok(Some(Frame::Data(Span {
                            start: 0,
                            end: self.msg.len(),
                            reassembled: true,
                        })));
                    }
                }
                OP_CLOSE => return Ok(Some(Frame::Close(span))),
                OP_PING => return Ok(Some(Frame::Ping(span))),
                OP_PONG => return Ok(Some(Frame::Pong)),
                other => bail!("frame with reserved opcode {other:#x}"),
            }
        }
    }
}

/// Appends one client frame (FIN set) carrying `payload`, masked with `mask`
/// as RFC 6455 requires of clients.
pub fn encode(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: [u8; 4]) {
    out.push(0x80 | (opcode & 0x0F));
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if let Ok(l) = u16::try_from(len) {
        out.push(0x80 | 126);
        out.extend_from_slice(&l.to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    let start = out.len();
    out.extend_from_slice(payload);
    for (i, b) in out[start..].iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// `closed <code> <reason>` for a close frame's payload.
pub fn close_reason(payload: &[u8]) -> String {
    match payload {
        [a, b, reason @ ..] => format!(
            "closed {} {}",
            u16::from_be_bytes([*a, *b]),
            String::from_utf8_lossy(reason)
        ),
        _ => "close frame without code".to_owned(),
    }
}

#[cfg(test)]
mod tests;
