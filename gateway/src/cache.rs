//! The gateway's segment cache: files on local disk, evicted least-recently-used first
//! so their total stays under a byte budget.
//!
//! An entry is one segment's `k` data shards (see
//! [`mosaic_client::SegmentCache`]): ciphertext for private files, so the cache
//! never holds a private file's plaintext and never serves a segment to a request
//! without the key (the reader opens every entry, and drops one that does not open).
//! Layout: `DIR/<file id hex>/<segment index>`. The index (sizes, recency) lives in
//! memory and is rebuilt from the directory at start, in no particular order.
//!
//! Entries are written to a temporary name and renamed, so a crash leaves no torn
//! entry under a real name; a torn temporary file is removed at the next start.
//! Bytes held stay within the budget after every `put` (a segment larger than the
//! whole budget is not kept).
//!
//! In front of the disk, a smaller LRU in memory keeps the *opened* plaintext of
//! public files' segments (their plaintext is anyone's who has the id, and the reader
//! authenticated each before offering it). A 64 KiB range of a hot public file is then
//! a slice of memory, where opening the cached shards re-reads and re-hashes the whole
//! segment (1 MiB by default) for every request. Private files never enter it.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use bytes::Bytes;
use lru::LruCache;
use mosaic_client::SegmentCache;
use mosaic_codec::Hash;
use tracing::{debug, warn};

type Key = (Hash, u64);

/// A byte-bounded LRU cache of segments on disk.
#[derive(Debug)]
pub struct DiskCache {
    dir: PathBuf,
    budget: u64,
    state: Mutex<State>,
    hits: AtomicU64,
    misses: AtomicU64,
    opened: Mutex<Opened>,
    opened_hits: AtomicU64,
}

#[derive(Debug)]
struct State {
    entries: LruCache<Key, u64>,
    bytes: u64,
}

/// Opened public segments in memory, within `budget` bytes.
#[derive(Debug)]
struct Opened {
    entries: LruCache<Key, Bytes>,
    bytes: u64,
    budget: u64,
}

impl DiskCache {
    /// Opens (creating) the cache in `dir` with a budget of `budget` bytes, indexing
    /// what an earlier run left there and trimming it to the budget.
    pub fn open(dir: &Path, budget: u64) -> std::io::Result<Self> {
        fs::create_dir_all(dir)?;
        let mut entries = LruCache::unbounded();
        let mut bytes = 0;
        for file_dir in fs::read_dir(dir)? {
            let file_dir = file_dir?;
            let Some(id) = file_dir
                .file_name()
                .to_str()
                .and_then(|s| Hash::from_hex(s).ok())
            else {
                let _ = remove_any(&file_dir.path());
                continue;
            };
            for entry in fs::read_dir(file_dir.path())? {
                let entry = entry?;
                match entry
                    .file_name()
                    .to_str()
                    .and_then(|s| s.parse::<u64>().ok())
                {
                    Some(segment) => {
                        let size = entry.metadata()?.len();
                        entries.put((id, segment), size);
                        bytes += size;
                    }
                    None => {
                        let _ = fs::remove_file(entry.path());
                    }
                }
            }
        }
        let cache = Self {
            dir: dir.to_owned(),
            budget,
            state: Mutex::new(State { entries, bytes }),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            opened: Mutex::new(Opened {
                entries: LruCache::unbounded(),
                bytes: 0,
                budget: 0,
            }),
            opened_hits: AtomicU64::new(0),
        };
        cache.evict_to(budget);
        Ok(cache)
    }

    /// Keeps up to `bytes` of opened public segments in memory (none by default).
    pub fn with_memory(self, bytes: u64) -> Self {
        self.opened.lock().expect("not poisoned").budget = bytes;
        self
    }

    /// Bytes of opened segments held in memory.
    pub fn memory_bytes(&self) -> u64 {
        self.opened.lock().expect("not poisoned").bytes
    }

