//! Presence on one in-process gateway (the `memory` broker): users counted
//! once with their connections, anonymous connections in the total only,
//! one join per user's first tab and one leave per last tab, the op refused
//! to a connection the route plugin would not let subscribe, paging, and the
//! errors of `GET /v1/presence`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::cluster::assert_silent;
use crate::plugin_auth::{SECRET, claims, hs256};
use crate::support::plugins::section;
use crate::support::{API_KEY, Client, PATIENCE, TestGateway, http};

/// Plugins and routes shared with the cluster tests: `room.*` with presence
/// and join/leave, `user.*` (its owner only) and `crowd.*` with presence,
/// the rest without.
pub fn manifest_tail() -> String {
    let auth = section(
        "auth",
        "auth",
        "jwt_auth",
        // Thousands of connects on a busy debug build: room for slow calls.
        &format!(
            "limits = {{ memory_mib = 16, time_ms = 2000 }}\nconfig = {{ hs256_secret = \"{SECRET}\", issuer = \"ferrygate-tests\", audience = \"chat\" }}"
        ),
    );
    let acl = section(
        "acl",
        "route",
        "channel_acl",
        "limits = { memory_mib = 16, time_ms = 2000 }\nconfig = { public = [\"room.*\", \"crowd.*\", \"plain.*\"] }",
    );
    let routes = "\n[[routes]]\nchannels = \"room.*\"\nroute = \"acl\"\npresence = true\njoin_leave = true\n\n\
                  [[routes]]\nchannels = [\"user.*\", \"crowd.*\"]\nroute = \"acl\"\npresence = true\n\n\
                  [[routes]]\nchannels = \">\"\nroute = \"acl\"\n";
    format!("{auth}{acl}{routes}")
}

/// A connection of `name` to the gateway at `addr`.
pub async fn user(addr: SocketAddr, name: &str) -> Client {
    let token = hs256(&claims(name), SECRET);
    let client = Client::connect(&format!("ws://{addr}/ws?token={token}")).await;
    assert_eq!(client.welcome["user"], name);
    client
}

