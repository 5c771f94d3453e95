//! The manifest (`ferrygate.toml`): what it may contain, how it is read and
//! how its mistakes are reported.
//!
//! Owns parsing, `${ENV}` expansion and validation. Every key has a documented
//! default; an unknown key is an error that names the file, line and key, never
//! a silent fallback. Nothing here opens sockets or touches runtime state: the
//! result is a plain [`Config`] value the rest of the gateway reads.

mod broker;
mod env;
mod error;
mod history;
mod plugins;
pub mod redact;
mod server;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use broker::{BrokerConfig, BrokerKind, OnUnreachable};
pub use env::{Environment, ProcessEnv};
pub use error::{ConfigError, Location};
pub use history::{HistoryConfig, MAX_HISTORY_SIZE, MAX_HISTORY_TTL_S};
pub use plugins::{
    Grant, OnError, PluginConfig, PluginKind, PluginLimits, Plugins, RouteConfig, WasmConfig,
};
pub use redact::Redactor;
pub use server::{RateLimit, Secret, ServerConfig};

/// The whole manifest.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listener, API key and per-connection limits.
    #[serde(default)]
    pub server: ServerConfig,
    /// Which broker carries messages between instances.
    #[serde(default)]
    pub broker: BrokerConfig,
    /// Every plugin, by name.
    #[serde(default)]
    pub plugins: Plugins,
    /// Channel patterns bound to plugins; the first match wins.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// The runtime that hosts plugins.
    #[serde(default)]
    pub wasm: WasmConfig,
    /// The manifest's folder: plugin paths are relative to it. Empty (the
    /// current directory) for a manifest that was not read from a file.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// A manifest read from disk, with the path it came from.
#[derive(Debug)]
pub struct LoadedConfig {
    /// The parsed, validated configuration.
    pub config: Config,
    /// The manifest file; relative paths inside it are relative to its folder.
    pub path: PathBuf,
}

impl Config {
    /// Reads, expands and validates the manifest at `path`.
    pub fn load(path: &Path, env: &dyn Environment) -> Result<LoadedConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Self::parse(&text, env).map_err(|e| e.in_file(path))?;
        config.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        for plugin in config.plugins.values_mut() {
            if let Some(record) = &mut plugin.record {
                record.path = config.base_dir.join(&record.path);
            }
        }
        Ok(LoadedConfig {
            config,
            path: path.to_owned(),
        })
    }

    /// Parses and validates manifest text; errors carry line and key but no file.
    pub fn parse(text: &str, env: &dyn Environment) -> Result<Self, ConfigError> {
        let mut config: Config =
            toml::from_str(text).map_err(|e| ConfigError::from_toml(text, &e))?;
        config.expand_env(text, env)?;
        config.validate(text)?;
        Ok(config)
    }

    /// Replaces `${VAR}` in the values that may hold secrets.
    fn expand_env(&mut self, text: &str, env: &dyn Environment) -> Result<(), ConfigError> {
        if let Some(api_key) = &mut self.server.api_key {
            let value = env::expand(api_key.expose(), env).map_err(|e| ConfigError::Invalid {
                key: "server.api_key".to_owned(),
                reason: e.to_string(),
                location: Location::of_key(text, &["server", "api_key"]),
                path: None,
            })?;
            api_key.replace(value);
        }
        for (name, plugin) in &mut self.plugins {
            for (key, value) in &mut plugin.config {
                expand_json(value, env, &mut plugin.secrets).map_err(|e| ConfigError::Invalid {
                    key: format!("plugins.{name}.config.{key}"),
                    reason: e.to_string(),
                    location: Location::of_key(text, &["plugins", name, "config", key]),
                    path: None,
                })?;
            }
            plugin.secrets.add_secret_keys(&plugin.config);
        }
        self.broker
            .expand_env(env)
            .map_err(|(key, reason)| invalid_broker_key(text, key, reason))
    }

    /// Where the component of `plugin` lives.
    pub fn plugin_path(&self, plugin: &PluginConfig) -> PathBuf {
        self.base_dir.join(&plugin.path)
    }

    fn validate(&self, text: &str) -> Result<(), ConfigError> {
        self.broker
            .validate()
            .map_err(|invalid| invalid_broker_key(text, invalid.key, invalid.reason))?;
        self.server.validate().map_err(|invalid| {
            let location = Location::of_key(text, &["server", invalid.key]);
            ConfigError::Invalid {
                key: format!("server.{}", invalid.key),
                reason: invalid.reason,
                location,
                path: None,
            }
        })?;
        let kept_here = match self.broker.kind {
            BrokerKind::Memory => true,
            BrokerKind::Redis => !self.broker.cluster,
            BrokerKind::Nats => true,
        };
        if !kept_here && self.routes.iter().any(|r| r.history.is_some()) {
            return Err(ConfigError::Invalid {
                key: "routes".to_owned(),
                reason: "`history` is kept by the `memory` broker, NATS (JetStream) and a \
                         single Redis server; Redis Cluster history is not implemented yet"
                    .to_owned(),
                location: Location::of_key(text, &["routes"]),
                path: None,
            });
        }
        plugins::validate(&self.plugins, &self.routes, &self.wasm).map_err(|invalid| {
            let path: Vec<&str> = invalid.path.iter().map(String::as_str).collect();
            ConfigError::Invalid {
                key: invalid.path.join("."),
                reason: invalid.reason,
                location: Location::of_key(text, &path),
                path: None,
            }
        })?;
        if !self.has_auth() && !self.server.allow_anonymous {
            return Err(ConfigError::Invalid {
                key: "server.allow_anonymous".to_owned(),
                reason: ANONYMOUS_REFUSED.to_owned(),
                location: Location::of_key(text, &["server", "allow_anonymous"])
                    .or_else(|| Location::of_key(text, &["server"])),
                path: None,
            });
        }
        Ok(())
    }

    /// Whether a plugin of kind `auth` guards `/ws`.
    pub fn has_auth(&self) -> bool {
        self.plugins.values().any(|p| p.kind == PluginKind::Auth)
    }
}

/// Why a manifest with neither an auth plugin nor `allow_anonymous = true`
/// is refused (SPEC 2: no silent open door).
const ANONYMOUS_REFUSED: &str = "is not `true` and no plugin of kind `auth` is declared: every client would connect unauthenticated. \
     Declare an auth plugin, or set `allow_anonymous = true` in [server] to admit anonymous clients on purpose";

fn invalid_broker_key(text: &str, key: &str, reason: String) -> ConfigError {
    ConfigError::Invalid {
        key: format!("broker.{key}"),
        reason,
        location: Location::of_key(text, &["broker", key]),
        path: None,
    }
}

/// Expands `${VAR}` in every string inside a plugin's `config` value; each
/// string that named a variable becomes one of the plugin's `secrets`.
fn expand_json(
    value: &mut serde_json::Value,
    env: &dyn Environment,
    secrets: &mut Redactor,
) -> Result<(), env::ExpandError> {
    match value {
        serde_json::Value::String(text) => {
            let expanded = env::expand(text, env)?;
            if text.contains("${") {
                secrets.add(&expanded);
            }
            *text = expanded;
        }
        serde_json::Value::Array(items) => {
            for item in items {
                expand_json(item, env, secrets)?;
            }
        }
        serde_json::Value::Object(map) => {
            for item in map.values_mut() {
                expand_json(item, env, secrets)?;
            }
        }
        serde_json::Value::Null | serde_json::Value::Bool(_) | serde_json::Value::Number(_) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests;
