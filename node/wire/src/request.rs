//! Requests to one peer over a connection already made: the storage protocol's
//! exchanges (one request, one answer, on a new stream) and iroh-blobs' verified gets.
//! Every caller (client, node, tests) goes through these, so the handshakes are
//! written once and every failure comes back typed.
//!
//! Invariants: a node's refusal comes back as [`RequestError::Refused`] with its
//! [`Refusal`], never as text; every step of a blob fetch is bounded by a stall timeout;
//! a blob's claimed size is checked against a limit before any buffer is sized by it.
//!
//! No request waits on a frozen peer: every one of them (exchanges, uploads, fetches)
//! fails once the peer has sent nothing for [`silence_limit`], a few of the endpoint's
//! keep-alives plus a few round trips. A live peer acknowledges keep-alives even while
//! it works on a long answer (a repair, a DHT lookup), so only silence counts, never the
//! length of the work.

use std::time::{Duration, Instant};

use bao_tree::io::BaoContentItem;
use bytes::Bytes;
use iroh::endpoint::{ConnectionError, WriteError};
use iroh_blobs::{
    get::{GetError, fsm},
    protocol::{ChunkRanges, ChunkRangesExt, GetRequest},
};
use mosaic_codec::{ErrorKind, Hash};
use tokio::sync::mpsc;

use crate::{
    endpoint::KEEP_ALIVE,
    proto::{self, NodeStatus, ProtoError, Refusal, Request, Response},
};

pub use iroh::endpoint::Connection;

/// A storage-protocol request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// No stream could be opened: the connection is gone.
    #[error("cannot open a stream: {0}")]
    Open(#[from] ConnectionError),
    /// Sending the request or reading the answer failed.
    #[error(transparent)]
    Proto(#[from] ProtoError),
    /// Streaming a blob's bytes failed.
    #[error("sending the bytes failed: {0}")]
    Send(#[source] WriteError),
    /// The node refused; nothing changed there.
    #[error("{message}")]
    Refused {
        /// Why, as the protocol says it.
        reason: Refusal,
        /// The node's words, for humans.
        message: String,
    },
    /// The node sent nothing at all (not even an acknowledgement) for this long: it is
    /// frozen, overloaded past answering, or gone.
    #[error("the node sent nothing for {0:.1?}: it is frozen or gone")]
    Silent(Duration),
    /// The node answered with a message of another kind.
    #[error("unexpected answer to {request}: {answer}")]
    Unexpected {
        /// The request sent.
        request: &'static str,
        /// The kind of answer received.
        answer: &'static str,
    },
}

impl RequestError {
    /// A refusal says its own kind; anything else is the network's.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RequestError::Refused { reason, .. } => reason.kind(),
            _ => ErrorKind::Network,
        }
    }

    /// The node's refusal, if it refused.
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            RequestError::Refused { reason, .. } => Some(*reason),
            _ => None,
        }
    }
}

fn name(request: &Request) -> &'static str {
    match request {
        Request::Store { .. } => "Store",
        Request::Pin { .. } => "Pin",
        Request::Unpin { .. } => "Unpin",
        Request::Stat { .. } => "Stat",
        Request::Adopt { .. } => "Adopt",
        Request::Repair { .. } => "Repair",
        Request::Status { .. } => "Status",
        Request::Lookup(_) => "Lookup",
        Request::HoldName { .. } => "HoldName",
    }
}

fn answer_name(response: &Response) -> &'static str {
    match response {
        Response::Stored { .. } => "Stored",
        Response::Pinned { .. } => "Pinned",
        Response::Unpinned => "Unpinned",
        Response::Stat { .. } => "Stat",
        Response::Status(_) => "Status",
        Response::Repaired(_) => "Repaired",
        Response::Found(_) => "Found",
        Response::NameHeld { .. } => "NameHeld",
        Response::Refused { .. } => "Refused",
    }
}

/// The least time a peer may stay silent before requests to it fail.
pub const SILENCE_FLOOR: Duration = Duration::from_millis(1500);

