//! Hot reload of the real binary: a bad file or a wrong-world component
//! leaves the running version serving and says why; a manifest edit binds
//! live connections on their next publish; a slowly written file is never
//! loaded half-done; a replaced plugin folder is seen; `POST /v1/reload` and
//! SIGHUP reload and say what changed. The live swap under a message stream, and rollback,
//! are in `reload_stream`; the harness is `hot`.

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::hot::{Hot, STAMPED, bytes_of, copy_over, version_of};
use crate::support::plugins::plugin;
use crate::support::{Client, PATIENCE, http, metric_value};

/// Publishes `{"n": n}` on `feed.test` and returns the stamp `listener` sees.
async fn stamp_seen(publisher: &mut Client, listener: &mut Client, n: u64) -> Value {
    publisher.publish("feed.test", json!({ "n": n })).await;
    let frame = listener.recv().await;
    assert_eq!(frame["data"]["n"], n, "{frame}");
    frame["data"]["stamp"].clone()
}

fn failures(metrics: &str) -> f64 {
    metric_value(
        metrics,
        "ferrygate_plugin_reload_failures_total{plugin=\"stamp\"}",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_then_a_wrong_world_component_leave_the_running_version_serving() {
    let hot = Hot::start("reload-bad");
    let mut listener = Client::connect(&hot.ws_url()).await;
    listener.subscribe("feed.test").await;
    let mut publisher = Client::connect(&hot.ws_url()).await;
    let v1 = hot.plugin("stamp").await["version"].clone();
    hot.replace_stamp(&bytes_of("stamp_v2"));
    let v2 = hot.wait_for("stamp", "v2", |p| p["version"] != v1).await["version"].clone();
    assert_eq!(stamp_seen(&mut publisher, &mut listener, 1).await, "v2");

    hot.replace_stamp(b"\0asm this is not a component, it was cut short");
    let entry = hot
        .wait_for("stamp", "the garbage failure", |p| {
            p["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("not a valid WebAssembly component"))
        })
        .await;
    assert_eq!(entry["version"], v2, "{entry}");
    assert_eq!(stamp_seen(&mut publisher, &mut listener, 2).await, "v2");
    let after_garbage = failures(&hot.metrics().await);
    assert!(after_garbage >= 1.0, "{after_garbage}");

    // A route-world component where a transform is expected.
    hot.replace_stamp(&bytes_of("channel_acl"));
    let entry = hot
        .wait_for("stamp", "the wrong-world failure", |p| {
            p["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("does not implement the `transform` world"))
        })
        .await;
    assert_eq!(entry["version"], v2, "{entry}");
    assert_eq!(stamp_seen(&mut publisher, &mut listener, 3).await, "v2");
    let metrics = hot.metrics().await;
    assert!(failures(&metrics) > after_garbage, "{metrics}");
    assert!(
        metric_value(
            &metrics,
            "ferrygate_plugin_reloads_total{outcome=\"failed\"}"
        ) >= 2.0
    );

    // Putting back the file that runs ends the failure: nothing to swap,
    // and the error is no longer shown.
    hot.replace_stamp(&bytes_of("stamp_v2"));
    let entry = hot
        .wait_for("stamp", "the failure cleared", |p| {
            p["last_error"].is_null()
        })
        .await;
    assert_eq!(entry["version"], v2, "{entry}");

    // The next good file is picked up as usual.
    hot.replace_stamp(&bytes_of("stamp_v1"));
    hot.wait_for("stamp", "v1 again", |p| p["version"] == v1)
        .await;
    assert_eq!(stamp_seen(&mut publisher, &mut listener, 4).await, "v1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deny_rule_added_to_the_manifest_binds_live_connections_on_their_next_publish() {
    let hot = Hot::start("reload-acl");
    let mut client = Client::connect(&hot.ws_url()).await;
    let mut listener = Client::connect(&hot.ws_url()).await;
    listener.subscribe("feed.test").await;
    client.publish("x.news", json!({"n": 0})).await;

    let acl = plugin("channel_acl");
    hot.write_manifest(&format!(
        "\n[plugins.acl]\nkind = \"route\"\npath = {:?}\nconfig = {{ public = [\">\"], publish = [{{ channels = \"x.*\", allow = \"nobody\" }}] }}\n\n\
         [[routes]]\nchannels = \"x.*\"\nroute = \"acl\"\n{STAMPED}",
        acl.display().to_string()
    ));
    hot.wait_for("acl", "the acl plugin", |p| p["kind"] == "route")
        .await;

    // The same connection, not reconnected, is now bound by the new rule...
    let reply = client
        .request(json!({"op": "publish", "channel": "x.news", "data": {"n": 1}}))
        .await;
    assert_eq!(reply["error"]["code"], "forbidden", "{reply}");
    // ...while the routes that did not change still work for it.
    client.publish("feed.test", json!({"n": 2})).await;
    let frame = listener.recv().await;
    assert_eq!(frame["data"], json!({"n": 2, "stamp": "v1"}), "{frame}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_written_slowly_in_place_is_never_loaded_half_done() {
    let hot = Hot::start("reload-slow");
    let mut listener = Client::connect(&hot.ws_url()).await;
    listener.subscribe("feed.test").await;
    let mut publisher = Client::connect(&hot.ws_url()).await;
    let v1 = version_of(&bytes_of("stamp_v1"));
    let v2_bytes = bytes_of("stamp_v2");
    let v2 = version_of(&v2_bytes);
    assert_eq!(hot.plugin("stamp").await["version"], v1);

    // In place (no rename), in 6 chunks with pauses longer than the debounce,
    // so that reloads do read the half-written file.
    let path = hot.file("stamp.wasm");
    let writer = std::thread::spawn(move || {
        let mut file = std::fs::File::create(&path).expect("truncate plugin");
        for (i, chunk) in v2_bytes.chunks(v2_bytes.len().div_ceil(6)).enumerate() {
            if i > 0 {
                std::thread::sleep(Duration::from_millis(250));
            }
            file.write_all(chunk).expect("write chunk");
            file.flush().expect("flush");
        }
    });
    // Every version ever reported is v1 or the complete v2 (a partial file
    // would have another content hash), and every message is stamped by it.
    let mut n = 0;
    while !writer.is_finished() {
        n += 1;
        let entry = hot.plugin("stamp").await;
        assert!(
            entry["version"] == v1 || entry["version"] == v2,
            "a partial file was loaded: {entry}"
        );
        let stamp = stamp_seen(&mut publisher, &mut listener, n).await;
        assert!(stamp == "v1" || stamp == "v2", "{stamp}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    writer.join().expect("writer thread");
    hot.wait_for("stamp", "the complete file", |p| p["version"] == v2)
        .await;
    assert_eq!(stamp_seen(&mut publisher, &mut listener, n + 1).await, "v2");
    // Several polls saw the half-written file stay unloaded.
    assert!(n > 5, "{n}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_reload_and_sighup_reload_and_say_what_changed() {
    let hot = Hot::start("reload-api");
    let (status, _) = http(hot.addr, "POST", "/v1/reload", &[], "").await;
    assert_eq!(status, 401);

    let (status, outcome) = hot.reload("").await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["swapped"], false, "{outcome}");
    assert_eq!(outcome["unchanged"][0]["name"], "stamp", "{outcome}");

    // A second plugin and a changed [server]: the plugin is added, the
    // server section is reported as needing a restart and left as it was.
    copy_over(&plugin("stamp_v2"), &hot.file("other.wasm"));
    let text = std::fs::read_to_string(hot.file("ferrygate.toml")).expect("read manifest");
    let edited = text.replace("drain_ms = 100", "drain_ms = 200")
        + "\n[plugins.other]\nkind = \"transform\"\npath = \"other.wasm\"\n";
    std::fs::write(hot.file("ferrygate.toml"), edited).expect("write manifest");
    let (status, outcome) = hot.reload("").await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["restart_needed"], json!(["[server]"]), "{outcome}");
    hot.wait_for("other", "the added plugin", |p| p["kind"] == "transform")
        .await;

    let (status, outcome) = hot.reload(r#"{"rollback": "yes"}"#).await;
    assert_eq!(status, 400, "{outcome}");

    // SIGHUP reloads, and does not end the process.
    let before = metric_value(
        &hot.metrics().await,
        "ferrygate_plugin_reloads_total{outcome=\"ok\"}",
    );
    hot.signal("HUP");
    let deadline = Instant::now() + PATIENCE;
    while metric_value(
        &hot.metrics().await,
        "ferrygate_plugin_reloads_total{outcome=\"ok\"}",
    ) <= before
    {
        assert!(Instant::now() < deadline, "SIGHUP did not reload");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_plugin_folder_is_seen_each_time() {
    let hot = Hot::start("reload-folder");
    let v1 = version_of(&bytes_of("stamp_v1"));
    let v2 = version_of(&bytes_of("stamp_v2"));
    let build = hot.file("build");
    std::fs::create_dir(&build).expect("mkdir");
    copy_over(&plugin("stamp_v1"), &build.join("stamp.wasm"));
    hot.write_manifest(&STAMPED.replace("stamp.wasm", "build/stamp.wasm"));
    // Returns once a reload that read the edited manifest is done.
    let (status, outcome) = hot.reload("").await;
    assert_eq!(status, 200, "{outcome}");

    // The way some build tools publish: a new folder renamed over the old.
    for (file, version) in [("stamp_v2", &v2), ("stamp_v1", &v1), ("stamp_v2", &v2)] {
        let next = hot.file("build.next");
        std::fs::create_dir(&next).expect("mkdir");
        copy_over(&plugin(file), &next.join("stamp.wasm"));
        std::fs::remove_dir_all(&build).expect("remove old folder");
        std::fs::rename(&next, &build).expect("rename folder");
        hot.wait_for("stamp", file, |p| p["version"] == *version)
            .await;
    }
}
