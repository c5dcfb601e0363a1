//! The decoder: manifest + key + any `k` columns → plaintext, whole or a byte range.
//!
//! [`Decoder`] works one segment at a time on shards its caller supplies (from files,
//! or from the network), so a range read touches only the segments it needs. Per
//! segment: rebuild missing data shards (Reed–Solomon) → check the zero padding → open
//! the tag (Poly1305, or BLAKE3 for public files) → plaintext.
//!
//! Integrity never rests on one check: a wrong shard fails the segment's tag; the caller
//! then supplies spare shards and the decoder searches for `k` that open. The segment
//! opened, it re-encodes it and compares every shard it was given, so it names *each*
//! corrupt column rather than guessing. [`verify_columns`] checks whole columns against
//! the manifest's hashes (what iroh-blobs' verified streaming does chunk by chunk).

use std::{
    fmt,
    io::{self, Read, Seek, SeekFrom, Write},
    ops::Range,
};

use super::{
    encode::{max_shard_len, read_full},
    erasure::Erasure,
    hash::Hash,
    layout::Layout,
    manifest::{Manifest, Metadata},
    seal::{FileKey, Sealer, Suite},
};

/// At most this many `k`-subsets of the present shards are tried to open a segment
/// whose first try failed: enough for any two faults among (10, 4), and a bound on the
/// work a hostile set of shards can cause.
pub const MAX_SUBSET_TRIES: usize = 1024;

/// What is wrong with one column.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ColumnFault {
    /// No source was given for it.
    Missing,
    /// Its bytes hash to something else than the manifest says.
    HashMismatch {
        /// The hash of the bytes found.
        actual: Hash,
    },
    /// It is shorter or longer than the manifest implies.
    Length {
        /// Bytes the manifest implies.
        expected: u64,
        /// Bytes found (for a short read, where it ended).
        actual: u64,
    },
    /// Reading it failed.
    Unreadable {
        /// The I/O error kind.
        kind: io::ErrorKind,
        /// The I/O error's message.
        message: String,
    },
    /// Its shard of this segment disagrees with the authentic segment.
    Corrupt {
        /// The segment where it was caught.
        segment: u64,
    },
}

impl fmt::Display for ColumnFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnFault::Missing => f.write_str("missing"),
            ColumnFault::HashMismatch { actual } => {
                write!(
                    f,
                    "corrupt (hash {} does not match the manifest)",
                    actual.fmt_short()
                )
            }
            ColumnFault::Length { expected, actual } => {
                write!(f, "wrong length ({actual} bytes, expected {expected})")
            }
            ColumnFault::Unreadable { message, .. } => write!(f, "unreadable ({message})"),
            ColumnFault::Corrupt { segment } => {
                write!(f, "corrupt (bad data in segment {segment})")
            }
        }
    }
}

fn list_faults(faults: &[(usize, ColumnFault)]) -> String {
    if faults.is_empty() {
        return "no column reported a fault".into();
    }
    faults
        .iter()
        .map(|(c, f)| format!("column {c} {f}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Decoding failed. No plaintext of a failed segment is ever written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A private file was given no key.
    #[error("this file is private: give its readcap (mr1…), not only its id")]
    KeyRequired,
    /// The key does not open the file.
    #[error("the key does not open this file: the readcap is damaged or belongs to another file")]
    WrongKey,
    /// Wrong number of column sources.
    #[error("{given} column sources were given; this file has {expected} columns")]
    ColumnCount {
        /// Sources given.
        given: usize,
        /// `n`.
        expected: usize,
    },
    /// The byte range is not inside the file.
    #[error("range {start}..{end} is outside the file's {length} bytes")]
    RangeOutOfBounds {
        /// Range start.
        start: u64,
        /// Range end (exclusive).
        end: u64,
        /// File length.
        length: u64,
    },
    /// Fewer than `k` usable columns.
    #[error(
        "segment {segment} needs {need} columns but only {usable} are usable: {}; fetch the others from other nodes, or the file is lost",
        list_faults(.faults)
    )]
    NotEnoughColumns {
        /// The segment that could not be rebuilt.
        segment: u64,
        /// `k`.
        need: usize,
        /// Usable columns.
        usable: usize,
        /// Every column at fault, and why.
        faults: Vec<(usize, ColumnFault)>,
    },
    /// No `k` of the available shards open the segment, so the corrupt ones cannot be
    /// told apart.
    #[error(
        "segment {segment} is corrupt in more columns than can be corrected (columns {columns:?} were tried); fetch fresh copies of them"
    )]
    SegmentCorrupt {
        /// The segment.
        segment: u64,
        /// The columns whose shards were tried.
        columns: Vec<usize>,
    },
    /// Writing the plaintext failed.
    #[error("writing the output failed: {source}")]
    Write {
        /// The I/O error.
        source: io::Error,
    },
}

