//! The network commands: `node run`, `node id`, `id`, `put`, `get`.
//!
//! Settings are looked up in one order, everywhere: command-line flag, then environment
//! variable (`MOSAIC_*`), then the TOML file given by `--config` (`MOSAIC_CONFIG`), then
//! the default. `docs/operations.md` lists them all; `docs/example.toml` shows the file.

use std::{
    collections::HashSet,
    fs,
    io::{self, BufWriter},
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use iroh::EndpointId;
use mosaic_node::{
    client::{Client, ClientOptions},
    codec::{Access, Cap, Params, PublicId, ReadCap},
    daemon::{self, Node, NodeOptions},
    dht::RoutingOptions,
    dir::{Directory, Entry as DirEntry},
    identity,
};
use serde::Deserialize;

/// Default QUIC port of a storage node.
pub const DEFAULT_QUIC_PORT: u16 = 4919;
/// Default DHT port of a storage node.
pub const DEFAULT_DHT_PORT: u16 = 6881;

/// Options shared by every command that talks to the network.
#[derive(Debug, Clone, Args)]
pub struct NetworkArgs {
    /// DHT addresses (host:port) of nodes to join through, comma separated [clients'
    /// default: 127.0.0.1:6881, a node on this machine; a node's default: none, it
    /// starts a network]
    #[arg(long, env = "MOSAIC_BOOTSTRAP", value_delimiter = ',', global = true)]
    pub bootstrap: Vec<String>,
    /// Network name: nodes and clients of different networks ignore each other.
    #[arg(long, env = "MOSAIC_NETWORK", global = true)]
    pub network: Option<String>,
    /// Use n0's public relays for connections that cannot be made directly.
    #[arg(long, env = "MOSAIC_RELAY", global = true)]
    pub relay: bool,
    /// TOML configuration file.
    #[arg(long, env = "MOSAIC_CONFIG", global = true)]
    pub config: Option<PathBuf>,
}

/// `mosaic node run` options. Unset options fall back to the config file, then defaults.
#[derive(Debug, Clone, Args)]
pub struct NodeRunArgs {
    /// Data directory (identity key, blobs, metadata) [default: $XDG_DATA_HOME/mosaic/node]
    #[arg(long, env = "MOSAIC_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// QUIC address to listen on (UDP) [default: 0.0.0.0:4919]
    #[arg(long, env = "MOSAIC_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// DHT address to listen on (UDP; IPv4, all interfaces) [default: 0.0.0.0:6881]
    #[arg(long, env = "MOSAIC_DHT_LISTEN")]
    pub dht_listen: Option<SocketAddr>,
    /// Extra address to publish, e.g. a public address forwarded to --listen.
    #[arg(long, env = "MOSAIC_PUBLIC_ADDR", value_delimiter = ',')]
    pub public_addr: Vec<SocketAddr>,
    /// Bytes this node may store, e.g. `500GiB` [default: 10GiB]
    #[arg(long, env = "MOSAIC_CAPACITY")]
    pub capacity: Option<bytesize::ByteSize>,
    /// Accept data from any client.
    #[arg(long, env = "MOSAIC_OPEN", conflicts_with = "allow")]
    pub open: bool,
    /// Accept data only from these client ids (see `mosaic id`), comma separated.
    #[arg(long, env = "MOSAIC_ALLOW", value_delimiter = ',')]
    pub allow: Vec<String>,
    /// How often to re-announce every record on the DHT [default: 10m]
    #[arg(long, env = "MOSAIC_ANNOUNCE_INTERVAL")]
    pub announce_interval: Option<humantime::Duration>,
    /// Also run an HTTP gateway on this address (e.g. 127.0.0.1:8080); its cache lives
    /// in the data directory, its other settings come from `[gateway]` and
    /// `MOSAIC_GATEWAY_*` as for `mosaic gateway run`.
    #[arg(long, env = "MOSAIC_GATEWAY")]
    pub gateway: Option<SocketAddr>,
    #[command(flatten)]
    pub gateway_settings: crate::gateway::GatewayArgs,
}

/// The TOML configuration file (every field optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Network name.
    pub network: Option<String>,
    /// DHT bootstrap addresses.
    pub bootstrap: Option<Vec<String>>,
    /// Use relays.
    pub relay: Option<bool>,
    /// Node settings.
    #[serde(default)]
    pub node: NodeSection,
    /// Gateway settings.
    #[serde(default)]
    pub gateway: crate::gateway::GatewaySection,
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
    /// Accept data from anyone.
    pub open: Option<bool>,
    /// Client ids allowed to store.
    pub allow: Option<Vec<String>>,
    /// Re-announce interval, e.g. "10m".
    pub announce_interval: Option<String>,
    /// Embedded gateway's HTTP address.
    pub gateway: Option<SocketAddr>,
}

