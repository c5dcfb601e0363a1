//! The long-running commands and their checks: `node run` (a storage node, optionally
//! with a gateway), `node id`, `node health`, `gateway run`, `devnet`. Settings come
//! resolved from [`crate::settings`]; the node's own settings (flags, `MOSAIC_*`,
//! the `[node]` table) are resolved here, once, into `NodeOptions`.

use std::{collections::HashSet, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use iroh::EndpointId;
use mosaic_client::{Client, ClientOptions};
use mosaic_server::{
    Admission, HealthOptions, Node, NodeOptions, PeerLimitOptions, policy::RepairPolicy,
    relay::RelayServeOptions, store::Limits,
};
use mosaic_wire::{dht::RoutingOptions, identity, limit::Rate};
use tracing::warn;

use crate::settings::{
    ClientArgs, DEFAULT_DHT_PORT, DEFAULT_QUIC_PORT, Global, NetworkArgs, client_with,
    routing_options, runtime,
};

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
    /// Bytes each client may pin on this node, e.g. `50GiB` [default: with --open, a
    /// tenth of the capacity but at least 1GiB; otherwise no quota]
    #[arg(long, env = "MOSAIC_QUOTA")]
    pub quota: Option<bytesize::ByteSize>,
    /// Usage (percent of the capacity) above which unpinned data is collected
    /// [default: 90]
    #[arg(long, env = "MOSAIC_GC_HIGH", value_parser = clap::value_parser!(u8).range(1..=100))]
    pub gc_high: Option<u8>,
    /// Usage (percent of the capacity) collection brings it back under [default: 80]
    #[arg(long, env = "MOSAIC_GC_LOW", value_parser = clap::value_parser!(u8).range(0..=100))]
    pub gc_low: Option<u8>,
    /// How often usage is checked, and collected blobs' bytes are deleted [default: 1m]
    #[arg(long, env = "MOSAIC_GC_INTERVAL")]
    pub gc_interval: Option<humantime::Duration>,
    /// Accept data from any client.
    #[arg(long, env = "MOSAIC_OPEN", conflicts_with = "allow")]
    pub open: bool,
    /// Accept data only from these client ids (see `mosaic id`), comma separated.
    #[arg(long, env = "MOSAIC_ALLOW", value_delimiter = ',')]
    pub allow: Vec<String>,
    /// How often to re-announce every record on the DHT [default: 10m]
    #[arg(long, env = "MOSAIC_ANNOUNCE_INTERVAL")]
    pub announce_interval: Option<humantime::Duration>,
    /// How often the name records this node keeps (names pointing at files it holds)
    /// are republished to the DHT; BEP 44 lets DHT nodes drop them after 2h
    /// [default: 1h]
    #[arg(long, env = "MOSAIC_REPUBLISH_INTERVAL")]
    pub republish_interval: Option<humantime::Duration>,
    /// How often each file this node holds part of is checked: are its columns' holders
    /// announced, reachable, still holding them? [default: 30m]
    #[arg(long, env = "MOSAIC_CHECK_INTERVAL")]
    pub check_interval: Option<humantime::Duration>,
    /// How long a column may be missing before it is rebuilt, so a node that restarts
    /// is not replaced [default: 1h]
    #[arg(long, env = "MOSAIC_REPAIR_GRACE")]
    pub repair_grace: Option<humantime::Duration>,
    /// How much longer each next holder in a file's repair ranking waits before it
    /// takes over from one that failed [default: 3 × --check-interval]
    #[arg(long, env = "MOSAIC_REPAIR_BACKOFF")]
    pub repair_backoff: Option<humantime::Duration>,
    /// How often every stored blob is re-hashed to find bit rot [default: 30d]
    #[arg(long, env = "MOSAIC_SCRUB_INTERVAL")]
    pub scrub_interval: Option<humantime::Duration>,
    /// Bytes per second the scrubber reads at most, e.g. `16MiB` [default: 16MiB]
    #[arg(long, env = "MOSAIC_SCRUB_RATE")]
    pub scrub_rate: Option<bytesize::ByteSize>,
    /// Also run an HTTP gateway on this address (e.g. 127.0.0.1:8080); its cache lives
    /// in the data directory, its other settings come from `[gateway]` and
    /// `MOSAIC_GATEWAY_*` as for `mosaic gateway run`.
    #[arg(long, env = "MOSAIC_GATEWAY")]
    pub gateway: Option<SocketAddr>,
    /// Take part in the DHT as a client only: for a node behind a NAT, which other
    /// nodes cannot query (it still announces what it holds, and is reached through
    /// its relay).
    #[arg(long, env = "MOSAIC_DHT_CLIENT")]
    pub dht_client: bool,
    /// Serve a relay for the network's peers on this address: HTTPS on TCP and QUIC
    /// address discovery on UDP, one port (e.g. 0.0.0.0:3340). Needs a public address.
    #[arg(long, env = "MOSAIC_RELAY_SERVE")]
    pub relay_serve: Option<SocketAddr>,
    /// The relay's URL as peers dial it [default: https://PUBLIC_IP:PORT]
    #[arg(long, env = "MOSAIC_RELAY_URL")]
    pub relay_url: Option<String>,
    /// The relay's TLS certificate chain (PEM), e.g. from Let's Encrypt [default: a
    /// self-signed one kept in the data directory, trusted by its pin]
    #[arg(long, env = "MOSAIC_RELAY_TLS_CERT", requires = "relay_tls_key")]
    pub relay_tls_cert: Option<PathBuf>,
    /// The relay certificate's private key (PEM).
    #[arg(long, env = "MOSAIC_RELAY_TLS_KEY", requires = "relay_tls_cert")]
    pub relay_tls_key: Option<PathBuf>,
    /// Bytes per second each peer may send through the relay, e.g. `4MiB` [default: no
    /// limit]
    #[arg(long, env = "MOSAIC_RELAY_RATE")]
    pub relay_rate: Option<bytesize::ByteSize>,
    /// Serve Prometheus metrics at /metrics and a health check at /health on this
    /// HTTP address (e.g. 127.0.0.1:9100) [default: not served]
    #[arg(long, env = "MOSAIC_METRICS")]
    pub metrics: Option<SocketAddr>,
    /// Request cost units a second one peer may spend (a lookup in the node's database
    /// costs 1, a MiB stored 1 more, a DHT lookup 16, a repair check 64); over it,
    /// requests are refused as busy. 0: no limit [default: 1000]
    #[arg(long, env = "MOSAIC_PEER_RATE")]
    pub peer_rate: Option<f64>,
    /// Uploads one peer may have in flight at once. 0: no limit [default: 32]
    #[arg(long, env = "MOSAIC_PEER_UPLOADS")]
    pub peer_uploads: Option<usize>,
    #[command(flatten)]
    pub gateway_settings: crate::gateway::GatewayArgs,
}

