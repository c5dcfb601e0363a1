//! A node's store: blob bytes in iroh-blobs' `FsStore`, bookkeeping in redb.
//!
//! Layout of a node's data directory:
//! ```text
//! blobs/        iroh-blobs FsStore (content + BLAKE3 outboards, verified streaming)
//! meta.redb     redb: held blobs and their sizes; pins by owner; unpinned blobs
//! ```
//! Invariants:
//! - `blobs-0` is the set of blobs this node holds. The FsStore's sweeper deletes the
//!   bytes of every blob that is neither in it (its protect callback reads this table)
//!   nor held by an import in flight (the import's temp tag);
//! - a pin is `(blob, owner)`: one owner's unpin never touches another owner's pin. A pin
//!   is recorded only for a blob in `blobs-0` at that moment, in the same write
//!   transaction; only an import (whose temp tag keeps the bytes) adds to `blobs-0`;
//! - a held blob with no pin is an orphan, listed in `orphans-0` (hash → since) and
//!   `orphans-by-age-0` ((since, hash)); only orphans are ever collected, and the pin
//!   count is re-checked in the write transaction that drops a blob: a pin that races a
//!   collection either wins or finds the blob gone and says so;
//! - `used` is the sum of held blob sizes; a store that would exceed the capacity is
//!   refused before a byte is read (space is reserved for stores in flight), after
//!   collecting orphans that would make room;
//! - each owner is charged the full size of every blob it pins (derived from the pins at
//!   start, kept in memory); a store or pin past the owner's quota is refused;
//! - a blob is acknowledged only after the FsStore's metadata and ours are committed,
//!   so it survives a crash of the node process. (iroh-blobs 0.104 does not fsync a
//!   complete blob's data file on import, so power loss right after a store can still
//!   lose it; see docs/operations.md.)
//!
//! Garbage collection is two-step: [`Store::collect`] drops orphans from `blobs-0`
//! (oldest first, in small transactions) until usage is under the target; the FsStore's
//! periodic sweep then deletes their bytes.
//!
//! One file per concern, each an `impl Store` over the tables declared here: `space.rs`
//! (limits, reservations, the disk's free space), `import.rs` (blobs in), `pins.rs`
//! (pins, orphans, quarantine), `collection.rs` (dropping orphans, protecting held
//! blobs from the sweep). This file opens the store and answers queries.

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use iroh::EndpointId;
use iroh_blobs::store::{
    GcConfig, ProtectOutcome,
    fs::{FsStore, options::Options},
};
use n0_future::{Stream, StreamExt};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use mosaic_codec::{ErrorKind, Hash};

mod collection;
mod import;
mod pins;
mod space;

pub use collection::Collected;
use collection::protect_held;
use pins::pin_range;
pub use space::{DISK_RESERVE, Limits};
use space::{OwnerUse, Reservation, disk_free, sub_saturating};

/// Held blobs: hash → size in bytes.
const BLOBS: TableDefinition<[u8; 32], u64> = TableDefinition::new("blobs-0");
/// Pins: (blob hash, owner EndpointId) → unix seconds when pinned.
const PINS: TableDefinition<([u8; 32], [u8; 32]), u64> = TableDefinition::new("pins-0");
/// Held blobs no one pins: hash → unix seconds since when.
const ORPHANS: TableDefinition<[u8; 32], u64> = TableDefinition::new("orphans-0");
/// The same, oldest first: (since, hash).
const BY_AGE: TableDefinition<(u64, [u8; 32]), ()> = TableDefinition::new("orphans-by-age-0");
/// Tags of an earlier layout that protected pinned blobs; removed at start (the protect
/// callback over `blobs-0` does their job, and a tag could outlive its pin).
const OLD_TAG_PREFIX: &str = "mosaic/pin/";

