//! Content routing and address lookup on the Mainline DHT (`n0-mainline`).
//!
//! Three kinds of records, all signed by the node's ed25519 key (its iroh `EndpointId`):
//! - **blob providers**: a signed-peer announce under `blob_key(network, hash)` says
//!   "this EndpointId holds blob `hash`" (columns and manifests alike);
//! - **storage nodes**: a signed-peer announce under `storage_key(network)` says "this
//!   EndpointId is a storage node of `network`", so clients can find nodes to store on;
//! - **relays**: a signed-peer announce under `relay_key(network)` says "this
//!   EndpointId serves a relay for `network`" (its address record says where);
//! - **addresses**: a BEP 44 mutable item under the node's key with salt
//!   `mosaic-addr-v2` holds a [`PeerAddr`]: its direct socket addresses and the relay it
//!   can be reached through, so an EndpointId found above can be dialed.
//!
//! Keys are the first 20 bytes of `BLAKE3_derive_key(context, network ‖ hash)`, so
//! networks do not see each other's records. Signed-peer records carry a timestamp and
//! are never expired by time by DHT nodes (only evicted when their caches fill), so
//! readers drop records older than [`RoutingOptions::stale_after`] and nodes re-announce
//! well within it. Details and timings: `docs/protocol.md`.

use std::{
    collections::{HashMap, HashSet},
    net::{SocketAddr, SocketAddrV4},
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use iroh::{EndpointId, SecretKey};
use n0_future::{Stream, StreamExt};
use n0_mainline::{DatagramHook, Dht, Id, MutableItem, ServerSettings, SigningKey};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use mosaic_codec::{ErrorKind, Hash};

// What an address record holds is defined with its value's encoding, which compiles
// without the network.
pub use crate::addr::{MAX_PUBLISHED_ADDRS, PeerAddr};
use crate::{
    dht_late::{LateFilter, Verdict},
    hosts::{self, HostError},
    record::SignedRecord,
    relay::RelayInfo,
};

const BLOB_KEY_CONTEXT: &str = "mosaic 2026-11-21 v1 dht blob providers";
const STORAGE_KEY_CONTEXT: &str = "mosaic 2026-11-21 v1 dht storage nodes";
const RELAY_KEY_CONTEXT: &str = "mosaic 2026-12-04 v1 dht relays";
/// BEP 44 salt of a node's address record (v1 held direct addresses only).
pub const ADDR_SALT: &[u8] = b"mosaic-addr-v2";
/// Keys a Mosaic DHT server keeps signed-peer records for (n0-mainline's default is
/// 2000). Each record is stored on the ~20 nodes closest to its key, so a network of
/// `N` nodes holds about `N * MAX_KEYS / 20` keys before the least recently announced
/// are evicted: 2000 would cap a 20-node network at 2000 files. A key with a few
/// announcers costs a few hundred bytes: 50 000 keys are ~15 MiB per node.
pub const MAX_KEYS: usize = 50_000;
/// Mutable items (address records) a Mosaic DHT server keeps: one per node whose key
/// is close to this node's; `N * MAX_VALUES / 20` nodes fit.
pub const MAX_VALUES: usize = 10_000;

/// The DHT key under which holders of `hash` announce themselves.
pub fn blob_key(network: &str, hash: &Hash) -> Id {
    derive_id(
        BLOB_KEY_CONTEXT,
        &[network.as_bytes(), &[0], hash.as_bytes()].concat(),
    )
}

/// The DHT key under which the storage nodes of `network` announce themselves.
pub fn storage_key(network: &str) -> Id {
    derive_id(STORAGE_KEY_CONTEXT, network.as_bytes())
}

/// The DHT key under which the relays of `network` announce themselves.
pub fn relay_key(network: &str) -> Id {
    derive_id(RELAY_KEY_CONTEXT, network.as_bytes())
}

fn derive_id(context: &str, material: &[u8]) -> Id {
    let d = blake3::derive_key(context, material);
    Id::from_bytes(&d[..20]).expect("20 bytes make an Id")
}

/// How to run the DHT node.
#[derive(Debug, Clone)]
pub struct RoutingOptions {
    /// Mosaic network name: separates the records of different networks.
    pub network: String,
    /// UDP port to bind (on all IPv4 interfaces); `None` for any.
    pub port: Option<u16>,
    /// DHT addresses of nodes to join through (`host:port`, or `dns:NAME` for a list
    /// published in TXT records; see [`hosts`]). Empty: start a network.
    pub bootstrap: Vec<String>,
    /// The DNS server for host names; `None`: the system's (`/etc/hosts`,
    /// `/etc/resolv.conf`).
    pub nameserver: Option<SocketAddr>,
    /// More addresses to try, e.g. peers remembered from a previous run.
    pub extra_bootstrap: Vec<String>,
    /// Answer other nodes' queries and store their records (storage nodes do).
    pub server: bool,
    /// Records older than this are ignored by readers.
    pub stale_after: Duration,
    /// How long a lookup may take.
    pub lookup_timeout: Duration,
    /// A lookup that has results stops once no more arrive for this long: a query
    /// otherwise waits for every dead node it asked to time out.
    pub settle: Duration,
    /// Lookups run at once; more wait their turn. Each lookup asks up to 20 nodes at a
    /// time and their answers arrive together: a client that starts dozens at once
    /// overflows its UDP receive buffer (212 KiB by default on Linux, ~90 small
    /// datagrams) and loses answers, each loss costing a 500 ms request timeout.
    pub parallel_lookups: usize,
}

impl Default for RoutingOptions {
    fn default() -> Self {
        Self {
            network: "mosaic".into(),
            port: None,
            bootstrap: Vec::new(),
            nameserver: None,
            extra_bootstrap: Vec::new(),
            server: false,
            stale_after: Duration::from_secs(60 * 60),
            lookup_timeout: Duration::from_secs(10),
            settle: Duration::from_millis(300),
            parallel_lookups: 4,
        }
    }
}

/// A routing operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RoutingError {
    /// The DHT node could not start.
    #[error("cannot start the DHT node: {0}")]
    Start(std::io::Error),
    /// The DHT node stopped.
    #[error("the DHT node has stopped")]
    Shutdown,
    /// A read-only client was asked to announce.
    #[error("a read-only DHT client cannot announce")]
    ReadOnly,
    /// An announce reached no node.
    #[error("DHT announce failed: {0}")]
    Announce(#[from] n0_mainline::errors::PutQueryError),
    /// An address record reached no node.
    #[error("DHT publish (mutable item) failed: {0}")]
    Publish(#[from] n0_mainline::errors::PutMutableError),
    /// DHT nodes hold a newer record of this name than the one put.
    #[error(
        "the DHT holds a newer record of this name (sequence number above {seq}): the older one was refused"
    )]
    Stale {
        /// The refused record's sequence number.
        seq: i64,
    },
    /// DHT nodes refused a name record (error code and their words).
    #[error("DHT nodes refused the name record: {0}")]
    RecordRefused(String),
    /// A bootstrap name did not resolve.
    #[error("bootstrap: {0}")]
    Host(#[from] HostError),
    /// The node making lookups for this client (relay-only mode) did not answer.
    #[error(
        "lookup through node {node} failed: {why} (in relay-only mode, lookups are made by the node serving the relay)"
    )]
    Proxy {
        /// The node asked.
        node: EndpointId,
        /// What went wrong.
        why: String,
    },
}