/// A setting from its flag (or variable), else from the config file's text, parsed.
fn setting<T, E: std::fmt::Display>(
    name: &str,
    flag: Option<T>,
    file: &Option<String>,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<Option<T>> {
    match (flag, file) {
        (Some(v), _) => Ok(Some(v)),
        (None, Some(s)) => parse(s)
            .map(Some)
            .map_err(|e| anyhow!("{name} {s:?} in the config file: {e}")),
        (None, None) => Ok(None),
    }
}

/// A size setting in bytes.
fn size_setting(
    name: &str,
    flag: Option<bytesize::ByteSize>,
    file: &Option<String>,
) -> Result<Option<u64>> {
    Ok(setting(name, flag, file, str::parse::<bytesize::ByteSize>)?.map(|b| b.as_u64()))
}

/// A duration setting.
fn duration_setting(
    name: &str,
    flag: Option<humantime::Duration>,
    file: &Option<String>,
) -> Result<Option<Duration>> {
    setting(name, flag.map(Into::into), file, humantime::parse_duration)
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
    Ok(crate::settings::data_home()?.join("node"))
}

/// `mosaic node id`: prints the node's identity (creating it if needed).
pub fn node_id(g: &Global, data_dir: Option<PathBuf>) -> Result<()> {
    let dir = match data_dir {
        Some(d) => d,
        None => default_node_dir()?,
    };
    let id = identity::load_or_create(&dir.join("identity.key"))?.public();
    g.emit(serde_json::json!({"id": id.to_string()}), || {
        println!("{id}");
        Ok(())
    })
}

/// With `--json`, a long-running command announces on stdout, as one JSON line, that
/// it is ready and where.
fn ready(g: &Global, value: serde_json::Value) {
    if g.json {
        println!("{value}");
    }
}

/// `mosaic node health`: asks the node running from `data_dir` (on this machine, at the
/// port of `listen`) for its space over the storage protocol. Exit 0 means its endpoint,
/// storage protocol and store answer: what a container health check wants.
pub fn node_health(
    g: &Global,
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
) -> Result<()> {
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
        let endpoint = mosaic_wire::endpoint::bind(mosaic_wire::endpoint::EndpointOptions {
            secret: iroh::SecretKey::from_bytes(&seed),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            relays: vec![],
            relay_only: false,
            network: String::new(),
            nameserver: None,
            alpns: vec![],
        })
        .await?;
        let result = tokio::time::timeout(Duration::from_secs(5), async {
            let conn = endpoint
                .connect(
                    mosaic_wire::endpoint::endpoint_addr(node, &[target]),
                    mosaic_wire::proto::ALPN,
                )
                .await
                .map_err(|e| anyhow!("cannot connect to node {node} at {target}: {e}"))?;
            mosaic_wire::request::status(&conn, &[])
                .await
                .map_err(|e| anyhow!("node {node} did not answer a status request: {e}"))
        })
        .await
        .map_err(|_| anyhow!("node {node} at {target} did not answer within 5 s"))
        .and_then(|r| r);
        endpoint.close().await;
        let status = result?;
        let (used, capacity, h) = (status.used, status.capacity, &status.health);
        let value = serde_json::json!({
            "ok": true,
            "id": node.to_string(),
            "used": used,
            "capacity": capacity,
            "health": h,
        });
        g.emit(value, || {
            println!(
                "ok: node {node} at {target}, {} used of {}",
                bytesize::ByteSize(used),
                bytesize::ByteSize(capacity)
            );
            println!("{}", crate::output::health_line(h));
            Ok(())
        })
    })
}

