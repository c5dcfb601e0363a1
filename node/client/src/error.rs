//! The client's errors. Every one says what failed and what to do, carries its cause
//! typed (a node's refusal stays a [`Refusal`], not text), and answers
//! [`ErrorKind`] so callers choose exit codes and HTTP statuses without reading
//! messages.
//!
//! [`Refusal`]: mosaic_wire::proto::Refusal

use std::{fmt, path::PathBuf};

use iroh::EndpointId;
use mosaic_codec::{
    DecodeError, EncodeError, ErrorKind, Hash, ManifestError,
    name::{NameError, NameKey},
};
use mosaic_wire::{
    dht::RoutingError,
    endpoint::{DialError, EndpointError},
    proto::Refusal,
    record::RecordError,
    request::{FetchError, RequestError},
};

use crate::Role;

/// A client operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The endpoint could not bind.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// The DHT failed.
    #[error(transparent)]
    Routing(#[from] RoutingError),
    /// The DHT could not be joined.
    #[error(
        "could not join the network through {bootstrap:?}: check --bootstrap and that those nodes are running (to try Mosaic locally, start `mosaic devnet`)"
    )]
    NoNetwork {
        /// The bootstrap addresses tried.
        bootstrap: Vec<String>,
    },
    /// Relay-only mode with no relay naming the node that serves it.
    #[error(
        "relay-only mode makes its lookups through the node serving the relay: give --relay as NODE_ID@https://HOST:PORT#PIN, as that node prints it"
    )]
    NoLookupNode,
    /// Too few storage nodes for the columns.
    #[error(
        "found {found} storage nodes, {reachable} reachable, but {needed} are needed (one per column, k + m): start more nodes, or lower -k/-m"
    )]
    NotEnoughNodes {
        /// Nodes announced on the DHT.
        found: usize,
        /// Nodes that answered.
        reachable: usize,
        /// Columns to place.
        needed: usize,
    },
    /// Too few reachable storage nodes have room for a column.
    #[error(
        "only {with_room} of the {reachable} reachable storage nodes have room for a column of {column_len} bytes (the most free on any is {largest_free} bytes), and {needed} are needed; without room: {}. Free space on those nodes (unpin what you no longer need; their operators can raise --capacity), start more storage nodes, or use a larger -k (smaller columns)",
        NodesSpace(.full)
    )]
    NoRoom {
        /// Bytes of one column.
        column_len: u64,
        /// Nodes with room.
        with_room: usize,
        /// Nodes that answered.
        reachable: usize,
        /// Columns to place.
        needed: usize,
        /// The largest free space reported.
        largest_free: u64,
        /// The reachable nodes without room: id, bytes free, capacity.
        full: Vec<(EndpointId, u64, u64)>,
    },
    /// A node refused or failed while storing a blob.
    #[error("node {node} failed to store {what}: {source}{}", SpaceAdvice(source))]
    Upload {
        /// The node.
        node: EndpointId,
        /// Which blob of the file.
        what: Role,
        /// Its refusal, or the connection's error.
        source: RequestError,
    },
    /// An upload ended before the encoder was done, with no error of its own.
    #[error("node {node} stopped receiving {what} before the file was sent; try again")]
    UploadStopped {
        /// The node.
        node: EndpointId,
        /// Which blob of the file.
        what: Role,
    },
    /// A node stored other bytes than were sent.
    #[error(
        "node {node} reports hash {got} for {what}, expected {expected}: the data was altered in transit or by the node"
    )]
    StoredHashMismatch {
        /// The node.
        node: EndpointId,
        /// Which blob of the file.
        what: Role,
        /// Hash the node reported.
        got: Hash,
        /// Hash the encoder computed.
        expected: Hash,
    },
    /// Reading the input failed.
    #[error("cannot read {path}: {source}")]
    Input {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Encoding failed.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The manifest could not be found or reached.
    #[error(
        "no node holding file {id} could be reached ({holders} announced it): it may be gone, or its holders offline"
    )]
    ManifestUnavailable {
        /// The file id.
        id: Hash,
        /// Holders announced on the DHT.
        holders: usize,
    },
    /// The manifest is invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// Too few columns are reachable.
    #[error(
        "only {available} of the {need} columns needed are reachable; columns {missing:?} have no reachable holder: the file is unavailable until enough of their nodes return"
    )]
    ColumnsUnavailable {
        /// Columns with a reachable holder.
        available: usize,
        /// `k`.
        need: usize,
        /// Columns without one.
        missing: Vec<usize>,
    },
    /// Decoding failed.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The read stopped before its end, or out of order, without saying why.
    #[error("the read stopped before the end of the file; try again")]
    ReadStopped,
    /// Writing the output failed.
    #[error("writing the output failed: {0}")]
    Output(std::io::Error),
    /// A raw blob could not be read.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// A node could not be reached.
    #[error(transparent)]
    Dial(#[from] DialError),
    /// No holder of the file would repair it.
    #[error(
        "no holder of file {id} answered a repair request ({holders} announce it){}",
        if failures.is_empty() { String::new() } else { format!(": {failures}") }
    )]
    NoRepairer {
        /// The file id.
        id: Hash,
        /// Holders announced on the DHT.
        holders: usize,
        /// Each holder's failure, for humans.
        failures: String,
    },
    /// Fetching a blob of the file failed midway.
    #[error("fetching {what} failed: {source}")]
    Fetch {
        /// Which blob of the file.
        what: Role,
        /// Why.
        source: FetchError,
    },
    /// A file coded elsewhere was sent out of order, in pieces of the wrong size, or
    /// with a manifest that does not describe it.
    #[error("the coded upload is inconsistent: {0}")]
    Coded(String),
    /// A name or its record cannot be used.
    #[error(transparent)]
    Name(#[from] NameError),
    /// A record could not be signed or is forged.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The DHT has no record of the name.
    #[error(
        "no record of name {name} was found on the DHT: it was never published on this network, or the nodes keeping it are gone; its publisher can run `mosaic name publish` again"
    )]
    NoSuchName {
        /// The name.
        name: NameKey,
    },
    /// A name was to point at a file no node announces.
    #[error(
        "no storage node announces file {id}: upload it first (a name is kept alive by the nodes holding its target)"
    )]
    NoSuchTarget {
        /// The target's id.
        id: Hash,
    },
    /// Neither the DHT nor any holder of the target took the record.
    #[error("the name record reached neither the DHT ({dht}) nor any holder of its target: {}", Failures(.holders))]
    NameNotPublished {
        /// Why the DHT put failed.
        dht: String,
        /// Each holder's failure.
        holders: Vec<(EndpointId, PeerError)>,
    },
}

