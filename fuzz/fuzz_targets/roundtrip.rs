//! The codec end to end (mosaic-codec's public API, as `node/codec/tests/codec.rs`
//! uses it): any plaintext, public or private, with small random `k`, `m` and segment
//! size and any metadata.
//!
//! Checks: the columns have the length the layout says and the hashes the manifest
//! names, and the manifest parses to itself; any `k` of the `n` columns (a random
//! choice) decode to exactly the plaintext and its metadata, reporting only the
//! columns left out; a random byte range decodes to exactly those bytes; the columns
//! left out rebuild, without the key, to exactly their bytes; with one byte of one
//! column changed, the whole file still decodes to exactly the plaintext, and only
//! that column is ever blamed; a private file refuses another key.
#![no_main]

use std::{
    io::Cursor,
    time::{Duration, UNIX_EPOCH},
};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mosaic_codec::{
    Access, ColumnFault, DecodeError, Decoder, EncodeError, FileKey, Hash, Manifest, Metadata,
    Params, ParamsError, Rebuilder, decode_file, decode_range, encode,
};

#[derive(Debug, Arbitrary)]
struct Input {
    /// Segment size: 4 to 16 KiB, so a few KiB of plaintext make several segments.
    segment_kib: u8,
    k: u8,
    m: u8,
    /// A private file's key; public without one.
    key: Option<[u8; 32]>,
    name: Option<String>,
    media_type: Option<String>,
    modified: Option<(i32, u32)>,
    /// Plaintext length (its bytes repeat `pattern`, so long files need short inputs).
    length: u16,
    /// Which `k` columns to decode from.
    pick: u64,
    /// A byte range to decode.
    range: (u16, u16),
    /// A column, an offset in it and a non-zero mask to damage it with.
    damage: (u8, u32, u8),
    pattern: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let segment_size = 1024 * (4 + u32::from(input.segment_kib % 13));
    let (k, m) = (1 + input.k % 8, 1 + input.m % 4);
    let params = match Params::new(segment_size, k, m) {
        Ok(p) => p,
        Err(ParamsError::TooManyDataColumns { suggested, .. }) => {
            Params::new(segment_size, suggested, m).expect("the suggested k is valid")
        }
        Err(e) => panic!("{segment_size} {k} {m}: {e}"),
    };
    let (k, n) = (params.data_columns(), params.columns());
    let plain: Vec<u8> = (0..usize::from(input.length))
        .map(|i| match input.pattern.len() {
            0 => 0,
            p => input.pattern[i % p].wrapping_add((i / p) as u8),
        })
        .collect();
    let access = match input.key {
        Some(key) => Access::Private(FileKey::from_bytes(key)),
        None => Access::Public,
    };
    let key = match &access {
        Access::Private(key) => Some(key),
        Access::Public => None,
    };

    // Encode; metadata the format refuses is refused before any byte is read.
    let mut metadata = Metadata {
        name: input.name,
        media_type: input.media_type,
        modified: input.modified.map(|(secs, nanos)| {
            let nanos = Duration::from_nanos(u64::from(nanos % 1_000_000_000));
            let secs = Duration::from_secs(u64::from(secs.unsigned_abs()));
            if secs.is_zero() || input.segment_kib % 2 == 1 {
                UNIX_EPOCH + secs + nanos
            } else {
                UNIX_EPOCH - secs + nanos
            }
        }),
    };
    let mut columns = vec![Vec::new(); n];
    let length = plain.len() as u64;
    let manifest = match encode(params, &access, &metadata, length, &plain[..], &mut columns) {
        Ok(m) => m,
        Err(EncodeError::Metadata(_)) => {
            metadata = Metadata::default();
            columns = vec![Vec::new(); n];
            encode(params, &access, &metadata, length, &plain[..], &mut columns)
                .expect("encoding without metadata")
        }
        Err(e) => panic!("encoding failed: {e}"),
    };

    let layout = *manifest.layout();
    assert_eq!(layout.length(), length);
    for (c, column) in columns.iter().enumerate() {
        assert_eq!(column.len() as u64, layout.column_len(), "column {c}");
        assert_eq!(manifest.columns()[c], Hash::of(column), "column {c}");
    }
    assert_eq!(
        Manifest::from_bytes(manifest.as_bytes()).as_ref(),
        Ok(&manifest)
    );
    assert_eq!(manifest.is_public(), key.is_none());