fn load_config(path: Option<&Path>) -> Result<ConfigFile> {
    let Some(path) = path else {
        return Ok(ConfigFile::default());
    };
    let text = fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file {}", path.display()))?;
    toml::from_str(&text)
        .with_context(|| format!("{} is not a valid Mosaic config file", path.display()))
}

fn routing_options(net: &NetworkArgs, file: &ConfigFile) -> RoutingOptions {
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
        ..RoutingOptions::default()
    }
}

fn parse_ids(ids: &[String]) -> Result<HashSet<EndpointId>> {
    ids.iter()
        .map(|s| {
            s.trim()
                .parse::<EndpointId>()
                .map_err(|e| anyhow!("{s:?} is not a client id ({e}); `mosaic id` prints one"))
        })
        .collect()
}

/// The default node data directory.
pub fn default_node_dir() -> Result<PathBuf> {
    Ok(crate::data_home()?.join("node"))
}

/// `mosaic node id`: prints the node's identity (creating it if needed).
pub fn node_id(data_dir: Option<PathBuf>) -> Result<()> {
    let dir = match data_dir {
        Some(d) => d,
        None => default_node_dir()?,
    };
    let key = identity::load_or_create(&dir.join("identity.key"))?;
    println!("{}", key.public());
    Ok(())
}

/// `mosaic node health`: asks the node running from `data_dir` (on this machine, at the
/// port of `listen`) for its space over the storage protocol. Exit 0 means its endpoint,
/// storage protocol and store answer: what a container health check wants.
pub fn node_health(data_dir: Option<PathBuf>, listen: Option<SocketAddr>) -> Result<()> {
    let dir = match data_dir {
        Some(d) => d,
        None => default_node_dir()?,
    };
    let key_path = dir.join("identity.key");
    if !key_path.exists() {
        bail!(
            "no node identity at {}: is a node using this --data-dir?",
            key_path.display()
        );
    }
    let node = identity::load_or_create(&key_path)?.public();
    let port = listen.map_or(DEFAULT_QUIC_PORT, |a| a.port());
    let target = SocketAddr::from(([127, 0, 0, 1], port));
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow!("no randomness for a key: {e}"))?;
    runtime()?.block_on(async move {
        let endpoint = mosaic_node::net::bind(mosaic_node::net::EndpointOptions {
            secret: iroh::SecretKey::from_bytes(&seed),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            relays: false,
            alpns: vec![],
        })
        .await?;
        let result = tokio::time::timeout(Duration::from_secs(5), async {
            let conn = endpoint
                .connect(
                    mosaic_node::net::endpoint_addr(node, &[target]),
                    mosaic_node::proto::ALPN,
                )
                .await
                .map_err(|e| anyhow!("cannot connect to node {node} at {target}: {e}"))?;
            mosaic_node::client::stat(&conn, &[])
                .await
                .map_err(|e| anyhow!("node {node} did not answer a stat: {e}"))
        })
        .await
        .map_err(|_| anyhow!("node {node} at {target} did not answer within 5 s"))
        .and_then(|r| r);
        endpoint.close().await;
        let (capacity, used, _) = result?;
        println!(
            "ok: node {node} at {target}, {} used of {}",
            bytesize::ByteSize(used),
            bytesize::ByteSize(capacity)
        );
        anyhow::Ok(())
    })
}

