//! The JavaScript and Python plugins of `plugins/`: their toolchains,
//! installed on first use from npm and PyPI at a pinned version into
//! `target/toolchains/` (nothing global), and their builds with each tool's
//! default command, into `plugins/dist/<name>.wasm`.
//!
//! A build is skipped when its inputs (sources, the SDK helpers, `wit/`, the
//! tool version) hash to the stamp of the last build and the output exists:
//! componentize-js and componentize-py take 30 s to minutes of CPU.
//! Owns nothing of the Rust plugins (see `plugins`).

use std::fs;
use std::hash::{DefaultHasher, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{root, status};

/// componentize-js from npm (`@bytecodealliance/componentize-js`).
pub const COMPONENTIZE_JS: &str = "0.23.0";
/// componentize-py from PyPI.
pub const COMPONENTIZE_PY: &str = "0.25.1";

/// One plugin written in JavaScript or Python.
struct Guest {
    /// Its folder under `plugins/`.
    dir: &'static str,
    /// Its file in `plugins/dist/`, without `.wasm`.
    name: &'static str,
    /// The WIT world it implements.
    world: &'static str,
    /// The JS source file, or the Python module, relative to `dir`.
    entry: &'static str,
    lang: Lang,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lang {
    Js,
    Python,
}

const GUESTS: &[Guest] = &[
    Guest {
        dir: "profanity-filter-js",
        name: "profanity_filter",
        world: "transform",
        entry: "profanity.js",
        lang: Lang::Js,
    },
    Guest {
        dir: "room-rules-py",
        name: "room_rules",
        world: "route",
        entry: "app",
        lang: Lang::Python,
    },
    // The same transform in the three languages, for the benchmarks
    // (docs/benchmarks.md §8; the Rust one is `testing/seen-by`).
    Guest {
        dir: "testing/seen-by-js",
        name: "seen_by_js",
        world: "transform",
        entry: "seen_by.js",
        lang: Lang::Js,
    },
    Guest {
        dir: "testing/seen-by-py",
        name: "seen_by_python",
        world: "transform",
        entry: "app",
        lang: Lang::Python,
    },
];

/// Builds every JS and Python plugin whose inputs changed into `dist`,
/// installing the toolchains first if they are missing.
pub fn build(target_dir: &Path, dist: &Path) -> Result<()> {
    let tools = target_dir
        .parent()
        .map_or_else(|| root().join("target"), Path::to_path_buf)
        .join("toolchains");
    for guest in GUESTS {
        let source = root().join("plugins").join(guest.dir);
        let output = dist.join(format!("{}.wasm", guest.name));
        let stamp_file = target_dir.join(format!("{}.stamp", guest.name));
        let stamp = inputs_hash(guest, &source)?;
        let current = fs::read_to_string(&stamp_file).ok();
        if output.exists() && current.as_deref() == Some(stamp.as_str()) {
            continue;
        }
        let started = std::time::Instant::now();
        let temporary = dist.join(format!(".{}.wasm.{}.tmp", guest.name, std::process::id()));
        let command = match guest.lang {
            Lang::Js => componentize_js(&tools, guest, &source, &temporary)?,
            Lang::Python => componentize_py(&tools, guest, &source, &temporary)?,
        };
        status(command)?;
        fs::rename(&temporary, &output)
            .with_context(|| format!("cannot move the build to {}", output.display()))?;
        fs::create_dir_all(target_dir)?;
        write_replacing(&stamp_file, &stamp)?;
        eprintln!(
            "xtask: built {} in {:.1} s",
            output.display(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// `componentize-js --wit wit --world-name W -o OUT SOURCE`, the tool's
/// default (every WASI feature enabled).
fn componentize_js(tools: &Path, guest: &Guest, source: &Path, out: &Path) -> Result<Command> {
    let prefix = tools.join(format!("componentize-js-{COMPONENTIZE_JS}"));
    let binary = prefix.join("node_modules/.bin/componentize-js");
    if !binary.exists() {
        let mut install = Command::new("npm");
        install
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&prefix)
            .arg(format!(
                "@bytecodealliance/componentize-js@{COMPONENTIZE_JS}"
            ));
        status(install).context("cannot install componentize-js with npm (Node 20 or later)")?;
    }
    let mut command = Command::new(binary);
    command
        .arg("--wit")
        .arg(root().join("wit"))
        .args(["--world-name", guest.world, "-o"])
        .arg(out)
        .arg(source.join(guest.entry));
    Ok(command)
}

/// `componentize-py -d wit -w W componentize MODULE -p . -p sdk/python -o OUT`:
/// the tool's default build, with the helpers' folder on its path.
fn componentize_py(tools: &Path, guest: &Guest, source: &Path, out: &Path) -> Result<Command> {
    let prefix = tools.join(format!("componentize-py-{COMPONENTIZE_PY}"));
    let binary = prefix.join("bin/componentize-py");
    if !binary.exists() {
        let mut install = Command::new(python()?);
        install
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--target",
            ])
            .arg(&prefix)
            .arg(format!("componentize-py=={COMPONENTIZE_PY}"));
        status(install)
            .context("cannot install componentize-py with pip (Python 3.10 or later)")?;
    }
    let mut command = Command::new(python()?);
    command
        .current_dir(source)
        .env("PYTHONPATH", &prefix)
        .arg(binary)
        .arg("-d")
        .arg(root().join("wit"))
        .args([
            "-w",
            guest.world,
            "componentize",
            guest.entry,
            "-p",
            ".",
            "-p",
        ])
        .arg(root().join("sdk/python"))
        .arg("-o")
        .arg(out);
    Ok(command)
}

fn python() -> Result<&'static str> {
    for candidate in ["python3", "python"] {
        let mut probe = Command::new(candidate);
        probe.arg("--version");
        if crate::succeeds(probe) {
            return Ok(candidate);
        }
    }
    bail!("no python3 on PATH: the Python plugins need it to install componentize-py")
}

/// Writes `path` as a new file (temporary, then rename) rather than in
/// place: a target folder seeded with hard links (`cp -al` from another
/// checkout) shares the stamp's inode with that checkout, and writing into
/// it changed the other's stamp too, so each checkout's next build saw a
/// stale stamp and rebuilt (JS and Python builds ping-ponged between
/// worktrees on one machine).
fn write_replacing(path: &Path, text: &str) -> Result<()> {
    let temporary = path.with_extension(format!("stamp.{}.tmp", std::process::id()));
    fs::write(&temporary, text)?;
    fs::rename(&temporary, path).with_context(|| format!("cannot write {}", path.display()))
}

/// A hash of everything a guest's build reads. Paths count relative to the
/// repository root, so two checkouts of the same sources agree.
fn inputs_hash(guest: &Guest, source: &Path) -> Result<String> {
    let mut files = Vec::new();
    collect(source, &mut files)?;
    collect(&root().join("wit"), &mut files)?;
    if guest.lang == Lang::Python {
        collect(&root().join("sdk/python"), &mut files)?;
    }
    files.sort();
    let mut hasher = DefaultHasher::new();
    hasher.write(COMPONENTIZE_JS.as_bytes());
    hasher.write(COMPONENTIZE_PY.as_bytes());
    let root = root();
    for file in files {
        let name = file.strip_prefix(&root).unwrap_or(&file);
        hasher.write(name.to_string_lossy().as_bytes());
        hasher.write(&fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?);
    }
    Ok(format!("{:016x}", hasher.finish()))
}

/// The source files under `dir` (no caches).
fn collect(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if name.as_deref() == Some("__pycache__") {
            continue;
        }
        if path.is_dir() {
            collect(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}
