//! The calls the gateway makes into plugins, one file per world: each turns
//! gateway values into WIT records, calls through `Plugin::call`, and checks
//! the answer before anything acts on it (a channel a route plugin names must
//! be valid, a transform's output must be JSON within the size limit, an
//! identity must be usable). An unusable answer is a `bad_output` failure.

mod auth;
mod route;
mod transform;

pub use auth::{AuthOutcome, ConnectRequest};
pub use route::{Action, Routed};
pub use transform::Transformed;

use super::instance::Plugin;

/// The error a hook returns when its plugin is of another kind; the plugin
/// set only ever hands a hook plugins of its kind, so this guards a bug.
fn wrong_kind(plugin: &Plugin, expected: &str) -> wasmtime::Error {
    wasmtime::format_err!("plugin `{}` is not a {expected} plugin", plugin.name())
}
