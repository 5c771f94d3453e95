//! Pipelined publishes to history channels on real brokers (`nats-server
//! -js`, `redis-server`) with real `ferrygate` processes: a WebSocket client
//! that sends many publishes without waiting for their replies, from two
//! instances at once, gets every one answered and every subscriber sees each
//! channel's offsets 1..N exactly once, in one order that keeps each
//! connection's order; a recovery from inside a batch record is exact; a
//! broker killed mid-pipeline leaves every publish either acknowledged and
//! kept or answered `unavailable`.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::cluster::Kind::Redis;
use crate::cluster::history::{ROUTES, subscribe};
use crate::cluster::{BrokerServer, Instance};
use crate::support::Client;

/// Messages each publisher pipelines (over two channels).
const N: u64 = 300;

/// Sends one publish per `(channel, n)` with id `n` and data
/// `{"n":n,"from":from}`, all before reading any reply.
async fn send_all(client: &mut Client, from: &str, plan: &[(&str, u64)]) {
    for (channel, n) in plan {
        let request = json!({"id":n,"op":"publish","channel":channel,"data":{"n":n,"from":from}});
        client.send_text(request.to_string()).await;
    }
}

/// Reads `count` replies (in whatever order they come); reply by id.
async fn replies(client: &mut Client, count: usize) -> HashMap<u64, Value> {
    let mut got = HashMap::new();
    while got.len() < count {
        let frame = client.recv().await;
        let id = frame["id"].as_u64().expect("a reply with a numeric id");
        assert!(got.insert(id, frame).is_none(), "one reply per publish");
    }
    got
}

/// Reads `count` pushes and splits them by channel: `(offset, from, n)`.
async fn pushes(client: &mut Client, count: usize) -> HashMap<String, Vec<(u64, String, u64)>> {
    let mut by_channel: HashMap<String, Vec<_>> = HashMap::new();
    for _ in 0..count {
        let push = client.recv().await;
        let channel = push["channel"].as_str().expect("a push").to_owned();
        let seen = (
            push["offset"].as_u64().expect("offset"),
            push["data"]["from"].as_str().expect("from").to_owned(),
            push["data"]["n"].as_u64().expect("n"),
        );
        by_channel.entry(channel).or_default().push(seen);
    }
    by_channel
}

/// The plan of one publisher: `N` messages alternating over `room.p1` and
/// `room.p2`, ids from `base`.
fn plan(base: u64) -> Vec<(&'static str, u64)> {
    (base..base + N)
        .map(|n| (if n % 2 == 0 { "room.p1" } else { "room.p2" }, n))
        .collect()
}

/// Two instances, one pipelining publisher on each, a subscriber on each:
/// all acknowledged, offsets 1..N per channel exactly once in one order on
/// both instances, each publisher's order kept; then recoveries from
/// offsets inside the history (inside batch records where the broker made
/// them) are exact. Returns the instances' epoch of `room.p1`.
async fn pipelined_publishes_keep_order(server: &BrokerServer) -> String {
    let a = Instance::start(server, ROUTES);
    let b = Instance::start(server, ROUTES);
    let (mut on_a, mut on_b) = (a.client().await, b.client().await);
    let mut epoch = String::new();
    for client in [&mut on_a, &mut on_b] {
        for channel in ["room.p1", "room.p2"] {
            let position = subscribe(client, channel, None).await;
            if channel == "room.p1" {
                epoch = position["epoch"].as_str().expect("epoch").to_owned();
            }
        }
    }
    let (mut pub_a, mut pub_b) = (a.client().await, b.client().await);
    let (plan_a, plan_b) = (plan(1), plan(10_001));
    let sending = async {
        tokio::join!(
            send_all(&mut pub_a, "a", &plan_a),
            send_all(&mut pub_b, "b", &plan_b)
        )
    };
    sending.await;
    for publisher in [&mut pub_a, &mut pub_b] {
        let answered = replies(publisher, N as usize).await;
        assert!(
            answered.values().all(|reply| reply["ok"] == true),
            "every pipelined publish acknowledged: {:?}",
            answered.values().find(|reply| reply["ok"] != true)
        );
    }
    let mut orders = Vec::new();
    for subscriber in [&mut on_a, &mut on_b] {
        let seen = pushes(subscriber, 2 * N as usize).await;
        for (channel, list) in &seen {
            let offsets: Vec<u64> = list.iter().map(|(offset, _, _)| *offset).collect();
            assert_eq!(offsets, (1..=N).collect::<Vec<_>>(), "{channel}");
            for from in ["a", "b"] {
                let ns: Vec<u64> = list
                    .iter()
                    .filter(|(_, f, _)| f == from)
                    .map(|(_, _, n)| *n)
                    .collect();
                assert!(ns.windows(2).all(|w| w[0] < w[1]), "{from}'s order kept");
                assert_eq!(ns.len() as u64, N / 2, "{from} on {channel}");
            }
        }
        let mut channels: Vec<_> = seen.into_iter().collect();
        channels.sort();
        orders.push(channels);
    }
    assert_eq!(orders[0], orders[1], "both instances deliver one order");

    // Recoveries that start anywhere in the history, on either instance.
    for (k, instance) in [(1, &a), (37, &b), (N / 2 + 1, &a), (N - 2, &b)] {
        let mut late = instance.client().await;
        let result = subscribe(&mut late, "room.p1", Some((&epoch, k))).await;
        assert_eq!(result["recovered"], true, "since {k}: {result}");
        let replayed = pushes(&mut late, (N - k) as usize).await;
        let offsets: Vec<u64> = replayed["room.p1"].iter().map(|(o, _, _)| *o).collect();
        assert_eq!(offsets, (k + 1..=N).collect::<Vec<_>>(), "since {k}");
        let expected: Vec<_> = orders[0][0].1[k as usize..].to_vec();
        assert_eq!(replayed["room.p1"], expected, "the replay is what live got");
    }
    epoch
}

