//! History in Redis with real `ferrygate` processes on a real `redis-server`:
//! exact recovery on another instance after the first one is SIGKILLed while
//! publishes go on, one offset order when two instances publish at once,
//! eviction by size, and `unavailable` while Redis is down.

use serde_json::{Value, json};

use crate::cluster::Kind::Redis;
use crate::cluster::{BrokerServer, Instance};
use crate::support::{Client, api};

const ROUTES: &str = "\n[[routes]]\nchannels = \"room.*\"\nhistory = { size = 1000, ttl_s = 60 }\n\
                      [[routes]]\nchannels = \"small.*\"\nhistory = { size = 3, ttl_s = 60 }\n";

/// Subscribes (with `since` when given) and returns the reply's `result`.
pub async fn subscribe(client: &mut Client, channel: &str, since: Option<(&str, u64)>) -> Value {
    let mut request = json!({"op":"subscribe","channel":channel});
    if let Some((epoch, offset)) = since {
        request["since"] = json!({"epoch":epoch,"offset":offset});
    }
    let reply = client.request(request).await;
    assert_eq!(reply["ok"], true, "{reply}");
    reply["result"].clone()
}

pub async fn publish_n(
    instance: std::net::SocketAddr,
    channel: &str,
    range: std::ops::RangeInclusive<u64>,
) {
    for n in range {
        let (status, body) = api(
            instance,
            "/v1/publish",
            &json!({"channel":channel,"data":{"n":n}}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_of_a_killed_instance_recovers_exactly_on_another_while_publishing_goes_on() {
    let server = BrokerServer::start(Redis);
    let a = Instance::start(&server, ROUTES);
    let b = Instance::start(&server, ROUTES);
    let mut reader = a.client().await;
    let position = subscribe(&mut reader, "room.1", None).await;
    let epoch = position["epoch"].as_str().expect("epoch").to_owned();
    assert_eq!(position["offset"], 0, "{position}");
    publish_n(b.addr, "room.1", 1..=5).await;
    for n in 1..=5 {
        assert_eq!(
            reader.recv().await,
            json!({"channel":"room.1","data":{"n":n},"offset":n,"epoch":epoch})
        );
    }
    drop(a); // SIGKILL
    drop(reader);

    publish_n(b.addr, "room.1", 6..=55).await;
    let publishing = tokio::spawn(publish_n(b.addr, "room.1", 56..=255));
    let mut back = b.client().await;
    let result = subscribe(&mut back, "room.1", Some((&epoch, 5))).await;
    assert_eq!(result["recovered"], true, "{result}");
    for n in 6..=255u64 {
        let push = back.recv().await;
        assert_eq!(
            (push["offset"].as_u64(), push["data"]["n"].as_u64()),
            (Some(n), Some(n)),
            "gap or duplicate at {n}: {push}"
        );
    }
    publishing.await.expect("publisher");
    publish_n(b.addr, "room.1", 256..=256).await;
    assert_eq!(
        back.recv().await["offset"],
        256,
        "nothing doubled before it"
    );
    assert!(b.metric("ferrygate_history_replayed_messages_total").await >= 50.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_publishing_at_once_give_every_subscriber_one_contiguous_order() {
    let server = BrokerServer::start(Redis);
    let a = Instance::start(&server, ROUTES);
    let b = Instance::start(&server, ROUTES);
    let mut on_a = a.client().await;
    let mut on_b = b.client().await;
    subscribe(&mut on_a, "room.2", None).await;
    subscribe(&mut on_b, "room.2", None).await;
    let from_a = tokio::spawn(publish_n(a.addr, "room.2", 1..=100));
    let from_b = tokio::spawn(publish_n(b.addr, "room.2", 1001..=1100));
    from_a.await.expect("publisher a");
    from_b.await.expect("publisher b");
    let mut seen = Vec::new();
    for client in [&mut on_a, &mut on_b] {
        let mut order = Vec::new();
        for offset in 1..=200u64 {
            let push = client.recv().await;
            assert_eq!(push["offset"].as_u64(), Some(offset), "{push}");
            order.push(push["data"]["n"].as_u64().expect("n"));
        }
        seen.push(order);
    }
    assert_eq!(seen[0], seen[1], "both instances deliver one order");

    // Eviction by size: `small.*` keeps three.
    let mut client = a.client().await;
    let epoch = subscribe(&mut client, "small.x", None).await["epoch"]
        .as_str()
        .expect("epoch")
        .to_owned();
    publish_n(b.addr, "small.x", 1..=10).await;
    let mut late = b.client().await;
    let result = subscribe(&mut late, "small.x", Some((&epoch, 2))).await;
    assert_eq!(result, json!({"recovered":false,"epoch":epoch,"offset":10}));
    let result = subscribe(&mut late, "small.z", Some((&epoch, u64::MAX))).await;
    assert_eq!(result["recovered"], false, "{result}");
    let mut again = b.client().await;
    let result = subscribe(&mut again, "small.x", Some((&epoch, u64::MAX))).await;
    assert_eq!(result["recovered"], false, "a future offset: {result}");
    let result = subscribe(&mut client, "small.y", Some((&epoch, 8))).await;
    assert_eq!(result["recovered"], false, "another channel, another epoch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_down_history_channels_refuse_publishes_and_subscribes() {
    let mut server = BrokerServer::start(Redis);
    let a = Instance::start(&server, ROUTES);
    let mut client = a.client().await;
    client.subscribe("plain").await;
    server.kill();
    a.wait_ready(503).await;
    let reply = client
        .request(json!({"op":"publish","channel":"room.3","data":1}))
        .await;
    assert_eq!(reply["error"]["code"], "unavailable", "{reply}");
    let (status, body) = a
        .api("/v1/publish", &json!({"channel":"room.3","data":1}))
        .await;
    assert_eq!(status, 503, "{body}");
    let reply = client
        .request(json!({"op":"subscribe","channel":"room.4","since":{"epoch":"e","offset":1}}))
        .await;
    assert_eq!(reply["error"]["code"], "unavailable", "{reply}");
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
