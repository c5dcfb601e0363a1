//! The put and get pipelines: what the CLI (and later the gateway) runs on the network.
//!
//! **Put**, stage by stage:
//! 1. find storage nodes (DHT), dial them and ask each for its space (`Stat`);
//! 2. place the `n` columns on `n` distinct nodes by weighted rendezvous hashing over a
//!    random upload key (weight: free space), refusing if fewer than `n` are reachable;
//! 3. encode on a blocking thread (read → seal → erasure → hash), handing each shard to
//!    its column's upload task through a channel of [`PUT_PIPE_DEPTH`] shards: memory is
//!    bounded whatever the file size, and the slowest node paces the encoder;
//! 4. each upload task streams its column to its node (`Store`), which hashes it, pins
//!    it for us, announces it on the DHT, and answers with the hash: it must equal the
//!    encoder's;
//! 5. store the manifest on every one of the `n` nodes.
//!
//! **Get**, stage by stage:
//! 1. find the manifest's holders (DHT), fetch it (verified), check it, open it with the
//!    key (a wrong key fails here, before any column is fetched);
//! 2. find every column's holders, dial them, and rank columns by the QUIC round-trip
//!    time of their best holder;
//! 3. fetch the best `k + 1` columns in parallel (iroh-blobs verified streaming, cut into
//!    segments); once the first segment is in, the slowest column is dropped;
//! 4. per segment, hand the `k` shards to the decoder and write the plaintext; a column
//!    whose holder fails or stalls is resumed from another holder, or replaced by another
//!    column, from the current segment on;
//! 5. finally check that all `n` columns, re-encoded, match the manifest.

use std::{
    collections::HashMap,
    io::{BufReader, Read, Write},
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bao_tree::io::BaoContentItem;
use bytes::Bytes;
use iroh::{Endpoint, EndpointId, SecretKey, endpoint::Connection};
use iroh_blobs::{get::fsm, protocol::GetRequest};
use n0_future::StreamExt;
use tokio::sync::mpsc;
use tracing::debug;

use crate::{
    codec::{
        Access, Cap, DecodeError, Decoder, EncodeError, Encoder, Hash, MAX_MANIFEST_LEN, Manifest,
        ManifestError, Metadata, Params,
    },
    dht::{Routing, RoutingError, RoutingOptions},
    net::{self, EndpointOptions, NetError},
    proto::{self, Request, Response},
    reader::ReadOptions,
};

/// Shards buffered between the encoder and each upload task.
pub const PUT_PIPE_DEPTH: usize = 4;
/// Segments buffered ahead per column being fetched.
pub const GET_PIPE_DEPTH: usize = 4;

/// How a client connects.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The client's identity (storage nodes authorize by it).
    pub secret: SecretKey,
    /// UDP address to bind.
    pub bind: SocketAddr,
    /// DHT settings (client mode).
    pub routing: RoutingOptions,
    /// Use n0's public relays.
    pub relays: bool,
    /// How long dialing one node may take.
    pub connect_timeout: Duration,
    /// A fetch that delivers nothing for this long is abandoned for another holder.
    pub stall_timeout: Duration,
}

/// A network operation failed. Every variant says what to check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The endpoint could not bind.
    #[error(transparent)]
    Net(#[from] NetError),
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
    /// A node refused or failed while storing a column.
    #[error("node {node} failed to store {what}: {reason}")]
    Store {
        /// The node.
        node: EndpointId,
        /// Which column, or the manifest.
        what: String,
        /// Its answer or the connection error.
        reason: String,
    },
    /// A node stored other bytes than were sent.
    #[error(
        "node {node} reports hash {got} for column {column}, expected {expected}: the data was altered in transit or by the node"
    )]
    StoredHashMismatch {
        /// The node.
        node: EndpointId,
        /// The column.
        column: usize,
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
}

