//! From session frames to SSE events: the opening (subscribe replies turned
//! into a refusal, or into `event: recovery` and the first `id:`), then the
//! live stream drained from the outbox until it closes.
//!
//! Reads the JSON of each frame (top-level fields only) to find replies and
//! positions; the push itself goes out as the same JSON text, on one `data:`
//! line (raw line breaks, which JSON allows only as whitespace, become
//! spaces).

use std::borrow::Cow;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::sse::Event;
use futures_util::{Stream, StreamExt, stream};
use serde::Deserialize;
use serde_json::json;

use super::cursor::Cursor;
use crate::close::{CloseReason, reconnect_hint_ms};
use crate::outbox::{Next, Outbox};
use crate::protocol::{ChannelName, Frame, Since};

/// Most bytes taken from the outbox per turn of the stream.
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// Why the stream is refused before it starts.
#[derive(Debug)]
pub(super) struct Refusal {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

/// The stream's first events and what it tracks from then on.
#[derive(Debug)]
pub(super) struct Opening {
    events: Vec<Event>,
    cursor: Cursor,
    /// The channel pushes arrive on → the channel asked for (they differ
    /// when the route plugin rewrote it).
    asked_for: HashMap<ChannelName, ChannelName>,
}

/// The top-level fields of a frame this module reads.
#[derive(Deserialize)]
struct Head {
    id: Option<usize>,
    channel: Option<String>,
    offset: Option<u64>,
    epoch: Option<String>,
    error: Option<ErrorBody>,
    result: Option<AckResult>,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: String,
    message: String,
}

#[derive(Deserialize)]
struct AckResult {
    epoch: Option<String>,
    offset: Option<u64>,
    recovered: Option<bool>,
    channels: Option<Vec<String>>,
}

/// Reads the frames queued by the subscribes to `requested` (replies with
/// ids 0, 1, ... and pushes): the first error refuses the stream; otherwise
/// the opening is the recovery events (when the client sent a
/// `Last-Event-ID`), the id of the positions the client holds, and the
/// pushes. A channel recovered from `since` starts at `since`, not at the
/// reply's newest offset: its replay is still to come, and a stream cut
/// before it arrives must ask for it again.
pub(super) fn opening(
    requested: &[ChannelName],
    since: &HashMap<ChannelName, Since>,
    frames: Vec<Frame>,
    with_recovery: bool,
) -> Result<Opening, Refusal> {
    let mut opening = Opening {
        events: Vec::new(),
        cursor: Cursor::default(),
        asked_for: HashMap::new(),
    };
    let mut replies = 0;
    let mut pushes = Vec::new();
    for frame in frames {
        let Ok(head) = serde_json::from_str::<Head>(frame.as_str()) else {
            pushes.push(frame);
            continue;
        };
        let Some(channel) = head.id.and_then(|index| requested.get(index)) else {
            pushes.push(frame);
            continue;
        };
        replies += 1;
        if let Some(error) = head.error {
            return Err(refusal(channel, error));
        }
        let Some(result) = head.result else { continue };
        if let Some([target]) = result.channels.as_deref()
            && let Ok(target) = ChannelName::new(target)
        {
            opening.asked_for.insert(target, channel.clone());
        }
        if let (Some(epoch), Some(offset)) = (&result.epoch, result.offset) {
            match since
                .get(channel)
                .filter(|_| result.recovered == Some(true))
            {
                Some(from) => opening.cursor.set(channel, &from.epoch, from.offset),
                None => opening.cursor.set(channel, epoch, offset),
            }
            if with_recovery {
                let data = json!({
                    "channel": channel.as_str(),
                    "recovered": result.recovered.unwrap_or(false),
                    "epoch": epoch,
                    "offset": offset,
                });
                opening
                    .events
                    .push(Event::default().event("recovery").data(data.to_string()));
            }
        }
    }
    if replies < requested.len() {
        return Err(Refusal {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "unavailable",
            message: "the stream fell behind while subscribing: reconnect".to_owned(),
        });
    }
    if let Some(id) = opening.cursor.id() {
        // An event with an id and no data sets the client's last event id
        // without dispatching anything: a reconnect before the first push
        // still recovers what it missed.
        opening.events.push(Event::default().id(id));
    }
    for frame in pushes {
        if let Some(event) = translate(&mut opening.cursor, &opening.asked_for, &frame) {
            opening.events.push(event);
        }
    }
    Ok(opening)
}

fn refusal(channel: &ChannelName, error: ErrorBody) -> Refusal {
    let (status, code) = match error.code.as_str() {
        "forbidden" => (StatusCode::FORBIDDEN, "forbidden"),
        // Fail closed, as a failed auth plugin is answered.
        "plugin_error" => (StatusCode::FORBIDDEN, "plugin_error"),
        "unavailable" => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        "timeout" => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
        "not_found" => (StatusCode::NOT_FOUND, "not_found"),
        "rate_limited" => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        _ => (StatusCode::BAD_REQUEST, "bad_request"),
    };
    Refusal {
        status,
        code,
        message: format!("{channel}: {}", error.message),
    }
}

/// One push as an event: the frame's JSON on one `data:` line, with the
/// stream's id when it moves a history channel's position. `None` for what
/// is not for an SSE client (pings, replies).
fn translate(
    cursor: &mut Cursor,
    asked_for: &HashMap<ChannelName, ChannelName>,
    frame: &Frame,
) -> Option<Event> {
    let text = frame.as_str();
    if text.is_empty() {
        return None;
    }
    let mut event = Event::default();
    if let Ok(head) = serde_json::from_str::<Head>(text) {
        if head.id.is_some() || head.error.is_some() {
            return None;
        }
        if let (Some(channel), Some(offset), Some(epoch)) = (head.channel, head.offset, head.epoch)
            && let Ok(channel) = ChannelName::new(&channel)
        {
            let asked = asked_for.get(&channel).unwrap_or(&channel);
            if cursor.tracks(asked) {
                cursor.set(asked, &epoch, offset);
                if let Some(id) = cursor.id() {
                    event = event.id(id);
                }
            }
        }
    }
    Some(event.data(one_line(text)))
}

/// `text` with raw CR and LF turned into spaces (JSON allows them only as
/// whitespace), so that it fits one `data:` line.
fn one_line(text: &str) -> Cow<'_, str> {
    if text.contains(['\r', '\n']) {
        Cow::Owned(text.replace(['\r', '\n'], " "))
    } else {
        Cow::Borrowed(text)
    }
}

