//! Pins: `(blob, owner)` rows, added only for held blobs in the same transaction that
//! checks they are held, removed one owner at a time; a blob whose last pin goes
//! becomes an orphan. Also quarantine (a corrupt blob dropped, its owners returned so
//! the caller can repair).

use super::*;

/// What `record_pins` did.
#[derive(Debug, Default)]
pub(super) struct Recorded {
    /// Blobs not held (collected since the caller looked).
    pub(super) missing: Vec<Hash>,
    /// Pins that did not exist before.
    pub(super) new: usize,
}

pub(super) fn pin_range(hash: &Hash) -> std::ops::RangeInclusive<([u8; 32], [u8; 32])> {
    (*hash.as_bytes(), [0u8; 32])..=(*hash.as_bytes(), [0xffu8; 32])
}

impl Store {
    /// Records `owner`'s pins on `blobs`, with one FsStore sync and one redb
    /// transaction for the lot, and returns only once both have committed: a node that
    /// answers `Stored` and then crashes still has the blob when it restarts. With
    /// `add`, blobs not held yet are added (an import, whose temp tag keeps the bytes);
    /// without, they are returned as missing (collected since the caller looked).
    pub(super) async fn record_pins(
        &self,
        owner: EndpointId,
        blobs: &[(Hash, u64)],
        add: bool,
    ) -> Result<Recorded, StoreError> {
        let inner = &self.inner;
        if add {
            // The FsStore batches its metadata writes (up to 500 ms); without this, a
            // crash right after the answer loses the blob's entry (seen in a test).
            inner.blobs.sync_db().await.map_err(blobs_err)?;
        }
        let tx = inner.db.begin_write().map_err(db_err)?;
        let (mut newly_held, mut newly_pinned, mut adopted) = (0u64, 0u64, 0u64);
        let mut recorded = Recorded::default();
        {
            let mut held = tx.open_table(BLOBS).map_err(db_err)?;
            let mut pins = tx.open_table(PINS).map_err(db_err)?;
            let mut orphans = tx.open_table(ORPHANS).map_err(db_err)?;
            let mut by_age = tx.open_table(BY_AGE).map_err(db_err)?;
            let stamp = now();
            for &(hash, size) in blobs {
                let known = held
                    .get(hash.as_bytes())
                    .map_err(db_err)?
                    .map(|v| v.value());
                let size = match known {
                    Some(size) => size,
                    None if add => {
                        held.insert(hash.as_bytes(), size).map_err(db_err)?;
                        newly_held += size;
                        size
                    }
                    None => {
                        recorded.missing.push(hash);
                        continue;
                    }
                };
                if pins
                    .insert((*hash.as_bytes(), *owner.as_bytes()), stamp)
                    .map_err(db_err)?
                    .is_none()
                {
                    newly_pinned += size;
                    recorded.new += 1;
                }
                if let Some(since) = orphans.remove(hash.as_bytes()).map_err(db_err)? {
                    by_age
                        .remove((since.value(), *hash.as_bytes()))
                        .map_err(db_err)?;
                    adopted += size;
                }
            }
        }
        tx.commit().map_err(db_err)?;
        inner.used.fetch_add(newly_held, Ordering::SeqCst);
        sub_saturating(&inner.orphan_bytes, adopted);
        if newly_pinned > 0 {
            self.owners().entry(*owner.as_bytes()).or_default().pinned += newly_pinned;
        }
        Ok(recorded)
    }

    /// Pins held blobs for `owner`; returns the hashes not held here. Refused whole if
    /// the new pins would pass the owner's quota.
    pub async fn pin(&self, owner: EndpointId, hashes: &[Hash]) -> Result<Vec<Hash>, StoreError> {
        let mut missing = Vec::new();
        let mut held = Vec::new();
        let mut new_bytes = 0u64;
        {
            let tx = self.inner.db.begin_read().map_err(db_err)?;
            let sizes = tx.open_table(BLOBS).map_err(db_err)?;
            let pins = tx.open_table(PINS).map_err(db_err)?;
            for hash in hashes {
                match sizes.get(hash.as_bytes()).map_err(db_err)? {
                    Some(size) => {
                        let size = size.value();
                        let key = (*hash.as_bytes(), *owner.as_bytes());
                        if pins.get(key).map_err(db_err)?.is_none() {
                            new_bytes += size;
                        }
                        held.push((*hash, size));
                    }
                    None => missing.push(*hash),
                }
            }
        }
        // Reserved against the quota until recorded, so concurrent pins cannot both fit.
        self.reserve(&owner, new_bytes, false)?;
        let _reservation = Reservation {
            store: self,
            owner,
            size: new_bytes,
            space: false,
        };
        missing.extend(self.record_pins(owner, &held, false).await?.missing);
        Ok(missing)
    }

