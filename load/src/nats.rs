//! NATS over WebSocket: a streaming parser for the server's protocol lines and
//! the client side of the handshake (`INFO` → `CONNECT`+`PING` → `PONG`) and of
//! `SUB`/`PUB`.
//!
//! NATS does not align its protocol to WebSocket frames: one frame may hold many
//! `MSG`s and one `MSG` may be split over several frames, so [`Parser`] buffers
//! bytes and hands out complete events.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::{BufMut, BytesMut};
use tokio::time::Instant;

use crate::wsconn::WsConn;
use crate::wsframe::OP_BINARY;

/// Sent after `INFO`; `verbose:false` so the server sends no `+OK`s.
pub const CONNECT: &[u8] =
    b"CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1,\"name\":\"ferrygate-load\"}\r\nPING\r\n";
/// Reply to a server `PING`.
pub const PONG: &[u8] = b"PONG\r\n";

/// Longest control line accepted before a `\r\n` (the server's `INFO` is the longest).
const MAX_LINE: usize = 64 * 1024;
/// Largest `MSG` payload accepted.
const MAX_PAYLOAD: usize = 64 << 20;

/// One complete item from the server.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// `MSG`/`HMSG`: the payload (for `HMSG`, without the headers).
    Msg {
        subject: &'a [u8],
        payload: &'a [u8],
    },
    Ping,
    Pong,
    Ok,
    Err(&'a [u8]),
    Info(&'a [u8]),
}

/// Buffers bytes from frames and yields [`Event`]s.
#[derive(Debug, Default)]
pub struct Parser {
    buf: Vec<u8>,
    pos: usize,
}

impl Parser {
    /// Appends the bytes of one WebSocket frame.
    pub fn feed(&mut self, data: &[u8]) {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The next complete event, `Ok(None)` when more bytes are needed, or an
    /// error when the stream is not NATS protocol.
    pub fn next_event(&mut self) -> Result<Option<Event<'_>>> {
        let rest = &self.buf[self.pos..];
        let Some(eol) = memchr::memmem::find(rest, b"\r\n") else {
            if rest.len() > MAX_LINE {
                bail!("NATS control line longer than {MAX_LINE} bytes");
            }
            return Ok(None);
        };
        let line = &rest[..eol];
        let (op, args) = match line.iter().position(|b| *b == b' ' || *b == b'\t') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &line[..0]),
        };
        let start = self.pos;
        let body = start + eol + 2;
        let ev = if op.eq_ignore_ascii_case(b"MSG") || op.eq_ignore_ascii_case(b"HMSG") {
            let hmsg = op.len() == 4;
            // subject sid [reply-to] [header-len] total-len
            let mut toks: [&[u8]; 5] = [&[]; 5];
            let mut n = 0;
            for t in args
                .split(|b| *b == b' ' || *b == b'\t')
                .filter(|t| !t.is_empty())
            {
                if n == toks.len() {
                    bail!("MSG line with too many fields");
                }
                toks[n] = t;
                n += 1;
            }
            let min = if hmsg { 4 } else { 3 };
            if n < min {
                bail!("MSG line with {n} fields");
            }
            let subject = toks[0];
            let total = parse_len(toks[n - 1])?;
            let hdr = if hmsg {
                let h = parse_len(toks[n - 2])?;
                if h > total {
                    bail!("HMSG header length {h} > total {total}");
                }
                h
            } else {
                0
            };
            if self.buf.len() < body + total + 2 {
                return Ok(None);
            }
            if &self.buf[body + total..body + total + 2] != b"\r\n" {
                bail!("MSG payload not followed by CRLF");
            }
            let subj_off = start + (subject.as_ptr() as usize - rest.as_ptr() as usize);
            let subj_len = subject.len();
            self.pos = body + total + 2;
            return Ok(Some(Event::Msg {
                subject: &self.buf[subj_off..subj_off + subj_len],
                payload: &self.buf[body + hdr..body + total],
            }));
        } else if op.eq_ignore_ascii_case(b"PING") {
            Event::Ping
        } else if op.eq_ignore_ascii_case(b"PONG") {
            Event::Pong
        } else if op.eq_ignore_ascii_case(b"+OK") {
            Event::Ok
        } else if op.eq_ignore_ascii_case(b"-ERR") {
            Event::Err(args)
        } else if op.eq_ignore_ascii_case(b"INFO") {
            Event::Info(args)
        } else {
            bail!(
                "unexpected NATS op {:?}",
                String::from_utf8_lossy(&op[..op.len().min(32)])
            );
        };
        self.pos = body;
        Ok(Some(ev))
    }
}

fn parse_len(tok: &[u8]) -> Result<usize> {
    let s = std::str::from_utf8(tok).context("MSG length not UTF-8")?;
    let n: usize = s.parse().with_context(|| format!("bad MSG length {s:?}"))?;
    if n > MAX_PAYLOAD {
        bail!("MSG length {n} over {MAX_PAYLOAD}");
    }
    Ok(n)
}

/// Appends `PUB <subject> <len>\r\n<payload>\r\n`.
pub fn encode_pub(buf: &mut BytesMut, subject: &str, payload: &[u8]) {
    buf.put_slice(b"PUB ");
    buf.put_slice(subject.as_bytes());
    buf.put_u8(b' ');
    crate::payload::put_u64(buf, payload.len() as u64);
    buf.put_slice(b"\r\n");
    buf.put_slice(payload);
    buf.put_slice(b"\r\n");
}

/// Sends raw protocol bytes as one (masked) binary frame.
pub async fn send_raw(conn: &mut WsConn, bytes: &[u8]) -> Result<()> {
    conn.send(OP_BINARY, bytes).await.context("NATS send")
}

/// Reads until a `PONG`, answering `PING`s, failing on `-ERR` or at `deadline`.
async fn wait_pong(conn: &mut WsConn, parser: &mut Parser, deadline: Instant) -> Result<()> {
    loop {
        let mut ping = false;
        while let Some(ev) = parser.next_event()? {
            match ev {
                Event::Pong => return Ok(()),
                Event::Ping => ping = true,
                Event::Err(e) => bail!("NATS -ERR {}", String::from_utf8_lossy(e)),
                _ => {}
            }
        }
        if ping {
            send_raw(conn, PONG).await?;
        }
        parser.feed(conn.next_data(deadline).await?);
    }
}

/// Client handshake: waits for `INFO`, sends `CONNECT` and `PING`, waits for `PONG`.
pub async fn handshake(conn: &mut WsConn, parser: &mut Parser, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        parser.feed(conn.next_data(deadline).await?);
        match parser.next_event()? {
            Some(Event::Info(_)) => break,
            Some(other) => bail!("expected INFO first, got {other:?}"),
            None => {}
        }
    }
    send_raw(conn, CONNECT).await?;
    wait_pong(conn, parser, deadline).await
}

/// Subscribes with `SUB <subject> <sid>` and confirms it with a `PING`/`PONG` round trip.
pub async fn subscribe(
    conn: &mut WsConn,
    parser: &mut Parser,
    subject: &str,
    sid: u64,
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    send_raw(conn, format!("SUB {subject} {sid}\r\nPING\r\n").as_bytes()).await?;
    wait_pong(conn, parser, deadline).await
}

#[cfg(test)]
mod tests;
