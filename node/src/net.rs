//! The iroh endpoint, configured for Mosaic: no relays unless asked, no public address
//! lookup, no port mapping; peers are found through Mosaic's own DHT records.

use std::net::SocketAddr;

use iroh::{
    Endpoint, EndpointAddr, EndpointId, RelayMode, SecretKey, TransportAddr,
    endpoint::{BindError, NetReportConfig, PortmapperConfig, presets},
};

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
pub enum NetError {
    /// The address is not usable.
    #[error("cannot bind {addr}: {reason}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
}

/// Binds an endpoint.
pub async fn bind(options: EndpointOptions) -> Result<Endpoint, NetError> {
    let err = |reason: String| NetError::Bind {
        addr: options.bind,
        reason,
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
        .map_err(|e| err(e.to_string()))?;
    builder
        .bind()
        .await
        .map_err(|e: BindError| err(e.to_string()))
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
