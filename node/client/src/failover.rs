//! The decisions of a read, apart from its input and output: which columns to fetch,
//! when a failed holder is followed by the next holder of its column, when a spare
//! column takes over, which slow columns to drop, and when to give up.
//!
//! [`Failover`] is pure (no network, no clock): the fetch loop (`fetch.rs`) tells it
//! what happened (a shard arrived, a holder failed) and does what it answers. That
//! keeps the policy in one place, and lets unit tests drive it with fake holders that
//! stall, lie or die mid-stream.
//!
//! Invariants:
//! - at most `k + 1` columns are active: the `k` a segment needs and one spare in
//!   flight, so one failure costs no wait;
//! - a column is resumed from the segment it failed at (on its next holder), never
//!   from an earlier one: what was delivered stays delivered;
//! - a read gives up only when fewer than `k` columns can still deliver the current
//!   segment: every holder of every other column has failed or none is known.

use std::{collections::VecDeque, ops::Range};

/// One column a read may fetch: its index and how many holders it has, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Column {
    /// The column's index in the file.
    pub column: usize,
    /// Its reachable holders (tried in order, `0` first).
    pub holders: usize,
}

/// Start fetching `column` from its holder `holder`, at segment `from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Start {
    /// The column.
    pub column: usize,
    /// Which of its holders (index into its holder list).
    pub holder: usize,
    /// The first segment to fetch.
    pub from: u64,
}

/// What to do after a holder failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AfterFailure {
    /// Start this (the column's next holder, or a spare column).
    Start(Start),
    /// Nothing to start: the other active columns can still deliver the segment.
    Wait,
    /// Too few columns can deliver the segment: the read fails.
    GiveUp {
        /// Columns that could still deliver it (delivered or in flight).
        available: usize,
        /// Columns a segment needs.
        need: usize,
        /// Columns with no holder left.
        missing: Vec<usize>,
    },
}

#[derive(Debug, Clone, Copy)]
struct Active {
    column: usize,
    holder: usize,
    holders: usize,
    /// Whether this column's shard of the current segment is still to come.
    waiting: bool,
}

/// The columns of one read, and the decisions taken on them (see the module notes).
#[derive(Debug)]
pub(crate) struct Failover {
    k: usize,
    range: Range<u64>,
    segment: u64,
    delivered: usize,
    active: Vec<Active>,
    /// Columns not in flight, best first, each at the holder to try next.
    spare: VecDeque<Active>,
    /// Columns whose every holder failed, and columns no holder was found for.
    lost: Vec<usize>,
    failovers: usize,
}

impl Failover {
    /// A read of segments `range` of a file with `k` data columns out of `n`, from
    /// `ranked` (the columns with holders, best first). Returns the plan and the first
    /// fetches to start: the best `k + 1` columns.
    pub fn new(k: usize, n: usize, ranked: Vec<Column>, range: Range<u64>) -> (Self, Vec<Start>) {
        let mut spare: VecDeque<Active> = ranked
            .into_iter()
            .filter(|c| c.holders > 0)
            .map(|c| Active {
                column: c.column,
                holder: 0,
                holders: c.holders,
                waiting: true,
            })
            .collect();
        let lost = (0..n)
            .filter(|c| !spare.iter().any(|a| a.column == *c))
            .collect();
        let mut plan = Self {
            k,
            segment: range.start,
            range,
            delivered: 0,
            active: Vec::new(),
            spare: VecDeque::new(),
            lost,
            failovers: 0,
        };
        let rest = spare.split_off((k + 1).min(spare.len()));
        plan.spare = spare;
        let starts = std::iter::from_fn(|| plan.take_spare()).collect();
        plan.spare = rest;
        (plan, starts)
    }

    /// Whether `column`'s shard of the current segment is still to come.
    pub fn waiting_on(&self, column: usize) -> bool {
        self.active.iter().any(|a| a.column == column && a.waiting)
    }

    /// Holders given up on so far (each followed by another holder or column).
    pub fn failovers(&self) -> usize {
        self.failovers
    }

    /// `column` delivered its shard of the current segment. Returns whether the
    /// segment now has its `k` shards.
    pub fn delivered(&mut self, column: usize) -> bool {
        if let Some(a) = self
            .active
            .iter_mut()
            .find(|a| a.column == column && a.waiting)
        {
            a.waiting = false;
            self.delivered += 1;
        }
        self.delivered >= self.k
    }

    /// `column`'s current holder failed (an error, a stall, a wrong answer, or an end
    /// before the range's) while the current segment was being assembled.
    pub fn failed(&mut self, column: usize) -> AfterFailure {
        let Some(i) = self.active.iter().position(|a| a.column == column) else {
            // Not active (already dropped): nothing depends on it.
            return AfterFailure::Wait;
        };
        self.failovers += 1;
        let failed = self.active[i];
        if failed.holder + 1 < failed.holders {
            // The same column from its next holder, from the first segment it still
            // owes (this one, or the next if its shard of this one is in).
            self.active[i].holder += 1;
            return AfterFailure::Start(Start {
                column,
                holder: failed.holder + 1,
                from: if failed.waiting {
                    self.segment
                } else {
                    self.segment + 1
                },
            });
        }
        // Every holder of the column failed: a spare column takes its place.
        self.active.swap_remove(i);
        self.lost.push(column);
        if let Some(start) = self.take_spare() {
            return AfterFailure::Start(start);
        }
        let can = self.delivered + self.active.iter().filter(|a| a.waiting).count();
        if failed.waiting && can < self.k {
            let mut missing = self.lost.clone();
            missing.sort_unstable();
            missing.dedup();
            return AfterFailure::GiveUp {
                available: can,
                need: self.k,
                missing,
            };
        }
        AfterFailure::Wait
    }

