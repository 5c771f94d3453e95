//! Limits: slow readers are cut with 1013 without slowing anyone else,
//! connections are capped, silent peers are reaped, oversize heads refused.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{API_KEY, Client, PATIENCE, TestGateway, http};

#[tokio::test]
async fn a_slow_reader_is_cut_with_1013_while_fast_readers_get_everything() {
    let gateway = TestGateway::start(
        "max_queued_bytes = 262144\nclose_grace_ms = 5000\npublish_rate = { per_second = 100000, burst = 100000 }",
    )
    .await;
    let mut fast = gateway.client().await;
    let mut slow = gateway.client().await;
    fast.subscribe("ticker").await;
    slow.subscribe("ticker").await;

    // Enough data to fill the slow client's kernel buffers and its 256 KiB queue.
    const MESSAGES: usize = 800;
    let filler = "x".repeat(16 * 1024);
    let mut publisher = gateway.client().await;
    let publishing = async {
        for n in 0..MESSAGES {
            publisher
                .publish("ticker", json!({"n": n, "pad": filler}))
                .await;
        }
    };
    let reading = async {
        for n in 0..MESSAGES {
            let push = fast.recv().await;
            assert_eq!(
                push["data"]["n"], n,
                "fast reader gets every message in order"
            );
        }
    };
    // The slow client reads only once it has been cut: what was already on
    // the wire, then the close.
    let slow_side = async {
        gateway
            .wait_metric("ferrygate_slow_consumers_total", 1.0)
            .await;
        slow.close_code().await
    };
    let ((), (), slow_close) = tokio::join!(publishing, reading, slow_side);
    assert_eq!(slow_close, 1013);
    assert!(gateway.metric("ferrygate_frames_dropped_total").await >= 1.0);
    gateway
        .wait_metric("ferrygate_disconnects_total{reason=\"slow_consumer\"}", 1.0)
        .await;
    let reply = fast.request(json!({"op":"ping"})).await;
    assert_eq!(reply["ok"], true, "the fast reader is still connected");
    gateway.stop().await;
}

