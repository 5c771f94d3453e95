//! The one wasmtime `Engine` of the process, with its linker, epoch ticker,
//! artifact cache and function cache: everything plugins share.
//!
//! Owns how components are compiled and what they may import; it never calls
//! a plugin (that is `instance`) and never decides what a call means (hooks).

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings;
use super::cache::functions::{FunctionCounts, FunctionStore};
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
    functions: Option<Arc<FunctionStore>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("cache", &self.cache.as_ref().map(|c| c.directory()))
            .finish_non_exhaustive()
    }
}

/// A compiled component, with where its functions came from (both 0 for a
/// cached artifact, or with the function cache off).
pub struct Compiled {
    /// The component.
    pub component: Component,
    /// Functions taken from the function cache.
    pub cached_functions: u64,
    /// Functions Cranelift compiled.
    pub compiled_functions: u64,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled")
            .field("cached_functions", &self.cached_functions)
            .field("compiled_functions", &self.compiled_functions)
            .finish_non_exhaustive()
    }
}

/// Why a component could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// Not WebAssembly at all: an empty file, or one without the `\0asm`
    /// magic (a manifest, a source file, a build tool's half-written output).
    #[error("is not WebAssembly ({0}): `path` must name the built `.wasm` component")]
    NotWasm(&'static str),
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

impl CompileError {
    /// Refuses, before any parsing, what is not a component: an empty file,
    /// anything without the WebAssembly magic, a core module.
    pub fn check_magic(bytes: &[u8]) -> Result<(), Self> {
        match bytes {
            [] => Err(Self::NotWasm("the file is empty")),
            [b'\0', b'a', b's', b'm', b'\x01', 0, 0, 0, ..] => Err(Self::CoreModule),
            [b'\0', b'a', b's', b'm', ..] => Ok(()),
            _ => Err(Self::NotWasm("it does not start with the `\\0asm` magic")),
        }
    }
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
        let (cache, functions) = if config.cache {
            open_caches(config)
        } else {
            (None, None)
        };
        let mut wasm = Config::new();
        wasm.epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            // Cranelift compiles a component's functions on all cores (the
            // default; stated because big JS/Python components rely on it).
            .parallel_compilation(true)
            .cache(cache.clone());
        if let Some(store) = &functions {
            // Cranelift looks each function up by a hash of its IR before
            // compiling it (see `cache::functions`).
            let store: Arc<dyn wasmtime::CacheStore> = store.clone();
            wasm.enable_incremental_compilation(store)
                .map_err(anyhow::Error::from)?;
        }
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
            functions,
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
    /// keyed by content and compiler settings); a compile takes the
    /// functions it finds in the function cache. CPU-heavy on a miss: call
    /// it from a blocking thread. `hash` labels the version in the log; the
    /// caches hash what they key by themselves.
    pub fn compile(&self, bytes: &[u8], hash: &ContentHash) -> Result<Compiled, CompileError> {
        CompileError::check_magic(bytes)?;
        let before = self.function_counts().unwrap_or_default();
        let started = std::time::Instant::now();
        let component =
            Component::from_binary(&self.engine, bytes).map_err(CompileError::Invalid)?;
        let mut compiled = Compiled {
            component,
            cached_functions: 0,
            compiled_functions: 0,
        };
        if let Some(store) = &self.functions {
            // Other compiles running at the same time count here too: the
            // figures are exact for the process, approximate per compile.
            let after = store.counts();
            compiled.cached_functions = after.hits.saturating_sub(before.hits);
            compiled.compiled_functions = after.misses.saturating_sub(before.misses);
            let (hits, total) = (
                compiled.cached_functions,
                compiled.cached_functions + compiled.compiled_functions,
            );
            if total > 0 {
                let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                tracing::info!(version = %hash.short(), ms, "compiled, reusing {hits} of {total} functions from the function cache");
            }
        }
        Ok(compiled)
    }

    /// The function cache's counters since start (all compiles of the
    /// process together), if it is on.
    pub fn function_counts(&self) -> Option<FunctionCounts> {
        self.functions.as_ref().map(|store| store.counts())
    }

    /// The artifact cache's hits and misses since start, if it is on.
    pub fn cache_counts(&self) -> Option<(usize, usize)> {
        self.cache
            .as_ref()
            .map(|cache| (cache.cache_hits(), cache.cache_misses()))
    }
}

fn open_caches(config: &WasmConfig) -> (Option<wasmtime::Cache>, Option<Arc<FunctionStore>>) {
    let Some(dir) = config.cache_dir.clone().or_else(cache::default_dir) else {
        tracing::warn!(
            "no cache directory (set [wasm] cache_dir or HOME): plugins compile at every start"
        );
        return (None, None);
    };
    // Both folders live in `dir`: one that others may write is refused
    // whole (its subfolders could be swapped under the gateway).
    if let Err(error) = cache::open_private_dir(&dir) {
        tracing::warn!(dir = %dir.display(), %error, "cannot use the plugin cache directory: plugins compile at every start, new versions compile every function");
        return (None, None);
    }
    let artifacts = match cache::open(&dir, u64::from(config.cache_max_mib) << 20) {
        Ok(cache) => Some(cache),
        Err(error) => {
            tracing::warn!(dir = %dir.display(), error = %format!("{error:#}"), "cannot open the plugin cache: plugins compile at every start");
            None
        }
    };
    let functions_dir = dir.join("functions");
    let functions = match FunctionStore::open(
        &functions_dir,
        u64::from(config.function_cache_max_mib) << 20,
    ) {
        Ok(store) => Some(Arc::new(store)),
        Err(error) => {
            tracing::warn!(dir = %functions_dir.display(), %error, "cannot open the function cache: new plugin versions compile every function");
            None
        }
    };
    (artifacts, functions)
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
