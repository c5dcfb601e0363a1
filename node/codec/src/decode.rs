//! The decoder: manifest + key + any `k` columns → plaintext, whole or a byte range.
//!
//! [`Decoder`] works one segment at a time on shards its caller supplies (from files,
//! or from the network), so a range read touches only the segments it needs. Per
//! segment: rebuild missing data shards (Reed–Solomon) → check the zero padding →
//! check the tag and decrypt *out of place* (the sealed shards stay intact) → plaintext.
//!
//! Integrity never rests on one check:
//! - a wrong shard fails the segment's tag; the caller then supplies spare shards and the
//!   decoder searches for `k` that open, re-encodes the segment and compares every shard
//!   it was given, so it names *each* corrupt column rather than guessing;
//! - a whole-file decode re-encodes every segment and hashes all `n` authentic columns:
//!   they must match the manifest, so one file id yields one plaintext whichever `k`
//!   columns a reader fetched (an uploader cannot write columns that decode differently
//!   depending on the subset: that is reported as [`DecodeError::Inconsistent`]);
//! - [`verify_columns`] checks whole columns against the manifest's hashes (what
//!   iroh-blobs' verified streaming does chunk by chunk).

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
    manifest::{Manifest, Metadata, MetadataError},
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
    /// The key opened the metadata, but it does not parse: a faulty encoder wrote it.
    #[error("the file's metadata is malformed ({0}): it was written by a faulty encoder")]
    BadMetadata(MetadataError),
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
    /// The columns are each intact but do not form one file: the uploader wrote
    /// inconsistent data, so different readers could see different content.
    #[error(
        "the columns of this file do not form one consistent file (columns {columns:?} disagree with the others{}): the uploader wrote inconsistent data, so do not trust this file id",
        .segment.map(|s| format!(" in segment {s}")).unwrap_or_default()
    )]
    Inconsistent {
        /// Where it was found, if in one segment.
        segment: Option<u64>,
        /// The columns that disagree.
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
    /// The current segment's `n` shards, as given, then with data shards rebuilt.
    stripe: Vec<u8>,
    /// The authentic parity shards of the current segment, when re-encoded.
    parity: Vec<u8>,
    /// The current segment's plaintext.
    plain: Vec<u8>,
    present: Vec<bool>,
    segment: u64,
    /// Hashers of the authentic columns being checked, while checking a whole file
    /// (segments in order from 0; `hashed` counts them).
    hashers: Option<Vec<Option<blake3::Hasher>>>,
    hashed: u64,
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
        // The metadata opened, so a key holder wrote it: malformed means a faulty encoder.
        let metadata = Metadata::decode(&plain).map_err(DecodeError::BadMetadata)?;
        let layout = *manifest.layout();
        let params = layout.params();
        let (k, m, n) = (
            params.data_columns(),
            params.parity_columns(),
            params.columns(),
        );
        // The stripe buffers are allocated at the first `begin_segment`: a reader that
        // only opens cached segments in place never needs them.
        Ok(Self {
            erasure: Erasure::new(k, m),
            stripe: Vec::new(),
            parity: Vec::new(),
            plain: Vec::new(),
            present: vec![false; n],
            segment: 0,
            hashers: None,
            hashed: 0,
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

    /// From now on, re-encode every segment opened and hash the authentic bytes of the
    /// columns in `which`, for [`Decoder::check_columns`]. Segments must then be opened
    /// in order from 0.
    pub fn hash_columns(&mut self, which: &[bool]) {
        self.hashers = Some(which.iter().map(|&w| w.then(blake3::Hasher::new)).collect());
        self.hashed = 0;
    }

    /// After every segment was opened in order under [`Decoder::hash_columns`]: checks
    /// that the authentic columns hash to the manifest's column hashes.
    ///
    /// # Panics
    /// If [`Decoder::hash_columns`] was not called, or not every segment was opened.
    pub fn check_columns(&self) -> Result<(), DecodeError> {
        let hashers = self
            .hashers
            .as_ref()
            .expect("check_columns() after hash_columns()");
        assert_eq!(
            self.hashed,
            self.layout().segments(),
            "check_columns() before the last segment"
        );
        let columns: Vec<usize> = hashers
            .iter()
            .zip(self.manifest.columns())
            .enumerate()
            .filter(|(_, (h, expected))| {
                h.as_ref()
                    .is_some_and(|h| Hash::from(h.finalize()) != **expected)
            })
            .map(|(c, _)| c)
            .collect();
        if columns.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Inconsistent {
                segment: None,
                columns,
            })
        }
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
        if self.stripe.is_empty() {
            let layout = *self.layout();
            let params = layout.params();
            let shard = max_shard_len(&layout);
            self.stripe = vec![0; params.columns() * shard];
            self.parity = vec![0; params.parity_columns() * shard];
            self.plain = vec![
                0;
                layout
                    .plain_len(0)
                    .max(layout.plain_len(layout.segments() - 1))
            ];
        }
    }

    /// Opens segment `index` in place from its `k` data shards, concatenated (what
    /// [`Decoder::data_shards`] gave): no erasure decoding, no copy. On success the
    /// segment's plaintext is `shards[..returned length]`. Does not count towards
    /// [`Decoder::check_columns`].
    pub fn open_data_shards_in_place(
        &self,
        index: u64,
        shards: &mut [u8],
    ) -> Result<usize, SegmentError> {
        let layout = self.layout();
        let k = layout.params().data_columns();
        let corrupt = || SegmentError::Corrupt {
            columns: (0..k).collect(),
        };
        if index >= layout.segments() || shards.len() != k * layout.segment_shard_len(index) {
            return Err(corrupt());
        }
        let sealed = layout.sealed_len(index);
        // As in `try_open`: the padding is not covered by the tag, so check it is zero.
        if shards[sealed..].iter().any(|&b| b != 0) {
            return Err(corrupt());
        }
        self.sealer
            .open_segment_in_place(index, &mut shards[..sealed])
            .map_err(|_| corrupt())?;
        Ok(sealed - super::layout::TAG_LEN)
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
        // (a rebuild writes only absent shards; the tag is checked out of place), so the
        // shards need copying only if it fails and other subsets must be tried.
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

    /// After [`Decoder::open_segment`] succeeded: the segment's authentic data shards,
    /// `k` shards of [`Layout::segment_shard_len`] bytes, concatenated (the sealed
    /// segment and its zero padding). Given back as the first `k` shards, they open the
    /// segment again without erasure decoding: what a cache keeps.
    pub fn data_shards(&self) -> &[u8] {
        let k = self.layout().params().data_columns();
        &self.stripe[..k * self.shard_len()]
    }

    /// After [`Decoder::open_segment`] succeeded: the segment's plaintext.
    pub fn plaintext(&self) -> &[u8] {
        &self.plain[..self.layout().plain_len(self.segment)]
    }

    fn opened(&self, corrupt: Vec<usize>) -> Opened<'_> {
        let plain = self.layout().plain_len(self.segment);
        Opened {
            plaintext: &self.plain[..plain],
            corrupt,
        }
    }

    /// Tries to open the segment from the shards in `mask`. On success the plaintext is
    /// in `self.plain` and the result lists the present shards that differ from the
    /// authentic ones: checked against `original` (the shards as given) on a retry,
    /// since some shard given is then known to be bad.
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
        let plain = sealed - super::layout::TAG_LEN;
        self.sealer
            .open_segment(index, &buf[..sealed], &mut self.plain[..plain])
            .ok()?;
        // The data shards are authentic now. Their parity is needed to check a whole
        // file, or to learn which given shards were wrong.
        let hashing = self.hashers.is_some() && self.hashed == index;
        if !hashing && original.is_none() {
            return Some(Vec::new());
        }
        let parity = &mut self.parity[..(n - k) * len];
        {
            let data: Vec<&[u8]> = buf[..k * len].chunks_exact(len).collect();
            let mut out: Vec<&mut [u8]> = parity.chunks_exact_mut(len).collect();
            self.erasure.encode(&data, &mut out);
        }
        let authentic = |c: usize| -> &[u8] {
            if c < k {
                &buf[c * len..(c + 1) * len]
            } else {
                &parity[(c - k) * len..(c - k + 1) * len]
            }
        };
        let corrupt = match original {
            None => Vec::new(),
            Some(original) => (0..n)
                .filter(|&c| self.present[c] && authentic(c) != &original[c * len..(c + 1) * len])
                .collect(),
        };
        if hashing {
            if let Some(hashers) = &mut self.hashers {
                for (c, h) in hashers.iter_mut().enumerate() {
                    if let Some(h) = h {
                        h.update(authentic(c));
                    }
                }
            }
            self.hashed += 1;
        }
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
    let mut faults = Vec::new();
    for (c, source) in columns.iter_mut().enumerate() {
        let fault = match source {
            None => Some(ColumnFault::Missing),
            Some(r) => verify_column(r, &manifest.columns()[c], manifest.layout().column_len()),
        };
        if let Some(f) = fault {
            faults.push((c, f));
        }
    }
    Ok(faults)
}

