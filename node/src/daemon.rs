//! A storage node (`mosaic node run`): endpoint, store, storage protocol, DHT, and the
//! background task that keeps the node's DHT records fresh.
//!
//! Wiring: one iroh endpoint accepts two ALPNs, iroh-blobs (`/iroh-bytes/4`: anyone may
//! read, with verified streaming; push stays disabled) and Mosaic's storage protocol
//! (`/mosaic/storage/1`: authorized identities store and pin). A Mainline DHT node in
//! server mode stores other nodes' records and publishes this node's: its address, that
//! it is a storage node, and every blob it holds. A blob stored is announced before the
//! client is told it is stored, so a `get` right after a `put` finds it.

use std::{
    collections::HashSet,
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use iroh::{
    Endpoint, EndpointId,
    endpoint::{Connection, RecvStream, SendStream, VarInt},
    protocol::{AcceptError, ProtocolHandler, Router},
};
use iroh_blobs::BlobsProtocol;
use tokio::{sync::mpsc, task::JoinHandle};
use tracing::{debug, info, warn};

use crate::{
    codec::Hash,
    dht::{Routing, RoutingError, RoutingOptions},
    identity,
    net::{self, EndpointOptions},
    proto::{self, MAX_HASHES, Refusal, Request, Response},
    store::{Limits, Store, StoreError},
};

/// Who may store and pin on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Anyone.
    Open,
    /// Only these identities.
    Allow(HashSet<EndpointId>),
}

impl Access {
    fn allows(&self, id: &EndpointId) -> bool {
        match self {
            Access::Open => true,
            Access::Allow(ids) => ids.contains(id),
        }
    }
}

/// Everything a node needs to run. See `docs/operations.md` for the matching flags.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// Data directory: identity key, blobs, metadata.
    pub data_dir: PathBuf,
    /// QUIC (UDP) address to listen on.
    pub listen: SocketAddr,
    /// Extra addresses to publish (a public address in front of NAT or Docker).
    pub public_addrs: Vec<SocketAddr>,
    /// The DHT node's settings (server mode is forced on).
    pub routing: RoutingOptions,
    /// Space: capacity, per-client quota, garbage-collection watermarks.
    pub limits: Limits,
    /// How often usage is checked against the high watermark.
    pub gc_interval: Duration,
    /// Who may store and pin.
    pub access: Access,
    /// Use n0's public relays.
    pub relays: bool,
    /// How often every record is re-announced.
    pub announce_interval: Duration,
}

