//! Compiled plugins on disk, so that a restart loads a plugin in well under a
//! millisecond instead of compiling it again.
//!
//! An artifact is named by the SHA-256 of the component's bytes and the
//! engine's compatibility hash (wasmtime version and compiler settings), so a
//! changed plugin or a new gateway build never picks up a stale artifact.
//! Loading an artifact is `unsafe` in wasmtime, because arbitrary bytes could
//! be native code: the directory must be writable by the gateway alone, which
//! is why it is created with mode 0700 and every write is atomic.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

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

/// A directory of precompiled components.
#[derive(Debug)]
pub struct ArtifactCache {
    dir: PathBuf,
    engine_key: String,
}

impl ArtifactCache {
    /// Opens (creating it if needed) the cache in `dir` for `engine`.
    pub fn open(dir: &Path, engine: &Engine) -> std::io::Result<Self> {
        create_private_dir(dir)?;
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            dir: dir.to_owned(),
            engine_key: format!("{:016x}", hasher.finish()),
        })
    }

    fn path_of(&self, hash: &ContentHash) -> PathBuf {
        self.dir.join(format!("{hash}-{}.cwasm", self.engine_key))
    }

    /// The cached component for `hash`, if a usable artifact exists.
    pub fn load(&self, engine: &Engine, hash: &ContentHash) -> Option<Component> {
        let path = self.path_of(hash);
        if !path.exists() {
            return None;
        }
        #[allow(
            unsafe_code,
            reason = "the artifact was written by this engine into a directory only the gateway may write, under a name that includes the engine's compatibility hash"
        )]
        // SAFETY: see the allow's reason; wasmtime still rejects artifacts of
        // another version or configuration with an error, handled below.
        let loaded = unsafe { Component::deserialize_file(engine, &path) };
        match loaded {
            Ok(component) => Some(component),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "ignoring an unusable cached artifact");
                None
            }
        }
    }

    /// Saves `component`'s compiled form for `hash`. Failures only cost a
    /// recompile next time, so they are logged, not returned.
    pub fn store(&self, hash: &ContentHash, component: &Component) {
        let path = self.path_of(hash);
        let result = component
            .serialize()
            .map_err(std::io::Error::other)
            .and_then(|bytes| {
                let temp = path.with_extension(format!("tmp{}", std::process::id()));
                std::fs::write(&temp, bytes)?;
                std::fs::rename(&temp, &path)
            });
        if let Err(error) = result {
            tracing::warn!(path = %path.display(), %error, "cannot cache a compiled plugin");
        }
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// The default cache directory: `$XDG_CACHE_HOME/ferrygate` or `~/.cache/ferrygate`.
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
