//! Settings, resolved once per command: the flags every command shares ([`Global`]),
//! the network and client flags, the TOML configuration file (read once, when the
//! command starts), where Mosaic keeps its files, and the connected client.
//!
//! Settings are looked up in one order, everywhere: command-line flag, then environment
//! variable (`MOSAIC_*`), then the TOML file given by `--config` (`MOSAIC_CONFIG`), then
//! the default. `docs/operations.md` lists them all; `docs/example.toml` shows the file.
//!
//! Every command module uses it; it uses no command module, only the other settings
//! modules (`merge`, `node_settings`, `gateway`) for the config file's sections.

use std::{
    fs,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use mosaic_client::{Client, ClientOptions};
use mosaic_wire::dht::RoutingOptions;
use serde::Deserialize;

use crate::{
    gateway::GatewaySettings,
    keyring::Keyring,
    keys::{self, Keys},
    merge::Merge,
    network_settings::{Network, NetworkSettings},
    node_settings::NodeSettings,
};

pub use mosaic_server::{DEFAULT_DHT_PORT, DEFAULT_QUIC_PORT};

/// Options shared by every command that talks to the network.
#[derive(Debug, Clone, Args)]
pub struct NetworkArgs {
    #[command(flatten)]
    pub settings: NetworkSettings,
    #[command(flatten)]
    pub config: ConfigArgs,
}

impl NetworkArgs {
    /// The network settings: these flags over the config file's.
    pub fn resolve(&self, file: &ConfigFile) -> Result<Network> {
        self.settings.clone().or(file.network.clone()).resolve()
    }
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
        config: Option<&Path>,
    ) -> Result<Self> {
        let file = load_config(config)?;
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

/// The TOML configuration file (every field optional; an unknown key is an error).
#[derive(Debug, Default, Deserialize)]
pub struct ConfigFile {
    /// Network settings, at the top of the file.
    #[serde(flatten)]
    pub network: NetworkSettings,
    /// The client identity (key name) to act as.
    pub key: Option<String>,
    /// The gateway `mosaic share` links to.
    pub gateway_url: Option<String>,
    /// Node settings.
    #[serde(default)]
    pub node: NodeSettings,
    /// Gateway settings.
    #[serde(default)]
    pub gateway: GatewaySettings,
    /// What no section claims: refused when the file is read. (`deny_unknown_fields`
    /// does not combine with a flattened section.)
    #[serde(flatten)]
    unknown: std::collections::BTreeMap<String, toml::Value>,
}

pub(crate) fn load_config(path: Option<&Path>) -> Result<ConfigFile> {
    let Some(path) = path else {
        return Ok(ConfigFile::default());
    };
    let text = fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file {}", path.display()))?;
    let file: ConfigFile = toml::from_str(&text)
        .with_context(|| format!("{} is not a valid Mosaic config file", path.display()))?;
    if let Some(key) = file.unknown.keys().next() {
        bail!(
            "{} is not a valid Mosaic config file: unknown key `{key}` (docs/example.toml lists them)",
            path.display()
        );
    }
    Ok(file)
}

/// The flags of every command that runs client requests and then exits: the network,
/// the client, `--timings`.
#[derive(Debug, Clone, Args)]
pub struct ClientFlags {
    #[command(flatten)]
    pub network: NetworkArgs,
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(flatten)]
    pub timings: TimingsArgs,
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
    let Network {
        mut routing,
        relays,
        relay_only,
    } = net.resolve(&g.file)?;
    routing.settle = settle;
    if routing.bootstrap.is_empty() {
        // A node (or `mosaic devnet`) on this machine, at the default DHT port.
        routing.bootstrap = vec![format!("127.0.0.1:{DEFAULT_DHT_PORT}")];
    }
    let secret = keys()?.identity(&g.key_name())?;
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
