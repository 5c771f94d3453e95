//! The one JetStream stream that keeps every history channel of a prefix:
//! its name, subjects and limits, created when absent and widened when a
//! route asks for more than it keeps.
//!
//! Layout (`<prefix>` is `[broker] prefix`): stream `<prefix>_history` (dots
//! become `_`), subjects `<prefix>.hist.>`, file storage, discard old,
//! `max_msgs_per_subject` = the largest route `size` seen + 1 (room for the
//! position marker, see `super`), `max_age` = the largest `ttl_s` seen, and
//! RePublish `<prefix>.hist.>` → `<prefix>.ch.>`: the server itself sends
//! each message it stored, in stream order, to the channel's live subject;
//! `allow_direct` on, for the replay's direct gets (`super::replay`).
//! The gateway only ever raises those two limits, adds its subject (keeping
//! any an operator added) and sets RePublish and `allow_direct` (never
//! turns it off); replicas, placement
//! and storage are the operator's to change (`nats stream edit`). Owns no
//! message and no cache of positions.

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use tokio::sync::Mutex;

use crate::broker::BrokerError;
use crate::config::HistoryConfig;

/// The stream of one prefix and the limits known to be in place.
#[derive(Debug)]
pub struct HistoryStream {
    js: jetstream::Context,
    name: String,
    prefix: String,
    /// (per-subject messages, age) the stream had when last checked.
    known: Mutex<Option<(i64, Duration)>>,
}

impl HistoryStream {
    /// The stream for `prefix`, reached through `js`; nothing is asked of the
    /// server until [`ensure`](Self::ensure).
    pub fn new(js: jetstream::Context, prefix: &str) -> Self {
        Self {
            js,
            name: stream_name(prefix),
            prefix: prefix.to_owned(),
            known: Mutex::new(None),
        }
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The subject `channel`'s messages are stored under.
    pub fn subject(&self, channel: &str) -> String {
        format!("{}.hist.{channel}", self.prefix)
    }

    /// The JetStream context.
    pub fn js(&self) -> &jetstream::Context {
        &self.js
    }

    /// Makes sure the stream exists and keeps at least `policy` (`size` + 1
    /// messages per subject, `ttl_s`); one server round trip the first time
    /// and when a larger policy shows up, none otherwise.
    pub async fn ensure(&self, policy: &HistoryConfig) -> Result<(), BrokerError> {
        let per_subject = i64::from(policy.size) + 1;
        let mut known = self.known.lock().await;
        if let Some((msgs, age)) = *known
            && covers(msgs, age, per_subject, policy.ttl())
        {
            return Ok(());
        }
        let wanted = self.config(per_subject, policy.ttl());
        let found = self
            .js
            .get_or_create_stream(wanted.clone())
            .await
            .map_err(|e| unavailable(&self.name, &e))?;
        let mut config = found.cached_info().config.clone();
        let mut changed = false;
        if !covers(
            config.max_messages_per_subject,
            config.max_age,
            per_subject,
            policy.ttl(),
        ) {
            if config.max_messages_per_subject > 0 {
                config.max_messages_per_subject = config.max_messages_per_subject.max(per_subject);
            }
            if !config.max_age.is_zero() {
                config.max_age = config.max_age.max(policy.ttl());
            }
            changed = true;
        }
        if !config.subjects.contains(&wanted.subjects[0])
            || config.republish != wanted.republish
            || !config.allow_direct
        {
            // Ours is added; subjects an operator put on the stream stay.
            if let Some(ours) = wanted.subjects.into_iter().next()
                && !config.subjects.contains(&ours)
            {
                config.subjects.push(ours);
            }
            config.republish = wanted.republish;
            config.allow_direct = true;
            changed = true;
        }
        if changed {
            let info = self
                .js
                .update_stream(config)
                .await
                .map_err(|e| unavailable(&self.name, &e))?;
            config = info.config;
            tracing::info!(
                stream = %self.name,
                max_msgs_per_subject = config.max_messages_per_subject,
                max_age_s = config.max_age.as_secs(),
                "history stream limits raised"
            );
        }
        *known = Some((config.max_messages_per_subject, config.max_age));
        Ok(())
    }

    /// Forgets the limits seen: the stream was deleted or could not be
    /// written, so the next [`ensure`](Self::ensure) asks the server again.
    pub async fn forget(&self) {
        *self.known.lock().await = None;
    }

    fn config(&self, per_subject: i64, age: Duration) -> stream::Config {
        let subjects = format!("{}.hist.>", self.prefix);
        stream::Config {
            name: self.name.clone(),
            description: Some("ferrygate channel history (docs/brokers.md)".to_owned()),
            subjects: vec![subjects.clone()],
            max_messages_per_subject: per_subject,
            max_age: age,
            storage: stream::StorageType::File,
            discard: stream::DiscardPolicy::Old,
            allow_direct: true,
            republish: Some(stream::Republish {
                source: subjects,
                destination: format!("{}.ch.>", self.prefix),
                headers_only: false,
            }),
            ..Default::default()
        }
    }
}

/// `<prefix>_history` with the prefix's dots as `_` (stream names take no dots).
pub fn stream_name(prefix: &str) -> String {
    format!("{}_history", prefix.replace('.', "_"))
}

/// Whether limits (`msgs` per subject, `age`; 0 or less: unlimited) keep at
/// least `per_subject` messages for `ttl`.
fn covers(msgs: i64, age: Duration, per_subject: i64, ttl: Duration) -> bool {
    (msgs <= 0 || msgs >= per_subject) && (age.is_zero() || age >= ttl)
}

fn unavailable(stream: &str, error: &dyn std::fmt::Display) -> BrokerError {
    BrokerError::Unavailable(format!("JetStream stream {stream}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_limits() {
        assert_eq!(stream_name("ferrygate"), "ferrygate_history");
        assert_eq!(stream_name("acme.prod"), "acme_prod_history");
        let minute = Duration::from_secs(60);
        assert!(covers(11, minute, 11, minute));
        assert!(covers(-1, Duration::ZERO, 1000, minute));
        assert!(!covers(10, minute, 11, minute));
        assert!(!covers(11, minute, 11, minute * 2));
    }
}