    /// Removes `owner`'s pins on `hashes`, in one transaction. A blob no one pins any
    /// more becomes an orphan: collectable.
    pub async fn unpin(&self, owner: EndpointId, hashes: &[Hash]) -> Result<(), StoreError> {
        let tx = self.inner.db.begin_write().map_err(db_err)?;
        let (mut released, mut orphaned) = (0u64, 0u64);
        {
            let mut pins = tx.open_table(PINS).map_err(db_err)?;
            let held = tx.open_table(BLOBS).map_err(db_err)?;
            let mut orphans = tx.open_table(ORPHANS).map_err(db_err)?;
            let mut by_age = tx.open_table(BY_AGE).map_err(db_err)?;
            let stamp = now();
            for hash in hashes {
                let removed = pins
                    .remove((*hash.as_bytes(), *owner.as_bytes()))
                    .map_err(db_err)?
                    .is_some();
                let Some(size) = held
                    .get(hash.as_bytes())
                    .map_err(db_err)?
                    .map(|v| v.value())
                else {
                    continue;
                };
                if !removed {
                    continue;
                }
                released += size;
                if pins
                    .range(pin_range(hash))
                    .map_err(db_err)?
                    .next()
                    .is_none()
                    && orphans
                        .insert(hash.as_bytes(), stamp)
                        .map_err(db_err)?
                        .is_none()
                {
                    by_age
                        .insert((stamp, *hash.as_bytes()), ())
                        .map_err(db_err)?;
                    orphaned += size;
                }
            }
        }
        tx.commit().map_err(db_err)?;
        self.inner
            .orphan_bytes
            .fetch_add(orphaned, Ordering::SeqCst);
        if let Some(entry) = self.owners().get_mut(owner.as_bytes()) {
            entry.pinned = entry.pinned.saturating_sub(released);
        }
        Ok(())
    }

    /// Drops a held blob found corrupt, and every pin on it: it is no longer listed as
    /// held (not announced, not offered by `Stat`), and the sweeper deletes its bytes.
    /// Returns the owners whose pins were dropped, so its file's repair can pin the
    /// rebuilt column for them.
    pub fn quarantine(&self, hash: &Hash) -> Result<Vec<EndpointId>, StoreError> {
        let tx = self.inner.db.begin_write().map_err(db_err)?;
        let mut owners = Vec::new();
        let mut size = 0;
        let mut was_orphan = false;
        {
            let mut held = tx.open_table(BLOBS).map_err(db_err)?;
            let mut pins = tx.open_table(PINS).map_err(db_err)?;
            let mut orphans = tx.open_table(ORPHANS).map_err(db_err)?;
            let mut by_age = tx.open_table(BY_AGE).map_err(db_err)?;
            if let Some(s) = held.remove(hash.as_bytes()).map_err(db_err)? {
                size = s.value();
            }
            let keys: Vec<[u8; 32]> = pins
                .range(pin_range(hash))
                .map_err(db_err)?
                .map(|e| e.map(|(k, _)| k.value().1).map_err(db_err))
                .collect::<Result<_, _>>()?;
            for owner in keys {
                pins.remove((*hash.as_bytes(), owner)).map_err(db_err)?;
                if let Ok(id) = EndpointId::from_bytes(&owner) {
                    owners.push(id);
                }
            }
            if let Some(since) = orphans.remove(hash.as_bytes()).map_err(db_err)? {
                by_age
                    .remove((since.value(), *hash.as_bytes()))
                    .map_err(db_err)?;
                was_orphan = true;
            }
        }
        tx.commit().map_err(db_err)?;
        let inner = &self.inner;
        sub_saturating(&inner.used, size);
        if was_orphan {
            sub_saturating(&inner.orphan_bytes, size);
        }
        let mut table = self.owners();
        for owner in &owners {
            if let Some(entry) = table.get_mut(owner.as_bytes()) {
                entry.pinned = entry.pinned.saturating_sub(size);
            }
        }
        Ok(owners)
    }
}
