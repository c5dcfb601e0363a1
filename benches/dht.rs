//! The DHT at network sizes Mosaic has to reach: real n0-mainline DHT nodes (Mosaic's
//! `Routing`, server mode, its own server limits) in this process on loopback, each
//! with its own UDP socket, and one client-mode node doing what `mosaic get` does.
//!
//! `cargo bench --bench dht` (options after `--`: `--sizes 20,100,500`; `--files N`,
//! default 20; `--reannounce N` keys, default 100). Per network size:
//! - **join**: wall time for all nodes to bootstrap (in batches, from node 0);
//! - **announce**: each file's 5 holders announce the file id, and each column's
//!   holder its column (what nodes do today): latency percentiles, DHT datagrams per
//!   announce (received by every node, client included);
//! - **lookup**: the client finds each file's holders: time to the first holder and to
//!   the lookup's end, and whether all 5 were found;
//! - **get, one lookup**: holders of the file, then their 5 address records: wall time
//!   and datagrams (what a first get costs; a repeat get skips the address lookups);
//! - **get, per column** (before): holders of the manifest, then of each of the 5
//!   columns, then the addresses: the same figures;
//! - **re-announce**: one node refreshes `--reannounce` keys 8 at a time (as the
//!   announcer does): keys/s and datagrams per key, to extend to a million blobs
//!   (docs/scale.md).
//!
//! - **names** (a second table): a client publishes each of `--files` names twice (a
//!   BEP 44 record, then an update with a higher sequence number) and another node
//!   resolves it right after each publish: latencies, whether the resolve saw the
//!   update at once, datagrams per operation.
//!
//! Nothing is asserted: the table is the result. Datagram counts come from each node's
//! receive hook, so they cover requests and answers alike.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use iroh::SecretKey;
use mosaic_codec::{
    Cap, Hash, PublicId,
    name::{NameKey, Pointer},
};
use mosaic_wire::{
    dht::{Routing, RoutingOptions},
    record::{SignedRecord, SigningKey},
};
use n0_future::StreamExt;

const HOLDERS: usize = 5;

fn main() {
    let mut sizes = vec![20usize, 100, 500];
    let mut files = 20usize;
    let mut reannounce = 100usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--sizes" => {
                sizes = args
                    .next()
                    .expect("--sizes LIST")
                    .split(',')
                    .map(|s| s.parse().expect("a number"))
                    .collect()
            }
            "--files" => files = args.next().expect("--files N").parse().expect("a number"),
            "--reannounce" => {
                reannounce = args
                    .next()
                    .expect("--reannounce N")
                    .parse()
                    .expect("a number")
            }
            "--bench" => {}
            other => panic!("unknown option {other}"),
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    println!(
        "| nodes | join s | announce p50/p99 ms | dgrams/announce | lookup first p50/p99 ms | lookup end p50/p99 ms | all holders found | get (1 lookup) p50 ms, dgrams | get (per column) p50 ms, dgrams | re-announce keys/s, dgrams/key |"
    );
    println!("|---:|---:|---|---:|---|---|---:|---|---|---|");
    let mut names = Vec::new();
    for n in sizes {
        names.push(rt.block_on(run(n, files, reannounce)));
    }
    println!();
    println!(
        "| nodes | name publish p50/p99 ms | resolve p50/p99 ms | resolves that saw the latest record | dgrams per publish+resolve |"
    );
    println!("|---:|---|---|---:|---:|");
    for row in names {
        println!("{row}");
    }
}

