//! `{"op":"refresh","token":...}`: runs the auth plugin again with the new
//! token and the connection's original request (path, query, headers,
//! address). Accepted only for the same user; then the identity's claims and
//! expiry are replaced, and every subscription is asked of its route plugin
//! again: those it no longer allows are removed with an `unsubscribed` push,
//! before the `ok`. A refused refresh leaves the connection unchanged (it
//! still expires at its old time).
//!
//! Owns the refresh rate ([`REFRESH_RATE`]); the expiry itself is
//! `lifetime`'s.

use tokio::time::Instant;

use super::Session;
use super::lifetime::now_unix_ms;
use super::requests::plugin_error;
use crate::config::RateLimit;
use crate::metrics::RefreshOutcome;
use crate::plugin::PluginSet;
use crate::plugin::hooks::{Action, AuthOutcome, ConnectRequest, Routed};
use crate::protocol::{ErrorCode, Frame, ProtocolError, RequestId};

/// Refreshes a connection may make: a burst of 3, then one per second. A
/// refresh costs one auth call plus one route call per subscription (up to
/// `max_subscriptions_per_connection`), far more than other requests, and a
/// real client refreshes once per token lifetime; refreshes also count
/// against `request_rate` like every request.
pub const REFRESH_RATE: RateLimit = RateLimit {
    per_second: 1,
    burst: 3,
};

impl Session {
    pub(super) async fn refresh(&mut self, id: RequestId, token: String) {
        if !self.refreshes.try_take(Instant::now()) {
            self.gateway
                .metrics
                .sessions
                .refresh(RefreshOutcome::RateLimited);
            let error = ProtocolError::new(
                ErrorCode::RateLimited,
                "refresh rate exceeded (3 at once, then 1 per second)",
            );
            return self.refuse(Some(&id), error);
        }
        let plugins = self.gateway.plugins.current();
        let (Some(plugin), Some(original)) = (plugins.auth(), self.login.request.as_ref()) else {
            self.gateway
                .metrics
                .sessions
                .refresh(RefreshOutcome::Failed);
            let error = ProtocolError::new(
                ErrorCode::Forbidden,
                "no auth plugin admitted this connection: there is nothing to refresh",
            );
            return self.refuse(Some(&id), error);
        };
        let request = ConnectRequest {
            token: Some(token),
            now_unix_ms: now_unix_ms(),
            ..ConnectRequest::clone(original)
        };
        let admission = match plugin.authenticate(&request).await {
            Ok(AuthOutcome::Allow(admission)) => admission,
            Ok(AuthOutcome::Deny { reason, .. }) => {
                return self.refuse_refresh(&id, format!("refresh refused: {reason}"));
            }
            Err(failure) => {
                self.gateway
                    .metrics
                    .sessions
                    .refresh(RefreshOutcome::Failed);
                return self.refuse(Some(&id), plugin_error(&failure));
            }
        };
        if admission.identity.user != self.connection.identity.user {
            return self.refuse_refresh(&id, "the new token names another user".to_owned());
        }
        self.connection.identity = admission.identity;
        self.login.expires_at_unix_ms = admission.expires_at_unix_ms;
        self.recheck_subscriptions(&plugins).await;
        self.gateway.metrics.sessions.refresh(RefreshOutcome::Ok);
        let expires_at = self
            .login
            .expires_at_unix_s()
            .map_or_else(|| "null".to_owned(), |at| at.to_string());
        self.reply(Frame::ok_with(
            &id,
            &format!(r#"{{"expires_at":{expires_at}}}"#),
        ));
    }

    fn refuse_refresh(&self, id: &RequestId, message: String) {
        self.gateway
            .metrics
            .sessions
            .refresh(RefreshOutcome::Forbidden);
        self.refuse(Some(id), ProtocolError::new(ErrorCode::Forbidden, message));
    }

    /// Asks the route plugin again about every subscription, as a new
    /// subscribe of the refreshed identity would; removes those it refuses.
    /// A plugin failure removes the subscription too (fail closed).
    async fn recheck_subscriptions(&mut self, plugins: &PluginSet) {
        for channel in self.subscriptions.requested() {
            let Some(route) = plugins.route_for(&channel) else {
                continue;
            };
            let decided = route
                .decide(Action::Subscribe, &channel, &self.connection, None)
                .await;
            let reason = match decided {
                Ok(Routed::Allow | Routed::Channels(_)) => continue,
                Ok(Routed::Deny(reason)) => reason,
                Ok(Routed::Rpc(_) | Routed::Drop) => {
                    "the route plugin answered a subscribe with rpc or drop".to_owned()
                }
                Err(failure) => format!("the route plugin failed: {}", failure.cause_text()),
            };
            if self.leave(&channel) {
                self.gateway.metrics.sessions.refresh_unsubscribed.inc();
                self.reply(Frame::unsubscribed(&channel, &reason));
            }
        }
    }
}