/// `mosaic id`: prints this client's identity (creating it if needed).
pub fn client_id() -> Result<()> {
    let key = identity::load_or_create(&crate::config_home()?.join("client.key"))?;
    println!("{}", key.public());
    Ok(())
}

/// `mosaic node run`.
pub fn node_run(net: NetworkArgs, args: NodeRunArgs) -> Result<()> {
    let file = load_config(net.config.as_deref())?;
    let n = &file.node;
    let data_dir = match args.data_dir.or_else(|| n.data_dir.clone()) {
        Some(d) => d,
        None => default_node_dir()?,
    };
    let listen = args
        .listen
        .or(n.listen)
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], DEFAULT_QUIC_PORT)));
    let dht_listen = args
        .dht_listen
        .or(n.dht_listen)
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], DEFAULT_DHT_PORT)));
    let capacity = match (args.capacity, &n.capacity) {
        (Some(c), _) => c.as_u64(),
        (None, Some(s)) => s
            .parse::<bytesize::ByteSize>()
            .map_err(|e| anyhow!("capacity {s:?} in the config file: {e}"))?
            .as_u64(),
        (None, None) => 10 << 30,
    };
    let announce_interval: Duration = match (args.announce_interval, &n.announce_interval) {
        (Some(d), _) => d.into(),
        (None, Some(s)) => {
            humantime::parse_duration(s).map_err(|e| anyhow!("announce_interval {s:?}: {e}"))?
        }
        (None, None) => Duration::from_secs(600),
    };
    let allow = if args.allow.is_empty() {
        n.allow.clone().unwrap_or_default()
    } else {
        args.allow.clone()
    };
    let open = args.open || (allow.is_empty() && n.open.unwrap_or(false));
    let access = if open {
        daemon::Access::Open
    } else if !allow.is_empty() {
        daemon::Access::Allow(parse_ids(&allow)?)
    } else {
        bail!(
            "say who may store on this node: --open (anyone) or --allow ID,... (see `mosaic id`)"
        );
    };
    let mut routing = routing_options(&net, &file);
    routing.port = Some(dht_listen.port());
    let gateway = match args.gateway.or(n.gateway) {
        None => None,
        Some(addr) => Some(args.gateway_settings.resolve(
            &file.gateway,
            data_dir.join("gateway-cache"),
            Some(addr),
        )?),
    };
    let relays = net.relay || file.relay.unwrap_or(false);
    let options = NodeOptions {
        data_dir: data_dir.clone(),
        listen,
        public_addrs: if args.public_addr.is_empty() {
            n.public_addr.clone().unwrap_or_default()
        } else {
            args.public_addr
        },
        routing: routing.clone(),
        capacity,
        access,
        relays,
        announce_interval,
    };
    runtime()?.block_on(async move {
        let node = Node::spawn(options).await?;
        // The embedded gateway is a client of the network like any other, with its own
        // identity, joining the DHT through this node.
        let gateway = match gateway {
            None => None,
            Some(gateway_options) => {
                let mut gateway_routing = routing.clone();
                gateway_routing.port = None;
                gateway_routing.settle = crate::gateway::FIRST_ANSWER;
                gateway_routing
                    .bootstrap
                    .insert(0, format!("127.0.0.1:{}", dht_listen.port()));
                let client = Client::connect(ClientOptions {
                    secret: identity::load_or_create(&data_dir.join("gateway.key"))?,
                    bind: SocketAddr::from(([0, 0, 0, 0], 0)),
                    routing: gateway_routing,
                    relays,
                    connect_timeout: Duration::from_secs(5),
                    stall_timeout: Duration::from_secs(10),
                })
                .await
                .context("the embedded gateway could not join the DHT")?;
                Some(crate::gateway::start(client, gateway_options).await?)
            }
        };
        eprintln!(
            "mosaic node {} listening on {:?}, DHT on {}",
            node.id(),
            node.addrs(),
            node.routing()
                .local_addr()
                .await
                .map(|a| a.to_string())
                .unwrap_or_default()
        );
        shutdown_signal().await;
        eprintln!("shutting down");
        if let Some(g) = gateway {
            g.shutdown();
        }
        node.shutdown().await;
        anyhow::Ok(())
    })
}

