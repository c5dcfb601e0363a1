//! Directories: a public file listing other public files by path, so that a directory
//! tree (a static website) is one id.
//!
//! `mosaic put -r DIR --public` stores every file of the tree as a public file, then
//! this index, whose metadata media type is [`MEDIA_TYPE`]. Its bytes are JSON:
//!
//! ```json
//! {"mosaic_directory": 1,
//!  "entries": [{"path": "index.html", "id": "mi1…", "size": 1234}, …]}
//! ```
//!
//! Invariants (checked by [`Directory::parse`], so a gateway can trust a parsed index):
//! paths are relative, `/`-separated, with no empty, `.` or `..` component, unique,
//! sorted, and no path is both a file and a directory prefix of another; every id is
//! a public id. Sub-directories are implied by paths. An index is at most
//! [`MAX_INDEX_LEN`] bytes.
//!
//! Self-contained (external crates only, no `crate::` paths): the fuzz crate compiles
//! this file on its own (`fuzz/src/lib.rs`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use mosaic_codec::{CapError, ErrorKind, Hash, PublicId};

/// The media type that marks a public file as a directory index.
pub const MEDIA_TYPE: &str = "application/vnd.mosaic.directory+json";
/// Largest index a reader accepts (about 100 000 entries).
pub const MAX_INDEX_LEN: u64 = 16 << 20;
const VERSION: u32 = 1;

/// One file of a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its public id.
    pub id: PublicId,
    /// Its length in bytes.
    pub size: u64,
}

/// A directory index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directory {
    entries: BTreeMap<String, Entry>,
}

/// What a path names in a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// A file.
    File(&'a Entry),
    /// A directory (the root, or a prefix of some paths).
    Dir,
    /// Nothing.
    Missing,
}

/// An index that is not valid.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryError {
    /// A path is empty, absolute, or has an empty, `.` or `..` component.
    #[error("directory index is malformed: invalid path {0:?}")]
    InvalidPath(String),
    /// A path appears twice.
    #[error("directory index is malformed: duplicate path {0:?}")]
    Duplicate(String),
    /// A path is a file and a directory prefix of another.
    #[error("directory index is malformed: {0:?} is both a file and a directory")]
    FileAndDirectory(String),
    /// The index is too large.
    #[error("directory index is malformed: {len} bytes, more than the {MAX_INDEX_LEN} allowed")]
    TooLarge {
        /// Its length.
        len: u64,
    },
    /// The bytes are not an index's JSON.
    #[error("directory index is malformed: {0}")]
    Json(#[from] serde_json::Error),
    /// Another version of the format.
    #[error("directory index is malformed: version {0} (this build reads {VERSION})")]
    Version(u32),
    /// An entry's id is not a public id.
    #[error("directory index is malformed: entry {path:?}: {source}")]
    Id {
        /// The entry.
        path: String,
        /// Why its id does not parse.
        source: CapError,
    },
}