/// A node that answered a `Stat`.
#[derive(Debug, Clone)]
pub struct StorageNode {
    /// Its identity.
    pub id: EndpointId,
    /// Round-trip time of the connection.
    pub rtt: Duration,
    /// Capacity in bytes.
    pub capacity: u64,
    /// Bytes used.
    pub used: u64,
    conn: Connection,
}

/// What a put did.
#[derive(Debug, Clone)]
pub struct PutReport {
    /// The manifest (its id names the file).
    pub manifest: Manifest,
    /// The node holding each column.
    pub placement: Vec<EndpointId>,
}

/// What a get noticed.
#[derive(Debug, Clone, Default)]
pub struct GetReport {
    /// Columns fetched, in the order they were started.
    pub columns_used: Vec<usize>,
    /// Holders that failed or stalled and were replaced.
    pub failovers: usize,
}

/// A Mosaic network client.
#[derive(Debug)]
pub struct Client {
    endpoint: Endpoint,
    routing: Routing,
    pub(crate) options: ClientOptions,
    conns: Mutex<HashMap<(EndpointId, &'static [u8]), Connection>>,
}

impl Client {
    /// Binds an endpoint and joins the DHT.
    pub async fn connect(options: ClientOptions) -> Result<Arc<Self>, ClientError> {
        let endpoint = net::bind(EndpointOptions {
            secret: options.secret.clone(),
            bind: options.bind,
            relays: options.relays,
            alpns: vec![],
        })
        .await?;
        let mut routing_options = options.routing.clone();
        routing_options.server = false;
        let routing = Routing::spawn(routing_options, None)?;
        if !routing.bootstrapped().await {
            return Err(ClientError::NoNetwork {
                bootstrap: options.routing.bootstrap.clone(),
            });
        }
        Ok(Arc::new(Self {
            endpoint,
            routing,
            options,
            conns: Mutex::new(HashMap::new()),
        }))
    }

    /// This client's identity.
    pub fn id(&self) -> EndpointId {
        self.endpoint.id()
    }

    /// The DHT.
    pub fn routing(&self) -> &Routing {
        &self.routing
    }

    /// Closes the endpoint, giving live connections a moment to close gracefully (a
    /// connection to a dead peer would otherwise hold this up for seconds).
    pub async fn close(&self) {
        let _ = tokio::time::timeout(Duration::from_millis(500), self.endpoint.close()).await;
    }

    /// Dials `id` on `alpn`, reusing a live connection.
    pub(crate) async fn dial(
        &self,
        id: EndpointId,
        alpn: &'static [u8],
    ) -> Result<Connection, String> {
        if let Some(c) = self.conns.lock().expect("not poisoned").get(&(id, alpn)) {
            if c.close_reason().is_none() {
                return Ok(c.clone());
            }
        }
        let addrs = self.routing.resolve(&id).await.map_err(|e| e.to_string())?;
        if addrs.is_empty() {
            return Err(format!("node {} published no address", id.fmt_short()));
        }
        let target = net::endpoint_addr(id, &addrs);
        let conn = tokio::time::timeout(
            self.options.connect_timeout,
            self.endpoint.connect(target, alpn),
        )
        .await
        .map_err(|_| {
            format!(
                "no answer from {} within {:?}",
                id.fmt_short(),
                self.options.connect_timeout
            )
        })?
        .map_err(|e| e.to_string())?;
        self.conns
            .lock()
            .expect("not poisoned")
            .insert((id, alpn), conn.clone());
        Ok(conn)
    }

    /// Finds storage nodes and asks each for its space. Returns how many were announced,
    /// and those that answered, fastest first.
    pub async fn storage_nodes(&self) -> Result<(usize, Vec<StorageNode>), ClientError> {
        let ids = self.routing.storage_nodes().await?;
        let found = ids.len();
        let answers = n0_future::join_all(ids.into_iter().map(|id| async move {
            let conn = self.dial(id, proto::ALPN).await.ok()?;
            let (capacity, used, _) = stat(&conn, &[]).await.ok()?;
            Some(StorageNode {
                id,
                rtt: rtt(&conn),
                capacity,
                used,
                conn,
            })
        }))
        .await;
        let mut nodes: Vec<StorageNode> = answers.into_iter().flatten().collect();
        nodes.sort_by_key(|n| n.rtt);
        Ok((found, nodes))
    }

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
        let input_err = |source| ClientError::Input {
            path: path.to_owned(),
            source,
        };
        let length = std::fs::metadata(path).map_err(input_err)?.len();
        let n = params.columns();
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
        let chosen = place(&nodes, &upload_key, n);
        let layout =
            crate::codec::Layout::new(params, length).ok_or(EncodeError::TooLarge { length })?;
        let column_len = layout.column_len();

