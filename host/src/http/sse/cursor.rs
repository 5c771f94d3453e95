//! The SSE event id of a stream's history channels, and its parsing when a
//! client reconnects with `Last-Event-ID`.
//!
//! With one history channel the id is `<epoch>:<offset>` (SPEC 4). With
//! several it is `<channel>/<epoch>:<offset>` for each channel with a known
//! position, joined by `,` (channel names contain neither `/` nor `,`, epochs
//! no `:`): documented as opaque, readable for debugging. Owns the format
//! only; the recovery itself is the session's `since`.

use std::collections::HashMap;

use crate::history::is_epoch;
use crate::protocol::{ChannelName, Since};

/// The positions a stream has reached, by requested channel.
#[derive(Debug, Default)]
pub(super) struct Cursor {
    /// History channels in the order they were asked for.
    order: Vec<ChannelName>,
    positions: HashMap<ChannelName, (String, u64)>,
}

/// A `Last-Event-ID` this gateway did not write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed Last-Event-ID")]
pub(super) struct Malformed;

impl Cursor {
    /// Records the position of `channel` (a history channel from now on).
    pub fn set(&mut self, channel: &ChannelName, epoch: &str, offset: u64) {
        if !self.positions.contains_key(channel) {
            self.order.push(channel.clone());
        }
        self.positions
            .insert(channel.clone(), (epoch.to_owned(), offset));
    }

    /// Whether `channel` has a position.
    pub fn tracks(&self, channel: &ChannelName) -> bool {
        self.positions.contains_key(channel)
    }

    /// The event id for the positions now; `None` without history channels.
    pub fn id(&self) -> Option<String> {
        match self.order.as_slice() {
            [] => None,
            [one] => {
                let (epoch, offset) = self.positions.get(one)?;
                Some(format!("{epoch}:{offset}"))
            }
            many => {
                let parts: Vec<String> = many
                    .iter()
                    .filter_map(|channel| {
                        let (epoch, offset) = self.positions.get(channel)?;
                        Some(format!("{channel}/{epoch}:{offset}"))
                    })
                    .collect();
                Some(parts.join(","))
            }
        }
    }
}

/// Reads a `Last-Event-ID` for a stream whose history channels are expected
/// to be `history` (from the manifest): the single form applies to the one
/// such channel, the multi form names its channels (unknown ones are
/// ignored).
pub(super) fn parse(
    text: &str,
    history: &[ChannelName],
) -> Result<HashMap<ChannelName, Since>, Malformed> {
    let mut since = HashMap::new();
    if !text.contains('/') {
        let [channel] = history else {
            return Err(Malformed);
        };
        since.insert(channel.clone(), position(text)?);
        return Ok(since);
    }
    for part in text.split(',') {
        let (channel, at) = part.split_once('/').ok_or(Malformed)?;
        let channel = ChannelName::new(channel).map_err(|_| Malformed)?;
        let at = position(at)?;
        if history.contains(&channel) {
            since.insert(channel, at);
        }
    }
    Ok(since)
}

fn position(text: &str) -> Result<Since, Malformed> {
    let (epoch, offset) = text.rsplit_once(':').ok_or(Malformed)?;
    if !is_epoch(epoch) {
        return Err(Malformed);
    }
    let offset = offset.parse().map_err(|_| Malformed)?;
    Ok(Since {
        epoch: epoch.to_owned(),
        offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(name: &str) -> ChannelName {
        ChannelName::new(name).expect("valid channel")
    }

    #[test]
    fn one_channel_reads_back_its_own_id() {
        let mut cursor = Cursor::default();
        assert_eq!(cursor.id(), None);
        cursor.set(&ch("a:b"), "e-1", 7);
        let id = cursor.id().expect("an id");
        assert_eq!(id, "e-1:7");
        let since = parse(&id, &[ch("a:b")]).expect("parses");
        assert_eq!(since[&ch("a:b")].offset, 7);
    }

    #[test]
    fn several_channels_read_back_their_own_id() {
        let mut cursor = Cursor::default();
        cursor.set(&ch("x"), "E", 1);
        cursor.set(&ch("y.z"), "F", 2);
        cursor.set(&ch("x"), "E", 3);
        let id = cursor.id().expect("an id");
        assert_eq!(id, "x/E:3,y.z/F:2");
        let since = parse(&id, &[ch("x"), ch("y.z")]).expect("parses");
        assert_eq!(since.len(), 2);
        assert_eq!(since[&ch("x")].offset, 3);
        assert_eq!(since[&ch("y.z")].epoch, "F");
        assert_eq!(parse(&id, &[ch("x")]).expect("parses").len(), 1);
    }

    #[test]
    fn foreign_ids_are_malformed() {
        for text in ["", "7", "e:", ":5", "e:-1", "e!:1", "x/E", "bad name/E:1"] {
            assert_eq!(parse(text, &[ch("x")]), Err(Malformed), "{text:?}");
        }
        assert_eq!(parse("E:1", &[ch("x"), ch("y")]), Err(Malformed));
    }
}
