//! A TCP relay between a gateway and its broker, for broker-fault tests: it
//! holds every chunk for a fixed delay in each direction (a broker ~10 ms
//! away), and can stop forwarding while keeping every connection open (a
//! hung broker or a network path that silently drops traffic), or hold only
//! the broker's replies (commands run, their answers late), then resume.
//! Optionally it drops JetStream publish acknowledgements from the broker
//! while told to ([`Relay::drop_acks`], or only those of publishes to one
//! subject, [`Relay::drop_acks_for`]; `nats_acks.rs`): a key-value write
//! lands, its answer never arrives. Bounded: at most [`CHUNKS`] chunks of
//! 64 KiB queued per direction.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::nats_acks::{AckFilter, Acks, Inboxes, PubWatch};

/// What flows: both directions, neither, or only towards the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Both,
    Paused,
    RepliesHeld,
}

/// Chunks read but not yet written, per direction of one connection.
const CHUNKS: usize = 256;

/// A running relay on 127.0.0.1; stops (closing every connection) when dropped.
pub struct Relay {
    /// The port to connect to instead of the broker's.
    pub port: u16,
    flow: watch::Sender<Flow>,
    dropping: watch::Sender<Acks>,
    task: JoinHandle<()>,
}

impl Relay {
    /// Relays connections on a fresh port to `127.0.0.1:target`, each chunk
    /// held `delay` in each direction.
    pub async fn start(target: u16, delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the relay");
        let port = listener.local_addr().expect("relay address").port();
        let flow = watch::Sender::new(Flow::Both);
        let dropping = watch::Sender::new(Acks::Pass);
        let gate = flow.subscribe();
        let drops = dropping.subscribe();
        let task = tokio::spawn(async move {
            // Owned here, so aborting the relay ends every pipe.
            let mut pipes = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                let inboxes = Inboxes::default();
                let out = Direction {
                    delay,
                    gate: gate.clone(),
                    open: |flow| flow != Flow::Paused,
                    filter: Filter::Pubs(PubWatch::new(drops.clone(), inboxes.clone())),
                };
                let back = Direction {
                    delay,
                    gate: gate.clone(),
                    open: |flow| flow == Flow::Both,
                    filter: Filter::Acks(AckFilter::new(drops.clone(), inboxes)),
                };
                pipes.spawn(pipe(client_read, server_write, out));
                pipes.spawn(pipe(server_read, client_write, back));
            }
        });
        Self {
            port,
            flow,
            dropping,
            task,
        }
    }

    /// Stops forwarding in both directions; connections stay open.
    pub fn pause(&self) {
        self.flow.send_replace(Flow::Paused);
    }

    /// Forwards commands to the broker but holds its replies.
    pub fn hold_replies(&self) {
        self.flow.send_replace(Flow::RepliesHeld);
    }

    /// Forwards again, what was held first.
    pub fn resume(&self) {
        self.flow.send_replace(Flow::Both);
    }

    /// While `on`, JetStream publish acknowledgements from a NATS broker
    /// are dropped (everything else passes).
    pub fn drop_acks(&self, on: bool) {
        self.dropping
            .send_replace(if on { Acks::DropAll } else { Acks::Pass });
    }

    /// Drops only the acknowledgements of JetStream publishes to `subject`
    /// (sent from now on), until `drop_acks(false)`.
    pub fn drop_acks_for(&self, subject: &str) {
        self.dropping
            .send_replace(Acks::DropFor(subject.to_owned()));
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One direction of a connection.
struct Direction {
    delay: Duration,
    gate: watch::Receiver<Flow>,
    open: fn(Flow) -> bool,
    filter: Filter,
}

/// What a direction looks at on its way.
enum Filter {
    Pubs(PubWatch),
    Acks(AckFilter),
}

impl Filter {
    fn pass(&mut self, chunk: &[u8]) -> Vec<u8> {
        match self {
            Self::Pubs(watch) => watch.pass(chunk),
            Self::Acks(filter) => filter.pass(chunk),
        }
    }
}

async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, direction: Direction) {
    let Direction {
        delay,
        gate,
        open,
        mut filter,
    } = direction;
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(CHUNKS);
    let mut read_gate = gate.clone();
    let reader = async move {
        let mut buffer = vec![0; 64 * 1024];
        loop {
            if read_gate.wait_for(|flow| open(*flow)).await.is_err() {
                return;
            }
            let n = match from.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let chunk = filter.pass(&buffer[..n]);
            if tx.send((Instant::now() + delay, chunk)).await.is_err() {
                return;
            }
        }
    };
    let mut write_gate = gate;
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if write_gate.wait_for(|flow| open(*flow)).await.is_err() {
                return;
            }
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}
