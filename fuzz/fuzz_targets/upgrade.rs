//! libFuzzer entry point for the `upgrade` target (`cargo xtask fuzz upgrade`); the body is
//! [`ferrygate_fuzz::targets::upgrade`], the same function the stable driver runs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferrygate_fuzz::targets::upgrade(data));
