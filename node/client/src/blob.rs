//! Raw blobs by hash (`/blob/{hash}` on the gateway, and copies when pinning): find a
//! holder, prove the blob's size, stream any byte range verified.

use std::{
    ops::Range,
    time::{Duration, Instant},
};

use bao_tree::io::BaoContentItem;
use bytes::Bytes;
use iroh::endpoint::Connection;
use iroh_blobs::protocol::{ChunkRanges, ChunkRangesExt, GetRequest};
use mosaic_codec::Hash;
use mosaic_wire::request::{self, FetchError, RangeRead};
use n0_future::Stream;
use tokio::{sync::mpsc, task::JoinHandle};

use crate::{BlobError, Client, PeerError};

/// A blob on a node that holds it, its size proven (verified streaming of its last
/// chunk).
#[derive(Debug)]
pub struct RemoteBlob {
    conn: Connection,
    hash: iroh_blobs::Hash,
    size: u64,
    stall: Duration,
}

/// How long a blob's holder is remembered: as long as a file's holder list.
const BLOB_HOLDER_TTL: Duration = Duration::from_secs(60);
/// Blobs whose holder is remembered at most (the oldest are dropped first).
const BLOB_HOLDERS_MAX: usize = 4096;

impl Client {
    /// Finds a node holding blob `hash` and learns its size. A holder that served the
    /// blob within the last minute is asked again first, without a lookup (its size,
    /// proven then, is a function of the hash).
    pub async fn open_blob(&self, hash: &Hash) -> Result<RemoteBlob, BlobError> {
        let stall = self.options().stall_timeout;
        let blob_hash = iroh_blobs::Hash::from_bytes(*hash.as_bytes());
        let known = self
            .blob_holders
            .lock()
            .expect("not poisoned")
            .get(hash)
            .filter(|(at, _, _)| at.elapsed() < BLOB_HOLDER_TTL)
            .map(|&(_, holder, size)| (holder, size));
        if let Some((holder, size)) = known {
            match self.dial(holder, iroh_blobs::ALPN).await {
                Ok(conn) => return Ok(RemoteBlob::new(conn, blob_hash, size, stall)),
                Err(_) => {
                    self.blob_holders.lock().expect("not poisoned").remove(hash);
                }
            }
        }
        let blob = self.find_blob(hash).await?;
        let mut cache = self.blob_holders.lock().expect("not poisoned");
        // Full: drop what expired, and if that is nothing, the oldest.
        if cache.len() >= BLOB_HOLDERS_MAX {
            cache.retain(|_, (at, _, _)| at.elapsed() < BLOB_HOLDER_TTL);
        }
        if cache.len() >= BLOB_HOLDERS_MAX
            && let Some(oldest) = cache
                .iter()
                .min_by_key(|(_, (at, _, _))| *at)
                .map(|(h, _)| *h)
        {
            cache.remove(&oldest);
        }
        cache.insert(*hash, (Instant::now(), blob.holder(), blob.size));
        Ok(blob)
    }

    /// Asks every holder at once and takes the first that proves the blob's size: a
    /// holder that is down or frozen costs nothing while another answers (holders that
    /// failed lately fail at once, their dials backed off).
    async fn find_blob(&self, hash: &Hash) -> Result<RemoteBlob, BlobError> {
        use n0_future::StreamExt;
        let holders = self.routing().providers(hash).await?;
        if holders.is_empty() {
            return Err(BlobError::NotFound);
        }
        let stall = self.options().stall_timeout;
        let blob_hash = iroh_blobs::Hash::from_bytes(*hash.as_bytes());
        let mut attempts: n0_future::FuturesUnordered<_> = holders
            .iter()
            .map(|&holder| async move {
                let attempt = async {
                    let conn = self.dial(holder, iroh_blobs::ALPN).await?;
                    let size = proven_size(&conn, blob_hash, stall).await?;
                    Ok::<_, PeerError>(RemoteBlob {
                        conn,
                        hash: blob_hash,
                        size,
                        stall,
                    })
                };
                (holder, attempt.await)
            })
            .collect();
        let mut failures = Vec::new();
        while let Some((holder, attempt)) = attempts.next().await {
            match attempt {
                Ok(blob) => return Ok(blob),
                Err(e) => failures.push((holder, e)),
            }
        }
        Err(BlobError::Unavailable {
            holders: holders.len(),
            failures,
        })
    }
}

