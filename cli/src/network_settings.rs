//! The network settings every command that talks to the network shares (network
//! name, DHT bootstrap, relays, DNS server): one struct that is both the flags and the
//! keys at the top of the config file (see [`crate::merge`]), and the pure function
//! that resolves them.

use std::net::SocketAddr;

use anyhow::Result;
use clap::Args;
use mosaic_wire::{dht::RoutingOptions, relay::RelayInfo};
use serde::Deserialize;

use crate::merge::settings;

settings! {
    /// The network settings every command that talks to the network shares: flags (on
    /// the command and after it), and keys at the top of the config file.
    #[derive(Debug, Clone, Default, Args, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub struct NetworkSettings {
        /// DHT addresses of nodes to join through, comma separated: HOST:PORT (a name or
        /// an IP), or dns:NAME for a list in NAME's TXT records [clients' default:
        /// 127.0.0.1:6881, a node on this machine; a node's default: none, it starts a
        /// network]
        #[arg(long, env = "MOSAIC_BOOTSTRAP", value_delimiter = ',', global = true)]
        pub bootstrap: Vec<String>,
        /// Network name: nodes and clients of different networks ignore each other.
        #[arg(long, env = "MOSAIC_NETWORK", global = true)]
        pub network: Option<String>,
        /// Relays (Mosaic nodes run with --relay-serve) to reach and be reached through
        /// when a direct path is blocked, comma separated: https://HOST:PORT, with #PIN for
        /// a self-signed one [default: a node uses the relays it finds on the DHT; a client
        /// uses those its peers name]
        #[arg(long, env = "MOSAIC_RELAY", value_delimiter = ',', global = true)]
        pub relay: Vec<String>,
        /// Send all traffic through a relay, so peers never learn this machine's address
        /// (see docs/operations.md for what it hides and what it does not); needs --relay.
        #[arg(long, env = "MOSAIC_RELAY_ONLY", global = true)]
        pub relay_only: bool,
        /// DNS server (IP:PORT) for host names and dns: bootstrap lists [default: the
        /// system's, from /etc/resolv.conf, with /etc/hosts first]
        #[arg(long, env = "MOSAIC_DNS_SERVER", global = true)]
        pub dns_server: Option<SocketAddr>,
    }
}

/// The network settings, resolved.
#[derive(Debug, Clone)]
pub struct Network {
    /// The DHT: network name, bootstrap, DNS server; the rest at its defaults.
    pub routing: RoutingOptions,
    /// Relays, parsed.
    pub relays: Vec<RelayInfo>,
    /// Whether all traffic goes through a relay.
    pub relay_only: bool,
}

impl NetworkSettings {
    /// Resolves these settings (flags already laid over the file) over the defaults of
    /// `RoutingOptions`. Pure.
    pub fn resolve(self) -> Result<Network> {
        let d = RoutingOptions::default();
        let relays = self
            .relay
            .iter()
            .filter(|t| !t.is_empty())
            .map(|t| t.parse::<RelayInfo>())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Network {
            routing: RoutingOptions {
                network: self.network.unwrap_or(d.network.clone()),
                bootstrap: self.bootstrap,
                nameserver: self.dns_server,
                ..d
            },
            relays,
            relay_only: self.relay_only,
        })
    }
}
