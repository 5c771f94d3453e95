//! History in Redis with real `ferrygate` processes on a real `redis-server`:
//! the shared scenarios of `cluster/history.rs` (exact recovery on another
//! instance after the first one is SIGKILLed while publishes go on, one
//! offset order when two instances publish at once, eviction by size), and
//! `unavailable` while Redis is down.

use serde_json::json;

use crate::cluster::Kind::Redis;
use crate::cluster::history::{self, ROUTES};
use crate::cluster::{BrokerServer, Instance};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_of_a_killed_instance_recovers_exactly_on_another_while_publishing_goes_on() {
    let server = BrokerServer::start(Redis);
    history::a_client_of_a_killed_instance_recovers_exactly_on_another(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_publishing_at_once_give_every_subscriber_one_contiguous_order() {
    let server = BrokerServer::start(Redis);
    history::two_instances_publishing_give_one_order_and_size_evicts(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_down_history_channels_refuse_publishes_and_subscribes() {
    let mut server = BrokerServer::start(Redis);
    let a = Instance::start(&server, ROUTES);
    let mut client = a.client().await;
    client.subscribe("plain").await;
    server.kill();
    a.wait_ready(503).await;
    history::refused_unavailable(&a, &mut client).await;
    // Like every channel while the broker is away (nothing acknowledged
    // that could then be lost), and the connection stays.
    let reply = client
        .request(json!({"op":"publish","channel":"plain","data":"local"}))
        .await;
    assert_eq!(reply["error"]["code"], "unavailable", "{reply}");
    let reply = client.request(json!({"op":"ping"})).await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert!(a.metric("ferrygate_history_append_failures_total").await >= 2.0);
}
