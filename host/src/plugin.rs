//! WebAssembly plugins: business logic the gateway core never contains.
//!
//! | module | owns |
//! |---|---|
//! | [`bindings`] | the host-side WIT bindings (the only place `bindgen!` runs) |
//! | [`runtime`] | the one wasmtime engine: pooling, epoch ticker, linker, compile |
//! | [`cache`] | the bounded caches: wasmtime's artifacts, compiled functions; content hashes |
//! | [`capabilities`] | each import's verdict: linked, granted, stubbed or refused |
//! | [`stubs`] | refusing implementations of ungranted WASI imports |
//! | [`store`] | an instance's store: memory cap, deadline, `host` imports |
//! | [`instance`] | a loaded plugin: warm instances and the call discipline |
//! | [`load`] | from a manifest entry to a checked, started plugin |
//! | [`recording`] | opt-in recording of a plugin's calls, for `plugin test` |
//! | [`set`] | one generation of plugins and the route table |
//! | [`live`] | the current generation, swapped atomically |
//! | [`reload`] | building the next generation from the manifest, and rollback |
//! | [`hooks`] | the calls the gateway makes: auth, route, transform |
//!
//! Nothing here touches sockets or sessions; the session and the HTTP
//! upgrade ask the current [`PluginSet`] and act on its answers.

pub mod bindings;
pub mod cache;
pub mod capabilities;
pub mod hooks;
pub mod instance;
pub mod live;
pub mod load;
pub mod recording;
pub mod reload;
pub mod runtime;
pub mod set;
pub mod store;
pub mod stubs;

pub use bindings::{Connection, Identity};
pub use instance::{CallError, Plugin};
pub use live::{LivePlugins, StartError};
pub use load::LoadError;
pub use reload::{Outcome, Reloader};
pub use runtime::Runtime;
pub use set::PluginSet;

use wasmtime_wasi::WasiCtx;

/// The WASI context of every instance: empty. No environment, arguments or
/// preopened directories; stdin is empty and stdout/stderr are discarded.
/// Clocks and randomness are reachable only by plugins whose `grants` let
/// their imports pass the capability check.
fn wasi_context() -> WasiCtx {
    WasiCtx::builder().build()
}

impl Identity {
    /// A connection nobody authenticated.
    pub fn anonymous() -> Self {
        Self {
            user: None,
            claims: "{}".to_owned(),
        }
    }
}
