//! A storage node's settings: one struct that is both `mosaic node run`'s flags (with
//! their `MOSAIC_*` variables) and the config file's `[node]` table, and the pure
//! function that resolves them into [`NodeOptions`] over the defaults of
//! [`NodeOptions::new`]. The order is the CLI's one order (see [`crate::merge`]).

use std::{collections::HashSet, net::SocketAddr, num::NonZeroU32, path::PathBuf, time::Duration};

use anyhow::{Result, anyhow, bail};
use clap::Args;
use iroh::EndpointId;
use mosaic_server::{Admission, NodeOptions, relay::RelayServeOptions};
use mosaic_wire::limit::Rate;
use serde::Deserialize;

use crate::{
    merge::{self, settings},
    network_settings::Network,
};

settings! {
    /// `mosaic node run`'s flags, and `[node]` in the config file. Unset settings take
    /// the defaults of `NodeOptions::new`.
    #[derive(Debug, Clone, Default, Args, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub struct NodeSettings {
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
        #[serde(deserialize_with = "merge::size")]
        pub capacity: Option<bytesize::ByteSize>,
        /// Bytes each client may pin on this node, e.g. `50GiB` [default: with --open, a
        /// tenth of the capacity but at least 1GiB; otherwise no quota]
        #[arg(long, env = "MOSAIC_QUOTA")]
        #[serde(deserialize_with = "merge::size")]
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
        #[serde(deserialize_with = "merge::text")]
        pub gc_interval: Option<humantime::Duration>,
        /// Accept data from any client.
        #[arg(long, env = "MOSAIC_OPEN", conflicts_with = "allow")]
        pub open: bool,
        /// Accept data only from these client ids (see `mosaic id`), comma separated.
        #[arg(long, env = "MOSAIC_ALLOW", value_delimiter = ',')]
        pub allow: Vec<String>,
        /// How often to re-announce every record on the DHT [default: 10m]
        #[arg(long, env = "MOSAIC_ANNOUNCE_INTERVAL")]
        #[serde(deserialize_with = "merge::text")]
        pub announce_interval: Option<humantime::Duration>,
        /// How often the name records this node keeps (names pointing at files it holds)
        /// are republished to the DHT; BEP 44 lets DHT nodes drop them after 2h
        /// [default: 1h]
        #[arg(long, env = "MOSAIC_REPUBLISH_INTERVAL")]
        #[serde(deserialize_with = "merge::text")]
        pub republish_interval: Option<humantime::Duration>,
        /// How often each file this node holds part of is checked: are its columns' holders
        /// announced, reachable, still holding them? [default: 30m]
        #[arg(long, env = "MOSAIC_CHECK_INTERVAL")]
        #[serde(deserialize_with = "merge::text")]
        pub check_interval: Option<humantime::Duration>,
        /// How long a column may be missing before it is rebuilt, so a node that restarts
        /// is not replaced [default: 1h]
        #[arg(long, env = "MOSAIC_REPAIR_GRACE")]
        #[serde(deserialize_with = "merge::text")]
        pub repair_grace: Option<humantime::Duration>,
        /// How much longer each next holder in a file's repair ranking waits before it
        /// takes over from one that failed [default: 3 × --check-interval]
        #[arg(long, env = "MOSAIC_REPAIR_BACKOFF")]
        #[serde(deserialize_with = "merge::text")]
        pub repair_backoff: Option<humantime::Duration>,
        /// How often every stored blob is re-hashed to find bit rot [default: 30d]
        #[arg(long, env = "MOSAIC_SCRUB_INTERVAL")]
        #[serde(deserialize_with = "merge::text")]
        pub scrub_interval: Option<humantime::Duration>,
        /// Bytes per second the scrubber reads at most, e.g. `16MiB` [default: 16MiB]
        #[arg(long, env = "MOSAIC_SCRUB_RATE")]
        #[serde(deserialize_with = "merge::size")]
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
        #[serde(deserialize_with = "merge::size")]
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
    }
}

/// What `mosaic node run` runs, resolved: the node's options, and the two settings
/// that are not the node's own (its metrics address and embedded gateway).
#[derive(Debug, Clone)]
pub struct NodePlan {
    /// The node.
    pub options: NodeOptions,
    /// Where to serve `/metrics` and `/health`.
    pub metrics: Option<SocketAddr>,
    /// Where to serve the embedded gateway.
    pub gateway: Option<SocketAddr>,
}

