//! A storage node's wiring (`mosaic node run`): identity, store, endpoint, DHT, the
//! storage protocol's handler, and the background tasks (announcer, collector, health
//! checker and repairer, scrubber).
//!
//! Wiring: one iroh endpoint accepts two ALPNs, iroh-blobs (`/iroh-bytes/4`: anyone may
//! read, with verified streaming; push stays disabled) and Mosaic's storage protocol
//! (`/mosaic/storage/1`: authorized identities store and pin). A Mainline DHT node in
//! server mode stores other nodes' records and publishes this node's: its address, that
//! it is a storage node, and every blob it holds. A blob stored is announced in the
//! background, retried until the DHT takes it; a manifest's store waits briefly for its
//! announce, so a `get` right after a `put` finds the file.
//!
//! Reachability: a node may serve a relay (`relay.rs`) and uses relays (configured, or
//! found on the DHT when none is configured) to keep a home relay; its address record
//! names the home relay, so peers behind NATs reach it and iroh can punch holes. The
//! record is republished whenever the home relay changes. Every accepted connection is
//! logged with the peer's addresses when it ends (`mosaic::peers`): the node's own
//! record of who reached it from where.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use iroh::{
    Endpoint, EndpointId, Watcher,
    endpoint::Connection,
    protocol::{AcceptError, ProtocolHandler, Router},
};
use iroh_blobs::BlobsProtocol;
use mosaic_client::{Client, ClientOptions};
use mosaic_codec::ErrorKind;
use mosaic_wire::{
    dht::{PeerAddr, Routing, RoutingError, RoutingOptions},
    endpoint::{self, EndpointError, EndpointOptions},
    identity, proto,
    relay::RelayInfo,
};
use n0_future::StreamExt;
use tokio::{sync::watch, task::JoinHandle};
use tracing::{info, warn};

use crate::{
    announcer::{self, AnnounceStatus, PEERS_FILE},
    collector,
    handler::{Admission, Parts, StorageProtocol},
    health::{Health, HealthOptions},
    metrics::{NodeMetrics, NodeState},
    names::{self, Names},
    peers::{PeerLimitOptions, PeerLimits},
    relay::{RelayError, RelayServeOptions, RelayService, RelayStats},
    scrub,
    store::{Limits, Store, StoreError},
};

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
    /// Space: capacity, per-client quota, garbage-collection watermarks, and how often
    /// usage is checked and collected bytes are swept.
    pub limits: Limits,
    /// Who may store and pin.
    pub admission: Admission,
    /// What one peer may make the node do at once and a second.
    pub peer_limits: PeerLimitOptions,
    /// Relays to keep a home relay among; empty: those found on the DHT.
    pub relays: Vec<RelayInfo>,
    /// Reach and be reached through the home relay only (peers never learn the node's
    /// address). Needs a relay.
    pub relay_only: bool,
    /// Serve a relay for the network.
    pub relay_serve: Option<RelayServeOptions>,
    /// Take part in the DHT as a client only (a node behind NAT, which others cannot
    /// query); otherwise it serves the DHT, as a storage node should.
    pub dht_client: bool,
    /// How often every record is re-announced.
    pub announce_interval: Duration,
    /// How often kept name records are republished (`docs/protocol.md`, "Names").
    pub republish_interval: Duration,
    /// Health checks, repair and scrub.
    pub health: HealthOptions,
}

/// Default QUIC (UDP) port of a storage node.
pub const DEFAULT_QUIC_PORT: u16 = 4919;
/// Default DHT (UDP) port of a storage node.
pub const DEFAULT_DHT_PORT: u16 = 6881;
/// Default capacity: 10 GiB.
pub const DEFAULT_CAPACITY: u64 = 10 << 30;

impl NodeOptions {
    /// The defaults, every one of them, for a node keeping its data in `data_dir`: what
    /// `mosaic node run` uses for a setting nobody gave, and where `devnet`, tests and
    /// benches start. It listens on all interfaces at [`DEFAULT_QUIC_PORT`] and
    /// [`DEFAULT_DHT_PORT`] and starts a network of its own (no bootstrap), and it
    /// admits nobody: who may store is the operator's decision.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            listen: SocketAddr::from(([0, 0, 0, 0], DEFAULT_QUIC_PORT)),
            public_addrs: Vec::new(),
            routing: RoutingOptions {
                port: Some(DEFAULT_DHT_PORT),
                ..RoutingOptions::default()
            },
            limits: Limits::new(DEFAULT_CAPACITY),
            admission: Admission::Allow(Default::default()),
            peer_limits: PeerLimitOptions::default(),
            relays: Vec::new(),
            relay_only: false,
            relay_serve: None,
            dht_client: false,
            announce_interval: Duration::from_secs(10 * 60),
            republish_interval: Duration::from_secs(60 * 60),
            health: HealthOptions::default(),
        }
    }
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
    /// The relay it serves.
    #[error(transparent)]
    Relay(#[from] RelayError),
}

