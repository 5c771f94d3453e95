//! The plugin author's loop: `ferrygate plugin new` writes a project whose
//! README commands build it and whose `ferrygate.toml` passes `check`, in
//! each language; the gateway records a plugin's calls (`record = {...}`)
//! and `ferrygate plugin test` replays them offline to the same decisions.
//!
//! One kind per language runs in CI, as the walk-throughs of docs/plugins.md
//! (`plugin_docs`: the JavaScript and Python builds take a minute or two
//! each); every language x kind, by the README of each project, is
//! `plugin_new_every_language_and_kind_builds_and_passes_check`, ignored by
//! default: `cargo nextest run -p ferrygate --test gateway --run-ignored all
//! -E 'test(/plugin_new_every/)'`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::drain::TempDir;
use crate::plugin_auth::{SECRET, claims, hs256};
use crate::support::plugins::{plugin, repo_root, section};
use crate::support::{Client, TestGateway};

/// The toolchains `cargo xtask build-plugins` installs (pinned versions).
pub(crate) fn toolchain(lang: &str) -> PathBuf {
    // Building the shipped plugins installs them if missing.
    let _ = plugin("json_redact");
    let dir = match lang {
        "js" => "componentize-js-0.23.0",
        "python" => "componentize-py-0.25.1",
        _ => unreachable!("rust needs no toolchain folder"),
    };
    repo_root().join("target/toolchains").join(dir)
}

/// Runs `ferrygate ARGS` in `dir`; returns (exit code, stdout, stderr).
fn ferrygate(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_ferrygate"))
        .args(args)
        .current_dir(dir)
        // `check` of a generated manifest compiles into a cache of the tests'.
        .env(
            "XDG_CACHE_HOME",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("xdg-cache"),
        )
        .output()
        .expect("run ferrygate");
    let (out, err) = (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    );
    crate::support::canary::assert_clean(&out, "ferrygate's output");
    (output.status.code().unwrap_or(-1), out, err)
}

/// `plugin new`, then every command of the README's `sh` block except the
/// one-time installs (the tools are the ones xtask installed, linked as
/// `tools`) and `serve`; asserts that `check` accepts the plugin.
fn new_builds_and_checks(lang: &str, kind: &str) {
    let dir = TempDir::new(&format!("new-{lang}-{kind}"));
    let name = format!("my-{kind}");
    let sdk = format!(
        "{{ path = {:?} }}",
        repo_root().join("sdk").display().to_string()
    );
    let mut args = vec!["plugin", "new", "--lang", lang, "--kind", kind, &name];
    if lang == "rust" {
        args.extend(["--sdk", &sdk]);
    }
    let (code, out, err) = ferrygate(&dir.0, &args);
    assert_eq!(code, 0, "{out}{err}");
    let project = dir.0.join(&name);
    if lang == "rust" {
        // One target folder for every generated Rust project of the tests.
        let shared = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-new-target");
        std::fs::create_dir_all(&shared).expect("target folder");
        std::os::unix::fs::symlink(&shared, project.join("target")).expect("link target");
    } else {
        std::os::unix::fs::symlink(toolchain(lang), project.join("tools")).expect("link tools");
    }
    let readme = std::fs::read_to_string(project.join("README.md")).expect("README");
    let block = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("an sh block");
    let mut checked = false;
    for line in block.lines() {
        if line.contains("# once") || line.contains("ferrygate serve") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("ferrygate ") {
            let args: Vec<&str> = rest.split_whitespace().collect();
            let (code, out, err) = ferrygate(&project, &args);
            assert_eq!(code, 0, "`{line}` in {}:\n{out}{err}", project.display());
            assert!(
                out.contains(&format!("{name} ({kind}")),
                "{line}: {out}{err}"
            );
            checked = true;
            continue;
        }
        let status = Command::new("sh")
            .args(["-c", line])
            .current_dir(&project)
            .status()
            .expect("run a README command");
        assert!(status.success(), "`{line}` failed in {}", project.display());
    }
    assert!(checked, "the README runs `ferrygate check`");
}

#[test]
#[ignore = "long: nine builds, minutes each for JavaScript and Python"]
fn plugin_new_every_language_and_kind_builds_and_passes_check() {
    for lang in ["rust", "js", "python"] {
        for kind in ["auth", "route", "transform"] {
            new_builds_and_checks(lang, kind);
        }
    }
}

