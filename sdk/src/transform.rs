//! Plugins of kind `transform` (WIT world `transform`): a payload in, a
//! payload out or dropped. On the publish path a transform runs once per
//! message, before fan-out.
//!
//! ```no_run
//! use ferrygate_sdk::{Message, Outcome, Result, Transform};
//!
//! /// Drops messages larger than `max_bytes`.
//! struct SizeLimit;
//!
//! #[derive(serde::Deserialize)]
//! struct Config { max_bytes: usize }
//!
//! impl Transform for SizeLimit {
//!     type Config = Config;
//!     fn transform(config: &Config, message: Message) -> Result<Outcome> {
//!         if message.data.len() > config.max_bytes {
//!             ferrygate_sdk::log::info!("dropped {} bytes on {}", message.data.len(), message.channel);
//!             return Ok(Outcome::Drop);
//!         }
//!         Ok(Outcome::Keep(message.data))
//!     }
//! }
//!
//! ferrygate_sdk::export_transform!(SizeLimit);
//! ```

use ferrygate_sdk_transform_world::exports::ferrygate::plugin::transformer as wit;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Connection, Result};

/// A transform plugin. Export it with [`export_transform!`](crate::export_transform).
pub trait Transform {
    /// The plugin's `config` table, parsed once per instance.
    type Config: DeserializeOwned + Send + Sync + 'static;

    /// Transforms one message. An `Err` fails the call (see the crate docs).
    fn transform(config: &Self::Config, message: Message) -> Result<Outcome>;
}

/// Which way a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// A client's publish, once per message, before fan-out.
    Inbound,
    /// Reserved for a per-recipient stage; this gateway version never sends it.
    Outbound,
}

/// One message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Inbound or outbound.
    pub direction: Direction,
    /// The channel the message is published on.
    pub channel: String,
    /// The publishing client (inbound) or the receiving one (outbound);
    /// `None` when the message comes from the HTTP API or a backend.
    pub connection: Option<Connection>,
    /// The payload, as JSON text.
    pub data: String,
}

impl Message {
    /// The payload parsed as JSON.
    pub fn json(&self) -> Result<Value> {
        Ok(serde_json::from_str(&self.data)?)
    }

    /// The sender's (or recipient's) user id, if any.
    pub fn user(&self) -> Option<&str> {
        self.connection.as_ref().and_then(Connection::user)
    }
}

/// What becomes of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Send this payload: JSON text (text that is not valid JSON fails the
    /// call). Return the input's `data` to keep it unchanged.
    Keep(String),
    /// Deliver nothing; the publisher is still acknowledged.
    Drop,
}

impl Outcome {
    /// Send this JSON value.
    pub fn keep_json(value: &Value) -> Self {
        Self::Keep(value.to_string())
    }
}

/// Exports a [`Transform`] as the component's `transform` world. Call it once,
/// at the crate root of a `cdylib`.
#[macro_export]
macro_rules! export_transform {
    ($plugin:ty) => {
        const _: () = {
            use $crate::__private::transform_world::exports::ferrygate::plugin as exports;

            struct FerrygateTransformExport;

            static CONFIG: ::std::sync::OnceLock<<$plugin as $crate::Transform>::Config> =
                ::std::sync::OnceLock::new();

            impl exports::lifecycle::Guest for FerrygateTransformExport {
                fn init() -> ::std::result::Result<(), ::std::string::String> {
                    $crate::__private::init(&CONFIG)
                }
            }

            impl exports::transformer::Guest for FerrygateTransformExport {
                fn transform(
                    message: exports::transformer::Message,
                ) -> exports::transformer::Outcome {
                    $crate::__private::call_transform::<$plugin>(&CONFIG, message)
                }
            }

            $crate::__private::transform_world::export_transform_world!(
                FerrygateTransformExport with_types_in $crate::__private::transform_world
            );
        };
    };
}

/// Converts the call's arguments, runs the plugin, converts the result back.
#[doc(hidden)]
pub fn call<P: Transform>(
    slot: &std::sync::OnceLock<P::Config>,
    message: wit::Message,
) -> wit::Outcome {
    let config = crate::runtime::config(slot);
    let message = Message {
        direction: match message.direction {
            wit::Direction::Inbound => Direction::Inbound,
            wit::Direction::Outbound => Direction::Outbound,
        },
        channel: message.channel,
        connection: message.connection.map(Connection::from),
        data: message.data,
    };
    match crate::runtime::or_fail("transform", P::transform(config, message)) {
        Outcome::Keep(data) => wit::Outcome::Keep(data),
        Outcome::Drop => wit::Outcome::Drop,
    }
}
