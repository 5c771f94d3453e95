//! Bad input: each gets its documented answer, the connection stays where the
//! spec says so, and a counter in `/metrics` moves.

use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame as WsFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

use crate::support::{PATIENCE, TestGateway};

async fn reply_to(client: &mut crate::support::Client, text: &str) -> Value {
    client.send_text(text).await;
    client.recv().await
}

#[tokio::test]
async fn malformed_requests_get_error_replies_and_the_connection_stays() {
    let gateway = TestGateway::start("").await;
    let mut client = gateway.client().await;
    let cases: [(&str, Value, &str); 11] = [
        ("not json at all", Value::Null, "bad_request"),
        ("[\"subscribe\", 1, \"c\"]", Value::Null, "bad_request"),
        (
            r#"{"op":"subscribe","channel":"c"}"#,
            Value::Null,
            "bad_request",
        ),
        (r#"{"op":"fly","id":1}"#, json!(1), "bad_request"),
        (r#"{"id":2}"#, json!(2), "bad_request"),
        (r#"{"op":"subscribe","id":3}"#, json!(3), "bad_request"),
        (
            r#"{"op":"subscribe","id":4,"channel":42}"#,
            json!(4),
            "bad_request",
        ),
        (
            r#"{"op":"subscribe","id":5,"channel":""}"#,
            json!(5),
            "bad_request",
        ),
        (
            r#"{"op":"subscribe","id":6,"channel":"chat.*"}"#,
            json!(6),
            "bad_request",
        ),
        (
            r#"{"op":"publish","id":"seven","channel":"c"}"#,
            json!("seven"),
            "bad_request",
        ),
        (
            r#"{"op":"unsubscribe","id":8,"channel":"c"}"#,
            json!(8),
            "not_found",
        ),
    ];
    for (text, id, code) in &cases {
        let reply = reply_to(&mut client, text).await;
        assert_eq!(&reply["id"], id, "{text} -> {reply}");
        assert_eq!(reply["error"]["code"], *code, "{text} -> {reply}");
        assert!(
            reply["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{reply}"
        );
    }
    client
        .ws
        .send(Message::binary(vec![1u8, 2, 3]))
        .await
        .expect("send binary");
    let reply = client.recv().await;
    assert_eq!(reply["error"]["code"], "bad_request", "{reply}");

    let reply = client.request(json!({"op":"ping"})).await;
    assert_eq!(reply["ok"], true, "the connection survived: {reply}");
    assert_eq!(
        gateway
            .metric("ferrygate_request_errors_total{code=\"bad_request\"}")
            .await,
        11.0
    );
    assert_eq!(
        gateway
            .metric("ferrygate_request_errors_total{code=\"not_found\"}")
            .await,
        1.0
    );
    gateway.stop().await;
}

#[tokio::test]
async fn an_oversize_message_closes_with_1009() {
    let gateway = TestGateway::start("max_frame_bytes = 1024").await;
    let mut bystander = gateway.client().await;
    bystander.subscribe("c").await;
    let mut client = gateway.client().await;
    let big = format!(
        r#"{{"op":"publish","id":1,"channel":"c","data":"{}"}}"#,
        "x".repeat(2000)
    );
    client.send_text(big).await;
    assert_eq!(client.close_code().await, 1009);
    gateway
        .wait_metric("ferrygate_disconnects_total{reason=\"too_large\"}", 1.0)
        .await;
    let reply = bystander.request(json!({"op":"ping"})).await;
    assert_eq!(reply["ok"], true, "others never notice");
    gateway.stop().await;
}

#[tokio::test]
async fn small_fragments_adding_up_past_the_limit_close_with_1009() {
    let gateway = TestGateway::start("max_frame_bytes = 1024").await;
    let mut client = gateway.client().await;
    // Three 600-byte fragments of one text message: each frame is under the
    // limit, the message is not.
    let fragments = [
        WsFrame::message(vec![b' '; 600], OpCode::Data(Data::Text), false),
        WsFrame::message(vec![b' '; 600], OpCode::Data(Data::Continue), false),
        WsFrame::message(vec![b' '; 600], OpCode::Data(Data::Continue), true),
    ];
    for fragment in fragments {
        if client.ws.send(Message::Frame(fragment)).await.is_err() {
            break;
        }
    }
    assert_eq!(client.close_code().await, 1009);
    gateway.stop().await;
}

#[tokio::test]
async fn invalid_utf8_closes_with_1007() {
    let gateway = TestGateway::start("").await;
    let mut client = gateway.client().await;
    let frame = WsFrame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true);
    client
        .ws
        .send(Message::Frame(frame))
        .await
        .expect("send raw frame");
    assert_eq!(client.close_code().await, 1007);
    gateway
        .wait_metric("ferrygate_disconnects_total{reason=\"invalid_utf8\"}", 1.0)
        .await;
    gateway.stop().await;
}

#[tokio::test]
async fn an_unmasked_client_frame_closes_with_1002() {
    let gateway = TestGateway::start("").await;
    let mut stream = tokio::net::TcpStream::connect(gateway.addr)
        .await
        .expect("connect");
    let handshake = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        gateway.addr
    );
    stream
        .write_all(handshake.as_bytes())
        .await
        .expect("handshake");
    // An unmasked text frame "hi": clients must mask (RFC 6455 5.1).
    stream
        .write_all(&[0x81, 0x02, b'h', b'i'])
        .await
        .expect("frame");
    let mut seen = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    });
    read.await.expect("server closes in time");
    // The close frame (0x88, len, code 1002 = 0x03 0xEA) follows the 101 and welcome.
    let close_at = seen
        .windows(2)
        .position(|w| w[0] == 0x88)
        .expect("a close frame");
    assert_eq!(
        &seen[close_at + 2..close_at + 4],
        &[0x03, 0xEA],
        "close code 1002"
    );
    gateway
        .wait_metric(
            "ferrygate_disconnects_total{reason=\"protocol_violation\"}",
            1.0,
        )
        .await;
    gateway.stop().await;
}

#[tokio::test]
async fn a_request_flood_is_rate_limited_and_the_connection_stays() {
    let gateway = TestGateway::start(
        "request_rate = { per_second = 5, burst = 10 }\npublish_rate = { per_second = 1, burst = 2 }",
    )
    .await;
    let mut client = gateway.client().await;
    for id in 0..30 {
        client
            .send_text(json!({"op":"ping","id":id}).to_string())
            .await;
    }
    let mut limited = 0;
    for _ in 0..30 {
        let reply = client.recv().await;
        if reply["error"]["code"] == "rate_limited" {
            limited += 1;
        }
    }
    assert!(
        limited >= 18,
        "most of a 30-ping burst over a burst of 10 is refused, got {limited}"
    );
    assert!(
        gateway
            .metric("ferrygate_request_errors_total{code=\"rate_limited\"}")
            .await
            >= 18.0
    );

    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let mut answers = Vec::new();
    for _ in 0..3 {
        let reply = client
            .request(json!({"op":"publish","channel":"c","data":1}))
            .await;
        answers.push(reply["error"]["code"].as_str().unwrap_or("ok").to_owned());
    }
    assert_eq!(
        answers,
        ["ok", "ok", "rate_limited"],
        "publish budget is its own"
    );
    let reply = client.request(json!({"op":"ping"})).await;
    assert_eq!(reply["ok"], true);
    gateway.stop().await;
}
