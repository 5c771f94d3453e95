//! `GET /sse`: the same pushes as a WebSocket, recovery with `Last-Event-ID`
//! on a history channel, heartbeats, a slow reader cut, refusals before the
//! stream starts (400, 401, 403, 503), and streams counted like sessions.

use serde_json::json;

use crate::plugin_auth::{SECRET, hs256};
use crate::support::plugins::section;
use crate::support::sse::Stream;
use crate::support::{TestGateway, http};

fn history_manifest(server: &str) -> String {
    format!("{server}\n[[routes]]\nchannels = \"hist.*\"\nhistory = {{ size = 100, ttl_s = 60 }}\n")
}

#[tokio::test]
async fn sse_receives_the_same_pushes_as_a_websocket_and_counts_as_a_connection() {
    let gateway = TestGateway::start("").await;
    let mut ws = gateway.client().await;
    ws.subscribe("chat.x").await;
    let mut sse = Stream::open(gateway.addr, "/sse?channel=chat.x", &[]).await;
    assert_eq!(sse.status, 200);
    gateway.wait_metric("ferrygate_sse_streams", 1.0).await;
    assert_eq!(gateway.metric("ferrygate_connections").await, 2.0);
    for n in 0..3 {
        let data = json!({"n": n, "text": "line one\nline two"});
        let (status, _) = gateway
            .api("/v1/publish", &json!({"channel":"chat.x","data":data}))
            .await;
        assert_eq!(status, 200);
    }
    for _ in 0..3 {
        let over_ws = ws.recv().await;
        let over_sse = sse.next_event().await.expect("an event");
        assert_eq!(over_sse.event, None);
        assert_eq!(over_sse.json(), over_ws);
    }
    drop(sse);
    let deadline = tokio::time::Instant::now() + crate::support::PATIENCE;
    while gateway.metric("ferrygate_sse_streams").await > 0.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "stream never released"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(gateway.metric("ferrygate_connections").await, 1.0);
    gateway.stop().await;
}

#[tokio::test]
async fn sse_recovers_what_it_missed_with_last_event_id_on_a_history_channel() {
    let gateway = TestGateway::start(&history_manifest("")).await;
    let publish = async |n: u64| {
        let (status, _) = gateway
            .api("/v1/publish", &json!({"channel":"hist.a","data":{"n":n}}))
            .await;
        assert_eq!(status, 200);
    };
    let mut sse = Stream::open(gateway.addr, "/sse?channel=hist.a", &[]).await;
    assert_eq!(sse.status, 200);
    // The stream starts with its position (an id-only event).
    let start = sse.next().await.expect("the first id");
    assert!(start.id.is_some() && start.data.is_empty(), "{start:?}");
    publish(1).await;
    publish(2).await;
    let mut last_id = String::new();
    for n in 1..=2 {
        let event = sse.next_event().await.expect("a push");
        assert_eq!(event.json()["data"]["n"], n);
        last_id = event.id.expect("history pushes carry an id");
    }
    drop(sse);
    for n in 3..=5 {
        publish(n).await;
    }
    let mut again = Stream::open(
        gateway.addr,
        "/sse?channel=hist.a",
        &[("Last-Event-ID", &last_id)],
    )
    .await;
    let recovery = again.next_event().await.expect("recovery event");
    assert_eq!(recovery.event.as_deref(), Some("recovery"));
    assert_eq!(recovery.json()["channel"], "hist.a");
    assert_eq!(recovery.json()["recovered"], true, "{recovery:?}");
    for n in 3..=5 {
        let event = again.next_event().await.expect("a missed push");
        assert_eq!(event.json()["data"]["n"], n, "{event:?}");
        assert!(event.id.is_some());
    }
    publish(6).await;
    assert_eq!(
        again.next_event().await.expect("live").json()["data"]["n"],
        6
    );

    // The same through the query parameter, and a malformed id: recovered:false.
    let path = format!(
        "/sse?channel=hist.a&lastEventID={}",
        last_id.replace(':', "%3A")
    );
    let mut by_query = Stream::open(gateway.addr, &path, &[]).await;
    let recovery = by_query.next_event().await.expect("recovery event");
    assert_eq!(recovery.json()["recovered"], true);
    let mut garbled = Stream::open(
        gateway.addr,
        "/sse?channel=hist.a",
        &[("Last-Event-ID", "garbage")],
    )
    .await;
    assert_eq!(garbled.status, 200);
    let recovery = garbled.next_event().await.expect("recovery event");
    assert_eq!(recovery.event.as_deref(), Some("recovery"));
    assert_eq!(recovery.json()["recovered"], false);
    assert_eq!(recovery.json()["offset"], 6);
    gateway.stop().await;
}

