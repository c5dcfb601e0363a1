//! `mosaic-client`: a Mosaic network client, what the CLI and the gateway run.
//!
//! One [`Client`] (an iroh endpoint, a DHT node in client mode, a connection cache;
//! `client.rs`) whose operations live in their own files, each readable top to bottom:
//! - `put.rs`: the put pipeline ([`Client::put`]);
//! - the get pipeline, whole files ([`Client::get`]) and segment ranges
//!   ([`Client::read`], with a [`SegmentCache`]): `get.rs` runs it top to bottom,
//!   `find.rs` finds a file (holders, manifest, open, columns), `fetch.rs` streams
//!   columns and `failover.rs` decides what to do when a holder fails;
//! - `blob.rs`: raw blobs by hash ([`Client::open_blob`]);
//! - `pins.rs`: pinning a file's blobs and reading where they are held;
//! - `repair.rs`: keyless repair: rebuilding columns from others, verifying a blob,
//!   asking a file's holders to repair it;
//! - [`dir`]: directory indexes (static sites).
//!
//! Layer rule (enforced by this crate's dependency list): it builds on the wire and the
//! codec only; no storage server, no redb, no HTTP. Errors are typed
//! ([`ClientError`], [`BlobError`], [`PeerError`]) and answer
//! [`ErrorKind`](mosaic_codec::ErrorKind) through `kind()`. See `docs/architecture.md`.

mod address_book;
mod blob;
mod client;
mod coded;
pub mod dir;
mod error;
mod failover;
mod fetch;
mod find;
mod get;
pub mod lookups;
mod names;
mod pins;
mod put;
mod repair;
pub mod timings;

pub use blob::RemoteBlob;
pub use client::{Client, ClientOptions, StorageNode};
pub use coded::ColumnUpload;
pub use error::{BlobError, ClientError, Failures, PeerError};
pub use get::{GET_PIPE_DEPTH, GetReport, ReadOptions, Segment, SegmentCache, SegmentStream};
pub use names::{Published, Resolved};
pub use pins::{BlobHealth, FileHealth, PinReport, Place, UnpinReport};
pub use put::{PUT_PIPE_DEPTH, PutReport};
pub use repair::{ColumnStream, RebuildError, SourceError, rebuild_columns};
pub use timings::{Step, Timings};

use mosaic_codec::{Hash, Manifest};

/// What a blob is to its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The manifest (its hash is the file id).
    Manifest,
    /// Column `j`.
    Column(usize),
}

impl Role {
    /// The role of blob `index` in [`file_blobs`] order (manifest first).
    pub fn of_index(index: usize) -> Role {
        match index {
            0 => Role::Manifest,
            j => Role::Column(j - 1),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Role::Manifest => f.write_str("manifest"),
            Role::Column(j) => write!(f, "column {j}"),
        }
    }
}

/// The blobs of a file: manifest first, then columns.
pub fn file_blobs(manifest: &Manifest) -> Vec<Hash> {
    std::iter::once(manifest.id())
        .chain(manifest.columns().iter().copied())
        .collect()
}
