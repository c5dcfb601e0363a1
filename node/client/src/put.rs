//! The put pipeline, top to bottom: what `mosaic put` runs.
//!
//! 1. **Input**: open the file and learn its length.
//! 2. **Place**: find storage nodes on the DHT, ask each for its space (`Stat`), and
//!    choose `n` distinct ones by weighted rendezvous hashing over a random upload key
//!    (weight: free space); fewer than `n` reachable is refused before any byte moves.
//! 3. **Columns**: encode on a blocking thread (read → seal → erasure → hash) and hand
//!    each shard to its column's upload task through a channel of [`PUT_PIPE_DEPTH`]
//!    shards, so memory is bounded whatever the file size and the slowest node paces
//!    the encoder. Each node hashes what it received, pins it for us, announces it,
//!    and answers with the hash, which must equal the encoder's.
//! 4. **Manifest**: store it on every column's node.
//!
//! Invariant: a put that fails (or is dropped) leaves none of its own pins behind.
//! Every pin a node reports as new is recorded in an [`Undo`] guard; the guard is
//! disarmed only once the manifest is everywhere. On an error it unpins them before
//! the error is returned; if the put's future is dropped, it unpins them in a task.
//! Pins that existed before (the same public or convergent content stored earlier)
//! are never touched.

use std::{
    io::{BufReader, Read},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use bytes::Bytes;
use iroh::{EndpointId, endpoint::Connection};
use mosaic_codec::{Access, EncodeError, Encoder, Hash, Layout, Manifest, Metadata, Params};
use mosaic_wire::{
    proto::Request,
    request::{self, Stored},
};
use tokio::sync::mpsc;
use tracing::debug;

use crate::{Client, ClientError, Role, StorageNode};

/// Shards buffered between the encoder and each upload task.
pub const PUT_PIPE_DEPTH: usize = 4;

/// What a put did.
#[derive(Debug, Clone)]
pub struct PutReport {
    /// The manifest (its id names the file).
    pub manifest: Manifest,
    /// The node holding each column.
    pub placement: Vec<EndpointId>,
}

impl Client {
    /// Uploads the file at `path`: encodes it locally and places its `n` columns on `n`
    /// distinct storage nodes, then the manifest on all of them.
    pub async fn put(
        &self,
        path: &Path,
        params: Params,
        access: Access,
        metadata: Metadata,
    ) -> Result<PutReport, ClientError> {
        self.put_counting(path, params, access, metadata, Arc::default())
            .await
    }

    /// [`Client::put`], adding to `progress` the plaintext bytes encoded so far (they
    /// are on their way to the nodes: the pipeline holds at most a few segments).
    pub async fn put_counting(
        &self,
        path: &Path,
        params: Params,
        access: Access,
        metadata: Metadata,
        progress: Arc<AtomicU64>,
    ) -> Result<PutReport, ClientError> {
        let input = Input::open(path)?;
        let nodes = self.choose_nodes(params.columns()).await?;
        let mut undo = Undo::default();
        let stored = async {
            let manifest = upload_columns(
                input,
                &nodes,
                Encoding {
                    params,
                    access,
                    metadata,
                    progress,
                },
                &mut undo,
            )
            .await?;
            store_manifest(&nodes, &manifest, &mut undo).await?;
            Ok(manifest)
        }
        .await;
        match stored {
            Ok(manifest) => {
                undo.disarm();
                Ok(PutReport {
                    manifest,
                    placement: nodes.iter().map(|n| n.id).collect(),
                })
            }
            Err(e) => {
                undo.run().await;
                Err(e)
            }
        }
    }

    /// Stage 2: `n` distinct storage nodes, one per column.
    async fn choose_nodes(&self, n: usize) -> Result<Vec<StorageNode>, ClientError> {
        let (found, nodes) = self.storage_nodes().await?;
        if nodes.len() < n {
            return Err(ClientError::NotEnoughNodes {
                found,
                reachable: nodes.len(),
                needed: n,
            });
        }
        let mut upload_key = [0u8; 32];
        getrandom::fill(&mut upload_key).expect("the operating system's random source");
        Ok(place(&nodes, &upload_key, n).into_iter().cloned().collect())
    }
}

/// Stage 1: the file to upload.
struct Input {
    path: PathBuf,
    file: std::fs::File,
    length: u64,
}

impl Input {
    fn open(path: &Path) -> Result<Self, ClientError> {
        let err = |source| ClientError::Input {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(err)?;
        let length = file.metadata().map_err(err)?.len();
        Ok(Self {
            path: path.to_owned(),
            file,
            length,
        })
    }
}

/// How to encode.
struct Encoding {
    params: Params,
    access: Access,
    metadata: Metadata,
    progress: Arc<AtomicU64>,
}

/// Stage 3: encodes the file and streams column `j` to `nodes[j]`; returns the
/// manifest once every node has confirmed its column's hash.
async fn upload_columns(
    input: Input,
    nodes: &[StorageNode],
    encoding: Encoding,
    undo: &mut Undo,
) -> Result<Manifest, ClientError> {
    let length = input.length;
    let layout = Layout::new(encoding.params, length).ok_or(EncodeError::TooLarge { length })?;
    let column_len = layout.column_len();
    let mut senders = Vec::with_capacity(nodes.len());
    let mut uploads = Vec::with_capacity(nodes.len());
    for node in nodes {
        let (tx, rx) = mpsc::channel::<Bytes>(PUT_PIPE_DEPTH);
        senders.push(tx);
        let conn = node.conn.clone();
        uploads.push(tokio::spawn(async move {
            request::upload(&conn, column_len, rx).await
        }));
    }
    let encoder = tokio::task::spawn_blocking(move || encode(input, encoding, senders));
    let encoded = encoder.await.expect("the encoder thread does not panic");
    let mut confirmed = Vec::with_capacity(nodes.len());
    for (column, (task, node)) in uploads.into_iter().zip(nodes).enumerate() {
        let answer = task.await.expect("upload tasks do not panic");
        confirmed.push(match answer {
            Ok(stored) => {
                undo.record(node, &stored);
                Ok(stored.hash)
            }
            Err(source) => Err(ClientError::Upload {
                node: node.id,
                what: Role::Column(column),
                source,
            }),
        });
    }
    let manifest = match encoded? {
        Ok(manifest) => manifest,
        // The encoder stops early only when an upload went away: that column's error
        // explains. The other columns, cut short by the stop, are refused as malformed
        // (or end without an answer) and explain nothing.
        Err(gone) => {
            return Err(match confirmed.swap_remove(gone) {
                Err(e) => e,
                Ok(_) => ClientError::UploadStopped {
                    node: nodes[gone].id,
                    what: Role::Column(gone),
                },
            });
        }
    };
    for (column, (answer, node)) in confirmed.into_iter().zip(nodes).enumerate() {
        let got = answer?;
        let expected = manifest.columns()[column];
        if got != expected {
            return Err(ClientError::StoredHashMismatch {
                node: node.id,
                what: Role::Column(column),
                got,
                expected,
            });
        }
    }
    Ok(manifest)
}

/// The encoder's loop, on a blocking thread: `Err(j)` if column `j`'s upload went
/// away (the first one the encoder found gone).
fn encode(
    input: Input,
    encoding: Encoding,
    senders: Vec<mpsc::Sender<Bytes>>,
) -> Result<Result<Manifest, usize>, ClientError> {
    let Input { path, file, length } = input;
    let mut reader = BufReader::with_capacity(
        1 << 20,
        Counting {
            inner: file,
            count: encoding.progress,
        },
    );
    let mut encoder = Encoder::new(encoding.params, &encoding.access, length)?;
    while let Some(stripe) = encoder.next_stripe(&mut reader)? {
        for (column, (tx, shard)) in senders.iter().zip(stripe.shards()).enumerate() {
            if tx.blocking_send(Bytes::copy_from_slice(shard)).is_err() {
                return Ok(Err(column));
            }
        }
    }
    // The file grew while it was read: its length is in every segment's seal.
    let mut probe = [0u8; 1];
    if reader
        .read(&mut probe)
        .map_err(|source| ClientError::Input { path, source })?
        != 0
    {
        return Err(EncodeError::InputTooLong { expected: length }.into());
    }
    drop(senders);
    Ok(Ok(encoder.finish(&encoding.metadata)?))
}

/// Stage 4: the manifest, on every column's node.
async fn store_manifest(
    nodes: &[StorageNode],
    manifest: &Manifest,
    undo: &mut Undo,
) -> Result<(), ClientError> {
    let bytes = Bytes::copy_from_slice(manifest.as_bytes());
    let answers = n0_future::join_all(nodes.iter().map(|node| {
        let bytes = bytes.clone();
        async move {
            let (tx, rx) = mpsc::channel(1);
            let _ = tx.send(bytes.clone()).await;
            drop(tx);
            request::upload(&node.conn, bytes.len() as u64, rx).await
        }
    }))
    .await;
    for (node, answer) in nodes.iter().zip(&answers) {
        if let Ok(stored) = answer {
            undo.record(node, stored);
        }
    }
    for (node, answer) in nodes.iter().zip(answers) {
        let stored = answer.map_err(|source| ClientError::Upload {
            node: node.id,
            what: Role::Manifest,
            source,
        })?;
        if stored.hash != manifest.id() {
            return Err(ClientError::StoredHashMismatch {
                node: node.id,
                what: Role::Manifest,
                got: stored.hash,
                expected: manifest.id(),
            });
        }
    }
    Ok(())
}

/// The pins a put created, undone unless the put completes (see the module notes).
#[derive(Default)]
struct Undo {
    pins: Vec<(EndpointId, Connection, Hash)>,
}

impl Undo {
    /// Records a pin the node says is new (only those are the put's to undo).
    fn record(&mut self, node: &StorageNode, stored: &Stored) {
        if stored.new_pin {
            self.pins.push((node.id, node.conn.clone(), stored.hash));
        }
    }

    /// The put completed: keep its pins.
    fn disarm(mut self) {
        self.pins.clear();
    }

    /// Unpins now, and waits for the nodes' answers.
    async fn run(mut self) {
        unpin_all(std::mem::take(&mut self.pins)).await;
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        // Reached with pins only when the put's future was dropped mid-way.
        let pins = std::mem::take(&mut self.pins);
        if !pins.is_empty() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(unpin_all(pins));
            }
        }
    }
}