    /// The spare column that comes next, started at the current segment on its next
    /// holder.
    fn take_spare(&mut self) -> Option<Start> {
        let mut a = self.spare.pop_front()?;
        a.waiting = true;
        self.active.push(a);
        Some(Start {
            column: a.column,
            holder: a.holder,
            from: self.segment,
        })
    }

    /// The current segment has its `k` shards: moves to the next. After the first
    /// segment of the read, the columns that had not delivered it are the slowest:
    /// they are dropped (returned, for the caller to stop) and become the last spares,
    /// so the read goes on with `k` columns, the fastest.
    pub fn next_segment(&mut self) -> Vec<usize> {
        let mut dropped = Vec::new();
        if self.segment == self.range.start {
            let (slow, fast): (Vec<Active>, Vec<Active>) =
                self.active.iter().partition(|a| a.waiting);
            self.active = fast;
            for a in slow {
                dropped.push(a.column);
                self.spare.push_back(a);
            }
        }
        self.segment += 1;
        self.delivered = 0;
        for a in &mut self.active {
            a.waiting = true;
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::{AfterFailure, Column, Failover, Start};

    fn cols(holders: &[usize]) -> Vec<Column> {
        holders
            .iter()
            .enumerate()
            .map(|(column, &holders)| Column { column, holders })
            .collect()
    }

    #[test]
    fn starts_the_best_k_plus_one_and_drops_the_slowest_after_the_first_segment() {
        let (mut f, starts) = Failover::new(3, 5, cols(&[1, 1, 1, 1, 1]), 0..10);
        assert_eq!(
            starts.iter().map(|s| s.column).collect::<Vec<_>>(),
            vec![0, 1, 2, 3]
        );
        assert!(starts.iter().all(|s| s.from == 0 && s.holder == 0));
        assert!(!f.delivered(3));
        assert!(!f.delivered(0));
        assert!(f.delivered(2));
        assert!(f.waiting_on(1));
        assert_eq!(f.next_segment(), vec![1]);
        // Column 1 is now the last spare, after 4.
        assert!(!f.delivered(0) && !f.delivered(2));
        assert_eq!(
            f.failed(3),
            AfterFailure::Start(Start {
                column: 4,
                holder: 0,
                from: 1
            })
        );
        assert_eq!(
            f.failed(4),
            AfterFailure::Start(Start {
                column: 1,
                holder: 0,
                from: 1
            })
        );
        assert!(f.delivered(1));
        assert_eq!(f.failovers(), 2);
    }

    #[test]
    fn a_failed_holder_is_followed_by_the_next_holder_of_its_column() {
        let (mut f, _) = Failover::new(2, 4, cols(&[3, 1, 1, 1]), 5..9);
        assert_eq!(
            f.failed(0),
            AfterFailure::Start(Start {
                column: 0,
                holder: 1,
                from: 5
            })
        );
        assert_eq!(
            f.failed(0),
            AfterFailure::Start(Start {
                column: 0,
                holder: 2,
                from: 5
            })
        );
        // The third holder failing loses the column: the spare takes over.
        assert_eq!(
            f.failed(0),
            AfterFailure::Start(Start {
                column: 3,
                holder: 0,
                from: 5
            })
        );
    }

    #[test]
    fn gives_up_only_when_fewer_than_k_columns_can_deliver() {
        let (mut f, starts) = Failover::new(2, 4, cols(&[1, 1, 1]), 0..3);
        assert_eq!(starts.len(), 3);
        assert!(!f.delivered(0));
        assert_eq!(f.failed(1), AfterFailure::Wait); // 0 delivered, 2 in flight
        match f.failed(2) {
            AfterFailure::GiveUp {
                available,
                need,
                missing,
            } => {
                assert_eq!((available, need), (1, 2));
                // Column 3 had no holder at all; 1 and 2 lost theirs.
                assert_eq!(missing, vec![1, 2, 3]);
            }
            other => panic!("expected to give up, got {other:?}"),
        }
    }

    #[test]
    fn a_column_failing_after_it_delivered_is_replaced_for_the_next_segment() {
        let (mut f, _) = Failover::new(2, 4, cols(&[1, 2, 1, 1]), 0..4);
        assert!(!f.delivered(1));
        // Column 1 delivered, then its holder died: its next holder takes it up from
        // the next segment.
        assert_eq!(
            f.failed(1),
            AfterFailure::Start(Start {
                column: 1,
                holder: 1,
                from: 1
            })
        );
        assert!(f.delivered(0));
        assert_eq!(f.next_segment(), vec![2]);
        // Column 0's only holder dies: spare 3 takes over at this segment.
        assert_eq!(
            f.failed(0),
            AfterFailure::Start(Start {
                column: 3,
                holder: 0,
                from: 1
            })
        );
        // Column 1's second holder dies too after delivering: the last spare, 2.
        assert!(!f.delivered(1));
        assert_eq!(
            f.failed(1),
            AfterFailure::Start(Start {
                column: 2,
                holder: 0,
                from: 1
            })
        );
        assert!(f.delivered(3));
    }

    #[test]
    fn a_read_with_fewer_than_k_located_columns_starts_what_it_has() {
        let (mut f, starts) = Failover::new(3, 5, cols(&[1, 0]), 0..1);
        assert_eq!(starts.len(), 1);
        match f.failed(0) {
            AfterFailure::GiveUp {
                available, missing, ..
            } => {
                assert_eq!(available, 0);
                assert_eq!(missing, vec![0, 1, 2, 3, 4]);
            }
            other => panic!("expected to give up, got {other:?}"),
        }
    }
}
