//! Codec throughput beside its primitives, measured in one run on one core.
//!
//! `cargo bench --bench codec` (options after `--`: `--mib N` file size, default 64;
//! `--rounds N`, default 5). For (k, m) = (3, 2) and (10, 4) with 1 MiB segments it
//! reports, as medians:
//! - the primitives alone on the codec's own shapes: XChaCha20-Poly1305 seal/open of
//!   1 MiB segments, Reed–Solomon encode/reconstruct of one stripe (reed-solomon-erasure,
//!   which the format uses, and reed-solomon-simd), BLAKE3 over shard-sized pieces;
//! - the codec: `encode` (to sinks) and `decode_file` (hash-verify k columns, decode,
//!   re-encode each segment and hash the other m columns to check they form one file)
//!   with all data columns, and degraded with m data columns lost;
//! - `limit = 1 / Σ(1 / primitive rate)` over the primitives each operation needs, and
//!   `codec / limit` (target ≥ 0.70);
//! - the same encode stages as a plain loop with either Reed–Solomon library, which is
//!   how the library choice was measured "on our pipeline";
//! - peak resident memory while streaming a large file through the encoder.

use std::{
    hint::black_box,
    io::{self, Cursor, Read},
    time::Instant,
};

use chacha20poly1305::{AeadInOut, KeyInit, XChaCha20Poly1305};
use mosaic_codec::{
    Access, Decoder, FileKey, Layout, Metadata, Params, TAG_LEN, decode_file, encode,
};

const MIB: usize = 1 << 20;

fn main() {
    let mut mib = 64usize;
    let mut rounds = 5usize;
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
            // `cargo bench` passes `--bench`; ignore what we do not know.
            _ => {}
        }
    }
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l[13..].trim().to_owned())
        })
        .unwrap_or_else(|| "unknown cpu".into());
    println!("Mosaic codec benchmark: {mib} MiB, median of {rounds} rounds, one thread, {cpu}");
    streaming_memory();
    let data = pseudo_random(mib * MIB);
    for (k, m) in [(3u8, 2u8), (10, 4)] {
        bench_params(
            &data,
            Params::new(1 << 20, k, m).expect("valid params"),
            rounds,
        );
    }
    segment_sizes(&data, rounds);
}

/// Encode and decode at (3, 2) for several segment sizes, interleaved per round.
fn segment_sizes(data: &[u8], rounds: usize) {
    println!("\nsegment size sweep, (k, m) = (3, 2): plaintext MiB/s, median");
    let sizes = [256u32 << 10, 1 << 20, 4 << 20];
    let key = FileKey::random();
    let access = Access::Private(key.clone());
    let meta = Metadata::default();
    let encoded: Vec<_> = sizes
        .iter()
        .map(|&s| {
            let params = Params::new(s, 3, 2).expect("params");
            let mut cols = vec![Vec::new(); 5];
            let m =
                encode(params, &access, &meta, data.len() as u64, data, &mut cols).expect("encode");
            (params, m, cols)
        })
        .collect();
    let mut enc = vec![Vec::new(); sizes.len()];
    let mut dec = vec![Vec::new(); sizes.len()];
    for round in 0..=rounds {
        for (i, (params, manifest, cols)) in encoded.iter().enumerate() {
            let t = Instant::now();
            let mut sinks: Vec<io::Sink> = (0..5).map(|_| io::sink()).collect();
            black_box(
                encode(*params, &access, &meta, data.len() as u64, data, &mut sinks)
                    .expect("encode"),
            );
            let e = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let mut d = Decoder::new(manifest.clone(), Some(&key)).expect("decoder");
            let mut sources: Vec<Option<Cursor<&[u8]>>> = cols
                .iter()
                .enumerate()
                .map(|(j, c)| (j < 3).then(|| Cursor::new(c.as_slice())))
                .collect();
            decode_file(&mut d, &mut sources, &mut io::sink()).expect("decode");
            let dd = t.elapsed().as_secs_f64();
            if round > 0 {
                enc[i].push(mibs(data.len(), e));
                dec[i].push(mibs(data.len(), dd));
            }
        }
    }
    for (i, s) in sizes.iter().enumerate() {
        println!(
            "  S = {:>5} KiB   encode {:5.0}   decode {:5.0}",
            s >> 10,
            median(enc[i].clone()),
            median(dec[i].clone())
        );
    }
}

