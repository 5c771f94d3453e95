//! Never acknowledge what is then lost (issue 15, section 2), on real
//! `nats-server` and `redis-server` processes and the in-process broker:
//! the scenarios live in `cluster/acked.rs`.

use std::time::Duration;

use serde_json::json;

use crate::cluster::Kind::{Nats, Redis};
use crate::cluster::acked;
use crate::support::TestGateway;
use crate::support::plugins::section;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_subscribe_ok_follows_the_server_round_trip() {
    acked::a_message_published_right_after_the_subscribe_ok_arrives(Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_subscribe_ok_follows_a_ping_after_the_subscribe() {
    acked::a_message_published_right_after_the_subscribe_ok_arrives(Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_refuses_oversize_publishes_up_front() {
    acked::oversize_publishes_are_refused_up_front(Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_refuses_oversize_publishes_up_front() {
    acked::oversize_publishes_are_refused_up_front(Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_flushes_acknowledged_publishes_at_sigterm() {
    acked::publishes_acknowledged_before_sigterm_reach_the_broker(Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_flushes_acknowledged_publishes_at_sigterm() {
    acked::publishes_acknowledged_before_sigterm_reach_the_broker(Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_nats_answers_unavailable_and_recovers() {
    acked::hung_nats().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_answers_unavailable_and_recovers() {
    acked::hung_redis().await;
}

/// The in-process broker refuses by the same rule, and a transform's output
/// is checked, not only what the client sent: `stamp` adds 13 bytes, which
/// takes a payload that fits over the limit. The connection stays.
#[tokio::test]
async fn a_transform_output_too_large_for_the_broker_is_refused() {
    let stamp = section("stamp", "transform", "stamp_v1", "");
    let gateway = TestGateway::start(&format!(
        "max_frame_bytes = 4096\n{stamp}\n[[routes]]\nchannels = \"feed.>\"\ninbound = [\"stamp\"]\n"
    ))
    .await;
    let mut subscriber = gateway.client().await;
    subscriber.subscribe("feed.a").await;
    subscriber.subscribe("plain").await;
    // Envelope: 33 bytes plus the 10-character node id; 4,053 bytes of data fit.
    let fits_until_stamped = json!({ "t": "x".repeat(4_045 - 8) });
    let mut publisher = gateway.client().await;
    let reply = publisher
        .request(json!({"op": "publish", "channel": "feed.a", "data": fits_until_stamped}))
        .await;
    assert_eq!(reply["error"]["code"], "too_large", "{reply}");
    let (status, reply) = gateway
        .api(
            "/v1/publish",
            &json!({"channel": "feed.a", "data": fits_until_stamped}),
        )
        .await;
    assert_eq!(status, 413, "{reply}");
    let (status, _) = gateway
        .api(
            "/v1/publish",
            &json!({"channel": "plain", "data": "x".repeat(4_052)}),
        )
        .await;
    assert_eq!(status, 413);
    let fits = json!({ "t": "x".repeat(4_040 - 8) });
    publisher.publish("feed.a", fits).await;
    let frame = subscriber.recv().await;
    assert_eq!(frame["data"]["stamp"], "v1", "{frame}");
    crate::cluster::assert_silent(&mut subscriber, Duration::from_millis(200)).await;
    let refused = "ferrygate_broker_publish_failures_total{reason=\"too_large\"}";
    assert_eq!(gateway.metric(refused).await, 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_max_payload_below_the_frame_limit_is_too_large() {
    acked::nats_max_payload_is_respected().await;
}
