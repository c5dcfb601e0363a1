//! Black-box tests of the codec: round trips over interesting sizes, any k of n columns,
//! corruption anywhere, wrong keys, tampered segments, ranges, and property tests.

#![allow(clippy::unwrap_used)]

use std::io::Cursor;

use mosaic_codec::{
    Access, ColumnFault, ConvergenceSecret, DecodeError, DecodeReport, Decoder, EncodeError,
    Encoder, FileKey, Manifest, ManifestError, Metadata, Params, decode_file, decode_range, encode,
    verify_columns,
};
use proptest::prelude::*;

/// Small segments so that multi-segment files stay small.
const S: u32 = 4096;

/// Sizes around every boundary of the layout (segment ± 1, stripe, chunk, empty).
const INTERESTING_SIZES: [usize; 12] = [
    0,                  // empty: one segment with only a tag
    1,                  // one byte
    S as usize - 16,    // sealed segment exactly S
    S as usize - 1,     // one byte short of a segment
    S as usize,         // exactly one segment
    S as usize + 1,     // one byte into the second segment
    2 * S as usize,     // exactly two segments
    3 * S as usize - 1, //
    1023,               // chunk - 1
    1024,               // one chunk
    1025,               // chunk + 1
    10 * S as usize + 7,
];

fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn params(s: u32, k: u8, m: u8) -> Params {
    Params::new(s, k, m).unwrap()
}

fn meta() -> Metadata {
    Metadata {
        name: Some("report.pdf".into()),
        media_type: Some("application/pdf".into()),
        modified: Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_763_700_000)),
    }
}

fn enc(p: Params, access: &Access, plain: &[u8]) -> (Manifest, Vec<Vec<u8>>) {
    let mut cols = vec![Vec::new(); p.columns()];
    let m = encode(p, access, &meta(), plain.len() as u64, plain, &mut cols).unwrap();
    (m, cols)
}

fn key_of(access: &Access) -> Option<&FileKey> {
    match access {
        Access::Private(k) => Some(k),
        _ => None,
    }
}

fn sources(cols: &[Vec<u8>], keep: impl Fn(usize) -> bool) -> Vec<Option<Cursor<Vec<u8>>>> {
    cols.iter()
        .enumerate()
        .map(|(i, c)| keep(i).then(|| Cursor::new(c.clone())))
        .collect()
}

fn dec_file(
    m: &Manifest,
    key: Option<&FileKey>,
    srcs: &mut [Option<Cursor<Vec<u8>>>],
) -> Result<(Vec<u8>, DecodeReport), DecodeError> {
    let mut d = Decoder::new(m.clone(), key)?;
    let mut out = Vec::new();
    let report = decode_file(&mut d, srcs, &mut out)?;
    Ok((out, report))
}

fn dec_range(
    m: &Manifest,
    key: Option<&FileKey>,
    srcs: &mut [Option<Cursor<Vec<u8>>>],
    range: std::ops::Range<u64>,
) -> Result<(Vec<u8>, DecodeReport), DecodeError> {
    let mut d = Decoder::new(m.clone(), key)?;
    let mut out = Vec::new();
    let report = decode_range(&mut d, srcs, range, &mut out)?;
    Ok((out, report))
}

fn both_accesses() -> [Access; 2] {
    [Access::Public, Access::Private(FileKey::random())]
}

#[test]
fn roundtrip_interesting_sizes() {
    for access in both_accesses() {
        for (i, &len) in INTERESTING_SIZES.iter().enumerate() {
            let plain = data(len, i as u64);
            let p = params(S, 3, 2);
            let (m, cols) = enc(p, &access, &plain);
            let layout = m.layout();
            assert_eq!(layout.length(), len as u64);
            for c in &cols {
                assert_eq!(c.len() as u64, layout.column_len(), "size {len}");
            }
            let (out, report) =
                dec_file(&m, key_of(&access), &mut sources(&cols, |_| true)).unwrap();
            assert_eq!(out, plain, "size {len}");
            assert!(report.faults.is_empty());
            let d = Decoder::new(m.clone(), key_of(&access)).unwrap();
            assert_eq!(d.metadata(), &meta());
        }
    }
}