#[test]
fn plugin_new_refuses_an_existing_folder_and_a_bad_name() {
    let dir = TempDir::new("new-refused");
    std::fs::create_dir_all(dir.0.join("taken")).expect("folder");
    let (code, _, err) = ferrygate(
        &dir.0,
        &["plugin", "new", "--lang", "js", "--kind", "route", "taken"],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("exists"), "{err}");
    let (code, _, err) = ferrygate(
        &dir.0,
        &["plugin", "new", "--lang", "js", "--kind", "route", "../up"],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not a plugin name"), "{err}");
}

const ACL: &str = r#"{"public": ["chat.>", "room.*"], "publish": [{"channels": "chat.locked", "allow": "nobody"}, {"channels": ">", "allow": "signed-in"}], "rewrite": [{"channels": "room.*", "to": "chat.{1}"}]}"#;
const REDACT: &str = r#"{"remove": ["/card"], "mask": ["/email"]}"#;

fn toml_inline(json_text: &str) -> String {
    let value: Value = serde_json::from_str(json_text).expect("JSON");
    let toml = toml::Value::try_from(value).expect("TOML");
    // A `Value` displays inline, as a manifest line needs.
    format!("config = {toml}")
}

#[tokio::test]
async fn plugin_test_replays_a_live_recording_to_the_same_decisions() {
    let dir = TempDir::new("record");
    let route_file = dir.0.join("acl.jsonl");
    let transform_file = dir.0.join("redact.jsonl");
    let record = |path: &Path| format!("record = {{ path = {:?} }}", path.display().to_string());
    let acl = section(
        "acl",
        "route",
        "channel_acl",
        &format!("{}\n{}", record(&route_file), toml_inline(ACL)),
    );
    let redact = section(
        "redact",
        "transform",
        "json_redact",
        &format!("{}\n{}", record(&transform_file), toml_inline(REDACT)),
    );
    let auth = crate::plugin_auth::jwt_auth_section();
    let routes = "[[routes]]\nchannels = \">\"\nroute = \"acl\"\ninbound = [\"redact\"]\n";
    let gateway = TestGateway::start(&format!("{auth}{acl}{redact}{routes}")).await;
    let url = format!(
        "{}?token={}",
        gateway.ws_url(),
        hs256(&claims("alice"), SECRET)
    );
    let mut alice = Client::connect(&url).await;
    alice.subscribe("chat.lobby").await;
    alice.subscribe("room.lobby").await; // rewritten to chat.lobby
    let denied = alice
        .request(json!({"op": "subscribe", "channel": "secret.x"}))
        .await;
    assert_eq!(denied["error"]["code"], "forbidden", "{denied}");
    let denied = alice
        .request(json!({"op": "publish", "channel": "chat.locked", "data": 1}))
        .await;
    assert_eq!(denied["error"]["code"], "forbidden", "{denied}");
    alice
        .publish(
            "chat.lobby",
            json!({"card": "4111", "email": "a@b", "text": "hi"}),
        )
        .await;
    let push = alice.recv().await;
    assert_eq!(
        push["data"],
        json!({"email": "***", "text": "hi"}),
        "{push}"
    );
    gateway.stop().await;

    let recorded = std::fs::read_to_string(&route_file).expect("the route recording");
    assert_eq!(recorded.lines().count(), 5, "{recorded}");
    for (wasm, kind, input, config, calls) in [
        ("channel_acl", "route", &route_file, ACL, 5),
        ("json_redact", "transform", &transform_file, REDACT, 1),
    ] {
        let wasm = plugin(wasm).display().to_string();
        let input = input.display().to_string();
        let (code, out, err) = ferrygate(
            &dir.0,
            &[
                "plugin", "test", &wasm, "--kind", kind, "--input", &input, "--config", config,
            ],
        );
        assert_eq!(code, 0, "{out}{err}");
        let lines: Vec<Value> = out
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        assert_eq!(lines.len(), calls, "{out}");
        assert!(lines.iter().all(|l| l["same"] == true), "{out}");
        assert!(err.contains(&format!("{calls} calls, 0 differ")), "{err}");
    }
}

#[test]
fn plugin_test_reports_a_decision_that_differs_and_prints_the_plugins_logs() {
    let dir = TempDir::new("replay-differs");
    let input = dir.0.join("in.jsonl");
    let connection = json!({"id": "c1", "user": "bob"});
    let lines = [
        json!({"op": "subscribe", "channel": "chat.a", "connection": connection, "live": "allow"}),
        json!({"op": "subscribe", "channel": "user.alice", "connection": connection, "live": "allow"}),
        json!({"op": "publish", "channel": "no channel!", "connection": connection, "data": 1}),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&input, text).expect("input");
    let wasm = plugin("channel_acl").display().to_string();
    let input = input.display().to_string();
    let (code, out, err) = ferrygate(
        &dir.0,
        &[
            "plugin", "test", &wasm, "--kind", "route", "--input", &input, "--config", ACL,
        ],
    );
    assert_eq!(code, 1, "{out}{err}");
    let reports: Vec<Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(reports[0]["same"], true, "{out}");
    assert_eq!(reports[1]["same"], false, "{out}");
    assert!(reports[1]["decision"]["deny"].is_string(), "{out}");
    assert!(reports[2]["skipped"].is_string(), "{out}");
    assert!(err.contains("2 calls, 1 differ"), "{err}");
}