/// How long `conn`'s peer may send nothing before requests to it fail: three keep-alive
/// intervals plus four round trips, at least [`SILENCE_FLOOR`]. A live peer answers
/// every keep-alive within a round trip, so this is never reached on a working link,
/// however slow the work it does for us.
pub fn silence_limit(conn: &Connection) -> Duration {
    let rtt = rtt(conn).min(Duration::from_secs(5));
    SILENCE_FLOOR.max(KEEP_ALIVE * 3 + rtt * 4)
}

/// The round-trip time of a connection's selected path (`Duration::MAX` without one).
pub fn rtt(conn: &Connection) -> Duration {
    conn.paths()
        .iter()
        .find(|p| p.is_selected())
        .map(|p| p.rtt())
        .unwrap_or(Duration::MAX)
}

/// Resolves once `conn`'s peer has sent no datagram for `limit`, with how long it has
/// been silent. Polls the connection's receive counter a few times per `limit`.
pub async fn silent(conn: &Connection, limit: Duration) -> Duration {
    let tick = (limit / 4).max(Duration::from_millis(50));
    let mut heard = conn.stats().udp_rx.datagrams;
    let mut since = Instant::now();
    loop {
        tokio::time::sleep(tick).await;
        let now = conn.stats().udp_rx.datagrams;
        if now != heard {
            heard = now;
            since = Instant::now();
        } else if since.elapsed() >= limit {
            return since.elapsed();
        }
    }
}

/// Runs `work` on `conn`, failing with [`RequestError::Silent`] if the peer goes
/// silent for [`silence_limit`] first.
async fn guarded<T>(
    conn: &Connection,
    work: impl Future<Output = Result<T, RequestError>>,
) -> Result<T, RequestError> {
    tokio::select! {
        biased;
        result = work => result,
        quiet = silent(conn, silence_limit(conn)) => Err(RequestError::Silent(quiet)),
    }
}

/// One request, one answer, on a new stream of `conn`. A refusal is an error.
pub async fn exchange(conn: &Connection, request: &Request) -> Result<Response, RequestError> {
    guarded(conn, async {
        let (mut send, mut recv) = conn.open_bi().await?;
        proto::write_frame(&mut send, request).await?;
        let _ = send.finish();
        match proto::read_frame::<Response>(&mut recv).await? {
            Response::Refused { reason, message } => Err(RequestError::Refused { reason, message }),
            answer => Ok(answer),
        }
    })
    .await
}

fn unexpected(request: &Request, answer: &Response) -> RequestError {
    RequestError::Unexpected {
        request: name(request),
        answer: answer_name(answer),
    }
}

fn wire(hashes: &[Hash]) -> Vec<[u8; 32]> {
    hashes.iter().map(|h| *h.as_bytes()).collect()
}

/// A node's space, and which of the hashes asked about it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// Capacity in bytes.
    pub capacity: u64,
    /// Bytes used.
    pub used: u64,
    /// For each hash asked about, whether it is held.
    pub held: Vec<bool>,
}

/// Asks a node for its space and which of `hashes` it holds.
pub async fn stat(conn: &Connection, hashes: &[Hash]) -> Result<Stat, RequestError> {
    let request = Request::Stat {
        hashes: wire(hashes),
    };
    match exchange(conn, &request).await? {
        Response::Stat {
            capacity,
            used,
            held,
        } => Ok(Stat {
            capacity,
            used,
            held,
        }),
        other => Err(unexpected(&request, &other)),
    }
}

/// Asks a node for its status and the pins on `hashes` (at most [`proto::MAX_HASHES`]).
pub async fn status(conn: &Connection, hashes: &[Hash]) -> Result<NodeStatus, RequestError> {
    let request = Request::Status {
        hashes: wire(hashes),
    };
    match exchange(conn, &request).await? {
        Response::Status(status) => Ok(status),
        other => Err(unexpected(&request, &other)),
    }
}

