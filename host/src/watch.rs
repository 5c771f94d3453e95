//! What starts a reload besides `POST /v1/reload`: a change to the manifest
//! or to a plugin file it names (seen with `notify`, debounced), and SIGHUP.
//!
//! Directories are watched, not files: editors and build tools write a temp
//! file and rename it over the old one, which replaces the inode a file
//! watch would hold, and a plugin directory may itself be replaced (so its
//! parent is watched too). After each reload the watches are set again for
//! the paths the manifest names then. A file caught half-written is just a
//! failed load; the write that completes it is another event and another
//! reload.
//!
//! Symlinks are followed (`links`): every path on the way from a named file
//! to the real one is watched like the file itself, so that a link renamed
//! over another (a Kubernetes ConfigMap update swaps `..data`) is a change.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::config::{Config, ProcessEnv};
use crate::gateway::Gateway;

mod links;

/// Quiet time after the last event before a reload starts: long enough to
/// fold the several events of one save (create, write, rename) into one
/// reload, short enough to feel immediate.
pub const DEBOUNCE: Duration = Duration::from_millis(50);

/// The installed triggers; [`Triggers::run`] acts on them.
#[derive(Debug)]
pub struct Triggers {
    hangups: Option<tokio::signal::unix::Signal>,
    events: mpsc::UnboundedReceiver<Event>,
    files: Files,
}

impl Triggers {
    /// Installs the SIGHUP handler and the file watches now, so that a
    /// change made once the gateway says it listens is seen. Without a
    /// manifest only SIGHUP is handled (and its reload fails saying why), so
    /// that the signal never kills the process.
    pub fn install(gateway: &Gateway) -> Self {
        let (tx, events) = mpsc::unbounded_channel();
        Self {
            hangups: crate::signal::hangups(),
            events,
            files: Files::new(gateway.reloader.manifest(), tx),
        }
    }

    /// Runs until the process ends: reloads `gateway` on each trigger.
    pub async fn run(self, gateway: Arc<Gateway>) {
        let Self {
            mut hangups,
            mut events,
            mut files,
        } = self;
        loop {
            tokio::select! {
                Some(()) = hangup(&mut hangups) => {
                    gateway.reload("SIGHUP").await;
                }
                Some(event) = events.recv() => {
                    if !files.concerns(&event) {
                        continue;
                    }
                    // Debounce: reload once DEBOUNCE passed without a relevant event.
                    let mut quiet_from = tokio::time::Instant::now() + DEBOUNCE;
                    while let Ok(next) = tokio::time::timeout_at(quiet_from, events.recv()).await {
                        match next {
                            Some(event) if files.concerns(&event) => {
                                quiet_from = tokio::time::Instant::now() + DEBOUNCE;
                            }
                            Some(_) => {}
                            None => return,
                        }
                    }
                    gateway.reload("file change").await;
                }
                else => return,
            }
            files.rewatch();
        }
    }
}

async fn hangup(hangups: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match hangups {
        Some(signal) => signal.recv().await,
        None => std::future::pending().await,
    }
}

/// The watcher and the paths it cares about.
#[derive(Debug)]
struct Files {
    manifest: Option<PathBuf>,
    watcher: Option<RecommendedWatcher>,
    /// The manifest and every plugin file it names, each also as every
    /// path its symlinks pass through.
    interesting: BTreeSet<PathBuf>,
    watched: BTreeSet<PathBuf>,
}

impl Files {
    fn new(manifest: Option<&Path>, tx: mpsc::UnboundedSender<Event>) -> Self {
        let watcher = manifest.and_then(|_| {
            notify::recommended_watcher(move |result: notify::Result<Event>| match result {
                Ok(event) => {
                    let _ = tx.send(event);
                }
                Err(error) => tracing::warn!(%error, "file watch error"),
            })
            .inspect_err(|error| {
                tracing::warn!(%error, "cannot watch files: reload with SIGHUP or POST /v1/reload");
            })
            .ok()
        });
        let mut files = Self {
            manifest: manifest.map(Path::to_path_buf),
            watcher,
            interesting: BTreeSet::new(),
            watched: BTreeSet::new(),
        };
        files.rewatch();
        files
    }

