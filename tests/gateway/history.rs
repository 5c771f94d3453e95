//! History and recovery with the in-process broker: offsets on pushes, exact
//! replay then live with no gap and no duplicate while publishes go on,
//! eviction, a restart's new epoch, and bad `since` values.

use serde_json::json;

use crate::cluster::history::{epoch_of, subscribe};
use crate::support::{Client, TestGateway};

/// `[server]` extras and a route keeping `size` messages for `ttl_s` on
/// `room.*`, plus `brief.*` keeping 100 for one second.
fn manifest(size: u32, ttl_s: u64, server: &str) -> String {
    format!(
        "publish_rate = {{ per_second = 100000, burst = 100000 }}\n{server}\n\
         [[routes]]\nchannels = \"room.*\"\nhistory = {{ size = {size}, ttl_s = {ttl_s} }}\n\
         [[routes]]\nchannels = \"brief.*\"\nhistory = {{ size = 100, ttl_s = 1 }}\n"
    )
}

async fn publish_n(client: &mut Client, channel: &str, range: std::ops::RangeInclusive<u64>) {
    for n in range {
        client.publish(channel, json!({"n": n})).await;
    }
}

#[tokio::test]
async fn a_reconnect_with_since_gets_exactly_what_it_missed_then_live_while_publishing_goes_on() {
    let gateway = TestGateway::start(&manifest(1000, 60, "")).await;
    let mut reader = gateway.client().await;
    let position = subscribe(&mut reader, "room.1", None).await;
    assert_eq!(position["offset"], 0, "{position}");
    let epoch = position["epoch"].as_str().expect("epoch").to_owned();

    let mut publisher = gateway.client().await;
    publish_n(&mut publisher, "room.1", 1..=5).await;
    for n in 1..=5 {
        assert_eq!(
            reader.recv().await,
            json!({"channel":"room.1","data":{"n":n},"offset":n,"epoch":epoch})
        );
    }
    drop(reader);

    // 50 missed while away, then 200 more published during the reconnect.
    publish_n(&mut publisher, "room.1", 6..=55).await;
    let publishing = tokio::spawn(async move {
        publish_n(&mut publisher, "room.1", 56..=255).await;
        publisher
    });
    let mut back = gateway.client().await;
    let result = subscribe(&mut back, "room.1", Some((&epoch, 5))).await;
    assert_eq!(result["recovered"], true, "{result}");
    assert_eq!(result["epoch"], epoch.as_str());
    assert!(result["offset"].as_u64().expect("offset") >= 55, "{result}");
    for n in 6..=255u64 {
        let push = back.recv().await;
        assert_eq!(
            (push["offset"].as_u64(), push["data"]["n"].as_u64()),
            (Some(n), Some(n)),
            "gap or duplicate at {n}: {push}"
        );
    }
    let mut publisher = publishing.await.expect("publisher");
    publish_n(&mut publisher, "room.1", 256..=256).await;
    assert_eq!(
        back.recv().await["offset"],
        256,
        "nothing doubled before it"
    );

    gateway
        .wait_metric("ferrygate_history_replays_total", 1.0)
        .await;
    assert!(
        gateway
            .metric("ferrygate_history_replayed_messages_total")
            .await
            >= 50.0
    );
    assert_eq!(
        gateway.metric("ferrygate_history_appends_total").await,
        256.0
    );
    gateway.stop().await;
}

