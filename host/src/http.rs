//! Everything served over HTTP on the gateway's one listener: health,
//! readiness, metrics, the `/v1/` API, the `/ws` upgrade and the `/sse` stream.
//!
//! Routing and JSON shapes live here; the work is done by the gateway's parts
//! (broker, connections, metrics). Errors are JSON bodies of the form
//! `{"error":{"code":"...","message":"..."}}`, the same shape as WebSocket
//! error replies.

mod api;
mod auth;
mod bearer;
mod cors;
mod presence;
mod query;
mod sse;
mod upgrade;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::gateway::Gateway;

/// The peer address of the HTTP connection, put in each request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct RemoteAddr(pub SocketAddr);

/// All routes, sharing one gateway.
pub fn router(gateway: Arc<Gateway>) -> Router {
    let body_limit = gateway.config.server.max_frame_bytes + 1024;
    Router::new()
        .route("/ws", get(upgrade::websocket))
        .route(
            "/sse",
            get(sse::stream)
                .options(cors::preflight)
                .layer(axum::middleware::from_fn_with_state(
                    Arc::clone(&gateway),
                    cors::label,
                )),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/publish", post(api::publish))
        .route("/v1/send", post(api::send))
        .route("/v1/plugins", get(api::plugins))
        .route("/v1/reload", post(api::reload))
        .route("/v1/presence/{channel}", get(presence::presence))
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .fallback(not_found)
        .with_state(gateway)
}

/// A JSON error response.
pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({"error": {"code": code, "message": message.into()}});
    (status, axum::Json(body)).into_response()
}

async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

async fn readyz(State(gateway): State<Arc<Gateway>>) -> Response {
    if gateway.is_draining() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "draining");
    }
    if !gateway.broker.is_connected() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "broker unreachable",
        );
    }
    if gateway.metrics.broker.jetstream_missing.get() == 1 {
        // Ready: every other channel works; these routes fail closed.
        return axum::Json(json!({
            "status": "ready",
            "degraded": "the NATS server has no JetStream: history and presence routes answer unavailable (start nats-server with -js)",
        }))
        .into_response();
    }
    axum::Json(json!({"status": "ready"})).into_response()
}

async fn metrics(State(gateway): State<Arc<Gateway>>) -> Response {
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    (
        [(header::CONTENT_TYPE, content_type)],
        gateway.metrics.encode(),
    )
        .into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}
