//! The scrubber: re-hashes every held blob at a bounded rate, so bit rot is found
//! before a reader (or a repair) needs the bytes.
//!
//! A blob whose bytes no longer hash to its name is dropped at once ([`Store::quarantine`]:
//! no longer listed as held, so neither announced nor offered to readers; the sweeper
//! deletes its bytes) and, if it is a column of a file whose manifest this node holds,
//! the file is repaired at once: the column is rebuilt from the other columns onto a
//! node holding nothing of the file, pinned for the owners the corrupt copy had.
//!
//! Invariant: at most [`HealthOptions::scrub_rate`](crate::HealthOptions) bytes per
//! second are read, averaged over each blob (reads are paced, not bursty beyond one
//! buffer).

use std::{
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use mosaic_codec::Hash;
use n0_future::StreamExt;
use tracing::{info, warn};

use crate::health::{Health, jitter};

/// Scrubs every held blob once per `interval` (the first pass one interval after the
/// start, jittered), reading at most `rate` bytes per second.
pub(crate) async fn run(health: Arc<Health>, me: iroh::EndpointId, interval: Duration, rate: u64) {
    for round in 0u64.. {
        tokio::time::sleep(interval * 9 / 10 + jitter(&me, round, interval / 5)).await;
        pass(&health, rate).await;
    }
}

/// One pass over every held blob.
pub(crate) async fn pass(health: &Arc<Health>, rate: u64) {
    let store = health.store().clone();
    let held = match store.held_sizes() {
        Ok(held) => held,
        Err(e) => {
            warn!("scrub: cannot list held blobs: {e}");
            return;
        }
    };
    let started = Instant::now();
    let mut bytes = 0u64;
    for (hash, _) in held {
        match scrub_one(health, &hash, rate).await {
            Ok((read, true)) => bytes += read,
            Ok((read, false)) => {
                bytes += read;
                heal(health, hash).await;
            }
            // Collected meanwhile, most likely: nothing to scrub.
            Err(e) => tracing::debug!(hash = %hash.fmt_short(), "scrub: cannot read: {e}"),
        }
    }
    health
        .counters()
        .scrub_passes
        .fetch_add(1, Ordering::Relaxed);
    info!(
        bytes,
        secs = started.elapsed().as_secs_f64(),
        "scrub pass done"
    );
}

/// Re-hashes one blob; returns the bytes read and whether they match its hash.
async fn scrub_one(health: &Health, hash: &Hash, rate: u64) -> std::io::Result<(u64, bool)> {
    let mut bytes = std::pin::pin!(health.store().bytes(hash));
    let mut hasher = blake3::Hasher::new();
    let started = Instant::now();
    let mut read = 0u64;
    while let Some(chunk) = bytes.next().await {
        let chunk = chunk?;
        let n = chunk.len();
        hasher.update(&chunk);
        read += n as u64;
        health
            .counters()
            .bytes_scrubbed
            .fetch_add(n as u64, Ordering::Relaxed);
        // Paced: never ahead of `rate` bytes per second.
        let due = Duration::from_secs_f64(read as f64 / rate.max(1) as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
    Ok((read, Hash::from(hasher.finalize()) == *hash))
}

/// Drops a corrupt blob and gets its column rebuilt elsewhere.
async fn heal(health: &Arc<Health>, hash: Hash) {
    health
        .counters()
        .corrupt_found
        .fetch_add(1, Ordering::Relaxed);
    let file = health.file_of_column(&hash).await;
    match health.store().quarantine(&hash) {
        Ok(owners) => warn!(
            hash = %hash.fmt_short(),
            owners = owners.len(),
            "scrub: blob is corrupt; dropped it"
        ),
        Err(e) => {
            warn!(hash = %hash.fmt_short(), "scrub: blob is corrupt, and dropping it failed: {e}");
            return;
        }
    }
    match file {
        Some(file) => {
            let report = health.check(file, true).await;
            info!(file = %file.fmt_short(), "scrub: repair after corruption: {}", report.message);
        }
        None => warn!(
            hash = %hash.fmt_short(),
            "scrub: the corrupt blob is no column of a file whose manifest this node holds; other holders keep their copies"
        ),
    }
}
