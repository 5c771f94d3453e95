//! Cross-origin reads of `GET /sse` from browser pages (CORS, WHATWG Fetch).
//!
//! A page served from another origin than the gateway (the usual case: the
//! app on `app.example.com`, the gateway on `ws.example.com`) can open a
//! WebSocket anywhere, but a `fetch` of `/sse` with an `Authorization` header
//! is preflighted, and its answer (even a 401) is hidden from the page
//! unless the response names the page's origin. This module answers the
//! preflight and labels `/sse` responses; it decides nothing else: admission
//! (origin allow-list, auth) stays in `upgrade::admit`, so a disallowed
//! origin is refused there with 403 whatever this layer says.
//!
//! The rule is `[server] allowed_origins`: empty (the default) allows any
//! origin, answered `*`, since auth is by token, never by cookie (no
//! `Access-Control-Allow-Credentials`); otherwise a listed origin is echoed
//! back with `Vary: Origin`, and an unlisted one gets no CORS header.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error;
use crate::gateway::Gateway;

/// How long a browser may cache a preflight's answer, in seconds.
const PREFLIGHT_MAX_AGE_S: &str = "600";

/// The request headers a page may send to `/sse`: the token and the
/// recovery position (SPEC 4).
const ALLOWED_HEADERS: &str = "authorization, last-event-id";

/// `OPTIONS /sse`: the preflight of a cross-origin `fetch`. 204 with the
/// allowed method and headers (the origin header is added by [`label`]);
/// 403 with a JSON body for an origin outside `allowed_origins`.
pub(super) async fn preflight(State(gateway): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    if allow_origin(&gateway.config.server.allowed_origins, &headers).is_none() {
        return error(StatusCode::FORBIDDEN, "forbidden", "origin not allowed");
    }
    (
        StatusCode::NO_CONTENT,
        [
            (header::ACCESS_CONTROL_ALLOW_METHODS, "GET"),
            (header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOWED_HEADERS),
            (header::ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE_S),
        ],
    )
        .into_response()
}

/// Middleware on `/sse`: adds `Access-Control-Allow-Origin` to every
/// response (streams and refusals alike, so a page can read a 401) when the
/// request's `Origin` is allowed.
pub(super) async fn label(
    State(gateway): State<Arc<Gateway>>,
    request: Request,
    next: Next,
) -> Response {
    let allowed = allow_origin(&gateway.config.server.allowed_origins, request.headers());
    let mut response = next.run(request).await;
    if let Some(value) = allowed {
        let headers = response.headers_mut();
        if value != "*" {
            headers.insert(header::VARY, HeaderValue::from_static("origin"));
        }
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    }
    response
}

/// The `Access-Control-Allow-Origin` value for a request, or None when it
/// has no `Origin` (not a cross-origin browser request) or one not allowed.
fn allow_origin(allowed: &[String], headers: &HeaderMap) -> Option<HeaderValue> {
    let origin = headers.get(header::ORIGIN)?;
    if allowed.is_empty() {
        return Some(HeaderValue::from_static("*"));
    }
    let text = origin.to_str().ok()?;
    allowed.iter().any(|a| a == text).then(|| origin.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_origin(origin: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ORIGIN, origin.parse().expect("value"));
        headers
    }

    #[test]
    fn any_origin_is_star_a_listed_one_is_echoed_an_unlisted_one_gets_nothing() {
        let page = with_origin("http://app.test");
        assert_eq!(
            allow_origin(&[], &page),
            Some(HeaderValue::from_static("*"))
        );
        assert_eq!(allow_origin(&[], &HeaderMap::new()), None);
        let list = vec!["http://app.test".to_owned()];
        assert_eq!(
            allow_origin(&list, &page),
            Some(HeaderValue::from_static("http://app.test"))
        );
        assert_eq!(allow_origin(&list, &with_origin("http://evil.test")), None);
    }
}
