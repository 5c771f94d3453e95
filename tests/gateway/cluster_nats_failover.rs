//! A real three-node NATS cluster (routes on loopback) under three gateway
//! processes, each given every node's URL (a different one first): fan-out,
//! rpc, and user and connection messages cross the cluster. Then the node
//! the first instance is connected to is killed; the instances on it fail
//! over to the others, and their clients, which never reconnect (same socket,
//! same connection id), get everything published once the failover is done.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cluster::Instance;
use crate::cluster::backend::Backend;
use crate::cluster::nats_cluster::NatsCluster;
use crate::plugin_auth::{SECRET, claims, hs256};
use crate::support::{Client, PATIENCE};

/// The `[broker]` body of instance `i`, with `jwt-auth` so that user
/// messages have users to reach.
fn manifest(cluster: &NatsCluster, i: usize) -> String {
    let auth = crate::plugin_auth::jwt_auth_section();
    let cache = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasm-cache");
    format!(
        "kind = \"nats\"\nurls = {}\nrpc_timeout_ms = 2000\n{auth}\n[wasm]\ncache_dir = {:?}\n",
        cluster.urls_from(i),
        cache.display().to_string()
    )
}

async fn user(instance: &Instance, name: &str) -> Client {
    let url = format!(
        "ws://{}/ws?token={}",
        instance.addr,
        hs256(&claims(name), SECRET)
    );
    Client::connect(&url).await
}

/// The name the instance of `client` gives its NATS connection.
fn nats_name(client: &Client) -> String {
    format!(
        "ferrygate-{}",
        client.welcome["node"].as_str().expect("node")
    )
}

/// The next frame that is not a failover probe.
async fn recv(client: &mut Client) -> Value {
    loop {
        let frame = client.recv().await;
        if frame["data"].get("probe").is_none() {
            return frame;
        }
    }
}

/// Until every subscriber got a probe on `chat.lobby` and `alice` one as a
/// user message, the backend publishes another every 100 ms (bounded): the
/// re-made subscriptions of a failed-over instance have then crossed the
/// routes.
async fn until_routed(backend: &Backend, subscribers: &mut [Client], alice: &mut Client) {
    let deadline = Instant::now() + PATIENCE;
    let mut routed = vec![false; subscribers.len() + 1];
    for probe in 0.. {
        if routed.iter().all(|r| *r) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "probes never arrived: {routed:?}"
        );
        let payload = json!({"probe": probe}).to_string();
        backend
            .publish("ch", "chat.lobby", payload.as_bytes())
            .await;
        backend.publish("user", "alice", payload.as_bytes()).await;
        let clients = subscribers.iter_mut().chain(std::iter::once(&mut *alice));
        for (client, done) in clients.zip(routed.iter_mut()) {
            let quiet = Duration::from_millis(100);
            while let Ok(frame) = tokio::time::timeout(quiet, client.recv()).await {
                if frame["data"].get("probe").is_some() {
                    *done = true;
                }
            }
        }
    }
}