#[test]
fn roundtrip_default_params_many_segments() {
    let p = Params::default();
    let s = p.segment_size() as usize;
    for len in [s - 1, s, s + 1, 3 * s + 12_345] {
        let plain = data(len, 7);
        let access = Access::Private(FileKey::random());
        let (m, cols) = enc(p, &access, &plain);
        // Segment i sits at i·L in every column, L a multiple of 1 KiB.
        assert_eq!(m.layout().shard_len() % 1024, 0);
        let (out, _) = dec_file(&m, key_of(&access), &mut sources(&cols, |i| i != 1)).unwrap();
        assert_eq!(out, plain);
    }
}

#[test]
fn every_k_of_n_columns_rebuild_the_file() {
    for (k, m, s) in [(1u8, 2u8, S), (3, 2, S), (4, 3, 4 * S), (10, 4, 64 << 10)] {
        let p = params(s, k, m);
        let n = p.columns();
        let plain = data(3 * s as usize + 333, k as u64);
        let access = Access::Private(FileKey::random());
        let (manifest, cols) = enc(p, &access, &plain);
        let mut tried = 0;
        for mask in 0u32..(1 << n) {
            if mask.count_ones() as usize != k as usize {
                continue;
            }
            tried += 1;
            let mut srcs = sources(&cols, |i| mask & (1 << i) != 0);
            let (out, report) = dec_file(&manifest, key_of(&access), &mut srcs).unwrap();
            assert_eq!(out, plain, "({k},{m}) columns {mask:b}");
            assert_eq!(
                report.faults.len(),
                m as usize,
                "missing columns are reported"
            );
            assert!(
                report
                    .faults
                    .iter()
                    .all(|(_, f)| *f == ColumnFault::Missing)
            );
        }
        assert_eq!(tried, binomial(n, k as usize));
        // k - 1 columns are not enough, and the error names the missing ones.
        let mut srcs = sources(&cols, |i| i > m as usize);
        match dec_file(&manifest, key_of(&access), &mut srcs) {
            Err(DecodeError::NotEnoughColumns {
                need,
                usable,
                faults,
                ..
            }) => {
                assert_eq!((need, usable), (k as usize, k as usize - 1));
                let missing: Vec<usize> = faults.iter().map(|(c, _)| *c).collect();
                assert_eq!(missing, (0..=m as usize).collect::<Vec<_>>());
            }
            other => panic!("expected NotEnoughColumns, got {other:?}"),
        }
    }
}

fn binomial(n: usize, k: usize) -> usize {
    (0..k).fold(1, |acc, i| acc * (n - i) / (i + 1))
}

