//! Route plugin `channel-acl`: who may subscribe and publish on which
//! channels, and where allowed requests go.
//!
//! Access, checked on the channel the client named:
//! - subscribe: a `private` channel (default patterns `user.{user}` and
//!   `user.{user}.>`) only by the user its `{user}` token names; else a
//!   `public` pattern, or a pattern listed in the identity's
//!   `channels_claim` claim (as `jwt-auth` passes a token's claims on).
//! - publish: the first `publish` rule whose pattern matches decides
//!   (`allow = "anyone" | "signed-in" | "owner" | "nobody"`, or
//!   `claim` + `equals`); with no rule, the owner of a private channel or
//!   the `channels_claim` patterns allow it. Public channels are
//!   subscribe-only unless a rule says otherwise.
//! - rpc: the gateway presents a client's `rpc` as a publish on the channel
//!   named by its method, so the same `publish` rules decide who may call a
//!   method: `{ channels = "orders.>", allow = "signed-in" }`,
//!   `{ channels = "admin.>", claim = "role", equals = "admin" }`. Keep
//!   method and channel names apart by their first token when callers and
//!   publishers differ.
//!
//! Routing, once allowed: the first `rpc` rule (publish, and so rpc), else
//! the first `fan_out` rule (which an rpc cannot take: the call fails), else
//! the first `rewrite` rule (for an rpc: the method called instead); templates take
//! `{1}`, `{2}`... (what the pattern's `*`/`>` matched) and `{user}`.
//!
//! ```toml
//! [plugins.acl.config]
//! public = ["news.*", "chat.*"]
//! channels_claim = "channels"
//! publish = [
//!   { channels = "chat.*", allow = "signed-in" },
//!   { channels = "user.{user}.inbox", allow = "anyone" },
//!   { channels = "news.*", claim = "role", equals = "editor" },
//! ]
//! rewrite = [{ channels = "chat.*", to = "chat.{1}.eu" }]
//! fan_out = [{ channels = "alerts.*", to = ["alerts.{1}.eu", "alerts.{1}.us"] }]
//! rpc = [{ channels = "orders.*", method = "orders.{1}" }]
//! ```
//!
//! Patterns are NATS style: `*` is one dot-separated token, `>` the rest.

use ferrygate_sdk::{Decision, Result, Route, RouteRequest};

mod config;
mod decide;
mod pattern;

pub use config::Config;

struct ChannelAcl;

impl Route for ChannelAcl {
    type Config = Config;

    fn route(config: &Config, request: &RouteRequest) -> Result<Decision> {
        Ok(decide::decide(config, request))
    }
}

ferrygate_sdk::export_route!(ChannelAcl);

#[cfg(test)]
mod tests;
