//! Hostile plugins (an endless loop, a memory bomb, a panic, a huge output)
//! fail only the call they are in: the client gets `plugin_error` (or, with
//! `on_error = "allow"`, its message goes through unchanged), the failure is
//! counted by cause, and every other client keeps being served.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::plugins::section;
use crate::support::{Client, TestGateway};

/// A gateway whose channels `bad.*` run the transform `file` with `limits`
/// and `on_error`.
async fn gateway_with(file: &str, limits: &str, on_error: &str) -> TestGateway {
    let extra = format!(
        "{}[[routes]]\nchannels = \"bad.*\"\ninbound = [\"hostile\"]\n",
        section(
            "hostile",
            "transform",
            file,
            &format!("limits = {limits}\non_error = \"{on_error}\""),
        )
    );
    TestGateway::start(&extra).await
}

/// Sum of the `ferrygate_plugin_errors_total` series of `plugin` with `cause`.
pub async fn plugin_errors(gateway: &TestGateway, plugin: &str, cause: &str) -> f64 {
    let (_, text) = gateway.http("GET", "/metrics", &[], "").await;
    text.lines()
        .filter(|line| line.starts_with("ferrygate_plugin_errors_total{"))
        .filter(|line| {
            line.contains(&format!("plugin=\"{plugin}\""))
                && line.contains(&format!("cause=\"{cause}\""))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Publishes on `bad.x` and returns the reply and how long it took.
async fn publish_bad(publisher: &mut Client, data: Value) -> (Value, Duration) {
    let started = Instant::now();
    let reply = publisher
        .request(json!({"op": "publish", "channel": "bad.x", "data": data}))
        .await;
    (reply, started.elapsed())
}

/// While `publisher` is stuck in a plugin call, `other` must still get a
/// message published by `third` on an unrelated channel.
async fn others_keep_receiving(gateway: &TestGateway, mut stuck: Client) -> Client {
    let mut listener = gateway.client().await;
    listener.subscribe("news").await;
    let mut third = gateway.client().await;
    let id = 900;
    stuck
        .send_text(
            json!({"op": "publish", "id": id, "channel": "bad.x", "data": {"n": 1}}).to_string(),
        )
        .await;
    third.publish("news", json!("still here")).await;
    let push = listener.recv().await;
    assert_eq!(push["data"], "still here", "{push}");
    let reply = stuck.recv().await;
    assert_eq!(reply["id"], id, "{reply}");
    stuck
}

#[tokio::test]
async fn an_endless_loop_is_cut_at_its_time_limit_and_fails_closed() {
    let gateway = gateway_with("spin", "{ memory_mib = 16, time_ms = 50 }", "deny").await;
    let mut publisher = gateway.client().await;
    let mut subscriber = gateway.client().await;
    subscriber.subscribe("bad.x").await;
    subscriber.subscribe("marker").await;

    let (reply, took) = publish_bad(&mut publisher, json!({"n": 0})).await;
    assert_eq!(reply["error"]["code"], "plugin_error", "{reply}");
    assert!(
        took >= Duration::from_millis(50) && took < Duration::from_millis(1000),
        "cut after {took:?}, limit 50 ms"
    );
    assert_eq!(plugin_errors(&gateway, "hostile", "deadline").await, 1.0);

    // The connection is kept and other clients are served meanwhile.
    let mut publisher = others_keep_receiving(&gateway, publisher).await;
    let reply = publisher.request(json!({"op": "ping"})).await;
    assert_eq!(reply["ok"], true, "{reply}");
    // Nothing of the failed publishes reached the channel's subscriber.
    publisher.publish("marker", json!("end")).await;
    let push = subscriber.recv().await;
    assert_eq!(push["channel"], "marker", "{push}");
    gateway.stop().await;
}

#[tokio::test]
async fn with_on_error_allow_a_failing_transform_passes_the_message_unchanged() {
    let gateway = gateway_with("spin", "{ memory_mib = 16, time_ms = 20 }", "allow").await;
    let mut publisher = gateway.client().await;
    let mut subscriber = gateway.client().await;
    subscriber.subscribe("bad.x").await;
    let (reply, _) = publish_bad(&mut publisher, json!({"n": 7})).await;
    assert_eq!(reply["ok"], true, "{reply}");
    let push = subscriber.recv().await;
    assert_eq!(push["data"], json!({"n": 7}), "{push}");
    assert_eq!(plugin_errors(&gateway, "hostile", "deadline").await, 1.0);
    gateway.stop().await;
}

#[tokio::test]
async fn a_memory_bomb_is_stopped_at_its_cap() {
    let gateway = gateway_with("memory_bomb", "{ memory_mib = 8, time_ms = 2000 }", "deny").await;
    let mut publisher = gateway.client().await;
    let (reply, took) = publish_bad(&mut publisher, json!({})).await;
    assert_eq!(reply["error"]["code"], "plugin_error", "{reply}");
    assert!(
        took < Duration::from_millis(2000),
        "stopped by the cap, not the clock: {took:?}"
    );
    assert_eq!(plugin_errors(&gateway, "hostile", "memory").await, 1.0);
    // A fresh instance serves the next call; it fails the same way, and the
    // gateway is unharmed.
    let publisher = others_keep_receiving(&gateway, publisher).await;
    drop(publisher);
    assert_eq!(plugin_errors(&gateway, "hostile", "memory").await, 2.0);
    gateway.stop().await;
}

#[tokio::test]
async fn a_panic_is_a_trap_and_the_next_call_gets_a_fresh_instance() {
    let gateway = gateway_with("panic", "{ memory_mib = 16, time_ms = 100 }", "deny").await;
    let mut publisher = gateway.client().await;
    for round in 1..=3 {
        let (reply, _) = publish_bad(&mut publisher, json!({"round": round})).await;
        assert_eq!(reply["error"]["code"], "plugin_error", "{reply}");
    }
    assert_eq!(plugin_errors(&gateway, "hostile", "trap").await, 3.0);
    gateway.stop().await;
}

#[tokio::test]
async fn a_huge_output_is_refused_and_never_reaches_subscribers() {
    let gateway = gateway_with("huge_output", "{ memory_mib = 64, time_ms = 2000 }", "deny").await;
    let mut publisher = gateway.client().await;
    let mut subscriber = gateway.client().await;
    subscriber.subscribe("bad.x").await;
    subscriber.subscribe("after").await;
    let (reply, _) = publish_bad(&mut publisher, json!({})).await;
    assert_eq!(reply["error"]["code"], "plugin_error", "{reply}");
    assert_eq!(plugin_errors(&gateway, "hostile", "bad_output").await, 1.0);
    publisher.publish("after", json!("next")).await;
    let push = subscriber.recv().await;
    assert_eq!(
        push["channel"], "after",
        "the huge output was never delivered: {push}"
    );
    gateway.stop().await;
}

/// What a plugin logs while it runs for a client's request (here the SDK's
/// panic hook), and the failure the gateway logs for that call, name the
/// client's connection (`conn`): an operator can tell whose request it was.
/// The real binary, so that its log is the one an operator reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugins_log_lines_name_the_connection_it_ran_for() {
    let plugin = section(
        "hostile",
        "transform",
        "panic",
        "limits = { memory_mib = 16, time_ms = 2000 }\non_error = \"deny\"",
    );
    let broker = format!(
        "kind = \"memory\"\n{plugin}\n[[routes]]\nchannels = \"bad.*\"\ninbound = [\"hostile\"]\n"
    );
    let (_dir, command) = crate::cluster::Instance::command_with(&broker);
    let (mut child, addr, lines) = crate::support::binary::spawn_with_log(command);
    let mut client = Client::connect(&format!("ws://{addr}/ws")).await;
    let (reply, _) = publish_bad(&mut client, json!({})).await;
    assert_eq!(reply["error"]["code"], "plugin_error", "{reply}");
    let mut panicked = None;
    let mut failed = None;
    let deadline = Instant::now() + crate::support::PATIENCE;
    while (panicked.is_none() || failed.is_none()) && Instant::now() < deadline {
        let Ok(line) = lines.recv_timeout(Duration::from_millis(100)) else {
            continue;
        };
        // Messages may span lines; the fields end the last one.
        if line.contains("panics on purpose") && line.contains("plugin=\"hostile\"") {
            panicked = Some(line);
        } else if line.contains("plugin=hostile") && line.contains("cause=trap") {
            failed = Some(line);
        }
    }
    let _ = child.kill();
    let conn = &client.conn;
    for (what, line) in [("the plugin's own line", panicked), ("the failure", failed)] {
        let line = line.unwrap_or_else(|| panic!("{what} was logged"));
        assert!(line.contains(conn.as_str()), "{what} names {conn}: {line}");
    }
}