/// Streams 1 GiB through the encoder from a generator into sinks: resident memory must
/// not grow with the file.
fn streaming_memory() {
    const LEN: u64 = 1 << 30;
    let before = peak_rss_kib();
    let mut sinks: Vec<io::Sink> = (0..5).map(|_| io::sink()).collect();
    let start = Instant::now();
    encode(
        Params::default(),
        &Access::Private(FileKey::random()),
        &Metadata::default(),
        LEN,
        Generator(LEN),
        &mut sinks,
    )
    .expect("encode");
    let secs = start.elapsed().as_secs_f64();
    let after = peak_rss_kib();
    println!(
        "streaming encode of 1 GiB (3,2): {:.0} MiB/s; peak RSS {} MiB before, {} MiB after",
        1024.0 / secs,
        before / 1024,
        after / 1024
    );
}

struct Generator(u64);
impl Read for Generator {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.0 as usize);
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(31) ^ (self.0 as u8);
        }
        self.0 -= n as u64;
        Ok(n)
    }
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn pseudo_random(len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut h = blake3::Hasher::new();
    h.update(b"mosaic bench data");
    h.finalize_xof().fill(&mut out);
    out
}

fn mibs(bytes: usize, secs: f64) -> f64 {
    bytes as f64 / MIB as f64 / secs
}

fn limit(rates: &[f64]) -> f64 {
    1.0 / rates.iter().map(|r| 1.0 / r).sum::<f64>()
}

/// One measurement: runs once and returns (bytes processed, seconds).
type Probe<'a> = Box<dyn FnMut() -> f64 + 'a>;

