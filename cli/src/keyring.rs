//! The keyring: every upload this user made, in a redb file
//! (`$XDG_DATA_HOME/mosaic/keyring.redb`, mode 0600: it holds readcaps, which are
//! keys).
//!
//! One table, `files-0`: name → a JSON [`Record`]. JSON so fields can be added without
//! a migration (unknown fields are ignored, missing ones take defaults). Names are
//! unique, and an entry is never overwritten unless asked ([`Keyring::add`]): a new
//! file under a taken name is kept as `NAME (2)`, `NAME (3)`…

use std::{collections::BTreeSet, path::Path};

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

// One upload: the JSON the keyring stores is the one an export carries.
pub use crate::vault::format::Record;

impl Record {
    /// The same file pinned by the same identity: one entry is enough for both.
    fn same_file(&self, other: &Record) -> bool {
        self.cap == other.cap && self.key == other.key
    }
}

/// What [`Keyring::add`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    /// Recorded under the name asked for.
    New,
    /// The name asked for holds another file, kept as it was: recorded under the next
    /// free numbered name.
    Renamed {
        /// The name asked for.
        taken: String,
    },
    /// The same file, pinned by the same identity, was in the keyring already (under
    /// the name now in the record): nothing was added.
    Existing,
    /// The entry under the name asked for was replaced; this is what it held.
    Replaced(Box<Record>),
}

/// A name and its numbered variants: `report.pdf`, `report (2).pdf`, `report (3).pdf`…
/// (the number goes before a file's extension, so the name keeps its type; after a
/// directory's whole name).
#[derive(Debug)]
struct Series {
    stem: String,
    ext: String,
}

impl Series {
    fn new(name: &str, kind: &str) -> Self {
        let split = name.rfind('.').filter(|&dot| {
            let ext = &name[dot + 1..];
            kind != "directory"
                && dot > 0
                && (1..=8).contains(&ext.len())
                && ext.bytes().all(|b| b.is_ascii_alphanumeric())
                && ext.bytes().any(|b| b.is_ascii_alphabetic())
        });
        match split {
            Some(dot) => Self {
                stem: name[..dot].to_owned(),
                ext: name[dot..].to_owned(),
            },
            None => Self {
                stem: name.to_owned(),
                ext: String::new(),
            },
        }
    }

    /// Name number `n` (1 is the name itself).
    fn name(&self, n: u64) -> String {
        if n <= 1 {
            format!("{}{}", self.stem, self.ext)
        } else {
            format!("{} ({n}){}", self.stem, self.ext)
        }
    }

    /// What every numbered name starts with.
    fn prefix(&self) -> String {
        format!("{} (", self.stem)
    }

    /// The number of `name` in this series, if it is a numbered one.
    fn number(&self, name: &str) -> Option<u64> {
        let rest = name.strip_prefix(&self.prefix())?;
        let rest = rest.strip_suffix(&self.ext)?;
        let digits = rest.strip_suffix(')')?;
        let n: u64 = digits.parse().ok()?;
        (n >= 2 && self.name(n) == name).then_some(n)
    }
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
            // Another `mosaic` may create it at the same moment: then it is there.
            if let Err(e) = crate::keys::write_private(path, b"") {
                if !path.exists() {
                    return Err(e);
                }
            }
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

    /// The first entry of `name`'s series (`NAME`, `NAME (2)`, …; only `NAME` itself
    /// when `exact`) for which `matches` holds.
    pub fn find_in_series(
        &self,
        name: &str,
        kind: &str,
        exact: bool,
        matches: impl Fn(&Record) -> bool,
    ) -> Result<Option<Record>> {
        let tx = self.db.begin_read().map_err(err)?;
        let table = tx.open_table(FILES).map_err(err)?;
        let read = |v: &[u8]| serde_json::from_slice::<Record>(v).ok();
        if let Some(r) = table.get(name).map_err(err)?.and_then(|v| read(v.value())) {
            if matches(&r) {
                return Ok(Some(r));
            }
        }
        if exact {
            return Ok(None);
        }
        let series = Series::new(name, kind);
        let prefix = series.prefix();
        for entry in table.range(prefix.as_str()..).map_err(err)? {
            let (key, value) = entry.map_err(err)?;
            if !key.value().starts_with(&prefix) {
                break;
            }
            if series.number(key.value()).is_some() {
                if let Some(r) = read(value.value()).filter(|r| matches(r)) {
                    return Ok(Some(r));
                }
            }
        }
        Ok(None)
    }

