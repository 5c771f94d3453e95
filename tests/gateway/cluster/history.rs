//! History scenarios written once and run on each shared broker (by
//! `history_nats` on `nats-server -js`, by `history_redis` on
//! `redis-server`): exact recovery on another instance after the first one
//! is SIGKILLed while publishes go on, one offset order when two instances
//! publish at once, eviction by size; what a history channel answers while
//! its store is away. Plus the client helpers every history test uses.

use std::net::SocketAddr;
use std::ops::RangeInclusive;

use serde_json::{Value, json};

use super::{BrokerServer, Instance};
use crate::support::{Client, api};

/// Routes with history: `room.*` keeps 1,000 for a minute, `small.*` three,
/// `brief.*` 100 for one second.
pub const ROUTES: &str = "\n[[routes]]\nchannels = \"room.*\"\nhistory = { size = 1000, ttl_s = 60 }\n\
                          [[routes]]\nchannels = \"small.*\"\nhistory = { size = 3, ttl_s = 60 }\n\
                          [[routes]]\nchannels = \"brief.*\"\nhistory = { size = 100, ttl_s = 1 }\n";

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

/// Subscribes without `since`; the epoch of the ack.
pub async fn epoch_of(client: &mut Client, channel: &str) -> String {
    let result = subscribe(client, channel, None).await;
    result["epoch"].as_str().expect("epoch").to_owned()
}

/// Publishes `{"n":N}` for each N of `range` through `instance`'s HTTP API,
/// one after the other.
pub async fn publish_n(instance: SocketAddr, channel: &str, range: RangeInclusive<u64>) {
    for n in range {
        let body = json!({"channel":channel,"data":{"n":n}});
        let (status, reply) = api(instance, "/v1/publish", &body).await;
        assert_eq!(status, 200, "{reply}");
    }
}

/// Publishes to a history channel (WebSocket and HTTP) and a subscribe
/// with `since` through `instance` answer `unavailable` (503): nothing is
/// acknowledged that the store could not keep.
pub async fn refused_unavailable(instance: &Instance, client: &mut Client) {
    let reply = client
        .request(json!({"op":"publish","channel":"room.3","data":1}))
        .await;
    assert_eq!(reply["error"]["code"], "unavailable", "{reply}");
    let body = json!({"channel":"room.3","data":1});
    let (status, reply) = instance.api("/v1/publish", &body).await;
    assert_eq!(status, 503, "{reply}");
    let since = json!({"epoch":"e","offset":1});
    let reply = client
        .request(json!({"op":"subscribe","channel":"room.4","since":since}))
        .await;
    assert_eq!(reply["error"]["code"], "unavailable", "{reply}");
}

/// A client of instance A (SIGKILLed) recovers exactly on B while B keeps
/// publishing during the replay: no gap, no duplicate at the switch.
pub async fn a_client_of_a_killed_instance_recovers_exactly_on_another(server: &BrokerServer) {
    let a = Instance::start(server, ROUTES);
    let b = Instance::start(server, ROUTES);
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

/// Two instances publish to one channel at once: every subscriber, on
/// either, sees one order with offsets rising by one. Then eviction by size
/// (`small.*` keeps three) and positions that cannot be recovered.
pub async fn two_instances_publishing_give_one_order_and_size_evicts(server: &BrokerServer) {
    let a = Instance::start(server, ROUTES);
    let b = Instance::start(server, ROUTES);
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

    let mut client = a.client().await;
    let epoch = epoch_of(&mut client, "small.x").await;
    publish_n(b.addr, "small.x", 1..=10).await;
    let mut late = b.client().await;
    let result = subscribe(&mut late, "small.x", Some((&epoch, 2))).await;
    assert_eq!(result, json!({"recovered":false,"epoch":epoch,"offset":10}));
    let result = subscribe(&mut late, "small.z", Some((&epoch, u64::MAX))).await;
    assert_eq!(result["recovered"], false, "{result}");
    let result = subscribe(&mut late, "small.y", Some((&epoch, 8))).await;
    assert_eq!(result["recovered"], false, "another channel, another epoch");
    let mut future = b.client().await;
    let result = subscribe(&mut future, "small.x", Some((&epoch, u64::MAX))).await;
    assert_eq!(result["recovered"], false, "a future offset: {result}");
    let mut again = b.client().await;
    let result = subscribe(&mut again, "small.x", Some((&epoch, 7))).await;
    assert_eq!(
        result["recovered"], true,
        "the last three are kept: {result}"
    );
    for n in 8..=10 {
        assert_eq!(again.recv().await["data"]["n"], n);
    }
}
