//! Keyless repair from the client's side: the pieces a storage node (or any client)
//! uses to restore a file's redundancy without its key.
//!
//! - [`rebuild_columns`]: streams `k` authentic columns in, segment by segment, and
//!   streams the rebuilt columns out (Reed–Solomon, [`Rebuilder`]); each rebuilt column
//!   is checked against the manifest's hash at the end (and again, independently, by
//!   the node that adopts it);
//! - [`Client::column_stream`]: one column from one holder, verified as it arrives;
//! - [`Client::verify_blob`]: downloads a blob whole from one holder, verified
//!   (`mosaic check --verify`);
//! - [`Client::ask_repair`]: asks the file's holders to repair it now (`mosaic repair`).
//!
//! Memory is bounded: one stripe plus [`crate::GET_PIPE_DEPTH`] leaves per source and
//! [`crate::PUT_PIPE_DEPTH`] shards per output, whatever the file size.

use std::{error::Error as StdError, ops::Range};

use bytes::{Buf, Bytes};
use iroh::EndpointId;
use mosaic_codec::{Hash, Manifest, RebuildMismatch, Rebuilder};
use mosaic_wire::{
    proto::{self, RepairReport},
    request::{self, FetchError},
};
use n0_future::{Stream, StreamExt};
use tokio::sync::mpsc;

use crate::{Client, ClientError, PeerError, RemoteBlob, blob::proven_size};

/// A column's bytes, from wherever they come (a holder, the local store).
pub type ColumnStream = std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, SourceError>> + Send>>;

/// A source column failed.
pub type SourceError = Box<dyn StdError + Send + Sync>;

/// Rebuilding columns failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RebuildError {
    /// Fewer than `k` sources were given.
    #[error("{given} source columns given; {needed} are needed")]
    TooFewSources {
        /// Sources given.
        given: usize,
        /// `k`.
        needed: usize,
    },
    /// A source column failed or ended early.
    #[error("source column {column} failed at byte {at}: {source}")]
    Source {
        /// The column.
        column: usize,
        /// Its first byte not received.
        at: u64,
        /// Why.
        source: SourceError,
    },
    /// The receiver of a rebuilt column stopped taking it.
    #[error("the receiver of rebuilt column {column} stopped")]
    OutputClosed {
        /// The column.
        column: usize,
    },
    /// The rebuilt columns do not hash to the manifest's hashes.
    #[error(transparent)]
    Mismatch(#[from] RebuildMismatch),
}

/// Reads exact shards out of a column's stream of chunks.
struct ShardReader {
    column: usize,
    stream: ColumnStream,
    pending: Bytes,
    at: u64,
}

impl ShardReader {
    async fn fill(&mut self, out: &mut [u8]) -> Result<(), RebuildError> {
        let mut filled = 0;
        while filled < out.len() {
            if self.pending.is_empty() {
                let next = match self.stream.next().await {
                    Some(Ok(chunk)) => chunk,
                    Some(Err(source)) => {
                        return Err(RebuildError::Source {
                            column: self.column,
                            at: self.at,
                            source,
                        });
                    }
                    None => {
                        return Err(RebuildError::Source {
                            column: self.column,
                            at: self.at,
                            source: "the column ended early".into(),
                        });
                    }
                };
                self.pending = next;
                continue;
            }
            let n = self.pending.len().min(out.len() - filled);
            out[filled..filled + n].copy_from_slice(&self.pending[..n]);
            self.pending.advance(n);
            filled += n;
            self.at += n as u64;
        }
        Ok(())
    }
}