#[test]
fn a_flipped_byte_in_any_column_is_named_and_never_yields_wrong_plaintext() {
    let p = params(S, 3, 2);
    for access in both_accesses() {
        let plain = data(3 * S as usize + 100, 3);
        let (m, cols) = enc(p, &access, &plain);
        let len = cols[0].len();
        for c in 0..p.columns() {
            // First byte, segment boundaries, padding, last byte, and a stride between.
            let mut positions: Vec<usize> = (0..len).step_by(997).collect();
            positions.extend([0, len - 1, m.layout().shard_len() as usize - 1, len - 64]);
            for pos in positions {
                let mut bad = cols.clone();
                bad[c][pos] ^= 0x01;
                // All columns given: the file decodes; a damaged column that was read is
                // named (a parity column need not be read at all), and a full check
                // names it either way.
                let (out, report) = dec_file(&m, key_of(&access), &mut sources(&bad, |_| true))
                    .unwrap_or_else(|e| panic!("column {c} byte {pos}: {e}"));
                assert_eq!(out, plain);
                assert!(report.faults.iter().all(|(cc, f)| *cc == c
                    && matches!(
                        f,
                        ColumnFault::HashMismatch { .. } | ColumnFault::Corrupt { .. }
                    )));
                assert_eq!(report.faults.is_empty(), c >= 3, "{report:?}");
                let faults = verify_columns(&m, &mut sources(&bad, |_| true)).unwrap();
                assert!(matches!(faults[..], [(cc, ColumnFault::HashMismatch { .. })] if cc == c));
                // Exactly k columns including the bad one: a clear error naming it.
                let keep = |i: usize| i == c || (i + p.columns() - c) % p.columns() < 3;
                match dec_file(&m, key_of(&access), &mut sources(&bad, keep)) {
                    Err(e @ DecodeError::NotEnoughColumns { .. }) => {
                        assert!(
                            e.to_string().contains(&format!("column {c} corrupt")),
                            "{e}"
                        );
                    }
                    other => panic!("column {c} byte {pos}: expected an error, got {other:?}"),
                }
                // Range reads skip the whole-column hash: the segment tags catch it, and
                // with spares the decoder names the column.
                let whole = 0..plain.len() as u64;
                let (out, report) = dec_range(
                    &m,
                    key_of(&access),
                    &mut sources(&bad, |_| true),
                    whole.clone(),
                )
                .unwrap();
                assert_eq!(out, plain);
                assert!(report.faults.iter().all(|(cc, _)| *cc == c), "{report:?}");
                // With exactly k (no spare) a range read that needs the bad shard hashes
                // the columns it used and names the damaged one.
                match dec_range(&m, key_of(&access), &mut sources(&bad, keep), whole) {
                    Ok((out, _)) => assert_eq!(out, plain),
                    Err(DecodeError::NotEnoughColumns { faults, .. }) => {
                        let damaged: Vec<_> = faults
                            .iter()
                            .filter(|(_, f)| *f != ColumnFault::Missing)
                            .collect();
                        assert!(
                            matches!(damaged[..], [(cc, ColumnFault::HashMismatch { .. })] if *cc == c),
                            "{faults:?}"
                        );
                    }
                    Err(e) => panic!("unexpected error {e}"),
                }
            }
        }
    }
}

#[test]
fn corrupt_shards_in_two_columns_are_both_named() {
    let p = params(S, 3, 2);
    let plain = data(4 * S as usize, 11);
    let access = Access::Private(FileKey::random());
    let (m, mut cols) = enc(p, &access, &plain);
    cols[0][10] ^= 0xFF;
    cols[3][S as usize + 5] ^= 0xFF;
    let (out, report) = dec_range(
        &m,
        key_of(&access),
        &mut sources(&cols, |_| true),
        0..plain.len() as u64,
    )
    .unwrap();
    assert_eq!(out, plain);
    let named: Vec<usize> = report.faults.iter().map(|(c, _)| *c).collect();
    assert!(named.contains(&0), "{report:?}");
    // Column 3 is only read once column 0 is known bad and a spare is needed, so it is
    // named when its bad shard is used.
    assert!(named.iter().all(|c| [0, 3].contains(c)), "{report:?}");
    // Three bad columns of five: beyond repair, and each is named.
    cols[1][10] ^= 0xFF;
    cols[4][10] ^= 0xFF;
    let err = expect_err(dec_range(
        &m,
        key_of(&access),
        &mut sources(&cols, |_| true),
        0..plain.len() as u64,
    ));
    match err {
        DecodeError::NotEnoughColumns {
            segment: 0, faults, ..
        } => {
            let named: Vec<usize> = faults.iter().map(|(c, _)| *c).collect();
            assert_eq!(named, vec![0, 1, 3, 4], "{faults:?}");
        }
        e => panic!("{e}"),
    }
}

#[test]
fn a_flipped_byte_in_the_manifest_is_caught() {
    let access = Access::Private(FileKey::random());
    let (m, _) = enc(params(S, 3, 2), &access, &data(9000, 1));
    for i in 0..m.as_bytes().len() {
        let mut b = m.as_bytes().to_vec();
        b[i] ^= 0x80;
        let err = Manifest::from_bytes_verified(&b, &m.id()).unwrap_err();
        assert!(matches!(err, ManifestError::IdMismatch { .. }));
        assert!(err.to_string().contains("manifest is corrupt"));
    }
}

