//! Hot reload: read the manifest again, build a new [`PluginSet`] off the hot
//! path, and swap it in one step; or swap the previous set back (rollback).
//!
//! A plugin whose file (content hash) and manifest entry are unchanged is
//! reused as it runs, warm instances and counters included; only changed
//! ones are compiled (on a blocking thread, through the artifact cache) and
//! started. The new set is swapped in only when everything loaded: a reload
//! is all or nothing, so a broken file or manifest leaves the running set
//! untouched, and says why in the log, in `GET /v1/plugins` (`last_error`)
//! and in `/metrics`. One reload runs at a time; sessions never wait for one,
//! because they only ever load the current set's pointer.
//!
//! `[server]`, `[broker]` and `[wasm]` are not reloadable: a change to them is
//! logged as needing a restart and the running values stay. A reload never
//! widens access: a manifest without an auth plugin is refused unless the
//! gateway *started* with `[server] allow_anonymous = true` (a file that sets
//! it later is refused, not half-applied).

pub mod outcome;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

pub use outcome::Outcome;

use super::cache::ContentHash;
use super::instance::Plugin;
use super::live::LivePlugins;
use super::load::{self, LoadError, Problem};
use super::runtime::Runtime;
use super::set::PluginSet;
use crate::config::{Config, PluginConfig, ProcessEnv};
use crate::metrics::{PluginMetrics, ReloadOutcome};
use outcome::Failure;

/// The manifest sections a reload leaves as they were at start.
const RESTART_ONLY: [&str; 3] = ["server", "broker", "wasm"];