fn options(network: &str, server: bool, bootstrap: Vec<String>) -> RoutingOptions {
    RoutingOptions {
        network: network.into(),
        bootstrap,
        server,
        ..RoutingOptions::default()
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn run(n: usize, files: usize, reannounce: usize) -> String {
    let network = format!("bench-{}-{n}", std::process::id());
    // Start the network: node 0 alone, the rest in batches that bootstrap from it.
    let started = Instant::now();
    let first = Routing::spawn(options(&network, true, vec![]), Some(&key(&network, 0)))
        .expect("node 0 starts");
    let boot = format!(
        "127.0.0.1:{}",
        first.local_addr().await.expect("an address").port()
    );
    let mut nodes = vec![first];
    while nodes.len() < n {
        let batch: Vec<Routing> = (nodes.len()..n.min(nodes.len() + 25))
            .map(|i| {
                Routing::spawn(
                    options(&network, true, vec![boot.clone()]),
                    Some(&key(&network, i)),
                )
                .expect("a node starts")
            })
            .collect();
        n0_future::join_all(batch.iter().map(|r| r.bootstrapped())).await;
        nodes.extend(batch);
    }
    let join = started.elapsed();
    // Every node publishes its address record, as storage nodes do at start.
    for chunk in nodes.chunks(16) {
        n0_future::join_all(chunk.iter().enumerate().map(|(i, r)| async move {
            let addr = SocketAddr::from(([127, 0, 0, 1], 10_000 + i as u16));
            r.publish_addrs(&mosaic_wire::dht::PeerAddr {
                direct: vec![addr],
                relay: None,
            })
            .await
        }))
        .await;
    }
    let total = |extra: &Routing| -> u64 {
        nodes.iter().map(|r| r.datagrams_received()).sum::<u64>() + extra.datagrams_received()
    };

    // Announce: per file, its id by 5 holders and each column by its holder.
    let mut plan = Vec::new();
    for f in 0..files {
        let id = Hash::of(format!("{network} file {f}").as_bytes());
        let columns: Vec<Hash> = (0..HOLDERS)
            .map(|j| Hash::of(format!("{network} file {f} column {j}").as_bytes()))
            .collect();
        let holders: Vec<usize> = (0..HOLDERS).map(|j| (f * 7 + j * 13 + 1) % n).collect();
        plan.push((id, columns, holders));
    }
    let client = Routing::spawn(options(&network, false, vec![boot.clone()]), None)
        .expect("the client starts");
    client.bootstrapped().await;
    let mut announce_ms = Vec::new();
    let before = total(&client);
    let mut announces = 0u64;
    for (id, columns, holders) in &plan {
        let jobs: Vec<(usize, Hash)> = holders
            .iter()
            .map(|&h| (h, *id))
            .chain(holders.iter().zip(columns).map(|(&h, c)| (h, *c)))
            .collect();
        for chunk in jobs.chunks(8) {
            let times = n0_future::join_all(chunk.iter().map(|(h, key)| {
                let node = &nodes[*h];
                async move {
                    let t = Instant::now();
                    let ok = node.announce_blob(key).await.is_ok();
                    (ms(t.elapsed()), ok)
                }
            }))
            .await;
            for (t, _) in times {
                announce_ms.push(t);
                announces += 1;
            }
        }
    }
    let per_announce = (total(&client) - before) as f64 / announces as f64;

    // Lookups and gets, one at a time so datagrams can be attributed.
    let (mut first_ms, mut end_ms, mut found_all) = (Vec::new(), Vec::new(), 0usize);
    let (mut new_ms, mut new_dgrams, mut old_ms, mut old_dgrams) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (id, columns, _) in &plan {
        // Lookup alone.
        let t = Instant::now();
        let mut stream = client.providers_stream(id).await.expect("a lookup");
        let mut found = Vec::new();
        let mut first = None;
        while let Some(h) = stream.next().await {
            first.get_or_insert_with(|| t.elapsed());
            found.push(h);
        }
        end_ms.push(ms(t.elapsed()));
        if let Some(f) = first {
            first_ms.push(ms(f));
        }
        if found.len() >= HOLDERS {
            found_all += 1;
        }
        // A get today: the holders, then their addresses.
        let d0 = total(&client);
        let t = Instant::now();
        let holders = client.providers(id).await.unwrap_or_default();
        n0_future::join_all(holders.iter().map(|h| client.resolve(h))).await;
        new_ms.push(ms(t.elapsed()));
        new_dgrams.push((total(&client) - d0) as f64);
        // A get before: the manifest's holders, each column's, then the addresses.
        let d0 = total(&client);
        let t = Instant::now();
        let mut all = client.providers(id).await.unwrap_or_default();
        for list in n0_future::join_all(columns.iter().map(|c| client.providers(c))).await {
            all.extend(list.unwrap_or_default());
        }
        all.sort();
        all.dedup();
        n0_future::join_all(all.iter().map(|h| client.resolve(h))).await;
        old_ms.push(ms(t.elapsed()));
        old_dgrams.push((total(&client) - d0) as f64);
    }

    // Re-announce: one node refreshes many keys, 8 at a time.
    let keys: Vec<Hash> = (0..reannounce)
        .map(|i| Hash::of(format!("{network} held {i}").as_bytes()))
        .collect();
    let node = &nodes[n / 2];
    let d0 = total(&client);
    let t = Instant::now();
    for chunk in keys.chunks(8) {
        n0_future::join_all(chunk.iter().map(|k| node.announce_blob(k))).await;
    }
    let rate = keys.len() as f64 / t.elapsed().as_secs_f64();
    let per_key = (total(&client) - d0) as f64 / keys.len() as f64;

    // Names: each published, then updated, by the client; another node resolves it
    // right after each publish.
    let (mut publish_ms, mut resolve_ms, mut latest) = (Vec::new(), Vec::new(), 0usize);
    let d0 = total(&client);
    for f in 0..files {
        let signer = SigningKey::from_bytes(
            blake3::hash(format!("{network} name {f}").as_bytes()).as_bytes(),
        );
        let name = NameKey(signer.verifying_key().to_bytes());
        for (seq, target) in [(1i64, plan[f].0), (2, plan[(f + 1) % files].0)] {
            let value = Pointer {
                target: Cap::Public(PublicId { id: target }),
                path: String::new(),
            }
            .encode(&name, None, [0; 24])
            .expect("a small record");
            let record = SignedRecord::sign(&signer, seq, value).expect("a small record");
            let t = Instant::now();
            let _ = client.publish_record(&record).await;
            publish_ms.push(ms(t.elapsed()));
            let reader = &nodes[(f * 11 + 3) % n];
            let t = Instant::now();
            let got = reader.resolve_record(&name.0).await.ok().flatten();
            resolve_ms.push(ms(t.elapsed()));
            if got.is_some_and(|r| r.seq == seq) {
                latest += 1;
            }
        }
    }
    let per_name_op = (total(&client) - d0) as f64 / (2 * files) as f64;
    let names = format!(
        "| {n} | {:.1} / {:.1} | {:.1} / {:.1} | {latest}/{} | {per_name_op:.0} |",
        pct(&mut publish_ms.clone(), 0.5),
        pct(&mut publish_ms, 0.99),
        pct(&mut resolve_ms.clone(), 0.5),
        pct(&mut resolve_ms, 0.99),
        2 * files,
    );

    println!(
        "| {n} | {:.1} | {:.0} / {:.0} | {:.0} | {:.1} / {:.1} | {:.1} / {:.1} | {found_all}/{} | {:.1}, {:.0} | {:.1}, {:.0} | {:.0}, {:.0} |",
        join.as_secs_f64(),
        pct(&mut announce_ms.clone(), 0.5),
        pct(&mut announce_ms, 0.99),
        per_announce,
        pct(&mut first_ms.clone(), 0.5),
        pct(&mut first_ms, 0.99),
        pct(&mut end_ms.clone(), 0.5),
        pct(&mut end_ms, 0.99),
        plan.len(),
        pct(&mut new_ms, 0.5),
        pct(&mut new_dgrams, 0.5),
        pct(&mut old_ms, 0.5),
        pct(&mut old_dgrams, 0.5),
        rate,
        per_key,
    );
    names
}

/// Node `i`'s key (distinct per run and network).
fn key(network: &str, i: usize) -> SecretKey {
    SecretKey::from_bytes(blake3::hash(format!("{network} node {i}").as_bytes()).as_bytes())
}
