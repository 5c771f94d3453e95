//! What travels on the broker: the envelope around a payload, and how users
//! and connections are named in subjects.
//!
//! The gateway publishes `{"ferrygate":1,"node":"<node id>","data":<payload>}`;
//! on a channel with history the broker adds `"offset":N,"epoch":"E"`.
//! A backend may publish the same envelope, or just the payload (any JSON
//! value). A JSON object whose `ferrygate` key is a number is read as an
//! envelope and must be version 1 with `data`; anything else is a raw payload.
//! Pure functions over bytes: no I/O, no metrics.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::metrics::Malformed;

/// The one envelope version this gateway writes and reads.
pub const VERSION: u32 = 1;

/// A broker message's payload, checked: valid JSON of bounded size.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// The JSON text to hand to clients.
    pub data: &'a str,
    /// The publishing gateway's node id, when the sender said.
    pub node: Option<String>,
    /// The message's history position (offset, epoch), on channels with history.
    pub at: Option<(u64, String)>,
}

#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(default)]
    ferrygate: Option<u64>,
    #[serde(default)]
    node: Option<String>,
    #[serde(default)]
    offset: Option<u64>,
    #[serde(default)]
    epoch: Option<String>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

/// Wraps `data` (JSON text) in the envelope, naming `node` as the sender.
pub fn encode(node: &str, data: &str) -> String {
    // Node ids are base-36, so they need no JSON escaping.
    format!(r#"{{"ferrygate":{VERSION},"node":"{node}","data":{data}}}"#)
}

/// Checks and unwraps one broker payload; `max_bytes` bounds what a client may be sent.
pub fn decode(payload: &[u8], max_bytes: usize) -> Result<Decoded<'_>, Malformed> {
    if payload.len() > max_bytes {
        return Err(Malformed::Oversize);
    }
    let text = std::str::from_utf8(payload).map_err(|_| Malformed::NotJson)?;
    let raw: &RawValue = serde_json::from_str(text).map_err(|_| Malformed::NotJson)?;
    let trimmed = raw.get();
    if trimmed.starts_with('{')
        && let Ok(probe) = serde_json::from_str::<Probe<'_>>(trimmed)
        && let Some(version) = probe.ferrygate
    {
        let at = match (probe.offset, probe.epoch) {
            (None, None) => None,
            (Some(offset), Some(epoch)) if crate::history::is_epoch(&epoch) => {
                Some((offset, epoch))
            }
            _ => return Err(Malformed::BadEnvelope),
        };
        return match (version, probe.data) {
            (1, Some(data)) => Ok(Decoded {
                data: data.get(),
                node: probe.node,
                at,
            }),
            _ => Err(Malformed::BadEnvelope),
        };
    }
    Ok(Decoded {
        data: trimmed,
        node: None,
        at: None,
    })
}

/// A user id as one subject token: bytes outside `[A-Za-z0-9_-]` become
/// `%XX`, so that `.` `*` `>` and spaces can never split or widen a subject.
pub fn user_token(user: &str) -> String {
    let mut token = String::with_capacity(user.len());
    for byte in user.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' {
            token.push(char::from(byte));
        } else {
            token.push_str(&format!("%{byte:02X}"));
        }
    }
    token
}

/// The inverse of [`user_token`]; `None` for a token it cannot have made.
pub fn user_from_token(token: &str) -> Option<String> {
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = token.get(index + 1..index + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Whether `conn` has the shape of a connection id (`<node>.<n>`, both
/// lowercase base-36/hex tokens), so that it can go into a subject unchanged.
pub fn is_conn_id(conn: &str) -> bool {
    let token_ok = |t: &str| {
        !t.is_empty()
            && t.len() <= 32
            && t.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    matches!(conn.split_once('.'), Some((node, n)) if token_ok(node) && token_ok(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_payloads_and_envelopes() {
        let raw = decode(br#"{"text":"hi"}"#, 100).expect("raw object");
        assert_eq!(raw.data, r#"{"text":"hi"}"#);
        assert_eq!(raw.node, None);
        assert_eq!(decode(b" 42 ", 100).expect("number").data, "42");
        let wrapped = encode("abc", r#"[1,2]"#);
        let decoded = decode(wrapped.as_bytes(), 100).expect("envelope");
        assert_eq!(decoded.data, "[1,2]");
        assert_eq!(decoded.node.as_deref(), Some("abc"));
    }

    #[test]
    fn malformed_payloads_are_named() {
        assert_eq!(decode(b"not json", 100), Err(Malformed::NotJson));
        assert_eq!(decode(&[0xff, 0xfe], 100), Err(Malformed::NotJson));
        assert_eq!(decode(b"[1,2,3]", 3), Err(Malformed::Oversize));
        assert_eq!(
            decode(br#"{"ferrygate":2,"data":1}"#, 100),
            Err(Malformed::BadEnvelope)
        );
        assert_eq!(
            decode(br#"{"ferrygate":1}"#, 100),
            Err(Malformed::BadEnvelope)
        );
        assert_eq!(
            decode(br#"{"ferrygate":1,"offset":3,"epoch":"a b","data":1}"#, 100),
            Err(Malformed::BadEnvelope)
        );
        assert_eq!(
            decode(br#"{"ferrygate":1,"offset":3,"data":1}"#, 100),
            Err(Malformed::BadEnvelope)
        );
        let kept = decode(br#"{"ferrygate":1,"offset":3,"epoch":"e1","data":1}"#, 100);
        assert_eq!(kept.expect("kept").at, Some((3, "e1".to_owned())));
    }

    #[test]
    fn user_tokens_round_trip_and_stay_one_token() {
        for user in ["alice", "a.b@example.com", "x y*>%", "ünï"] {
            let token = user_token(user);
            assert!(!token.contains(['.', '*', '>', ' ', ':']), "{token}");
            assert_eq!(user_from_token(&token).as_deref(), Some(user));
        }
        assert_eq!(user_from_token("%zz"), None);
    }

    #[test]
    fn conn_ids_are_checked() {
        assert!(is_conn_id("k3j2h1g0f9.1a"));
        assert!(!is_conn_id("k3j2h1g0f9-1a"));
        assert!(!is_conn_id("a.b.c"));
        assert!(!is_conn_id("a.*"));
        assert!(!is_conn_id(".1"));
    }
}