impl RoutingError {
    /// A DHT that cannot be reached or written is the network's problem; one that
    /// cannot start is local.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RoutingError::Start(_) | RoutingError::ReadOnly => ErrorKind::Other,
            RoutingError::Stale { .. } | RoutingError::RecordRefused(_) => ErrorKind::Refused,
            RoutingError::Host(e) => e.kind(),
            _ => ErrorKind::Network,
        }
    }
}

/// A DHT node and the node's signing key (absent for a read-only client).
#[derive(Debug, Clone)]
pub struct Routing {
    dht: Dht,
    signer: Option<SigningKey>,
    options: RoutingOptions,
    received: Arc<AtomicU64>,
    /// The receive hook's filter, shared so its estimate and counts can be read.
    late: Arc<Mutex<LateFilter>>,
    lookups: Arc<Semaphore>,
}

impl Routing {
    /// Resolves the bootstrap entries' names (see [`hosts`]), then starts the DHT node.
    pub async fn start(
        mut options: RoutingOptions,
        secret: Option<&SecretKey>,
    ) -> Result<Self, RoutingError> {
        if options
            .bootstrap
            .iter()
            .any(|b| b.parse::<SocketAddr>().is_err())
        {
            let dns = hosts::resolver(options.nameserver);
            options.bootstrap = match hosts::resolve_bootstrap(&dns, &options.bootstrap).await {
                Ok(addrs) => addrs.iter().map(SocketAddr::to_string).collect(),
                // Peers remembered from the last run may still be there.
                Err(e) if !options.extra_bootstrap.is_empty() => {
                    tracing::warn!("{e}; joining through remembered peers");
                    Vec::new()
                }
                Err(e) => return Err(e.into()),
            };
        }
        Self::spawn(options, secret)
    }

