//! A fan-out subscriber: reads pushes (ferrygate) or `MSG`s (NATS), takes the
//! timestamp and sequence number from each payload and records them.
//!
//! Hot path: each read takes whatever the socket holds into the connection's
//! frame buffer, and every complete frame in it is parsed in place ([`WsConn`]:
//! no copy, no allocation per frame). The clock is read once per read and per
//! few frames, figures go to the shared counters with one lock per batch, and
//! the task yields after a batch of frames so that the others (and the
//! publisher, on a current-thread runtime) get their turn.

use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;

use crate::client::Client;
use crate::stats::{Local, SeqTracker, Shared};
use crate::wsconn::WsConn;
use crate::wsframe::{self, Frame, OP_CLOSE, OP_PING, Span};
use crate::{ferry, nats, payload};

/// Work (frames, and [`READ_COST`] per read) done before yielding to other tasks.
const WORK_PER_POLL: usize = 512;
/// A read counts as this many frames of work.
const READ_COST: usize = 16;
/// Frames handled between two clock reads.
const FRAMES_PER_CLOCK: usize = 32;

/// Runs until the server ends the connection (or the task is aborted).
/// `ping_every`: send a keepalive of our own (a WebSocket ping, or a NATS
/// `PING`) this often, for servers that expect clients to speak now and then.
pub async fn run(index: usize, client: Client, shared: Arc<Shared>, ping_every: Option<Duration>) {
    let Client { mut conn, nats } = client;
    let mut rec = Recorder {
        index,
        tracker: SeqTracker::default(),
        shared: &shared,
        local: Local::default(),
        nats,
        now: 0,
    };
    let reason = receive(&mut conn, &mut rec, ping_every)
        .await
        .unwrap_or_else(|e| format!("{e:#}"));
    rec.flush();
    shared.disconnect(reason);
}

/// Replies owed after a buffer's frames were handled.
#[derive(Default)]
struct Owed {
    /// A WebSocket ping to answer (only the latest needs an answer).
    pong: Option<Span>,
    /// A NATS `PING` to answer.
    nats_pong: bool,
}

/// What a wait for the socket ended with.
enum Wake {
    /// This many bytes were read (0: the server closed the connection).
    Read(usize),
    /// Time for this client's own keepalive ping.
    PingDue,
}

/// The receive loop; returns why the connection ended.
async fn receive(
    conn: &mut WsConn,
    rec: &mut Recorder<'_>,
    ping_every: Option<Duration>,
) -> anyhow::Result<String> {
    let mut ping = ping_every.map(|p| (p, Box::pin(tokio::time::sleep(p))));
    // Frames handled, and work done, since this task last waited or yielded.
    let (mut frames, mut work) = (0, 0);
    loop {
        let mut owed = Owed::default();
        while let Some(frame) = conn.next_frame()? {
            match frame {
                Frame::Data(span) => {
                    if frames % FRAMES_PER_CLOCK == 0 {
                        rec.now = payload::now_ns();
                    }
                    frames += 1;
                    owed.nats_pong |= rec.frame(conn.bytes(span))?;
                }
                Frame::Ping(span) => owed.pong = Some(span),
                Frame::Pong => {}
                Frame::Close(span) => {
                    let why = wsframe::close_reason(conn.bytes(span));
                    // Echo the close, best effort.
                    let code = conn.bytes(span).get(..2).unwrap_or_default().to_vec();
                    let echo = conn.send(OP_CLOSE, &code);
                    let _ = tokio::time::timeout(Duration::from_millis(100), echo).await;
                    return Ok(why);
                }
            }
        }
        if let Some(span) = owed.pong {
            conn.pong(span).await?;
        }
        if owed.nats_pong {
            nats::send_raw(conn, nats::PONG).await?;
        }
        if frames + work >= WORK_PER_POLL {
            rec.flush();
            (frames, work) = (0, 0);
            tokio::task::yield_now().await;
        }
        let wake = std::future::poll_fn(|cx| {
            if let Some((_, sleep)) = &mut ping
                && sleep.as_mut().poll(cx).is_ready()
            {
                return Poll::Ready(Ok(Wake::PingDue));
            }
            match conn.poll_fill(cx) {
                Poll::Ready(r) => Poll::Ready(r.map(Wake::Read)),
                Poll::Pending => {
                    // Idle: hand the batch over before sleeping.
                    rec.flush();
                    (frames, work) = (0, 0);
                    Poll::Pending
                }
            }
        })
        .await?;
        match wake {
            Wake::Read(0) => return Ok("connection ended".into()),
            Wake::Read(_) => {
                rec.now = payload::now_ns();
                work += READ_COST;
            }
            Wake::PingDue => {
                if let Some((every, sleep)) = &mut ping {
                    sleep.as_mut().reset(Instant::now() + *every);
                }
                match rec.nats {
                    Some(_) => nats::send_raw(conn, b"PING\r\n").await?,
                    None => conn.send(OP_PING, &[]).await?,
                }
            }
        }
    }
}

struct Recorder<'a> {
    index: usize,
    tracker: SeqTracker,
    shared: &'a Shared,
    local: Local,
    nats: Option<nats::Parser>,
    /// Receipt time used for the frames being handled.
    now: u64,
}

impl Recorder<'_> {
    fn flush(&mut self) {
        self.shared.flush(self.index, &mut self.local);
    }

    /// Handles one message; returns whether a NATS `PONG` is owed.
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
            self.flush();
        }
    }
}