    // Any k columns: a random choice.
    let chosen = choose(n, k, input.pick);
    let sources = |keep: &dyn Fn(usize) -> bool| -> Vec<Option<Cursor<Vec<u8>>>> {
        columns
            .iter()
            .enumerate()
            .map(|(c, col)| keep(c).then(|| Cursor::new(col.clone())))
            .collect()
    };
    let mut decoder = Decoder::new(manifest.clone(), key).expect("the right key opens");
    assert_eq!(decoder.metadata(), &metadata);
    let mut out = Vec::new();
    let report = decode_file(&mut decoder, &mut sources(&|c| chosen[c]), &mut out)
        .expect("any k columns decode");
    assert!(out == plain, "decoded plaintext differs");
    for (c, fault) in &report.faults {
        assert!(
            !chosen[*c] && *fault == ColumnFault::Missing,
            "{c}: {fault}"
        );
    }

    // A byte range.
    let start = u64::from(input.range.0) % (length + 1);
    let end = start + u64::from(input.range.1) % (length - start + 1);
    let mut decoder = Decoder::new(manifest.clone(), key).expect("the right key opens");
    let mut part = Vec::new();
    decode_range(
        &mut decoder,
        &mut sources(&|c| chosen[c]),
        start..end,
        &mut part,
    )
    .expect("a range inside the file decodes");
    assert!(
        part == plain[start as usize..end as usize],
        "range {start}..{end} differs"
    );

    // The columns left out, rebuilt without the key from the chosen ones.
    let wanted: Vec<usize> = (0..n).filter(|&c| !chosen[c]).collect();
    let mut rebuilder = Rebuilder::new(&manifest, &wanted);
    for segment in 0..layout.segments() {
        let span = layout.column_span(segment);
        let span = span.start as usize..span.end as usize;
        rebuilder.begin_segment(segment);
        for c in (0..n).filter(|&c| chosen[c]) {
            rebuilder
                .shard_mut(c)
                .copy_from_slice(&columns[c][span.clone()]);
            rebuilder.set_present(c);
        }
        assert!(rebuilder.rebuild(), "k shards rebuild segment {segment}");
        for &c in &wanted {
            assert!(
                rebuilder.shard(c) == &columns[c][span.clone()],
                "column {c}"
            );
        }
    }
    rebuilder
        .finish()
        .expect("rebuilt columns match the manifest");

    // One byte of one column changed: still exactly the plaintext, and no other column
    // blamed.
    let (column, offset, mask) = input.damage;
    let column = usize::from(column) % n;
    let offset = offset as usize % columns[column].len();
    let mut damaged = sources(&|_| true);
    if let Some(source) = &mut damaged[column] {
        source.get_mut()[offset] ^= mask.max(1);
    }
    let mut decoder = Decoder::new(manifest.clone(), key).expect("the right key opens");
    let mut out = Vec::new();
    let report =
        decode_file(&mut decoder, &mut damaged, &mut out).expect("one damaged column is tolerated");
    assert!(
        out == plain,
        "decoded plaintext differs with column {column} damaged"
    );
    for (c, fault) in &report.faults {
        assert_eq!(
            *c, column,
            "column {c} blamed ({fault}) for damage in {column}"
        );
    }

    if let Some(key) = key {
        let mut other = *key.as_bytes();
        other[0] ^= 1;
        assert!(matches!(
            Decoder::new(manifest, Some(&FileKey::from_bytes(other))),
            Err(DecodeError::WrongKey)
        ));
    }
});

/// `k` of `n` columns, picked by `seed` (a partial Fisher–Yates shuffle).
fn choose(n: usize, k: usize, seed: u64) -> Vec<bool> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut x = seed | 1;
    for i in 0..k {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let j = i + (x % (n - i) as u64) as usize;
        order.swap(i, j);
    }
    let mut chosen = vec![false; n];
    for &c in &order[..k] {
        chosen[c] = true;
    }
    chosen
}