    /// Starts the DHT node with bootstrap entries that are IP addresses already. Must
    /// run inside a tokio runtime.
    pub fn spawn(
        options: RoutingOptions,
        secret: Option<&SecretKey>,
    ) -> Result<Self, RoutingError> {
        let mut builder = Dht::builder();
        let mut all: Vec<String> = options.bootstrap.clone();
        all.extend(options.extra_bootstrap.iter().cloned());
        if all.is_empty() {
            builder.no_bootstrap();
        } else {
            builder.bootstrap(&all);
        }
        // n0-mainline binds 6881 when no port is given and it is free: a client (or a
        // gateway) started first would take the port a storage node needs. Any port.
        builder.port(options.port.unwrap_or(0));
        if options.server {
            builder.server_mode();
            builder.server_settings(ServerSettings {
                max_info_hashes: MAX_KEYS,
                max_mutable_values: MAX_VALUES,
                ..ServerSettings::default()
            });
        }
        let dht = builder.build().map_err(RoutingError::Start)?;
        // Count every datagram the node receives (requests and answers): what the DHT
        // costs this node, for status and benchmarks. Then consume the answers that come
        // after n0-mainline has given up on their request: it would still sample them,
        // and one such answer sets its request timeout for good (issue 27, see
        // `dht_late` and `docs/dht-timeouts.md`).
        let received = Arc::new(AtomicU64::new(0));
        let late = Arc::new(Mutex::new(LateFilter::new()));
        let (counter, filter) = (received.clone(), late.clone());
        let mut rebases = 0;
        let hook = DatagramHook::new(move |bytes, from| {
            counter.fetch_add(1, Ordering::Relaxed);
            let mut f = lock(&filter);
            let drop = f.judge(bytes, from, Instant::now()) == Verdict::Drop;
            if drop {
                tracing::debug!(
                    %from,
                    judged = f.judged(),
                    dropped = f.dropped(),
                    "dropped a late DHT answer (n0-mainline had given up on its request)"
                );
            }
            if f.rebases() != rebases {
                rebases = f.rebases();
                tracing::debug!(
                    rebases,
                    "DHT late-answer filter: many senders contradicted its evidence; rebuilt"
                );
            }
            drop
        });
        let installer = dht.clone();
        tokio::spawn(async move { installer.set_datagram_hook(Some(hook)).await });
        Ok(Self {
            dht,
            signer: secret.map(|s| SigningKey::from_bytes(&s.to_bytes())),
            lookups: Arc::new(Semaphore::new(options.parallel_lookups.max(1))),
            options,
            received,
            late,
        })
    }

