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
//! Writes go through a queue to one writer thread, so that a compile never
//! waits for the disk (a compile with an empty store was measured 8-10 s
//! slower in wall time when the compiler threads wrote the entries
//! themselves); at most [`MAX_QUEUED_BYTES`] wait, beyond that an entry is
//! not stored. Dropping the store waits for the queue.
//!
//! Bounded: whenever its queue empties after writes, the writer adds up the
//! directory (disk blocks, as `du` counts them) and, past the limit, deletes
//! the least recently used entries (a hit refreshes an entry's mtime) until
//! it is under [`TRIM_TO_PERCENT`] of the limit.
//!
//! Owns the `functions/` folder of the cache directory only; wasmtime's
//! artifact cache (the parent module) never looks into it, and this never
//! looks into the artifacts' folder.

use std::borrow::Cow;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

/// The first bytes of every entry: the format and its version.
const MAGIC: &[u8; 8] = b"FGFN\x00\x00\x00\x01";

/// Header: [`MAGIC`], then the SHA-256 of key and value.
const HEADER: usize = MAGIC.len() + 32;

/// Most bytes of entries waiting for the writer; an entry beyond this is not
/// stored (the next compile of its function compiles it again). A JS or
/// Python component writes about 75 MB in all, so a cold compile stores
/// most of it while the compile runs.
pub const MAX_QUEUED_BYTES: u64 = 64 << 20;

/// The function store: see the module docs.
#[derive(Debug)]
pub struct FunctionStore {
    shared: Arc<Shared>,
    queue: Option<mpsc::Sender<(Vec<u8>, Vec<u8>)>>,
    writer: Option<JoinHandle<()>>,
}

/// What the store and its writer thread share.
#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    max_bytes: u64,
    counts: Counts,
    /// Bytes queued for the writer, and a signal when it drops to zero.
    queued: (Mutex<u64>, Condvar),
}

/// What the store did since the process started.
#[derive(Debug, Default)]
struct Counts {
    hits: AtomicU64,
    misses: AtomicU64,
    written: AtomicU64,
    corrupt: AtomicU64,
    not_queued: AtomicU64,
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
    /// Entries not stored because the writer's queue was full.
    pub not_queued: u64,
}

impl FunctionStore {
    /// Opens the store in `dir` (created with mode 0700 if missing), kept
    /// under `max_bytes` of disk.
    pub fn open(dir: &Path, max_bytes: u64) -> std::io::Result<Self> {
        super::open_private_dir(dir)?;
        let shared = Arc::new(Shared {
            dir: std::path::absolute(dir)?,
            max_bytes,
            counts: Counts::default(),
            queued: (Mutex::new(0), Condvar::new()),
        });
        let (queue, jobs) = mpsc::channel();
        let writer = Arc::clone(&shared);
        let writer = std::thread::Builder::new()
            .name("wasm-fn-cache".into())
            .spawn(move || writer.run(&jobs))?;
        Ok(Self {
            shared,
            queue: Some(queue),
            writer: Some(writer),
        })
    }

    /// The folder.
    pub fn directory(&self) -> &Path {
        &self.shared.dir
    }

    /// The counters since start.
    pub fn counts(&self) -> FunctionCounts {
        let counts = &self.shared.counts;
        FunctionCounts {
            hits: counts.hits.load(Ordering::Relaxed),
            misses: counts.misses.load(Ordering::Relaxed),
            written: counts.written.load(Ordering::Relaxed),
            corrupt: counts.corrupt.load(Ordering::Relaxed),
            not_queued: counts.not_queued.load(Ordering::Relaxed),
        }
    }

    /// Waits until every queued entry is written (or failed).
    pub fn flush(&self) {
        let (queued, emptied) = &self.shared.queued;
        let mut bytes = queued.lock().unwrap_or_else(PoisonError::into_inner);
        while *bytes > 0 {
            bytes = emptied.wait(bytes).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Drop for FunctionStore {
    fn drop(&mut self) {
        // Closing the queue ends the writer once it has written the rest.
        drop(self.queue.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl Shared {
    /// The writer thread: writes queued entries, and trims the folder each
    /// time the queue empties after writes.
    fn run(&self, jobs: &mpsc::Receiver<(Vec<u8>, Vec<u8>)>) {
        let mut wrote = false;
        while let Ok((key, value)) = jobs.recv() {
            match self.write(&key, &value) {
                Ok(()) => {
                    self.counts.written.fetch_add(1, Ordering::Relaxed);
                    wrote = true;
                }
                Err(error) => tracing::debug!(%error, "cannot write to the function cache"),
            }
            let (queued, emptied) = &self.queued;
            let mut bytes = queued.lock().unwrap_or_else(PoisonError::into_inner);
            *bytes = bytes.saturating_sub(entry_bytes(&key, &value));
            if *bytes == 0 {
                emptied.notify_all();
                drop(bytes);
                if std::mem::take(&mut wrote) {
                    self.trim_logged();
                }
            }
        }
    }

    fn trim_logged(&self) {
        match trim(&self.dir, self.max_bytes) {
            Ok(t) if t.deleted > 0 => tracing::info!(
                before_mib = t.before >> 20,
                after_mib = t.after >> 20,
                deleted = t.deleted,
                "function cache trimmed"
            ),
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(dir = %self.dir.display(), %error, "cannot trim the function cache")
            }
        }
    }

    /// The entry's path: `functions/ab/cdef...` for the key's hex digits.
    fn path_of(&self, key: &[u8]) -> PathBuf {
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        let (shard, rest) = hex.split_at(2.min(hex.len()));
        self.dir
            .join(shard)
            .join(if rest.is_empty() { "_" } else { rest })
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
}

impl wasmtime::CacheStore for FunctionStore {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        let found = self.shared.read(key);
        let counter = match found {
            Some(_) => &self.shared.counts.hits,
            None => &self.shared.counts.misses,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found.map(Cow::Owned)
    }

    /// Queues the entry for the writer; `false` if the queue is full.
    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        let size = entry_bytes(key, &value);
        {
            let mut bytes = self
                .shared
                .queued
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if *bytes + size > MAX_QUEUED_BYTES {
                self.shared
                    .counts
                    .not_queued
                    .fetch_add(1, Ordering::Relaxed);
                return false;
            }
            *bytes += size;
        }
        let sent = self
            .queue
            .as_ref()
            .is_some_and(|queue| queue.send((key.to_vec(), value)).is_ok());
        if !sent {
            let (queued, emptied) = &self.shared.queued;
            let mut bytes = queued.lock().unwrap_or_else(PoisonError::into_inner);
            *bytes = bytes.saturating_sub(size);
            emptied.notify_all();
        }
        sent
    }
}

/// What an entry weighs in the writer's queue.
fn entry_bytes(key: &[u8], value: &[u8]) -> u64 {
    (key.len() + value.len()) as u64
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

mod trim;
pub use trim::{TRIM_TO_PERCENT, Trimmed, trim};

#[cfg(test)]
mod tests;
