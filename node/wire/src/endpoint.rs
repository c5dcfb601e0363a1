//! The iroh endpoint, configured for Mosaic: relays only Mosaic nodes run (none of
//! n0's), no public address lookup, no port mapping; peers are found through Mosaic's
//! own DHT records.
//!
//! Every endpoint can dial through a relay (a peer's address record may name one; it is
//! added to the endpoint's relay map when dialed), and one configured with relays keeps
//! a home relay among them, so NATed peers can reach it and iroh can coordinate hole
//! punching. In relay-only mode the endpoint has no IP transport at all: every packet
//! goes through its home relay, so peers never learn its address.

use std::{net::SocketAddr, time::Duration};

use iroh::{
    Endpoint, EndpointAddr, EndpointId, RelayMap, RelayMode, SecretKey, TransportAddr, Watcher,
    endpoint::{
        ConnectError, Connection, NetReportConfig, PortmapperConfig, QuicTransportConfig, presets,
    },
};
use mosaic_codec::ErrorKind;
use serde::Serialize;

use crate::{
    dht::{PeerAddr, RoutingError},
    hosts,
    relay::{self, RelayInfo},
};

/// How to bind an endpoint.
#[derive(Debug, Clone)]
pub struct EndpointOptions {
    /// Identity.
    pub secret: SecretKey,
    /// UDP address to bind (unused in relay-only mode).
    pub bind: SocketAddr,
    /// Relays to keep a home relay among (Mosaic nodes serving one).
    pub relays: Vec<RelayInfo>,
    /// Send everything through the home relay: no direct paths, no IP transport.
    pub relay_only: bool,
    /// The network name (relays admit its members only).
    pub network: String,
    /// DNS server for relay host names; `None`: the system's.
    pub nameserver: Option<SocketAddr>,
    /// ALPNs to accept (empty for a client that only dials).
    pub alpns: Vec<Vec<u8>>,
}

/// Binding failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// Relay-only mode without a relay.
    #[error(
        "relay-only mode needs a relay: give one with --relay https://HOST:PORT (a Mosaic node run with --relay-serve)"
    )]
    NoRelay,
    /// Relay-only mode, and no relay took this endpoint.
    #[error("relay-only mode cannot reach its relay: {problems}")]
    RelayUnreachable {
        /// What each relay said.
        problems: String,
    },
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
    /// A socket that cannot be bound is a local problem; a missing relay a setting.
    pub fn kind(&self) -> ErrorKind {
        match self {
            EndpointError::NoRelay => ErrorKind::BadInput,
            EndpointError::Bind { .. } => ErrorKind::Other,
            EndpointError::RelayUnreachable { .. } => ErrorKind::Network,
        }
    }
}

/// Binds an endpoint.
pub async fn bind(options: EndpointOptions) -> Result<Endpoint, EndpointError> {
    let err = |source: Box<dyn std::error::Error + Send + Sync>| EndpointError::Bind {
        addr: options.bind,
        source,
    };
    if options.relay_only && options.relays.is_empty() {
        return Err(EndpointError::NoRelay);
    }
    let map = RelayMap::from_iter(options.relays.iter().map(|r| r.config(&options.network)));
    let mut builder = Endpoint::builder(presets::Minimal)
        .secret_key(options.secret.clone())
        // A custom map, even empty, keeps the relay transport: a peer's record may
        // name a relay to dial it through.
        .relay_mode(RelayMode::Custom(map))
        .ca_tls_config(relay::tls_config())
        .dns_resolver(hosts::resolver(options.nameserver))
        .clear_address_lookup()
        .portmapper_config(PortmapperConfig::Disabled)
        .net_report_config(net_report(options.relay_only))
        .clear_ip_transports()
        .transport_config(transport())
        .alpns(options.alpns.clone());
    if !options.relay_only {
        builder = builder
            .bind_addr(options.bind)
            .map_err(|e| err(Box::new(e)))?;
    }
    let endpoint = builder.bind().await.map_err(|e| err(Box::new(e)))?;
    if !options.relays.is_empty() {
        // Wait (briefly) for a home relay, so the address this endpoint publishes
        // names it; a relay that does not answer is reported by `relay_problems`.
        let online = tokio::time::timeout(HOME_RELAY_WAIT, endpoint.online()).await;
        if online.is_err() && options.relay_only {
            // Nothing can go anywhere: say why now rather than as timeouts later.
            let problems = relay_problems(&endpoint);
            endpoint.close().await;
            return Err(EndpointError::RelayUnreachable {
                problems: problems.join("; "),
            });
        }
    }
    Ok(endpoint)
}

/// How often an idle connection proves it is alive. iroh's default (5 s) would let a
/// frozen peer hold a request for a whole idle timeout; at this pace a peer that has
/// sent nothing for [`crate::request::silence_limit`] (a few keep-alives) is known to be
/// frozen or gone, and requests to it fail over within about a second.
pub const KEEP_ALIVE: Duration = Duration::from_millis(500);

