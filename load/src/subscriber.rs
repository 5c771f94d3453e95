//! A fan-out subscriber: reads pushes (ferrygate) or `MSG`s (NATS), takes the
//! timestamp and sequence number from each payload and records them.
//!
//! Hot path: each wake-up drains every frame that is ready in one poll, reads
//! the clock once per few frames rather than once per message, and adds its
//! figures to the shared counters with one lock per batch.

use std::sync::Arc;
use std::task::{Context, Poll};

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::time::{Interval, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

use crate::client::Client;
use crate::net::Ws;
use crate::stats::{Local, SeqTracker, Shared};
use crate::{ferry, nats, payload};

/// Frames handled in one poll before yielding to other tasks.
const FRAMES_PER_POLL: usize = 512;
/// Frames handled between two clock reads.
const FRAMES_PER_CLOCK: usize = 32;

/// Why a batch of polling stopped.
enum Stop {
    /// The connection ended, for this reason.
    Closed(String),
    /// A NATS `PING` needs a `PONG`.
    PongOwed,
    /// Time for this client's own keepalive ping.
    PingDue,
}

/// Runs until the server ends the connection (or the task is aborted).
/// `ping_every`: send a keepalive of our own (a WebSocket ping, or a NATS
/// `PING`) this often, for servers that expect clients to speak now and then.
pub async fn run(index: usize, client: Client, shared: Arc<Shared>, ping_every: Option<Duration>) {
    let Client { mut ws, nats } = client;
    let is_nats = nats.is_some();
    let mut rec = Recorder {
        index,
        tracker: SeqTracker::default(),
        shared: &shared,
        local: Local::default(),
        nats,
        now: 0,
        ping: ping_every.map(|p| {
            let mut iv = tokio::time::interval_at(tokio::time::Instant::now() + p, p);
            iv.set_missed_tick_behavior(MissedTickBehavior::Delay);
            iv
        }),
    };
    let reason = loop {
        match std::future::poll_fn(|cx| rec.poll_batch(cx, &mut ws)).await {
            Stop::Closed(reason) => break reason,
            Stop::PongOwed => {
                if let Err(e) = nats::send_raw(&mut ws, nats::PONG).await {
                    break format!("{e:#}");
                }
            }
            Stop::PingDue => {
                let sent = if is_nats {
                    nats::send_raw(&mut ws, b"PING\r\n").await
                } else {
                    ws.send(Message::Ping(Bytes::new()))
                        .await
                        .map_err(Into::into)
                };
                if let Err(e) = sent {
                    break format!("{e:#}");
                }
            }
        }
    };
    rec.shared.flush(index, &mut rec.local);
    shared.disconnect(reason);
}

struct Recorder<'a> {
    index: usize,
    tracker: SeqTracker,
    shared: &'a Shared,
    local: Local,
    nats: Option<nats::Parser>,
    /// Receipt time used for the frames being handled.
    now: u64,
    ping: Option<Interval>,
}

impl Recorder<'_> {
    fn poll_batch(&mut self, cx: &mut Context<'_>, ws: &mut Ws) -> Poll<Stop> {
        if let Some(iv) = &mut self.ping
            && iv.poll_tick(cx).is_ready()
        {
            return Poll::Ready(Stop::PingDue);
        }
        for i in 0..FRAMES_PER_POLL {
            let msg = match ws.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(msg))) => {
                    if i % FRAMES_PER_CLOCK == 0 {
                        self.now = payload::now_ns();
                    }
                    msg
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Stop::Closed(e.to_string())),
                Poll::Ready(None) => return Poll::Ready(Stop::Closed("connection ended".into())),
                Poll::Pending => {
                    self.shared.flush(self.index, &mut self.local);
                    return Poll::Pending;
                }
            };
            let data = match &msg {
                Message::Text(t) => t.as_bytes(),
                Message::Binary(b) => &b[..],
                Message::Close(c) => {
                    let why = c.as_ref().map_or_else(
                        || "close frame without code".to_owned(),
                        |c| format!("closed {} {}", u16::from(c.code), c.reason),
                    );
                    return Poll::Ready(Stop::Closed(why));
                }
                _ => continue,
            };
            match self.frame(data) {
                Ok(false) => {}
                Ok(true) => return Poll::Ready(Stop::PongOwed),
                Err(e) => return Poll::Ready(Stop::Closed(format!("{e:#}"))),
            }
        }
        self.shared.flush(self.index, &mut self.local);
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Handles one frame; returns whether a NATS `PONG` is owed.
    fn frame(&mut self, data: &[u8]) -> anyhow::Result<bool> {
        let Some(mut parser) = self.nats.take() else {
            if let Some(p) = ferry::push_data(data) {
                self.payload(p);
            }
            return Ok(false);
        };
        parser.feed(data);
        let mut ping = false;
        let mut result = Ok(());
        loop {
            match parser.next_event() {
                Ok(Some(nats::Event::Msg { payload, .. })) => self.payload(payload),
                Ok(Some(nats::Event::Ping)) => ping = true,
                Ok(Some(nats::Event::Err(e))) => {
                    result = Err(anyhow::anyhow!("NATS -ERR {}", String::from_utf8_lossy(e)));
                    break;
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.nats = Some(parser);
        result.map(|()| ping)
    }

    fn payload(&mut self, data: &[u8]) {
        let full = match payload::scan(data) {
            Some((t, s)) => {
                let seq = self.tracker.observe(s);
                self.local.add(Some(self.now.saturating_sub(t)), Some(seq))
            }
            None => self.local.add(None, None),
        };
        if full {
            self.shared.flush(self.index, &mut self.local);
        }
    }
}
