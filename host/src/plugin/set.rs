//! One generation of plugins: every loaded plugin by name, and the route table
//! that binds channel patterns to them. A set is immutable once built; the
//! gateway swaps whole sets, so a call that started on one set finishes on it.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::bindings::Connection;
use super::hooks::{Action, Routed, Transformed};
use super::instance::{CallError, Plugin};
use super::load::{self, LoadError};
use super::runtime::Runtime;
use crate::config::{Config, OnError, PluginKind, RouteConfig};
use crate::metrics::PluginMetrics;
use crate::protocol::{ChannelName, ChannelPattern};

/// What applies to the channels of one `[[routes]]` entry.
#[derive(Debug)]
pub struct Route {
    patterns: Vec<ChannelPattern>,
    /// Decides subscribes and publishes, if set.
    pub route: Option<Arc<Plugin>>,
    /// Applied in order to each publish before fan-out.
    pub inbound: Vec<Arc<Plugin>>,
    /// The route's `history`: its channels keep their last messages.
    pub history: Option<crate::config::HistoryConfig>,
    /// The route's `presence`: its channels' subscribers are tracked.
    pub presence: bool,
    /// The route's `join_leave`: join and leave pushes (implies `presence`).
    pub join_leave: bool,
}

impl Route {
    /// Asks the route plugin, if any, about `action` on `channel`. A failed
    /// call is an error whatever `on_error` says: the manifest refuses
    /// `allow` for route plugins, and access checks fail closed.
    pub async fn decide(
        &self,
        action: Action,
        channel: &ChannelName,
        connection: &Connection,
        data: Option<&str>,
    ) -> Result<Routed, CallError> {
        let Some(plugin) = &self.route else {
            return Ok(Routed::Allow);
        };
        plugin.route(action, channel, connection, data).await
    }

    /// Runs the inbound transforms in order on one published payload;
    /// `Ok(None)` when one of them dropped it. A failed call of a plugin with
    /// `on_error = "allow"` passes the payload on unchanged.
    pub async fn transform_inbound<'a>(
        &self,
        channel: &ChannelName,
        connection: Option<&Connection>,
        data: &'a str,
        max_bytes: usize,
    ) -> Result<Option<Cow<'a, str>>, CallError> {
        // Borrowed until a transform changes it: a route without transforms
        // copies nothing.
        let mut payload = Cow::Borrowed(data);
        for plugin in &self.inbound {
            match plugin
                .transform_inbound(channel, connection, &payload, max_bytes)
                .await
            {
                Ok(Transformed::Keep(next)) => payload = Cow::Owned(next),
                Ok(Transformed::Drop) => return Ok(None),
                Err(_) if plugin.on_error() == OnError::Allow => {}
                Err(error) => return Err(error),
            }
        }
        Ok(Some(payload))
    }
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct PluginSet {
    plugins: BTreeMap<String, Arc<Plugin>>,
    auth: Option<Arc<Plugin>>,
    routes: Vec<Route>,
    /// The `[[routes]]` entries `routes` was built from, so that a reload
    /// can tell whether they changed.
    route_config: Vec<RouteConfig>,
}

impl PluginSet {
    /// Loads every plugin of `config` and builds its route table. Every
    /// plugin is tried, so that all problems are reported at once.
    pub async fn load(
        config: &Config,
        runtime: &Arc<Runtime>,
        metrics: &PluginMetrics,
    ) -> Result<Self, Vec<LoadError>> {
        let mut plugins = BTreeMap::new();
        let mut errors = Vec::new();
        for (name, plugin_config) in &config.plugins {
            let path = config.plugin_path(plugin_config);
            match load::load(runtime, metrics, name, plugin_config, &path).await {
                Ok(plugin) => {
                    plugins.insert(name.clone(), plugin);
                }
                Err(error) => errors.push(error),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self::assemble(plugins, &config.routes))
    }

    /// A set of `plugins` with the route table of `routes`, which a validated
    /// manifest guarantees name only plugins of the right kind.
    pub fn assemble(plugins: BTreeMap<String, Arc<Plugin>>, routes_config: &[RouteConfig]) -> Self {
        let auth = plugins
            .values()
            .find(|p| p.kind == PluginKind::Auth)
            .cloned();
        // The manifest was validated: every name a route uses exists with the
        // right kind, so a missing one here cannot happen and is skipped.
        let routes = routes_config
            .iter()
            .map(|route| Route {
                patterns: route.channels.clone(),
                route: route.route.as_ref().and_then(|n| plugins.get(n)).cloned(),
                inbound: route
                    .inbound
                    .iter()
                    .filter_map(|n| plugins.get(n))
                    .cloned()
                    .collect(),
                history: route.history,
                presence: route.presence,
                join_leave: route.join_leave,
            })
            .collect();
        Self {
            plugins,
            auth,
            routes,
            route_config: routes_config.to_vec(),
        }
    }

    /// The `[[routes]]` entries of this set.
    pub fn route_config(&self) -> &[RouteConfig] {
        &self.route_config
    }

    /// The plugin named `name`, if this set has one.
    pub fn get(&self, name: &str) -> Option<&Arc<Plugin>> {
        self.plugins.get(name)
    }

    /// The auth plugin, if the manifest has one.
    pub fn auth(&self) -> Option<&Arc<Plugin>> {
        self.auth.as_ref()
    }

    /// The first route whose patterns match `channel`.
    pub fn route_for(&self, channel: &ChannelName) -> Option<&Route> {
        self.routes
            .iter()
            .find(|route| route.patterns.iter().any(|p| p.matches(channel)))
    }

    /// Every plugin, by name.
    pub fn plugins(&self) -> impl Iterator<Item = &Arc<Plugin>> {
        self.plugins.values()
    }

    /// Whether the set has no plugin at all.
    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }
}