        // Upload tasks, one per column, fed by the encoder through bounded channels.
        let mut senders = Vec::with_capacity(n);
        let mut uploads = Vec::with_capacity(n);
        for node in &chosen {
            let (tx, rx) = mpsc::channel::<Bytes>(PUT_PIPE_DEPTH);
            senders.push(tx);
            let conn = node.conn.clone();
            uploads.push(tokio::spawn(
                async move { upload(&conn, column_len, rx).await },
            ));
        }
        let file = std::fs::File::open(path).map_err(input_err)?;
        let path_owned = path.to_owned();
        let encoder =
            tokio::task::spawn_blocking(move || -> Result<Option<Manifest>, ClientError> {
                let mut reader = BufReader::with_capacity(
                    1 << 20,
                    Counting {
                        inner: file,
                        count: progress,
                    },
                );
                let mut encoder = Encoder::new(params, &access, length)?;
                while let Some(stripe) = encoder.next_stripe(&mut reader)? {
                    for (tx, shard) in senders.iter().zip(stripe.shards()) {
                        if tx.blocking_send(Bytes::copy_from_slice(shard)).is_err() {
                            // An upload failed; its task reports why.
                            return Ok(None);
                        }
                    }
                }
                let mut probe = [0u8; 1];
                if reader
                    .read(&mut probe)
                    .map_err(|source| ClientError::Input {
                        path: path_owned.clone(),
                        source,
                    })?
                    != 0
                {
                    return Err(EncodeError::InputTooLong { expected: length }.into());
                }
                drop(senders);
                Ok(Some(encoder.finish(&metadata)?))
            });
        let encoded = encoder.await.expect("the encoder thread does not panic");
        let mut stored = Vec::with_capacity(n);
        for (column, task) in uploads.into_iter().enumerate() {
            let result = task.await.expect("upload tasks do not panic");
            stored.push(result.map_err(|reason| ClientError::Store {
                node: chosen[column].id,
                what: format!("column {column}"),
                reason,
            }));
        }
        // A failed put leaves no pin of its own behind: pins it created are removed
        // again (the nodes collect what no one else pins), so they count against no
        // one's quota. Pins that existed before (the same public or convergent content
        // stored earlier) are left alone.
        let mut abandoned: Vec<(&StorageNode, Hash)> = chosen
            .iter()
            .zip(&stored)
            .filter_map(|(node, r)| match r {
                Ok((hash, true)) => Some((*node, *hash)),
                _ => None,
            })
            .collect();
        let stored: Vec<Result<Hash, ClientError>> = stored
            .into_iter()
            .map(|r| r.map(|(hash, _)| hash))
            .collect();
        let finished = async {
            // A failed upload explains an aborted encoder better than the encoder can.
            let manifest = match encoded? {
                Some(m) => m,
                None => {
                    // The encoder stops early only when an upload task went away.
                    return Err(stored.into_iter().find_map(Result::err).unwrap_or_else(|| {
                        ClientError::Store {
                            node: chosen[0].id,
                            what: "a column".into(),
                            reason: "an upload stopped before the file was sent".into(),
                        }
                    }));
                }
            };
            for (column, result) in stored.into_iter().enumerate() {
                let got = result?;
                let expected = manifest.columns()[column];
                if got != expected {
                    return Err(ClientError::StoredHashMismatch {
                        node: chosen[column].id,
                        column,
                        got,
                        expected,
                    });
                }
            }
            // The manifest, on every column's node.
            let bytes = Bytes::copy_from_slice(manifest.as_bytes());
            let results = n0_future::join_all(chosen.iter().map(|node| {
                let bytes = bytes.clone();
                async move {
                    let (tx, rx) = mpsc::channel(1);
                    let _ = tx.send(bytes.clone()).await;
                    drop(tx);
                    (node.id, upload(&node.conn, bytes.len() as u64, rx).await)
                }
            }))
            .await;
            for (node, result) in &results {
                if let (Ok((hash, true)), Some(n)) = (result, chosen.iter().find(|c| c.id == *node))
                {
                    abandoned.push((*n, *hash));
                }
            }
            for (node, result) in results {
                let (hash, _) = result.map_err(|reason| ClientError::Store {
                    node,
                    what: "the manifest".into(),
                    reason,
                })?;
                if hash != manifest.id() {
                    return Err(ClientError::Store {
                        node,
                        what: "the manifest".into(),
                        reason: format!("it reports hash {hash}, expected {}", manifest.id()),
                    });
                }
            }
            Ok(manifest)
        }
        .await;
        let manifest = match finished {
            Ok(m) => m,
            Err(e) => {
                self.abandon(&abandoned).await;
                return Err(e);
            }
        };
        Ok(PutReport {
            manifest,
            placement: chosen.iter().map(|n| n.id).collect(),
        })
    }

