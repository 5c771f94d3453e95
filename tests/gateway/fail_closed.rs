//! No silent open door (SPEC 2): a manifest without an auth plugin must say
//! `allow_anonymous = true`, and no reload (file watch, SIGHUP,
//! `POST /v1/reload`; a cut, empty or missing file) ever drops the auth
//! plugin or opens the gateway. The running set stays, and the refusal is
//! in `/v1/plugins`, `/metrics` and the reload's answer.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::drain::TempDir;
use crate::hot::Hot;
use crate::plugin_auth::{SECRET, attempt_at, hs256};
use crate::support::plugins::{plugin, repo_root};
use crate::support::{API_KEY, Client, PATIENCE, metric_value};

/// The chat example as shipped, its plugin paths made absolute and its
/// compile cache pointed inside the target dir.
fn chat_manifest() -> String {
    let text = std::fs::read_to_string(repo_root().join("examples/chat/ferrygate.toml"))
        .expect("read the chat example");
    let dist = plugin("jwt_auth")
        .parent()
        .expect("dist folder")
        .display()
        .to_string();
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasm-cache");
    format!(
        "{}\n[wasm]\ncache_dir = {:?}\n",
        text.replace("../../plugins/dist", &dist),
        cache.display().to_string()
    )
}

/// The chat example running under `serve --config` with the watcher, its
/// API key and JWT secret from the environment as the README says.
fn chat(tag: &str) -> (Hot, String) {
    let dir = TempDir::new(tag);
    let text = chat_manifest();
    let manifest = dir.write("ferrygate.toml", &text);
    let env = [
        ("FERRYGATE_API_KEY", API_KEY),
        ("FERRYGATE_JWT_SECRET", SECRET),
    ];
    (Hot::serve(dir, &manifest, &env), text)
}

fn chat_token(user: &str) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        + 300;
    hs256(
        &serde_json::json!({"sub": user, "iss": "ferrygate-chat", "exp": exp}),
        SECRET,
    )
}

/// A client without a token is refused with 401, one with a token is let in.
async fn auth_holds(hot: &Hot) {
    let (status, body) = attempt_at(hot.addr, None).await;
    assert_eq!(status, 401, "a client without a token got in: {body}");
    let url = format!("{}?token={}", hot.ws_url(), chat_token("alice"));
    let client = Client::connect(&url).await;
    assert_eq!(client.welcome["user"], "alice", "{}", client.welcome);
}

