//! A client's rpc on NATS and on Redis: the shipped `channel-acl` route
//! plugin decides it (allow, deny, rewrite to another method), the backend
//! learns the signed-in user, connection and instance, a failed plugin call
//! goes as `on_error` says, and one connection's rpcs in flight are bounded.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cluster::backend::Backend;
use crate::cluster::{BrokerServer, Kind};
use crate::plugin_auth::{SECRET, claims, hs256};
use crate::support::plugins::section;
use crate::support::{Client, TestGateway};

const RPC_TIMEOUT_MS: u64 = 1500;

/// An in-process gateway on `server` with `jwt-auth`, `channel-acl` on every
/// channel and method, and at most two rpcs in flight per connection.
async fn gateway(server: &BrokerServer) -> TestGateway {
    let auth = crate::plugin_auth::jwt_auth_section();
    let acl = section(
        "acl",
        "route",
        "channel_acl",
        r#"config = { publish = [{ channels = "admin.>", claim = "role", equals = "admin" }, { channels = "orders.>", allow = "signed-in" }, { channels = "legacy.*", allow = "signed-in" }], rewrite = [{ channels = "legacy.*", to = "orders.{1}" }] }"#,
    );
    let kind = match server.kind {
        Kind::Nats => "nats",
        Kind::Redis => "redis",
    };
    TestGateway::start(&format!(
        "max_inflight_rpc_per_connection = 2\n\n[broker]\nkind = \"{kind}\"\nurls = [\"{}\"]\nrpc_timeout_ms = {RPC_TIMEOUT_MS}\n{auth}{acl}\n[[routes]]\nchannels = \">\"\nroute = \"acl\"\n",
        server.url()
    ))
    .await
}

async fn user(gateway: &TestGateway, claims: &Value) -> Client {
    let url = format!("{}?token={}", gateway.ws_url(), hs256(claims, SECRET));
    Client::connect(&url).await
}

async fn rpc(client: &mut Client, method: &str, data: Value) -> Value {
    client
        .request(json!({"op": "rpc", "method": method, "data": data}))
        .await
}

/// The ACL allows `orders.*` to signed-in users and `admin.*` to admins
/// only, and rewrites `legacy.X` to `orders.X`; the backend sees the caller.
async fn route_plugin_decides_and_backend_sees_the_caller(kind: Kind) {
    let server = BrokerServer::start(kind);
    let responder = Backend::respond(&server, "orders.get").await;
    let admin_responder = Backend::respond(&server, "admin.purge").await;
    let gateway = gateway(&server).await;
    let mut alice = user(&gateway, &claims("alice")).await;

    let reply = rpc(&mut alice, "orders.get", json!({"id": 7})).await;
    let caller = json!({"user": "alice", "conn": alice.conn, "node": alice.welcome["node"]});
    assert_eq!(
        reply["result"],
        json!({"echo": {"id": 7}, "caller": caller}),
        "{reply}"
    );

    // Denied before anything reaches the broker: a responder is there.
    let reply = rpc(&mut alice, "admin.purge", json!(null)).await;
    assert_eq!(reply["error"]["code"], "forbidden", "{reply}");
    let mut boss_claims = claims("boss");
    boss_claims["role"] = json!("admin");
    let mut boss = user(&gateway, &boss_claims).await;
    let reply = rpc(&mut boss, "admin.purge", json!(null)).await;
    assert_eq!(reply["result"]["caller"]["user"], "boss", "{reply}");

    // The plugin's rewrite names the method called instead.
    let reply = rpc(&mut alice, "legacy.get", json!(1)).await;
    assert_eq!(reply["result"]["echo"], 1, "{reply}");
    assert_eq!(reply["result"]["caller"]["user"], "alice", "{reply}");

    // No route plugin allows an unknown namespace.
    let reply = rpc(&mut alice, "billing.refund", json!(1)).await;
    assert_eq!(reply["error"]["code"], "forbidden", "{reply}");
    assert_eq!(
        gateway
            .metric("ferrygate_request_errors_total{code=\"forbidden\"}")
            .await,
        2.0
    );
    responder.abort();
    admin_responder.abort();
    gateway.stop().await;
}

