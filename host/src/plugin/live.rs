//! The plugins a running gateway uses now: the runtime and the current
//! [`PluginSet`], behind one atomic pointer so that a swap is one step and a
//! call in flight keeps the set it started with. Also keeps the set before
//! the last swap (for rollback) and the load failures of plugins that are
//! not running, for `GET /v1/plugins`.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use super::load::LoadError;
use super::runtime::Runtime;
use super::set::PluginSet;
use crate::config::{Config, WasmConfig};
use crate::metrics::PluginMetrics;

/// See the module docs.
#[derive(Debug)]
pub struct LivePlugins {
    current: ArcSwap<PluginSet>,
    previous: Mutex<Option<Arc<PluginSet>>>,
    /// Started with the first plugin, so a gateway without plugins pays
    /// nothing; a reload that adds the first plugin starts it then.
    runtime: Mutex<Option<Arc<Runtime>>>,
    /// The last load error of each plugin that failed to load and has no
    /// running version (a running one records it in its own report).
    failed: Mutex<BTreeMap<String, String>>,
    /// Why the last reload refused the manifest itself (unreadable,
    /// invalid, or one that would drop the auth plugin); `None` once a
    /// reload succeeds.
    manifest_error: Mutex<Option<String>>,
}

/// Why the plugins of a manifest could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The wasmtime engine could not be built.
    #[error("cannot start the WebAssembly runtime: {0:#}")]
    Runtime(anyhow::Error),
    /// One or more plugins failed to load.
    #[error("{}", list(.0))]
    Load(Vec<LoadError>),
}

fn list(errors: &[LoadError]) -> String {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

impl LivePlugins {
    /// No plugins: every client is allowed, channels go where they are named.
    pub fn none() -> Self {
        Self::with(PluginSet::default(), None)
    }

    fn with(set: PluginSet, runtime: Option<Arc<Runtime>>) -> Self {
        Self {
            current: ArcSwap::from_pointee(set),
            previous: Mutex::new(None),
            runtime: Mutex::new(runtime),
            failed: Mutex::new(BTreeMap::new()),
            manifest_error: Mutex::new(None),
        }
    }

    /// Starts the runtime (only if the manifest declares plugins) and loads them.
    pub async fn start(config: &Config, metrics: &PluginMetrics) -> Result<Self, StartError> {
        if config.plugins.is_empty() {
            // Routes without plugins still matter (their `history`).
            let set = PluginSet::assemble(BTreeMap::new(), &config.routes);
            return Ok(Self::with(set, None));
        }
        let runtime = Runtime::new(&config.wasm).map_err(StartError::Runtime)?;
        let set = PluginSet::load(config, &runtime, metrics)
            .await
            .map_err(StartError::Load)?;
        Ok(Self::with(set, Some(runtime)))
    }

    /// The current set; hold it for the whole of one request so that every
    /// decision of that request comes from one generation.
    pub fn current(&self) -> Arc<PluginSet> {
        self.current.load_full()
    }

    /// The function cache's counters since start (all compiles together),
    /// if a runtime runs and its function cache is on.
    pub fn function_counts(&self) -> Option<super::cache::functions::FunctionCounts> {
        self.runtime.lock().as_ref()?.function_counts()
    }

    /// The artifact cache's (hits, misses) since start, if a runtime runs
    /// and the cache is on: one per component loaded or compiled.
    pub fn artifact_counts(&self) -> Option<(usize, usize)> {
        self.runtime.lock().as_ref()?.cache_counts()
    }

    /// The runtime, started now with `config` if no plugin needed it before.
    pub(super) fn runtime(&self, config: &WasmConfig) -> anyhow::Result<Arc<Runtime>> {
        let mut runtime = self.runtime.lock();
        if let Some(running) = runtime.as_ref() {
            return Ok(Arc::clone(running));
        }
        let started = Runtime::new(config)?;
        *runtime = Some(Arc::clone(&started));
        Ok(started)
    }

    /// Makes `set` current in one step; the old one is kept for rollback.
    pub(super) fn swap(&self, set: Arc<PluginSet>) {
        let old = self.current.swap(set);
        *self.previous.lock() = Some(old);
    }

    /// The set a rollback would swap back in, if any.
    pub(super) fn previous(&self) -> Option<Arc<PluginSet>> {
        self.previous.lock().clone()
    }

    /// Swaps the set before the last swap back in (and keeps the one it
    /// replaces, so a second rollback undoes the first). `None` when there
    /// was no swap yet.
    pub(super) fn roll_back(&self) -> Option<(Arc<PluginSet>, Arc<PluginSet>)> {
        let mut previous = self.previous.lock();
        let back = previous.take()?;
        let replaced = self.current.swap(Arc::clone(&back));
        *previous = Some(Arc::clone(&replaced));
        Some((replaced, back))
    }

    /// Records that `name` failed to load and has no running version.
    pub(super) fn record_failure(&self, name: &str, error: String) {
        self.failed.lock().insert(name.to_owned(), error);
    }

    /// Records why the last reload refused the manifest itself.
    pub(super) fn record_manifest_failure(&self, error: String) {
        *self.manifest_error.lock() = Some(error);
    }

    /// Forgets past load failures: every plugin of the manifest now runs.
    pub(super) fn clear_failures(&self) {
        self.failed.lock().clear();
        *self.manifest_error.lock() = None;
    }

    /// Why the last reload refused the manifest itself, until one succeeds:
    /// `last_error` at the top of `GET /v1/plugins`.
    pub fn manifest_error(&self) -> Option<String> {
        self.manifest_error.lock().clone()
    }

    /// What `GET /v1/plugins` shows: every plugin in use, then each plugin
    /// the manifest names that failed to load and has no running version.
    pub fn report(&self) -> Vec<serde_json::Value> {
        let set = self.current();
        let mut plugins: Vec<serde_json::Value> = set.plugins().map(|p| p.report()).collect();
        for (name, error) in self.failed.lock().iter() {
            plugins.push(serde_json::json!({
                "name": name,
                "loaded": false,
                "last_error": error,
            }));
        }
        plugins
    }
}
