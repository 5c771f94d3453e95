//! What an ungranted clock or randomness function answers while an instance
//! starts (instantiation and `init`), before the first call: a frozen clock
//! and a fixed byte sequence. The JavaScript runtime of componentize-js reads
//! the monotonic clock as it starts (and in every call: its event loop) and
//! componentize-py's seeds its hashing from `wasi:random`; refusing those
//! reads would make every default build unusable without grants. The answers
//! carry nothing from the host (no time, no entropy). Once `init` has
//! returned, the wall clock and randomness are refused again (see
//! [`super::link`]), so plugin code that reads the date or asks for random
//! bytes in a call fails that call instead of running on fake values; the
//! monotonic clock stays frozen ([`always_inert`]): it measures intervals
//! only, never a date, so a frozen one can make no expiry check pass, and a
//! loop waiting for it to advance is cut by the call's time limit.
//!
//! Owns the inert answers only; it never decides what is stubbed.

use wasmtime::component::Val;

/// Most bytes one inert `get-random-bytes` answers; a larger request is
/// refused like any call after the start. Runtimes ask for a seed (16-32
/// bytes); 4 KiB leaves room without letting a guest make the host allocate
/// at will.
pub const MAX_INERT_BYTES: u64 = 4096;

/// Whether `function` keeps its inert answer after `init`: the monotonic
/// clock's `now` and `resolution` (see the module docs).
pub fn always_inert(function: &str) -> bool {
    matches!(
        function,
        "wasi:clocks/monotonic-clock#now" | "wasi:clocks/monotonic-clock#resolution"
    )
}

/// A fixed, non-zero seed: some generators degenerate on an all-zero state.
const SEED: u64 = 0x6665_7272_7967_6174; // "ferrygat"

/// The inert answer of `function` (`interface#name`, interface unversioned)
/// for `params`, or `None` when the function has none (it creates a
/// resource, say) and is refused even while the instance starts.
pub fn answer(function: &str, params: &[Val]) -> Option<Vec<Val>> {
    let datetime = |nanoseconds| {
        Val::Record(vec![
            ("seconds".to_owned(), Val::U64(0)),
            ("nanoseconds".to_owned(), Val::U32(nanoseconds)),
        ])
    };
    let answer = match function {
        "wasi:clocks/monotonic-clock#now" => Val::U64(0),
        "wasi:clocks/monotonic-clock#resolution" => Val::U64(1),
        "wasi:clocks/wall-clock#now" => datetime(0),
        "wasi:clocks/wall-clock#resolution" => datetime(1),
        "wasi:random/random#get-random-u64" | "wasi:random/insecure#get-insecure-random-u64" => {
            Val::U64(splitmix(SEED))
        }
        "wasi:random/random#get-random-bytes"
        | "wasi:random/insecure#get-insecure-random-bytes" => {
            let Some(Val::U64(len)) = params.first() else {
                return None;
            };
            if *len > MAX_INERT_BYTES {
                return None;
            }
            Val::List(bytes(*len).map(Val::U8).collect())
        }
        "wasi:random/insecure-seed#insecure-seed" => {
            Val::Tuple(vec![Val::U64(splitmix(SEED)), Val::U64(splitmix(!SEED))])
        }
        _ => return None,
    };
    Some(vec![answer])
}

/// `len` bytes of the fixed sequence.
fn bytes(len: u64) -> impl Iterator<Item = u8> {
    (0..len).map(|i| splitmix(SEED.wrapping_add(i / 8)).to_le_bytes()[(i % 8) as usize])
}

/// One step of SplitMix64: spreads a fixed seed over all bits.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_are_frozen_and_random_is_fixed() {
        let now = answer("wasi:clocks/monotonic-clock#now", &[]);
        assert_eq!(now, Some(vec![Val::U64(0)]));
        let a = answer("wasi:random/random#get-random-bytes", &[Val::U64(16)]);
        let b = answer("wasi:random/random#get-random-bytes", &[Val::U64(16)]);
        assert_eq!(a, b);
        assert!(matches!(&a, Some(v) if matches!(&v[0], Val::List(l) if l.len() == 16)));
    }

    #[test]
    fn resources_and_big_requests_have_no_answer() {
        assert_eq!(
            answer(
                "wasi:clocks/monotonic-clock#subscribe-duration",
                &[Val::U64(1)]
            ),
            None
        );
        let big = Val::U64(MAX_INERT_BYTES + 1);
        assert_eq!(answer("wasi:random/random#get-random-bytes", &[big]), None);
    }
}
