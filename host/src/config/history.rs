//! `history = { size, ttl_s }` on a `[[routes]]` entry: how many messages of
//! each matching channel are kept, and for how long, so that a client can
//! recover what it missed (SPEC 3, "History and recovery").
//!
//! Only the declaration and its bounds live here; storing and replaying is
//! `crate::history`'s and the broker's job.

use std::time::Duration;

use serde::Deserialize;

/// Most messages one channel may keep: a replay is capped well below it
/// (`crate::history::MAX_REPLAY`), and the in-process store also bounds a
/// channel's bytes, so more would only cost memory in the broker.
pub const MAX_HISTORY_SIZE: u32 = 100_000;

/// Longest a message may be kept, in seconds (7 days): history is for
/// reconnects and deploys, not an archive.
pub const MAX_HISTORY_TTL_S: u64 = 7 * 24 * 3600;

/// `history = { size, ttl_s }`: keep each channel's last `size` messages,
/// none older than `ttl_s` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryConfig {
    /// Messages kept per channel, 1 to [`MAX_HISTORY_SIZE`].
    pub size: u32,
    /// Seconds a message is kept, 1 to [`MAX_HISTORY_TTL_S`]; a channel
    /// without a publish for that long loses its history (and its epoch).
    pub ttl_s: u64,
}

impl HistoryConfig {
    /// `ttl_s` as a duration.
    pub fn ttl(&self) -> Duration {
        Duration::from_secs(self.ttl_s)
    }

    /// Checks the bounds; the error says which key and why.
    pub(super) fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_HISTORY_SIZE).contains(&self.size) {
            return Err(format!(
                "`history.size` must be between 1 and {MAX_HISTORY_SIZE}"
            ));
        }
        if !(1..=MAX_HISTORY_TTL_S).contains(&self.ttl_s) {
            return Err(format!(
                "`history.ttl_s` must be between 1 and {MAX_HISTORY_TTL_S} (7 days)"
            ));
        }
        Ok(())
    }
}
