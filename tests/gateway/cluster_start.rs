//! A broker that is down when ferrygate starts: a clear error and exit under
//! `on_unreachable = "fail"`, a degraded start under `"degraded"` that
//! refuses publishes and subscribes `unavailable`, then heals.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::cluster::{BrokerServer, Instance, Kind};
use crate::support::PATIENCE;

fn fails_with_a_clear_error(kind: Kind, expected: &str) {
    let server = BrokerServer::reserve(kind);
    let (_dir, mut command) = Instance::command(&server, "connect_timeout_ms = 300");
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ferrygate");
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "ferrygate kept running without its broker"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(expected), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    crate::support::canary::assert_clean(&stderr, "the log of a failed start");
}

#[test]
fn unreachable_nats_at_start_is_a_clear_error() {
    fails_with_a_clear_error(Kind::Nats, "cannot reach NATS at nats://127.0.0.1:");
}

#[test]
fn unreachable_redis_at_start_is_a_clear_error() {
    fails_with_a_clear_error(Kind::Redis, "cannot reach Redis at redis://127.0.0.1:");
}

async fn degraded_start_refuses_honestly_then_heals(kind: Kind) {
    let mut server = BrokerServer::reserve(kind);
    let extra = "connect_timeout_ms = 200\non_unreachable = \"degraded\"";
    let a = Instance::start(&server, extra);
    assert_eq!(a.status("/readyz").await, 503);
    assert_eq!(a.metric("ferrygate_broker_connected").await, 0.0);
    // Clients may connect, but nothing is acknowledged that the broker lacks.
    let mut subscriber = a.client().await;
    let reply = subscriber
        .request(json!({"op":"subscribe","channel":"local"}))
        .await;
    assert_eq!(reply["error"]["code"], "unavailable", "{reply}");
    let reply = subscriber
        .request(json!({"op":"publish","channel":"local","data":1}))
        .await;
    assert_eq!(reply["error"]["code"], "unavailable", "{reply}");

    server.restart();
    a.wait_ready(200).await;
    a.wait_metric_eq("ferrygate_broker_connected", 1.0).await;
    // Now the subscribe's ok means the broker has it: a second instance's
    // first publish after it reaches the first one's client.
    subscriber.subscribe("local").await;
    let b = Instance::start(&server, "");
    let (status, body) = b
        .api("/v1/publish", &json!({"channel":"local","data":2}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(subscriber.recv().await["data"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn degraded_start_on_nats_refuses_honestly_then_heals() {
    degraded_start_refuses_honestly_then_heals(Kind::Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn degraded_start_on_redis_refuses_honestly_then_heals() {
    degraded_start_refuses_honestly_then_heals(Kind::Redis).await;
}