#[test]
fn wrong_or_missing_key_is_a_clear_error() {
    let access = Access::Private(FileKey::random());
    let (m, _) = enc(params(S, 3, 2), &access, &data(9000, 1));
    let err = Decoder::new(m.clone(), Some(&FileKey::random())).unwrap_err();
    assert!(matches!(err, DecodeError::WrongKey));
    assert!(err.to_string().contains("readcap"));
    assert!(matches!(
        Decoder::new(m, None).unwrap_err(),
        DecodeError::KeyRequired
    ));
    // A public file needs no key and ignores one.
    let (pm, cols) = enc(params(S, 3, 2), &Access::Public, &data(9000, 1));
    let (out, _) = dec_file(&pm, Some(&FileKey::random()), &mut sources(&cols, |_| true)).unwrap();
    assert_eq!(out, data(9000, 1));
}

#[test]
fn public_columns_hold_plaintext_and_private_ones_do_not() {
    let plain = vec![b'A'; 3 * S as usize];
    let (_, pub_cols) = enc(params(S, 3, 2), &Access::Public, &plain);
    assert!(pub_cols[0][..100].iter().all(|&b| b == b'A'));
    let (_, priv_cols) = enc(params(S, 3, 2), &Access::Private(FileKey::random()), &plain);
    for c in &priv_cols {
        assert!(c.windows(16).all(|w| w != [b'A'; 16]));
    }
}

/// Replaces segment `a`'s shards with segment `b`'s in every column.
fn swap_segments(m: &Manifest, cols: &mut [Vec<u8>], a: u64, b: u64) {
    let l = m.layout();
    for c in cols.iter_mut() {
        let (ra, rb) = (l.column_span(a), l.column_span(b));
        let sa = c[ra.start as usize..ra.end as usize].to_vec();
        let sb = c[rb.start as usize..rb.end as usize].to_vec();
        c[ra.start as usize..ra.end as usize].copy_from_slice(&sb);
        c[rb.start as usize..rb.end as usize].copy_from_slice(&sa);
    }
}

#[test]
fn swapped_reordered_or_truncated_segments_are_refused() {
    for access in both_accesses() {
        let plain = data(5 * S as usize, 5);
        let (m, cols) = enc(params(S, 3, 2), &access, &plain);
        let key = key_of(&access);
        let whole = 0..plain.len() as u64;

        // Swapped in every column (consistently, so Reed–Solomon cannot tell): the tags
        // bind each segment to its index.
        let mut swapped = cols.clone();
        swap_segments(&m, &mut swapped, 1, 2);
        let err = expect_err(dec_range(
            &m,
            key,
            &mut sources(&swapped, |_| true),
            whole.clone(),
        ));
        assert!(
            matches!(err, DecodeError::NotEnoughColumns { segment: 1, ref faults, .. } if faults.len() == 5),
            "{err}"
        );
        // ... and the whole-file decode names every column by its hash.
        match expect_err(dec_file(&m, key, &mut sources(&swapped, |_| true))) {
            DecodeError::NotEnoughColumns { faults, .. } => assert_eq!(faults.len(), 5),
            e => panic!("{e}"),
        }

        // Reordered: segments 0 and 3 exchanged; the first one read already fails.
        let mut reordered = cols.clone();
        swap_segments(&m, &mut reordered, 0, 3);
        let err = expect_err(dec_range(
            &m,
            key,
            &mut sources(&reordered, |_| true),
            whole.clone(),
        ));
        assert!(
            matches!(err, DecodeError::NotEnoughColumns { segment: 0, .. }),
            "{err}"
        );

        // Truncated by a segment: every column is short, and each is named.
        let cut = m.layout().column_span(4).start as usize;
        let truncated: Vec<Vec<u8>> = cols.iter().map(|c| c[..cut].to_vec()).collect();
        match expect_err(dec_range(
            &m,
            key,
            &mut sources(&truncated, |_| true),
            whole.clone(),
        )) {
            DecodeError::NotEnoughColumns {
                segment: 4, faults, ..
            } => {
                assert_eq!(faults.len(), 5);
                assert!(
                    faults
                        .iter()
                        .all(|(_, f)| matches!(f, ColumnFault::Length { .. }))
                );
            }
            e => panic!("{e}"),
        }
        // The first segments are still readable by range.
        let (head, _) = dec_range(&m, key, &mut sources(&truncated, |_| true), 0..100).unwrap();
        assert_eq!(head, plain[..100]);

        // A segment from another file with the same layout: a private file's tags are
        // keyed (and salted) per file, so it does not open; a public file's tags bind
        // only the position, so there the column hashes are what catch it.
        let (m2, cols2) = enc(params(S, 3, 2), &access, &data(5 * S as usize, 6));
        let mut mixed = cols.clone();
        let span = m.layout().column_span(2);
        for (c, other) in mixed.iter_mut().zip(&cols2) {
            c[span.start as usize..span.end as usize]
                .copy_from_slice(&other[span.start as usize..span.end as usize]);
        }
        assert_eq!(m.layout(), m2.layout());
        if key.is_some() {
            let err = expect_err(dec_range(&m, key, &mut sources(&mixed, |_| true), whole));
            assert!(
                matches!(err, DecodeError::NotEnoughColumns { segment: 2, .. }),
                "{err}"
            );
        }
        match expect_err(dec_file(&m, key, &mut sources(&mixed, |_| true))) {
            DecodeError::NotEnoughColumns { faults, .. } => assert_eq!(faults.len(), 5),
            e => panic!("{e}"),
        }
    }
}

