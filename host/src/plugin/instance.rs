//! One loaded plugin version: its pre-linked component, its warm instances,
//! and the call discipline every hook goes through.
//!
//! A call checks out a warm instance (or builds one: instantiate, then
//! `lifecycle.init`), starts its clock, runs, and returns the instance to the
//! pool only if the call succeeded. A trap, a deadline or the memory cap
//! poisons the store, so the instance is thrown away; the next call gets a
//! fresh one. Failures are counted by cause and logged with the plugin's name.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use wasmtime::Store;

use super::bindings::{auth, route, transform};
use super::cache::ContentHash;
use super::capabilities::{Import, Verdict};
use super::runtime::Runtime;
use super::store::{State, Tag};
use super::stubs::Refused;
use crate::config::{Grant, OnError, PluginConfig, PluginKind, PluginLimits};
use crate::metrics::{Cause, PluginCounters};

/// Time a new instance gets for instantiation and `init` (config parsing),
/// which may be slower than a steady-state call.
const INIT_BUDGET: Duration = Duration::from_secs(1);

/// The pre-linked component, typed by world.
pub(super) enum Pre {
    Auth(auth::AuthPre<State>),
    Route(route::RoutePre<State>),
    Transform(transform::TransformPre<State>),
}

/// The exports of one live instance.
pub(super) enum Exports {
    Auth(auth::Auth),
    Route(route::Route),
    Transform(transform::Transform),
}

pub(super) struct Warm {
    store: Store<State>,
    exports: Exports,
}

/// Why a call produced no usable answer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("plugin `{plugin}` failed ({cause:?}): {detail}")]
pub struct CallError {
    /// The plugin's manifest name.
    pub plugin: String,
    /// The metric cause.
    pub cause: Cause,
    /// What happened, for logs and the error reply.
    pub detail: String,
}

impl CallError {
    /// A short account for the client, without internals: the cause only.
    pub fn cause_text(&self) -> &'static str {
        match self.cause {
            Cause::trap => "the plugin trapped",
            Cause::deadline => "the plugin ran out of time",
            Cause::memory => "the plugin ran out of memory",
            Cause::bad_output => "the plugin gave an unusable answer",
            Cause::unavailable => "the plugin is unavailable",
            Cause::refused => "the plugin called an interface it is not granted",
        }
    }
}

/// Counters shown in `/v1/plugins`.
#[derive(Debug, Default)]
pub struct Stats {
    last_error: Mutex<Option<String>>,
    /// Why the last reload could not replace this version, until a reload
    /// succeeds; shown as `last_error` ahead of call errors.
    pub(super) reload_error: Mutex<Option<String>>,
}

/// See the module docs.
pub struct Plugin {
    pub(super) name: String,
    pub(super) kind: PluginKind,
    pub(super) hash: ContentHash,
    pub(super) loaded_at: SystemTime,
    pub(super) on_error: OnError,
    pub(super) grants: Vec<Grant>,
    /// The manifest entry it was loaded from: a reload reuses this plugin
    /// only when the entry and the file's hash are both unchanged.
    pub(super) settings: PluginConfig,
    limits: PluginLimits,
    tag: Arc<Tag>,
    pre: Pre,
    imports: Vec<Import>,
    idle: Mutex<Vec<Warm>>,
    max_idle: usize,
    runtime: Arc<Runtime>,
    pub(super) counters: PluginCounters,
    pub(super) stats: Stats,
    pub(super) recorder: Option<super::recording::Recorder>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("version", &self.tag.version)
            .finish_non_exhaustive()
    }
}

/// What [`Plugin::new`] needs.
pub(super) struct Parts {
    pub name: String,
    pub kind: PluginKind,
    pub hash: ContentHash,
    pub limits: PluginLimits,
    pub on_error: OnError,
    pub grants: Vec<Grant>,
    pub settings: PluginConfig,
    pub tag: Arc<Tag>,
    pub pre: Pre,
    pub imports: Vec<Import>,
    pub counters: PluginCounters,
    pub recorder: Option<super::recording::Recorder>,
}

