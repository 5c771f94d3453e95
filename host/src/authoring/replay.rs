//! `ferrygate plugin test PLUGIN.wasm --kind K --input FILE`: runs a plugin
//! offline over recorded inputs (JSON lines, the format of
//! [`crate::plugin::recording`]: connect requests, subscribes, publishes and
//! rpcs with their payloads) and prints one JSON line per input with the
//! plugin's decision or output; the plugin's own log lines come before the
//! line of the call that wrote them. A line that carries the live gateway's
//! decision (`live`, as the gateway records it) is compared with the
//! decision made here: `"same": true` or `false`.
//!
//! The plugin is loaded exactly as `serve` loads it (capability check,
//! stubs, limits, `init` with its config), and called through the same hooks.
//!
//! Owns reading the input and printing; it never listens on a socket.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::config::{Config, Grant, PluginKind};
use crate::metrics::PluginMetrics;
use crate::plugin::LivePlugins;
use crate::plugin::hooks::{Action, ConnectRequest};
use crate::plugin::recording::{self, Input};
use crate::protocol::ChannelName;

/// Longest input line read; a longer one is reported and skipped.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// What to run.
#[derive(Debug, Clone)]
pub struct Replay {
    /// The component.
    pub wasm: PathBuf,
    /// Its kind.
    pub kind: PluginKind,
    /// The JSON-lines input.
    pub input: PathBuf,
    /// The plugin's `config` table (a JSON object).
    pub config: serde_json::Map<String, Value>,
    /// Its grants.
    pub grants: Vec<Grant>,
    /// `limits.memory_mib` and `limits.time_ms`.
    pub limits: (u32, u32),
}

/// How a run went.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Inputs run.
    pub calls: usize,
    /// Inputs whose recorded live decision differs from this run's.
    pub differ: usize,
    /// Lines that could not be used (bad JSON, bad channel, wrong kind).
    pub skipped: usize,
}

/// Why the plugin could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The input file cannot be read.
    #[error("cannot read {0}: {1}")]
    Input(PathBuf, std::io::Error),
    /// The plugin does not load (the same reasons `check` gives).
    #[error("{0}")]
    Load(String),
}

/// Loads the plugin and runs every line of the input, printing to `out`.
pub async fn run(replay: &Replay, out: &mut dyn Write) -> Result<Summary, ReplayError> {
    let config = manifest(replay).map_err(ReplayError::Load)?;
    let metrics = PluginMetrics::new();
    let live = LivePlugins::start(&config, &metrics)
        .await
        .map_err(|e| ReplayError::Load(e.to_string()))?;
    let set = live.current();
    let plugin = set
        .get(&plugin_name(&replay.wasm))
        .ok_or_else(|| ReplayError::Load("the plugin did not load".to_owned()))?;
    let file = std::fs::File::open(&replay.input)
        .map_err(|e| ReplayError::Input(replay.input.clone(), e))?;
    let max_bytes = config.server.max_frame_bytes;
    let mut summary = Summary::default();
    for (index, line) in std::io::BufReader::new(file).lines().enumerate() {
        let number = index + 1;
        let line = line.map_err(|e| ReplayError::Input(replay.input.clone(), e))?;
        if line.trim().is_empty() {
            continue;
        }
        let printed = if line.len() > MAX_LINE_BYTES {
            Err(format!("longer than {MAX_LINE_BYTES} bytes"))
        } else {
            match serde_json::from_str::<Input>(&line) {
                Ok(input) => call(plugin, replay.kind, &input, max_bytes)
                    .await
                    .map(|decision| (input, decision)),
                Err(e) => Err(format!("not an input line: {e}")),
            }
        };
        let report = match printed {
            Ok((input, decision)) => {
                summary.calls += 1;
                let mut report = json!({"line": number, "op": op(&input), "decision": decision});
                if let Some(live) = input.live() {
                    let same = *live == decision;
                    summary.differ += usize::from(!same);
                    report["live"] = live.clone();
                    report["same"] = json!(same);
                }
                report
            }
            Err(problem) => {
                summary.skipped += 1;
                json!({"line": number, "skipped": problem})
            }
        };
        let _ = writeln!(out, "{report}");
    }
    Ok(summary)
}

fn op(input: &Input) -> &'static str {
    match input {
        Input::Connect { .. } => "connect",
        Input::Subscribe { .. } => "subscribe",
        Input::Publish { .. } => "publish",
        Input::Rpc { .. } => "rpc",
    }
}

