//! Parsing one client text frame into a [`Request`].
//!
//! Every field is first captured as raw JSON, then checked one by one, so that a
//! wrong-typed field still yields an error reply that repeats the request's `id`.
//! `data` is kept as the raw text the client sent: it is never re-serialized on
//! its way to subscribers.

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::{ChannelName, ProtocolError};

/// Longest request id accepted, in bytes of JSON.
pub const MAX_ID_BYTES: usize = 64;

/// A request id as the client wrote it (a JSON number or string), echoed verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(Box<str>);

impl RequestId {
    /// The number `n` as an id, for requests the gateway makes on a client's
    /// behalf (an SSE stream's subscribes).
    pub fn number(n: usize) -> Self {
        Self(n.to_string().into())
    }

    /// The id as JSON text.
    pub fn as_json(&self) -> &str {
        &self.0
    }
}

/// A well-formed client request.
#[derive(Debug)]
pub enum Request<'a> {
    /// Start receiving a channel's pushes.
    Subscribe {
        /// Channel to join.
        channel: ChannelName,
        /// Position to recover from, when the client was here before.
        since: Option<Since>,
    },
    /// Stop receiving a channel.
    Unsubscribe {
        /// Channel to leave.
        channel: ChannelName,
    },
    /// Send `data` to every subscriber of `channel`.
    Publish {
        /// Target channel.
        channel: ChannelName,
        /// The payload, raw JSON.
        data: &'a RawValue,
    },
    /// Ask a backend service and get its answer as the reply's `result`.
    Rpc {
        /// Method name (same syntax as a channel name).
        method: ChannelName,
        /// Request payload, raw JSON (`null` when absent).
        data: Option<&'a RawValue>,
    },
    /// Liveness check answered with `ok`.
    Ping,
    /// Re-run the auth plugin with a new token (same user), extending the
    /// connection's lifetime and replacing its claims.
    Refresh {
        /// The new token.
        token: String,
    },
    /// Who is in a presence channel: one page, as `GET /v1/presence`.
    Presence {
        /// The channel asked about.
        channel: ChannelName,
        /// `limit` as the client wrote it (JSON text), checked by the query.
        limit: Option<&'a str>,
        /// `cursor`, a `next_cursor` from an earlier page.
        cursor: Option<String>,
    },
}

/// A stream position for recovery: `{"epoch":"...","offset":N}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Since {
    /// Identifies one incarnation of the channel's history.
    pub epoch: String,
    /// Last offset the client saw.
    pub offset: u64,
}

#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    op: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    channel: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    method: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    data: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    since: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    token: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    limit: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    cursor: Option<&'a RawValue>,
}

/// Keeps an explicit `null` as `Some(null)`: only a missing field is `None`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// Parses a text frame. The id comes back even when the request is invalid, so
/// that the error reply can name it.
pub fn parse_request(text: &str) -> (Option<RequestId>, Result<Request<'_>, ProtocolError>) {
    // Reject arrays before serde: a derived struct would accept `["subscribe",1]`.
    if !text.trim_start().starts_with('{') {
        return (
            None,
            Err(ProtocolError::bad_request(
                "a request must be a JSON object",
            )),
        );
    }
    let fields: Fields<'_> = match serde_json::from_str(text) {
        Ok(fields) => fields,
        Err(e) => {
            return (
                None,
                Err(ProtocolError::bad_request(format!("invalid JSON: {e}"))),
            );
        }
    };
    let id = match parse_id(fields.id) {
        Ok(id) => id,
        Err(e) => return (None, Err(e)),
    };
    (Some(id), parse_op(&fields))
}

fn parse_id(raw: Option<&RawValue>) -> Result<RequestId, ProtocolError> {
    let raw = raw.ok_or_else(|| ProtocolError::bad_request("missing field `id`"))?;
    let text = raw.get();
    let is_scalar_id =
        text.starts_with('"') || text.starts_with(|c: char| c == '-' || c.is_ascii_digit());
    if !is_scalar_id {
        return Err(ProtocolError::bad_request(
            "`id` must be a number or a string",
        ));
    }
    if text.len() > MAX_ID_BYTES {
        return Err(ProtocolError::bad_request(format!(
            "`id` is longer than {MAX_ID_BYTES} bytes"
        )));
    }
    Ok(RequestId(text.into()))
}

fn parse_op<'a>(fields: &Fields<'a>) -> Result<Request<'a>, ProtocolError> {
    let op: String = string_field("op", fields.op)?;
    match op.as_str() {
        "subscribe" => Ok(Request::Subscribe {
            channel: channel_field("channel", fields.channel)?,
            since: fields.since.map(parse_since).transpose()?,
        }),
        "unsubscribe" => Ok(Request::Unsubscribe {
            channel: channel_field("channel", fields.channel)?,
        }),
        "publish" => Ok(Request::Publish {
            channel: channel_field("channel", fields.channel)?,
            data: fields
                .data
                .ok_or_else(|| ProtocolError::bad_request("missing field `data`"))?,
        }),
        "rpc" => Ok(Request::Rpc {
            method: channel_field("method", fields.method)?,
            data: fields.data,
        }),
        "ping" => Ok(Request::Ping),
        "refresh" => Ok(Request::Refresh {
            token: string_field("token", fields.token)?,
        }),
        "presence" => Ok(Request::Presence {
            channel: channel_field("channel", fields.channel)?,
            limit: fields.limit.map(RawValue::get),
            cursor: fields
                .cursor
                .map(|raw| string_field("cursor", Some(raw)))
                .transpose()?,
        }),
        other => Err(ProtocolError::bad_request(format!(
            "unknown op {other:?}; expected subscribe, unsubscribe, publish, rpc, ping, refresh or presence"
        ))),
    }
}

