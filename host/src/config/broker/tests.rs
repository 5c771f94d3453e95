//! Unit tests of the `[broker]` keys: parsing, defaults, secrets and the errors that name the key; they test
//! the parent module's behaviour and own nothing else.

use std::collections::HashMap;

use super::super::{Config, ConfigError};
use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    let env: HashMap<String, String> = [("NATS_PASSWORD".to_owned(), "s3cret".to_owned())].into();
    // Appended, so that the line numbers of `text` stay as written.
    Config::parse(&format!("{text}\n[server]\nallow_anonymous = true\n"), &env)
}

#[test]
fn nats_keys_parse_and_secrets_expand() {
    let config = parse(
        "[broker]\nkind = \"nats\"\nurls = [\"nats://a:4222\", \"nats://b:4222\"]\n\
         username = \"gw\"\npassword = \"${NATS_PASSWORD}\"\nrpc_timeout_ms = 750\n\
         on_unreachable = \"degraded\"\n",
    )
    .expect("valid");
    let broker = &config.broker;
    assert_eq!(broker.kind, BrokerKind::Nats);
    assert_eq!(broker.urls.len(), 2);
    assert_eq!(broker.password.as_ref().map(Secret::expose), Some("s3cret"));
    assert_eq!(format!("{:?}", broker.password), "Some([redacted])");
    assert_eq!(broker.rpc_timeout(), Duration::from_millis(750));
    assert_eq!(broker.on_unreachable, OnUnreachable::Degraded);
}

#[test]
fn defaults_point_at_the_local_server() {
    let config = parse("[broker]\nkind = \"redis\"\n").expect("valid");
    assert_eq!(config.broker.urls_or_default(), ["redis://127.0.0.1:6379"]);
    assert_eq!(config.broker.on_unreachable, OnUnreachable::Fail);
    assert!(!config.broker.cluster);
}

#[test]
fn mistakes_name_the_key_and_line() {
    for (text, key) in [
        ("[broker]\nkind = \"nats\"\nurl = \"x\"\n", "url"),
        (
            "[broker]\nkind = \"redis\"\nurls = [\"nats://x:1\"]\n",
            "broker.urls",
        ),
        (
            "[broker]\nkind = \"nats\"\ncluster = true\n",
            "broker.cluster",
        ),
        (
            "[broker]\nkind = \"nats\"\nprefix = \"a..b\"\n",
            "broker.prefix",
        ),
        (
            "[broker]\nkind = \"nats\"\ntls_cert_file = \"c.pem\"\n",
            "broker.tls_cert_file",
        ),
        (
            "[broker]\nkind = \"nats\"\nrpc_timeout_ms = 0\n",
            "broker.rpc_timeout_ms",
        ),
        (
            "[broker]\nkind = \"nats\"\ntimeout_ms = 60001\n",
            "broker.timeout_ms",
        ),
        (
            "[broker]\nkind = \"nats\"\nliveness_interval_ms = 99\n",
            "broker.liveness_interval_ms",
        ),
        (
            "[broker]\nkind = \"nats\"\npassword = \"${UNSET_VAR}\"\n",
            "broker.password",
        ),
        (
            "[broker]\nkind = \"nats\"\nurls = [\"nats://gw:hunter2@h:4222\"]\n",
            "nats://gw:[redacted]@h:4222",
        ),
    ] {
        let error = parse(text).expect_err(text).to_string();
        assert!(error.contains(key), "{text}: {error}");
        assert!(!error.contains("hunter2"), "{error}");
        assert!(error.starts_with("manifest:3:"), "{text}: {error}");
    }
}
