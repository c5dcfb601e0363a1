//! The client itself: one iroh endpoint, one DHT node in client mode, and a cache of
//! live connections. The operations live beside it, one file each: `put.rs`,
//! `get.rs`, `blob.rs`, `pins.rs`.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use iroh::{Endpoint, EndpointId, SecretKey, endpoint::Connection};
use mosaic_codec::{Cap, Decoder, Hash, MAX_MANIFEST_LEN, Manifest};
use mosaic_wire::{
    dht::{Routing, RoutingOptions},
    endpoint::{self, DialError, EndpointOptions},
    proto,
    request::{self, Stat},
};
use n0_future::StreamExt;
use tracing::debug;

use crate::{ClientError, PeerError};

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
    pub(crate) conn: Connection,
}

/// A Mosaic network client.
#[derive(Debug)]
pub struct Client {
    endpoint: Endpoint,
    routing: Routing,
    options: ClientOptions,
    conns: Mutex<HashMap<(EndpointId, &'static [u8]), Connection>>,
}

impl Client {
    /// Binds an endpoint and joins the DHT.
    pub async fn connect(options: ClientOptions) -> Result<Arc<Self>, ClientError> {
        let endpoint = endpoint::bind(EndpointOptions {
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

    /// The options it was connected with.
    pub fn options(&self) -> &ClientOptions {
        &self.options
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
    ) -> Result<Connection, DialError> {
        if let Some(c) = self.conns.lock().expect("not poisoned").get(&(id, alpn)) {
            if c.close_reason().is_none() {
                return Ok(c.clone());
            }
        }
        let conn = endpoint::dial(
            &self.endpoint,
            &self.routing,
            id,
            alpn,
            self.options.connect_timeout,
        )
        .await?;
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
            let Stat { capacity, used, .. } = request::stat(&conn, &[]).await.ok()?;
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

    /// Fetches and checks the manifest of file `id`, asking every holder at once and
    /// taking the first answer (a dead holder costs no more than the others' answers).
    pub async fn manifest(&self, id: &Hash) -> Result<Manifest, ClientError> {
        let holders = self.routing.providers(id).await?;
        let stall = self.options.stall_timeout;
        let mut attempts: n0_future::FuturesUnordered<_> = holders
            .iter()
            .map(|&holder| async move {
                let conn = self.dial(holder, iroh_blobs::ALPN).await?;
                let bytes = request::fetch_small(&conn, id, MAX_MANIFEST_LEN, stall).await?;
                Ok::<_, PeerError>(bytes)
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

    /// Finds the file `cap` names and opens it: its manifest fetched once and checked,
    /// its metadata opened with the cap's key (a wrong key fails here, before any
    /// column is fetched). Read it with [`Client::get`] or [`Client::read`].
    pub async fn open(&self, cap: &Cap) -> Result<Decoder, ClientError> {
        let manifest = self.manifest(&cap.id()).await?;
        Ok(Decoder::new(manifest, cap.key())?)
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
