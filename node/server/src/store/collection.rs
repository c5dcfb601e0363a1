//! Collection: orphans dropped from `blobs-0`, oldest first and in small transactions,
//! until usage is under the low watermark (the pin count re-checked in the transaction
//! that drops each); the FsStore's sweep then deletes their bytes, protecting every
//! held blob (`protect_held`).

use super::*;

/// What a collection removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Collected {
    /// Blobs dropped.
    pub blobs: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// Adds every held blob to the sweeper's protected set; aborts the sweep if the table
/// cannot be read (better to keep garbage than to lose data).
pub(super) fn protect_held(db: &Database, live: &mut HashSet<iroh_blobs::Hash>) -> ProtectOutcome {
    let mut read = || -> Result<(), StoreError> {
        let tx = db.begin_read().map_err(db_err)?;
        let held = tx.open_table(BLOBS).map_err(db_err)?;
        for entry in held.iter().map_err(db_err)? {
            live.insert(iroh_blobs::Hash::from_bytes(
                entry.map_err(db_err)?.0.value(),
            ));
        }
        Ok(())
    };
    match read() {
        Ok(()) => ProtectOutcome::Continue,
        Err(e) => {
            tracing::warn!("skipping a blob sweep: {e}");
            ProtectOutcome::Abort
        }
    }
}

impl Store {
    /// Collects if usage is over the high watermark, down to the low one.
    pub fn collect_if_needed(&self) -> Result<Collected, StoreError> {
        let limits = &self.inner.limits;
        // Watermarks of the capacity the disk really offers.
        let capacity = self.capacity() as f64;
        let at = |f: f64| (capacity * f.clamp(0.0, 1.0)) as u64;
        if self.used() <= at(limits.gc_high) {
            return Ok(Collected::default());
        }
        self.collect(at(limits.gc_low))
    }

    /// Drops unpinned blobs, oldest orphan first, until usage is at most `target` or
    /// nothing unpinned is left. Pinned blobs are never dropped. Synchronous redb work:
    /// async callers run it on a blocking thread.
    pub fn collect(&self, target: u64) -> Result<Collected, StoreError> {
        let mut total = Collected::default();
        while self.used() > target {
            let tx = self.inner.db.begin_write().map_err(db_err)?;
            let mut batch = Collected::default();
            let mut looked = 0;
            {
                let mut orphans = tx.open_table(ORPHANS).map_err(db_err)?;
                let mut by_age = tx.open_table(BY_AGE).map_err(db_err)?;
                let pins = tx.open_table(PINS).map_err(db_err)?;
                let mut held = tx.open_table(BLOBS).map_err(db_err)?;
                let oldest: Vec<(u64, [u8; 32])> = by_age
                    .iter()
                    .map_err(db_err)?
                    .take(GC_BATCH)
                    .map(|e| e.map(|(k, _)| k.value()).map_err(db_err))
                    .collect::<Result<_, _>>()?;
                for (since, hash) in oldest {
                    looked += 1;
                    by_age.remove((since, hash)).map_err(db_err)?;
                    orphans.remove(&hash).map_err(db_err)?;
                    // Re-checked under this transaction: a pin always wins.
                    let key = Hash::from_bytes(hash);
                    if pins
                        .range(pin_range(&key))
                        .map_err(db_err)?
                        .next()
                        .is_some()
                    {
                        continue;
                    }
                    if let Some(size) = held.remove(&hash).map_err(db_err)? {
                        batch.blobs += 1;
                        batch.bytes += size.value();
                    }
                    if self.used().saturating_sub(batch.bytes) <= target {
                        break;
                    }
                }
            }
            tx.commit().map_err(db_err)?;
            let inner = &self.inner;
            sub_saturating(&inner.used, batch.bytes);
            sub_saturating(&inner.orphan_bytes, batch.bytes);
            total.blobs += batch.blobs;
            total.bytes += batch.bytes;
            if looked == 0 {
                break;
            }
        }
        if total.blobs > 0 {
            tracing::info!(
                blobs = total.blobs,
                bytes = total.bytes,
                used = self.used(),
                "collected unpinned blobs"
            );
        }
        Ok(total)
    }

    /// Bytes held but pinned by no one: what a collection could free.
    pub fn collectable(&self) -> u64 {
        self.inner.orphan_bytes.load(Ordering::Relaxed)
    }
}