/// What a successful decode noticed: columns at fault that it worked around.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodeReport {
    /// Columns at fault, and why. Repair them.
    pub faults: Vec<(usize, ColumnFault)>,
}

/// A segment could not be opened from the shards given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentError {
    /// Fewer than `k` shards are present.
    NotEnoughShards {
        /// Shards present.
        present: usize,
    },
    /// The shards present do not open; give more shards to find the corrupt ones.
    Corrupt {
        /// The shards that were tried.
        columns: Vec<usize>,
    },
}

/// A segment opened.
#[derive(Debug)]
pub struct Opened<'a> {
    /// The segment's plaintext.
    pub plaintext: &'a [u8],
    /// Columns whose shard of this segment was proven corrupt.
    pub corrupt: Vec<usize>,
}

/// Decodes the segments of one file from shards its caller supplies.
#[derive(Debug)]
pub struct Decoder {
    manifest: Manifest,
    metadata: Metadata,
    sealer: Sealer,
    erasure: Erasure,
    stripe: Vec<u8>,
    present: Vec<bool>,
    segment: u64,
}

impl Decoder {
    /// A decoder for `manifest` (already checked against its id). A private file needs
    /// its key, which is checked here by opening the sealed metadata; a public file
    /// ignores any key.
    pub fn new(manifest: Manifest, key: Option<&FileKey>) -> Result<Self, DecodeError> {
        let key = match manifest.suite() {
            Suite::Public => None,
            _ => Some(key.ok_or(DecodeError::KeyRequired)?),
        };
        let sealer = manifest.sealer(key);
        let plain = sealer
            .open_metadata(manifest.header(), manifest.metadata_field())
            .map_err(|_| DecodeError::WrongKey)?;
        // The metadata opened, so it was written by a key holder: a malformed encoding is
        // a broken encoder, which we refuse like a wrong key rather than trust.
        let metadata = Metadata::decode(&plain).map_err(|_| DecodeError::WrongKey)?;
        let layout = *manifest.layout();
        let params = layout.params();
        let n = params.columns();
        Ok(Self {
            erasure: Erasure::new(params.data_columns(), params.parity_columns()),
            stripe: vec![0; n * max_shard_len(&layout)],
            present: vec![false; n],
            segment: 0,
            manifest,
            metadata,
            sealer,
        })
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    /// The file's metadata (name, media type, modification time).
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }
    /// The file's geometry.
    pub fn layout(&self) -> &Layout {
        self.manifest.layout()
    }

    fn shard_len(&self) -> usize {
        self.layout().segment_shard_len(self.segment)
    }

    /// Starts segment `index`: no shard is present.
    pub fn begin_segment(&mut self, index: u64) {
        assert!(
            index < self.layout().segments(),
            "segment {index} out of range"
        );
        self.segment = index;
        self.present.fill(false);
    }

