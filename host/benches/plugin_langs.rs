//! The same transform in Rust, JavaScript and Python (`plugins/testing/
//! seen-by*`: parse the payload, add a field, serialise it): per-call cost
//! with a warm instance, and the memory one instance needs, found as the
//! smallest `limits.memory_mib` with which the plugin loads (instantiate +
//! `init`) and answers a call; the linear memory an instance reserves, in
//! whole MiB, which is what an operator sets.
//!
//! Needs the components: `cargo xtask build-plugins` first. Run with
//! `cargo bench -p ferrygate --bench plugin_langs`; figures in
//! docs/benchmarks.md §8.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ferrygate::config::{Config, PluginConfig};
use ferrygate::metrics::PluginMetrics;
use ferrygate::plugin::hooks::Transformed;
use ferrygate::plugin::{Connection, Identity, Plugin, Runtime, load};
use ferrygate::protocol::ChannelName;
use tokio::runtime::Runtime as Tokio;

/// The three builds of the one transform: label and file in `plugins/dist/`.
const LANGS: [(&str, &str); 3] = [
    ("rust", "seen_by_rust"),
    ("js", "seen_by_js"),
    ("python", "seen_by_python"),
];

/// Largest cap tried when looking for the memory an instance needs, MiB.
const MAX_MEMORY_MIB: u32 = 128;

fn dist(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/dist")
        .join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} missing: run `cargo xtask build-plugins`",
        path.display()
    );
    path
}

fn parse(manifest: &str) -> Config {
    Config::parse(
        manifest,
        &std::collections::HashMap::<String, String>::new(),
    )
    .expect("bench manifest")
}

/// A runtime with its artifact cache in the target directory (shared with
/// `plugin_calls`), so only the first run compiles the big components.
fn runtime() -> Arc<Runtime> {
    let cache = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-wasm-cache");
    let config = parse(&format!(
        "[server]\nallow_anonymous = true\n[wasm]\ncache_dir = {:?}\n",
        cache.display().to_string()
    ));
    Runtime::new(&config.wasm).expect("wasm runtime")
}

fn plugin_config(file: &str, memory_mib: u32) -> PluginConfig {
    // A generous time limit: the bench measures calls, it does not cut them.
    let config = parse(&format!(
        "[server]\nallow_anonymous = true\n[plugins.p]\nkind = \"transform\"\npath = {:?}\nconfig = {{ drop_word = \"forbidden\" }}\nlimits = {{ memory_mib = {memory_mib}, time_ms = 1000 }}\n",
        dist(file).display().to_string()
    ));
    config.plugins.get("p").cloned().expect("plugin p")
}

async fn load_plugin(runtime: &Arc<Runtime>, file: &str, memory_mib: u32) -> Option<Arc<Plugin>> {
    let config = plugin_config(file, memory_mib);
    load::load(runtime, &PluginMetrics::new(), file, &config, &config.path)
        .await
        .ok()
}

fn connection() -> Connection {
    Connection {
        id: "bench-1".to_owned(),
        identity: Identity {
            user: Some("alice".to_owned()),
            claims: r#"{"sub":"alice"}"#.to_owned(),
        },
    }
}

/// A 100-byte JSON object payload.
fn payload() -> String {
    format!(r#"{{"text":"{}","n":42,"ok":true}}"#, "x".repeat(72))
}

async fn call_once(plugin: &Plugin, channel: &ChannelName, payload: &str) -> bool {
    plugin
        .transform_inbound(channel, Some(&connection()), payload, 1 << 20)
        .await
        .is_ok()
}

/// What the plugin makes of `payload`: `Some(JSON value)` kept, `None` dropped.
async fn outcome(
    plugin: &Plugin,
    channel: &ChannelName,
    payload: &str,
) -> Option<serde_json::Value> {
    match plugin
        .transform_inbound(channel, Some(&connection()), payload, 1 << 20)
        .await
    {
        Ok(Transformed::Keep(text)) => Some(serde_json::from_str(&text).expect("kept JSON")),
        Ok(Transformed::Drop) => None,
        Err(e) => panic!("transform failed: {e}"),
    }
}

fn per_call(c: &mut Criterion) {
    let tokio = Tokio::new().expect("tokio");
    let runtime = runtime();
    let channel = ChannelName::new("chat.lobby").expect("channel");
    let payload = payload();
    assert_eq!(payload.len(), 100);
    let mut group = c.benchmark_group("transform_seen_by");
    let cases = [
        payload.clone(),
        r#""text""#.to_owned(),
        r#"{"a":"forbidden"}"#.to_owned(),
    ];
    let mut reference = None;
    for (lang, file) in LANGS {
        let plugin = tokio
            .block_on(load_plugin(&runtime, file, 64))
            .expect("plugin loads with 64 MiB");
        // The three must do the same work: same answers, key order aside.
        let answers: Vec<_> = cases
            .iter()
            .map(|case| tokio.block_on(outcome(&plugin, &channel, case)))
            .collect();
        assert_eq!(
            answers[0].as_ref().map(|v| &v["seen_by"]),
            Some(&"seen_by".into())
        );
        assert_eq!(answers[2], None, "{lang} did not drop");
        assert_eq!(
            reference.get_or_insert_with(|| answers.clone()),
            &answers,
            "{lang}"
        );
        group.bench_function(lang, |b| {
            b.iter_custom(|iters| {
                tokio.block_on(async {
                    let started = Instant::now();
                    for _ in 0..iters {
                        assert!(call_once(&plugin, &channel, &payload).await);
                    }
                    started.elapsed()
                })
            });
        });
    }
    group.finish();
}

/// Prints, per language, the smallest memory cap (MiB) that loads and
/// serves, and how long a load from the warm artifact cache took.
fn memory_per_instance(_: &mut Criterion) {
    let tokio = Tokio::new().expect("tokio");
    let runtime = runtime();
    let channel = ChannelName::new("chat.lobby").expect("channel");
    let payload = payload();
    for (lang, file) in LANGS {
        let works = |mib: u32| {
            tokio.block_on(async {
                match load_plugin(&runtime, file, mib).await {
                    Some(plugin) => call_once(&plugin, &channel, &payload).await,
                    None => false,
                }
            })
        };
        // Warm the artifact cache, then time one load.
        assert!(
            works(MAX_MEMORY_MIB),
            "{lang} does not work with {MAX_MEMORY_MIB} MiB"
        );
        let started = Instant::now();
        let loaded = tokio.block_on(load_plugin(&runtime, file, MAX_MEMORY_MIB));
        let load_time: Duration = started.elapsed();
        assert!(loaded.is_some());
        let (mut low, mut high) = (0, MAX_MEMORY_MIB); // low fails, high works
        while high - low > 1 {
            let mid = (low + high) / 2;
            if works(mid) { high = mid } else { low = mid }
        }
        eprintln!(
            "memory_per_instance/{lang}: smallest working memory_mib = {high} (fails at {low}); load from warm cache {:.1} ms",
            load_time.as_secs_f64() * 1e3
        );
    }
}

criterion_group!(benches, per_call, memory_per_instance);
criterion_main!(benches);
