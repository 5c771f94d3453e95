//! Presence across three `ferrygate` processes on NATS (JetStream key-value)
//! and on Redis: a user with tabs on several instances is listed once with
//! all of them from every instance; a second tab joins nobody, the last tab's
//! close is one leave seen on every instance; a SIGKILLed instance's users
//! are gone within 30 s, with their leaves; a SIGTERM drain removes them at
//! once; paging through 5,000 members returns each exactly once; the op is
//! refused to a connection that may not subscribe.

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use super::{BrokerServer, Instance, Kind, assert_silent};
use crate::presence::{all_pages, crowd, expect_event, manifest_tail, user, wait_presence};
use crate::support::{Client, PATIENCE};

/// What the contract allows for a dead instance's entries to go.
const DEAD_PATIENCE: Duration = Duration::from_secs(30);

pub(super) fn server(kind: Kind) -> BrokerServer {
    match kind {
        Kind::Nats => BrokerServer::start_jetstream(),
        Kind::Redis => BrokerServer::start(kind),
    }
}

fn three(server: &BrokerServer) -> Vec<Instance> {
    let tail = manifest_tail();
    (0..3).map(|_| Instance::start(server, &tail)).collect()
}

/// A watcher on each instance, subscribed to `channel`, with every join of
/// the watchers read: each sees its own join, then those of the later ones.
pub(super) async fn watchers(gateways: &[Instance], channel: &str) -> Vec<Client> {
    let mut watchers: Vec<Client> = Vec::new();
    for (i, gateway) in gateways.iter().enumerate() {
        let name = format!("watcher{i}");
        let mut watcher = user(gateway.addr, &name).await;
        watcher.subscribe(channel).await;
        expect_event(&mut watcher, channel, "join", &name).await;
        for earlier in &mut watchers {
            expect_event(earlier, channel, "join", &name).await;
        }
        watchers.push(watcher);
    }
    watchers
}

/// The users of the next `n` pushes of `kind` (join or leave).
async fn events(client: &mut Client, kind: &str, n: usize) -> HashSet<String> {
    let mut users = HashSet::new();
    for _ in 0..n {
        let frame = client.recv().await;
        let user = frame[kind]["user"].as_str();
        users.insert(
            user.unwrap_or_else(|| panic!("a {kind}, got {frame}"))
                .to_owned(),
        );
    }
    users
}

fn names(names: &[&str]) -> HashSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

async fn tabs_on_several_instances_count_once_and_join_and_leave_once(kind: Kind) {
    let server = server(kind);
    let gateways = three(&server);
    let mut watchers = watchers(&gateways, "room.1").await;

    let mut first = user(gateways[0].addr, "alice").await;
    first.subscribe("room.1").await;
    for watcher in &mut watchers {
        expect_event(watcher, "room.1", "join", "alice").await;
    }
    let mut more = Vec::new();
    for gateway in [&gateways[1], &gateways[1], &gateways[2]] {
        let mut tab = user(gateway.addr, "alice").await;
        tab.subscribe("room.1").await;
        more.push(tab);
    }
    let mut bob = user(gateways[2].addr, "bob").await;
    bob.subscribe("room.1").await;
    let want = [
        ("alice", 4),
        ("bob", 1),
        ("watcher0", 1),
        ("watcher1", 1),
        ("watcher2", 1),
    ];
    for gateway in &gateways {
        wait_presence(gateway.addr, "room.1", &want, 8, PATIENCE).await;
    }
    for watcher in &mut watchers {
        expect_event(watcher, "room.1", "join", "bob").await;
        assert_silent(watcher, Duration::from_millis(300)).await;
    }
    // The op, from a connection allowed to subscribe, and refused to bob
    // for alice's private channel.
    let reply = bob
        .request(json!({"op": "presence", "channel": "room.1", "limit": 2}))
        .await;
    let result = &reply["result"];
    assert_eq!(result["connections"], 8, "{reply}");
    assert_eq!(
        result["users"],
        json!([{"user":"alice","connections":4},{"user":"bob","connections":1}])
    );
    assert!(result["next_cursor"].is_string(), "{reply}");
    let reply = bob
        .request(json!({"op": "presence", "channel": "user.alice"}))
        .await;
    assert_eq!(reply["error"]["code"], "forbidden", "{reply}");

    drop(first);
    drop(more.pop());
    drop(more.pop());
    for gateway in &gateways {
        wait_presence(
            gateway.addr,
            "room.1",
            &[
                ("alice", 1),
                ("bob", 1),
                ("watcher0", 1),
                ("watcher1", 1),
                ("watcher2", 1),
            ],
            5,
            PATIENCE,
        )
        .await;
    }
    for watcher in &mut watchers {
        assert_silent(watcher, Duration::from_millis(200)).await;
    }
    drop(more);
    for watcher in &mut watchers {
        expect_event(watcher, "room.1", "leave", "alice").await;
        assert_silent(watcher, Duration::from_millis(300)).await;
    }
    let want = [
        ("bob", 1),
        ("watcher0", 1),
        ("watcher1", 1),
        ("watcher2", 1),
    ];
    for gateway in &gateways {
        wait_presence(gateway.addr, "room.1", &want, 4, PATIENCE).await;
    }
    if kind == Kind::Nats {
        // "alice" in the bucket's key encoding (lowercase hex).
        nats_bucket_forgets(&server, "616c696365").await;
    }
}

