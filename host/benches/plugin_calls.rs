//! Per-call cost of each plugin kind with a warm instance, and how long a
//! restart takes to load a plugin whose compiled artifact is cached.
//!
//! Needs the components: `cargo xtask build-plugins` first (the `bench-plugins`
//! task does both). `cargo bench -p ferrygate --bench plugin_calls`; figures
//! in docs/benchmarks.md.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ferrygate::config::{Config, PluginConfig};
use ferrygate::metrics::PluginMetrics;
use ferrygate::plugin::hooks::{Action, AuthOutcome, ConnectRequest};
use ferrygate::plugin::{Connection, Identity, Plugin, Runtime, load};
use ferrygate::protocol::ChannelName;
use tokio::runtime::Runtime as Tokio;

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

/// A runtime with its artifact cache in the target directory.
fn runtime() -> Arc<Runtime> {
    let manifest = format!(
        "[server]\nallow_anonymous = true\n[wasm]\ncache_dir = {:?}\n",
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/bench-wasm-cache")
            .display()
            .to_string()
    );
    let config = Config::parse(
        &manifest,
        &std::collections::HashMap::<String, String>::new(),
    )
    .expect("bench manifest");
    Runtime::new(&config.wasm).expect("wasm runtime")
}

fn plugin_config(kind: &str, file: &str, config: &str) -> PluginConfig {
    let manifest = format!(
        // A generous time limit: the bench measures calls, it does not cut them.
        "[server]\nallow_anonymous = true\n[plugins.p]\nkind = \"{kind}\"\npath = {:?}\nconfig = {config}\nlimits = {{ memory_mib = 64, time_ms = 1000 }}\n",
        dist(file).display().to_string()
    );
    let config = Config::parse(
        &manifest,
        &std::collections::HashMap::<String, String>::new(),
    )
    .expect("plugin manifest");
    config.plugins.get("p").cloned().expect("plugin p")
}

fn load_plugin(
    tokio: &Tokio,
    runtime: &Arc<Runtime>,
    kind: &str,
    file: &str,
    config: &str,
) -> Arc<Plugin> {
    let config = plugin_config(kind, file, config);
    tokio
        .block_on(load::load(
            runtime,
            &PluginMetrics::new(),
            file,
            &config,
            &config.path,
        ))
        .expect("plugin loads")
}

/// Times `iters` awaited calls inside one `block_on`, so the executor's own
/// entry cost is not part of each call.
fn timed<F: AsyncFn()>(tokio: &Tokio, iters: u64, call: F) -> Duration {
    tokio.block_on(async {
        let started = Instant::now();
        for _ in 0..iters {
            call().await;
        }
        started.elapsed()
    })
}

fn connection() -> Connection {
    Connection {
        id: "bench-1".to_owned(),
        identity: Identity {
            user: Some("alice".to_owned()),
            claims: r#"{"sub":"alice","channels":["chat.*"]}"#.to_owned(),
        },
    }
}

fn transform(c: &mut Criterion) {
    let tokio = Tokio::new().expect("tokio");
    let runtime = runtime();
    let redact = load_plugin(
        &tokio,
        &runtime,
        "transform",
        "json_redact",
        r#"{ remove = ["/card"], mask = ["/email"] }"#,
    );
    let channel = ChannelName::new("chat.lobby").expect("channel");
    let connection = connection();
    let mut group = c.benchmark_group("transform_json_redact");
    for (label, filler) in [("100B", 40usize), ("4KiB", 4000)] {
        let payload = format!(
            r#"{{"text":"{}","email":"a@b.c","card":"4111"}}"#,
            "x".repeat(filler)
        );
        group.bench_function(label, |b| {
            b.iter_custom(|iters| {
                timed(&tokio, iters, async || {
                    let out = redact
                        .transform_inbound(&channel, Some(&connection), &payload, 1 << 20)
                        .await;
                    assert!(out.is_ok());
                })
            });
        });
    }
    group.finish();
}