/// Pins (or unpins) `hashes` for the caller, in requests of at most
/// [`proto::MAX_HASHES`]; returns the hashes the node does not hold (none for unpins).
pub async fn pin(conn: &Connection, hashes: &[Hash], pin: bool) -> Result<Vec<Hash>, RequestError> {
    let mut missing = Vec::new();
    for chunk in hashes.chunks(proto::MAX_HASHES) {
        let request = if pin {
            Request::Pin {
                hashes: wire(chunk),
            }
        } else {
            Request::Unpin {
                hashes: wire(chunk),
            }
        };
        match exchange(conn, &request).await? {
            Response::Pinned { missing: m } => missing.extend(proto::hashes(&m)),
            Response::Unpinned => {}
            other => return Err(unexpected(&request, &other)),
        }
    }
    Ok(missing)
}

/// What a node said it stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// The hash it computed of the bytes it received.
    pub hash: Hash,
    /// Whether the caller's pin on it is new (a failed upload undoes only new pins).
    pub new_pin: bool,
}

/// Streams `size` bytes from `rx` to a node as one `Store`; returns the hash the node
/// computed and whether the pin it recorded for the caller is new. Dropping `rx` early
/// (when the node stops the stream) tells the sender to stop.
pub async fn upload(
    conn: &Connection,
    size: u64,
    rx: mpsc::Receiver<Bytes>,
) -> Result<Stored, RequestError> {
    send_blob(conn, Request::Store { size }, rx).await
}

/// Streams a rebuilt column (or, with `column` `None`, the manifest) of file `file` to
/// a node that holds nothing of it, to be pinned there for `owners`
/// ([`Request::Adopt`]). The node checks the bytes against the manifest before it
/// keeps them; dropping the sender's side with fewer than `size` bytes sent makes the
/// node discard them.
pub async fn adopt(
    conn: &Connection,
    file: &Hash,
    column: Option<u16>,
    owners: &[[u8; 32]],
    size: u64,
    rx: mpsc::Receiver<Bytes>,
) -> Result<Stored, RequestError> {
    let request = Request::Adopt {
        file: *file.as_bytes(),
        column,
        owners: owners.to_vec(),
        size,
    };
    send_blob(conn, request, rx).await
}

/// Asks a node to look something up in the DHT for the caller ([`Request::Lookup`]).
pub async fn lookup(conn: &Connection, what: proto::Lookup) -> Result<proto::Found, RequestError> {
    let request = Request::Lookup(what);
    match exchange(conn, &request).await? {
        Response::Found(found) => Ok(found),
        other => Err(unexpected(&request, &other)),
    }
}

/// Asks a holder of file `file` to keep and republish name record `record`
/// ([`Request::HoldName`]); `Ok(published)` says whether its DHT put succeeded.
pub async fn hold_name(
    conn: &Connection,
    record: &crate::record::SignedRecord,
    file: &Hash,
) -> Result<bool, RequestError> {
    let request = Request::HoldName {
        record: record.clone(),
        file: *file.as_bytes(),
    };
    match exchange(conn, &request).await? {
        Response::NameHeld { published } => Ok(published),
        other => Err(unexpected(&request, &other)),
    }
}

/// Asks a holder of file `file` to check it and repair it now ([`Request::Repair`]).
pub async fn repair(conn: &Connection, file: &Hash) -> Result<proto::RepairReport, RequestError> {
    let request = Request::Repair {
        file: *file.as_bytes(),
    };
    match exchange(conn, &request).await? {
        Response::Repaired(report) => Ok(report),
        other => Err(unexpected(&request, &other)),
    }
}

/// Sends `request` (a `Store` or an `Adopt`) followed by the bytes from `rx`. A node
/// that goes silent mid-way fails the upload within [`silence_limit`], whatever the
/// flow-control window still accepts.
async fn send_blob(
    conn: &Connection,
    request: Request,
    rx: mpsc::Receiver<Bytes>,
) -> Result<Stored, RequestError> {
    guarded(conn, send_blob_unguarded(conn, request, rx)).await
}