/// `mosaic gateway run`.
pub fn gateway_run(
    net: NetworkArgs,
    args: ClientArgs,
    listen: Option<SocketAddr>,
    gateway: crate::gateway::GatewayArgs,
) -> Result<()> {
    let file = load_config(net.config.as_deref())?;
    let options = gateway.resolve(
        &file.gateway,
        crate::data_home()?.join("gateway-cache"),
        listen,
    )?;
    runtime()?.block_on(async move {
        let client = client_with(&net, &args, crate::gateway::FIRST_ANSWER).await?;
        let gateway = crate::gateway::start(client.clone(), options).await?;
        eprintln!("mosaic gateway on http://{}", gateway.local_addr());
        shutdown_signal().await;
        eprintln!("shutting down");
        gateway.shutdown();
        client.close().await;
        anyhow::Ok(())
    })
}

/// `mosaic devnet`: `count` storage nodes in this process, on loopback: node `i` on
/// QUIC port 4919 + i and DHT port 6881 + i, data in `dir/node<i>`, node 0 the
/// bootstrap. Clients find it with the default bootstrap, 127.0.0.1:6881.
pub fn devnet(count: usize, dir: Option<PathBuf>, capacity: bytesize::ByteSize) -> Result<()> {
    if count == 0 {
        bail!("a devnet needs at least one node");
    }
    let dir = match dir {
        Some(d) => d,
        None => crate::data_home()?.join("devnet"),
    };
    runtime()?.block_on(async move {
        let mut nodes = Vec::with_capacity(count);
        for i in 0..count {
            let dht = DEFAULT_DHT_PORT + i as u16;
            let options = NodeOptions {
                data_dir: dir.join(format!("node{i}")),
                listen: SocketAddr::from(([127, 0, 0, 1], DEFAULT_QUIC_PORT + i as u16)),
                public_addrs: vec![],
                routing: RoutingOptions {
                    network: "mosaic".into(),
                    port: Some(dht),
                    bootstrap: if i == 0 {
                        vec![]
                    } else {
                        vec![format!("127.0.0.1:{DEFAULT_DHT_PORT}")]
                    },
                    ..RoutingOptions::default()
                },
                capacity: capacity.as_u64(),
                access: daemon::Access::Open,
                relays: false,
                announce_interval: Duration::from_secs(600),
            };
            let node = Node::spawn(options)
                .await
                .with_context(|| format!("cannot start devnet node {i} (ports {} and {dht} free?)", DEFAULT_QUIC_PORT + i as u16))?;
            eprintln!("node {i}: {} QUIC {:?} DHT 127.0.0.1:{dht}", node.id(), node.addrs());
            nodes.push(node);
        }
        eprintln!(
            "devnet: {count} storage nodes, data in {}. In another terminal:\n  mosaic put FILE\n  mosaic get CAP -o OUT\nCtrl-C stops it.",
            dir.display()
        );
        shutdown_signal().await;
        eprintln!("shutting down");
        for node in nodes {
            node.shutdown().await;
        }
        anyhow::Ok(())
    })
}

/// Settings for `put` and `get`.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// UDP address the client binds.
    #[arg(long, env = "MOSAIC_BIND", default_value = "0.0.0.0:0")]
    pub bind: SocketAddr,
    /// How long to wait for one node to answer.
    #[arg(long, env = "MOSAIC_CONNECT_TIMEOUT", default_value = "5s")]
    pub connect_timeout: humantime::Duration,
}

