//! Coding parameters and the geometry they imply.
//!
//! A file of `length` plaintext bytes is cut into segments of `segment_size` bytes (the
//! last one may be shorter; an empty file still has one, empty, segment so that its
//! emptiness is authenticated). Each sealed segment (plaintext + 16-byte tag) is padded
//! with zeros and cut into `k` data shards of equal length, from which `m` parity shards
//! are computed. Shard `j` of every segment, concatenated, is column `j`.
//!
//! Invariant: every segment but the last has shards of [`Layout::shard_len`] bytes, a
//! multiple of [`COLUMN_ALIGN`]; so segment `i` occupies `[i·L, i·L + shard_len(i))` in
//! *every* column and a plaintext range maps to the same byte range of each column.

use std::ops::Range;

/// Version of the on-disk format described in `docs/format.md`.
pub const FORMAT_VERSION: u8 = 1;
/// Default plaintext bytes per segment (1 MiB).
pub const DEFAULT_SEGMENT_SIZE: u32 = 1 << 20;
/// Smallest allowed segment size in bytes (4 KiB).
pub const MIN_SEGMENT_SIZE: u32 = 4 << 10;
/// Largest allowed segment size in bytes (16 MiB): bounds the memory a decoder commits.
pub const MAX_SEGMENT_SIZE: u32 = 16 << 20;
/// Full shards are a multiple of this many bytes: iroh-blobs' chunk (1 KiB), so segment
/// boundaries fall on chunk boundaries in every column.
pub const COLUMN_ALIGN: u64 = 1024;
/// The last segment's shards are rounded up to a multiple of this many bytes only.
pub const LAST_SHARD_ALIGN: u64 = 64;
/// Bytes of authentication tag appended to every sealed segment (both cipher suites).
pub const TAG_LEN: usize = 16;
/// Default number of data columns.
pub const DEFAULT_DATA_COLUMNS: u8 = 3;
/// Default number of parity columns.
pub const DEFAULT_PARITY_COLUMNS: u8 = 2;
/// At most this many columns per file (Reed–Solomon over GF(2^8) allows 256; one value
/// is kept out so that a column index always fits a `u8` with room for "none").
pub const MAX_COLUMNS: usize = 255;
/// At most this many bytes in one stripe, `n · L` (all shards of one full segment): what
/// a reader or a repairer holds per segment, so a manifest cannot make one commit more.
/// Without it valid `k`, `m` and segment size multiply out to gigabytes (`k = 1`,
/// `m = 254`, 16 MiB segments: 4 GiB per segment, for a file of any size).
pub const MAX_STRIPE: u64 = 64 << 20;

/// How a file is cut and coded: segment size and the (k, m) erasure code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Params {
    segment_size: u32,
    data: u8,
    parity: u8,
}

/// Parameters that cannot describe a valid layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamsError {
    /// `k` was zero.
    #[error("k (data columns) must be at least 1")]
    NoDataColumns,
    /// `m` was zero.
    #[error("m (parity columns) must be at least 1: without parity a lost column loses the file")]
    NoParityColumns,
    /// `k + m` exceeded [`MAX_COLUMNS`].
    #[error("k + m = {total} columns, but at most {MAX_COLUMNS} are allowed")]
    TooManyColumns {
        /// The requested `k + m`.
        total: usize,
    },
    /// So many data columns for this segment size that, with shards rounded up to 1 KiB,
    /// the last data columns would hold only padding.
    #[error(
        "with {segment_size}-byte segments, {k} data columns would leave the last ones holding only padding (shards are 1 KiB-aligned): use {suggested} data columns, or larger segments"
    )]
    TooManyDataColumns {
        /// The requested segment size.
        segment_size: u32,
        /// The requested number of data columns.
        k: u8,
        /// The largest smaller `k` that is valid for this segment size.
        suggested: u8,
    },
    /// One stripe (every shard of one full segment) would exceed [`MAX_STRIPE`].
    #[error(
        "{k} + {m} columns of {shard_len}-byte shards make {stripe}-byte stripes, but at most {MAX_STRIPE} bytes are allowed (what a reader holds per segment): use fewer columns or smaller segments"
    )]
    StripeTooLarge {
        /// The requested number of data columns.
        k: u8,
        /// The requested number of parity columns.
        m: u8,
        /// `L`, the shard length these parameters give.
        shard_len: u64,
        /// `n · L`.
        stripe: u64,
    },
    /// The segment size was out of range or not a multiple of 1 KiB.
    #[error(
        "segment size {size} bytes is invalid: use a multiple of 1024 between {MIN_SEGMENT_SIZE} and {MAX_SEGMENT_SIZE}"
    )]
    SegmentSize {
        /// The requested segment size.
        size: u32,
    },
}

