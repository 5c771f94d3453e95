//! The plugins a running gateway uses now: the runtime and the current
//! [`PluginSet`], behind one atomic pointer so that a swap is one step and a
//! call in flight keeps the set it started with.

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::load::LoadError;
use super::runtime::Runtime;
use super::set::PluginSet;
use crate::config::Config;
use crate::metrics::PluginMetrics;

/// See the module docs.
#[derive(Debug)]
pub struct LivePlugins {
    current: ArcSwap<PluginSet>,
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
        Self {
            current: ArcSwap::from_pointee(PluginSet::default()),
        }
    }

    /// Starts the runtime (only if the manifest declares plugins) and loads them.
    pub async fn start(config: &Config, metrics: &PluginMetrics) -> Result<Self, StartError> {
        if config.plugins.is_empty() {
            return Ok(Self::none());
        }
        let runtime = Runtime::new(&config.wasm).map_err(StartError::Runtime)?;
        let set = PluginSet::load(config, &runtime, metrics)
            .await
            .map_err(StartError::Load)?;
        Ok(Self {
            current: ArcSwap::from_pointee(set),
        })
    }

    /// The current set; hold it for the whole of one request so that every
    /// decision of that request comes from one generation.
    pub fn current(&self) -> Arc<PluginSet> {
        self.current.load_full()
    }
}
