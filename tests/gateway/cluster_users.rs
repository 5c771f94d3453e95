//! Users wherever they are connected: the `jwt-auth` plugin names the user of
//! each connection, and `/v1/send` on one instance, or a backend publishing on
//! `<prefix>.user.<id>`, reaches every socket of that user on every instance,
//! once. An instance subscribes a user's subject only while it holds one of
//! the user's connections.

use std::time::Duration;

use serde_json::json;

use crate::cluster::backend::Backend;
use crate::cluster::{BrokerServer, Instance, Kind, assert_silent};
use crate::plugin_auth::{SECRET, claims, hs256};
use crate::support::Client;

const USER: &str = "ada.l@example.com";

async fn user_messages_reach_every_socket_of_the_user(kind: Kind) {
    let server = BrokerServer::start(kind);
    let auth = crate::plugin_auth::jwt_auth_section();
    let gateways: Vec<Instance> = (0..3).map(|_| Instance::start(&server, &auth)).collect();
    let token = hs256(&claims(USER), SECRET);
    let connect = |gateway: &Instance, token: &str| {
        let url = format!("ws://{}/ws?token={token}", gateway.addr);
        async move { Client::connect(&url).await }
    };
    // The user twice on C and once on B; someone else on A.
    let mut on_c = connect(&gateways[2], &token).await;
    let mut also_on_c = connect(&gateways[2], &token).await;
    let mut on_b = connect(&gateways[1], &token).await;
    let other = hs256(&claims("grace"), SECRET);
    let mut bystander = connect(&gateways[0], &other).await;
    gateways[2]
        .wait_metric("ferrygate_broker_subscriptions", 1.0)
        .await;
    gateways[1]
        .wait_metric("ferrygate_broker_subscriptions", 1.0)
        .await;

    let (status, body) = gateways[0]
        .api("/v1/send", &json!({"user": USER, "data": {"n": 1}}))
        .await;
    assert_eq!(status, 200, "{body}");
    let backend = Backend::connect(&server).await;
    // The subject token of a user id with `.` and `@` (see docs/brokers.md).
    backend
        .publish("user", "ada%2El%40example%2Ecom", br#"{"n":2}"#)
        .await;
    for client in [&mut on_c, &mut also_on_c, &mut on_b] {
        assert_eq!(client.recv().await, json!({"op":"message","data":{"n":1}}));
        assert_eq!(client.recv().await, json!({"op":"message","data":{"n":2}}));
        assert_silent(client, Duration::from_millis(200)).await;
    }
    assert_silent(&mut bystander, Duration::ZERO).await;
    assert_eq!(
        gateways[0]
            .metric("ferrygate_broker_messages_in_total{kind=\"user\"}")
            .await,
        0.0,
        "A holds no connection of the user and gets none of its traffic"
    );

    // C keeps the user's subject while one connection is left, and drops it
    // with the last one.
    drop(also_on_c);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        gateways[2].metric("ferrygate_broker_subscriptions").await,
        1.0
    );
    drop(on_c);
    gateways[2]
        .wait_metric_eq("ferrygate_broker_subscriptions", 0.0)
        .await;
    let (status, _) = gateways[0]
        .api("/v1/send", &json!({"user": USER, "data": {"n": 3}}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(on_b.recv().await, json!({"op":"message","data":{"n":3}}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_user_messages_reach_every_socket_of_the_user() {
    user_messages_reach_every_socket_of_the_user(Kind::Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_user_messages_reach_every_socket_of_the_user() {
    user_messages_reach_every_socket_of_the_user(Kind::Redis).await;
}