#[tokio::test]
async fn sse_sends_heartbeat_comments() {
    let gateway = TestGateway::start("ping_interval_ms = 200\n").await;
    let mut sse = Stream::open(gateway.addr, "/sse?channel=quiet", &[]).await;
    assert_eq!(sse.status, 200);
    for _ in 0..2 {
        let beat = sse.next().await.expect("a heartbeat");
        assert_eq!(beat.comment.as_deref(), Some("heartbeat"), "{beat:?}");
    }
    gateway.stop().await;
}

#[tokio::test]
async fn a_sse_reader_that_falls_behind_is_cut_and_released() {
    let gateway = TestGateway::start(
        "max_queued_bytes = 65536\nmax_frame_bytes = 65536\npublish_rate = { per_second = 100000, burst = 100000 }\n",
    )
    .await;
    // Opened, then never read: the socket buffers fill, then the outbox.
    let stalled = Stream::open(gateway.addr, "/sse?channel=flood", &[]).await;
    assert_eq!(stalled.status, 200);
    gateway.wait_metric("ferrygate_sse_streams", 1.0).await;
    let blob = "x".repeat(60_000);
    for _ in 0..2000 {
        gateway
            .api("/v1/publish", &json!({"channel":"flood","data":blob}))
            .await;
        if gateway.metric("ferrygate_slow_consumers_total").await >= 1.0 {
            break;
        }
    }
    gateway
        .wait_metric("ferrygate_disconnects_total{reason=\"slow_consumer\"}", 1.0)
        .await;
    // Released at once, although its socket is still open.
    assert_eq!(gateway.metric("ferrygate_sse_streams").await, 0.0);
    assert_eq!(gateway.metric("ferrygate_connections").await, 0.0);
    drop(stalled);
    gateway.stop().await;
}

/// A gateway with `server_keys`, jwt-auth, and channel-acl on every channel
/// (`chat.>` public, `user.X` only to X).
async fn acl_gateway(server_keys: &str) -> TestGateway {
    let auth = crate::plugin_auth::jwt_auth_section();
    let acl = section(
        "acl",
        "route",
        "channel_acl",
        r#"config = { public = ["chat.>"] }"#,
    );
    TestGateway::start(&format!(
        "{server_keys}{auth}{acl}[[routes]]\nchannels = \">\"\nroute = \"acl\"\n"
    ))
    .await
}

#[tokio::test]
async fn sse_is_refused_before_it_starts_with_a_clear_status() {
    let gateway = acl_gateway("max_connections = 2\n").await;
    let token = hs256(&crate::plugin_auth::claims("alice"), SECRET);
    let with_token = |path: &str| format!("{path}&token={token}");
    for (path, status, code) in [
        (with_token("/sse?x=1"), 400, "bad_request"),
        (with_token("/sse?channel=bad*name"), 400, "bad_request"),
        ("/sse?channel=chat.a".to_owned(), 401, "unauthorized"),
        (with_token("/sse?channel=user.bob"), 403, "forbidden"),
        (
            with_token("/sse?channel=chat.a&channel=user.bob"),
            403,
            "forbidden",
        ),
    ] {
        let refused = Stream::open(gateway.addr, &path, &[]).await;
        assert_eq!(refused.status, status, "{path}: {}", refused.body);
        let body: serde_json::Value = serde_json::from_str(&refused.body).expect("JSON body");
        assert_eq!(body["error"]["code"], code, "{path}");
    }
    // Nothing of the refused streams stays behind.
    assert_eq!(gateway.metric("ferrygate_connections").await, 0.0);
    assert_eq!(gateway.metric("ferrygate_subscriptions").await, 0.0);

    // Streams count in max_connections, with WebSockets.
    let first = Stream::open(gateway.addr, &with_token("/sse?channel=chat.a"), &[]).await;
    assert_eq!(first.status, 200);
    let ws_url = format!("{}?token={token}", gateway.ws_url());
    let _ws = crate::support::Client::connect(&ws_url).await;
    let full = Stream::open(gateway.addr, &with_token("/sse?channel=chat.a"), &[]).await;
    assert_eq!(full.status, 503, "{}", full.body);
    let (status, _) = http(gateway.addr, "GET", "/readyz", &[], "").await;
    assert_eq!(status, 200);
    drop(first);
    gateway.stop().await;
}

