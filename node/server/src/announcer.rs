//! The announcer: keeps this node's DHT records fresh. Each round publishes the
//! node's addresses, that it is a storage node, and every blob it holds; a round that
//! did not reach the DHT with every record is retried soon. Blobs stored between
//! rounds are announced at once, in the background ([`announce_fresh`]), retried with
//! backoff until the DHT takes them: a store is answered once its blob is durable, and
//! the DHT's troubles (frozen peers, long timeouts) stay off the client's put.
//!
//! Invariant: no DHT put can stall the loop (each is bounded by [`PUT_TIMEOUT`]), so
//! one hung put never delays the address record that readers need to dial us.

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use mosaic_codec::Hash;
use mosaic_wire::dht::{PeerAddr, Routing, RoutingError};
use tokio::sync::{Semaphore, oneshot, watch};
use tracing::{debug, warn};

use crate::store::Store;

/// Progress of the announcer, for status reports and metrics.
#[derive(Debug, Default)]
pub struct AnnounceStatus {
    /// Records still to announce in the current round.
    pub backlog: AtomicUsize,
    /// Completed rounds.
    pub rounds: AtomicU64,
    /// Whether the last round reached the DHT for every record.
    pub last_round_ok: AtomicBool,
    /// Blobs stored lately whose first announce has not succeeded yet.
    pub fresh: AtomicUsize,
    /// How long fresh announces take lately (a moving average, in microseconds; 0 before
    /// the first).
    pub fresh_micros: AtomicU64,
}

impl AnnounceStatus {
    /// Records still to publish: the current round's and the fresh blobs'.
    pub fn backlog(&self) -> u64 {
        (self.backlog.load(Ordering::Relaxed) + self.fresh.load(Ordering::Relaxed)) as u64
    }

    /// How long a store of a manifest may wait for its announce before it is answered:
    /// three times what announces take lately, within `FRESH_WAIT_MIN` and
    /// `FRESH_WAIT_MAX`. A healthy DHT finishes well within it, so a file is findable
    /// as soon as its put returns; a troubled one costs the put at most the cap.
    pub fn fresh_wait(&self) -> Duration {
        match self.fresh_micros.load(Ordering::Relaxed) {
            0 => FRESH_WAIT_MAX,
            us => (Duration::from_micros(us) * 3).clamp(FRESH_WAIT_MIN, FRESH_WAIT_MAX),
        }
    }

    fn fresh_took(&self, took: Duration) {
        let sample = took.as_micros().min(u64::MAX as u128) as u64;
        let _ = self
            .fresh_micros
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                Some(if old == 0 {
                    sample.max(1)
                } else {
                    (old * 7 + sample) / 8
                })
            });
    }
}

/// The least a manifest's store waits for its announce (see [`AnnounceStatus::fresh_wait`]).
pub const FRESH_WAIT_MIN: Duration = Duration::from_millis(100);

/// The most a manifest's store waits for its announce. A lookup that meets a frozen
/// node lasts at least n0-mainline's 500 ms request timeout; past that, a read right
/// after the put finds the file on its second look (`Client::manifest` looks again
/// after 1 s and 2 s), while the put is answered.
pub const FRESH_WAIT_MAX: Duration = Duration::from_millis(500);

/// Fresh announces running at once; the others wait their turn (each is small, but a
/// burst of stores must not start thousands of DHT lookups together).
static FRESH_TURNS: std::sync::LazyLock<Arc<Semaphore>> =
    std::sync::LazyLock::new(|| Arc::new(Semaphore::new(32)));

/// Pauses between a fresh announce's tries: doubling from the first, capped.
const FRESH_RETRY_FIRST: Duration = Duration::from_secs(1);
const FRESH_RETRY_MAX: Duration = Duration::from_secs(60);
/// Tries before the blob is left to the announcer's next full round.
const FRESH_TRIES: u32 = 20;
/// How long one try may take.
const FRESH_TRY_LIMIT: Duration = Duration::from_secs(30);

