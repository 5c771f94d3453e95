//! "Acknowledged, then lost", written once and run on each broker by
//! `broker_acked`: a subscribe's `ok` follows the broker's confirmation, an
//! oversize publish is refused up front, acknowledged publishes survive a
//! SIGTERM, and a hung broker answers `unavailable` in bounded time.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::backend::Backend;
use super::{BrokerServer, Instance, Kind, assert_silent};
use crate::support::relay::Relay;
use crate::support::{Client, PATIENCE};

/// An instance whose broker URL points at `relay` instead of `server`.
fn through(server: &BrokerServer, relay: &Relay, extra: &str) -> Instance {
    Instance::start_with(&format!(
        "kind = \"{}\"\nurls = [\"{}://127.0.0.1:{}\"]\n{extra}",
        server.kind.name(),
        server.scheme,
        relay.port
    ))
}

/// Reads pushes until `expected` distinct `data.n` values arrived or `limit`
/// passed; returns the ones that arrived.
async fn collect_ns(client: &mut Client, expected: usize, limit: Duration) -> BTreeSet<i64> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut got = BTreeSet::new();
    while got.len() < expected {
        match tokio::time::timeout_at(deadline, client.recv()).await {
            Ok(frame) => {
                got.insert(frame["data"]["n"].as_i64().expect("n"));
            }
            Err(_) => break,
        }
    }
    got
}

/// With ~10 ms between gateway and broker, a backend publishes to a channel
/// the moment the client's subscribe is acknowledged: every message arrives.
pub async fn a_message_published_right_after_the_subscribe_ok_arrives(kind: Kind) {
    const N: i64 = 20;
    let server = BrokerServer::start(kind);
    let relay = Relay::start(server.port, Duration::from_millis(10)).await;
    let gateway = through(&server, &relay, "");
    let backend = Backend::connect(&server).await;
    let mut client = gateway.client().await;
    for n in 0..N {
        let channel = format!("race.p{n}");
        client.subscribe(&channel).await;
        backend
            .publish("ch", &channel, json!({ "n": n }).to_string().as_bytes())
            .await;
    }
    let got = collect_ns(&mut client, N as usize, Duration::from_secs(3)).await;
    let missing: Vec<i64> = (0..N).filter(|n| !got.contains(n)).collect();
    assert!(missing.is_empty(), "acknowledged, then lost: {missing:?}");
}

/// `max_frame_bytes` is 65,536: data whose envelope would be larger is
/// refused `too_large` (publish and send), and the largest that fits
/// arrives. (Over WebSocket only a transform can make data that large: see
/// `broker_acked::a_transform_output_too_large_for_the_broker_is_refused`.)
pub async fn oversize_publishes_are_refused_up_front(kind: Kind) {
    let server = BrokerServer::start(kind);
    let gateway = Instance::start(&server, "");
    let mut subscriber = gateway.client().await;
    subscriber.subscribe("big").await;

    // The reported case: 65,530 bytes of string over HTTP.
    let body = json!({"channel": "big", "data": "x".repeat(65_530)});
    let (status, reply) = gateway.api("/v1/publish", &body).await;
    assert_eq!(status, 413, "{reply}");
    assert_eq!(reply["error"]["code"], "too_large", "{reply}");
    let body = json!({"conn": subscriber.conn, "data": "x".repeat(65_530)});
    let (status, reply) = gateway.api("/v1/send", &body).await;
    assert_eq!(status, 413, "{reply}");

    // The envelope is 33 bytes plus the 10-character node id; the data here
    // is a JSON string, 2 bytes of quotes.
    let over = "z".repeat(65_536 - 43 - 1);
    let body = json!({"channel": "big", "data": over});
    assert_eq!(gateway.api("/v1/publish", &body).await.0, 413);
    let fits = "z".repeat(65_536 - 43 - 2);
    let body = json!({"channel": "big", "data": fits});
    let (status, reply) = gateway.api("/v1/publish", &body).await;
    assert_eq!(status, 200, "{reply}");
    let frame = subscriber.recv().await;
    assert_eq!(frame["data"].as_str().map(str::len), Some(fits.len()));
    assert_silent(&mut subscriber, Duration::from_millis(300)).await;
    let refused = "ferrygate_broker_publish_failures_total{reason=\"too_large\"}";
    assert_eq!(gateway.metric(refused).await, 3.0);
    assert_eq!(
        gateway
            .metric("ferrygate_broker_malformed_total{reason=\"oversize\"}")
            .await,
        0.0,
        "nothing oversize reached a receiver"
    );
}

