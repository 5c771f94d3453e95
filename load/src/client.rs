//! A connected client of either target, and opening many of them with bounded
//! concurrency, round-robin over source addresses.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::cli::Target;
use crate::net::Endpoint;
use crate::token::Tokens;
use crate::wsconn::WsConn;
use crate::{ferry, nats};

/// A connection past its protocol handshake.
#[derive(Debug)]
pub struct Client {
    pub conn: WsConn,
    /// The NATS stream parser (`None` for ferrygate).
    pub nats: Option<nats::Parser>,
}

impl Client {
    /// Connects and completes the target's handshake; `read_buffer` sizes the
    /// connection's frame buffer.
    pub async fn open(
        target: Target,
        ep: &Endpoint,
        source: Option<IpAddr>,
        read_buffer: usize,
        timeout: Duration,
    ) -> Result<Self> {
        let mut conn = WsConn::connect(ep, source, read_buffer).await?;
        let nats = match target {
            Target::Ferrygate => {
                ferry::handshake(&mut conn, timeout).await?;
                None
            }
            Target::Nats => {
                let mut p = nats::Parser::default();
                nats::handshake(&mut conn, &mut p, timeout).await?;
                Some(p)
            }
        };
        Ok(Self { conn, nats })
    }

    /// Subscribes to `channel` and waits for the server's confirmation.
    pub async fn subscribe(&mut self, channel: &str, timeout: Duration) -> Result<()> {
        match &mut self.nats {
            None => ferry::subscribe(&mut self.conn, channel, timeout).await,
            Some(p) => nats::subscribe(&mut self.conn, p, channel, 1, timeout).await,
        }
    }

    /// Keeps an idle connection alive (answering WebSocket pings, and NATS
    /// `PING`s) until the server ends it.
    pub async fn idle(mut self) {
        while let Ok(span) = self.conn.next_data_span().await {
            let Some(p) = &mut self.nats else { continue };
            p.feed(self.conn.bytes(span));
            let mut ping = false;
            loop {
                match p.next_event() {
                    Ok(Some(nats::Event::Ping)) => ping = true,
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => return,
                }
            }
            if ping && nats::send_raw(&mut self.conn, nats::PONG).await.is_err() {
                return;
            }
        }
    }
}

/// How to open a batch of clients.
#[derive(Debug, Clone)]
pub struct OpenPlan {
    pub target: Target,
    pub endpoint: Arc<Endpoint>,
    pub sources: Arc<Vec<IpAddr>>,
    /// Frame buffer per connection, bytes.
    pub read_buffer: usize,
    pub timeout: Duration,
    pub concurrency: usize,
    /// Subscribe each client to this channel before it counts as open.
    pub subscribe: Option<Arc<str>>,
    /// Per-connection tokens: client `i` connects as user `first_user + i`.
    pub tokens: Option<Arc<Tokens>>,
    /// The user number of client 0 (clients spread over several URLs keep
    /// distinct users).
    pub first_user: usize,
}

impl OpenPlan {
    /// Where client `i` connects: the plan's endpoint, with its own token
    /// when the plan has tokens.
    pub fn endpoint_for(&self, i: usize) -> Arc<Endpoint> {
        match &self.tokens {
            None => self.endpoint.clone(),
            Some(tokens) => Arc::new(Endpoint {
                url: tokens.url(&self.endpoint.url, &tokens.user(self.first_user + i)),
                addr: self.endpoint.addr,
            }),
        }
    }
}

/// Outcome of opening a batch.
#[derive(Debug, Default)]
pub struct Opened {
    pub ok: usize,
    pub failed: usize,
    /// Failure messages and how often each occurred.
    pub errors: BTreeMap<String, usize>,
    pub elapsed: Duration,
}

impl Opened {
    pub fn print(&self, what: &str) {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        println!(
            "{what}: {} open, {} failed in {:.2} s ({:.0}/s)",
            self.ok,
            self.failed,
            secs,
            self.ok as f64 / secs
        );
        let mut errs: Vec<_> = self.errors.iter().collect();
        errs.sort_by(|a, b| b.1.cmp(a.1));
        for (e, n) in errs.iter().take(5) {
            println!("  {n} x {e}");
        }
    }
}

/// Spawns `n` clients into `tasks`; each, once open (and subscribed), runs
/// `body(index, client)`. Returns when every client is open or has failed.
pub async fn open_many<F, Fut>(
    n: usize,
    plan: &OpenPlan,
    tasks: &mut JoinSet<()>,
    body: F,
) -> Opened
where
    F: Fn(usize, Client) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let start = Instant::now();
    let sem = Arc::new(Semaphore::new(plan.concurrency.max(1)));
    let (tx, mut rx) = mpsc::unbounded_channel::<Result<(), String>>();
    for i in 0..n {
        let (sem, tx, plan, body) = (sem.clone(), tx.clone(), plan.clone(), body.clone());
        tasks.spawn(async move {
            let Ok(permit) = sem.acquire_owned().await else {
                return;
            };
            let source = (!plan.sources.is_empty()).then(|| plan.sources[i % plan.sources.len()]);
            let endpoint = plan.endpoint_for(i);
            let opened = tokio::time::timeout(plan.timeout, async {
                let mut c = Client::open(
                    plan.target,
                    &endpoint,
                    source,
                    plan.read_buffer,
                    plan.timeout,
                )
                .await?;
                if let Some(ch) = &plan.subscribe {
                    c.subscribe(ch, plan.timeout).await?;
                }
                anyhow::Ok(c)
            })
            .await;
            drop(permit);
            match opened {
                Ok(Ok(c)) => {
                    let _ = tx.send(Ok(()));
                    body(i, c).await;
                }
                Ok(Err(e)) => {
                    let _ = tx.send(Err(format!("{e:#}")));
                }
                Err(_) => {
                    let _ = tx.send(Err("timed out".into()));
                }
            }
        });
    }
    drop(tx);
    let mut out = Opened::default();
    let mut last_print = Instant::now();
    while let Some(r) = rx.recv().await {
        match r {
            Ok(()) => out.ok += 1,
            Err(e) => {
                out.failed += 1;
                let e: String = e.chars().take(160).collect();
                *out.errors.entry(e).or_default() += 1;
            }
        }
        if out.ok + out.failed == n {
            break;
        }
        if last_print.elapsed() >= Duration::from_secs(2) {
            last_print = Instant::now();
            eprintln!("  ... {} open, {} failed of {n}", out.ok, out.failed);
        }
    }
    out.elapsed = start.elapsed();
    out
}