impl NodeSettings {
    /// These settings (the flags) over `file`'s. `open` and `allow` are one choice, who
    /// may store: a layer that makes it replaces the lower layer's whole.
    pub fn over(self, mut file: Self) -> Self {
        if self.open || !self.allow.is_empty() {
            file.open = false;
            file.allow.clear();
        }
        merge::Merge::or(self, file)
    }

    /// Resolves these settings (flags already laid over the file) on the network
    /// settings `net`, filling what is unset from [`NodeOptions::new`] with the data
    /// directory `default_dir`. Pure: reads nothing but its arguments.
    pub fn resolve(self, net: &Network, default_dir: PathBuf) -> Result<NodePlan> {
        let d = NodeOptions::new(self.data_dir.unwrap_or(default_dir));
        let listen = self.listen.unwrap_or(d.listen);
        let capacity = self.capacity.map_or(d.limits.capacity, |b| b.as_u64());

        let check_interval = self
            .check_interval
            .map_or(d.health.check_interval, Into::into);
        if check_interval.is_zero() {
            bail!("--check-interval must be longer than zero");
        }
        let mut health = d.health;
        health.check_interval = check_interval;
        health.policy.grace = self.repair_grace.map_or(d.health.policy.grace, Into::into);
        // The back-off scales with the check interval unless it is given.
        health.policy.backoff = self.repair_backoff.map_or(check_interval * 3, Into::into);
        health.scrub_interval = self
            .scrub_interval
            .map(Duration::from)
            .filter(|i| !i.is_zero())
            .unwrap_or(d.health.scrub_interval);
        health.scrub_rate = self
            .scrub_rate
            .map(|r| r.as_u64())
            .filter(|r| *r > 0)
            .unwrap_or(d.health.scrub_rate);

        let gc_high = self.gc_high.map_or(d.limits.gc_high, percent);
        let gc_low = self.gc_low.map_or(d.limits.gc_low, percent);
        if !(0.0..=gc_high).contains(&gc_low) || gc_high > 1.0 || gc_high <= 0.0 {
            bail!(
                "garbage collection runs from --gc-high down to --gc-low (percent of the capacity): need 0 <= gc_low ({}) <= gc_high ({}) <= 100, gc_high > 0",
                gc_low * 100.0,
                gc_high * 100.0
            );
        }

        let admission = if self.open && self.allow.is_empty() {
            Admission::Open
        } else if !self.allow.is_empty() {
            Admission::Allow(parse_ids(&self.allow)?)
        } else {
            bail!(
                "say who may store on this node: --open (anyone) or --allow ID,... (see `mosaic id`)"
            );
        };
        // On a node open to anyone, one stranger may not take it all.
        let quota = match (self.quota, &admission) {
            (Some(q), _) => Some(q.as_u64()),
            (None, Admission::Open) => Some(open_quota(capacity)),
            (None, Admission::Allow(_)) => d.limits.quota,
        };

        let mut routing = net.routing.clone();
        routing.port = Some(
            self.dht_listen
                .map_or(d.routing.port.unwrap_or(0), |a| a.port()),
        );

        let relay_serve = match self.relay_serve {
            None => None,
            Some(bind) => Some(RelayServeOptions {
                bind,
                url: match self.relay_url {
                    None => None,
                    Some(u) => Some(u.parse().map_err(|e| {
                        anyhow!("--relay-url {u:?} is not a URL (https://HOST:PORT): {e}")
                    })?),
                },
                tls: match (self.relay_tls_cert, self.relay_tls_key) {
                    (Some(c), Some(k)) => Some((c, k)),
                    (None, None) => None,
                    _ => bail!("--relay-tls-cert and --relay-tls-key go together"),
                },
                rate: self
                    .relay_rate
                    .and_then(|r| NonZeroU32::new(r.as_u64().min(u64::from(u32::MAX)) as u32)),
            }),
        };

        let mut peer_limits = d.peer_limits.clone();
        if let Some(rate) = self.peer_rate {
            if !rate.is_finite() || rate < 0.0 {
                bail!("--peer-rate {rate} is not a rate: give cost units a second, 0 for no limit");
            }
            peer_limits.rate = Rate {
                per_second: rate,
                // Four seconds' worth at once.
                burst: (rate * 4.0).clamp(1.0, f64::from(u32::MAX)) as u32,
            };
        }
        if let Some(uploads) = self.peer_uploads {
            peer_limits.uploads = uploads;
        }

        let options = NodeOptions {
            listen,
            public_addrs: self.public_addr,
            routing,
            limits: mosaic_server::store::Limits {
                capacity,
                quota,
                gc_high,
                gc_low,
                sweep_interval: self.gc_interval.map_or(d.limits.sweep_interval, Into::into),
            },
            admission,
            peer_limits,
            relays: net.relays.clone(),
            relay_only: net.relay_only,
            relay_serve,
            dht_client: self.dht_client,
            announce_interval: self
                .announce_interval
                .map_or(d.announce_interval, Into::into),
            republish_interval: self
                .republish_interval
                .map_or(d.republish_interval, Into::into),
            health,
            ..d
        };
        Ok(NodePlan {
            options,
            metrics: self.metrics,
            gateway: self.gateway,
        })
    }
}

