//! Content routing and address lookup on the Mainline DHT (`n0-mainline`).
//!
//! Three kinds of records, all signed by the node's ed25519 key (its iroh `EndpointId`):
//! - **blob providers**: a signed-peer announce under `blob_key(network, hash)` says
//!   "this EndpointId holds blob `hash`" (columns and manifests alike);
//! - **storage nodes**: a signed-peer announce under `storage_key(network)` says "this
//!   EndpointId is a storage node of `network`", so clients can find nodes to store on;
//! - **addresses**: a BEP 44 mutable item under the node's key with salt
//!   `mosaic-addr-v1` holds its direct socket addresses, so an EndpointId found above
//!   can be dialed.
//!
//! Keys are the first 20 bytes of `BLAKE3_derive_key(context, network ‖ hash)`, so
//! networks do not see each other's records. Signed-peer records carry a timestamp and
//! are never expired by time by DHT nodes (only evicted when their caches fill), so
//! readers drop records older than [`RoutingOptions::stale_after`] and nodes re-announce
//! well within it. Details and timings: `docs/protocol.md`.

use std::{
    collections::HashMap,
    net::{SocketAddr, SocketAddrV4},
    time::Duration,
};

use iroh::{EndpointId, SecretKey};
use n0_future::StreamExt;
use n0_mainline::{Dht, Id, MutableItem, SigningKey};

use mosaic_codec::{ErrorKind, Hash};

const BLOB_KEY_CONTEXT: &str = "mosaic 2026-11-21 v1 dht blob providers";
const STORAGE_KEY_CONTEXT: &str = "mosaic 2026-11-21 v1 dht storage nodes";
/// BEP 44 salt of a node's address record.
pub const ADDR_SALT: &[u8] = b"mosaic-addr-v1";
/// Most addresses published in one record (BEP 44 values are at most 1000 bytes).
pub const MAX_PUBLISHED_ADDRS: usize = 16;

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
    /// DHT addresses (`host:port`) of nodes to join through. Empty: start a network.
    pub bootstrap: Vec<String>,
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
}

impl Default for RoutingOptions {
    fn default() -> Self {
        Self {
            network: "mosaic".into(),
            port: None,
            bootstrap: Vec::new(),
            extra_bootstrap: Vec::new(),
            server: false,
            stale_after: Duration::from_secs(60 * 60),
            lookup_timeout: Duration::from_secs(10),
            settle: Duration::from_millis(300),
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
    #[error("DHT address publish failed: {0}")]
    Publish(#[from] n0_mainline::errors::PutMutableError),
}

impl RoutingError {
    /// A DHT that cannot be reached or written is the network's problem; one that
    /// cannot start is local.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RoutingError::Start(_) | RoutingError::ReadOnly => ErrorKind::Other,
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
}

impl Routing {
    /// Starts the DHT node. Must run inside a tokio runtime.
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
        if let Some(port) = options.port {
            builder.port(port);
        }
        if options.server {
            builder.server_mode();
        }
        let dht = builder.build().map_err(RoutingError::Start)?;
        Ok(Self {
            dht,
            signer: secret.map(|s| SigningKey::from_bytes(&s.to_bytes())),
            options,
        })
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

    /// Announces this node's key under `key` as a signed peer.
    async fn announce(&self, key: Id) -> Result<(), RoutingError> {
        self.dht
            .announce_signed_peer(key, self.signer()?)
            .await
            .map(|_| ())
            .map_err(RoutingError::from)
    }

    /// Publishes this node's direct addresses.
    pub async fn publish_addrs(&self, addrs: &[SocketAddr]) -> Result<(), RoutingError> {
        let addrs: Vec<SocketAddr> = addrs.iter().take(MAX_PUBLISHED_ADDRS).copied().collect();
        // A list of at most MAX_PUBLISHED_ADDRS socket addresses always encodes.
        let value = postcard::to_stdvec(&addrs).unwrap_or_default();
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

    /// The EndpointIds that announced `key`, freshest first, stale records dropped.
    async fn signed_peers(&self, key: Id) -> Result<Vec<EndpointId>, RoutingError> {
        let mut stream = self
            .dht
            .get_signed_peers(key)
            .await
            .map_err(|_| RoutingError::Shutdown)?;
        let now_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        let oldest = now_us.saturating_sub(self.options.stale_after.as_micros() as u64);
        let mut newest: HashMap<[u8; 32], u64> = HashMap::new();
        self.collect_settled(&mut stream, |batch: Vec<_>| {
            for announce in batch {
                let t = announce.timestamp();
                if t >= oldest {
                    let e = newest.entry(*announce.key()).or_insert(t);
                    *e = (*e).max(t);
                }
            }
            !newest.is_empty()
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
        stream: &mut (impl n0_future::Stream<Item = T> + Unpin),
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

    /// Nodes that announced holding `hash`.
    pub async fn providers(&self, hash: &Hash) -> Result<Vec<EndpointId>, RoutingError> {
        self.signed_peers(blob_key(&self.options.network, hash))
            .await
    }

    /// Storage nodes of the network.
    pub async fn storage_nodes(&self) -> Result<Vec<EndpointId>, RoutingError> {
        self.signed_peers(storage_key(&self.options.network)).await
    }

    /// The direct addresses `id` published, if any (the record with the highest
    /// sequence number).
    pub async fn resolve(&self, id: &EndpointId) -> Result<Vec<SocketAddr>, RoutingError> {
        // Not `get_mutable_most_recent`: in n0-mainline 0.7.1 it keeps the first item
        // received and ignores a later one with a higher sequence number.
        let mut stream = self
            .dht
            .get_mutable(id.as_bytes(), Some(ADDR_SALT), None)
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
        Ok(best
            .and_then(|item| postcard::from_bytes::<Vec<SocketAddr>>(item.value()).ok())
            .unwrap_or_default())
    }
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
        assert_eq!(blob_key("a", &h), blob_key("a", &h));
    }
}