/// Announces a blob just stored, in a task of its own, retrying with backoff until the
/// DHT takes it (or, after [`FRESH_TRIES`], leaving it to the next full round). The
/// receiver hears once the first try succeeded; it is dropped unanswered otherwise.
pub(crate) fn announce_fresh(
    routing: Routing,
    status: Arc<AnnounceStatus>,
    hash: Hash,
) -> oneshot::Receiver<()> {
    let (tx, rx) = oneshot::channel();
    status.fresh.fetch_add(1, Ordering::Relaxed);
    tokio::spawn(async move {
        let mut done = Some(tx);
        let mut pause = FRESH_RETRY_FIRST;
        for attempt in 1..=FRESH_TRIES {
            let result = {
                let _turn = FRESH_TURNS.clone().acquire_owned().await;
                let started = std::time::Instant::now();
                let result =
                    tokio::time::timeout(FRESH_TRY_LIMIT, routing.announce_blob(&hash)).await;
                if matches!(result, Ok(Ok(()))) {
                    status.fresh_took(started.elapsed());
                }
                result
            };
            match result {
                Ok(Ok(())) => {
                    status.fresh.fetch_sub(1, Ordering::Relaxed);
                    if let Some(tx) = done.take() {
                        let _ = tx.send(());
                    }
                    return debug!(hash = %hash.fmt_short(), attempt, "announced");
                }
                Ok(Err(e)) => debug!(hash = %hash.fmt_short(), attempt, "announce failed: {e}"),
                Err(_) => {
                    debug!(hash = %hash.fmt_short(), attempt, "announce took over {FRESH_TRY_LIMIT:?}")
                }
            }
            // A store waiting for this announce goes on without it.
            done = None;
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(FRESH_RETRY_MAX);
        }
        status.fresh.fetch_sub(1, Ordering::Relaxed);
        warn!(hash = %hash.fmt_short(), "announce still failing after {FRESH_TRIES} tries; the announcer's next round retries");
    });
    rx
}

/// Where a node remembers its DHT peers between runs (one `host:port` per line).
pub(crate) const PEERS_FILE: &str = "dht-peers";

/// Re-announces every record each `interval`; retries sooner after a round that did
/// not reach the DHT (the first node of a network has no peers until others join), and
/// starts a round at once when the node's reachability changes (a new home relay).
/// Saves the DHT's peers after each round for the next start.
pub(crate) async fn run(
    routing: Routing,
    store: Store,
    mut reach: watch::Receiver<PeerAddr>,
    serves_relay: bool,
    interval: Duration,
    status: Arc<AnnounceStatus>,
    peers_file: PathBuf,
) {
    const RETRY: Duration = Duration::from_secs(2);
    const PARALLEL: usize = 8;
    // A node's first records reach only the DHT nodes it knows at start: few, when it
    // is the first of a network or all start together. Lookups settle on their first
    // answers, so such a node could stay unseen until the next round (`interval`,
    // 10 min by default). The small records are published again soon after start,
    // when the routing table has filled; the blobs wait for the next full round.
    const EARLY: [Duration; 2] = [Duration::from_secs(10), Duration::from_secs(60)];
    let mut early = EARLY.into_iter();
    let mut full = true;
    // A DHT put that hangs must not stall every later record (nor the address record,
    // which readers need to dial us): each step is bounded, and a timeout counts as a
    // failed round, retried soon.
    loop {
        let addr = reach.borrow_and_update().clone();
        let mut ok = bounded(routing.publish_addrs(&addr)).await;
        ok &= bounded(routing.announce_storage_node()).await;
        if serves_relay {
            ok &= bounded(routing.announce_relay()).await;
        }
        if !full {
            debug!(ok, "early announce of the node's own records done");
        } else {
            let held = store.held().unwrap_or_default();
            status.backlog.store(held.len(), Ordering::Relaxed);
            for batch in held.chunks(PARALLEL) {
                let results =
                    n0_future::join_all(batch.iter().map(|h| bounded(routing.announce_blob(h))))
                        .await;
                ok &= results.iter().all(|r| *r);
                status.backlog.fetch_sub(batch.len(), Ordering::Relaxed);
            }
            status.rounds.fetch_add(1, Ordering::Relaxed);
            status.last_round_ok.store(ok, Ordering::Relaxed);
            debug!(blobs = held.len(), ok, "announce round done");
        }
        if let Ok(peers) = routing.to_bootstrap().await {
            if !peers.is_empty() {
                let tmp = peers_file.with_extension("tmp");
                if std::fs::write(&tmp, peers.join("\n")).is_ok() {
                    let _ = std::fs::rename(&tmp, &peers_file);
                }
            }
        }
        // A failed round is retried in full; otherwise the early small rounds come first.
        let (wait, next_full) = if !ok {
            (interval.min(RETRY), true)
        } else {
            match early.next() {
                Some(soon) if soon < interval => (soon, false),
                _ => (interval, true),
            }
        };
        full = next_full;
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            // The sender lives as long as the node: an error only means shutdown.
            _ = reach.changed() => {}
        }
    }
}

/// How long one DHT put of the announcer may take.
const PUT_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether `put` succeeded within [`PUT_TIMEOUT`].
async fn bounded(put: impl Future<Output = Result<(), RoutingError>>) -> bool {
    matches!(tokio::time::timeout(PUT_TIMEOUT, put).await, Ok(Ok(())))
}
