//! `route`: one call per subscribe or publish on a channel bound to the plugin.

use super::wrong_kind;
use crate::metrics::Cause;
use crate::plugin::bindings::Connection;
use crate::plugin::bindings::route::exports::ferrygate::plugin::router::{
    self, Decision, RouteRequest,
};
use crate::plugin::instance::{CallError, Exports, Plugin};
use crate::protocol::ChannelName;

/// Most channels one fan-out decision may name.
pub const MAX_FAN_OUT: usize = 64;

/// What the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A subscribe.
    Subscribe,
    /// A publish.
    Publish,
}

/// The checked decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routed {
    /// As asked.
    Allow,
    /// Refused, with the reason for the client.
    Deny(String),
    /// These channels instead (a rewrite is a list of one).
    Channels(Vec<ChannelName>),
    /// Publish only: an rpc to this method.
    Rpc(ChannelName),
    /// Publish only: acknowledge, deliver nothing.
    Drop,
}

impl Plugin {
    /// Asks the route plugin where `action` on `channel` goes.
    pub async fn route(
        &self,
        action: Action,
        channel: &ChannelName,
        connection: &Connection,
        data: Option<&str>,
    ) -> Result<Routed, CallError> {
        let request = RouteRequest {
            action: match action {
                Action::Subscribe => router::Action::Subscribe,
                Action::Publish => router::Action::Publish,
            },
            channel: channel.as_str().to_owned(),
            connection: connection.clone(),
            data: data.map(str::to_owned),
        };
        let decision = self
            .call(async |store, exports| match exports {
                Exports::Route(route) => {
                    route
                        .ferrygate_plugin_router()
                        .call_route(store, &request)
                        .await
                }
                _ => Err(wrong_kind(self, "route")),
            })
            .await?;
        check(action, decision).map_err(|problem| {
            let error = self.error(Cause::bad_output, problem);
            self.record(&error);
            error
        })
    }
}

fn check(action: Action, decision: Decision) -> Result<Routed, String> {
    let channel =
        |name: String| ChannelName::new(&name).map_err(|e| format!("named channel {name:?}: {e}"));
    Ok(match decision {
        Decision::Allow => Routed::Allow,
        Decision::Deny(reason) => Routed::Deny(reason),
        Decision::Rewrite(name) => Routed::Channels(vec![channel(name)?]),
        Decision::FanOut(names) => {
            if names.is_empty() || names.len() > MAX_FAN_OUT {
                return Err(format!("fan-out must name 1-{MAX_FAN_OUT} channels"));
            }
            Routed::Channels(names.into_iter().map(channel).collect::<Result<_, _>>()?)
        }
        Decision::Rpc(method) if action == Action::Publish => Routed::Rpc(channel(method)?),
        Decision::Drop if action == Action::Publish => Routed::Drop,
        Decision::Rpc(_) | Decision::Drop => {
            return Err("`rpc` and `drop` apply to publishes only".to_owned());
        }
    })
}
