//! Settings, resolved once per command: the flags every command shares ([`Global`]),
//! the network and client flags, the TOML configuration file (read once, when the
//! command starts), where Mosaic keeps its files, and the connected client.
//!
//! Settings are looked up in one order, everywhere: command-line flag, then environment
//! variable (`MOSAIC_*`), then the TOML file given by `--config` (`MOSAIC_CONFIG`), then
//! the default. `docs/operations.md` lists them all; `docs/example.toml` shows the file.
//!
//! This module is a leaf: every command module uses it, and it uses none of them.

use std::{
    fs,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, Result, anyhow};
use clap::Args;
use mosaic_client::{Client, ClientOptions};
use mosaic_wire::{dht::RoutingOptions, relay::RelayInfo};
use serde::Deserialize;

use crate::{
    gateway::GatewaySection,
    keyring::Keyring,
    keys::{self, Keys},
};

/// Default QUIC port of a storage node.
pub const DEFAULT_QUIC_PORT: u16 = 4919;
/// Default DHT port of a storage node.
pub const DEFAULT_DHT_PORT: u16 = 6881;

/// Options shared by every command that talks to the network.
#[derive(Debug, Clone, Args)]
pub struct NetworkArgs {
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
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// The configuration file: on every command that reads a setting from it (alone on
/// those that read it but never touch the network: `id`, `key list`, `share`).
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigArgs {
    /// TOML configuration file.
    #[arg(long, env = "MOSAIC_CONFIG", global = true)]
    pub config: Option<PathBuf>,
}

/// The identity to act as: on the commands that act as one of your identities (those
/// that connect to storage nodes, `id`, `key list`), and on no other.
#[derive(Debug, Clone, Default, Args)]
pub struct KeyArgs {
    /// The identity to act as (`mosaic key list`) [default: `key` in the config file,
    /// else "default"]
    #[arg(long, env = "MOSAIC_KEY")]
    pub key: Option<String>,
}

/// `--timings`: on the commands that run client requests and then exit (not on the
/// long-running `gateway run`, which has no end to report at).
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct TimingsArgs {
    /// After the command, print on stderr where its time went: each DHT lookup, dial
    /// and request, when it started and how long it took.
    #[arg(long)]
    pub timings: bool,
}

/// Flags every command shares.
#[derive(Debug, Clone, Default)]
pub struct Global {
    /// `--json`.
    pub json: bool,
    /// `--key`.
    pub key: Option<String>,
    /// `--timings`.
    pub timings: bool,
    /// The configuration file, read once for the command.
    pub file: Arc<ConfigFile>,
}

impl Global {
    /// Resolves the shared flags once per command, reading the configuration file
    /// `config` names (if any).
    pub fn load(
        json: bool,
        key: Option<String>,
        timings: bool,
        config: Option<&ConfigArgs>,
    ) -> Result<Self> {
        let file = load_config(config.and_then(|c| c.config.as_deref()))?;
        Ok(Self {
            json,
            key,
            timings,
            file: Arc::new(file),
        })
    }

    /// The identity to act as: `--key`/`MOSAIC_KEY`, else the config file, else
    /// `default`.
    pub fn key_name(&self) -> String {
        self.key
            .clone()
            .or_else(|| self.file.key.clone())
            .unwrap_or_else(|| keys::DEFAULT.to_owned())
    }

    /// Prints `value` as JSON, or runs `human`.
    pub fn emit(&self, value: serde_json::Value, human: impl FnOnce() -> Result<()>) -> Result<()> {
        if self.json {
            println!("{value}");
            Ok(())
        } else {
            human()
        }
    }
}

/// The TOML configuration file (every field optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Network name.
    pub network: Option<String>,
    /// DHT bootstrap addresses.
    pub bootstrap: Option<Vec<String>>,
    /// Relays (https://HOST:PORT[#PIN]).
    pub relay: Option<Vec<String>>,
    /// Send all traffic through a relay.
    pub relay_only: Option<bool>,
    /// DNS server for host names.
    pub dns_server: Option<SocketAddr>,
    /// The client identity (key name) to act as.
    pub key: Option<String>,
    /// The gateway `mosaic share` links to.
    pub gateway_url: Option<String>,
    /// Node settings.
    #[serde(default)]
    pub node: NodeSection,
    /// Gateway settings.
    #[serde(default)]
    pub gateway: GatewaySection,
}

