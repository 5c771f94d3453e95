//! What a subscribe to a channel with history gets: its position, and with
//! `since` either `recovered:true` and the messages after `since`, or
//! `recovered:false` and why. A pure decision over one [`HistoryRead`], the
//! same for every broker; it neither reads the store nor queues frames.

use super::{HistoryRead, MAX_REPLAY, Position};
use crate::protocol::{Frame, Since};

/// Why a subscribe with `since` got `recovered:false` (the `reason` label of
/// `ferrygate_history_recoveries_failed_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unrecovered {
    /// The channel keeps no history (no `history` on its route, or the
    /// subscribe led to several channels).
    NoHistory,
    /// `since` names another epoch: the history was lost since (restart of
    /// the memory broker, expiry of an idle channel, a flushed store).
    Epoch,
    /// `since.offset` is past the newest offset of its epoch.
    Future,
    /// Messages after `since` were already evicted (by `size`, `ttl_s` or the
    /// store's byte bounds).
    Evicted,
    /// More than [`MAX_REPLAY`] messages were missed.
    TooMany,
    /// The missed messages would not fit in the connection's outbox.
    TooLarge,
    /// The store could not be read.
    Unavailable,
}

impl Unrecovered {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NoHistory => "no_history",
            Self::Epoch => "epoch",
            Self::Future => "future",
            Self::Evicted => "evicted",
            Self::TooMany => "too_many",
            Self::TooLarge => "too_large",
            Self::Unavailable => "unavailable",
        }
    }
}

/// The outcome for one subscribe.
#[derive(Debug)]
pub struct Plan {
    /// The position for the ack; pushes at or below it are not sent live.
    pub position: Position,
    /// With `since`: recovered or why not. `None` without `since`.
    pub recovered: Option<Result<(), Unrecovered>>,
    /// The frames to send between the ack and the live pushes, oldest first.
    pub replay: Vec<Frame>,
}

impl Plan {
    /// The subscribe's `result` fields: `epoch`, `offset` and, with `since`,
    /// `recovered`.
    pub fn insert_into(&self, result: &mut serde_json::Map<String, serde_json::Value>) {
        if let Some(recovered) = self.recovered {
            result.insert("recovered".into(), recovered.is_ok().into());
        }
        self.position.insert_into(result);
    }
}

/// Decides from `read` (made with `after = since.offset`, at most
/// [`MAX_REPLAY`] entries) what the client gets. `max_bytes` bounds the
/// replay's frames (the connection's outbox size).
pub fn plan(since: Option<&Since>, read: HistoryRead, max_bytes: usize) -> Plan {
    let HistoryRead {
        position,
        first,
        entries,
    } = read;
    let Some(since) = since else {
        return Plan {
            position,
            recovered: None,
            replay: Vec::new(),
        };
    };
    let checked = check(since, &position, first, &entries, max_bytes);
    let replay = match checked {
        Ok(()) => entries.into_iter().map(|kept| kept.frame).collect(),
        Err(_) => Vec::new(),
    };
    Plan {
        position,
        recovered: Some(checked),
        replay,
    }
}

fn check(
    since: &Since,
    position: &Position,
    first: u64,
    entries: &[super::Kept],
    max_bytes: usize,
) -> Result<(), Unrecovered> {
    if *since.epoch != *position.epoch {
        return Err(Unrecovered::Epoch);
    }
    if since.offset > position.offset {
        return Err(Unrecovered::Future);
    }
    let missed = position.offset - since.offset;
    if missed == 0 {
        return Ok(());
    }
    if since.offset + 1 < first {
        return Err(Unrecovered::Evicted);
    }
    if missed > MAX_REPLAY as u64 {
        return Err(Unrecovered::TooMany);
    }
    // Offsets rise by exactly one per message: anything else here means the
    // store lost some, and a replay with a hole must not claim `recovered`.
    let contiguous = entries.len() as u64 == missed
        && entries
            .iter()
            .zip(since.offset + 1..)
            .all(|(kept, offset)| kept.offset == offset);
    if !contiguous {
        return Err(Unrecovered::Evicted);
    }
    // Half the outbox, so that live pushes arriving meanwhile still fit.
    let bytes: usize = entries.iter().map(|kept| kept.frame.len()).sum();
    if bytes > max_bytes / 2 {
        return Err(Unrecovered::TooLarge);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Kept;
    use crate::protocol::ChannelName;

    fn read(epoch: &str, first: u64, last: u64, from: u64) -> HistoryRead {
        let channel = ChannelName::new("c").expect("valid");
        HistoryRead {
            position: Position {
                epoch: epoch.into(),
                offset: last,
            },
            first,
            entries: (from.max(first)..=last)
                .map(|offset| Kept {
                    offset,
                    frame: Frame::push_at(&channel, "1", offset, epoch),
                })
                .collect(),
        }
    }

    fn since(epoch: &str, offset: u64) -> Since {
        Since {
            epoch: epoch.into(),
            offset,
        }
    }

    #[test]
    fn recovers_exactly_what_follows_since() {
        let plan = plan(Some(&since("e", 3)), read("e", 1, 6, 4), 1 << 20);
        assert_eq!(plan.recovered, Some(Ok(())));
        assert_eq!(plan.replay.len(), 3);
        assert!(plan.replay[0].as_str().contains(r#""offset":4"#));
        let up_to_date = super::plan(Some(&since("e", 6)), read("e", 1, 6, 7), 1 << 20);
        assert_eq!(up_to_date.recovered, Some(Ok(())));
        assert!(up_to_date.replay.is_empty());
        let fresh = super::plan(None, read("e", 1, 6, 7), 1 << 20);
        assert_eq!((fresh.recovered, fresh.position.offset), (None, 6));
    }

    #[test]
    fn says_why_it_cannot_recover() {
        let failed = |s: Since, r: HistoryRead, bytes| plan(Some(&s), r, bytes).recovered;
        let no = |why| Some(Err(why));
        assert_eq!(
            failed(since("old", 3), read("e", 1, 6, 4), 1 << 20),
            no(Unrecovered::Epoch)
        );
        assert_eq!(
            failed(since("e", 9), read("e", 1, 6, 10), 1 << 20),
            no(Unrecovered::Future)
        );
        assert_eq!(
            failed(since("e", 2), read("e", 5, 6, 3), 1 << 20),
            no(Unrecovered::Evicted)
        );
        assert_eq!(
            failed(since("e", 0), read("e", 1, 6, 1), 100),
            no(Unrecovered::TooLarge)
        );
        let mut far = read("e", 1, 2, 1);
        far.position.offset = MAX_REPLAY as u64 + 5;
        assert_eq!(
            failed(since("e", 4), far, 1 << 20),
            no(Unrecovered::TooMany)
        );
        let mut holed = read("e", 1, 6, 4);
        holed.entries.remove(1);
        assert_eq!(
            failed(since("e", 3), holed, 1 << 20),
            no(Unrecovered::Evicted)
        );
    }
}
