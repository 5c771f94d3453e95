//! Broker faults, written once and run on each broker: malformed messages
//! from the broker, and the broker going away and coming back.

use std::time::Duration;

use serde_json::{Value, json};

use super::backend::Backend;
use super::{BrokerServer, Instance, Kind, assert_silent, frames};

const QUIET: Duration = Duration::from_millis(300);

fn instances(server: &BrokerServer, n: usize) -> Vec<Instance> {
    (0..n).map(|_| Instance::start(server, "")).collect()
}

/// Not JSON, oversize and a bad envelope are counted and dropped; the next
/// good message reaches the subscriber as usual.
pub async fn malformed_broker_messages_are_counted_and_dropped(kind: Kind) {
    let server = BrokerServer::start(kind);
    let gateways = instances(&server, 1);
    let mut client = gateways[0].client().await;
    client.subscribe("room").await;
    let backend = Backend::connect(&server).await;
    backend.publish("ch", "room", b"not json").await;
    let oversize = format!("\"{}\"", "x".repeat(70_000));
    backend.publish("ch", "room", oversize.as_bytes()).await;
    // Envelopes (a numeric `ferrygate`) with a field of the wrong type are
    // dropped too, never delivered whole as if they were payloads.
    // So are presence events whose `data` is not `{"user":..,"conn":..}`.
    let envelopes: [&[u8]; 8] = [
        br#"{"ferrygate":9,"data":1}"#,
        br#"{"ferrygate":1,"offset":-1,"epoch":"e1","data":1}"#,
        br#"{"ferrygate":1,"node":5,"data":1}"#,
        br#"{"ferrygate":-1,"data":1}"#,
        br#"{"ferrygate":1,"presence":"join","data":"x"}"#,
        br#"{"ferrygate":1,"presence":"leave","data":{"user":5}}"#,
        br#"{"ferrygate":1,"presence":"join","data":{"conn":"n.1"}}"#,
        br#"{"ferrygate":1,"presence":"join","data":{"user":"u","role":"admin"}}"#,
    ];
    for envelope in envelopes {
        backend.publish("ch", "room", envelope).await;
    }
    // Without a numeric `ferrygate` it is a payload like any other.
    backend
        .publish("ch", "room", br#"{"presence":"join","data":"x"}"#)
        .await;
    let event = br#"{"ferrygate":1,"presence":"join","data":{"user":"u","conn":"n.1"}}"#;
    backend.publish("ch", "room", event).await;
    backend.publish("ch", "room", br#"{"ok":true}"#).await;
    assert_eq!(
        client.recv().await,
        json!({"channel":"room","data":{"presence":"join","data":"x"}})
    );
    assert_eq!(
        client.recv().await,
        json!({"channel":"room","join":{"user":"u","conn":"n.1"}})
    );
    assert_eq!(
        client.recv().await,
        json!({"channel":"room","data":{"ok":true}})
    );
    for (reason, count) in [("not_json", 1.0), ("oversize", 1.0), ("bad_envelope", 8.0)] {
        let series = format!("ferrygate_broker_malformed_total{{reason=\"{reason}\"}}");
        gateways[0].wait_metric(&series, count).await;
    }
}

/// Kill the broker: readiness says so, and publishes and subscribes are
/// refused `unavailable` (not acknowledged and delivered locally only);
/// restart it on the same port: cross-instance delivery resumes, no client
/// reconnects.
pub async fn broker_outage_refuses_publishes_and_recovers(kind: Kind) {
    let mut server = BrokerServer::start(kind);
    let gateways = instances(&server, 2);
    let (a, b) = (&gateways[0], &gateways[1]);
    let mut on_a = a.client().await;
    on_a.subscribe("live").await;
    let mut on_b = b.client().await;
    on_b.subscribe("live").await;
    let mut publisher = a.client().await;
    publisher.publish("live", json!("before")).await;
    assert_eq!(on_a.recv().await["data"], "before");
    assert_eq!(on_b.recv().await["data"], "before");

    server.kill();
    a.wait_ready(503).await;
    b.wait_ready(503).await;
    a.wait_metric_eq("ferrygate_broker_connected", 0.0).await;
    let reply = publisher
        .request(json!({"op":"publish","channel":"live","data":"during"}))
        .await;
    assert_eq!(reply["error"]["code"], "unavailable", "{reply}");
    let reply = publisher
        .request(json!({"op":"subscribe","channel":"other"}))
        .await;
    assert_eq!(reply["error"]["code"], "unavailable", "{reply}");
    let (status, body) = a
        .api("/v1/publish", &json!({"channel":"live","data":"during"}))
        .await;
    assert_eq!(status, 503, "{body}");
    assert_silent(&mut on_a, QUIET).await;
    let failed = "ferrygate_broker_publish_failures_total{reason=\"disconnected\"}";
    assert!(a.metric(failed).await >= 2.0);

    server.restart();
    a.wait_ready(200).await;
    b.wait_ready(200).await;
    // Subscriptions come back shortly after the connection: probe until B
    // hears from A again, then every message must arrive once, in order.
    let mut probe = 0;
    loop {
        probe += 1;
        assert!(probe <= 100, "B never heard from A again");
        publisher.publish("live", json!({"probe": probe})).await;
        match tokio::time::timeout(Duration::from_millis(100), on_b.recv()).await {
            Ok(frame) => {
                assert_eq!(frame["data"]["probe"], probe, "{frame}");
                break;
            }
            Err(_) => continue,
        }
    }
    for n in 0..5 {
        publisher.publish("live", json!({"n": n})).await;
    }
    let after: Vec<Value> = frames(&mut on_b, 5).await;
    let ns: Vec<_> = after.iter().map(|f| f["data"]["n"].clone()).collect();
    assert_eq!(ns, [0, 1, 2, 3, 4].map(Value::from), "{after:?}");
    // A's own subscriber saw every probe it could and then the five, once each.
    let mut seen = Vec::new();
    while seen.last() != Some(&json!(4)) {
        let frame = on_a.recv().await;
        if let Some(n) = frame["data"].get("n") {
            seen.push(n.clone());
        }
    }
    assert_eq!(seen, [0, 1, 2, 3, 4].map(Value::from));
    assert_silent(&mut on_b, QUIET).await;
    assert!(a.metric("ferrygate_broker_reconnects_total").await >= 1.0);
}
