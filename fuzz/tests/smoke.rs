//! The fuzz smoke run of CI: every target under the stable driver for
//! [`SMOKE`] of mutants after its seeds, as tests, so that `cargo nextest run
//! --workspace` builds them with the workspace's features (a separate
//! `cargo run -p ferrygate-fuzz` resolved other features and rebuilt a dozen
//! crates: minutes of CI) and runs them beside the other tests. A crash fails
//! the test with the input's artifact path; `cargo xtask fuzz` is the long run.

use std::path::PathBuf;
use std::time::Duration;

use ferrygate_fuzz::driver::{self, Plan};
use ferrygate_fuzz::targets::by_name;

/// Mutation time per target: a smoke run, not a search (docs/fuzzing.md).
const SMOKE: Duration = Duration::from_secs(8);

fn smoke(name: &str) {
    let target = by_name(name).expect("the target exists");
    let plan = Plan {
        duration: SMOKE,
        seed: 1,
        artifacts: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-artifacts"),
    };
    match driver::run(target, &plan) {
        Ok(summary) => {
            assert!(
                summary.inputs > summary.seeds as u64,
                "{name}: no mutant ran in {SMOKE:?}"
            );
            println!(
                "{name}: {} inputs ({} seeds) in {:.1} s: no crash",
                summary.inputs,
                summary.seeds,
                summary.elapsed.as_secs_f64()
            );
        }
        Err(failure) => panic!("{name}: {failure}"),
    }
}

#[test]
fn request() {
    smoke("request");
}

#[test]
fn manifest() {
    smoke("manifest");
}

#[test]
fn envelope() {
    smoke("envelope");
}

#[test]
fn upgrade() {
    smoke("upgrade");
}
