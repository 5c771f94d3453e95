//! What each client request does: subscribe, unsubscribe, publish, ping
//! (rpc in `rpc.rs`, presence in `presence.rs`).
//!
//! Subscribes and publishes on a channel bound by `[[routes]]` first ask the
//! route plugin (allow, deny, rewrite, fan-out, rpc, drop); publishes then run
//! the route's inbound transforms once, before the message reaches the broker,
//! so fan-out costs the same with or without them.

use serde_json::value::RawValue;
use tokio::time::Instant;

use super::Session;
use crate::broker::BrokerError;
use crate::hub::Unsubscribed;
use crate::plugin::CallError;
use crate::plugin::hooks::{Action, Routed};
use crate::protocol::{ChannelName, ErrorCode, Frame, ProtocolError, Request, RequestId, Since};

impl Session {
    pub(super) async fn dispatch(&mut self, id: RequestId, request: Request<'_>) {
        // Only publishes overlap (see `pipeline`): anything else waits for
        // the answers of the publishes before it.
        if !matches!(request, Request::Publish { .. }) {
            self.pipeline.settle().await;
        }
        match request {
            Request::Subscribe { channel, since } => self.subscribe(id, channel, since).await,
            Request::Unsubscribe { channel } => self.unsubscribe(id, &channel),
            Request::Publish { channel, data } => self.publish(id, &channel, data).await,
            Request::Rpc { method, data } => self.rpc(id, method, data).await,
            Request::Ping => self.reply(Frame::ok(&id)),
            Request::Refresh { token } => self.refresh(id, token).await,
            Request::Presence {
                channel,
                limit,
                cursor,
            } => {
                let page = crate::presence::query::PageRequest::parse(limit, cursor.as_deref());
                self.presence(id, channel, page).await;
            }
        }
    }

    pub(super) async fn subscribe(
        &mut self,
        id: RequestId,
        channel: ChannelName,
        since: Option<Since>,
    ) {
        if self.subscriptions.contains(&channel) {
            self.reply(subscribe_ack(&id, since.is_some(), None));
            return;
        }
        let plugins = self.gateway.plugins.current();
        let decided = match plugins.route_for(&channel) {
            Some(route) => {
                route
                    .decide(Action::Subscribe, &channel, &self.connection, None)
                    .await
            }
            None => Ok(Routed::Allow),
        };
        let targets = match decided {
            Ok(Routed::Allow) => vec![channel.clone()],
            Ok(Routed::Channels(targets)) => targets,
            Ok(Routed::Deny(reason)) => {
                return self.refuse(Some(&id), ProtocolError::new(ErrorCode::Forbidden, reason));
            }
            // The route hook already turns these into `bad_output` failures
            // for a subscribe; answered here so no request goes unanswered.
            Ok(Routed::Rpc(_) | Routed::Drop) => {
                let error = ProtocolError::new(
                    ErrorCode::PluginError,
                    "the route plugin answered a subscribe with rpc or drop",
                );
                return self.refuse(Some(&id), error);
            }
            Err(error) => return self.refuse(Some(&id), plugin_error(&error)),
        };
        let limit = self.gateway.config.server.max_subscriptions_per_connection;
        if self.subscriptions.joined_len() + self.subscriptions.count_new(&targets) > limit {
            let error = ProtocolError::new(
                ErrorCode::Forbidden,
                format!("subscription limit reached ({limit} channels per connection)"),
            );
            return self.refuse(Some(&id), error);
        }
        let routed = (targets.as_slice() != [channel.clone()]).then(|| targets.clone());
        // Recorded before the broker wait, so that a session cut during it
        // still releases its broker interest in `leave_all`.
        let joining = self.subscriptions.add(channel.clone(), targets);
        self.gateway
            .metrics
            .subscriptions
            .inc_by(joining.len() as i64);
        // The ack waits for the broker's confirmation of every subscription:
        // a message published after the client read `ok` reaches it, from
        // whichever instance. Without it, the subscribe is refused and undone.
        // `join_all` registers every interest on its first poll.
        let broker = &self.gateway.broker;
        let joined =
            futures_util::future::join_all(joining.iter().map(|target| broker.join(target))).await;
        if let Some(error) = joined.into_iter().find_map(Result::err) {
            for target in self.subscriptions.remove(&channel).unwrap_or_default() {
                broker.leave(&target);
                self.gateway.metrics.subscriptions.dec();
            }
            return self.refuse(Some(&id), broker_error(&error));
        }
        // A subscribe that leads to one new channel with history gets its
        // position, and recovery with `since` (see `recover`).
        if let [target] = joining.as_slice()
            && routed.as_ref().is_none_or(|r| r.len() == 1)
            && let Some(policy) = crate::history::policy_for(&plugins, target)
        {
            let target = target.clone();
            self.subscribe_kept(id, channel.clone(), target.clone(), since, policy, routed)
                .await;
            if self.subscriptions.contains(&channel) {
                self.join_presence(&[target]).await;
            }
            return;
        }
        if since.is_some() {
            let unrecovered = Err(crate::history::recovery::Unrecovered::NoHistory);
            self.gateway.metrics.history.recovery(unrecovered);
        }
        let mut ack = Some(subscribe_ack(&id, since.is_some(), routed.as_deref()));
        for target in &joining {
            // The ack rides with the first join, so no push of that channel
            // can overtake it.
            self.gateway
                .hub
                .subscribe(target, self.subscriber(), ack.take());
        }
        if let Some(ack) = ack {
            self.reply(ack);
        }
        self.join_presence(&joining).await;
    }

