//! A stalled broker publish delays no other channel (NATS, `[server]
//! workers = 2` as the binary runs it). Instance A reaches `nats-server -js`
//! through a relay that drops the JetStream publish acknowledgements of one
//! channel's history subject (`Relay::drop_acks_for`): on A, each append to
//! that channel is stored by JetStream but never acknowledged, so it waits
//! `timeout_ms` and is answered `unavailable`. A client of A publishes there
//! in a loop, several publishes in flight (the channel's appender queue is
//! never empty). Meanwhile a second client of A publishes on four channels
//! without history and on another channel with history (its own appender,
//! the same position cache and JetStream context, acknowledged normally),
//! and a client of instance B (on the broker directly) on a third channel
//! with history; subscribers on A and on B get every one of those messages
//! once, in order, with a p99 latency far below the stall: no shared lock,
//! lane or queue of A waits for the stalled appends. Then: every stalled
//! publish was answered `unavailable` (never `ok`) after `timeout_ms`; as
//! docs/brokers.md says of a lost answer, JetStream kept each of them all
//! the same, and B's subscriber gets every one once, in order; once
//! acknowledgements flow again the channel takes publishes at once.
//!
//! Were every acknowledgement on A's connection lost (`Relay::drop_acks`, a
//! broker that stores but never answers), every history channel of A would
//! stall by that same cause; channels without history would not.
//!
//! Not on Redis: there an instance sends every publish (the plain
//! `PUBLISH` pipelines and the history append scripts alike) on its one
//! command connection (`host/src/broker/redis.rs`), whose replies Redis
//! sends in order; a reply held back (the relay's `hold_replies`, or a slow
//! script) holds every later one, so no stall of one publish path leaves
//! the others running, and the liveness `PING` on that connection marks the
//! broker unresponsive within `timeout_ms`. Delivery there (the subscriber
//! connection) is covered by `broker_lanes.rs`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ferrygate::config::Config;
use ferrygate::gateway::Gateway;
use ferrygate::workers::Workers;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::broker_lanes::{check_delivery, collect};
use crate::cluster::history::ROUTES;
use crate::cluster::{BrokerServer, Instance};
use crate::support::relay::Relay;
use crate::support::{API_KEY, Client, http, metric_value};

/// Channels published on A: four without history, one with (`room.*`).
const LANES: [&str; 5] = ["lane.a", "lane.b", "lane.c", "lane.d", "room.other"];
/// A channel with history published on B.
const KEPT: &str = "room.live";
/// The channel with history whose appends on A are never acknowledged,
/// and its JetStream subject (the default prefix).
const STALLED: &str = "room.stall";
const STALLED_SUBJECT: &str = "ferrygate.hist.room.stall";
/// A's `[broker] timeout_ms`: how long each stalled append waits.
const TIMEOUT_MS: u64 = 1000;
/// Rounds of publishes (one per channel of `LANES` on A, one on `KEPT` on
/// B), one every `PACE`.
const ROUNDS: u64 = 150;
const PACE: Duration = Duration::from_millis(15);
/// Subscribers on each instance.
const SUBSCRIBERS: usize = 2;
/// Publishes the stalled client keeps in flight.
const IN_FLIGHT: u64 = 4;
/// Loose: a debug build on a shared 2-core machine; a delivery that waited
/// for a stalled append would show most of `TIMEOUT_MS`.
const MAX_P99: Duration = Duration::from_millis(500);