impl ClientError {
    /// What kind of failure this is (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            ClientError::Endpoint(e) => e.kind(),
            ClientError::Routing(e) => e.kind(),
            ClientError::Upload { source, .. } => source.kind(),
            ClientError::Encode(e) => e.kind(),
            ClientError::Decode(e) => e.kind(),
            ClientError::Manifest(e) => e.kind(),
            ClientError::Blob(e) => e.kind(),
            ClientError::Name(e) => e.kind(),
            ClientError::Coded(_) => ErrorKind::BadInput,
            ClientError::Record(e) => e.kind(),
            ClientError::NoSuchName { .. } | ClientError::NoSuchTarget { .. } => {
                ErrorKind::NotFound
            }
            // A holder's refusal says more than the DHT's failure.
            ClientError::NameNotPublished { holders, .. } => holders
                .iter()
                .map(|(_, e)| e.kind())
                .find(|k| *k != ErrorKind::Network)
                .unwrap_or(ErrorKind::Network),
            ClientError::ManifestUnavailable { holders: 0, .. }
            | ClientError::NoRepairer { holders: 0, .. } => ErrorKind::NotFound,
            ClientError::NoNetwork { .. }
            | ClientError::NotEnoughNodes { .. }
            | ClientError::ManifestUnavailable { .. }
            | ClientError::NoRepairer { .. }
            | ClientError::ColumnsUnavailable { .. }
            | ClientError::UploadStopped { .. }
            | ClientError::Dial(_)
            | ClientError::Fetch { .. }
            | ClientError::StoredHashMismatch { .. }
            | ClientError::ReadStopped => ErrorKind::Network,
            ClientError::NoRoom { .. } => ErrorKind::Space,
            ClientError::NoLookupNode => ErrorKind::BadInput,
            ClientError::Input { .. } | ClientError::Output(_) => ErrorKind::Other,
        }
    }
}

/// One peer could not do what was asked of it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// It could not be reached.
    #[error(transparent)]
    Dial(#[from] DialError),
    /// It refused, or the request failed.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// A blob fetch from it failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
}

impl PeerError {
    /// A refusal says its own kind; anything else is the network's.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PeerError::Request(e) => e.kind(),
            _ => ErrorKind::Network,
        }
    }
}

/// A raw blob could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    /// No node announces it.
    #[error("no storage node announces this blob")]
    NotFound,
    /// Nodes announce it, but none answered with it.
    #[error("{holders} nodes announce it but none could serve it: {}", Failures(.failures))]
    Unavailable {
        /// Nodes announcing it.
        holders: usize,
        /// What went wrong with each one tried.
        failures: Vec<(EndpointId, PeerError)>,
    },
    /// The DHT failed.
    #[error(transparent)]
    Routing(#[from] RoutingError),
}

impl BlobError {
    /// Unannounced is not found; the rest is the network's.
    pub fn kind(&self) -> ErrorKind {
        match self {
            BlobError::NotFound => ErrorKind::NotFound,
            BlobError::Routing(e) => e.kind(),
            BlobError::Unavailable { .. } => ErrorKind::Network,
        }
    }
}

/// What to do about a node's space refusal (nothing for other failures): the node's
/// own words say how full it is; these say what the user can change.
struct SpaceAdvice<'a>(&'a RequestError);

impl fmt::Display for SpaceAdvice<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.refusal() {
            Some(Refusal::NoSpace) => f.write_str(
                "; free space on that node (unpin files there; its operator can raise its --capacity), or start more storage nodes with room (a put sends a column a node refuses to a spare node)",
            ),
            Some(Refusal::QuotaExceeded) => f.write_str(
                "; unpin files you no longer need on that node (`mosaic rm`, `mosaic pin rm`), ask its operator for a larger --quota, or start more storage nodes (a put sends a column a node refuses to a spare node)",
            ),
            _ => Ok(()),
        }
    }
}

/// Nodes and their space, for messages: at most a few, then how many more.
struct NodesSpace<'a>(&'a [(EndpointId, u64, u64)]);

impl fmt::Display for NodesSpace<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 5;
        for (i, (node, free, capacity)) in self.0.iter().take(SHOWN).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{node} ({free} of {capacity} bytes free)")?;
        }
        if self.0.len() > SHOWN {
            write!(f, " and {} more", self.0.len() - SHOWN)?;
        }
        if self.0.is_empty() {
            f.write_str("none")?;
        }
        Ok(())
    }
}

/// Peers' failures, one per peer, for messages.
#[derive(Debug)]
pub struct Failures<'a>(pub &'a [(EndpointId, PeerError)]);

impl fmt::Display for Failures<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (node, e)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {e}", node.fmt_short())?;
        }
        Ok(())
    }
}
