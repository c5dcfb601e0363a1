//! The addresses of nodes this client has connected to, kept between runs in a small
//! JSON file (`mosaic` keeps it in its data directory), so a repeated get skips the
//! address lookups and costs one DHT lookup in all.
//!
//! An address is remembered only after a handshake at it proved the node's key, so the
//! file cannot be poisoned by the DHT; a stale address costs one failed connect, then a
//! fresh lookup. Entries unused for [`MAX_AGE`] are dropped, the newest
//! [`MAX_ENTRIES`] kept. A missing or unreadable file is an empty book.

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::Path,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use iroh::EndpointId;
use mosaic_wire::{dht::PeerAddr, relay::RelayInfo};
use serde::{Deserialize, Serialize};

/// Entries older than this are dropped.
pub const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Most entries kept.
pub const MAX_ENTRIES: usize = 4096;

/// One node's addresses and when they last worked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub addrs: Vec<SocketAddr>,
    /// The relay it was reached through, if it named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay: Option<RelayInfo>,
    /// Seconds since the Unix epoch.
    pub seen: u64,
}

impl Entry {
    pub(crate) fn peer_addr(&self) -> PeerAddr {
        PeerAddr {
            direct: self.addrs.clone(),
            relay: self.relay.clone(),
        }
    }
}

pub(crate) type Book = HashMap<EndpointId, Entry>;

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Reads the book at `path` (entries too old dropped).
pub(crate) fn load(path: &Path) -> Book {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Book::new();
    };
    let raw: HashMap<String, Entry> = serde_json::from_str(&text).unwrap_or_default();
    let oldest = now().saturating_sub(MAX_AGE.as_secs());
    raw.into_iter()
        .filter(|(_, e)| e.seen >= oldest && !e.peer_addr().is_empty())
        .filter_map(|(id, e)| Some((id.parse().ok()?, e)))
        .collect()
}

/// Writes `book` to `path` atomically (a temporary file renamed over it); the newest
/// [`MAX_ENTRIES`] only. Failing to write only costs lookups next time.
pub(crate) fn save(path: &Path, book: &Book) -> std::io::Result<()> {
    let mut entries: Vec<(&EndpointId, &Entry)> = book.iter().collect();
    entries.sort_by_key(|(_, e)| std::cmp::Reverse(e.seen));
    entries.truncate(MAX_ENTRIES);
    let raw: HashMap<String, &Entry> = entries
        .into_iter()
        .map(|(id, e)| (id.to_string(), e))
        .collect();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(
        &tmp,
        serde_json::to_vec(&raw).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_drops_old_entries() {
        let dir = tempfile_dir();
        let path = dir.join("addresses.json");
        let fresh = iroh::SecretKey::from_bytes(&[1; 32]).public();
        let old = iroh::SecretKey::from_bytes(&[2; 32]).public();
        let mut book = Book::new();
        let addr: SocketAddr = "127.0.0.1:4919".parse().unwrap_or_else(|_| unreachable!());
        book.insert(
            fresh,
            Entry {
                addrs: vec![addr],
                relay: None,
                seen: now(),
            },
        );
        book.insert(
            old,
            Entry {
                addrs: vec![addr],
                relay: None,
                seen: 1,
            },
        );
        save(&path, &book).expect("writes");
        let back = load(&path);
        assert_eq!(back.len(), 1);
        assert_eq!(back[&fresh].addrs, vec![addr]);
        std::fs::write(&path, b"not json").expect("writes");
        assert!(load(&path).is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("mosaic-book-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creates");
        dir
    }
}
