//! Tests for the raw client against a scripted server on a local socket: the
//! upgrade, bytes that arrive with the `101`, masked pongs and sends, close,
//! and the hand-over to tungstenite.

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

use super::*;

/// A server frame (unmasked, short).
fn frame(op: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x80 | op, payload.len() as u8];
    f.extend_from_slice(payload);
    f
}

/// Reads the request head; returns it.
async fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.expect("request");
        head.push(b[0]);
    }
    String::from_utf8(head).expect("UTF-8 head")
}

/// The `101` answer to `head`.
fn accept(head: &str) -> String {
    let key = head
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .expect("key");
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    )
}

/// Reads one client frame: checks it is masked, returns opcode and payload.
async fn client_frame(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).await.expect("frame head");
    assert_eq!(h[1] & 0x80, 0x80, "client frames are masked");
    let len = usize::from(h[1] & 0x7F);
    assert!(len < 126, "short frames only in these tests");
    let mut mask = [0u8; 4];
    s.read_exact(&mut mask).await.expect("mask");
    let mut p = vec![0u8; len];
    s.read_exact(&mut p).await.expect("payload");
    for (i, b) in p.iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
    (h[0] & 0x0F, p)
}

async fn listener() -> (TcpListener, Endpoint) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let ep = Endpoint {
        url: format!("ws://{addr}/ws?token=t"),
        addr,
    };
    (l, ep)
}

fn deadline() -> Instant {
    Instant::now() + std::time::Duration::from_secs(5)
}

#[tokio::test]
async fn upgrade_keeps_early_frames_and_answers_pings_masked() {
    let (l, ep) = listener().await;
    let server = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.expect("accept");
        let head = read_head(&mut s).await;
        assert!(head.starts_with("GET /ws?token=t HTTP/1.1\r\n"), "{head}");
        assert!(head.contains(&format!("Host: {}\r\n", s.local_addr().expect("addr"))));
        // The welcome and a ping come in the same write as the 101.
        let mut out = accept(&head).into_bytes();
        out.extend(frame(wsframe::OP_TEXT, b"welcome"));
        out.extend(frame(0x9, b"hi"));
        out.extend(frame(wsframe::OP_TEXT, b"next"));
        s.write_all(&out).await.expect("write");
        assert_eq!(client_frame(&mut s).await, (0xA, b"hi".to_vec()));
        assert_eq!(client_frame(&mut s).await, (0x1, b"subscribe".to_vec()));
        s.write_all(&frame(0x8, b"\x03\xe8bye"))
            .await
            .expect("close");
    });
    let mut c = WsConn::connect(&ep, None, 4096).await.expect("connect");
    assert_eq!(c.next_data(deadline()).await.expect("welcome"), b"welcome");
    assert_eq!(c.next_data(deadline()).await.expect("next"), b"next");
    c.send(wsframe::OP_TEXT, b"subscribe").await.expect("send");
    let e = c.next_data(deadline()).await.expect_err("closed");
    assert_eq!(e.to_string(), "server closed 1000 bye");
    server.await.expect("server");
}

#[tokio::test]
async fn refuses_a_bad_upgrade() {
    for answer in [
        "HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n".to_owned(),
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: nope\r\n\r\n"
            .to_owned(),
    ] {
        let (l, ep) = listener().await;
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.expect("accept");
            read_head(&mut s).await;
            s.write_all(answer.as_bytes()).await.expect("write");
            s
        });
        let e = WsConn::connect(&ep, None, 4096).await.expect_err("refused");
        assert!(format!("{e:#}").contains("WebSocket upgrade"), "{e:#}");
        drop(server.await);
    }
}

#[tokio::test]
async fn hands_unparsed_bytes_to_tungstenite() {
    let (l, ep) = listener().await;
    let server = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.expect("accept");
        let head = read_head(&mut s).await;
        let mut out = accept(&head).into_bytes();
        out.extend(frame(wsframe::OP_TEXT, b"welcome"));
        out.extend(frame(wsframe::OP_TEXT, b"queued"));
        s.write_all(&out).await.expect("write");
        assert_eq!(
            client_frame(&mut s).await,
            (0x2, b"from tungstenite".to_vec())
        );
    });
    let mut c = WsConn::connect(&ep, None, 4096).await.expect("connect");
    assert_eq!(c.next_data(deadline()).await.expect("welcome"), b"welcome");
    let mut ws = c
        .into_tungstenite(WebSocketConfig::default())
        .await
        .expect("hand over");
    match ws.next().await {
        Some(Ok(Message::Text(t))) => assert_eq!(t.as_str(), "queued"),
        other => panic!("expected the queued frame, got {other:?}"),
    }
    futures_util::SinkExt::send(&mut ws, Message::binary(&b"from tungstenite"[..]))
        .await
        .expect("send");
    server.await.expect("server");
}