async fn send_blob_unguarded(
    conn: &Connection,
    request: Request,
    mut rx: mpsc::Receiver<Bytes>,
) -> Result<Stored, RequestError> {
    let (mut send, mut recv) = conn.open_bi().await?;
    proto::write_frame(&mut send, &request).await?;
    let mut write_error = None;
    while let Some(chunk) = rx.recv().await {
        if let Err(e) = send.write_chunk(chunk).await {
            write_error = Some(e);
            break;
        }
    }
    drop(rx);
    let _ = send.finish();
    match proto::read_frame::<Response>(&mut recv).await {
        Ok(Response::Stored { hash, new_pin, .. }) => Ok(Stored {
            hash: Hash::from_bytes(hash),
            new_pin,
        }),
        Ok(Response::Refused { reason, message }) => Err(RequestError::Refused { reason, message }),
        Ok(other) => Err(unexpected(&request, &other)),
        // The node's answer explains best; without one, the write error does.
        Err(e) => Err(match write_error {
            Some(w) => RequestError::Send(w),
            None => e.into(),
        }),
    }
}

/// A verified blob fetch (iroh-blobs) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The request failed, or bytes failed verification.
    #[error(transparent)]
    Get(#[from] GetError),
    /// The holder sent nothing for this long.
    #[error("no progress for {0:.1?}")]
    Stalled(Duration),
    /// The holder sent nothing at all, not even an acknowledgement, for this long.
    #[error("the holder sent nothing for {0:.1?}: it is frozen or gone")]
    Silent(Duration),
    /// The holder answered a single-blob request with something else.
    #[error("the holder answered with an unexpected response shape")]
    Shape,
    /// The blob is larger than the caller allows.
    #[error("the holder claims {size} bytes, more than the {max} allowed")]
    TooLarge {
        /// Claimed size.
        size: u64,
        /// The caller's limit.
        max: u64,
    },
    /// The blob's size is not the one the caller knows it must have.
    #[error("the holder claims {size} bytes, expected {expected}")]
    WrongSize {
        /// Claimed size.
        size: u64,
        /// The size expected.
        expected: u64,
    },
    /// The holder sent bytes outside the blob.
    #[error("the holder sent bytes at {offset}, beyond the blob's {size} bytes")]
    OutOfBounds {
        /// Where.
        offset: u64,
        /// The blob's size.
        size: u64,
    },
    /// The stream ended before the bytes asked for.
    #[error("the holder stopped at byte {at}")]
    Ended {
        /// First byte not received.
        at: u64,
    },
}

impl FetchError {
    /// A fetch fails because of a peer or the network: another holder may do better.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Network
    }
}

/// Runs `fut`, failing with [`FetchError::Stalled`] after `limit`, or with
/// [`FetchError::Silent`] as soon as `conn`'s peer has been silent for
/// [`silence_limit`].
pub async fn within<T>(
    conn: &Connection,
    limit: Duration,
    fut: impl Future<Output = T>,
) -> Result<T, FetchError> {
    tokio::select! {
        biased;
        done = tokio::time::timeout(limit, fut) => done.map_err(|_| FetchError::Stalled(limit)),
        quiet = silent(conn, silence_limit(conn)) => Err(FetchError::Silent(quiet)),
    }
}

/// The one iroh-blobs handshake: starts `request` (a single blob, whole or in ranges)
/// on `conn` and returns its content reader and the size the holder claims (proven only
/// once content covering the last chunk verifies). Each step may stall `stall` at most.
pub async fn get_blob(
    conn: &Connection,
    request: GetRequest,
    stall: Duration,
) -> Result<(fsm::AtBlobContent, u64), FetchError> {
    let at_start = fsm::start(conn.clone(), request, Default::default());
    let connected = within(conn, stall, at_start.next())
        .await?
        .map_err(GetError::from)?;
    let fsm::ConnectedNext::StartRoot(root) = within(conn, stall, connected.next())
        .await?
        .map_err(GetError::from)?
    else {
        return Err(FetchError::Shape);
    };
    Ok(within(conn, stall, root.next().next())
        .await?
        .map_err(GetError::from)?)
}

