//! Who is connecting: runs the auth plugin on a `GET /ws` (or `GET /sse`)
//! request, before the upgrade, and turns its verdict into an identity and
//! its lifetime, or an HTTP refusal.
//!
//! Finds the token where SPEC 3 allows it (Authorization header, `?token=`,
//! or a `bearer.<T>` subprotocol entry) so plugins need not; the plugin still
//! sees every header and the query, and decides alone.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;

use super::error;
use crate::gateway::Gateway;
use crate::metrics::UpgradeRefusal;
use crate::plugin::Identity;
use crate::plugin::hooks::{AuthOutcome, ConnectRequest};
use crate::session::{Lifetime, now_unix_ms};

/// The prefix that marks a token among the offered subprotocols.
pub const SUBPROTOCOL_TOKEN_PREFIX: &str = "bearer.";

/// The identity for the connection and its lifetime, or the response that
/// refuses it.
pub(super) async fn authenticate(
    gateway: &Gateway,
    uri: &Uri,
    headers: &HeaderMap,
    remote: SocketAddr,
) -> Result<(Identity, Lifetime), Response> {
    let plugins = gateway.plugins.current();
    let Some(plugin) = plugins.auth() else {
        return Ok((Identity::anonymous(), Lifetime::default()));
    };
    let request = ConnectRequest {
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or_default().to_owned(),
        headers: headers
            .iter()
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect(),
        remote_address: remote.to_string(),
        token: token(uri, headers),
        now_unix_ms: now_unix_ms(),
    };
    match plugin.authenticate(&request).await {
        Ok(AuthOutcome::Allow(admission)) => {
            let lifetime = Lifetime {
                expires_at_unix_ms: admission.expires_at_unix_ms,
                request: Some(Arc::new(ConnectRequest {
                    token: None,
                    ..request
                })),
            };
            Ok((admission.identity, lifetime))
        }
        Ok(AuthOutcome::Deny { status, reason }) => {
            gateway.metrics.upgrade_refused(UpgradeRefusal::Auth);
            let (status, code) = if status == 401 {
                (StatusCode::UNAUTHORIZED, "unauthorized")
            } else {
                (StatusCode::FORBIDDEN, "forbidden")
            };
            Err(error(status, code, reason))
        }
        // Auth fails closed, whatever the failure.
        Err(failure) => {
            gateway.metrics.upgrade_refused(UpgradeRefusal::AuthFailed);
            Err(error(
                StatusCode::FORBIDDEN,
                "plugin_error",
                format!("authentication failed: {}", failure.cause_text()),
            ))
        }
    }
}

/// The client's token: `Authorization: Bearer T`, else `?token=T`, else a
/// `Sec-WebSocket-Protocol` entry `bearer.T`.
fn token(uri: &Uri, headers: &HeaderMap) -> Option<String> {
    let from_header = super::bearer::token(headers).map(str::to_owned);
    let from_query = || {
        form_urlencoded::parse(uri.query()?.as_bytes())
            .find(|(key, _)| key == "token")
            .map(|(_, value)| value.into_owned())
    };
    let from_subprotocol = || {
        headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .find_map(|p| p.trim().strip_prefix(SUBPROTOCOL_TOKEN_PREFIX))
            .map(str::to_owned)
    };
    from_header
        .or_else(from_query)
        .or_else(from_subprotocol)
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().expect("valid header value"));
        }
        map
    }

    #[test]
    fn token_comes_from_header_then_query_then_subprotocol() {
        let uri: Uri = "/ws?token=from-query".parse().expect("uri");
        let both = headers(&[("authorization", "Bearer from-header")]);
        assert_eq!(token(&uri, &both).as_deref(), Some("from-header"));
        assert_eq!(
            token(&uri, &HeaderMap::new()).as_deref(),
            Some("from-query")
        );
        let plain: Uri = "/ws".parse().expect("uri");
        let offered = headers(&[("sec-websocket-protocol", "ferrygate.v1, bearer.from-proto")]);
        assert_eq!(token(&plain, &offered).as_deref(), Some("from-proto"));
        assert_eq!(token(&plain, &HeaderMap::new()), None);
    }

    #[test]
    fn query_tokens_are_percent_decoded() {
        let uri: Uri = "/ws?a=1&token=a%2Bb%3D".parse().expect("uri");
        assert_eq!(token(&uri, &HeaderMap::new()).as_deref(), Some("a+b="));
    }
}
