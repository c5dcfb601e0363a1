//! The share page's codec work, natively: exactly what its service worker runs as
//! WebAssembly (`mosaic-web`: check the gateway's `?format=bao` answers against the
//! column hashes, rebuild, open each segment), here compiled for this CPU, so the
//! browser's figure (`benches/share.sh`) has its native counterpart from the same code.
//!
//! `cargo bench --bench web` (options after `--`: `--mib N`, default 64; `--rounds N`,
//! default 3). Reports plaintext MiB/s, median of the rounds, one thread:
//! - verify + open with the k data columns (no Reed–Solomon);
//! - verify + open with a data column missing (rebuilt from parity);
//! - BLAKE3 alone over the same column bytes, the primitive verification needs.

use std::{io::Cursor, ops::Range, time::Instant};

use bao_tree::io::{outboard::PreOrderMemOutboard, sync::encode_ranges_validated};
use mosaic_codec::{Access, FileKey, Layout, Metadata, Params, ReadCap, encode};
use mosaic_web::{file::File, verify};

const MIB: usize = 1 << 20;

fn answer(data: &[u8], outboard: &PreOrderMemOutboard, range: &Range<u64>) -> Vec<u8> {
    let mut out = (data.len() as u64).to_le_bytes().to_vec();
    encode_ranges_validated(data, outboard, &verify::chunk_ranges(range), &mut out)
        .expect("encodes");
    out
}

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
    let mut data = vec![0u8; mib * MIB];
    blake3::Hasher::new()
        .update(b"mosaic web bench")
        .finalize_xof()
        .fill(&mut data);
    let params = Params::default();
    let key = FileKey::random();
    let mut columns = vec![Vec::new(); params.columns()];
    let manifest = encode(
        params,
        &Access::Private(key.clone()),
        &Metadata::default(),
        data.len() as u64,
        Cursor::new(&data),
        &mut columns,
    )
    .expect("encodes");
    let layout: Layout = *manifest.layout();
    let bytes = manifest.as_bytes();
    let whole = answer(
        bytes,
        &PreOrderMemOutboard::create(bytes, verify::BLOCK_SIZE),
        &(0..bytes.len() as u64),
    );
    let cap = ReadCap {
        id: manifest.id(),
        key,
    }
    .to_string();
    let mut file = File::open(&cap, &whole).expect("opens");
    let outboards: Vec<_> = columns
        .iter()
        .map(|c| PreOrderMemOutboard::create(c, verify::BLOCK_SIZE))
        .collect();
    // Every answer the page would fetch, built before timing (the network's part).
    let answers: Vec<Vec<Vec<u8>>> = (0..layout.segments())
        .map(|i| {
            let span = layout.column_span(i);
            (0..params.columns())
                .map(|c| answer(&columns[c], &outboards[c], &span))
                .collect()
        })
        .collect();
    let k = params.data_columns();
    println!(
        "Mosaic share-page codec, native: {mib} MiB private file, {} segments of {} MiB, k = {k}, m = {}, median of {rounds}",
        layout.segments(),
        params.segment_size() as usize / MIB,
        params.parity_columns()
    );
    let mut run = |use_columns: Vec<usize>| {
        let mut times = Vec::new();
        for _ in 0..rounds {
            let start = Instant::now();
            let mut out = 0usize;
            let mut shard = Vec::new();
            for (i, per_column) in answers.iter().enumerate() {
                file.begin(i as u64).expect("segment");
                for &c in &use_columns {
                    shard.clear();
                    file.verify_shard(c, i as u64, &per_column[c], &mut shard)
                        .expect("verifies");
                    file.put_shard(c, &shard).expect("shard");
                }
                out += file.open_segment(i as u64).expect("opens").len();
            }
            assert_eq!(out, data.len());
            times.push(start.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        data.len() as f64 / MIB as f64 / times[times.len() / 2]
    };
    let all_data = run((0..k).collect());
    let degraded = run((1..=k).collect());
    let hashed: usize = columns[..k].iter().map(Vec::len).sum();
    let start = Instant::now();
    for c in &columns[..k] {
        std::hint::black_box(blake3::hash(c));
    }
    let blake = hashed as f64 / MIB as f64 / start.elapsed().as_secs_f64();
    println!("verify + open, k data columns:        {all_data:8.1} MiB/s of plaintext");
    println!("verify + open, a data column rebuilt: {degraded:8.1} MiB/s of plaintext");
    println!("BLAKE3 alone over the k columns:      {blake:8.1} MiB/s of column bytes");
}