#[tokio::test]
async fn sse_runs_auth_before_it_reads_the_channels_and_answers_cross_origin_pages() {
    let gateway = acl_gateway("allowed_origins = [\"http://page.test\"]\n").await;
    // A missing or bad token is 401 whatever the query asks (the client
    // probes `/sse` without a channel to learn why its WebSocket failed).
    for path in [
        "/sse",
        "/sse?x=1",
        "/sse?channel=bad*name",
        "/sse?token=garbage",
        "/sse?channel=bad*name&token=garbage",
    ] {
        let refused = Stream::open(gateway.addr, path, &[]).await;
        assert_eq!(refused.status, 401, "{path}: {}", refused.body);
        let body: serde_json::Value = serde_json::from_str(&refused.body).expect("JSON body");
        assert_eq!(body["error"]["code"], "unauthorized", "{path}");
    }
    let token = hs256(&crate::plugin_auth::claims("alice"), SECRET);
    let bearer = format!("Bearer {token}");
    let authorization = ("Authorization", bearer.as_str());
    let no_channel = Stream::open(gateway.addr, "/sse", &[authorization]).await;
    assert_eq!(no_channel.status, 400, "{}", no_channel.body);

    // A page of an allowed origin: the preflight names what it may send,
    // and every answer (a refusal too) names the origin, so the page can
    // read it.
    let page = ("Origin", "http://page.test");
    let preflight = Stream::request(
        gateway.addr,
        "OPTIONS",
        "/sse?channel=chat.a",
        &[
            page,
            ("Access-Control-Request-Method", "GET"),
            (
                "Access-Control-Request-Headers",
                "authorization, last-event-id",
            ),
        ],
    )
    .await;
    assert_eq!(preflight.status, 204, "{}", preflight.body);
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("http://page.test")
    );
    assert_eq!(
        preflight.header("access-control-allow-headers"),
        Some("authorization, last-event-id")
    );
    let refused = Stream::open(gateway.addr, "/sse?channel=chat.a", &[page]).await;
    assert_eq!(refused.status, 401);
    assert_eq!(
        refused.header("access-control-allow-origin"),
        Some("http://page.test")
    );
    let mut stream =
        Stream::open(gateway.addr, "/sse?channel=chat.a", &[page, authorization]).await;
    assert_eq!(stream.status, 200, "{}", stream.body);
    assert_eq!(
        stream.header("access-control-allow-origin"),
        Some("http://page.test")
    );
    assert_eq!(stream.header("vary"), Some("origin"));
    let (status, _) = gateway
        .api("/v1/publish", &json!({"channel": "chat.a", "data": "seen"}))
        .await;
    assert_eq!(status, 200);
    let event = stream.next_event().await.expect("a push");
    assert_eq!(event.json(), json!({"channel": "chat.a", "data": "seen"}));

    // Another origin: no CORS answer, and the stream is refused (403).
    let other = ("Origin", "http://other.test");
    let preflight = Stream::request(gateway.addr, "OPTIONS", "/sse?channel=chat.a", &[other]).await;
    assert_eq!(preflight.status, 403);
    assert_eq!(preflight.header("access-control-allow-origin"), None);
    let refused = Stream::open(gateway.addr, "/sse?channel=chat.a", &[other, authorization]).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(refused.header("access-control-allow-origin"), None);
    drop(stream);
    gateway.stop().await;
}