/// The error of a decode that must fail, without printing a whole file if it did not.
fn expect_err(r: Result<(Vec<u8>, DecodeReport), DecodeError>) -> DecodeError {
    match r {
        Ok((out, report)) => panic!("decode succeeded ({} bytes, {report:?})", out.len()),
        Err(e) => e,
    }
}

/// An uploader who writes data columns of one file and parity columns of another under
/// one manifest must not get two contents under one id.
#[test]
fn inconsistent_columns_are_refused_whichever_k_are_read() {
    let p = params(S, 3, 2);
    let (a, cols_a) = enc(p, &Access::Public, &data(3 * S as usize, 1));
    let (_, cols_b) = enc(p, &Access::Public, &data(3 * S as usize, 2));
    let mut bytes = a.as_bytes().to_vec();
    let mut cols = cols_a.clone();
    for c in 3..5 {
        bytes[41 + 32 * c..41 + 32 * (c + 1)]
            .copy_from_slice(mosaic_codec::Hash::of(&cols_b[c]).as_bytes());
        cols[c] = cols_b[c].clone();
    }
    let forged = Manifest::from_bytes(&bytes).unwrap();
    // Reading the data columns: the re-encoded parity does not match the manifest.
    match expect_err(dec_file(&forged, None, &mut sources(&cols, |_| true))) {
        DecodeError::Inconsistent {
            segment: None,
            columns,
        } => assert_eq!(columns, vec![3, 4]),
        e => panic!("{e}"),
    }
    // Reading a mix: every column is intact, yet no k open the segment.
    match expect_err(dec_file(&forged, None, &mut sources(&cols, |i| i >= 2))) {
        e @ DecodeError::Inconsistent {
            segment: Some(0), ..
        } => {
            assert!(e.to_string().contains("do not trust this file id"), "{e}");
        }
        e => panic!("{e}"),
    }
}

#[test]
fn encoder_refuses_input_that_changed_length() {
    let p = params(S, 3, 2);
    let plain = data(10_000, 1);
    let mut cols = vec![Vec::new(); 5];
    let err = encode(p, &Access::Public, &meta(), 10_001, &plain[..], &mut cols).unwrap_err();
    assert!(err.to_string().contains("shrink"), "{err}");
    let mut cols = vec![Vec::new(); 5];
    let err = encode(p, &Access::Public, &meta(), 9_999, &plain[..], &mut cols).unwrap_err();
    assert!(err.to_string().contains("grow"), "{err}");
    let mut cols = vec![Vec::new(); 4];
    assert!(encode(p, &Access::Public, &meta(), 10_000, &plain[..], &mut cols).is_err());
    let bad = Metadata {
        name: Some("../etc/passwd".into()),
        ..Default::default()
    };
    let mut cols = vec![Vec::new(); 5];
    let err = encode(p, &Access::Public, &bad, 10_000, &plain[..], &mut cols).unwrap_err();
    assert!(err.to_string().contains("not a plain file name"), "{err}");
    assert!(
        cols.iter().all(|c| c.is_empty()),
        "nothing written before metadata is checked"
    );
}

