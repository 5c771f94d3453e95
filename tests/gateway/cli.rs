//! `ferrygate check` and `serve` on good and bad manifests.

use std::process::Command;

use crate::drain::TempDir;
use crate::support::canary::assert_clean;

/// `FERRYGATE_TEST_KEY`, the API key some manifests here read.
const TEST_KEY: &str = "k-123-c4nary-9f2e";

fn ferrygate(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_ferrygate"))
        .args(args)
        .env("FERRYGATE_TEST_KEY", TEST_KEY)
        .env_remove("RUST_LOG")
        .output()
        .expect("run ferrygate");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    );
    assert_clean(&stdout, "ferrygate's stdout");
    assert_clean(&stderr, "ferrygate's stderr");
    (output.status.code().unwrap_or(-1), stdout, stderr)
}

#[test]
fn check_names_the_file_line_and_key_of_a_typo() {
    let dir = TempDir::new("check-typo");
    let path = dir.write(
        "ferrygate.toml",
        "[server]\nlisten = \"127.0.0.1:9000\"\nmax_frame_bytez = 1024\n",
    );
    let path = path.to_str().expect("utf-8 path");
    let (code, _, stderr) = ferrygate(&["check", "--config", path]);
    assert_eq!(code, 1);
    assert!(stderr.contains(&format!("{path}:3:")), "{stderr}");
    assert!(stderr.contains("max_frame_bytez"), "{stderr}");
}

#[test]
fn check_accepts_a_valid_manifest_and_expands_the_environment() {
    let dir = TempDir::new("check-ok");
    let path = dir.write(
        "ferrygate.toml",
        "[server]\napi_key = \"${FERRYGATE_TEST_KEY}\"\nallow_anonymous = true\n",
    );
    let (code, stdout, stderr) = ferrygate(&["check", "--config", path.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("ok"), "{stdout}");
    assert!(
        !stdout.contains(TEST_KEY) && !stderr.contains(TEST_KEY),
        "secrets are never printed"
    );
}

#[test]
fn check_reports_an_unset_secret_and_serve_refuses_to_start() {
    let dir = TempDir::new("check-unset");
    let path = dir.write(
        "ferrygate.toml",
        "[server]\napi_key = \"${FERRYGATE_UNSET_VARIABLE}\"\n",
    );
    let path = path.to_str().expect("utf-8");
    let (code, _, stderr) = ferrygate(&["check", "--config", path]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("FERRYGATE_UNSET_VARIABLE") && stderr.contains(":2:"),
        "{stderr}"
    );
    let (code, _, stderr) = ferrygate(&["serve", "--config", path]);
    assert_eq!(code, 78, "serve exits with EX_CONFIG: {stderr}");
}

/// `check` fills the caches a gateway then loads (docs/plugins.md, "Hot
/// reload"); when it cannot use the cache directory it must say so, not
/// pass in silence with nothing cached.
#[test]
fn check_warns_when_it_cannot_use_the_cache_directory() {
    let dir = TempDir::new("check-cache-dir");
    // A regular file where the cache directory's parent should be: no
    // directory can be made below it, whoever runs the test (root too).
    dir.write("not-a-folder", "");
    let cache = dir.0.join("not-a-folder").join("cache");
    let manifest = format!(
        "[server]\nallow_anonymous = true\n\n[wasm]\ncache_dir = {:?}\n{}",
        cache.display().to_string(),
        crate::support::plugins::section("redact", "transform", "json_redact", "")
    );
    let path = dir.write("ferrygate.toml", &manifest);
    let (code, stdout, stderr) = ferrygate(&["check", "--config", path.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "the manifest itself is valid: {stdout}{stderr}");
    assert!(stdout.contains("redact (transform"), "{stdout}");
    assert!(
        stderr.contains("cannot use the plugin cache directory") && stderr.contains("not-a-folder"),
        "{stderr}"
    );
}

/// Native code is loaded from the cache: a `cache_dir` that another user
/// could write (made first, world-writable, under `/tmp`) is not used.
#[cfg(unix)]
#[test]
fn a_cache_directory_others_may_write_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("check-open-cache");
    let cache = dir.0.join("cache");
    std::fs::create_dir(&cache).expect("mkdir");
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let manifest = format!(
        "[server]\nallow_anonymous = true\n\n[wasm]\ncache_dir = {:?}\n{}",
        cache.display().to_string(),
        crate::support::plugins::section("redact", "transform", "json_redact", "")
    );
    let path = dir.write("ferrygate.toml", &manifest);
    let (code, stdout, stderr) = ferrygate(&["check", "--config", path.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "the manifest itself is valid: {stdout}{stderr}");
    assert!(
        stderr.contains("cannot use the plugin cache directory")
            && stderr.contains("group or others may write it (mode 777"),
        "{stderr}"
    );
    let written: Vec<_> = std::fs::read_dir(&cache).expect("list").collect();
    assert!(written.is_empty(), "nothing written there: {written:?}");
    // The same folder made private is used.
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let (code, stdout, stderr) = ferrygate(&["check", "--config", path.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("cannot use"), "{stderr}");
    assert!(cache.join("artifacts").is_dir() && cache.join("functions").is_dir());
    assert!(
        stdout.contains("artifact cache: 0 of 1 plugins loaded from it, 1 compiled and stored"),
        "{stdout}"
    );
    // What check stored, the next check (or a gateway) loads.
    let (_, stdout, _) = ferrygate(&["check", "--config", path.to_str().expect("utf-8")]);
    assert!(
        stdout.contains("artifact cache: 1 of 1 plugins loaded from it, 0 compiled"),
        "{stdout}"
    );
    // Private but another user's (only root can make one here).
    let other = dir.0.join("others");
    std::fs::create_dir(&other).expect("mkdir");
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    if std::os::unix::fs::chown(&other, Some(65534), Some(65534)).is_ok() {
        let path = dir.write("other.toml", &manifest.replace("/cache\"", "/others\""));
        let (code, _, stderr) = ferrygate(&["check", "--config", path.to_str().expect("utf-8")]);
        assert_eq!(code, 0, "{stderr}");
        assert!(stderr.contains("owned by uid 65534"), "{stderr}");
    }
}