fn string_field(name: &str, raw: Option<&RawValue>) -> Result<String, ProtocolError> {
    let raw = raw.ok_or_else(|| ProtocolError::bad_request(format!("missing field `{name}`")))?;
    serde_json::from_str(raw.get())
        .map_err(|_| ProtocolError::bad_request(format!("`{name}` must be a string")))
}

fn channel_field(name: &str, raw: Option<&RawValue>) -> Result<ChannelName, ProtocolError> {
    let text = string_field(name, raw)?;
    ChannelName::new(&text)
        .map_err(|e| ProtocolError::bad_request(format!("invalid `{name}`: {e}")))
}

fn parse_since(raw: &RawValue) -> Result<Since, ProtocolError> {
    serde_json::from_str(raw.get()).map_err(|e| {
        ProtocolError::bad_request(format!(
            "`since` must be {{\"epoch\":string,\"offset\":number}}: {e}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ErrorCode;

    fn error_of(text: &str) -> (Option<String>, String) {
        let (id, result) = parse_request(text);
        let err = result.expect_err("must be rejected");
        assert_eq!(err.code, ErrorCode::BadRequest);
        (id.map(|id| id.as_json().to_owned()), err.message)
    }

    #[test]
    fn parses_every_op() {
        let (id, req) = parse_request(r#"{"op":"subscribe","id":1,"channel":"chat.lobby"}"#);
        assert_eq!(id.expect("id").as_json(), "1");
        assert!(matches!(req, Ok(Request::Subscribe { since: None, .. })));
        let (_, req) = parse_request(
            r#"{"op":"subscribe","id":"a","channel":"c","since":{"epoch":"e","offset":7}}"#,
        );
        assert!(matches!(
            req,
            Ok(Request::Subscribe {
                since: Some(Since { offset: 7, .. }),
                ..
            })
        ));
        let (_, req) =
            parse_request(r#"{"op":"publish","id":3,"channel":"c","data":{"a": [1, 2]}}"#);
        match req {
            Ok(Request::Publish { data, .. }) => assert_eq!(data.get(), r#"{"a": [1, 2]}"#),
            other => panic!("{other:?}"),
        }
        let (_, req) = parse_request(r#"{"op":"publish","id":3,"channel":"c","data":null}"#);
        assert!(matches!(req, Ok(Request::Publish { .. })));
        let (_, req) = parse_request(r#"{"op":"rpc","id":4,"method":"orders.get"}"#);
        assert!(matches!(req, Ok(Request::Rpc { data: None, .. })));
        let (_, req) = parse_request(r#"{"op":"ping","id":5,"extra":"ignored"}"#);
        assert!(matches!(req, Ok(Request::Ping)));
        let (_, req) = parse_request(r#"{"op":"refresh","id":7,"token":"t.u.v"}"#);
        assert!(matches!(req, Ok(Request::Refresh { token }) if token == "t.u.v"));
        let (_, req) = parse_request(r#"{"op":"presence","id":6,"channel":"c","limit":5}"#);
        assert!(matches!(
            req,
            Ok(Request::Presence {
                limit: Some("5"),
                cursor: None,
                ..
            })
        ));
    }

    #[test]
    fn bad_input_is_a_bad_request_that_keeps_the_id_when_it_can() {
        assert_eq!(error_of("not json").0, None);
        assert_eq!(error_of("[\"ping\",1]").0, None);
        assert_eq!(error_of(r#"{"op":"ping"}"#).1, "missing field `id`");
        assert_eq!(error_of(r#"{"op":"ping","id":{"x":1}}"#).0, None);
        let (id, message) = error_of(r#"{"op":"dance","id":7}"#);
        assert_eq!(id.as_deref(), Some("7"));
        assert!(message.contains("unknown op"));
        let (id, message) = error_of(r#"{"op":"subscribe","id":"x"}"#);
        assert_eq!(id.as_deref(), Some("\"x\""));
        assert_eq!(message, "missing field `channel`");
        assert_eq!(
            error_of(r#"{"op":"subscribe","id":1,"channel":5}"#).1,
            "`channel` must be a string"
        );
        assert!(
            error_of(r#"{"op":"subscribe","id":1,"channel":""}"#)
                .1
                .contains("empty")
        );
        assert_eq!(
            error_of(r#"{"op":"publish","id":1,"channel":"c"}"#).1,
            "missing field `data`"
        );
        assert_eq!(error_of(r#"{"op":7,"id":1}"#).1, "`op` must be a string");
        assert_eq!(
            error_of(r#"{"op":"refresh","id":1}"#).1,
            "missing field `token`"
        );
        assert_eq!(
            error_of(r#"{"op":"refresh","id":1,"token":5}"#).1,
            "`token` must be a string"
        );
        assert!(
            error_of(r#"{"op":"subscribe","id":1,"channel":"c","since":5}"#)
                .1
                .contains("since")
        );
    }
}
