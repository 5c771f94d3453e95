use std::collections::HashMap;

use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    let env: HashMap<String, String> = [("API_KEY".to_owned(), "from-env".to_owned())].into();
    Config::parse(text, &env)
}

#[test]
fn a_manifest_without_auth_must_allow_anonymous_access_explicitly() {
    for text in [
        "",
        "[server]\nlisten = \"127.0.0.1:9000\"\n",
        "[server]\nallow_anonymous = false\n",
    ] {
        let error = parse(text).expect_err(text).to_string();
        assert!(error.contains("server.allow_anonymous"), "{text}: {error}");
    }
    let error = parse("[server]\nlisten = \"127.0.0.1:9000\"\nallow_anonymous = false\n")
        .expect_err("false")
        .to_string();
    assert!(error.starts_with("manifest:3:"), "{error}");
    let with_auth = "[plugins.a]\nkind = \"auth\"\npath = \"a.wasm\"\n";
    assert!(
        !parse(with_auth)
            .expect("auth guards /ws")
            .server
            .allow_anonymous
    );
}

#[test]
fn empty_server_table_with_anonymous_access_gives_the_documented_defaults() {
    let config = parse("[server]\nallow_anonymous = true\n").expect("valid");
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
    let config =
        parse("[server]\napi_key = \"${API_KEY}\"\nallow_anonymous = true\n").expect("valid");
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
fn inflight_rpc_bound_has_a_default_and_limits() {
    let config = parse("[server]\nallow_anonymous = true\n").expect("valid");
    assert_eq!(config.server.max_inflight_rpc_per_connection, 16);
    for bad in [0, server::MAX_INFLIGHT_RPC + 1] {
        let err = parse(&format!(
            "[server]\nallow_anonymous = true\nmax_inflight_rpc_per_connection = {bad}\n"
        ))
        .expect_err("out of range");
        let text = err.to_string();
        assert!(
            text.contains("server.max_inflight_rpc_per_connection") && text.contains("1024"),
            "{text}"
        );
    }
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

#[test]
fn plugin_tables_routes_and_env_secrets_parse() {
    let env: HashMap<String, String> = [("JWT".to_owned(), "s3cret".to_owned())].into();
    let config = Config::parse(
        "[plugins.auth]\nkind = \"auth\"\npath = \"a.wasm\"\nconfig = { hs256_secret = \"${JWT}\", nested = { list = [\"${JWT:-x}\"] } }\n\
         [plugins.acl]\nkind = \"route\"\npath = \"b.wasm\"\nlimits = { memory_mib = 8, time_ms = 5 }\n\
         [[routes]]\nchannels = [\"chat.*\", \"user.>\"]\nroute = \"acl\"\n",
        &env,
    )
    .expect("valid plugin manifest");
    let auth = &config.plugins["auth"];
    assert_eq!(auth.kind, PluginKind::Auth);
    assert_eq!(auth.on_error, OnError::Deny);
    assert_eq!(auth.limits, PluginLimits::default());
    assert_eq!(auth.config["hs256_secret"], "s3cret");
    assert_eq!(auth.config["nested"]["list"][0], "s3cret");
    assert_eq!(config.plugins["acl"].limits.time_ms, 5);
    assert_eq!(config.routes[0].channels.len(), 2);
}

#[test]
fn plugin_rules_are_enforced_with_the_key_at_fault() {
    let cases = [
        (
            "[plugins.a]\nkind = \"auth\"\npath = \"a.wasm\"\n[plugins.b]\nkind = \"auth\"\npath = \"b.wasm\"\n",
            "second plugin of kind `auth`",
        ),
        (
            "[plugins.a]\nkind = \"auth\"\npath = \"a.wasm\"\non_error = \"allow\"\n",
            "always refuses",
        ),
        (
            "[plugins.a]\nkind = \"route\"\npath = \"a.wasm\"\non_error = \"allow\"\n",
            "would pass the access check",
        ),
        (
            "[plugins.a]\nkind = \"transform\"\npath = \"a.wasm\"\nlimits = { memory_mib = 100000 }\n",
            "memory_mib",
        ),
        (
            "[plugins.a]\nkind = \"transform\"\npath = \"a.wasm\"\nlimits = { time_ms = 0 }\n",
            "time_ms",
        ),
        (
            "[[routes]]\nchannels = \"chat.*\"\nroute = \"missing\"\n",
            "not a [plugins.missing] entry",
        ),
        (
            "[plugins.t]\nkind = \"transform\"\npath = \"t.wasm\"\n[[routes]]\nchannels = \"chat.*\"\noutbound = [\"t\"]\n",
            "not offered yet",
        ),
        (
            "[[routes]]\nchannels = \"chat.>.x\"\n",
            "may only be the last token",
        ),
        (
            "[plugins.\"bad name\"]\nkind = \"transform\"\npath = \"t.wasm\"\n",
            "not a plugin name",
        ),
    ];
    for (manifest, expected) in cases {
        let error = parse(manifest).expect_err(manifest).to_string();
        assert!(error.contains(expected), "{manifest}\n=> {error}");
        assert!(error.starts_with("manifest:"), "names a line: {error}");
    }
}

#[test]
fn whitespace_api_key_is_refused_like_an_empty_one() {
    for key in ["", " ", "\\t \\n"] {
        let text = format!("[server]\nallow_anonymous = true\napi_key = \"{key}\"\n");
        let error = parse(&text).expect_err(&text).to_string();
        assert!(error.contains("server.api_key"), "{text}: {error}");
        assert!(error.starts_with("manifest:3:"), "{error}");
    }
}

#[test]
fn huge_durations_and_sizes_are_errors_at_their_line() {
    for (table, key) in [
        ("server", "ping_interval_ms"),
        ("server", "idle_timeout_ms"),
        ("server", "drain_ms"),
        ("server", "close_grace_ms"),
        ("server", "request_head_timeout_ms"),
        ("server", "max_frame_bytes"),
        ("server", "max_connections"),
        ("server", "max_pending_connections"),
        ("server", "max_subscriptions_per_connection"),
        ("server", "max_queued_bytes"),
        ("server", "max_request_head_bytes"),
        ("server", "workers"),
        ("broker", "connect_timeout_ms"),
        ("broker", "rpc_timeout_ms"),
        ("wasm", "max_instances"),
        ("wasm", "max_memory_mib"),
    ] {
        // TOML integers are i64: the largest one, and u64::MAX, which is
        // not even a TOML integer. Either is an error at line 2.
        for value in [i64::MAX.to_string(), u64::MAX.to_string()] {
            let server = if table == "server" {
                ""
            } else {
                "\n[server]\n"
            };
            let text = format!("[{table}]\n{key} = {value}\n{server}allow_anonymous = true\n");
            let error = parse(&text).expect_err(&text).to_string();
            assert!(error.starts_with("manifest:2:"), "{text}: {error}");
        }
    }
    let rate =
        "[server]\nallow_anonymous = true\npublish_rate = { per_second = 4294967295, burst = 1 }\n";
    let error = parse(rate).expect_err(rate).to_string();
    assert!(
        error.contains("server.publish_rate") && error.starts_with("manifest:3:"),
        "{error}"
    );
}

#[test]
fn route_history_is_bounded_and_needs_a_broker_that_keeps_it() {
    let config = parse("[server]\nallow_anonymous = true\n[[routes]]\nchannels = \"room.*\"\nhistory = { size = 50, ttl_s = 600 }\n")
        .expect("valid");
    assert_eq!(
        config.routes[0].history,
        Some(HistoryConfig {
            size: 50,
            ttl_s: 600
        })
    );
    let route = "[[routes]]\nchannels = \"room.*\"\nhistory = ";
    let cases = [
        ("{ size = 0, ttl_s = 60 }", "", "history.size"),
        ("{ size = 100001, ttl_s = 60 }", "", "history.size"),
        ("{ size = 10, ttl_s = 0 }", "", "history.ttl_s"),
        ("{ size = 10, ttl_s = 604801 }", "", "history.ttl_s"),
        ("{ size = 10 }", "", "ttl_s"),
        ("{ size = 10, ttl_s = 5, max = 1 }", "", "max"),
        (
            "{ size = 10, ttl_s = 5 }",
            "[broker]\nkind = \"redis\"\ncluster = true\n",
            "not implemented yet",
        ),
    ];
    for (history, broker, expected) in cases {
        let manifest = format!("[server]\nallow_anonymous = true\n{broker}{route}{history}\n");
        let error = parse(&manifest).expect_err(&manifest).to_string();
        assert!(error.contains(expected), "{manifest}\n=> {error}");
        assert!(error.starts_with("manifest:"), "names a line: {error}");
    }
    parse(&format!(
        "[server]\nallow_anonymous = true\n[broker]\nkind = \"redis\"\n{route}{{ size = 10, ttl_s = 5 }}\n"
    ))
    .expect("a single Redis server keeps history");
    parse(&format!(
        "[server]\nallow_anonymous = true\n[broker]\nkind = \"nats\"\n{route}{{ size = 10, ttl_s = 5 }}\n"
    ))
    .expect("NATS keeps history in JetStream");
}

#[test]
fn join_leave_needs_presence_on_the_same_route() {
    let route = "[server]\nallow_anonymous = true\n\n[[routes]]\nchannels = \"room.*\"\n";
    let config = parse(&format!("{route}presence = true\njoin_leave = true\n")).expect("valid");
    assert!(config.routes[0].presence && config.routes[0].join_leave);
    let error = parse(&format!("{route}join_leave = true\n"))
        .expect_err("join_leave alone")
        .to_string();
    assert!(
        error.starts_with("manifest:4:") && error.contains("needs `presence = true`"),
        "{error}"
    );
}