impl std::fmt::Debug for Undo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Undo({} pins)", self.pins.len())
    }
}

async fn unpin_all(pins: Vec<(EndpointId, Connection, Hash)>) {
    n0_future::join_all(pins.into_iter().map(|(node, conn, hash)| async move {
        let request = Request::Unpin {
            hashes: vec![*hash.as_bytes()],
        };
        if let Err(e) = request::exchange(&conn, &request).await {
            debug!(node = %node.fmt_short(), "unpinning after a failed put: {e}");
        }
    }))
    .await;
}

/// A reader that adds the bytes it reads to a shared counter.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Weighted rendezvous hashing: the `n` nodes with the highest scores for `key`, where
/// a node's score is `-w / ln(u)`, `u ∈ (0, 1)` from BLAKE3(key ‖ node id) and `w` its
/// free space. Every client computes the same order for the same key and nodes, and a
/// node's share grows with its free space.
fn place<'a>(nodes: &'a [StorageNode], key: &[u8; 32], n: usize) -> Vec<&'a StorageNode> {
    let mut scored: Vec<(f64, &StorageNode)> = nodes
        .iter()
        .map(|node| {
            let mut h = blake3::Hasher::new_keyed(key);
            h.update(node.id.as_bytes());
            let bytes: [u8; 8] = h.finalize().as_bytes()[..8].try_into().expect("8 bytes");
            // (0, 1], never 0: ln stays finite.
            let u = ((u64::from_le_bytes(bytes) >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
            let w = (node.capacity.saturating_sub(node.used) as f64).max(1.0);
            let score = if u >= 1.0 { f64::INFINITY } else { -w / u.ln() };
            (score, node)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().take(n).map(|(_, node)| node).collect()
}
