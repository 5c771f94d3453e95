//! A subscribe to a channel with history: hold the new member in the hub,
//! read the store, and release it with the ack (its position, and with
//! `since` whether it recovered), the replay and the floor that keeps the
//! switch to live delivery free of gaps and duplicates (see `crate::hub`).
//!
//! Decides nothing itself: `crate::history::recovery` does. A store that
//! cannot be read undoes the subscribe and answers `unavailable`.

use std::sync::Arc;

use super::Session;
use super::requests::subscribe_result;
use crate::config::HistoryConfig;
use crate::history::{MAX_REPLAY, recovery};
use crate::protocol::{ChannelName, ErrorCode, ProtocolError, RequestId, Since};

impl Session {
    /// Completes the subscribe `id` to `requested`, which led to `target`
    /// alone, already recorded and joined on the broker.
    pub(super) async fn subscribe_kept(
        &mut self,
        id: RequestId,
        requested: ChannelName,
        target: ChannelName,
        since: Option<Since>,
        policy: HistoryConfig,
        routed: Option<Vec<ChannelName>>,
    ) {
        let gateway = Arc::clone(&self.gateway);
        // Held before the read: every push from now on waits in the hub, and
        // the read covers everything before.
        gateway.hub.hold(&target, self.subscriber());
        let after = since.as_ref().map(|s| s.offset);
        let read = gateway
            .broker
            .history(&target, &policy, after, MAX_REPLAY)
            .await;
        let read = match read {
            Ok(read) => read,
            Err(error) => {
                if since.is_some() {
                    let unrecovered = Err(recovery::Unrecovered::Unavailable);
                    gateway.metrics.history.recovery(unrecovered);
                }
                self.leave(&requested);
                let error = ProtocolError::new(
                    ErrorCode::Unavailable,
                    format!("the history of {target} cannot be read: {error}"),
                );
                return self.refuse(Some(&id), error);
            }
        };
        let plan = recovery::plan(since.as_ref(), read, self.outbox.max_bytes());
        if let Some(recovered) = plan.recovered {
            let replayed = plan.replay.len();
            gateway
                .metrics
                .history
                .recovery(recovered.map(|()| replayed));
        }
        let mut result = serde_json::Map::new();
        plan.insert_into(&mut result);
        let ack = subscribe_result(&id, result, routed.as_deref());
        gateway
            .hub
            .release(&target, &self.conn, ack, plan.replay, Some(plan.position));
    }
}