    /// The buffer for column `column`'s shard of the current segment: fill it (with the
    /// bytes at [`Layout::column_span`] of the column), then [`Decoder::set_present`].
    pub fn shard_mut(&mut self, column: usize) -> &mut [u8] {
        let len = self.shard_len();
        &mut self.stripe[column * len..(column + 1) * len]
    }

    /// Marks column `column`'s shard as filled (or not).
    pub fn set_present(&mut self, column: usize, present: bool) {
        self.present[column] = present;
    }

    /// Opens the current segment from the shards present.
    pub fn open_segment(&mut self) -> Result<Opened<'_>, SegmentError> {
        let k = self.layout().params().data_columns();
        let present: Vec<usize> = (0..self.present.len())
            .filter(|&c| self.present[c])
            .collect();
        if present.len() < k {
            return Err(SegmentError::NotEnoughShards {
                present: present.len(),
            });
        }
        let len = self.shard_len();
        let n = self.present.len();
        // First try: the first k present shards. It leaves every present shard as it was
        // (a rebuild writes only absent shards; a failed tag check decrypts nothing), so
        // the shards need copying only if it fails and other subsets must be tried.
        let mut mask = self.present.clone();
        for &c in &present[k..] {
            mask[c] = false;
        }
        if let Some(corrupt) = self.try_open(&mask, None) {
            return Ok(self.opened(corrupt));
        }
        let original = self.stripe[..n * len].to_vec();
        let mut subset: Vec<usize> = (0..k).collect();
        for _ in 0..MAX_SUBSET_TRIES {
            if !next_subset(&mut subset, present.len()) {
                break;
            }
            self.stripe[..n * len].copy_from_slice(&original);
            mask.fill(false);
            for &i in &subset {
                mask[present[i]] = true;
            }
            if let Some(corrupt) = self.try_open(&mask, Some(&original)) {
                return Ok(self.opened(corrupt));
            }
        }
        self.stripe[..n * len].copy_from_slice(&original);
        Err(SegmentError::Corrupt { columns: present })
    }

    fn opened(&self, corrupt: Vec<usize>) -> Opened<'_> {
        let plain = self.layout().plain_len(self.segment);
        Opened {
            plaintext: &self.stripe[..plain],
            corrupt,
        }
    }

    /// Tries to open the segment from the shards in `mask`. On success the plaintext is
    /// at the start of the stripe and the result lists the present shards that differ
    /// from the authentic ones: checked against `original` (the shards as given) when
    /// this is a retry, since some shard given is then known to be bad.
    fn try_open(&mut self, mask: &[bool], original: Option<&[u8]>) -> Option<Vec<usize>> {
        let layout = *self.layout();
        let index = self.segment;
        let len = self.shard_len();
        let k = layout.params().data_columns();
        let n = mask.len();
        let buf = &mut self.stripe[..n * len];
        if mask[..k].iter().any(|p| !p) {
            let mut shards: Vec<(&mut [u8], bool)> = buf
                .chunks_exact_mut(len)
                .zip(mask)
                .map(|(b, &p)| (b, p))
                .collect();
            if !self.erasure.reconstruct_data(&mut shards) {
                return None;
            }
        }
        let sealed = layout.sealed_len(index);
        // The padding is part of the data shards but not of the tag: check it is zero so
        // that no flipped byte in a data shard goes unnoticed.
        if buf[sealed..k * len].iter().any(|&b| b != 0) {
            return None;
        }
        // On a retry, re-encode the segment to learn which given shards were wrong.
        let authentic = original.map(|original| {
            let mut all = buf[..k * len].to_vec();
            all.resize(n * len, 0);
            let (data, parity) = all.split_at_mut(k * len);
            let data: Vec<&[u8]> = data.chunks_exact(len).collect();
            let mut parity: Vec<&mut [u8]> = parity.chunks_exact_mut(len).collect();
            self.erasure.encode(&data, &mut parity);
            (all, original)
        });
        self.sealer.open_segment(index, &mut buf[..sealed]).ok()?;
        let corrupt = match authentic {
            None => Vec::new(),
            Some((all, original)) => (0..n)
                .filter(|&c| {
                    self.present[c]
                        && all[c * len..(c + 1) * len] != original[c * len..(c + 1) * len]
                })
                .collect(),
        };
        Some(corrupt)
    }
}

