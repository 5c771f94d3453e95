//! A reload never removes an access check (SPEC 2): the chat example's
//! manifest cut off by a non-atomic write after its `[plugins.*]` tables,
//! so without its `[[routes]]` (or with its last route's `route = ...` line
//! missing), would leave every channel unchecked; the reload is refused,
//! the running route table stays, and a private channel stays private.
//! Reloads that keep every check still apply, and a rollback that would
//! remove one is refused too.

use serde_json::{Value, json};

use crate::fail_closed::{
    chat, chat_edited, chat_token, failed_reloads, names, wait_manifest_error,
};
use crate::hot::Hot;
use crate::support::Client;

async fn connect(hot: &Hot, user: &str) -> Client {
    let url = format!("{}?token={}", hot.ws_url(), chat_token(user));
    Client::connect(&url).await
}

/// `alice` may not subscribe to `user.bob`: the ACL's private channel.
async fn private_channel_holds(hot: &Hot) {
    let mut alice = connect(hot, "alice").await;
    let answer = alice
        .request(json!({"op": "subscribe", "channel": "user.bob"}))
        .await;
    assert_eq!(answer["error"]["code"], "forbidden", "{answer}");
}

fn cut_at(text: &str, marker: &str, extra_lines: usize) -> String {
    let start = text.find(marker).expect("marker in the manifest");
    let mut end = start;
    for _ in 0..=extra_lines {
        end += text[end..].find('\n').map_or(text.len() - end, |n| n + 1);
    }
    text[..end].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_cut_before_its_routes_keeps_every_check() {
    let (hot, text) = chat("cut-routes");
    private_channel_holds(&hot).await;
    let manifest = hot.file("ferrygate.toml");
    let cases = [
        // Every plugin table, no `[[routes]]`: the auth plugin stays, so
        // only the route check catches it.
        (
            "cut before [[routes]]",
            cut_at(&text, "[plugins.redact]", 2),
            "no route with a route plugin covers them",
        ),
        // The first route's `channels` line, not its `route` line.
        (
            "cut inside the first route",
            cut_at(&text, "[[routes]]", 1),
            "(no route plugin) would take some of them first",
        ),
    ];
    for (case, head, reason) in cases {
        assert!(head.contains("[plugins.auth]"), "{case}: {head}");
        let before = failed_reloads(&hot.metrics().await);
        std::fs::write(&manifest, &head).expect("cut the manifest");
        let report = wait_manifest_error(&hot, case, |e| {
            e.as_str()
                .is_some_and(|e| e.contains(reason) && e.contains("never removes an access check"))
        })
        .await;
        let error = report["last_error"].as_str().unwrap_or_default();
        assert!(error.contains("`acl`"), "{case}: {report}");
        assert_eq!(
            names(&report),
            ["acl", "auth", "redact"],
            "{case}: {report}"
        );
        assert!(failed_reloads(&hot.metrics().await) > before, "{case}");
        private_channel_holds(&hot).await;
    }

    // The whole file back: the refusal is over and the checks still hold.
    std::fs::write(&manifest, &text).expect("restore");
    wait_manifest_error(&hot, "the refusal cleared", Value::is_null).await;
    private_channel_holds(&hot).await;
}

/// The chat example started with an open catch-all (`>` without a route
/// plugin): `user.bob` is open. A reload that adds the ACL to it applies;
/// rolling that reload back would open `user.bob` again and is refused. A
/// reload that only reshapes guarded routes applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_that_keep_checks_apply_and_rollbacks_never_remove_one() {
    const CATCH_ALL: &str = "channels = \">\"                  # everything else: still access-checked\nroute = \"acl\"";
    let (hot, text) = chat_edited("keep-routes", |text| {
        assert!(text.contains(CATCH_ALL), "{text}");
        text.replace(CATCH_ALL, "channels = \">\"")
    });
    let manifest = hot.file("ferrygate.toml");
    let mut alice = connect(&hot, "alice").await;
    alice.subscribe("user.bob").await;

    let guarded = text.replace("channels = \">\"", CATCH_ALL);
    std::fs::write(&manifest, &guarded).expect("write");
    let (status, outcome) = hot.reload("").await;
    assert_eq!(status, 200, "{outcome}");
    private_channel_holds(&hot).await;

    let (status, outcome) = hot.reload(r#"{"rollback": true}"#).await;
    assert_eq!(status, 422, "{outcome}");
    let error = outcome["failed"][0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("never removes an access check"), "{outcome}");
    private_channel_holds(&hot).await;

    // Split the catch-all in two guarded entries: every channel still has
    // the ACL first.
    let split = guarded.replace(
        CATCH_ALL,
        "channels = \"user.>\"\nroute = \"acl\"\n\n[[routes]]\nchannels = \">\"\nroute = \"acl\"",
    );
    std::fs::write(&manifest, &split).expect("write");
    let (status, outcome) = hot.reload("").await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["ok"], true, "{outcome}");
    private_channel_holds(&hot).await;
}
