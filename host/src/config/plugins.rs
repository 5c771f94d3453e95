//! `[plugins.NAME]`, `[[routes]]` and `[wasm]`: which components run, where
//! they sit on the message path, and the limits of the runtime that hosts them.
//!
//! Only the declarations live here; loading and calling plugins is
//! `crate::plugin`'s job.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

use super::Redactor;
use crate::protocol::ChannelPattern;

/// `[plugins.NAME]`: one WebAssembly component and how to run it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// Which world the component implements, and so where it runs.
    pub kind: PluginKind,
    /// The `.wasm` component, relative to the manifest's folder.
    pub path: PathBuf,
    /// Handed to the plugin as JSON (`host.config`); strings may use `${VAR}`.
    #[serde(default)]
    pub config: serde_json::Map<String, serde_json::Value>,
    /// Memory and time per call.
    #[serde(default)]
    pub limits: PluginLimits,
    /// What a failed call (trap, deadline, memory cap) means.
    #[serde(default)]
    pub on_error: OnError,
    /// Host capabilities beyond logging and config.
    #[serde(default)]
    pub grants: Vec<Grant>,
    /// Record every call into a file for `ferrygate plugin test` (off by
    /// default; see docs/plugins.md).
    #[serde(default)]
    pub record: Option<RecordConfig>,
    /// The secrets of `config`: every string that came from a `${VAR}`, and
    /// every string under a key that names a secret (`hs256_secret`, ...);
    /// hidden in the plugin's errors and log lines. Filled in by the parser.
    #[serde(skip)]
    pub secrets: Redactor,
}

/// The plugin kinds, one WIT world each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    /// Decides who may connect, before the upgrade.
    Auth,
    /// Decides where subscriptions and publishes go.
    Route,
    /// Rewrites payloads.
    Transform,
}

impl PluginKind {
    /// The kind as written in the manifest, metrics and `/v1/plugins`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Route => "route",
            Self::Transform => "transform",
        }
    }
}

/// `limits = { memory_mib, time_ms }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginLimits {
    /// Most linear memory one instance may grow to, in MiB.
    pub memory_mib: u32,
    /// Most wall time one call may take, in milliseconds.
    pub time_ms: u64,
}

impl Default for PluginLimits {
    fn default() -> Self {
        Self {
            memory_mib: 16,
            time_ms: 50,
        }
    }
}

/// What a failed call means for the request it was deciding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Refuse the request (`plugin_error`); the default. Auth always denies.
    #[default]
    Deny,
    /// Let the request through as if the plugin had allowed it unchanged.
    Allow,
}

/// `record = { path, max_mib }`: where a plugin's calls are recorded.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordConfig {
    /// The JSON-lines file, relative to the manifest's folder; appended to.
    pub path: PathBuf,
    /// Recording stops once the file holds this many MiB (1 to
    /// `MAX_RECORD_MIB`, default 16).
    #[serde(default = "default_record_mib")]
    pub max_mib: u32,
}

fn default_record_mib() -> u32 {
    16
}

/// Most `record.max_mib`: a recording is for debugging, not an archive.
pub const MAX_RECORD_MIB: u32 = 1024;

/// A capability the manifest may grant a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Grant {
    /// `wasi:clocks`: the wall and monotonic clocks.
    Clocks,
    /// `wasi:random`: random bytes.
    Random,
}