/// The last event, for a stream that ends for `reason`.
fn closing(reason: CloseReason, drain: Duration) -> Event {
    match reason {
        CloseReason::TokenExpired => Event::default()
            .event("expired")
            .data(json!({"code": reason.code(), "reason": "token expired"}).to_string()),
        CloseReason::Draining => {
            let wait = reconnect_hint_ms(drain);
            Event::default()
                .event("close")
                .retry(Duration::from_millis(wait))
                .data(json!({"code": reason.code(), "reconnect_in_ms": wait}).to_string())
        }
        other => Event::default()
            .event("close")
            .data(json!({"code": other.code(), "reason": other.as_str()}).to_string()),
    }
}

/// Closes the outbox when the stream is dropped (the client went away), so
/// that the session is released.
struct CloseOnDrop(Arc<Outbox>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close(CloseReason::ClientClosed);
    }
}

struct Live {
    outbox: CloseOnDrop,
    frames: Vec<Frame>,
    cursor: Cursor,
    asked_for: HashMap<ChannelName, ChannelName>,
    drain: Duration,
    done: bool,
}

/// The whole stream: the opening, then every batch from `outbox` until it
/// closes, then the closing event.
pub(super) fn live(
    opening: Opening,
    outbox: Arc<Outbox>,
    drain: Duration,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let first = stream::iter(opening.events.into_iter().map(Ok));
    let state = Live {
        outbox: CloseOnDrop(outbox),
        frames: Vec::new(),
        cursor: opening.cursor,
        asked_for: opening.asked_for,
        drain,
        done: false,
    };
    let rest = stream::unfold(state, |mut state| async move {
        if state.done {
            return None;
        }
        let events: Vec<Event> = match state
            .outbox
            .0
            .next(&mut state.frames, MAX_BATCH_BYTES)
            .await
        {
            Next::Frames => {
                let Live {
                    frames,
                    cursor,
                    asked_for,
                    ..
                } = &mut state;
                frames
                    .drain(..)
                    .filter_map(|frame| translate(cursor, asked_for, &frame))
                    .collect()
            }
            Next::Close(reason) => {
                state.done = true;
                vec![closing(reason, state.drain)]
            }
        };
        Some((events, state))
    })
    .flat_map(|events| stream::iter(events.into_iter().map(Ok)));
    first.chain(rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ProtocolError, RequestId};

    fn ch(name: &str) -> ChannelName {
        ChannelName::new(name).expect("valid channel")
    }

    #[test]
    fn an_error_reply_refuses_the_stream() {
        let error = ProtocolError::new(crate::protocol::ErrorCode::Forbidden, "no");
        let frames = vec![
            Frame::ok(&RequestId::number(0)),
            Frame::error(Some(&RequestId::number(1)), &error),
        ];
        let refused =
            opening(&[ch("a"), ch("b")], &HashMap::new(), frames, false).expect_err("refused");
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert_eq!(refused.message, "b: no");
    }

    #[test]
    fn positions_from_acks_and_pushes_make_the_ids() {
        let frames = vec![
            Frame::ok_with(&RequestId::number(0), r#"{"epoch":"E","offset":4}"#),
            Frame::push_at(&ch("a"), r#"{"x":1}"#, 5, "E"),
            Frame::push(&ch("a"), "2"),
        ];
        let mut opening = opening(&[ch("a")], &HashMap::new(), frames, false).expect("opens");
        assert_eq!(opening.events.len(), 3, "id, push with offset, plain push");
        assert_eq!(opening.cursor.id().as_deref(), Some("E:5"));
        let next = Frame::push_at(&ch("a"), "{\n\"y\":2}", 6, "E");
        assert!(translate(&mut opening.cursor, &opening.asked_for, &next).is_some());
        assert_eq!(opening.cursor.id().as_deref(), Some("E:6"));
        assert!(translate(&mut opening.cursor, &opening.asked_for, &Frame::ping()).is_none());
        assert_eq!(one_line("{\r\n\"y\":2}"), "{  \"y\":2}");
    }

    #[test]
    fn missing_replies_refuse_the_stream() {
        let refused = opening(&[ch("a")], &HashMap::new(), Vec::new(), false).expect_err("refused");
        assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    }
}
