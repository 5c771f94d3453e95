//! The bound on HTTP connections that are not sessions
//! (`max_pending_connections`): beyond it a connection gets 503 at accept;
//! the gateway recovers when pending connections leave or time out, and
//! sessions (upgraded) do not count.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{PATIENCE, TestGateway, http};

/// Retries `GET /healthz` until it answers 200 (the gateway recovered).
async fn until_healthy(gateway: &TestGateway) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (status, _) = http(gateway.addr, "GET", "/healthz", &[], "").await;
        if status == 200 {
            return;
        }
        assert_eq!(status, 503, "only the pending refusal is expected");
        assert!(tokio::time::Instant::now() < deadline, "never recovered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn beyond_the_pending_bound_a_connection_gets_503_and_the_gateway_recovers() {
    let gateway =
        TestGateway::start("max_pending_connections = 2\nrequest_head_timeout_ms = 60000").await;
    // Two connections that never send a request hold both places.
    let silent_a = TcpStream::connect(gateway.addr).await.expect("connect");
    let _silent_b = TcpStream::connect(gateway.addr).await.expect("connect");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let body = loop {
        let (status, body) = http(gateway.addr, "GET", "/healthz", &[], "").await;
        if status == 503 {
            break body;
        }
        // The silent ones may not have been accepted yet.
        assert!(tokio::time::Instant::now() < deadline, "never refused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let json: serde_json::Value = serde_json::from_str(&body).expect("a JSON error body");
    assert_eq!(json["error"]["code"], "unavailable", "{body}");
    // One silent client leaves: its place is free again.
    drop(silent_a);
    until_healthy(&gateway).await;
    // /metrics itself needs a place: there is one (the 503 was counted).
    let refused = gateway
        .metric("ferrygate_upgrades_refused_total{reason=\"pending\"}")
        .await;
    assert!(refused >= 1.0, "refusals counted: {refused}");
    gateway.stop().await;
}

#[tokio::test]
async fn upgraded_sessions_do_not_count_as_pending() {
    let gateway = TestGateway::start("max_pending_connections = 2").await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(gateway.client().await);
    }
    // Four sessions open, and HTTP still has its two places.
    until_healthy(&gateway).await;
    let (status, _) = http(gateway.addr, "GET", "/healthz", &[], "").await;
    assert_eq!(status, 200);
    drop(clients);
    gateway.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_head_timeout() {
    let gateway =
        TestGateway::start("max_pending_connections = 1\nrequest_head_timeout_ms = 300").await;
    let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("request");
    let mut buffer = vec![0u8; 4096];
    let n = tokio::time::timeout(PATIENCE, stream.read(&mut buffer))
        .await
        .expect("a response in time")
        .expect("read");
    assert!(
        buffer[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buffer[..n])
    );
    // Kept alive, then idle: the server closes it (it held the one place).
    let started = tokio::time::Instant::now();
    let rest = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut Vec::new())).await;
    assert!(
        rest.is_ok(),
        "an idle keep-alive connection is never closed"
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
    // Its place is free: a new connection is served.
    until_healthy(&gateway).await;
    gateway.stop().await;
}

/// Reads what the gateway sends on a fresh connection that sends nothing.
async fn answer_to_a_silent_connection(gateway: &TestGateway) -> String {
    let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
        .await
        .expect("closed in time")
        .expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

/// As `serve` runs: every connection is handed to one of the worker
/// runtimes. A refused socket reached its worker before the reactor had
/// seen it writable, and the 503 was dropped: clients got a bare close.
#[tokio::test]
async fn on_worker_runtimes_every_refused_connection_reads_the_503() {
    let workers = ferrygate::workers::Workers::start(2).expect("worker runtimes");
    let gateway = TestGateway::start_on(
        "max_pending_connections = 2\nrequest_head_timeout_ms = 60000",
        workers,
    )
    .await;
    // The accept loop takes connections in order: these two hold both places
    // (no request before them: its connection might still hold a place).
    let silent_a = TcpStream::connect(gateway.addr).await.expect("connect");
    let silent_b = TcpStream::connect(gateway.addr).await.expect("connect");
    for attempt in 0..10 {
        let answer = answer_to_a_silent_connection(&gateway).await;
        assert!(
            answer.starts_with("HTTP/1.1 503 ") && answer.contains("retry-after: 1"),
            "refusal {attempt}: {answer:?}"
        );
        let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        let json: serde_json::Value = serde_json::from_str(body).expect("a JSON error body");
        assert_eq!(json["error"]["code"], "unavailable", "{body}");
    }
    drop((silent_a, silent_b));
    until_healthy(&gateway).await;
    let refused = gateway
        .metric("ferrygate_upgrades_refused_total{reason=\"pending\"}")
        .await;
    assert!(refused >= 10.0, "refusals counted: {refused}");
    gateway.stop().await;
}
