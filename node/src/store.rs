//! A node's store: blob bytes in iroh-blobs' `FsStore`, bookkeeping in redb.
//!
//! Layout of a node's data directory:
//! ```text
//! blobs/        iroh-blobs FsStore (content + BLAKE3 outboards, verified streaming)
//! meta.redb     redb: held blobs and their sizes; pins by owner
//! ```
//! Invariants:
//! - a blob in `blobs-0` is complete in the FsStore and protected there by a named tag
//!   (`mosaic/pin/<hex>`) while any owner pins it;
//! - a pin is `(blob, owner)`: one owner's unpin never touches another owner's pin;
//! - `used` is the sum of held blob sizes; a store that would exceed the capacity is
//!   refused before a byte is read (space is reserved for stores in flight);
//! - a blob is acknowledged only after the FsStore's metadata and ours are committed,
//!   so it survives a crash of the node process. (iroh-blobs 0.104 does not fsync a
//!   complete blob's data file on import, so power loss right after a store can still
//!   lose it; see docs/operations.md.)
//!
//! Unpinned blobs stay on disk and keep being served until garbage collection removes
//! them (not built yet; see the README's status).

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use iroh::EndpointId;
use iroh_blobs::store::fs::FsStore;
use n0_future::Stream;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::codec::Hash;

/// Held blobs: hash → size in bytes.
const BLOBS: TableDefinition<[u8; 32], u64> = TableDefinition::new("blobs-0");
/// Pins: (blob hash, owner EndpointId) → unix seconds when pinned.
const PINS: TableDefinition<([u8; 32], [u8; 32]), u64> = TableDefinition::new("pins-0");

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Not enough free space.
    #[error("not enough space: {size} bytes asked, {free} free of {capacity}")]
    NoSpace {
        /// Bytes asked for.
        size: u64,
        /// Bytes free.
        free: u64,
        /// Capacity.
        capacity: u64,
    },
    /// The incoming bytes did not match the announced size.
    #[error("expected {expected} bytes, received {received}")]
    SizeMismatch {
        /// Announced size.
        expected: u64,
        /// Bytes received.
        received: u64,
    },
    /// The metadata database failed.
    #[error("metadata database: {0}")]
    Db(String),
    /// The blob store failed.
    #[error("blob store: {0}")]
    Blobs(String),
}

fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(e.to_string())
}

/// A node's blobs and pins. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    blobs: FsStore,
    db: Database,
    capacity: u64,
    used: AtomicU64,
    reserved: AtomicU64,
}

