//! `ferrygate-fuzz`: the stable driver's command line.
//!
//! ```text
//! ferrygate-fuzz <TARGET|all> [SECONDS] [--seed N] [--artifacts DIR]
//! ferrygate-fuzz <TARGET> --input FILE
//! ```
//!
//! Runs each named target on its seeds and then on mutants for SECONDS
//! (default 10) each; exits 1 at the first crash, printing the input and
//! where it was saved (default `target/fuzz-artifacts/<target>/`). `--input`
//! runs one file, to reproduce a crash. Targets: request, manifest, envelope,
//! upgrade. `cargo xtask test` runs `all` briefly; `cargo xtask fuzz` longer.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use ferrygate_fuzz::driver::{self, Plan};
use ferrygate_fuzz::targets::{TARGETS, Target, by_name};

const USAGE: &str = "usage: ferrygate-fuzz <request|manifest|envelope|upgrade|all> [SECONDS] [--seed N] [--artifacts DIR] | <TARGET> --input FILE";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("ferrygate-fuzz: {message}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Vec<String>) -> Result<ExitCode, String> {
    let mut args = args.into_iter();
    let which = args.next().ok_or("no target named")?;
    let targets: Vec<&Target> = if which == "all" {
        TARGETS.iter().collect()
    } else {
        vec![by_name(&which).ok_or_else(|| format!("unknown target `{which}`"))?]
    };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .ok_or("no workspace root")?;
    let mut plan = Plan {
        duration: Duration::from_secs(10),
        seed: 1,
        artifacts: root.join("target/fuzz-artifacts"),
    };
    let mut input = None;
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--seed" => plan.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--artifacts" => plan.artifacts = PathBuf::from(value()?),
            "--input" => input = Some(PathBuf::from(value()?)),
            seconds => {
                let seconds: f64 = seconds
                    .parse()
                    .map_err(|_| format!("unexpected argument `{seconds}`"))?;
                plan.duration =
                    Duration::try_from_secs_f64(seconds).map_err(|e| format!("SECONDS: {e}"))?;
            }
        }
    }
    if let Some(file) = input {
        let bytes = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        for target in targets {
            if let Err(failure) = driver::one(target, &bytes, &plan.artifacts.join(target.name)) {
                eprintln!("{}: {failure}", target.name);
                return Ok(ExitCode::FAILURE);
            }
            println!("{}: {} passes", target.name, file.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    for target in targets {
        match driver::run(target, &plan) {
            Ok(summary) => println!(
                "{}: {} inputs ({} seeds) in {:.1} s, seed {}: no crash",
                target.name,
                summary.inputs,
                summary.seeds,
                summary.elapsed.as_secs_f64(),
                plan.seed
            ),
            Err(failure) => {
                eprintln!("{}: {failure}", target.name);
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
