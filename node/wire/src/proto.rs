//! Mosaic's storage protocol (ALPN `/mosaic/storage/1`): what a client asks of a node.
//!
//! One request per QUIC bidirectional stream. A frame is a little-endian `u32` length
//! followed by that many bytes of postcard-encoded [`Request`] or [`Response`]. A
//! `Store` request is followed, on the same stream, by exactly `size` raw bytes of the
//! blob; the node hashes them itself (BLAKE3, as iroh-blobs does) and answers with the
//! hash, which the client compares with the one its encoder computed.
//!
//! Why the client pushes (rather than the node fetching from the client over
//! iroh-blobs): one connection direction (a client behind NAT needs no incoming
//! connection), authorization and space are checked before a byte is accepted, and the
//! experimental iroh-blobs push path stays disabled. Reads go the other way, over
//! iroh-blobs' verified streaming.
//!
//! Limits: a frame is at most [`MAX_FRAME`] bytes; a request names at most
//! [`MAX_HASHES`] hashes; a node refuses a `Store` it has no room for before reading it.
//! Anything malformed is refused with [`Refusal::BadRequest`] and changes nothing.

#[cfg(feature = "net")]
use iroh::endpoint::{ClosedStream, ReadExactError, RecvStream, SendStream, WriteError};
use serde::{Deserialize, Serialize};

use mosaic_codec::{ErrorKind, Hash};

use crate::{addr::PeerAddr, record::SignedRecord};

/// The ALPN of the storage protocol.
pub const ALPN: &[u8] = b"/mosaic/storage/1";
/// Largest frame, in bytes.
pub const MAX_FRAME: usize = 64 << 10;
/// Most hashes in one request.
pub const MAX_HASHES: usize = 1024;

/// A client's request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Store the `size` bytes that follow and pin them for the caller.
    Store {
        /// Bytes that follow the frame.
        size: u64,
    },
    /// Pin blobs the node already holds, for the caller.
    Pin {
        /// Blob hashes.
        hashes: Vec<[u8; 32]>,
    },
    /// Drop the caller's pins on these blobs (other owners' pins stay).
    Unpin {
        /// Blob hashes.
        hashes: Vec<[u8; 32]>,
    },
    /// Space, and which of these blobs the node holds.
    Stat {
        /// Blob hashes.
        hashes: Vec<[u8; 32]>,
    },
    /// The node's state as the caller sees it (space, its own usage and quota, the
    /// announcer's progress), and for each of these blobs whether it is held and pinned.
    Status {
        /// Blob hashes.
        hashes: Vec<[u8; 32]>,
    },
    /// Keep a rebuilt column of file `file` (or, with no column, its manifest): the
    /// `size` bytes that follow, pinned for the file's owners. Sent by the node that
    /// repairs the file to a node that held nothing of it. The receiver checks the
    /// bytes against the manifest it holds (the manifest against `file`) before it
    /// keeps anything.
    Adopt {
        /// The file's id (its manifest's hash).
        file: [u8; 32],
        /// Which column; `None` for the manifest itself.
        column: Option<u16>,
        /// The owners to pin it for (those pinning the file on the repairing node).
        owners: Vec<[u8; 32]>,
        /// Bytes that follow.
        size: u64,
    },
    /// Check file `file` now and repair it if it needs it. Any client may ask a node
    /// that holds part of the file; no key is needed.
    Repair {
        /// The file's id.
        file: [u8; 32],
    },
    /// A DHT lookup made by the node for the caller: how a client in relay-only mode
    /// finds things without sending a datagram from its own address. Anyone may ask.
    Lookup(Lookup),
    /// Keep name record `record` (a name pointing at file `file`, which this node holds
    /// part of) and republish it to the DHT until the file is gone from this node. The
    /// node checks the signature, refuses a record older than the one it has, and puts
    /// the record to the DHT at once.
    HoldName {
        /// The signed record.
        record: SignedRecord,
        /// The file (manifest hash) the name points to; for a private name the record
        /// does not say, so the publisher does.
        file: [u8; 32],
    },
}