/// See the module docs.
#[derive(Debug)]
pub struct Reloader {
    manifest: Option<PathBuf>,
    /// The restart-only sections as the manifest had them at start.
    started_with: Option<toml::Table>,
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl Reloader {
    /// Reloads from `manifest`, the file the gateway started from; `None`
    /// for a gateway started without one, whose reloads fail saying so.
    pub fn new(manifest: Option<PathBuf>) -> Self {
        let started_with = manifest.as_deref().and_then(restart_only_sections);
        Self {
            manifest,
            started_with,
            one_at_a_time: tokio::sync::Mutex::new(()),
        }
    }

    /// The manifest file, if any.
    pub fn manifest(&self) -> Option<&Path> {
        self.manifest.as_deref()
    }

    /// Reads the manifest and every plugin it names, and swaps in the new set
    /// if anything changed and everything loaded. `running` is the manifest
    /// the gateway started with: its `[wasm]` starts the runtime if this
    /// reload adds the first plugin.
    pub async fn reload(
        &self,
        live: &LivePlugins,
        running: &Config,
        metrics: &PluginMetrics,
    ) -> Outcome {
        let _one = self.one_at_a_time.lock().await;
        let started = Instant::now();
        let mut outcome = Outcome::new("reload");
        match self.build(live, running, metrics, &mut outcome).await {
            Ok(Some(set)) => {
                for plugin in set.plugins() {
                    *plugin.stats.reload_error.lock() = None;
                }
                live.swap(set);
                live.clear_failures();
                outcome.swapped = true;
                outcome.ok = true;
            }
            Ok(None) => {
                // The files are back to what runs: earlier failures are over.
                for plugin in live.current().plugins() {
                    *plugin.stats.reload_error.lock() = None;
                }
                live.clear_failures();
                outcome.ok = true;
            }
            Err(failures) => {
                if let Some(manifest) = failures.iter().find(|f| f.plugin.is_none()) {
                    live.record_manifest_failure(manifest.error.clone());
                }
                outcome.failed = failures;
            }
        }
        outcome.took_ms = started.elapsed().as_secs_f64() * 1e3;
        if outcome.ok {
            metrics.reloaded(ReloadOutcome::ok);
            if outcome.swapped {
                tracing::info!(
                    took_ms = outcome.took_ms,
                    "reload: swapped in: {}",
                    outcome.summary()
                );
            } else {
                tracing::info!("reload: nothing changed");
            }
        } else {
            metrics.reloaded(ReloadOutcome::failed);
            for failure in &outcome.failed {
                tracing::warn!(
                    plugin = failure.plugin.as_deref().unwrap_or("-"),
                    "reload failed, the running plugins stay: {}",
                    failure.error
                );
            }
        }
        outcome
    }

    /// Swaps the set before the last swap back in.
    pub async fn roll_back(&self, live: &LivePlugins, metrics: &PluginMetrics) -> Outcome {
        let _one = self.one_at_a_time.lock().await;
        let started = Instant::now();
        let mut outcome = Outcome::new("rollback");
        match live.roll_back() {
            Some((replaced, back)) => {
                outcome.compare(&replaced, &back);
                outcome.ok = true;
                outcome.swapped = true;
                metrics.reloaded(ReloadOutcome::rollback);
                tracing::info!(
                    "rollback: swapped in the previous set: {}",
                    outcome.summary()
                );
            }
            None => outcome.failed.push(Failure {
                plugin: None,
                error: "nothing to roll back to: no reload has swapped a set in yet".to_owned(),
            }),
        }
        outcome.took_ms = started.elapsed().as_secs_f64() * 1e3;
        outcome
    }

    /// The new set, `None` when it would equal the current one, or every
    /// failure (each one also recorded where `GET /v1/plugins` shows it).
    async fn build(
        &self,
        live: &LivePlugins,
        running: &Config,
        metrics: &PluginMetrics,
        outcome: &mut Outcome,
    ) -> Result<Option<Arc<PluginSet>>, Vec<Failure>> {
        let manifest_failure = |error: String| {
            vec![Failure {
                plugin: None,
                error,
            }]
        };
        let Some(path) = self.manifest.clone() else {
            return Err(manifest_failure(
                "the gateway was started without --config: there is no manifest to reload"
                    .to_owned(),
            ));
        };
        let reading = path.clone();
        let config = tokio::task::spawn_blocking(move || Config::load(&reading, &ProcessEnv))
            .await
            .map_err(|e| manifest_failure(format!("the manifest task failed: {e}")))?
            .map_err(|e| manifest_failure(e.to_string()))?
            .config;
        outcome.restart_needed = self.restart_needed(&path);
        if !config.has_auth() && !running.server.allow_anonymous {
            return Err(manifest_failure(format!(
                "{}: refused: it declares no auth plugin, and this gateway started requiring one; \
                 `[server] allow_anonymous` applies only at start, so a reload never opens the gateway (restart to do so)",
                path.display()
            )));
        }
        let current = live.current();
        let runtime = if config.plugins.is_empty() {
            None
        } else {
            Some(live.runtime(&running.wasm).map_err(|e| {
                manifest_failure(format!("cannot start the WebAssembly runtime: {e:#}"))
            })?)
        };
        let mut plugins = BTreeMap::new();
        let mut errors = Vec::new();
        if let Some(runtime) = &runtime {
            for (name, entry) in &config.plugins {
                let file = config.plugin_path(entry);
                match prepare(runtime, metrics, &current, name, entry, &file).await {
                    Ok(plugin) => {
                        plugins.insert(name.clone(), plugin);
                    }
                    Err(error) => errors.push(error),
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors
                .into_iter()
                .map(|error| record(live, &current, metrics, &error))
                .collect());
        }
        let set = PluginSet::assemble(plugins, &config.routes);
        outcome.compare(&current, &set);
        Ok(outcome.changed().then(|| Arc::new(set)))
    }

    /// The restart-only sections that differ from what the gateway started
    /// with, each logged once per reload.
    fn restart_needed(&self, path: &Path) -> Vec<String> {
        let (Some(before), Some(now)) = (&self.started_with, restart_only_sections(path)) else {
            return Vec::new();
        };
        let changed: Vec<String> = RESTART_ONLY
            .iter()
            .filter(|section| before.get(**section) != now.get(**section))
            .map(|section| format!("[{section}]"))
            .collect();
        for section in &changed {
            tracing::warn!(manifest = %path.display(), "{section} changed: this needs a restart; the gateway keeps running with the values it started with");
        }
        changed
    }
}

/// The running plugin `name` if its file and entry are unchanged, else the
/// plugin built from the file as it is now.
async fn prepare(
    runtime: &Arc<Runtime>,
    metrics: &PluginMetrics,
    current: &PluginSet,
    name: &str,
    entry: &PluginConfig,
    file: &Path,
) -> Result<Arc<Plugin>, LoadError> {
    let bytes = tokio::fs::read(file).await.map_err(|e| LoadError {
        name: name.to_owned(),
        path: file.to_owned(),
        problem: Problem::Read(e),
    })?;
    let hash = ContentHash::of(&bytes);
    if let Some(running) = current.get(name)
        && running.hash == hash
        && running.settings == *entry
    {
        return Ok(Arc::clone(running));
    }
    load::build(runtime, metrics, name, entry, file, bytes, hash).await
}

/// Counts `error` and shows it in `GET /v1/plugins`: on the running version
/// of the plugin if there is one, else as a plugin that is not loaded.
fn record(
    live: &LivePlugins,
    current: &PluginSet,
    metrics: &PluginMetrics,
    error: &LoadError,
) -> Failure {
    metrics.reload_failed(&error.name);
    let text = error.to_string();
    match current.get(&error.name) {
        Some(running) => {
            *running.stats.reload_error.lock() = Some(format!(
                "reload failed, version {} keeps running: {text}",
                running.version()
            ));
        }
        None => live.record_failure(&error.name, text.clone()),
    }
    Failure {
        plugin: Some(error.name.clone()),
        error: text,
    }
}

/// `[server]`, `[broker]` and `[wasm]` of the manifest at `path` as written
/// (before `${VAR}` expansion); `None` when it cannot be read or parsed.
fn restart_only_sections(path: &Path) -> Option<toml::Table> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut table: toml::Table = toml::from_str(&text).ok()?;
    table.retain(|key, _| RESTART_ONLY.contains(&key));
    Some(table)
}
