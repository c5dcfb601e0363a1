//! The put pipeline, top to bottom: what `mosaic put` runs.
//!
//! 1. **Input**: open the file and learn its length.
//! 2. **Place**: find storage nodes on the DHT, ask each for its space (`Stat`: a node
//!    reports what its disk really has free), keep those with room for a column, and
//!    order them by weighted rendezvous hashing over a random upload key (weight: free
//!    space): the first `n` get the columns, the rest are spares. Fewer than `n` with
//!    room is refused before any byte moves (a space error: exit 6 in the CLI).
//! 3. **Columns**: encode on a blocking thread (read → seal → erasure → hash) and hand
//!    each shard to its column's upload task through a channel of [`PUT_PIPE_DEPTH`]
//!    shards, so memory is bounded whatever the file size and the slowest node paces
//!    the encoder. Each node hashes what it received, pins it for us, announces it,
//!    and answers with the hash, which must equal the encoder's. A node that fails
//!    mid-way does not stop the others; its column is encoded again from the file
//!    (same key and salt, so the same bytes) and sent to the next spare. With no spare
//!    left, the error names the node that failed.
//! 4. **Manifest**: store it on every column's node; a node that fails now hands its
//!    column to a spare, which takes the manifest too.
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
use mosaic_codec::{
    Access, EncodeError, Encoder, Hash, Layout, Manifest, Metadata, Params, TAG_LEN,
};
use mosaic_wire::{
    proto::Request,
    request::{self, Stored},
};
use tokio::sync::mpsc;
use tracing::debug;

use crate::{Client, ClientError, Role, StorageNode};

/// Shards buffered between the encoder and each upload task.
pub const PUT_PIPE_DEPTH: usize = 4;

/// Spare nodes a put wants beyond the `n` that take its columns, before it stops
/// waiting for slower nodes' answers.
const PUT_SPARES: usize = 2;

