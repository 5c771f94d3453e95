//! libFuzzer entry point for the `request` target (`cargo xtask fuzz request`); the body is
//! [`ferrygate_fuzz::targets::request`], the same function the stable driver runs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferrygate_fuzz::targets::request(data));
