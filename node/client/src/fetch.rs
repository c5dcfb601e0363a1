//! Fetching columns: the loop that assembles each segment's `k` shards from columns
//! streamed in parallel, doing what [`Failover`] decides when a holder fails, and the
//! network's column streams (iroh-blobs verified streaming of one column's byte span,
//! cut into per-segment shards).
//!
//! The loop ([`Assembly`]) is generic over [`ShardSource`], so unit tests run it against fake holders
//! that stall, lie or die mid-stream; the read path (`get.rs`) runs it on
//! [`NetworkSource`].
//!
//! Invariants: every shard handed on belongs to the segment being assembled (a column
//! that sends another is treated as failed); memory is bounded by
//! [`GET_PIPE_DEPTH`](crate::GET_PIPE_DEPTH) shards per active column; dropping the
//! loop's future stops every fetch.

use std::{ops::Range, sync::Mutex, task::Poll, time::Duration};

use iroh::{EndpointId, endpoint::Connection};
use mosaic_codec::{Hash, Layout};
use mosaic_wire::request::{FetchError, RangeRead};
use tokio::{sync::mpsc, task::JoinHandle};
use tracing::{debug, warn};

use crate::{
    ClientError, GET_PIPE_DEPTH, GetReport,
    failover::{AfterFailure, Column, Failover, Start},
};

/// One column and its reachable holders, best first.
#[derive(Debug, Clone)]
pub(crate) struct ColumnHolders {
    pub column: usize,
    pub hash: Hash,
    pub holders: Vec<(EndpointId, Connection)>,
    pub best_rtt: Duration,
}

/// A shard of a segment, or why a column's stream stopped.
pub(crate) type ShardResult = Result<(u64, Vec<u8>), FetchError>;

/// A running column stream: verified shards, one segment at a time, in order.
/// Dropping it stops the stream.
#[derive(Debug)]
pub(crate) struct ColumnFetch {
    rx: mpsc::Receiver<ShardResult>,
    task: JoinHandle<()>,
}

impl ColumnFetch {
    /// Runs `stream` in a task, feeding a channel of [`GET_PIPE_DEPTH`] shards.
    pub fn spawn<F>(stream: impl FnOnce(mpsc::Sender<ShardResult>) -> F) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(GET_PIPE_DEPTH);
        let task = tokio::spawn(stream(tx));
        Self { rx, task }
    }
}

impl Drop for ColumnFetch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Where a read's shards come from.
pub(crate) trait ShardSource {
    /// Streams column `start.column` from its holder `start.holder`, segments
    /// `start.from..end`. The stream ends with an error if the holder fails, stalls or
    /// sends what does not verify.
    fn start(&self, start: Start, end: u64) -> ColumnFetch;
}

/// Assembles segments `range`, in order, from `source`'s columns: each segment's `k`
/// shards `(column, shard)`. Dropping it stops every fetch.
pub(crate) struct Assembly<'a, S> {
    source: &'a S,
    k: usize,
    n: usize,
    plan: Failover,
    active: Vec<(usize, ColumnFetch)>,
    segments: Range<u64>,
    end: u64,
    report: &'a Mutex<GetReport>,
}

impl<'a, S: ShardSource> Assembly<'a, S> {
    /// Starts fetching segments `range` from `source`, which has `ranked` columns
    /// (best first) of a file with `k` data columns out of `n`.
    pub fn start(
        source: &'a S,
        (k, n): (usize, usize),
        ranked: Vec<Column>,
        range: Range<u64>,
        report: &'a Mutex<GetReport>,
    ) -> Self {
        let (plan, starts) = Failover::new(k, n, ranked, range.clone());
        let mut active = Vec::new();
        for s in starts {
            report
                .lock()
                .expect("not poisoned")
                .columns_used
                .push(s.column);
            active.push((s.column, source.start(s, range.end)));
        }
        Self {
            source,
            k,
            n,
            plan,
            active,
            end: range.end,
            segments: range,
            report,
        }
    }

