//! Fuzzing for ferrygate's parsers of untrusted input, on stable Rust.
//!
//! Owns the fuzz target bodies ([`targets`]: one `fn(&[u8])` each, driven
//! through the gateway's public entry points only), a small mutation driver
//! that runs them without a nightly compiler ([`driver`], [`mutate`]), and the
//! committed seed corpora under `fuzz/corpus/<target>/`. The same bodies are
//! the libFuzzer targets in `fuzz_targets/` (feature `libfuzzer`, built by
//! `cargo fuzz`). Touches nothing in the gateway: a crash found here is fixed
//! where the code lives, and its input is kept in the corpus as a regression.
//! See `docs/fuzzing.md`.

pub mod driver;
pub mod mutate;
pub mod targets;
