//! What a plugin may import: the allow-list checked before a component is
//! linked, so that a plugin reaching for an ungranted capability fails to
//! load with a clear reason instead of failing (or succeeding) at call time.

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::config::Grant;

/// Interfaces every plugin may import. The `wasi:cli`, `wasi:io` and
/// `wasi:filesystem` entries are what a Rust `std` guest imports even when it
/// never uses them; with the gateway's empty WASI context they are inert (no
/// environment, no arguments, no preopened directory, empty stdin, discarded
/// stdout and stderr).
const ALWAYS: &[&str] = &[
    "ferrygate:plugin/host",
    "ferrygate:plugin/types",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
];

/// What each grant adds.
fn granted(grant: Grant) -> &'static [&'static str] {
    match grant {
        Grant::Clocks => &["wasi:clocks/wall-clock", "wasi:clocks/monotonic-clock"],
        Grant::Random => &[
            "wasi:random/random",
            "wasi:random/insecure",
            "wasi:random/insecure-seed",
        ],
    }
}

/// The first import of `component` that `grants` do not allow, if any.
pub fn ungranted_import(
    engine: &Engine,
    component: &Component,
    grants: &[Grant],
) -> Option<String> {
    let ty = component.component_type();
    ty.imports(engine)
        .map(|(name, _)| name)
        .find(|name| {
            // `wasi:io/streams@0.2.3` → `wasi:io/streams`
            let unversioned = name.split('@').next().unwrap_or(name);
            !ALWAYS.contains(&unversioned)
                && !grants
                    .iter()
                    .any(|grant| granted(*grant).contains(&unversioned))
        })
        .map(str::to_owned)
}
