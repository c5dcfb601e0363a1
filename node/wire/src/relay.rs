//! Relays run by Mosaic nodes: how a participant names one, trusts its TLS certificate,
//! and proves it belongs to the network.
//!
//! A relay (an iroh relay server inside a storage node, `mosaic-server`'s `relay.rs`)
//! forwards end-to-end encrypted QUIC packets between peers that cannot reach each other
//! directly, and coordinates their hole punching. Its address is a [`RelayInfo`]: an
//! `https://host:port` URL, optionally with the BLAKE3 hash of its TLS certificate
//! (`#` then 64 hex digits) and the id of the node serving it (`ID@` in front), which a
//! client in relay-only mode asks to make its DHT lookups. A pinned certificate is trusted because of the pin (a
//! node's own self-signed certificate, published in its signed DHT address record);
//! an unpinned one must chain to the web PKI (e.g. Let's Encrypt). QUIC address
//! discovery runs on the same port number over UDP.
//!
//! Only the network's peers may use a relay: each presents [`auth_token`], derived from
//! the network name, and the relay admits no other. That keeps other networks and
//! iroh users off a node's bandwidth; it is not a secret from someone who knows the
//! network's name (see `docs/operations.md`).
//!
//! Pins are process-wide ([`trust`]): an endpoint's TLS configuration is fixed when it
//! binds, while pins keep arriving with the address records of peers found later. A pin
//! is trusted for its relay's host only, so a record naming a relay at one host cannot
//! vouch for a certificate presented by another.

#[cfg(feature = "net")]
use std::sync::{Arc, RwLock};
use std::{
    collections::HashSet,
    fmt,
    str::FromStr,
    sync::{LazyLock, Mutex},
};

#[cfg(feature = "net")]
use iroh::{RelayConfig, tls::CaTlsConfig};
use iroh_base::{EndpointId, RelayUrl};
#[cfg(feature = "net")]
use iroh_relay::RelayQuicConfig;
#[cfg(feature = "net")]
use rustls::{
    DigitallySignedStruct, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::CryptoProvider,
    pki_types::{CertificateDer, ServerName, UnixTime},
};
use serde::{Deserialize, Serialize};

const TOKEN_CONTEXT: &str = "mosaic 2026-12-04 v1 relay access token";

/// A relay: where it listens, and the certificate it must present (if pinned).
///
/// However one is obtained (text, an address record, a protocol message), its URL is
/// http or https with a host and no fragment: what the text form holds,
/// so every relay prints as text that parses back to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RelayFields")]
pub struct RelayInfo {
    /// `https://host:port` (or `http://` for a relay without TLS).
    pub url: RelayUrl,
    /// BLAKE3 hash of the relay's TLS certificate (DER); `None`: web PKI.
    pub pin: Option<[u8; 32]>,
    /// The node serving it, if known.
    pub node: Option<EndpointId>,
}

/// A [`RelayInfo`] as it travels (the same fields, in the same order), checked before
/// it makes one: a record from any DHT node can hold any URL.
#[derive(Deserialize)]
struct RelayFields {
    url: RelayUrl,
    pin: Option<[u8; 32]>,
    node: Option<EndpointId>,
}

impl TryFrom<RelayFields> for RelayInfo {
    type Error = String;

    fn try_from(f: RelayFields) -> Result<Self, String> {
        check_url(&f.url).map_err(|why| format!("invalid relay {}: {why}", f.url))?;
        Ok(Self {
            url: f.url,
            pin: f.pin,
            node: f.node,
        })
    }
}

/// What a relay's URL must be: http or https, with a host, and no fragment (in the text
/// form, `#` starts the pin).
fn check_url(url: &RelayUrl) -> Result<(), String> {
    if !matches!(url.scheme(), "https" | "http") {
        return Err(format!("scheme {:?} is not https or http", url.scheme()));
    }
    if url.host_str().is_none() {
        return Err("no host".into());
    }
    if url.fragment().is_some() {
        return Err("a relay URL has no fragment".into());
    }
    Ok(())
}

/// A relay address that does not parse.
#[derive(Debug, thiserror::Error)]
#[error(
    "invalid relay {input:?}: {why} (expected [NODE_ID@]https://HOST:PORT[#PIN], as a node serving a relay prints it)"
)]
pub struct RelayParseError {
    input: String,
    why: String,
}

impl RelayParseError {
    /// Always the user's input.
    pub fn kind(&self) -> mosaic_codec::ErrorKind {
        mosaic_codec::ErrorKind::BadInput
    }
}

