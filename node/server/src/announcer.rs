//! The announcer: keeps this node's DHT records fresh. Each round publishes the
//! node's addresses, that it is a storage node, and every blob it holds; a round that
//! did not reach the DHT with every record is retried soon. Blobs stored between
//! rounds are announced by the handler before the client is answered.
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

use mosaic_wire::dht::{PeerAddr, Routing, RoutingError};
use tokio::sync::watch;
use tracing::debug;

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
