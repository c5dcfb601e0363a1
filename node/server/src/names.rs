//! Names this node keeps alive: signed records of names that point at files it holds
//! part of, republished to the DHT so a name stays resolvable while its publisher is
//! offline (BEP 44 lets DHT nodes drop items after two hours; DHT nodes restart and
//! forget).
//!
//! Kept in `names.redb` (table `names-0`: public key → postcard `Held`). Invariants:
//! - only verified records are kept, and a kept record is never replaced by one with a
//!   lower sequence number, whoever sends it (a client, or the DHT when republishing);
//! - each round first reads the DHT: a newer record found there replaces ours (it is
//!   the publisher's latest), and an older one is overwritten by ours;
//! - a name whose file this node no longer holds is dropped at the next round.

use std::{path::Path, sync::Arc, time::Duration};

use mosaic_codec::{Hash, name::Pointer};
use mosaic_wire::{
    dht::{Routing, RoutingError},
    record::{RecordError, SignedRecord},
};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use crate::store::Store;

const NAMES: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("names-0");
/// Names one node keeps at most (a record is ~1 KiB): beyond it, new names are refused.
pub const MAX_NAMES: u64 = 100_000;
/// Names republished at once (each a DHT get, then a put).
const PARALLEL: usize = 8;
/// A DHT put or lookup of one name may take this long.
const STEP_TIMEOUT: Duration = Duration::from_secs(15);

/// A kept record and the file it points at.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Held {
    record: SignedRecord,
    file: [u8; 32],
}

/// Why a record was not kept.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HoldError {
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("this node holds a newer record of this name (sequence number {have} > {offered})")]
    Stale { have: i64, offered: i64 },
    #[error("this node holds nothing of file {0}: send the name to the file's holders")]
    NotHeld(Hash),
    #[error("the record points to another file than {0}")]
    OtherFile(Hash),
    #[error("this node keeps {MAX_NAMES} names already")]
    Full,
    #[error("names database: {0}")]
    Db(String),
}

fn db_err(e: impl std::fmt::Display) -> HoldError {
    HoldError::Db(e.to_string())
}

/// The names this node keeps.
#[derive(Debug)]
pub(crate) struct Names {
    db: Database,
    store: Store,
    routing: Routing,
}

impl Names {
    /// Opens (creating) `names.redb` in `dir`.
    pub(crate) fn open(dir: &Path, store: Store, routing: Routing) -> Result<Self, redb::Error> {
        let db = Database::create(dir.join("names.redb"))?;
        let tx = db.begin_write()?;
        tx.open_table(NAMES)?;
        tx.commit()?;
        Ok(Self { db, store, routing })
    }

    /// Names kept (0 if the database cannot be read).
    pub(crate) fn count(&self) -> u64 {
        (|| -> Result<u64, redb::Error> {
            let tx = self.db.begin_read()?;
            Ok(tx.open_table(NAMES)?.len()?)
        })()
        .unwrap_or(0)
    }

    /// Keeps `record` (pointing at `file`) unless it is forged, older than the one
    /// kept, or for a file this node does not hold.
    pub(crate) fn hold(&self, record: SignedRecord, file: Hash) -> Result<(), HoldError> {
        record.verify()?;
        if !matches!(self.store.size_of(&file), Ok(Some(_))) {
            return Err(HoldError::NotHeld(file));
        }
        // A public record says its target: `file` must be it (a sealed one cannot be
        // checked; see `keep` for why a replay with another file changes nothing).
        if let Ok(pointer) = Pointer::decode(&record.value, &record.name(), None) {
            if pointer.target.id() != file {
                return Err(HoldError::OtherFile(file));
            }
        }
        self.keep(Held {
            record,
            file: *file.as_bytes(),
        })
    }

