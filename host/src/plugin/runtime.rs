//! The one wasmtime `Engine` of the process, with its linker, epoch ticker and
//! artifact cache: everything plugins share.
//!
//! Owns how components are compiled and what they may import; it never calls
//! a plugin (that is `instance`) and never decides what a call means (hooks).

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings;
use super::cache::{self, ContentHash};
use super::store::State;
use crate::config::WasmConfig;

/// How often the epoch advances: the granularity of the per-call time limit
/// and of the yields that keep a long call from blocking a worker thread.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// See the module docs.
pub struct Runtime {
    engine: Engine,
    linker: Linker<State>,
    cache: Option<wasmtime::Cache>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("cache", &self.cache.as_ref().map(|c| c.directory()))
            .finish_non_exhaustive()
    }
}

/// Why a component could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// A core module where a component is needed.
    #[error(
        "is a core WebAssembly module, not a component: build it for `wasm32-wasip2`, or wrap it with `wasm-tools component new`"
    )]
    CoreModule,
    /// Its import list cannot be read: not a component, or truncated.
    #[error("is not a valid WebAssembly component: {0}")]
    Unreadable(#[from] super::capabilities::ReadError),
    /// Not WebAssembly, truncated, or rejected by the compiler.
    #[error("is not a valid WebAssembly component: {0:#}")]
    Invalid(wasmtime::Error),
}

impl Runtime {
    /// Builds the engine for `config` and starts its epoch ticker.
    pub fn new(config: &WasmConfig) -> anyhow::Result<Arc<Self>> {
        let mut pool = PoolingAllocationConfig::new();
        let instances = config.max_instances;
        pool.total_component_instances(instances)
            .total_core_instances(instances.saturating_mul(4))
            .total_memories(instances)
            .total_tables(instances.saturating_mul(4))
            .total_stacks(instances)
            .max_memory_size(usize::try_from(config.max_memory_mib)? << 20)
            // Keep a few idle slots warm so new instances reuse their pages.
            .max_unused_warm_slots(instances.min(64));
        let cache = if config.cache {
            open_cache(config)
        } else {
            None
        };
        let mut wasm = Config::new();
        wasm.epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            // Cranelift compiles a component's functions on all cores (the
            // default; stated because big JS/Python components rely on it).
            .parallel_compilation(true)
            .cache(cache.clone());
        let engine = Engine::new(&wasm).map_err(anyhow::Error::from)?;
        spawn_epoch_ticker(&engine)?;

        let mut linker = Linker::new(&engine);
        // Full WASI is linked here; each plugin links through a copy in which
        // every ungranted WASI interface it imports is shadowed by refusing
        // stubs (`stubs`), and its context is empty: no env, args, files or
        // network, stdin empty, stdout/stderr discarded.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(anyhow::Error::from)?;
        bindings::auth::Auth::add_to_linker::<State, HasSelf<State>>(&mut linker, |state| state)
            .map_err(anyhow::Error::from)?;

        Ok(Arc::new(Self {
            engine,
            linker,
            cache,
        }))
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The linker every plugin is instantiated through.
    pub fn linker(&self) -> &Linker<State> {
        &self.linker
    }

    /// Compiles `bytes`, or loads its cached artifact (wasmtime's cache,
    /// keyed by content and compiler settings). CPU-heavy on a miss: call it
    /// from a blocking thread. `_hash` labels the version; the cache hashes
    /// the bytes itself.
    pub fn compile(&self, bytes: &[u8], _hash: &ContentHash) -> Result<Component, CompileError> {
        if bytes.get(..8) == Some(b"\0asm\x01\0\0\0") {
            return Err(CompileError::CoreModule);
        }
        Component::from_binary(&self.engine, bytes).map_err(CompileError::Invalid)
    }

    /// The artifact cache's hits and misses since start, if it is on.
    pub fn cache_counts(&self) -> Option<(usize, usize)> {
        self.cache
            .as_ref()
            .map(|cache| (cache.cache_hits(), cache.cache_misses()))
    }
}

fn open_cache(config: &WasmConfig) -> Option<wasmtime::Cache> {
    let Some(dir) = config.cache_dir.clone().or_else(cache::default_dir) else {
        tracing::warn!(
            "no cache directory (set [wasm] cache_dir or HOME): plugins compile at every start"
        );
        return None;
    };
    match cache::open(&dir, u64::from(config.cache_max_mib) << 20) {
        Ok(cache) => Some(cache),
        Err(error) => {
            tracing::warn!(dir = %dir.display(), error = %format!("{error:#}"), "cannot open the plugin cache: plugins compile at every start");
            None
        }
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until the engine is gone.
fn spawn_epoch_ticker(engine: &Engine) -> std::io::Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })?;
    Ok(())
}
