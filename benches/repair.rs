//! What keeping files healthy costs, measured: repair throughput beside a plain
//! verified column fetch in the same run, the scrubber's rate and CPU, and the cost of
//! one health check per file.
//!
//! `cargo bench --bench repair` (options after `--`: `--mib N` file size, default 192;
//! `--rounds N`, default 3; `--files N` files for the check cost, default 30;
//! `--scrub-mib N` bytes to scrub, default 512).
//!
//! - **fetch**: one column streamed whole from a holder over iroh-blobs, verified chunk
//!   by chunk (`Client::verify_blob`), bytes dropped: the transport's rate between two
//!   processes, the ceiling for a repair's inputs.
//! - **repair**: what a repairing node does for one missing column, with the same
//!   library calls (`Client::adopt`, `Client::column_stream`, `rebuild_columns`): the
//!   manifest and then column 0, rebuilt from columns 1..=k streamed from their
//!   holders, streamed to a sixth node that holds nothing of the file, which checks it
//!   against the manifest, stores, pins and announces it before it answers. Reported as
//!   MiB/s of rebuilt column (the inputs are k times that).
//! - **check**: `Client::file_health` for each of `--files` files (the node's check: one
//!   DHT lookup of the manifest's holders, one `Status` per holder), one at a time and
//!   [`CHECKS_IN_FLIGHT`] at a time as a node runs them.
//! - **scrub**: a node in this process re-hashes `--scrub-mib` of stored blobs with no
//!   rate limit (`Node::scrub`), beside BLAKE3 over the same bytes in memory; CPU
//!   seconds from `/proc/self/stat` give the CPU share at the default `--scrub-rate`.
//!
//! Nothing is asserted: the numbers go to docs/performance.md and docs/durability.md.

use std::{
    fs,
    sync::Arc,
    time::{Duration, Instant},
};

#[path = "support/cluster.rs"]
mod cluster;

use bytes::Bytes;
use cluster::Cluster;
use iroh::{EndpointId, SecretKey};
use mosaic_client::{Client, ClientOptions, ColumnStream, PUT_PIPE_DEPTH, rebuild_columns};
use mosaic_codec::{Cap, Hash, Manifest};
use mosaic_server::{CHECKS_IN_FLIGHT, HealthOptions, Node, NodeOptions, store::Limits};
use mosaic_wire::dht::RoutingOptions;
use tokio::sync::mpsc;

const MIB: f64 = 1048576.0;

fn main() {
    let mut mib = 192usize;
    let mut rounds = 3usize;
    let mut files = 30usize;
    let mut scrub_mib = 512usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |name: &str| -> usize {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} N"))
        };
        match a.as_str() {
            "--mib" => mib = num("--mib"),
            "--rounds" => rounds = num("--rounds"),
            "--files" => files = num("--files"),
            "--scrub-mib" => scrub_mib = num("--scrub-mib"),
            // `cargo bench` passes `--bench`; ignore what we do not know.
            _ => {}
        }
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let tmp = tempfile::tempdir().expect("tempdir");
    println!(
        "Mosaic repair benchmark: 6 nodes on loopback, {mib} MiB files at 3-of-5, median of {rounds} rounds"
    );
    let cluster = Cluster::start(tmp.path(), 6);
    cluster.wait_for_nodes();
    let client = runtime.block_on(connect(&cluster));

    let (mut fetch, mut repair) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let file = tmp.path().join(format!("r{round}.bin"));
        write(&file, mib << 20, round as u64);
        let cap = put(&cluster, &file, &format!("r{round}"));
        let (f, r, column_mib) = runtime.block_on(repair_round(&client, &cap));
        println!(
            "  round {round}: fetch {f:7.1} MiB/s   repair {r:7.1} MiB/s of rebuilt column ({column_mib:.0} MiB; inputs {:.1} MiB/s)",
            r * 3.0
        );
        fetch.push(f);
        repair.push(r);
    }
    let (f, r) = (median(fetch), median(repair));
    println!(
        "median: verified column fetch {f:.1} MiB/s; repair {r:.1} MiB/s of rebuilt column = {:.2} x fetch (inputs: {:.2} x fetch)",
        r / f,
        3.0 * r / f
    );

    // Health checks: small files, so the time is the lookups and status requests.
    let mut caps = Vec::new();
    for i in 0..files {
        let file = tmp.path().join(format!("c{i}.bin"));
        write(&file, 64 << 10, 1000 + i as u64);
        caps.push(put(&cluster, &file, &format!("c{i}")));
    }
    let (one, parallel) = runtime.block_on(check_cost(&client, &caps));
    println!(
        "health check: {:.1} ms per file one at a time, {:.1} ms per file {CHECKS_IN_FLIGHT} at a time ({} files): \
         a node holding 10 000 files spends about {:.0} s of each 30-minute round checking",
        one * 1000.0,
        parallel * 1000.0,
        caps.len(),
        parallel * 10_000.0
    );
    runtime.block_on(client.close());
    drop(cluster);

    let (scrub, hash, cpu) = runtime.block_on(scrub_rate(tmp.path(), scrub_mib));
    let default_rate = HealthOptions::default().scrub_rate as f64 / MIB;
    println!(
        "scrub: {scrub:.1} MiB/s unthrottled ({cpu:.2} CPU s per GiB), BLAKE3 in memory {hash:.1} MiB/s; \
         at the default {default_rate:.0} MiB/s it uses {:.1} % of one core and a pass over 1 TiB takes {:.1} days",
        100.0 * default_rate / 1024.0 * cpu,
        1024.0 * 1024.0 / default_rate / 86_400.0
    );
}