/// Advances `subset` (sorted indices into `0..of`) to the next combination in
/// lexicographic order; `false` after the last.
fn next_subset(subset: &mut [usize], of: usize) -> bool {
    let k = subset.len();
    for i in (0..k).rev() {
        if subset[i] < of - k + i {
            subset[i] += 1;
            for j in i + 1..k {
                subset[j] = subset[j - 1] + 1;
            }
            return true;
        }
    }
    false
}

/// Checks every given column against the manifest: length and BLAKE3 hash. Returns the
/// faults found (missing columns included), in column order.
pub fn verify_columns<R: Read + Seek>(
    manifest: &Manifest,
    columns: &mut [Option<R>],
) -> Result<Vec<(usize, ColumnFault)>, DecodeError> {
    let n = manifest.columns().len();
    if columns.len() != n {
        return Err(DecodeError::ColumnCount {
            given: columns.len(),
            expected: n,
        });
    }
    let expected_len = manifest.layout().column_len();
    let mut buf = vec![0u8; 256 << 10];
    let mut faults = Vec::new();
    for (c, source) in columns.iter_mut().enumerate() {
        let Some(r) = source else {
            faults.push((c, ColumnFault::Missing));
            continue;
        };
        let mut hasher = blake3::Hasher::new();
        let mut total = 0u64;
        let result = r.seek(SeekFrom::Start(0)).and_then(|_| {
            loop {
                match read_full(r, &mut buf)? {
                    0 => break Ok(()),
                    got => {
                        hasher.update(&buf[..got]);
                        total += got as u64;
                        // Stop reading a column that is already too long.
                        if total > expected_len {
                            break Ok(());
                        }
                    }
                }
            }
        });
        let fault = match result {
            Err(e) => Some(unreadable(&e)),
            Ok(()) if total != expected_len => Some(ColumnFault::Length {
                expected: expected_len,
                actual: total,
            }),
            Ok(()) => {
                let actual = Hash::from(hasher.finalize());
                (actual != manifest.columns()[c]).then_some(ColumnFault::HashMismatch { actual })
            }
        };
        if let Some(f) = fault {
            faults.push((c, f));
        }
    }
    Ok(faults)
}

fn unreadable(e: &io::Error) -> ColumnFault {
    ColumnFault::Unreadable {
        kind: e.kind(),
        message: e.to_string(),
    }
}

/// Decodes plaintext bytes `range` from column sources (`None` for a missing column)
/// to `out`, reading only the segments the range needs: `k` shards per segment, more
/// only when a shard turns out corrupt. Columns found at fault are skipped from then on
/// and listed in the report.
pub fn decode_range<R: Read + Seek>(
    decoder: &mut Decoder,
    columns: &mut [Option<R>],
    range: Range<u64>,
    out: &mut impl Write,
) -> Result<DecodeReport, DecodeError> {
    let mut faults: Vec<Option<ColumnFault>> = columns
        .iter()
        .map(|c| c.is_none().then_some(ColumnFault::Missing))
        .collect();
    decode_segments(decoder, columns, range, out, &mut faults)
}

/// Decodes the whole file: first checks every given column against the manifest's
/// hashes (so corruption anywhere, even in a column the decode would not need, is
/// reported), then decodes from the columns that passed.
pub fn decode_file<R: Read + Seek>(
    decoder: &mut Decoder,
    columns: &mut [Option<R>],
    out: &mut impl Write,
) -> Result<DecodeReport, DecodeError> {
    let found = verify_columns(decoder.manifest(), columns)?;
    let mut faults: Vec<Option<ColumnFault>> = vec![None; columns.len()];
    for (c, f) in found {
        faults[c] = Some(f);
    }
    let length = decoder.layout().length();
    decode_segments(decoder, columns, 0..length, out, &mut faults)
}

