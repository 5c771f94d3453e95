//! Fan-out: every subscriber gets each message of its channels once, in order.

use std::collections::HashMap;

use serde_json::json;

use crate::support::{Client, TestGateway};

const CHANNELS: [&str; 3] = ["chat.lobby", "prices.eur", "game.7"];

#[tokio::test]
async fn many_clients_over_several_channels_get_each_message_once_in_order() {
    let gateway = TestGateway::start("").await;
    const SUBSCRIBERS: usize = 60;
    const PER_PUBLISHER: usize = 150;

    // Subscriber i listens to every channel c with (i + c) % 3 != 0: each
    // channel has 40 subscribers and most clients have two channels.
    let mut subscribers = Vec::new();
    for i in 0..SUBSCRIBERS {
        let mut client = gateway.client().await;
        let mut mine = Vec::new();
        for (c, channel) in CHANNELS.iter().enumerate() {
            if (i + c) % 3 != 0 {
                client.subscribe(channel).await;
                mine.push(*channel);
            }
        }
        subscribers.push((client, mine));
    }

    // Two publishers, one on the socket and one on the HTTP API, interleaving
    // messages over all channels.
    let mut ws_publisher = gateway.client().await;
    let ws_publishing = async {
        for n in 0..PER_PUBLISHER {
            let channel = CHANNELS[n % 3];
            ws_publisher
                .publish(channel, json!({"from":"ws","n":n}))
                .await;
        }
    };
    let http_publishing = async {
        for n in 0..PER_PUBLISHER {
            let channel = CHANNELS[n % 3];
            let (status, body) = gateway
                .api(
                    "/v1/publish",
                    &json!({"channel":channel,"data":{"from":"http","n":n}}),
                )
                .await;
            assert_eq!(status, 200, "{body}");
        }
    };
    tokio::join!(ws_publishing, http_publishing);

    for (client, mine) in &mut subscribers {
        let expected: usize = (0..PER_PUBLISHER)
            .filter(|n| mine.contains(&CHANNELS[n % 3]))
            .count()
            * 2;
        let mut next: HashMap<(String, String), u64> = HashMap::new();
        for _ in 0..expected {
            let push = client.recv().await;
            let channel = push["channel"]
                .as_str()
                .expect("push has a channel")
                .to_owned();
            assert!(
                mine.contains(&channel.as_str()),
                "got {channel} without subscribing"
            );
            let from = push["data"]["from"].as_str().expect("from").to_owned();
            let n = push["data"]["n"].as_u64().expect("n");
            let expected_n = next.entry((channel.clone(), from.clone())).or_insert(n % 3);
            assert_eq!(
                n, *expected_n,
                "{from} on {channel}: out of order or duplicated"
            );
            *expected_n += 3;
        }
        // Nothing more is in flight: a ping's reply is the very next frame.
        let reply = client.request(json!({"op":"ping"})).await;
        assert_eq!(reply["ok"], true);
    }
    gateway.stop().await;
}

#[tokio::test]
async fn unsubscribe_stops_delivery_and_subscribe_is_idempotent() {
    let gateway = TestGateway::start("").await;
    let mut alice = gateway.client().await;
    let mut bob = gateway.client().await;
    alice.subscribe("news").await;
    alice.subscribe("news").await;

    bob.publish("news", json!("first")).await;
    let push = alice.recv().await;
    assert_eq!(push, json!({"channel":"news","data":"first"}));
    let reply = alice.request(json!({"op":"ping"})).await;
    assert_eq!(
        reply["ok"], true,
        "a second subscribe must not double delivery: {reply}"
    );

    let reply = alice
        .request(json!({"op":"unsubscribe","channel":"news"}))
        .await;
    assert_eq!(reply["ok"], true);
    bob.publish("news", json!("second")).await;
    let reply = alice.request(json!({"op":"ping"})).await;
    assert_eq!(reply["ok"], true, "no push after unsubscribe: {reply}");

    let reply = alice
        .request(json!({"op":"unsubscribe","channel":"news"}))
        .await;
    assert_eq!(reply["error"]["code"], "not_found", "{reply}");
    let reply = alice
        .request(json!({"op":"unsubscribe","channel":"never.joined"}))
        .await;
    assert_eq!(reply["error"]["code"], "not_found", "{reply}");
    assert_eq!(gateway.metric("ferrygate_subscriptions").await, 0.0);
    gateway.stop().await;
}

#[tokio::test]
async fn a_publisher_subscribed_to_its_channel_gets_its_own_message_once() {
    let gateway = TestGateway::start("").await;
    let mut client: Client = gateway.client().await;
    client.subscribe("echo").await;
    let reply = client
        .request(json!({"op":"publish","channel":"echo","data":[1,2]}))
        .await;
    assert_eq!(reply["ok"], true);
    assert_eq!(client.recv().await, json!({"channel":"echo","data":[1,2]}));
    let reply = client.request(json!({"op":"ping"})).await;
    assert_eq!(reply["ok"], true);
    gateway.stop().await;
}

#[tokio::test]
async fn rpc_without_a_backend_is_unavailable() {
    let gateway = TestGateway::start("").await;
    let mut client = gateway.client().await;
    let reply = client
        .request(json!({"op":"rpc","method":"orders.get","data":{"id":1}}))
        .await;
    assert_eq!(reply["error"]["code"], "unavailable", "{reply}");
    let reply = client
        .request(json!({"op":"subscribe","channel":"c","since":{"epoch":"e","offset":3}}))
        .await;
    assert_eq!(
        reply["result"]["recovered"], false,
        "no history is kept, and the client is told: {reply}"
    );
    gateway.stop().await;
}