/// Hashes one whole column; `None` if it has the expected length and hash.
fn verify_column<R: Read + Seek>(
    r: &mut R,
    expected: &Hash,
    expected_len: u64,
) -> Option<ColumnFault> {
    let mut buf = vec![0u8; 256 << 10];
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
    match result {
        Err(e) => Some(unreadable(&e)),
        Ok(()) if total != expected_len => Some(ColumnFault::Length {
            expected: expected_len,
            actual: total,
        }),
        Ok(()) => {
            let actual = Hash::from(hasher.finalize());
            (actual != *expected).then_some(ColumnFault::HashMismatch { actual })
        }
    }
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
    let skip = vec![false; columns.len()];
    let segments = decoder.layout().segments_for(range.clone());
    decode_segments(decoder, columns, range, segments, out, &mut faults, &skip)
}

/// Decodes the whole file from `k` columns (more only where a shard turns out bad), so
/// that no byte is output unverified and one file id yields one content:
/// - every segment is re-encoded and all `n` authentic columns are hashed: if they do not
///   match the manifest, the uploader wrote columns that do not form one file
///   ([`DecodeError::Inconsistent`]), different readers could see different content, and
///   the caller must discard the output (the CLI writes to a temporary file and renames
///   it only on success);
/// - a private file decodes in one pass: its tags (Poly1305 under the file key)
///   authenticate every shard used before its plaintext is output;
/// - a public file's tags can be forged by anyone, so its `k` columns are first checked
///   against the manifest's hashes (data columns first: they need no Reed–Solomon work),
///   and only then decoded.
///
/// Columns beyond those needed are not read; [`verify_columns`] checks every column.
pub fn decode_file<R: Read + Seek>(
    decoder: &mut Decoder,
    columns: &mut [Option<R>],
    out: &mut impl Write,
) -> Result<DecodeReport, DecodeError> {
    let manifest = decoder.manifest().clone();
    let layout = *manifest.layout();
    let (k, n) = (layout.params().data_columns(), layout.params().columns());
    if columns.len() != n {
        return Err(DecodeError::ColumnCount {
            given: columns.len(),
            expected: n,
        });
    }
    // Every segment, even the one empty segment of an empty file: its tag is what
    // proves the file is empty.
    let all = 0..layout.segments();
    let whole = 0..layout.length();
    if !manifest.is_public() {
        let mut faults: Vec<Option<ColumnFault>> = columns
            .iter()
            .map(|c| c.is_none().then_some(ColumnFault::Missing))
            .collect();
        decoder.hash_columns(&vec![true; n]);
        let skip = vec![false; n];
        let report = decode_segments(decoder, columns, whole, all, out, &mut faults, &skip)?;
        decoder.check_columns()?;
        return Ok(report);
    }
    let mut faults: Vec<Option<ColumnFault>> = vec![None; n];
    let mut chosen = vec![false; n];
    let mut verified = 0;
    for (c, source) in columns.iter_mut().enumerate() {
        faults[c] = match source {
            None => Some(ColumnFault::Missing),
            Some(_) if verified == k => continue,
            Some(r) => verify_column(r, &manifest.columns()[c], layout.column_len()),
        };
        if faults[c].is_none() {
            chosen[c] = true;
            verified += 1;
        }
    }
    if verified < k {
        return Err(DecodeError::NotEnoughColumns {
            segment: 0,
            need: k,
            usable: verified,
            faults: collect_faults(&faults),
        });
    }
    let unchosen: Vec<bool> = chosen.iter().map(|c| !c).collect();
    decoder.hash_columns(&unchosen);
    let report = decode_segments(decoder, columns, whole, all, out, &mut faults, &unchosen)?;
    decoder.check_columns()?;
    Ok(report)
}

