//! Target `manifest`: manifest text through the loader (`Config::parse`:
//! TOML, `${VAR}` expansion, validation), the code every reload runs on
//! whatever is in the file at that moment.

use std::collections::HashMap;
use std::sync::OnceLock;

use ferrygate::config::{Config, ConfigError};

/// Manifest grammar: tables, keys, values and expansions.
pub(super) const DICTIONARY: &[&str] = &[
    "[server]\n",
    "[broker]\n",
    "[wasm]\n",
    "[plugins.p]\n",
    "[[routes]]\n",
    "\n",
    " = ",
    "\"",
    "'''",
    "\"\"\"",
    "{",
    "}",
    "[",
    "]",
    ",",
    "listen",
    "api_key",
    "max_connections",
    "max_frame_bytes",
    "idle_timeout_ms",
    "ping_interval_ms",
    "close_grace_ms",
    "drain_ms",
    "publish_rate",
    "request_rate",
    "per_second",
    "burst",
    "allowed_origins",
    "kind",
    "url",
    "urls",
    "prefix",
    "on_unreachable",
    "connect_timeout_ms",
    "\"nats\"",
    "\"redis\"",
    "\"memory\"",
    "path",
    "config",
    "limits",
    "time_ms",
    "memory_mib",
    "on_error",
    "grants",
    "channels",
    "inbound",
    "outbound",
    "plugin",
    "\"auth\"",
    "\"route\"",
    "\"transform\"",
    "${FUZZ_SECRET}",
    "${MISSING}",
    "${MISSING:-d}",
    "${",
    "$",
    "18446744073709551615",
    "-1",
    "0",
    "1e308",
    "nan",
    "inf",
    "true",
    "1979-05-27T07:32:00Z",
];

/// Parses `data` as manifest text with a fixed environment.
pub fn manifest(data: &[u8]) {
    // `Config::load` refuses a file that is not UTF-8 before parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    static ENV: OnceLock<HashMap<String, String>> = OnceLock::new();
    let env = ENV.get_or_init(|| {
        HashMap::from([
            ("FUZZ_SECRET".to_owned(), "fuzz-secret-value".to_owned()),
            ("EMPTY".to_owned(), String::new()),
        ])
    });
    match Config::parse(text, env) {
        Ok(config) => {
            let _ = format!("{config:?}");
        }
        Err(error) => {
            let message = error.to_string();
            assert!(!message.is_empty(), "an empty error message");
            let location = match &error {
                ConfigError::Syntax { location, .. } | ConfigError::Invalid { location, .. } => {
                    *location
                }
                ConfigError::Read { .. } => panic!("parsing text reported a read error"),
            };
            if let Some(location) = location {
                let lines = text.split('\n').count();
                assert!(
                    (1..=lines).contains(&location.line) && location.column >= 1,
                    "error at {location} in a text of {lines} lines: {message}"
                );
            }
        }
    }
}
