//! The stable driver: runs a target on its seeds, then on mutants of them for
//! a fixed time, and stops at the first crash with the input saved.
//!
//! A crash is a panic, caught on the calling thread or seen by the panic hook
//! on any other thread (the `upgrade` target's gateway runs on its own
//! threads). A crash that aborts the process (stack overflow, out of memory)
//! cannot be caught: the driver writes each input to `<artifacts>/<target>/current`
//! before running it, so the file left there is the one that killed it.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::mutate::mutate;
use crate::targets::{Target, seeds};

/// How one run is bounded and where its findings go.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Time spent on mutants after the seeds (wall clock).
    pub duration: Duration,
    /// Seed of the random generator: the same seed makes the same inputs.
    pub seed: u64,
    /// Folder for crash inputs (`<artifacts>/<target>/crash-<hash>`).
    pub artifacts: PathBuf,
}

/// What a run did.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// Committed seeds run as they are.
    pub seeds: usize,
    /// Inputs run in all, seeds included.
    pub inputs: u64,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
}

/// Why a run failed.
#[derive(Debug)]
pub enum Failure {
    /// The corpus could not be read.
    Corpus(std::io::Error),
    /// An input made the target panic.
    Crash {
        /// The input.
        input: Vec<u8>,
        /// The panic messages, in order.
        panics: Vec<String>,
        /// Where the input was saved, when it could be.
        saved: Option<PathBuf>,
    },
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Corpus(e) => write!(f, "cannot read the seed corpus: {e}"),
            Self::Crash {
                input,
                panics,
                saved,
            } => {
                write!(f, "crash: {}", panics.join(" / then: "))?;
                if let Some(saved) = saved {
                    write!(f, "\n  input saved as {}", saved.display())?;
                }
                write!(
                    f,
                    "\n  input ({} bytes): \"{}\"",
                    input.len(),
                    input.escape_ascii()
                )
            }
        }
    }
}

static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Records every panic, on any thread, for the driver to collect after each
/// input; the default hook still prints it.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            let message = format!("thread {:?}: {info}", thread.name().unwrap_or("unnamed"));
            if let Ok(mut panics) = PANICS.lock() {
                panics.push(message);
            }
            default(info);
        }));
    });
}

fn take_panics() -> Vec<String> {
    PANICS
        .lock()
        .map(|mut panics| std::mem::take(&mut *panics))
        .unwrap_or_default()
}

/// Runs `target` on every seed, then on mutants until `plan.duration` is spent.
pub fn run(target: &Target, plan: &Plan) -> Result<Summary, Failure> {
    install_panic_hook();
    let corpus: Vec<Vec<u8>> = seeds(target.name)
        .map_err(Failure::Corpus)?
        .into_iter()
        .map(|(_, input)| input)
        .collect();
    let folder = plan.artifacts.join(target.name);
    let current = folder.join("current");
    let _ = std::fs::create_dir_all(&folder);
    let started = Instant::now();
    let try_one = |input: &[u8]| {
        let _ = std::fs::write(&current, input);
        one(target, input, &folder)
    };
    for seed in &corpus {
        try_one(seed)?;
    }
    let mut inputs = corpus.len() as u64;
    let mut rng = StdRng::seed_from_u64(plan.seed);
    let mut input = Vec::new();
    let mutation_start = Instant::now();
    while mutation_start.elapsed() < plan.duration && !corpus.is_empty() {
        input.clear();
        input.extend_from_slice(&corpus[inputs as usize % corpus.len()]);
        mutate(
            &mut rng,
            &mut input,
            &corpus,
            target.dictionary,
            target.max_len,
        );
        try_one(&input)?;
        inputs += 1;
    }
    let _ = std::fs::remove_file(&current);
    Ok(Summary {
        seeds: corpus.len(),
        inputs,
        elapsed: started.elapsed(),
    })
}

/// Runs one input; a panic anywhere during it is a crash.
pub fn one(target: &Target, input: &[u8], artifacts: &Path) -> Result<(), Failure> {
    install_panic_hook();
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| (target.run)(input)));
    let panics = take_panics();
    if outcome.is_ok() && panics.is_empty() {
        return Ok(());
    }
    let saved = save(artifacts, input);
    Err(Failure::Crash {
        input: input.to_vec(),
        panics,
        saved,
    })
}

fn save(folder: &Path, input: &[u8]) -> Option<PathBuf> {
    // FNV-1a: a stable name per input, no dependency.
    let hash = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let path = folder.join(format!("crash-{hash:016x}"));
    std::fs::create_dir_all(folder).ok()?;
    std::fs::write(&path, input).ok()?;
    Some(path)
}
