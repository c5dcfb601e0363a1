//! Trustless blob ranges: check a gateway's `?format=bao` answer against the blob's
//! BLAKE3 hash and keep the bytes of the range asked for.
//!
//! The answer is `u64 LE size ‖ bao encoding of the requested chunk ranges`: exactly
//! what iroh-blobs sends for one blob (16 KiB chunk groups, parents as 64-byte hash
//! pairs, pre-order). Nothing from the answer is believed before it verifies: a wrong
//! size changes the tree's shape and fails its first parent or leaf; trailing bytes
//! are refused.

use std::{fmt, io::Cursor, ops::Range};

use bao_tree::{
    BaoTree, BlockSize, ChunkNum, ChunkRanges,
    io::{BaoContentItem, DecodeError, sync::DecodeResponseIter},
};
use mosaic_codec::Hash;

/// iroh-blobs' chunk groups: 2^4 chunks of 1 KiB.
pub const BLOCK_SIZE: BlockSize = BlockSize::from_chunk_log(4);

/// The largest answer size claimed that is believed enough to start decoding (a
/// column is at most 2^56 bytes of file plus its overheads).
const MAX_SIZE: u64 = 1 << 60;

/// An answer that does not prove the bytes asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// Fewer than the 8 bytes of the size header.
    NoSize,
    /// The size the answer claims is not the one the manifest gives.
    SizeMismatch {
        /// What the answer says.
        claimed: u64,
        /// What the manifest says.
        expected: u64,
    },
    /// The range asked for is not inside the blob.
    Range {
        /// Asked for.
        range: Range<u64>,
        /// The blob's size.
        size: u64,
    },
    /// A hash in the answer does not match: the bytes near `offset` are not the blob's.
    Mismatch {
        /// Byte offset of the chunk group or subtree that failed.
        offset: u64,
    },
    /// The answer ended before the range did.
    Truncated {
        /// Bytes of the range proven before it ended.
        proven: u64,
    },
    /// Bytes followed the end of the encoding.
    Trailing {
        /// How many.
        bytes: usize,
    },
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSize => write!(f, "the answer is shorter than its 8-byte size header"),
            Self::SizeMismatch { claimed, expected } => write!(
                f,
                "the answer claims a blob of {claimed} bytes; the manifest says {expected}"
            ),
            Self::Range { range, size } => write!(
                f,
                "bytes {}..{} are not inside a blob of {size} bytes",
                range.start, range.end
            ),
            Self::Mismatch { offset } => write!(
                f,
                "the bytes near offset {offset} do not match the blob's hash: the gateway or a node sent corrupt or forged data"
            ),
            Self::Truncated { proven } => write!(
                f,
                "the answer ended early ({proven} bytes of the range proven)"
            ),
            Self::Trailing { bytes } => {
                write!(f, "{bytes} unexpected bytes follow the encoding")
            }
        }
    }
}

impl std::error::Error for VerifyError {}

/// The chunk ranges a byte range asks for: whole 1 KiB chunks covering it (iroh-blobs'
/// `ChunkRanges::bytes`). The gateway and the page must agree on this.
pub fn chunk_ranges(range: &Range<u64>) -> ChunkRanges {
    let start = range.start / 1024;
    let end = range.end.div_ceil(1024);
    ChunkRanges::from(ChunkNum(start)..ChunkNum(end))
}

/// Verifies `answer` for bytes `range` of the blob named `root`, whose size is
/// `expected` when the caller knows it, and appends those bytes to `out`. Returns the
/// blob's size. `out` is left as it was on error.
pub fn verify_range(
    root: &Hash,
    expected: Option<u64>,
    range: Range<u64>,
    answer: &[u8],
    out: &mut Vec<u8>,
) -> Result<u64, VerifyError> {
    let mark = out.len();
    verify_with(root, expected, range, answer, |bytes| {
        out.extend_from_slice(bytes)
    })
    .inspect_err(|_| out.truncate(mark))
}

