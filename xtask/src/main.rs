//! The project's one task runner: `cargo xtask <task>`. It needs nothing but
//! cargo (and installs what else a task needs), so the README and CI call it.
//!
//! Tasks:
//! - `run [ARGS...]`: build the plugins, the JS client and the gateway in
//!   release mode, start the gateway on the chat example
//!   (`examples/chat/ferrygate.toml`) and the chat page's development server
//!   (`examples/chat/serve.mjs`), and print the page's URL.
//! - `test`: formatting, clippy and rustdoc with warnings as errors, the
//!   plugins' checks, then the plugins' build and every test (installing
//!   `nats-server` and `redis-server`, which the cluster tests run, when they
//!   are missing; failing when they cannot be installed), and, when node is
//!   installed, the JS client's build and tests (`clients/js`) and the chat
//!   page's tests in headless Chromium (`examples/chat`, installing Debian's
//!   `chromium` when it is missing). The fuzz smoke run is among the tests
//!   (`fuzz/tests/smoke.rs`).
//! - `build-plugins`: build `plugins/` for `wasm32-wasip2` into `plugins/dist/`,
//!   and the JavaScript and Python plugins with componentize-js and
//!   componentize-py (installed on first use into `target/toolchains/`).
//! - `bench-fanout [conns|fanout|disconnect|all]`: build release binaries and
//!   run `bench/fanout.sh` (`disconnect`: 20,000 subscribers of one channel
//!   closed at once, time until the gateway released them all).
//! - `bench-cluster [ARGS...]`: build release binaries and run `bench/cluster.sh`
//!   (fan-out across two instances on NATS and on Redis; `WORKERS=N` sets
//!   the gateways' worker count).
//! - `bench-efficiency [memory|nats-ws|nats|redis|all]`: build release
//!   binaries and run `bench/efficiency.sh` (server CPU-seconds per million
//!   deliveries at fixed rates below saturation: ferrygate in memory mode,
//!   two instances on NATS and on Redis, and nats-server's WebSocket
//!   listener, in one run).
//! - `bench-history [fanout|storm|append|memory|all]`: build release binaries
//!   and run `bench/history.sh` (fan-out with history on and off on memory,
//!   NATS with JetStream and Redis; a reconnect storm with `since`; the
//!   publish round trip with and without history; memory per channel of
//!   history).
//! - `bench-presence [join|fanout|all]`: build the plugins (jwt-auth gives
//!   each benchmark connection its own user) and release binaries, and run
//!   `bench/presence.sh` (presence off and on, interleaved, on the memory,
//!   Redis and NATS brokers: connect+subscribe rate, broker operations per
//!   join and heartbeat, query time with 10,000 members, fan-out).
//! - `bench-reload`: build the plugins and release binaries and run
//!   `bench/reload.sh` (hot reload: time to serve, latency during swaps).
//! - `fuzz [TARGET|all] [SECONDS]`: fuzz one target or all of them
//!   (`fuzz/`, `docs/fuzzing.md`) for SECONDS each (default 300): with
//!   libFuzzer through `cargo fuzz` when it is installed, otherwise with the
//!   stable driver in release mode. `test` runs the stable driver briefly,
//!   as the tests in `fuzz/tests/smoke.rs`.
//! - `soak`: build the plugins and release binaries and run `bench/soak.sh`
//!   (1,000 hot reloads and 200,000 client cycles, sampling the gateway's
//!   memory; fails when it grows). Not part of `test`: it takes minutes.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