impl Params {
    /// Validates and builds parameters: `k` data columns, `m` parity columns.
    pub fn new(segment_size: u32, k: u8, m: u8) -> Result<Self, ParamsError> {
        if k == 0 {
            return Err(ParamsError::NoDataColumns);
        }
        if m == 0 {
            return Err(ParamsError::NoParityColumns);
        }
        let total = k as usize + m as usize;
        if total > MAX_COLUMNS {
            return Err(ParamsError::TooManyColumns { total });
        }
        if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&segment_size)
            || segment_size % COLUMN_ALIGN as u32 != 0
        {
            return Err(ParamsError::SegmentSize { size: segment_size });
        }
        if !every_data_shard_carries_data(segment_size, k) {
            // Validity is not monotone in k (4 KiB segments allow k = 3 and 5, not 4):
            // suggest the largest valid k below the one asked for.
            let suggested = (1..k)
                .rev()
                .find(|&k| every_data_shard_carries_data(segment_size, k))
                .unwrap_or(1);
            return Err(ParamsError::TooManyDataColumns {
                segment_size,
                k,
                suggested,
            });
        }
        let shard_len = full_shard_len(segment_size, k);
        let stripe = total as u64 * shard_len;
        if stripe > MAX_STRIPE {
            return Err(ParamsError::StripeTooLarge {
                k,
                m,
                shard_len,
                stripe,
            });
        }
        Ok(Self {
            segment_size,
            data: k,
            parity: m,
        })
    }

    /// Plaintext bytes per segment.
    pub fn segment_size(&self) -> u32 {
        self.segment_size
    }
    /// Number of data columns, `k`: any `k` columns rebuild the file.
    pub fn data_columns(&self) -> usize {
        self.data as usize
    }
    /// Number of parity columns, `m`: how many columns may be lost.
    pub fn parity_columns(&self) -> usize {
        self.parity as usize
    }
    /// Total columns, `n = k + m`.
    pub fn columns(&self) -> usize {
        self.data as usize + self.parity as usize
    }
}

impl Default for Params {
    fn default() -> Self {
        Self {
            segment_size: DEFAULT_SEGMENT_SIZE,
            data: DEFAULT_DATA_COLUMNS,
            parity: DEFAULT_PARITY_COLUMNS,
        }
    }
}

/// The geometry of one file: parameters plus plaintext length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    params: Params,
    length: u64,
    segments: u64,
    full_shard: u64,
    last_shard: u64,
}

/// Largest plaintext length the format accepts (2^56 bytes, 64 PiB): keeps every offset
/// computation far from `u64` overflow.
pub const MAX_LENGTH: u64 = 1 << 56;

impl Layout {
    /// The layout of a file of `length` plaintext bytes. `None` if `length` exceeds
    /// [`MAX_LENGTH`].
    pub fn new(params: Params, length: u64) -> Option<Self> {
        if length > MAX_LENGTH {
            return None;
        }
        let s = params.segment_size as u64;
        let k = params.data as u64;
        let segments = length.div_ceil(s).max(1);
        let last_plain = length - (segments - 1) * s;
        let full_shard = full_shard_len(params.segment_size, params.data);
        let last_shard = round_up((last_plain + TAG_LEN as u64).div_ceil(k), LAST_SHARD_ALIGN);
        Some(Self {
            params,
            length,
            segments,
            full_shard,
            last_shard,
        })
    }

