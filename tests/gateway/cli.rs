//! `ferrygate check` and `serve` on good and bad manifests.

use std::process::Command;

use crate::drain::TempDir;

fn ferrygate(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_ferrygate"))
        .args(args)
        .env("FERRYGATE_TEST_KEY", "k-123")
        .output()
        .expect("run ferrygate");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
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
        "[server]\napi_key = \"${FERRYGATE_TEST_KEY}\"\n",
    );
    let (code, stdout, stderr) = ferrygate(&["check", "--config", path.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("ok"), "{stdout}");
    assert!(
        !stdout.contains("k-123") && !stderr.contains("k-123"),
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