    /// The next segment's index and its `k` shards; `None` after the last.
    pub async fn next(&mut self) -> Result<Option<(u64, Vec<(usize, Vec<u8>)>)>, ClientError> {
        let Some(index) = self.segments.next() else {
            return Ok(None);
        };
        let mut got: Vec<(usize, Vec<u8>)> = Vec::with_capacity(self.k);
        loop {
            let plan = &self.plan;
            if !self.active.iter().any(|(c, _)| plan.waiting_on(*c)) {
                // The plan never waits on nothing; if it did, fail rather than hang.
                return Err(unavailable(self.k, got.len(), self.n));
            }
            let active = &mut self.active;
            let (column, item) = std::future::poll_fn(|cx| {
                for (c, f) in active.iter_mut() {
                    if plan.waiting_on(*c) {
                        if let Poll::Ready(item) = f.rx.poll_recv(cx) {
                            return Poll::Ready((*c, item));
                        }
                    }
                }
                Poll::Pending
            })
            .await;
            match item {
                Some(Ok((s, shard))) if s == index => {
                    got.push((column, shard));
                    if self.plan.delivered(column) {
                        break;
                    }
                }
                other => {
                    warn!(
                        column,
                        "column fetch failed at segment {index}: {}",
                        match other {
                            Some(Err(e)) => e.to_string(),
                            Some(Ok((s, _))) => format!("sent segment {s}"),
                            None => "ended".into(),
                        }
                    );
                    self.failed(column)?;
                }
            }
        }
        for slow in self.plan.next_segment() {
            self.active.retain(|(c, _)| *c != slow);
        }
        Ok(Some((index, got)))
    }

    /// Does what the plan says after `column`'s holder failed.
    fn failed(&mut self, column: usize) -> Result<(), ClientError> {
        let after = self.plan.failed(column);
        let mut report = self.report.lock().expect("not poisoned");
        report.failovers = self.plan.failovers();
        self.active.retain(|(c, _)| *c != column);
        match after {
            AfterFailure::Start(s) => {
                if s.column != column {
                    report.columns_used.push(s.column);
                }
                self.active.push((s.column, self.source.start(s, self.end)));
                Ok(())
            }
            AfterFailure::Wait => Ok(()),
            AfterFailure::GiveUp {
                available,
                need,
                missing,
            } => Err(ClientError::ColumnsUnavailable {
                available,
                need,
                missing,
            }),
        }
    }
}

fn unavailable(k: usize, have: usize, n: usize) -> ClientError {
    ClientError::ColumnsUnavailable {
        available: have,
        need: k,
        missing: (0..n).collect(),
    }
}

/// The network: each column's holders, streamed with iroh-blobs.
#[derive(Debug)]
pub(crate) struct NetworkSource {
    /// By column index; `None` for columns without a holder.
    pub columns: Vec<Option<ColumnHolders>>,
    pub layout: Layout,
    pub stall: Duration,
}

impl NetworkSource {
    /// The source of `located` columns, and their ranking for [`fetch`].
    pub fn new(
        located: Vec<ColumnHolders>,
        layout: Layout,
        stall: Duration,
    ) -> (Self, Vec<Column>) {
        let ranked = located
            .iter()
            .map(|c| Column {
                column: c.column,
                holders: c.holders.len(),
            })
            .collect();
        let mut columns = vec![None; layout.params().columns()];
        for c in located {
            let j = c.column;
            if let Some(slot) = columns.get_mut(j) {
                *slot = Some(c);
            }
        }
        (
            Self {
                columns,
                layout,
                stall,
            },
            ranked,
        )
    }
}

