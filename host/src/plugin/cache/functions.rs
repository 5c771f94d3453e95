//! Compiled functions on disk, for Cranelift's incremental compilation
//! cache: a new version of a JavaScript or Python plugin mostly repeats the
//! interpreter's functions (only the Wizer snapshot, data, differs), so its
//! compile finds most of them here instead of compiling them again.
//!
//! wasmtime keys each function by a SHA-256 of its Cranelift IR together with
//! the target and compiler flags (and Cranelift's version), so a hit is the
//! same function compiled the same way; a changed function has another key.
//! Cranelift checks only that an entry deserialises and carries its version,
//! so a flipped bit in the machine code would pass: every file here therefore
//! carries a SHA-256 of its key and value, and one that does not match (torn,
//! truncated, corrupted, or written by something else) is a miss and is
//! deleted. Files are written to a temporary name and renamed, so concurrent
//! readers and writers (threads, or a `check` beside the gateway) see a whole
//! entry or none.
//!
//! Bounded: after a compile that wrote entries, a background thread adds up
//! the directory (disk blocks, as `du` counts them) and, past the limit,
//! deletes the least recently used entries (a hit refreshes an entry's
//! mtime) until it is under [`TRIM_TO_PERCENT`] of the limit.
//!
//! Owns the `functions/` folder of the cache directory only; wasmtime's
//! artifact cache (the parent module) never looks into it, and this never
//! looks into the artifacts' folder.

use std::borrow::Cow;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

/// The first bytes of every entry: the format and its version.
const MAGIC: &[u8; 8] = b"FGFN\x00\x00\x00\x01";

/// Header: [`MAGIC`], then the SHA-256 of key and value.
const HEADER: usize = MAGIC.len() + 32;

/// A trim deletes the oldest entries until the folder holds at most this
/// share of its limit, so that the next compiles do not trim again at once
/// (the rule wasmtime's artifact cache follows).
pub const TRIM_TO_PERCENT: u64 = 70;

/// A temporary file older than this is left over by a writer that died, and
/// a trim deletes it.
const STALE_TEMPORARY: Duration = Duration::from_secs(600);

/// The function store: see the module docs.
#[derive(Debug)]
pub struct FunctionStore {
    dir: PathBuf,
    max_bytes: u64,
    counts: Counts,
    trimming: Arc<AtomicBool>,
}

/// What the store did since the process started.
#[derive(Debug, Default)]
struct Counts {
    hits: AtomicU64,
    misses: AtomicU64,
    written: AtomicU64,
    corrupt: AtomicU64,
    temporaries: AtomicU64,
}

/// A snapshot of the store's counters, since the process started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FunctionCounts {
    /// Functions found (and valid).
    pub hits: u64,
    /// Functions looked up and not found, or found invalid.
    pub misses: u64,
    /// Functions written.
    pub written: u64,
    /// Entries found invalid (deleted, counted as misses too).
    pub corrupt: u64,
}

/// What one trim found and did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Trimmed {
    /// Disk use before, in bytes (allocated blocks).
    pub before: u64,
    /// Disk use after, in bytes.
    pub after: u64,
    /// Entries deleted.
    pub deleted: usize,
}