fn tag_name(hash: &Hash) -> String {
    format!("mosaic/pin/{}", hash.to_hex())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Store {
    /// Opens (creating if needed) the store in `dir` with `capacity` bytes.
    pub async fn load(dir: &Path, capacity: u64) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(db_err)?;
        let blobs = FsStore::load(dir.join("blobs"))
            .await
            .map_err(|e| StoreError::Blobs(e.to_string()))?;
        let db = Database::create(dir.join("meta.redb")).map_err(db_err)?;
        let tx = db.begin_write().map_err(db_err)?;
        let used = {
            let held = tx.open_table(BLOBS).map_err(db_err)?;
            tx.open_table(PINS).map_err(db_err)?;
            let mut used = 0u64;
            for entry in held.iter().map_err(db_err)? {
                used += entry.map_err(db_err)?.1.value();
            }
            used
        };
        tx.commit().map_err(db_err)?;
        Ok(Self {
            inner: Arc::new(Inner {
                blobs,
                db,
                capacity,
                used: AtomicU64::new(used),
                reserved: AtomicU64::new(0),
            }),
        })
    }

    /// The iroh-blobs store, to serve reads.
    pub fn blobs(&self) -> &FsStore {
        &self.inner.blobs
    }
    /// Capacity in bytes.
    pub fn capacity(&self) -> u64 {
        self.inner.capacity
    }
    /// Bytes used by held blobs.
    pub fn used(&self) -> u64 {
        self.inner.used.load(Ordering::Relaxed)
    }

    /// Imports `size` bytes from `data`, pins the blob for `owner`, returns its hash.
    /// Space is reserved before the first byte is read and released on failure.
    pub async fn import(
        &self,
        owner: EndpointId,
        size: u64,
        data: impl Stream<Item = std::io::Result<Bytes>> + Send + Sync + 'static,
    ) -> Result<Hash, StoreError> {
        let inner = &self.inner;
        let reserved = inner.reserved.fetch_add(size, Ordering::SeqCst) + size;
        let used = self.used();
        if used + reserved > inner.capacity {
            inner.reserved.fetch_sub(size, Ordering::SeqCst);
            return Err(StoreError::NoSpace {
                size,
                free: inner.capacity.saturating_sub(used + reserved - size),
                capacity: inner.capacity,
            });
        }
        let result = async {
            let tag = inner
                .blobs
                .add_stream(data)
                .await
                .temp_tag()
                .await
                .map_err(|e| StoreError::Blobs(e.to_string()))?;
            let hash = Hash::from_bytes(*tag.hash().as_bytes());
            let stored = inner
                .blobs
                .status(tag.hash())
                .await
                .map_err(|e| StoreError::Blobs(e.to_string()))?;
            let received = match stored {
                iroh_blobs::api::blobs::BlobStatus::Complete { size } => size,
                _ => 0,
            };
            if received != size {
                return Err(StoreError::SizeMismatch {
                    expected: size,
                    received,
                });
            }
            self.pin_held(owner, &hash, size).await?;
            drop(tag);
            Ok(hash)
        }
        .await;
        inner.reserved.fetch_sub(size, Ordering::SeqCst);
        result
    }

    /// Records `owner`'s pin on a blob known to be complete in the FsStore. Returns only
    /// once both the FsStore and our metadata have committed: a node that answers
    /// `Stored` and then crashes still has the blob when it restarts.
    async fn pin_held(&self, owner: EndpointId, hash: &Hash, size: u64) -> Result<(), StoreError> {
        let inner = &self.inner;
        inner
            .blobs
            .tags()
            .set(
                tag_name(hash),
                iroh_blobs::Hash::from_bytes(*hash.as_bytes()),
            )
            .await
            .map_err(|e| StoreError::Blobs(e.to_string()))?;
        // The FsStore batches its metadata writes (up to 500 ms); without this, a crash
        // right after the answer loses the blob's entry (seen in the restart test).
        inner
            .blobs
            .sync_db()
            .await
            .map_err(|e| StoreError::Blobs(e.to_string()))?;
        let tx = inner.db.begin_write().map_err(db_err)?;
        let newly_held = {
            let mut held = tx.open_table(BLOBS).map_err(db_err)?;
            let new = held.get(hash.as_bytes()).map_err(db_err)?.is_none();
            if new {
                held.insert(hash.as_bytes(), size).map_err(db_err)?;
            }
            let mut pins = tx.open_table(PINS).map_err(db_err)?;
            pins.insert((*hash.as_bytes(), *owner.as_bytes()), now())
                .map_err(db_err)?;
            new
        };
        tx.commit().map_err(db_err)?;
        if newly_held {
            inner.used.fetch_add(size, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Pins held blobs for `owner`; returns the hashes not held here.
    pub async fn pin(&self, owner: EndpointId, hashes: &[Hash]) -> Result<Vec<Hash>, StoreError> {
        let mut missing = Vec::new();
        for hash in hashes {
            match self.size_of(hash)? {
                Some(size) => self.pin_held(owner, hash, size).await?,
                None => missing.push(*hash),
            }
        }
        Ok(missing)
    }

    /// Removes `owner`'s pins on `hashes`. A blob no one pins any more loses its
    /// protecting tag, so garbage collection may remove it.
    pub async fn unpin(&self, owner: EndpointId, hashes: &[Hash]) -> Result<(), StoreError> {
        for hash in hashes {
            let tx = self.inner.db.begin_write().map_err(db_err)?;
            let orphaned = {
                let mut pins = tx.open_table(PINS).map_err(db_err)?;
                pins.remove((*hash.as_bytes(), *owner.as_bytes()))
                    .map_err(db_err)?;
                let range = pins
                    .range((*hash.as_bytes(), [0u8; 32])..=(*hash.as_bytes(), [0xffu8; 32]))
                    .map_err(db_err)?;
                range.count() == 0
            };
            tx.commit().map_err(db_err)?;
            if orphaned {
                self.inner
                    .blobs
                    .tags()
                    .delete(tag_name(hash))
                    .await
                    .map_err(|e| StoreError::Blobs(e.to_string()))?;
            }
        }
        Ok(())
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
    pub fn owners(&self, hash: &Hash) -> Result<Vec<EndpointId>, StoreError> {
        let tx = self.inner.db.begin_read().map_err(db_err)?;
        let pins = tx.open_table(PINS).map_err(db_err)?;
        let mut out = Vec::new();
        for entry in pins
            .range((*hash.as_bytes(), [0u8; 32])..=(*hash.as_bytes(), [0xffu8; 32]))
            .map_err(db_err)?
        {
            let (key, _) = entry.map_err(db_err)?;
            if let Ok(id) = EndpointId::from_bytes(&key.value().1) {
                out.push(id);
            }
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