/// `mosaic node run`.
pub fn node_run(g: &Global, net: NetworkArgs, args: NodeRunArgs) -> Result<()> {
    let file = &g.file;
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
    let capacity = size_setting("capacity", args.capacity, &n.capacity)?.unwrap_or(10 << 30);
    let explicit_quota = size_setting("quota", args.quota, &n.quota)?;
    let announce_interval = duration_setting(
        "announce_interval",
        args.announce_interval,
        &n.announce_interval,
    )?
    .unwrap_or(Duration::from_secs(600));
    let republish_interval = duration_setting(
        "republish_interval",
        args.republish_interval,
        &n.republish_interval,
    )?
    .unwrap_or(Duration::from_secs(3600));
    let gc_interval = duration_setting("gc_interval", args.gc_interval, &n.gc_interval)?
        .unwrap_or(Duration::from_secs(60));
    let defaults = HealthOptions::default();
    let check_interval =
        duration_setting("check_interval", args.check_interval, &n.check_interval)?
            .unwrap_or(defaults.check_interval);
    if check_interval.is_zero() {
        bail!("--check-interval must be longer than zero");
    }
    let health = HealthOptions {
        check_interval,
        policy: RepairPolicy {
            grace: duration_setting("repair_grace", args.repair_grace, &n.repair_grace)?
                .unwrap_or(defaults.policy.grace),
            backoff: duration_setting("repair_backoff", args.repair_backoff, &n.repair_backoff)?
                .unwrap_or(check_interval * 3),
            ..defaults.policy
        },
        scrub_interval: duration_setting("scrub_interval", args.scrub_interval, &n.scrub_interval)?
            .filter(|d| !d.is_zero())
            .unwrap_or(defaults.scrub_interval),
        scrub_rate: size_setting("scrub_rate", args.scrub_rate, &n.scrub_rate)?
            .filter(|r| *r > 0)
            .unwrap_or(defaults.scrub_rate),
    };
    let gc_high = args.gc_high.or(n.gc_high).unwrap_or(90);
    let gc_low = args.gc_low.or(n.gc_low).unwrap_or(80);
    if gc_low > gc_high || gc_high > 100 {
        bail!(
            "garbage collection runs from --gc-high down to --gc-low (percent of the capacity): need gc_low ({gc_low}) <= gc_high ({gc_high}) <= 100"
        );
    }
    let allow = if args.allow.is_empty() {
        n.allow.clone().unwrap_or_default()
    } else {
        args.allow.clone()
    };
    let open = args.open || (allow.is_empty() && n.open.unwrap_or(false));
    // On a node open to anyone, one stranger may not take it all.
    let quota = explicit_quota.or_else(|| open.then(|| open_quota(capacity)));
    let limits = Limits {
        capacity,
        quota,
        gc_high: f64::from(gc_high) / 100.0,
        gc_low: f64::from(gc_low) / 100.0,
        sweep_interval: gc_interval,
    };
    let admission = if open {
        Admission::Open
    } else if !allow.is_empty() {
        Admission::Allow(parse_ids(&allow)?)
    } else {
        bail!(
            "say who may store on this node: --open (anyone) or --allow ID,... (see `mosaic id`)"
        );
    };
    let mut routing = routing_options(&net, file);
    routing.port = Some(dht_listen.port());
    let gateway = match args.gateway.or(n.gateway) {
        None => None,
        Some(addr) => Some(args.gateway_settings.resolve(
            &file.gateway,
            data_dir.join("gateway-cache"),
            Some(addr),
        )?),
    };
    let (relays, relay_only) = crate::settings::relay_settings(&net, file)?;
    let relay_serve = match args.relay_serve.or(n.relay_serve) {
        None => None,
        Some(bind) => Some(RelayServeOptions {
            bind,
            url: match args.relay_url.clone().or_else(|| n.relay_url.clone()) {
                None => None,
                Some(u) => Some(u.parse().map_err(|e| {
                    anyhow!("--relay-url {u:?} is not a URL (https://HOST:PORT): {e}")
                })?),
            },
            tls: match (
                args.relay_tls_cert
                    .clone()
                    .or_else(|| n.relay_tls_cert.clone()),
                args.relay_tls_key
                    .clone()
                    .or_else(|| n.relay_tls_key.clone()),
            ) {
                (Some(c), Some(k)) => Some((c, k)),
                (None, None) => None,
                _ => bail!("--relay-tls-cert and --relay-tls-key go together"),
            },
            rate: size_setting("relay_rate", args.relay_rate, &n.relay_rate)?
                .and_then(|r| std::num::NonZeroU32::new(r.min(u64::from(u32::MAX)) as u32)),
        }),
    };
    let defaults = PeerLimitOptions::default();
    let peer_rate = args
        .peer_rate
        .or(n.peer_rate)
        .unwrap_or(defaults.rate.per_second);
    if !peer_rate.is_finite() || peer_rate < 0.0 {
        bail!("--peer-rate {peer_rate} is not a rate: give cost units a second, 0 for no limit");
    }
    let peer_limits = PeerLimitOptions {
        uploads: args
            .peer_uploads
            .or(n.peer_uploads)
            .unwrap_or(defaults.uploads),
        rate: Rate {
            per_second: peer_rate,
            // Four seconds' worth at once.
            burst: (peer_rate * 4.0).clamp(1.0, f64::from(u32::MAX)) as u32,
        },
        ..defaults
    };
    let metrics_addr = args.metrics.or(n.metrics);
    let options = NodeOptions {
        peer_limits,
        data_dir: data_dir.clone(),
        listen,
        public_addrs: if args.public_addr.is_empty() {
            n.public_addr.clone().unwrap_or_default()
        } else {
            args.public_addr
        },
        routing: routing.clone(),
        limits,
        gc_interval,
        admission,
        relays: relays.clone(),
        relay_only,
        relay_serve,
        dht_client: args.dht_client || n.dht_client.unwrap_or(false),
        announce_interval,
        republish_interval,
        health,
    };
    runtime()?.block_on(async move {
        let node = Arc::new(Node::spawn(options).await?);
        let metrics = match metrics_addr {
            None => None,
            Some(addr) => Some(serve_metrics(addr, node.clone()).await?),
        };
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
                    relay_only,
                    connect_timeout: Duration::from_secs(5),
                    stall_timeout: Duration::from_secs(10),
                    // Long-lived: its addresses live in memory.
                    address_book: None,
                })
                .await
                .context("the embedded gateway could not join the DHT")?;
                Some(crate::gateway::start(client, gateway_options).await?)
            }
        };
        let dht = node
            .routing()
            .local_addr()
            .await
            .map(|a| a.to_string())
            .unwrap_or_default();
        eprintln!(
            "mosaic node {} listening on {:?}, DHT on {dht}",
            node.id(),
            node.addrs(),
        );
        let relay = node.relay().map(ToString::to_string);
        if let Some(r) = &relay {
            eprintln!("serving a relay at {r}");
        }
        ready(
            g,
            serde_json::json!({"ready": "node", "id": node.id().to_string(), "addrs": node.addrs(), "dht": dht, "relay": relay, "home_relay": node.reach().relay.map(|r| r.to_string())}),
        );
        shutdown_signal().await;
        eprintln!("shutting down");
        if let Some(g) = gateway {
            g.shutdown();
        }
        if let Some(task) = metrics {
            task.abort();
            let _ = task.await;
        }
        match Arc::try_unwrap(node) {
            Ok(node) => node.shutdown().await,
            Err(_) => warn!("the node is still in use; stopping without a clean shutdown"),
        }
        anyhow::Ok(())
    })
}

