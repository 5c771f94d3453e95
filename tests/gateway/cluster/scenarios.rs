//! The cross-instance scenarios, written once and run on each broker by
//! `cluster_nats` and `cluster_redis`.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;

use super::backend::Backend;
use super::{BrokerServer, Instance, Kind, assert_silent, frames};
use crate::support::Client;

const QUIET: Duration = Duration::from_millis(300);

fn instances(server: &BrokerServer, n: usize, extra: &str) -> Vec<Instance> {
    (0..n).map(|_| Instance::start(server, extra)).collect()
}

/// Three instances, two subscribers on each; five messages from a client on
/// A, five via HTTP on B, five from a backend on the broker (raw and
/// enveloped): every subscriber gets all fifteen once, each source in order.
pub async fn fan_out_reaches_every_instance_exactly_once_in_order(kind: Kind) {
    let server = BrokerServer::start(kind);
    let gateways = instances(&server, 3, "");
    let mut subscribers: Vec<Client> = Vec::new();
    for gateway in &gateways {
        for _ in 0..2 {
            let mut client = gateway.client().await;
            client.subscribe("chat.lobby").await;
            subscribers.push(client);
        }
    }
    // The publisher on A is itself one of A's subscribers: it must get its
    // own messages once, through the broker, not twice.
    let mut publisher = gateways[0].client().await;
    publisher.subscribe("chat.lobby").await;
    for n in 0..5 {
        publisher
            .publish("chat.lobby", json!({"src":"ws","n":n}))
            .await;
    }
    for n in 0..5 {
        let body = json!({"channel":"chat.lobby","data":{"src":"http","n":n}});
        let (status, reply) = gateways[1].api("/v1/publish", &body).await;
        assert_eq!(status, 200, "{reply}");
    }
    let backend = Backend::connect(&server).await;
    for n in 0..5 {
        let data = json!({"src":"backend","n":n});
        let payload = if n % 2 == 0 {
            data.to_string()
        } else {
            json!({"ferrygate":1,"node":"backend","data":data}).to_string()
        };
        backend
            .publish("ch", "chat.lobby", payload.as_bytes())
            .await;
    }
    subscribers.push(publisher);
    for client in &mut subscribers {
        let got = frames(client, 15).await;
        let mut by_source: HashMap<String, Vec<i64>> = HashMap::new();
        for frame in &got {
            assert_eq!(frame["channel"], "chat.lobby", "{frame}");
            let source = frame["data"]["src"].as_str().expect("src").to_owned();
            by_source
                .entry(source)
                .or_default()
                .push(frame["data"]["n"].as_i64().expect("n"));
        }
        for source in ["ws", "http", "backend"] {
            assert_eq!(by_source[source], [0, 1, 2, 3, 4], "{source}: {got:?}");
        }
        assert_silent(client, QUIET).await;
    }
}

/// An instance whose last subscriber left gets nothing more of the channel
/// from the broker; a burst of unsubscribe/subscribe ends subscribed.
pub async fn broker_interest_follows_local_subscribers(kind: Kind) {
    let server = BrokerServer::start(kind);
    let gateways = instances(&server, 2, "");
    let (a, c) = (&gateways[0], &gateways[1]);
    let mut on_a = a.client().await;
    on_a.subscribe("news").await;
    let mut on_c = c.client().await;
    on_c.subscribe("news").await;
    c.wait_metric("ferrygate_broker_subscriptions", 1.0).await;

    let publish = |n: i64| async move {
        a.api("/v1/publish", &json!({"channel":"news","data":n}))
            .await
    };
    assert_eq!(publish(0).await.0, 200);
    assert_eq!(on_c.recv().await["data"], 0);
    assert_eq!(on_a.recv().await["data"], 0);
    let received = "ferrygate_broker_messages_in_total{kind=\"channel\"}";
    let before = c.metric(received).await;

    let reply = on_c
        .request(json!({"op":"unsubscribe","channel":"news"}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    let deadline = tokio::time::Instant::now() + crate::support::PATIENCE;
    while c.metric("ferrygate_broker_subscriptions").await > 0.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "C kept its broker subscription"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for n in 1..=5 {
        assert_eq!(publish(n).await.0, 200);
    }
    for n in 1..=5 {
        assert_eq!(on_a.recv().await["data"], n, "A still gets the channel");
    }
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        c.metric(received).await,
        before,
        "C received traffic nobody there wants"
    );
    assert_silent(&mut on_c, Duration::ZERO).await;

    // Two clients on C flip their subscriptions concurrently; whatever the
    // interleaving, C ends subscribed once both are subscribed.
    let mut other_on_c = c.client().await;
    tokio::join!(flip(&mut on_c), flip(&mut other_on_c));
    assert_eq!(publish(6).await.0, 200);
    assert_eq!(on_c.recv().await["data"], 6);
    assert_eq!(other_on_c.recv().await["data"], 6);
    assert_eq!(on_a.recv().await["data"], 6);
    assert_silent(&mut on_c, QUIET).await;
    assert_silent(&mut other_on_c, Duration::ZERO).await;
    assert_eq!(c.metric("ferrygate_broker_subscriptions").await, 1.0);

    // Clients that just go away release their interest as well.
    drop(on_c);
    drop(other_on_c);
    c.wait_metric_eq("ferrygate_broker_subscriptions", 0.0)
        .await;
    let before = c.metric(received).await;
    assert_eq!(publish(7).await.0, 200);
    assert_eq!(on_a.recv().await["data"], 7);
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        c.metric(received).await,
        before,
        "C still receives the channel"
    );
}