    fn unsubscribe(&mut self, id: RequestId, channel: &ChannelName) {
        if !self.leave(channel) {
            let error =
                ProtocolError::new(ErrorCode::NotFound, format!("not subscribed to {channel}"));
            return self.refuse(Some(&id), error);
        }
        self.reply(Frame::ok(&id));
    }

    /// Leaves what `channel` led to; false when it was not subscribed.
    pub(super) fn leave(&mut self, channel: &ChannelName) -> bool {
        let Some(left) = self.subscriptions.remove(channel) else {
            return false;
        };
        for target in left {
            let result = self.gateway.hub.unsubscribe(&target, &self.conn);
            debug_assert_ne!(result, Unsubscribed::NotSubscribed, "session and hub agree");
            self.gateway.broker.leave(&target);
            let user = self.connection.identity.user.as_deref();
            self.gateway.presence.leave(&target, user, &self.conn);
            self.gateway.metrics.subscriptions.dec();
        }
        true
    }

    async fn publish(&mut self, id: RequestId, channel: &ChannelName, data: &RawValue) {
        if !self.publishes.try_take(Instant::now()) {
            let error = ProtocolError::new(ErrorCode::RateLimited, "publish rate exceeded");
            return self.refuse(Some(&id), error);
        }
        let plugins = self.gateway.plugins.current();
        let Some(route) = plugins.route_for(channel) else {
            return self
                .deliver(&id, std::slice::from_ref(channel), data.get())
                .await;
        };
        let decided = route
            .decide(Action::Publish, channel, &self.connection, Some(data.get()))
            .await;
        let targets = match decided {
            Ok(Routed::Allow) => vec![channel.clone()],
            Ok(Routed::Channels(targets)) => targets,
            Ok(Routed::Deny(reason)) => {
                return self.refuse(Some(&id), ProtocolError::new(ErrorCode::Forbidden, reason));
            }
            Ok(Routed::Rpc(method)) => {
                self.pipeline.settle().await;
                return self.call(id, method, data.get().to_owned());
            }
            Ok(Routed::Drop) => return self.reply(dropped(&id)),
            Err(error) => return self.refuse(Some(&id), plugin_error(&error)),
        };
        let max_bytes = self.gateway.config.server.max_frame_bytes;
        let transformed = route
            .transform_inbound(channel, Some(&self.connection), data.get(), max_bytes)
            .await;
        match transformed {
            Ok(Some(payload)) => self.deliver(&id, &targets, &payload).await,
            Ok(None) => self.reply(dropped(&id)),
            Err(error) => self.refuse(Some(&id), plugin_error(&error)),
        }
    }

    /// Hands `payload` to the broker for each of `channels`, then acknowledges.
    /// A payload too large for the broker is refused before the first channel.
    /// Plain publishes are awaited here; appends to channels with history are
    /// queued here, in order, and answered by `pipeline` once stored.
    async fn deliver(&mut self, id: &RequestId, channels: &[ChannelName], payload: &str) {
        if let Err(error) = self.gateway.broker.fits(payload) {
            return self.refuse(Some(id), broker_error(&error));
        }
        // Taken before anything is queued: a full pipeline stops the reading.
        let slot = self.pipeline.slot().await;
        let gateway = &self.gateway;
        let plugins = gateway.plugins.current();
        let mut kept = Vec::new();
        for channel in channels {
            let published = crate::history::publish(
                gateway.broker.as_ref(),
                &gateway.appender,
                &plugins,
                channel,
                payload,
            );
            match published {
                crate::history::Publishing::Kept(appended) => kept.push(appended),
                plain => {
                    if let Err(error) = plain.done().await {
                        return self.refuse(Some(id), broker_error(&error));
                    }
                    self.gateway.metrics.published("ws");
                }
            }
        }
        if kept.is_empty() {
            return self.reply(Frame::ok(id));
        }
        self.answer_when_kept(id.clone(), kept, slot);
    }
}

/// The answer to a publish that a route plugin (`drop`) or an inbound
/// transform dropped: `{"id":..,"ok":true,"result":{"dropped":true}}`, so the
/// publisher can tell it from a delivered one (`POST /v1/publish` answers
/// `{"dropped":true,"ok":true}`).
fn dropped(id: &RequestId) -> Frame {
    Frame::ok_with(id, r#"{"dropped":true}"#)
}

/// The `ok` for a subscribe to channels without history: says when recovery
/// was asked for but cannot be had, and which channels the route plugin chose
/// when they differ from the one asked for.
fn subscribe_ack(id: &RequestId, asked_recovery: bool, routed: Option<&[ChannelName]>) -> Frame {
    let mut result = serde_json::Map::new();
    if asked_recovery {
        result.insert("recovered".into(), false.into());
    }
    subscribe_result(id, result, routed)
}

/// `ok`, with `result` (plus `channels` when the route plugin rewrote the
/// channel) unless that is empty.
pub(super) fn subscribe_result(
    id: &RequestId,
    mut result: serde_json::Map<String, serde_json::Value>,
    routed: Option<&[ChannelName]>,
) -> Frame {
    if let Some(channels) = routed {
        let names = channels.iter().map(|c| c.as_str().into()).collect();
        result.insert("channels".into(), serde_json::Value::Array(names));
    }
    if result.is_empty() {
        Frame::ok(id)
    } else {
        Frame::ok_with(id, &serde_json::Value::Object(result).to_string())
    }
}

pub(super) fn broker_error(error: &BrokerError) -> ProtocolError {
    ProtocolError::new(error.code(), error.to_string())
}

pub(super) fn plugin_error(error: &CallError) -> ProtocolError {
    ProtocolError::new(
        ErrorCode::PluginError,
        format!("plugin `{}`: {}", error.plugin, error.cause_text()),
    )
}