/// `[node]` in the configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// Data directory.
    pub data_dir: Option<PathBuf>,
    /// QUIC listen address.
    pub listen: Option<SocketAddr>,
    /// DHT listen address.
    pub dht_listen: Option<SocketAddr>,
    /// Published extra addresses.
    pub public_addr: Option<Vec<SocketAddr>>,
    /// Capacity, e.g. "500GiB".
    pub capacity: Option<String>,
    /// Per-client quota, e.g. "50GiB".
    pub quota: Option<String>,
    /// Collection's high watermark, percent of the capacity.
    pub gc_high: Option<u8>,
    /// Collection's low watermark, percent of the capacity.
    pub gc_low: Option<u8>,
    /// Collection check interval, e.g. "1m".
    pub gc_interval: Option<String>,
    /// Accept data from anyone.
    pub open: Option<bool>,
    /// Client ids allowed to store.
    pub allow: Option<Vec<String>>,
    /// Re-announce interval, e.g. "10m".
    pub announce_interval: Option<String>,
    /// How often kept name records are republished, e.g. "1h".
    pub republish_interval: Option<String>,
    /// How often each held file is checked, e.g. "30m".
    pub check_interval: Option<String>,
    /// How long a column may be missing before it is rebuilt, e.g. "1h".
    pub repair_grace: Option<String>,
    /// How much longer each next-ranked holder waits before it repairs, e.g. "90m".
    pub repair_backoff: Option<String>,
    /// How often every held blob is re-hashed, e.g. "30d".
    pub scrub_interval: Option<String>,
    /// Scrub read rate per second, e.g. "16MiB".
    pub scrub_rate: Option<String>,
    /// Embedded gateway's HTTP address.
    pub gateway: Option<SocketAddr>,
    /// DHT client only (behind NAT).
    pub dht_client: Option<bool>,
    /// Serve a relay on this address.
    pub relay_serve: Option<SocketAddr>,
    /// The relay's URL as peers dial it.
    pub relay_url: Option<String>,
    /// The relay's certificate chain (PEM).
    pub relay_tls_cert: Option<PathBuf>,
    /// The relay's key (PEM).
    pub relay_tls_key: Option<PathBuf>,
    /// Bytes per second each peer may send through the relay, e.g. "4MiB".
    pub relay_rate: Option<String>,
    /// HTTP address of `/metrics` and `/health`.
    pub metrics: Option<SocketAddr>,
    /// Request cost units a second one peer may spend (0: no limit).
    pub peer_rate: Option<f64>,
    /// Uploads one peer may have in flight (0: no limit).
    pub peer_uploads: Option<usize>,
}

pub(crate) fn load_config(path: Option<&Path>) -> Result<ConfigFile> {
    let Some(path) = path else {
        return Ok(ConfigFile::default());
    };
    let text = fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file {}", path.display()))?;
    toml::from_str(&text)
        .with_context(|| format!("{} is not a valid Mosaic config file", path.display()))
}

pub(crate) fn routing_options(net: &NetworkArgs, file: &ConfigFile) -> RoutingOptions {
    RoutingOptions {
        network: net
            .network
            .clone()
            .or_else(|| file.network.clone())
            .unwrap_or_else(|| "mosaic".into()),
        bootstrap: if net.bootstrap.is_empty() {
            file.bootstrap.clone().unwrap_or_default()
        } else {
            net.bootstrap.clone()
        },
        nameserver: net.dns_server.or(file.dns_server),
        ..RoutingOptions::default()
    }
}

/// The relays to use (flag, else the config file), parsed; and whether relay-only mode
/// is on.
pub(crate) fn relay_settings(
    net: &NetworkArgs,
    file: &ConfigFile,
) -> Result<(Vec<RelayInfo>, bool)> {
    let texts = if net.relay.is_empty() {
        file.relay.clone().unwrap_or_default()
    } else {
        net.relay.clone()
    };
    let relays = texts
        .iter()
        .filter(|t| !t.is_empty())
        .map(|t| t.parse::<RelayInfo>())
        .collect::<Result<Vec<_>, _>>()?;
    Ok((relays, net.relay_only || file.relay_only.unwrap_or(false)))
}