    /// Records `record` without losing any entry: under its name if that is free; if
    /// the name's series (`NAME`, `NAME (2)`, …) already holds the same file pinned by
    /// the same identity, adds nothing (that entry learns the nodes of `record`);
    /// with `replace`, in place of the entry under its name; else under the first free
    /// numbered name. One transaction: concurrent uploads never overwrite each other.
    /// `record` becomes the entry as stored.
    pub fn add(&self, record: &mut Record, replace: bool) -> Result<Added> {
        let tx = self.db.begin_write().map_err(err)?;
        let added = {
            let mut table = tx.open_table(FILES).map_err(err)?;
            let asked = record.name.clone();
            let read = |name: &str| -> Result<Option<Option<Record>>> {
                // A damaged entry is taken, and never the same file.
                Ok(table
                    .get(name)
                    .map_err(err)?
                    .map(|v| serde_json::from_slice::<Record>(v.value()).ok()))
            };
            let (added, found) = if replace {
                match read(&asked)? {
                    None => (Added::New, None),
                    Some(Some(old)) if old.same_file(record) => (Added::Existing, Some(old)),
                    Some(Some(old)) => (Added::Replaced(Box::new(old)), None),
                    // Its cap cannot be read back: what it held is lost either way.
                    Some(None) => (Added::New, None),
                }
            } else {
                let series = Series::new(&asked, &record.kind);
                let mut taken = BTreeSet::new();
                let mut same = None;
                if let Some(entry) = read(&asked)? {
                    taken.insert(1);
                    same = entry.filter(|r| r.same_file(record));
                }
                if same.is_none() {
                    let prefix = series.prefix();
                    for entry in table.range(prefix.as_str()..).map_err(err)? {
                        let (name, value) = entry.map_err(err)?;
                        let name = name.value();
                        if !name.starts_with(&prefix) {
                            break;
                        }
                        let Some(n) = series.number(name) else {
                            continue;
                        };
                        taken.insert(n);
                        if let Ok(r) = serde_json::from_slice::<Record>(value.value()) {
                            if r.same_file(record) {
                                same = Some(r);
                                break;
                            }
                        }
                    }
                }
                match same {
                    Some(old) => (Added::Existing, Some(old)),
                    None if !taken.contains(&1) => (Added::New, None),
                    None => {
                        let n = (2..).find(|n| !taken.contains(n)).unwrap_or(u64::MAX);
                        record.name = series.name(n);
                        (Added::Renamed { taken: asked }, None)
                    }
                }
            };
            if let Some(old) = found {
                // The same blobs, pinned by the same identity: keep the entry, with the
                // nodes where this upload pinned them too.
                let mut nodes = old.nodes.clone();
                for n in &record.nodes {
                    if !nodes.contains(n) {
                        nodes.push(n.clone());
                    }
                }
                let blobs = if old.blobs.is_empty() {
                    record.blobs.clone()
                } else {
                    old.blobs.clone()
                };
                *record = Record {
                    nodes,
                    blobs,
                    ..old
                };
            }
            let json = serde_json::to_vec(&*record)?;
            table
                .insert(record.name.as_str(), json.as_slice())
                .map_err(err)?;
            added
        };
        tx.commit().map_err(err)?;
        Ok(added)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, cap: &str, key: &str) -> Record {
        Record {
            name: name.into(),
            size: 1,
            cap: cap.into(),
            created: 1,
            kind: "file".into(),
            key: key.into(),
            blobs: vec![],
            nodes: vec![],
            content: String::new(),
        }
    }

