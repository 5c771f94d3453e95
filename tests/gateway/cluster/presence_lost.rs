//! Presence writes whose answer is lost: instance A talks to the broker
//! through a relay that lets A's writes land but keeps their answers from
//! A (NATS: the JetStream acknowledgement dropped; Redis: every reply held
//! past `timeout_ms`, so the script ran and A timed out). A's write fails
//! with an unknown outcome and is retried at the next heartbeat; the join
//! and the leave it caused must still reach every instance's subscribers,
//! exactly once (before the fix the retry found the store already as
//! wanted and announced nothing).

use std::time::Duration;

use super::presence::{server, watchers};
use super::{BrokerServer, Instance, Kind, assert_silent};
use crate::presence::{expect_event, manifest_tail, user, wait_presence};
use crate::support::relay::Relay;
use crate::support::{Client, PATIENCE};

/// Longer than a heartbeat (5 s): a duplicate announced by the next retry
/// would arrive within it.
const QUIET: Duration = Duration::from_secs(6);

const FAILURES: &str = "ferrygate_presence_write_failures_total";

/// Cuts the answers (not the commands) between A and the broker.
fn cut(relay: &Relay, kind: Kind) {
    match kind {
        Kind::Nats => relay.drop_acks(true),
        Kind::Redis => relay.hold_replies(),
    }
}

fn mend(relay: &Relay, kind: Kind) {
    match kind {
        Kind::Nats => relay.drop_acks(false),
        Kind::Redis => relay.resume(),
    }
}

/// No second push: the first watcher waits a heartbeat and more, the
/// others' pushes would have arrived by then.
async fn quiet(watchers: &mut [Client]) {
    for (i, watcher) in watchers.iter_mut().enumerate() {
        let wait = if i == 0 {
            QUIET
        } else {
            Duration::from_millis(100)
        };
        assert_silent(watcher, wait).await;
    }
}

async fn a_lost_answer_still_announces_one_join_and_one_leave(kind: Kind) {
    let server: BrokerServer = server(kind);
    let relay = Relay::start(server.port, Duration::ZERO).await;
    let tail = manifest_tail();
    let a = Instance::start_with(&format!(
        "kind = \"{}\"\nurls = [\"{}://127.0.0.1:{}\"]\ntimeout_ms = 500\n{tail}",
        server.kind.name(),
        server.scheme,
        relay.port
    ));
    let b = Instance::start(&server, &tail);
    let gateways = [a, b];
    let mut watchers = watchers(&gateways, "room.lost").await;
    let [a, b] = &gateways;

    // The join: A's write lands (B, on the broker directly, lists alice),
    // A never hears back.
    let failed = a.metric(FAILURES).await;
    cut(&relay, kind);
    let mut alice = user(a.addr, "alice").await;
    alice.subscribe("room.lost").await;
    let want = [("alice", 1), ("watcher0", 1), ("watcher1", 1)];
    wait_presence(b.addr, "room.lost", &want, 3, PATIENCE).await;
    a.wait_metric(FAILURES, failed + 1.0).await;
    mend(&relay, kind);
    for watcher in &mut watchers {
        expect_event(watcher, "room.lost", "join", "alice").await;
    }
    quiet(&mut watchers).await;

    // The leave, the same way.
    let failed = a.metric(FAILURES).await;
    cut(&relay, kind);
    drop(alice);
    let want = [("watcher0", 1), ("watcher1", 1)];
    wait_presence(b.addr, "room.lost", &want, 2, PATIENCE).await;
    a.wait_metric(FAILURES, failed + 1.0).await;
    mend(&relay, kind);
    for watcher in &mut watchers {
        expect_event(watcher, "room.lost", "leave", "alice").await;
    }
    quiet(&mut watchers).await;
    for gateway in &gateways {
        wait_presence(gateway.addr, "room.lost", &want, 2, PATIENCE).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_a_lost_answer_still_announces_one_join_and_one_leave() {
    a_lost_answer_still_announces_one_join_and_one_leave(Kind::Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_a_lost_answer_still_announces_one_join_and_one_leave() {
    a_lost_answer_still_announces_one_join_and_one_leave(Kind::Redis).await;
}
