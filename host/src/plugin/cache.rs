//! Compiled plugins on disk, so that a restart, a rollback or a second process
//! loads a plugin instead of compiling it again, in a directory of bounded
//! size.
//!
//! This is wasmtime's own cache (its `cache` feature): an artifact is keyed by
//! a SHA-256 of the component's bytes together with the engine's compiler
//! settings and wasmtime's version, so a changed plugin or a new gateway build
//! never picks up a stale artifact. Artifacts are stored zstd-compressed, and
//! wasmtime's cache worker (a low-priority background thread) deletes the
//! oldest once the directory holds more than the size limit
//! (`[wasm] cache_max_mib`). It replaced a hand-written cache that kept one
//! uncompressed `.cwasm` per version forever (about 35 MB for each version of
//! a 12 MB JavaScript component); see docs/benchmarks.md for what a hit costs.
//! wasmtime loads a cached artifact as native code, so the directory must be
//! writable by the gateway alone: it is created with mode 0700.
//!
//! The cache directory holds two folders: `artifacts/` (wasmtime's cache, one
//! artifact per component) and `functions/` ([`functions`]: single compiled
//! functions, so that a *new* version of a big plugin recompiles only what
//! changed). Each has its own size limit.
//!
//! Owns the cache's settings and the content hash used for version labels;
//! it never compiles (that is `runtime`).

pub mod functions;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::{Cache, CacheConfig};

/// How often, at most, the cache worker checks the directory's size after a
/// new artifact is written. wasmtime's default is an hour; a minute keeps
/// the directory near its limit when versions of a big plugin follow each
/// other quickly, at the cost of one directory listing a minute at most.
pub const CLEANUP_INTERVAL: Duration = Duration::from_secs(60);

/// The SHA-256 of a component's bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentHash([u8; 32]);

impl ContentHash {
    /// Hashes `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// The first 12 hex digits: the default version label.
    pub fn short(&self) -> String {
        self.to_string()[..12].to_owned()
    }
}

impl std::fmt::Display for ContentHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl std::fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ContentHash({self})")
    }
}

/// Opens wasmtime's cache in `dir/artifacts` (created with mode 0700 if
/// missing), keeping it near `max_bytes`: the worker deletes the oldest
/// artifacts until the folder is back under 70 % of it.
///
/// Deletes `dir/modules`, where gateways before the function cache kept
/// their artifacts (wasmtime's layout with `dir` as its root): nothing
/// would read it again, and no worker would bound it.
pub fn open(dir: &Path, max_bytes: u64) -> anyhow::Result<Cache> {
    open_private_dir(dir)?;
    let legacy = dir.join("modules");
    if legacy.is_dir() {
        match std::fs::remove_dir_all(&legacy) {
            Ok(()) => {
                tracing::info!(dir = %legacy.display(), "deleted the artifacts of the previous cache layout")
            }
            Err(error) => {
                tracing::warn!(dir = %legacy.display(), %error, "cannot delete the previous cache layout")
            }
        }
    }
    let dir = std::path::absolute(dir.join("artifacts"))?;
    open_private_dir(&dir)?;
    let mut config = CacheConfig::new();
    config
        .with_directory(dir)
        .with_files_total_size_soft_limit(max_bytes)
        .with_cleanup_interval(CLEANUP_INTERVAL);
    Cache::new(config).map_err(anyhow::Error::from)
}

/// Creates `dir` (mode 0700) if missing, and checks that only this
/// process's user can write there, since native code is loaded from it: a
/// folder another user owns, or that its group or others may write (a
/// `cache_dir` under `/tmp` that someone else made first), is refused.
pub(crate) fn open_private_dir(dir: &Path) -> std::io::Result<()> {
    create_private_dir(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let refuse = |why: String| {
            std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "{}: {why}; plugins' native code is loaded from there, so only the gateway's user may write it",
                    dir.display()
                ),
            )
        };
        let folder = std::fs::metadata(dir)?;
        let mode = folder.mode() & 0o777;
        if mode & 0o022 != 0 {
            return Err(refuse(format!(
                "group or others may write it (mode {mode:03o}; `chmod go-w`)"
            )));
        }
        // Who this process is, without unsafe code: the owner of a file it
        // creates there (a folder it cannot write to fails here too).
        let probe = dir.join(format!(".owner-probe.{}", std::process::id()));
        let created = std::fs::File::create(&probe).and_then(|f| f.metadata());
        let _ = std::fs::remove_file(&probe);
        let me = created?.uid();
        if folder.uid() != me {
            return Err(refuse(format!(
                "owned by uid {}, not by this process's uid {me}",
                folder.uid()
            )));
        }
    }
    Ok(())
}

pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// The default cache directory: `$XDG_CACHE_HOME/ferrygate/wasm` or
/// `~/.cache/ferrygate/wasm`.
pub fn default_dir() -> Option<PathBuf> {
    let from = |var: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    from("XDG_CACHE_HOME")
        .or_else(|| from("HOME").map(|home| home.join(".cache")))
        .map(|base| base.join("ferrygate").join("wasm"))
}