impl FromStr for RelayInfo {
    type Err = RelayParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why: String| RelayParseError {
            input: s.to_owned(),
            why,
        };
        let (node, rest) = match s.split_once('@') {
            Some((id, rest)) if !id.contains('/') => {
                let id = id
                    .parse::<EndpointId>()
                    .map_err(|_| err(format!("{id:?} is not a node id")))?;
                (Some(id), rest)
            }
            _ => (None, s),
        };
        let (url, pin) = match rest.split_once('#') {
            Some((u, p)) => (u, Some(p)),
            None => (rest, None),
        };
        let url: RelayUrl = url.parse().map_err(|e| err(format!("{e}")))?;
        check_url(&url).map_err(err)?;
        let pin = match pin {
            None => None,
            Some(p) => {
                let mut out = [0u8; 32];
                if p.len() != 64 {
                    return Err(err(format!("the pin has {} characters, not 64", p.len())));
                }
                // Checked before slicing by byte offsets: any other text is refused, never
                // split inside a character.
                if !p.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(err("the pin is not hexadecimal".into()));
                }
                for (i, b) in out.iter_mut().enumerate() {
                    *b = u8::from_str_radix(&p[2 * i..2 * i + 2], 16)
                        .map_err(|_| err("the pin is not hexadecimal".into()))?;
                }
                Some(out)
            }
        };
        Ok(Self { url, pin, node })
    }
}

