//! The fuzz targets: each takes arbitrary bytes, feeds them to one parser of
//! untrusted input the way the gateway does, and panics when an invariant
//! breaks (a panic is the crash a fuzzer reports).
//!
//! Invariants common to all: no panic inside the gateway, and every JSON text
//! the gateway would send on (replies, pushes, broker envelopes) is valid JSON.

mod envelope;
mod manifest;
mod request;
mod upgrade;

use std::path::PathBuf;

pub use envelope::envelope;
pub use manifest::manifest;
pub use request::request;
pub use upgrade::upgrade;

/// One fuzz target as the drivers see it.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Name on the command line, of the seed folder and of the libFuzzer binary.
    pub name: &'static str,
    /// The body: runs one input, panics on a broken invariant.
    pub run: fn(&[u8]),
    /// Tokens the mutator splices in, so that mutants stay near the grammar.
    pub dictionary: &'static [&'static str],
    /// Longest input the stable driver builds, in bytes.
    pub max_len: usize,
}

/// Every target, in the order `all` runs them.
pub const TARGETS: [Target; 4] = [
    Target {
        name: "request",
        run: request,
        dictionary: request::DICTIONARY,
        max_len: 4096,
    },
    Target {
        name: "manifest",
        run: manifest,
        dictionary: manifest::DICTIONARY,
        max_len: 8192,
    },
    Target {
        name: "envelope",
        run: envelope,
        dictionary: envelope::DICTIONARY,
        max_len: 4096,
    },
    Target {
        name: "upgrade",
        run: upgrade,
        dictionary: upgrade::DICTIONARY,
        max_len: 8192,
    },
];

/// The target called `name`.
pub fn by_name(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// `fuzz/corpus/<name>`: the committed seeds (and regressions) of a target.
pub fn corpus_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(name)
}

/// Every file in the target's corpus folder, sorted by name.
pub fn seeds(name: &str) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut seeds = Vec::new();
    for entry in std::fs::read_dir(corpus_dir(name))? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            let file = entry.file_name().to_string_lossy().into_owned();
            seeds.push((file, std::fs::read(entry.path())?));
        }
    }
    seeds.sort();
    Ok(seeds)
}

/// Panics unless `text` is one valid JSON value.
fn assert_json(what: &str, text: &str) {
    if let Err(e) = serde_json::from_str::<&serde_json::value::RawValue>(text) {
        panic!("{what} is not valid JSON ({e}): {text:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every committed seed and regression input passes its target: the
    /// crashes the fuzzers found stay fixed.
    #[test]
    fn every_corpus_input_passes_its_target() {
        for target in &TARGETS {
            let seeds = seeds(target.name).expect("the corpus folder is readable");
            assert!(!seeds.is_empty(), "{} has no seeds", target.name);
            for (file, input) in seeds {
                let outcome = std::panic::catch_unwind(|| (target.run)(&input));
                assert!(outcome.is_ok(), "{}/{file} fails", target.name);
            }
        }
    }
}
