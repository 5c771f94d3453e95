//! `GET /v1/presence/{channel}?limit=N&cursor=C`: one page of who is in a
//! presence channel across every instance (see [`crate::presence::query`]).
//! 404 for a channel without presence, 400 for a bad name, limit or cursor
//! (or a parameter repeated or unknown, [`super::query`]),
//! 503 when the store cannot be read; all with the JSON error body.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::api::Authorized;
use super::error;
use crate::gateway::Gateway;
use crate::presence::query::{self, PageRequest, QueryError};
use crate::protocol::ChannelName;

pub(super) async fn presence(
    State(gateway): State<Arc<Gateway>>,
    _: Authorized,
    Path(channel): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let channel = match ChannelName::new(&channel) {
        Ok(channel) => channel,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("invalid channel: {e}"),
            );
        }
    };
    let [limit, cursor] = match super::query::single(raw.as_deref(), ["limit", "cursor"]) {
        Ok(values) => values,
        Err(message) => return error(StatusCode::BAD_REQUEST, "bad_request", message),
    };
    let answered = match PageRequest::parse(limit.as_deref(), cursor.as_deref()) {
        Ok(page) => {
            let plugins = gateway.plugins.current();
            let presence = &gateway.presence;
            query::answer(
                presence,
                &plugins,
                &channel,
                &page,
                "http",
                &gateway.metrics,
            )
            .await
        }
        Err(e) => Err(e),
    };
    match answered {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => {
            let status = match e {
                QueryError::NoPresence(_) => StatusCode::NOT_FOUND,
                QueryError::BadRequest(_) => StatusCode::BAD_REQUEST,
                QueryError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            };
            error(status, e.code().as_str(), e.to_string())
        }
    }
}
