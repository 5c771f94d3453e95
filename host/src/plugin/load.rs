//! Turning a `[plugins.NAME]` entry into a ready [`Plugin`]: read, hash,
//! classify its imports against its grants (before compiling, so a refused
//! import costs milliseconds, and every refused import is named), compile (or
//! load the cached artifact), link stubs for the ungranted WASI it imports,
//! check it exports its kind's world, and start one instance so that its
//! `init` accepts the config. Any failure names the plugin and the reason.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::bindings::{self, auth, route, transform};
use super::cache::ContentHash;
use super::instance::{Parts, Plugin, Pre};
use super::recording::Recorder;
use super::runtime::{CompileError, Runtime};
use super::store::Tag;
use super::{capabilities, stubs};
use crate::config::{PluginConfig, PluginKind};
use crate::metrics::PluginMetrics;

/// Why a plugin did not load.
#[derive(Debug, thiserror::Error)]
#[error("plugin `{name}` ({}): {problem}", path.display())]
pub struct LoadError {
    /// The manifest name.
    pub name: String,
    /// The component file.
    pub path: PathBuf,
    /// What is wrong.
    pub problem: Problem,
}

/// What can be wrong with a plugin.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    /// The file cannot be read.
    #[error("cannot read the file: {0}")]
    Read(#[source] std::io::Error),
    /// Not a component, or not one wasmtime accepts.
    #[error(transparent)]
    Compile(#[from] CompileError),
    /// It imports what the gateway cannot link: one line per refused import.
    #[error(
        "has imports the gateway cannot provide (plugins get logging, their config, and WASI that refuses every call unless granted):{0}"
    )]
    Refused(String),
    /// It was built against another version of the WIT package.
    #[error(
        "was built against WIT ferrygate:plugin@{found}, but this gateway loads ferrygate:plugin@{}: rebuild it with ferrygate-sdk 0.2 (or against wit/ of this release)",
        super::bindings::WIT_VERSION
    )]
    WitVersion {
        /// The version the component names.
        found: String,
    },
    /// It does not export the world its kind requires.
    #[error("does not implement the `{kind}` world (ferrygate:plugin/{kind}): {detail}")]
    WrongWorld {
        /// The kind the manifest declares.
        kind: &'static str,
        /// wasmtime's account of the mismatch.
        detail: String,
    },
    /// Instantiation or `init` failed, e.g. the config was refused.
    #[error("{0}")]
    Start(String),
    /// The compile task itself failed.
    #[error("the compile task failed: {0}")]
    Task(String),
}

/// Loads the plugin `name` declared by `config`, whose file is `path`.
pub async fn load(
    runtime: &Arc<Runtime>,
    metrics: &PluginMetrics,
    name: &str,
    config: &PluginConfig,
    path: &Path,
) -> Result<Arc<Plugin>, LoadError> {
    let fail = |problem| LoadError {
        name: name.to_owned(),
        path: path.to_owned(),
        problem,
    };
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|e| fail(Problem::Read(e)))?;
    let hash = ContentHash::of(&bytes);
    build(runtime, metrics, name, config, path, bytes, hash).await
}

/// Compiles, checks and starts the plugin `name` from the `bytes` already
/// read from `path`, whose hash is `hash`. A reload reads first, so that it
/// can reuse a running plugin whose file did not change.
pub async fn build(
    runtime: &Arc<Runtime>,
    metrics: &PluginMetrics,
    name: &str,
    config: &PluginConfig,
    path: &Path,
    bytes: Vec<u8>,
    hash: ContentHash,
) -> Result<Arc<Plugin>, LoadError> {
    let fail = |problem| LoadError {
        name: name.to_owned(),
        path: path.to_owned(),
        problem,
    };
    CompileError::check_magic(&bytes).map_err(|e| fail(Problem::Compile(e)))?;
    let imports = capabilities::read_imports(&bytes)
        .map_err(|e| fail(Problem::Compile(CompileError::Unreadable(e))))?;
    let imports = capabilities::classify(&imports, &config.grants);
    if let Some(list) = capabilities::refusals(&imports) {
        return Err(fail(Problem::Refused(list)));
    }
    let compiling = Arc::clone(runtime);
    let compiled = tokio::task::spawn_blocking(move || compiling.compile(&bytes, &hash))
        .await
        .map_err(|e| fail(Problem::Task(e.to_string())))?
        .map_err(|e| fail(Problem::Compile(e)))?;
    metrics.compiled_functions(compiled.cached_functions, compiled.compiled_functions);
    let component = compiled.component;
    if let Some(found) = bindings::other_wit_version(runtime.engine(), &component) {
        return Err(fail(Problem::WitVersion { found }));
    }
    let pre = prelink(runtime, &component, config.kind, &imports).map_err(fail)?;
    let recorder = match &config.record {
        Some(record) => Some(
            Recorder::open(&record.path, u64::from(record.max_mib) << 20).map_err(|e| {
                fail(Problem::Start(format!(
                    "cannot open the recording {}: {e}",
                    record.path.display()
                )))
            })?,
        ),
        None => None,
    };
    let version = hash.short();
    let tag = Arc::new(Tag {
        name: name.to_owned(),
        version: version.clone(),
        config_json: serde_json::Value::Object(config.config.clone()).to_string(),
        secrets: config.secrets.clone(),
    });
    let plugin = Arc::new(Plugin::new(
        Arc::clone(runtime),
        Parts {
            name: name.to_owned(),
            kind: config.kind,
            hash,
            limits: config.limits,
            on_error: config.on_error,
            grants: config.grants.clone(),
            settings: config.clone(),
            tag,
            pre,
            imports,
            counters: metrics.for_plugin(name, &version),
            recorder,
        },
    ));
    // Start one instance now: it proves the config is accepted, and the
    // first client call finds it warm.
    let warm = plugin
        .instantiate()
        .await
        .map_err(|e| fail(Problem::Start(e.detail)))?;
    plugin.checkin(warm);
    Ok(plugin)
}

fn prelink(
    runtime: &Runtime,
    component: &wasmtime::component::Component,
    kind: PluginKind,
    imports: &[capabilities::Import],
) -> Result<Pre, Problem> {
    let wrong_world = |error: wasmtime::Error| Problem::WrongWorld {
        kind: kind.as_str(),
        detail: format!("{error:#}"),
    };
    // A copy per component: the stubs depend on what it imports. Cloning
    // copies the name table only (microseconds), not the host functions.
    let mut linker = runtime.linker().clone();
    stubs::link(&mut linker, runtime.engine(), component, imports)
        .map_err(|e| Problem::Start(format!("cannot link stubs: {e:#}")))?;
    let instance_pre = linker.instantiate_pre(component).map_err(wrong_world)?;
    Ok(match kind {
        PluginKind::Auth => Pre::Auth(auth::AuthPre::new(instance_pre).map_err(wrong_world)?),
        PluginKind::Route => Pre::Route(route::RoutePre::new(instance_pre).map_err(wrong_world)?),
        PluginKind::Transform => {
            Pre::Transform(transform::TransformPre::new(instance_pre).map_err(wrong_world)?)
        }
    })
}
