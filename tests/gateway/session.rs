//! Session lifecycle seen from the client: the close handshake, and frames
//! of every size through the session's read path.

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use serde_json::json;

use crate::support::{PATIENCE, TestGateway};

#[tokio::test]
async fn a_client_close_is_echoed_and_counted() {
    let gateway = TestGateway::start("").await;
    let mut client = gateway.client().await;
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    };
    client
        .ws
        .send(Message::Close(Some(frame)))
        .await
        .expect("send close");
    let echo = tokio::time::timeout(PATIENCE, client.ws.next())
        .await
        .expect("echo in time");
    match echo {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::Normal),
        other => panic!("expected the server's close echo, got {other:?}"),
    }
    gateway
        .wait_metric("ferrygate_disconnects_total{reason=\"client_closed\"}", 1.0)
        .await;
    assert_eq!(gateway.metric("ferrygate_connections").await, 0.0);
    gateway.stop().await;
}

/// The session reads with a small tungstenite buffer and stages socket reads
/// (host/src/session/socket.rs): frames below, at and far above that buffer,
/// alone or many in one TCP segment, all arrive whole and in order.
#[tokio::test]
async fn frames_of_every_size_arrive_through_the_small_read_buffer() {
    let gateway = TestGateway::start("").await;
    let mut subscriber = gateway.client().await;
    subscriber.subscribe("sizes").await;
    let mut publisher = gateway.client().await;
    // One at a time, each after the connection went quiet.
    for size in [5, 200, 300, 17_000, 60_000, 5] {
        publisher.publish("sizes", json!("x".repeat(size))).await;
        let push = subscriber.recv().await;
        assert_eq!(
            push["data"].as_str().map(str::len),
            Some(size),
            "size {size}"
        );
    }
    // Pipelined: 40 publishes of 1 KiB written at once, more than one staged
    // read holds, so part of them waits in the spill buffer.
    let count = 40;
    for n in 0..count {
        let request = json!({"op": "publish", "id": 1000 + n, "channel": "sizes",
            "data": {"n": n, "pad": "y".repeat(1024)}});
        publisher
            .ws
            .feed(Message::text(request.to_string()))
            .await
            .expect("feed");
    }
    publisher.ws.flush().await.expect("flush");
    for n in 0..count {
        let push = subscriber.recv().await;
        assert_eq!(push["data"]["n"], json!(n), "{push}");
    }
    gateway.stop().await;
}