fn bench_params(data: &[u8], params: Params, rounds: usize) {
    let (k, m, n) = (
        params.data_columns(),
        params.parity_columns(),
        params.columns(),
    );
    let layout = Layout::new(params, data.len() as u64).expect("layout");
    let shard = layout.shard_len() as usize;
    let s = params.segment_size() as usize;
    let segments = data.len() / s;
    println!(
        "\n(k, m) = ({k}, {m}); segment 1 MiB; shard L = {} KiB; {} segments",
        shard / 1024,
        segments
    );

    // Shared inputs, prepared outside any timing.
    let aead = XChaCha20Poly1305::new(&[7u8; 32].into());
    let nonce = [1u8; 24].into();
    let mut sealed = data[..s].to_vec();
    let tag = aead
        .encrypt_inout_detached(&nonce, b"ad", sealed.as_mut_slice().into())
        .expect("seal");
    let stripe_data: Vec<Vec<u8>> = (0..k)
        .map(|j| data[j * shard..(j + 1) * shard].to_vec())
        .collect();
    let rse = reed_solomon_erasure::galois_8::ReedSolomon::new(k, m).expect("rs");
    let mut rse_parity = vec![vec![0u8; shard]; m];
    rse.encode_sep(&stripe_data, &mut rse_parity)
        .expect("encode");
    let full: Vec<Vec<u8>> = stripe_data.iter().chain(&rse_parity).cloned().collect();
    let simd_parity: Vec<Vec<u8>> = {
        let mut e = reed_solomon_simd::ReedSolomonEncoder::new(k, m, shard).expect("rs-simd");
        for d in &stripe_data {
            e.add_original_shard(d).expect("add");
        }
        e.encode()
            .expect("encode")
            .recovery_iter()
            .map(|p| p.to_vec())
            .collect()
    };
    let key = FileKey::random();
    let access = Access::Private(key.clone());
    let meta = Metadata::default();
    let mut columns = vec![Vec::new(); n];
    let manifest = encode(
        params,
        &access,
        &meta,
        data.len() as u64,
        data,
        &mut columns,
    )
    .expect("encode");
    // Check the degraded decode's bytes once, outside the timing.
    let mut out = Vec::with_capacity(data.len());
    let mut sources: Vec<Option<Cursor<&[u8]>>> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| (i >= m).then(|| Cursor::new(c.as_slice())))
        .collect();
    decode_file(
        &mut Decoder::new(manifest.clone(), Some(&key)).expect("decoder"),
        &mut sources,
        &mut out,
    )
    .expect("decode");
    assert!(out == data, "degraded decode returned the file");
    drop(out);

    let timed = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64()
    };
    let decode_with = |keep: fn(usize, usize, usize) -> bool| {
        let mut d = Decoder::new(manifest.clone(), Some(&key)).expect("decoder");
        let mut sources: Vec<Option<Cursor<&[u8]>>> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| keep(i, k, m).then(|| Cursor::new(c.as_slice())))
            .collect();
        let report = decode_file(&mut d, &mut sources, &mut io::sink()).expect("decode");
        assert_eq!(
            report.faults.len(),
            m,
            "only the m columns left out are missing"
        );
    };
    let mut seg = vec![0u8; s];
    let mut work = full.clone();
    let mut simd_enc = reed_solomon_simd::ReedSolomonEncoder::new(k, m, shard).expect("rs-simd");
    let mut simd_dec = reed_solomon_simd::ReedSolomonDecoder::new(k, m, shard).expect("rs-simd");
    let stages = |simd: bool| -> Probe {
        let mut stripe = vec![0u8; n * shard];
        let mut pipe_enc =
            reed_solomon_simd::ReedSolomonEncoder::new(k, m, shard).expect("rs-simd");
        let (aead, rse) = (&aead, &rse);
        Box::new(move || {
            let t = Instant::now();
            let mut hashers = vec![blake3::Hasher::new(); n];
            for i in 0..segments {
                stripe[..s].copy_from_slice(&data[i * s..(i + 1) * s]);
                let tag = aead
                    .encrypt_inout_detached(&nonce, b"ad", (&mut stripe[..s]).into())
                    .expect("seal");
                stripe[s..s + TAG_LEN].copy_from_slice(&tag);
                stripe[s + TAG_LEN..k * shard].fill(0);
                let (d, p) = stripe.split_at_mut(k * shard);
                if simd {
                    for chunk in d.chunks_exact(shard) {
                        pipe_enc.add_original_shard(chunk).expect("add");
                    }
                    let result = pipe_enc.encode().expect("encode");
                    for (dst, src) in p.chunks_exact_mut(shard).zip(result.recovery_iter()) {
                        dst.copy_from_slice(src);
                    }
                } else {
                    let d: Vec<&[u8]> = d.chunks_exact(shard).collect();
                    let mut p: Vec<&mut [u8]> = p.chunks_exact_mut(shard).collect();
                    rse.encode_sep(&d, &mut p).expect("encode");
                }
                for (h, piece) in hashers.iter_mut().zip(stripe.chunks_exact(shard)) {
                    h.update(piece);
                }
            }
            black_box(hashers.iter().map(|h| h.finalize()).collect::<Vec<_>>());
            t.elapsed().as_secs_f64()
        })
    };

    let rs_bytes = segments * k * shard;
    let plain = segments * s;
    // name, bytes per run, run
    let mut probes: Vec<(&str, usize, Probe)> = vec![
        (
            "XChaCha20-Poly1305 seal, 1 MiB segments",
            plain,
            Box::new(|| {
                timed(&mut || {
                    for i in 0..segments {
                        seg.copy_from_slice(&data[i * s..(i + 1) * s]);
                        black_box(
                            aead.encrypt_inout_detached(&nonce, b"ad", seg.as_mut_slice().into())
                                .expect("seal"),
                        );
                    }
                })
            }),
        ),
        (
            "XChaCha20-Poly1305 open, 1 MiB segments",
            plain,
            Box::new(|| {
                let mut buf = sealed.clone();
                timed(&mut || {
                    for _ in 0..segments {
                        buf.copy_from_slice(&sealed);
                        aead.decrypt_inout_detached(&nonce, b"ad", buf.as_mut_slice().into(), &tag)
                            .expect("open");
                    }
                })
            }),
        ),
        (
            "BLAKE3, shard-sized pieces",
            data.len(),
            Box::new(|| {
                timed(&mut || {
                    let mut h = blake3::Hasher::new();
                    for piece in data.chunks(shard) {
                        h.update(piece);
                    }
                    black_box(h.finalize());
                })
            }),
        ),
        (
            "reed-solomon-erasure encode",
            rs_bytes,
            Box::new(|| {
                let mut parity = vec![vec![0u8; shard]; m];
                timed(&mut || {
                    for _ in 0..segments {
                        rse.encode_sep(&stripe_data, &mut parity).expect("encode");
                    }
                })
            }),
        ),
        (
            "reed-solomon-erasure rebuild m data",
            rs_bytes,
            Box::new(|| {
                timed(&mut || {
                    for _ in 0..segments {
                        let mut shards: Vec<(&mut [u8], bool)> = work
                            .iter_mut()
                            .enumerate()
                            .map(|(i, b)| (b.as_mut_slice(), i >= m))
                            .collect();
                        rse.reconstruct_data(&mut shards).expect("reconstruct");
                    }
                })
            }),
        ),
        (
            "reed-solomon-simd encode",
            rs_bytes,
            Box::new(|| {
                timed(&mut || {
                    for _ in 0..segments {
                        for d in &stripe_data {
                            simd_enc.add_original_shard(d).expect("add");
                        }
                        black_box(simd_enc.encode().expect("encode").recovery_iter().count());
                    }
                })
            }),
        ),
        (
            "reed-solomon-simd rebuild m data",
            rs_bytes,
            Box::new(|| {
                timed(&mut || {
                    for _ in 0..segments {
                        for (i, d) in stripe_data.iter().enumerate().skip(m) {
                            simd_dec.add_original_shard(i, d).expect("add");
                        }
                        for (i, p) in simd_parity.iter().enumerate() {
                            simd_dec.add_recovery_shard(i, p).expect("add");
                        }
                        black_box(
                            simd_dec
                                .decode()
                                .expect("decode")
                                .restored_original_iter()
                                .count(),
                        );
                    }
                })
            }),
        ),
        (
            "codec encode",
            data.len(),
            Box::new(|| {
                timed(&mut || {
                    let mut sinks: Vec<io::Sink> = (0..n).map(|_| io::sink()).collect();
                    black_box(
                        encode(params, &access, &meta, data.len() as u64, data, &mut sinks)
                            .expect("encode"),
                    );
                })
            }),
        ),
        (
            "codec decode, k data columns",
            data.len(),
            Box::new(|| timed(&mut || decode_with(|i, k, _| i < k))),
        ),
        (
            "codec decode, m data columns lost",
            data.len(),
            Box::new(|| timed(&mut || decode_with(|i, _, m| i >= m))),
        ),
        ("encode stages, reed-solomon-erasure", plain, stages(false)),
        ("encode stages, reed-solomon-simd", plain, stages(true)),
    ];
    // Interleaved rounds: every probe once per round, so drift in the machine's speed
    // hits the codec and its primitives alike; ratios are taken within a round.
    let mut rates = vec![Vec::new(); probes.len()];
    for round in 0..=rounds {
        for (i, (_, bytes, run)) in probes.iter_mut().enumerate() {
            let secs = run();
            if round > 0 {
                rates[i].push(mibs(*bytes, secs)); // round 0 warms up
            }
        }
    }
    let idx = |name: &str| {
        probes
            .iter()
            .position(|(n, _, _)| *n == name)
            .expect("probe")
    };
    let r = |name: &str| rates[idx(name)].clone();
    println!("  {:<44} {:>7}   (min..max)", "MiB/s, median", "");
    for (i, (name, _, _)) in probes.iter().enumerate() {
        let v = &rates[i];
        let (lo, hi) = (
            v.iter().cloned().fold(f64::MAX, f64::min),
            v.iter().cloned().fold(0.0, f64::max),
        );
        println!(
            "  {name:<44} {:7.0}   ({lo:.0}..{hi:.0})",
            median(v.clone())
        );
    }
    // Per round: limit = 1 / Σ(1 / primitive rate), and codec / limit.
    let (seal, open, hash) = (
        r("XChaCha20-Poly1305 seal, 1 MiB segments"),
        r("XChaCha20-Poly1305 open, 1 MiB segments"),
        r("BLAKE3, shard-sized pieces"),
    );
    let (rs_enc, rs_rec) = (
        r("reed-solomon-erasure encode"),
        r("reed-solomon-erasure rebuild m data"),
    );
    // The codec hashes all n columns on encode (n·L bytes per S of plaintext), and on
    // decode too: the "weighted" limit charges BLAKE3 for the bytes it really hashes.
    let enc_w = (n * shard) as f64 / s as f64;
    // Decode hashes the k columns it reads (verify) and the m it re-encodes (consistency).
    let dec_w = (n * shard) as f64 / s as f64;
    println!(
        "  {:<34} {:>6} {:>6} {:>6}   {:>8} {:>6}",
        "codec / limit (medians per round)", "codec", "limit", "ratio", "weighted", "ratio"
    );
    for (name, parts) in [
        (
            "codec encode",
            vec![(&seal, 1.0), (&rs_enc, 1.0), (&hash, enc_w)],
        ),
        (
            "codec decode, k data columns",
            vec![(&open, 1.0), (&rs_enc, 1.0), (&hash, dec_w)],
        ),
        (
            "codec decode, m data columns lost",
            vec![(&open, 1.0), (&rs_rec, 1.0), (&rs_enc, 1.0), (&hash, dec_w)],
        ),
    ] {
        let codec = r(name);
        let per_round = |weighted: bool| -> Vec<f64> {
            (0..codec.len())
                .map(|j| {
                    limit(
                        &parts
                            .iter()
                            .map(|(v, w)| v[j] / if weighted { *w } else { 1.0 })
                            .collect::<Vec<_>>(),
                    )
                })
                .collect()
        };
        let (lim, wlim) = (per_round(false), per_round(true));
        let ratio: Vec<f64> = codec.iter().zip(&lim).map(|(c, l)| c / l).collect();
        let wratio: Vec<f64> = codec.iter().zip(&wlim).map(|(c, l)| c / l).collect();
        println!(
            "  {name:<34} {:6.0} {:6.0} {:6.2}   {:8.0} {:6.2}",
            median(codec.clone()),
            median(lim),
            median(ratio),
            median(wlim),
            median(wratio)
        );
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