/// One `[[routes]]` entry: channels bound to a route plugin and transforms.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The patterns this entry covers: one string or a list.
    #[serde(deserialize_with = "one_or_many")]
    pub channels: Vec<ChannelPattern>,
    /// A plugin of kind `route` that decides subscribes and publishes.
    #[serde(default)]
    pub route: Option<String>,
    /// Transforms applied in order to each publish, once, before fan-out.
    #[serde(default)]
    pub inbound: Vec<String>,
    /// Per-recipient transforms; not offered yet, so it must stay empty.
    #[serde(default)]
    pub outbound: Vec<String>,
    /// Keep the last messages of each matching channel for recovery.
    #[serde(default)]
    pub history: Option<super::HistoryConfig>,
    /// Track who is subscribed to each matching channel, across instances
    /// (`GET /v1/presence/{channel}`, op `presence`).
    #[serde(default)]
    pub presence: bool,
    /// Push `join`/`leave` to the channel's subscribers when a user's first
    /// connection joins and its last one leaves; needs `presence`.
    #[serde(default)]
    pub join_leave: bool,
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ChannelPattern>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let texts = match OneOrMany::deserialize(d)? {
        OneOrMany::One(text) => vec![text],
        OneOrMany::Many(texts) => texts,
    };
    if texts.is_empty() {
        return Err(serde::de::Error::custom("`channels` lists no pattern"));
    }
    texts
        .iter()
        .map(|text| ChannelPattern::parse(text).map_err(serde::de::Error::custom))
        .collect()
}

/// `[wasm]`: the runtime every plugin shares.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WasmConfig {
    /// Keep compiled plugins on disk, so that a restart does not recompile.
    pub cache: bool,
    /// Where; by default `$XDG_CACHE_HOME/ferrygate/wasm` or `~/.cache/ferrygate/wasm`.
    pub cache_dir: Option<PathBuf>,
    /// Size the cache directory is kept under, in MiB (oldest artifacts go
    /// first); 1 to `MAX_CACHE_MIB` (1 TiB).
    pub cache_max_mib: u32,
    /// Size the function cache (`functions/` in the cache directory, the
    /// compiled functions a new version of a plugin reuses) is kept under,
    /// in MiB of disk (least recently used entries go first); 1 to
    /// `MAX_CACHE_MIB`.
    pub function_cache_max_mib: u32,
    /// Most plugin instances alive at once, all plugins together.
    pub max_instances: u32,
    /// Ceiling for any plugin's `limits.memory_mib`.
    pub max_memory_mib: u32,
}

impl Default for WasmConfig {
    fn default() -> Self {
        Self {
            cache: true,
            cache_dir: None,
            cache_max_mib: 512,
            function_cache_max_mib: 512,
            max_instances: 1000,
            max_memory_mib: 256,
        }
    }
}

/// Most plugin instances `[wasm] max_instances` may allow: the pooling
/// allocator reserves address space for every slot up front.
const MAX_INSTANCES: u32 = 100_000;

/// Most `[wasm] max_memory_mib`: 4 GiB is all a 32-bit WebAssembly memory
/// can address.
const MAX_MEMORY_MIB: u32 = 4096;

/// Most `[wasm] cache_max_mib` (1 TiB): a bound that catches a unit mistake;
/// the disk is the real limit.
pub const MAX_CACHE_MIB: u32 = 1 << 20;

/// The plugin table, in name order so that loads and reports are stable.
pub type Plugins = BTreeMap<String, PluginConfig>;

/// A rule of the plugin section that the manifest breaks.
#[derive(Debug)]
pub(super) struct InvalidPlugins {
    /// Key path, for the location and the message.
    pub path: Vec<String>,
    pub reason: String,
}

fn invalid(path: &[&str], reason: impl Into<String>) -> InvalidPlugins {
    InvalidPlugins {
        path: path.iter().map(|s| (*s).to_owned()).collect(),
        reason: reason.into(),
    }
}

