//! Test harness: start a gateway in process, connect clients, read metrics.

pub mod binary;
pub mod canary;
pub mod nats_acks;
pub mod plugins;
pub mod relay;
pub mod sse;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use ferrygate::config::Config;
use ferrygate::gateway::Gateway;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any single expected event may take before a test fails.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// The `/v1/` key of every test gateway; a secret, so it holds the canary.
pub const API_KEY: &str = "test-api-key-c4nary-9f2e";

/// A gateway running in this process on 127.0.0.1:0.
pub struct TestGateway {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestGateway {
    /// Starts a gateway with `extra_server` appended to `[server]`. The API key,
    /// a short drain and a short close grace are preset (so that `stop` is
    /// quick) unless `extra_server` sets them itself; so is
    /// `allow_anonymous = true` unless it declares an auth plugin or says
    /// `allow_anonymous` itself.
    pub async fn start(extra_server: &str) -> Self {
        Self::start_on(extra_server, ferrygate::workers::Workers::current()).await
    }

    /// [`TestGateway::start`], serving connections on `workers` (as
    /// `serve` does with `Workers::start`) instead of the test's runtime.
    pub async fn start_on(extra_server: &str, workers: ferrygate::workers::Workers) -> Self {
        canary::check_logs();
        let mut text = format!("[server]\nlisten = \"127.0.0.1:0\"\napi_key = \"{API_KEY}\"\n");
        if !extra_server.contains("kind = \"auth\"") && !extra_server.contains("allow_anonymous") {
            text.push_str("allow_anonymous = true\n");
        }
        for (key, default) in [("drain_ms", 100), ("close_grace_ms", 300)] {
            if !extra_server.contains(key) {
                text.push_str(&format!("{key} = {default}\n"));
            }
        }
        text.push_str(extra_server);
        if extra_server.contains("[plugins.") && !extra_server.contains("[wasm]") {
            // One compile cache for every test process, inside the target dir.
            let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasm-cache");
            text.push_str(&format!(
                "\n[wasm]\ncache_dir = {:?}\n",
                cache.display().to_string()
            ));
        }
        let config =
            Config::parse(&text, &HashMap::<String, String>::new()).expect("test config is valid");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind port 0");
        let addr = listener.local_addr().expect("local addr");
        let gateway = Gateway::start(config).await.expect("gateway starts");
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(ferrygate::server::run(listener, gateway, workers, async {
            let _ = rx.await;
        }));
        Self {
            addr,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// A connected client that has read its welcome.
    pub async fn client(&self) -> Client {
        Client::connect(&self.ws_url()).await
    }

    /// One HTTP/1.1 request; returns status and body.
    pub async fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, String) {
        http(self.addr, method, path, headers, body).await
    }

    /// POST with the right API key.
    pub async fn api(&self, path: &str, body: &Value) -> (u16, Value) {
        api(self.addr, path, body).await
    }

    /// The value of a metric line (exact series, e.g. `ferrygate_slow_consumers_total`), 0 when absent.
    pub async fn metric(&self, series: &str) -> f64 {
        let (_, text) = self.http("GET", "/metrics", &[], "").await;
        metric_value(&text, series)
    }

    /// Waits until `series` reaches at least `at_least`.
    pub async fn wait_metric(&self, series: &str, at_least: f64) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let value = self.metric(series).await;
            if value >= at_least {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{series} stayed at {value}, wanted {at_least}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Triggers the drain and waits for `run` to return.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(PATIENCE * 3, task)
                .await
                .expect("server stops")
                .expect("server task");
        }
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

pub fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .find(|(name, _)| *name == series)
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0.0)
}

/// POST `body` to `path` on `addr` with the right API key; status and JSON body.
pub async fn api(addr: SocketAddr, path: &str, body: &Value) -> (u16, Value) {
    let auth = format!("Bearer {API_KEY}");
    let (status, text) = http(
        addr,
        "POST",
        path,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        &body.to_string(),
    )
    .await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A raw HTTP/1.1 exchange with `Connection: close`.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write request");
    let mut response = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut response))
        .await
        .expect("response in time")
        .expect("read response");
    let response = String::from_utf8_lossy(&response).into_owned();
    canary::assert_clean(&response, &format!("the response to {method} {path}"));
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, decode_chunked(&body))
}

