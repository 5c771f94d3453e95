//! Server-to-client frames, encoded once and shared.
//!
//! A [`Frame`] is a complete WebSocket frame (header and payload) in a
//! reference-counted buffer. Server frames are never masked, so the bytes a
//! push puts on the wire are the same for every recipient: a push is encoded
//! once per published message and every subscriber's writer hands the same
//! buffer to the kernel, with no per-recipient copy or re-encoding.

use std::fmt::Write as _;

use bytes::{BufMut, Bytes, BytesMut};

use super::{ChannelName, ProtocolError, RequestId};

const OPCODE_TEXT: u8 = 0x1;
const OPCODE_CLOSE: u8 = 0x8;
const OPCODE_PING: u8 = 0x9;
const FIN: u8 = 0x80;

/// One complete WebSocket frame as sent on the wire; cloning shares the bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame(Bytes);

impl Frame {
    /// `{"op":"welcome","conn":..,"user":..,"node":..}`, the first frame of a
    /// session, with `"expires_at"` (Unix seconds) when the identity expires.
    pub fn welcome(conn: &str, user: Option<&str>, node: &str, expires_at: Option<u64>) -> Self {
        let user = user.map_or_else(|| "null".to_owned(), json_string);
        let expires = expires_at.map_or_else(String::new, |at| format!(r#","expires_at":{at}"#));
        Self::text(&format!(
            r#"{{"op":"welcome","conn":{},"user":{user},"node":{}{expires}}}"#,
            json_string(conn),
            json_string(node)
        ))
    }

    /// `{"op":"unsubscribed","channel":..,"reason":..}`: the server removed a
    /// subscription (after a refresh that no longer allows it).
    pub fn unsubscribed(channel: &ChannelName, reason: &str) -> Self {
        Self::text(&format!(
            r#"{{"op":"unsubscribed","channel":"{channel}","reason":{}}}"#,
            json_string(reason)
        ))
    }

    /// `{"id":..,"ok":true}`.
    pub fn ok(id: &RequestId) -> Self {
        Self::text(&format!(r#"{{"id":{},"ok":true}}"#, id.as_json()))
    }

    /// `{"id":..,"ok":true,"result":..}`; `result` must be JSON text.
    pub fn ok_with(id: &RequestId, result: &str) -> Self {
        Self::text(&format!(
            r#"{{"id":{},"ok":true,"result":{result}}}"#,
            id.as_json()
        ))
    }

    /// `{"id":..,"error":{"code":..,"message":..}}`; `id` is `null` when unknown.
    pub fn error(id: Option<&RequestId>, error: &ProtocolError) -> Self {
        Self::text(&format!(
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
        Self::text(&text)
    }

    /// `{"channel":..,"data":..,"offset":..,"epoch":..}`, a push on a channel
    /// that keeps history; `data` must be JSON text and `epoch` must need no
    /// JSON escaping (`crate::history::is_epoch`).
    pub fn push_at(channel: &ChannelName, data: &str, offset: u64, epoch: &str) -> Self {
        let mut text =
            String::with_capacity(48 + channel.as_str().len() + data.len() + epoch.len());
        let _ = write!(
            text,
            r#"{{"channel":"{channel}","data":{data},"offset":{offset},"epoch":"{epoch}"}}"#
        );
        Self::text(&text)
    }

    /// `{"op":"message","data":..}`, a message addressed to one connection or user.
    pub fn message(data: &str) -> Self {
        Self::text(&format!(r#"{{"op":"message","data":{data}}}"#))
    }

    /// A text frame carrying `payload`.
    pub fn text(payload: &str) -> Self {
        Self::encode(OPCODE_TEXT, payload.as_bytes())
    }

    /// A ping with an empty payload.
    pub fn ping() -> Self {
        Self::encode(OPCODE_PING, &[])
    }

    /// A close frame with `code` and a short `reason` (cut to fit a control frame).
    pub fn close(code: u16, reason: &str) -> Self {
        let mut payload = Vec::with_capacity(2 + reason.len());
        payload.extend_from_slice(&code.to_be_bytes());
        // Control frame payloads are at most 125 bytes (RFC 6455 5.5).
        let mut cut = reason.len().min(123);
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        payload.extend_from_slice(&reason.as_bytes()[..cut]);
        Self::encode(OPCODE_CLOSE, &payload)
    }

    /// Bytes already framed by the WebSocket library (its pong and close replies).
    pub fn encoded(bytes: Bytes) -> Self {
        Self(bytes)
    }

    fn encode(opcode: u8, payload: &[u8]) -> Self {
        let mut frame = BytesMut::with_capacity(10 + payload.len());
        frame.put_u8(FIN | opcode);
        match payload.len() {
            len @ 0..=125 => frame.put_u8(len as u8),
            len @ 126..=0xFFFF => {
                frame.put_u8(126);
                frame.put_u16(len as u16);
            }
            len => {
                frame.put_u8(127);
                frame.put_u64(len as u64);
            }
        }
        frame.put_slice(payload);
        Self(frame.freeze())
    }

    /// Bytes on the wire, header included.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the frame is empty (never true for frames built here).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The payload of a text frame as text (empty for other frames).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.payload()).unwrap_or_default()
    }

    fn payload(&self) -> &[u8] {
        let header = match self.0.get(1).map(|b| b & 0x7F) {
            Some(126) => 4,
            Some(127) => 10,
            Some(_) => 2,
            None => return &[],
        };
        self.0.get(header..).unwrap_or_default()
    }

    /// The shared wire bytes, for the session's writer.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl From<String> for Frame {
    fn from(text: String) -> Self {
        Self::text(&text)
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
            value(&Frame::welcome("c1", None, "n\"1", None)),
            json!({"op":"welcome","conn":"c1","user":null,"node":"n\"1"})
        );
        let welcome = value(&Frame::welcome("c1", Some("u"), "n", Some(1_800_000_000)));
        assert_eq!(welcome["user"], "u");
        assert_eq!(welcome["expires_at"], 1_800_000_000);
        assert_eq!(
            value(&Frame::unsubscribed(
                &ChannelName::new("a.b").expect("valid"),
                "no \"way\""
            )),
            json!({"op":"unsubscribed","channel":"a.b","reason":"no \"way\""})
        );
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
            value(&Frame::push_at(&channel, "[1]", 7, "e-1")),
            json!({"channel":"chat.lobby","data":[1],"offset":7,"epoch":"e-1"})
        );
        assert_eq!(
            value(&Frame::message("3")),
            json!({"op":"message","data":3})
        );
    }
}