/// Rebuilds the columns `outputs` name from `sources` (at least `k` authentic columns
/// of the file, each streamed from byte 0), sending each rebuilt column's bytes in
/// order to its sender. Checks the rebuilt columns against the manifest at the end.
/// Returns the bytes sent per output.
pub async fn rebuild_columns(
    manifest: &Manifest,
    sources: Vec<(usize, ColumnStream)>,
    outputs: Vec<(usize, mpsc::Sender<Bytes>)>,
) -> Result<u64, RebuildError> {
    let layout = *manifest.layout();
    let k = layout.params().data_columns();
    if sources.len() < k {
        return Err(RebuildError::TooFewSources {
            given: sources.len(),
            needed: k,
        });
    }
    let wanted: Vec<usize> = outputs.iter().map(|(c, _)| *c).collect();
    let mut rebuilder = Rebuilder::new(manifest, &wanted);
    let mut readers: Vec<(ShardReader, Vec<u8>)> = sources
        .into_iter()
        .take(k)
        .map(|(column, stream)| {
            (
                ShardReader {
                    column,
                    stream,
                    pending: Bytes::new(),
                    at: 0,
                },
                Vec::new(),
            )
        })
        .collect();
    for index in 0..layout.segments() {
        let len = layout.segment_shard_len(index);
        // All sources at once: each column's fetch runs ahead in its own task.
        let filled = n0_future::join_all(readers.iter_mut().map(|(reader, buf)| async move {
            buf.resize(len, 0);
            reader.fill(buf).await
        }))
        .await;
        for result in filled {
            result?;
        }
        rebuilder.begin_segment(index);
        for (reader, buf) in &readers {
            rebuilder.shard_mut(reader.column).copy_from_slice(buf);
            rebuilder.set_present(reader.column);
        }
        // `k` sources are present: a rebuild cannot fail.
        let rebuilt = rebuilder.rebuild();
        debug_assert!(rebuilt);
        for (column, tx) in &outputs {
            let shard = Bytes::copy_from_slice(rebuilder.shard(*column));
            tx.send(shard)
                .await
                .map_err(|_| RebuildError::OutputClosed { column: *column })?;
        }
    }
    rebuilder.finish()?;
    Ok(layout.column_len())
}

impl Client {
    /// Column `hash` (of `size` bytes) from `holder`, verified as it arrives.
    pub async fn column_stream(
        &self,
        holder: EndpointId,
        hash: &Hash,
        size: u64,
    ) -> Result<ColumnStream, PeerError> {
        let conn = self.dial(holder, iroh_blobs::ALPN).await?;
        let blob = RemoteBlob::new(
            conn,
            iroh_blobs::Hash::from_bytes(*hash.as_bytes()),
            size,
            self.options().stall_timeout,
        );
        Ok(Box::pin(
            blob.stream(0..size)
                .map(|r| r.map_err(|e| Box::new(e) as SourceError)),
        ))
    }

    /// Streams a rebuilt column (or, with `column` `None`, the manifest) of file `file`
    /// to `node`, which checks it against the manifest and pins it for `owners`
    /// ([`request::adopt`]).
    pub async fn adopt(
        &self,
        node: EndpointId,
        file: &Hash,
        column: Option<u16>,
        owners: &[[u8; 32]],
        size: u64,
        rx: mpsc::Receiver<Bytes>,
    ) -> Result<request::Stored, PeerError> {
        let conn = self.dial(node, proto::ALPN).await?;
        Ok(request::adopt(&conn, file, column, owners, size, rx).await?)
    }

    /// Downloads blob `hash` whole from `holder`, verified chunk by chunk against its
    /// hash; returns its size. The bytes are dropped as they arrive.
    pub async fn verify_blob(&self, holder: EndpointId, hash: &Hash) -> Result<u64, PeerError> {
        let conn = self.dial(holder, iroh_blobs::ALPN).await?;
        let stall = self.options().stall_timeout;
        let blob_hash = iroh_blobs::Hash::from_bytes(*hash.as_bytes());
        let size = proven_size(&conn, blob_hash, stall).await?;
        let mut stream = Box::pin(RemoteBlob::new(conn, blob_hash, size, stall).stream(full(size)));
        let mut got = 0u64;
        while let Some(chunk) = stream.next().await {
            got += chunk?.len() as u64;
        }
        if got != size {
            return Err(PeerError::Fetch(FetchError::Ended { at: got }));
        }
        Ok(size)
    }

    /// Asks the holders of file `id` (those announcing its manifest, in the order the
    /// lookup finds them) to check and repair it now; the first that answers does.
    pub async fn ask_repair(&self, id: &Hash) -> Result<(EndpointId, RepairReport), ClientError> {
        let holders = self.routing().providers(id).await?;
        let mut failures = Vec::new();
        for holder in &holders {
            let attempt = async {
                let conn = self.dial(*holder, proto::ALPN).await?;
                Ok::<_, PeerError>(request::repair(&conn, id).await?)
            };
            match attempt.await {
                Ok(report) => return Ok((*holder, report)),
                Err(e) => failures.push((*holder, e)),
            }
        }
        Err(ClientError::NoRepairer {
            id: *id,
            holders: holders.len(),
            failures: crate::Failures(&failures).to_string(),
        })
    }
}

fn full(size: u64) -> Range<u64> {
    0..size
}