impl fmt::Display for RelayInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(node) = &self.node {
            write!(f, "{node}@")?;
        }
        // RelayUrl writes a slash after a bare host; the plain URL reads better. Only that
        // one: a slash ending a longer path, or a query, is part of the URL.
        let url = self.url.as_str();
        let bare =
            self.url.path() == "/" && self.url.query().is_none() && self.url.fragment().is_none();
        f.write_str(if bare {
            url.strip_suffix('/').unwrap_or(url)
        } else {
            url
        })?;
        if let Some(pin) = &self.pin {
            f.write_str("#")?;
            for b in pin {
                write!(f, "{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl RelayInfo {
    /// The relay's port (its QUIC address discovery listens on the same number, UDP).
    pub fn port(&self) -> u16 {
        self.url
            .port_or_known_default()
            .unwrap_or(if self.url.scheme() == "https" {
                443
            } else {
                80
            })
    }

    /// The relay's host, as TLS names it (no trailing dot, lower case).
    pub fn host(&self) -> String {
        host_key(self.url.host_str().unwrap_or_default())
    }

    /// iroh's configuration for dialing this relay as a member of `network`; trusts
    /// its pin first.
    #[cfg(feature = "net")]
    pub fn config(&self, network: &str) -> RelayConfig {
        if let Some(pin) = self.pin {
            trust(self.host(), pin);
        }
        // QUIC address discovery needs TLS: only an https relay offers it.
        let quic = (self.url.scheme() == "https").then(|| RelayQuicConfig::new(self.port()));
        RelayConfig::new(self.url.clone(), quic).with_auth_token(auth_token(network))
    }
}

/// The token a relay of `network` admits: members present it, nobody else knows to.
pub fn auth_token(network: &str) -> String {
    let key = blake3::derive_key(TOKEN_CONTEXT, network.as_bytes());
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// The pin of a certificate: BLAKE3 of its DER encoding.
pub fn cert_pin(der: &[u8]) -> [u8; 32] {
    *blake3::hash(der).as_bytes()
}

fn host_key(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// A host and the pin of the certificate it may present.
#[cfg(feature = "net")]
type HostPin = (String, [u8; 32]);

#[cfg(feature = "net")]
static PINS: LazyLock<RwLock<HashSet<HostPin>>> = LazyLock::new(Default::default);

/// Trusts the certificate with `pin` when `host` presents it, for every endpoint of
/// this process.
#[cfg(feature = "net")]
pub fn trust(host: String, pin: [u8; 32]) {
    if let Ok(mut pins) = PINS.write() {
        pins.insert((host, pin));
    }
}

#[cfg(feature = "net")]
fn trusted(server: &ServerName<'_>, pin: [u8; 32]) -> bool {
    let host = match server {
        ServerName::DnsName(d) => host_key(d.as_ref()),
        ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        _ => return false,
    };
    PINS.read().is_ok_and(|p| p.contains(&(host, pin)))
}

static IN_USE: LazyLock<Mutex<HashSet<(EndpointId, RelayUrl)>>> = LazyLock::new(Default::default);

/// Whether endpoint `id` has not dialed through `url` before (then it has now): adding
/// a relay to an endpoint's map makes it re-evaluate its relays, so it is done once.
pub fn first_use(id: EndpointId, url: &RelayUrl) -> bool {
    IN_USE
        .lock()
        .map(|mut m| m.insert((id, url.clone())))
        .unwrap_or(true)
}

/// TLS trust for relays: a pinned certificate, else the web PKI.
#[cfg(feature = "net")]
pub fn tls_config() -> CaTlsConfig {
    CaTlsConfig::custom_server_cert_verifier(Arc::new(|provider: Arc<CryptoProvider>| {
        let web = CaTlsConfig::default().server_cert_verifier(provider.clone())?;
        Ok(Arc::new(PinnedOrWebPki { web, provider }) as Arc<dyn ServerCertVerifier>)
    }))
}

/// Accepts a certificate whose pin was trusted, else asks the web PKI; handshake
/// signatures are checked either way (they prove the server holds the certificate's
/// key).
#[cfg(feature = "net")]
#[derive(Debug)]
struct PinnedOrWebPki {
    web: Arc<dyn ServerCertVerifier>,
    provider: Arc<CryptoProvider>,
}

#[cfg(feature = "net")]
impl ServerCertVerifier for PinnedOrWebPki {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if trusted(server_name, cert_pin(end_entity)) {
            return Ok(ServerCertVerified::assertion());
        }
        self.web
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_text_round_trips_and_errors_say_why() {
        let pin = "ab".repeat(32);
        let r: RelayInfo = format!("https://10.0.0.1:3340#{pin}").parse().unwrap();
        assert_eq!(r.port(), 3340);
        assert_eq!(r.pin, Some([0xab; 32]));
        assert_eq!(r.to_string(), format!("https://10.0.0.1:3340#{pin}"));
        let plain: RelayInfo = "https://relay.example.org".parse().unwrap();
        assert_eq!((plain.port(), plain.pin, plain.node), (443, None, None));
        let id = iroh_base::SecretKey::from_bytes(&[3; 32]).public();
        let with_node: RelayInfo = format!("{id}@https://10.0.0.1:3340#{pin}").parse().unwrap();
        assert_eq!(with_node.node, Some(id));
        assert_eq!(
            with_node.to_string(),
            format!("{id}@https://10.0.0.1:3340#{pin}")
        );
        for (bad, says) in [
            ("ftp://x:1", "scheme"),
            ("https://x:1#abc", "64"),
            (&format!("https://x:1#{}", "zz".repeat(32)), "hexadecimal"),
            (&format!("https://x:1#{}", "é".repeat(32)), "hexadecimal"),
            ("not a url", "invalid relay"),
            ("xyz@https://x:1", "not a node id"),
        ] {
            let e = bad.parse::<RelayInfo>().unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    /// Found by fuzzing (addr_record): a relay naming its node but with no pin (a web
    /// PKI certificate) printed as text that its own parser refused.
    #[test]
    fn relay_text_with_node_and_no_pin_parses() {
        let text = "ed4928c628d1c2c6eae90338905995612959273a5c63f93636c14614ac8737d1@https://relay.example.org:3340";
        let relay: RelayInfo = text.parse().unwrap();
        assert!(relay.node.is_some());
        assert_eq!(relay.pin, None);
        assert_eq!(relay.url.host_str(), Some("relay.example.org"));
        assert_eq!(relay.to_string(), text);
    }

    /// Found by fuzzing (addr_record): every trailing slash was cut from the printed
    /// URL, so a relay whose URL path ends in one printed as another relay.
    #[test]
    fn relay_url_with_a_path_prints_as_itself() {
        let pin = format!("#{}", "ab".repeat(32));
        for text in [
            "https://u/relay.example.org:3340/".to_owned(),
            format!("https://u/relay.example.org:3340/{pin}"),
            "https://relay.example.org//".to_owned(),
            "http://10.0.0.1:3340/a/?q".to_owned(),
            "https://relay.example.org/?q/".to_owned(),
        ] {
            let relay: RelayInfo = text.parse().unwrap();
            let printed = relay.to_string();
            assert_eq!(
                printed.parse::<RelayInfo>().unwrap(),
                relay,
                "{text} → {printed}"
            );
        }
        // A bare host still prints without the slash RelayUrl adds.
        let bare: RelayInfo = "https://relay.example.org:3340".parse().unwrap();
        assert_eq!(bare.to_string(), "https://relay.example.org:3340");
    }

    #[cfg(feature = "net")]
    #[test]
    fn a_pin_is_trusted_for_its_host_only() {
        let pin = [7u8; 32];
        let info: RelayInfo = format!("https://Relay.Example.org:3340#{}", "07".repeat(32))
            .parse()
            .unwrap();
        let _ = info.config("net");
        let name = |s: &str| ServerName::try_from(s.to_owned()).unwrap();
        assert!(trusted(&name("relay.example.org"), pin));
        assert!(!trusted(&name("other.example.org"), pin));
        assert!(!trusted(&name("relay.example.org"), [8u8; 32]));
        trust("10.0.0.9".into(), pin);
        assert!(trusted(&name("10.0.0.9"), pin));
        assert!(!trusted(&name("10.0.0.8"), pin));
    }

    #[test]
    fn tokens_separate_networks() {
        assert_ne!(auth_token("a"), auth_token("b"));
        assert_eq!(auth_token("a").len(), 64);
    }
}
