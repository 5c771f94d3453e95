//! The `/v1/` API for backend services, guarded by the manifest's `api_key`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error;
use crate::broker::{BrokerError, Target};
use crate::gateway::Gateway;
use crate::protocol::ChannelName;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PublishBody {
    channel: String,
    data: Box<RawValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SendBody {
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    conn: Option<String>,
    data: Box<RawValue>,
}

/// An authorized `/v1/` call without a body.
pub(super) struct Authorized;

impl FromRequestParts<Arc<Gateway>> for Authorized {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        gateway: &Arc<Gateway>,
    ) -> Result<Self, Response> {
        authorize(gateway, &parts.headers).map_err(IntoResponse::into_response)?;
        Ok(Self)
    }
}

/// `GET /v1/plugins`: every plugin in use, with its version and counters,
/// each one that failed to load and has no running version, and
/// `last_error`: why the last reload refused the manifest itself (null when
/// it did not).
pub(super) async fn plugins(State(gateway): State<Arc<Gateway>>, _: Authorized) -> Response {
    let report = json!({
        "plugins": gateway.plugins.report(),
        "last_error": gateway.plugins.manifest_error(),
    });
    axum::Json(report).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReloadBody {
    #[serde(default)]
    rollback: bool,
}

/// `POST /v1/reload`, with an optional body `{"rollback": true}`: reloads
/// the manifest and its plugins (or swaps the previous set back) and answers
/// with the outcome: 200 when the new set is in use, 422 when it is not.
pub(super) async fn reload(
    State(gateway): State<Arc<Gateway>>,
    _: Authorized,
    request: Request,
) -> Response {
    let body = match read_body(request, &gateway).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let rollback = if body.iter().all(u8::is_ascii_whitespace) {
        false
    } else {
        match serde_json::from_slice::<ReloadBody>(&body) {
            Ok(body) => body.rollback,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!("the body must be empty or {{\"rollback\": true}}: {e}"),
                );
            }
        }
    };
    let outcome = if rollback {
        gateway.roll_back().await
    } else {
        gateway.reload("POST /v1/reload").await
    };
    let status = if outcome.ok {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    (status, axum::Json(outcome)).into_response()
}

/// An authorized `/v1/` call with its JSON body: the key is checked before the
/// body is read, and either failure becomes the documented JSON error. The
/// body is JSON when `Content-Type` says so (`application/json` or any
/// `+json` type) or when there is no `Content-Type`; any other type is 415,
/// since guessing would accept a form post by accident.
pub(super) struct ApiCall<T>(T);

impl<T: DeserializeOwned> FromRequest<Arc<Gateway>> for ApiCall<T> {
    type Rejection = Response;

    async fn from_request(request: Request, gateway: &Arc<Gateway>) -> Result<Self, Response> {
        authorize(gateway, request.headers()).map_err(IntoResponse::into_response)?;
        if let Some(given) = request.headers().get(header::CONTENT_TYPE)
            && !is_json(given)
        {
            let given = given.to_str().unwrap_or("(not text)");
            return Err(error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!(
                    "Content-Type `{given}` is not JSON: send the body as `Content-Type: application/json` (curl: --json, or -H 'Content-Type: application/json' with -d)"
                ),
            ));
        }
        let body = read_body(request, gateway).await?;
        serde_json::from_slice(&body).map(Self).map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("the body is not the expected JSON: {e}"),
            )
        })
    }
}

/// `application/json`, or a `+json` type such as `application/merge-patch+json`,
/// with any parameters (`; charset=utf-8`).
fn is_json(content_type: &HeaderValue) -> bool {
    let Ok(text) = content_type.to_str() else {
        return false;
    };
    let essence = text.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    let subtype = subtype.to_ascii_lowercase();
    kind.eq_ignore_ascii_case("application") && (subtype == "json" || subtype.ends_with("+json"))
}