async fn client(net: &NetworkArgs, args: &ClientArgs) -> Result<std::sync::Arc<Client>> {
    client_with(net, args, RoutingOptions::default().settle).await
}

/// A client whose DHT lookups stop `settle` after their first results.
async fn client_with(
    net: &NetworkArgs,
    args: &ClientArgs,
    settle: Duration,
) -> Result<std::sync::Arc<Client>> {
    let file = load_config(net.config.as_deref())?;
    let mut routing = routing_options(net, &file);
    routing.settle = settle;
    if routing.bootstrap.is_empty() {
        // A node (or `mosaic devnet`) on this machine, at the default DHT port.
        routing.bootstrap = vec![format!("127.0.0.1:{DEFAULT_DHT_PORT}")];
    }
    let secret = identity::load_or_create(&crate::config_home()?.join("client.key"))?;
    Ok(Client::connect(ClientOptions {
        secret,
        bind: args.bind,
        routing,
        relays: net.relay || file.relay.unwrap_or(false),
        connect_timeout: args.connect_timeout.into(),
        stall_timeout: Duration::from_secs(10),
    })
    .await?)
}

/// What `put` encodes.
#[derive(Debug, Clone)]
pub struct PutSpec {
    /// The file.
    pub file: PathBuf,
    /// Coding parameters.
    pub params: Params,
    /// Public or private.
    pub public: bool,
    /// Convergent key.
    pub convergent: bool,
    /// Media type override.
    pub media_type: Option<String>,
}

/// `mosaic put`.
pub fn put(net: NetworkArgs, args: ClientArgs, spec: PutSpec) -> Result<()> {
    let meta =
        fs::metadata(&spec.file).with_context(|| format!("cannot open {}", spec.file.display()))?;
    if !meta.is_file() {
        bail!("{} is not a regular file", spec.file.display());
    }
    let metadata = crate::metadata_for(&spec.file, &meta, spec.media_type.clone());
    let access = crate::access_for(
        &spec.file,
        meta.len(),
        spec.params,
        spec.public,
        spec.convergent,
    )?;
    runtime()?.block_on(async move {
        let client = client(&net, &args).await?;
        let report = client
            .put(&spec.file, spec.params, access.clone(), metadata)
            .await;
        client.close().await;
        let report = report?;
        let id = report.manifest.id();
        let cap = match &access {
            Access::Public => PublicId { id }.to_string(),
            Access::Private(key) => ReadCap {
                id,
                key: key.clone(),
            }
            .to_string(),
        };
        eprintln!(
            "stored {} ({} bytes) as {} columns on {} nodes; any {} rebuild it",
            spec.file.display(),
            meta.len(),
            spec.params.columns(),
            report.placement.len(),
            spec.params.data_columns()
        );
        println!("{cap}");
        anyhow::Ok(())
    })
}

/// `mosaic put -r DIR --public`: every regular file under `dir` as a public file, then
/// the directory index (see `mosaic_node::dir`); prints the directory's public id.
pub fn put_dir(net: NetworkArgs, args: ClientArgs, dir: &Path, params: Params) -> Result<()> {
    if !fs::metadata(dir)
        .with_context(|| format!("cannot open {}", dir.display()))?
        .is_dir()
    {
        bail!(
            "{} is not a directory (without -r, put uploads one file)",
            dir.display()
        );
    }
    let mut files = Vec::new();
    walk(dir, dir, &mut files)?;
    files.sort();
    if files.is_empty() {
        bail!("{} holds no regular file to upload", dir.display());
    }
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().and_then(|n| n.to_str()).map(str::to_owned));
    runtime()?.block_on(async move {
        let client = client(&net, &args).await?;
        let result = async {
            let mut index = Directory::new();
            let total = files.len();
            for (i, (rel, path)) in files.iter().enumerate() {
                let meta = fs::metadata(path)
                    .with_context(|| format!("cannot open {}", path.display()))?;
                let metadata = crate::metadata_for(path, &meta, None);
                let report = client
                    .put(path, params, Access::Public, metadata)
                    .await
                    .with_context(|| format!("uploading {rel}"))?;
                let id = PublicId {
                    id: report.manifest.id(),
                };
                eprintln!("[{}/{total}] {rel}  {id}", i + 1);
                index.insert(
                    rel,
                    DirEntry {
                        id,
                        size: meta.len(),
                    },
                )?;
            }
            let tmp = std::env::temp_dir().join(format!(
                "mosaic-dir-{}-{}.json",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0)
            ));
            fs::write(&tmp, index.to_bytes())
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            let metadata = mosaic_node::codec::Metadata {
                name: name.clone(),
                media_type: Some(mosaic_node::dir::MEDIA_TYPE.to_owned()),
                modified: None,
            };
            let report = client.put(&tmp, params, Access::Public, metadata).await;
            let _ = fs::remove_file(&tmp);
            let id = PublicId {
                id: report
                    .context("uploading the directory index")?
                    .manifest
                    .id(),
            };
            eprintln!("stored directory {} ({total} files)", dir.display());
            println!("{id}");
            anyhow::Ok(())
        }
        .await;
        client.close().await;
        result
    })
}