impl Plugin {
    pub(super) fn new(runtime: Arc<Runtime>, parts: Parts) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Self {
            name: parts.name,
            kind: parts.kind,
            hash: parts.hash,
            loaded_at: SystemTime::now(),
            on_error: parts.on_error,
            grants: parts.grants,
            settings: parts.settings,
            limits: parts.limits,
            tag: parts.tag,
            pre: parts.pre,
            imports: parts.imports,
            idle: Mutex::new(Vec::new()),
            max_idle: (2 * cores).max(4),
            runtime,
            counters: parts.counters,
            stats: Stats::default(),
            recorder: parts.recorder,
        }
    }

    /// The manifest name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kind.
    pub fn kind(&self) -> PluginKind {
        self.kind
    }

    /// The version label.
    pub fn version(&self) -> &str {
        &self.tag.version
    }

    /// Each import of the component with its verdict (`ferrygate check`).
    pub fn imports(&self) -> &[Import] {
        &self.imports
    }

    /// What `GET /v1/plugins` shows about this plugin.
    pub fn report(&self) -> serde_json::Value {
        let loaded_at = self
            .loaded_at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let grants: Vec<String> = self
            .grants
            .iter()
            .map(|g| format!("{g:?}").to_lowercase())
            .collect();
        serde_json::json!({
            "name": self.name,
            "kind": self.kind.as_str(),
            "version": self.tag.version,
            "hash": format!("sha256:{}", self.hash),
            "loaded_at": loaded_at,
            "grants": grants,
            "stubbed": self
                .imports
                .iter()
                .filter(|i| matches!(i.verdict, Verdict::Stubbed { .. }))
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>(),
            "calls": self.counters.calls.get(),
            "errors": self.counters.failures(),
            "last_error": self
                .stats
                .reload_error
                .lock()
                .clone()
                .or_else(|| self.stats.last_error.lock().clone()),
        })
    }

    /// What the manifest says a failed call means.
    pub fn on_error(&self) -> OnError {
        self.on_error
    }

    /// Runs `call` on a warm instance under the plugin's limits.
    pub(super) async fn call<R>(
        &self,
        call: impl AsyncFnOnce(&mut Store<State>, &Exports) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        let started = std::time::Instant::now();
        self.counters.calls.inc();
        let result = match self.checkout().await {
            Ok(mut warm) => {
                State::begin_call(&mut warm.store, Duration::from_millis(self.limits.time_ms));
                match call(&mut warm.store, &warm.exports).await {
                    Ok(value) => {
                        self.checkin(warm);
                        Ok(value)
                    }
                    Err(error) => Err(self.classify(&warm.store, &error)),
                }
            }
            Err(error) => Err(error),
        };
        self.counters
            .latency
            .observe(started.elapsed().as_secs_f64());
        result.inspect_err(|error| self.record(error))
    }

    /// Counts and logs a failure, including one found by a hook in an answer
    /// the plugin returned.
    pub(super) fn record(&self, error: &CallError) {
        self.counters.failed(error.cause);
        let caller = super::store::caller();
        tracing::warn!(plugin = %self.name, version = %self.tag.version, conn = caller.as_deref(), cause = ?error.cause, "{}", error.detail);
        *self.stats.last_error.lock() = Some(error.to_string());
    }

    /// A failure of this plugin with `cause`. The config's secrets are
    /// hidden in `detail` (an `init` error may quote the config), so neither
    /// the log, `/v1/plugins` nor `/v1/reload` shows them.
    pub(super) fn error(&self, cause: Cause, detail: impl Into<String>) -> CallError {
        let detail = detail.into();
        CallError {
            plugin: self.name.clone(),
            cause,
            detail: self.settings.secrets.apply(&detail).into_owned(),
        }
    }

    /// `text` the plugin wrote for a client (a denial's reason) with its
    /// config's secrets hidden: a plugin that quotes its config to the
    /// client must not hand out a secret the operator gave it.
    pub(super) fn redacted(&self, text: String) -> String {
        match self.settings.secrets.apply(&text) {
            std::borrow::Cow::Borrowed(_) => text,
            std::borrow::Cow::Owned(hidden) => hidden,
        }
    }

    fn classify(&self, store: &Store<State>, error: &wasmtime::Error) -> CallError {
        let budget = self.limits.time_ms;
        if store.data().hit_memory_cap() {
            self.error(
                Cause::memory,
                format!("memory cap of {} MiB reached", self.limits.memory_mib),
            )
        } else if let Some(refused) = error.downcast_ref::<Refused>() {
            self.error(Cause::refused, refused.to_string())
        } else if error.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt)
            || store.data().past_deadline()
        {
            self.error(Cause::deadline, format!("ran past its {budget} ms limit"))
        } else {
            self.error(Cause::trap, format!("trapped: {error:#}"))
        }
    }

    async fn checkout(&self) -> Result<Warm, CallError> {
        if let Some(warm) = self.idle.lock().pop() {
            return Ok(warm);
        }
        self.instantiate().await
    }

    pub(super) fn checkin(&self, warm: Warm) {
        let mut idle = self.idle.lock();
        if idle.len() < self.max_idle {
            idle.push(warm);
        }
    }

    /// A fresh instance that has accepted its config.
    pub(super) async fn instantiate(&self) -> Result<Warm, CallError> {
        let memory_cap = (self.limits.memory_mib as usize) << 20;
        let wasi = super::wasi_context();
        let mut store = State::new_store(&self.runtime, Arc::clone(&self.tag), wasi, memory_cap);
        State::begin_call(&mut store, INIT_BUDGET);
        let created = async {
            let exports = match &self.pre {
                Pre::Auth(pre) => Exports::Auth(pre.instantiate_async(&mut store).await?),
                Pre::Route(pre) => Exports::Route(pre.instantiate_async(&mut store).await?),
                Pre::Transform(pre) => Exports::Transform(pre.instantiate_async(&mut store).await?),
            };
            let init = match &exports {
                Exports::Auth(e) => e.ferrygate_plugin_lifecycle().call_init(&mut store).await?,
                Exports::Route(e) => e.ferrygate_plugin_lifecycle().call_init(&mut store).await?,
                Exports::Transform(e) => {
                    e.ferrygate_plugin_lifecycle().call_init(&mut store).await?
                }
            };
            wasmtime::Result::Ok((exports, init))
        }
        .await;
        match created {
            Ok((exports, Ok(()))) => {
                store.data_mut().mark_started();
                Ok(Warm { store, exports })
            }
            Ok((_, Err(reason))) => {
                Err(self.error(Cause::unavailable, format!("rejected its config: {reason}")))
            }
            Err(error) => {
                let failure = self.classify(&store, &error);
                Err(self.error(
                    Cause::unavailable,
                    format!("cannot start an instance: {}", failure.detail),
                ))
            }
        }
    }
}