/// A burst of acknowledged publishes on A, then SIGTERM: a subscriber on B
/// gets every one. A talks to the broker through a relay 200 ms away, so that
/// much of the burst is still queued in A when the signal comes (without the
/// flush at shutdown, Redis lost 1,487 of 2,000 here).
pub async fn publishes_acknowledged_before_sigterm_reach_the_broker(kind: Kind) {
    const N: i64 = 2_000;
    let server = BrokerServer::start(kind);
    let relay = Relay::start(server.port, Duration::from_millis(200)).await;
    let mut a = through(&server, &relay, "");
    let b = Instance::start(&server, "");
    let mut subscriber = b.client().await;
    subscriber.subscribe("burst").await;
    a.wait_ready(200).await;

    // Four clients, as each may burst 1,000 publishes (`publish_rate`).
    let mut publishers = Vec::new();
    for _ in 0..4 {
        publishers.push(a.client().await);
    }
    for (index, publisher) in publishers.iter_mut().enumerate() {
        for n in (0..N).skip(index).step_by(4) {
            let frame = json!({"op": "publish", "id": n, "channel": "burst", "data": {"n": n}});
            publisher.send_text(frame.to_string()).await;
        }
    }
    for publisher in &mut publishers {
        for _ in 0..N / 4 {
            let reply = publisher.recv().await;
            assert_eq!(reply["ok"], true, "{reply}");
        }
    }
    let status = Command::new("kill")
        .args(["-TERM", &a.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());

    let got = collect_ns(&mut subscriber, N as usize, PATIENCE).await;
    assert_eq!(
        got.len() as i64,
        N,
        "lost after ok: {} of {N}",
        N - got.len() as i64
    );
    let deadline = Instant::now() + PATIENCE;
    while a.child.try_wait().expect("try_wait").is_none() {
        assert!(Instant::now() < deadline, "A did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// While the broker hangs, each request gets `unavailable` well within a
/// second of being asked and `/readyz` is 503; once it answers, all is well.
pub async fn a_hung_broker_is_unavailable_not_a_hang(
    gateway: &Instance,
    hang: impl FnOnce(),
    wake: impl FnOnce(),
) {
    let mut client = gateway.client().await;
    client.subscribe("steady").await;
    client.publish("steady", json!({"n": 0})).await;
    assert_eq!(client.recv().await["data"]["n"], 0);

    hang();
    gateway.wait_ready(503).await;
    for request in [
        json!({"op": "publish", "channel": "steady", "data": {"n": 1}}),
        json!({"op": "subscribe", "channel": "fresh"}),
        json!({"op": "rpc", "method": "orders.get", "data": 1}),
    ] {
        let started = Instant::now();
        let reply = client.request(request.clone()).await;
        assert_eq!(reply["error"]["code"], "unavailable", "{request}: {reply}");
        assert!(started.elapsed() < Duration::from_secs(1), "{request}");
    }
    let (status, reply) = gateway
        .api(
            "/v1/publish",
            &json!({"channel": "steady", "data": {"n": 2}}),
        )
        .await;
    assert_eq!(status, 503, "{reply}");
    assert!(
        gateway
            .metric("ferrygate_broker_liveness_failures_total")
            .await
            >= 1.0
    );
    let refused = "ferrygate_broker_publish_failures_total{reason=\"disconnected\"}";
    assert!(gateway.metric(refused).await >= 2.0);

    wake();
    gateway.wait_ready(200).await;
    let mut fresh = gateway.client().await;
    fresh.subscribe("fresh").await;
    fresh.publish("fresh", json!({"n": 3})).await;
    let frame: Value = fresh.recv().await;
    assert_eq!(frame["data"]["n"], 3);
}

/// NATS behind a relay that stops forwarding.
pub async fn hung_nats() {
    let server = BrokerServer::start(Kind::Nats);
    let relay = Relay::start(server.port, Duration::ZERO).await;
    let gateway = through(
        &server,
        &relay,
        "timeout_ms = 400\nliveness_interval_ms = 200",
    );
    a_hung_broker_is_unavailable_not_a_hang(&gateway, || relay.pause(), || relay.resume()).await;
}

/// Redis asleep (`DEBUG SLEEP`): connected, answering nothing.
pub async fn hung_redis() {
    let mut server = BrokerServer::reserve(Kind::Redis);
    server.args = vec!["--enable-debug-command".into(), "yes".into()];
    server.restart();
    let gateway = Instance::start(&server, "timeout_ms = 400\nliveness_interval_ms = 200");
    let port = server.port.to_string();
    let mut sleeper = None;
    a_hung_broker_is_unavailable_not_a_hang(
        &gateway,
        || {
            let child = Command::new("redis-cli")
                .args(["-p", &port, "DEBUG", "SLEEP", "4"])
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("run redis-cli");
            sleeper = Some(child);
        },
        || {},
    )
    .await;
    if let Some(mut child) = sleeper {
        let _ = child.wait();
    }
}

/// A NATS server whose `max_payload` (4 KiB here) is below `max_frame_bytes`:
/// what it would refuse is answered `too_large` (HTTP 413), never `ok`.
pub async fn nats_max_payload_is_respected() {
    let mut server = BrokerServer::reserve(Kind::Nats);
    let conf = server.dir.write("nats.conf", "max_payload: 4096\n");
    server.args = vec!["-c".into(), conf.display().to_string()];
    server.restart();
    let gateway = Instance::start(&server, "");
    let mut subscriber = gateway.client().await;
    subscriber.subscribe("big").await;
    let body = json!({"channel": "big", "data": "x".repeat(5_000)});
    let (status, reply) = gateway.api("/v1/publish", &body).await;
    assert_eq!(status, 413, "{reply}");
    assert_eq!(reply["error"]["code"], "too_large", "{reply}");
    let body = json!({"channel": "big", "data": {"n": 1}});
    assert_eq!(gateway.api("/v1/publish", &body).await.0, 200);
    assert_eq!(subscriber.recv().await["data"]["n"], 1);
}