/// Blobs dropped per garbage-collection transaction: small, so pins and stores are
/// never held up for long.
const GC_BATCH: usize = 64;

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Not enough free space, even after collecting unpinned blobs.
    #[error(
        "this node is full: {size} bytes asked, {free} free of {capacity} after collecting unpinned data; try other nodes, or ask its operator for more capacity"
    )]
    NoSpace {
        /// Bytes asked for.
        size: u64,
        /// Bytes free.
        free: u64,
        /// Capacity.
        capacity: u64,
    },
    /// The owner's quota would be exceeded.
    #[error(
        "quota exceeded: you pin {used} bytes here, {size} more would pass your quota of {quota}; unpin files you no longer need (`mosaic rm`, `mosaic pin rm`) or ask the node's operator for a larger quota"
    )]
    QuotaExceeded {
        /// Bytes asked for.
        size: u64,
        /// Bytes the owner pins (and has in flight) now.
        used: u64,
        /// The quota.
        quota: u64,
    },
    /// The incoming bytes did not match the announced size.
    #[error("expected {expected} bytes, received {received}")]
    SizeMismatch {
        /// Announced size.
        expected: u64,
        /// Bytes received.
        received: u64,
    },
    /// The bytes received are not the blob they were sent as (a repair's column).
    #[error("the bytes received hash to {actual}, not to the expected {expected}")]
    HashMismatch {
        /// The hash the bytes had to have.
        expected: Hash,
        /// The hash they have.
        actual: Hash,
    },
    /// The metadata database failed.
    #[error("metadata database: {0}")]
    Db(#[from] redb::Error),
    /// The blob store failed.
    #[error("blob store: {0}")]
    Blobs(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Space and quota refusals are the caller's to act on; a size that does not match
    /// is bad input; the rest is the node's own failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::NoSpace { .. } | StoreError::QuotaExceeded { .. } => ErrorKind::Space,
            StoreError::SizeMismatch { .. } | StoreError::HashMismatch { .. } => {
                ErrorKind::BadInput
            }
            StoreError::Db(_) | StoreError::Blobs(_) => ErrorKind::Other,
        }
    }
}

fn db_err(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Db(e.into())
}

fn blobs_err(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Blobs(Box::new(e))
}

/// A blob's state on this node, as far as one owner is concerned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlobState {
    /// The node holds it.
    pub held: bool,
    /// The asking owner pins it.
    pub yours: bool,
    /// How many owners pin it.
    pub owners: u32,
}

/// A node's blobs and pins. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The store's directory: its file system's free space bounds the capacity.
    dir: PathBuf,
    blobs: FsStore,
    db: Arc<Database>,
    limits: Limits,
    used: AtomicU64,
    reserved: AtomicU64,
    owners: Mutex<HashMap<[u8; 32], OwnerUse>>,
    orphan_bytes: AtomicU64,
    settled: Settled,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Imports recorded in `blobs-0` whose temp tags are still held: each is released only
/// after a sweep has read a snapshot that includes its row (an import's tag dropped
/// between a sweep's snapshot and its listing of temp tags would leave the blob in
/// neither, and its bytes would be swept).
type Settled = Arc<Mutex<Vec<iroh_blobs::api::TempTag>>>;

