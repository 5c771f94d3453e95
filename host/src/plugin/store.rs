//! What a plugin instance's `Store` holds, and the host side of the `host`
//! interface (logging, config) that every plugin imports.
//!
//! The store also enforces the per-instance memory cap and carries the wall
//! clock deadline of the call in progress; it knows nothing of sockets,
//! sessions or which hook called it.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{LogLevel, host_api};
use super::runtime::Runtime;

/// Longest log line a plugin may write; the rest is cut.
const MAX_LOG_LINE: usize = 1024;
/// Log lines one instance may write between two calls; more are dropped, so a
/// chatty plugin cannot flood the gateway's log.
const LOG_LINES_PER_CALL: u32 = 32;
/// Most table elements one instance may grow its tables to.
const MAX_TABLE_ELEMENTS: usize = 100_000;

tokio::task_local! {
    /// The connection whose request is running (its conn id): a plugin's
    /// log lines and failures name it. Set by [`for_connection`] around a
    /// request's future, per poll, at the cost of a pointer: a tracing span
    /// per request cost about 1-2 µs and one per connection 0.34 KiB of its
    /// idle memory (docs/benchmarks.md section 1).
    static CALLER: Arc<str>;
}

/// Runs `future` (a session's request) with `conn` as the connection its
/// plugin calls name in their logs.
pub async fn for_connection<F: std::future::Future>(conn: Arc<str>, future: F) -> F::Output {
    CALLER.scope(conn, future).await
}

/// The conn id of the request being handled on this task, if any.
pub(super) fn caller() -> Option<Arc<str>> {
    CALLER.try_with(Arc::clone).ok()
}

/// Who the instance is, for its log lines and its config.
#[derive(Debug)]
pub struct Tag {
    /// The manifest name.
    pub name: String,
    /// The version label (metrics, `/v1/plugins`).
    pub version: String,
    /// The `config` table as JSON text.
    pub config_json: String,
    /// The config's secrets, hidden in the plugin's log lines.
    pub secrets: crate::config::Redactor,
}

/// The data of one instance's store.
pub struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    tag: Arc<Tag>,
    memory_cap: usize,
    hit_memory_cap: bool,
    deadline: Instant,
    log_lines_left: u32,
    started: bool,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("plugin", &self.tag.name)
            .field("memory_cap", &self.memory_cap)
            .finish_non_exhaustive()
    }
}

impl State {
    /// A store for one instance of the plugin `tag`, with `wasi` as its
    /// (by default empty) WASI context.
    pub fn new_store(
        runtime: &Runtime,
        tag: Arc<Tag>,
        wasi: WasiCtx,
        memory_cap: usize,
    ) -> Store<Self> {
        let state = Self {
            wasi,
            table: ResourceTable::new(),
            tag,
            memory_cap,
            hit_memory_cap: false,
            deadline: Instant::now(),
            log_lines_left: LOG_LINES_PER_CALL,
            started: false,
        };
        let mut store = Store::new(runtime.engine(), state);
        store.limiter(|state| state);
        // Checked at every epoch tick: yield to the executor while the call
        // has time left, so that a slow plugin never blocks a worker thread,
        // and stop it once the budget is spent.
        store.epoch_deadline_callback(|context| {
            if Instant::now() >= context.data().deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store
    }

    /// Starts the clock for one call of at most `budget`.
    pub fn begin_call(store: &mut Store<Self>, budget: Duration) {
        let state = store.data_mut();
        state.deadline = Instant::now() + budget;
        state.log_lines_left = LOG_LINES_PER_CALL;
        store.set_epoch_deadline(1);
    }

    /// Whether the instance tried to grow past its memory cap.
    pub fn hit_memory_cap(&self) -> bool {
        self.hit_memory_cap
    }

    /// Marks the instance started: `init` has returned, and stubbed clocks
    /// and randomness refuse every call from now on (see `stubs::startup`).
    pub fn mark_started(&mut self) {
        self.started = true;
    }

    /// Whether `init` has returned.
    pub fn started(&self) -> bool {
        self.started
    }

    /// Whether the current call's time is up.
    pub fn past_deadline(&self) -> bool {
        Instant::now() >= self.deadline
    }
}

impl ResourceLimiter for State {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_cap {
            self.hit_memory_cap = true;
            return Err(wasmtime::format_err!(
                "memory cap of {} MiB reached",
                self.memory_cap >> 20
            ));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl host_api::Host for State {
    fn log(&mut self, level: LogLevel, message: String) {
        if self.log_lines_left == 0 {
            return;
        }
        self.log_lines_left -= 1;
        // Before the cut, so that no part of a secret survives it.
        let mut message = self.tag.secrets.apply(&message).into_owned();
        if message.len() > MAX_LOG_LINE {
            let cut = (0..=MAX_LOG_LINE)
                .rev()
                .find(|&i| message.is_char_boundary(i))
                .unwrap_or(0);
            message.truncate(cut);
            message.push('…');
        }
        let (plugin, version) = (&self.tag.name, &self.tag.version);
        let caller = caller();
        let conn = caller.as_deref();
        match level {
            LogLevel::Debug => tracing::debug!(plugin, version, conn, "{message}"),
            LogLevel::Info => tracing::info!(plugin, version, conn, "{message}"),
            LogLevel::Warn => tracing::warn!(plugin, version, conn, "{message}"),
            LogLevel::Error => tracing::error!(plugin, version, conn, "{message}"),
        }
    }

    fn config(&mut self) -> String {
        self.tag.config_json.clone()
    }
}

impl super::bindings::auth::ferrygate::plugin::types::Host for State {}
