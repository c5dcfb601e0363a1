//! The storage protocol's handler (`/mosaic/storage/1`): one request per stream,
//! answered from the node's store. See `docs/protocol.md` for the messages.
//!
//! Invariants: nothing from the network can panic the node; a request that is
//! malformed, unauthorized or over a limit is refused with a typed [`Refusal`] and
//! changes nothing; space and quota are reserved before an upload's first byte is
//! accepted; a stored blob is announced on the DHT in the background (a manifest's
//! store waits briefly for its announce, so a file is findable once its put returns).

use std::{
    collections::HashSet,
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use bytes::{Bytes, BytesMut};
use iroh::{
    EndpointId,
    endpoint::{Connection, RecvStream, SendStream, VarInt},
    protocol::{AcceptError, ProtocolHandler},
};
use mosaic_codec::{Hash, MAX_MANIFEST_LEN, Manifest};
use mosaic_wire::{
    dht::Routing,
    proto::{self, MAX_HASHES, Refusal, Request, Response},
    record::SignedRecord,
};
use tokio::sync::mpsc;
use tracing::debug;

use crate::{
    announcer::{self, AnnounceStatus},
    health::Health,
    metrics::NodeMetrics,
    names::{HoldError, Names},
    peers::{self, PeerLimits},
    store::{Store, StoreError},
};

/// The storage protocol's handler.
#[derive(Debug, Clone)]
pub(crate) struct StorageProtocol {
    store: Store,
    routing: Routing,
    admission: Arc<Admission>,
    status: Arc<AnnounceStatus>,
    health: Arc<Health>,
    names: Arc<Names>,
    limits: Arc<PeerLimits>,
    metrics: Arc<NodeMetrics>,
}

/// What the storage protocol's handler answers from.
#[derive(Debug)]
pub(crate) struct Parts {
    pub store: Store,
    pub routing: Routing,
    pub names: Arc<Names>,
    pub admission: Admission,
    pub status: Arc<AnnounceStatus>,
    pub health: Arc<Health>,
    pub limits: PeerLimits,
    pub metrics: Arc<NodeMetrics>,
}

impl StorageProtocol {
    pub(crate) fn new(parts: Parts) -> Self {
        Self {
            store: parts.store,
            routing: parts.routing,
            admission: Arc::new(parts.admission),
            status: parts.status,
            health: parts.health,
            names: parts.names,
            limits: Arc::new(parts.limits),
            metrics: parts.metrics,
        }
    }
}

/// An upload that delivers nothing for this long is abandoned (it holds space and quota
/// reserved for it).
const UPLOAD_STALL: Duration = Duration::from_secs(30);

/// Who may store and pin on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Anyone.
    Open,
    /// Only these identities.
    Allow(HashSet<EndpointId>),
}

impl Admission {
    pub(crate) fn allows(&self, id: &EndpointId) -> bool {
        match self {
            Admission::Open => true,
            Admission::Allow(ids) => ids.contains(id),
        }
    }
}

/// The QUIC close code of a connection refused for being over the peer's limit.
const CLOSE_BUSY: u32 = 429;

/// Runs `f` when dropped (however the scope ends).
fn scopeguard<F: FnOnce()>(f: F) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}

/// Bytes of an upload handed to the blob store at a time.
const IMPORT_BATCH: usize = 1 << 20;

impl ProtocolHandler for StorageProtocol {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        let peer = connection.remote_id();
        let _slot = match self.limits.connection(peer) {
            Ok(slot) => slot,
            Err(over) => {
                self.metrics.limited(over.limit);
                debug!(%peer, "connection refused: {}", over.message);
                connection.close(VarInt::from_u32(CLOSE_BUSY), over.message.as_bytes());
                return Ok(());
            }
        };
        self.metrics.connection_opened();
        let _open = scopeguard(|| self.metrics.connection_closed());
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

/// A response's outcome, for metrics.
fn outcome(response: &Response) -> &'static str {
    match response {
        Response::Refused { reason, .. } => match reason {
            Refusal::Unauthorized => "unauthorized",
            Refusal::NoSpace => "no_space",
            Refusal::BadRequest => "bad_request",
            Refusal::Internal => "internal",
            Refusal::QuotaExceeded => "quota_exceeded",
            Refusal::Stale => "stale",
            Refusal::Busy => "busy",
        },
        _ => "ok",
    }
}

