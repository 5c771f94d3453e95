//! The fan-out publisher: paces publishes at a target rate in small batches on
//! a timer tick, and counts the server's replies on a separate reader task.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use bytes::{Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::client::Client;
use crate::http_pub::HttpSender;
use crate::net::{Endpoint, Ws};
use crate::{ferry, nats, payload};

/// Largest NATS frame the publisher builds (several `PUB`s per frame).
const NATS_FRAME: usize = 32 * 1024;

/// Reply counters, cumulative over the run.
#[derive(Debug, Default)]
pub struct Replies {
    pub ok: AtomicU64,
    pub errors: AtomicU64,
    pub rate_limited: AtomicU64,
    /// The first error text the server sent.
    pub first_error: Mutex<Option<String>>,
    /// The reader saw a NATS `PING` that the writer still has to answer.
    pub(crate) pong_owed: AtomicBool,
    /// The publisher's connection ended.
    pub closed: AtomicBool,
    /// How it ended (close code and reason, or error).
    pub close_reason: Mutex<Option<String>>,
}

impl Replies {
    pub(crate) fn set_closed(&self, why: String) {
        if let Ok(mut g) = self.close_reason.lock() {
            g.get_or_insert(why);
        }
        self.closed.store(true, Ordering::Relaxed);
    }

    /// Why the connection ended, if it did.
    pub fn close_reason(&self) -> Option<String> {
        self.close_reason.lock().ok().and_then(|g| g.clone())
    }

    pub(crate) fn error(&self, text: &[u8], rate_limited: bool) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if rate_limited {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(mut g) = self.first_error.lock() {
            g.get_or_insert_with(|| String::from_utf8_lossy(&text[..text.len().min(200)]).into());
        }
    }
}

/// What one step sent.
#[derive(Debug, Clone, Copy)]
pub struct StepSent {
    pub sent: u64,
    pub elapsed: Duration,
}

/// Where publishes go.
#[derive(Debug)]
enum Out {
    /// ferrygate `publish` frames.
    Ferry(SplitSink<Ws, Message>),
    /// NATS `PUB`s, several per binary frame.
    Nats(SplitSink<Ws, Message>),
    /// ferrygate's `POST /v1/publish`, pipelined.
    Http(HttpSender),
}