/// The size of a blob, proven by fetching and verifying its last chunk.
pub(crate) async fn proven_size(
    conn: &Connection,
    hash: iroh_blobs::Hash,
    stall: Duration,
) -> Result<u64, FetchError> {
    let get = GetRequest::blob_ranges(hash, ChunkRanges::last_chunk());
    let (mut content, size) = request::get_blob(conn, get, stall).await?;
    // The size the holder claims is proven once the last chunk verifies against it.
    while let Some((more, _)) = request::next_item(conn, content, stall).await? {
        content = more;
    }
    Ok(size)
}

impl RemoteBlob {
    /// A blob of `size` bytes (already known) on the node at the end of `conn`.
    pub(crate) fn new(
        conn: Connection,
        hash: iroh_blobs::Hash,
        size: u64,
        stall: Duration,
    ) -> Self {
        Self {
            conn,
            hash,
            size,
            stall,
        }
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The node serving it.
    pub fn holder(&self) -> iroh::EndpointId {
        self.conn.remote_id()
    }

    /// Its bytes in `range`, verified as they arrive. A verification or network failure
    /// ends the stream with an error.
    pub fn stream(self, range: Range<u64>) -> impl Stream<Item = Result<Bytes, FetchError>> + Send {
        self.spawn(range, false)
    }

    /// Runs the fetch in a task that feeds the stream; dropping the stream stops it.
    fn spawn(
        self,
        range: Range<u64>,
        encoded: bool,
    ) -> impl Stream<Item = Result<Bytes, FetchError>> + Send {
        let (tx, rx) = mpsc::channel::<Result<Bytes, FetchError>>(8);
        let task = tokio::spawn(async move {
            let sent = if encoded {
                self.send_encoded(range, &tx).await
            } else {
                self.send_range(range, &tx).await
            };
            if let Err(e) = sent {
                let _ = tx.send(Err(e)).await;
            }
        });
        let guard = AbortOnDrop(task);
        n0_future::stream::unfold((rx, guard), |(mut rx, guard)| async move {
            rx.recv().await.map(|item| (item, (rx, guard)))
        })
    }

    /// Bytes `range` with their proof, as iroh-blobs sends them: the blob's size
    /// (`u64` little-endian), then the bao encoding of the 1 KiB chunks covering the
    /// range (16 KiB chunk groups, parents as 64-byte hash pairs, pre-order). Each item
    /// is forwarded after it verified here, so a client that checks again against the
    /// hash needs to trust neither this process nor the holder. A failure ends the stream
    /// with an error (the answer is then truncated, which the client detects).
    pub fn stream_encoded(
        self,
        range: Range<u64>,
    ) -> impl Stream<Item = Result<Bytes, FetchError>> + Send {
        self.spawn(range, true)
    }

    async fn send_encoded(
        &self,
        range: Range<u64>,
        tx: &mpsc::Sender<Result<Bytes, FetchError>>,
    ) -> Result<(), FetchError> {
        let get = GetRequest::blob_ranges(self.hash, ChunkRanges::bytes(range));
        let (mut content, size) = request::get_blob(&self.conn, get, self.stall).await?;
        if size != self.size {
            return Err(FetchError::WrongSize {
                size,
                expected: self.size,
            });
        }
        if tx
            .send(Ok(Bytes::copy_from_slice(&size.to_le_bytes())))
            .await
            .is_err()
        {
            return Ok(());
        }
        while let Some((more, item)) = request::next_item(&self.conn, content, self.stall).await? {
            content = more;
            let bytes = match item {
                BaoContentItem::Parent(parent) => {
                    let mut pair = Vec::with_capacity(64);
                    pair.extend_from_slice(parent.pair.0.as_bytes());
                    pair.extend_from_slice(parent.pair.1.as_bytes());
                    Bytes::from(pair)
                }
                BaoContentItem::Leaf(leaf) => leaf.data,
            };
            if tx.send(Ok(bytes)).await.is_err() {
                return Ok(());
            }
        }
        Ok(())
    }

    async fn send_range(
        &self,
        range: Range<u64>,
        tx: &mpsc::Sender<Result<Bytes, FetchError>>,
    ) -> Result<(), FetchError> {
        let hash = Hash::from_bytes(*self.hash.as_bytes());
        let mut read = RangeRead::start(&self.conn, &hash, range, None, self.stall).await?;
        while let Some(piece) = read.next().await? {
            if tx.send(Ok(piece)).await.is_err() {
                break;
            }
        }
        Ok(())
    }
}

/// Aborts a task when dropped.
#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
