//! Keeping the function store's folder under its bound: least recently
//! used entries go first, and temporary files of writers that died.
//!
//! Owns deleting in the folder; never writes an entry (that is the writer in
//! the parent module).

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// A trim deletes the oldest entries until the folder holds at most this
/// share of its limit, so that the next compiles do not trim again at once
/// (the rule wasmtime's artifact cache follows).
pub const TRIM_TO_PERCENT: u64 = 70;

/// A temporary file older than this is left over by a writer that died, and
/// a trim deletes it.
pub(super) const STALE_TEMPORARY: Duration = Duration::from_secs(600);

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
pub(super) fn disk_bytes(meta: &fs::Metadata) -> u64 {
    #[cfg(unix)]
    {
        std::os::unix::fs::MetadataExt::blocks(meta) * 512
    }
    #[cfg(not(unix))]
    {
        meta.len()
    }
}