const FAILURES: &str = "ferrygate_history_append_failures_total";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_a_publish_stalled_on_its_ack_delays_no_other_channel() {
    let server = BrokerServer::start_jetstream();
    let relay = Relay::start(server.port, Duration::ZERO).await;
    let (a, stop, served) = start_a(relay.port).await;
    let b = Instance::start(&server, ROUTES);
    let a_url = format!("ws://{a}/ws");
    let b_url = format!("ws://{}/ws", b.addr);

    let base = Instant::now();
    let mut readers = Vec::new();
    for url in [&a_url, &b_url] {
        for _ in 0..SUBSCRIBERS {
            let mut client = Client::connect(url).await;
            for channel in LANES.iter().chain([&KEPT]) {
                client.subscribe(channel).await;
            }
            readers.push(tokio::spawn(collect(
                client,
                base,
                (LANES.len() + 1) * ROUNDS as usize,
            )));
        }
    }
    let mut watcher = b.client().await;
    watcher.subscribe(STALLED).await;
    // The stream exists and A knows the channel's position before the cut.
    let mut stalled = Client::connect(&a_url).await;
    stalled.publish(STALLED, json!({"n": 0})).await;
    assert_eq!(watcher.recv().await["data"]["n"], 0);

    relay.drop_acks_for(STALLED_SUBJECT);
    let failed = a_metric(a, FAILURES).await;
    let done = Arc::new(AtomicBool::new(false));
    let stalling = tokio::spawn(stall(stalled, Arc::clone(&done)));
    let mut publisher = Client::connect(&a_url).await;
    let mut kept = b.client().await;
    for n in 0..ROUNDS {
        for channel in LANES {
            let t = base.elapsed().as_micros() as u64;
            publisher
                .publish(channel, json!({"p": "a", "n": n, "t": t}))
                .await;
        }
        let t = base.elapsed().as_micros() as u64;
        kept.publish(KEPT, json!({"p": "b", "n": n, "t": t})).await;
        tokio::time::sleep(PACE).await;
    }
    let mut got = Vec::new();
    for reader in readers {
        got.push(reader.await.expect("a reader"));
    }
    done.store(true, Ordering::Relaxed);
    let (mut stalled, replies) = stalling.await.expect("the stalled publisher");
    check_delivery(
        &got,
        LANES.len() + 1,
        ROUNDS,
        MAX_P99,
        &format!("A's appends stalled {TIMEOUT_MS} ms each"),
    );
    check_stalled(&replies);
    assert!(a_metric(a, FAILURES).await >= failed + replies.len() as f64);

    // Acknowledgements flow again: the channel takes the next publish, and
    // B's subscriber got what JetStream kept meanwhile, once each, in order.
    relay.drop_acks(false);
    let last = replies.len() as u64 + 1;
    stalled.publish(STALLED, json!({"n": last})).await;
    let mut seen = Vec::new();
    loop {
        let n = watcher.recv().await["data"]["n"].as_u64().expect("n");
        seen.push(n);
        if n == last {
            break;
        }
    }
    // The acks were lost, not the publishes: JetStream kept every one.
    assert_eq!(
        seen,
        (1..=last).collect::<Vec<_>>(),
        "every stalled message stored and delivered once, in order"
    );
    eprintln!(
        "{} stalled publishes answered unavailable, {} of them stored all the same",
        replies.len(),
        seen.len() - 1
    );
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), served).await;
}

/// Instance A on two worker runtimes, reaching the broker at `port`, with
/// the history routes; its address, its stop switch and its server task.
async fn start_a(
    port: u16,
) -> (
    std::net::SocketAddr,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let manifest = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\napi_key = \"{API_KEY}\"\nallow_anonymous = true\n\
         drain_ms = 100\nclose_grace_ms = 300\nworkers = 2\n\n[broker]\nkind = \"nats\"\n\
         urls = [\"nats://127.0.0.1:{port}\"]\ntimeout_ms = {TIMEOUT_MS}\n{ROUTES}"
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
    let served = tokio::spawn(ferrygate::server::run(listener, gateway, workers, async {
        let _ = stopped.await;
    }));
    (addr, stop, served)
}

async fn a_metric(addr: std::net::SocketAddr, series: &str) -> f64 {
    let (_, text) = http(addr, "GET", "/metrics", &[], "").await;
    metric_value(&text, series)
}

/// Publishes on `STALLED`, `IN_FLIGHT` at a time, until `done`; every
/// reply with the time it took.
async fn stall(mut client: Client, done: Arc<AtomicBool>) -> (Client, Vec<(Value, Duration)>) {
    let mut replies = Vec::new();
    let mut n = 1;
    while !done.load(Ordering::Relaxed) {
        let sent = Instant::now();
        for _ in 0..IN_FLIGHT {
            let request = json!({"op":"publish","channel":STALLED,"data":{"n":n},"id":1000 + n});
            client.send_text(request.to_string()).await;
            n += 1;
        }
        for _ in 0..IN_FLIGHT {
            let reply = client.recv().await;
            replies.push((reply, sent.elapsed()));
        }
    }
    (client, replies)
}

/// Every stalled publish was refused after waiting for its acknowledgement,
/// and the stall lasted the whole run (several rounds).
fn check_stalled(replies: &[(Value, Duration)]) {
    assert!(
        replies.len() as u64 >= 2 * IN_FLIGHT,
        "{} replies",
        replies.len()
    );
    for (reply, took) in replies {
        assert_eq!(reply["error"]["code"], "unavailable", "{reply}");
        assert!(
            *took >= Duration::from_millis(TIMEOUT_MS * 9 / 10),
            "{reply} after {took:?}"
        );
    }
}
