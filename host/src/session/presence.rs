//! A session's part in presence: registering the channels it joined whose
//! route sets `presence`, and the `presence` op, answered only to a
//! connection that the route plugin would let subscribe to the channel.

use super::Session;
use super::requests::plugin_error;
use crate::plugin::hooks::{Action, Routed};
use crate::presence::query::{self, PageRequest};
use crate::protocol::{ChannelName, ErrorCode, Frame, ProtocolError, RequestId};

impl Session {
    /// Writes this connection into the presence of each of `joined` (just
    /// joined in the hub) whose route sets `presence`.
    pub(super) async fn join_presence(&self, joined: &[ChannelName]) {
        let plugins = self.gateway.plugins.current();
        let user = self.connection.identity.user.as_deref();
        for channel in joined {
            if let Some(route) = plugins.route_for(channel)
                && route.presence
            {
                self.gateway
                    .presence
                    .join(channel, user, &self.conn, route.join_leave)
                    .await;
            }
        }
    }

    /// `{"op":"presence","channel":C}` (with optional `limit`, `cursor`):
    /// the answer of `GET /v1/presence/C` if this connection may subscribe
    /// to C as it is (a route plugin that rewrites it answers `forbidden`).
    pub(super) async fn presence(
        &mut self,
        id: RequestId,
        channel: ChannelName,
        page: Result<PageRequest, query::QueryError>,
    ) {
        let plugins = self.gateway.plugins.current();
        if let Some(route) = plugins.route_for(&channel) {
            let decided = route
                .decide(Action::Subscribe, &channel, &self.connection, None)
                .await;
            match decided {
                Ok(Routed::Allow) => {}
                Ok(Routed::Channels(targets)) if targets == [channel.clone()] => {}
                Ok(Routed::Deny(reason)) => {
                    return self
                        .refuse(Some(&id), ProtocolError::new(ErrorCode::Forbidden, reason));
                }
                Ok(_) => {
                    let error = ProtocolError::new(
                        ErrorCode::Forbidden,
                        "the route plugin does not let this connection subscribe to the channel as named",
                    );
                    return self.refuse(Some(&id), error);
                }
                Err(error) => return self.refuse(Some(&id), plugin_error(&error)),
            }
        }
        let page = match page {
            Ok(page) => page,
            Err(error) => {
                return self.refuse(
                    Some(&id),
                    ProtocolError::new(error.code(), error.to_string()),
                );
            }
        };
        let gateway = &self.gateway;
        let answered = query::answer(
            &gateway.presence,
            &plugins,
            &channel,
            &page,
            "ws",
            &gateway.metrics,
        )
        .await;
        match answered {
            Ok(result) => self.reply(Frame::ok_with(&id, &result)),
            Err(error) => self.refuse(
                Some(&id),
                ProtocolError::new(error.code(), error.to_string()),
            ),
        }
    }
}