fn decode_chunked(body: &str) -> String {
    // Good enough for small test bodies: hyper chunks only bodies of unknown length.
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            return body.to_owned();
        };
        if size == 0 || tail.len() < size {
            break;
        }
        out.push_str(&tail[..size]);
        rest = tail[size..].trim_start_matches("\r\n");
    }
    if out.is_empty() { body.to_owned() } else { out }
}

/// A WebSocket client speaking protocol v1.
pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub conn: String,
    /// The `welcome` frame.
    pub welcome: Value,
    next_id: u64,
    /// Pushes that arrived while a reply was awaited, handed out by `recv` first.
    pending: std::collections::VecDeque<Value>,
}

impl Client {
    pub async fn connect(url: &str) -> Self {
        Self::connect_request(url).await
    }

    /// Connects to `addr` over a socket whose receive buffer is fixed at
    /// `bytes` (no autotuning), so that a client that stops reading fills the
    /// server's side of the socket after a few MiB rather than tens.
    pub async fn connect_with_receive_buffer(addr: SocketAddr, bytes: u32) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(bytes).expect("SO_RCVBUF");
        let stream = socket.connect(addr).await.expect("connect");
        let (ws, _) = tokio_tungstenite::client_async(
            format!("ws://{addr}/ws"),
            MaybeTlsStream::Plain(stream),
        )
        .await
        .expect("websocket upgrade");
        Self::welcomed(ws).await
    }

    /// Connects with a request built by the caller (extra headers, subprotocols).
    pub async fn connect_request(
        request: impl tokio_tungstenite::tungstenite::client::IntoClientRequest + Unpin,
    ) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("websocket connect");
        Self::welcomed(ws).await
    }

    /// Wraps an upgraded stream once its `welcome` is read.
    async fn welcomed(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Self {
        let mut client = Self {
            ws,
            conn: String::new(),
            welcome: Value::Null,
            next_id: 1,
            pending: std::collections::VecDeque::new(),
        };
        let welcome = client.recv().await;
        assert_eq!(welcome["op"], "welcome", "{welcome}");
        client.conn = welcome["conn"].as_str().expect("conn id").to_owned();
        client.welcome = welcome;
        client
    }

    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.ws
            .send(Message::text(text.into()))
            .await
            .expect("send");
    }

    /// Sends `request` with a fresh id and returns the reply with that id.
    pub async fn request(&mut self, mut request: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        request["id"] = json!(id);
        self.send_text(request.to_string()).await;
        loop {
            let frame = self.recv_frame().await;
            if frame["id"] == json!(id) {
                return frame;
            }
            assert!(
                frame.get("channel").is_some() || frame["op"] == "message",
                "unexpected frame {frame} while waiting for reply {id}"
            );
            self.pending.push_back(frame);
        }
    }

    pub async fn subscribe(&mut self, channel: &str) {
        let reply = self
            .request(json!({"op":"subscribe","channel":channel}))
            .await;
        assert_eq!(reply["ok"], true, "{reply}");
    }

    pub async fn publish(&mut self, channel: &str, data: Value) {
        let reply = self
            .request(json!({"op":"publish","channel":channel,"data":data}))
            .await;
        assert_eq!(reply["ok"], true, "{reply}");
    }

    /// The next frame as JSON, counting pushes set aside by `request`.
    pub async fn recv(&mut self) -> Value {
        match self.pending.pop_front() {
            Some(frame) => frame,
            None => self.recv_frame().await,
        }
    }

    async fn recv_frame(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("a frame in time")
                .expect("stream open")
                .expect("valid frame");
            match message {
                Message::Text(text) => {
                    canary::assert_clean(text.as_str(), "a WebSocket frame");
                    return serde_json::from_str(text.as_str()).expect("server sends JSON");
                }
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// Reads until the server's close frame; returns its code.
    pub async fn close_code(&mut self) -> u16 {
        loop {
            match tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("close in time")
            {
                Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
                Some(Ok(Message::Close(None))) => return u16::from(CloseCode::Status),
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("connection failed before a close frame: {e}"),
                None => panic!("connection ended without a close frame"),
            }
        }
    }
}
