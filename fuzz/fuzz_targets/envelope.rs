//! libFuzzer entry point for the `envelope` target (`cargo xtask fuzz envelope`); the body is
//! [`ferrygate_fuzz::targets::envelope`], the same function the stable driver runs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferrygate_fuzz::targets::envelope(data));
