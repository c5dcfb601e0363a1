//! Host names wherever Mosaic accepts an address, and bootstrap lists published in DNS.
//!
//! Names are resolved by iroh's pure-Rust stub resolver, which reads `/etc/hosts` and
//! `/etc/resolv.conf` itself: the static `FROM scratch` image has no NSS, so the C
//! library's resolver cannot be relied on. There is no fallback to public resolvers (a
//! node never sends DNS queries anywhere its operator did not configure).
//!
//! A bootstrap entry is `host:port`, `ip:port`, or `dns:NAME`: the TXT records of NAME,
//! each holding `host:port` entries separated by spaces or commas (a host name inside
//! is resolved in turn, not another `dns:`). Entries are resolved once, when a node or
//! client starts.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use iroh::dns::{DnsResolver, NameserverConfig};
use mosaic_codec::ErrorKind;

/// How long one DNS lookup may take.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// A name that could not be resolved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// Not `host:port`.
    #[error("{input:?} is not HOST:PORT or dns:NAME")]
    Malformed {
        /// What was given.
        input: String,
    },
    /// The lookup failed or found nothing.
    #[error(
        "cannot resolve {name:?}: {why} (check /etc/hosts and /etc/resolv.conf, or --dns-server)"
    )]
    Lookup {
        /// The name.
        name: String,
        /// The resolver's answer.
        why: String,
    },
}

impl HostError {
    /// A malformed entry is the user's; a failed lookup the network's.
    pub fn kind(&self) -> ErrorKind {
        match self {
            HostError::Malformed { .. } => ErrorKind::BadInput,
            HostError::Lookup { .. } => ErrorKind::Network,
        }
    }
}

/// A resolver asking `nameserver` (UDP), or the system's configuration if `None`.
pub fn resolver(nameserver: Option<SocketAddr>) -> DnsResolver {
    match nameserver {
        Some(ns) => DnsResolver::builder()
            .add_nameserver_config(NameserverConfig::udp(ns.ip()).with_port(ns.port()))
            .disable_fallback()
            .build(),
        None => DnsResolver::builder()
            .with_system_defaults()
            .disable_fallback()
            .build(),
    }
}

/// The socket addresses of `host:port` (an IP address is returned as is).
pub async fn resolve(dns: &DnsResolver, entry: &str) -> Result<Vec<SocketAddr>, HostError> {
    if let Ok(addr) = entry.parse::<SocketAddr>() {
        return Ok(vec![addr]);
    }
    let malformed = || HostError::Malformed {
        input: entry.to_owned(),
    };
    let (host, port) = entry.rsplit_once(':').ok_or_else(malformed)?;
    let port: u16 = port.parse().map_err(|_| malformed())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(malformed());
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    // IPv4 first, IPv6 only if there is none: asking for both would wait for the
    // slower answer (a hosts-file name has no AAAA, and a server that never answers
    // costs the whole timeout). The DHT is IPv4 anyway.
    let ips: Vec<IpAddr> = match dns.lookup_ipv4(host, LOOKUP_TIMEOUT).await {
        Ok(v4) => v4.collect(),
        Err(v4_err) => dns
            .lookup_ipv6(host, LOOKUP_TIMEOUT)
            .await
            .map_err(|_| HostError::Lookup {
                name: host.to_owned(),
                why: v4_err.to_string(),
            })?
            .collect(),
    };
    if ips.is_empty() {
        return Err(HostError::Lookup {
            name: host.to_owned(),
            why: "no address".into(),
        });
    }
    Ok(ips
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect())
}

/// The `host:port` entries published in the TXT records of `name`.
pub async fn txt_entries(dns: &DnsResolver, name: &str) -> Result<Vec<String>, HostError> {
    let lookup = |why: String| HostError::Lookup {
        name: name.to_owned(),
        why,
    };
    let records = dns
        .lookup_txt(name, LOOKUP_TIMEOUT)
        .await
        .map_err(|e| lookup(e.to_string()))?;
    let mut out = Vec::new();
    for record in records {
        // A TXT record is one or more strings; a long list may be split across them.
        let text: String = record
            .iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        out.extend(
            text.split(|c: char| c.is_whitespace() || c == ',')
                .filter(|e| !e.is_empty())
                .map(str::to_owned),
        );
    }
    if out.is_empty() {
        return Err(lookup("no TXT record with HOST:PORT entries".into()));
    }
    Ok(out)
}

/// Every bootstrap entry resolved to IP socket addresses (`dns:` names expanded).
/// Entries that fail are reported together; the rest are kept only if at least one
/// resolved, so one stale name in a list does not stop a node from joining.
pub async fn resolve_bootstrap(
    dns: &DnsResolver,
    entries: &[String],
) -> Result<Vec<SocketAddr>, HostError> {
    let mut out = Vec::new();
    let mut first_error = None;
    for entry in entries {
        let expanded = match entry.strip_prefix("dns:") {
            Some(name) => match txt_entries(dns, name).await {
                Ok(e) => e,
                Err(e) => {
                    first_error.get_or_insert(e);
                    continue;
                }
            },
            None => vec![entry.clone()],
        };
        for e in expanded {
            match resolve(dns, &e).await {
                Ok(addrs) => out.extend(addrs),
                Err(err) => {
                    tracing::warn!("bootstrap entry {e:?}: {err}");
                    first_error.get_or_insert(err);
                }
            }
        }
    }
    match (out.is_empty(), first_error) {
        (true, Some(e)) => Err(e),
        _ => {
            out.dedup();
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ip_entries_need_no_lookup_and_bad_ones_say_why() {
        let dns = resolver(Some("127.0.0.1:9".parse().unwrap()));
        assert_eq!(
            resolve(&dns, "10.1.2.3:6881").await.unwrap(),
            vec!["10.1.2.3:6881".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(
            resolve(&dns, "[::1]:7").await.unwrap(),
            vec!["[::1]:7".parse::<SocketAddr>().unwrap()]
        );
        for bad in ["nohost", "host:notaport", ":5"] {
            let e = resolve(&dns, bad).await.unwrap_err();
            assert!(matches!(e, HostError::Malformed { .. }), "{bad}: {e}");
        }
    }
}