/// Room a node needs beyond a column: the manifest, stored with every column.
const MANIFEST_ROOM: u64 = 64 << 10;

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
        let layout = Layout::new(params, input.length).ok_or(EncodeError::TooLarge {
            length: input.length,
        })?;
        let (mut nodes, mut spares) = self
            .choose_nodes(params.columns(), layout.column_len())
            .await?;
        let mut undo = Undo::default();
        let stored = async {
            let manifest = upload_columns(
                input,
                &mut nodes,
                &mut spares,
                Encoding {
                    params,
                    access,
                    metadata,
                    progress,
                },
                &mut undo,
            )
            .await?;
            Ok(manifest)
        }
        .await;
        settle(stored, undo, &nodes).await
    }

    /// Stage 2: `n` distinct storage nodes with room for a column of `column_len`
    /// bytes, one per column, and the other nodes with room as spares, in placement
    /// order (a column whose node fails goes to the first spare).
    pub(crate) async fn choose_nodes(
        &self,
        n: usize,
        column_len: u64,
    ) -> Result<(Vec<StorageNode>, Vec<StorageNode>), ClientError> {
        // Enough to place every column and have spares; nodes that are slow to answer
        // (down, frozen) are not waited for beyond a grace.
        let (mut found, mut nodes) = self.storage_nodes_wanting(Some(n + PUT_SPARES)).await?;
        let with_room = |nodes: &[StorageNode]| {
            nodes
                .iter()
                .filter(|node| node.free() >= column_len + MANIFEST_ROOM)
                .count()
        };
        if with_room(&nodes) < n {
            // The lookup settled on its first answers, which can miss nodes whose
            // announce reached few DHT nodes yet (a node just started, or a client just
            // joined): before refusing, hear out every DHT node asked.
            (found, nodes) = self.all_storage_nodes().await?;
        }
        if nodes.len() < n {
            return Err(ClientError::NotEnoughNodes {
                found,
                reachable: nodes.len(),
                needed: n,
            });
        }
        let reachable = nodes.len();
        let largest_free = nodes.iter().map(StorageNode::free).max().unwrap_or(0);
        // The manifest goes with every column: a few KiB more.
        let (room, full): (Vec<StorageNode>, Vec<StorageNode>) = nodes
            .into_iter()
            .partition(|node| node.free() >= column_len + MANIFEST_ROOM);
        if room.len() < n {
            return Err(ClientError::NoRoom {
                column_len,
                with_room: room.len(),
                reachable,
                needed: n,
                largest_free,
                full: full
                    .iter()
                    .map(|node| (node.id, node.free(), node.capacity))
                    .collect(),
            });
        }
        let mut upload_key = [0u8; 32];
        getrandom::fill(&mut upload_key).expect("the operating system's random source");
        let mut ordered: Vec<StorageNode> = place(&room, &upload_key, room.len())
            .into_iter()
            .cloned()
            .collect();
        let spares = ordered.split_off(n);
        Ok((ordered, spares))
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
#[derive(Clone)]
struct Encoding {
    params: Params,
    access: Access,
    metadata: Metadata,
    progress: Arc<AtomicU64>,
}

/// Stage 3: encodes the file and streams column `j` to `nodes[j]`; returns the
/// manifest once every column's node has confirmed its hash. A column whose node
/// fails (refuses, goes silent, or stores other bytes) is encoded again from the file
/// and sent to the next spare as soon as the first encoding is done, while the other
/// columns' uploads go on; `nodes[j]` becomes that spare. The error of the last node
/// that failed is returned when no spare is left, once every upload still running has
/// ended (so each pin made is recorded for the undo).
async fn upload_columns(
    input: Input,
    nodes: &mut [StorageNode],
    spares: &mut Vec<StorageNode>,
    encoding: Encoding,
    undo: &mut Undo,
) -> Result<Manifest, ClientError> {
    use n0_future::StreamExt;
    let path = input.path.clone();
    let length = input.length;
    let column_len = Layout::new(encoding.params, length)
        .ok_or(EncodeError::TooLarge { length })?
        .column_len();
    let mut senders = Vec::with_capacity(nodes.len());
    let mut uploads = n0_future::FuturesUnordered::new();
    for (column, node) in nodes.iter().enumerate() {
        let (tx, rx) = mpsc::channel::<Bytes>(PUT_PIPE_DEPTH);
        senders.push(tx);
        let conn = node.conn.clone();
        let task = tokio::spawn(async move { request::upload(&conn, column_len, rx).await });
        uploads.push(async move { (column, task.await.expect("upload tasks do not panic")) });
    }
    let retry = encoding.clone();
    let mut encoder = tokio::task::spawn_blocking(move || encode(input, encoding, senders));
    // Answers that come while the encoder still runs wait for it: a spare needs the
    // first encoding's tags.
    let mut early: Vec<(usize, Result<Stored, request::RequestError>)> = Vec::new();
    let encoded = loop {
        tokio::select! {
            encoded = &mut encoder => break encoded.expect("the encoder thread does not panic"),
            Some(answer) = uploads.next() => early.push(answer),
        }
    };
    let first = match encoded {
        Ok(Some(first)) => first,
        Ok(None) => {
            // Every upload went away: the first node's error explains. A node may also
            // have answered before taking all its bytes (a faulty or hostile one): then
            // no upload failed, and the put stopped at column 0's node.
            early.extend(uploads.collect::<Vec<_>>().await);
            early.sort_by_key(|(column, _)| *column);
            let mut first_error = None;
            for (column, answer) in early {
                match answer {
                    // Its pin is undone with the others'.
                    Ok(stored) => undo.record(&nodes[column], &stored),
                    Err(e) => {
                        first_error.get_or_insert((column, e));
                    }
                }
            }
            return Err(match first_error {
                Some((column, source)) => ClientError::Upload {
                    node: nodes[column].id,
                    what: Role::Column(column),
                    source,
                },
                None => ClientError::UploadStopped {
                    node: nodes[0].id,
                    what: Role::Column(0),
                },
            });
        }
        Err(e) => {
            // Record the pins made before the error, so it undoes them.
            early.extend(uploads.collect::<Vec<_>>().await);
            for (column, answer) in early {
                if let Ok(stored) = answer {
                    undo.record(&nodes[column], &stored);
                }
            }
            return Err(e);
        }
    };
    let manifest = &first.manifest;
    let mut retries = n0_future::FuturesUnordered::new();
    let mut fatal: Option<ClientError> = None;
    // Starts sending `column` to the next spare; gives the failure back if none is left.
    let mut next_spare =
        |column: usize, failure: ClientError, retries: &mut n0_future::FuturesUnordered<_>| {
            if spares.is_empty() {
                return Some(failure);
            }
            let spare = spares.remove(0);
            debug!(
                column,
                spare = %spare.id.fmt_short(),
                "column upload failed ({failure}); sending it to a spare node"
            );
            let (path, retry, first) = (&path, &retry, &first);
            retries.push(async move {
                let result = upload_again(path, retry, first, column, &spare).await;
                (column, spare, result)
            });
            None
        };
    let judge = |column: usize,
                 node: &StorageNode,
                 answer: Result<Stored, request::RequestError>,
                 undo: &mut Undo|
     -> Result<(), ClientError> {
        let expected = manifest.columns()[column];
        match answer {
            Ok(stored) => {
                undo.record(node, &stored);
                if stored.hash == expected {
                    Ok(())
                } else {
                    Err(ClientError::StoredHashMismatch {
                        node: node.id,
                        what: Role::Column(column),
                        got: stored.hash,
                        expected,
                    })
                }
            }
            Err(source) => Err(ClientError::Upload {
                node: node.id,
                what: Role::Column(column),
                source,
            }),
        }
    };
    for (column, answer) in early {
        if let Err(failure) = judge(column, &nodes[column], answer, undo) {
            if let Some(e) = next_spare(column, failure, &mut retries) {
                fatal.get_or_insert(e);
            }
        }
    }
    loop {
        tokio::select! {
            Some((column, answer)) = uploads.next() => {
                if let Err(failure) = judge(column, &nodes[column], answer, undo) {
                    if let Some(e) = next_spare(column, failure, &mut retries) {
                        fatal.get_or_insert(e);
                    }
                }
            }
            Some((column, spare, result)) = retries.next() => match result {
                Ok(stored) => {
                    undo.record(&spare, &stored);
                    nodes[column] = spare;
                }
                Err(e @ (ClientError::Input { .. } | ClientError::Encode(_))) => {
                    fatal.get_or_insert(e);
                }
                Err(e) => {
                    if let Some(e) = next_spare(column, e, &mut retries) {
                        fatal.get_or_insert(e);
                    }
                }
            },
            else => break,
        }
    }
    drop(retries);
    if let Some(e) = fatal {
        return Err(e);
    }
    // Stage 4: the manifest on every column's node. A node that fails now (frozen or
    // gone since its column arrived) hands its column to a spare, which takes the
    // manifest too; the first node keeps its copy, pinned (`mosaic rm` finds it).
    let answers = n0_future::join_all(nodes.iter().map(|node| manifest_on(node, manifest))).await;
    for (column, answer) in answers.into_iter().enumerate() {
        let mut failure = match answer {
            Ok(stored) => {
                undo.record(&nodes[column], &stored);
                continue;
            }
            Err(e) => e,
        };
        loop {
            if spares.is_empty() {
                return Err(failure);
            }
            let spare = spares.remove(0);
            debug!(
                column,
                spare = %spare.id.fmt_short(),
                "storing the manifest failed ({failure}); sending the column to a spare node"
            );
            match upload_again(&path, &retry, &first, column, &spare).await {
                Ok(stored) => undo.record(&spare, &stored),
                Err(e @ (ClientError::Input { .. } | ClientError::Encode(_))) => return Err(e),
                Err(e) => {
                    failure = e;
                    continue;
                }
            }
            match manifest_on(&spare, manifest).await {
                Ok(stored) => {
                    undo.record(&spare, &stored);
                    nodes[column] = spare;
                    break;
                }
                Err(e) => failure = e,
            }
        }
    }
    Ok(first.manifest)
}

/// Stores the manifest on `node` and checks the hash it reports.
async fn manifest_on(node: &StorageNode, manifest: &Manifest) -> Result<Stored, ClientError> {
    let bytes = Bytes::copy_from_slice(manifest.as_bytes());
    let (tx, rx) = mpsc::channel(1);
    let _ = tx.send(bytes.clone()).await;
    drop(tx);
    let stored = request::upload(&node.conn, bytes.len() as u64, rx)
        .await
        .map_err(|source| ClientError::Upload {
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
    Ok(stored)
}

/// Encodes the file again ([`Encoder::again`]: same key and salt, so the same column
/// bytes, and a segment that changed since is refused before it is sent) and sends
/// only column `column` to `node`.
async fn upload_again(
    path: &Path,
    encoding: &Encoding,
    first: &Encoded,
    column: usize,
    node: &StorageNode,
) -> Result<Stored, ClientError> {
    let manifest = &first.manifest;
    let input = Input::open(path)?;
    if input.length != manifest.layout().length() {
        return Err(EncodeError::InputChanged { segment: 0 }.into());
    }
    let encoder = Encoder::again(manifest, &encoding.access, first.tags.clone())?;
    let column_len = manifest.layout().column_len();
    let (tx, rx) = mpsc::channel::<Bytes>(PUT_PIPE_DEPTH);
    let conn = node.conn.clone();
    let upload = tokio::spawn(async move { request::upload(&conn, column_len, rx).await });
    let mut encoding = encoding.clone();
    // The bytes were counted once, on the first pass.
    encoding.progress = Arc::default();
    let mut senders: Vec<Option<mpsc::Sender<Bytes>>> = vec![None; manifest.columns().len()];
    senders[column] = Some(tx);
    let encoded =
        tokio::task::spawn_blocking(move || encode_some(input, encoder, encoding, senders))
            .await
            .expect("the encoder thread does not panic");
    let answer = upload.await.expect("upload tasks do not panic");
    encoded?;
    let stored = answer.map_err(|source| ClientError::Upload {
        node: node.id,
        what: Role::Column(column),
        source,
    })?;
    if stored.hash != manifest.columns()[column] {
        return Err(ClientError::StoredHashMismatch {
            node: node.id,
            what: Role::Column(column),
            got: stored.hash,
            expected: manifest.columns()[column],
        });
    }
    Ok(stored)
}

/// What the first encoding produced: the manifest, and each segment's tag (to encode
/// the file again for a spare node).
struct Encoded {
    manifest: Manifest,
    tags: Vec<[u8; TAG_LEN]>,
}

/// The encoder's loop, on a blocking thread, sending column `j` to `senders[j]`. An
/// upload that went away is skipped and the others go on; `None` if every one did.
fn encode(
    input: Input,
    encoding: Encoding,
    senders: Vec<mpsc::Sender<Bytes>>,
) -> Result<Option<Encoded>, ClientError> {
    let encoder = Encoder::new(encoding.params, &encoding.access, input.length)?;
    encode_some(
        input,
        encoder,
        encoding,
        senders.into_iter().map(Some).collect(),
    )
}

/// [`encode`] with a given encoder, for the columns that have a sender.
fn encode_some(
    input: Input,
    mut encoder: Encoder,
    encoding: Encoding,
    mut senders: Vec<Option<mpsc::Sender<Bytes>>>,
) -> Result<Option<Encoded>, ClientError> {
    let Input { path, file, length } = input;
    let mut reader = BufReader::with_capacity(
        1 << 20,
        Counting {
            inner: file,
            count: encoding.progress,
        },
    );
    let mut tags = Vec::new();
    while let Some(stripe) = encoder.next_stripe(&mut reader)? {
        tags.push(stripe.tag());
        for (tx, shard) in senders.iter_mut().zip(stripe.shards()) {
            if let Some(sender) = tx {
                if sender.blocking_send(Bytes::copy_from_slice(shard)).is_err() {
                    *tx = None;
                }
            }
        }
        if senders.iter().all(Option::is_none) {
            return Ok(None);
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
    Ok(Some(Encoded {
        manifest: encoder.finish(&encoding.metadata)?,
        tags,
    }))
}

/// The end of a put: its pins kept if the manifest is everywhere, else undone.
pub(crate) async fn settle(
    stored: Result<Manifest, ClientError>,
    undo: Undo,
    nodes: &[StorageNode],
) -> Result<PutReport, ClientError> {
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

/// Stage 4: the manifest, on every column's node.
pub(crate) async fn store_manifest(
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
pub(crate) struct Undo {
    pins: Vec<(EndpointId, Connection, Hash)>,
}

impl Undo {
    /// Records a pin the node says is new (only those are the put's to undo).
    pub(crate) fn record(&mut self, node: &StorageNode, stored: &Stored) {
        if stored.new_pin {
            self.pins.push((node.id, node.conn.clone(), stored.hash));
        }
    }

    /// The put completed: keep its pins.
    pub(crate) fn disarm(mut self) {
        self.pins.clear();
    }

    /// Unpins now, and waits for the nodes' answers.
    pub(crate) async fn run(mut self) {
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
            let w = (node.free() as f64).max(1.0);
            let score = if u >= 1.0 { f64::INFINITY } else { -w / u.ln() };
            (score, node)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().take(n).map(|(_, node)| node).collect()
}
