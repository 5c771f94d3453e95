//! Secrets never come back in an API answer: a plugin whose `init` refuses
//! its config quotes the value in its error, and that error reaches the
//! log, `POST /v1/reload` and `GET /v1/plugins` with the secret hidden. (The
//! check that no secret appears anywhere, in any test, is `support::canary`.)

use crate::hot::{Hot, STAMPED, head};
use crate::support::canary::CANARY;
use crate::support::plugins::plugin;

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