fn write(path: &std::path::Path, len: usize, seed: u64) {
    let mut data = vec![0u8; len];
    blake3::Hasher::new()
        .update(&seed.to_le_bytes())
        .finalize_xof()
        .fill(&mut data);
    fs::write(path, &data).expect("write input");
}

fn put(cluster: &Cluster, file: &std::path::Path, name: &str) -> String {
    let out = cluster.mosaic(&["put", file.to_str().expect("utf-8"), "--name", name]);
    assert!(
        out.status.success(),
        "put: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

async fn connect(cluster: &Cluster) -> Arc<Client> {
    let seed = format!("repair-bench {} {:?}", std::process::id(), Instant::now());
    Client::connect(ClientOptions {
        secret: SecretKey::from_bytes(blake3::hash(seed.as_bytes()).as_bytes()),
        bind: "127.0.0.1:0".parse().expect("addr"),
        routing: RoutingOptions {
            network: cluster.network.clone(),
            bootstrap: vec![format!("127.0.0.1:{}", cluster.dht0)],
            ..RoutingOptions::default()
        },
        relays: vec![],
        relay_only: false,
        connect_timeout: Duration::from_secs(5),
        stall_timeout: Duration::from_secs(10),
        address_book: None,
    })
    .await
    .expect("client")
}

/// One verified column fetch and one repair of column 0; (fetch MiB/s, repair MiB/s,
/// column MiB).
async fn repair_round(client: &Client, cap: &str) -> (f64, f64, f64) {
    let cap: Cap = cap.parse().expect("cap");
    let id = cap.id();
    let manifest = client.manifest(&id).await.expect("manifest");
    let health = client.file_health(&manifest, &[]).await.expect("health");
    let holder = |column: usize| -> EndpointId {
        health.blobs[column + 1]
            .places
            .first()
            .unwrap_or_else(|| panic!("column {column} has no holder"))
            .node
    };
    let column_len = manifest.layout().column_len();
    let column_mib = column_len as f64 / MIB;

    // fetch: column 4 (not one of the repair's sources) whole, verified.
    let t = Instant::now();
    let got = client
        .verify_blob(holder(4), &manifest.columns()[4])
        .await
        .expect("fetch");
    let fetch = got as f64 / MIB / t.elapsed().as_secs_f64();

    // repair: the node holding nothing of the file adopts the manifest, then column 0.
    let holding: Vec<EndpointId> = health
        .blobs
        .iter()
        .flat_map(|b| b.places.iter().map(|p| p.node))
        .collect();
    let (_, nodes) = client.storage_nodes().await.expect("nodes");
    let target = nodes
        .iter()
        .map(|n| n.id)
        .find(|n| !holding.contains(n))
        .expect("a sixth node holding nothing of the file");
    let owners = [*client.id().as_bytes()];
    let t = Instant::now();
    let (tx, rx) = mpsc::channel(1);
    tx.send(Bytes::copy_from_slice(manifest.as_bytes()))
        .await
        .expect("send");
    drop(tx);
    client
        .adopt(
            target,
            &id,
            None,
            &owners,
            manifest.as_bytes().len() as u64,
            rx,
        )
        .await
        .expect("adopt the manifest");
    let mut sources: Vec<(usize, ColumnStream)> = Vec::new();
    for column in 1..=3 {
        let stream = client
            .column_stream(holder(column), &manifest.columns()[column], column_len)
            .await
            .expect("source");
        sources.push((column, stream));
    }
    let (tx, rx) = mpsc::channel::<Bytes>(PUT_PIPE_DEPTH);
    let (rebuilt, adopted) = tokio::join!(
        rebuild_columns(&manifest, sources, vec![(0, tx)]),
        client.adopt(target, &id, Some(0), &owners, column_len, rx)
    );
    rebuilt.expect("rebuild");
    let stored = adopted.expect("adopt column 0");
    assert_eq!(
        stored.hash,
        manifest.columns()[0],
        "the adopted column's hash"
    );
    let repair = column_mib / t.elapsed().as_secs_f64();
    (fetch, repair, column_mib)
}

/// Seconds per file of `file_health`, sequentially and CHECKS_IN_FLIGHT at a time.
async fn check_cost(client: &Arc<Client>, caps: &[String]) -> (f64, f64) {
    let mut manifests: Vec<Manifest> = Vec::new();
    for cap in caps {
        let cap: Cap = cap.parse().expect("cap");
        manifests.push(client.manifest(&cap.id()).await.expect("manifest"));
    }
    let t = Instant::now();
    for m in &manifests {
        let h = client.file_health(m, &[]).await.expect("health");
        assert_eq!(h.columns_available(), 5, "every column held");
    }
    let count = manifests.len() as f64;
    let one = t.elapsed().as_secs_f64() / count;
    let t = Instant::now();
    let permits = Arc::new(tokio::sync::Semaphore::new(CHECKS_IN_FLIGHT));
    let mut tasks = Vec::new();
    for m in manifests {
        let permit = permits.clone().acquire_owned().await.expect("semaphore");
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let h = client.file_health(&m, &[]).await.expect("health");
            drop(permit);
            h.columns_available()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.expect("task"), 5);
    }
    let parallel = t.elapsed().as_secs_f64() / count;
    (one, parallel)
}

/// This process's user + system CPU seconds (`/proc/self/stat`, in USER_HZ = 100 ticks).
fn cpu_seconds() -> f64 {
    let stat = fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // The command name may hold spaces: fields are counted after its closing ')'.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks = |i: usize| fields[i].parse::<f64>().expect("ticks");
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// (scrub MiB/s, in-memory BLAKE3 MiB/s, CPU seconds per GiB scrubbed).
async fn scrub_rate(dir: &std::path::Path, mib: usize) -> (f64, f64, f64) {
    let node = Node::spawn(NodeOptions {
        listen: "127.0.0.1:0".parse().expect("addr"),
        routing: RoutingOptions {
            network: format!("scrub-bench-{}", std::process::id()),
            port: Some(cluster::free_udp_port()),
            ..RoutingOptions::default()
        },
        limits: Limits {
            sweep_interval: Duration::from_secs(3600),
            ..Limits::new(64 << 30)
        },
        admission: mosaic_server::Admission::Open,
        announce_interval: Duration::from_secs(3600),
        ..NodeOptions::new(dir.join("scrub-node"))
    })
    .await
    .expect("node");
    // 16 MiB blobs, like columns of a 48 MiB file.
    let blob = 16usize << 20;
    let mut data = vec![0u8; blob];
    let mut hashes = Vec::new();
    for i in 0..mib.div_ceil(16) {
        blake3::Hasher::new()
            .update(&(i as u64).to_le_bytes())
            .finalize_xof()
            .fill(&mut data);
        let bytes = Bytes::from(data.clone());
        let chunks: Vec<std::io::Result<Bytes>> = (0..blob)
            .step_by(1 << 20)
            .map(|at| Ok(bytes.slice(at..at + (1 << 20))))
            .collect();
        let (hash, _) = node
            .store()
            .import(node.id(), blob as u64, n0_future::stream::iter(chunks))
            .await
            .expect("import");
        hashes.push(hash);
    }
    let before = node.health().bytes_scrubbed;
    let cpu = cpu_seconds();
    let t = Instant::now();
    node.scrub(u64::MAX).await;
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    let scrubbed = node.health().bytes_scrubbed - before;
    assert_eq!(node.health().corrupt_found, 0, "nothing is corrupt");
    node.shutdown().await;
    // The same bytes hashed in memory, one thread (the scrubber hashes on one task).
    let t = Instant::now();
    for (i, stored) in hashes.iter().enumerate() {
        blake3::Hasher::new()
            .update(&(i as u64).to_le_bytes())
            .finalize_xof()
            .fill(&mut data);
        let h = Hash::from(blake3::hash(&data));
        assert_eq!(h, *stored, "the store keeps what it was given");
    }
    // Less the time to generate the bytes again.
    let with_gen = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for i in 0..hashes.len() {
        blake3::Hasher::new()
            .update(&(i as u64).to_le_bytes())
            .finalize_xof()
            .fill(&mut data);
    }
    let gen_secs = t.elapsed().as_secs_f64();
    let total = (hashes.len() * blob) as f64 / MIB;
    let gib = scrubbed as f64 / (1u64 << 30) as f64;
    (
        scrubbed as f64 / MIB / secs,
        total / (with_gen - gen_secs).max(1e-9),
        cpu / gib,
    )
}
