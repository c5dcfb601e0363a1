//! Put and get throughput on a 5-node loopback cluster, beside the raw iroh-blobs rate
//! between two processes measured in the same run.
//!
//! `cargo bench --bench network` (options after `--`: `--mib N`, default 256; `--rounds
//! N`, default 3). Starts 5 real `mosaic node run` processes with their own DHT, then per
//! round, interleaved:
//! - **raw**: this process fetches one whole column blob from one node over iroh-blobs
//!   (verified streaming, bytes discarded): the transport's rate between two processes;
//! - **put**: `mosaic put FILE` (a separate process: encode + 5 parallel uploads);
//! - **get**: `mosaic get CAP > /dev/null` (fetch k + 1 columns, decode, verify).
//!
//! Targets: get ≥ 0.80 × raw; put ≥ 0.75 × raw × k / n. Rates are plaintext MiB/s over
//! the whole command, start-up and DHT lookups included.

use std::{fs, process::Stdio, time::Instant};

#[path = "support/cluster.rs"]
mod cluster;

use cluster::Cluster;
use iroh::{EndpointAddr, SecretKey};
use iroh_blobs::{get::fsm, protocol::GetRequest};
use mosaic_codec::{Cap, Manifest};
use mosaic_wire::endpoint::{EndpointOptions, bind};

fn main() {
    let mut mib = 256usize;
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
    let cluster = Cluster::start(tmp.path(), 5);
    println!(
        "Mosaic network benchmark: 5 nodes on loopback, {mib} MiB file, median of {rounds} rounds"
    );
    cluster.wait_for_nodes();

    let file = tmp.path().join("bench.bin");
    {
        let mut data = vec![0u8; mib << 20];
        blake3::Hasher::new()
            .update(b"bench")
            .finalize_xof()
            .fill(&mut data);
        fs::write(&file, &data).expect("write input");
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (mut raw, mut put, mut get) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        // put
        let t = Instant::now();
        // Each round's upload gets its own keyring name.
        let name = format!("round-{round}");
        let out = cluster.mosaic(&["put", file.to_str().expect("utf-8"), "--name", &name]);
        let put_secs = t.elapsed().as_secs_f64();
        assert!(
            out.status.success(),
            "put: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cap = String::from_utf8(out.stdout)
            .expect("utf-8")
            .trim()
            .to_owned();
        // get, to /dev/null
        let t = Instant::now();
        let status = cluster
            .command(&["get", &cap])
            .stdout(Stdio::null())
            .status()
            .expect("run get");
        let get_secs = t.elapsed().as_secs_f64();
        assert!(status.success(), "get failed");
        // raw: one column from the node holding it
        let (bytes, raw_secs) = runtime.block_on(raw_fetch(&cluster, &cap));
        let r = (bytes as f64 / (1 << 20) as f64) / raw_secs;
        let p = mib as f64 / put_secs;
        let g = mib as f64 / get_secs;
        println!(
            "  round {round}: raw {r:7.1} MiB/s ({} MiB column)   put {p:7.1} MiB/s   get {g:7.1} MiB/s",
            bytes >> 20
        );
        raw.push(r);
        put.push(p);
        get.push(g);
    }
    let (r, p, g) = (median(raw), median(put), median(get));
    let (k, n) = (3.0, 5.0);
    println!("median: raw iroh-blobs {r:.1} MiB/s; put {p:.1} MiB/s; get {g:.1} MiB/s");
    println!(
        "get / raw = {:.2} (target >= 0.80); put / (raw * k/n) = {:.2} (target >= 0.75)",
        g / r,
        p / (r * k / n)
    );
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Fetches column 0 of the file from whichever node holds it, straight over
/// iroh-blobs; returns (bytes, seconds).
async fn raw_fetch(cluster: &Cluster, cap: &str) -> (u64, f64) {
    let cap: Cap = cap.parse().expect("cap");
    let id = cap.id();
    let endpoint = bind(EndpointOptions {
        secret: SecretKey::from_bytes(&[7u8; 32]),
        bind: "127.0.0.1:0".parse().expect("addr"),
        relays: vec![],
        relay_only: false,
        network: String::new(),
        nameserver: None,
        alpns: vec![],
    })
    .await
    .expect("endpoint");
    let mut manifest: Option<Manifest> = None;
    let mut conns = Vec::new();
    for (_, node_id, port) in &cluster.nodes {
        let addr = EndpointAddr::new(node_id.parse().expect("id"))
            .with_ip_addr(([127, 0, 0, 1], *port).into());
        let conn = endpoint
            .connect(addr, iroh_blobs::ALPN)
            .await
            .expect("connect");
        if manifest.is_none() {
            if let Ok(bytes) = fetch(&conn, id.as_bytes(), None).await {
                manifest = Manifest::from_bytes_verified(&bytes, &id).ok();
            }
        }
        conns.push(conn);
    }
    let manifest = manifest.expect("some node holds the manifest");
    let column = *manifest.columns()[0].as_bytes();
    for conn in &conns {
        let t = Instant::now();
        let mut count = 0u64;
        if fetch(conn, &column, Some(&mut count)).await.is_ok() {
            let secs = t.elapsed().as_secs_f64();
            endpoint.close().await;
            return (count, secs);
        }
    }
    panic!("no node served column 0");
}

/// Fetches a blob; keeps the bytes unless `count` is given (then only counts them).
async fn fetch(
    conn: &iroh::endpoint::Connection,
    hash: &[u8; 32],
    mut count: Option<&mut u64>,
) -> Result<Vec<u8>, String> {
    let request = GetRequest::blob(iroh_blobs::Hash::from_bytes(*hash));
    let connected = fsm::start(conn.clone(), request, Default::default())
        .next()
        .await
        .map_err(|e| e.to_string())?;
    let fsm::ConnectedNext::StartRoot(root) = connected.next().await.map_err(|e| e.to_string())?
    else {
        return Err("unexpected".into());
    };
    let (mut content, _size) = root.next().next().await.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    loop {
        match content.next().await {
            fsm::BlobContentNext::More((more, item)) => {
                content = more;
                if let bao_tree::io::BaoContentItem::Leaf(leaf) = item.map_err(|e| e.to_string())? {
                    match count.as_deref_mut() {
                        Some(c) => *c += leaf.data.len() as u64,
                        None => out.extend_from_slice(&leaf.data),
                    }
                }
            }
            fsm::BlobContentNext::Done(_) => return Ok(out),
        }
    }
}
