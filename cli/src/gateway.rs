//! `mosaic gateway run`, and the gateway a storage node embeds with `--gateway ADDR`:
//! the gateway's settings (one struct, both the flags and the config file's
//! `[gateway]` table; see [`crate::merge`]) resolved over [`GatewayOptions::new`].

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::{Context, Result, bail};
use clap::Args;
use mosaic_client::Client;
use mosaic_gateway::{DEFAULT_UPLOAD_MAX, Gateway, GatewayOptions};
use serde::Deserialize;

use crate::merge::{self, settings};

/// How long a gateway's DHT lookups wait for more answers after the first: not at all.
/// A browser waits on every lookup, and the first holders found are enough (a file
/// has `m` spare columns, each fetch fails over); the CLI waits 300 ms to learn more
/// holders.
pub const FIRST_ANSWER: Duration = Duration::ZERO;

settings! {
    /// Gateway settings shared by `mosaic gateway run` and `mosaic node run --gateway`,
    /// and `[gateway]` in the config file. The HTTP address is each command's own flag
    /// (`gateway run --listen`, `node run --gateway`); the file may give it as `listen`.
    #[derive(Debug, Clone, Default, Args, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub struct GatewaySettings {
        /// HTTP address to listen on.
        #[arg(skip)]
        pub listen: Option<SocketAddr>,
        /// Gateway: segment cache directory [default: $XDG_DATA_HOME/mosaic/gateway-cache]
        #[arg(long, env = "MOSAIC_GATEWAY_CACHE_DIR")]
        pub cache_dir: Option<PathBuf>,
        /// Gateway: bytes the segment cache may hold on disk [default: 1GiB]
        #[arg(long, env = "MOSAIC_GATEWAY_CACHE_SIZE")]
        #[serde(deserialize_with = "merge::size")]
        pub cache_size: Option<bytesize::ByteSize>,
        /// Gateway: bytes of public files' opened segments kept in memory, so small ranges
        /// of hot files are served without re-reading and re-hashing whole segments; 0: none
        /// [default: 32MiB]
        #[arg(long, env = "MOSAIC_GATEWAY_MEMORY_CACHE")]
        #[serde(deserialize_with = "merge::size")]
        pub memory_cache: Option<bytesize::ByteSize>,
        /// Gateway: how long finding a file may take before 404 / 504 [default: 5s]
        #[arg(long, env = "MOSAIC_GATEWAY_LOOKUP_TIMEOUT")]
        #[serde(deserialize_with = "merge::text")]
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
        #[serde(deserialize_with = "merge::size")]
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
        #[serde(deserialize_with = "merge::text")]
        pub header_timeout: Option<humantime::Duration>,
        /// Gateway: how long a response may wait on a client that reads nothing before the
        /// connection ends [default: 60s]
        #[arg(long, env = "MOSAIC_GATEWAY_WRITE_TIMEOUT")]
        #[serde(deserialize_with = "merge::text")]
        pub write_timeout: Option<humantime::Duration>,
    }
}

impl GatewaySettings {
    /// Resolves these settings (flags already laid over the file), filling what is unset
    /// from [`GatewayOptions::new`] with the cache directory `default_cache`. Pure.
    pub fn resolve(self, default_cache: PathBuf) -> Result<GatewayOptions> {
        let d = GatewayOptions::new(self.cache_dir.unwrap_or(default_cache));
        let mut limits = d.limits.clone();
        if let Some(n) = self.max_connections {
            limits.max_connections = n;
        }
        if let Some(n) = self.client_connections {
            limits.client_connections = n;
        }
        if let Some(r) = self.client_rate {
            limits.client_rate = r;
        }
        if let Some(b) = self.client_burst {
            limits.client_burst = b;
        }
        if let Some(t) = self.header_timeout {
            limits.header_timeout = t.into();
        }
        if let Some(t) = self.write_timeout {
            limits.write_timeout = t.into();
        }
        if limits.max_connections == 0 {
            bail!("gateway max_connections is 0: no connection could be served; give at least 1");
        }
        if !limits.client_rate.is_finite() || limits.client_rate < 0.0 {
            bail!(
                "gateway client_rate {} is not a rate: give requests a second, 0 for no limit",
                limits.client_rate
            );
        }
        let upload_max = self.upload_max.map_or(DEFAULT_UPLOAD_MAX, |b| b.as_u64());
        Ok(GatewayOptions {
            listen: self.listen.unwrap_or(d.listen),
            cache_bytes: self.cache_size.map_or(d.cache_bytes, |b| b.as_u64()),
            memory_cache_bytes: self
                .memory_cache
                .map_or(d.memory_cache_bytes, |b| b.as_u64()),
            lookup_timeout: self.lookup_timeout.map_or(d.lookup_timeout, Into::into),
            denylist: self.denylist,
            uploads: self.allow_uploads.then_some(upload_max),
            limits,
            ..d
        })
    }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use clap::Parser;
    use mosaic_gateway::GatewayOptions;

    use super::GatewaySettings;
    use crate::merge::Merge;

    #[derive(Debug, Parser)]
    struct Flags {
        #[command(flatten)]
        gateway: GatewaySettings,
    }

    fn resolve(args: &[&str], file: &str) -> GatewayOptions {
        let flags = Flags::try_parse_from(std::iter::once("gw").chain(args.iter().copied()))
            .unwrap()
            .gateway;
        let file: GatewaySettings = toml::from_str(file).unwrap();
        flags.or(file).resolve("/cache".into()).unwrap()
    }

    #[test]
    fn every_unset_setting_is_the_default_of_gateway_options() {
        assert_eq!(
            format!("{:?}", resolve(&[], "")),
            format!("{:?}", GatewayOptions::new("/cache"))
        );
    }

    #[test]
    fn a_flag_wins_over_the_file_and_the_file_over_the_default() {
        let file = r#"
            listen = "127.0.0.1:9000"
            cache_size = "3GiB"
            lookup_timeout = "2s"
            client_rate = 5.0
            allow_uploads = true
        "#;
        let f = resolve(&[], file);
        assert_eq!(f.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(f.cache_bytes, 3 << 30);
        assert_eq!(f.lookup_timeout, Duration::from_secs(2));
        assert_eq!(f.limits.client_rate, 5.0);
        assert_eq!(f.uploads, Some(mosaic_gateway::DEFAULT_UPLOAD_MAX));
        let g = resolve(
            &[
                "--cache-size",
                "1MiB",
                "--client-rate",
                "7",
                "--upload-max",
                "2MiB",
            ],
            file,
        );
        assert_eq!(g.cache_bytes, 1 << 20);
        assert_eq!(g.limits.client_rate, 7.0);
        assert_eq!(g.lookup_timeout, Duration::from_secs(2));
        assert_eq!(g.uploads, Some(2 << 20));
        assert_eq!(g.cache_dir, std::path::PathBuf::from("/cache"));
    }

    #[test]
    fn settings_that_would_serve_nothing_are_refused() {
        let bad = |file: &str| {
            let s: GatewaySettings = toml::from_str(file).unwrap();
            s.resolve("/c".into()).unwrap_err().to_string()
        };
        assert!(bad("max_connections = 0").contains("max_connections"));
        assert!(bad("client_rate = -1.0").contains("client_rate"));
    }
}
