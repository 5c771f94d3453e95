//! A minimal Server-Sent Events client on a raw socket: one `GET`, the
//! status and head, then the chunked body parsed into events.

use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::{PATIENCE, canary};

/// One event (or a comment-only block, such as a heartbeat).
#[derive(Debug, Default, Clone)]
pub struct Event {
    pub event: Option<String>,
    pub id: Option<String>,
    pub retry: Option<u64>,
    pub data: String,
    pub comment: Option<String>,
}

impl Event {
    /// `data` as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("{self:?}: {e}"))
    }
}

/// An open stream, or the refusal.
pub struct Stream {
    pub status: u16,
    /// The body of a refusal (empty for a stream).
    pub body: String,
    /// The response head's fields, names in lower case.
    pub headers: Vec<(String, String)>,
    reader: BufReader<TcpStream>,
    decoded: Vec<u8>,
}

impl Stream {
    /// `GET path` with `headers`.
    pub async fn open(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Self {
        Self::request(addr, "GET", path, headers).await
    }

    /// The value of the response field `name` (lower case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `method path` with `headers` (e.g. a CORS preflight, `OPTIONS`).
    pub async fn request(
        addr: SocketAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Self {
        let mut socket = TcpStream::connect(addr).await.expect("connect");
        let mut request =
            format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        socket.write_all(request.as_bytes()).await.expect("write");
        let mut reader = BufReader::new(socket);
        let mut status = 0;
        let mut length = None;
        let mut fields = Vec::new();
        loop {
            let line = read_line(&mut reader).await.expect("a response head");
            if status == 0 {
                status = line
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .expect("status line");
            } else if line.is_empty() {
                break;
            } else if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<usize>().ok();
                }
                fields.push((name.to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        let mut body = String::new();
        if status != 200 {
            let mut bytes = vec![0; length.unwrap_or(0)];
            reader.read_exact(&mut bytes).await.expect("body");
            body = String::from_utf8(bytes).expect("utf-8 body");
        }
        Self {
            status,
            body,
            headers: fields,
            reader,
            decoded: Vec::new(),
        }
    }

    /// The next event or comment block; `None` when the stream ended.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(end) = self.decoded.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.decoded.drain(..end + 2).collect();
                let text = String::from_utf8(block).expect("utf-8 events");
                canary::assert_clean(&text, "an SSE event");
                return Some(parse(&text));
            }
            let chunk = tokio::time::timeout(PATIENCE, read_chunk(&mut self.reader))
                .await
                .expect("an SSE chunk in time")?;
            self.decoded.extend_from_slice(&chunk);
        }
    }

    /// The next event with data (skipping comments and id-only blocks).
    pub async fn next_event(&mut self) -> Option<Event> {
        loop {
            let event = self.next().await?;
            if !event.data.is_empty() {
                return Some(event);
            }
        }
    }
}

fn parse(text: &str) -> Event {
    let mut event = Event::default();
    let mut data = Vec::new();
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix(':') {
            event.comment = Some(comment.trim().to_owned());
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event.event = Some(value.to_owned()),
            "id" => event.id = Some(value.to_owned()),
            "retry" => event.retry = value.parse().ok(),
            "data" => data.push(value.to_owned()),
            _ => {}
        }
    }
    event.data = data.join("\n");
    event
}

async fn read_line(reader: &mut BufReader<TcpStream>) -> Option<String> {
    let mut line = String::new();
    let n = tokio::time::timeout(PATIENCE, reader.read_line(&mut line))
        .await
        .expect("a line in time")
        .ok()?;
    (n > 0).then(|| line.trim_end_matches(['\r', '\n']).to_owned())
}

/// One chunk of a chunked body; `None` at its end or when the socket closes.
async fn read_chunk(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let size = read_line(reader).await?;
    let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
    if size == 0 {
        return None;
    }
    let mut bytes = vec![0; size + 2];
    reader.read_exact(&mut bytes).await.ok()?;
    bytes.truncate(size);
    Some(bytes)
}
