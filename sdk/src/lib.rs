//! Write ferrygate plugins in Rust: a plugin is a type that implements one of
//! three traits, [`Auth`], [`Route`] or [`Transform`], and one macro call that
//! exports it as a WebAssembly component of the matching WIT world.
//!
//! The SDK hides the generated bindings. It reads the plugin's `config` table
//! from the manifest once per instance (in `lifecycle.init`), deserializes it
//! with serde into the plugin's `Config` type and hands it to every call; a
//! config that does not parse stops the plugin from loading, with serde's
//! message naming the field. It logs through the host ([`log`]) and installs a
//! panic hook that logs the panic message before the call traps.
//!
//! The smallest useful transform, which tags every object payload:
//!
//! ```no_run
//! use ferrygate_sdk::{Message, Outcome, Result, Transform};
//!
//! #[derive(serde::Deserialize)]
//! struct Config { tag: String }
//!
//! struct Tagger;
//!
//! impl Transform for Tagger {
//!     type Config = Config;
//!     fn transform(config: &Config, message: Message) -> Result<Outcome> {
//!         let mut payload = message.json()?;
//!         if let Some(object) = payload.as_object_mut() {
//!             object.insert("tag".into(), config.tag.clone().into());
//!         }
//!         Ok(Outcome::keep_json(&payload))
//!     }
//! }
//!
//! ferrygate_sdk::export_transform!(Tagger);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` from a
//! `cdylib` crate. The SDK also compiles for the host target, so a plugin's
//! logic can be unit-tested with plain `cargo test`; there, [`log`] writes to
//! stderr.
//!
//! # Errors and traps
//! A denial is an ordinary value ([`Verdict::Deny`], [`Decision::Deny`]). An
//! [`Err`] returned by a plugin function means the plugin itself failed: the
//! SDK logs it and traps, and the gateway handles the call as the plugin's
//! `on_error` says (`deny` by default).
//!
//! # Layout
//! - [`auth`], [`route`], [`transform`]: one module per plugin kind: the trait,
//!   its request and result types, and its `export_*!` macro.
//! - [`types`]: the identity and connection every kind may be told about.
//! - [`log`]: logging through the host.
//! - [`Error`], [`Result`], [`parse_config`], [`NoConfig`]: shared plumbing.

#![deny(missing_docs)]

pub mod auth;
mod error;
pub mod log;
pub mod route;
mod runtime;
pub mod transform;
pub mod types;

pub use auth::{Admission, Auth, ConnectRequest, Verdict};
pub use error::{Error, NoConfig, Result, parse_config};
pub use route::{Action, Decision, Route, RouteRequest};
pub use serde_json;
pub use transform::{Direction, Message, Outcome, Transform};
pub use types::{Connection, Identity};

/// What the `export_*!` macros expand to. Not public API: it may change in
/// any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::auth::call as call_auth;
    pub use crate::route::call as call_route;
    pub use crate::runtime::{config, init};
    pub use crate::transform::call as call_transform;
    pub use ferrygate_sdk_auth_world as auth_world;
    pub use ferrygate_sdk_route_world as route_world;
    pub use ferrygate_sdk_transform_world as transform_world;
}