/// What a [`Request::Lookup`] asks the node to look up in the network's DHT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Lookup {
    /// The nodes that announced holding this blob.
    Providers([u8; 32]),
    /// The network's storage nodes.
    StorageNodes,
    /// Where this node said it can be reached.
    Address([u8; 32]),
    /// The newest record of this name.
    Name([u8; 32]),
}

/// Most ids in one [`Response::Found`].
pub const MAX_FOUND: usize = 256;

/// A node's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The blob is stored and pinned for the caller.
    Stored {
        /// Its BLAKE3 hash, computed by the node.
        hash: [u8; 32],
        /// Its size.
        size: u64,
        /// Whether the caller's pin is new (false: it pinned these bytes already), so a
        /// client undoing a failed upload removes only the pins it made.
        new_pin: bool,
    },
    /// Pins recorded; these hashes are not held here.
    Pinned {
        /// Hashes the node does not hold.
        missing: Vec<[u8; 32]>,
    },
    /// Pins removed.
    Unpinned,
    /// The node's space and holdings.
    Stat {
        /// Capacity in bytes.
        capacity: u64,
        /// Bytes used by held blobs.
        used: u64,
        /// For each hash asked about, whether it is held.
        held: Vec<bool>,
    },
    /// The answer to [`Request::Status`].
    Status(NodeStatus),
    /// The answer to [`Request::Repair`].
    Repaired(RepairReport),
    /// The answer to [`Request::Lookup`].
    Found(Found),
    /// The answer to [`Request::HoldName`]: the record is kept; whether the DHT took it.
    NameHeld {
        /// The DHT put succeeded.
        published: bool,
    },
    /// The request was refused; nothing changed.
    Refused {
        /// Why.
        reason: Refusal,
        /// For humans.
        message: String,
    },
}

/// What a node's DHT lookup found (see [`Lookup`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Found {
    /// Node ids, freshest announce first, at most [`MAX_FOUND`].
    Ids(Vec<[u8; 32]>),
    /// An address record (empty if none was found).
    Address(PeerAddr),
    /// A name's newest record, if any.
    Record(Option<SignedRecord>),
}

/// Why a node refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// The caller's identity may not store or pin here.
    Unauthorized,
    /// Not enough free space.
    NoSpace,
    /// The request is malformed or exceeds a limit.
    BadRequest,
    /// The node failed internally.
    Internal,
    /// The caller's quota on this node would be exceeded.
    QuotaExceeded,
    /// A name record older than the one the node holds.
    Stale,
    /// The caller is over one of the node's per-peer limits (requests or uploads at
    /// once, requests a second): nothing was done; try again later, or elsewhere.
    Busy,
}

/// A node's state, as one caller sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Capacity in bytes.
    pub capacity: u64,
    /// Bytes used by held blobs.
    pub used: u64,
    /// Of those, bytes no one pins (collected first when space runs short).
    pub collectable: u64,
    /// Usage above which unpinned blobs are collected.
    pub gc_high: u64,
    /// Held blobs.
    pub blobs: u64,
    /// Bytes the caller pins here.
    pub pinned_by_you: u64,
    /// The caller's quota here, if the node sets one.
    pub quota: Option<u64>,
    /// Records the announcer has yet to publish in its current round.
    pub announce_backlog: u64,
    /// Whether the announcer's last round reached the DHT with every record.
    pub announce_ok: bool,
    /// The node's software version.
    pub version: String,
    /// For each hash asked about: held, pinned by the caller, pinned by how many.
    pub blobs_asked: Vec<BlobPins>,
    /// The node's health checks, repairs and scrub.
    pub health: HealthStats,
}

