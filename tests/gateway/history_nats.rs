//! History in JetStream with real `ferrygate` processes on a real
//! `nats-server -js`: the shared scenarios of `cluster/history.rs` (exact
//! recovery on another instance after the first one is SIGKILLed while
//! publishes go on, one offset order when two instances publish at once,
//! eviction by size), eviction by age, the epoch surviving a
//! restart of the server, many recoveries at once over the direct-get walk
//! (an older stream widened, never narrowed; a broken chain never skipped;
//! a recreated stream's sequences not mistaken for the old ones),
//! and `unavailable` where JetStream is missing.

use std::time::Duration;

use async_nats::jetstream::stream;
use serde_json::{Value, json};

use crate::cluster::Kind::Nats;
use crate::cluster::history::{self, ROUTES, epoch_of, publish_n, subscribe};
use crate::cluster::{BrokerServer, Instance};
use crate::support::Client;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_a_client_of_a_killed_instance_recovers_exactly_on_another_while_publishing_goes_on()
 {
    let server = BrokerServer::start_jetstream();
    history::a_client_of_a_killed_instance_recovers_exactly_on_another(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_two_instances_publishing_at_once_give_every_subscriber_one_contiguous_order() {
    let server = BrokerServer::start_jetstream();
    history::two_instances_publishing_give_one_order_and_size_evicts(&server).await;
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
    history::refused_unavailable(&a, &mut client).await;
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
    // The stream of an older deployment: no direct gets, larger limits, and
    // a subject an operator added.
    js.create_stream(stream::Config {
        name: "ferrygate_history".to_owned(),
        subjects: vec!["ferrygate.hist.>".to_owned(), "ops.audit".to_owned()],
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
    assert!(
        config.subjects.iter().any(|s| s == "ops.audit"),
        "the operator's subject stays: {:?}",
        config.subjects
    );
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
    assert!(
        config.allow_direct && config.republish.is_some(),
        "{config:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_a_recreated_stream_recovers_exactly_although_its_sequences_were_cached() {
    let server = BrokerServer::start_jetstream();
    let js = async_nats::jetstream::new(async_nats::connect(server.url()).await.expect("nats"));
    let a = Instance::start(&server, ROUTES);
    let b = Instance::start(&server, ROUTES);
    let mut on_a = a.client().await;
    let old = epoch_of(&mut on_a, "room.7").await;
    publish_n(a.addr, "room.7", 1..=5).await;
    let mut on_b = b.client().await;
    let result = subscribe(&mut on_b, "room.7", Some((&old, 0))).await;
    assert_eq!(
        result["recovered"], true,
        "B read (and keeps) sequences 2-6"
    );

    js.delete_stream("ferrygate_history")
        .await
        .expect("deleted");
    let mut again = a.client().await;
    let mut reply = Value::Null;
    for _ in 0..3 {
        // The first read finds the stream gone; the next one recreates it.
        reply = again
            .request(json!({"op":"subscribe","channel":"room.7"}))
            .await;
        if reply["ok"] == true {
            break;
        }
    }
    let new = reply["result"]["epoch"]
        .as_str()
        .expect("a new epoch")
        .to_owned();
    assert_ne!(new, old);
    publish_n(a.addr, "room.7", 1..=5).await; // sequences 2-6 again
    let mut back = b.client().await;
    let result = subscribe(&mut back, "room.7", Some((&new, 0))).await;
    assert_eq!(result["recovered"], true, "{result}");
    for n in 1..=5 {
        let push = back.recv().await;
        assert_eq!(
            (push["offset"].as_u64(), push["epoch"].as_str()),
            (Some(n), Some(&*new))
        );
    }
}

/// The history stream's configuration as the server has it now.
async fn history_stream(js: &async_nats::jetstream::Context) -> stream::Config {
    let stream = js.get_stream("ferrygate_history").await.expect("stream");
    stream.cached_info().config.clone()
}

/// A presence route beside the history routes of [`ROUTES`].
const ROUTES_AND_PRESENCE: &str = "\n[[routes]]\nchannels = \"lobby.*\"\npresence = true\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_jetstream_the_start_says_so_in_the_log_metrics_and_readyz_and_with_it_nothing() {
    let server = BrokerServer::start(Nats); // no `-js`
    let (_dir, command) = Instance::command(&server, &format!("{ROUTES}{ROUTES_AND_PRESENCE}"));
    let (mut child, _, lines) = crate::support::binary::spawn_with_log(command);
    let said = std::iter::from_fn(|| lines.recv_timeout(Duration::from_secs(20)).ok())
        .find(|line| line.contains("no JetStream"));
    let _ = child.kill();
    let said = said.expect("an error line about JetStream at start");
    assert!(said.contains("ERROR"), "{said}");
    for route in ["room.*", "small.*", "brief.*", "lobby.*", "-js"] {
        assert!(said.contains(route), "{route} in {said}");
    }
    drop(child);

    // A fresh instance: the gauge and /readyz say it (ready: other channels work).
    let a = Instance::start(&server, &format!("{ROUTES}{ROUTES_AND_PRESENCE}"));
    a.wait_metric("ferrygate_broker_jetstream_missing", 1.0)
        .await;
    let (status, body) = crate::support::http(a.addr, "GET", "/readyz", &[], "").await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).expect("JSON");
    assert!(
        body["degraded"].as_str().is_some_and(|d| d.contains("-js")),
        "{body}"
    );
    history::refused_unavailable(&a, &mut a.client().await).await;

    // With JetStream: nothing said.
    let js = BrokerServer::start_jetstream();
    let b = Instance::start(&js, ROUTES);
    let mut client = b.client().await;
    epoch_of(&mut client, "room.1").await; // JetStream has answered by now
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(b.metric("ferrygate_broker_jetstream_missing").await, 0.0);
    let (status, body) = crate::support::http(b.addr, "GET", "/readyz", &[], "").await;
    assert_eq!((status, body.contains("degraded")), (200, false), "{body}");
}
