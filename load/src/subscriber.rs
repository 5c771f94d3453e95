//! A fan-out subscriber: reads pushes (ferrygate) or `MSG`s (NATS), takes the
//! timestamp and sequence number from each payload and records them.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use crate::client::Client;
use crate::stats::{SeqTracker, Shared};
use crate::{ferry, nats, payload};

/// Runs until the server ends the connection (or the task is aborted).
pub async fn run(index: usize, client: Client, shared: Arc<Shared>) {
    let Client { mut ws, nats } = client;
    let mut rec = Recorder {
        index,
        tracker: SeqTracker::default(),
        shared: &shared,
    };
    match nats {
        None => {
            while let Some(Ok(msg)) = ws.next().await {
                match msg {
                    Message::Text(t) => rec.push_frame(t.as_bytes()),
                    Message::Binary(b) => rec.push_frame(&b),
                    Message::Close(_) => break,
                    _ => {}
                }
            }
        }
        Some(mut parser) => {
            while let Some(Ok(msg)) = ws.next().await {
                let data: Bytes = match msg {
                    Message::Text(t) => t.into(),
                    Message::Binary(b) => b,
                    Message::Close(_) => break,
                    _ => continue,
                };
                parser.feed(&data);
                match rec.nats_events(&mut parser) {
                    Ok(false) => {}
                    Ok(true) => {
                        if nats::send_raw(&mut ws, nats::PONG).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        eprintln!("subscriber {index}: {e:#}");
                        break;
                    }
                }
            }
        }
    }
    shared.disconnected.fetch_add(1, Ordering::Relaxed);
}

struct Recorder<'a> {
    index: usize,
    tracker: SeqTracker,
    shared: &'a Shared,
}

impl Recorder<'_> {
    fn payload(&mut self, data: &[u8]) {
        match payload::scan(data) {
            Some((t, s)) => {
                let latency = payload::now_ns().saturating_sub(t);
                let seq = self.tracker.observe(s);
                self.shared.record(self.index, Some(latency), Some(seq));
            }
            None => self.shared.record(self.index, None, None),
        }
    }

    /// A ferrygate frame: pushes are recorded, anything else is ignored.
    fn push_frame(&mut self, frame: &[u8]) {
        if let Some(data) = ferry::push_data(frame) {
            self.payload(data);
        }
    }

    /// Drains parsed NATS events; returns whether a `PONG` is owed.
    fn nats_events(&mut self, parser: &mut nats::Parser) -> anyhow::Result<bool> {
        let mut ping = false;
        while let Some(ev) = parser.next_event()? {
            match ev {
                nats::Event::Msg { payload, .. } => self.payload(payload),
                nats::Event::Ping => ping = true,
                nats::Event::Err(e) => {
                    anyhow::bail!("NATS -ERR {}", String::from_utf8_lossy(e))
                }
                _ => {}
            }
        }
        Ok(ping)
    }
}
