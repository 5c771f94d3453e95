//! What one reload did, as `POST /v1/reload` answers it and the log says it:
//! plugins added, replaced, removed and unchanged (with versions), whether
//! the routes changed, what failed and why, and which sections of the
//! manifest changed but need a restart.

use serde::Serialize;

use super::super::set::PluginSet;

/// See the module docs.
#[derive(Debug, Default, Serialize)]
pub struct Outcome {
    /// Whether the new set (or the previous one, for a rollback) is in use.
    pub ok: bool,
    /// Whether the set in use changed; false when the files and the manifest
    /// say what is already running.
    pub swapped: bool,
    /// `reload` or `rollback`.
    pub action: &'static str,
    /// Plugins new in this set.
    pub added: Vec<Version>,
    /// Plugins whose file or manifest entry changed.
    pub replaced: Vec<Replaced>,
    /// Plugins no longer in the manifest.
    pub removed: Vec<Version>,
    /// Plugins reused as they were (same content hash, same entry).
    pub unchanged: Vec<Version>,
    /// Whether the `[[routes]]` table changed.
    pub routes_changed: bool,
    /// Manifest sections that changed but apply only after a restart.
    pub restart_needed: Vec<String>,
    /// What did not load; non-empty only when `ok` is false.
    pub failed: Vec<Failure>,
    /// Wall time of the whole reload, in milliseconds.
    pub took_ms: f64,
}

/// A plugin and its version.
#[derive(Debug, Serialize)]
pub struct Version {
    /// The manifest name.
    pub name: String,
    /// The version label (short content hash).
    pub version: String,
}

/// A plugin that changed version.
#[derive(Debug, Serialize)]
pub struct Replaced {
    /// The manifest name.
    pub name: String,
    /// The version that ran before.
    pub from: String,
    /// The version that runs now.
    pub to: String,
}

/// One thing that did not load.
#[derive(Debug, Serialize)]
pub struct Failure {
    /// The plugin at fault; none for the manifest itself.
    pub plugin: Option<String>,
    /// Why.
    pub error: String,
}

impl Outcome {
    /// An outcome for `action` that has not succeeded yet.
    pub(super) fn new(action: &'static str) -> Self {
        Self {
            action,
            ..Self::default()
        }
    }

    /// Fills in the differences from `old` to `new`.
    pub(super) fn compare(&mut self, old: &PluginSet, new: &PluginSet) {
        let version = |p: &super::super::Plugin| Version {
            name: p.name().to_owned(),
            version: p.version().to_owned(),
        };
        for plugin in new.plugins() {
            match old.get(plugin.name()) {
                None => self.added.push(version(plugin)),
                Some(before) if std::sync::Arc::ptr_eq(before, plugin) => {
                    self.unchanged.push(version(plugin));
                }
                Some(before) => self.replaced.push(Replaced {
                    name: plugin.name().to_owned(),
                    from: before.version().to_owned(),
                    to: plugin.version().to_owned(),
                }),
            }
        }
        for plugin in old.plugins() {
            if new.get(plugin.name()).is_none() {
                self.removed.push(version(plugin));
            }
        }
        self.routes_changed = old.route_config() != new.route_config();
    }

    /// Whether `compare` found any difference.
    pub(super) fn changed(&self) -> bool {
        !self.added.is_empty()
            || !self.replaced.is_empty()
            || !self.removed.is_empty()
            || self.routes_changed
    }

    /// One line for the log.
    pub fn summary(&self) -> String {
        let names = |list: &[Version]| {
            list.iter()
                .map(|v| format!("{}@{}", v.name, v.version))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let replaced: Vec<String> = self
            .replaced
            .iter()
            .map(|r| format!("{} {}->{}", r.name, r.from, r.to))
            .collect();
        format!(
            "added [{}], replaced [{}], removed [{}], unchanged [{}], routes {}",
            names(&self.added),
            replaced.join(", "),
            names(&self.removed),
            names(&self.unchanged),
            if self.routes_changed {
                "changed"
            } else {
                "unchanged"
            },
        )
    }
}