fn collect_faults(faults: &[Option<ColumnFault>]) -> Vec<(usize, ColumnFault)> {
    faults
        .iter()
        .enumerate()
        .filter_map(|(c, f)| f.clone().map(|f| (c, f)))
        .collect()
}

/// Decodes `segments`, writing the part of each inside the plaintext `range`.
#[allow(clippy::too_many_arguments)]
fn decode_segments<R: Read + Seek>(
    decoder: &mut Decoder,
    columns: &mut [Option<R>],
    range: Range<u64>,
    segments: Range<u64>,
    out: &mut impl Write,
    faults: &mut [Option<ColumnFault>],
    skip: &[bool],
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
    for segment in segments {
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
                if faults[c].is_some() || skip[c] {
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
                    faults: collect_faults(faults),
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
                Err(SegmentError::Corrupt { columns: tried }) => {
                    if next < n {
                        // One more shard to tell the corrupt ones apart.
                        want = loaded + 1;
                        continue;
                    }
                    // No spare left: hash the columns used to find the damaged ones.
                    let mut found = false;
                    for &c in &tried {
                        let r = columns[c].as_mut().expect("a shard was read from it");
                        if let Some(f) =
                            verify_column(r, &layout_hash(decoder, c), layout.column_len())
                        {
                            faults[c] = Some(f);
                            decoder.set_present(c, false);
                            loaded -= 1;
                            found = true;
                        }
                    }
                    if !found {
                        // Every column is as the uploader wrote it, yet no k of them
                        // open the segment: the upload itself is malformed.
                        return Err(DecodeError::Inconsistent {
                            segment: Some(segment),
                            columns: tried,
                        });
                    }
                }
                Err(SegmentError::NotEnoughShards { .. }) => unreachable!("k shards are present"),
            }
        }
    }
    Ok(DecodeReport {
        faults: collect_faults(faults),
    })
}

fn layout_hash(decoder: &Decoder, column: usize) -> Hash {
    decoder.manifest().columns()[column]
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
