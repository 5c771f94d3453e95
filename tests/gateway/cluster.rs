//! Harness for the cross-instance tests: a real `nats-server` or
//! `redis-server` on a free loopback port, several `ferrygate` processes on
//! it, and a plain broker client acting as a backend service. Every process
//! is killed when its handle drops.

pub mod acked;
pub mod backend;
pub mod faults;
pub mod history;
pub mod nats_cluster;
pub mod presence;
pub mod presence_lost;
pub mod redis_cluster;
pub mod scenarios;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::drain::TempDir;
use crate::support::binary::spawn_and_wait_for_address;
use crate::support::{API_KEY, Client, PATIENCE, http, metric_value};

/// Which broker a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Nats,
    Redis,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Nats => "nats",
            Self::Redis => "redis",
        }
    }
}

/// A broker server process on 127.0.0.1.
pub struct BrokerServer {
    pub kind: Kind,
    pub port: u16,
    /// Extra command-line arguments (auth, TLS).
    pub args: Vec<String>,
    /// Scheme of `url()`: `nats`, `tls` or `redis`.
    pub scheme: &'static str,
    child: Option<Child>,
    pub dir: TempDir,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl BrokerServer {
    pub fn start(kind: Kind) -> Self {
        let mut server = Self::reserve(kind);
        server.restart();
        server
    }

    /// A `nats-server` with JetStream, storing in the server's own folder
    /// (so a restart keeps what it stored).
    pub fn start_jetstream() -> Self {
        let mut server = Self::reserve(Kind::Nats);
        let store = server.dir.0.display().to_string();
        server.args = vec!["-js".to_owned(), "-sd".to_owned(), store];
        server.restart();
        server
    }

    /// Picks a free port but starts nothing there yet (see [`Self::restart`]).
    pub fn reserve(kind: Kind) -> Self {
        Self {
            kind,
            port: free_port(),
            args: Vec::new(),
            scheme: kind.name(),
            child: None,
            dir: TempDir::new(kind.name()),
        }
    }

    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port)
    }

    /// Kills the server (SIGKILL: no goodbye to its clients).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server (again) on the same port and waits until it accepts.
    pub fn restart(&mut self) {
        self.kill();
        let port = self.port.to_string();
        let mut command = match self.kind {
            Kind::Nats => {
                let mut c = Command::new("nats-server");
                c.args(["-a", "127.0.0.1", "-p", &port]);
                c
            }
            Kind::Redis => {
                let mut c = Command::new("redis-server");
                c.args(["--bind", "127.0.0.1", "--port", &port, "--save", ""])
                    .args(["--appendonly", "no", "--dir"])
                    .arg(&self.dir.0);
                c
            }
        };
        let child = command
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} (install it, or run `cargo xtask test`): {e}",
                    self.kind.name()
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("{} exited at start: {status}", self.kind.name());
            }
            assert!(
                Instant::now() < deadline,
                "{} never listened",
                self.kind.name()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for BrokerServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One `ferrygate serve` process on the broker.
pub struct Instance {
    pub addr: SocketAddr,
    child: Child,
    _dir: TempDir,
}

impl Instance {
    /// Starts the binary with `[broker]` pointing at `server`, plus `extra_broker` keys.
    pub fn start(server: &BrokerServer, extra_broker: &str) -> Self {
        Self::start_with(&Self::broker_table(server, extra_broker))
    }

    /// Starts the binary with `broker` as the body of its `[broker]` table.
    pub fn start_with(broker: &str) -> Self {
        let (dir, command) = Self::command_with(broker);
        let (child, addr) = spawn_and_wait_for_address(command);
        Self {
            addr,
            child,
            _dir: dir,
        }
    }

    /// The `ferrygate serve` command for `server`, with its manifest's folder.
    pub fn command(server: &BrokerServer, extra_broker: &str) -> (TempDir, Command) {
        Self::command_with(&Self::broker_table(server, extra_broker))
    }

    fn broker_table(server: &BrokerServer, extra_broker: &str) -> String {
        format!(
            "kind = \"{}\"\nurls = [\"{}\"]\n{extra_broker}",
            server.kind.name(),
            server.url()
        )
    }

    /// The `ferrygate serve` command with `broker` as the body of its
    /// `[broker]` table, with its manifest's folder.
    pub fn command_with(broker: &str) -> (TempDir, Command) {
        let dir = TempDir::new("instance");
        let manifest = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\napi_key = \"{API_KEY}\"\nallow_anonymous = true\ndrain_ms = 100\nclose_grace_ms = 300\n\n\
             [broker]\n{broker}\n"
        );
        let config = dir.write("ferrygate.toml", &manifest);
        let mut command = Command::new(env!("CARGO_BIN_EXE_ferrygate"));
        command
            .args(["serve", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info");
        (dir, command)
    }

    pub async fn client(&self) -> Client {
        Client::connect(&format!("ws://{}/ws", self.addr)).await
    }

    pub async fn status(&self, path: &str) -> u16 {
        http(self.addr, "GET", path, &[], "").await.0
    }

    /// Waits until `/readyz` answers `status`.
    pub async fn wait_ready(&self, status: u16) {
        let deadline = Instant::now() + PATIENCE * 2;
        while self.status("/readyz").await != status {
            assert!(Instant::now() < deadline, "/readyz never answered {status}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn metric(&self, series: &str) -> f64 {
        let (_, text) = http(self.addr, "GET", "/metrics", &[], "").await;
        metric_value(&text, series)
    }

    /// Waits until `series` reaches `at_least`.
    pub async fn wait_metric(&self, series: &str, at_least: f64) {
        self.wait_metric_until(series, |v| v >= at_least).await;
    }

    /// Waits until `series` equals `value`.
    pub async fn wait_metric_eq(&self, series: &str, value: f64) {
        self.wait_metric_until(series, |v| v == value).await;
    }

    async fn wait_metric_until(&self, series: &str, done: impl Fn(f64) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let value = self.metric(series).await;
            if done(value) {
                return;
            }
            assert!(Instant::now() < deadline, "{series} stuck at {value}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// POST with the API key; returns status and JSON body.
    pub async fn api(&self, path: &str, body: &Value) -> (u16, Value) {
        crate::support::api(self.addr, path, body).await
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `n` frames.
pub async fn frames(client: &mut Client, n: usize) -> Vec<Value> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(client.recv().await);
    }
    out
}

/// Asserts that no text frame arrives within `quiet`.
pub async fn assert_silent(client: &mut Client, quiet: Duration) {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let deadline = tokio::time::Instant::now() + quiet;
    loop {
        match tokio::time::timeout_at(deadline, client.ws.next()).await {
            Err(_) => return,
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(other) => panic!("expected silence, got {other:?}"),
        }
    }
}
