//! `cargo xtask build-plugins`: builds the `plugins/` workspace as WebAssembly
//! components (`wasm32-wasip2`, installing the target with rustup if it is
//! missing) and copies each to `plugins/dist/<name>.wasm`, where tests,
//! examples and manifests find them, after checking that it imports neither
//! the clocks nor randomness, which the gateway does not grant; then the
//! JavaScript and Python plugins (see `toolchains`). Also the plugins' own
//! checks (native unit tests, clippy for wasm, rustfmt) for `cargo xtask test`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{root, status};

const TARGET: &str = "wasm32-wasip2";

/// Each plugin package and the name of its file in `plugins/dist/`.
const PLUGINS: &[(&str, &str)] = &[
    ("jwt-auth", "jwt_auth"),
    ("channel-acl", "channel_acl"),
    ("json-redact", "json_redact"),
    ("test-spin", "spin"),
    ("test-memory-bomb", "memory_bomb"),
    ("test-panic", "panic"),
    ("test-huge-output", "huge_output"),
    ("test-ungranted", "ungranted"),
    ("test-stamp", "stamp_v1"),
    ("test-quote-config", "quote_config"),
    ("test-seen-by", "seen_by_rust"),
];

/// The stamp plugin is built a second time with this stamp, into its own
/// target directory so that neither build invalidates the other.
const STAMP_V2: (&str, &str, &str) = ("test-stamp", "stamp_v2", "v2");

/// Builds every plugin and updates `plugins/dist/`.
pub fn build() -> Result<()> {
    ensure_wasm_target()?;
    let target_dir = target_dir()?;
    let mut build = plugins_cargo();
    build
        .args(["build", "--release", "--target", TARGET, "--target-dir"])
        .arg(&target_dir)
        // The first build is stamp v1 whatever the caller's environment says.
        .env_remove("FERRYGATE_STAMP");
    status(build)?;

    let (package, _, stamp) = STAMP_V2;
    let stamp_dir = target_dir.join("stamp-v2");
    let mut build_v2 = plugins_cargo();
    build_v2
        .args([
            "build",
            "--release",
            "--target",
            TARGET,
            "-p",
            package,
            "--target-dir",
        ])
        .arg(&stamp_dir)
        .env("FERRYGATE_STAMP", stamp);
    status(build_v2)?;

    let dist = root().join("plugins/dist");
    fs::create_dir_all(&dist).with_context(|| format!("cannot create {}", dist.display()))?;
    for (package, name) in PLUGINS {
        install(&component(&target_dir, package), &dist, name)?;
    }
    let (package, name, _) = STAMP_V2;
    install(&component(&stamp_dir, package), &dist, name)?;
    crate::toolchains::build(&target_dir, &dist)?;
    eprintln!("xtask: plugins are in {}", dist.display());
    Ok(())
}

/// The plugins' own checks: formatting, clippy for wasm with warnings as
/// errors, and their unit tests on the host target.
pub fn check() -> Result<()> {
    ensure_wasm_target()?;
    let target_dir = target_dir()?;
    let mut fmt = plugins_cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    status(fmt)?;
    let mut clippy = plugins_cargo();
    clippy
        .args(["clippy", "--workspace", "--target", TARGET, "--target-dir"])
        .arg(&target_dir)
        .args(["--", "-D", "warnings"]);
    status(clippy)?;
    let mut tests = plugins_cargo();
    tests
        .args(["test", "--workspace", "--target-dir"])
        .arg(&target_dir);
    status(tests)
}

/// `cargo`, run in the plugins workspace.
fn plugins_cargo() -> Command {
    let mut command = crate::cargo();
    command.current_dir(root().join("plugins"));
    command
}

/// `$CARGO_TARGET_DIR/plugins`, else `<repo>/target/plugins`: apart from the
/// gateway's own builds, which use other targets and profiles.
fn target_dir() -> Result<PathBuf> {
    Ok(cargo_target_dir()?.join("plugins"))
}

/// `$CARGO_TARGET_DIR` (made absolute), else `<repo>/target`: where cargo
/// puts the workspace's builds.
pub fn cargo_target_dir() -> Result<PathBuf> {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = std::path::absolute(&dir).with_context(|| {
                format!(
                    "CARGO_TARGET_DIR {} is not a usable path",
                    Path::new(&dir).display()
                )
            })?;
            Ok(dir)
        }
        _ => Ok(root().join("target")),
    }
}

/// Where cargo leaves `package`'s component.
fn component(target_dir: &Path, package: &str) -> PathBuf {
    target_dir
        .join(TARGET)
        .join("release")
        .join(format!("{}.wasm", package.replace('-', "_")))
}

/// Copies `built` to `dist/<name>.wasm` atomically (a temporary file in the
/// same folder, then a rename), since a running gateway may watch the file;
/// an unchanged file is left alone, so watchers see no change.
fn install(built: &Path, dist: &Path, name: &str) -> Result<()> {
    let bytes = fs::read(built).with_context(|| format!("cannot read {}", built.display()))?;
    check_imports(name, &bytes)?;
    let destination = dist.join(format!("{name}.wasm"));
    if fs::read(&destination).is_ok_and(|current| current == bytes) {
        return Ok(());
    }
    // One temporary name per process: test processes may build at once.
    let temporary = dist.join(format!(".{name}.wasm.{}.tmp", std::process::id()));
    fs::write(&temporary, &bytes)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    fs::rename(&temporary, &destination).with_context(|| {
        format!(
            "cannot move {} to {}",
            temporary.display(),
            destination.display()
        )
    })
}

/// Interfaces the gateway grants no plugin by default. A dependency that
/// starts reading the clock or seeding a hasher would make the gateway refuse
/// the plugin; fail here instead, naming it. The `ungranted` test plugin
/// must import them, or the tests that expect a refusal prove nothing.
const UNGRANTED: &[&str] = &["wasi:clocks/", "wasi:random/"];
const MUST_IMPORT_UNGRANTED: &str = "ungranted";

/// Checks `bytes` for the names of ungranted imports: a component lists each
/// import by name, and these names appear nowhere else in it.
fn check_imports(name: &str, bytes: &[u8]) -> Result<()> {
    let found: Vec<&str> = UNGRANTED
        .iter()
        .copied()
        .filter(|interface| {
            bytes
                .windows(interface.len())
                .any(|window| window == interface.as_bytes())
        })
        .collect();
    match (name == MUST_IMPORT_UNGRANTED, found.is_empty()) {
        (false, false) => {
            bail!("plugin {name} imports {found:?}, which the gateway does not grant")
        }
        (true, true) => bail!("plugin {name} no longer imports any of {UNGRANTED:?}"),
        _ => Ok(()),
    }
}

/// Installs the wasm target with rustup unless the toolchain has it.
fn ensure_wasm_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    match installed {
        Ok(output) if output.status.success() => {
            let listed = String::from_utf8_lossy(&output.stdout);
            if listed.lines().any(|line| line.trim() == TARGET) {
                return Ok(());
            }
            let mut add = Command::new("rustup");
            add.args(["target", "add", TARGET]);
            status(add)
        }
        _ => {
            // No rustup: the build says whether the target is there.
            let sysroot = Command::new("rustc").args(["--print", "sysroot"]).output();
            let has_target = sysroot.is_ok_and(|out| {
                let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
                sysroot.join("lib/rustlib").join(TARGET).is_dir()
            });
            if !has_target {
                bail!("the {TARGET} target is missing and rustup is not available to add it");
            }
            Ok(())
        }
    }
}
