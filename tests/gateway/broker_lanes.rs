//! Broker mode on worker runtimes (`[server] workers = 2` as the binary runs
//! it): what arrives from NATS or Redis is decoded and fanned out on the
//! workers, each channel in order and exactly once, and never on the thread
//! that accepts connections and reloads. That thread is blocked here for
//! 1.5 s, as a long reload or a burst of accepts could hold it, while two
//! publishers (a backend on the broker and a WebSocket client) publish on
//! four channels: deliveries go on meanwhile.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use ferrygate::config::Config;
use ferrygate::gateway::Gateway;
use ferrygate::workers::Workers;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::cluster::backend::Backend;
use crate::cluster::{BrokerServer, Kind};
use crate::support::{API_KEY, Client};

const CHANNELS: [&str; 4] = ["lane.a", "lane.b", "lane.c", "lane.d"];
/// Messages per publisher and channel, one round every `PACE`.
const ROUNDS: u64 = 120;
const PACE: Duration = Duration::from_millis(15);
const SUBSCRIBERS: usize = 3;
/// How long the accepting thread is held.
const BLOCK: Duration = Duration::from_millis(1500);
/// Loose: a debug build on a shared 2-core machine; delivery that waited
/// for the blocked thread would show most of `BLOCK`.
const MAX_P99: Duration = Duration::from_millis(500);

#[test]
fn nats_delivery_runs_on_the_workers_in_order_while_the_accept_thread_is_blocked() {
    run(Kind::Nats);
}

#[test]
fn redis_delivery_runs_on_the_workers_in_order_while_the_accept_thread_is_blocked() {
    run(Kind::Redis);
}

/// What one subscriber got: per (channel, publisher) the sequence numbers in
/// arrival order, and every delivery's latency.
#[derive(Default)]
pub struct Got {
    sequences: BTreeMap<(String, String), Vec<u64>>,
    latencies: Vec<Duration>,
}

fn run(kind: Kind) {
    let broker = std::sync::Arc::new(BrokerServer::start(kind));
    let url = broker.url();
    let main = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the accepting runtime");
    main.block_on(async {
        let name = match kind {
            Kind::Nats => "nats",
            Kind::Redis => "redis",
        };
        let manifest = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\napi_key = \"{API_KEY}\"\nallow_anonymous = true\n\
             drain_ms = 100\nclose_grace_ms = 300\nworkers = 2\n\n[broker]\nkind = \"{name}\"\nurls = [\"{url}\"]\n"
        );
        let config = Config::parse(&manifest, &HashMap::<String, String>::new()).expect("valid");
        let workers = Workers::start(2).expect("worker runtimes");
        let gateway = Gateway::start_on(config, None, &workers)
            .await
            .expect("gateway starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(ferrygate::server::run(listener, gateway, workers, async {
            let _ = stopped.await;
        }));
        // The clients run on their own thread: this one is about to be blocked.
        let (publishing, started) = oneshot::channel::<()>();
        let (report, results) = oneshot::channel::<Vec<Got>>();
        let for_clients = std::sync::Arc::clone(&broker);
        let clients = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the clients' runtime");
            let got = runtime.block_on(drive(addr, &for_clients, publishing));
            let _ = report.send(got);
        });
        started.await.expect("the clients started publishing");
        // Hold the accepting thread as a long, blocking reload would.
        std::thread::sleep(BLOCK);
        let got = results.await.expect("the clients' results");
        clients.join().expect("the clients' thread");
        check_delivery(
            &got,
            CHANNELS.len() * 2,
            ROUNDS,
            MAX_P99,
            &format!("the accepting thread was blocked for {BLOCK:?}"),
        );
        let _ = stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    });
}

/// Subscribes, then publishes from two publishers and collects what arrives.
async fn drive(
    addr: std::net::SocketAddr,
    broker: &BrokerServer,
    publishing: oneshot::Sender<()>,
) -> Vec<Got> {
    let url = format!("ws://{addr}/ws");
    let base = Instant::now();
    let mut readers = Vec::new();
    for _ in 0..SUBSCRIBERS {
        let mut client = Client::connect(&url).await;
        for channel in CHANNELS {
            client.subscribe(channel).await;
        }
        readers.push(tokio::spawn(collect(
            client,
            base,
            CHANNELS.len() * 2 * ROUNDS as usize,
        )));
    }
    let backend = Backend::connect(broker).await;
    let mut publisher = Client::connect(&url).await;
    let _ = publishing.send(());
    for n in 0..ROUNDS {
        for channel in CHANNELS {
            let t = base.elapsed().as_micros() as u64;
            let data = json!({"p": "backend", "n": n, "t": t});
            backend
                .publish("ch", channel, data.to_string().as_bytes())
                .await;
            let t = base.elapsed().as_micros() as u64;
            publisher
                .publish(channel, json!({"p": "client", "n": n, "t": t}))
                .await;
        }
        tokio::time::sleep(PACE).await;
    }
    let mut got = Vec::new();
    for reader in readers {
        got.push(reader.await.expect("a reader"));
    }
    got
}

/// Reads every expected push of one subscriber.
/// Reads `expected` pushes of `{"p": publisher, "n": sequence, "t": sent
/// micros since \`base\`}` (shared with `broker_stall`).
pub async fn collect(mut client: Client, base: Instant, expected: usize) -> Got {
    let mut got = Got::default();
    for _ in 0..expected {
        let frame: Value = client.recv().await;
        let now = base.elapsed();
        let data = &frame["data"];
        let sent = Duration::from_micros(data["t"].as_u64().expect("t"));
        got.latencies.push(now.saturating_sub(sent));
        let channel = frame["channel"].as_str().expect("channel").to_owned();
        let publisher = data["p"].as_str().expect("p").to_owned();
        got.sequences
            .entry((channel, publisher))
            .or_default()
            .push(data["n"].as_u64().expect("n"));
    }
    got
}

/// Every subscriber got `streams` (channel, publisher) sequences, each
/// `0..rounds` once in order, and the p99 of all latencies is under `max_p99`;
/// `during` says what was going on, for the printed figure (shared with
/// `broker_stall`).
pub fn check_delivery(got: &[Got], streams: usize, rounds: u64, max_p99: Duration, during: &str) {
    let all: Vec<u64> = (0..rounds).collect();
    let mut latencies: Vec<Duration> = Vec::new();
    for subscriber in got {
        assert_eq!(subscriber.sequences.len(), streams);
        for ((channel, publisher), sequence) in &subscriber.sequences {
            assert_eq!(
                sequence, &all,
                "{channel} from {publisher}: every message once, in order"
            );
        }
        latencies.extend(&subscriber.latencies);
    }
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    let max = latencies.last().copied().unwrap_or_default();
    eprintln!(
        "{} deliveries while {during}: p99 {p99:?}, max {max:?}",
        latencies.len()
    );
    assert!(p99 < max_p99, "p99 {p99:?} (max {max:?})");
}
