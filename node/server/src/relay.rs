//! A node's relay (`--relay-serve`): an iroh relay server for the network's peers that
//! cannot reach each other directly, and its QUIC address discovery (how a NATed peer
//! learns its public address, the first step of hole punching).
//!
//! - TLS always: the operator's certificate (`--relay-tls-cert/--relay-tls-key`, PEM,
//!   e.g. from Let's Encrypt), or a self-signed one the node makes once and keeps in its
//!   data directory; peers trust the latter by its pin, published in the node's signed
//!   DHT address record (`mosaic_wire::relay`).
//! - HTTPS (relaying, over TCP) and QUIC address discovery (UDP) share one port number.
//! - Access: only peers presenting the network's token; each admitted peer's traffic is
//!   bounded by `--relay-rate` bytes per second.
//! - The relay never sees content: it forwards QUIC packets encrypted end to end between
//!   the two peers' keys. It does see who talks to whom, when, and how much.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    num::NonZeroU32,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
};

use iroh::RelayUrl;
use iroh_relay::server::{
    Access, AccessControl, CertConfig, ClientRateLimit, ClientRequest, ConnectionId, Limits,
    QuicConfig, RelayConfig, Server, ServerConfig, TlsConfig,
};
use mosaic_codec::ErrorKind;
use mosaic_wire::relay::{self, RelayInfo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, pem::PemObject};
use tracing::info;

/// File names of the self-signed certificate and its key in the data directory.
const CERT_FILE: &str = "relay-cert.der";
const KEY_FILE: &str = "relay-key.der";
/// The host the certificate was made for (a new one is made when it changes).
const HOST_FILE: &str = "relay-host.txt";

/// How to serve a relay.
#[derive(Debug, Clone)]
pub struct RelayServeOptions {
    /// TCP (HTTPS) and UDP (QUIC address discovery) address, one port number.
    pub bind: SocketAddr,
    /// The URL peers dial; `None`: `https://IP:PORT` with the first public address's IP
    /// (else the bind address's).
    pub url: Option<RelayUrl>,
    /// The operator's certificate chain and key (PEM); `None`: self-signed, pinned.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Bytes per second each admitted peer may send through the relay.
    pub rate: Option<NonZeroU32>,
}

/// The relay could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The certificate or key could not be read, made or used.
    #[error("relay TLS: {0}")]
    Tls(String),
    /// No URL can be derived (bound to 0.0.0.0 with no public address).
    #[error(
        "the relay needs a public address: give --relay-url https://HOST:PORT or --public-addr"
    )]
    NoUrl,
    /// The server did not start (port taken, ...).
    #[error("cannot start the relay on {bind}: {source}")]
    Spawn {
        /// Its address.
        bind: SocketAddr,
        /// iroh-relay's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl RelayError {
    /// Configuration problems are the operator's to fix.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RelayError::Spawn { .. } => ErrorKind::Other,
            _ => ErrorKind::BadInput,
        }
    }
}

/// What the relay has done, for `mosaic node status`.
#[derive(Debug, Default)]
pub struct RelayStats {
    /// Peers connected now.
    pub connected: AtomicUsize,
    /// Connections admitted since start.
    pub admitted: AtomicU64,
    /// Connections refused (wrong or missing network token).
    pub denied: AtomicU64,
}

/// A running relay.
#[derive(Debug)]
pub struct RelayService {
    server: Server,
    /// Where peers reach it, with its pin.
    pub info: RelayInfo,
    /// Counters.
    pub stats: Arc<RelayStats>,
}

