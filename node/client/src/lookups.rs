//! Where a client's lookups go: its own DHT node, or, in relay-only mode, the node
//! serving its relay.
//!
//! A DHT lookup is a burst of UDP datagrams from the client's own address to DHT nodes,
//! which are storage nodes: in relay-only mode that would tell them the address the mode
//! hides. So a relay-only client runs no DHT node at all and sends each lookup as a
//! storage-protocol request ([`proto::Lookup`]) to the node serving its relay, over the
//! relayed connection. That node learns what the client looks up (as DHT nodes would
//! have) but, like every other peer, sees only the relay's address.

use std::{pin::Pin, time::Duration};

use iroh::{Endpoint, EndpointId, endpoint::Connection};
use mosaic_codec::Hash;
use mosaic_wire::{
    dht::{PeerAddr, Routing, RoutingError, RoutingOptions},
    endpoint, proto,
    record::SignedRecord,
    relay::RelayInfo,
    request,
};
use n0_future::Stream;
use tokio::sync::Mutex;

/// A stream of node ids, as lookups return them.
pub type IdStream = Pin<Box<dyn Stream<Item = EndpointId> + Send>>;

/// The client's lookups.
#[derive(Debug)]
pub enum Lookups {
    /// Its own DHT node (client mode).
    Dht(Routing),
    /// Made by another node (relay-only mode).
    Via(Proxy),
}

/// Lookups made by a node for this client.
#[derive(Debug)]
pub struct Proxy {
    endpoint: Endpoint,
    node: EndpointId,
    addr: PeerAddr,
    options: RoutingOptions,
    timeout: Duration,
    conn: Mutex<Option<Connection>>,
}

impl Proxy {
    /// Lookups made by the node serving `relay` (which must name it).
    pub fn through(
        endpoint: Endpoint,
        relay: &RelayInfo,
        options: RoutingOptions,
        timeout: Duration,
    ) -> Option<Self> {
        Some(Self {
            endpoint,
            node: relay.node?,
            addr: PeerAddr {
                direct: Vec::new(),
                relay: Some(relay.clone()),
            },
            options,
            timeout,
            conn: Mutex::new(None),
        })
    }

    fn failed(&self, why: impl ToString) -> RoutingError {
        RoutingError::Proxy {
            node: self.node,
            why: why.to_string(),
        }
    }

    /// One lookup; a broken connection is redialed once.
    async fn ask(&self, what: proto::Lookup) -> Result<proto::Found, RoutingError> {
        let mut last = None;
        for _ in 0..2 {
            let conn = {
                let mut slot = self.conn.lock().await;
                match slot.as_ref() {
                    Some(c) if c.close_reason().is_none() => c.clone(),
                    _ => {
                        let c = endpoint::connect(
                            &self.endpoint,
                            &self.options.network,
                            self.node,
                            &self.addr,
                            proto::ALPN,
                            self.timeout,
                        )
                        .await
                        .map_err(|e| self.failed(e))?;
                        *slot = Some(c.clone());
                        c
                    }
                }
            };
            let answer = tokio::time::timeout(
                self.options.lookup_timeout,
                request::lookup(&conn, what.clone()),
            )
            .await;
            match answer {
                Ok(Ok(found)) => return Ok(found),
                Ok(Err(e)) => last = Some(e.to_string()),
                Err(_) => {
                    last = Some(format!(
                        "no answer within {:?}",
                        self.options.lookup_timeout
                    ))
                }
            }
            *self.conn.lock().await = None;
        }
        Err(self.failed(last.unwrap_or_default()))
    }

    async fn ids(&self, what: proto::Lookup) -> Result<Vec<EndpointId>, RoutingError> {
        match self.ask(what).await? {
            proto::Found::Ids(ids) => Ok(ids
                .iter()
                .filter_map(|b| EndpointId::from_bytes(b).ok())
                .collect()),
            _ => Err(self.failed("answered something other than ids")),
        }
    }
}

impl Lookups {
    /// The routing settings (network name, timeouts).
    pub fn options(&self) -> &RoutingOptions {
        match self {
            Lookups::Dht(r) => r.options(),
            Lookups::Via(p) => &p.options,
        }
    }

    /// Nodes that announced holding `hash`.
    pub async fn providers(&self, hash: &Hash) -> Result<Vec<EndpointId>, RoutingError> {
        match self {
            Lookups::Dht(r) => r.providers(hash).await,
            Lookups::Via(p) => p.ids(proto::Lookup::Providers(*hash.as_bytes())).await,
        }
    }

    /// Nodes that announced holding `hash`, as they are found.
    pub async fn providers_stream(&self, hash: &Hash) -> Result<IdStream, RoutingError> {
        match self {
            Lookups::Dht(r) => Ok(Box::pin(r.providers_stream(hash).await?)),
            Lookups::Via(p) => {
                let ids = p.ids(proto::Lookup::Providers(*hash.as_bytes())).await?;
                Ok(Box::pin(n0_future::stream::iter(ids)))
            }
        }
    }

    /// The network's storage nodes.
    pub async fn storage_nodes(&self) -> Result<Vec<EndpointId>, RoutingError> {
        match self {
            Lookups::Dht(r) => r.storage_nodes().await,
            Lookups::Via(p) => p.ids(proto::Lookup::StorageNodes).await,
        }
    }

    /// The network's storage nodes, from every DHT node the lookup asks (a node asked
    /// to look up does its own lookup, as for [`Self::storage_nodes`]).
    pub async fn all_storage_nodes(&self) -> Result<Vec<EndpointId>, RoutingError> {
        match self {
            Lookups::Dht(r) => r.all_storage_nodes().await,
            Lookups::Via(p) => p.ids(proto::Lookup::StorageNodes).await,
        }
    }

    /// Where `id` said it can be reached.
    pub async fn resolve(&self, id: &EndpointId) -> Result<PeerAddr, RoutingError> {
        match self {
            Lookups::Dht(r) => r.resolve(id).await,
            Lookups::Via(p) => match p.ask(proto::Lookup::Address(*id.as_bytes())).await? {
                proto::Found::Address(addr) => Ok(addr),
                _ => Err(p.failed("answered something other than an address")),
            },
        }
    }

    /// The newest record of name `key` (checked: a record a proxy hands over is
    /// verified here, as a DHT node verifies the ones it stores).
    pub async fn name_record(&self, key: &[u8; 32]) -> Result<Option<SignedRecord>, RoutingError> {
        match self {
            Lookups::Dht(r) => r.resolve_record(key).await,
            Lookups::Via(p) => match p.ask(proto::Lookup::Name(*key)).await? {
                proto::Found::Record(Some(r)) if r.key == *key && r.verify().is_ok() => Ok(Some(r)),
                proto::Found::Record(Some(_)) => {
                    Err(p.failed("answered a record that is not this name's or is forged"))
                }
                proto::Found::Record(None) => Ok(None),
                _ => Err(p.failed("answered something other than a record")),
            },
        }
    }

    /// Nodes in this client's DHT routing table (none when another node looks up).
    pub async fn routing_table_size(&self) -> Result<usize, RoutingError> {
        match self {
            Lookups::Dht(r) => r.routing_table_size().await,
            Lookups::Via(_) => Ok(0),
        }
    }
}