/// Ten quick subscribe/unsubscribe pairs on `news`, ending subscribed.
async fn flip(client: &mut Client) {
    for _ in 0..10 {
        client.subscribe("news").await;
        let reply = client
            .request(json!({"op":"unsubscribe","channel":"news"}))
            .await;
        assert_eq!(reply["ok"], true, "{reply}");
    }
    client.subscribe("news").await;
}

/// `/v1/send` on A and a backend's conn-subject publish reach a connection on
/// C, and only C receives conn-targeted traffic for it.
pub async fn direct_messages_reach_a_connection_on_another_instance(kind: Kind) {
    let server = BrokerServer::start(kind);
    let gateways = instances(&server, 3, "");
    let mut target = gateways[2].client().await;
    let mut bystander = gateways[1].client().await;

    let body = json!({"conn": target.conn, "data": {"hi": 1}});
    let (status, reply) = gateways[0].api("/v1/send", &body).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(target.recv().await, json!({"op":"message","data":{"hi":1}}));

    let backend = Backend::connect(&server).await;
    backend.publish("conn", &target.conn, br#"{"hi":2}"#).await;
    assert_eq!(target.recv().await, json!({"op":"message","data":{"hi":2}}));

    assert_silent(&mut bystander, QUIET).await;
    let conn_in = "ferrygate_broker_messages_in_total{kind=\"conn\"}";
    assert_eq!(gateways[2].metric(conn_in).await, 2.0);
    assert_eq!(gateways[0].metric(conn_in).await, 0.0, "A got C's traffic");
    assert_eq!(gateways[1].metric(conn_in).await, 0.0, "B got C's traffic");
}

/// An rpc from an anonymous client on B reaches a backend responder, which
/// learns the calling connection and instance and no user, and comes back;
/// with no responder it fails `unavailable`, with a silent one `timeout`.
pub async fn rpc_reaches_a_backend_responder(kind: Kind) {
    let server = BrokerServer::start(kind);
    let gateways = instances(&server, 2, "rpc_timeout_ms = 500");
    let responder = Backend::respond(&server, "orders.get").await;
    let silent = Backend::silent(&server, "orders.slow").await;
    let mut client = gateways[1].client().await;

    let reply = client
        .request(json!({"op":"rpc","method":"orders.get","data":{"id":7}}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    let caller = json!({"user": null, "conn": client.conn, "node": client.welcome["node"]});
    assert_eq!(
        reply["result"],
        json!({"echo": {"id": 7}, "caller": caller}),
        "anonymous: no user"
    );

    let reply = client
        .request(json!({"op":"rpc","method":"nobody.home","data":1}))
        .await;
    assert_eq!(reply["error"]["code"], "unavailable", "{reply}");

    let started = std::time::Instant::now();
    let reply = client
        .request(json!({"op":"rpc","method":"orders.slow","data":1}))
        .await;
    assert_eq!(reply["error"]["code"], "timeout", "{reply}");
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "{:?}",
        started.elapsed()
    );
    responder.abort();
    drop(silent);
}

/// Found by fuzzing the envelope decoder: `null` is a payload a client may
/// publish (acknowledged `ok`), and it must cross the broker like any other;
/// it used to be wrapped and then refused by every receiver as `bad_envelope`.
pub async fn a_null_payload_crosses_the_broker(kind: Kind) {
    let server = BrokerServer::start(kind);
    let gateways = instances(&server, 2, "");
    let mut subscriber = gateways[1].client().await;
    subscriber.subscribe("chat.null").await;
    let mut publisher = gateways[0].client().await;
    publisher
        .publish("chat.null", serde_json::Value::Null)
        .await;
    let got = frames(&mut subscriber, 1).await;
    assert_eq!(got, [json!({"channel":"chat.null","data":null})]);
    let refused = "ferrygate_broker_malformed_total{reason=\"bad_envelope\"}";
    assert_eq!(gateways[1].metric(refused).await, 0.0);
}
