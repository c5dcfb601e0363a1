//! The long-running commands and their checks: `node run` (a storage node, optionally
//! with a gateway), `node id`, `node health`, `gateway run`, `devnet`. Their settings
//! are resolved before they start, by the pure functions of [`crate::node_settings`],
//! [`crate::gateway`] and [`crate::settings`].

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use mosaic_client::{Client, ClientOptions};
use mosaic_server::{Admission, Node, NodeOptions, store::Limits};
use mosaic_wire::{dht::RoutingOptions, identity};
use tracing::warn;

use crate::{
    gateway::GatewaySettings,
    merge::Merge,
    network_settings::Network,
    node_settings::{NodePlan, NodeSettings},
    settings::{
        ClientArgs, DEFAULT_DHT_PORT, DEFAULT_QUIC_PORT, Global, NetworkArgs, client_with, runtime,
    },
};

/// `mosaic node run`'s own flags: the node's settings and its embedded gateway's.
#[derive(Debug, Clone, Args)]
pub struct NodeRunArgs {
    #[command(flatten)]
    pub node: NodeSettings,
    #[command(flatten)]
    pub gateway: GatewaySettings,
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
    let network = net.resolve(file)?;
    let NodePlan {
        options,
        metrics: metrics_addr,
        gateway,
    } = args
        .node
        .over(file.node.clone())
        .resolve(&network, default_node_dir()?)?;
    let gateway = match gateway {
        None => None,
        Some(addr) => Some(
            GatewaySettings {
                listen: Some(addr),
                ..args.gateway.or(file.gateway.clone())
            }
            .resolve(options.data_dir.join("gateway-cache"))?,
        ),
    };
    let data_dir = options.data_dir.clone();
    let dht_port = options.routing.port.unwrap_or(DEFAULT_DHT_PORT);
    let Network {
        routing,
        relays,
        relay_only,
    } = network;
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
                    .insert(0, format!("127.0.0.1:{dht_port}"));
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
    gateway: GatewaySettings,
) -> Result<()> {
    let mut settings = gateway.or(g.file.gateway.clone());
    settings.listen = listen.or(settings.listen);
    let options = settings.resolve(crate::settings::data_home()?.join("gateway-cache"))?;
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
                listen: SocketAddr::from(([127, 0, 0, 1], DEFAULT_QUIC_PORT + i as u16)),
                routing: RoutingOptions {
                    port: Some(dht),
                    bootstrap: if i == 0 {
                        vec![]
                    } else {
                        vec![format!("127.0.0.1:{DEFAULT_DHT_PORT}")]
                    },
                    ..RoutingOptions::default()
                },
                limits: Limits::new(capacity.as_u64()),
                admission: Admission::Open,
                ..NodeOptions::new(dir.join(format!("node{i}")))
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
        assert_eq!(file.gateway.cache_size, Some(bytesize::ByteSize::gib(10)));
        assert!(file.node.capacity.is_some());
    }
}
