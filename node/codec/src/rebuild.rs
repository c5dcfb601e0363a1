//! Keyless column rebuilding: what a storage node runs to repair a file it cannot read.
//!
//! Given `k` authentic shards of a segment (the caller fetched their columns with
//! verified streaming, so each shard is the bytes the manifest's column hash commits
//! to), the Reed–Solomon code gives back every other shard of that segment: the data
//! shards by reconstruction, the parity shards by encoding the data shards again. No
//! key is involved: shards are sealed ciphertext and padding, and Reed–Solomon works on
//! bytes.
//!
//! Invariants:
//! - a rebuilt column is checked against the manifest's hash by the caller (the
//!   [`Rebuilder`] hashes the columns it rebuilds, segment by segment, in order) before
//!   anyone keeps it: an uploader whose columns disagree with each other cannot make a
//!   repair store bytes the manifest does not name;
//! - memory is one stripe (`n·L` bytes, at most [`MAX_STRIPE`](crate::MAX_STRIPE)),
//!   whatever the file size.

use crate::{Hash, Layout, Manifest, encode::max_shard_len, erasure::Erasure};

/// Rebuilds chosen columns of one file, segment by segment, in order.
#[derive(Debug)]
pub struct Rebuilder {
    layout: Layout,
    erasure: Erasure,
    stripe: Vec<u8>,
    present: Vec<bool>,
    wanted: Vec<usize>,
    hashers: Vec<blake3::Hasher>,
    expected: Vec<Hash>,
    segment: u64,
    next: u64,
}

/// The rebuilt columns do not hash to the manifest's hashes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "rebuilt columns {columns:?} do not match the manifest's hashes: the file's columns are inconsistent (a faulty uploader), or a source column was not authentic"
)]
pub struct RebuildMismatch {
    /// The columns whose hash differs.
    pub columns: Vec<usize>,
}

impl Rebuilder {
    /// A rebuilder of columns `wanted` of the file `manifest` describes.
    ///
    /// # Panics
    /// If a wanted column is out of range.
    pub fn new(manifest: &Manifest, wanted: &[usize]) -> Self {
        let layout = *manifest.layout();
        let params = layout.params();
        let n = params.columns();
        assert!(wanted.iter().all(|&c| c < n), "column out of range");
        Self {
            layout,
            erasure: Erasure::new(params.data_columns(), params.parity_columns()),
            stripe: vec![0; n * max_shard_len(&layout)],
            present: vec![false; n],
            wanted: wanted.to_vec(),
            hashers: vec![blake3::Hasher::new(); wanted.len()],
            expected: wanted.iter().map(|&c| manifest.columns()[c]).collect(),
            segment: 0,
            next: 0,
        }
    }

    /// The file's geometry.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Starts segment `index` (segments go in order from 0): no shard is present.
    ///
    /// # Panics
    /// If segments are not begun in order.
    pub fn begin_segment(&mut self, index: u64) {
        assert_eq!(index, self.next, "segments are rebuilt in order");
        self.segment = index;
        self.present.fill(false);
    }

    /// The buffer for column `column`'s shard of the current segment: fill it with the
    /// bytes at [`Layout::column_span`] of that column, then [`Rebuilder::set_present`].
    pub fn shard_mut(&mut self, column: usize) -> &mut [u8] {
        let len = self.layout.segment_shard_len(self.segment);
        &mut self.stripe[column * len..(column + 1) * len]
    }

    /// Marks column `column`'s shard as filled.
    pub fn set_present(&mut self, column: usize) {
        self.present[column] = true;
    }

    /// Rebuilds the current segment's wanted shards from the shards present; `false` if
    /// fewer than `k` are. Read them with [`Rebuilder::shard`].
    pub fn rebuild(&mut self) -> bool {
        let params = self.layout.params();
        let (k, n) = (params.data_columns(), params.columns());
        let len = self.layout.segment_shard_len(self.segment);
        let stripe = &mut self.stripe[..n * len];
        {
            let mut shards: Vec<(&mut [u8], bool)> = stripe
                .chunks_exact_mut(len)
                .zip(&self.present)
                .map(|(s, &p)| (s, p))
                .collect();
            if !self.erasure.reconstruct_data(&mut shards) {
                return false;
            }
        }
        let (data, parity) = stripe.split_at_mut(k * len);
        let data: Vec<&[u8]> = data.chunks_exact(len).collect();
        let mut parity: Vec<&mut [u8]> = parity.chunks_exact_mut(len).collect();
        self.erasure.encode(&data, &mut parity);
        for (hasher, &c) in self.hashers.iter_mut().zip(&self.wanted) {
            hasher.update(&stripe[c * len..(c + 1) * len]);
        }
        self.next += 1;
        true
    }

