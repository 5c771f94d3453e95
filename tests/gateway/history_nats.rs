//! History in JetStream with real `ferrygate` processes on a real
//! `nats-server -js`: exact recovery on another instance after the first one
//! is SIGKILLed while publishes go on, one offset order when two instances
//! publish at once, eviction by size and by age, the epoch surviving a
//! restart of the server, many recoveries at once over the direct-get walk
//! (an older stream widened, never narrowed; a broken chain never skipped),
//! and `unavailable` where JetStream is missing.

use std::time::Duration;

use async_nats::jetstream::stream;
use serde_json::json;

use crate::cluster::Kind::Nats;
use crate::cluster::{BrokerServer, Instance};
use crate::history_redis::{publish_n, subscribe};
use crate::support::Client;

const ROUTES: &str = "\n[[routes]]\nchannels = \"room.*\"\nhistory = { size = 1000, ttl_s = 60 }\n\
                      [[routes]]\nchannels = \"small.*\"\nhistory = { size = 3, ttl_s = 60 }\n\
                      [[routes]]\nchannels = \"brief.*\"\nhistory = { size = 100, ttl_s = 1 }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_a_client_of_a_killed_instance_recovers_exactly_on_another_while_publishing_goes_on()
 {
    let server = BrokerServer::start_jetstream();
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
async fn jetstream_two_instances_publishing_at_once_give_every_subscriber_one_contiguous_order() {
    let server = BrokerServer::start_jetstream();
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
    let epoch = epoch_of(&mut client, "small.x").await;
    publish_n(b.addr, "small.x", 1..=10).await;
    let mut late = b.client().await;
    let result = subscribe(&mut late, "small.x", Some((&epoch, 2))).await;
    assert_eq!(result, json!({"recovered":false,"epoch":epoch,"offset":10}));
    let result = subscribe(&mut late, "small.y", Some((&epoch, 8))).await;
    assert_eq!(result["recovered"], false, "another channel, another epoch");
    let mut again = b.client().await;
    let result = subscribe(&mut again, "small.x", Some((&epoch, 7))).await;
    assert_eq!(
        result["recovered"], true,
        "the last three are kept: {result}"
    );
    for n in 8..=10 {
        assert_eq!(again.recv().await["data"]["n"], n);
    }
    let result = subscribe(&mut client, "small.z", Some((&epoch, u64::MAX))).await;
    assert_eq!(result["recovered"], false, "{result}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_history_expires_by_age_and_outlives_a_restart_of_the_server() {
    let mut server = BrokerServer::start_jetstream();
    let a = Instance::start(&server, ROUTES);
    let mut client = a.client().await;
    // Eviction by age: `brief.*` keeps messages one second.
    let epoch = epoch_of(&mut client, "brief.1").await;
    publish_n(a.addr, "brief.1", 1..=3).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let mut late = a.client().await;
    let result = subscribe(&mut late, "brief.1", Some((&epoch, 1))).await;
    assert_eq!(result["recovered"], false, "{result}");
    assert_ne!(result["epoch"], json!(epoch), "expired history, new epoch");

    // JetStream keeps the stream on disk: a restarted server and a new
    // instance still recover.
    let epoch = epoch_of(&mut client, "room.9").await;
    publish_n(a.addr, "room.9", 1..=4).await;
    drop(a);
    server.kill();
    server.restart();
    let b = Instance::start(&server, ROUTES);
    let mut back = b.client().await;
    let result = subscribe(&mut back, "room.9", Some((&epoch, 1))).await;
    assert_eq!(result, json!({"recovered":true,"epoch":epoch,"offset":4}));
    for n in 2..=4 {
        assert_eq!(back.recv().await["offset"], n);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_jetstream_history_channels_are_unavailable_and_the_others_carry_on() {
    let server = BrokerServer::start(Nats); // no `-js`
    let a = Instance::start(&server, ROUTES);
    let mut client = a.client().await;
    client.subscribe("plain").await;
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
    let reply = client
        .request(json!({"op":"publish","channel":"plain","data":"live"}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(
        client.recv().await,
        json!({"channel":"plain","data":"live"})
    );
    assert!(a.metric("ferrygate_history_append_failures_total").await >= 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_many_recoveries_at_once_are_exact_and_a_broken_chain_is_not_recovered() {
    let server = BrokerServer::start_jetstream();
    let nats = async_nats::connect(server.url()).await.expect("nats");
    let js = async_nats::jetstream::new(nats);
    // The stream of an older deployment: no direct gets, larger limits.
    js.create_stream(stream::Config {
        name: "ferrygate_history".to_owned(),
        subjects: vec!["ferrygate.hist.>".to_owned()],
        max_messages_per_subject: 5000,
        max_age: Duration::from_secs(600),
        republish: Some(stream::Republish {
            source: "ferrygate.hist.>".to_owned(),
            destination: "ferrygate.ch.>".to_owned(),
            headers_only: false,
        }),
        ..Default::default()
    })
    .await
    .expect("the older stream");
    let a = Instance::start(&server, ROUTES);
    let b = Instance::start(&server, ROUTES);
    let mut live = a.client().await;
    let epoch = epoch_of(&mut live, "room.5").await;
    let config = history_stream(&js).await;
    assert!(config.allow_direct, "direct gets turned on");
    assert_eq!(
        (config.max_messages_per_subject, config.max_age.as_secs()),
        (5000, 600),
        "larger limits are never lowered"
    );
    publish_n(a.addr, "room.5", 1..=60).await;

    // Forty clients recover on B at once, from four offsets, sharing the reads.
    let recoveries = (0..40u64).map(|i| {
        let (addr, epoch, since) = (b.addr, epoch.clone(), [0, 15, 30, 59][i as usize % 4]);
        tokio::spawn(async move {
            let mut client = Client::connect(&format!("ws://{addr}/ws")).await;
            let result = subscribe(&mut client, "room.5", Some((&epoch, since))).await;
            assert_eq!(result["recovered"], true, "since {since}: {result}");
            for n in since + 1..=60 {
                let push = client.recv().await;
                assert_eq!(
                    (push["offset"].as_u64(), push["data"]["n"].as_u64()),
                    (Some(n), Some(n)),
                    "since {since}: {push}"
                );
            }
        })
    });
    for recovery in recoveries.collect::<Vec<_>>() {
        recovery.await.expect("exact recovery");
    }
    let replayed = b.metric("ferrygate_history_replayed_messages_total").await;
    assert_eq!(replayed, 10.0 * (60.0 + 45.0 + 30.0 + 1.0));

    // A backend stores offset 61 without the chain header: the walk cannot
    // pass it, so a recovery from before it is refused, never given a hole.
    let broken = json!({"ferrygate":1,"node":"x","offset":61,"epoch":epoch,"data":{"n":61}});
    let ack = js
        .publish("ferrygate.hist.room.5", broken.to_string().into())
        .await
        .expect("sent");
    ack.await.expect("stored");
    publish_n(a.addr, "room.5", 62..=63).await;
    let mut late = b.client().await;
    let result = subscribe(&mut late, "room.5", Some((&epoch, 59))).await;
    assert_eq!(result, json!({"recovered":false,"epoch":epoch,"offset":63}));
    let mut after = b.client().await;
    let result = subscribe(&mut after, "room.5", Some((&epoch, 61))).await;
    assert_eq!(result["recovered"], true, "{result}");
    for n in 62..=63 {
        assert_eq!(after.recv().await["data"]["n"], n);
    }
    let config = history_stream(&js).await;
    assert!(config.allow_direct && config.republish.is_some(), "{config:?}");
}

/// Subscribes without `since`; the epoch of the ack.
async fn epoch_of(client: &mut Client, channel: &str) -> String {
    let result = subscribe(client, channel, None).await;
    result["epoch"].as_str().expect("epoch").to_owned()
}

/// The history stream's configuration as the server has it now.
async fn history_stream(js: &async_nats::jetstream::Context) -> stream::Config {
    let stream = js.get_stream("ferrygate_history").await.expect("stream");
    stream.cached_info().config.clone()
}