/// Polls `/v1/plugins` until its top-level `last_error` satisfies `done`.
async fn wait_manifest_error(hot: &Hot, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let report = hot.plugins().await;
        if done(&report["last_error"]) {
            return report;
        }
        assert!(Instant::now() < deadline, "waited for {what}: {report}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn failed_reloads(metrics: &str) -> f64 {
    metric_value(
        metrics,
        "ferrygate_plugin_reloads_total{outcome=\"failed\"}",
    )
}

fn names(report: &Value) -> Vec<String> {
    report["plugins"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|p| p["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The observed case: the chat manifest overwritten in place with only its
/// first 14 lines (`[server]` and `[broker]`), as `cat > file` or a tool
/// that pauses mid-write leaves it. The watcher reloads the cut file (the
/// pause is far past the 50 ms debounce) and refuses it; a client without
/// a token still gets 401. Completing the write, then restoring the file,
/// works as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_example_cut_to_its_first_lines_keeps_its_auth() {
    let (hot, text) = chat("cut-chat");
    auth_holds(&hot).await;
    let manifest = hot.file("ferrygate.toml");
    let head: String = text.lines().take(14).map(|l| format!("{l}\n")).collect();
    assert!(
        head.contains("[broker]") && !head.contains("[plugins"),
        "{head}"
    );

    // A plain truncating write, not a rename.
    std::fs::write(&manifest, &head).expect("cut the manifest");
    let report = wait_manifest_error(&hot, "the cut file refused", |e| {
        e.as_str().is_some_and(|e| e.contains("allow_anonymous"))
    })
    .await;
    assert_eq!(names(&report), ["acl", "auth", "redact"], "{report}");
    assert!(failed_reloads(&hot.metrics().await) >= 1.0);
    auth_holds(&hot).await;

    // The rest of the write lands later: the whole file loads, nothing
    // changed, and the refusal is over.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&manifest)
        .expect("open to append");
    std::io::Write::write_all(&mut file, &text.as_bytes()[head.len()..]).expect("append");
    drop(file);
    wait_manifest_error(&hot, "the refusal cleared", Value::is_null).await;
    auth_holds(&hot).await;
}

/// Every other way a reload could open the gateway, by `POST /v1/reload`
/// and SIGHUP: an empty file, a missing file, and a manifest that swaps
/// the auth plugin for `allow_anonymous = true` (restart-only: a reload
/// never widens access). Each is a 422 naming the reason; the auth plugin
/// keeps guarding `/ws`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_reload_drops_the_auth_plugin() {
    let (hot, text) = chat("reload-open");
    let manifest = hot.file("ferrygate.toml");
    let without_auth = text
        .replace("[plugins.auth]", "[plugins.was_auth]")
        .replace("kind = \"auth\"", "kind = \"transform\"")
        .replace(
            "api_key = \"${FERRYGATE_API_KEY:-dev-only-key}\"",
            "api_key = \"${FERRYGATE_API_KEY:-dev-only-key}\"\nallow_anonymous = true",
        );
    let cases: [(&str, Option<&str>, &str); 3] = [
        ("an empty file", Some(""), "allow_anonymous"),
        ("a missing file", None, "cannot read the manifest"),
        (
            "allow_anonymous = true instead of the auth plugin",
            Some(&without_auth),
            "started requiring one",
        ),
    ];
    for (case, content, reason) in cases {
        match content {
            Some(content) => std::fs::write(&manifest, content).expect("write"),
            None => std::fs::remove_file(&manifest).expect("remove"),
        }
        let (status, outcome) = hot.reload("").await;
        assert_eq!(status, 422, "{case}: {outcome}");
        assert_eq!(outcome["ok"], false, "{case}: {outcome}");
        let error = outcome["failed"][0]["error"].as_str().unwrap_or_default();
        assert!(error.contains(reason), "{case}: {outcome}");
        let before = failed_reloads(&hot.metrics().await);
        hot.signal("HUP");
        let deadline = Instant::now() + PATIENCE;
        while failed_reloads(&hot.metrics().await) <= before {
            assert!(Instant::now() < deadline, "{case}: SIGHUP did not reload");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let report = hot.plugins().await;
        assert!(
            report["last_error"]
                .as_str()
                .is_some_and(|e| e.contains(reason)),
            "{case}: {report}"
        );
        assert!(
            names(&report).contains(&"auth".to_owned()),
            "{case}: {report}"
        );
        auth_holds(&hot).await;
    }
    std::fs::write(&manifest, &text).expect("restore");
    let (status, outcome) = hot.reload("").await;
    assert_eq!(status, 200, "{outcome}");
    assert!(hot.plugins().await["last_error"].is_null());
    auth_holds(&hot).await;
}

/// `check` and `serve` refuse a manifest with no auth plugin and no
/// `allow_anonymous = true`, naming the file, line and key; `serve` with no
/// manifest at all stays the loud development default.
#[test]
fn a_manifest_without_auth_must_say_allow_anonymous() {
    let dir = TempDir::new("anonymous");
    let path = dir.write(
        "ferrygate.toml",
        "[server]\nlisten = \"127.0.0.1:0\"\nallow_anonymous = false\n",
    );
    let path = path.to_str().expect("utf-8 path");
    for args in [
        vec!["check", "--config", path],
        vec!["serve", "--config", path],
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_ferrygate"))
            .args(&args)
            .output()
            .expect("run ferrygate");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_ne!(output.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("{path}:3:")) && stderr.contains("server.allow_anonymous"),
            "{args:?}: {stderr}"
        );
    }
    let open = dir.write("open.toml", "[server]\nallow_anonymous = true\n");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ferrygate"))
        .args(["check", "--config", open.to_str().expect("utf-8 path")])
        .output()
        .expect("run ferrygate");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("anonymously"), "{stdout}");
}

/// The other fail-open keys are manifest errors at their line: a route
/// plugin with `on_error = "allow"`, an `api_key` of spaces, and huge
/// durations and sizes (which once could overflow a deadline).
#[test]
fn fail_open_and_overflowing_values_are_refused_at_their_line() {
    let dir = TempDir::new("fail-open-keys");
    let acl = plugin("channel_acl").display().to_string();
    let cases = [
        (
            format!(
                "[server]\nallow_anonymous = true\n[plugins.acl]\nkind = \"route\"\npath = {acl:?}\non_error = \"allow\"\n"
            ),
            ":6:",
            "plugins.acl.on_error",
        ),
        (
            "[server]\nallow_anonymous = true\napi_key = \"   \"\n".to_owned(),
            ":3:",
            "server.api_key",
        ),
        (
            format!(
                "[server]\nallow_anonymous = true\nclose_grace_ms = {}\n",
                i64::MAX
            ),
            ":3:",
            "server.close_grace_ms",
        ),
        (
            format!(
                "[server]\nallow_anonymous = true\nping_interval_ms = {}\n",
                u64::MAX
            ),
            ":3:",
            // Not even a TOML integer: a syntax error at its line.
            "",
        ),
        (
            format!(
                "[server]\nallow_anonymous = true\n[broker]\nconnect_timeout_ms = {}\n",
                i64::MAX
            ),
            ":4:",
            "broker.connect_timeout_ms",
        ),
    ];
    for (text, line, key) in cases {
        let path = dir.write("ferrygate.toml", &text);
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_ferrygate"))
            .args(["check", "--config", path.to_str().expect("utf-8 path")])
            .output()
            .expect("run ferrygate");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{text}: {stderr}");
        assert!(
            stderr.contains(line) && stderr.contains(key),
            "{text}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{text}: {stderr}");
    }
}
