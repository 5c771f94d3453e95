//! Server-to-client frames, written once and shared.
//!
//! A [`Frame`] is finished JSON text in a reference-counted buffer: a push is
//! serialized once per published message and every recipient gets a clone of
//! the same bytes, never a copy.

use std::fmt::Write as _;

use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::{ChannelName, ProtocolError, RequestId};

/// One complete server text frame; cloning shares the bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame(Utf8Bytes);

impl Frame {
    /// `{"op":"welcome","conn":..,"user":..,"node":..}`, the first frame of a session.
    pub fn welcome(conn: &str, user: Option<&str>, node: &str) -> Self {
        let user = user.map_or_else(|| "null".to_owned(), json_string);
        Self::from(format!(
            r#"{{"op":"welcome","conn":{},"user":{user},"node":{}}}"#,
            json_string(conn),
            json_string(node)
        ))
    }

    /// `{"id":..,"ok":true}`.
    pub fn ok(id: &RequestId) -> Self {
        Self::from(format!(r#"{{"id":{},"ok":true}}"#, id.as_json()))
    }

    /// `{"id":..,"ok":true,"result":..}`; `result` must be JSON text.
    pub fn ok_with(id: &RequestId, result: &str) -> Self {
        Self::from(format!(
            r#"{{"id":{},"ok":true,"result":{result}}}"#,
            id.as_json()
        ))
    }

    /// `{"id":..,"error":{"code":..,"message":..}}`; `id` is `null` when unknown.
    pub fn error(id: Option<&RequestId>, error: &ProtocolError) -> Self {
        Self::from(format!(
            r#"{{"id":{},"error":{{"code":"{}","message":{}}}}}"#,
            id.map_or("null", RequestId::as_json),
            error.code.as_str(),
            json_string(&error.message)
        ))
    }

    /// `{"channel":..,"data":..}`; `data` must be JSON text.
    pub fn push(channel: &ChannelName, data: &str) -> Self {
        // Channel names never need escaping (see `channel`), so plain writes do.
        let mut text = String::with_capacity(24 + channel.as_str().len() + data.len());
        let _ = write!(text, r#"{{"channel":"{channel}","data":{data}}}"#);
        Self::from(text)
    }

    /// `{"op":"message","data":..}`, a message addressed to one connection or user.
    pub fn message(data: &str) -> Self {
        Self::from(format!(r#"{{"op":"message","data":{data}}}"#))
    }

    /// Bytes on the wire (payload only, without WebSocket framing).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the frame is empty (never true for frames built here).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The frame's text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The shared buffer, for handing to the WebSocket writer.
    pub fn into_text(self) -> Utf8Bytes {
        self.0
    }
}

impl From<String> for Frame {
    fn from(text: String) -> Self {
        Self(Utf8Bytes::from(text))
    }
}

fn json_string(text: &str) -> String {
    // Serializing a &str cannot fail; the fallback keeps the frame valid JSON anyway.
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::protocol::{ErrorCode, parse_request};

    fn value(frame: &Frame) -> Value {
        serde_json::from_str(frame.as_str()).expect("frames are valid JSON")
    }

    fn id(json: &str) -> RequestId {
        let (id, _) = parse_request(&format!(r#"{{"op":"ping","id":{json}}}"#));
        id.expect("valid id")
    }

    #[test]
    fn frames_are_the_documented_json() {
        assert_eq!(
            value(&Frame::welcome("c1", None, "n\"1")),
            json!({"op":"welcome","conn":"c1","user":null,"node":"n\"1"})
        );
        assert_eq!(value(&Frame::welcome("c1", Some("u"), "n"))["user"], "u");
        assert_eq!(value(&Frame::ok(&id("\"a\""))), json!({"id":"a","ok":true}));
        assert_eq!(
            value(&Frame::ok_with(&id("2"), "[1]")),
            json!({"id":2,"ok":true,"result":[1]})
        );
        let err = ProtocolError::new(ErrorCode::Forbidden, "no \"way\"\n");
        assert_eq!(
            value(&Frame::error(None, &err)),
            json!({"id":null,"error":{"code":"forbidden","message":"no \"way\"\n"}})
        );
        let channel = ChannelName::new("chat.lobby").expect("valid");
        assert_eq!(
            value(&Frame::push(&channel, r#"{"x":1}"#)),
            json!({"channel":"chat.lobby","data":{"x":1}})
        );
        assert_eq!(
            value(&Frame::message("3")),
            json!({"op":"message","data":3})
        );
    }
}