impl NodeError {
    /// What kind of failure stopped the node from starting.
    pub fn kind(&self) -> ErrorKind {
        match self {
            NodeError::Identity(e) => e.kind(),
            NodeError::Store(e) => e.kind(),
            NodeError::Endpoint(e) => e.kind(),
            NodeError::Routing(e) => e.kind(),
            NodeError::Relay(e) => e.kind(),
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
    reach: watch::Receiver<PeerAddr>,
    relay: Option<RelayService>,
    reacher: JoinHandle<()>,
    status: Arc<AnnounceStatus>,
    announcer: JoinHandle<()>,
    collector: JoinHandle<()>,
    health: Arc<Health>,
    checker: JoinHandle<()>,
    scrubber: JoinHandle<()>,
    republisher: JoinHandle<()>,
    names: Arc<Names>,
    metrics: Arc<NodeMetrics>,
}

impl Node {
    /// Starts a node.
    pub async fn spawn(mut options: NodeOptions) -> Result<Self, NodeError> {
        let secret = identity::load_or_create(&options.data_dir.join("identity.key"))?;
        let store = Store::load(&options.data_dir, options.limits).await?;
        let relay = match options.relay_serve.clone() {
            None => None,
            Some(serve) => {
                let ips: Vec<_> = options.public_addrs.iter().map(|a| a.ip()).collect();
                let service = RelayService::spawn(
                    secret.public(),
                    &options.data_dir,
                    &options.routing.network,
                    &ips,
                    serve,
                )
                .await?;
                // A node serving a relay is its own home relay.
                options.relays.insert(0, service.info.clone());
                Some(service)
            }
        };
        let endpoint = endpoint::bind(EndpointOptions {
            secret: secret.clone(),
            bind: options.listen,
            relays: options.relays.clone(),
            relay_only: options.relay_only,
            network: options.routing.network.clone(),
            nameserver: options.routing.nameserver,
            alpns: vec![],
        })
        .await?;
        options.routing.server = !options.dht_client;
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
        let routing = Routing::start(options.routing.clone(), Some(&secret)).await?;
        let addrs = if options.relay_only {
            Vec::new()
        } else {
            endpoint::direct_addrs(&endpoint, &options.public_addrs)
        };
        let (reach_tx, reach) = watch::channel(PeerAddr {
            direct: addrs.clone(),
            relay: endpoint::home_relay(&endpoint, &options.relays),
        });
        let reacher = tokio::spawn(keep_reachable(
            endpoint.clone(),
            routing.clone(),
            options.relays.clone(),
            options.announce_interval,
            reach_tx,
        ));
        let status = Arc::new(AnnounceStatus::default());
        // The node is a client of its peers when it repairs: same endpoint, same DHT.
        let client = Client::with_endpoint(
            endpoint.clone(),
            routing.clone(),
            ClientOptions {
                secret: secret.clone(),
                bind: options.listen,
                routing: options.routing.clone(),
                relays: options.relays.clone(),
                relay_only: options.relay_only,
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
        let names = Arc::new(
            Names::open(&options.data_dir, store.clone(), routing.clone())
                .map_err(|e| NodeError::Store(StoreError::Db(e)))?,
        );
        let republisher = tokio::spawn(names::run(names.clone(), options.republish_interval));
        let metrics = Arc::new(NodeMetrics::new());
        let storage = StorageProtocol::new(Parts {
            store: store.clone(),
            routing: routing.clone(),
            names: names.clone(),
            admission: options.admission.clone(),
            status: status.clone(),
            health: health.clone(),
            limits: PeerLimits::new(options.peer_limits.clone()),
            metrics: metrics.clone(),
        });
        let router = Router::builder(endpoint.clone())
            .accept(
                iroh_blobs::ALPN,
                Logged(BlobsProtocol::new(store.blobs(), None)),
            )
            .accept(proto::ALPN, Logged(storage))
            .spawn();
        let announcer = tokio::spawn(announcer::run(
            routing.clone(),
            store.clone(),
            reach.clone(),
            relay.is_some(),
            options.announce_interval,
            status.clone(),
            peers_file,
        ));
        let collector = tokio::spawn(collector::run(store.clone(), options.limits.sweep_interval));
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
            reach,
            relay,
            reacher,
            status,
            announcer,
            collector,
            health,
            checker,
            scrubber,
            republisher,
            names,
            metrics,
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
    /// Where it says it can be reached now (direct addresses, home relay).
    pub fn reach(&self) -> PeerAddr {
        self.reach.borrow().clone()
    }
    /// The relay it serves, if any.
    pub fn relay(&self) -> Option<&RelayInfo> {
        self.relay.as_ref().map(|r| &r.info)
    }
    /// What the relay it serves has done.
    pub fn relay_stats(&self) -> Option<&RelayStats> {
        self.relay.as_ref().map(|r| r.stats.as_ref())
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

    /// The node's metrics in the Prometheus text format (`docs/operations.md`).
    pub async fn metrics_text(&self) -> String {
        let store = &self.store;
        let state = NodeState {
            capacity: store.capacity(),
            used: store.used(),
            blobs: store.count().unwrap_or(0),
            announce_backlog: self.status.backlog(),
            dht_peers: self.routing.routing_table_size().await.unwrap_or(0) as u64,
            names: self.names.count(),
            health: self.health.stats(),
            dht_request_timeout: self.routing.request_timeout(),
            dht_late_answers_dropped: self.routing.late_answers_dropped(),
        };
        self.metrics.render(&state)
    }

    /// Whether the node can do its job: it has DHT peers (it can announce and be
    /// found) and its store answers. `Err` says what is wrong.
    pub async fn healthy(&self) -> Result<String, String> {
        let peers = self
            .routing
            .routing_table_size()
            .await
            .map_err(|e| format!("the DHT node failed: {e}"))?;
        if peers == 0 {
            return Err("no DHT peers: check --bootstrap and that UDP reaches the node".into());
        }
        let blobs = self
            .store
            .count()
            .map_err(|e| format!("the store does not answer: {e}"))?;
        Ok(format!(
            "ok: {peers} DHT peers, {blobs} blobs, {} of {} bytes used",
            self.store.used(),
            self.store.capacity()
        ))
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
        self.reacher.abort();
        self.collector.abort();
        self.checker.abort();
        self.scrubber.abort();
        self.republisher.abort();
        // Also shuts the blob store down.
        if let Err(e) = self.router.shutdown().await {
            warn!("router shutdown: {e}");
        }
        if let Some(relay) = self.relay {
            relay.shutdown().await;
        }
    }
}

/// How soon a node with no relay looks for one again.
const RELAY_RETRY: Duration = Duration::from_secs(5);

/// Keeps `reach` naming the endpoint's home relay. With no relay configured, looks
/// the network's relays up on the DHT (at start, then every `interval`) and offers them
/// to the endpoint, which picks the nearest as its home.
async fn keep_reachable(
    endpoint: Endpoint,
    routing: Routing,
    configured: Vec<RelayInfo>,
    interval: Duration,
    reach: watch::Sender<PeerAddr>,
) {
    let known = Arc::new(Mutex::new(configured.clone()));
    // Both halves run in this task, so aborting it (node shutdown) stops both.
    let discover = async {
        if !configured.is_empty() {
            return std::future::pending().await;
        }
        {
            routing.bootstrapped().await;
            loop {
                if let Ok(found) = routing.relays().await {
                    for (_, relay) in found {
                        let new = known
                            .lock()
                            .map(|mut k| {
                                let new = !k.contains(&relay);
                                if new {
                                    k.push(relay.clone());
                                }
                                new
                            })
                            .unwrap_or(false);
                        if new {
                            info!(relay = %relay, "using a relay found on the DHT");
                            let config = Arc::new(relay.config(&routing.options().network));
                            endpoint.insert_relay(relay.url.clone(), config).await;
                        }
                    }
                }
                // Until a relay is found, look again soon: a node that starts before
                // the network's relays are announced would otherwise wait a whole
                // announce interval, unreachable from behind NATs.
                let none_yet = known.lock().map(|k| k.is_empty()).unwrap_or(true);
                tokio::time::sleep(if none_yet {
                    interval.min(RELAY_RETRY)
                } else {
                    interval
                })
                .await;
            }
        }
    };
    let follow = async {
        let mut status = endpoint.home_relay_status().stream();
        while status.next().await.is_some() {
            let relays = known.lock().map(|k| k.clone()).unwrap_or_default();
            let home = endpoint::home_relay(&endpoint, &relays);
            reach.send_if_modified(|r| {
                let changed = r.relay != home;
                if changed {
                    info!(relay = ?home.as_ref().map(ToString::to_string), "home relay");
                    r.relay = home;
                }
                changed
            });
            for problem in endpoint::relay_problems(&endpoint) {
                warn!("relay: {problem}");
            }
        }
    };
    tokio::join!(discover, follow);
}

/// A protocol whose connections are logged when they end, with every address the peer
/// was reached at (its connection record: direct addresses, or only a relay's).
#[derive(Debug, Clone)]
struct Logged<P>(P);

impl<P: ProtocolHandler + Clone> ProtocolHandler for Logged<P> {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        let watched = connection.clone();
        tokio::spawn(async move {
            let peer = watched.remote_id();
            let mut seen: Vec<String> = Vec::new();
            let mut last = endpoint::route(&watched);
            let mut paths = watched.paths_stream();
            while paths.next().await.is_some() {
                for a in endpoint::remote_addrs(&watched) {
                    if !seen.contains(&a) {
                        seen.push(a);
                    }
                }
                let now = endpoint::route(&watched);
                if now != endpoint::Route::None {
                    last = now;
                }
            }
            info!(
                target: "mosaic::peers",
                %peer,
                addrs = ?seen,
                route = ?last,
                "peer connection ended"
            );
        });
        self.0.accept(connection).await
    }

    async fn shutdown(&self) {
        // iroh-blobs' handler closes the blob store here.
        self.0.shutdown().await
    }
}
