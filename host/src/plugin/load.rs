//! Turning a `[plugins.NAME]` entry into a ready [`Plugin`]: read, hash,
//! compile (or load the cached artifact), check its imports against its
//! grants, check it exports its kind's world, and start one instance so that
//! its `init` accepts the config. Any failure names the plugin and the reason.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::bindings::{self, auth, route, transform};
use super::cache::ContentHash;
use super::capabilities;
use super::instance::{Parts, Plugin, Pre};
use super::runtime::{CompileError, Runtime};
use super::store::Tag;
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
    /// It imports an interface its grants do not allow.
    #[error(
        "imports `{0}`, which is not granted: plugins get logging and their config only (see `grants`)"
    )]
    Ungranted(String),
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
    let compiling = Arc::clone(runtime);
    let component = tokio::task::spawn_blocking(move || compiling.compile(&bytes, &hash))
        .await
        .map_err(|e| fail(Problem::Task(e.to_string())))?
        .map_err(|e| fail(Problem::Compile(e)))?;
    if let Some(found) = bindings::other_wit_version(runtime.engine(), &component) {
        return Err(fail(Problem::WitVersion { found }));
    }
    if let Some(import) =
        capabilities::ungranted_import(runtime.engine(), &component, &config.grants)
    {
        return Err(fail(Problem::Ungranted(import)));
    }
    let pre = prelink(runtime, &component, config.kind).map_err(fail)?;
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
            counters: metrics.for_plugin(name, &version),
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
) -> Result<Pre, Problem> {
    let wrong_world = |error: wasmtime::Error| Problem::WrongWorld {
        kind: kind.as_str(),
        detail: format!("{error:#}"),
    };
    let instance_pre = runtime
        .linker()
        .instantiate_pre(component)
        .map_err(wrong_world)?;
    Ok(match kind {
        PluginKind::Auth => Pre::Auth(auth::AuthPre::new(instance_pre).map_err(wrong_world)?),
        PluginKind::Route => Pre::Route(route::RoutePre::new(instance_pre).map_err(wrong_world)?),
        PluginKind::Transform => {
            Pre::Transform(transform::TransformPre::new(instance_pre).map_err(wrong_world)?)
        }
    })
}
