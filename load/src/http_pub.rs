//! Publishing through ferrygate's HTTP API (`POST /v1/publish`, SPEC §4) on one
//! keep-alive connection with pipelined requests; a reader task counts responses.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::{Context, Result, bail};
use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::http::Uri;

use crate::net::Endpoint;
use crate::publisher::Replies;

/// Longest response head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// The writing side: requests are encoded into a buffer and written per batch.
#[derive(Debug)]
pub struct HttpSender {
    write: OwnedWriteHalf,
    buf: BytesMut,
    /// Everything of a request up to the `Content-Length` value.
    head: Vec<u8>,
}

impl HttpSender {
    /// Connects to the gateway's listener (the WebSocket URL's host and port).
    pub async fn connect(
        ep: &Endpoint,
        source: Option<IpAddr>,
        api_key: &str,
        replies: Arc<Replies>,
    ) -> Result<(Self, JoinHandle<()>)> {
        if api_key.bytes().any(|b| b.is_ascii_control()) {
            bail!("API key holds control characters");
        }
        let uri: Uri = ep.url.parse().context("bad URL")?;
        let authority = uri.authority().map_or("localhost", |a| a.as_str());
        let sock = if ep.addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }?;
        if let Some(ip) = source {
            sock.bind((ip, 0).into())?;
        }
        let stream = sock.connect(ep.addr).await.context("HTTP connect")?;
        stream.set_nodelay(true)?;
        let (read, write) = stream.into_split();
        let head = format!(
            "POST /v1/publish HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {api_key}\r\n\
             Content-Type: application/json\r\nContent-Length: "
        )
        .into_bytes();
        let reader = tokio::spawn(read_responses(read, replies));
        let buf = BytesMut::with_capacity(64 * 1024);
        Ok((Self { write, buf, head }, reader))
    }

    /// Appends one `{"channel":..,"data":..}` request.
    pub fn encode(&mut self, channel: &str, payload: &[u8]) {
        encode_request(&mut self.buf, &self.head, channel, payload);
    }

    /// Writes the buffered requests.
    pub async fn flush(&mut self) -> Result<()> {
        self.write
            .write_all(&self.buf)
            .await
            .context("HTTP write")?;
        self.buf.clear();
        Ok(())
    }
}

/// Appends a request: `head` ends with `Content-Length: `.
fn encode_request(buf: &mut BytesMut, head: &[u8], channel: &str, payload: &[u8]) {
    // {"channel":" + channel + ","data": + payload + }
    let body_len = 12 + channel.len() + 9 + payload.len() + 1;
    buf.put_slice(head);
    crate::payload::put_u64(buf, body_len as u64);
    buf.put_slice(b"\r\n\r\n{\"channel\":\"");
    buf.put_slice(channel.as_bytes());
    buf.put_slice(b"\",\"data\":");
    buf.put_slice(payload);
    buf.put_u8(b'}');
}

async fn read_responses(mut read: OwnedReadHalf, r: Arc<Replies>) {
    let mut parser = RespParser::default();
    let mut chunk = vec![0u8; 64 * 1024];
    let why = loop {
        let n = match read.read(&mut chunk).await {
            Ok(0) => break "connection ended".to_owned(),
            Err(e) => break e.to_string(),
            Ok(n) => n,
        };
        parser.feed(&chunk[..n]);
        loop {
            match parser.next_response() {
                Ok(Some((status, _))) if (200..300).contains(&status) => {
                    r.ok.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Some((status, body))) => {
                    let limited =
                        status == 429 || memchr::memmem::find(body, b"rate_limited").is_some();
                    r.error(
                        format!("HTTP {status}: {}", String::from_utf8_lossy(body)).as_bytes(),
                        limited,
                    );
                }
                Ok(None) => break,
                Err(e) => {
                    r.error(format!("{e:#}").as_bytes(), false);
                    r.set_closed(format!("{e:#}"));
                    return;
                }
            }
        }
    };
    r.set_closed(why);
}

/// Streaming parser for HTTP/1.1 responses framed by `Content-Length`.
#[derive(Debug, Default)]
struct RespParser {
    buf: Vec<u8>,
    pos: usize,
}

impl RespParser {
    fn feed(&mut self, data: &[u8]) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The next complete response's status and body.
    fn next_response(&mut self) -> Result<Option<(u16, &[u8])>> {
        let rest = &self.buf[self.pos..];
        let Some(end) = memchr::memmem::find(rest, b"\r\n\r\n") else {
            if rest.len() > MAX_HEAD {
                bail!("HTTP response head over {MAX_HEAD} bytes");
            }
            return Ok(None);
        };
        let head = std::str::from_utf8(&rest[..end]).context("response head not UTF-8")?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .strip_prefix("HTTP/1.")
            .and_then(|s| s.get(2..5))
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {status_line:?}"))?;
        let mut len = None;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            if name.eq_ignore_ascii_case("content-length") {
                len = Some(
                    value
                        .trim()
                        .parse::<usize>()
                        .context("bad Content-Length")?,
                );
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                bail!("chunked HTTP responses are not supported");
            }
        }
        let len = match (len, status) {
            (Some(l), _) => l,
            (None, 204 | 304) => 0,
            (None, _) => bail!("HTTP response without Content-Length"),
        };
        let body = self.pos + end + 4;
        if self.buf.len() < body + len {
            return Ok(None);
        }
        self.pos = body + len;
        Ok(Some((status, &self.buf[body..body + len])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"ok\":true}HTTP/1.1 429 Too Many Requests\r\nContent-Length: 2\r\n\r\n{}";

    #[test]
    fn parses_pipelined_responses_split_anywhere() {
        for cut in 0..TWO.len() {
            let mut p = RespParser::default();
            let mut got = Vec::new();
            for part in [&TWO[..cut], &TWO[cut..]] {
                p.feed(part);
                while let Some((s, b)) = p.next_response().expect("valid") {
                    got.push((s, b.to_vec()));
                }
            }
            assert_eq!(
                got,
                vec![(200, b"{\"ok\":true}".to_vec()), (429, b"{}".to_vec())]
            );
        }
    }

    #[test]
    fn rejects_bad_responses() {
        for bad in [
            &b"garbage\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            let mut p = RespParser::default();
            p.feed(bad);
            assert!(p.next_response().is_err());
        }
    }

    #[test]
    fn request_is_well_framed() {
        let mut b = BytesMut::new();
        encode_request(
            &mut b,
            b"POST /v1/publish HTTP/1.1\r\nContent-Length: ",
            "bench",
            br#"{"t":1}"#,
        );
        let text = std::str::from_utf8(&b).expect("utf8");
        let (head, body) = text.split_once("\r\n\r\n").expect("head");
        let len: usize = head
            .rsplit(": ")
            .next()
            .expect("len")
            .parse()
            .expect("number");
        assert_eq!(len, body.len());
        let v: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(v["channel"], "bench");
        assert_eq!(v["data"]["t"], 1);
    }
}