impl Store {
    /// Opens (creating if needed) the store in `dir`.
    pub async fn load(dir: &Path, limits: Limits) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(db_err)?;
        let db = Arc::new(Database::create(dir.join("meta.redb")).map_err(db_err)?);
        let (used, orphan_bytes, owners) = Self::prepare(&db)?;
        // Weak: the sweeper's task may outlive the store, and must not keep the
        // database open (a restarted node reopens it).
        let protect_db = Arc::downgrade(&db);
        let settled: Settled = Arc::default();
        let protect_settled = settled.clone();
        let mut options = Options::new(&dir.join("blobs"));
        options.gc = Some(GcConfig {
            interval: limits.sweep_interval,
            add_protected: Some(Arc::new(move |live| {
                // Taken before the snapshot: every tag taken has its row in it.
                let release =
                    std::mem::take(&mut *protect_settled.lock().expect("settled tags lock"));
                let outcome = match protect_db.upgrade() {
                    Some(db) => protect_held(&db, live),
                    None => ProtectOutcome::Abort,
                };
                drop(release);
                Box::pin(async move { outcome })
            })),
        });
        let blobs = FsStore::load_with_opts(dir.join("blobs").join("blobs.db"), options)
            .await
            .map_err(blobs_err)?;
        blobs
            .tags()
            .delete_prefix(OLD_TAG_PREFIX)
            .await
            .map_err(blobs_err)?;
        Ok(Self {
            inner: Arc::new(Inner {
                dir: dir.to_owned(),
                blobs,
                db,
                limits,
                used: AtomicU64::new(used),
                reserved: AtomicU64::new(0),
                owners: Mutex::new(owners),
                orphan_bytes: AtomicU64::new(orphan_bytes),
                settled,
            }),
        })
    }

    /// Creates the tables, lists held blobs without pins as orphans (stores made before
    /// orphans were tracked), and sums usage, orphans and usage per owner.
    #[allow(clippy::type_complexity)]
    fn prepare(db: &Database) -> Result<(u64, u64, HashMap<[u8; 32], OwnerUse>), StoreError> {
        let tx = db.begin_write().map_err(db_err)?;
        let mut used = 0u64;
        let mut orphan_bytes = 0u64;
        let mut owners: HashMap<[u8; 32], OwnerUse> = HashMap::new();
        {
            let held = tx.open_table(BLOBS).map_err(db_err)?;
            let pins = tx.open_table(PINS).map_err(db_err)?;
            let mut orphans = tx.open_table(ORPHANS).map_err(db_err)?;
            let mut by_age = tx.open_table(BY_AGE).map_err(db_err)?;
            let mut sizes = HashMap::new();
            for entry in held.iter().map_err(db_err)? {
                let (hash, size) = entry.map_err(db_err)?;
                used += size.value();
                sizes.insert(hash.value(), size.value());
            }
            let mut pinned = HashSet::new();
            for entry in pins.iter().map_err(db_err)? {
                let (key, _) = entry.map_err(db_err)?;
                let (hash, owner) = key.value();
                pinned.insert(hash);
                if let Some(size) = sizes.get(&hash) {
                    owners.entry(owner).or_default().pinned += size;
                }
            }
            let stamp = now();
            for (hash, size) in &sizes {
                if pinned.contains(hash) {
                    continue;
                }
                orphan_bytes += size;
                if orphans.get(hash).map_err(db_err)?.is_none() {
                    orphans.insert(hash, stamp).map_err(db_err)?;
                    by_age.insert((stamp, *hash), ()).map_err(db_err)?;
                }
            }
        }
        tx.commit().map_err(db_err)?;
        Ok((used, orphan_bytes, owners))
    }

    /// The iroh-blobs store, to serve reads.
    pub fn blobs(&self) -> &FsStore {
        &self.inner.blobs
    }
    /// Capacity in bytes: the configured capacity, or less when the disk has less room
    /// (what is used plus what the file system still has free, minus [`DISK_RESERVE`]).
    /// Other files on the same disk shrink it; a node never promises space it lacks.
    pub fn capacity(&self) -> u64 {
        let configured = self.inner.limits.capacity;
        match disk_free(&self.inner.dir) {
            Some(free) => configured.min(self.used() + free.saturating_sub(DISK_RESERVE)),
            None => configured,
        }
    }
    /// The store's limits.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }
    /// Bytes used by held blobs.
    pub fn used(&self) -> u64 {
        self.inner.used.load(Ordering::Relaxed)
    }
    /// Bytes `owner` pins here.
    pub fn pinned_by(&self, owner: &EndpointId) -> u64 {
        self.owners().get(owner.as_bytes()).map_or(0, |u| u.pinned)
    }

    fn owners(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], OwnerUse>> {
        // Never held across an await or a fallible call: cannot be poisoned mid-update.
        self.inner.owners.lock().expect("owner table lock")
    }

    /// The state of `hashes` for `owner`.
    pub fn states(
        &self,
        owner: &EndpointId,
        hashes: &[Hash],
    ) -> Result<Vec<BlobState>, StoreError> {
        let tx = self.inner.db.begin_read().map_err(db_err)?;
        let held = tx.open_table(BLOBS).map_err(db_err)?;
        let pins = tx.open_table(PINS).map_err(db_err)?;
        hashes
            .iter()
            .map(|hash| {
                let mut state = BlobState {
                    held: held.get(hash.as_bytes()).map_err(db_err)?.is_some(),
                    ..BlobState::default()
                };
                for entry in pins.range(pin_range(hash)).map_err(db_err)? {
                    let (key, _) = entry.map_err(db_err)?;
                    state.owners += 1;
                    state.yours |= key.value().1 == *owner.as_bytes();
                }
                Ok(state)
            })
            .collect()
    }

    /// The number of held blobs.
    pub fn count(&self) -> Result<u64, StoreError> {
        let tx = self.inner.db.begin_read().map_err(db_err)?;
        tx.open_table(BLOBS).map_err(db_err)?.len().map_err(db_err)
    }

    /// The size of a held blob.
    pub fn size_of(&self, hash: &Hash) -> Result<Option<u64>, StoreError> {
        let tx = self.inner.db.begin_read().map_err(db_err)?;
        let held = tx.open_table(BLOBS).map_err(db_err)?;
        Ok(held
            .get(hash.as_bytes())
            .map_err(db_err)?
            .map(|v| v.value()))
    }

    /// The owners pinning a blob.
    pub fn owners_of(&self, hash: &Hash) -> Result<Vec<EndpointId>, StoreError> {
        let tx = self.inner.db.begin_read().map_err(db_err)?;
        let pins = tx.open_table(PINS).map_err(db_err)?;
        let mut out = Vec::new();
        for entry in pins.range(pin_range(hash)).map_err(db_err)? {
            let (key, _) = entry.map_err(db_err)?;
            if let Ok(id) = EndpointId::from_bytes(&key.value().1) {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// A held blob's bytes as stored, from the start, unverified (the scrubber checks
    /// them; repair checks what it rebuilds from them). One export of the whole blob:
    /// iroh-blobs' `BlobReader` starts a new export for every read, which made the
    /// scrubber read 122 MiB/s at 10.7 CPU seconds per GiB.
    pub fn bytes(
        &self,
        hash: &Hash,
    ) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
        use iroh_blobs::api::proto::ExportRangesItem;
        self.inner
            .blobs
            .blobs()
            .export_ranges(iroh_blobs::Hash::from_bytes(*hash.as_bytes()), 0..u64::MAX)
            .stream()
            .filter_map(|item| match item {
                ExportRangesItem::Size(_) => None,
                ExportRangesItem::Data(leaf) => Some(Ok(leaf.data)),
                ExportRangesItem::Error(e) => Some(Err(std::io::Error::other(e))),
            })
    }

    /// A held blob of at most `max` bytes, whole; `None` if not held or larger.
    pub async fn read_small(&self, hash: &Hash, max: u64) -> Result<Option<Bytes>, StoreError> {
        match self.size_of(hash)? {
            Some(size) if size <= max => {}
            _ => return Ok(None),
        }
        let bytes = self
            .inner
            .blobs
            .blobs()
            .get_bytes(iroh_blobs::Hash::from_bytes(*hash.as_bytes()))
            .await
            .map_err(blobs_err)?;
        Ok(Some(bytes))
    }

    /// Every held blob with its size.
    pub fn held_sizes(&self) -> Result<Vec<(Hash, u64)>, StoreError> {
        let tx = self.inner.db.begin_read().map_err(db_err)?;
        let held = tx.open_table(BLOBS).map_err(db_err)?;
        let mut out = Vec::new();
        for entry in held.iter().map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            out.push((Hash::from_bytes(k.value()), v.value()));
        }
        Ok(out)
    }

    /// Every held blob, for announcing.
    pub fn held(&self) -> Result<Vec<Hash>, StoreError> {
        let tx = self.inner.db.begin_read().map_err(db_err)?;
        let held = tx.open_table(BLOBS).map_err(db_err)?;
        let mut out = Vec::new();
        for entry in held.iter().map_err(db_err)? {
            out.push(Hash::from_bytes(entry.map_err(db_err)?.0.value()));
        }
        Ok(out)
    }

    /// Shuts the blob store down, flushing it.
    pub async fn shutdown(&self) {
        if let Err(e) = self.inner.blobs.shutdown().await {
            tracing::warn!("blob store shutdown: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn owner(seed: u8) -> EndpointId {
        iroh::SecretKey::from_bytes(&[seed; 32]).public()
    }

    async fn put(store: &Store, who: EndpointId, fill: u8, len: usize) -> Result<Hash, StoreError> {
        let data = Bytes::from(vec![fill; len]);
        store
            .import(who, len as u64, n0_future::stream::iter([Ok(data)]))
            .await
            .map(|(hash, _)| hash)
    }

    fn limits(capacity: u64) -> Limits {
        Limits {
            gc_high: 0.5,
            gc_low: 0.25,
            ..Limits::new(capacity)
        }
    }

    #[tokio::test]
    async fn collection_takes_only_unpinned_blobs_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::load(dir.path(), limits(100_000)).await.unwrap();
        let (alice, bob) = (owner(1), owner(2));
        let kept = put(&store, alice, 1, 20_000).await.unwrap();
        let shared = put(&store, alice, 2, 20_000).await.unwrap();
        store.pin(bob, &[shared]).await.unwrap();
        let old = put(&store, alice, 3, 10_000).await.unwrap();
        let young = put(&store, alice, 4, 10_000).await.unwrap();
        assert_eq!(store.used(), 60_000);
        // Alice drops her pins on all but `kept`; bob's pin on `shared` stays.
        store.unpin(alice, &[shared, old]).await.unwrap();
        // Orphan times are in seconds: make `young` younger.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        store.unpin(alice, &[young]).await.unwrap();
        assert_eq!(store.owners_of(&shared).unwrap(), vec![bob]);
        assert_eq!(store.collectable(), 20_000);
        assert_eq!(store.pinned_by(&alice), 20_000);
        // Oldest orphan first.
        let collected = store.collect(55_000).unwrap();
        assert_eq!(collected.blobs, 1);
        assert_eq!(store.size_of(&old).unwrap(), None, "oldest first");
        assert_eq!(store.size_of(&young).unwrap(), Some(10_000));
        // 50 % used is not over the 50 % high watermark: nothing to do.
        assert_eq!(store.collect_if_needed().unwrap(), Collected::default());
        store.collect(0).unwrap();
        assert_eq!(store.size_of(&young).unwrap(), None);
        assert_eq!(store.collectable(), 0);
        assert_eq!(store.size_of(&kept).unwrap(), Some(20_000));
        assert_eq!(store.size_of(&shared).unwrap(), Some(20_000));
        assert_eq!(store.used(), 40_000);
        // A collected blob cannot be pinned; it is reported missing.
        assert_eq!(store.pin(bob, &[old]).await.unwrap(), vec![old]);
    }

    #[tokio::test]
    async fn a_full_store_collects_before_refusing_and_quotas_hold() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::load(
            dir.path(),
            Limits {
                quota: Some(50_000),
                ..limits(100_000)
            },
        )
        .await
        .unwrap();
        let (alice, bob) = (owner(1), owner(2));
        let a = put(&store, alice, 1, 45_000).await.unwrap();
        let b = put(&store, bob, 2, 45_000).await.unwrap();
        // Alice's quota: 45 000 pinned, 10 000 more would pass 50 000.
        let err = put(&store, alice, 3, 10_000).await.unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::QuotaExceeded {
                    used: 45_000,
                    quota: 50_000,
                    ..
                }
            ),
            "{err}"
        );
        // Pinning another owner's blob counts against the quota too.
        let err = store.pin(alice, &[b]).await.unwrap_err();
        assert!(matches!(err, StoreError::QuotaExceeded { .. }), "{err}");
        // Alice unpins: her quota is free; the node is 90 % full of which 45 % is
        // collectable, so a 40 000-byte store collects it rather than being refused.
        store.unpin(alice, &[a]).await.unwrap();
        assert_eq!(store.pinned_by(&alice), 0);
        let c = put(&store, alice, 4, 40_000).await.unwrap();
        assert_eq!(store.size_of(&a).unwrap(), None);
        assert_eq!(store.used(), 85_000);
        // Nothing left to collect: a store past the capacity is refused, saying so.
        let err = put(&store, owner(3), 5, 20_000).await.unwrap_err();
        assert!(
            matches!(err, StoreError::NoSpace { free: 15_000, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("full"), "{err}");
        // Usage and quotas are rebuilt from the pins on restart.
        store.shutdown().await;
        drop(store);
        let store = Store::load(dir.path(), limits(100_000)).await.unwrap();
        assert_eq!(store.used(), 85_000);
        assert_eq!(store.pinned_by(&alice), 40_000);
        assert_eq!(store.pinned_by(&bob), 45_000);
        assert_eq!(store.size_of(&c).unwrap(), Some(40_000));
    }
}