    /// Unpins what a failed put stored.
    async fn abandon(&self, stored: &[(&StorageNode, Hash)]) {
        n0_future::join_all(stored.iter().map(|(node, hash)| async move {
            let request = Request::Unpin {
                hashes: vec![*hash.as_bytes()],
            };
            if let Err(e) = exchange(&node.conn, &request).await {
                debug!(node = %node.id.fmt_short(), "unpinning after a failed put: {e}");
            }
        }))
        .await;
    }

    /// Downloads the whole file `cap` names and writes its plaintext to `out`, checking
    /// all `n` columns against the manifest at the end. On error, what was written must
    /// be discarded (the CLI writes to a temporary file).
    pub async fn get(
        self: &Arc<Self>,
        cap: &Cap,
        out: &mut (dyn Write + Send),
    ) -> Result<GetReport, ClientError> {
        let manifest = self.manifest(&cap.id()).await?;
        let decoder = Decoder::new(manifest, cap.key())?;
        let mut segments = self.read(
            decoder,
            ReadOptions {
                check_whole: true,
                ..Default::default()
            },
        );
        let mut expected = segments.range();
        while let Some(segment) = segments.next().await {
            let segment = segment?;
            // (Not a debug assertion: advancing `expected` must happen in every build.)
            if expected.next() != Some(segment.index) {
                return Err(ClientError::ReadStopped);
            }
            out.write_all(&segment.plaintext)
                .map_err(ClientError::Output)?;
        }
        if expected.next().is_some() {
            return Err(ClientError::ReadStopped);
        }
        out.flush().map_err(ClientError::Output)?;
        Ok(segments.report())
    }

