//! Presence (SPEC 3, 4, 7): who is subscribed to a channel whose route sets
//! `presence = true`, across every instance, per user with their number of
//! connections (anonymous connections counted in the total only), and the
//! `join`/`leave` pushes of routes with `join_leave = true`.
//!
//! The model every store implements: each instance (node) writes, per
//! channel and member, how many of its own connections that member has
//! there, and refreshes its liveness every [`HEARTBEAT`]. A store answers a
//! write with the member's total over all nodes before and after it, so the
//! node that moved a user's total from 0 (to 0) announces the join (leave),
//! once per user, whichever instance holds which tab. A node not heard from
//! for [`ENTRY_TTL`] is dead: the next sweep of any instance removes its
//! entries and announces the leaves they cause. A drain removes the node's
//! entries at once. Stores, one per broker, each the real thing: in process
//! (`broker::memory`), Redis hashes and sorted sets (`broker::redis`), NATS
//! JetStream key-value (`broker::nats`); layouts in `docs/brokers.md`.
//!
//! This module owns the store contract, the wire shapes (events, pages,
//! cursors) and, in [`tracker`], this instance's local counts; [`query`]
//! answers the op and the HTTP endpoint. It never touches sockets.

pub mod query;
pub mod tracker;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::broker::BrokerError;
use crate::protocol::{ChannelName, Frame};

pub use tracker::Presence;

/// Pause between two heartbeats of an instance (liveness refresh, retry of
/// writes that failed, sweep of dead instances).
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// How long an instance's entries outlive its last heartbeat. With a sweep
/// every [`HEARTBEAT`], the entries of an instance killed without a goodbye
/// are gone within `ENTRY_TTL + HEARTBEAT` (20 s), inside the contract's 30 s,
/// while two missed heartbeats in a row are still tolerated.
pub const ENTRY_TTL: Duration = Duration::from_secs(15);

/// How long a store remembers the answer of a write by its [`WriteId`], so
/// that a write whose reply was lost (it landed, the caller timed out) is
/// answered, when retried with the same id, with the change it made rather
/// than with a no-op: the join or leave it caused is announced, once. NATS
/// keeps it as the bucket stream's duplicate window (its default, 2 min),
/// Redis as a record key with this expiry. A retry later than this (a broker
/// unreachable for longer) is a fresh write, and a push its first attempt
/// caused is lost.
pub const WRITE_MEMORY: Duration = Duration::from_secs(120);

/// Names one write of a node to a (channel, member): unique per node (a
/// counter from 1); a retry of a write whose outcome is unknown reuses it.
pub type WriteId = u64;

/// Members in one page when the query gives no `limit`.
pub const DEFAULT_PAGE: usize = 1000;

/// Most members one page may hold: a larger `limit` is a bad request, so a
/// reply stays well under a megabyte whatever the channel's size.
pub const MAX_PAGE: usize = 10_000;

/// Who a presence entry counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Member {
    /// A user, by the id the auth plugin gave it.
    User(Arc<str>),
    /// Connections without a user: counted in `connections` only.
    Anonymous,
}

impl Member {
    /// `User` for `Some`, `Anonymous` for `None`.
    pub fn of(user: Option<&str>) -> Self {
        user.map_or(Self::Anonymous, |user| Self::User(user.into()))
    }

    /// The user id, if any.
    pub fn user(&self) -> Option<&str> {
        match self {
            Self::User(user) => Some(user),
            Self::Anonymous => None,
        }
    }
}

/// A member's connections over every node, before and after one write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// Total before the write.
    pub before: u64,
    /// Total after it.
    pub after: u64,
}

/// Whether this node's liveness record survived until its heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    /// Still there: the node's entries are intact.
    Kept,
    /// Gone (another instance swept this node as dead, or the store lost
    /// it): every local entry must be written again.
    Lost,
}

/// A user whose last connection in a channel went with a removed node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gone {
    /// The channel.
    pub channel: ChannelName,
    /// The user who left.
    pub user: String,
}

/// One page of a channel's presence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// Connections in the channel over all nodes, anonymous ones included.
    pub connections: u64,
    /// Users in id order (bytewise), each with its connections.
    pub users: Vec<(String, u64)>,
    /// The last user of this page when more follow.
    pub more_after: Option<String>,
}

impl Page {
    /// The page from `users` read one past `limit` (in id order): the extra
    /// one only says that more follow, and is cut off.
    pub fn from_overfetch(connections: u64, mut users: Vec<(String, u64)>, limit: usize) -> Self {
        let more_after = if users.len() > limit {
            users.truncate(limit);
            users.last().map(|(user, _)| user.clone())
        } else {
            None
        };
        Self {
            connections,
            users,
            more_after,
        }
    }
}