async fn call(
    plugin: &crate::plugin::Plugin,
    kind: PluginKind,
    input: &Input,
    max_bytes: usize,
) -> Result<Value, String> {
    let channel = |name: &str| ChannelName::new(name).map_err(|e| format!("channel {name:?}: {e}"));
    match (kind, input) {
        (
            PluginKind::Auth,
            Input::Connect {
                path,
                query,
                headers,
                remote_address,
                token,
                now_unix_ms,
                ..
            },
        ) => {
            let request = ConnectRequest {
                path: path.clone(),
                query: query.clone(),
                headers: headers.clone(),
                remote_address: remote_address.clone(),
                token: token.clone(),
                now_unix_ms: *now_unix_ms,
            };
            Ok(recording::auth_decision(
                &plugin.authenticate(&request).await,
            ))
        }
        (
            PluginKind::Route,
            Input::Subscribe {
                channel: name,
                connection,
                ..
            },
        ) => {
            let result = plugin
                .route(
                    Action::Subscribe,
                    &channel(name)?,
                    &connection.to_wit(),
                    None,
                )
                .await;
            Ok(recording::route_decision(&result))
        }
        (
            PluginKind::Route,
            Input::Publish {
                channel: name,
                connection: Some(connection),
                data,
                ..
            },
        ) => {
            let data = data.to_string();
            let result = plugin
                .route(
                    Action::Publish,
                    &channel(name)?,
                    &connection.to_wit(),
                    Some(&data),
                )
                .await;
            Ok(recording::route_decision(&result))
        }
        (
            PluginKind::Route,
            Input::Rpc {
                channel: name,
                connection,
                data,
                ..
            },
        ) => {
            let data = data.to_string();
            let result = plugin
                .route(
                    Action::Rpc,
                    &channel(name)?,
                    &connection.to_wit(),
                    Some(&data),
                )
                .await;
            Ok(recording::route_decision(&result))
        }
        (
            PluginKind::Transform,
            Input::Publish {
                channel: name,
                connection,
                data,
                ..
            },
        ) => {
            let connection = connection.as_ref().map(recording::Conn::to_wit);
            let result = plugin
                .transform_inbound(
                    &channel(name)?,
                    connection.as_ref(),
                    &data.to_string(),
                    max_bytes,
                )
                .await;
            Ok(recording::transform_decision(&result))
        }
        (kind, input) => Err(format!(
            "a `{}` line does not apply to a {} plugin",
            op(input),
            kind.as_str()
        )),
    }
}

/// The name the plugin runs under, which its log lines carry: the file's
/// stem (`room_rules.wasm` -> `room_rules`) with any character a manifest
/// name does not allow (1-64 letters, digits, `_`, `-`) replaced by `_`;
/// `plugin` when nothing is left.
fn plugin_name(wasm: &std::path::Path) -> String {
    let stem = wasm
        .file_stem()
        .map(|s| s.to_string_lossy())
        .unwrap_or_default();
    let name: String = stem
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        "plugin".to_owned()
    } else {
        name
    }
}

/// A one-plugin manifest (named after the file, [`plugin_name`]) for the
/// component.
fn manifest(replay: &Replay) -> Result<Config, String> {
    let wasm = std::path::absolute(&replay.wasm).map_err(|e| e.to_string())?;
    let config = toml::Value::try_from(&replay.config)
        .map_err(|e| format!("the config cannot be written as TOML (a null?): {e}"))?;
    let grants: Vec<&str> = replay
        .grants
        .iter()
        .map(|g| crate::plugin::capabilities::grant_name(*g))
        .collect();
    let mut plugin = toml::Table::new();
    plugin.insert("kind".into(), replay.kind.as_str().into());
    plugin.insert("path".into(), wasm.display().to_string().into());
    plugin.insert("config".into(), config);
    plugin.insert(
        "grants".into(),
        toml::Value::Array(grants.into_iter().map(Into::into).collect()),
    );
    let mut limits = toml::Table::new();
    limits.insert("memory_mib".into(), i64::from(replay.limits.0).into());
    limits.insert("time_ms".into(), i64::from(replay.limits.1).into());
    plugin.insert("limits".into(), limits.into());
    let mut plugins = toml::Table::new();
    plugins.insert(plugin_name(&replay.wasm), plugin.into());
    let mut server = toml::Table::new();
    server.insert("allow_anonymous".into(), true.into());
    let mut root = toml::Table::new();
    root.insert("server".into(), server.into());
    root.insert("plugins".into(), plugins.into());
    let text = toml::to_string(&root).map_err(|e| e.to_string())?;
    Config::parse(&text, &std::collections::HashMap::<String, String>::new())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::plugin_name;
    use std::path::Path;

    #[test]
    fn the_plugin_runs_under_its_file_name() {
        assert_eq!(plugin_name(Path::new("dist/room_rules.wasm")), "room_rules");
        assert_eq!(plugin_name(Path::new("a b.c.wasm")), "a_b_c");
        assert_eq!(plugin_name(Path::new(".wasm")), "_wasm");
        assert_eq!(plugin_name(Path::new("/")), "plugin");
    }
}
