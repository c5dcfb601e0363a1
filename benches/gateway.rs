//! Gateway throughput and latency, beside nginx serving the same plaintext from disk in
//! the same run.
//!
//! `cargo bench --bench gateway` (options after `--`: `--mib N`, default 256; `--rounds
//! N`, default 3; `--rss-mib N`, default 2048, 0 to skip). Starts 5 real node processes
//! with their own DHT and uploads one public and one private file of N MiB. Then, per
//! round, for each file:
//! - **cold**: a fresh `mosaic gateway run` (healthy, DHT joined, empty cache, no
//!   connection to any node yet) serves the whole file: time to first byte and MiB/s;
//! - **warm**: the same gateway serves it again, from its cache;
//! - **range**: a 1 MiB range from the middle, warm;
//! - **nginx** (Debian's, started here with `sendfile on`) serves the plaintext file:
//!   whole-file MiB/s, time to first byte, the same 1 MiB range.
//!
//! Finally the gateway streams a `--rss-mib` public file cold and its peak RSS (VmHWM)
//! is reported. Targets (issue 4): warm public GET ≥ 0.5 × nginx; time to first byte
//! ≤ 2 × nginx's warm and ≤ 50 ms cold; peak RSS ≤ 100 MiB.
//!
//! The HTTP client is a plain socket reading into a 1 MiB buffer and discarding it, so
//! both servers are measured the same way.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/http.rs"]
mod http;

use std::{
    fs,
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::{Duration, Instant},
};

use cluster::Cluster;
use http::{GatewayProc, Nginx, put, write_random};

fn main() {
    let mut mib = 256usize;
    let mut rounds = 3usize;
    let mut rss_mib = 2048usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |what: &str| -> usize {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{what} N"))
        };
        match a.as_str() {
            "--mib" => mib = num("--mib"),
            "--rounds" => rounds = num("--rounds"),
            "--rss-mib" => rss_mib = num("--rss-mib"),
            _ => {}
        }
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let cluster = Cluster::start(tmp.path(), 5);
    println!(
        "Mosaic gateway benchmark: 5 nodes on loopback, {mib} MiB files, median of {rounds} rounds"
    );
    cluster.wait_for_nodes();

    let www = tmp.path().join("www");
    fs::create_dir_all(&www).expect("www");
    let file = www.join("bench.bin");
    write_random(&file, mib << 20, b"gateway bench");
    let public = put(&cluster, &file, true);
    let private = put(&cluster, &file, false);
    let nginx = Nginx::start(tmp.path(), &www, 64);
    let len = (mib as u64) << 20;
    let mid = format!("bytes={}-{}", len / 2, len / 2 + (1 << 20) - 1);

    let mut rows: Vec<(String, Vec<f64>, Vec<f64>)> = Vec::new();
    let mut record = |name: &str, m: (f64, f64)| {
        if let Some(r) = rows.iter_mut().find(|r| r.0 == name) {
            r.1.push(m.0);
            r.2.push(m.1);
        } else {
            rows.push((name.to_owned(), vec![m.0], vec![m.1]));
        }
    };
    for round in 1..=rounds {
        for (kind, path) in [
            ("public", format!("/p/{public}")),
            ("private", format!("/f/{private}")),
        ] {
            let cache = tmp.path().join(format!("cache-{kind}-{round}"));
            let gateway = GatewayProc::start(&cluster, &cache, tmp.path(), &[]);
            record(
                &format!("{kind} cold"),
                fetch(gateway.addr, &path, None, len),
            );
            record(
                &format!("{kind} warm"),
                fetch(gateway.addr, &path, None, len),
            );
            record(
                &format!("{kind} 1 MiB range (warm)"),
                fetch(gateway.addr, &path, Some(&mid), 1 << 20),
            );
            drop(gateway);
            let _ = fs::remove_dir_all(&cache);
        }
        record("nginx", fetch(nginx.addr, "/bench.bin", None, len));
        record(
            "nginx 1 MiB range",
            fetch(nginx.addr, "/bench.bin", Some(&mid), 1 << 20),
        );
        println!("  round {round} done");
    }
    println!("{:<32} {:>10} {:>12}", "", "MiB/s", "first byte");
    let mut medians = std::collections::HashMap::new();
    for (name, rates, ttfbs) in &rows {
        let (rate, ttfb) = (median(rates.clone()), median(ttfbs.clone()));
        println!("{name:<32} {rate:>10.1} {:>9.2} ms", ttfb * 1e3);
        medians.insert(name.clone(), (rate, ttfb));
    }
    let (nginx_rate, nginx_ttfb) = medians["nginx"];
    let (warm_rate, warm_ttfb) = medians["public warm"];
    let (_, cold_ttfb) = medians["public cold"];
    let (_, private_cold_ttfb) = medians["private cold"];
    println!(
        "warm public / nginx = {:.2} (target >= 0.50); warm first byte / nginx's = {:.1} (target <= 2); cold first byte {:.1} ms public, {:.1} ms private (target <= 50)",
        warm_rate / nginx_rate,
        warm_ttfb / nginx_ttfb,
        cold_ttfb * 1e3,
        private_cold_ttfb * 1e3,
    );

    if rss_mib > 0 {
        let big = tmp.path().join("big.bin");
        write_random(&big, rss_mib << 20, b"rss");
        let id = put(&cluster, &big, true);
        fs::remove_file(&big).expect("remove");
        let cache = tmp.path().join("cache-rss");
        let gateway = GatewayProc::start(&cluster, &cache, tmp.path(), &[]);
        let (rate, _) = fetch(
            gateway.addr,
            &format!("/p/{id}"),
            None,
            (rss_mib as u64) << 20,
        );
        let status =
            fs::read_to_string(format!("/proc/{}/status", gateway.child.id())).unwrap_or_default();
        let hwm = status
            .lines()
            .find(|l| l.starts_with("VmHWM"))
            .unwrap_or("VmHWM: ?")
            .to_owned();
        println!(
            "streamed {rss_mib} MiB cold at {rate:.1} MiB/s; gateway peak RSS {} (target <= 100 MiB)",
            hwm.trim_start_matches("VmHWM:").trim()
        );
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// One GET over a fresh connection: (MiB/s over the body, seconds to the first body
/// byte). Asserts the body length.
fn fetch(addr: SocketAddr, path: &str, range: Option<&str>, want: u64) -> (f64, f64) {
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n");
    if let Some(r) = range {
        req.push_str(&format!("Range: {r}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("send");
    let mut buf = vec![0u8; 1 << 20];
    let mut head: Option<Vec<u8>> = Some(Vec::new()); // until the head is complete
    let mut body = 0u64;
    let mut first: Option<Duration> = None;
    loop {
        let n = s.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        let mut got = n as u64;
        if let Some(h) = head.as_mut() {
            h.extend_from_slice(&buf[..n]);
            let Some(end) = h.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let status = String::from_utf8_lossy(&h[..end.min(20)]).into_owned();
            assert!(
                status.contains(" 200") || status.contains(" 206"),
                "{path}: {}",
                String::from_utf8_lossy(h)
            );
            got = (h.len() - end - 4) as u64;
            head = None;
        }
        if got > 0 && first.is_none() {
            first = Some(start.elapsed());
        }
        body += got;
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(body, want, "{path}: body length");
    let first = first.expect("a body").as_secs_f64();
    (body as f64 / (1 << 20) as f64 / secs, first)
}
