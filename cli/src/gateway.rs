//! `mosaic gateway run`, and the gateway a storage node embeds with `--gateway ADDR`.
//!
//! Settings follow the CLI's one order: flag, environment (`MOSAIC_GATEWAY_*`), the
//! `[gateway]` section of the config file, default.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use mosaic_client::Client;
use mosaic_gateway::{Gateway, GatewayOptions, ServeLimits};
use serde::Deserialize;

/// How long a gateway's DHT lookups wait for more answers after the first: not at all.
/// A browser waits on every lookup, and the first holders found are enough (a file
/// has `m` spare columns, each fetch fails over); the CLI waits 300 ms to learn more
/// holders.
pub const FIRST_ANSWER: Duration = Duration::ZERO;

/// Default HTTP address of a gateway.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Gateway options shared by `mosaic gateway run` and `mosaic node run --gateway`
/// (the HTTP address is each command's own flag).
#[derive(Debug, Clone, Args)]
pub struct GatewayArgs {
    /// Gateway: segment cache directory [default: $XDG_DATA_HOME/mosaic/gateway-cache]
    #[arg(long, env = "MOSAIC_GATEWAY_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Gateway: bytes the segment cache may hold on disk [default: 1GiB]
    #[arg(long, env = "MOSAIC_GATEWAY_CACHE_SIZE")]
    pub cache_size: Option<bytesize::ByteSize>,
    /// Gateway: bytes of public files' opened segments kept in memory, so small ranges
    /// of hot files are served without re-reading and re-hashing whole segments; 0: none
    /// [default: 32MiB]
    #[arg(long, env = "MOSAIC_GATEWAY_MEMORY_CACHE")]
    pub memory_cache: Option<bytesize::ByteSize>,
    /// Gateway: how long finding a file may take before 404 / 504 [default: 5s]
    #[arg(long, env = "MOSAIC_GATEWAY_LOOKUP_TIMEOUT")]
    pub lookup_timeout: Option<humantime::Duration>,
    /// Gateway: file of denied ids and hashes (one per line, reloaded when it changes)
    #[arg(long, env = "MOSAIC_GATEWAY_DENYLIST")]
    pub denylist: Option<PathBuf>,
    /// Gateway: accept uploads from its web page: private ones sealed and erasure-coded
    /// in the page (the gateway never sees their key), or public ones. Both are stored
    /// with the gateway's identity: allow it only where the people who can reach the
    /// gateway may store on the network
    #[arg(long, env = "MOSAIC_GATEWAY_ALLOW_UPLOADS")]
    pub allow_uploads: bool,
    /// Gateway: the largest upload accepted [default: 1GiB]
    #[arg(long, env = "MOSAIC_GATEWAY_UPLOAD_MAX")]
    pub upload_max: Option<bytesize::ByteSize>,
    /// Gateway: HTTP connections open at once, from everyone [default: 4096]
    #[arg(long, env = "MOSAIC_GATEWAY_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Gateway: HTTP connections one client (IPv4 address or IPv6 /64) may have open;
    /// one more is answered 429. 0: no limit (behind a proxy, limit there) [default: 64]
    #[arg(long, env = "MOSAIC_GATEWAY_CLIENT_CONNECTIONS")]
    pub client_connections: Option<usize>,
    /// Gateway: requests a second one client may make, sustained; over it, 429 with
    /// Retry-After. 0: no limit [default: 100]
    #[arg(long, env = "MOSAIC_GATEWAY_CLIENT_RATE")]
    pub client_rate: Option<f64>,
    /// Gateway: requests one client may make at once above its rate [default: 400]
    #[arg(long, env = "MOSAIC_GATEWAY_CLIENT_BURST")]
    pub client_burst: Option<u32>,
    /// Gateway: how long a connection may take to send a request's head, from its
    /// opening or its previous response (closes idle and trickling sockets) [default: 10s]
    #[arg(long, env = "MOSAIC_GATEWAY_HEADER_TIMEOUT")]
    pub header_timeout: Option<humantime::Duration>,
    /// Gateway: how long a response may wait on a client that reads nothing before the
    /// connection ends [default: 60s]
    #[arg(long, env = "MOSAIC_GATEWAY_WRITE_TIMEOUT")]
    pub write_timeout: Option<humantime::Duration>,
}