/// A presence store: the shared table of every node's entries. See the
/// module docs for the model; every call is bounded by `[broker] timeout_ms`
/// and fails [`BrokerError::Unavailable`] rather than answer in part.
pub trait PresenceStore: Send + Sync + std::fmt::Debug {
    /// Sets this node's connections of `member` in `channel` to `count`
    /// (0 removes the entry); returns the member's total before and after.
    ///
    /// Idempotent by `write`: a call with the `write` (and `count`) of an
    /// earlier call for the same key whose answer was lost returns the
    /// earlier write's change if it landed (within [`WRITE_MEMORY`]) and
    /// makes the write if it did not; either way the change is applied once.
    /// An error means the outcome is unknown: the caller retries with the
    /// same `write` before any other write of the key.
    fn set<'a>(
        &'a self,
        channel: &'a ChannelName,
        member: &'a Member,
        count: u32,
        write: WriteId,
    ) -> BoxFuture<'a, Result<Change, BrokerError>>;

    /// Refreshes this node's liveness for another [`ENTRY_TTL`].
    fn heartbeat(&self) -> BoxFuture<'_, Result<Beat, BrokerError>>;

    /// Removes the entries of every node not heard from for [`ENTRY_TTL`];
    /// returns the users that left a channel thereby. Safe to run on every
    /// instance at once: each such leave is returned to exactly one caller.
    fn sweep(&self) -> BoxFuture<'_, Result<Vec<Gone>, BrokerError>>;

    /// Removes every entry of this node (a clean drain); returns the users
    /// that left a channel thereby.
    fn remove_node(&self) -> BoxFuture<'_, Result<Vec<Gone>, BrokerError>>;

    /// Up to `limit` users of `channel` whose id sorts after `after`, and
    /// the channel's total connections.
    fn page<'a>(
        &'a self,
        channel: &'a ChannelName,
        after: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Page, BrokerError>>;

    /// Delivers a join or leave `data` (JSON text, see [`event_data`]) to
    /// the subscribers of `channel` on every instance.
    fn announce<'a>(
        &'a self,
        channel: &'a ChannelName,
        kind: EventKind,
        data: &'a str,
    ) -> BoxFuture<'a, Result<(), BrokerError>>;
}

/// A join or a leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A user's first connection joined the channel.
    Join,
    /// A user's last connection left it.
    Leave,
}

impl EventKind {
    /// `join` or `leave`: the push's key and the envelope's `presence`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Join => "join",
            Self::Leave => "leave",
        }
    }

    /// The inverse of [`EventKind::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "join" => Some(Self::Join),
            "leave" => Some(Self::Leave),
            _ => None,
        }
    }
}

/// `{"user":"alice","conn":"<id>"}`; `conn` is left out when unknown (a
/// leave caused by a dead instance's expiry).
pub fn event_data(user: &str, conn: Option<&str>) -> String {
    let mut data = serde_json::Map::new();
    data.insert("user".into(), user.into());
    if let Some(conn) = conn {
        data.insert("conn".into(), conn.into());
    }
    serde_json::Value::Object(data).to_string()
}

/// The push `{"channel":"C","join":DATA}` (or `"leave"`); `data` is JSON
/// text that was checked on its way in.
pub fn event_frame(channel: &ChannelName, kind: EventKind, data: &str) -> Frame {
    // Channel names need no JSON escaping (see `protocol::channel`).
    Frame::text(&format!(
        r#"{{"channel":"{channel}","{}":{data}}}"#,
        kind.as_str()
    ))
}

/// Longest cursor accepted, in bytes of hex (a 2 KiB user id): bounds the
/// work a bad query can cause.
pub const MAX_CURSOR_BYTES: usize = 4096;

/// The opaque `next_cursor` after `user`: its bytes in lowercase hex.
pub fn encode_cursor(user: &str) -> String {
    user.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The inverse of [`encode_cursor`]; `None` for text it cannot have made.
pub fn decode_cursor(cursor: &str) -> Option<String> {
    if cursor.is_empty() || !cursor.len().is_multiple_of(2) || cursor.len() > MAX_CURSOR_BYTES {
        return None;
    }
    let bytes = (0..cursor.len())
        .step_by(2)
        .map(|i| {
            let pair = cursor.get(i..i + 2)?;
            if pair.bytes().any(|b| b.is_ascii_uppercase()) {
                return None;
            }
            u8::from_str_radix(pair, 16).ok()
        })
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_what_they_cannot_be() {
        for user in ["alice", "ada.l@example.com", "ü", "a b"] {
            assert_eq!(decode_cursor(&encode_cursor(user)).as_deref(), Some(user));
        }
        for bad in ["", "a", "zz", "6G", "4A", "ff"] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn events_have_the_documented_shape() {
        let channel = ChannelName::new("chat.lobby").expect("valid");
        let frame = event_frame(
            &channel,
            EventKind::Join,
            &event_data("al\"ice", Some("n.1")),
        );
        let value: serde_json::Value = serde_json::from_str(frame.as_str()).expect("JSON");
        assert_eq!(
            value,
            serde_json::json!({"channel":"chat.lobby","join":{"user":"al\"ice","conn":"n.1"}})
        );
        assert_eq!(EventKind::parse("leave"), Some(EventKind::Leave));
        assert_eq!(EventKind::parse("other"), None);
    }
}
