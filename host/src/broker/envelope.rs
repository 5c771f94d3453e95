//! What travels on the broker: the envelope around a payload, and how users
//! and connections are named in subjects.
//!
//! The gateway publishes `{"ferrygate":1,"node":"<node id>","data":<payload>}`;
//! on a channel with history the broker adds `"offset":N,"epoch":"E"`; a
//! NATS history record of several messages has `"batch":[D1,..,Dn]` instead
//! of `data`, the messages at offsets N to N+n-1 (see
//! `broker::nats::history`); a presence event (join/leave) says
//! `"presence":"join"|"leave"` and its `data` is `{"user":..,"conn":..}`
//! (`conn` optional; any other shape is `bad_envelope`).
//! A backend may publish the same envelope, or just the payload (any JSON
//! value). A JSON object whose `ferrygate` key is a number is read as an
//! envelope and must be version 1 with `data`; anything else is a raw payload.
//! Pure functions over bytes: no I/O, no metrics.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::BrokerError;
use crate::metrics::Malformed;

/// The one envelope version this gateway writes and reads.
pub const VERSION: u32 = 1;

/// A broker message's payload, checked: valid JSON of bounded size.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// The JSON text to hand to clients (a batch record's first message).
    pub data: &'a str,
    /// A batch record's messages after the first, at the offsets after
    /// `at`'s; empty otherwise.
    pub more: Vec<&'a str>,
    /// The publishing gateway's node id, when the sender said.
    pub node: Option<String>,
    /// The message's history position (offset, epoch), on channels with history.
    pub at: Option<(u64, String)>,
    /// A presence event (`"presence":"join"|"leave"`) rather than a message.
    pub presence: Option<crate::presence::EventKind>,
}

/// The envelope's fields, unread: the object is parsed once, and only a
/// numeric `ferrygate` makes it an envelope whose fields must then be right
/// (a field of the wrong type is `bad_envelope`, never a payload).
#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(borrow, default)]
    ferrygate: Option<&'a RawValue>,
    #[serde(borrow, default)]
    node: Option<&'a RawValue>,
    #[serde(borrow, default)]
    offset: Option<&'a RawValue>,
    #[serde(borrow, default)]
    epoch: Option<&'a RawValue>,
    #[serde(borrow, default)]
    presence: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    data: Option<&'a RawValue>,
    #[serde(borrow, default)]
    batch: Option<&'a RawValue>,
}

/// The `data` of a presence event: `{"user":"..","conn":".."}` (`conn`
/// optional), nothing else.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventData {
    #[serde(rename = "user")]
    _user: String,
    #[serde(rename = "conn", default)]
    _conn: Option<String>,
}

/// A field of an envelope as `T`; absent is `None`, the wrong type is
/// `bad_envelope`.
fn field<'a, T: Deserialize<'a>>(raw: Option<&'a RawValue>) -> Result<Option<T>, Malformed> {
    raw.map(|raw| serde_json::from_str(raw.get()).map_err(|_| Malformed::BadEnvelope))
        .transpose()
}

/// Most bytes of a batch record [`decode`] accepts: the appender's batch
/// bound plus room for the envelope and the separators.
pub const MAX_RECORD_BYTES: usize = crate::history::appender::MAX_BATCH_BYTES + 16 * 1024;

