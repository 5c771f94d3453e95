//! `channel-acl` decides subscribes and publishes per user, rewrites and fans
//! out channels, turns publishes into rpcs; `json-redact` runs once per
//! publish and every subscriber sees the redacted message.

use serde_json::json;

use crate::plugin_auth::{SECRET, claims, hs256};
use crate::support::plugins::section;
use crate::support::{Client, TestGateway};

async fn chat_gateway() -> TestGateway {
    let auth = crate::plugin_auth::jwt_auth_section();
    let acl = section(
        "acl",
        "route",
        "channel_acl",
        r#"config = { public = ["chat.>", "room.*", "alerts.>", "announce.*", "orders.*"], publish = [{ channels = "announce.*", allow = "nobody" }, { channels = ">", allow = "signed-in" }], rewrite = [{ channels = "room.*", to = "chat.{1}.eu" }], fan_out = [{ channels = "alerts.*", to = ["alerts.{1}.eu", "alerts.{1}.us"] }], rpc = [{ channels = "orders.*", method = "orders.{1}" }] }"#,
    );
    let redact = section(
        "redact",
        "transform",
        "json_redact",
        r#"config = { remove = ["/card"], mask = ["/email"] }"#,
    );
    let routes = "[[routes]]\nchannels = [\"chat.>\", \"room.*\"]\nroute = \"acl\"\ninbound = [\"redact\"]\n\n[[routes]]\nchannels = \">\"\nroute = \"acl\"\n";
    TestGateway::start(&format!("{auth}{acl}{redact}{routes}")).await
}

async fn user(gateway: &TestGateway, name: &str) -> Client {
    let url = format!(
        "{}?token={}",
        gateway.ws_url(),
        hs256(&claims(name), SECRET)
    );
    let client = Client::connect(&url).await;
    assert_eq!(client.welcome["user"], name);
    client
}

#[tokio::test]
async fn private_channels_belong_to_their_owner() {
    let gateway = chat_gateway().await;
    let mut alice = user(&gateway, "alice").await;
    let reply = alice
        .request(json!({"op": "subscribe", "channel": "user.bob"}))
        .await;
    assert_eq!(reply["error"]["code"], "forbidden", "{reply}");
    alice.subscribe("user.alice").await;
    let reply = alice
        .request(json!({"op": "publish", "channel": "announce.news", "data": 1}))
        .await;
    assert_eq!(reply["error"]["code"], "forbidden", "{reply}");
    assert_eq!(
        gateway
            .metric("ferrygate_request_errors_total{code=\"forbidden\"}")
            .await,
        2.0
    );
    gateway.stop().await;
}

#[tokio::test]
async fn a_rewrite_sends_subscribes_and_publishes_to_the_rewritten_channel() {
    let gateway = chat_gateway().await;
    let mut via_alias = user(&gateway, "alice").await;
    let reply = via_alias
        .request(json!({"op": "subscribe", "channel": "room.lobby"}))
        .await;
    assert_eq!(
        reply["result"]["channels"],
        json!(["chat.lobby.eu"]),
        "{reply}"
    );
    let mut direct = user(&gateway, "bob").await;
    direct.subscribe("chat.lobby.eu").await;
    let mut publisher = user(&gateway, "carol").await;
    publisher.publish("room.lobby", json!({"text": "hi"})).await;
    for client in [&mut via_alias, &mut direct] {
        let push = client.recv().await;
        assert_eq!(push["channel"], "chat.lobby.eu", "{push}");
        assert_eq!(push["data"], json!({"text": "hi"}), "{push}");
    }
    // Unsubscribing the name the client used leaves the rewritten channel.
    let reply = via_alias
        .request(json!({"op": "unsubscribe", "channel": "room.lobby"}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    gateway.stop().await;
}

#[tokio::test]
async fn a_fan_out_delivers_one_publish_to_every_listed_channel() {
    let gateway = chat_gateway().await;
    let mut eu = user(&gateway, "alice").await;
    eu.subscribe("alerts.fire.eu").await;
    let mut us = user(&gateway, "bob").await;
    us.subscribe("alerts.fire.us").await;
    let mut other = user(&gateway, "dave").await;
    other.subscribe("alerts.fire").await; // fanned out too: joins both
    let mut publisher = user(&gateway, "carol").await;
    publisher.publish("alerts.fire", json!({"level": 3})).await;
    assert_eq!(eu.recv().await["channel"], "alerts.fire.eu");
    assert_eq!(us.recv().await["channel"], "alerts.fire.us");
    let mut seen = [other.recv().await, other.recv().await]
        .map(|push| push["channel"].as_str().unwrap_or_default().to_owned());
    seen.sort();
    assert_eq!(seen, ["alerts.fire.eu", "alerts.fire.us"]);
    gateway.stop().await;
}

#[tokio::test]
async fn a_publish_routed_to_an_rpc_asks_the_backend() {
    let gateway = chat_gateway().await;
    let mut client = user(&gateway, "alice").await;
    let reply = client
        .request(json!({"op": "publish", "channel": "orders.get", "data": {"id": 7}}))
        .await;
    // The in-process broker has no backend services: the rpc is unanswered.
    assert_eq!(reply["error"]["code"], "unavailable", "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("orders.get")),
        "{reply}"
    );
    gateway.stop().await;
}

#[tokio::test]
async fn redaction_is_seen_by_every_subscriber() {
    let gateway = chat_gateway().await;
    let mut subscribers = Vec::new();
    for name in ["alice", "bob", "dave"] {
        let mut client = user(&gateway, name).await;
        client.subscribe("chat.pay").await;
        subscribers.push(client);
    }
    let mut publisher = user(&gateway, "carol").await;
    publisher
        .publish(
            "chat.pay",
            json!({"text": "paid", "card": "4111 1111 1111 1111", "email": "carol@example.com"}),
        )
        .await;
    let (_, body) = gateway
        .api(
            "/v1/publish",
            &json!({"channel": "chat.pay", "data": {"card": "5500", "text": "from backend"}}),
        )
        .await;
    assert_eq!(body["ok"], true, "{body}");
    for client in &mut subscribers {
        let push = client.recv().await;
        assert_eq!(
            push["data"],
            json!({"text": "paid", "email": "***"}),
            "{push}"
        );
        let push = client.recv().await;
        assert_eq!(push["data"], json!({"text": "from backend"}), "{push}");
    }
    gateway.stop().await;
}
