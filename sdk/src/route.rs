//! Plugins of kind `route` (WIT world `route`): decide where a subscribe, a
//! publish or an rpc goes, for the channels a `[[routes]]` entry binds to the
//! plugin.
//!
//! An rpc arrives as [`Action::Publish`] whose `channel` is the method and
//! whose `data` is the rpc's data (the WIT `action` enum has no case of its
//! own for it; adding one would break every plugin already built), so a rule
//! that lets a client publish on `orders.get` lets it call `orders.get`. For
//! an rpc, [`Decision::Allow`] calls the method, [`Decision::Rewrite`] and
//! [`Decision::Rpc`] call the method they name instead, [`Decision::Deny`]
//! refuses it, and [`Decision::FanOut`] or [`Decision::Drop`] fail the call.
//!
//! ```no_run
//! use ferrygate_sdk::{Decision, Route, RouteRequest, Result};
//!
//! /// Sends publishes on `orders.*` to the `orders.create` rpc; others pass.
//! struct Orders;
//!
//! impl Route for Orders {
//!     type Config = ferrygate_sdk::NoConfig;
//!     fn route(_: &Self::Config, request: &RouteRequest) -> Result<Decision> {
//!         if request.user().is_none() {
//!             return Ok(Decision::deny("sign in first"));
//!         }
//!         Ok(match request.action {
//!             ferrygate_sdk::Action::Publish => Decision::Rpc("orders.create".into()),
//!             ferrygate_sdk::Action::Subscribe => Decision::Allow,
//!         })
//!     }
//! }
//!
//! ferrygate_sdk::export_route!(Orders);
//! ```

use ferrygate_sdk_route_world::exports::ferrygate::plugin::router as wit;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Connection, Result};

/// A route plugin. Export it with [`export_route!`](crate::export_route).
pub trait Route {
    /// The plugin's `config` table, parsed once per instance.
    type Config: DeserializeOwned + Send + Sync + 'static;

    /// Decides on one subscribe, publish or rpc. An `Err` fails the call
    /// (see the crate docs).
    fn route(config: &Self::Config, request: &RouteRequest) -> Result<Decision>;
}

/// What the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `{"op":"subscribe"}`
    Subscribe,
    /// `{"op":"publish"}`, and `{"op":"rpc"}` with the method as the channel.
    Publish,
}

/// One request to route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRequest {
    /// Subscribe or publish.
    pub action: Action,
    /// The channel the client named.
    pub channel: String,
    /// The client.
    pub connection: Connection,
    /// For a publish or an rpc, the payload as JSON text (`null` for an rpc
    /// without data); `None` for a subscribe.
    pub data: Option<String>,
}

impl RouteRequest {
    /// The client's user id, if it has one.
    pub fn user(&self) -> Option<&str> {
        self.connection.user()
    }

    /// The publish payload parsed as JSON; `None` for a subscribe.
    pub fn data_json(&self) -> Result<Option<Value>> {
        match &self.data {
            Some(text) => Ok(Some(serde_json::from_str(text)?)),
            None => Ok(None),
        }
    }
}

/// What to do with a request. Every channel a decision names must be a valid
/// channel name, or the request fails with `plugin_error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead, as asked.
    Allow,
    /// Refuse: the client gets `forbidden` with this reason.
    Deny(String),
    /// Use this channel instead of the one asked for.
    Rewrite(String),
    /// Subscribe to, or publish to, each of these channels.
    FanOut(Vec<String>),
    /// Publish (and rpc) only: send the payload as an rpc to this method
    /// instead, and answer the client with the service's reply.
    Rpc(String),
    /// Publish only: acknowledge the client and deliver nothing.
    Drop,
}

impl Decision {
    /// Refuse with this reason.
    pub fn deny(reason: impl Into<String>) -> Self {
        Self::Deny(reason.into())
    }
}

/// Exports a [`Route`] as the component's `route` world. Call it once, at the
/// crate root of a `cdylib`.
#[macro_export]
macro_rules! export_route {
    ($plugin:ty) => {
        const _: () = {
            use $crate::__private::route_world::exports::ferrygate::plugin as exports;

            struct FerrygateRouteExport;

            static CONFIG: ::std::sync::OnceLock<<$plugin as $crate::Route>::Config> =
                ::std::sync::OnceLock::new();

            impl exports::lifecycle::Guest for FerrygateRouteExport {
                fn init() -> ::std::result::Result<(), ::std::string::String> {
                    $crate::__private::init(&CONFIG)
                }
            }

            impl exports::router::Guest for FerrygateRouteExport {
                fn route(request: exports::router::RouteRequest) -> exports::router::Decision {
                    $crate::__private::call_route::<$plugin>(&CONFIG, request)
                }
            }

            $crate::__private::route_world::export_route_world!(
                FerrygateRouteExport with_types_in $crate::__private::route_world
            );
        };
    };
}

/// Converts the call's arguments, runs the plugin, converts the result back.
#[doc(hidden)]
pub fn call<P: Route>(
    slot: &std::sync::OnceLock<P::Config>,
    request: wit::RouteRequest,
) -> wit::Decision {
    let config = crate::runtime::config(slot);
    let request = RouteRequest {
        action: match request.action {
            wit::Action::Subscribe => Action::Subscribe,
            wit::Action::Publish => Action::Publish,
        },
        channel: request.channel,
        connection: request.connection.into(),
        data: request.data,
    };
    match crate::runtime::or_fail("route", P::route(config, &request)) {
        Decision::Allow => wit::Decision::Allow,
        Decision::Deny(reason) => wit::Decision::Deny(reason),
        Decision::Rewrite(channel) => wit::Decision::Rewrite(channel),
        Decision::FanOut(channels) => wit::Decision::FanOut(channels),
        Decision::Rpc(method) => wit::Decision::Rpc(method),
        Decision::Drop => wit::Decision::Drop,
    }
}
