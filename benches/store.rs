//! A node's bookkeeping: what pins, unpins and garbage collection cost, beside the raw
//! import of the same blobs, in one run.
//!
//! `cargo bench --bench store` (options after `--`: `--blobs N`, default 2000; `--kib N`
//! blob size, default 64). On one store in a temporary directory it reports, per blob:
//! - import (iroh-blobs FsStore + redb, pinned for the uploader: the node's `Store`);
//! - pin of every blob by a second owner (one request of 1024 hashes at a time);
//! - unpin by both owners (each blob becomes an orphan when its last pin goes);
//! - collection of every orphan (`Store::collect`, transactions of 64);
//!
//! and what the collection reclaims per second. No targets: collection runs in the
//! background, and the numbers say how far behind a node's stores it can fall.

use std::time::Instant;

use bytes::Bytes;
use mosaic_codec::Hash;
use mosaic_server::store::{Limits, Store};

fn main() {
    let mut blobs = 2000usize;
    let mut kib = 64usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--blobs" => blobs = args.next().and_then(|v| v.parse().ok()).expect("--blobs N"),
            "--kib" => kib = args.next().and_then(|v| v.parse().ok()).expect("--kib N"),
            // `cargo bench` passes `--bench`; ignore what we do not know.
            _ => {}
        }
    }
    println!("Mosaic store benchmark: {blobs} blobs of {kib} KiB");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(run(blobs, kib << 10));
}

fn owner(seed: u8) -> iroh::EndpointId {
    iroh::SecretKey::from_bytes(&[seed; 32]).public()
}

fn report(what: &str, count: usize, secs: f64) {
    println!(
        "  {what:<34} {:>9.0} blobs/s  {:>8.1} µs/blob",
        count as f64 / secs,
        secs * 1e6 / count as f64
    );
}

async fn run(count: usize, size: usize) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Store::load(dir.path(), Limits::new(u64::MAX / 2))
        .await
        .expect("store");
    let (alice, bob) = (owner(1), owner(2));

    let t = Instant::now();
    let mut hashes: Vec<Hash> = Vec::with_capacity(count);
    for i in 0..count {
        let mut data = vec![0u8; size];
        data[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let hash = store
            .import(
                alice,
                size as u64,
                n0_future::stream::iter([Ok(Bytes::from(data))]),
            )
            .await
            .expect("import")
            .0;
        hashes.push(hash);
    }
    report("import + pin (uploader)", count, t.elapsed().as_secs_f64());

    let t = Instant::now();
    for batch in hashes.chunks(1024) {
        store.pin(bob, batch).await.expect("pin");
    }
    report("pin by a second owner", count, t.elapsed().as_secs_f64());

    let t = Instant::now();
    for batch in hashes.chunks(1024) {
        store.unpin(alice, batch).await.expect("unpin");
        store.unpin(bob, batch).await.expect("unpin");
    }
    report("unpin by both owners", count * 2, t.elapsed().as_secs_f64());

    let used = store.used();
    let t = Instant::now();
    let collected = store.collect(0).expect("collect");
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(collected.blobs as usize, count, "every orphan collected");
    assert_eq!(store.used(), 0);
    report("collect (drop from the table)", count, secs);
    println!(
        "  collection reclaims {:.0} MiB/s of {} KiB blobs ({} MiB in {:.3} s)",
        used as f64 / (1 << 20) as f64 / secs,
        size >> 10,
        used >> 20,
        secs
    );
    store.shutdown().await;
}