#[tokio::test]
async fn evicted_future_or_foreign_positions_are_not_recovered_and_say_where_the_channel_is() {
    let gateway = TestGateway::start(&manifest(3, 60, "")).await;
    let mut client = gateway.client().await;
    let epoch = epoch_of(&mut client, "room.a").await;
    publish_n(&mut client, "room.a", 1..=10).await;
    // Evicted by size: only 8..=10 are kept.
    let mut other = gateway.client().await;
    let result = subscribe(&mut other, "room.a", Some((&epoch, 2))).await;
    assert_eq!(
        result,
        json!({"recovered":false,"epoch":epoch,"offset":10}),
        "{result}"
    );
    // Within what is kept: recovered.
    let mut near = gateway.client().await;
    let result = subscribe(&mut near, "room.a", Some((&epoch, 8))).await;
    assert_eq!(result["recovered"], true, "{result}");
    assert_eq!(near.recv().await["offset"], 9);
    assert_eq!(near.recv().await["offset"], 10);
    // A future offset, or another epoch.
    let mut future = gateway.client().await;
    let result = subscribe(&mut future, "room.a", Some((&epoch, 11))).await;
    assert_eq!(result["recovered"], false, "{result}");
    let mut foreign = gateway.client().await;
    let result = subscribe(&mut foreign, "room.a", Some(("other", 3))).await;
    assert_eq!(
        (&result["recovered"], &result["offset"]),
        (&json!(false), &json!(10))
    );

    // Evicted by age: `brief.*` keeps messages for one second.
    let brief = subscribe(&mut client, "brief.x", None).await;
    let brief_epoch = brief["epoch"].as_str().expect("epoch").to_owned();
    publish_n(&mut client, "brief.x", 1..=2).await;
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let mut late = gateway.client().await;
    let result = subscribe(&mut late, "brief.x", Some((&brief_epoch, 0))).await;
    assert_eq!(result["recovered"], false, "{result}");

    let failed =
        |reason: &str| format!("ferrygate_history_recoveries_failed_total{{reason=\"{reason}\"}}");
    assert_eq!(gateway.metric(&failed("future")).await, 1.0);
    // The idle `brief.x` may already have been swept (then its epoch changed).
    let lost = gateway.metric(&failed("evicted")).await + gateway.metric(&failed("epoch")).await;
    assert_eq!(lost, 3.0);
    gateway.stop().await;
}

#[tokio::test]
async fn wrong_typed_or_negative_since_is_a_bad_request_and_the_connection_stays() {
    let gateway = TestGateway::start(&manifest(10, 60, "")).await;
    let mut client = gateway.client().await;
    for since in [
        json!({"epoch":5,"offset":1}),
        json!({"epoch":"e","offset":-1}),
        json!({"epoch":"e","offset":"1"}),
        json!({"epoch":"e"}),
        json!([1]),
    ] {
        let reply = client
            .request(json!({"op":"subscribe","channel":"room.b","since":since}))
            .await;
        assert_eq!(reply["error"]["code"], "bad_request", "{since}: {reply}");
    }
    // A channel without history: recovered:false, and no position.
    let result = subscribe(&mut client, "plain", Some(("e", 1))).await;
    assert_eq!(result, json!({"recovered":false}));
    client.publish("plain", json!(1)).await;
    assert_eq!(client.recv().await, json!({"channel":"plain","data":1}));
    gateway.stop().await;
}

#[tokio::test]
async fn a_replay_that_would_not_fit_the_outbox_is_not_attempted() {
    let server = "max_frame_bytes = 1024\nmax_queued_bytes = 4096";
    let gateway = TestGateway::start(&manifest(1000, 60, server)).await;
    let mut client = gateway.client().await;
    let epoch = epoch_of(&mut client, "room.c").await;
    let big = "x".repeat(300);
    for _ in 0..20 {
        client.publish("room.c", json!(big)).await;
    }
    let mut far = gateway.client().await;
    let result = subscribe(&mut far, "room.c", Some((&epoch, 0))).await;
    assert_eq!(result["recovered"], false, "{result}");
    let mut near = gateway.client().await;
    let result = subscribe(&mut near, "room.c", Some((&epoch, 17))).await;
    assert_eq!(result["recovered"], true, "{result}");
    assert_eq!(near.recv().await["offset"], 18);
    let series = "ferrygate_history_recoveries_failed_total{reason=\"too_large\"}";
    assert_eq!(gateway.metric(series).await, 1.0);
    gateway.stop().await;
}

#[tokio::test]
async fn a_restarted_memory_broker_has_a_new_epoch_and_says_nothing_was_recovered() {
    let first = TestGateway::start(&manifest(10, 60, "")).await;
    let (status, body) = first
        .api("/v1/publish", &json!({"channel":"room.d","data":1}))
        .await;
    assert_eq!(status, 200, "{body}");
    let mut client = first.client().await;
    let before = subscribe(&mut client, "room.d", None).await;
    assert_eq!(before["offset"], 1, "{before}");
    let epoch = before["epoch"].as_str().expect("epoch").to_owned();
    drop(client);
    first.stop().await;

    let second = TestGateway::start(&manifest(10, 60, "")).await;
    let mut client = second.client().await;
    let after = subscribe(&mut client, "room.d", Some((&epoch, 1))).await;
    assert_eq!(after["recovered"], false, "{after}");
    assert_ne!(after["epoch"], epoch.as_str());
    assert_eq!(after["offset"], 0);
    second.stop().await;
}