/// What [`run`] gives: the columns, the segments' tags and the manifest.
type Encoded = (Vec<Vec<u8>>, Vec<[u8; 16]>, Manifest);

/// Encodes with `encoder` (or fails: the error and the stripes emitted before it).
fn run(mut encoder: Encoder, plain: &[u8]) -> Result<Encoded, (EncodeError, usize)> {
    let n = encoder.layout().params().columns();
    let mut cols = vec![Vec::new(); n];
    let mut tags = Vec::new();
    let mut input = plain;
    loop {
        match encoder.next_stripe(&mut input) {
            Ok(Some(stripe)) => {
                tags.push(stripe.tag());
                for (c, shard) in stripe.shards().enumerate() {
                    cols[c].extend_from_slice(shard);
                }
            }
            Ok(None) => break,
            Err(e) => return Err((e, tags.len())),
        }
    }
    Ok((cols, tags, encoder.finish(&meta()).unwrap()))
}

#[test]
fn encoding_again_gives_the_same_columns_and_refuses_a_changed_segment_before_emitting_it() {
    let p = params(S, 3, 2);
    let plain = data(5 * S as usize + 100, 9);
    let access = Access::Private(FileKey::random());
    let (cols, tags, manifest) = run(
        Encoder::new(p, &access, plain.len() as u64).unwrap(),
        &plain,
    )
    .unwrap();
    // A random key's salt is fresh per encoder: a new encoder gives other columns...
    let (other, _, _) = run(
        Encoder::new(p, &access, plain.len() as u64).unwrap(),
        &plain,
    )
    .unwrap();
    assert_ne!(other, cols);
    // ...but encoding again from the manifest and tags gives the very same ones.
    let (again, again_tags, m2) = run(
        Encoder::again(&manifest, &access, tags.clone()).unwrap(),
        &plain,
    )
    .unwrap();
    assert_eq!(again, cols);
    assert_eq!(again_tags, tags);
    assert_eq!(m2.columns(), manifest.columns());
    // One byte changed in segment 3: segments 0..3 come out, segment 3 is refused.
    let mut changed = plain.clone();
    changed[3 * manifest.layout().plain_len(0) + 5] ^= 1;
    let (err, emitted) = run(
        Encoder::again(&manifest, &access, tags.clone()).unwrap(),
        &changed,
    )
    .map(|_| ())
    .unwrap_err();
    assert!(
        matches!(err, EncodeError::InputChanged { segment: 3 }),
        "{err}"
    );
    assert_eq!(emitted, 3);
    // Tags for another number of segments: refused at once.
    assert!(Encoder::again(&manifest, &access, tags[..2].to_vec()).is_err());
}

#[test]
fn convergent_encryption_is_deterministic_per_secret() {
    let p = params(S, 3, 2);
    let plain = data(20_000, 9);
    let secret = ConvergenceSecret::random();
    let key = || FileKey::convergent(&secret, p, plain.len() as u64, &plain[..]).unwrap();
    let (m1, c1) = enc(p, &Access::Private(key()), &plain);
    let (m2, c2) = enc(p, &Access::Private(key()), &plain);
    assert_eq!(m1.id(), m2.id(), "same content, same secret: same file id");
    assert_eq!(c1, c2);
    let other = FileKey::convergent(
        &ConvergenceSecret::random(),
        p,
        plain.len() as u64,
        &plain[..],
    )
    .unwrap();
    let (m3, _) = enc(p, &Access::Private(other), &plain);
    assert_ne!(m1.columns(), m3.columns(), "another secret: nothing shared");
    // Random keys never repeat columns.
    let (m4, _) = enc(p, &Access::Private(FileKey::random()), &plain);
    let (m5, _) = enc(p, &Access::Private(FileKey::random()), &plain);
    assert_ne!(m4.columns(), m5.columns());
    let (out, _) = dec_file(&m1, Some(&key()), &mut sources(&c1, |_| true)).unwrap();
    assert_eq!(out, plain);
}

