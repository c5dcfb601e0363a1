//! The Reed–Solomon stage, kept behind one small type so the library can change.
//!
//! Mosaic format v1 uses the systematic Reed–Solomon code of `reed-solomon-erasure`
//! over GF(2^8) (the Backblaze construction; bytes specified in `docs/format.md`). It
//! was measured against `reed-solomon-simd` on our own pipeline (`benches/codec.rs`,
//! numbers in `docs/performance.md`) and was faster at encode and far faster at the
//! reconstruction that degraded reads and repair depend on. The two codes produce
//! *different* parity bytes, so a switch would be a format change (a new version).

use reed_solomon_erasure::galois_8::ReedSolomon;

/// A (k, m) Reed–Solomon code. Cheap to share: encoding and reconstruction take `&self`.
#[derive(Debug)]
pub(crate) struct Erasure {
    rs: ReedSolomon,
}

impl Erasure {
    /// The code with `k` data and `m` parity shards (validated by [`super::Params`]).
    pub(crate) fn new(k: usize, m: usize) -> Self {
        // `Params` guarantees 1 <= k, 1 <= m, k + m <= 255, which the library accepts.
        let rs = ReedSolomon::new(k, m).expect("Params guarantees a valid (k, m)");
        Self { rs }
    }

    /// Computes the parity shards from the data shards. All shards have one length.
    pub(crate) fn encode(&self, data: &[&[u8]], parity: &mut [&mut [u8]]) {
        self.rs
            .encode_sep(data, parity)
            .expect("callers pass k data and m parity shards of equal, non-zero length");
    }

    /// Rebuilds the missing data shards in place from the first `k` present shards (in
    /// column order). Parity shards are neither rebuilt nor checked.
    ///
    /// `shards` holds all `n` shards as `(buffer, present)`; every buffer has the same
    /// length. Returns `false` if fewer than `k` are present.
    pub(crate) fn reconstruct_data(&self, shards: &mut [(&mut [u8], bool)]) -> bool {
        if shards.iter().filter(|(_, present)| *present).count() < self.rs.data_shard_count() {
            return false;
        }
        self.rs
            .reconstruct_data(shards)
            .expect("at least k present shards of equal length");
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_k_of_n_rebuild_the_data() {
        let (k, m, len) = (3, 2, 64);
        let code = Erasure::new(k, m);
        let data: Vec<Vec<u8>> = (0..k)
            .map(|i| (0..len).map(|j| (i * 31 + j * 7) as u8).collect())
            .collect();
        let mut parity = vec![vec![0u8; len]; m];
        {
            let d: Vec<&[u8]> = data.iter().map(|s| s.as_slice()).collect();
            let mut p: Vec<&mut [u8]> = parity.iter_mut().map(|s| s.as_mut_slice()).collect();
            code.encode(&d, &mut p);
        }
        let all: Vec<Vec<u8>> = data.iter().chain(parity.iter()).cloned().collect();
        for lost_a in 0..k + m {
            for lost_b in lost_a + 1..k + m {
                let mut bufs = all.clone();
                for i in [lost_a, lost_b] {
                    bufs[i].fill(0xEE);
                }
                let mut shards: Vec<(&mut [u8], bool)> = bufs
                    .iter_mut()
                    .enumerate()
                    .map(|(i, b)| (b.as_mut_slice(), i != lost_a && i != lost_b))
                    .collect();
                assert!(code.reconstruct_data(&mut shards));
                for i in 0..k {
                    assert_eq!(bufs[i], data[i], "lost {lost_a},{lost_b}");
                }
            }
        }
        let mut bufs = all.clone();
        let mut shards: Vec<(&mut [u8], bool)> = bufs
            .iter_mut()
            .enumerate()
            .map(|(i, b)| (b.as_mut_slice(), i < 2))
            .collect();
        assert!(!code.reconstruct_data(&mut shards));
    }
}