fn store_refusal(e: StoreError) -> Response {
    let reason = match e {
        StoreError::NoSpace { .. } => Refusal::NoSpace,
        StoreError::QuotaExceeded { .. } => Refusal::QuotaExceeded,
        StoreError::SizeMismatch { .. } | StoreError::HashMismatch { .. } => Refusal::BadRequest,
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
        let (kind, response) = match proto::read_frame::<Request>(&mut recv).await {
            Err(e) => ("malformed", refused(Refusal::BadRequest, e.to_string())),
            Ok(request) => {
                let kind = peers::kind(&request);
                match self.limits.admit(peer, &request, Instant::now()) {
                    Err(over) => {
                        self.metrics.limited(over.limit);
                        (kind, refused(Refusal::Busy, over.message))
                    }
                    Ok(_admitted) => (kind, self.handle(peer, request, &mut recv).await),
                }
            }
        };
        self.metrics.request(kind, outcome(&response));
        if matches!(response, Response::Refused { .. }) {
            // Tell a client still sending a blob to stop; nothing it sent was kept.
            let _ = recv.stop(VarInt::from_u32(1));
        }
        proto::write_frame(&mut send, &response).await?;
        send.finish()?;
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
            Request::Adopt { owners, .. } if owners.len() > MAX_HASHES => refused(
                Refusal::BadRequest,
                format!(
                    "{} owners in one request; the limit is {MAX_HASHES}",
                    owners.len()
                ),
            ),
            Request::Status { hashes } => self.status(peer, &proto::hashes(&hashes)),
            // Anyone may ask, as anyone may query the DHT node itself: a client in
            // relay-only mode asks the node serving its relay.
            Request::Lookup(what) => self.lookup(what).await,
            // Anyone may ask for a repair: it needs no key, and the node decides what,
            // if anything, to do (one check of a file at a time).
            Request::Repair { file } => {
                Response::Repaired(self.health.check(Hash::from_bytes(file), true).await)
            }
            _ if !self.admission.allows(&peer) => unauthorized(),
            Request::Store { size } => {
                let store = self.store.clone();
                self.receive_blob(size, recv, move |data| async move {
                    store.import(peer, size, data).await
                })
                .await
            }
            Request::Adopt {
                file,
                column,
                owners,
                size,
            } => self.adopt(file, column, owners, size, recv).await,
            Request::HoldName { record, file } => self.hold_name(record, file).await,
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

    /// Keeps a name record and puts it to the DHT at once.
    async fn hold_name(&self, record: SignedRecord, file: [u8; 32]) -> Response {
        let names = self.names.clone();
        let kept = {
            let record = record.clone();
            tokio::task::spawn_blocking(move || names.hold(record, Hash::from_bytes(file))).await
        };
        match kept {
            Ok(Ok(())) => Response::NameHeld {
                published: self.names.publish(&record).await,
            },
            Ok(Err(e)) => {
                let reason = match e {
                    HoldError::Stale { .. } => Refusal::Stale,
                    HoldError::Record(_) | HoldError::NotHeld(_) | HoldError::OtherFile(_) => {
                        Refusal::BadRequest
                    }
                    HoldError::Full => Refusal::NoSpace,
                    HoldError::Db(_) => Refusal::Internal,
                };
                refused(reason, e.to_string())
            }
            Err(e) => refused(Refusal::Internal, e.to_string()),
        }
    }

    /// A DHT lookup for the caller.
    async fn lookup(&self, what: proto::Lookup) -> Response {
        let ids = |found: Result<Vec<EndpointId>, _>| {
            found.map(|ids: Vec<EndpointId>| {
                proto::Found::Ids(
                    ids.iter()
                        .take(proto::MAX_FOUND)
                        .map(|id| *id.as_bytes())
                        .collect(),
                )
            })
        };
        let found = match what {
            proto::Lookup::Providers(hash) => {
                ids(self.routing.providers(&Hash::from_bytes(hash)).await)
            }
            proto::Lookup::StorageNodes => ids(self.routing.storage_nodes().await),
            proto::Lookup::Name(key) => self
                .routing
                .resolve_record(&key)
                .await
                .map(proto::Found::Record),
            proto::Lookup::Address(id) => match EndpointId::from_bytes(&id) {
                Ok(id) => self.routing.resolve(&id).await.map(proto::Found::Address),
                Err(_) => return refused(Refusal::BadRequest, "not a node id"),
            },
        };
        match found {
            Ok(found) => Response::Found(found),
            Err(e) => refused(Refusal::Internal, format!("DHT lookup failed: {e}")),
        }
    }

    fn status(&self, peer: EndpointId, hashes: &[Hash]) -> Response {
        let store = &self.store;
        let result = (|| {
            let limits = store.limits();
            let capacity = store.capacity();
            Ok::<_, StoreError>(proto::NodeStatus {
                capacity,
                used: store.used(),
                collectable: store.collectable(),
                gc_high: (capacity as f64 * limits.gc_high) as u64,
                blobs: store.count()?,
                pinned_by_you: store.pinned_by(&peer),
                quota: limits.quota,
                announce_backlog: self.status.backlog(),
                announce_ok: self.status.last_round_ok.load(Ordering::Relaxed),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                health: self.health.stats(),
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

    /// A repaired column (or the manifest before it) of file `file`, from the node
    /// repairing it: checked against the manifest this node holds (the manifest
    /// against the file id) before it is kept, then pinned for `owners`.
    async fn adopt(
        &self,
        file: [u8; 32],
        column: Option<u16>,
        owners: Vec<[u8; 32]>,
        size: u64,
        recv: &mut RecvStream,
    ) -> Response {
        let bad = |m: String| refused(Refusal::BadRequest, m);
        let owners: Vec<EndpointId> = match owners
            .iter()
            .map(EndpointId::from_bytes)
            .collect::<Result<_, _>>()
        {
            Ok(o) => o,
            Err(_) => return bad("an owner is not a valid node identity".into()),
        };
        if owners.is_empty() {
            return bad("an adopted blob needs at least one owner".into());
        }
        let file = Hash::from_bytes(file);
        let expected = match column {
            None if size > MAX_MANIFEST_LEN as u64 => {
                return bad(format!(
                    "a manifest is at most {MAX_MANIFEST_LEN} bytes, not {size}"
                ));
            }
            None => file,
            Some(c) => {
                let manifest = match self.store.read_small(&file, MAX_MANIFEST_LEN as u64).await {
                    Ok(Some(bytes)) => Manifest::from_bytes_verified(&bytes, &file).ok(),
                    _ => None,
                };
                let Some(manifest) = manifest else {
                    return bad(format!(
                        "this node does not hold the manifest of file {}: adopt it first",
                        file.fmt_short()
                    ));
                };
                let Some(expected) = manifest.columns().get(c as usize).copied() else {
                    return bad(format!(
                        "the file has {} columns; there is no column {c}",
                        manifest.columns().len()
                    ));
                };
                if size != manifest.layout().column_len() {
                    return bad(format!(
                        "column {c} is {} bytes, not {size}",
                        manifest.layout().column_len()
                    ));
                }
                expected
            }
        };
        let store = self.store.clone();
        self.receive_blob(size, recv, move |data| async move {
            store.adopt(&owners, size, data, expected).await
        })
        .await
    }

    /// Receives the `size` bytes of a `Store` or an `Adopt` into `import`, announces
    /// the blob, and answers.
    async fn receive_blob<F, Fut>(&self, size: u64, recv: &mut RecvStream, import: F) -> Response
    where
        F: FnOnce(ChannelStream) -> Fut,
        Fut: Future<Output = Result<(Hash, bool), StoreError>>,
    {
        // Forward the stream to the blob store through a small channel: the store wants
        // a `Sync` stream, and this bounds what sits in memory. QUIC hands out small
        // chunks (a few KiB each); each item costs several task wake-ups and a write
        // syscall on its way into the store, so they are coalesced into
        // `IMPORT_BATCH`-byte items first (measured: see docs/performance.md).
        let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(4);
        let import = import(ChannelStream(rx));
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
                self.metrics.received(size);
                self.announce(&hash, size).await;
                Response::Stored {
                    hash: *hash.as_bytes(),
                    size,
                    new_pin,
                }
            }
            Err(e @ (StoreError::NoSpace { .. } | StoreError::QuotaExceeded { .. })) => {
                store_refusal(e)
            }
            Err(e @ (StoreError::SizeMismatch { .. } | StoreError::HashMismatch { .. })) => {
                refused(Refusal::BadRequest, e.to_string())
            }
            Err(_) if client_fault.is_some() => {
                refused(Refusal::BadRequest, client_fault.unwrap_or_default())
            }
            Err(e) => store_refusal(e),
        }
    }

    /// Announces a blob just stored, in the background (see `announcer.rs`). A manifest's
    /// store waits briefly for it: readers look a file up by its manifest, so a file is
    /// findable as soon as its put returns, while a troubled DHT costs the put at most
    /// [`announcer::FRESH_WAIT_MAX`]. Columns never wait.
    async fn announce(&self, hash: &Hash, size: u64) {
        // Alone (no DHT peers yet) an announce cannot succeed: leave it to the announcer.
        if self.routing.routing_table_size().await.unwrap_or(0) == 0 {
            debug!(hash = %hash.fmt_short(), "no DHT peers yet; announcing later");
            return;
        }
        let announced = announcer::announce_fresh(self.routing.clone(), self.status.clone(), *hash);
        let manifest = size <= MAX_MANIFEST_LEN as u64
            && matches!(
                self.store.read_small(hash, MAX_MANIFEST_LEN as u64).await,
                Ok(Some(bytes)) if Manifest::from_bytes_verified(&bytes, hash).is_ok()
            );
        if manifest {
            let _ = tokio::time::timeout(self.status.fresh_wait(), announced).await;
        }
    }
}

/// A `Stream` over an mpsc receiver (which is `Sync`, unlike most stream adapters).
pub(crate) struct ChannelStream(mpsc::Receiver<std::io::Result<Bytes>>);

impl n0_future::Stream for ChannelStream {
    type Item = std::io::Result<Bytes>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}