impl ShardSource for NetworkSource {
    fn start(&self, start: Start, end: u64) -> ColumnFetch {
        let holder = self
            .columns
            .get(start.column)
            .and_then(Option::as_ref)
            .and_then(|c| Some((c.hash, c.holders.get(start.holder)?.clone())));
        let (layout, stall) = (self.layout, self.stall);
        ColumnFetch::spawn(move |tx| async move {
            let Some((hash, (id, conn))) = holder else {
                let _ = tx.send(Err(FetchError::Shape)).await;
                return;
            };
            let mut next = start.from;
            if let Err(e) = stream_segments(&conn, &hash, &layout, &mut next, end, stall, &tx).await
            {
                debug!(holder = %id.fmt_short(), column = start.column, "fetch failed: {e}");
                let _ = tx.send(Err(e)).await;
            }
        })
    }
}

/// Requests the column's bytes for segments `*next..end` and sends each complete
/// segment's shard, advancing `*next`.
async fn stream_segments(
    conn: &Connection,
    hash: &Hash,
    layout: &Layout,
    next: &mut u64,
    end: u64,
    stall: Duration,
    tx: &mpsc::Sender<ShardResult>,
) -> Result<(), FetchError> {
    if *next >= end {
        return Ok(());
    }
    let span = layout.column_span(*next).start..layout.column_span(end - 1).end;
    let mut read = RangeRead::start(conn, hash, span, Some(layout.column_len()), stall).await?;
    let mut shard: Vec<u8> = Vec::with_capacity(layout.segment_shard_len(*next));
    while let Some(mut data) = read.next().await? {
        while !data.is_empty() && *next < end {
            let want = layout.segment_shard_len(*next) - shard.len();
            let piece = data.split_to(want.min(data.len()));
            shard.extend_from_slice(&piece);
            if shard.len() == layout.segment_shard_len(*next) {
                let full = std::mem::take(&mut shard);
                if tx.send(Ok((*next, full))).await.is_err() {
                    return Ok(()); // the reader dropped this column
                }
                *next += 1;
                if *next < end {
                    shard.reserve(layout.segment_shard_len(*next));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The fetch loop against fake holders: each column's holders follow a script
    //! (serve, die after some segments, stall, send a segment out of step), and every
    //! shard carries its column and segment, so the test checks what was assembled.

    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::{collections::HashMap, sync::Mutex, time::Duration};

    use mosaic_wire::request::FetchError;

    use super::{Assembly, ColumnFetch, ShardSource};
    use crate::{
        ClientError, GetReport,
        failover::{Column, Start},
    };

    /// What one fake holder does.
    #[derive(Debug, Clone, Copy)]
    enum Holder {
        /// Serves every segment asked for.
        Serves,
        /// Serves this many segments, then its connection dies.
        DiesAfter(u64),
        /// Serves this many segments, then stalls (its stream ends in a stall error
        /// after the stall timeout, as the network source's does).
        StallsAfter(u64),
        /// Serves this many segments, then sends a later segment than asked (lies).
        SkipsAfter(u64),
    }

    const STALL: Duration = Duration::from_secs(10);

    struct Fake {
        holders: HashMap<usize, Vec<Holder>>,
        starts: Mutex<Vec<Start>>,
    }

    fn shard(column: usize, segment: u64) -> Vec<u8> {
        vec![column as u8, segment as u8]
    }

    impl ShardSource for Fake {
        fn start(&self, start: Start, end: u64) -> ColumnFetch {
            self.starts.lock().unwrap().push(start);
            let holder = self.holders[&start.column][start.holder];
            ColumnFetch::spawn(move |tx| async move {
                for (served, s) in (start.from..end).enumerate() {
                    let failing = match holder {
                        Serves => None,
                        DiesAfter(n) | StallsAfter(n) | SkipsAfter(n) => {
                            (served as u64 == n).then_some(holder)
                        }
                    };
                    match failing {
                        None => {}
                        Some(DiesAfter(_)) => {
                            let _ = tx.send(Err(FetchError::Ended { at: s })).await;
                            return;
                        }
                        Some(StallsAfter(_)) => {
                            tokio::time::sleep(STALL).await;
                            let _ = tx.send(Err(FetchError::Ended { at: s })).await;
                            return;
                        }
                        Some(_) => {
                            let _ = tx.send(Ok((s + 1, shard(start.column, s + 1)))).await;
                            return;
                        }
                    }
                    // A little time per shard, more for later columns: a ranking.
                    tokio::time::sleep(Duration::from_millis(1 + start.column as u64)).await;
                    if tx.send(Ok((s, shard(start.column, s)))).await.is_err() {
                        return;
                    }
                }
            })
        }
    }

    /// Runs a read of `segments` segments, `k` of `scripts.len()` columns.
    async fn read(
        k: usize,
        scripts: Vec<Vec<Holder>>,
        segments: u64,
    ) -> (Result<Vec<Vec<usize>>, ClientError>, GetReport, Vec<Start>) {
        let n = scripts.len();
        let ranked = scripts
            .iter()
            .enumerate()
            .map(|(column, h)| Column {
                column,
                holders: h.len(),
            })
            .collect();
        let fake = Fake {
            holders: scripts.into_iter().enumerate().collect(),
            starts: Mutex::new(Vec::new()),
        };
        let report = Mutex::new(GetReport::default());
        let mut assembled = Vec::new();
        let mut assembly = Assembly::start(&fake, (k, n), ranked, 0..segments, &report);
        let result = loop {
            match assembly.next().await {
                Ok(Some((index, got))) => {
                    assert_eq!(index, assembled.len() as u64, "segments in order");
                    let mut columns = Vec::new();
                    for (column, bytes) in got {
                        assert_eq!(bytes, shard(column, index), "a shard of another segment");
                        columns.push(column);
                    }
                    assert_eq!(columns.len(), k);
                    assembled.push(columns);
                }
                Ok(None) => break Ok(assembled),
                Err(e) => break Err(e),
            }
        };
        drop(assembly);
        let starts = fake.starts.into_inner().unwrap();
        (result, report.into_inner().unwrap(), starts)
    }

    use Holder::*;

    #[tokio::test(start_paused = true)]
    async fn a_healthy_read_uses_the_k_fastest_columns_after_the_first_segment() {
        let (r, report, starts) = read(3, vec![vec![Serves]; 5], 8).await;
        let segments = r.unwrap();
        assert_eq!(segments.len(), 8);
        assert_eq!(starts.len(), 4, "k + 1 columns started, no more");
        assert!(
            segments[1..].iter().all(|s| !s.contains(&3)),
            "the slowest dropped"
        );
        assert_eq!(report.failovers, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_holder_dying_mid_stream_is_resumed_on_its_next_holder() {
        let scripts = vec![
            vec![DiesAfter(3), Serves],
            vec![Serves],
            vec![Serves],
            vec![Serves],
        ];
        let (r, report, starts) = read(3, scripts, 8).await;
        assert_eq!(r.unwrap().len(), 8);
        assert!(
            starts.contains(&Start {
                column: 0,
                holder: 1,
                from: 3
            }),
            "{starts:?}"
        );
        assert_eq!(report.failovers, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn stalled_and_lying_columns_are_replaced_by_spares() {
        let scripts = vec![
            vec![StallsAfter(2)],
            vec![SkipsAfter(4)],
            vec![Serves],
            vec![Serves],
            vec![Serves],
        ];
        let (r, report, starts) = read(3, scripts, 8).await;
        assert_eq!(r.unwrap().len(), 8);
        assert_eq!(report.failovers, 2);
        // Column 3 was dropped as the slowest, column 4 never started before a failure.
        assert!(starts.iter().any(|s| s.column == 4));
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_fails_naming_the_columns_when_too_few_can_deliver() {
        let scripts = vec![vec![DiesAfter(1)], vec![DiesAfter(1)], vec![Serves], vec![]];
        let (r, _, _) = read(2, scripts, 4).await;
        match r {
            Err(ClientError::ColumnsUnavailable { need, missing, .. }) => {
                assert_eq!(need, 2);
                assert_eq!(missing, vec![0, 1, 3]);
            }
            other => panic!("expected ColumnsUnavailable, got {other:?}"),
        }
    }
}