fn decode_segments<R: Read + Seek>(
    decoder: &mut Decoder,
    columns: &mut [Option<R>],
    range: Range<u64>,
    out: &mut impl Write,
    faults: &mut [Option<ColumnFault>],
) -> Result<DecodeReport, DecodeError> {
    let layout = *decoder.layout();
    let n = layout.params().columns();
    let k = layout.params().data_columns();
    if columns.len() != n {
        return Err(DecodeError::ColumnCount {
            given: columns.len(),
            expected: n,
        });
    }
    if range.start > range.end || range.end > layout.length() {
        return Err(DecodeError::RangeOutOfBounds {
            start: range.start,
            end: range.end,
            length: layout.length(),
        });
    }
    let collect = |faults: &[Option<ColumnFault>]| -> Vec<(usize, ColumnFault)> {
        faults
            .iter()
            .enumerate()
            .filter_map(|(c, f)| f.clone().map(|f| (c, f)))
            .collect()
    };
    for segment in layout.segments_for(range.clone()) {
        decoder.begin_segment(segment);
        let span = layout.column_span(segment);
        let mut want = k;
        let mut loaded = 0;
        let mut next = 0;
        loop {
            // Load shards until `want` are present, data columns first (no rebuild needed).
            while loaded < want && next < n {
                let c = next;
                next += 1;
                if faults[c].is_some() {
                    continue;
                }
                let r = columns[c]
                    .as_mut()
                    .expect("columns without a fault have a source");
                match read_shard(r, span.clone(), layout.column_len(), decoder.shard_mut(c)) {
                    Ok(()) => {
                        decoder.set_present(c, true);
                        loaded += 1;
                    }
                    Err(f) => faults[c] = Some(f),
                }
            }
            if loaded < k {
                return Err(DecodeError::NotEnoughColumns {
                    segment,
                    need: k,
                    usable: loaded,
                    faults: collect(faults),
                });
            }
            match decoder.open_segment() {
                Ok(opened) => {
                    for c in &opened.corrupt {
                        faults[*c] = Some(ColumnFault::Corrupt { segment });
                    }
                    let seg_start = layout.plain_offset(segment);
                    let from = range.start.saturating_sub(seg_start) as usize;
                    let to = ((range.end - seg_start) as usize).min(opened.plaintext.len());
                    out.write_all(&opened.plaintext[from..to])
                        .map_err(|source| DecodeError::Write { source })?;
                    break;
                }
                Err(SegmentError::Corrupt { columns }) => {
                    if next >= n {
                        return Err(DecodeError::SegmentCorrupt { segment, columns });
                    }
                    // One more shard to tell the corrupt ones apart.
                    want = loaded + 1;
                }
                Err(SegmentError::NotEnoughShards { .. }) => unreachable!("k shards are present"),
            }
        }
    }
    Ok(DecodeReport {
        faults: collect(faults),
    })
}

fn read_shard<R: Read + Seek>(
    r: &mut R,
    span: Range<u64>,
    column_len: u64,
    buf: &mut [u8],
) -> Result<(), ColumnFault> {
    r.seek(SeekFrom::Start(span.start))
        .map_err(|e| unreadable(&e))?;
    let got = read_full(r, buf).map_err(|e| unreadable(&e))?;
    if got < buf.len() {
        return Err(ColumnFault::Length {
            expected: column_len,
            actual: span.start + got as u64,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::next_subset;

    #[test]
    fn subsets_enumerate_all_combinations() {
        let mut s = vec![0, 1, 2];
        let mut count = 1;
        while next_subset(&mut s, 5) {
            count += 1;
        }
        assert_eq!(count, 10);
        assert_eq!(s, vec![2, 3, 4]);
    }
}