/// A pipelining publisher while the broker is killed: every publish is
/// answered `ok` or `unavailable`, nothing else, and every `ok` one is kept.
/// Returns the acknowledged ns and the subscriber, which got the live ones.
async fn killed_broker_mid_pipeline(server: &mut BrokerServer) -> (Vec<u64>, Vec<u64>) {
    let a = Instance::start(server, ROUTES);
    let mut subscriber = a.client().await;
    subscribe(&mut subscriber, "room.k", None).await;
    let mut publisher = a.client().await;
    let first: Vec<_> = (1..=N).map(|n| ("room.k", n)).collect();
    send_all(&mut publisher, "a", &first).await;
    // Killed mid-pipeline: once some are delivered, with more on the way.
    let mut live = Vec::new();
    for _ in 0..10 {
        live.push(subscriber.recv().await["data"]["n"].as_u64().expect("n"));
    }
    server.kill();
    let rest: Vec<_> = (N + 1..=2 * N).map(|n| ("room.k", n)).collect();
    send_all(&mut publisher, "a", &rest).await;
    let answered = replies(&mut publisher, 2 * N as usize).await;
    let mut acked: Vec<u64> = Vec::new();
    for (n, reply) in &answered {
        match (&reply["ok"], &reply["error"]["code"]) {
            (Value::Bool(true), _) => acked.push(*n),
            (_, code) => assert_eq!(code, "unavailable", "{reply}"),
        }
    }
    acked.sort_unstable();
    assert!(
        acked.len() < 2 * N as usize,
        "publishes after the kill are refused"
    );
    while let Ok(push) = tokio::time::timeout(Duration::from_millis(500), subscriber.recv()).await {
        live.push(push["data"]["n"].as_u64().expect("n"));
    }
    (acked, live)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_pipelined_publishes_from_two_instances_keep_one_order_and_batches_recover() {
    let server = BrokerServer::start_jetstream();
    pipelined_publishes_keep_order(&server).await;
    // Batches were made: fewer records than messages in the stream.
    let js = async_nats::jetstream::new(async_nats::connect(server.url()).await.expect("nats"));
    let mut stream = js.get_stream("ferrygate_history").await.expect("stream");
    let records = stream.info().await.expect("info").state.messages;
    assert!(records < 4 * N, "{records} records for {} messages", 4 * N);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_pipelined_publishes_from_two_instances_keep_one_order_and_recover() {
    let server = BrokerServer::start(Redis);
    pipelined_publishes_keep_order(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_a_broker_killed_mid_pipeline_loses_no_acknowledged_publish() {
    let mut server = BrokerServer::start_jetstream();
    let (acked, live) = killed_broker_mid_pipeline(&mut server).await;
    assert!(
        live.windows(2).all(|w| w[0] < w[1]),
        "live: in order, once each"
    );
    // JetStream kept every acknowledged one: a recovery after a restart of
    // the server reads them all back, in order.
    server.restart();
    let b = Instance::start(&server, ROUTES);
    let mut back = b.client().await;
    let position = subscribe(&mut back, "room.k", None).await;
    let kept = position["offset"].as_u64().expect("offset");
    assert!(
        kept >= acked.len() as u64,
        "{kept} kept, {} acked",
        acked.len()
    );
    let epoch = position["epoch"].as_str().expect("epoch").to_owned();
    let mut again = b.client().await;
    let result = subscribe(&mut again, "room.k", Some((&epoch, 0))).await;
    assert_eq!(result["recovered"], true, "{result}");
    let mut stored = Vec::new();
    for _ in 0..kept {
        stored.push(again.recv().await["data"]["n"].as_u64().expect("n"));
    }
    assert!(
        stored.windows(2).all(|w| w[0] < w[1]),
        "one order, no double"
    );
    for n in &acked {
        assert!(stored.contains(n), "acknowledged {n} was kept");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_a_broker_killed_mid_pipeline_loses_no_acknowledged_publish() {
    let mut server = BrokerServer::start(Redis);
    let (acked, live) = killed_broker_mid_pipeline(&mut server).await;
    // Redis delivers each kept message in the same script that keeps it:
    // every acknowledged one reached the subscriber, in one order, once.
    assert!(live.windows(2).all(|w| w[0] < w[1]), "{live:?}");
    for n in &acked {
        assert!(live.contains(n), "acknowledged {n} was delivered");
    }
}