/// The NATS bucket keeps no key of a user who left: the delete marker is
/// purged (`broker/nats/presence/cleanup.rs`), so the bucket and the
/// listing a page reads do not grow with every user ever seen.
async fn nats_bucket_forgets(server: &BrokerServer, user_hex: &str) {
    use futures_util::TryStreamExt;
    let nats = async_nats::connect(server.url()).await.expect("nats");
    let js = async_nats::jetstream::new(nats);
    let names: Vec<String> = js.stream_names().try_collect().await.expect("stream names");
    let name = names
        .into_iter()
        .find(|n| n.starts_with("KV_") && n.ends_with("_presence"))
        .expect("the presence bucket's stream");
    let stream = js.get_stream(&name).await.expect("the stream");
    let filter = format!("$KV.{}.>", name.trim_start_matches("KV_"));
    let suffix = format!(".{user_hex}");
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let subjects: Vec<(String, usize)> = stream
            .info_with_subjects(filter.clone())
            .await
            .expect("subjects")
            .try_collect()
            .await
            .expect("subjects");
        let users = subjects.iter().filter(|(s, _)| s.contains(".u.")).count();
        let left: Vec<&String> = subjects
            .iter()
            .map(|(s, _)| s)
            .filter(|s| s.ends_with(&suffix))
            .collect();
        if left.is_empty() {
            assert!(users > 0, "the users still in are listed: {subjects:?}");
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "keys of a departed user stay in the bucket: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn a_killed_instance_leaves_within_30_s_and_a_drained_one_at_once(kind: Kind) {
    let server = server(kind);
    let mut gateways = three(&server);
    let mut watchers = watchers(&gateways[..1], "room.k").await;
    let watcher = &mut watchers[0];
    // alice on B and C, bob on C only, carol on B only.
    let mut clients = Vec::new();
    for (gateway, name) in [
        (2, "alice"),
        (1, "alice"),
        (2, "bob"),
        (2, "bob"),
        (1, "carol"),
    ] {
        let mut client = user(gateways[gateway].addr, name).await;
        client.subscribe("room.k").await;
        clients.push(client);
    }
    assert_eq!(
        events(watcher, "join", 3).await,
        names(&["alice", "bob", "carol"])
    );
    let want = [("alice", 2), ("bob", 2), ("carol", 1), ("watcher0", 1)];
    wait_presence(gateways[0].addr, "room.k", &want, 6, PATIENCE).await;

    let killed = gateways.pop().expect("C");
    drop(killed); // SIGKILL: no goodbye.
    let want = [("alice", 1), ("carol", 1), ("watcher0", 1)];
    for gateway in &gateways {
        wait_presence(gateway.addr, "room.k", &want, 3, DEAD_PATIENCE).await;
    }
    expect_event(watcher, "room.k", "leave", "bob").await;
    assert_silent(watcher, Duration::from_millis(300)).await;

    // SIGTERM on B: its users leave at once (well before any expiry).
    let drained = gateways.pop().expect("B");
    let status = Command::new("kill")
        .args(["-TERM", &drained.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let want = [("watcher0", 1)];
    wait_presence(gateways[0].addr, "room.k", &want, 1, Duration::from_secs(4)).await;
    assert_eq!(
        events(watcher, "leave", 2).await,
        names(&["alice", "carol"])
    );
    drop(clients);
}

async fn paging_through_5000_members_returns_each_once(kind: Kind) {
    let server = server(kind);
    let gateways = three(&server);
    let addrs: Vec<_> = gateways.iter().map(|g| g.addr).collect();
    let clients = crowd(&addrs, "crowd.big", 5_000).await;
    let seen = all_pages(&addrs, "crowd.big", 700).await;
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!((seen.len(), unique.len()), (5_000, 5_000));
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "pages come in id order");
    // A write that timed out under this load is retried at the next
    // heartbeat: the total converges within one.
    for gateway in &gateways {
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let (_, page) = crate::presence::presence(gateway.addr, "crowd.big?limit=1").await;
            if page["connections"] == 5_000 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{page}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    drop(clients);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_tabs_on_several_instances_count_once_and_join_and_leave_once() {
    tabs_on_several_instances_count_once_and_join_and_leave_once(Kind::Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_tabs_on_several_instances_count_once_and_join_and_leave_once() {
    tabs_on_several_instances_count_once_and_join_and_leave_once(Kind::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_a_killed_instance_leaves_within_30_s_and_a_drained_one_at_once() {
    a_killed_instance_leaves_within_30_s_and_a_drained_one_at_once(Kind::Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_a_killed_instance_leaves_within_30_s_and_a_drained_one_at_once() {
    a_killed_instance_leaves_within_30_s_and_a_drained_one_at_once(Kind::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_paging_through_5000_members_returns_each_once() {
    paging_through_5000_members_returns_each_once(Kind::Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_paging_through_5000_members_returns_each_once() {
    paging_through_5000_members_returns_each_once(Kind::Redis).await;
}