/// `[gateway]` in the configuration file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySection {
    /// HTTP listen address.
    pub listen: Option<SocketAddr>,
    /// Cache directory.
    pub cache_dir: Option<PathBuf>,
    /// Cache size, e.g. "10GiB".
    pub cache_size: Option<String>,
    /// Opened public segments kept in memory, e.g. "32MiB"; "0": none.
    pub memory_cache: Option<String>,
    /// Lookup timeout, e.g. "5s".
    pub lookup_timeout: Option<String>,
    /// Denylist file.
    pub denylist: Option<PathBuf>,
    /// Accept uploads from the web page.
    pub allow_uploads: Option<bool>,
    /// The largest upload, e.g. "1GiB".
    pub upload_max: Option<String>,
    /// HTTP connections open at once.
    pub max_connections: Option<usize>,
    /// HTTP connections per client; 0: no limit.
    pub client_connections: Option<usize>,
    /// Requests a second per client; 0: no limit.
    pub client_rate: Option<f64>,
    /// Requests at once above the rate, per client.
    pub client_burst: Option<u32>,
    /// Time to send a request head, e.g. "10s".
    pub header_timeout: Option<String>,
    /// Time a response may make no progress, e.g. "60s".
    pub write_timeout: Option<String>,
}

impl GatewayArgs {
    /// Resolves flags, environment, file and defaults; `default_cache` is used when
    /// none names a cache directory.
    pub fn resolve(
        &self,
        file: &GatewaySection,
        default_cache: PathBuf,
        listen: Option<SocketAddr>,
    ) -> Result<GatewayOptions> {
        let listen = match listen.or(file.listen) {
            Some(a) => a,
            None => DEFAULT_LISTEN.parse().expect("valid default"),
        };
        let cache_bytes = bytes_setting("cache_size", self.cache_size, &file.cache_size, 1 << 30)?;
        let lookup_timeout = duration_setting(
            "lookup_timeout",
            self.lookup_timeout,
            &file.lookup_timeout,
            Duration::from_secs(5),
        )?;
        let memory_cache_bytes = bytes_setting(
            "memory_cache",
            self.memory_cache,
            &file.memory_cache,
            32 << 20,
        )?;
        let upload_max = bytes_setting("upload_max", self.upload_max, &file.upload_max, 1 << 30)?;
        let uploads =
            (self.allow_uploads || file.allow_uploads.unwrap_or(false)).then_some(upload_max);
        let defaults = ServeLimits::default();
        let limits = ServeLimits {
            max_connections: self
                .max_connections
                .or(file.max_connections)
                .unwrap_or(defaults.max_connections),
            client_connections: self
                .client_connections
                .or(file.client_connections)
                .unwrap_or(defaults.client_connections),
            client_rate: self
                .client_rate
                .or(file.client_rate)
                .unwrap_or(defaults.client_rate),
            client_burst: self
                .client_burst
                .or(file.client_burst)
                .unwrap_or(defaults.client_burst),
            header_timeout: duration_setting(
                "header_timeout",
                self.header_timeout,
                &file.header_timeout,
                defaults.header_timeout,
            )?,
            write_timeout: duration_setting(
                "write_timeout",
                self.write_timeout,
                &file.write_timeout,
                defaults.write_timeout,
            )?,
        };
        if limits.max_connections == 0 {
            bail!("gateway max_connections is 0: no connection could be served; give at least 1");
        }
        if !limits.client_rate.is_finite() || limits.client_rate < 0.0 {
            bail!(
                "gateway client_rate {} is not a rate: give requests a second, 0 for no limit",
                limits.client_rate
            );
        }
        Ok(GatewayOptions {
            uploads,
            limits,
            listen,
            cache_dir: self
                .cache_dir
                .clone()
                .or_else(|| file.cache_dir.clone())
                .unwrap_or(default_cache),
            cache_bytes,
            memory_cache_bytes,
            lookup_timeout,
            denylist: self.denylist.clone().or_else(|| file.denylist.clone()),
        })
    }
}

/// A duration from the flag, else the config file's `[gateway] name`, else `default`.
fn duration_setting(
    name: &str,
    flag: Option<humantime::Duration>,
    file: &Option<String>,
    default: Duration,
) -> Result<Duration> {
    Ok(match (flag, file) {
        (Some(d), _) => d.into(),
        (None, Some(s)) => humantime::parse_duration(s)
            .map_err(|e| anyhow!("gateway {name} {s:?} in the config file: {e}"))?,
        (None, None) => default,
    })
}

/// A byte size from the flag, else the config file's `[gateway] name`, else `default`.
fn bytes_setting(
    name: &str,
    flag: Option<bytesize::ByteSize>,
    file: &Option<String>,
    default: u64,
) -> Result<u64> {
    Ok(match (flag, file) {
        (Some(b), _) => b.as_u64(),
        (None, Some(s)) => s
            .parse::<bytesize::ByteSize>()
            .map_err(|e| anyhow!("gateway {name} {s:?} in the config file: {e}"))?
            .as_u64(),
        (None, None) => default,
    })
}

/// Starts a gateway on `client`.
pub async fn start(client: Arc<Client>, options: GatewayOptions) -> Result<Gateway> {
    let listen = options.listen;
    let cache = options.cache_dir.clone();
    Gateway::spawn(client, options).await.with_context(|| {
        format!(
            "cannot start the gateway on {listen} with cache {} (address in use? directory writable?)",
            cache.display()
        )
    })
}