    /// Lookups answered from memory (counted in neither [`Self::hits_misses`] figure).
    pub fn memory_hits(&self) -> u64 {
        self.opened_hits.load(Ordering::Relaxed)
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.state.lock().expect("not poisoned").bytes
    }
    /// Segments held.
    pub fn len(&self) -> usize {
        self.state.lock().expect("not poisoned").entries.len()
    }
    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The byte budget.
    pub fn budget(&self) -> u64 {
        self.budget
    }
    /// Lookups that found their segment, and lookups that did not.
    pub fn hits_misses(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    fn path(&self, id: &Hash, segment: u64) -> PathBuf {
        self.dir.join(id.to_hex()).join(segment.to_string())
    }

    /// Removes least-recently-used entries until at most `target` bytes are held.
    fn evict_to(&self, target: u64) {
        loop {
            let victim = {
                let mut state = self.state.lock().expect("not poisoned");
                if state.bytes <= target {
                    return;
                }
                match state.entries.pop_lru() {
                    Some((key, size)) => {
                        state.bytes -= size;
                        key
                    }
                    None => return,
                }
            };
            let path = self.path(&victim.0, victim.1);
            if let Err(e) = fs::remove_file(&path) {
                debug!("cache: cannot remove {}: {e}", path.display());
            }
            // Drop the file's directory once empty (fails harmlessly otherwise).
            if let Some(parent) = path.parent() {
                let _ = fs::remove_dir(parent);
            }
        }
    }

    fn write(&self, id: &Hash, segment: u64, data: &[u8]) -> std::io::Result<()> {
        let path = self.path(id, segment);
        let parent = path.parent().expect("entries live in a file directory");
        fs::create_dir_all(parent)?;
        let tmp = parent.join(format!("{segment}.tmp"));
        let mut file = fs::File::create(&tmp)?;
        file.write_all(data)?;
        drop(file);
        fs::rename(&tmp, &path)
    }
}

impl SegmentCache for DiskCache {
    fn get(&self, id: &Hash, segment: u64) -> Option<Bytes> {
        let known = self
            .state
            .lock()
            .expect("not poisoned")
            .entries
            .get(&(*id, segment))
            .is_some();
        if !known {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        match fs::read(self.path(id, segment)) {
            Ok(data) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(Bytes::from(data))
            }
            Err(e) => {
                warn!(%id, segment, "cache: entry unreadable, dropping it: {e}");
                self.remove(id, segment);
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    fn put(&self, id: &Hash, segment: u64, shards: Bytes) {
        let size = shards.len() as u64;
        if size > self.budget {
            return;
        }
        if self
            .state
            .lock()
            .expect("not poisoned")
            .entries
            .contains(&(*id, segment))
        {
            return;
        }
        self.evict_to(self.budget - size);
        if let Err(e) = self.write(id, segment, &shards) {
            // A full disk or a permission problem costs a refetch, nothing more.
            warn!(%id, segment, "cache: cannot keep segment: {e}");
            return;
        }
        let mut state = self.state.lock().expect("not poisoned");
        if state.entries.put((*id, segment), size).is_none() {
            state.bytes += size;
        }
        let over = state.bytes > self.budget;
        drop(state);
        if over {
            // Concurrent puts raced past the eviction above.
            self.evict_to(self.budget);
        }
    }

    fn get_opened(&self, id: &Hash, segment: u64) -> Option<Bytes> {
        let found = self
            .opened
            .lock()
            .expect("not poisoned")
            .entries
            .get(&(*id, segment))
            .cloned();
        if found.is_some() {
            self.opened_hits.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    fn put_opened(&self, id: &Hash, segment: u64, plaintext: &Bytes) {
        let size = plaintext.len() as u64;
        let mut opened = self.opened.lock().expect("not poisoned");
        if size > opened.budget || opened.entries.contains(&(*id, segment)) {
            return;
        }
        while opened.bytes + size > opened.budget {
            match opened.entries.pop_lru() {
                Some((_, old)) => opened.bytes -= old.len() as u64,
                None => break,
            }
        }
        opened.entries.put((*id, segment), plaintext.clone());
        opened.bytes += size;
    }

    fn remove(&self, id: &Hash, segment: u64) {
        let removed = {
            let mut state = self.state.lock().expect("not poisoned");
            let size = state.entries.pop(&(*id, segment));
            if let Some(size) = size {
                state.bytes -= size;
            }
            size.is_some()
        };
        if removed {
            let _ = fs::remove_file(self.path(id, segment));
        }
    }
}

fn remove_any(path: &Path) -> std::io::Result<()> {
    if path.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_budget_and_evicts_least_recently_used() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), 3000).unwrap();
        let id = Hash::of(b"file");
        cache.put(&id, 0, Bytes::from(vec![0u8; 1000]));
        cache.put(&id, 1, Bytes::from(vec![1u8; 1000]));
        cache.put(&id, 2, Bytes::from(vec![2u8; 1000]));
        assert!(cache.get(&id, 0).is_some()); // 0 is now the most recent
        cache.put(&id, 3, Bytes::from(vec![3u8; 1000]));
        assert_eq!(cache.bytes(), 3000);
        assert!(cache.get(&id, 1).is_none(), "least recently used evicted");
        assert_eq!(cache.get(&id, 0).unwrap()[0], 0);
        assert_eq!(cache.get(&id, 3).unwrap()[0], 3);
        // Too big for the budget: not kept, nothing evicted for it.
        cache.put(&id, 9, Bytes::from(vec![9u8; 4000]));
        assert!(cache.get(&id, 9).is_none());
        assert_eq!(cache.len(), 3);
        let (hits, misses) = cache.hits_misses();
        assert_eq!((hits, misses), (3, 2));
    }

    #[test]
    fn opened_segments_stay_within_their_memory_budget() {
        let dir = tempfile::tempdir().unwrap();
        let id = Hash::of(b"file");
        let off = DiskCache::open(dir.path(), 10_000).unwrap();
        off.put_opened(&id, 0, &Bytes::from(vec![0u8; 10]));
        assert!(
            off.get_opened(&id, 0).is_none(),
            "no memory budget: nothing kept"
        );
        let cache = DiskCache::open(dir.path(), 10_000)
            .unwrap()
            .with_memory(2500);
        for s in 0..3 {
            cache.put_opened(&id, s, &Bytes::from(vec![s as u8; 1000]));
        }
        assert_eq!(cache.memory_bytes(), 2000, "the oldest made room");
        assert!(cache.get_opened(&id, 0).is_none());
        assert_eq!(cache.get_opened(&id, 2).unwrap()[0], 2);
        cache.put_opened(&id, 9, &Bytes::from(vec![9u8; 3000]));
        assert!(cache.get_opened(&id, 9).is_none(), "larger than the budget");
        assert_eq!(cache.memory_bytes(), 2000);
        assert_eq!(cache.memory_hits(), 1);
        assert_eq!(cache.hits_misses(), (0, 0), "the disk was not asked");
    }

    #[test]
    fn reopens_with_what_was_kept_and_trims_to_a_smaller_budget() {
        let dir = tempfile::tempdir().unwrap();
        let id = Hash::of(b"file");
        {
            let cache = DiskCache::open(dir.path(), 10_000).unwrap();
            for s in 0..5 {
                cache.put(&id, s, Bytes::from(vec![s as u8; 1000]));
            }
        }
        // Junk a crash or an operator could leave.
        fs::write(dir.path().join("not-a-hash"), b"x").unwrap();
        fs::write(dir.path().join(id.to_hex()).join("7.tmp"), b"torn").unwrap();
        let cache = DiskCache::open(dir.path(), 2500).unwrap();
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.bytes(), 2000);
        assert!(!dir.path().join("not-a-hash").exists());
        assert!(!dir.path().join(id.to_hex()).join("7.tmp").exists());
    }
}