    /// The coding parameters.
    pub fn params(&self) -> Params {
        self.params
    }
    /// Plaintext length in bytes.
    pub fn length(&self) -> u64 {
        self.length
    }
    /// Number of segments (at least 1).
    pub fn segments(&self) -> u64 {
        self.segments
    }
    /// `L`: shard length of every segment but the last, a multiple of [`COLUMN_ALIGN`].
    pub fn shard_len(&self) -> u64 {
        self.full_shard
    }
    /// Length in bytes of every column.
    pub fn column_len(&self) -> u64 {
        (self.segments - 1) * self.full_shard + self.last_shard
    }
    /// Whether `index` is the last segment.
    pub fn is_last(&self, index: u64) -> bool {
        index + 1 == self.segments
    }
    /// Plaintext bytes of segment `index`.
    pub fn plain_len(&self, index: u64) -> usize {
        debug_assert!(index < self.segments);
        let s = self.params.segment_size as u64;
        if self.is_last(index) {
            (self.length - index * s) as usize
        } else {
            s as usize
        }
    }
    /// Sealed bytes (plaintext + tag) of segment `index`.
    pub fn sealed_len(&self, index: u64) -> usize {
        self.plain_len(index) + TAG_LEN
    }
    /// Bytes of each of the `n` shards of segment `index`.
    pub fn segment_shard_len(&self, index: u64) -> usize {
        if self.is_last(index) {
            self.last_shard as usize
        } else {
            self.full_shard as usize
        }
    }
    /// The byte range segment `index` occupies in every column.
    pub fn column_span(&self, index: u64) -> Range<u64> {
        let start = index * self.full_shard;
        start..start + self.segment_shard_len(index) as u64
    }
    /// Plaintext offset where segment `index` starts.
    pub fn plain_offset(&self, index: u64) -> u64 {
        index * self.params.segment_size as u64
    }
    /// The segments holding the plaintext `range` (empty for an empty range).
    pub fn segments_for(&self, range: Range<u64>) -> Range<u64> {
        if range.start >= range.end {
            return 0..0;
        }
        let s = self.params.segment_size as u64;
        range.start / s..(range.end - 1) / s + 1
    }
}

/// Whether the last of `k` data shards of a full segment holds sealed bytes, not only
/// padding: `(k - 1) · L < S + T`. Otherwise a column would be all zeros.
/// `L`: the shard length of a full segment.
fn full_shard_len(segment_size: u32, k: u8) -> u64 {
    let sealed = segment_size as u64 + TAG_LEN as u64;
    round_up(sealed.div_ceil(k as u64), COLUMN_ALIGN)
}

fn every_data_shard_carries_data(segment_size: u32, k: u8) -> bool {
    let sealed = segment_size as u64 + TAG_LEN as u64;
    (k as u64 - 1) * full_shard_len(segment_size, k) < sealed
}

