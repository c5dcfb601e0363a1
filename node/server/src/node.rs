//! A storage node's wiring (`mosaic node run`): identity, store, endpoint, DHT, the
//! storage protocol's handler, and the background tasks (announcer, collector, health
//! checker and repairer, scrubber).
//!
//! Wiring: one iroh endpoint accepts two ALPNs, iroh-blobs (`/iroh-bytes/4`: anyone may
//! read, with verified streaming; push stays disabled) and Mosaic's storage protocol
//! (`/mosaic/storage/1`: authorized identities store and pin). A Mainline DHT node in
//! server mode stores other nodes' records and publishes this node's: its address, that
//! it is a storage node, and every blob it holds. A blob stored is announced before the
//! client is told it is stored, so a `get` right after a `put` finds it.

use std::{collections::HashSet, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use iroh::{Endpoint, EndpointId, protocol::Router};
use iroh_blobs::BlobsProtocol;
use mosaic_client::{Client, ClientOptions};
use mosaic_codec::ErrorKind;
use mosaic_wire::{
    dht::{Routing, RoutingError, RoutingOptions},
    endpoint::{self, EndpointError, EndpointOptions},
    identity, proto,
};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::{
    announcer::{self, AnnounceStatus, PEERS_FILE},
    collector,
    handler::StorageProtocol,
    health::{Health, HealthOptions},
    scrub,
    store::{Limits, Store, StoreError},
};

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
    pub admission: Admission,
    /// Use n0's public relays.
    pub relays: bool,
    /// How often every record is re-announced.
    pub announce_interval: Duration,
    /// Health checks, repair and scrub.
    pub health: HealthOptions,
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
    Endpoint(#[from] EndpointError),
    /// The DHT.
    #[error(transparent)]
    Routing(#[from] RoutingError),
}

impl NodeError {
    /// What kind of failure stopped the node from starting.
    pub fn kind(&self) -> ErrorKind {
        match self {
            NodeError::Identity(e) => e.kind(),
            NodeError::Store(e) => e.kind(),
            NodeError::Endpoint(e) => e.kind(),
            NodeError::Routing(e) => e.kind(),
        }
    }
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
    health: Arc<Health>,
    checker: JoinHandle<()>,
    scrubber: JoinHandle<()>,
}

impl Node {
    /// Starts a node.
    pub async fn spawn(mut options: NodeOptions) -> Result<Self, NodeError> {
        let secret = identity::load_or_create(&options.data_dir.join("identity.key"))?;
        let store = Store::load(&options.data_dir, options.limits).await?;
        let endpoint = endpoint::bind(EndpointOptions {
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
        let addrs = endpoint::direct_addrs(&endpoint, &options.public_addrs);
        let status = Arc::new(AnnounceStatus::default());
        // The node is a client of its peers when it repairs: same endpoint, same DHT.
        let client = Client::with_endpoint(
            endpoint.clone(),
            routing.clone(),
            ClientOptions {
                secret: secret.clone(),
                bind: options.listen,
                routing: options.routing.clone(),
                relays: options.relays,
                connect_timeout: Duration::from_secs(5),
                stall_timeout: Duration::from_secs(20),
                address_book: None,
            },
        );
        let health = Arc::new(Health::new(
            endpoint.id(),
            store.clone(),
            client,
            options.health,
        ));
        let storage = StorageProtocol::new(
            store.clone(),
            routing.clone(),
            options.admission.clone(),
            status.clone(),
            health.clone(),
        );
        let router = Router::builder(endpoint.clone())
            .accept(iroh_blobs::ALPN, BlobsProtocol::new(store.blobs(), None))
            .accept(proto::ALPN, storage)
            .spawn();
        let announcer = tokio::spawn(announcer::run(
            routing.clone(),
            store.clone(),
            addrs.clone(),
            options.announce_interval,
            status.clone(),
            peers_file,
        ));
        let collector = tokio::spawn(collector::run(store.clone(), options.gc_interval));
        let checker = tokio::spawn(health.clone().run_checks());
        let scrubber = tokio::spawn(scrub::run(
            health.clone(),
            endpoint.id(),
            options.health.scrub_interval,
            options.health.scrub_rate,
        ));
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
            health,
            checker,
            scrubber,
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

    /// What the health checks, repairs and scrubs have done.
    pub fn health(&self) -> proto::HealthStats {
        self.health.stats()
    }

    /// Checks file `id` now and repairs it if any column is missing (what a client's
    /// `Repair` request does).
    pub async fn repair(&self, id: mosaic_codec::Hash) -> proto::RepairReport {
        self.health.check(id, true).await
    }

    /// Re-hashes every held blob now (one scrub pass, at `rate` bytes per second).
    pub async fn scrub(&self, rate: u64) {
        scrub::pass(&self.health, rate).await
    }

    /// Stops accepting, closes connections, flushes the store.
    pub async fn shutdown(self) {
        self.announcer.abort();
        self.collector.abort();
        self.checker.abort();
        self.scrubber.abort();
        // Also shuts the blob store down.
        if let Err(e) = self.router.shutdown().await {
            warn!("router shutdown: {e}");
        }
    }
}
