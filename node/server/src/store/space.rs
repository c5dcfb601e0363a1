//! Space: the limits (capacity, per-owner quota, collection watermarks), the real
//! disk's free space, and reservations for stores and pins in flight. `used` plus what
//! is reserved never passes the capacity; each owner's pins plus its reservations never
//! pass its quota.

use super::*;

/// Space limits of a store.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Bytes the node may hold.
    pub capacity: u64,
    /// Bytes each owner may pin; `None`: up to the capacity.
    pub quota: Option<u64>,
    /// Collection starts when usage passes this fraction of the capacity…
    pub gc_high: f64,
    /// …and stops when usage is back under this one.
    pub gc_low: f64,
    /// How often usage is checked against the high watermark, and the FsStore sweeps
    /// the bytes of collected blobs.
    pub sweep_interval: Duration,
}

impl Limits {
    /// `capacity` bytes, no quota, collection from 90 % down to 80 %, a sweep a minute.
    pub fn new(capacity: u64) -> Self {
        Self {
            capacity,
            quota: None,
            gc_high: 0.9,
            gc_low: 0.8,
            sweep_interval: Duration::from_secs(60),
        }
    }
}

/// What one owner pins here, and has in flight.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct OwnerUse {
    pub(super) pinned: u64,
    pub(super) reserved: u64,
}

/// Room kept free on the disk beyond the blobs themselves: the redb files, iroh-blobs'
/// outboards (1/256 of each blob over 16 KiB) and partial files of running imports.
pub const DISK_RESERVE: u64 = 64 << 20;

/// Bytes the file system holding `dir` has free for an unprivileged writer; `None` if
/// it cannot say (then only the configured capacity applies).
pub(super) fn disk_free(dir: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        let st = rustix::fs::statvfs(dir).ok()?;
        Some(st.f_bavail.saturating_mul(st.f_frsize))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// Subtracts without wrapping: counters are updated after their transactions commit,
/// in whatever order concurrent tasks get there, so one may briefly run ahead.
pub(super) fn sub_saturating(counter: &AtomicU64, v: u64) {
    let _ = counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| {
        Some(c.saturating_sub(v))
    });
}

/// Quota (and space) reserved for a store or pin in progress; released on drop.
pub(super) struct Reservation<'a> {
    pub(super) store: &'a Store,
    pub(super) owner: EndpointId,
    pub(super) size: u64,
    pub(super) space: bool,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.store.release(&self.owner, self.size, self.space);
    }
}

impl Store {
    /// Collects orphans, off the async workers, if a store of `size` bytes would not
    /// fit otherwise.
    pub(super) async fn make_room(&self, size: u64) {
        let inner = &self.inner;
        let capacity = self.capacity();
        if self.used() + inner.reserved.load(Ordering::SeqCst) + size <= capacity {
            return;
        }
        let target = capacity.saturating_sub(inner.reserved.load(Ordering::SeqCst) + size);
        let store = self.clone();
        match tokio::task::spawn_blocking(move || store.collect(target)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!("collecting to make room failed: {e}"),
            Err(e) => tracing::warn!("collecting to make room failed: {e}"),
        }
    }

    /// Reserves `size` bytes of `owner`'s quota and, when `space`, of the capacity.
    pub(super) fn reserve(
        &self,
        owner: &EndpointId,
        size: u64,
        space: bool,
    ) -> Result<(), StoreError> {
        let inner = &self.inner;
        let limits = &inner.limits;
        let mut owners = self.owners();
        let entry = owners.entry(*owner.as_bytes()).or_default();
        if let Some(quota) = limits.quota {
            let used = entry.pinned + entry.reserved;
            if used + size > quota {
                return Err(StoreError::QuotaExceeded { size, used, quota });
            }
        }
        if space {
            let reserved = inner.reserved.fetch_add(size, Ordering::SeqCst) + size;
            let used = self.used();
            // Bytes of running imports already on disk count twice here (reserved, and
            // gone from the disk's free space): conservative, never optimistic.
            let capacity = self.capacity();
            if used + reserved > capacity {
                inner.reserved.fetch_sub(size, Ordering::SeqCst);
                return Err(StoreError::NoSpace {
                    size,
                    free: capacity.saturating_sub(used + reserved - size),
                    capacity,
                });
            }
        }
        entry.reserved += size;
        Ok(())
    }

    pub(super) fn release(&self, owner: &EndpointId, size: u64, space: bool) {
        if space {
            self.inner.reserved.fetch_sub(size, Ordering::SeqCst);
        }
        if let Some(entry) = self.owners().get_mut(owner.as_bytes()) {
            entry.reserved = entry.reserved.saturating_sub(size);
        }
    }

    /// A disk that filled up under the store (other files on it grew since the space
    /// was reserved) is this node being full, for the caller as for the operator: not
    /// the node's own failure. Told by the I/O error's kind.
    pub(super) fn disk_full_is_no_space(&self, e: StoreError, size: u64) -> StoreError {
        let storage_full = |cause: &(dyn std::error::Error + 'static)| {
            std::iter::successors(Some(cause), |c| c.source()).any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::StorageFull)
            })
        };
        let full = match &e {
            StoreError::Blobs(source) => storage_full(source.as_ref()),
            StoreError::Db(source) => storage_full(source),
            _ => false,
        };
        if !full {
            return e;
        }
        tracing::warn!(
            "the disk holding {} is full ({e}): a store of {size} bytes was refused as no space",
            self.inner.dir.display()
        );
        StoreError::NoSpace {
            size,
            free: disk_free(&self.inner.dir).unwrap_or(0),
            capacity: self.inner.limits.capacity,
        }
    }
}