/// With two rpcs awaiting a silent service, a third is refused at once
/// (`rate_limited`), the connection stays, and the slots free again when the
/// two time out.
async fn rpcs_in_flight_are_bounded_per_connection(kind: Kind) {
    let server = BrokerServer::start(kind);
    let responder = Backend::respond(&server, "orders.get").await;
    let silent = Backend::silent(&server, "orders.slow").await;
    let gateway = gateway(&server).await;
    let mut alice = user(&gateway, &claims("alice")).await;
    let mut other = user(&gateway, &claims("alice")).await;

    let started = Instant::now();
    for id in ["slow-1", "slow-2", "third"] {
        let request = json!({"op": "rpc", "id": id, "method": "orders.slow", "data": 1});
        alice.send_text(request.to_string()).await;
    }
    let refused = alice.recv().await;
    assert_eq!(refused["id"], "third", "{refused}");
    assert_eq!(refused["error"]["code"], "rate_limited", "{refused}");
    assert!(
        started.elapsed() < Duration::from_millis(RPC_TIMEOUT_MS / 2),
        "refused only after {:?}",
        started.elapsed()
    );
    // The bound is per connection: the same user elsewhere is not held up.
    let reply = rpc(&mut other, "orders.get", json!(2)).await;
    assert_eq!(reply["result"]["echo"], 2, "{reply}");
    // Requests other than rpc still go through on the full connection.
    let reply = alice.request(json!({"op": "ping"})).await;
    assert_eq!(reply["ok"], true, "{reply}");

    let mut timed_out = Vec::new();
    for _ in 0..2 {
        let reply = alice.recv().await;
        assert_eq!(reply["error"]["code"], "timeout", "{reply}");
        timed_out.push(reply["id"].as_str().expect("id").to_owned());
    }
    timed_out.sort();
    assert_eq!(timed_out, ["slow-1", "slow-2"]);
    let reply = rpc(&mut alice, "orders.get", json!(3)).await;
    assert_eq!(reply["result"]["echo"], 3, "slots freed: {reply}");
    assert_eq!(
        gateway
            .metric("ferrygate_request_errors_total{code=\"rate_limited\"}")
            .await,
        1.0
    );
    responder.abort();
    drop(silent);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_rpc_route_plugin_decides_and_backend_sees_the_caller() {
    route_plugin_decides_and_backend_sees_the_caller(Kind::Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_rpc_route_plugin_decides_and_backend_sees_the_caller() {
    route_plugin_decides_and_backend_sees_the_caller(Kind::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_rpcs_in_flight_are_bounded_per_connection() {
    rpcs_in_flight_are_bounded_per_connection(Kind::Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_rpcs_in_flight_are_bounded_per_connection() {
    rpcs_in_flight_are_bounded_per_connection(Kind::Redis).await;
}

/// A route plugin's answer that an rpc cannot take (a fan-out) fails the
/// call: `plugin_error` (route plugins are always `on_error = "deny"`; the
/// manifest refuses `"allow"` for them).
#[tokio::test]
async fn a_failed_route_call_on_an_rpc_follows_on_error() {
    for (on_error, code) in [("deny", "plugin_error")] {
        let acl = section(
            "acl",
            "route",
            "channel_acl",
            &format!(
                "on_error = \"{on_error}\"\nconfig = {{ publish = [{{ channels = \"multi.*\", allow = \"anyone\" }}], fan_out = [{{ channels = \"multi.*\", to = [\"a.{{1}}\", \"b.{{1}}\"] }}] }}"
            ),
        );
        let gateway = TestGateway::start(&format!(
            "{acl}\n[[routes]]\nchannels = \"multi.*\"\nroute = \"acl\"\n"
        ))
        .await;
        let mut client = gateway.client().await;
        let reply = rpc(&mut client, "multi.x", json!(1)).await;
        assert_eq!(
            reply["error"]["code"], code,
            "on_error = {on_error}: {reply}"
        );
        gateway.stop().await;
    }
}
