//! `GET /sse?channel=A&channel=B`: the same pushes as `/ws`, as Server-Sent
//! Events, for clients that cannot use WebSocket (SPEC 4). Receive-only.
//!
//! A thin transport over the shared [`Session`]: the same admission (drain,
//! origin, `max_connections`, the auth plugin), the same subscribes (route
//! plugin, limits, history and recovery: `Last-Event-ID` becomes `since`),
//! the same outbox (bounded: a reader that falls behind is cut like a 1013).
//! Everything is decided before the response starts, so a refusal is a plain
//! HTTP status with a JSON body:
//!
//! | case | answer |
//! |---|---|
//! | the auth plugin refuses (whatever the channels) | 401 / 403, as for `/ws` |
//! | no `channel`, an invalid name, more than `max_subscriptions_per_connection` | 400 `bad_request` |
//! | the route plugin refuses a channel | 403 `forbidden` (plugin failure: 403 `plugin_error`) |
//! | draining, `max_connections` reached, broker or history store down | 503 `unavailable` |
//! | a malformed `Last-Event-ID` | not refused: every history channel gets `recovered:false` |
//!
//! Checked in this order: draining, then the admission (origin, a slot, the
//! auth plugin), then the channels, then the route plugin; so a bad token is
//! 401/403 whatever the query. Cross-origin pages read all of it through
//! `http/cors.rs`.
//!
//! Each push is one `data:` line holding the push's JSON; on history
//! channels it carries an `id:` (see [`cursor`]). A stream opened with
//! `Last-Event-ID` (header, or `lastEventID` query parameter) begins with one
//! `event: recovery` per history channel. Heartbeat comments go out every
//! `ping_interval_ms` so that proxies keep the stream open. The stream ends
//! with `event: expired` at the token's expiry, `event: close` with the code
//! (`1012` with `reconnect_in_ms` and a matching `retry:`, `1013` for a slow
//! reader) otherwise.

mod cursor;
mod events;

use std::collections::HashMap;
use std::sync::Arc;

use crate::plugin::store::for_connection;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};

use super::{RemoteAddr, error};
use crate::close::CloseReason;
use crate::gateway::Gateway;
use crate::metrics::UpgradeRefusal;
use crate::protocol::{ChannelName, Since};
use crate::session::Session;

/// The query parameter a client that cannot set headers sends its
/// `Last-Event-ID` in.
const LAST_EVENT_ID_PARAM: &str = "lastEventID";

pub(super) async fn stream(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    if gateway.is_draining() {
        gateway.metrics.upgrade_refused(UpgradeRefusal::Draining);
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "draining: reconnect to another instance",
        );
    }
    // Auth first: a client with a bad token learns 401/403 whatever it asked
    // for (the JS client probes `/sse` without a channel to learn why a
    // WebSocket did not open), and an unauthenticated caller learns nothing
    // about channel names.
    let peer = request.extensions().get::<RemoteAddr>().copied();
    let accepted =
        match super::upgrade::admit(&gateway, request.uri(), request.headers(), peer).await {
            Ok(accepted) => accepted,
            Err(refusal) => return refusal,
        };
    let limit = gateway.config.server.max_subscriptions_per_connection;
    let channels = match channels(request.uri(), limit) {
        Ok(channels) => channels,
        Err(why) => {
            gateway
                .metrics
                .upgrade_refused(UpgradeRefusal::BadHandshake);
            return error(StatusCode::BAD_REQUEST, "bad_request", why);
        }
    };
    // A session now (counted in `max_connections`), no longer a pending
    // HTTP connection, though the stream stays on HTTP.
    if let Some(slot) = request
        .extensions()
        .get::<crate::server::pending::PendingSlot>()
    {
        slot.release();
    }
    let last_event_id = last_event_id(request.uri(), request.headers());
    let plugins = gateway.plugins.current();
    let history: Vec<ChannelName> = channels
        .iter()
        .filter(|channel| crate::history::policy_for(&plugins, channel).is_some())
        .cloned()
        .collect();
    let since = match last_event_id
        .as_deref()
        .map(|id| cursor::parse(id, &history))
    {
        Some(Ok(since)) => since,
        // Not ours (or from another manifest): recover nothing, say so.
        Some(Err(cursor::Malformed)) | None => HashMap::new(),
    };
    let asked: Vec<(ChannelName, Option<Since>)> = channels
        .into_iter()
        .map(|channel| {
            let since = since.get(&channel).cloned();
            (channel, since)
        })
        .collect();

    let mut session = Session::open(Arc::clone(&gateway), accepted).await;
    let requested: Vec<ChannelName> = asked.iter().map(|(c, _)| c.clone()).collect();
    let conn = Arc::clone(session.conn());
    let frames = for_connection(conn, session.subscribe_all(asked)).await;
    let opening = match events::opening(&requested, &since, frames, last_event_id.is_some()) {
        Ok(opening) => opening,
        Err(refusal) => {
            session.close(CloseReason::ClientClosed);
            return error(refusal.status, refusal.code, refusal.message);
        }
    };
    gateway.metrics.sessions.sse_streams.inc();
    gateway.metrics.sessions.sse_opened.inc();
    let outbox = Arc::clone(session.outbox());
    tokio::spawn(watch(session, Arc::clone(&gateway)));
    let heartbeat = gateway.config.server.ping_interval();
    let live = events::live(opening, outbox, gateway.config.server.drain_period());
    Sse::new(live)
        .keep_alive(KeepAlive::new().interval(heartbeat).text("heartbeat"))
        .into_response()
}