impl RelayService {
    /// Starts the relay for `network`.
    pub async fn spawn(
        node: iroh::EndpointId,
        data_dir: &Path,
        network: &str,
        public_ips: &[IpAddr],
        options: RelayServeOptions,
    ) -> Result<Self, RelayError> {
        let url = match &options.url {
            Some(u) => u.clone(),
            None => {
                let ip = public_ips
                    .first()
                    .copied()
                    .or_else(|| Some(options.bind.ip()).filter(|ip| !ip.is_unspecified()))
                    .ok_or(RelayError::NoUrl)?;
                format!("https://{}", SocketAddr::new(ip, options.bind.port()))
                    .parse()
                    .map_err(|_| RelayError::NoUrl)?
            }
        };
        let host = url.host_str().unwrap_or_default().to_owned();
        let (certs, key, pin) = match &options.tls {
            Some((cert, key)) => {
                let (certs, key) = read_pem(cert, key)?;
                (certs, key, None)
            }
            None => {
                let (cert, key) = self_signed(data_dir, &host)?;
                let pin = relay::cert_pin(cert.as_ref());
                (vec![cert], key, Some(pin))
            }
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server_config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| RelayError::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| RelayError::Tls(e.to_string()))?;
        let stats = Arc::new(RelayStats::default());
        let access = Arc::new(NetworkOnly {
            token: relay::auth_token(network),
            stats: stats.clone(),
        });
        // The plain-HTTP side (captive-portal probes) stays on loopback: peers use TLS.
        let mut relay = RelayConfig::new((Ipv4Addr::LOCALHOST, 0));
        relay.tls = Some(TlsConfig::new(
            options.bind,
            CertConfig::Manual {
                server_config: server_config.clone(),
            },
        ));
        relay.access = access;
        relay.key_cache_capacity = Some(4096);
        let mut limits = Limits::default();
        limits.client_rx = options.rate.map(ClientRateLimit::new);
        relay.limits = limits;
        let mut quic = QuicConfig::new(options.bind);
        quic.server_config = Some(server_config);
        let mut config = ServerConfig::default();
        config.relay = Some(relay);
        config.quic = Some(quic);
        let server = Server::spawn(config).await.map_err(|e| RelayError::Spawn {
            bind: options.bind,
            source: Box::new(e),
        })?;
        let info = RelayInfo {
            url,
            pin,
            node: Some(node),
        };
        info!(relay = %info, "serving a relay for network {network:?}");
        Ok(Self {
            server,
            info,
            stats,
        })
    }

    /// Stops the relay.
    pub async fn shutdown(self) {
        let _ = self.server.shutdown().await;
    }
}

/// Admits the network's members only (they present its token).
#[derive(Debug)]
struct NetworkOnly {
    token: String,
    stats: Arc<RelayStats>,
}

impl AccessControl for NetworkOnly {
    async fn on_connect(&self, request: &ClientRequest) -> Access {
        if request.auth_token().as_deref() == Some(self.token.as_str()) {
            self.stats.admitted.fetch_add(1, Ordering::Relaxed);
            self.stats.connected.fetch_add(1, Ordering::Relaxed);
            Access::Allow
        } else {
            self.stats.denied.fetch_add(1, Ordering::Relaxed);
            Access::Deny {
                reason: Some("this relay serves one Mosaic network only".into()),
            }
        }
    }

    fn on_disconnect(&self, _: iroh::EndpointId, _: ConnectionId) {
        self.stats.connected.fetch_sub(1, Ordering::Relaxed);
    }
}

type Chain = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn read_pem(cert: &Path, key: &Path) -> Result<Chain, RelayError> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| RelayError::Tls(format!("{}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(RelayError::Tls(format!(
            "{}: no certificate in the file",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| RelayError::Tls(format!("{}: {e}", key.display())))?;
    Ok((certs, key))
}

/// The node's self-signed relay certificate for `host`, made on first use (a new one if
/// the host changed). The key file is private to the node's user.
fn self_signed(
    data_dir: &Path,
    host: &str,
) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), RelayError> {
    let cert_path = data_dir.join(CERT_FILE);
    let key_path = data_dir.join(KEY_FILE);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host_path = data_dir.join(HOST_FILE);
    if let (Ok(cert), Ok(key), Ok(made_for)) = (
        std::fs::read(&cert_path),
        std::fs::read(&key_path),
        std::fs::read_to_string(&host_path),
    ) && made_for == host
    {
        return Ok((
            CertificateDer::from(cert),
            PrivatePkcs8KeyDer::from(key).into(),
        ));
    }
    let made = rcgen::generate_simple_self_signed(vec![host.to_owned()])
        .map_err(|e| RelayError::Tls(format!("making a certificate for {host}: {e}")))?;
    let cert = made.cert.der().to_vec();
    let key = made.signing_key.serialize_der();
    let io = |p: &Path, e: std::io::Error| RelayError::Tls(format!("{}: {e}", p.display()));
    write_private(&key_path, &key).map_err(|e| io(&key_path, e))?;
    std::fs::write(&cert_path, &cert).map_err(|e| io(&cert_path, e))?;
    std::fs::write(&host_path, host).map_err(|e| io(&host_path, e))?;
    Ok((
        CertificateDer::from(cert),
        PrivatePkcs8KeyDer::from(key).into(),
    ))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path)?.write_all(bytes)
}