fn round_up(x: u64, to: u64) -> u64 {
    x.div_ceil(to) * to
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_validated() {
        assert_eq!(Params::new(1 << 20, 0, 2), Err(ParamsError::NoDataColumns));
        assert_eq!(
            Params::new(1 << 20, 3, 0),
            Err(ParamsError::NoParityColumns)
        );
        assert_eq!(
            Params::new(1 << 20, 200, 100),
            Err(ParamsError::TooManyColumns { total: 300 })
        );
        assert!(Params::new(16 << 20, 200, 55).is_ok());
        // 1 KiB alignment: a 4 KiB segment seals to 4112 bytes; with k = 4 each shard
        // rounds up to 2048 bytes and the fourth would start past the sealed bytes (with
        // k = 5, shards of 1024 bytes: the fifth holds 16).
        assert!(Params::new(4096, 3, 2).is_ok());
        assert_eq!(
            Params::new(4096, 4, 2),
            Err(ParamsError::TooManyDataColumns {
                segment_size: 4096,
                k: 4,
                suggested: 3
            })
        );
        assert!(Params::new(4096, 5, 2).is_ok());
        assert!(Params::new(5 * 4096, 5, 2).is_ok());
        assert!(matches!(
            Params::new(1 << 20, 64, 4),
            Err(ParamsError::TooManyDataColumns { .. })
        ));
        for k in 1..=255u8 {
            for s in [4096u32, 1 << 20, 16 << 20] {
                if let Ok(p) = Params::new(s, k, 1) {
                    let l = Layout::new(p, s as u64 * 2).unwrap();
                    assert!((k as u64 - 1) * l.shard_len() < s as u64 + TAG_LEN as u64);
                }
            }
        }
        assert_eq!(
            Params::new(1000, 3, 2),
            Err(ParamsError::SegmentSize { size: 1000 })
        );
        assert_eq!(
            Params::new(5000, 3, 2),
            Err(ParamsError::SegmentSize { size: 5000 })
        );
        assert!(Params::new(MAX_SEGMENT_SIZE + 1024, 3, 2).is_err());
    }

    #[test]
    fn a_stripe_is_at_most_max_stripe() {
        // What the fuzzer found: k = 1, m = 254 and 16 MiB segments passed every other
        // rule and made a decoder of a 32 MiB file allocate about 8 GiB.
        assert!(matches!(
            Params::new(16 << 20, 1, 254),
            Err(ParamsError::StripeTooLarge { stripe, .. }) if stripe == 255 * ((16 << 20) + 1024)
        ));
        // 16 MiB segments: k = 1 allows m ≤ 2 (n · (16 MiB + 1 KiB) ≤ 64 MiB).
        assert!(Params::new(16 << 20, 1, 2).is_ok());
        assert!(Params::new(16 << 20, 1, 3).is_err());
        assert!(Params::new(16 << 20, 3, 2).is_ok());
        // The defaults are far below it, and so is every k + m at 1 MiB with k ≥ 4.
        assert!(Params::new(1 << 20, 3, 2).is_ok());
        assert!(Params::new(1 << 20, 16, 239).is_ok());
        // As docs/format.md says: at 1 MiB, every valid k ≥ 4 allows any m; k = 3, n ≤ 191.
        for k in 4..=254u8 {
            if every_data_shard_carries_data(1 << 20, k) {
                assert!(Params::new(1 << 20, k, 255 - k).is_ok(), "k = {k}");
            }
        }
        assert!(Params::new(1 << 20, 3, 188).is_ok());
        assert!(Params::new(1 << 20, 3, 189).is_err());
        for k in 1..=255u8 {
            for m in 1..=(255 - k) {
                for s in [4096u32, 1 << 20, 16 << 20] {
                    if let Ok(p) = Params::new(s, k, m) {
                        assert!(
                            Layout::new(p, 0).unwrap().shard_len() * p.columns() as u64
                                <= MAX_STRIPE
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn default_layout_is_chunk_aligned() {
        let p = Params::default();
        let l = Layout::new(p, 10 * (1 << 20) + 5).unwrap();
        assert_eq!(l.segments(), 11);
        // ceil((1 MiB + 16) / 3) rounded up to 1 KiB.
        assert_eq!(l.shard_len(), 350_208);
        assert_eq!(l.shard_len() % COLUMN_ALIGN, 0);
        assert_eq!(l.plain_len(10), 5);
        assert_eq!(l.segment_shard_len(10), 64);
        assert_eq!(l.column_len(), 10 * 350_208 + 64);
        assert_eq!(l.column_span(3), 3 * 350_208..4 * 350_208);
    }

    #[test]
    fn empty_file_has_one_segment() {
        let l = Layout::new(Params::default(), 0).unwrap();
        assert_eq!(l.segments(), 1);
        assert_eq!(l.plain_len(0), 0);
        assert_eq!(l.sealed_len(0), TAG_LEN);
        assert_eq!(l.column_len(), 64);
        assert_eq!(l.segments_for(0..0), 0..0);
    }

    #[test]
    fn ranges_map_to_segments() {
        let p = Params::new(4096, 3, 2).unwrap();
        let l = Layout::new(p, 3 * 4096).unwrap();
        assert_eq!(l.segments(), 3);
        assert_eq!(l.segments_for(0..1), 0..1);
        assert_eq!(l.segments_for(4095..4097), 0..2);
        assert_eq!(l.segments_for(4096..8192), 1..2);
        assert_eq!(l.segments_for(0..3 * 4096), 0..3);
        assert!(Layout::new(p, MAX_LENGTH + 1).is_none());
    }
}