/// `GET /v1/presence/{rest}` with the API key: status and JSON body.
pub async fn presence(addr: SocketAddr, rest: &str) -> (u16, Value) {
    let auth = format!("Bearer {API_KEY}");
    let path = format!("/v1/presence/{rest}");
    let (status, body) = http(addr, "GET", &path, &[("Authorization", &auth)], "").await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// Users and their counts in one page, sorted, and the total.
pub fn summary(page: &Value) -> (Vec<(String, u64)>, u64) {
    let users = page["users"]
        .as_array()
        .map(|users| {
            users
                .iter()
                .map(|u| {
                    let name = u["user"].as_str().unwrap_or_default().to_owned();
                    (name, u["connections"].as_u64().unwrap_or(0))
                })
                .collect()
        })
        .unwrap_or_default();
    (users, page["connections"].as_u64().unwrap_or(0))
}

/// Polls `GET /v1/presence/{channel}` on `addr` until it shows `users` and
/// `connections`, for at most `patience`.
pub async fn wait_presence(
    addr: SocketAddr,
    channel: &str,
    users: &[(&str, u64)],
    connections: u64,
    patience: Duration,
) {
    let want: Vec<(String, u64)> = users.iter().map(|(u, n)| ((*u).to_owned(), *n)).collect();
    let deadline = Instant::now() + patience;
    loop {
        let (status, page) = presence(addr, channel).await;
        assert_eq!(status, 200, "{page}");
        if summary(&page) == (want.clone(), connections) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "presence of {channel} on {addr} stuck at {page}, want {want:?} and {connections} connections"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Pages through `channel` on the gateways at `addrs` (one after another)
/// with `limit`; every user seen, in order.
pub async fn all_pages(addrs: &[SocketAddr], channel: &str, limit: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for turn in 0.. {
        let query = match &cursor {
            None => format!("{channel}?limit={limit}"),
            Some(cursor) => format!("{channel}?limit={limit}&cursor={cursor}"),
        };
        let (status, page) = presence(addrs[turn % addrs.len()], &query).await;
        assert_eq!(status, 200, "{page}");
        let users = page["users"].as_array().expect("users");
        assert!(users.len() <= limit, "a page over its limit");
        seen.extend(
            users
                .iter()
                .map(|u| u["user"].as_str().expect("user").to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return seen,
        }
    }
    unreachable!("the loop returns")
}

/// `n` users named `m00000`.. each subscribed to `channel`, spread over
/// `addrs` in turn, connecting 10 at a time.
pub async fn crowd(addrs: &[SocketAddr], channel: &str, n: usize) -> Vec<Client> {
    futures_util::stream::iter(0..n)
        .map(|i| async move {
            let mut client = user(addrs[i % addrs.len()], &format!("m{i:05}")).await;
            client.subscribe(channel).await;
            client
        })
        .buffer_unordered(10)
        .collect()
        .await
}

/// Reads until `user`'s `kind` (join or leave) push on `channel` arrives.
pub async fn expect_event(client: &mut Client, channel: &str, kind: &str, user: &str) {
    let frame = client.recv().await;
    assert_eq!(frame["channel"], channel, "{frame}");
    assert_eq!(frame[kind]["user"], user, "{frame}");
}

#[tokio::test]
async fn users_count_once_with_their_tabs_and_join_and_leave_once() {
    let gateway = TestGateway::start(&manifest_tail()).await;
    let mut watcher = user(gateway.addr, "watcher").await;
    watcher.subscribe("room.1").await;
    expect_event(&mut watcher, "room.1", "join", "watcher").await;

    let mut tabs = Vec::new();
    for _ in 0..3 {
        let mut tab = user(gateway.addr, "alice").await;
        tab.subscribe("room.1").await;
        tabs.push(tab);
    }
    let first = watcher.recv().await;
    assert_eq!(first["join"]["user"], "alice", "{first}");
    assert_eq!(first["join"]["conn"], tabs[0].welcome["conn"], "{first}");
    assert_silent(&mut watcher, Duration::from_millis(300)).await;
    wait_presence(
        gateway.addr,
        "room.1",
        &[("alice", 3), ("watcher", 1)],
        4,
        PATIENCE,
    )
    .await;

    let last = tabs.pop().expect("a tab");
    drop(tabs);
    assert_silent(&mut watcher, Duration::from_millis(300)).await;
    wait_presence(
        gateway.addr,
        "room.1",
        &[("alice", 1), ("watcher", 1)],
        2,
        PATIENCE,
    )
    .await;
    drop(last);
    expect_event(&mut watcher, "room.1", "leave", "alice").await;
    wait_presence(gateway.addr, "room.1", &[("watcher", 1)], 1, PATIENCE).await;
    assert!(
        gateway
            .metric("ferrygate_presence_events_total{kind=\"join\"}")
            .await
            >= 2.0
    );
    assert_eq!(
        gateway
            .metric("ferrygate_presence_events_total{kind=\"leave\"}")
            .await,
        1.0
    );
    assert_eq!(gateway.metric("ferrygate_presence_entries").await, 1.0);
    gateway.stop().await;
}

#[tokio::test]
async fn the_op_answers_whoever_may_subscribe_and_refuses_the_others() {
    let gateway = TestGateway::start(&manifest_tail()).await;
    let mut alice = user(gateway.addr, "alice").await;
    alice.subscribe("user.alice").await;
    let mut bob = user(gateway.addr, "bob").await;

    let reply = alice
        .request(json!({"op": "presence", "channel": "user.alice"}))
        .await;
    assert_eq!(
        reply["result"],
        json!({"channel": "user.alice", "connections": 1, "users": [{"user": "alice", "connections": 1}]}),
        "{reply}"
    );
    let reply = bob
        .request(json!({"op": "presence", "channel": "user.alice"}))
        .await;
    assert_eq!(reply["error"]["code"], "forbidden", "{reply}");
    let reply = bob
        .request(json!({"op": "presence", "channel": "plain.x"}))
        .await;
    assert_eq!(reply["error"]["code"], "not_found", "{reply}");
    for bad in [
        json!({"limit": 0}),
        json!({"limit": "5"}),
        json!({"cursor": "zz"}),
    ] {
        let mut request = json!({"op": "presence", "channel": "room.1"});
        request
            .as_object_mut()
            .expect("object")
            .extend(bad.as_object().expect("object").clone());
        let reply = bob.request(request).await;
        assert_eq!(reply["error"]["code"], "bad_request", "{bad}: {reply}");
    }
    assert_eq!(
        gateway
            .metric("ferrygate_presence_queries_total{source=\"ws\"}")
            .await,
        1.0
    );
    gateway.stop().await;
}

#[tokio::test]
async fn the_http_endpoint_needs_the_key_and_says_what_is_wrong() {
    let gateway = TestGateway::start(&manifest_tail()).await;
    let (status, body) = http(gateway.addr, "GET", "/v1/presence/room.1", &[], "").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        presence(gateway.addr, "room.1").await,
        (
            200,
            json!({"channel": "room.1", "connections": 0, "users": []})
        )
    );
    let (status, body) = presence(gateway.addr, "plain.x").await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &json!("not_found")),
        "{body}"
    );
    for query in [
        "room.1?limit=0",
        "room.1?limit=10001",
        "room.1?limit=x",
        "room.1?cursor=abc",
        "room.1?other=1",
        "room.1?limit=2&limit=3",
        "room.1?limit=2&cursor=&cursor=",
        "bad*name",
    ] {
        let (status, body) = presence(gateway.addr, query).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (400, &json!("bad_request")),
            "{query}: {body}"
        );
    }
    let (_, body) = presence(gateway.addr, "room.1?limit=2&limit=3").await;
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("`limit` given more than once"), "{body}");
    gateway.stop().await;
}

#[tokio::test]
async fn anonymous_connections_count_in_the_total_only() {
    let gateway = TestGateway::start(
        "\n[[routes]]\nchannels = \"room.*\"\npresence = true\njoin_leave = true\n",
    )
    .await;
    let mut a = gateway.client().await;
    a.subscribe("room.1").await;
    let mut b = gateway.client().await;
    b.subscribe("room.1").await;
    wait_presence(gateway.addr, "room.1", &[], 2, PATIENCE).await;
    assert_silent(&mut a, Duration::from_millis(200)).await;
    gateway.stop().await;
}

/// 1,000 members here (5,000 in the cluster tests, `cluster::presence`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_through_1000_members_returns_each_once() {
    let gateway = TestGateway::start(&manifest_tail()).await;
    let clients = crowd(&[gateway.addr], "crowd.big", 1_000).await;
    let seen = all_pages(&[gateway.addr], "crowd.big", 150).await;
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!((seen.len(), unique.len()), (1_000, 1_000));
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "pages come in id order");
    let (_, page) = presence(gateway.addr, "crowd.big?limit=1").await;
    assert_eq!(page["connections"], 1_000);
    drop(clients);
    gateway.stop().await;
}
