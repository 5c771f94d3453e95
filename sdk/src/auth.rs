//! Plugins of kind `auth` (WIT world `auth`): decide, once per connection
//! attempt and before the upgrade, who may open a WebSocket or an SSE stream,
//! and again when a connected client sends `refresh` with a new token.
//!
//! An admission may carry an expiry ([`Verdict::allow_until`], for example a
//! token's `exp`): the gateway tells the client (`expires_at` in `welcome`)
//! and closes the connection with 4001 at that time unless a `refresh` with a
//! newer token extended it.
//!
//! ```no_run
//! use ferrygate_sdk::{Auth, ConnectRequest, Identity, Result, Verdict};
//!
//! /// Admits clients whose token is one of the configured API keys.
//! struct ApiKeys;
//!
//! #[derive(serde::Deserialize)]
//! struct Config { keys: std::collections::HashMap<String, String> } // key -> user
//!
//! impl Auth for ApiKeys {
//!     type Config = Config;
//!     fn authenticate(config: &Config, request: &ConnectRequest) -> Result<Verdict> {
//!         let Some(token) = request.token.as_deref() else {
//!             return Ok(Verdict::unauthorized("missing token"));
//!         };
//!         Ok(match config.keys.get(token) {
//!             Some(user) => Verdict::allow(Identity::for_user(user.as_str())),
//!             None => Verdict::unauthorized("unknown key"),
//!         })
//!     }
//! }
//!
//! ferrygate_sdk::export_auth!(ApiKeys);
//! ```

use ferrygate_sdk_auth_world::exports::ferrygate::plugin::authenticate as wit;
use serde::de::DeserializeOwned;

use crate::{Identity, Result};

/// An auth plugin. Export it with [`export_auth!`](crate::export_auth).
pub trait Auth {
    /// The plugin's `config` table, parsed once per instance.
    type Config: DeserializeOwned + Send + Sync + 'static;

    /// Decides on one connection attempt. An `Err` fails the call, and the
    /// gateway refuses the connection unless `on_error = "allow"`.
    fn authenticate(config: &Self::Config, request: &ConnectRequest) -> Result<Verdict>;
}

/// An HTTP upgrade request to `GET /ws`, a `GET /sse`, or a `refresh` on a
/// connection already open (then every field but `token` and `now_unix_ms`
/// repeats the connection's original request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    /// The request path, without the query (`/ws` or `/sse`).
    pub path: String,
    /// The raw query string without `?` (may be empty), percent-encoded as
    /// the client sent it.
    pub query: String,
    /// Every request header, names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    /// The peer's IP address and port, such as `203.0.113.7:51234`.
    pub remote_address: String,
    /// The token, if the client sent one: from `Authorization: Bearer T`,
    /// else `?token=T`, else a `Sec-WebSocket-Protocol` entry `bearer.T`.
    /// For a refresh, the token the `refresh` request carries (the headers
    /// and query still hold the original one).
    pub token: Option<String>,
    /// The gateway's time in milliseconds since the Unix epoch: plugins have
    /// no clock, so check expiry against this.
    pub now_unix_ms: u64,
}

impl ConnectRequest {
    /// The first header with this name (compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The gateway's time in whole seconds since the Unix epoch.
    pub fn now_unix_s(&self) -> u64 {
        self.now_unix_ms / 1000
    }
}

/// An admitted connection: who it is and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// Who the client is.
    pub identity: Identity,
    /// When the identity stops being valid, in milliseconds since the Unix
    /// epoch; `None` for never. A time already past refuses the connection
    /// (401) or the refresh (`forbidden`).
    pub expires_at_unix_ms: Option<u64>,
}

/// The outcome of a connection attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Admit the connection (or accept the refresh).
    Allow(Admission),
    /// Refuse it before the upgrade.
    Deny {
        /// 401 (who are you?) or 403 (not allowed); any other value is sent
        /// as 403.
        status: u16,
        /// Told to the client in the JSON body: keep secrets out of it.
        reason: String,
    },
}

impl Verdict {
    /// Admit as `identity`, with no expiry.
    pub fn allow(identity: Identity) -> Self {
        Self::Allow(Admission {
            identity,
            expires_at_unix_ms: None,
        })
    }

    /// Admit as `identity` until `expires_at_unix_ms` (milliseconds since the
    /// Unix epoch).
    pub fn allow_until(identity: Identity, expires_at_unix_ms: u64) -> Self {
        Self::Allow(Admission {
            identity,
            expires_at_unix_ms: Some(expires_at_unix_ms),
        })
    }

    /// Refuse with 401: the client did not prove who it is.
    pub fn unauthorized(reason: impl Into<String>) -> Self {
        Self::Deny {
            status: 401,
            reason: reason.into(),
        }
    }

    /// Refuse with 403: the client is known but not allowed.
    pub fn forbidden(reason: impl Into<String>) -> Self {
        Self::Deny {
            status: 403,
            reason: reason.into(),
        }
    }
}

/// Exports an [`Auth`] as the component's `auth` world. Call it once, at the
/// crate root of a `cdylib`.
#[macro_export]
macro_rules! export_auth {
    ($plugin:ty) => {
        const _: () = {
            use $crate::__private::auth_world::exports::ferrygate::plugin as exports;

            struct FerrygateAuthExport;

            static CONFIG: ::std::sync::OnceLock<<$plugin as $crate::Auth>::Config> =
                ::std::sync::OnceLock::new();

            impl exports::lifecycle::Guest for FerrygateAuthExport {
                fn init() -> ::std::result::Result<(), ::std::string::String> {
                    $crate::__private::init(&CONFIG)
                }
            }

            impl exports::authenticate::Guest for FerrygateAuthExport {
                fn authenticate(
                    request: exports::authenticate::ConnectRequest,
                ) -> exports::authenticate::Verdict {
                    $crate::__private::call_auth::<$plugin>(&CONFIG, request)
                }
            }

            $crate::__private::auth_world::export_auth_world!(
                FerrygateAuthExport with_types_in $crate::__private::auth_world
            );
        };
    };
}

/// Converts the call's arguments, runs the plugin, converts the result back.
#[doc(hidden)]
pub fn call<P: Auth>(
    slot: &std::sync::OnceLock<P::Config>,
    request: wit::ConnectRequest,
) -> wit::Verdict {
    let config = crate::runtime::config(slot);
    let request = ConnectRequest {
        path: request.path,
        query: request.query,
        headers: request.headers,
        remote_address: request.remote_address,
        token: request.token,
        now_unix_ms: request.now_unix_ms,
    };
    match crate::runtime::or_fail("authenticate", P::authenticate(config, &request)) {
        Verdict::Allow(admission) => wit::Verdict::Allow(wit::Admission {
            identity: admission.identity.into(),
            expires_at_unix_ms: admission.expires_at_unix_ms,
        }),
        Verdict::Deny { status, reason } => wit::Verdict::Deny(wit::Denial { status, reason }),
    }
}
