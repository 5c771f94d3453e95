//! One presence query, as `GET /v1/presence/{channel}` and the client op
//! `presence` ask it: `limit` and `cursor` checked, the store read once,
//! the answer in the contract's shape:
//! `{"channel":"C","connections":N,"users":[{"user":"u","connections":n}],"next_cursor":"..."}`
//! (`next_cursor` only when more users follow).
//!
//! Who may ask is the caller's business (API key, route plugin); this only
//! says whether the channel has presence and what the store holds.

use serde_json::json;

use super::{DEFAULT_PAGE, MAX_PAGE, Presence, decode_cursor, encode_cursor};
use crate::broker::BrokerError;
use crate::plugin::PluginSet;
use crate::protocol::{ChannelName, ErrorCode};

/// Why a query got no answer.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The channel's route does not set `presence` (HTTP 404, `not_found`).
    #[error("{0} has no presence: its route does not set `presence = true`")]
    NoPresence(ChannelName),
    /// A bad `limit` or `cursor` (HTTP 400, `bad_request`).
    #[error("{0}")]
    BadRequest(String),
    /// The store could not be read (HTTP 503, `unavailable`): no partial answer.
    #[error(transparent)]
    Store(#[from] BrokerError),
}

impl QueryError {
    /// The error code a client is told.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NoPresence(_) => ErrorCode::NotFound,
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::Store(_) => ErrorCode::Unavailable,
        }
    }
}

/// A checked page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// 1 to [`MAX_PAGE`] users.
    pub limit: usize,
    /// The user the previous page ended with.
    pub after: Option<String>,
}

impl PageRequest {
    /// Checks `limit` (text of a whole number, 1 to [`MAX_PAGE`]; default
    /// [`DEFAULT_PAGE`]) and `cursor` (a `next_cursor` from an earlier page).
    pub fn parse(limit: Option<&str>, cursor: Option<&str>) -> Result<Self, QueryError> {
        let limit = match limit {
            None => DEFAULT_PAGE,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| {
                    QueryError::BadRequest(format!(
                        "`limit` must be a whole number from 1 to {MAX_PAGE}"
                    ))
                })?,
        };
        let after = match cursor {
            None => None,
            Some(text) => Some(decode_cursor(text).ok_or_else(|| {
                QueryError::BadRequest(
                    "`cursor` is not a `next_cursor` this gateway gave".to_owned(),
                )
            })?),
        };
        Ok(Self { limit, after })
    }
}

/// Reads one page of `channel` and returns the answer as JSON text; counts
/// the query under `source` (`ws` or `http`).
pub async fn answer(
    presence: &Presence,
    plugins: &PluginSet,
    channel: &ChannelName,
    request: &PageRequest,
    source: &'static str,
    metrics: &crate::metrics::Metrics,
) -> Result<String, QueryError> {
    if !plugins.route_for(channel).is_some_and(|r| r.presence) {
        return Err(QueryError::NoPresence(channel.clone()));
    }
    metrics.presence.query(source);
    let page = presence
        .store()
        .page(channel, request.after.as_deref(), request.limit)
        .await
        .inspect_err(|_| {
            metrics.presence.query_failures.inc();
        })?;
    let users: Vec<_> = page
        .users
        .iter()
        .map(|(user, connections)| json!({"user": user, "connections": connections}))
        .collect();
    let mut body = json!({
        "channel": channel.as_str(),
        "connections": page.connections,
        "users": users,
    });
    if let Some(last) = &page.more_after {
        body["next_cursor"] = encode_cursor(last).into();
    }
    Ok(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_cursors_are_checked() {
        let ok = PageRequest::parse(None, None).expect("defaults");
        assert_eq!((ok.limit, ok.after), (DEFAULT_PAGE, None));
        let ok = PageRequest::parse(Some("5"), Some(&encode_cursor("bob"))).expect("valid");
        assert_eq!((ok.limit, ok.after.as_deref()), (5, Some("bob")));
        for limit in ["0", "-1", "x", "10001", ""] {
            assert!(PageRequest::parse(Some(limit), None).is_err(), "{limit}");
        }
        assert!(PageRequest::parse(None, Some("not hex")).is_err());
    }
}
