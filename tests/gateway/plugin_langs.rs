//! Plugins in other Wasm languages, built by `cargo xtask build-plugins` with
//! their tools' default commands: the JavaScript `profanity-filter` transform
//! (componentize-js) and the Python `room-rules` route (componentize-py),
//! end to end over real sockets. Both import WASI they are not granted
//! (sockets, http, clocks, random): those imports are stubbed, so they load,
//! and a stubbed import that a plugin calls fails only that call. Neither
//! is granted anything: the manifests are what a new user writes.

use serde_json::json;

use crate::plugin_auth::{SECRET, claims, hs256};
use crate::plugin_limits::plugin_errors;
use crate::support::plugins::section;
use crate::support::{API_KEY, Client, TestGateway};

/// Limits suited to an interpreter in the component: see docs/plugins.md.
/// No grants: componentize-js's runtime reads the monotonic clock as an
/// instance starts and componentize-py's seeds itself from `wasi:random`;
/// ungranted, those reads get inert answers until `init` returns, and are
/// refused after (plugins/testing `ungranted` below).
const JS: &str = "limits = { memory_mib = 64, time_ms = 500 }";
const PY: &str = JS;

#[tokio::test]
async fn a_javascript_transform_masks_words_and_drops_the_worst() {
    let filter = section(
        "profanity",
        "transform",
        "profanity_filter",
        &format!("{JS}\nconfig = {{ words = [\"darn\", \"heck\"], drop_above = 4 }}"),
    );
    let routes = "[[routes]]\nchannels = \"chat.*\"\ninbound = [\"profanity\"]\n";
    let gateway = TestGateway::start(&format!("{filter}{routes}")).await;
    let mut publisher = gateway.client().await;
    let mut subscriber = gateway.client().await;
    subscriber.subscribe("chat.lobby").await;

    publisher
        .publish(
            "chat.lobby",
            json!({"text": "Darn it, what the heck", "tags": ["darnation", "heck"], "n": 3}),
        )
        .await;
    let push = subscriber.recv().await;
    assert_eq!(
        push["data"],
        json!({"text": "D*** it, what the h***", "tags": ["darnation", "h***"], "n": 3}),
        "{push}"
    );
    // Four masked words: dropped, and the publisher is told so; the next
    // message is the one delivered.
    let reply = publisher
        .request(json!({"op": "publish", "channel": "chat.lobby", "data": "darn darn heck heck"}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["result"], json!({"dropped": true}), "{reply}");
    publisher.publish("chat.lobby", json!("all clean")).await;
    let push = subscriber.recv().await;
    assert_eq!(push["data"], "all clean", "{push}");
    gateway.stop().await;
}

#[tokio::test]
async fn a_javascript_transform_refuses_a_bad_config_at_load() {
    let filter = section(
        "profanity",
        "transform",
        "profanity_filter",
        &format!("{JS}\nconfig = {{ words = [] }}"),
    );
    // The compile cache the tests share (see support::TestGateway).
    let cache = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasm-cache");
    let manifest = format!(
        "[server]\nallow_anonymous = true\n{filter}\n[wasm]\ncache_dir = {:?}\n",
        cache.display().to_string()
    );
    let config = ferrygate::config::Config::parse(
        &manifest,
        &std::collections::HashMap::<String, String>::new(),
    )
    .expect("manifest parses");
    let metrics = ferrygate::metrics::PluginMetrics::new();
    let error = ferrygate::plugin::LivePlugins::start(&config, &metrics)
        .await
        .expect_err("an empty word list is refused");
    let text = error.to_string();
    assert!(
        text.contains("config.words must be a non-empty list"),
        "{text}"
    );
}

async fn user(gateway: &TestGateway, name: &str) -> Client {
    let url = format!(
        "{}?token={}",
        gateway.ws_url(),
        hs256(&claims(name), SECRET)
    );
    Client::connect(&url).await
}

#[tokio::test]
async fn a_python_route_applies_per_room_rules() {
    let auth = crate::plugin_auth::jwt_auth_section();
    let rules = section(
        "rooms",
        "route",
        "room_rules",
        &format!(
            "{PY}\nconfig = {{ prefix = \"room.\", default = \"nobody\", rooms = {{ lobby = {{ subscribe = \"anyone\", publish = \"users\", max_bytes = 32 }}, staff = {{ subscribe = [\"alice\"], publish = [\"alice\"] }} }} }}"
        ),
    );
    let routes = "[[routes]]\nchannels = \">\"\nroute = \"rooms\"\n";
    let gateway = TestGateway::start(&format!("{auth}{rules}{routes}")).await;
    let mut alice = user(&gateway, "alice").await;
    let mut bob = user(&gateway, "bob").await;

    alice.subscribe("room.staff").await;
    alice.subscribe("room.lobby").await;
    let reply = bob
        .request(json!({"op": "subscribe", "channel": "room.staff"}))
        .await;
    assert_eq!(reply["error"]["code"], "forbidden", "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("room staff: subscribe not allowed")),
        "{reply}"
    );
    let reply = bob
        .request(json!({"op": "publish", "channel": "room.lobby", "data": "x".repeat(40)}))
        .await;
    assert_eq!(reply["error"]["code"], "forbidden", "{reply}");
    // A room without rules follows `default` ("nobody").
    let reply = bob
        .request(json!({"op": "subscribe", "channel": "room.attic"}))
        .await;
    assert_eq!(reply["error"]["code"], "forbidden", "{reply}");
    // Outside the prefix: allowed unchanged.
    bob.subscribe("news").await;

    bob.publish("room.lobby", json!("hi all")).await;
    let push = alice.recv().await;
    assert_eq!(
        (push["channel"].as_str(), push["data"].as_str()),
        (Some("room.lobby"), Some("hi all")),
        "{push}"
    );
    assert_eq!(
        gateway
            .metric("ferrygate_request_errors_total{code=\"forbidden\"}")
            .await,
        3.0
    );
    gateway.stop().await;
}

#[tokio::test]
async fn a_stubbed_import_fails_only_the_call_that_reaches_it() {
    // `ungranted` reads the clock and seeds a hash map in every call.
    let extra = format!(
        "{}{}[[routes]]\nchannels = \"bad.*\"\ninbound = [\"sneaky\"]\n[[routes]]\nchannels = \"ok.*\"\ninbound = [\"granted\"]\n",
        section("sneaky", "transform", "ungranted", ""),
        section(
            "granted",
            "transform",
            "ungranted",
            "grants = [\"clocks\", \"random\"]"
        ),
    );
    let gateway = TestGateway::start(&extra).await;
    let mut client = gateway.client().await;
    let mut subscriber = gateway.client().await;
    subscriber.subscribe("ok.x").await;

    let reply = client
        .request(json!({"op": "publish", "channel": "bad.x", "data": 1}))
        .await;
    assert_eq!(reply["error"]["code"], "plugin_error", "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not granted")),
        "{reply}"
    );
    assert_eq!(plugin_errors(&gateway, "sneaky", "refused").await, 1.0);
    // The same connection goes on, and the granted copy reaches the clock.
    client.publish("ok.x", json!({})).await;
    let push = subscriber.recv().await;
    assert!(
        push["data"]["now_ms"].as_u64().is_some_and(|ms| ms > 0),
        "{push}"
    );
    let auth = format!("Bearer {API_KEY}");
    let (status, plugins) = gateway
        .http("GET", "/v1/plugins", &[("Authorization", &auth)], "")
        .await;
    assert_eq!(status, 200, "{plugins}");
    let report: serde_json::Value = serde_json::from_str(&plugins).expect("JSON");
    let stubbed = |name: &str| {
        report["plugins"]
            .as_array()
            .and_then(|list| list.iter().find(|p| p["name"] == name))
            .map(|p| p["stubbed"].to_string())
            .unwrap_or_default()
    };
    assert!(
        stubbed("sneaky").contains("wasi:clocks/wall-clock"),
        "{plugins}"
    );
    assert_eq!(stubbed("granted"), "[]", "{plugins}");
    gateway.stop().await;
}