/// A tenth of the capacity, but at least 1 GiB (at most the capacity): what one client
/// may pin on a node open to anyone, unless `--quota` says otherwise.
fn open_quota(capacity: u64) -> u64 {
    (capacity / 10).max(1 << 30).min(capacity)
}

/// Serves the node's `/metrics` (Prometheus text) and `/health` (200 when it has DHT
/// peers and its store answers, 503 saying what is wrong otherwise) on `addr`.
async fn serve_metrics(addr: SocketAddr, node: Arc<Node>) -> Result<tokio::task::JoinHandle<()>> {
    use axum::{
        Router,
        extract::State,
        http::{StatusCode, header},
        response::IntoResponse,
        routing::get,
    };
    async fn metrics(State(node): State<Arc<Node>>) -> impl IntoResponse {
        (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            node.metrics_text().await,
        )
    }
    async fn health(State(node): State<Arc<Node>>) -> impl IntoResponse {
        match node.healthy().await {
            Ok(ok) => (StatusCode::OK, ok + "\n"),
            Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e + "\n"),
        }
    }
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .with_state(node);
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("cannot serve metrics on {addr} (address in use? use another with --metrics)")
    })?;
    eprintln!("node metrics on http://{}/metrics", listener.local_addr()?);
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            warn!("the metrics server stopped: {e}");
        }
    }))
}