/// Keeps `"data":null` as `Some(null)`: a plain `Option` would read it as a
/// missing `data` and refuse the envelope of a `null` payload.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// Wraps `data` (JSON text) in the envelope, naming `node` as the sender.
pub fn encode(node: &str, data: &str) -> String {
    // Node ids are base-36, so they need no JSON escaping.
    format!(r#"{{"ferrygate":{VERSION},"node":"{node}","data":{data}}}"#)
}

/// The envelope of a presence event on a channel: `data` is
/// `{"user":..,"conn":..}` (JSON text), `kind` says join or leave.
pub fn encode_presence(node: &str, kind: crate::presence::EventKind, data: &str) -> String {
    let kind = kind.as_str();
    format!(r#"{{"ferrygate":{VERSION},"node":"{node}","presence":"{kind}","data":{data}}}"#)
}

/// Bytes [`encode`] adds around `data` for `node`: `{"ferrygate":1,"node":"","data":}`
/// is 33 bytes, plus the node id.
pub fn overhead(node: &str) -> usize {
    const FIXED: usize = r#"{"ferrygate":1,"node":"","data":}"#.len();
    FIXED + node.len()
}

/// The one size rule for everything the gateway puts on a broker: a payload
/// is refused up front (`too_large`) when its envelope would be larger than
/// the `max_bytes` that every receiving instance's [`decode`] enforces (the
/// same `[server] max_frame_bytes`), because a receiver would drop it.
#[derive(Debug, Clone)]
pub struct SizeLimit {
    /// The largest `data` (bytes of JSON text) that fits: `max_bytes` less [`overhead`].
    max_data: usize,
}

/// Most bytes the history fields add to an envelope:
/// `,"offset":<u64>,"epoch":"<epoch>"` with the longest offset (20 digits)
/// and the longest epoch ([`MAX_EPOCH_BYTES`](crate::history::MAX_EPOCH_BYTES)).
pub const HISTORY_FIELDS: usize =
    r#","offset":,"epoch":"""#.len() + 20 + crate::history::MAX_EPOCH_BYTES;

impl SizeLimit {
    /// The limit for envelopes written by `node` and read with `max_bytes`.
    pub fn new(node: &str, max_bytes: usize) -> Self {
        Self {
            max_data: max_bytes.saturating_sub(overhead(node)),
        }
    }

    /// The largest `data` accepted, in bytes.
    pub fn max_data(&self) -> usize {
        self.max_data
    }

    /// `Ok` when `data` fits, else [`BrokerError::TooLarge`] with both sizes.
    pub fn check(&self, data: &str) -> Result<(), BrokerError> {
        Self::within(data, self.max_data)
    }

    /// [`check`](Self::check) for a message kept in history, whose envelope
    /// also carries `"offset"` and `"epoch"`: [`HISTORY_FIELDS`] bytes fewer.
    pub fn check_kept(&self, data: &str) -> Result<(), BrokerError> {
        Self::within(data, self.max_data.saturating_sub(HISTORY_FIELDS))
    }

    fn within(data: &str, limit: usize) -> Result<(), BrokerError> {
        if data.len() > limit {
            return Err(BrokerError::TooLarge {
                size: data.len(),
                limit,
            });
        }
        Ok(())
    }
}

/// Checks and unwraps one broker payload; `max_bytes` bounds what a client
/// may be sent (each message of a batch record; the whole record at most
/// [`MAX_RECORD_BYTES`]).
pub fn decode(payload: &[u8], max_bytes: usize) -> Result<Decoded<'_>, Malformed> {
    if payload.len() > max_bytes.max(MAX_RECORD_BYTES) {
        return Err(Malformed::Oversize);
    }
    let text = std::str::from_utf8(payload).map_err(|_| Malformed::NotJson)?;
    let raw: &RawValue = serde_json::from_str(text).map_err(|_| Malformed::NotJson)?;
    let trimmed = raw.get();
    if trimmed.starts_with('{')
        && let Ok(probe) = serde_json::from_str::<Probe<'_>>(trimmed)
        && let Some(version) = probe.ferrygate
        && version
            .get()
            .starts_with(|c: char| c == '-' || c.is_ascii_digit())
    {
        let version: u64 = serde_json::from_str(version.get()).unwrap_or(0);
        let offset: Option<u64> = field(probe.offset)?;
        let epoch: Option<String> = field(probe.epoch)?;
        let at = match (offset, epoch) {
            (None, None) => None,
            (Some(offset), Some(epoch)) if crate::history::is_epoch(&epoch) => {
                Some((offset, epoch))
            }
            _ => return Err(Malformed::BadEnvelope),
        };
        let presence: Option<String> = field(probe.presence)?;
        let presence = match presence.as_deref() {
            None => None,
            Some(kind) => {
                Some(crate::presence::EventKind::parse(kind).ok_or(Malformed::BadEnvelope)?)
            }
        };
        let batch: Option<Vec<&RawValue>> = field(probe.batch)?;
        let (data, more) = match (version, probe.data, batch) {
            (1, Some(data), None) if payload.len() <= max_bytes => (data.get(), Vec::new()),
            (1, Some(_), None) => return Err(Malformed::Oversize),
            // A batch only as a kept record: with a position, of messages
            // (offset 0 is a marker's).
            (1, None, Some(batch))
                if at.as_ref().is_some_and(|(offset, _)| *offset > 0) && presence.is_none() =>
            {
                if batch.iter().any(|one| one.get().len() > max_bytes) {
                    return Err(Malformed::Oversize);
                }
                let mut items = batch.into_iter().map(RawValue::get);
                let first = items.next().ok_or(Malformed::BadEnvelope)?;
                (first, items.collect())
            }
            _ => return Err(Malformed::BadEnvelope),
        };
        // A join or leave is pushed as `{"channel":..,"join":DATA}`: only
        // the shape the gateway writes (`presence::event_data`) may be.
        if presence.is_some() && serde_json::from_str::<EventData>(data).is_err() {
            return Err(Malformed::BadEnvelope);
        }
        return Ok(Decoded {
            data,
            more,
            node: field(probe.node)?,
            at,
            presence,
        });
    }
    if payload.len() > max_bytes {
        return Err(Malformed::Oversize);
    }
    Ok(Decoded {
        data: trimmed,
        more: Vec::new(),
        node: None,
        at: None,
        presence: None,
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
mod tests;
