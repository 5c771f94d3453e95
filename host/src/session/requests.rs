//! What each client request does: subscribe, unsubscribe, publish, rpc, ping.

use std::sync::Arc;

use serde_json::value::RawValue;
use tokio::time::Instant;

use super::Session;
use crate::broker::RpcError;
use crate::hub::Unsubscribed;
use crate::protocol::{ChannelName, ErrorCode, Frame, ProtocolError, Request, RequestId, Since};

impl Session {
    pub(super) async fn dispatch(&mut self, id: RequestId, request: Request<'_>) {
        match request {
            Request::Subscribe { channel, since } => self.subscribe(id, channel, since).await,
            Request::Unsubscribe { channel } => self.unsubscribe(id, &channel),
            Request::Publish { channel, data } => self.publish(id, &channel, data).await,
            Request::Rpc { method, data } => self.rpc(id, method, data),
            Request::Ping => self.reply(Frame::ok(&id)),
        }
    }

    async fn subscribe(&mut self, id: RequestId, channel: ChannelName, since: Option<Since>) {
        // No channel keeps history yet, so a recovery request is answered
        // honestly: nothing was recovered, the client must re-sync itself.
        let ack = match since {
            Some(_) => Frame::ok_with(&id, r#"{"recovered":false}"#),
            None => Frame::ok(&id),
        };
        if self.subscriptions.contains(&channel) {
            self.reply(ack);
            return;
        }
        let limit = self.gateway.config.server.max_subscriptions_per_connection;
        if self.subscriptions.len() >= limit {
            let error = ProtocolError::new(
                ErrorCode::Forbidden,
                format!("subscription limit reached ({limit} channels per connection)"),
            );
            self.refuse(Some(&id), error);
            return;
        }
        // Recorded before the wait, so that a session cut during it still
        // releases its broker interest in `leave_all`.
        self.subscriptions.insert(channel.clone());
        self.gateway.metrics.subscriptions.inc();
        // The ack waits for the broker subscription: a message published
        // after the client read `ok` reaches it, from whichever instance.
        self.gateway.broker.join(&channel).await;
        self.gateway.hub.subscribe(&channel, self.subscriber(), ack);
    }

    fn unsubscribe(&mut self, id: RequestId, channel: &ChannelName) {
        if !self.subscriptions.remove(channel) {
            let error =
                ProtocolError::new(ErrorCode::NotFound, format!("not subscribed to {channel}"));
            self.refuse(Some(&id), error);
            return;
        }
        let left = self.gateway.hub.unsubscribe(channel, &self.conn);
        debug_assert_ne!(left, Unsubscribed::NotSubscribed, "session and hub agree");
        self.gateway.broker.leave(channel);
        self.gateway.metrics.subscriptions.dec();
        self.reply(Frame::ok(&id));
    }

    async fn publish(&mut self, id: RequestId, channel: &ChannelName, data: &RawValue) {
        if !self.publishes.try_take(Instant::now()) {
            let error = ProtocolError::new(ErrorCode::RateLimited, "publish rate exceeded");
            self.refuse(Some(&id), error);
            return;
        }
        match self.gateway.broker.publish(channel, data.get()).await {
            Ok(()) => {
                self.gateway.metrics.published("ws");
                self.reply(Frame::ok(&id));
            }
            Err(error) => {
                self.refuse(
                    Some(&id),
                    ProtocolError::new(ErrorCode::Unavailable, error.to_string()),
                );
            }
        }
    }

    /// Runs the request on its own task, so that a slow backend never stops
    /// this connection from reading.
    fn rpc(&mut self, id: RequestId, method: ChannelName, data: Option<&RawValue>) {
        let data = data.map_or("null", RawValue::get).to_owned();
        let gateway = Arc::clone(&self.gateway);
        let outbox = Arc::clone(&self.outbox);
        let timeout = gateway.config.broker.rpc_timeout();
        tokio::spawn(async move {
            let frame = match gateway.broker.request(&method, &data, timeout).await {
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