fn route(c: &mut Criterion) {
    let tokio = Tokio::new().expect("tokio");
    let runtime = runtime();
    let acl = load_plugin(
        &tokio,
        &runtime,
        "route",
        "channel_acl",
        r#"{ public = ["chat.*"], publish = [{ channels = "chat.*", allow = "signed-in" }], rewrite = [{ channels = "room.*", to = "chat.{1}" }] }"#,
    );
    let connection = connection();
    let mut group = c.benchmark_group("route_channel_acl");
    let cases = [
        ("subscribe_allow", Action::Subscribe, "chat.lobby", None),
        (
            "publish_100B",
            Action::Publish,
            "chat.lobby",
            Some("x".repeat(90)),
        ),
        (
            "publish_rewrite",
            Action::Publish,
            "room.lobby",
            Some("x".repeat(90)),
        ),
    ];
    for (label, action, channel, data) in cases {
        let channel = ChannelName::new(channel).expect("channel");
        let data = data.map(|text| format!("{{\"t\":\"{text}\"}}"));
        group.bench_function(label, |b| {
            b.iter_custom(|iters| {
                timed(&tokio, iters, async || {
                    let decision = acl
                        .route(action, &channel, &connection, data.as_deref())
                        .await;
                    assert!(decision.is_ok(), "{decision:?}");
                })
            });
        });
    }
    group.finish();
}

fn auth(c: &mut Criterion) {
    let tokio = Tokio::new().expect("tokio");
    let runtime = runtime();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    let read = |name: &str| std::fs::read_to_string(fixtures.join(name)).expect("fixture");
    let secret = "bench-secret-0123456789abcdef";
    let config = format!(
        "{{ hs256_secret = \"{secret}\", rs256_public_key_pem = {:?}, issuer = \"bench\" }}",
        read("rs256-test-public.pem")
    );
    let jwt = load_plugin(&tokio, &runtime, "auth", "jwt_auth", &config);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    let claims = serde_json::json!({"sub": "alice", "iss": "bench", "exp": now.as_secs() + 3600});
    let hs256 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign HS256");
    let rs256 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(read("rs256-test-private.pem").as_bytes())
            .expect("rsa key"),
    )
    .expect("sign RS256");
    let mut group = c.benchmark_group("auth_jwt");
    for (label, token) in [("hs256", hs256), ("rs256", rs256)] {
        let request = ConnectRequest {
            path: "/ws".into(),
            query: String::new(),
            headers: vec![("host".into(), "127.0.0.1:8080".into())],
            remote_address: "127.0.0.1:50000".into(),
            token: Some(token),
            now_unix_ms: u64::try_from(now.as_millis()).expect("ms fit u64"),
        };
        group.bench_function(label, |b| {
            b.iter_custom(|iters| {
                timed(&tokio, iters, async || {
                    let verdict = jwt.authenticate(&request).await;
                    assert!(matches!(verdict, Ok(AuthOutcome::Allow(_))), "{verdict:?}");
                })
            });
        });
    }
    group.finish();
}

fn restart_load(c: &mut Criterion) {
    let tokio = Tokio::new().expect("tokio");
    let runtime = runtime();
    let config = plugin_config(
        "auth",
        "jwt_auth",
        r#"{ hs256_secret = "x", issuer = "bench" }"#,
    );
    let metrics = PluginMetrics::new();
    // Warm the artifact cache once; every measured load then deserializes.
    tokio
        .block_on(load::load(&runtime, &metrics, "jwt", &config, &config.path))
        .expect("first load");
    c.bench_function("load_jwt_auth_from_warm_cache", |b| {
        b.iter(|| {
            tokio
                .block_on(load::load(&runtime, &metrics, "jwt", &config, &config.path))
                .expect("load")
        });
    });
}

criterion_group!(benches, transform, route, auth, restart_load);
criterion_main!(benches);
