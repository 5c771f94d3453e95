//! Plugin metrics: calls, failures by cause and call latency, per plugin and
//! version. Label values come from the manifest (plugin names) and content
//! hashes, never from clients, so cardinality stays bounded by the operator.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Identifies one loaded plugin version.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabels {
    plugin: String,
    version: String,
}

/// Why a plugin call failed.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(
    non_camel_case_types,
    reason = "variants are the label values Prometheus shows"
)]
pub enum Cause {
    /// The guest trapped (panic, unreachable, bad memory access, ...).
    trap,
    /// The call ran past `limits.time_ms`.
    deadline,
    /// The instance tried to grow past `limits.memory_mib`.
    memory,
    /// The plugin returned something the gateway cannot use.
    bad_output,
    /// No instance could be created (pool exhausted, init failed).
    unavailable,
    /// The plugin called a WASI function it is not granted (a stub that
    /// refuses every call, see `plugin::stubs`).
    refused,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    plugin: String,
    version: String,
    cause: Cause,
}

/// How a reload ended.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(
    non_camel_case_types,
    reason = "variants are the label values Prometheus shows"
)]
pub enum ReloadOutcome {
    /// A new set was swapped in (possibly identical to the old one).
    ok,
    /// The manifest or a plugin did not load; the running set stayed.
    failed,
    /// The previous set was swapped back in.
    rollback,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    outcome: ReloadOutcome,
}

/// Where a function of a compiled plugin came from.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(
    non_camel_case_types,
    reason = "variants are the label values Prometheus shows"
)]
pub enum FunctionSource {
    /// Found in the function cache (`plugin::cache::functions`).
    cache,
    /// Compiled by Cranelift (and written to the function cache).
    compiled,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: FunctionSource,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NameLabels {
    plugin: String,
}

/// The plugin metric families.
#[derive(Debug)]
pub struct PluginMetrics {
    calls: Family<PluginLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    latency: Family<PluginLabels, Histogram, fn() -> Histogram>,
    reloads: Family<ReloadLabels, Counter>,
    reload_failures: Family<NameLabels, Counter>,
    functions: Family<SourceLabels, Counter>,
}

/// The handles of one plugin version, resolved once at load so that a call
/// touches only atomics.
#[derive(Debug, Clone)]
pub struct PluginCounters {
    /// Calls made.
    pub calls: Counter,
    /// Call latency in seconds, instance checkout included.
    pub latency: Histogram,
    errors: [(Cause, Counter); 6],
}

impl PluginCounters {
    /// Failed calls, all causes together.
    pub fn failures(&self) -> u64 {
        self.errors.iter().map(|(_, counter)| counter.get()).sum()
    }

    /// Counts one failed call.
    pub fn failed(&self, cause: Cause) {
        if let Some((_, counter)) = self.errors.iter().find(|(c, _)| *c == cause) {
            counter.inc();
        }
    }
}

fn latency_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        1e-6, 4.0, 11,
    ))
}

impl Default for PluginMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl PluginMetrics {
    /// A family set whose histograms have buckets from 1 µs to about 1 s.
    pub fn new() -> Self {
        Self {
            calls: Family::default(),
            errors: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            reloads: Family::default(),
            reload_failures: Family::default(),
            functions: Family::default(),
        }
    }

    /// Counts one reload that ended as `outcome`.
    pub fn reloaded(&self, outcome: ReloadOutcome) {
        self.reloads.get_or_create(&ReloadLabels { outcome }).inc();
    }

    /// Counts one reload in which `plugin` failed to load.
    pub fn reload_failed(&self, plugin: &str) {
        self.reload_failures
            .get_or_create(&NameLabels {
                plugin: plugin.to_owned(),
            })
            .inc();
    }

    /// Counts the functions of one plugin compile: `cached` taken from the
    /// function cache, `compiled` by Cranelift.
    pub fn compiled_functions(&self, cached: u64, compiled: u64) {
        for (source, n) in [
            (FunctionSource::cache, cached),
            (FunctionSource::compiled, compiled),
        ] {
            self.functions
                .get_or_create(&SourceLabels { source })
                .inc_by(n);
        }
    }

    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "plugin_calls",
            "Plugin calls, by plugin and version",
            self.calls.clone(),
        );
        registry.register(
            "plugin_errors",
            "Failed plugin calls, by plugin, version and cause",
            self.errors.clone(),
        );
        registry.register(
            "plugin_call_seconds",
            "Plugin call latency, by plugin and version",
            self.latency.clone(),
        );
        registry.register(
            "plugin_reloads",
            "Plugin reloads, by outcome (ok, failed, rollback)",
            self.reloads.clone(),
        );
        registry.register(
            "plugin_reload_failures",
            "Reloads in which a plugin failed to load, by plugin",
            self.reload_failures.clone(),
        );
        registry.register(
            "plugin_compiled_functions",
            "Functions of plugin compiles (cached artifacts not included), by source: cache (the function cache) or compiled",
            self.functions.clone(),
        );
    }

    /// The handles for `plugin` at `version`.
    pub fn for_plugin(&self, plugin: &str, version: &str) -> PluginCounters {
        let labels = PluginLabels {
            plugin: plugin.to_owned(),
            version: version.to_owned(),
        };
        let error = |cause| {
            let counter = self
                .errors
                .get_or_create(&ErrorLabels {
                    plugin: plugin.to_owned(),
                    version: version.to_owned(),
                    cause,
                })
                .clone();
            (cause, counter)
        };
        PluginCounters {
            calls: self.calls.get_or_create(&labels).clone(),
            latency: self.latency.get_or_create(&labels).clone(),
            errors: [
                error(Cause::trap),
                error(Cause::deadline),
                error(Cause::memory),
                error(Cause::bad_output),
                error(Cause::unavailable),
                error(Cause::refused),
            ],
        }
    }
}
