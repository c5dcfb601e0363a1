//! Import: a blob's bytes streamed into the FsStore, hashed, checked against the size
//! (and hash) promised, recorded in `blobs-0` and pinned for its owners in one write
//! transaction, and acknowledged only once both stores have committed.

use super::*;

impl Store {
    /// Imports `size` bytes from `data`, pins the blob for `owner`, returns its hash.
    /// Space and quota are reserved before the first byte is read and released after.
    pub async fn import(
        &self,
        owner: EndpointId,
        size: u64,
        data: impl Stream<Item = std::io::Result<Bytes>> + Send + Sync + 'static,
    ) -> Result<(Hash, bool), StoreError> {
        self.import_for(&[owner], size, data, None).await
    }

    /// Imports a blob that must hash to `expected` (a repaired column, or a file's
    /// manifest), pinned for each of `owners`; bytes that hash otherwise are not kept.
    /// Space is reserved (and checked against the quota) as the first owner's; the
    /// other owners' pins are recorded without a quota check: they already pinned this
    /// file elsewhere, and a repair must not fail on a quota they did not choose.
    pub async fn adopt(
        &self,
        owners: &[EndpointId],
        size: u64,
        data: impl Stream<Item = std::io::Result<Bytes>> + Send + Sync + 'static,
        expected: Hash,
    ) -> Result<(Hash, bool), StoreError> {
        self.import_for(owners, size, data, Some(expected)).await
    }

    pub(super) async fn import_for(
        &self,
        owners: &[EndpointId],
        size: u64,
        data: impl Stream<Item = std::io::Result<Bytes>> + Send + Sync + 'static,
        expected: Option<Hash>,
    ) -> Result<(Hash, bool), StoreError> {
        let owner = *owners.first().expect("at least one owner");
        self.make_room(size).await;
        self.reserve(&owner, size, true)?;
        // Released however this ends, the future dropped mid-upload included.
        let _reservation = Reservation {
            store: self,
            owner,
            size,
            space: true,
        };
        let inner = &self.inner;
        async {
            // The temp tag protects the new blob from the sweeper until it is in our
            // table (whose entries the sweeper's protect callback keeps).
            let tag = inner
                .blobs
                .add_stream(data)
                .await
                .temp_tag()
                .await
                .map_err(blobs_err)?;
            let hash = Hash::from_bytes(*tag.hash().as_bytes());
            let stored = inner.blobs.status(tag.hash()).await.map_err(blobs_err)?;
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
            if let Some(expected) = expected.filter(|e| *e != hash) {
                // The temp tag is dropped with this error: the sweeper deletes the bytes.
                return Err(StoreError::HashMismatch {
                    expected,
                    actual: hash,
                });
            }
            let recorded = self.record_pins(owner, &[(hash, size)], true).await?;
            for other in &owners[1..] {
                self.record_pins(*other, &[(hash, size)], true).await?;
            }
            // The temp tag is released only once a sweep's snapshot of `blobs-0` has
            // this row: see `protect_held`.
            inner.settled.lock().expect("settled tags lock").push(tag);
            Ok((hash, recorded.new > 0))
        }
        .await
        .map_err(|e| self.disk_full_is_no_space(e, size))
    }
}