    /// Fetches and checks the manifest of file `id`, asking every holder at once and
    /// taking the first answer (a dead holder costs no more than the others' answers).
    pub async fn manifest(&self, id: &Hash) -> Result<Manifest, ClientError> {
        let holders = self.routing.providers(id).await?;
        let mut attempts: n0_future::FuturesUnordered<_> = holders
            .iter()
            .map(|&holder| async move {
                let conn = self.dial(holder, iroh_blobs::ALPN).await?;
                fetch_small(&conn, id, MAX_MANIFEST_LEN)
                    .await
                    .map_err(|e| format!("{}: {e}", holder.fmt_short()))
            })
            .collect();
        while let Some(attempt) = attempts.next().await {
            match attempt {
                // The bytes hash to the id: every holder has these same bytes, so a
                // manifest that does not parse is the file's own fault.
                Ok(bytes) => return Ok(Manifest::from_bytes_verified(&bytes, id)?),
                Err(e) => debug!("manifest fetch failed: {e}"),
            }
        }
        Err(ClientError::ManifestUnavailable {
            id: *id,
            holders: holders.len(),
        })
    }
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

/// The round-trip time of a connection's selected path.
pub(crate) fn rtt(conn: &Connection) -> Duration {
    conn.paths()
        .iter()
        .find(|p| p.is_selected())
        .map(|p| p.rtt())
        .unwrap_or(Duration::MAX)
}

/// Asks a node for its space and which of `hashes` it holds.
pub async fn stat(conn: &Connection, hashes: &[Hash]) -> Result<(u64, u64, Vec<bool>), String> {
    let request = Request::Stat {
        hashes: hashes.iter().map(|h| *h.as_bytes()).collect(),
    };
    match exchange(conn, &request).await? {
        Response::Stat {
            capacity,
            used,
            held,
        } => Ok((capacity, used, held)),
        Response::Refused { message, .. } => Err(message),
        other => Err(format!("unexpected answer {other:?}")),
    }
}

/// One request, one answer, on a new stream of `conn`.
pub(crate) async fn exchange(conn: &Connection, request: &Request) -> Result<Response, String> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    proto::write_frame(&mut send, request)
        .await
        .map_err(|e| e.to_string())?;
    let _ = send.finish();
    proto::read_frame::<Response>(&mut recv)
        .await
        .map_err(|e| e.to_string())
}

/// Streams `size` bytes from `rx` to a node as one `Store`; returns the hash it computed
/// and whether the pin it recorded for us is new.
pub(crate) async fn upload(
    conn: &Connection,
    size: u64,
    mut rx: mpsc::Receiver<Bytes>,
) -> Result<(Hash, bool), String> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    proto::write_frame(&mut send, &Request::Store { size })
        .await
        .map_err(|e| e.to_string())?;
    let mut write_error = None;
    while let Some(chunk) = rx.recv().await {
        if let Err(e) = send.write_chunk(chunk).await {
            write_error = Some(e.to_string());
            break;
        }
    }
    // Stop the encoder if the node stopped us.
    drop(rx);
    let _ = send.finish();
    match proto::read_frame::<Response>(&mut recv).await {
        Ok(Response::Stored { hash, new_pin, .. }) => Ok((Hash::from_bytes(hash), new_pin)),
        Ok(Response::Refused { message, .. }) => Err(message),
        Ok(other) => Err(format!("unexpected answer {other:?}")),
        Err(e) => Err(write_error.unwrap_or_else(|| e.to_string())),
    }
}

/// Fetches a small blob whole (verified), refusing one larger than `max`.
async fn fetch_small(conn: &Connection, hash: &Hash, max: usize) -> Result<Vec<u8>, String> {
    let hash = iroh_blobs::Hash::from_bytes(*hash.as_bytes());
    let at_start = fsm::start(conn.clone(), GetRequest::blob(hash), Default::default());
    let connected = at_start.next().await.map_err(|e| e.to_string())?;
    let fsm::ConnectedNext::StartRoot(root) = connected.next().await.map_err(|e| e.to_string())?
    else {
        return Err("unexpected response shape".into());
    };
    let (mut content, size) = root.next().next().await.map_err(|e| e.to_string())?;
    if size > max as u64 {
        return Err(format!("claims {size} bytes, more than the {max} allowed"));
    }
    let mut out = vec![0u8; size as usize];
    loop {
        match content.next().await {
            fsm::BlobContentNext::More((more, item)) => {
                content = more;
                if let BaoContentItem::Leaf(leaf) = item.map_err(|e| e.to_string())? {
                    let at = leaf.offset as usize;
                    out.get_mut(at..at + leaf.data.len())
                        .ok_or_else(|| {
                            format!("peer sent bytes at {at} beyond the {size}-byte blob")
                        })?
                        .copy_from_slice(&leaf.data);
                }
            }
            fsm::BlobContentNext::Done(_) => return Ok(out),
        }
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