    /// DHT datagrams this node has received since it started.
    pub fn datagrams_received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// The KRPC request timeout n0-mainline is using, as estimated by the receive
    /// filter: its own estimator run over the answers the filter let through, with
    /// their provable ages (lower bounds) as samples. At least 500 ms, and kept under
    /// 2 s by dropping answers that would push it higher; the crate's own can be higher
    /// (answers the filter could not judge). See `docs/dht-timeouts.md`.
    pub fn request_timeout(&self) -> Duration {
        lock(&self.late).request_timeout()
    }

    /// DHT answers the receive filter dropped because they came after n0-mainline had
    /// given up on their request (or would have pushed its timeout over the cap).
    pub fn late_answers_dropped(&self) -> u64 {
        lock(&self.late).dropped()
    }

    /// The options it runs with.
    pub fn options(&self) -> &RoutingOptions {
        &self.options
    }

    /// The local UDP address of the DHT node.
    pub async fn local_addr(&self) -> Result<SocketAddrV4, RoutingError> {
        Ok(self
            .dht
            .info()
            .await
            .map_err(|_| RoutingError::Shutdown)?
            .local_addr())
    }

    /// Addresses of nodes in the routing table, to bootstrap from next time.
    pub async fn to_bootstrap(&self) -> Result<Vec<String>, RoutingError> {
        self.dht
            .to_bootstrap()
            .await
            .map_err(|_| RoutingError::Shutdown)
    }

    /// Nodes in the routing table.
    pub async fn routing_table_size(&self) -> Result<usize, RoutingError> {
        Ok(self
            .dht
            .info()
            .await
            .map_err(|_| RoutingError::Shutdown)?
            .routing_table_size())
    }

    /// Waits until the node has joined the network (has a routing table); `false` if it
    /// could not (no reachable bootstrap node).
    pub async fn bootstrapped(&self) -> bool {
        self.dht.bootstrapped().await.unwrap_or(false)
    }

    fn signer(&self) -> Result<&SigningKey, RoutingError> {
        self.signer.as_ref().ok_or(RoutingError::ReadOnly)
    }

    /// Announces that this node holds `hash`.
    pub async fn announce_blob(&self, hash: &Hash) -> Result<(), RoutingError> {
        self.announce(blob_key(&self.options.network, hash)).await
    }

    /// Announces that this node is a storage node of the network.
    pub async fn announce_storage_node(&self) -> Result<(), RoutingError> {
        self.announce(storage_key(&self.options.network)).await
    }

    /// Announces that this node serves a relay for the network.
    pub async fn announce_relay(&self) -> Result<(), RoutingError> {
        self.announce(relay_key(&self.options.network)).await
    }

    /// Announces this node's key under `key` as a signed peer.
    async fn announce(&self, key: Id) -> Result<(), RoutingError> {
        self.dht
            .announce_signed_peer(key, self.signer()?)
            .await
            .map(|_| ())
            .map_err(RoutingError::from)
    }