/// What a node's health checks, repairs and scrub have done since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthStats {
    /// Files this node holds part of (their manifests).
    pub files: u64,
    /// File checks done.
    pub files_checked: u64,
    /// Columns found missing (no live holder) at the last check of each file, summed.
    pub columns_missing: u64,
    /// Files waiting for a repair (missing columns, within the grace or back-off).
    pub repair_backlog: u64,
    /// Repairs this node completed.
    pub repairs_done: u64,
    /// Repairs this node attempted that failed.
    pub repairs_failed: u64,
    /// Bytes of columns this node rebuilt and placed.
    pub bytes_rebuilt: u64,
    /// Bytes the scrubber re-hashed.
    pub bytes_scrubbed: u64,
    /// Blobs the scrubber found corrupt (and dropped).
    pub corrupt_found: u64,
    /// Completed scrub passes over every held blob.
    pub scrub_passes: u64,
}

/// What a repair found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairReport {
    /// The file's columns.
    pub columns: u16,
    /// Columns no live node had before the repair.
    pub missing: Vec<u16>,
    /// Columns rebuilt, and the node each now lives on.
    pub placed: Vec<(u16, [u8; 32])>,
    /// For humans: what happened, or why nothing was done.
    pub message: String,
}

/// A blob's pins on a node, from one caller's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobPins {
    /// The node holds it.
    pub held: bool,
    /// The caller pins it.
    pub yours: bool,
    /// Owners pinning it.
    pub owners: u32,
}

/// Reading or writing a frame failed.
#[cfg(feature = "net")]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtoError {
    /// Writing to the QUIC stream failed.
    #[error("connection error while sending: {0}")]
    Write(#[from] WriteError),
    /// Reading from the QUIC stream failed (or it ended early).
    #[error("connection error while receiving: {0}")]
    Read(#[from] ReadExactError),
    /// The stream was closed before it could be finished.
    #[error("the stream closed early: {0}")]
    Closed(#[from] ClosedStream),
    /// A frame was larger than [`MAX_FRAME`].
    #[error("peer sent a {len}-byte frame; the limit is {MAX_FRAME}")]
    FrameTooLarge {
        /// Announced length.
        len: usize,
    },
    /// A frame did not decode (or a message did not encode).
    #[error("peer sent a malformed message: {0}")]
    Malformed(#[from] postcard::Error),
}

#[cfg(feature = "net")]
impl ProtoError {
    /// A stream that fails or a peer that sends garbage is the network's problem.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Network
    }
}

/// Writes one frame.
#[cfg(feature = "net")]
pub async fn write_frame<T: Serialize>(send: &mut SendStream, msg: &T) -> Result<(), ProtoError> {
    let body = postcard::to_stdvec(msg)?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&body);
    Ok(send.write_all(&frame).await?)
}

/// Reads one frame, refusing any larger than [`MAX_FRAME`] before reading it.
#[cfg(feature = "net")]
pub async fn read_frame<T: for<'de> Deserialize<'de>>(
    recv: &mut RecvStream,
) -> Result<T, ProtoError> {
    let mut len = [0u8; 4];
    recv.read_exact(&mut len).await?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(ProtoError::FrameTooLarge { len });
    }
    let mut body = vec![0u8; len];
    recv.read_exact(&mut body).await?;
    Ok(postcard::from_bytes(&body)?)
}

/// Converts wire hashes.
pub fn hashes(h: &[[u8; 32]]) -> Vec<Hash> {
    h.iter().map(|b| Hash::from_bytes(*b)).collect()
}

impl Refusal {
    /// What kind of failure this refusal is for the caller.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Refusal::Unauthorized => ErrorKind::Refused,
            Refusal::NoSpace | Refusal::QuotaExceeded => ErrorKind::Space,
            Refusal::BadRequest => ErrorKind::BadInput,
            Refusal::Stale => ErrorKind::Refused,
            Refusal::Busy => ErrorKind::Network,
            Refusal::Internal => ErrorKind::Other,
        }
    }
}