    /// Writes `held` if it is not older than what is kept (checked in the write
    /// transaction, so two senders cannot interleave an older record over a newer).
    fn keep(&self, held: Held) -> Result<(), HoldError> {
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut table = tx.open_table(NAMES).map_err(db_err)?;
            let previous = table
                .get(&held.record.key)
                .map_err(db_err)?
                .and_then(|v| postcard::from_bytes::<Held>(v.value()).ok());
            match previous {
                Some(p) if p.record.seq > held.record.seq => {
                    return Err(HoldError::Stale {
                        have: p.record.seq,
                        offered: held.record.seq,
                    });
                }
                // The same record again (anyone may replay it): nothing changes, so a
                // replay naming another file cannot make the node drop the name.
                Some(p) if p.record.seq == held.record.seq => return Ok(()),
                None if table.len().map_err(db_err)? >= MAX_NAMES => return Err(HoldError::Full),
                _ => {}
            }
            let bytes = postcard::to_stdvec(&held).map_err(db_err)?;
            table
                .insert(&held.record.key, bytes.as_slice())
                .map_err(db_err)?;
        }
        tx.commit().map_err(db_err)
    }

    fn all(&self) -> Result<Vec<Held>, HoldError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(NAMES).map_err(db_err)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(db_err)? {
            let (_, v) = row.map_err(db_err)?;
            if let Ok(held) = postcard::from_bytes::<Held>(v.value()) {
                out.push(held);
            }
        }
        Ok(out)
    }

    /// Removes name `key` if the record kept is still the one of sequence `seq` (a
    /// newer one that arrived meanwhile stays).
    fn remove(&self, key: &[u8; 32], seq: i64) -> Result<(), HoldError> {
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut table = tx.open_table(NAMES).map_err(db_err)?;
            let kept = table
                .get(key)
                .map_err(db_err)?
                .and_then(|v| postcard::from_bytes::<Held>(v.value()).ok());
            if kept.is_some_and(|k| k.record.seq == seq) {
                table.remove(key).map_err(db_err)?;
            }
        }
        tx.commit().map_err(db_err)
    }

    /// Puts a record to the DHT, bounded in time; whether it took.
    pub(crate) async fn publish(&self, record: &SignedRecord) -> bool {
        match tokio::time::timeout(STEP_TIMEOUT, self.routing.publish_record(record)).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                debug!(name = %record.name(), seq = record.seq, "name publish failed: {e}");
                false
            }
            Err(_) => false,
        }
    }

    /// One republish round over every kept name, [`PARALLEL`] at a time.
    async fn round(&self) -> Result<(usize, usize), HoldError> {
        let (mut published, mut failed) = (0, 0);
        let all = self.all()?;
        for chunk in all.chunks(PARALLEL) {
            for ok in n0_future::join_all(chunk.iter().map(|held| self.refresh(held))).await {
                match ok? {
                    Some(true) => published += 1,
                    Some(false) => failed += 1,
                    None => {}
                }
            }
        }
        Ok((published, failed))
    }

    /// Republishes one name: the DHT's newer record if there is one (adopted), else
    /// ours. `None` if the name was dropped (its file is gone from this node), else
    /// whether the put took.
    async fn refresh(&self, held: &Held) -> Result<Option<bool>, HoldError> {
        let key = held.record.key;
        if !matches!(
            self.store.size_of(&Hash::from_bytes(held.file)),
            Ok(Some(_))
        ) {
            debug!(name = %held.record.name(), "file gone from this node: name dropped");
            self.remove(&key, held.record.seq)?;
            return Ok(None);
        }
        let newest = tokio::time::timeout(STEP_TIMEOUT, self.routing.resolve_record(&key))
            .await
            .unwrap_or(Err(RoutingError::Shutdown));
        match newest {
            // The publisher's latest: keep and spread it instead of ours.
            Ok(Some(found)) if found.seq > held.record.seq && found.verify().is_ok() => {
                let newer = Held {
                    record: found,
                    file: held.file,
                };
                let took = self.publish(&newer.record).await;
                // A concurrent client's even newer record wins over this one.
                if let Err(e) = self.keep(newer) {
                    debug!("kept name not replaced: {e}");
                }
                Ok(Some(took))
            }
            // The DHT holds ours, an older one or none: put ours.
            Ok(_) => Ok(Some(self.publish(&held.record).await)),
            // Not knowing what the DHT holds, put nothing (it may be newer than ours).
            Err(e) => {
                debug!(name = %held.record.name(), "name lookup failed, not republished: {e}");
                Ok(Some(false))
            }
        }
    }
}

/// Republishes every kept name each `interval` (the first round soon after start: a
/// restarted network's DHT nodes hold nothing). A round that failed for some names is
/// retried sooner.
pub(crate) async fn run(names: Arc<Names>, interval: Duration) {
    const FIRST: Duration = Duration::from_secs(3);
    const RETRY: Duration = Duration::from_secs(30);
    let mut wait = FIRST.min(interval);
    loop {
        tokio::time::sleep(wait).await;
        if names.routing.routing_table_size().await.unwrap_or(0) == 0 {
            wait = FIRST;
            continue;
        }
        wait = match names.round().await {
            Ok((published, 0)) => {
                debug!(published, "names republished");
                interval
            }
            Ok((published, failed)) => {
                warn!(
                    published,
                    failed, "some names could not be republished; retrying"
                );
                RETRY.min(interval)
            }
            Err(e) => {
                warn!("republishing names: {e}");
                RETRY.min(interval)
            }
        };
    }
}