/// The node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The identity key.
    #[error(transparent)]
    Identity(#[from] identity::IdentityError),
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The endpoint.
    #[error(transparent)]
    Net(#[from] net::NetError),
    /// The DHT.
    #[error(transparent)]
    Routing(#[from] RoutingError),
}

/// Progress of the announcer, for status reports and metrics.
#[derive(Debug, Default)]
pub struct AnnounceStatus {
    /// Records still to announce in the current round.
    pub backlog: AtomicUsize,
    /// Completed rounds.
    pub rounds: AtomicU64,
    /// Whether the last round reached the DHT for every record.
    pub last_round_ok: AtomicBool,
}

/// A running storage node.
#[derive(Debug)]
pub struct Node {
    router: Router,
    store: Store,
    routing: Routing,
    addrs: Vec<SocketAddr>,
    status: Arc<AnnounceStatus>,
    announcer: JoinHandle<()>,
    collector: JoinHandle<()>,
}

impl Node {
    /// Starts a node.
    pub async fn spawn(mut options: NodeOptions) -> Result<Self, NodeError> {
        let secret = identity::load_or_create(&options.data_dir.join("identity.key"))?;
        let store = Store::load(&options.data_dir, options.limits).await?;
        let endpoint = net::bind(EndpointOptions {
            secret: secret.clone(),
            bind: options.listen,
            relays: options.relays,
            alpns: vec![],
        })
        .await?;
        options.routing.server = true;
        // Peers remembered from the last run: a node that bootstrapped others (and so
        // has no --bootstrap itself) can rejoin them after a restart.
        let peers_file = options.data_dir.join(PEERS_FILE);
        options.routing.extra_bootstrap = std::fs::read_to_string(&peers_file)
            .map(|s| {
                s.lines()
                    .map(str::to_owned)
                    .filter(|l| !l.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let routing = Routing::spawn(options.routing.clone(), Some(&secret))?;
        let addrs = net::direct_addrs(&endpoint, &options.public_addrs);
        let status = Arc::new(AnnounceStatus::default());
        let storage = StorageProtocol {
            store: store.clone(),
            routing: routing.clone(),
            access: Arc::new(options.access.clone()),
            status: status.clone(),
        };
        let router = Router::builder(endpoint.clone())
            .accept(iroh_blobs::ALPN, BlobsProtocol::new(store.blobs(), None))
            .accept(proto::ALPN, storage)
            .spawn();
        let announcer = tokio::spawn(announce_loop(
            routing.clone(),
            store.clone(),
            addrs.clone(),
            options.announce_interval,
            status.clone(),
            peers_file,
        ));
        let collector = tokio::spawn(collect_loop(store.clone(), options.gc_interval));
        info!(
            id = %endpoint.id(),
            addrs = ?addrs,
            dht = ?routing.local_addr().await.ok(),
            "storage node running"
        );
        Ok(Self {
            router,
            store,
            routing,
            addrs,
            status,
            announcer,
            collector,
        })
    }

    /// The node's identity.
    pub fn id(&self) -> EndpointId {
        self.router.endpoint().id()
    }
    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        self.router.endpoint()
    }
    /// The direct addresses it publishes.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }
    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }
    /// The DHT node.
    pub fn routing(&self) -> &Routing {
        &self.routing
    }
    /// The announcer's progress.
    pub fn announce_status(&self) -> &AnnounceStatus {
        &self.status
    }

    /// Stops accepting, closes connections, flushes the store.
    pub async fn shutdown(self) {
        self.announcer.abort();
        self.collector.abort();
        // Also shuts the blob store down.
        if let Err(e) = self.router.shutdown().await {
            warn!("router shutdown: {e}");
        }
    }
}

/// Where a node remembers its DHT peers between runs (one `host:port` per line).
const PEERS_FILE: &str = "dht-peers";

/// Re-announces every record each `interval`; retries sooner after a round that did
/// not reach the DHT (the first node of a network has no peers until others join).
/// Saves the DHT's peers after each round for the next start.
async fn announce_loop(
    routing: Routing,
    store: Store,
    addrs: Vec<SocketAddr>,
    interval: Duration,
    status: Arc<AnnounceStatus>,
    peers_file: PathBuf,
) {
    const RETRY: Duration = Duration::from_secs(2);
    const PARALLEL: usize = 8;
    // A DHT put that hangs must not stall every later record (nor the address record,
    // which readers need to dial us): each step is bounded, and a timeout counts as a
    // failed round, retried soon.
    loop {
        let mut ok = bounded(routing.publish_addrs(&addrs)).await;
        ok &= bounded(routing.announce_storage_node()).await;
        let held = store.held().unwrap_or_default();
        status.backlog.store(held.len(), Ordering::Relaxed);
        for batch in held.chunks(PARALLEL) {
            let results =
                n0_future::join_all(batch.iter().map(|h| bounded(routing.announce_blob(h)))).await;
            ok &= results.iter().all(|r| *r);
            status.backlog.fetch_sub(batch.len(), Ordering::Relaxed);
        }
        status.rounds.fetch_add(1, Ordering::Relaxed);
        status.last_round_ok.store(ok, Ordering::Relaxed);
        debug!(blobs = held.len(), ok, "announce round done");
        if let Ok(peers) = routing.to_bootstrap().await {
            if !peers.is_empty() {
                let tmp = peers_file.with_extension("tmp");
                if std::fs::write(&tmp, peers.join("\n")).is_ok() {
                    let _ = std::fs::rename(&tmp, &peers_file);
                }
            }
        }
        tokio::time::sleep(if ok { interval } else { interval.min(RETRY) }).await;
    }
}

/// Checks usage against the high watermark every `interval` and collects unpinned
/// blobs down to the low one (off the async workers: it is redb work).
async fn collect_loop(store: Store, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let store = store.clone();
        match tokio::task::spawn_blocking(move || store.collect_if_needed()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => warn!("garbage collection failed: {e}"),
            Err(e) => warn!("garbage collection task failed: {e}"),
        }
    }
}

/// How long one DHT put of the announcer may take.
const PUT_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether `put` succeeded within [`PUT_TIMEOUT`].
async fn bounded(put: impl Future<Output = Result<(), RoutingError>>) -> bool {
    matches!(tokio::time::timeout(PUT_TIMEOUT, put).await, Ok(Ok(())))
}

/// The storage protocol's handler.
#[derive(Debug, Clone)]
struct StorageProtocol {
    store: Store,
    routing: Routing,
    access: Arc<Access>,
    status: Arc<AnnounceStatus>,
}

/// An upload that delivers nothing for this long is abandoned (it holds space and quota
/// reserved for it).
const UPLOAD_STALL: Duration = Duration::from_secs(30);

/// Bytes of an upload handed to the blob store at a time.
const IMPORT_BATCH: usize = 1 << 20;

/// How long a store waits for its announce before answering anyway (the announcer
/// retries).
const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(5);

impl ProtocolHandler for StorageProtocol {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        let peer = connection.remote_id();
        while let Ok((send, recv)) = connection.accept_bi().await {
            let this = self.clone();
            tokio::spawn(async move {
                if let Err(e) = this.serve(peer, send, recv).await {
                    debug!(%peer, "storage request failed: {e}");
                }
            });
        }
        Ok(())
    }
}

fn refused(reason: Refusal, message: impl Into<String>) -> Response {
    Response::Refused {
        reason,
        message: message.into(),
    }
}

fn store_refusal(e: StoreError) -> Response {
    let reason = match e {
        StoreError::NoSpace { .. } => Refusal::NoSpace,
        StoreError::QuotaExceeded { .. } => Refusal::QuotaExceeded,
        StoreError::SizeMismatch { .. } => Refusal::BadRequest,
        _ => Refusal::Internal,
    };
    refused(reason, e.to_string())
}

impl StorageProtocol {
    async fn serve(
        &self,
        peer: EndpointId,
        mut send: SendStream,
        mut recv: RecvStream,
    ) -> Result<(), proto::ProtoError> {
        let response = match proto::read_frame::<Request>(&mut recv).await {
            Err(e) => refused(Refusal::BadRequest, e.to_string()),
            Ok(request) => self.handle(peer, request, &mut recv).await,
        };
        if matches!(response, Response::Refused { .. }) {
            // Tell a client still sending a blob to stop; nothing it sent was kept.
            let _ = recv.stop(VarInt::from_u32(1));
        }
        proto::write_frame(&mut send, &response).await?;
        send.finish()
            .map_err(|e| proto::ProtoError::Stream(e.to_string()))?;
        // Let the response reach the client before the stream is dropped.
        let _ = send.stopped().await;
        Ok(())
    }

    async fn handle(&self, peer: EndpointId, request: Request, recv: &mut RecvStream) -> Response {
        let unauthorized = || {
            refused(
                Refusal::Unauthorized,
                format!(
                    "this node does not accept data from {peer}: ask its operator to add it with --allow, or to run with --open"
                ),
            )
        };
        match request {
            Request::Stat { hashes }
            | Request::Pin { hashes }
            | Request::Unpin { hashes }
            | Request::Status { hashes }
                if hashes.len() > MAX_HASHES =>
            {
                refused(
                    Refusal::BadRequest,
                    format!(
                        "{} hashes in one request; the limit is {MAX_HASHES}",
                        hashes.len()
                    ),
                )
            }
            Request::Stat { hashes } => {
                let held = proto::hashes(&hashes)
                    .iter()
                    .map(|h| matches!(self.store.size_of(h), Ok(Some(_))))
                    .collect();
                Response::Stat {
                    capacity: self.store.capacity(),
                    used: self.store.used(),
                    held,
                }
            }
            Request::Status { hashes } => self.status(peer, &proto::hashes(&hashes)),
            _ if !self.access.allows(&peer) => unauthorized(),
            Request::Store { size } => self.store_blob(peer, size, recv).await,
            Request::Pin { hashes } => match self.store.pin(peer, &proto::hashes(&hashes)).await {
                Ok(missing) => Response::Pinned {
                    missing: missing.iter().map(|h| *h.as_bytes()).collect(),
                },
                Err(e) => store_refusal(e),
            },
            Request::Unpin { hashes } => {
                match self.store.unpin(peer, &proto::hashes(&hashes)).await {
                    Ok(()) => {
                        // Space freed by an unpin is reclaimed now if usage is high.
                        let store = self.store.clone();
                        tokio::task::spawn_blocking(move || store.collect_if_needed());
                        Response::Unpinned
                    }
                    Err(e) => store_refusal(e),
                }
            }
        }
    }

    fn status(&self, peer: EndpointId, hashes: &[Hash]) -> Response {
        let store = &self.store;
        let result = (|| {
            let limits = store.limits();
            Ok::<_, StoreError>(proto::NodeStatus {
                capacity: limits.capacity,
                used: store.used(),
                collectable: store.collectable(),
                gc_high: (limits.capacity as f64 * limits.gc_high) as u64,
                blobs: store.count()?,
                pinned_by_you: store.pinned_by(&peer),
                quota: limits.quota,
                announce_backlog: self.status.backlog.load(Ordering::Relaxed) as u64,
                announce_ok: self.status.last_round_ok.load(Ordering::Relaxed),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                blobs_asked: store
                    .states(&peer, hashes)?
                    .into_iter()
                    .map(|s| proto::BlobPins {
                        held: s.held,
                        yours: s.yours,
                        owners: s.owners,
                    })
                    .collect(),
            })
        })();
        match result {
            Ok(status) => Response::Status(status),
            Err(e) => store_refusal(e),
        }
    }

    async fn store_blob(&self, peer: EndpointId, size: u64, recv: &mut RecvStream) -> Response {
        // Forward the stream to the blob store through a small channel: the store wants
        // a `Sync` stream, and this bounds what sits in memory. QUIC hands out small
        // chunks (a few KiB each); each item costs several task wake-ups and a write
        // syscall on its way into the store, so they are coalesced into
        // `IMPORT_BATCH`-byte items first (measured: see docs/performance.md).
        let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(4);
        let import = self.store.import(peer, size, ChannelStream(rx));
        // Returns what the client did wrong, if anything.
        let forward = async {
            let mut remaining = size;
            let mut client_fault = None;
            let mut batch = BytesMut::new();
            while remaining > 0 {
                let chunk = tokio::time::timeout(
                    UPLOAD_STALL,
                    recv.read_chunk(remaining.min(1 << 16) as usize),
                )
                .await;
                let Ok(chunk) = chunk else {
                    let msg = format!(
                        "the upload sent nothing for {} s; its reservation is released",
                        UPLOAD_STALL.as_secs()
                    );
                    client_fault = Some(msg.clone());
                    let _ = tx
                        .send(Err(std::io::Error::new(std::io::ErrorKind::TimedOut, msg)))
                        .await;
                    break;
                };
                let item = match chunk {
                    Ok(Some(chunk)) => {
                        remaining -= (chunk.len() as u64).min(remaining);
                        if batch.is_empty() {
                            batch.reserve(IMPORT_BATCH.min(remaining as usize + chunk.len()));
                        }
                        batch.extend_from_slice(&chunk);
                        if batch.len() < IMPORT_BATCH && remaining > 0 {
                            continue;
                        }
                        Ok(batch.split().freeze())
                    }
                    Ok(None) => {
                        let msg = format!(
                            "the client sent {} of the {size} bytes it announced",
                            size - remaining
                        );
                        client_fault = Some(msg.clone());
                        Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, msg))
                    }
                    Err(e) => {
                        client_fault = Some(format!("the upload stream failed: {e}"));
                        Err(std::io::Error::other(e.to_string()))
                    }
                };
                let failed = item.is_err();
                if tx.send(item).await.is_err() || failed {
                    break;
                }
            }
            drop(tx);
            client_fault
        };
        let (result, client_fault) = tokio::join!(import, forward);
        match result {
            Ok((hash, new_pin)) => {
                self.announce(&hash).await;
                Response::Stored {
                    hash: *hash.as_bytes(),
                    size,
                    new_pin,
                }
            }
            Err(e @ (StoreError::NoSpace { .. } | StoreError::QuotaExceeded { .. })) => {
                store_refusal(e)
            }
            Err(e @ StoreError::SizeMismatch { .. }) => refused(Refusal::BadRequest, e.to_string()),
            Err(_) if client_fault.is_some() => {
                refused(Refusal::BadRequest, client_fault.unwrap_or_default())
            }
            Err(e) => store_refusal(e),
        }
    }

    async fn announce(&self, hash: &Hash) {
        // Alone (no DHT peers yet) an announce cannot succeed: leave it to the announcer.
        if self.routing.routing_table_size().await.unwrap_or(0) == 0 {
            debug!(hash = %hash.fmt_short(), "no DHT peers yet; announcing later");
            return;
        }
        match tokio::time::timeout(ANNOUNCE_TIMEOUT, self.routing.announce_blob(hash)).await {
            Ok(Ok(())) => debug!(hash = %hash.fmt_short(), "announced"),
            Ok(Err(e)) => warn!(hash = %hash.fmt_short(), "announce failed, will retry: {e}"),
            Err(_) => warn!(hash = %hash.fmt_short(), "announce timed out, will retry"),
        }
    }
}

/// A `Stream` over an mpsc receiver (which is `Sync`, unlike most stream adapters).
struct ChannelStream(mpsc::Receiver<std::io::Result<Bytes>>);

impl n0_future::Stream for ChannelStream {
    type Item = std::io::Result<Bytes>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}