    /// Publishes where this node can be reached.
    pub async fn publish_addrs(&self, addr: &PeerAddr) -> Result<(), RoutingError> {
        let value = addr.record_value();
        // The sequence number must grow: microseconds since the epoch.
        let seq = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0);
        let item = MutableItem::new(self.signer()?, &value, seq, Some(ADDR_SALT));
        self.dht
            .put_mutable(item, None)
            .await
            .map(|_| ())
            .map_err(RoutingError::from)
    }

    /// Puts a name's signed record (as signed: anyone may republish it). Refused as
    /// [`RoutingError::Stale`] when the DHT nodes hold a higher sequence number, and as
    /// [`RoutingError::RecordRefused`] when they find it invalid (a forged signature).
    pub async fn publish_record(&self, record: &SignedRecord) -> Result<(), RoutingError> {
        use n0_mainline::errors::{ConcurrencyError, PutMutableError, PutQueryError};
        match self.dht.put_mutable(record.to_item(), None).await {
            Ok(_) => Ok(()),
            Err(PutMutableError::Concurrency(ConcurrencyError::NotMostRecent)) => {
                Err(RoutingError::Stale { seq: record.seq })
            }
            Err(PutMutableError::Query(PutQueryError::ErrorResponse(e))) => Err(
                RoutingError::RecordRefused(format!("error {}: {}", e.code, e.description)),
            ),
            Err(e) => Err(e.into()),
        }
    }

    /// The newest record of name `key` the DHT holds (highest sequence number; every
    /// item's signature was checked by the DHT node on receipt), if any.
    pub async fn resolve_record(
        &self,
        key: &[u8; 32],
    ) -> Result<Option<SignedRecord>, RoutingError> {
        Ok(self
            .newest_item(key, mosaic_codec::name::NAME_SALT)
            .await?
            .map(|item| SignedRecord::from_item(&item)))
    }

    /// The EndpointIds that announced `key`, freshest first, stale records dropped.
    /// With `settle`, the lookup ends once answers stop coming for
    /// [`RoutingOptions::settle`]; without, it hears out every DHT node it asks (up to the
    /// lookup timeout).
    async fn signed_peers(&self, key: Id, settle: bool) -> Result<Vec<EndpointId>, RoutingError> {
        let _turn = self.lookup_permit().await?;
        let mut stream = self
            .dht
            .get_signed_peers(key)
            .await
            .map_err(|_| RoutingError::Shutdown)?;
        let oldest = now_us().saturating_sub(self.options.stale_after.as_micros() as u64);
        let mut newest: HashMap<[u8; 32], u64> = HashMap::new();
        self.collect_settled(&mut stream, |batch: Vec<_>| {
            for announce in batch {
                let t = announce.timestamp();
                if t >= oldest {
                    let e = newest.entry(*announce.key()).or_insert(t);
                    *e = (*e).max(t);
                }
            }
            settle && !newest.is_empty()
        })
        .await;
        let mut found: Vec<([u8; 32], u64)> = newest.into_iter().collect();
        found.sort_by_key(|f| std::cmp::Reverse(f.1));
        Ok(found
            .into_iter()
            .filter_map(|(k, _)| EndpointId::from_bytes(&k).ok())
            .collect())
    }

    /// Feeds a lookup's results to `take` until the lookup ends, its deadline passes, or
    /// (once `take` has said it found something) nothing more arrives for `settle`: a
    /// query otherwise waits for every dead node it asked to time out.
    async fn collect_settled<T>(
        &self,
        stream: &mut (impl Stream<Item = T> + Unpin),
        mut take: impl FnMut(T) -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + self.options.lookup_timeout;
        let mut found = false;
        loop {
            let wait = if found {
                self.options.settle
            } else {
                deadline.saturating_duration_since(tokio::time::Instant::now())
            };
            match tokio::time::timeout(wait, stream.next()).await {
                Ok(Some(item)) => found |= take(item),
                Ok(None) | Err(_) => return,
            }
            if tokio::time::Instant::now() >= deadline {
                return;
            }
        }
    }

    /// Nodes that announced holding `hash`, each as soon as the lookup finds it (fresh
    /// records only, each node once). The stream ends when the lookup does, or at the
    /// lookup timeout; the caller stops reading once it has what it needs.
    pub async fn providers_stream(
        &self,
        hash: &Hash,
    ) -> Result<impl Stream<Item = EndpointId> + Send + Unpin + 'static, RoutingError> {
        let permit = self.lookup_permit().await?;
        let lookup = self
            .dht
            .get_signed_peers(blob_key(&self.options.network, hash))
            .await
            .map_err(|_| RoutingError::Shutdown)?;
        let oldest = now_us().saturating_sub(self.options.stale_after.as_micros() as u64);
        let mut seen: HashSet<[u8; 32]> = HashSet::new();
        let fresh = lookup
            .map(move |batch| {
                batch
                    .into_iter()
                    .filter(|a| a.timestamp() >= oldest && seen.insert(*a.key()))
                    .filter_map(|a| EndpointId::from_bytes(a.key()).ok())
                    .collect::<Vec<_>>()
            })
            .flat_map(n0_future::stream::iter);
        let deadline = tokio::time::Instant::now() + self.options.lookup_timeout;
        // The permit is held until the lookup ends (or the stream is dropped).
        Ok(Box::pin(n0_future::stream::unfold(
            (Box::pin(fresh), deadline, permit),
            |(mut fresh, deadline, permit)| async move {
                match tokio::time::timeout_at(deadline, fresh.next()).await {
                    Ok(Some(id)) => Some((id, (fresh, deadline, permit))),
                    Ok(None) | Err(_) => None,
                }
            },
        )))
    }

    /// A turn to run a lookup (see [`RoutingOptions::parallel_lookups`]).
    async fn lookup_permit(&self) -> Result<OwnedSemaphorePermit, RoutingError> {
        self.lookups
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| RoutingError::Shutdown)
    }

    /// Nodes that announced holding `hash`.
    pub async fn providers(&self, hash: &Hash) -> Result<Vec<EndpointId>, RoutingError> {
        self.signed_peers(blob_key(&self.options.network, hash), true)
            .await
    }

    /// Storage nodes of the network, as the first answers tell (the lookup settles).
    pub async fn storage_nodes(&self) -> Result<Vec<EndpointId>, RoutingError> {
        self.signed_peers(storage_key(&self.options.network), true)
            .await
    }

    /// Storage nodes of the network, from every DHT node the lookup asks: slower, but
    /// it also finds nodes whose announce reached few DHT nodes (one just started).
    pub async fn all_storage_nodes(&self) -> Result<Vec<EndpointId>, RoutingError> {
        self.signed_peers(storage_key(&self.options.network), false)
            .await
    }

    /// Relays of the network: the nodes that announced one, with the relay each
    /// published in its address record.
    pub async fn relays(&self) -> Result<Vec<(EndpointId, RelayInfo)>, RoutingError> {
        let mut out = Vec::new();
        for id in self
            .signed_peers(relay_key(&self.options.network), true)
            .await?
        {
            if let Some(relay) = self.resolve(&id).await?.relay {
                out.push((id, relay));
            }
        }
        Ok(out)
    }

    /// Where `id` said it can be reached (the record with the highest sequence
    /// number); empty if it published nothing readable.
    pub async fn resolve(&self, id: &EndpointId) -> Result<PeerAddr, RoutingError> {
        Ok(self
            .newest_item(id.as_bytes(), ADDR_SALT)
            .await?
            .and_then(|item| PeerAddr::from_record_value(item.value()))
            .unwrap_or_default())
    }

    /// The mutable item under `key` and `salt` with the highest sequence number found.
    /// Not `get_mutable_most_recent`: in n0-mainline 0.7.1 it keeps the first item
    /// received and ignores a later one with a higher sequence number.
    async fn newest_item(
        &self,
        key: &[u8; 32],
        salt: &[u8],
    ) -> Result<Option<MutableItem>, RoutingError> {
        let _turn = self.lookup_permit().await?;
        let mut stream = self
            .dht
            .get_mutable(key, Some(salt), None)
            .await
            .map_err(|_| RoutingError::Shutdown)?;
        let mut best: Option<MutableItem> = None;
        self.collect_settled(&mut stream, |item: MutableItem| {
            if best.as_ref().is_none_or(|b| item.seq() > b.seq()) {
                best = Some(item);
            }
            true
        })
        .await;
        Ok(best)
    }
}

/// The filter's lock. It never panics while held, and its state stays consistent
/// between calls, so a poisoned lock is still usable.
fn lock(filter: &Mutex<LateFilter>) -> MutexGuard<'_, LateFilter> {
    filter.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Microseconds since the Unix epoch (signed-peer timestamps).
fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_separate_networks_and_hashes() {
        let h = Hash::of(b"x");
        assert_ne!(blob_key("a", &h), blob_key("b", &h));
        assert_ne!(blob_key("a", &h), blob_key("a", &Hash::of(b"y")));
        assert_ne!(storage_key("a"), storage_key("b"));
        assert_ne!(relay_key("a"), storage_key("a"));
        assert_eq!(blob_key("a", &h), blob_key("a", &h));
    }
}
