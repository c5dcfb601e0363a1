//! The iroh endpoint, configured for Mosaic: no relays unless asked, no public address
//! lookup, no port mapping; peers are found through Mosaic's own DHT records.

use std::{net::SocketAddr, time::Duration};

use iroh::{
    Endpoint, EndpointAddr, EndpointId, RelayMode, SecretKey, TransportAddr,
    endpoint::{ConnectError, Connection, NetReportConfig, PortmapperConfig, presets},
};
use mosaic_codec::ErrorKind;

use crate::dht::RoutingError;

/// How to bind an endpoint.
#[derive(Debug, Clone)]
pub struct EndpointOptions {
    /// Identity.
    pub secret: SecretKey,
    /// UDP address to bind.
    pub bind: SocketAddr,
    /// Use n0's public relays (off by default: Mosaic nodes are dialed directly).
    pub relays: bool,
    /// ALPNs to accept (empty for a client that only dials).
    pub alpns: Vec<Vec<u8>>,
}

/// Binding failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// The address is not usable.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl EndpointError {
    /// A socket that cannot be bound is a local problem.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

/// Binds an endpoint.
pub async fn bind(options: EndpointOptions) -> Result<Endpoint, EndpointError> {
    let err = |source: Box<dyn std::error::Error + Send + Sync>| EndpointError::Bind {
        addr: options.bind,
        source,
    };
    let builder = Endpoint::builder(presets::Minimal)
        .secret_key(options.secret.clone())
        .relay_mode(if options.relays {
            RelayMode::Default
        } else {
            RelayMode::Disabled
        })
        .clear_address_lookup()
        .portmapper_config(PortmapperConfig::Disabled)
        .net_report_config(NetReportConfig::minimal())
        .clear_ip_transports()
        .alpns(options.alpns.clone())
        .bind_addr(options.bind)
        .map_err(|e| err(Box::new(e)))?;
    builder.bind().await.map_err(|e| err(Box::new(e)))
}

/// Dialing a peer failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DialError {
    /// Its address record could not be looked up.
    #[error("looking up the address of node {node}: {source}")]
    Resolve {
        /// The peer.
        node: EndpointId,
        /// The DHT's error.
        source: RoutingError,
    },
    /// It published no address.
    #[error("node {node} published no address")]
    NoAddress {
        /// The peer.
        node: EndpointId,
    },
    /// It did not answer in time.
    #[error("no answer from {node} within {limit:?}")]
    Timeout {
        /// The peer.
        node: EndpointId,
        /// The connect timeout.
        limit: Duration,
    },
    /// The dial was stopped before it finished (the client is shutting down).
    #[error("dialing {node} was stopped: the client is shutting down")]
    Cancelled {
        /// The peer.
        node: EndpointId,
    },
    /// The connection failed.
    #[error("connecting to {node}: {source}")]
    Connect {
        /// The peer.
        node: EndpointId,
        /// iroh's error.
        source: ConnectError,
    },
}

impl DialError {
    /// Unreachable peers are the network's problem.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Network
    }
}

/// Connects to `id` at `addrs` (known already: no lookup) on `alpn`, waiting at most
/// `limit` for the handshake.
pub async fn connect(
    endpoint: &Endpoint,
    id: EndpointId,
    addrs: &[SocketAddr],
    alpn: &[u8],
    limit: Duration,
) -> Result<Connection, DialError> {
    if addrs.is_empty() {
        return Err(DialError::NoAddress { node: id });
    }
    tokio::time::timeout(limit, endpoint.connect(endpoint_addr(id, addrs), alpn))
        .await
        .map_err(|_| DialError::Timeout { node: id, limit })?
        .map_err(|source| DialError::Connect { node: id, source })
}

/// The direct addresses to publish for `endpoint`: its bound sockets, with an
/// unspecified IP (`0.0.0.0`) replaced by the interface addresses iroh found, plus any
/// `extra` (e.g. a public address behind port forwarding).
pub fn direct_addrs(endpoint: &Endpoint, extra: &[SocketAddr]) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = extra.to_vec();
    let found: Vec<SocketAddr> = endpoint
        .addr()
        .addrs
        .iter()
        .filter_map(|a| match a {
            TransportAddr::Ip(ip) => Some(*ip),
            _ => None,
        })
        .collect();
    for bound in endpoint.bound_sockets() {
        if bound.ip().is_unspecified() {
            out.extend(found.iter().filter(|a| a.port() == bound.port()));
        } else {
            out.push(bound);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// An address to dial `id` at `addrs`.
pub fn endpoint_addr(id: EndpointId, addrs: &[SocketAddr]) -> EndpointAddr {
    let mut a = EndpointAddr::new(id);
    for s in addrs {
        a = a.with_ip_addr(*s);
    }
    a
}