#[test]
fn range_out_of_bounds_is_refused() {
    let (m, cols) = enc(params(S, 3, 2), &Access::Public, &data(100, 1));
    let err = expect_err(dec_range(&m, None, &mut sources(&cols, |_| true), 50..101));
    assert!(matches!(err, DecodeError::RangeOutOfBounds { .. }), "{err}");
    let (out, _) = dec_range(&m, None, &mut sources(&cols, |_| true), 100..100).unwrap();
    assert!(out.is_empty());
}

/// A source that counts which bytes were read, to prove ranges read only their segments.
struct Counting {
    inner: Cursor<Vec<u8>>,
    read: std::rc::Rc<std::cell::Cell<u64>>,
}
impl std::io::Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}
impl std::io::Seek for Counting {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

#[test]
fn a_range_reads_only_its_segments_from_k_columns() {
    let p = params(S, 3, 2);
    let plain = data(50 * S as usize, 2);
    let (m, cols) = enc(p, &Access::Public, &plain);
    let counter = std::rc::Rc::new(std::cell::Cell::new(0));
    let mut srcs: Vec<Option<Counting>> = cols
        .iter()
        .map(|c| {
            Some(Counting {
                inner: Cursor::new(c.clone()),
                read: counter.clone(),
            })
        })
        .collect();
    let mut d = Decoder::new(m.clone(), None).unwrap();
    let mut out = Vec::new();
    let range = 10 * S as u64 + 5..12 * S as u64 + 1; // segments 10, 11, 12
    decode_range(&mut d, &mut srcs, range.clone(), &mut out).unwrap();
    assert_eq!(out, plain[range.start as usize..range.end as usize]);
    assert_eq!(counter.get(), 3 * 3 * m.layout().shard_len());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn prop_roundtrip_any_k_columns(
        len in 0usize..40_000,
        k in 1u8..6,
        m in 1u8..4,
        public in any::<bool>(),
        lost_seed in any::<u64>(),
    ) {
        // 4 KiB per data column keeps every data shard carrying data (see Params::new).
        let p = params(S * k as u32, k, m);
        let n = p.columns();
        let plain = data(len, lost_seed);
        let access = if public { Access::Public } else { Access::Private(FileKey::random()) };
        let (manifest, cols) = enc(p, &access, &plain);
        // Lose m columns chosen by the seed.
        let mut order: Vec<usize> = (0..n).collect();
        let mut x = lost_seed | 1;
        for i in (1..n).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            order.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let lost = &order[..m as usize];
        let (out, _) = dec_file(&manifest, key_of(&access), &mut sources(&cols, |i| !lost.contains(&i))).unwrap();
        prop_assert_eq!(out, plain);
    }

    #[test]
    fn prop_range_equals_slice_of_full_decode(
        len in 1usize..60_000,
        a in any::<u64>(),
        b in any::<u64>(),
        public in any::<bool>(),
    ) {
        let p = params(S, 3, 2);
        let plain = data(len, a ^ b);
        let access = if public { Access::Public } else { Access::Private(FileKey::random()) };
        let (m, cols) = enc(p, &access, &plain);
        let (x, y) = (a % (len as u64 + 1), b % (len as u64 + 1));
        let range = x.min(y)..x.max(y);
        // Use parity columns for some ranges: drop two data columns.
        let (out, _) = dec_range(&m, key_of(&access), &mut sources(&cols, |i| i >= 2 || a % 2 == 0), range.clone()).unwrap();
        let (full, _) = dec_file(&m, key_of(&access), &mut sources(&cols, |_| true)).unwrap();
        prop_assert_eq!(&out[..], &full[range.start as usize..range.end as usize]);
    }

    #[test]
    fn prop_any_flipped_bit_is_detected(
        len in 1usize..20_000,
        column in 0usize..5,
        pos_seed in any::<u64>(),
        bit in 0u8..8,
    ) {
        let access = Access::Private(FileKey::random());
        let plain = data(len, pos_seed);
        let (m, mut cols) = enc(params(S, 3, 2), &access, &plain);
        let pos = (pos_seed % cols[column].len() as u64) as usize;
        cols[column][pos] ^= 1 << bit;
        // Exactly k columns, including the damaged one.
        let keep = |i: usize| i == column || (i + 5 - column) % 5 < 3;
        match dec_file(&m, key_of(&access), &mut sources(&cols, keep)) {
            Err(DecodeError::NotEnoughColumns { faults, .. }) => {
                let named = faults
                    .iter()
                    .any(|(c, f)| *c == column && matches!(f, ColumnFault::HashMismatch { .. }));
                prop_assert!(named, "column {} not named in {:?}", column, faults);
            }
            other => prop_assert!(false, "expected an error naming column {}, got {:?}", column, other),
        }
    }

    #[test]
    fn prop_manifest_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let _ = Manifest::from_bytes(&bytes);
    }

