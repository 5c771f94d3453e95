//! Three ferrygate processes on a real `redis-server`: cross-instance fan-out,
//! interest, direct messages, rpc, malformed input and a broker outage.

use crate::cluster::Kind::Redis;
use crate::cluster::{faults, scenarios};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_reaches_every_instance_exactly_once_in_order() {
    scenarios::fan_out_reaches_every_instance_exactly_once_in_order(Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_interest_follows_local_subscribers() {
    scenarios::broker_interest_follows_local_subscribers(Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_messages_reach_a_connection_on_another_instance() {
    scenarios::direct_messages_reach_a_connection_on_another_instance(Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_reaches_a_backend_responder() {
    scenarios::rpc_reaches_a_backend_responder(Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_broker_messages_are_counted_and_dropped() {
    faults::malformed_broker_messages_are_counted_and_dropped(Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_outage_refuses_publishes_and_recovers() {
    faults::broker_outage_refuses_publishes_and_recovers(Redis).await;
}

/// A real three-node Redis Cluster: channels travel by sharded pub/sub
/// (SPUBLISH/SSUBSCRIBE), and still reach every instance exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_fan_out_uses_sharded_pub_sub() {
    use serde_json::json;

    use crate::cluster::redis_cluster::RedisCluster;
    use crate::cluster::{Instance, assert_silent, frames};

    let cluster = RedisCluster::start();
    let broker = format!(
        "kind = \"redis\"\ncluster = true\nurls = [{}]",
        cluster.urls()
    );
    let gateways = [Instance::start_with(&broker), Instance::start_with(&broker)];
    // Channels whose hash slots fall on different nodes.
    let channels = ["chat.a", "chat.b", "chat.c", "chat.d"];
    let mut subscribers = Vec::new();
    for gateway in &gateways {
        let mut client = gateway.client().await;
        for channel in channels {
            client.subscribe(channel).await;
        }
        subscribers.push(client);
    }
    for channel in channels {
        let name = format!("ferrygate:ch:{channel}");
        assert_eq!(
            cluster.subscribers(&name, true),
            2,
            "{name}: one per instance, sharded"
        );
        assert_eq!(
            cluster.subscribers(&name, false),
            0,
            "{name}: no classic subscription"
        );
    }
    let mut publisher = gateways[0].client().await;
    for n in 0..3 {
        for channel in channels {
            publisher.publish(channel, json!(n)).await;
            let body = json!({"channel": channel, "data": n + 10});
            assert_eq!(gateways[1].api("/v1/publish", &body).await.0, 200);
        }
    }
    for client in &mut subscribers {
        let got = frames(client, 24).await;
        for channel in channels {
            let mine: Vec<_> = got
                .iter()
                .filter(|f| f["channel"] == channel)
                .map(|f| f["data"].as_i64().expect("number"))
                .collect();
            let ws: Vec<_> = mine.iter().filter(|n| **n < 10).copied().collect();
            let http: Vec<_> = mine.iter().filter(|n| **n >= 10).copied().collect();
            assert_eq!(ws, [0, 1, 2], "{channel}: {got:?}");
            assert_eq!(http, [10, 11, 12], "{channel}: {got:?}");
        }
        assert_silent(client, std::time::Duration::from_millis(300)).await;
    }
    // Connection-targeted messages cross the cluster too.
    let target = &mut subscribers[1];
    let body = json!({"conn": target.conn, "data": "direct"});
    assert_eq!(gateways[0].api("/v1/send", &body).await.0, 200);
    assert_eq!(target.recv().await, json!({"op":"message","data":"direct"}));
    assert_eq!(
        gateways[1].metric("ferrygate_broker_subscriptions").await,
        4.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_null_payload_crosses_the_broker() {
    scenarios::a_null_payload_crosses_the_broker(Redis).await;
}