/// Three publishers (a client on A, HTTP on B, the backend) send three
/// messages each to `chat.lobby`: every subscriber gets all nine once, each
/// source in order. A client on A calls the backend; alice on C gets a user
/// message from A's HTTP API and from the backend; each subscriber gets a
/// connection message sent through B.
async fn traffic_crosses_the_cluster(
    gateways: &[Instance],
    subscribers: &mut [Client],
    alice: &mut Client,
    backend: &Backend,
    phase: &str,
) {
    for n in 0..3 {
        subscribers[0]
            .publish("chat.lobby", json!({"src": "ws", "n": n, "phase": phase}))
            .await;
        let body =
            json!({"channel": "chat.lobby", "data": {"src": "http", "n": n, "phase": phase}});
        let (status, reply) = gateways[1].api("/v1/publish", &body).await;
        assert_eq!(status, 200, "{reply}");
        let payload = json!({"src": "backend", "n": n, "phase": phase}).to_string();
        backend
            .publish("ch", "chat.lobby", payload.as_bytes())
            .await;
    }
    for (i, client) in subscribers.iter_mut().enumerate() {
        let mut by_source: HashMap<String, Vec<i64>> = HashMap::new();
        for _ in 0..9 {
            let frame = recv(client).await;
            assert_eq!(frame["data"]["phase"], phase, "subscriber {i}: {frame}");
            let source = frame["data"]["src"].as_str().expect("src").to_owned();
            by_source
                .entry(source)
                .or_default()
                .push(frame["data"]["n"].as_i64().expect("n"));
        }
        for source in ["ws", "http", "backend"] {
            assert_eq!(by_source[source], [0, 1, 2], "subscriber {i}, {source}");
        }
    }

    // NATS answers "no responders" (`unavailable`) until the responder's
    // interest has reached the caller's node: retried, bounded.
    let deadline = Instant::now() + PATIENCE;
    let reply = loop {
        let reply = subscribers[0]
            .request(json!({"op": "rpc", "method": "orders.get", "data": phase}))
            .await;
        if reply["error"]["code"] != "unavailable" || Instant::now() > deadline {
            break reply;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(reply["result"]["echo"], phase, "{reply}");
    assert_eq!(reply["result"]["caller"]["user"], "sub0", "{reply}");
    assert_eq!(
        reply["result"]["caller"]["conn"],
        subscribers[0].conn.as_str()
    );

    let body = json!({"user": "alice", "data": {"from": "http", "phase": phase}});
    let (status, reply) = gateways[0].api("/v1/send", &body).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(recv(alice).await["data"]["from"], "http");
    let payload = json!({"from": "backend", "phase": phase}).to_string();
    backend.publish("user", "alice", payload.as_bytes()).await;
    assert_eq!(recv(alice).await["data"]["from"], "backend");

    for client in subscribers.iter_mut() {
        let body = json!({"conn": client.conn, "data": {"to": client.conn, "phase": phase}});
        let (status, reply) = gateways[1].api("/v1/send", &body).await;
        assert_eq!(status, 200, "{reply}");
        let frame = recv(client).await;
        assert_eq!(frame["op"], "message", "{frame}");
        assert_eq!(frame["data"]["to"], client.conn.as_str(), "{frame}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_cluster_carries_traffic_and_fails_over_without_client_reconnects() {
    let mut cluster = NatsCluster::start(3).await;
    let gateways: Vec<Instance> = (0..3)
        .map(|i| Instance::start_with(&manifest(&cluster, i)))
        .collect();
    let mut subscribers = Vec::new();
    for (i, gateway) in gateways.iter().enumerate() {
        let mut client = user(gateway, &format!("sub{i}")).await;
        client.subscribe("chat.lobby").await;
        subscribers.push(client);
    }
    let mut alice = user(&gateways[2], "alice").await;
    let names: Vec<String> = subscribers.iter().map(nats_name).collect();
    let mut before = Vec::new();
    for name in &names {
        before.push(cluster.wait_node_of(name).await);
    }
    let victim = before[0];
    let survivor = (victim + 1) % 3;
    let backend_node = cluster.node(survivor);
    let backend = Backend::connect(&backend_node).await;
    let responder = Backend::respond(&backend_node, "orders.get").await;
    // Sent before the responder's interest may have crossed the routes;
    // `until_routed` waits for the channel and user subscriptions only.
    until_routed(&backend, &mut subscribers, &mut alice).await;
    traffic_crosses_the_cluster(&gateways, &mut subscribers, &mut alice, &backend, "before").await;

    let conns: Vec<String> = subscribers.iter().map(|c| c.conn.clone()).collect();
    cluster.kill(victim);
    for (i, gateway) in gateways.iter().enumerate() {
        if before[i] == victim {
            gateway
                .wait_metric("ferrygate_broker_reconnects_total", 1.0)
                .await;
        }
        gateway.wait_ready(200).await;
        let now = cluster.wait_node_of(&names[i]).await;
        assert_ne!(now, victim, "instance {i} is on the dead node");
    }
    assert_eq!(
        gateways[0]
            .metric("ferrygate_broker_reconnects_total")
            .await,
        1.0,
        "A failed over once"
    );
    // The interest an instance re-makes on its new node reaches the other
    // nodes shortly after the reconnect: until then a message can miss it.
    until_routed(&backend, &mut subscribers, &mut alice).await;
    traffic_crosses_the_cluster(&gateways, &mut subscribers, &mut alice, &backend, "after").await;
    for (client, conn) in subscribers.iter().zip(&conns) {
        assert_eq!(&client.conn, conn, "the client never reconnected");
    }
    let opened: f64 = {
        let mut total = 0.0;
        for gateway in &gateways {
            total += gateway.metric("ferrygate_connections_opened_total").await;
        }
        total
    };
    assert_eq!(opened, 4.0, "no WebSocket was opened again");
    responder.abort();
}