/// Owns the session while the stream runs: closes it at the token's expiry
/// and releases it (subscriptions, registration, counts) as soon as its
/// outbox closes, whatever the reason: the stream ended, the reader fell
/// behind, the gateway drains. A stalled reader thus frees its place even
/// while its HTTP connection still waits on the socket.
async fn watch(mut session: Session, gateway: Arc<Gateway>) {
    let outbox = Arc::clone(session.outbox());
    let lifetime = session.lifetime().clone();
    tokio::select! {
        () = outbox.closing() => {}
        () = lifetime.expired() => {
            outbox.close(CloseReason::TokenExpired);
        }
    }
    // The hub counted a slow reader in `slow_consumers` when it overflowed.
    let reason = outbox.close_reason().unwrap_or(CloseReason::ClientClosed);
    session.close(reason);
    gateway.metrics.sessions.sse_streams.dec();
}

/// The `channel` parameters, checked and deduplicated, in order.
fn channels(uri: &Uri, limit: usize) -> Result<Vec<ChannelName>, String> {
    let mut channels: Vec<ChannelName> = Vec::new();
    let query = uri.query().unwrap_or_default();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if key != "channel" {
            continue;
        }
        let channel = ChannelName::new(&value).map_err(|e| format!("invalid `channel`: {e}"))?;
        if !channels.contains(&channel) {
            channels.push(channel);
        }
        if channels.len() > limit {
            return Err(format!(
                "too many channels ({limit} per connection, `max_subscriptions_per_connection`)"
            ));
        }
    }
    if channels.is_empty() {
        return Err("name at least one channel: /sse?channel=NAME".to_owned());
    }
    Ok(channels)
}

/// `Last-Event-ID` from the header, else the `lastEventID` query parameter.
fn last_event_id(uri: &Uri, headers: &HeaderMap) -> Option<String> {
    let from_header = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    from_header
        .or_else(|| {
            form_urlencoded::parse(uri.query()?.as_bytes())
                .find(|(key, _)| key == LAST_EVENT_ID_PARAM)
                .map(|(_, value)| value.into_owned())
        })
        .filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_are_required_valid_unique_and_bounded() {
        let uri = |q: &str| -> Uri { format!("/sse{q}").parse().expect("uri") };
        assert!(channels(&uri(""), 10).is_err());
        assert!(channels(&uri("?token=x"), 10).is_err());
        assert!(channels(&uri("?channel=a*"), 10).is_err());
        let got = channels(&uri("?channel=a&channel=b&channel=a"), 10).expect("valid");
        assert_eq!(got.len(), 2);
        assert!(channels(&uri("?channel=a&channel=b&channel=c"), 2).is_err());
    }

    #[test]
    fn last_event_id_comes_from_the_header_then_the_query() {
        let uri: Uri = "/sse?channel=a&lastEventID=E%3A4".parse().expect("uri");
        assert_eq!(
            last_event_id(&uri, &HeaderMap::new()).as_deref(),
            Some("E:4")
        );
        let mut headers = HeaderMap::new();
        headers.insert("last-event-id", "F:9".parse().expect("value"));
        assert_eq!(last_event_id(&uri, &headers).as_deref(), Some("F:9"));
    }
}
