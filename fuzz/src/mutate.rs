//! The stable driver's mutator: small random edits of a seed, biased toward
//! the bytes and tokens that matter to the target's grammar.
//!
//! No coverage feedback (that needs compiler instrumentation, which is what
//! `cargo fuzz` adds): the driver keeps mutating the committed seeds, so its
//! reach is what a few stacked edits of them can find. Deterministic for a
//! given random generator state, so a run is repeatable from its seed.

use rand::Rng;
use rand::rngs::StdRng;

/// Bytes that change a parser's path: quotes, escapes, brackets, separators,
/// line ends, NUL, invalid UTF-8 leads.
const INTERESTING: &[u8] = b"\"\\{}[]:,.*>%$\n\r\t \x00\x7f\x80\xc0\xff09-+eE";

/// Most edits stacked on one seed per input.
const MAX_EDITS: usize = 6;

/// Replaces `input` with a mutant of itself: one to `MAX_EDITS` edits,
/// tokens from `dictionary` and pieces of `corpus`, never longer than `max_len`.
pub fn mutate(
    rng: &mut StdRng,
    input: &mut Vec<u8>,
    corpus: &[Vec<u8>],
    dictionary: &[&str],
    max_len: usize,
) {
    let edits = rng.random_range(1..=MAX_EDITS);
    for _ in 0..edits {
        edit(rng, input, corpus, dictionary);
    }
    input.truncate(max_len);
}

fn edit(rng: &mut StdRng, input: &mut Vec<u8>, corpus: &[Vec<u8>], dictionary: &[&str]) {
    let len = input.len();
    let at = |rng: &mut StdRng| rng.random_range(0..=len);
    match rng.random_range(0..10) {
        0 if len > 0 => {
            let i = rng.random_range(0..len);
            input[i] ^= 1 << rng.random_range(0..8);
        }
        1 if len > 0 => {
            let i = rng.random_range(0..len);
            input[i] = INTERESTING[rng.random_range(0..INTERESTING.len())];
        }
        2 => {
            let i = at(rng);
            input.insert(i, rng.random());
        }
        3 if len > 0 => {
            let start = rng.random_range(0..len);
            let end = (start + rng.random_range(1..=16)).min(len);
            input.drain(start..end);
        }
        4 if len > 0 => {
            let start = rng.random_range(0..len);
            let end = (start + rng.random_range(1..=32)).min(len);
            let chunk = input[start..end].to_vec();
            let i = at(rng);
            input.splice(i..i, chunk);
        }
        5 | 6 if !dictionary.is_empty() => {
            let token = dictionary[rng.random_range(0..dictionary.len())].as_bytes();
            let i = at(rng);
            if rng.random_bool(0.5) || len == 0 {
                input.splice(i..i, token.iter().copied());
            } else {
                let end = (i + token.len()).min(len);
                input.splice(i..end, token.iter().copied());
            }
        }
        7 if !corpus.is_empty() => {
            let other = &corpus[rng.random_range(0..corpus.len())];
            if !other.is_empty() {
                let start = rng.random_range(0..other.len());
                let end = (start + rng.random_range(1..=64)).min(other.len());
                let i = at(rng);
                input.splice(i..i, other[start..end].iter().copied());
            }
        }
        8 if len > 0 => input.truncate(rng.random_range(0..len)),
        9 if len > 0 => {
            // A repeated run (deep nesting, long tokens): what recursion and
            // length limits are for.
            let start = rng.random_range(0..len);
            let end = (start + rng.random_range(1..=4)).min(len);
            let chunk = input[start..end].to_vec();
            let times = rng.random_range(2..=512);
            let i = at(rng);
            input.splice(
                i..i,
                chunk.iter().copied().cycle().take(chunk.len() * times),
            );
        }
        _ => {
            let i = at(rng);
            input.insert(i, INTERESTING[rng.random_range(0..INTERESTING.len())]);
        }
    }
}
