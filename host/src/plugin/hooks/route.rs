//! `route`: one call per subscribe, publish or rpc on a channel bound to the
//! plugin.
//!
//! WIT `ferrygate:plugin@0.2.0` has only the `subscribe` and `publish`
//! actions, and a component-model enum cannot gain a case without breaking
//! every plugin already built against it. So an rpc is presented as a
//! `publish` whose channel is the method and whose data is the rpc's data: a
//! rule that lets a client publish on `orders.get` lets it call `orders.get`
//! (see `docs/plugins.md`, "rpc and the route plugin").

use super::wrong_kind;
use crate::metrics::Cause;
use crate::plugin::bindings::Connection;
use crate::plugin::bindings::route::exports::ferrygate::plugin::router::{
    self, Decision, RouteRequest,
};
use crate::plugin::instance::{CallError, Exports, Plugin};
use crate::plugin::recording;
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
    /// An rpc, the method as the channel; the plugin sees a `publish`.
    Rpc,
}

/// The checked decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routed {
    /// As asked.
    Allow,
    /// Refused, with the reason for the client.
    Deny(String),
    /// These channels instead (a rewrite is a list of one). For an rpc,
    /// always one: the method to call instead.
    Channels(Vec<ChannelName>),
    /// Publish and rpc: an rpc to this method.
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
        let result = self.route_once(action, channel, connection, data).await;
        if let Some(recorder) = &self.recorder {
            let live = recording::route_decision(&result);
            let input = recording::route_input(action, channel.as_str(), connection, data, live);
            recorder.write(&self.name, &input);
        }
        result
    }

    async fn route_once(
        &self,
        action: Action,
        channel: &ChannelName,
        connection: &Connection,
        data: Option<&str>,
    ) -> Result<Routed, CallError> {
        let request = RouteRequest {
            action: match action {
                Action::Subscribe => router::Action::Subscribe,
                Action::Publish | Action::Rpc => router::Action::Publish,
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
        match check(action, decision) {
            Ok(Routed::Deny(reason)) => Ok(Routed::Deny(self.redacted(reason))),
            Ok(routed) => Ok(routed),
            Err(problem) => {
                let error = self.error(Cause::bad_output, problem);
                self.record(&error);
                Err(error)
            }
        }
    }
}

fn check(action: Action, decision: Decision) -> Result<Routed, String> {
    let channel =
        |name: String| ChannelName::new(&name).map_err(|e| format!("named channel {name:?}: {e}"));
    Ok(match decision {
        Decision::Allow => Routed::Allow,
        Decision::Deny(reason) => Routed::Deny(reason),
        Decision::Rewrite(name) => Routed::Channels(vec![channel(name)?]),
        Decision::FanOut(_) if action == Action::Rpc => {
            return Err("an rpc calls one method: `fan-out` does not apply".to_owned());
        }
        Decision::FanOut(names) => {
            if names.is_empty() || names.len() > MAX_FAN_OUT {
                return Err(format!("fan-out must name 1-{MAX_FAN_OUT} channels"));
            }
            Routed::Channels(names.into_iter().map(channel).collect::<Result<_, _>>()?)
        }
        Decision::Rpc(method) if action != Action::Subscribe => Routed::Rpc(channel(method)?),
        Decision::Drop if action == Action::Publish => Routed::Drop,
        Decision::Rpc(_) => return Err("`rpc` does not apply to a subscribe".to_owned()),
        Decision::Drop => return Err("`drop` applies to publishes only".to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> ChannelName {
        ChannelName::new(text).expect("valid name")
    }

    #[test]
    fn an_rpc_takes_allow_deny_rewrite_and_rpc_but_not_fan_out_or_drop() {
        assert_eq!(check(Action::Rpc, Decision::Allow), Ok(Routed::Allow));
        assert_eq!(
            check(Action::Rpc, Decision::Deny("no".into())),
            Ok(Routed::Deny("no".into()))
        );
        assert_eq!(
            check(Action::Rpc, Decision::Rewrite("orders.v2".into())),
            Ok(Routed::Channels(vec![name("orders.v2")]))
        );
        assert_eq!(
            check(Action::Rpc, Decision::Rpc("orders.v3".into())),
            Ok(Routed::Rpc(name("orders.v3")))
        );
        assert!(check(Action::Rpc, Decision::FanOut(vec!["a".into()])).is_err());
        assert!(check(Action::Rpc, Decision::Drop).is_err());
        assert!(check(Action::Rpc, Decision::Rpc("a b".into())).is_err());
        assert!(check(Action::Subscribe, Decision::Rpc("a".into())).is_err());
        assert_eq!(check(Action::Publish, Decision::Drop), Ok(Routed::Drop));
    }
}
