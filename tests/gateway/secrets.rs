//! Secrets never come back in an API answer: a plugin whose `init` refuses
//! its config quotes the value in its error, and that error reaches the
//! log, `POST /v1/reload` and `GET /v1/plugins` with the secret hidden. (The
//! check that no secret appears anywhere, in any test, is `support::canary`.)

use crate::hot::{Hot, STAMPED, head};
use crate::support::Client;
use crate::support::canary::CANARY;
use crate::support::plugins::plugin;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_config_secret_in_an_init_error_is_redacted() {
    let hot = Hot::start("secret-init");
    let secret = format!("leeway-{CANARY}");
    // A `${VAR}` where the plugin wants a number: serde quotes the string.
    let jwt = plugin("jwt_auth").display().to_string();
    let body = format!(
        "{STAMPED}\n[plugins.auth]\nkind = \"auth\"\npath = {jwt:?}\n\
         config = {{ hs256_secret = \"${{FERRYGATE_TEST_SECRET:-{secret}}}\", leeway_s = \"${{FERRYGATE_TEST_SECRET:-{secret}}}\" }}\n"
    );
    std::fs::write(hot.file("ferrygate.toml"), format!("{}{body}", head())).expect("write");
    let (status, outcome) = hot.reload("").await;
    assert_eq!(status, 422, "{outcome}");
    let error = outcome["failed"][0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("plugin `auth`") && error.contains("[redacted]"),
        "{outcome}"
    );
    let entry = hot.plugin("auth").await;
    assert!(
        entry["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("[redacted]")),
        "{entry}"
    );
}

/// A route plugin that quotes its config's `password` in a denial (a
/// literal value under a secret-looking key): the client's `forbidden`
/// carries the reason with the value hidden, on subscribe and on publish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_config_secret_in_a_denial_is_redacted() {
    let hot = Hot::start("secret-deny");
    let secret = format!("hunter-{CANARY}");
    let quote = plugin("quote_config").display().to_string();
    let body = format!(
        "\n[plugins.quote]\nkind = \"route\"\npath = {quote:?}\nlimits = {{ time_ms = 2000 }}\n\
         config = {{ password = {secret:?} }}\n\n[[routes]]\nchannels = \"vault.*\"\nroute = \"quote\"\n"
    );
    std::fs::write(
        hot.file("ferrygate.toml"),
        format!("{}{STAMPED}{body}", head()),
    )
    .expect("write");
    let (status, outcome) = hot.reload("").await;
    assert_eq!(status, 200, "{outcome}");
    let mut client = Client::connect(&hot.ws_url()).await;
    for request in [
        json!({"op": "subscribe", "channel": "vault.a"}),
        json!({"op": "publish", "channel": "vault.a", "data": {"x": 1}}),
    ] {
        let answer = client.request(request).await;
        assert_eq!(answer["error"]["code"], "forbidden", "{answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("tried password [redacted]") && !message.contains(CANARY),
            "{answer}"
        );
    }
}