impl DirectoryError {
    /// Paths come from the caller when building an index; a fetched index that does
    /// not parse is bad data.
    pub fn kind(&self) -> ErrorKind {
        match self {
            DirectoryError::InvalidPath(_)
            | DirectoryError::Duplicate(_)
            | DirectoryError::FileAndDirectory(_) => ErrorKind::BadInput,
            _ => ErrorKind::Other,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Wire {
    mosaic_directory: u32,
    entries: Vec<WireEntry>,
}

#[derive(Serialize, Deserialize)]
struct WireEntry {
    path: String,
    id: String,
    size: u64,
}

/// Whether `path` is a valid entry path.
pub fn valid_path(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 4096
        && !path.contains(['\0', '\\'])
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

impl Directory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file; fails on an invalid or duplicate path, or one that clashes with a
    /// directory.
    pub fn insert(&mut self, path: &str, entry: Entry) -> Result<(), DirectoryError> {
        if !valid_path(path) {
            return Err(DirectoryError::InvalidPath(path.to_owned()));
        }
        if self.entries.contains_key(path) {
            return Err(DirectoryError::Duplicate(path.to_owned()));
        }
        let as_dir = format!("{path}/");
        if self
            .entries
            .range(as_dir.clone()..)
            .next()
            .is_some_and(|(p, _)| p.starts_with(&as_dir))
        {
            return Err(DirectoryError::FileAndDirectory(path.to_owned()));
        }
        let mut prefix = path;
        while let Some(i) = prefix.rfind('/') {
            prefix = &prefix[..i];
            if self.entries.contains_key(prefix) {
                return Err(DirectoryError::FileAndDirectory(prefix.to_owned()));
            }
        }
        self.entries.insert(path.to_owned(), entry);
        Ok(())
    }

    /// The entries, sorted by path.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.entries.iter().map(|(p, e)| (p.as_str(), e))
    }

    /// Number of files.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    /// Whether it lists no file.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// What `path` names (`""` is the root; a trailing `/` is ignored).
    pub fn lookup(&self, path: &str) -> Lookup<'_> {
        let path = path.trim_end_matches('/');
        if path.is_empty() {
            return Lookup::Dir;
        }
        if let Some(e) = self.entries.get(path) {
            return Lookup::File(e);
        }
        let prefix = format!("{path}/");
        match self.entries.range(prefix.clone()..).next() {
            Some((p, _)) if p.starts_with(&prefix) => Lookup::Dir,
            _ => Lookup::Missing,
        }
    }

    /// The direct children of directory `dir` (`""` for the root): names, and the entry
    /// for files (`None` for sub-directories).
    pub fn children(&self, dir: &str) -> Vec<(String, Option<&Entry>)> {
        let dir = dir.trim_end_matches('/');
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut out: Vec<(String, Option<&Entry>)> = Vec::new();
        for (p, e) in self.entries.range(prefix.clone()..) {
            let Some(rest) = p.strip_prefix(&prefix) else {
                break;
            };
            match rest.split_once('/') {
                None => out.push((rest.to_owned(), Some(e))),
                Some((sub, _)) => {
                    if out.last().is_none_or(|(n, e)| n != sub || e.is_some()) {
                        out.push((sub.to_owned(), None));
                    }
                }
            }
        }
        out
    }

    /// The index's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let wire = Wire {
            mosaic_directory: VERSION,
            entries: self
                .entries
                .iter()
                .map(|(path, e)| WireEntry {
                    path: path.clone(),
                    id: e.id.to_string(),
                    size: e.size,
                })
                .collect(),
        };
        serde_json::to_vec(&wire).expect("serializing plain data cannot fail")
    }

    /// Parses and checks an index.
    pub fn parse(bytes: &[u8]) -> Result<Self, DirectoryError> {
        if bytes.len() as u64 > MAX_INDEX_LEN {
            return Err(DirectoryError::TooLarge {
                len: bytes.len() as u64,
            });
        }
        let wire: Wire = serde_json::from_slice(bytes)?;
        if wire.mosaic_directory != VERSION {
            return Err(DirectoryError::Version(wire.mosaic_directory));
        }
        let mut dir = Directory::new();
        for e in wire.entries {
            let id: PublicId = match e.id.parse() {
                Ok(id) => id,
                Err(source) => {
                    return Err(DirectoryError::Id {
                        path: e.path,
                        source,
                    });
                }
            };
            dir.insert(&e.path, Entry { id, size: e.size })?;
        }
        Ok(dir)
    }

    /// Every id it lists.
    pub fn ids(&self) -> impl Iterator<Item = Hash> + '_ {
        self.entries.values().map(|e| e.id.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u8) -> Entry {
        Entry {
            id: PublicId { id: Hash::of(&[n]) },
            size: n as u64,
        }
    }

    #[test]
    fn round_trip_lookup_and_children() {
        let mut d = Directory::new();
        d.insert("index.html", entry(1)).unwrap();
        d.insert("css/site.css", entry(2)).unwrap();
        d.insert("css/img/a.png", entry(3)).unwrap();
        d.insert("docs/index.html", entry(4)).unwrap();
        let back = Directory::parse(&d.to_bytes()).unwrap();
        assert_eq!(back, d);
        assert_eq!(back.lookup(""), Lookup::Dir);
        assert_eq!(back.lookup("css"), Lookup::Dir);
        assert_eq!(back.lookup("css/"), Lookup::Dir);
        assert_eq!(back.lookup("cs"), Lookup::Missing);
        assert_eq!(back.lookup("index.html"), Lookup::File(&entry(1)));
        let root: Vec<String> = back.children("").into_iter().map(|c| c.0).collect();
        assert_eq!(root, ["css", "docs", "index.html"]);
        let css = back.children("css");
        assert_eq!(css.len(), 2);
        assert_eq!(css[0].0, "img");
        assert!(css[0].1.is_none());
        assert_eq!(css[1].0, "site.css");
    }

    #[test]
    fn refuses_bad_paths_and_clashes() {
        let mut d = Directory::new();
        for bad in ["", "/abs", "a//b", "a/./b", "../x", "a/", "a\\b"] {
            assert!(d.insert(bad, entry(1)).is_err(), "{bad:?}");
        }
        d.insert("a/b", entry(1)).unwrap();
        assert!(d.insert("a", entry(2)).is_err(), "file over a directory");
        assert!(
            d.insert("a/b/c", entry(2)).is_err(),
            "directory over a file"
        );
        assert!(d.insert("a/b", entry(2)).is_err(), "duplicate");
        assert!(Directory::parse(b"{}").is_err());
        assert!(Directory::parse(br#"{"mosaic_directory":2,"entries":[]}"#).is_err());
        assert!(
            Directory::parse(
                br#"{"mosaic_directory":1,"entries":[{"path":"x","id":"nope","size":1}]}"#
            )
            .is_err()
        );
    }
}