    #[test]
    fn prop_manifest_mutations_never_panic(pos in any::<usize>(), val in any::<u8>(), cut in any::<usize>()) {
        let (m, _) = enc(params(S, 3, 2), &Access::Public, &data(100, 1));
        let mut b = m.as_bytes().to_vec();
        let i = pos % b.len();
        b[i] = val;
        b.truncate(cut % (b.len() + 1));
        if let Ok(parsed) = Manifest::from_bytes(&b) {
            // Whatever parses re-encodes to the same bytes: one encoding per manifest.
            prop_assert_eq!(parsed.as_bytes(), &b[..]);
        }
    }

    #[test]
    fn prop_cap_parser_never_panics(s in "\\PC{0,140}") {
        let _ = s.parse::<mosaic_codec::Cap>();
    }

    #[test]
    fn prop_caps_roundtrip(id in any::<[u8; 32]>(), key in any::<[u8; 32]>()) {
        let cap = mosaic_codec::ReadCap {
            id: mosaic_codec::Hash::from_bytes(id),
            key: FileKey::from_bytes(key),
        };
        prop_assert_eq!(cap.to_string().parse::<mosaic_codec::ReadCap>().unwrap(), cap);
    }
}

/// What a cache keeps (a segment's data shards, from the decoder) opens again in place,
/// to the same plaintext; any flipped byte, padding included, is refused.
#[test]
fn data_shards_reopen_in_place_and_tampering_is_refused() {
    for access in both_accesses() {
        let p = params(4096, 3, 2);
        let plain = data(4096 * 2 + 1000, 5);
        let (m, cols) = enc(p, &access, &plain);
        let layout = *m.layout();
        let mut d = Decoder::new(m.clone(), key_of(&access)).unwrap();
        for seg in 0..layout.segments() {
            d.begin_segment(seg);
            let span = layout.column_span(seg);
            for c in [1, 3, 4] {
                d.shard_mut(c)
                    .copy_from_slice(&cols[c][span.start as usize..span.end as usize]);
                d.set_present(c, true);
            }
            d.open_segment().unwrap();
            let want = d.plaintext().to_vec();
            let kept = d.data_shards().to_vec();
            let mut buf = kept.clone();
            let len = d.open_data_shards_in_place(seg, &mut buf).unwrap();
            assert_eq!(&buf[..len], &want[..]);
            let start = layout.plain_offset(seg) as usize;
            assert_eq!(&want[..], &plain[start..start + want.len()]);
            for at in [0, kept.len() / 2, kept.len() - 1] {
                let mut bad = kept.clone();
                bad[at] ^= 1;
                assert!(
                    d.open_data_shards_in_place(seg, &mut bad).is_err(),
                    "byte {at}"
                );
            }
            let mut short = kept[..kept.len() - 1].to_vec();
            assert!(d.open_data_shards_in_place(seg, &mut short).is_err());
            let mut other = kept.clone();
            assert!(
                d.open_data_shards_in_place((seg + 1) % layout.segments(), &mut other)
                    .is_err(),
                "bound to its segment index"
            );
        }
    }
}