/// `mosaic gateway run`.
pub fn gateway_run(
    g: &Global,
    net: NetworkArgs,
    args: ClientArgs,
    listen: Option<SocketAddr>,
    gateway: crate::gateway::GatewayArgs,
) -> Result<()> {
    let file = &g.file;
    let options = gateway.resolve(
        &file.gateway,
        crate::settings::data_home()?.join("gateway-cache"),
        listen,
    )?;
    runtime()?.block_on(async move {
        let client = client_with(g, &net, &args, crate::gateway::FIRST_ANSWER).await?;
        let gateway = crate::gateway::start(client.clone(), options).await?;
        eprintln!("mosaic gateway on http://{}", gateway.local_addr());
        ready(
            g,
            serde_json::json!({"ready": "gateway", "url": format!("http://{}", gateway.local_addr())}),
        );
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
pub fn devnet(
    g: &Global,
    count: usize,
    dir: Option<PathBuf>,
    capacity: bytesize::ByteSize,
) -> Result<()> {
    if count == 0 {
        bail!("a devnet needs at least one node");
    }
    let dir = match dir {
        Some(d) => d,
        None => crate::settings::data_home()?.join("devnet"),
    };
    runtime()?.block_on(async move {
        let mut nodes = Vec::with_capacity(count);
        for i in 0..count {
            let dht = DEFAULT_DHT_PORT + i as u16;
            let options = NodeOptions {
                peer_limits: Default::default(),
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
                limits: Limits::new(capacity.as_u64()),
                gc_interval: Duration::from_secs(60),
                admission: Admission::Open,
                relays: vec![],
                relay_only: false,
                relay_serve: None,
                dht_client: false,
                announce_interval: Duration::from_secs(600),
                republish_interval: Duration::from_secs(3600),
                health: HealthOptions::default(),
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
        ready(
            g,
            serde_json::json!({"ready": "devnet", "nodes": nodes.iter().map(|n| n.id().to_string()).collect::<Vec<_>>(), "bootstrap": format!("127.0.0.1:{DEFAULT_DHT_PORT}")}),
        );
        shutdown_signal().await;
        eprintln!("shutting down");
        for node in nodes {
            node.shutdown().await;
        }
        anyhow::Ok(())
    })
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
    use std::path::Path;

    use crate::settings::load_config;

    #[test]
    fn the_documented_example_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/example.toml");
        let file = load_config(Some(&path)).expect("docs/example.toml parses");
        assert_eq!(file.gateway.cache_size.as_deref(), Some("10GiB"));
        assert!(file.node.capacity.is_some());
    }
}
