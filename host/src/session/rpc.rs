//! A client's `rpc`, and a publish the route plugin turned into one.
//!
//! A client's rpc first asks the route plugin of its method's route (the
//! method matched by `[[routes]]` as a channel name, presented to the plugin
//! as a publish: see `plugin::hooks::route`): a denial is `forbidden`, a
//! failed call goes as the plugin's `on_error` says, a rewrite or an `rpc`
//! decision names the method to call instead. Then the call takes one of the
//! connection's in-flight slots (`[server] max_inflight_rpc_per_connection`;
//! none free: `rate_limited`) and runs on its own task, with the caller's
//! identity for the backend. Owns the in-flight bound; touches no
//! subscription.

use std::sync::Arc;

use serde_json::value::RawValue;
use tokio::sync::Semaphore;

use super::Session;
use super::requests::plugin_error;
use crate::broker::{Caller, RpcError};
use crate::plugin::hooks::{Action, Routed};
use crate::protocol::{ChannelName, ErrorCode, Frame, ProtocolError, RequestId};

/// The rpcs of one connection that await an answer.
#[derive(Debug)]
pub(super) struct InFlight {
    /// Made at the first rpc: most connections never call one, and an idle
    /// connection's memory counts (docs/benchmarks.md section 1).
    slots: std::sync::OnceLock<Arc<Semaphore>>,
    limit: usize,
}

impl InFlight {
    /// Room for `limit` rpcs at once.
    pub(super) fn new(limit: usize) -> Self {
        Self {
            slots: std::sync::OnceLock::new(),
            limit,
        }
    }

    fn slots(&self) -> &Arc<Semaphore> {
        self.slots
            .get_or_init(|| Arc::new(Semaphore::new(self.limit)))
    }
}

impl Session {
    /// `{"op":"rpc"}`: the route plugin decides, then [`Session::call`].
    pub(super) async fn rpc(
        &mut self,
        id: RequestId,
        method: ChannelName,
        data: Option<&RawValue>,
    ) {
        let data = data.map_or("null", RawValue::get);
        let plugins = self.gateway.plugins.current();
        let decided = match plugins.route_for(&method) {
            Some(route) => {
                route
                    .decide(Action::Rpc, &method, &self.connection, Some(data))
                    .await
            }
            None => Ok(Routed::Allow),
        };
        let method = match decided {
            Ok(Routed::Allow) => method,
            Ok(Routed::Rpc(chosen)) => chosen,
            Ok(Routed::Channels(chosen)) if chosen.len() == 1 => {
                chosen.into_iter().next().unwrap_or(method)
            }
            Ok(Routed::Deny(reason)) => {
                return self.refuse(Some(&id), ProtocolError::new(ErrorCode::Forbidden, reason));
            }
            // The route hook already turns these into `bad_output` failures
            // for an rpc; answered here so no request goes unanswered.
            Ok(Routed::Channels(_) | Routed::Drop) => {
                let error = ProtocolError::new(
                    ErrorCode::PluginError,
                    "the route plugin answered an rpc with fan-out or drop",
                );
                return self.refuse(Some(&id), error);
            }
            Err(error) => return self.refuse(Some(&id), plugin_error(&error)),
        };
        self.call(id, method, data.to_owned());
    }

    /// Sends `data` to the service behind `method` on its own task, so that a
    /// slow backend never stops this connection from reading; the answer is
    /// the reply to `id`. Refused `rate_limited` when every in-flight slot
    /// of the connection is taken.
    pub(super) fn call(&mut self, id: RequestId, method: ChannelName, data: String) {
        let Ok(slot) = Arc::clone(self.rpcs.slots()).try_acquire_owned() else {
            let error = ProtocolError::new(
                ErrorCode::RateLimited,
                format!(
                    "too many rpcs awaiting an answer ({} per connection)",
                    self.rpcs.limit
                ),
            );
            return self.refuse(Some(&id), error);
        };
        let gateway = Arc::clone(&self.gateway);
        let outbox = Arc::clone(&self.outbox);
        let conn = self.connection.id.clone();
        let user = self.connection.identity.user.clone();
        let timeout = gateway.config.broker.rpc_timeout();
        tokio::spawn(async move {
            let caller = Caller {
                user: user.as_deref(),
                conn: &conn,
            };
            let answer = gateway
                .broker
                .request(&method, &data, caller, timeout)
                .await;
            drop(slot);
            let frame = match answer {
                Ok(result) => Frame::ok_with(&id, &result),
                Err(error) => {
                    let code = match &error {
                        RpcError::NoResponders(_) | RpcError::Broker(_) => ErrorCode::Unavailable,
                        RpcError::Timeout(_) => ErrorCode::Timeout,
                    };
                    gateway.metrics.request_error(code);
                    Frame::error(Some(&id), &ProtocolError::new(code, error.to_string()))
                }
            };
            gateway.hub.push(&outbox, frame);
        });
    }
}
