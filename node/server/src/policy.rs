//! The repair policy, as pure functions: when a file needs repair, which of its holders
//! repairs it, when, and where the rebuilt columns go. The node's health checker
//! (`health.rs`) and the durability simulator (`benches/durability.rs`) both call these
//! same functions, so the simulated figures in `docs/durability.md` are those of the
//! code that runs.
//!
//! Why it needs no coordinator: every holder of a file computes the same ranking of
//! the file's live holders (rendezvous hashing of the file id and each node id), so
//! they agree on who repairs without talking. The first-ranked repairs once a column
//! has been missing for the grace period; the one ranked `r` only after `r` further
//! back-off periods, by which time the first's repair is visible (announced and held),
//! so it finds nothing to do. Targets are ranked the same way per column, so two holders
//! that do race pick the same node for the same column, and that node keeps one copy.

use std::time::Duration;

/// When a file is repaired and how the work is shared. See `docs/durability.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepairPolicy {
    /// Repair once fewer than `n - lag` columns are healthy. `0` (the default) repairs
    /// the first lost column: with the default 3-of-5 code, waiting for a second loss
    /// leaves no margin at all while the repair runs.
    pub lag: usize,
    /// How long a column may be missing before it is rebuilt (a restarting node is not
    /// replaced).
    pub grace: Duration,
    /// How much longer each next-ranked holder waits before it takes over.
    pub backoff: Duration,
}

impl Default for RepairPolicy {
    fn default() -> Self {
        Self {
            lag: 0,
            grace: Duration::from_secs(3600),
            backoff: Duration::from_secs(3 * 600),
        }
    }
}

impl RepairPolicy {
    /// Whether a file with `healthy` of its `n` columns (`k` needed) should be repaired:
    /// below the threshold, and still repairable.
    pub fn needs_repair(&self, healthy: usize, k: usize, n: usize) -> bool {
        healthy >= k && healthy < n.saturating_sub(self.lag).max(k)
    }

    /// Whether the holder ranked `rank` should repair a file whose columns have been
    /// missing for `missing_for`.
    pub fn due(&self, missing_for: Duration, rank: usize) -> bool {
        missing_for >= self.grace + self.backoff * rank as u32
    }
}

/// The rendezvous score of `node` for `key` (higher ranks first).
pub fn score(key: &[u8], node: &[u8]) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(b"mosaic/repair-rank/1");
    h.update(&(key.len() as u32).to_le_bytes());
    h.update(key);
    h.update(node);
    let out = h.finalize();
    u64::from_le_bytes(out.as_bytes()[..8].try_into().expect("8 bytes"))
}

/// Where `me` ranks among `holders` (which should include it) for repairing `file`:
/// `0` repairs first. `None` if `me` is not among them.
pub fn rank<N: AsRef<[u8]>>(file: &[u8; 32], holders: &[N], me: &[u8]) -> Option<usize> {
    let mine = score(file, me);
    if !holders.iter().any(|h| h.as_ref() == me) {
        return None;
    }
    Some(
        holders
            .iter()
            .filter(|h| h.as_ref() != me)
            .filter(|h| {
                let s = score(file, h.as_ref());
                s > mine || (s == mine && h.as_ref() > me)
            })
            .count(),
    )
}

/// The candidates for rebuilt column `column` of `file`, best first: every repairer
/// ranks them alike, so racing repairers pick the same node.
pub fn targets<N: AsRef<[u8]> + Clone>(file: &[u8; 32], column: usize, candidates: &[N]) -> Vec<N> {
    let mut key = file.to_vec();
    key.extend_from_slice(&(column as u32).to_le_bytes());
    let mut ranked: Vec<(u64, N)> = candidates
        .iter()
        .map(|c| (score(&key, c.as_ref()), c.clone()))
        .collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.as_ref().cmp(a.1.as_ref())));
    ranked.into_iter().map(|(_, c)| c).collect()
}

/// Assigns each missing column a distinct target from `candidates` (nodes holding
/// nothing of the file, with room), in each column's rendezvous order. Columns left
/// without a target are left out.
pub fn assign<N: AsRef<[u8]> + Clone + PartialEq>(
    file: &[u8; 32],
    missing: &[usize],
    candidates: &[N],
) -> Vec<(usize, N)> {
    let mut taken: Vec<N> = Vec::new();
    let mut out = Vec::new();
    for &column in missing {
        if let Some(t) = targets(file, column, candidates)
            .into_iter()
            .find(|t| !taken.contains(t))
        {
            taken.push(t.clone());
            out.push((column, t));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_agree_on_one_ranking() {
        let file = [7u8; 32];
        let holders: Vec<[u8; 4]> = (0..5u32).map(|i| i.to_le_bytes()).collect();
        let mut ranks: Vec<usize> = holders
            .iter()
            .map(|h| rank(&file, &holders, h).unwrap())
            .collect();
        ranks.sort();
        assert_eq!(ranks, vec![0, 1, 2, 3, 4]);
        assert_eq!(rank(&file, &holders, &[9, 9, 9, 9]), None);
    }

    #[test]
    fn threshold_and_timing() {
        let p = RepairPolicy {
            lag: 0,
            grace: Duration::from_secs(10),
            backoff: Duration::from_secs(5),
        };
        assert!(!p.needs_repair(5, 3, 5));
        assert!(p.needs_repair(4, 3, 5));
        assert!(p.needs_repair(3, 3, 5));
        assert!(!p.needs_repair(2, 3, 5), "below k nothing can be rebuilt");
        let lazy = RepairPolicy { lag: 1, ..p };
        assert!(!lazy.needs_repair(4, 3, 5));
        assert!(lazy.needs_repair(3, 3, 5));
        assert!(!p.due(Duration::from_secs(9), 0));
        assert!(p.due(Duration::from_secs(10), 0));
        assert!(!p.due(Duration::from_secs(14), 1));
        assert!(p.due(Duration::from_secs(15), 1));
    }

    #[test]
    fn targets_are_distinct_and_stable() {
        let file = [1u8; 32];
        let nodes: Vec<[u8; 4]> = (0..10u32).map(|i| i.to_le_bytes()).collect();
        let a = assign(&file, &[0, 3], &nodes);
        let mut shuffled = nodes.clone();
        shuffled.reverse();
        assert_eq!(a, assign(&file, &[0, 3], &shuffled));
        assert_ne!(a[0].1, a[1].1);
        assert_eq!(assign(&file, &[0, 1, 2], &nodes[..2]).len(), 2);
    }
}
