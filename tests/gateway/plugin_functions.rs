//! The function cache (`[wasm]` cache directory, `functions/`): a new version
//! of a JavaScript plugin reuses the compiled interpreter functions of the
//! previous one, even when the running version was loaded from the artifact
//! cache by a process that never compiled it, and serves as the new version.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::drain::TempDir;
use crate::hot::{Hot, copy_over, version_of};
use crate::support::plugins::plugin;
use crate::support::{API_KEY, Client, metric_value};

/// A debug build compiles a 12 MB component in about a minute on a busy
/// machine; this bounds the wait for the new version.
const COMPILE_PATIENCE: Duration = Duration::from_secs(600);

/// Both transforms read what they need from this config and ignore the rest.
fn manifest(cache: &std::path::Path) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\napi_key = \"{API_KEY}\"\nallow_anonymous = true\n\n\
         [wasm]\ncache_dir = {:?}\n\n\
         [plugins.p]\nkind = \"transform\"\npath = \"p.wasm\"\n\
         limits = {{ memory_mib = 64, time_ms = 2000 }}\n\
         config = {{ drop_word = \"forbidden\", words = [\"darn\"] }}\n\n\
         [[routes]]\nchannels = \"chat.*\"\ninbound = [\"p\"]\n",
        cache.display().to_string()
    )
}

fn counted(metrics: &str, source: &str) -> f64 {
    metric_value(
        metrics,
        &format!("ferrygate_plugin_compiled_functions_total{{source=\"{source}\"}}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_javascript_version_reuses_the_previous_compiled_functions() {
    let dir = TempDir::new("fn-cache");
    let cache = dir.0.join("cache");
    copy_over(&plugin("seen_by_js"), &dir.0.join("p.wasm"));
    let config = dir.write("ferrygate.toml", &manifest(&cache));

    // Version 1 is compiled by `check` (another process), which fills both
    // caches: the gateway then loads its artifact and compiles nothing.
    let output = Command::new(env!("CARGO_BIN_EXE_ferrygate"))
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .expect("run check");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("compiled: "))
        .unwrap_or_else(|| panic!("no compile line: {stdout}"));
    let words: Vec<&str> = line.split(' ').collect();
    let total: u64 = words[3].parse().expect("a total");
    assert!(
        total > 1000,
        "a JS component has thousands of functions: {line}"
    );
    assert!(cache.join("functions").is_dir() && cache.join("artifacts").is_dir());

    let hot = Hot::serve(dir, &config, &[]);
    let metrics = hot.metrics().await;
    assert_eq!(
        counted(&metrics, "compiled") + counted(&metrics, "cache"),
        0.0,
        "v1 was compiled again"
    );
    let mut subscriber = Client::connect(&hot.ws_url()).await;
    subscriber.subscribe("chat.lobby").await;
    let mut publisher = Client::connect(&hot.ws_url()).await;
    publisher
        .publish("chat.lobby", json!({"text": "darn"}))
        .await;
    let push = subscriber.recv().await;
    assert_eq!(
        push["data"],
        json!({"text": "darn", "seen_by": "seen_by"}),
        "{push}"
    );

    // Version 2: another program on the same engine (componentize-js 0.23).
    let v2 = std::fs::read(plugin("profanity_filter")).expect("read v2");
    let temp = hot.file(".p.wasm.tmp");
    std::fs::write(&temp, &v2).expect("write v2");
    std::fs::rename(&temp, hot.file("p.wasm")).expect("rename v2");
    let want = version_of(&v2);
    let deadline = Instant::now() + COMPILE_PATIENCE;
    while hot.plugin("p").await["version"] != want.as_str() {
        assert!(
            Instant::now() < deadline,
            "v2 not serving: {}",
            hot.plugin("p").await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = hot.metrics().await;
    let (cached, compiled) = (counted(&metrics, "cache"), counted(&metrics, "compiled"));
    assert!(cached + compiled > 1000.0, "v2 was not compiled: {metrics}");
    assert!(
        cached >= 0.8 * (cached + compiled),
        "v2 reused {cached} of {} functions",
        cached + compiled
    );
    publisher
        .publish("chat.lobby", json!({"text": "darn it"}))
        .await;
    let push = subscriber.recv().await;
    assert_eq!(push["data"], json!({"text": "d*** it"}), "{push}");
}