impl FunctionStore {
    /// Opens the store in `dir` (created with mode 0700 if missing), kept
    /// under `max_bytes` of disk.
    pub fn open(dir: &Path, max_bytes: u64) -> std::io::Result<Self> {
        super::create_private_dir(dir)?;
        Ok(Self {
            dir: std::path::absolute(dir)?,
            max_bytes,
            counts: Counts::default(),
            trimming: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The folder.
    pub fn directory(&self) -> &Path {
        &self.dir
    }

    /// The counters since start.
    pub fn counts(&self) -> FunctionCounts {
        FunctionCounts {
            hits: self.counts.hits.load(Ordering::Relaxed),
            misses: self.counts.misses.load(Ordering::Relaxed),
            written: self.counts.written.load(Ordering::Relaxed),
            corrupt: self.counts.corrupt.load(Ordering::Relaxed),
        }
    }

    /// The entry's path: `functions/ab/cdef...` for the key's hex digits.
    fn path_of(&self, key: &[u8]) -> PathBuf {
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        let (shard, rest) = hex.split_at(2.min(hex.len()));
        self.dir.join(shard).join(if rest.is_empty() { "_" } else { rest })
    }

    /// Reads and checks the entry for `key`; `None` if absent or invalid
    /// (an invalid one is deleted).
    fn read(&self, key: &[u8]) -> Option<Vec<u8>> {
        let path = self.path_of(key);
        let file = fs::File::open(&path).ok()?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut &file, &mut bytes).ok()?;
        match valid(key, &bytes) {
            true => {
                // Recently used: a trim deletes the oldest mtimes first.
                let _ = file.set_modified(SystemTime::now());
                bytes.drain(..HEADER);
                Some(bytes)
            }
            false => {
                self.counts.corrupt.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(path = %path.display(), "invalid entry in the function cache: deleted, compiling the function");
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    fn write(&self, key: &[u8], value: &[u8]) -> std::io::Result<()> {
        let path = self.path_of(key);
        let shard = path.parent().unwrap_or(&self.dir);
        super::create_private_dir(shard)?;
        let n = self.counts.temporaries.fetch_add(1, Ordering::Relaxed);
        let temporary = path.with_extension(format!("tmp.{}.{n}", std::process::id()));
        let written = (|| {
            let mut file = fs::File::create(&temporary)?;
            file.write_all(MAGIC)?;
            file.write_all(&checksum(key, value))?;
            file.write_all(value)?;
            fs::rename(&temporary, &path)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&temporary);
        }
        written
    }

    /// Starts a trim on a background thread unless one is running.
    pub fn trim_in_background(&self) {
        if self.trimming.swap(true, Ordering::AcqRel) {
            return;
        }
        let (dir, max_bytes, trimming) = (self.dir.clone(), self.max_bytes, self.trimming.clone());
        let spawned = std::thread::Builder::new()
            .name("wasm-fn-trim".into())
            .spawn(move || {
                match trim(&dir, max_bytes) {
                    Ok(t) if t.deleted > 0 => tracing::info!(
                        before_mib = t.before >> 20,
                        after_mib = t.after >> 20,
                        deleted = t.deleted,
                        "function cache trimmed"
                    ),
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(dir = %dir.display(), %error, "cannot trim the function cache")
                    }
                }
                trimming.store(false, Ordering::Release);
            });
        if spawned.is_err() {
            self.trimming.store(false, Ordering::Release);
        }
    }
}

impl wasmtime::CacheStore for FunctionStore {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        let found = self.read(key);
        let counter = match found {
            Some(_) => &self.counts.hits,
            None => &self.counts.misses,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found.map(Cow::Owned)
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        match self.write(key, &value) {
            Ok(()) => {
                self.counts.written.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(error) => {
                tracing::debug!(%error, "cannot write to the function cache");
                false
            }
        }
    }
}

fn checksum(key: &[u8], value: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update((key.len() as u64).to_le_bytes());
    hasher.update(key);
    hasher.update(value);
    hasher.finalize().into()
}

/// Whether `bytes` is a whole entry for `key`.
fn valid(key: &[u8], bytes: &[u8]) -> bool {
    bytes.len() >= HEADER
        && bytes[..MAGIC.len()] == MAGIC[..]
        && bytes[MAGIC.len()..HEADER] == checksum(key, &bytes[HEADER..])
}

/// Deletes the least recently used entries of `dir` while it holds more than
/// `max_bytes`, down to [`TRIM_TO_PERCENT`] of it, and temporary files left
/// by dead writers. Entries another process deletes meanwhile are skipped.
pub fn trim(dir: &Path, max_bytes: u64) -> std::io::Result<Trimmed> {
    let mut entries = Vec::new();
    let now = SystemTime::now();
    for shard in fs::read_dir(dir)?.flatten() {
        let Ok(files) = fs::read_dir(shard.path()) else {
            continue;
        };
        for file in files.flatten() {
            let Ok(meta) = file.metadata() else { continue };
            let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            let temporary = file.file_name().to_string_lossy().contains(".tmp.");
            if temporary {
                if now.duration_since(modified).unwrap_or_default() > STALE_TEMPORARY {
                    let _ = fs::remove_file(file.path());
                }
                continue;
            }
            entries.push((modified, disk_bytes(&meta), file.path()));
        }
    }
    let before: u64 = entries.iter().map(|(_, size, _)| size).sum();
    let mut trimmed = Trimmed {
        before,
        after: before,
        deleted: 0,
    };
    if before <= max_bytes {
        return Ok(trimmed);
    }
    let target = max_bytes / 100 * TRIM_TO_PERCENT;
    entries.sort_unstable_by_key(|(modified, _, _)| *modified);
    for (_, size, path) in entries {
        if trimmed.after <= target {
            break;
        }
        if fs::remove_file(&path).is_ok() {
            trimmed.after -= size;
            trimmed.deleted += 1;
        }
    }
    Ok(trimmed)
}

/// What a file takes on disk: its allocated blocks where the platform says,
/// else its length.
fn disk_bytes(meta: &fs::Metadata) -> u64 {
    #[cfg(unix)]
    {
        std::os::unix::fs::MetadataExt::blocks(meta) * 512
    }
    #[cfg(not(unix))]
    {
        meta.len()
    }
}

#[cfg(test)]
mod tests;