/// Checks names, limits and that every route names plugins of the right kind.
pub(super) fn validate(
    plugins: &Plugins,
    routes: &[RouteConfig],
    wasm: &WasmConfig,
) -> Result<(), InvalidPlugins> {
    if !(1..=MAX_INSTANCES).contains(&wasm.max_instances) {
        return Err(invalid(
            &["wasm", "max_instances"],
            format!(
                "must be between 1 and {MAX_INSTANCES} (the pooling allocator reserves address space for each)"
            ),
        ));
    }
    if !(1..=MAX_MEMORY_MIB).contains(&wasm.max_memory_mib) {
        return Err(invalid(
            &["wasm", "max_memory_mib"],
            format!(
                "must be between 1 and {MAX_MEMORY_MIB} (4 GiB, all a 32-bit WebAssembly memory can address)"
            ),
        ));
    }
    if !(1..=MAX_CACHE_MIB).contains(&wasm.cache_max_mib) {
        return Err(invalid(
            &["wasm", "cache_max_mib"],
            format!("must be between 1 and {MAX_CACHE_MIB} (MiB)"),
        ));
    }
    if !(1..=MAX_CACHE_MIB).contains(&wasm.function_cache_max_mib) {
        return Err(invalid(
            &["wasm", "function_cache_max_mib"],
            format!("must be between 1 and {MAX_CACHE_MIB} (MiB)"),
        ));
    }
    let mut auth_plugins = plugins.iter().filter(|(_, p)| p.kind == PluginKind::Auth);
    if let (Some(_), Some((second, _))) = (auth_plugins.next(), auth_plugins.next()) {
        return Err(invalid(
            &["plugins", second, "kind"],
            "is a second plugin of kind `auth`; at most one guards `/ws`",
        ));
    }
    for (name, plugin) in plugins {
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(invalid(
                &["plugins", name],
                "is not a plugin name: 1-64 letters, digits, `_` or `-`",
            ));
        }
        let memory = plugin.limits.memory_mib;
        if memory == 0 || memory > wasm.max_memory_mib {
            return Err(invalid(
                &["plugins", name, "limits"],
                format!(
                    "memory_mib must be between 1 and [wasm] max_memory_mib ({})",
                    wasm.max_memory_mib
                ),
            ));
        }
        if !(1..=60_000).contains(&plugin.limits.time_ms) {
            return Err(invalid(
                &["plugins", name, "limits"],
                "time_ms must be between 1 and 60000",
            ));
        }
        if let Some(record) = &plugin.record
            && !(1..=MAX_RECORD_MIB).contains(&record.max_mib)
        {
            return Err(invalid(
                &["plugins", name, "record"],
                format!("max_mib must be between 1 and {MAX_RECORD_MIB}"),
            ));
        }
        match (plugin.kind, plugin.on_error) {
            (PluginKind::Auth, OnError::Allow) => {
                return Err(invalid(
                    &["plugins", name, "on_error"],
                    "cannot be `allow` for an auth plugin: a failed auth call always refuses the connection",
                ));
            }
            (PluginKind::Route, OnError::Allow) => {
                return Err(invalid(
                    &["plugins", name, "on_error"],
                    "cannot be `allow` for a route plugin: a client able to make its calls fail \
                     (load, large payloads) would pass the access check; a failed route call refuses the request",
                ));
            }
            _ => {}
        }
    }
    for route in routes {
        let expect = |name: &str, kind: PluginKind, key: &str| match plugins.get(name) {
            Some(plugin) if plugin.kind == kind => Ok(()),
            Some(plugin) => Err(invalid(
                &["routes"],
                format!(
                    "`{key}` names `{name}`, a plugin of kind `{}`, where kind `{}` is needed",
                    plugin.kind.as_str(),
                    kind.as_str()
                ),
            )),
            None => Err(invalid(
                &["routes"],
                format!("`{key}` names `{name}`, which is not a [plugins.{name}] entry"),
            )),
        };
        if let Some(route_plugin) = &route.route {
            expect(route_plugin, PluginKind::Route, "route")?;
        }
        for transform in &route.inbound {
            expect(transform, PluginKind::Transform, "inbound")?;
        }
        if let Some(history) = &route.history {
            history
                .validate()
                .map_err(|reason| invalid(&["routes"], reason))?;
        }
        if route.join_leave && !route.presence {
            return Err(invalid(
                &["routes"],
                "`join_leave = true` needs `presence = true` on the same route",
            ));
        }
        if !route.outbound.is_empty() {
            return Err(invalid(
                &["routes"],
                "`outbound` (per-recipient transforms) is not offered yet; use `inbound`",
            ));
        }
    }
    Ok(())
}
