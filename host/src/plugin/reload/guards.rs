//! A reload never removes an access check. Every channel that a route plugin
//! guards in the running route table must still be guarded by one after the
//! reload; otherwise the reload is refused and a restart is the way to open
//! channels. This is what keeps a manifest cut off by a non-atomic write
//! after its `[plugins.*]` tables (so without its `[[routes]]`, or with a
//! last route whose `route = ...` line is missing) from opening every channel
//! (`docs/configuration.md`, "What a reload may change").
//!
//! Owns only the comparison of two route tables; what a pattern matches is
//! `protocol::pattern`'s.

use crate::config::RouteConfig;
use crate::protocol::ChannelPattern;

/// Why `new` would leave channels unguarded that `running` guards, or `None`
/// when every guarded pattern of `running` stays guarded.
///
/// A running pattern `P` of a route with a route plugin stays guarded when
/// the first new entry with a route plugin and a pattern covering `P` comes
/// after no new entry without one that shares a channel with `P`: then the
/// first match of each channel of `P` has a route plugin. The test is
/// sufficient, not necessary: a table that guards `P` only with several
/// patterns together (`P = chat.*` by `chat.a` plus `chat.*`) is guarded,
/// yet a layout like that is refused too, and is a restart away.
pub(super) fn unguarded(running: &[RouteConfig], new: &[RouteConfig]) -> Option<String> {
    for entry in running {
        let Some(plugin) = &entry.route else {
            continue;
        };
        for pattern in &entry.channels {
            if let Some(why) = left_open(pattern, new) {
                return Some(format!(
                    "channels `{pattern}` are checked by route plugin `{plugin}` now, and {why}"
                ));
            }
        }
    }
    None
}

fn left_open(pattern: &ChannelPattern, new: &[RouteConfig]) -> Option<String> {
    for entry in new {
        let guarded = entry.route.is_some();
        if guarded && entry.channels.iter().any(|p| pattern.covered_by(p)) {
            return None;
        }
        if !guarded && let Some(open) = entry.channels.iter().find(|p| pattern.overlaps(p)) {
            return Some(format!(
                "the new route table's `{open}` (no route plugin) would take some of them first"
            ));
        }
    }
    Some("no route with a route plugin covers them in the new route table".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(entries: &[(&str, Option<&str>)]) -> Vec<RouteConfig> {
        entries
            .iter()
            .map(|(channels, route)| RouteConfig {
                channels: channels
                    .split(',')
                    .map(|p| ChannelPattern::parse(p).expect("valid pattern"))
                    .collect(),
                route: route.map(str::to_owned),
                inbound: Vec::new(),
                outbound: Vec::new(),
                history: None,
                presence: false,
                join_leave: false,
            })
            .collect()
    }

    /// The chat example's table: `chat.*,shout.*` and then `>`, all `acl`.
    fn chat() -> Vec<RouteConfig> {
        table(&[("chat.*,shout.*", Some("acl")), (">", Some("acl"))])
    }

    #[test]
    fn a_cut_manifest_is_refused() {
        let running = chat();
        // Cut before `[[routes]]`: no table at all.
        assert!(unguarded(&running, &[]).is_some());
        // Cut after the first `channels = ...` line: one unguarded entry.
        let cut = table(&[("chat.*,shout.*", None)]);
        let why = unguarded(&running, &cut).expect("refused");
        assert!(why.contains("`chat.*`") && why.contains("acl"), "{why}");
    }

    #[test]
    fn keeping_or_adding_checks_is_allowed() {
        let running = chat();
        assert_eq!(unguarded(&running, &running), None);
        // Another route plugin, a new guarded entry, a catch-all after.
        let new = table(&[
            ("news", Some("feeds")),
            ("chat.*,shout.*", Some("acl2")),
            (">", Some("acl")),
        ]);
        assert_eq!(unguarded(&running, &new), None);
        // Opening channels that the running `>` route guarded is refused.
        let opened = table(&[("public.*", None), (">", Some("acl"))]);
        assert!(unguarded(&running, &opened).is_some());
        // A running table with open routes constrains nothing about them.
        let partly = table(&[("chat.*", Some("acl")), (">", None)]);
        assert_eq!(unguarded(&partly, &table(&[("chat.*", Some("acl"))])), None);
    }

    #[test]
    fn an_open_route_placed_first_is_refused_and_after_is_not() {
        let running = table(&[("chat.*", Some("acl"))]);
        let before = table(&[("chat.lobby", None), ("chat.*", Some("acl"))]);
        assert!(unguarded(&running, &before).is_some());
        let after = table(&[("chat.*", Some("acl")), (">", None)]);
        assert_eq!(unguarded(&running, &after), None);
        let disjoint = table(&[("news", None), ("chat.*", Some("acl"))]);
        assert_eq!(unguarded(&running, &disjoint), None);
    }
}
