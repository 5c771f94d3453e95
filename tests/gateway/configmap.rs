//! The manifest and a plugin mounted the way Kubernetes mounts a ConfigMap:
//! `cfg/ferrygate.toml -> ..data/ferrygate.toml`, `..data -> v1/`, and an
//! update that writes `v2/` and renames a new `..data -> v2` link over the
//! old one. Neither named file changes, only a link two steps away: the
//! watcher must see that swap as a change and serve the new version.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Instant;

use serde_json::json;

use crate::drain::TempDir;
use crate::hot::{Hot, STAMPED, bytes_of, head, version_of};
use crate::support::{Client, PATIENCE};

/// Writes version `name` of the mount: `name/ferrygate.toml` (`manifest`)
/// and `name/stamp.wasm` (the component `stamp`), then points `..data` at it
/// the way the kubelet does: a new link renamed over the old one.
fn publish_version(cfg: &Path, name: &str, manifest: &str, stamp: &[u8]) {
    let version = cfg.join(name);
    std::fs::create_dir_all(&version).expect("version folder");
    std::fs::write(version.join("ferrygate.toml"), manifest).expect("write manifest");
    std::fs::write(version.join("stamp.wasm"), stamp).expect("write plugin");
    let temp = cfg.join("..data_tmp");
    symlink(name, &temp).expect("new ..data link");
    std::fs::rename(&temp, cfg.join("..data")).expect("swap ..data");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_symlink_swap_reloads_the_manifest_and_its_plugin() {
    let dir = TempDir::new("configmap");
    let cfg = dir.0.join("cfg");
    std::fs::create_dir_all(&cfg).expect("cfg folder");
    let manifest = format!("{}{STAMPED}", head());
    publish_version(&cfg, "v1", &manifest, &bytes_of("stamp_v1"));
    for file in ["ferrygate.toml", "stamp.wasm"] {
        symlink(format!("..data/{file}"), cfg.join(file)).expect("file link");
    }
    let hot = Hot::serve(dir, &cfg.join("ferrygate.toml"), &[]);
    let mut listener = Client::connect(&hot.ws_url()).await;
    listener.subscribe("feed.cm").await;
    let mut publisher = Client::connect(&hot.ws_url()).await;
    publisher.publish("feed.cm", json!({"n": 1})).await;
    assert_eq!(listener.recv().await["data"]["stamp"], "v1");

    // Only the plugin differs in v2.
    let v2 = bytes_of("stamp_v2");
    publish_version(&cfg, "v2", &manifest, &v2);
    let started = Instant::now();
    hot.wait_for("stamp", "the v2 plugin from the swapped mount", |p| {
        p["version"] == version_of(&v2)
    })
    .await;
    assert!(started.elapsed() < PATIENCE, "took {:?}", started.elapsed());
    publisher.publish("feed.cm", json!({"n": 2})).await;
    assert_eq!(listener.recv().await["data"]["stamp"], "v2");

    // v3 changes the manifest only: a second plugin appears. The watches
    // were re-armed after the last reload, so `..data -> v2` is followed now.
    let second = format!(
        "{manifest}\n[plugins.other]\nkind = \"transform\"\npath = \"stamp.wasm\"\nlimits = {{ time_ms = 2000 }}\n"
    );
    publish_version(&cfg, "v3", &second, &v2);
    hot.wait_for("other", "the plugin added by the v3 manifest", |p| {
        p["version"] == version_of(&v2)
    })
    .await;
    publisher.publish("feed.cm", json!({"n": 3})).await;
    assert_eq!(listener.recv().await["data"]["stamp"], "v2");
}
