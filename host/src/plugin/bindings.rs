//! The one home of the host-side WIT bindings: `wit/` is the only source of
//! the types and functions plugins and the gateway exchange.
//!
//! The `types` and `host` interfaces are generated once, with the `auth`
//! world, and shared by the other worlds through `with`, so that the host
//! implements them once. Exports are async so that a long call yields to the
//! executor at each epoch tick instead of blocking a worker thread.

/// The `auth` world, and the shared `types` and `host` interfaces.
pub mod auth {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "auth",
        exports: { default: async },
    });
}

/// The `route` world.
pub mod route {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "route",
        exports: { default: async },
        with: {
            "ferrygate:plugin/types": super::auth::ferrygate::plugin::types,
            "ferrygate:plugin/host": super::auth::ferrygate::plugin::host,
        },
    });
}

/// The `transform` world.
pub mod transform {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "transform",
        exports: { default: async },
        with: {
            "ferrygate:plugin/types": super::auth::ferrygate::plugin::types,
            "ferrygate:plugin/host": super::auth::ferrygate::plugin::host,
        },
    });
}

pub use auth::exports::ferrygate::plugin::authenticate::Admission;
pub use auth::ferrygate::plugin::host::{self as host_api, LogLevel};
pub use auth::ferrygate::plugin::types::{Connection, Identity};

/// The version of the WIT package `ferrygate:plugin` in `wit/`, the only one
/// this gateway loads. 0.2.0 added the auth admission's expiry; components
/// built against 0.1.0 must be rebuilt (see `docs/plugins.md`, "WIT versions").
///
/// Loading 0.1.0 components too would take a frozen copy of the 0.1.0 WIT,
/// a second `bindgen!` of its three worlds here (its `types` mapped onto
/// these with `with`, since they did not change; its `host` implemented by
/// delegation) and an old-or-new variant in `Pre`/`Exports` adapting
/// `allow(identity)` to an admission without expiry. It was left out of this
/// release: such components are refused with a message naming both versions.
pub const WIT_VERSION: &str = "0.2.0";

/// The first `ferrygate:plugin` version other than [`WIT_VERSION`] that
/// `component` imports or exports, such as `0.1.0`; `None` when it uses only
/// this gateway's version (or none at all, which the world check reports).
pub fn other_wit_version(
    engine: &wasmtime::Engine,
    component: &wasmtime::component::Component,
) -> Option<String> {
    let ty = component.component_type();
    let imports = ty.imports(engine).map(|(name, _)| name);
    let exports = ty.exports(engine).map(|(name, _)| name);
    imports
        .chain(exports)
        .filter_map(|name| name.strip_prefix("ferrygate:plugin/"))
        .filter_map(|rest| rest.split_once('@').map(|(_, version)| version))
        .find(|version| *version != WIT_VERSION)
        .map(str::to_owned)
}
