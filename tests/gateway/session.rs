//! Session lifecycle seen from the client: the close handshake.

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

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