fn percent(p: u8) -> f64 {
    f64::from(p) / 100.0
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

/// A tenth of the capacity, but at least 1 GiB (at most the capacity): what one client
/// may pin on a node open to anyone, unless `--quota` says otherwise.
fn open_quota(capacity: u64) -> u64 {
    (capacity / 10).max(1 << 30).min(capacity)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use clap::Parser;
    use mosaic_server::{Admission, NodeOptions};

    use super::{NodeSettings, open_quota};
    use crate::network_settings::{Network, NetworkSettings};

    /// A client id to allow (any valid one).
    const ID: &str = "ae58ff8833241ac82d6ff7611046ed67b5072d142c588d0063e942d9a75502b6";

    #[derive(Debug, Parser)]
    struct Flags {
        #[command(flatten)]
        node: NodeSettings,
    }

    fn flags(args: &[&str]) -> NodeSettings {
        Flags::try_parse_from(std::iter::once("node").chain(args.iter().copied()))
            .unwrap()
            .node
    }

    fn file(toml: &str) -> NodeSettings {
        toml::from_str(toml).unwrap()
    }

    fn net() -> Network {
        NetworkSettings::default().resolve().unwrap()
    }

    fn resolve(flag_args: &[&str], file_text: &str) -> NodeOptions {
        flags(flag_args)
            .over(file(file_text))
            .resolve(&net(), "/default".into())
            .unwrap()
            .options
    }

    #[test]
    fn every_unset_setting_is_the_default_of_node_options() {
        let resolved = resolve(&["--allow", ID], "");
        let mut defaults = NodeOptions::new("/default");
        defaults.admission = resolved.admission.clone();
        assert!(matches!(resolved.admission, Admission::Allow(ref ids) if ids.len() == 1));
        assert_eq!(format!("{resolved:?}"), format!("{defaults:?}"));
    }

    #[test]
    fn a_flag_wins_over_the_file_and_the_file_over_the_default() {
        let file_text = r#"
            allow = ["ae58ff8833241ac82d6ff7611046ed67b5072d142c588d0063e942d9a75502b6"]
            capacity = "3GiB"
            announce_interval = "7m"
            public_addr = ["192.0.2.1:4919"]
            gc_high = 70
            gc_low = 60
            peer_uploads = 5
            dht_client = true
        "#;
        let from_file = resolve(&[], file_text);
        assert_eq!(from_file.limits.capacity, 3 << 30);
        assert_eq!(from_file.announce_interval, Duration::from_secs(420));
        assert_eq!(
            from_file.public_addrs,
            vec!["192.0.2.1:4919".parse().unwrap()]
        );
        assert_eq!(
            (from_file.limits.gc_high, from_file.limits.gc_low),
            (0.7, 0.6)
        );
        assert_eq!(from_file.peer_limits.uploads, 5);
        assert!(from_file.dht_client);

        let from_flags = resolve(
            &[
                "--capacity",
                "5GiB",
                "--announce-interval",
                "1m",
                "--public-addr",
                "192.0.2.2:1,192.0.2.3:2",
                "--gc-high",
                "95",
                "--peer-uploads",
                "9",
            ],
            file_text,
        );
        assert_eq!(from_flags.limits.capacity, 5 << 30);
        assert_eq!(from_flags.announce_interval, Duration::from_secs(60));
        assert_eq!(from_flags.public_addrs.len(), 2);
        // Each setting is layered on its own: the file's gc_low stays.
        assert_eq!(
            (from_flags.limits.gc_high, from_flags.limits.gc_low),
            (0.95, 0.6)
        );
        assert_eq!(from_flags.peer_limits.uploads, 9);
        // The defaults stay where neither says anything.
        let d = NodeOptions::new("/default");
        assert_eq!(from_flags.republish_interval, d.republish_interval);
        assert_eq!(from_flags.listen, d.listen);
    }

    #[test]
    fn who_may_store_is_one_choice_the_flag_replaces_whole() {
        let allow_file = format!("allow = [\"{ID}\"]");
        assert_eq!(resolve(&["--open"], &allow_file).admission, Admission::Open);
        assert!(matches!(
            resolve(&["--allow", ID], "open = true").admission,
            Admission::Allow(_)
        ));
        assert_eq!(resolve(&[], "open = true").admission, Admission::Open);
        let none = flags(&[]).over(file("")).resolve(&net(), "/d".into());
        assert!(none.unwrap_err().to_string().contains("--open"));
    }

    #[test]
    fn an_open_node_has_a_quota_unless_one_is_given() {
        let open = resolve(&["--open", "--capacity", "100GiB"], "");
        assert_eq!(open.limits.quota, Some(10 << 30));
        assert_eq!(open_quota(512 << 20), 512 << 20);
        assert_eq!(open_quota(4 << 30), 1 << 30);
        let given = resolve(&["--open", "--quota", "2GiB"], "");
        assert_eq!(given.limits.quota, Some(2 << 30));
        assert_eq!(resolve(&["--allow", ID], "").limits.quota, None);
    }

    #[test]
    fn derived_defaults_follow_what_they_derive_from() {
        let o = resolve(
            &[
                "--open",
                "--check-interval",
                "10m",
                "--dht-listen",
                "0.0.0.0:7000",
            ],
            "",
        );
        assert_eq!(o.health.check_interval, Duration::from_secs(600));
        assert_eq!(o.health.policy.backoff, Duration::from_secs(1800));
        assert_eq!(o.routing.port, Some(7000));
        // Zero scrub settings mean "the default", not "never" or "as fast as possible".
        let z = resolve(
            &["--open", "--scrub-interval", "0s", "--scrub-rate", "0B"],
            "",
        );
        let d = NodeOptions::new("/default");
        assert_eq!(z.health.scrub_interval, d.health.scrub_interval);
        assert_eq!(z.health.scrub_rate, d.health.scrub_rate);
        let r = resolve(&["--open", "--peer-rate", "10"], "");
        assert_eq!(
            (r.peer_limits.rate.per_second, r.peer_limits.rate.burst),
            (10.0, 40)
        );
    }

    #[test]
    fn bad_combinations_and_values_are_refused_with_the_setting_named() {
        let err = |args: &[&str], text: &str| {
            flags(args)
                .over(file(text))
                .resolve(&net(), "/d".into())
                .unwrap_err()
                .to_string()
        };
        assert!(err(&["--open", "--gc-high", "50", "--gc-low", "60"], "").contains("gc_low"));
        assert!(err(&["--open", "--check-interval", "0s"], "").contains("--check-interval"));
        assert!(err(&["--open"], "peer_rate = -1.0").contains("--peer-rate"));
        assert!(err(&["--allow", "nobody"], "").contains("mosaic id"));
        let text = "relay_serve = \"0.0.0.0:3340\"\nrelay_tls_cert = \"/c.pem\"";
        assert!(err(&["--open"], text).contains("--relay-tls-key"));
        // The file is read with the flags' own parsers, and names the key.
        let bad = toml::from_str::<NodeSettings>("capacity = \"lots\"").unwrap_err();
        assert!(bad.to_string().contains("capacity"), "{bad}");
        assert!(bad.to_string().contains("500GiB"), "{bad}");
        let bytes = toml::from_str::<NodeSettings>("capacity = 4096").unwrap();
        assert_eq!(bytes.capacity, Some(bytesize::ByteSize(4096)));
        assert!(toml::from_str::<NodeSettings>("capacty = \"1GiB\"").is_err());
    }

    /// The environment lies between the flag and the file. Variables are process-wide,
    /// so this runs in a child process of the test binary with one variable set.
    #[test]
    fn the_environment_lies_between_flag_and_file() {
        const CHILD: &str = "MOSAIC_SETTINGS_TEST_CHILD";
        if std::env::var_os(CHILD).is_some() {
            assert_eq!(
                resolve(&["--open"], "capacity = \"3GiB\"").limits.capacity,
                2 << 30
            );
            assert_eq!(
                resolve(&["--open", "--capacity", "1GiB"], "")
                    .limits
                    .capacity,
                1 << 30
            );
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "node_settings::tests::the_environment_lies_between_flag_and_file",
                "--exact",
                "--nocapture",
            ])
            .env(CHILD, "1")
            .env("MOSAIC_CAPACITY", "2GiB")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("1 passed"), "the child ran no test: {text}");
    }
}
