//! A minimal HTTP/1.1 client for `GET` on one keep-alive connection: the
//! gateway's `/v1/presence` and `/metrics`, nats-server's monitoring port.
//! Bodies must come with `Content-Length` or chunked; nothing else is sent
//! or understood (no TLS, no redirects).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest response head accepted, bytes.
const MAX_HEAD: usize = 16 * 1024;
/// Longest body accepted, bytes (a 10,000-user presence page is ~400 KB).
const MAX_BODY: usize = 64 << 20;

/// One keep-alive connection to `addr`.
#[derive(Debug)]
pub struct HttpGet {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    timeout: Duration,
}

impl HttpGet {
    /// A client for `addr` (`host:port`); connects on the first request.
    pub fn new(addr: SocketAddr, timeout: Duration) -> Self {
        Self {
            addr,
            stream: None,
            buf: Vec::new(),
            timeout,
        }
    }

    /// `GET path` with `Authorization: Bearer <bearer>` when given: the
    /// status and the body. Reconnects once if the kept-alive connection was
    /// closed by the server.
    pub async fn get(&mut self, path: &str, bearer: Option<&str>) -> Result<(u16, Vec<u8>)> {
        if path.bytes().any(|b| b.is_ascii_control() || b == b' ')
            || bearer.is_some_and(|b| b.bytes().any(|c| c.is_ascii_control()))
        {
            bail!("path or key holds control characters or spaces");
        }
        let reused = self.stream.is_some();
        match tokio::time::timeout(self.timeout, self.exchange(path, bearer)).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) if reused => {
                self.stream = None;
                tokio::time::timeout(self.timeout, self.exchange(path, bearer))
                    .await
                    .map_err(|_| anyhow!("GET {path}: timed out"))?
            }
            Ok(Err(e)) => {
                self.stream = None;
                Err(e)
            }
            Err(_) => {
                self.stream = None;
                bail!("GET {path}: timed out")
            }
        }
    }

    async fn exchange(&mut self, path: &str, bearer: Option<&str>) -> Result<(u16, Vec<u8>)> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.addr)
                .await
                .with_context(|| format!("connect {}", self.addr))?;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
            self.buf.clear();
        }
        let Some(stream) = self.stream.as_mut() else {
            bail!("no connection");
        };
        let auth = bearer.map_or(String::new(), |key| {
            format!("Authorization: Bearer {key}\r\n")
        });
        let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n{auth}\r\n", self.addr);
        stream.write_all(request.as_bytes()).await?;
        let head_end = loop {
            if let Some(at) = find(&self.buf, b"\r\n\r\n") {
                break at + 4;
            }
            if self.buf.len() > MAX_HEAD {
                bail!("response head over {MAX_HEAD} bytes");
            }
            read_more(stream, &mut self.buf).await?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow!("bad status line in {head:?}"))?;
        let header = |name: &str| {
            head.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_owned())
            })
        };
        self.buf.drain(..head_end);
        let body = if let Some(length) = header("content-length") {
            let length: usize = length.parse().context("bad Content-Length")?;
            if length > MAX_BODY {
                bail!("body of {length} bytes is over {MAX_BODY}");
            }
            while self.buf.len() < length {
                read_more(stream, &mut self.buf).await?;
            }
            self.buf.drain(..length).collect()
        } else if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            read_chunked(stream, &mut self.buf).await?
        } else {
            bail!("response without Content-Length or chunked body")
        };
        if header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close")) {
            self.stream = None;
        }
        Ok((status, body))
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<()> {
    let mut chunk = [0u8; 64 * 1024];
    let n = stream.read(&mut chunk).await?;
    if n == 0 {
        bail!("connection closed");
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

async fn read_chunked(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(at) = find(buf, b"\r\n") {
                break at;
            }
            if buf.len() > MAX_HEAD {
                bail!("chunk size line too long");
            }
            read_more(stream, buf).await?;
        };
        let size_text = String::from_utf8_lossy(&buf[..line_end]).into_owned();
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).context("bad chunk size")?;
        if body.len() + size > MAX_BODY {
            bail!("body over {MAX_BODY} bytes");
        }
        while buf.len() < line_end + 2 + size + 2 {
            read_more(stream, buf).await?;
        }
        body.extend_from_slice(&buf[line_end + 2..line_end + 2 + size]);
        buf.drain(..line_end + 2 + size + 2);
        if size == 0 {
            return Ok(body);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}