/// Collects the regular files under `dir` as (path relative to `root` with `/`, path).
/// Symbolic links are skipped (with a note): a directory upload is what is there.
fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(root, &path, out)?;
        } else if kind.is_file() {
            let rel = path
                .strip_prefix(root)
                .expect("under root")
                .iter()
                .map(|c| {
                    c.to_str()
                        .map(str::to_owned)
                        .ok_or_else(|| anyhow!("{} has a name that is not UTF-8", path.display()))
                })
                .collect::<Result<Vec<_>>>()?
                .join("/");
            out.push((rel, path));
        } else {
            eprintln!("skipping {} (not a regular file)", path.display());
        }
    }
    Ok(())
}

/// `mosaic nodes`: storage nodes found on the DHT and how they answer.
pub fn nodes(net: NetworkArgs, args: ClientArgs) -> Result<()> {
    runtime()?.block_on(async move {
        let client = client(&net, &args).await?;
        let result = client.storage_nodes().await;
        client.close().await;
        let (found, nodes) = result?;
        eprintln!("{found} storage nodes announced, {} reachable", nodes.len());
        for n in nodes {
            println!(
                "{}  rtt {:>7.2} ms  used {} of {}",
                n.id,
                n.rtt.as_secs_f64() * 1000.0,
                bytesize::ByteSize(n.used),
                bytesize::ByteSize(n.capacity)
            );
        }
        anyhow::Ok(())
    })
}

/// `mosaic get`.
pub fn get(net: NetworkArgs, args: ClientArgs, cap: &str, output: Option<&Path>) -> Result<()> {
    let cap: Cap = cap.parse()?;
    runtime()?.block_on(async move {
        let client = client(&net, &args).await?;
        let result = match output {
            None => {
                let mut out = BufWriter::with_capacity(1 << 20, io::stdout());
                client
                    .get(&cap, &mut out)
                    .await
                    .map_err(anyhow::Error::from)
            }
            Some(path) => get_to_file(&client, &cap, path).await,
        };
        client.close().await;
        let report = result?;
        if report.failovers > 0 {
            eprintln!(
                "note: {} column fetches failed over to other nodes",
                report.failovers
            );
        }
        anyhow::Ok(())
    })
}

/// Downloads into an [`crate::output::AtomicFile`]: OUT is whole or absent.
async fn get_to_file(
    client: &std::sync::Arc<Client>,
    cap: &Cap,
    path: &Path,
) -> Result<mosaic_node::client::GetReport> {
    let mut out = crate::output::AtomicFile::create(path)?;
    let report = client.get(cap, &mut out).await?;
    out.commit()?;
    Ok(report)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/example.toml");
        let file = load_config(Some(&path)).expect("docs/example.toml parses");
        assert_eq!(file.gateway.cache_size.as_deref(), Some("10GiB"));
        assert!(file.node.capacity.is_some());
    }
}
