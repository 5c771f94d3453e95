//! Graceful drain of the real binary on SIGTERM, and the second-signal escape.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::support::binary::spawn_and_wait_for_address;
use crate::support::{Client, PATIENCE, http};

/// A `ferrygate serve` child process on a port-0 listener.
pub struct Binary {
    child: Child,
    pub addr: SocketAddr,
    _dir: TempDir,
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "ferrygate-test-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Binary {
    pub fn start(tag: &str, server: &str) -> Self {
        let dir = TempDir::new(tag);
        let config = dir.write(
            "ferrygate.toml",
            &format!("[server]\nlisten = \"127.0.0.1:0\"\nallow_anonymous = true\n{server}\n"),
        );
        let mut command = Command::new(env!("CARGO_BIN_EXE_ferrygate"));
        command
            .args(["serve", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info");
        let (child, addr) = spawn_and_wait_for_address(command);
        Self {
            child,
            addr,
            _dir: dir,
        }
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait(&mut self, limit: Duration) -> i32 {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "ferrygate did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_every_client_with_1012_spread_out_then_exits_0() {
    let mut binary = Binary::start("drain", "drain_ms = 1000\nclose_grace_ms = 1000");
    let url = format!("ws://{}/ws", binary.addr);
    let mut clients = Vec::new();
    for _ in 0..5 {
        let mut client = Client::connect(&url).await;
        client.subscribe("room").await;
        clients.push(client);
    }
    assert_eq!(http(binary.addr, "GET", "/readyz", &[], "").await.0, 200);

    binary.signal("TERM");
    let deadline = Instant::now() + PATIENCE;
    while http(binary.addr, "GET", "/readyz", &[], "").await.0 != 503 {
        assert!(Instant::now() < deadline, "readiness never flipped");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let refused = tokio_tungstenite::connect_async(url.as_str()).await;
    assert!(refused.is_err(), "no new sessions while draining");
    assert_eq!(
        http(binary.addr, "GET", "/healthz", &[], "").await.0,
        200,
        "still alive"
    );

    let closes = clients.iter_mut().map(|client| async move {
        let code = client.close_code().await;
        (code, Instant::now())
    });
    let closes = futures_util::future::join_all(closes).await;
    assert!(closes.iter().all(|(code, _)| *code == 1012), "{closes:?}");
    let first = closes
        .iter()
        .map(|(_, at)| *at)
        .min()
        .expect("five clients");
    let last = closes
        .iter()
        .map(|(_, at)| *at)
        .max()
        .expect("five clients");
    assert!(
        last - first >= Duration::from_millis(500),
        "closes spread over the drain period, got {:?}",
        last - first
    );

    let code = tokio::task::spawn_blocking(move || binary.wait(PATIENCE))
        .await
        .expect("join");
    assert_eq!(code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once() {
    let mut binary = Binary::start("second-signal", "drain_ms = 30000");
    let _client = Client::connect(&format!("ws://{}/ws", binary.addr)).await;
    binary.signal("TERM");
    let deadline = Instant::now() + PATIENCE;
    while http(binary.addr, "GET", "/readyz", &[], "").await.0 != 503 {
        assert!(Instant::now() < deadline, "readiness never flipped");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    binary.signal("INT");
    let code = tokio::task::spawn_blocking(move || binary.wait(Duration::from_secs(5)))
        .await
        .expect("join");
    assert_eq!(code, 130);
}
