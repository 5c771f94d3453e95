//! The ferrygate client protocol (SPEC §3): the `welcome` frame, `subscribe`,
//! `publish` frames, and cheap classification of replies and pushes on the hot path.

use std::sync::LazyLock;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::{BufMut, BytesMut};
use memchr::memmem::Finder;
use serde_json::Value;
use tokio::time::Instant;

use crate::wsconn::WsConn;
use crate::wsframe::OP_TEXT;

/// Waits for the server's first frame and checks it is `{"op":"welcome",...}`.
pub async fn handshake(conn: &mut WsConn, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let data = conn.next_data(deadline).await?;
    let v: Value = serde_json::from_slice(data).context("welcome frame is not JSON")?;
    if v.get("op").and_then(Value::as_str) != Some("welcome") {
        bail!("expected a welcome frame, got {}", preview(data));
    }
    Ok(())
}

/// Subscribes (request id 1) and waits for `{"id":1,"ok":true}`.
pub async fn subscribe(conn: &mut WsConn, channel: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let req = serde_json::json!({"op": "subscribe", "id": 1, "channel": channel});
    conn.send(OP_TEXT, req.to_string().as_bytes())
        .await
        .context("send subscribe")?;
    loop {
        let data = conn.next_data(deadline).await?;
        let Ok(v) = serde_json::from_slice::<Value>(data) else {
            bail!("non-JSON frame while subscribing: {}", preview(data));
        };
        if v.get("id").and_then(Value::as_u64) != Some(1) {
            continue; // a push that raced the reply
        }
        if v.get("ok").and_then(Value::as_bool) == Some(true) {
            return Ok(());
        }
        bail!("subscribe refused: {}", preview(data));
    }
}

/// Appends `{"op":"publish","id":<id>,"channel":"<channel>","data":<payload>}`;
/// `channel` must need no JSON escaping (checked by [`check_channel`]).
pub fn encode_publish(buf: &mut BytesMut, id: u64, channel: &str, payload: &[u8]) {
    buf.put_slice(b"{\"op\":\"publish\",\"id\":");
    crate::payload::put_u64(buf, id);
    buf.put_slice(b",\"channel\":\"");
    buf.put_slice(channel.as_bytes());
    buf.put_slice(b"\",\"data\":");
    buf.put_slice(payload);
    buf.put_u8(b'}');
}

/// Channels are written into frames verbatim, so refuse ones that need escaping.
pub fn check_channel(channel: &str) -> Result<()> {
    if channel.is_empty()
        || channel
            .bytes()
            .any(|b| b == b'"' || b == b'\\' || b.is_ascii_control() || b == b' ')
    {
        bail!("channel {channel:?} must be non-empty without quotes, backslashes or spaces");
    }
    Ok(())
}

/// What a frame on the publisher's connection says.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    Ok,
    Error { rate_limited: bool },
    Other,
}

/// Classifies a reply frame without a full parse when it has the usual shape.
pub fn classify_reply(frame: &[u8]) -> Reply {
    use memchr::memmem::find;
    if find(frame, b"\"error\"").is_some() {
        return Reply::Error {
            rate_limited: find(frame, b"rate_limited").is_some(),
        };
    }
    if find(frame, b"\"ok\":true").is_some() {
        return Reply::Ok;
    }
    // Unusual spacing: fall back to JSON.
    match serde_json::from_slice::<Value>(frame) {
        Ok(v) if v.get("ok").and_then(Value::as_bool) == Some(true) => Reply::Ok,
        Ok(v) if v.get("error").is_some() => Reply::Error {
            rate_limited: v.pointer("/error/code").and_then(Value::as_str) == Some("rate_limited"),
        },
        _ => Reply::Other,
    }
}

/// The `data` value of a push frame `{"channel":..,"data":..}`, or `None` for
/// frames that are not pushes.
pub fn push_data(frame: &[u8]) -> Option<&[u8]> {
    static DATA: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"data\""));
    // Fast path: the gateway's own layout, `{"channel":"C","data":...`.
    if let Some(rest) = frame.strip_prefix(b"{\"channel\":\"")
        && let Some(q) = memchr::memchr(b'"', rest)
        && let Some(data) = rest[q..].strip_prefix(b"\",\"data\":")
    {
        return Some(data);
    }
    let at = DATA.find(frame)?;
    let rest = &frame[at + 6..];
    let colon = rest.iter().position(|b| !b.is_ascii_whitespace())?;
    (rest[colon] == b':').then(|| &rest[colon + 1..])
}

fn preview(data: &[u8]) -> String {
    String::from_utf8_lossy(&data[..data.len().min(200)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_publish_as_valid_json() {
        let mut b = BytesMut::new();
        encode_publish(&mut b, 7, "bench", br#"{"t":1,"s":2,"p":"x"}"#);
        let v: Value = serde_json::from_slice(&b).expect("json");
        assert_eq!(v["op"], "publish");
        assert_eq!(v["id"], 7);
        assert_eq!(v["channel"], "bench");
        assert_eq!(v["data"]["s"], 2);
    }

    #[test]
    fn classifies_replies() {
        assert_eq!(classify_reply(br#"{"id":2,"ok":true}"#), Reply::Ok);
        assert_eq!(classify_reply(br#"{"id":2, "ok" : true}"#), Reply::Ok);
        assert_eq!(
            classify_reply(br#"{"id":2,"error":{"code":"rate_limited","message":"slow"}}"#),
            Reply::Error { rate_limited: true }
        );
        assert_eq!(
            classify_reply(br#"{"id":2,"error":{"code":"forbidden","message":"no"}}"#),
            Reply::Error {
                rate_limited: false
            }
        );
        assert_eq!(classify_reply(b"garbage"), Reply::Other);
    }

    #[test]
    fn finds_push_data() {
        let f = br#"{"channel":"bench","data":{"t":5,"s":6,"p":"xx"}}"#;
        assert_eq!(
            crate::payload::scan(push_data(f).expect("push")),
            Some((5, 6))
        );
        let f = br#"{"channel":"bench","offset":3,"epoch":"e","data" : {"s":6,"t":5}}"#;
        assert_eq!(
            crate::payload::scan(push_data(f).expect("push")),
            Some((5, 6))
        );
        assert_eq!(push_data(br#"{"id":1,"ok":true}"#), None);
        assert_eq!(push_data(br#"{"channel":"a\"data\":1"}"#), None);
        assert_eq!(push_data(br#"{"channel":"x","data":7}"#), Some(&b"7}"[..]));
    }

    #[test]
    fn channel_check() {
        assert!(check_channel("bench.a_b-c").is_ok());
        assert!(check_channel("a\"b").is_err());
        assert!(check_channel("").is_err());
    }
}
