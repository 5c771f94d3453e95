//! The function store on a real folder: entries round-trip, a damaged or
//! misplaced entry is a miss (and is deleted), and a trim keeps the folder
//! under its bound, least recently used first.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use wasmtime::CacheStore;

use super::trim::{STALE_TEMPORARY, disk_bytes};
use super::{FunctionStore, HEADER, TRIM_TO_PERCENT, trim};

struct Folder(PathBuf);

impl Folder {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ferrygate-fn-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        Self(dir)
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn key(n: u8) -> [u8; 32] {
    let mut key = [0x5a; 32];
    key[0] = n;
    key[31] = n;
    key
}

#[test]
fn an_entry_comes_back_as_written_and_a_missing_one_is_a_miss() {
    let folder = Folder::new("roundtrip");
    let store = FunctionStore::open(&folder.0, 1 << 20).expect("open");
    assert!(store.get(&key(1)).is_none());
    assert!(store.insert(&key(1), b"machine code".to_vec()));
    store.flush();
    assert_eq!(store.get(&key(1)).as_deref(), Some(&b"machine code"[..]));
    assert!(store.get(&key(2)).is_none());
    let counts = store.counts();
    assert_eq!(
        (counts.hits, counts.misses, counts.written, counts.corrupt),
        (1, 2, 1, 0)
    );
    // A second store on the same folder (a restart, or `check` beside the
    // gateway) finds it.
    let again = FunctionStore::open(&folder.0, 1 << 20).expect("reopen");
    assert_eq!(again.get(&key(1)).as_deref(), Some(&b"machine code"[..]));
}

#[test]
fn a_damaged_entry_is_a_miss_and_is_deleted() {
    let folder = Folder::new("damaged");
    let store = FunctionStore::open(&folder.0, 1 << 20).expect("open");
    let value: Vec<u8> = (0..200u8).collect();
    // A flipped bit in the value, a truncated file, a bad header, an empty file.
    let damages: [fn(&mut Vec<u8>); 4] = [
        |bytes| *bytes.last_mut().expect("non-empty") ^= 1,
        |bytes| bytes.truncate(HEADER + 10),
        |bytes| bytes[0] = b'X',
        |bytes| bytes.clear(),
    ];
    for (n, damage) in damages.iter().enumerate() {
        let k = key(10 + n as u8);
        assert!(store.insert(&k, value.clone()));
        store.flush();
        let path = store.shared.path_of(&k);
        let mut bytes = fs::read(&path).expect("entry");
        damage(&mut bytes);
        fs::write(&path, &bytes).expect("damage");
        assert!(store.get(&k).is_none(), "damage {n} passed");
        assert!(!path.exists(), "damaged entry {n} kept");
        // The compile that follows writes it again, and it is good.
        assert!(store.insert(&k, value.clone()));
        store.flush();
        assert_eq!(store.get(&k).as_deref(), Some(&value[..]));
    }
    assert_eq!(store.counts().corrupt, 4);
}

#[test]
fn an_entry_under_another_key_is_a_miss() {
    let folder = Folder::new("moved");
    let store = FunctionStore::open(&folder.0, 1 << 20).expect("open");
    assert!(store.insert(&key(1), b"function one".to_vec()));
    store.flush();
    let other = store.shared.path_of(&key(2));
    fs::create_dir_all(other.parent().expect("shard")).expect("shard");
    fs::copy(store.shared.path_of(&key(1)), &other).expect("copy");
    assert!(
        store.get(&key(2)).is_none(),
        "a copied entry served under another key"
    );
    assert_eq!(store.get(&key(1)).as_deref(), Some(&b"function one"[..]));
}

#[test]
fn a_trim_keeps_the_folder_under_its_bound_dropping_the_least_recently_used() {
    let folder = Folder::new("trim");
    let max = 256 << 10;
    // The writer trims as its queue empties: give it a bound it never
    // reaches, and trim with the test's bound.
    let store = FunctionStore::open(&folder.0, u64::MAX).expect("open");
    // 64 entries of 8 KiB: 512 KiB on disk or more, twice the bound.
    let old = SystemTime::now() - Duration::from_secs(3600);
    for n in 0..64u8 {
        assert!(store.insert(&key(n), vec![n; 8 << 10]));
        store.flush();
        let file = fs::File::options()
            .write(true)
            .open(store.shared.path_of(&key(n)))
            .expect("entry");
        file.set_modified(old + Duration::from_secs(u64::from(n)))
            .expect("age");
    }
    // Key 0 is the oldest written, but used just now.
    assert!(store.get(&key(0)).is_some());
    // A temporary file of a writer that died long ago.
    let stale = store.shared.path_of(&key(200)).with_extension("tmp.1.1");
    fs::create_dir_all(stale.parent().expect("shard")).expect("shard");
    fs::write(&stale, b"half").expect("temporary");
    fs::File::options()
        .write(true)
        .open(&stale)
        .expect("temporary")
        .set_modified(SystemTime::now() - STALE_TEMPORARY * 2)
        .expect("age");

    let trimmed = trim(&folder.0, max).expect("trim");
    assert!(trimmed.before > max, "{trimmed:?}");
    assert!(trimmed.after <= max / 100 * TRIM_TO_PERCENT, "{trimmed:?}");
    assert!(trimmed.deleted > 0);
    assert!(!stale.exists(), "stale temporary kept");
    let on_disk: u64 = walk(&folder.0).iter().map(|p| disk(p)).sum();
    assert_eq!(on_disk, trimmed.after);
    assert!(
        store.get(&key(0)).is_some(),
        "the recently used entry was deleted"
    );
    assert!(
        store.get(&key(1)).is_none(),
        "the least recently used entry was kept"
    );
    assert!(
        store.get(&key(63)).is_some(),
        "the newest entry was deleted"
    );
    // Under the bound, a trim deletes nothing.
    let again = trim(&folder.0, max).expect("trim");
    assert_eq!((again.deleted, again.before), (0, trimmed.after));
}

#[test]
fn the_writer_trims_when_its_queue_empties() {
    let folder = Folder::new("writer-trim");
    let max = 64 << 10;
    let store = FunctionStore::open(&folder.0, max).expect("open");
    for n in 0..32u8 {
        assert!(store.insert(&key(n), vec![n; 8 << 10]));
    }
    store.flush();
    drop(store);
    let on_disk: u64 = walk(&folder.0).iter().map(|p| disk(p)).sum();
    assert!(on_disk <= max, "{on_disk} bytes on disk, bound {max}");
}

#[test]
fn dropping_the_store_writes_what_was_queued() {
    let folder = Folder::new("drop");
    let store = FunctionStore::open(&folder.0, 1 << 30).expect("open");
    for n in 0..50u8 {
        assert!(store.insert(&key(n), vec![n; 1000]));
    }
    drop(store);
    let again = FunctionStore::open(&folder.0, 1 << 30).expect("reopen");
    for n in 0..50u8 {
        assert_eq!(
            again.get(&key(n)).as_deref(),
            Some(&vec![n; 1000][..]),
            "entry {n}"
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for shard in fs::read_dir(dir).expect("dir").flatten() {
        for file in fs::read_dir(shard.path()).expect("shard").flatten() {
            files.push(file.path());
        }
    }
    files
}

fn disk(path: &std::path::Path) -> u64 {
    disk_bytes(&fs::metadata(path).expect("metadata"))
}
