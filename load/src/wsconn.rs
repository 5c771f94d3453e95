//! A client WebSocket on a plain `TcpStream`, lean on the receive side: our
//! own HTTP upgrade (any bytes that arrive behind the `101` head stay in the
//! read buffer as the start of the frame stream), then server frames parsed by
//! [`FrameReader`] straight from the socket, and masked client frames written
//! with [`wsframe::encode`]. Every connection of the tool starts as one; the
//! publisher hands its socket on to tungstenite ([`WsConn::into_tungstenite`]).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{self, Poll};

use anyhow::{Context, Result, anyhow, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::net::{self, Endpoint, Ws};
use crate::payload;
use crate::wsframe::{self, Frame, FrameReader, OP_PONG, Span};

/// Longest upgrade response head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// A client WebSocket past its upgrade.
#[derive(Debug)]
pub struct WsConn {
    stream: TcpStream,
    reader: FrameReader,
    /// Scratch space for encoding outgoing frames.
    out: Vec<u8>,
    /// xorshift state for the masking keys.
    mask: u32,
}

impl WsConn {
    /// Opens TCP (bound to `source` when given) and performs the upgrade;
    /// `read_buffer` sizes the frame buffer.
    pub async fn connect(
        ep: &Endpoint,
        source: Option<IpAddr>,
        read_buffer: usize,
    ) -> Result<Self> {
        static SEED: AtomicU32 = AtomicU32::new(0x9E37_79B9);
        let stream = net::tcp_connect(ep, source).await?;
        let seed = SEED.fetch_add(0x6D2B_79F5, Ordering::Relaxed) ^ payload::now_ns() as u32;
        let mut conn = Self {
            stream,
            reader: FrameReader::new(read_buffer),
            out: Vec::with_capacity(256),
            mask: seed | 1,
        };
        conn.upgrade(&ep.url).await.context("WebSocket upgrade")?;
        Ok(conn)
    }

    async fn upgrade(&mut self, url: &str) -> Result<()> {
        let uri: Uri = url.parse().with_context(|| format!("bad URL {url:?}"))?;
        let host = uri
            .authority()
            .map(|a| a.as_str().rsplit('@').next().unwrap_or_default().to_owned())
            .ok_or_else(|| anyhow!("URL {url:?} has no host"))?;
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let path = if path.is_empty() { "/" } else { path };
        let key = generate_key();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        self.stream.write_all(request.as_bytes()).await?;
        loop {
            let seen = self.reader.unparsed();
            if let Some(end) = memchr::memmem::find(seen, b"\r\n\r\n") {
                check_response(&seen[..end], &key)?;
                self.reader.skip(end + 4);
                return Ok(());
            }
            if seen.len() > MAX_HEAD {
                bail!("response head over {MAX_HEAD} bytes");
            }
            if self.stream.read_buf(self.reader.read_buf()).await? == 0 {
                bail!("connection closed before the response");
            }
        }
    }

    /// The next frame already in the buffer, or `Ok(None)` when a read is due.
    pub fn next_frame(&mut self) -> Result<Option<Frame>> {
        self.reader.next()
    }

    /// The payload of a frame from [`WsConn::next_frame`] (valid until the next read).
    pub fn bytes(&self, span: Span) -> &[u8] {
        self.reader.bytes(span)
    }

    /// Reads what the socket holds into the frame buffer: `Ready(Ok(0))` when
    /// the server closed the connection. Through tokio's `poll_read`, so that a
    /// short read counts as having drained the socket and the next call waits
    /// for readiness instead of trying a read that would block.
    pub fn poll_fill(&mut self, cx: &mut task::Context<'_>) -> Poll<Result<usize>> {
        let read = self.stream.read_buf(self.reader.read_buf());
        std::pin::pin!(read)
            .poll(cx)
            .map(|r| r.context("WebSocket read"))
    }

    /// Waits for and reads more bytes; fails when the connection ends.
    pub async fn fill(&mut self) -> Result<()> {
        let n = self.stream.read_buf(self.reader.read_buf()).await;
        match n.context("WebSocket read")? {
            0 => bail!("connection ended"),
            _ => Ok(()),
        }
    }

    /// Sends one masked frame.
    pub async fn send(&mut self, opcode: u8, payload: &[u8]) -> Result<()> {
        // xorshift32: the key only has to vary, not be secret, for a load tool.
        self.mask ^= self.mask << 13;
        self.mask ^= self.mask >> 17;
        self.mask ^= self.mask << 5;
        self.out.clear();
        wsframe::encode(&mut self.out, opcode, payload, self.mask.to_ne_bytes());
        self.stream
            .write_all(&self.out)
            .await
            .context("WebSocket write")
    }

    /// Answers a ping frame with a pong carrying its payload.
    pub async fn pong(&mut self, ping: Span) -> Result<()> {
        let mut copy = [0u8; 125];
        let p = self.reader.bytes(ping);
        let n = p.len().min(copy.len());
        copy[..n].copy_from_slice(&p[..n]);
        self.send(OP_PONG, &copy[..n]).await
    }

    /// The next whole text or binary message, answering pings meanwhile;
    /// fails on close, error or at `deadline`.
    pub async fn next_data(&mut self, deadline: Instant) -> Result<&[u8]> {
        let span = tokio::time::timeout_at(deadline, self.next_data_span())
            .await
            .map_err(|_| anyhow!("timed out waiting for the server"))??;
        Ok(self.reader.bytes(span))
    }

    /// As [`WsConn::next_data`], without a deadline; returns the message's span.
    pub async fn next_data_span(&mut self) -> Result<Span> {
        loop {
            match self.reader.next()? {
                Some(Frame::Data(s)) => return Ok(s),
                Some(Frame::Ping(s)) => self.pong(s).await?,
                Some(Frame::Pong) => {}
                Some(Frame::Close(s)) => {
                    bail!("server {}", wsframe::close_reason(self.reader.bytes(s)))
                }
                None => self.fill().await?,
            }
        }
    }

    /// Hands the socket, and the bytes read but not parsed, to tungstenite.
    pub async fn into_tungstenite(self, cfg: WebSocketConfig) -> Result<Ws> {
        if self.reader.mid_message() {
            bail!("a fragmented message is part-way through");
        }
        let rest = self.reader.unparsed().to_vec();
        Ok(WebSocketStream::from_partially_read(self.stream, rest, Role::Client, Some(cfg)).await)
    }
}

/// Checks the upgrade response head (without its final blank line).
fn check_response(head: &[u8], key: &str) -> Result<()> {
    let head = std::str::from_utf8(head).context("response head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    if status.split(' ').nth(1) != Some("101") {
        bail!("server answered {status:?}");
    }
    let (mut upgrade, mut accept) = (false, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            bail!("bad header line {line:?}");
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("upgrade") {
            upgrade = value.eq_ignore_ascii_case("websocket");
        } else if name.eq_ignore_ascii_case("sec-websocket-accept") {
            accept = value == derive_accept_key(key.as_bytes());
        } else if name.eq_ignore_ascii_case("sec-websocket-extensions") {
            bail!("server chose an extension we did not offer: {value}");
        }
    }
    if !upgrade || !accept {
        bail!("no `Upgrade: websocket` or a wrong `Sec-WebSocket-Accept`");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
