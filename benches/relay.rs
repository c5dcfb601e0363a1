//! A get through a relay beside a direct get, same cluster, same file, same run.
//!
//! `cargo bench --bench relay` (options after `--`: `--mib N`, default 64; `--rounds N`,
//! default 3). Starts 5 real `mosaic node run` processes on loopback, node 0 serving a
//! relay (`--relay-serve`, self-signed and pinned), stores one file, then per round,
//! interleaved:
//! - **direct**: `mosaic get CAP > /dev/null`;
//! - **relayed**: the same with `--relay-only --relay URL`: every packet from every
//!   holder goes through node 0's relay (TCP, TLS, WebSocket frames, one relay process).
//!
//! Reports plaintext MiB/s over the whole command and the first-byte time (when the
//! first segment arrived, from the client's `--timings`), and the relayed / direct
//! ratios. On loopback this measures what the relay path itself costs (framing, TLS,
//! the relay's CPU), not a real network's latency or bandwidth.

use std::{fs, process::Stdio, time::Instant};

#[path = "support/cluster.rs"]
mod cluster;

use cluster::Cluster;

fn main() {
    let mut mib = 64usize;
    let mut rounds = 3usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--mib" => mib = args.next().and_then(|v| v.parse().ok()).expect("--mib N"),
            "--rounds" => {
                rounds = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--rounds N")
            }
            _ => {}
        }
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    // A TCP port for the relay: a free UDP port of the same number is free for QUIC
    // address discovery too (checked by binding both).
    let port = loop {
        let p = cluster::free_udp_port();
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            break p;
        }
    };
    let cluster = Cluster::start_with(
        tmp.path(),
        5,
        &[(0, vec!["--relay-serve".into(), format!("127.0.0.1:{port}")])],
    );
    println!(
        "Mosaic relay benchmark: 5 nodes on loopback, node 0 relays; {mib} MiB file, median of {rounds} rounds"
    );
    cluster.wait_for_nodes();
    // The relay's pin: the BLAKE3 hash of the certificate node 0 made for itself.
    let cert = fs::read(tmp.path().join("node0").join("relay-cert.der")).expect("relay cert");
    // Named with its node, which makes a relay-only client's lookups.
    let relay = format!(
        "{}@https://127.0.0.1:{port}#{}",
        cluster.nodes[0].1,
        blake3::hash(&cert).to_hex()
    );

    let file = tmp.path().join("bench.bin");
    {
        let mut data = vec![0u8; mib << 20];
        blake3::Hasher::new()
            .update(b"relay bench")
            .finalize_xof()
            .fill(&mut data);
        fs::write(&file, &data).expect("write input");
    }
    let out = cluster.mosaic(&["put", file.to_str().expect("utf-8")]);
    assert!(
        out.status.success(),
        "put: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cap = String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned();

    let get = |relayed: bool| -> (f64, f64) {
        let mut args = vec!["get", cap.as_str(), "--timings"];
        if relayed {
            args.extend(["--relay-only", "--relay", relay.as_str()]);
        }
        let t = Instant::now();
        let out = cluster
            .command(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .expect("run get");
        let secs = t.elapsed().as_secs_f64();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "get (relayed: {relayed}): {err}");
        if relayed {
            let routes: Vec<&str> = err.lines().filter(|l| l.starts_with("route ")).collect();
            assert!(
                !routes.is_empty() && routes.iter().all(|r| r.contains(" relay ")),
                "a relay-only get went direct: {routes:?}"
            );
        }
        (mib as f64 / secs, first_byte_ms(&err))
    };
    let (mut direct, mut relayed) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let d = get(false);
        let r = get(true);
        println!(
            "  round {round}: direct {:7.1} MiB/s, first byte {:6.1} ms   relayed {:7.1} MiB/s, first byte {:6.1} ms",
            d.0, d.1, r.0, r.1
        );
        direct.push(d);
        relayed.push(r);
    }
    let med = |v: &[(f64, f64)], f: fn(&(f64, f64)) -> f64| {
        let mut x: Vec<f64> = v.iter().map(f).collect();
        x.sort_by(|a, b| a.total_cmp(b));
        x[x.len() / 2]
    };
    let (dt, df) = (med(&direct, |x| x.0), med(&direct, |x| x.1));
    let (rt, rf) = (med(&relayed, |x| x.0), med(&relayed, |x| x.1));
    println!(
        "median: direct {dt:.1} MiB/s, first byte {df:.1} ms; relayed {rt:.1} MiB/s, first byte {rf:.1} ms"
    );
    println!(
        "relayed / direct: throughput {:.2}, first-byte time {:.2}",
        rt / dt,
        rf / df
    );
}

/// When the first segment arrived, in ms since the client started (its `--timings`
/// line "first segment from the network": start + took).
fn first_byte_ms(timings: &str) -> f64 {
    timings
        .lines()
        .find(|l| l.contains("first segment from the network"))
        .and_then(|l| {
            let mut it = l.split_whitespace();
            let start: f64 = it.next()?.parse().ok()?;
            it.next(); // "ms"
            let took: f64 = it.next()?.parse().ok()?;
            Some(start + took)
        })
        .expect("a --timings line for the first segment")
}