pub(super) async fn publish(
    State(gateway): State<Arc<Gateway>>,
    ApiCall(body): ApiCall<PublishBody>,
) -> Response {
    let channel = match ChannelName::new(&body.channel) {
        Ok(channel) => channel,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("invalid `channel`: {e}"),
            );
        }
    };
    // Backends are trusted (they hold the API key), so no route plugin runs;
    // the route's inbound transforms still do, as for any publish.
    let plugins = gateway.plugins.current();
    let payload = match plugins.route_for(&channel) {
        None => std::borrow::Cow::Borrowed(body.data.get()),
        Some(route) => {
            let max_bytes = gateway.config.server.max_frame_bytes;
            match route
                .transform_inbound(&channel, None, body.data.get(), max_bytes)
                .await
            {
                Ok(Some(payload)) => payload,
                Ok(None) => {
                    return axum::Json(json!({"ok": true, "dropped": true})).into_response();
                }
                Err(failure) => {
                    return error(
                        StatusCode::BAD_GATEWAY,
                        "plugin_error",
                        format!("plugin `{}`: {}", failure.plugin, failure.cause_text()),
                    );
                }
            }
        }
    };
    let published = crate::history::publish(
        gateway.broker.as_ref(),
        &gateway.appender,
        &plugins,
        &channel,
        &payload,
    );
    match published.done().await {
        Ok(()) => {
            gateway.metrics.published("http");
            axum::Json(json!({"ok": true})).into_response()
        }
        Err(e) => broker_error(&e),
    }
}

pub(super) async fn send(
    State(gateway): State<Arc<Gateway>>,
    ApiCall(body): ApiCall<SendBody>,
) -> Response {
    let target = match (body.user, body.conn) {
        (Some(user), None) => Target::User(user),
        (None, Some(conn)) => Target::Conn(conn),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "give exactly one of `user` or `conn`",
            );
        }
    };
    match gateway.broker.send(&target, body.data.get()).await {
        Ok(Some(0)) if matches!(target, Target::Conn(_)) => {
            error(StatusCode::NOT_FOUND, "not_found", "no such connection")
        }
        Ok(delivered) => axum::Json(json!({"ok": true, "delivered": delivered})).into_response(),
        Err(e) => broker_error(&e),
    }
}

/// 413 `too_large` or 503 `unavailable`, as the broker refused.
fn broker_error(e: &BrokerError) -> Response {
    let status = match e {
        BrokerError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    error(status, e.code().as_str(), e.to_string())
}

/// Reads a request body within `[server] request_head_timeout_ms`, counted
/// from when the handler starts reading: a client that trickles its body
/// cannot hold a connection (and a pending slot) longer than one that
/// trickles its head. Errors: 408 `request_timeout` past the limit, 413
/// `too_large` over the body limit, 400 `bad_request` for a broken body.
async fn read_body(request: Request, gateway: &Arc<Gateway>) -> Result<Bytes, Response> {
    let limit = Duration::from_millis(gateway.config.server.request_head_timeout_ms);
    match tokio::time::timeout(limit, Bytes::from_request(request, gateway)).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(rejection)) => Err(bad_body(&rejection)),
        Err(_elapsed) => {
            gateway.metrics.request_body_timeouts.inc();
            Err(error(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!(
                    "the request body did not arrive within {} ms",
                    limit.as_millis()
                ),
            ))
        }
    }
}

fn bad_body(rejection: &BytesRejection) -> Response {
    let (status, code) = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
    } else {
        (StatusCode::BAD_REQUEST, "bad_request")
    };
    error(status, code, rejection.body_text())
}

/// Checks `Authorization: Bearer <key>` (scheme in any case, the same parser
/// as `/ws`) or `X-API-Key: <key>` in constant time.
fn authorize(gateway: &Gateway, headers: &HeaderMap) -> Result<(), Unauthorized> {
    let Some(expected) = &gateway.config.server.api_key else {
        gateway.metrics.api_unauthorized.inc();
        return Err(Unauthorized(
            "the HTTP API is disabled: no `api_key` in [server]",
        ));
    };
    let presented = super::bearer::token(headers)
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()));
    // Hashing first makes the comparison independent of both lengths.
    let matches = presented.is_some_and(|key| {
        let presented = Sha256::digest(key.trim().as_bytes());
        let expected = Sha256::digest(expected.expose().trim().as_bytes());
        bool::from(presented.ct_eq(&expected))
    });
    if matches {
        Ok(())
    } else {
        gateway.metrics.api_unauthorized.inc();
        Err(Unauthorized("missing or wrong API key"))
    }
}

/// A refused API call: 401 with a JSON body saying why.
struct Unauthorized(&'static str);

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        error(StatusCode::UNAUTHORIZED, "unauthorized", self.0)
    }
}
