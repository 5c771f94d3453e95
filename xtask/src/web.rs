//! The browser side: the JS client (`clients/js`), the chat page
//! (`examples/chat`: its development server and its tests in real Chromium),
//! and `cargo xtask run`, which serves the page next to the gateway.
//! Owns the npm and Chromium steps; the gateway's own build and tests stay in
//! `main.rs`.

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{cargo, plugins, root, status, succeeds};

/// The browser the page's tests drive (Debian's package `chromium`).
const CHROMIUM: &str = "/usr/bin/chromium";

/// `cargo xtask run`: the plugins, the client bundle and a release gateway on
/// `examples/chat/ferrygate.toml`, plus the page's development server
/// (`examples/chat/serve.mjs`, loopback only: it mints tokens for anyone).
/// Both stop when the gateway stops (Ctrl-C reaches both).
pub fn run(extra: &[String]) -> Result<()> {
    plugins::build()?;
    let page = node_installed();
    if page {
        npm("clients/js", &[&["ci"], &["run", "build"]])?;
    } else {
        eprintln!("xtask: node is not installed: serving the gateway without the chat page");
    }
    let mut build = cargo();
    build.args(["build", "--release", "-p", "ferrygate"]);
    status(build)?;
    let binary = plugins::cargo_target_dir()?.join("release/ferrygate");
    let mut gateway = Command::new(&binary);
    gateway
        .current_dir(root())
        .args(["serve", "--config", "examples/chat/ferrygate.toml"])
        .args(extra);
    let mut gateway = gateway
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    let server = if page {
        let mut node = Command::new("node");
        node.current_dir(root()).arg("examples/chat/serve.mjs");
        let child = node
            .spawn()
            .context("cannot start the chat page's server")?;
        eprintln!(
            "xtask: open the chat page at http://127.0.0.1:8081/ (development only; Ctrl-C stops it)"
        );
        Some(child)
    } else {
        None
    };
    let exit = gateway.wait().context("waiting for the gateway")?;
    if let Some(mut server) = server {
        // Ours, by its handle: it may be gone already (Ctrl-C).
        let _ = server.kill();
        let _ = server.wait();
    }
    if !exit.success() {
        bail!("the gateway exited with {exit}");
    }
    Ok(())
}

/// `cargo xtask test`'s browser part, when node is installed: the client's
/// build and Node tests, then the chat page's tests in Chromium (installed
/// with apt when missing), all against the debug `ferrygate` built before.
pub fn test() -> Result<()> {
    if !node_installed() {
        eprintln!("xtask: node is not installed: skipping clients/js and examples/chat");
        return Ok(());
    }
    npm("clients/js", &[&["ci"], &["run", "build"], &["test"]])?;
    ensure_chromium()?;
    npm("examples/chat", &[&["ci"], &["test"]])
}

fn node_installed() -> bool {
    let mut probe = Command::new("node");
    probe.arg("--version");
    succeeds(probe)
}

/// Runs `npm ARGS` in `dir` for each of `steps`, with the gateway binary and
/// the plugins the tests use.
fn npm(dir: &str, steps: &[&[&str]]) -> Result<()> {
    let gateway = plugins::cargo_target_dir()?.join("debug/ferrygate");
    for args in steps {
        let mut npm = Command::new("npm");
        npm.args(*args)
            .current_dir(root().join(dir))
            .env("FERRYGATE_BIN", &gateway)
            .env("FERRYGATE_PLUGINS", root().join("plugins/dist"))
            .env("CHROMIUM_BIN", CHROMIUM);
        status(npm)?;
    }
    Ok(())
}

/// Installs Debian's `chromium` when it is missing. Never skips: the page's
/// tests fail here, loudly, on a machine that cannot get it.
fn ensure_chromium() -> Result<()> {
    let present = || {
        let mut probe = Command::new(CHROMIUM);
        probe.arg("--version");
        succeeds(probe)
    };
    if present() {
        return Ok(());
    }
    eprintln!("xtask: installing chromium for the chat page's tests");
    let mut update = Command::new("apt-get");
    update.arg("update");
    status(update).context("apt-get update (the chat page's tests need chromium)")?;
    let mut install = Command::new("apt-get");
    install
        .args(["install", "-y", "--no-install-recommends", "chromium"])
        .env("DEBIAN_FRONTEND", "noninteractive");
    status(install).context("cannot install chromium for the chat page's tests")?;
    if !present() {
        bail!("{CHROMIUM} is still not runnable after installing chromium");
    }
    Ok(())
}
