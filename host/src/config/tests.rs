use std::collections::HashMap;

use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    let env: HashMap<String, String> = [("API_KEY".to_owned(), "from-env".to_owned())].into();
    Config::parse(text, &env)
}

#[test]
fn empty_manifest_gives_the_documented_defaults() {
    let config = parse("").expect("empty manifest is valid");
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.server.max_frame_bytes, 65536);
    assert!(config.server.api_key.is_none());
    assert_eq!(config.broker.kind, BrokerKind::Memory);
    assert_eq!(config.broker.prefix, "ferrygate");
}

#[test]
fn unknown_key_names_key_and_line() {
    let err = parse("[server]\nlisten = \"127.0.0.1:9000\"\nmax_frame_byte = 10\n")
        .expect_err("typo must be rejected");
    let text = err.to_string();
    assert!(text.contains("max_frame_byte"), "{text}");
    assert!(text.starts_with("manifest:3:"), "{text}");
}

#[test]
fn unknown_table_is_rejected() {
    let err = parse("[sever]\nlisten = \"127.0.0.1:9000\"\n").expect_err("typo");
    assert!(err.to_string().contains("sever"), "{err}");
}

#[test]
fn wrong_type_names_line() {
    let err = parse("[server]\n\nmax_connections = \"many\"\n").expect_err("wrong type");
    assert!(err.to_string().starts_with("manifest:3:"), "{err}");
}

#[test]
fn api_key_reads_the_environment_and_is_never_printed() {
    let config = parse("[server]\napi_key = \"${API_KEY}\"\n").expect("valid");
    let key = config.server.api_key.as_ref().expect("key set");
    assert_eq!(key.expose(), "from-env");
    assert!(!format!("{config:?}").contains("from-env"));
}

#[test]
fn unset_variable_is_an_error_at_its_line() {
    let err = parse("[server]\n\napi_key = \"${NOT_SET}\"\n").expect_err("unset");
    let text = err.to_string();
    assert!(
        text.contains("NOT_SET") && text.contains("server.api_key"),
        "{text}"
    );
    assert!(text.starts_with("manifest:3:"), "{text}");
}

#[test]
fn out_of_range_value_names_key_and_line() {
    let err = parse("[server]\nping_interval_ms = 30000\nidle_timeout_ms = 1000\n")
        .expect_err("idle below ping");
    let text = err.to_string();
    assert!(text.contains("server.idle_timeout_ms"), "{text}");
    assert!(text.starts_with("manifest:3:"), "{text}");
}

#[test]
fn load_names_the_file() {
    let dir = std::env::temp_dir().join(format!("ferrygate-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("ferrygate.toml");
    std::fs::write(&path, "[server]\nlisen = \"x\"\n").expect("write");
    let err = Config::load(&path, &ProcessEnv).expect_err("typo");
    assert!(
        err.to_string()
            .starts_with(&format!("{}:2:", path.display())),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