    #[test]
    fn numbered_names_keep_the_extension() {
        assert_eq!(Series::new("report.pdf", "file").name(2), "report (2).pdf");
        assert_eq!(Series::new("report", "file").name(3), "report (3)");
        assert_eq!(Series::new(".bashrc", "file").name(2), ".bashrc (2)");
        assert_eq!(Series::new("v1.2", "file").name(2), "v1.2 (2)");
        assert_eq!(Series::new("site.d", "directory").name(2), "site.d (2)");
        assert_eq!(Series::new("a.tar.gz", "file").name(2), "a.tar (2).gz");
        let s = Series::new("report.pdf", "file");
        assert_eq!(s.number("report (12).pdf"), Some(12));
        assert_eq!(s.number("report (1).pdf"), None);
        assert_eq!(s.number("report (02).pdf"), None);
        assert_eq!(s.number("report (x).pdf"), None);
        assert_eq!(s.number("report (2).txt"), None);
    }

    #[test]
    fn find_in_series_looks_at_the_name_and_its_numbered_variants_only() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let ring = Keyring::open(&dir.path().join("k.redb")).expect("opens");
        for (name, content) in [
            ("r.pdf", "one"),
            ("r (2).pdf", "two"),
            ("r (x).pdf", "three"),
            ("rr.pdf", "four"),
        ] {
            let mut r = record(name, name, "k");
            r.content = content.into();
            ring.add(&mut r, true).expect("adds");
        }
        let find = |content: &str, exact: bool| {
            ring.find_in_series("r.pdf", "file", exact, |r| r.content == content)
                .expect("reads")
                .map(|r| r.name)
        };
        assert_eq!(find("one", false).as_deref(), Some("r.pdf"));
        assert_eq!(find("two", false).as_deref(), Some("r (2).pdf"));
        assert_eq!(find("two", true), None, "exact: the name itself only");
        assert_eq!(find("three", false), None, "not a numbered variant");
        assert_eq!(find("four", false), None, "another name");
    }

    #[test]
    fn add_keeps_every_file_and_one_entry_per_file() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let ring = Keyring::open(&dir.path().join("k.redb")).expect("opens");
        let add = |name: &str, cap: &str, key: &str, replace: bool| {
            let mut r = record(name, cap, key);
            let added = ring.add(&mut r, replace).expect("adds");
            (r.name, added)
        };
        assert_eq!(add("r.pdf", "A", "k", false), ("r.pdf".into(), Added::New));
        let taken = Added::Renamed {
            taken: "r.pdf".into(),
        };
        assert_eq!(
            add("r.pdf", "B", "k", false),
            ("r (2).pdf".into(), taken.clone())
        );
        assert_eq!(
            add("r.pdf", "C", "k", false),
            ("r (3).pdf".into(), taken.clone())
        );
        // The same file again, wherever in the series it is: nothing added.
        assert_eq!(
            add("r.pdf", "B", "k", false),
            ("r (2).pdf".into(), Added::Existing)
        );
        assert_eq!(
            add("r.pdf", "A", "k", false),
            ("r.pdf".into(), Added::Existing)
        );
        // Pinned by another identity: an entry of its own (`rm` unpins as each).
        assert_eq!(
            add("r.pdf", "A", "j", false),
            ("r (4).pdf".into(), taken.clone())
        );
        // A gap is filled first.
        assert!(ring.remove("r (2).pdf").expect("removes"));
        assert_eq!(add("r.pdf", "D", "k", false), ("r (2).pdf".into(), taken));
        // Replacing says what the entry held.
        let (name, added) = add("r.pdf", "E", "k", true);
        assert_eq!(name, "r.pdf");
        match added {
            Added::Replaced(old) => assert_eq!(old.cap, "A"),
            other => panic!("{other:?}"),
        }
        assert_eq!(ring.list().expect("lists").len(), 4);
    }
}
