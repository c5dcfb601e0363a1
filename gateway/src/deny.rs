//! The operator's denylist: ids and hashes the gateway answers with 410 Gone.
//!
//! One entry per line: a file id or blob hash in hex, a public id (`mi1…`) or a readcap
//! (`mr1…`; only its id is kept). `#` starts a comment; blank lines are ignored; a line
//! that is none of these is logged and skipped, so one typo does not lift the whole
//! list. The file is checked for changes every [`POLL`] and re-read when its
//! modification time or size changes; if it becomes unreadable, the last good list
//! stays in force.
//!
//! Self-contained (external crates only, no `crate::` paths): the fuzz crate compiles
//! this file on its own (`fuzz/src/lib.rs`).

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::{Duration, SystemTime},
};

use mosaic_codec::{Cap, Hash};
use tracing::{info, warn};

/// How often the file is checked for changes.
pub const POLL: Duration = Duration::from_secs(1);

/// The denylist, shared with its reloader.
#[derive(Debug, Clone, Default)]
pub struct Denylist {
    denied: Arc<RwLock<HashSet<Hash>>>,
}

impl Denylist {
    /// Loads `path` (if any) and starts watching it. A file that does not exist yet is
    /// an empty list (it is picked up when created); one that cannot be read is an
    /// error at start.
    pub fn load(path: Option<PathBuf>) -> std::io::Result<Self> {
        let list = Self::default();
        let Some(path) = path else {
            return Ok(list);
        };
        let mut seen = stamp(&path);
        if seen.is_some() {
            let set = read(&path)?;
            info!(entries = set.len(), "denylist {} loaded", path.display());
            *list.denied.write().expect("not poisoned") = set;
        }
        let denied = Arc::downgrade(&list.denied);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(POLL).await;
                let Some(denied) = denied.upgrade() else {
                    return; // the gateway is gone
                };
                let now = stamp(&path);
                if now == seen {
                    continue;
                }
                seen = now;
                match read(&path) {
                    Ok(set) => {
                        info!(entries = set.len(), "denylist {} reloaded", path.display());
                        *denied.write().expect("not poisoned") = set;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        info!("denylist {} removed: nothing denied", path.display());
                        denied.write().expect("not poisoned").clear();
                    }
                    Err(e) => warn!(
                        "denylist {} unreadable, keeping the previous list: {e}",
                        path.display()
                    ),
                }
            }
        });
        Ok(list)
    }

    /// Whether `hash` is denied.
    pub fn denies(&self, hash: &Hash) -> bool {
        self.denied.read().expect("not poisoned").contains(hash)
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

fn read(path: &Path) -> std::io::Result<HashSet<Hash>> {
    let text = std::fs::read_to_string(path)?;
    Ok(parse(&text, &path.display().to_string()))
}

/// Parses a denylist's text; `origin` names it in warnings.
pub fn parse(text: &str, origin: &str) -> HashSet<Hash> {
    let mut set = HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let entry = line.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        let parsed = Hash::from_hex(entry)
            .ok()
            .or_else(|| entry.parse::<Cap>().ok().map(|c| c.id()));
        match parsed {
            Some(h) => {
                set.insert(h);
            }
            None => warn!(
                "{origin}:{}: not a hash, id or readcap, skipped: {entry:?}",
                n + 1
            ),
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosaic_codec::PublicId;

    #[test]
    fn parses_every_form_and_skips_junk() {
        let a = Hash::of(b"a");
        let b = Hash::of(b"b");
        let text = format!(
            "# takedown 2026-11\n{}\n  {}  # public id\n\nnot-an-id\n",
            a.to_hex(),
            PublicId { id: b }
        );
        let set = parse(&text, "test");
        assert_eq!(set.len(), 2);
        assert!(set.contains(&a) && set.contains(&b));
    }
}