#[derive(Debug)]
pub struct Publisher {
    out: Out,
    channel: String,
    payload_bytes: usize,
    /// Next sequence number; also the number published so far.
    pub seq: u64,
    pub replies: Arc<Replies>,
    reader: JoinHandle<()>,
    buf: BytesMut,
    scratch: BytesMut,
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Publisher {
    /// A publisher on a WebSocket connection (ferrygate or NATS), which it
    /// hands to tungstenite with `cfg`.
    pub async fn websocket(
        client: Client,
        cfg: WebSocketConfig,
        channel: &str,
        payload_bytes: usize,
    ) -> Result<Self> {
        let Client { conn, nats } = client;
        let ws = conn.into_tungstenite(cfg).await?;
        let is_nats = nats.is_some();
        let (sink, stream) = ws.split();
        let replies = Arc::new(Replies::default());
        let reader = tokio::spawn(read_replies(stream, nats, replies.clone()));
        let out = if is_nats {
            Out::Nats(sink)
        } else {
            Out::Ferry(sink)
        };
        Ok(Self::build(out, reader, replies, channel, payload_bytes))
    }

    /// A publisher on ferrygate's HTTP API.
    pub async fn http(
        ep: &Endpoint,
        source: Option<IpAddr>,
        api_key: &str,
        channel: &str,
        payload_bytes: usize,
    ) -> Result<Self> {
        let replies = Arc::new(Replies::default());
        let (sender, reader) = HttpSender::connect(ep, source, api_key, replies.clone()).await?;
        Ok(Self::build(
            Out::Http(sender),
            reader,
            replies,
            channel,
            payload_bytes,
        ))
    }

    fn build(
        out: Out,
        reader: JoinHandle<()>,
        replies: Arc<Replies>,
        channel: &str,
        payload_bytes: usize,
    ) -> Self {
        Self {
            out,
            channel: channel.to_owned(),
            payload_bytes,
            seq: 0,
            replies,
            reader,
            buf: BytesMut::new(),
            scratch: BytesMut::new(),
        }
    }

    /// Publishes at `rate` messages/s for `duration`, one batch per `tick`.
    pub async fn run_step(
        &mut self,
        rate: u64,
        duration: Duration,
        tick: Duration,
    ) -> Result<StepSent> {
        let start = Instant::now();
        let end = start + duration;
        // Never more than 50 ms of messages in one batch, however late a tick is.
        let max_batch = (rate / 20).max(1);
        let total = (rate as f64 * duration.as_secs_f64()) as u64;
        let mut iv = tokio::time::interval(tick.max(Duration::from_micros(100)));
        iv.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut sent = 0u64;
        loop {
            iv.tick().await;
            let now = Instant::now();
            let due = if now >= end {
                total
            } else {
                (rate as f64 * (now - start).as_secs_f64()) as u64
            };
            let n = due.saturating_sub(sent).min(max_batch);
            if n > 0 {
                tokio::time::timeout_at(end + Duration::from_secs(2), self.send_batch(n))
                    .await
                    .map_err(|_| anyhow!("publisher blocked: the server stopped reading"))??;
                sent += n;
            }
            if now >= end || self.replies.closed.load(Ordering::Relaxed) {
                break;
            }
        }
        Ok(StepSent {
            sent,
            elapsed: start.elapsed(),
        })
    }

    async fn send_batch(&mut self, n: u64) -> Result<()> {
        if let Out::Nats(_) = self.out
            && self.replies.pong_owed.swap(false, Ordering::Relaxed)
        {
            self.buf.extend_from_slice(nats::PONG);
        }
        for _ in 0..n {
            self.next_payload();
            match &mut self.out {
                Out::Ferry(sink) => {
                    ferry::encode_publish(&mut self.buf, self.seq, &self.channel, &self.scratch);
                    let frame = Utf8Bytes::try_from(self.buf.split().freeze()).context("UTF-8")?;
                    sink.feed(Message::Text(frame)).await.context("publish")?;
                }
                Out::Nats(sink) => {
                    nats::encode_pub(&mut self.buf, &self.channel, &self.scratch);
                    if self.buf.len() >= NATS_FRAME {
                        let frame = self.buf.split().freeze();
                        sink.feed(Message::Binary(frame)).await.context("publish")?;
                    }
                }
                Out::Http(http) => http.encode(&self.channel, &self.scratch),
            }
        }
        match &mut self.out {
            Out::Ferry(sink) => sink.flush().await.context("publish flush"),
            Out::Nats(sink) => {
                if !self.buf.is_empty() {
                    let frame = self.buf.split().freeze();
                    sink.feed(Message::Binary(frame)).await.context("publish")?;
                }
                sink.flush().await.context("publish flush")
            }
            Out::Http(http) => http.flush().await,
        }
    }

    /// Builds the next payload into `scratch` and advances `seq`.
    fn next_payload(&mut self) {
        self.scratch.clear();
        payload::encode(
            &mut self.scratch,
            payload::now_ns(),
            self.seq,
            self.payload_bytes,
        );
        self.seq += 1;
        if self.buf.capacity() - self.buf.len() < self.payload_bytes + 256 {
            self.buf.reserve(64 * 1024);
        }
    }

    /// Sends a WebSocket close; best effort.
    pub async fn close(mut self) {
        if let Out::Ferry(sink) | Out::Nats(sink) = &mut self.out {
            let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
        }
    }
}

/// Counts replies (ferrygate) or errors (NATS) until the connection ends.
async fn read_replies(mut stream: SplitStream<Ws>, nats: Option<nats::Parser>, r: Arc<Replies>) {
    let mut parser = nats;
    let why = loop {
        let data: Bytes = match stream.next().await {
            Some(Ok(Message::Text(t))) => t.into(),
            Some(Ok(Message::Binary(b))) => b,
            Some(Ok(Message::Close(c))) => {
                break c.map_or_else(
                    || "closed without a code".to_owned(),
                    |c| format!("closed {} {}", u16::from(c.code), c.reason),
                );
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => break e.to_string(),
            None => break "connection ended".to_owned(),
        };
        let Some(p) = &mut parser else {
            match ferry::classify_reply(&data) {
                ferry::Reply::Ok => {
                    r.ok.fetch_add(1, Ordering::Relaxed);
                }
                ferry::Reply::Error { rate_limited } => r.error(&data, rate_limited),
                ferry::Reply::Other => {}
            }
            continue;
        };
        p.feed(&data);
        loop {
            match p.next_event() {
                Ok(Some(nats::Event::Ping)) => r.pong_owed.store(true, Ordering::Relaxed),
                Ok(Some(nats::Event::Err(e))) => r.error(e, false),
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    r.error(format!("{e:#}").as_bytes(), false);
                    break;
                }
            }
        }
    };
    r.set_closed(why);
}