/// As [`verify_range`], writing the range's bytes into `out`, which must be exactly as
/// long as the range. On error `out` may hold part of them: do not use it.
pub fn verify_range_into(
    root: &Hash,
    expected: Option<u64>,
    range: Range<u64>,
    answer: &[u8],
    out: &mut [u8],
) -> Result<u64, VerifyError> {
    if out.len() as u64 != range.end.saturating_sub(range.start) {
        return Err(VerifyError::Range {
            range,
            size: out.len() as u64,
        });
    }
    let mut at = 0;
    verify_with(root, expected, range, answer, |bytes| {
        out[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    })
}

/// The verification itself: hands the range's bytes to `sink` in order, as each chunk
/// group verifies; the answer must then end exactly.
fn verify_with(
    root: &Hash,
    expected: Option<u64>,
    range: Range<u64>,
    answer: &[u8],
    mut sink: impl FnMut(&[u8]),
) -> Result<u64, VerifyError> {
    let (size_bytes, encoded) = answer.split_first_chunk::<8>().ok_or(VerifyError::NoSize)?;
    let size = u64::from_le_bytes(*size_bytes);
    if let Some(expected) = expected
        && size != expected
    {
        return Err(VerifyError::SizeMismatch {
            claimed: size,
            expected,
        });
    }
    if size > MAX_SIZE || range.start > range.end || range.end > size {
        return Err(VerifyError::Range { range, size });
    }
    let ranges = chunk_ranges(&range);
    let tree = BaoTree::new(size, BLOCK_SIZE);
    let mut reader = Cursor::new(encoded);
    let root = blake3::Hash::from_bytes(*root.as_bytes());
    let mut next = range.start;
    let items = DecodeResponseIter::new(root, tree, &mut reader, &ranges);
    for item in items {
        let leaf = match item {
            Ok(BaoContentItem::Leaf(leaf)) => leaf,
            Ok(BaoContentItem::Parent(_)) => continue,
            Err(e) => {
                return Err(match e {
                    DecodeError::ParentHashMismatch(node) => VerifyError::Mismatch {
                        offset: node.chunk_range().start.to_bytes(),
                    },
                    DecodeError::LeafHashMismatch(chunk) => VerifyError::Mismatch {
                        offset: chunk.to_bytes(),
                    },
                    _ => VerifyError::Truncated {
                        proven: next - range.start,
                    },
                });
            }
        };
        let end = leaf.offset + leaf.data.len() as u64;
        let from = next.max(leaf.offset);
        let to = range.end.min(end);
        if from < to {
            let at = (from - leaf.offset) as usize;
            sink(&leaf.data[at..at + (to - from) as usize]);
            next = to;
        }
    }
    if next < range.end {
        return Err(VerifyError::Truncated {
            proven: next - range.start,
        });
    }
    let trailing = encoded.len() - reader.position() as usize;
    if trailing != 0 {
        return Err(VerifyError::Trailing { bytes: trailing });
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use bao_tree::io::{outboard::PreOrderMemOutboard, sync::encode_ranges_validated};

    use super::*;

    /// What the gateway sends: the size, then the encoding of the chunk ranges.
    fn answer(data: &[u8], range: &Range<u64>) -> Vec<u8> {
        let outboard = PreOrderMemOutboard::create(data, BLOCK_SIZE);
        let mut out = (data.len() as u64).to_le_bytes().to_vec();
        encode_ranges_validated(data, &outboard, &chunk_ranges(range), &mut out).expect("encodes");
        out
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn ranges_verify_and_yield_exactly_their_bytes() {
        for len in [1usize, 1024, 16 * 1024, 16 * 1024 + 1, 350_208 * 3 + 64] {
            let data = data(len);
            let root = Hash::of(&data);
            let l = len as u64;
            for range in [0..l, 0..1, l - 1..l, l / 3..l / 2 + 1, 5000.min(l)..l] {
                let mut out = Vec::new();
                let size = verify_range(
                    &root,
                    Some(l),
                    range.clone(),
                    &answer(&data, &range),
                    &mut out,
                )
                .expect("verifies");
                assert_eq!(size, l);
                assert_eq!(out, &data[range.start as usize..range.end as usize]);
                let mut slot = vec![0; out.len()];
                verify_range_into(
                    &root,
                    Some(l),
                    range.clone(),
                    &answer(&data, &range),
                    &mut slot,
                )
                .expect("verifies into a slot");
                assert_eq!(slot, out);
            }
        }
    }

    #[test]
    fn every_flipped_byte_is_caught() {
        let data = data(40_000);
        let root = Hash::of(&data);
        let range = 17_000..39_000;
        let good = answer(&data, &range);
        for i in (8..good.len()).step_by(97) {
            let mut bad = good.clone();
            bad[i] ^= 0x10;
            let mut out = Vec::new();
            let e = verify_range(&root, None, range.clone(), &bad, &mut out)
                .expect_err("a flipped byte fails");
            assert!(matches!(e, VerifyError::Mismatch { .. }), "{e}");
            assert!(out.is_empty(), "nothing of a failed answer is kept");
        }
    }

    #[test]
    fn size_truncation_and_trailing_bytes_are_refused() {
        let data = data(40_000);
        let root = Hash::of(&data);
        let range = 0..40_000;
        let good = answer(&data, &range);
        let mut out = Vec::new();
        assert!(matches!(
            verify_range(&root, Some(39_999), range.clone(), &good, &mut out),
            Err(VerifyError::SizeMismatch { .. })
        ));
        // A lie about the size changes the tree: it cannot verify.
        let mut lie = good.clone();
        lie[..8].copy_from_slice(&50_000u64.to_le_bytes());
        assert!(verify_range(&root, None, range.clone(), &lie, &mut out).is_err());
        assert!(matches!(
            verify_range(
                &root,
                None,
                range.clone(),
                &good[..good.len() - 1],
                &mut out
            ),
            Err(VerifyError::Truncated { .. })
        ));
        let mut long = good.clone();
        long.push(0);
        assert_eq!(
            verify_range(&root, None, range.clone(), &long, &mut out),
            Err(VerifyError::Trailing { bytes: 1 })
        );
        assert_eq!(
            verify_range(&root, None, range, &good[..4], &mut out),
            Err(VerifyError::NoSize)
        );
        assert!(out.is_empty());
        assert!(matches!(
            verify_range(&root, None, 0..40_001, &good, &mut out),
            Err(VerifyError::Range { .. })
        ));
    }
}
