//! `cargo xtask fuzz`: the long runs of the targets of `fuzz/` (see
//! `docs/fuzzing.md`). The smoke run of `cargo xtask test` is the tests in
//! `fuzz/tests/smoke.rs`.
//!
//! The long run uses libFuzzer (coverage-guided) through `cargo fuzz` when
//! `cargo-fuzz` is installed (with `--sanitizer none`, cargo-fuzz 0.13 needs
//! no nightly flag); without it, the stable driver (`ferrygate-fuzz`) in
//! release mode. Both start from the committed
//! seeds in `fuzz/corpus/<target>/`; libFuzzer's findings grow a working
//! corpus under `target/fuzz-corpus/`, never the committed one.

use anyhow::{Context, Result, bail};

use crate::{cargo, plugins, root, status, succeeds};

/// The fuzz targets, as `fuzz/src/targets.rs` names them.
const TARGETS: [&str; 4] = ["request", "manifest", "envelope", "upgrade"];

/// Seconds per target for `cargo xtask fuzz` without a SECONDS argument.
const DEFAULT_SECONDS: u32 = 300;

/// `cargo xtask fuzz [TARGET|all] [SECONDS]`.
pub fn long(args: &[String]) -> Result<()> {
    let which = args.first().map_or("all", String::as_str);
    let targets: Vec<&str> = match which {
        "all" => TARGETS.to_vec(),
        name if TARGETS.contains(&name) => vec![name],
        other => bail!("unknown fuzz target `{other}`; expected one of {TARGETS:?} or all"),
    };
    let seconds: u32 = match args.get(1) {
        Some(text) => text
            .parse()
            .with_context(|| format!("SECONDS must be a whole number, not `{text}`"))?,
        None => DEFAULT_SECONDS,
    };
    plugins::build()?;
    let mut probe = cargo();
    probe.args(["fuzz", "--version"]);
    if !succeeds(probe) {
        eprintln!(
            "xtask: cargo-fuzz is not installed (`cargo install cargo-fuzz`): using the stable driver, without coverage guidance"
        );
        let mut run = cargo();
        run.args(["run", "--release", "-p", "ferrygate-fuzz", "--"])
            .arg(which)
            .arg(seconds.to_string());
        return status(run);
    }
    for target in targets {
        let working = root().join("target/fuzz-corpus").join(target);
        std::fs::create_dir_all(&working)
            .with_context(|| format!("creating {}", working.display()))?;
        let mut run = cargo();
        run
            // The address sanitizer would need a nightly `-Zsanitizer`.
            .args([
                "fuzz",
                "run",
                target,
                "--sanitizer",
                "none",
                "--features",
                "libfuzzer",
            ])
            .arg(&working)
            .arg(root().join("fuzz/corpus").join(target))
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .arg(format!(
                "-artifact_prefix={}/",
                root().join("target/fuzz-artifacts").join(target).display()
            ));
        std::fs::create_dir_all(root().join("target/fuzz-artifacts").join(target))?;
        status(run)?;
    }
    Ok(())
}