/// A connection whose peer sent nothing for this long is closed (the effective value is
/// the smaller of both sides'). iroh's default is 30 s; a frozen peer's connections are
/// dropped within seconds instead, so a caller that holds one notices.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// The QUIC settings of every Mosaic endpoint (see [`KEEP_ALIVE`], [`IDLE_TIMEOUT`]).
fn transport() -> QuicTransportConfig {
    QuicTransportConfig::builder()
        .keep_alive_interval(KEEP_ALIVE)
        .default_path_keep_alive_interval(KEEP_ALIVE)
        .max_idle_timeout(Some(
            IDLE_TIMEOUT
                .try_into()
                .expect("5 s fits a QUIC idle timeout"),
        ))
        .build()
}

/// Probes of this endpoint's relays (only Mosaic's): QUIC address discovery always;
/// HTTPS latency probes in relay-only mode, where there is no UDP socket for QUIC and
/// the home relay is chosen by HTTPS latency alone. No captive-portal check.
fn net_report(relay_only: bool) -> NetReportConfig {
    let mut config = NetReportConfig::minimal();
    config.https_probes = relay_only;
    config
}

/// How long binding waits for the endpoint to connect to a home relay.
pub const HOME_RELAY_WAIT: Duration = Duration::from_secs(10);

/// The relay among `relays` this endpoint is connected to, if any.
pub fn home_relay(endpoint: &Endpoint, relays: &[RelayInfo]) -> Option<RelayInfo> {
    let home = endpoint.home_relay_status().get();
    let connected = home.iter().find(|s| s.is_connected())?;
    relays.iter().find(|r| &r.url == connected.url()).cloned()
}

/// Why the endpoint's relays are not connected, for the operator (e.g. the relay
/// denied this network's token).
pub fn relay_problems(endpoint: &Endpoint) -> Vec<String> {
    endpoint
        .home_relay_status()
        .get()
        .iter()
        .filter(|s| !s.is_connected())
        .map(|s| match (s.auth_denied_reason(), s.last_error()) {
            (Some(reason), _) => format!("{}: access denied ({reason})", s.url()),
            (None, Some(e)) => format!("{}: {e}", s.url()),
            (None, None) => format!("{}: not connected yet", s.url()),
        })
        .collect()
}

/// How a connection's packets travel now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "path", rename_all = "snake_case")]
pub enum Route {
    /// Straight to the peer (after hole punching, if NATs were in the way).
    Direct {
        /// The peer's address as this side sees it.
        addr: SocketAddr,
    },
    /// Through a relay.
    Relay {
        /// The relay.
        relay: String,
    },
    /// No path is selected (the connection is closing).
    None,
}

/// The path a connection uses now.
pub fn route(conn: &Connection) -> Route {
    let paths = conn.paths();
    let Some(p) = paths.iter().find(|p| p.is_selected()) else {
        return Route::None;
    };
    match p.remote_addr() {
        TransportAddr::Ip(addr) => Route::Direct { addr: *addr },
        TransportAddr::Relay(url) => Route::Relay {
            relay: url.to_string(),
        },
        other => Route::Relay {
            relay: format!("{other:?}"),
        },
    }
}

/// Every remote address a connection has a path to (relays as their URL).
pub fn remote_addrs(conn: &Connection) -> Vec<String> {
    conn.paths()
        .iter()
        .map(|p| match p.remote_addr() {
            TransportAddr::Ip(a) => a.to_string(),
            TransportAddr::Relay(url) => url.to_string(),
            other => format!("{other:?}"),
        })
        .collect()
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
    /// Dials to it failed lately, and this client waits before trying again (a dial to
    /// a node that is down would otherwise cost the connect timeout every time).
    #[error("node {node} failed {failures} dial(s) in a row; not trying it again for {wait:.1?}")]
    BackedOff {
        /// The peer.
        node: EndpointId,
        /// Failed dials in a row.
        failures: u32,
        /// How long until the next try.
        wait: Duration,
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

/// Connects to `id` at `addr` (known already: no lookup) on `alpn`, waiting at most
/// `limit` for the handshake. A relay the peer named is added to the endpoint's relay
/// map first (with this network's token), so iroh can dial through it.
pub async fn connect(
    endpoint: &Endpoint,
    network: &str,
    id: EndpointId,
    addr: &PeerAddr,
    alpn: &[u8],
    limit: Duration,
) -> Result<Connection, DialError> {
    if addr.is_empty() {
        return Err(DialError::NoAddress { node: id });
    }
    let mut target = endpoint_addr(id, &addr.direct);
    if let Some(r) = &addr.relay {
        if relay::first_use(endpoint.id(), &r.url) {
            endpoint
                .insert_relay(r.url.clone(), std::sync::Arc::new(r.config(network)))
                .await;
        }
        target = target.with_relay_url(r.url.clone());
    }
    tokio::time::timeout(limit, endpoint.connect(target, alpn))
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
