//! The keyring: every upload this user made, in a redb file
//! (`$XDG_DATA_HOME/mosaic/keyring.redb`, mode 0600: it holds readcaps, which are
//! keys).
//!
//! One table, `files-0`: name → a JSON [`Record`]. JSON so fields can be added without
//! a migration (unknown fields are ignored, missing ones take defaults). Names are
//! unique: an upload under a taken name is refused before any byte is sent.

use std::path::Path;

use anyhow::{Context, Result};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::exit::{Code, fail};

const FILES: TableDefinition<&str, &[u8]> = TableDefinition::new("files-0");
/// Names this user published: name key's name → a JSON [`Published`].
const NAMES: TableDefinition<&str, &[u8]> = TableDefinition::new("names-0");

/// What was last published under one of this user's names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// The name key's name.
    pub name: String,
    /// The target: a readcap or id.
    pub target: String,
    /// The path inside the target ("" for itself).
    #[serde(default)]
    pub path: String,
    /// Whether the record is sealed (readers need the `ms1…` form).
    pub private: bool,
    /// Its sequence number.
    pub seq: i64,
    /// When (unix seconds).
    pub published: u64,
}

/// One upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The name it is known by here.
    pub name: String,
    /// Plaintext size in bytes (for a directory: the sum of its files).
    pub size: u64,
    /// The readcap (`mr1…`) or, for public files, the id (`mi1…`).
    pub cap: String,
    /// When it was uploaded (unix seconds).
    pub created: u64,
    /// `file` or `directory`.
    #[serde(default = "file_kind")]
    pub kind: String,
    /// The identity (key name) it was pinned with.
    #[serde(default)]
    pub key: String,
    /// The blobs to unpin on `rm`: the manifest's hash, then the columns' (hex).
    #[serde(default)]
    pub blobs: Vec<String>,
    /// Nodes where this user pinned it (ids), as last known.
    #[serde(default)]
    pub nodes: Vec<String>,
}

fn file_kind() -> String {
    "file".into()
}

/// The keyring database.
#[derive(Debug)]
pub struct Keyring {
    db: Database,
}

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("keyring database: {e}")
}

impl Keyring {
    /// Opens (creating 0600) the keyring at `path`; refuses one others can read.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        if !path.exists() {
            // Private before any secret lands in it; redb initializes an empty file.
            crate::keys::write_private(path, b"")?;
        }
        if let Some(mode) = mosaic_wire::identity::exposed_mode(path)? {
            return fail(
                Code::Refused,
                format!(
                    "the keyring {} can be read by other users (mode {mode:o}) and it holds your readcaps: run `chmod 600 {}`",
                    path.display(),
                    path.display()
                ),
            );
        }
        // Another `mosaic` may hold it for a moment (redb locks the file): wait a little.
        let mut waited = std::time::Duration::ZERO;
        let db = loop {
            match Database::create(path) {
                Err(redb::DatabaseError::DatabaseAlreadyOpen)
                    if waited < std::time::Duration::from_secs(10) =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    waited += std::time::Duration::from_millis(50);
                }
                other => {
                    break other.with_context(|| {
                        format!(
                            "cannot open the keyring {} (is another mosaic command stuck holding it?)",
                            path.display()
                        )
                    })?;
                }
            }
        };
        let tx = db.begin_write().map_err(err)?;
        tx.open_table(FILES).map_err(err)?;
        tx.open_table(NAMES).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(Self { db })
    }

    /// The record named `name`.
    pub fn get(&self, name: &str) -> Result<Option<Record>> {
        let tx = self.db.begin_read().map_err(err)?;
        let table = tx.open_table(FILES).map_err(err)?;
        let Some(v) = table.get(name).map_err(err)? else {
            return Ok(None);
        };
        Ok(Some(serde_json::from_slice(v.value()).with_context(
            || format!("the keyring entry {name:?} is damaged"),
        )?))
    }

    /// The record named `name`, or a not-found failure that says what to do.
    pub fn require(&self, name: &str) -> Result<Record> {
        match self.get(name)? {
            Some(r) => Ok(r),
            None => fail(
                Code::NotFound,
                format!(
                    "{name:?} is not in your keyring (`mosaic ls` lists it), nor a readcap or id"
                ),
            ),
        }
    }

    /// Every record, by name.
    pub fn list(&self) -> Result<Vec<Record>> {
        let tx = self.db.begin_read().map_err(err)?;
        let table = tx.open_table(FILES).map_err(err)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(err)? {
            let (name, v) = entry.map_err(err)?;
            out.push(
                serde_json::from_slice(v.value())
                    .with_context(|| format!("the keyring entry {:?} is damaged", name.value()))?,
            );
        }
        Ok(out)
    }

    /// Refuses if `name` is taken (by another cap).
    pub fn check_free(&self, name: &str) -> Result<()> {
        if self.get(name)?.is_some() {
            return fail(
                Code::Refused,
                format!(
                    "{name:?} is already in your keyring: choose another name with --name, or forget the old one with `mosaic rm {name}`"
                ),
            );
        }
        Ok(())
    }

    /// Inserts a record under a name that must be free (checked in the transaction: of
    /// two concurrent uploads under one name, the second is refused, not lost).
    pub fn insert_new(&self, record: &Record) -> Result<()> {
        let tx = self.db.begin_write().map_err(err)?;
        {
            let mut table = tx.open_table(FILES).map_err(err)?;
            if table.get(record.name.as_str()).map_err(err)?.is_some() {
                return fail(
                    Code::Refused,
                    format!("{:?} was added to your keyring meanwhile", record.name),
                );
            }
            let json = serde_json::to_vec(record)?;
            table
                .insert(record.name.as_str(), json.as_slice())
                .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// Inserts or replaces a record.
    pub fn put(&self, record: &Record) -> Result<()> {
        let tx = self.db.begin_write().map_err(err)?;
        {
            let mut table = tx.open_table(FILES).map_err(err)?;
            let json = serde_json::to_vec(record)?;
            table
                .insert(record.name.as_str(), json.as_slice())
                .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// What was last published under name `name`.
    pub fn published(&self, name: &str) -> Result<Option<Published>> {
        let tx = self.db.begin_read().map_err(err)?;
        let table = tx.open_table(NAMES).map_err(err)?;
        let Some(v) = table.get(name).map_err(err)? else {
            return Ok(None);
        };
        Ok(serde_json::from_slice(v.value()).ok())
    }

    /// Records a publication.
    pub fn put_published(&self, p: &Published) -> Result<()> {
        let tx = self.db.begin_write().map_err(err)?;
        {
            let mut table = tx.open_table(NAMES).map_err(err)?;
            let json = serde_json::to_vec(p)?;
            table
                .insert(p.name.as_str(), json.as_slice())
                .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// Removes a record; whether it was there.
    pub fn remove(&self, name: &str) -> Result<bool> {
        let tx = self.db.begin_write().map_err(err)?;
        let had = {
            let mut table = tx.open_table(FILES).map_err(err)?;
            table.remove(name).map_err(err)?.is_some()
        };
        tx.commit().map_err(err)?;
        Ok(had)
    }
}