mod fuzz;
mod plugins;
mod toolchains;
mod web;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => web::run(&args[1..]),
        Some("test") => test(),
        Some("build-plugins") => plugins::build(),
        Some("bench-fanout") => bench_script("bench/fanout.sh", &args[1..]),
        Some("bench-reload") => {
            plugins::build().and_then(|()| bench_script("bench/reload.sh", &args[1..]))
        }
        Some("bench-cluster") => {
            ensure_broker_servers().and_then(|()| bench_script("bench/cluster.sh", &args[1..]))
        }
        Some("bench-efficiency") => {
            ensure_broker_servers().and_then(|()| bench_script("bench/efficiency.sh", &args[1..]))
        }
        Some("bench-history") => {
            ensure_broker_servers().and_then(|()| bench_script("bench/history.sh", &args[1..]))
        }
        Some("bench-presence") => ensure_broker_servers()
            .and_then(|()| plugins::build())
            .and_then(|()| bench_script("bench/presence.sh", &args[1..])),
        Some("fuzz") => fuzz::long(&args[1..]),
        Some("soak") => plugins::build().and_then(|()| bench_script("bench/soak.sh", &args[1..])),
        _ => {
            eprintln!(
                "usage: cargo xtask <run [ARGS...] | test | build-plugins | bench-fanout [ARGS...] | bench-cluster [ARGS...] | bench-efficiency [ARGS...] | bench-history [ARGS...] | bench-presence [ARGS...] | bench-reload | fuzz [TARGET|all] [SECONDS] | soak>"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// A child `cargo` in the repository root, without the variables `cargo
/// run` set for xtask itself ([`CARGO_RUN_VARS`], `CARGO_PKG_*`): build
/// scripts that watch them (ring's `rerun-if-env-changed` on
/// `CARGO_MANIFEST_DIR` and `CARGO_PKG_*`) would see xtask's values where a
/// plain `cargo build` sees none, and ring, rustls, async-nats and fred would
/// be rebuilt each time one kind of build follows the other.
fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    command.current_dir(root());
    for (name, _) in std::env::vars_os() {
        let set_by_cargo_run = name
            .to_str()
            .is_some_and(|name| name.starts_with("CARGO_PKG_") || CARGO_RUN_VARS.contains(&name));
        if set_by_cargo_run {
            command.env_remove(&name);
        }
    }
    command
}

/// What `cargo run` sets for the binary it runs besides `CARGO_PKG_*`
/// (the Cargo book, "Environment variables Cargo sets for crates"); `CARGO`,
/// the path of cargo itself, is kept.
const CARGO_RUN_VARS: &[&str] = &[
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_MANIFEST_LINKS",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_RUSTC_CURRENT_DIR",
    "OUT_DIR",
];

fn status(mut command: Command) -> Result<()> {
    eprintln!("xtask: running {command:?}");
    let status = command
        .status()
        .with_context(|| format!("cannot start {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}

fn succeeds(mut command: Command) -> bool {
    command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn test() -> Result<()> {
    ensure_components()?;
    ensure_broker_servers()?;
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    status(fmt)?;
    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    status(clippy)?;
    let mut doc = cargo();
    doc.args(["doc", "--workspace", "--no-deps"])
        .env("RUSTDOCFLAGS", "-D warnings");
    status(doc)?;
    plugins::check()?;
    plugins::build()?;
    let mut nextest = cargo();
    nextest.args(["nextest", "--version"]);
    if succeeds(nextest) {
        let mut tests = cargo();
        tests.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
        status(tests)?;
        // nextest does not run doctests.
        let mut doctests = cargo();
        doctests.args(["test", "--workspace", "--doc"]);
        status(doctests)?;
    } else {
        let mut tests = cargo();
        tests.args(["test", "--workspace", "--no-fail-fast"]);
        status(tests)?;
    }
    web::test()
}

/// rustup's minimal profile lacks rustfmt and clippy; install them if so.
fn ensure_components() -> Result<()> {
    for (probe, component) in [("fmt", "rustfmt"), ("clippy", "clippy")] {
        let mut command = cargo();
        command.args([probe, "--version"]);
        if !succeeds(command) {
            let mut install = Command::new("rustup");
            install.args(["component", "add", component]);
            status(install)?;
        }
    }
    Ok(())
}

/// The servers the cluster tests start: binary name and Debian package.
const BROKER_SERVERS: [(&str, &str); 2] = [
    ("nats-server", "nats-server"),
    ("redis-server", "redis-server"),
];

/// Installs the broker servers with apt when any is missing. Never skips: a
/// machine that cannot get them fails here, loudly, rather than in the tests.
fn ensure_broker_servers() -> Result<()> {
    let present = |binary: &str| {
        let mut probe = Command::new(binary);
        probe.arg("--version");
        succeeds(probe)
    };
    let missing: Vec<&str> = BROKER_SERVERS
        .iter()
        .filter(|(binary, _)| !present(binary))
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing {missing:?} for the cluster tests");
    let mut update = Command::new("apt-get");
    update.arg("update");
    status(update)
        .context("apt-get update (the cluster tests need nats-server and redis-server)")?;
    let mut install = Command::new("apt-get");
    install
        .args(["install", "-y", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive");
    status(install).context("cannot install the broker servers the cluster tests need")?;
    if let Some((binary, _)) = BROKER_SERVERS.iter().find(|(binary, _)| !present(binary)) {
        bail!("`{binary}` is still not runnable after installing it; the cluster tests need it");
    }
    Ok(())
}

fn bench_script(script: &str, extra: &[String]) -> Result<()> {
    let mut build = cargo();
    build.args([
        "build",
        "--release",
        "-p",
        "ferrygate",
        "-p",
        "ferrygate-load",
    ]);
    status(build)?;
    let mut command = Command::new("bash");
    command.current_dir(root()).arg(script).args(extra);
    status(command)
}

#[cfg(test)]
mod tests {
    /// `cargo test` sets the same variables at run time as `cargo run` does
    /// for xtask: a child cargo must not inherit them.
    #[test]
    fn a_child_cargo_does_not_inherit_what_cargo_run_set_for_xtask() {
        assert!(
            std::env::var_os("CARGO_MANIFEST_DIR").is_some(),
            "set by cargo test"
        );
        let command = super::cargo();
        let removed: Vec<_> = command
            .get_envs()
            .filter(|(_, value)| value.is_none())
            .filter_map(|(name, _)| name.to_str())
            .collect();
        for name in [
            "CARGO_MANIFEST_DIR",
            "CARGO_PKG_NAME",
            "CARGO_PKG_VERSION_MAJOR",
        ] {
            assert!(removed.contains(&name), "{name} not removed: {removed:?}");
        }
        assert!(!removed.contains(&"CARGO"), "the path of cargo is kept");
    }
}
