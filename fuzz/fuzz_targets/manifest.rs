//! libFuzzer entry point for the `manifest` target (`cargo xtask fuzz manifest`); the body is
//! [`ferrygate_fuzz::targets::manifest`], the same function the stable driver runs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferrygate_fuzz::targets::manifest(data));
