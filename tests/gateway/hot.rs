//! The harness of the hot-reload tests: a `ferrygate serve` process whose
//! manifest and plugin files live in a temp dir the test edits, and helpers
//! to swap files, read `GET /v1/plugins` and `/metrics`, and call
//! `POST /v1/reload`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::drain::TempDir;
use crate::support::binary::spawn_and_wait_for_address;
use crate::support::plugins::plugin;
use crate::support::{API_KEY, PATIENCE, http};

/// The manifest's `[server]` and `[wasm]`: the same text in every version of
/// the manifest a test writes, so no reload reports a restart-only change.
pub fn head() -> String {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasm-cache");
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\napi_key = \"{API_KEY}\"\nallow_anonymous = true\ndrain_ms = 100\nclose_grace_ms = 300\n\
         publish_rate = {{ per_second = 100000, burst = 100000 }}\nrequest_rate = {{ per_second = 100000, burst = 100000 }}\n\n\
         [wasm]\ncache_dir = {:?}\n",
        cache.display().to_string()
    )
}

/// The stamp transform on `feed.>`, from `stamp.wasm` next to the manifest.
/// Its time limit is raised from the default 10 ms: these tests share two
/// cores with other test processes, and a call that waits that long for a
/// core would fail as a deadline, which is not what they are about.
pub const STAMPED: &str = "\n[plugins.stamp]\nkind = \"transform\"\npath = \"stamp.wasm\"\nlimits = { time_ms = 2000 }\n\n[[routes]]\nchannels = \"feed.>\"\ninbound = [\"stamp\"]\n";

/// A `ferrygate serve` process whose manifest and plugin files live in a
/// temp dir the test edits.
pub struct Hot {
    child: Child,
    pub addr: SocketAddr,
    pub dir: TempDir,
}

impl Hot {
    /// Starts with `stamp.wasm` = `stamp_v1` and the manifest `STAMPED`.
    pub fn start(tag: &str) -> Self {
        let dir = TempDir::new(tag);
        copy_over(&plugin("stamp_v1"), &dir.0.join("stamp.wasm"));
        let manifest = dir.write("ferrygate.toml", &format!("{}{STAMPED}", head()));
        Self::serve(dir, &manifest, &[])
    }

    /// Starts `ferrygate serve --config manifest --listen 127.0.0.1:0` with
    /// the variables `env` set; `dir` holds its files.
    pub fn serve(dir: TempDir, manifest: &Path, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ferrygate"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(manifest)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied());
        let (child, addr) = spawn_and_wait_for_address(command);
        Self { child, addr, dir }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.0.join(name)
    }

    /// Writes the manifest as `head()` plus `body`, the way editors save:
    /// a temp file renamed over the old one.
    pub fn write_manifest(&self, body: &str) {
        let temp = self.file(".ferrygate.toml.tmp");
        std::fs::write(&temp, format!("{}{body}", head())).expect("write manifest");
        std::fs::rename(&temp, self.file("ferrygate.toml")).expect("rename manifest");
    }

    /// Puts `bytes` at `stamp.wasm` by writing a temp file and renaming it.
    pub fn replace_stamp(&self, bytes: &[u8]) {
        let temp = self.file(".stamp.wasm.tmp");
        std::fs::write(&temp, bytes).expect("write plugin");
        std::fs::rename(&temp, self.file("stamp.wasm")).expect("rename plugin");
    }

    /// The whole `GET /v1/plugins` answer.
    pub async fn plugins(&self) -> Value {
        let auth = format!("Bearer {API_KEY}");
        let (status, body) = http(
            self.addr,
            "GET",
            "/v1/plugins",
            &[("Authorization", &auth)],
            "",
        )
        .await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("JSON")
    }

    /// The `GET /v1/plugins` entry of `name`.
    pub async fn plugin(&self, name: &str) -> Value {
        let report = self.plugins().await;
        report["plugins"]
            .as_array()
            .and_then(|list| list.iter().find(|p| p["name"] == name))
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// Polls `GET /v1/plugins` until the entry of `name` satisfies `done`.
    pub async fn wait_for(&self, name: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let entry = self.plugin(name).await;
            if done(&entry) {
                return entry;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last: {entry}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    pub async fn metrics(&self) -> String {
        http(self.addr, "GET", "/metrics", &[], "").await.1
    }

    /// `POST /v1/reload` with `body`: the status and the outcome.
    pub async fn reload(&self, body: &str) -> (u16, Value) {
        let auth = format!("Bearer {API_KEY}");
        let (status, text) = http(
            self.addr,
            "POST",
            "/v1/reload",
            &[("Authorization", &auth)],
            body,
        )
        .await;
        (
            status,
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON outcome: {text}")),
        )
    }
}

impl Drop for Hot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn copy_over(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
}

/// The version label the gateway gives a component: its content hash, short.
pub fn version_of(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

pub fn bytes_of(name: &str) -> Vec<u8> {
    std::fs::read(plugin(name)).expect("read plugin")
}