#[tokio::test]
async fn upgrades_beyond_max_connections_get_503() {
    let gateway = TestGateway::start("max_connections = 2").await;
    let _a = gateway.client().await;
    let b = gateway.client().await;
    let error = tokio_tungstenite::connect_async(gateway.ws_url())
        .await
        .expect_err("third connection is refused");
    match error {
        tokio_tungstenite::tungstenite::Error::Http(response) => {
            assert_eq!(response.status(), 503);
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
                .into_owned();
            assert!(body.contains("connection limit"), "{body}");
        }
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
    assert_eq!(
        gateway
            .metric("ferrygate_upgrades_refused_total{reason=\"capacity\"}")
            .await,
        1.0
    );
    drop(b);
    // The freed place is reusable once the server has seen the close.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio_tungstenite::connect_async(gateway.ws_url())
        .await
        .is_err()
    {
        assert!(tokio::time::Instant::now() < deadline, "place never freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gateway.stop().await;
}

#[tokio::test]
async fn a_silent_peer_is_reaped_after_the_idle_timeout() {
    let gateway = TestGateway::start("ping_interval_ms = 100\nidle_timeout_ms = 400").await;
    // A client that never reads never answers pings, like a half-open TCP peer.
    let (mut silent, _) = tokio_tungstenite::connect_async(gateway.ws_url())
        .await
        .expect("connect");
    let mut live = gateway.client().await;
    let keep_alive = async {
        for _ in 0..8 {
            let reply = live.request(json!({"op":"ping"})).await;
            assert_eq!(reply["ok"], true);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    keep_alive.await;
    gateway
        .wait_metric("ferrygate_disconnects_total{reason=\"idle_timeout\"}", 1.0)
        .await;
    assert_eq!(
        gateway.metric("ferrygate_connections").await,
        1.0,
        "only the live client remains"
    );
    // The server let go of the socket: the silent client's stream ends.
    let ended = tokio::time::timeout(PATIENCE, async {
        while let Some(Ok(_)) = silent.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the reaped connection is closed");
    gateway.stop().await;
}

/// A client that stops reading while its socket is full, then ends its
/// session (it sends a close frame and reads nothing, not even the echo):
/// the writer keeps what is queued (a client close discards nothing), waits
/// `close_grace_ms` for the client to take it, then lets go, and the session
/// is released; it was not cut as a slow consumer (the queue never
/// overflowed).
#[tokio::test]
async fn a_client_that_stopped_reading_is_released_close_grace_after_it_closes() {
    let gateway = TestGateway::start(
        "close_grace_ms = 300\nmax_queued_bytes = 67108864\n\
         publish_rate = { per_second = 100000, burst = 100000 }",
    )
    .await;
    let mut stuck = Client::connect_with_receive_buffer(gateway.addr, 4096).await;
    stuck.subscribe("flood").await;
    let mut publisher = gateway.client().await;
    // 16 MiB: more than the server's send buffer and the client's 4 KiB hold.
    let filler = "x".repeat(16 * 1024);
    for n in 0..1024 {
        publisher
            .publish("flood", json!({"n": n, "pad": filler}))
            .await;
    }
    stuck
        .ws
        .send(Message::Close(None))
        .await
        .expect("the close goes out");
    let closed = tokio::time::Instant::now();
    gateway
        .wait_metric("ferrygate_disconnects_total{reason=\"client_closed\"}", 1.0)
        .await;
    let released = closed.elapsed();
    assert_eq!(
        gateway.metric("ferrygate_slow_consumers_total").await,
        0.0,
        "the queue never overflowed"
    );
    assert_eq!(
        gateway.metric("ferrygate_connections").await,
        1.0,
        "only the publisher remains"
    );
    // The close grace, with room for a loaded machine; a writer that waited
    // for the client forever would never get here.
    assert!(
        released < Duration::from_secs(5),
        "released after {released:?}"
    );
    let reply = publisher.request(json!({"op":"ping"})).await;
    assert_eq!(reply["ok"], true);
    drop(stuck);
    gateway.stop().await;
}

#[tokio::test]
async fn a_listen_only_subscriber_stays_connected_past_the_idle_timeout() {
    let gateway = TestGateway::start("ping_interval_ms = 100\nidle_timeout_ms = 300").await;
    let mut listener = gateway.client().await;
    listener.subscribe("feed").await;
    let mut publisher = gateway.client().await;
    // 1.2 s of pushes, four idle timeouts long; the listener sends nothing but
    // the pongs its WebSocket library answers to the server's pings.
    let publishing = async {
        for n in 0..24 {
            publisher.publish("feed", json!(n)).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let listening = async {
        for n in 0..24 {
            assert_eq!(listener.recv().await["data"], n);
        }
    };
    tokio::join!(publishing, listening);
    assert_eq!(
        gateway
            .metric("ferrygate_disconnects_total{reason=\"idle_timeout\"}")
            .await,
        0.0
    );
    assert_eq!(gateway.metric("ferrygate_connections").await, 2.0);
    gateway.stop().await;
}

#[tokio::test]
async fn oversize_and_slow_request_heads_are_refused() {
    let gateway =
        TestGateway::start("max_request_head_bytes = 8192\nrequest_head_timeout_ms = 300").await;
    let huge = "y".repeat(20_000);
    let (status, _) = http(gateway.addr, "GET", "/healthz", &[("X-Huge", &huge)], "").await;
    assert_eq!(status, 431);

    let mut stream = tokio::net::TcpStream::connect(gateway.addr)
        .await
        .expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("partial head");
    let mut rest = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "a head that never finishes is cut off");
    let text = String::from_utf8_lossy(&rest);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
    let (status, _) = http(gateway.addr, "GET", "/healthz", &[], "").await;
    assert_eq!(status, 200, "the gateway still serves");
    gateway.stop().await;
}

#[tokio::test]
async fn a_trickled_api_body_is_cut_with_408() {
    let gateway = TestGateway::start("request_head_timeout_ms = 300").await;
    let mut stream = tokio::net::TcpStream::connect(gateway.addr)
        .await
        .expect("connect");
    // The head arrives at once; the body never finishes.
    let head = format!(
        "POST /v1/publish HTTP/1.1\r\nHost: x\r\nX-API-Key: {API_KEY}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"chan"
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    let mut answer = vec![0u8; 4096];
    let read = tokio::time::timeout(PATIENCE, stream.read(&mut answer)).await;
    let n = read
        .expect("a body that never finishes is answered")
        .expect("read");
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");
    assert_eq!(
        gateway
            .metric("ferrygate_request_body_timeouts_total")
            .await,
        1.0
    );
    let (status, _) = http(gateway.addr, "GET", "/healthz", &[], "").await;
    assert_eq!(status, 200, "the gateway still serves");
    gateway.stop().await;
}

#[tokio::test]
async fn subscriptions_per_connection_are_capped() {
    let gateway = TestGateway::start("max_subscriptions_per_connection = 2").await;
    let mut client = gateway.client().await;
    client.subscribe("a").await;
    client.subscribe("b").await;
    client.subscribe("a").await;
    let reply = client
        .request(json!({"op":"subscribe","channel":"c"}))
        .await;
    assert_eq!(reply["error"]["code"], "forbidden", "{reply}");
    let reply = client
        .request(json!({"op":"unsubscribe","channel":"b"}))
        .await;
    assert_eq!(reply["ok"], true);
    client.subscribe("c").await;
    assert_eq!(gateway.metric("ferrygate_subscriptions").await, 2.0);
    gateway.stop().await;
}