    /// Column `column`'s shard of the current segment (after [`Rebuilder::rebuild`]).
    pub fn shard(&self, column: usize) -> &[u8] {
        let len = self.layout.segment_shard_len(self.segment);
        &self.stripe[column * len..(column + 1) * len]
    }

    /// After every segment: checks each rebuilt column against the manifest's hash.
    ///
    /// # Panics
    /// If not every segment was rebuilt.
    pub fn finish(&self) -> Result<(), RebuildMismatch> {
        assert_eq!(self.next, self.layout.segments(), "finish() before the end");
        let columns: Vec<usize> = self
            .hashers
            .iter()
            .zip(&self.expected)
            .zip(&self.wanted)
            .filter(|((h, e), _)| Hash::from(h.finalize()) != **e)
            .map(|(_, &c)| c)
            .collect();
        if columns.is_empty() {
            Ok(())
        } else {
            Err(RebuildMismatch { columns })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Access, FileKey, Metadata, Params, encode};

    #[test]
    fn any_k_columns_rebuild_the_others_without_the_key() {
        let params = Params::new(16 << 10, 3, 2).unwrap();
        let plain: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let mut columns = vec![Vec::new(); 5];
        let manifest = encode(
            params,
            &Access::Private(FileKey::random()),
            &Metadata::default(),
            plain.len() as u64,
            &plain[..],
            &mut columns,
        )
        .unwrap();
        let layout = *manifest.layout();
        for lost in [[0, 1], [3, 4], [1, 3]] {
            let mut r = Rebuilder::new(&manifest, &lost);
            let mut out = vec![Vec::new(); 5];
            for i in 0..layout.segments() {
                r.begin_segment(i);
                let span = layout.column_span(i);
                for c in (0..5).filter(|c| !lost.contains(c)) {
                    r.shard_mut(c)
                        .copy_from_slice(&columns[c][span.start as usize..span.end as usize]);
                    r.set_present(c);
                }
                assert!(r.rebuild());
                for &c in &lost {
                    out[c].extend_from_slice(r.shard(c));
                }
            }
            r.finish().unwrap();
            for c in lost {
                assert_eq!(out[c], columns[c], "column {c}");
            }
        }
    }

    #[test]
    fn a_bad_source_is_caught_by_the_manifest_hash() {
        let params = Params::new(16 << 10, 3, 2).unwrap();
        let plain = vec![5u8; 40_000];
        let mut columns = vec![Vec::new(); 5];
        let manifest = encode(
            params,
            &Access::Public,
            &Metadata::default(),
            plain.len() as u64,
            &plain[..],
            &mut columns,
        )
        .unwrap();
        columns[0][10] ^= 1;
        let layout = *manifest.layout();
        let mut r = Rebuilder::new(&manifest, &[4]);
        for i in 0..layout.segments() {
            r.begin_segment(i);
            let span = layout.column_span(i);
            for (c, column) in columns.iter().enumerate().take(3) {
                r.shard_mut(c)
                    .copy_from_slice(&column[span.start as usize..span.end as usize]);
                r.set_present(c);
            }
            assert!(r.rebuild());
        }
        assert_eq!(r.finish().unwrap_err().columns, vec![4]);
    }

    #[test]
    fn fewer_than_k_shards_rebuild_nothing() {
        let params = Params::new(16 << 10, 3, 2).unwrap();
        let mut columns = vec![Vec::new(); 5];
        let manifest = encode(
            params,
            &Access::Public,
            &Metadata::default(),
            10,
            &[1u8; 10][..],
            &mut columns,
        )
        .unwrap();
        let mut r = Rebuilder::new(&manifest, &[0]);
        r.begin_segment(0);
        r.set_present(1);
        r.set_present(2);
        assert!(!r.rebuild());
    }
}
