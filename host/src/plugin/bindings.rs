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

pub use auth::ferrygate::plugin::host::{self as host_api, LogLevel};
pub use auth::ferrygate::plugin::types::{Connection, Identity};