/// The next verified item of a blob's content from `conn`, or `None` at its end.
pub async fn next_item(
    conn: &Connection,
    content: fsm::AtBlobContent,
    stall: Duration,
) -> Result<Option<(fsm::AtBlobContent, BaoContentItem)>, FetchError> {
    match within(conn, stall, content.next()).await? {
        fsm::BlobContentNext::More((more, item)) => Ok(Some((more, item.map_err(GetError::from)?))),
        fsm::BlobContentNext::Done(_) => Ok(None),
    }
}

/// Bytes `range` of a blob, verified as they arrive, in order and clipped to the
/// range (iroh-blobs sends whole 16 KiB chunk groups): the one loop over a blob's leaves
/// that ranged reads share.
#[derive(Debug)]
pub struct RangeRead {
    conn: Connection,
    content: Option<fsm::AtBlobContent>,
    range: std::ops::Range<u64>,
    sent: u64,
    stall: Duration,
}

impl RangeRead {
    /// Asks `conn` for bytes `range` of blob `hash`. Fails with
    /// [`FetchError::WrongSize`] if the holder's blob is not `size` bytes (when given).
    pub async fn start(
        conn: &Connection,
        hash: &Hash,
        range: std::ops::Range<u64>,
        size: Option<u64>,
        stall: Duration,
    ) -> Result<Self, FetchError> {
        let content = if range.is_empty() {
            None
        } else {
            let hash = iroh_blobs::Hash::from_bytes(*hash.as_bytes());
            let get = GetRequest::blob_ranges(hash, ChunkRanges::bytes(range.clone()));
            let (content, found) = get_blob(conn, get, stall).await?;
            if let Some(expected) = size.filter(|s| *s != found) {
                return Err(FetchError::WrongSize {
                    size: found,
                    expected,
                });
            }
            Some(content)
        };
        Ok(Self {
            conn: conn.clone(),
            content,
            sent: range.start,
            range,
            stall,
        })
    }

    /// The next verified bytes of the range; `None` once it is all read. Fails with
    /// [`FetchError::Ended`] if the holder's answer ends before the range does.
    pub async fn next(&mut self) -> Result<Option<Bytes>, FetchError> {
        while let Some(content) = self.content.take() {
            let Some((more, item)) = next_item(&self.conn, content, self.stall).await? else {
                break;
            };
            self.content = Some(more);
            let BaoContentItem::Leaf(leaf) = item else {
                continue;
            };
            let start = leaf.offset;
            let end = start + leaf.data.len() as u64;
            let (from, to) = (self.sent.max(start), self.range.end.min(end));
            if from < to {
                self.sent = to;
                return Ok(Some(
                    leaf.data
                        .slice((from - start) as usize..(to - start) as usize),
                ));
            }
        }
        if self.sent >= self.range.end {
            Ok(None)
        } else {
            Err(FetchError::Ended { at: self.sent })
        }
    }
}

/// Fetches a small blob whole (verified), refusing one larger than `max` bytes before
/// allocating for it.
pub async fn fetch_small(
    conn: &Connection,
    hash: &Hash,
    max: usize,
    stall: Duration,
) -> Result<Vec<u8>, FetchError> {
    let request = GetRequest::blob(iroh_blobs::Hash::from_bytes(*hash.as_bytes()));
    let (mut content, size) = get_blob(conn, request, stall).await?;
    if size > max as u64 {
        return Err(FetchError::TooLarge {
            size,
            max: max as u64,
        });
    }
    let mut out = vec![0u8; size as usize];
    while let Some((more, item)) = next_item(conn, content, stall).await? {
        content = more;
        if let BaoContentItem::Leaf(leaf) = item {
            let at = leaf.offset as usize;
            out.get_mut(at..at + leaf.data.len())
                .ok_or(FetchError::OutOfBounds {
                    offset: leaf.offset,
                    size,
                })?
                .copy_from_slice(&leaf.data);
        }
    }
    Ok(out)
}