    /// Watches the folders of the manifest and of each plugin file it names
    /// now (and of every path their symlinks pass through), and their
    /// parents. Keeps the previous plugin files when the manifest cannot be
    /// read, so that fixing either is still seen.
    fn rewatch(&mut self) {
        let (Some(manifest), Some(watcher)) = (&self.manifest, &mut self.watcher) else {
            return;
        };
        let mut named = vec![manifest.clone()];
        // A small file read on the main runtime, once per reload: not worth
        // a blocking thread.
        match Config::load(manifest, &ProcessEnv) {
            Ok(loaded) => {
                let config = loaded.config;
                named.extend(config.plugins.values().map(|p| config.plugin_path(p)));
            }
            Err(_) => named.extend(self.interesting.iter().cloned()),
        }
        let interesting: BTreeSet<PathBuf> =
            named.iter().flat_map(|file| links::chain(file)).collect();
        let folders: BTreeSet<PathBuf> = interesting
            .iter()
            .filter_map(|file| file.parent())
            .flat_map(|dir| [Some(dir), dir.parent()])
            .flatten()
            .map(|dir| {
                if dir.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    dir.to_path_buf()
                }
            })
            .collect();
        // Every folder is watched again, first: one that was replaced is a
        // new inode, which the old watch does not follow (watching a path
        // again adds to its watch). Only then are the folders no longer
        // needed let go: removing a watch and adding it back left a moment
        // in which a change was missed, and with it the reload it asked for.
        for folder in &folders {
            if let Err(error) = watcher.watch(folder, RecursiveMode::NonRecursive) {
                tracing::debug!(folder = %folder.display(), %error, "cannot watch");
            }
        }
        for folder in self.watched.difference(&folders) {
            let _ = watcher.unwatch(folder);
        }
        self.watched = folders;
        self.interesting = interesting;
    }

    /// Whether `event` may have changed the manifest or a plugin file: it
    /// names one of them or a folder above one. Reads are ignored (the
    /// reload's own reads would otherwise trigger the next reload).
    fn concerns(&self, event: &Event) -> bool {
        let kind_matters = match event.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
            EventKind::Access(_) => false,
            _ => true,
        };
        kind_matters
            && event
                .paths
                .iter()
                .any(|path| self.interesting.iter().any(|file| file.starts_with(path)))
    }
}

#[cfg(test)]
mod tests {
    use notify::event::{CreateKind, ModifyKind, RenameMode};

    use super::*;

    fn files() -> Files {
        Files {
            manifest: None,
            watcher: None,
            interesting: BTreeSet::from([
                PathBuf::from("/srv/gw/ferrygate.toml"),
                PathBuf::from("/srv/gw/plugins/stamp.wasm"),
            ]),
            watched: BTreeSet::new(),
        }
    }

    fn event(kind: EventKind, path: &str) -> Event {
        Event::new(kind).add_path(PathBuf::from(path))
    }

    #[test]
    fn changes_to_named_files_and_their_folders_count() {
        let files = files();
        let renamed = EventKind::Modify(ModifyKind::Name(RenameMode::To));
        assert!(files.concerns(&event(renamed, "/srv/gw/plugins/stamp.wasm")));
        assert!(files.concerns(&event(renamed, "/srv/gw/ferrygate.toml")));
        // The plugin folder itself replaced.
        assert!(files.concerns(&event(renamed, "/srv/gw/plugins")));
        let written = EventKind::Access(AccessKind::Close(AccessMode::Write));
        assert!(files.concerns(&event(written, "/srv/gw/plugins/stamp.wasm")));
    }

    #[test]
    fn reads_temp_files_and_neighbours_do_not() {
        let files = files();
        let opened = EventKind::Access(AccessKind::Open(AccessMode::Read));
        assert!(!files.concerns(&event(opened, "/srv/gw/plugins/stamp.wasm")));
        let created = EventKind::Create(CreateKind::File);
        assert!(!files.concerns(&event(created, "/srv/gw/plugins/.stamp.wasm.tmp")));
        assert!(!files.concerns(&event(created, "/srv/gw/other.toml")));
        assert!(!files.concerns(&event(created, "/srv/elsewhere")));
    }
}