/// Settings of every command that connects to storage nodes as a client.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// UDP address the client binds.
    #[arg(long, env = "MOSAIC_BIND", default_value = "0.0.0.0:0")]
    pub bind: SocketAddr,
    /// How long to wait for one node to answer.
    #[arg(long, env = "MOSAIC_CONNECT_TIMEOUT", default_value = "5s")]
    pub connect_timeout: humantime::Duration,
    #[command(flatten)]
    pub identity: KeyArgs,
}

async fn client(g: &Global, net: &NetworkArgs, args: &ClientArgs) -> Result<Arc<Client>> {
    client_with(g, net, args, RoutingOptions::default().settle).await
}

/// A client whose DHT lookups stop `settle` after their first results, acting as the
/// identity `g` names.
pub(crate) async fn client_with(
    g: &Global,
    net: &NetworkArgs,
    args: &ClientArgs,
    settle: Duration,
) -> Result<Arc<Client>> {
    let file = &g.file;
    let mut routing = routing_options(net, file);
    routing.settle = settle;
    if routing.bootstrap.is_empty() {
        // A node (or `mosaic devnet`) on this machine, at the default DHT port.
        routing.bootstrap = vec![format!("127.0.0.1:{DEFAULT_DHT_PORT}")];
    }
    let secret = keys()?.identity(&g.key_name())?;
    let (relays, relay_only) = relay_settings(net, file)?;
    Ok(Client::connect(ClientOptions {
        secret,
        bind: args.bind,
        routing,
        relays,
        relay_only,
        connect_timeout: args.connect_timeout.into(),
        stall_timeout: Duration::from_secs(10),
        // Nodes' addresses between runs: a repeated get needs no address lookups.
        address_book: data_home().ok().map(|d| d.join("addresses.json")),
    })
    .await?)
}

/// Runs `f` with a connected client, then closes it (whatever `f` returned).
pub(crate) fn with_client<T, F, Fut>(
    g: &Global,
    net: &NetworkArgs,
    args: &ClientArgs,
    f: F,
) -> Result<T>
where
    F: FnOnce(Arc<Client>) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    runtime()?.block_on(async {
        let client = client(g, net, args).await?;
        let result = f(client.clone()).await;
        let routes = client.routes();
        client.close().await;
        if g.timings {
            print_timings(&client);
            print_routes(&routes);
        }
        result
    })
}

/// `--timings`: how each connection's packets travelled at the end, one per line:
/// `route NODE direct ADDR` or `route NODE relay URL`.
pub(crate) fn print_routes(routes: &[(iroh::EndpointId, mosaic_wire::endpoint::Route)]) {
    use mosaic_wire::endpoint::Route;
    for (id, route) in routes {
        match route {
            Route::Direct { addr } => eprintln!("route {id} direct {addr}"),
            Route::Relay { relay } => eprintln!("route {id} relay {relay}"),
            Route::None => eprintln!("route {id} closed"),
        }
    }
}

/// `--timings`: the client's steps on stderr, one per line.
pub(crate) fn print_timings(client: &Client) {
    eprintln!("   start ms  took ms  step");
    for step in client.timings().steps() {
        eprintln!("{step}");
    }
    eprintln!(
        "{:>9.1} ms total",
        client.timings().elapsed().as_secs_f64() * 1e3
    );
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// The key directory.
pub fn keys() -> Result<Keys> {
    Keys::open(&config_home()?)
}

/// The keyring.
pub fn keyring() -> Result<Keyring> {
    Keyring::open(&data_home()?.join("keyring.redb"))
}

/// `$XDG_DATA_HOME/mosaic`, else `~/.local/share/mosaic`.
pub(crate) fn data_home() -> Result<PathBuf> {
    xdg_dir("XDG_DATA_HOME", ".local/share")
}

/// `$XDG_CONFIG_HOME/mosaic`, else `~/.config/mosaic`.
pub(crate) fn config_home() -> Result<PathBuf> {
    xdg_dir("XDG_CONFIG_HOME", ".config")
}

fn xdg_dir(var: &str, fallback: &str) -> Result<PathBuf> {
    if let Some(d) = std::env::var_os(var).filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("mosaic"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| anyhow!("neither {var} nor HOME is set: set one of them"))?;
    Ok(PathBuf::from(home).join(fallback).join("mosaic"))
}
