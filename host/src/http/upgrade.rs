//! `GET /ws`: checks the handshake, admits the session, switches protocols.
//!
//! The handshake is answered here rather than through a framework extractor so
//! that every refusal is a plain HTTP status with a JSON body (SPEC 3: never a
//! socket that is upgraded and then closed), and so the session gets the
//! tokio-tungstenite stream directly, with the gateway's frame limits.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::{RemoteAddr, error};
use crate::gateway::Gateway;
use crate::metrics::UpgradeRefusal;
use crate::session::{self, Accepted};

/// The admission both transports (`/ws`, `/sse`) run after their own
/// request checks: the origin, a connection slot (counted in
/// `max_connections` from here), the peer address and the auth plugin. Each
/// refusal is counted and answered with its JSON error.
/// (It takes the request's parts, not the request: a `Body` is not `Sync`,
/// and a borrowed request held across the auth call would make the
/// handler's future not `Send`.)
pub(super) async fn admit(
    gateway: &Gateway,
    uri: &Uri,
    headers: &HeaderMap,
    peer: Option<RemoteAddr>,
) -> Result<Accepted, Response> {
    if !origin_allowed(&gateway.config.server.allowed_origins, headers) {
        gateway.metrics.upgrade_refused(UpgradeRefusal::Origin);
        return Err(error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "origin not allowed",
        ));
    }
    let Some(slot) = gateway.connections.reserve() else {
        gateway.metrics.upgrade_refused(UpgradeRefusal::Capacity);
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "connection limit reached",
        ));
    };
    let Some(RemoteAddr(remote)) = peer else {
        return Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "no peer address",
        ));
    };
    let (identity, lifetime) = super::auth::authenticate(gateway, uri, headers, remote).await?;
    Ok(Accepted {
        slot,
        remote,
        identity,
        lifetime,
    })
}

/// The subprotocol a client may offer to name this protocol version.
pub const SUBPROTOCOL: &str = "ferrygate.v1";

pub(super) async fn websocket(
    State(gateway): State<Arc<Gateway>>,
    mut request: Request,
) -> Response {
    if gateway.is_draining() {
        gateway.metrics.upgrade_refused(UpgradeRefusal::Draining);
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "draining: reconnect to another instance",
        );
    }
    let key = match handshake_key(request.method(), request.headers()) {
        Ok(key) => key,
        Err(why) => {
            gateway
                .metrics
                .upgrade_refused(UpgradeRefusal::BadHandshake);
            return error(StatusCode::BAD_REQUEST, "bad_request", why);
        }
    };
    let peer = request.extensions().get::<RemoteAddr>().copied();
    let accepted = match admit(&gateway, request.uri(), request.headers(), peer).await {
        Ok(accepted) => accepted,
        Err(refusal) => return refusal,
    };
    let remote = accepted.remote;
    let subprotocol = offers_subprotocol(request.headers());
    let on_upgrade = hyper::upgrade::on(&mut request);
    let accepted = Box::new(accepted);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => match upgraded.downcast::<TokioIo<TcpStream>>() {
                Ok(parts) => {
                    let socket = parts.io.into_inner();
                    // Copy the few bytes read past the handshake: the buffer
                    // they sit in is HTTP's, several KiB, and must not live
                    // as long as the session.
                    let leftover = parts.read_buf.to_vec();
                    drop(parts.read_buf);
                    // A task of its own, so that what this one holds (the
                    // upgrade's state) is not part of the session's memory.
                    tokio::spawn(session::run(socket, leftover, gateway, accepted));
                }
                // The listener only ever hands hyper TCP streams.
                Err(_) => tracing::error!(%remote, "upgraded connection is not a TCP stream"),
            },
            Err(e) => tracing::debug!(%remote, error = %e, "upgrade did not complete"),
        }
    });
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    if subprotocol {
        headers.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(SUBPROTOCOL),
        );
    }
    response
}

/// Validates RFC 6455 section 4.2.1 and returns `Sec-WebSocket-Key`.
fn handshake_key(method: &Method, headers: &HeaderMap) -> Result<String, &'static str> {
    if method != Method::GET {
        return Err("a WebSocket upgrade must be a GET");
    }
    let has_token = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if !has_token(header::CONNECTION, "upgrade") || !has_token(header::UPGRADE, "websocket") {
        return Err("expected `Connection: upgrade` and `Upgrade: websocket`");
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .and_then(|v| v.to_str().ok())
        != Some("13")
    {
        return Err("expected `Sec-WebSocket-Version: 13`");
    }
    headers
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|v| v.to_str().ok())
        .filter(|key| key.len() == 24)
        .map(str::to_owned)
        .ok_or("missing or malformed `Sec-WebSocket-Key`")
}

pub(super) fn origin_allowed(allowed: &[String], headers: &HeaderMap) -> bool {
    if allowed.is_empty() {
        return true;
    }
    // Non-browser clients send no Origin; the allow-list is about browsers.
    headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|origin| allowed.iter().any(|a| a == origin))
}

fn offers_subprotocol(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == SUBPROTOCOL)
}
