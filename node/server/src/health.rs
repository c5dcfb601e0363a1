//! Health checks and repair: each node looks after the files it holds part of, with no
//! coordinator and no keys.
//!
//! Every [`HealthOptions::check_interval`] (jittered, and spread evenly over the
//! interval, at most [`CHECKS_IN_FLIGHT`] at a time) the node checks each file whose
//! manifest it holds (every column holder also holds the manifest): one DHT lookup of
//! the manifest's holders, one `Status` per holder (which columns it has), and a
//! lookup per column only for columns none of them has. A column no live node has is
//! missing. A file with missing columns is repaired by one of its live holders, chosen
//! by the pure policy in `policy.rs` (rendezvous rank, grace period, back-off):
//!
//! 1. `k` present columns are streamed in (this node's own from its store, the others
//!    with verified streaming), the missing ones rebuilt segment by segment
//!    ([`mosaic_client::rebuild_columns`]) and streamed out to nodes that hold nothing
//!    of the file, ranked per column by rendezvous hashing;
//! 2. each target first adopts the manifest (checked against the file id), then the
//!    column (checked against the manifest's hash), pins both for the file's owners
//!    (the owners pinning it here) and announces them before it answers.
//!
//! Invariants: nothing is repaired for a file no one pins here (it is garbage, to be
//! collected); at most one check or repair of a file runs on this node at a time; a
//! target that failed is not chosen again for that file; the node never reads
//! plaintext (it holds no key: columns are rebuilt as ciphertext).

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use iroh::EndpointId;
use mosaic_client::{Client, ColumnStream, FileHealth, PUT_PIPE_DEPTH, rebuild_columns};
use mosaic_codec::{Hash, MAX_MANIFEST_LEN, Manifest};
use mosaic_wire::proto::{HealthStats, RepairReport};
use n0_future::StreamExt;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::{policy, policy::RepairPolicy, store::Store};

/// Why a repair placed nothing.
#[derive(Debug, thiserror::Error)]
enum RepairError {
    #[error("finding storage nodes: {0}")]
    Nodes(#[source] mosaic_client::ClientError),
    #[error(
        "no storage node that holds nothing of the file has {need} bytes free ({answered} nodes answered)"
    )]
    NoTarget { need: u64, answered: usize },
    #[error("every chosen node refused the manifest")]
    ManifestRefused,
    #[error("only {opened} of the {needed} source columns could be opened: {problems}")]
    Sources {
        opened: usize,
        needed: usize,
        problems: String,
    },
    #[error("no rebuilt column was placed: {0}")]
    NothingPlaced(String),
}

/// File checks running at once on one node.
pub const CHECKS_IN_FLIGHT: usize = 4;

/// How a node looks after the files it holds.
#[derive(Debug, Clone, Copy)]
pub struct HealthOptions {
    /// How often each file is checked (`--check-interval`).
    pub check_interval: Duration,
    /// When and by whom a file is repaired (`--repair-grace`; the back-off is three
    /// check intervals unless set).
    pub policy: RepairPolicy,
    /// How often every held blob is re-hashed (`--scrub-interval`).
    pub scrub_interval: Duration,
    /// Bytes per second the scrubber reads at most (`--scrub-rate`).
    pub scrub_rate: u64,
}

impl Default for HealthOptions {
    fn default() -> Self {
        let check_interval = Duration::from_secs(30 * 60);
        Self {
            check_interval,
            policy: RepairPolicy {
                backoff: check_interval * 3,
                ..RepairPolicy::default()
            },
            scrub_interval: Duration::from_secs(30 * 24 * 3600),
            scrub_rate: 16 << 20,
        }
    }
}

/// What the checks, repairs and scrubs have done since the node started.
#[derive(Debug, Default)]
pub struct HealthCounters {
    files: AtomicU64,
    files_checked: AtomicU64,
    repairs_done: AtomicU64,
    repairs_failed: AtomicU64,
    bytes_rebuilt: AtomicU64,
    pub(crate) bytes_scrubbed: AtomicU64,
    pub(crate) corrupt_found: AtomicU64,
    pub(crate) scrub_passes: AtomicU64,
}

/// What this node knows of a file with missing columns.
#[derive(Debug)]
struct Missing {
    since: Instant,
    columns: usize,
    /// Targets that failed to adopt a column of this file.
    bad_targets: HashSet<EndpointId>,
}

/// The health checker and repairer of one node.
#[derive(Debug)]
pub(crate) struct Health {
    me: EndpointId,
    store: Store,
    client: Arc<Client>,
    options: HealthOptions,
    counters: HealthCounters,
    /// Held blobs known to be manifests (true) or not (false): blobs never change.
    kinds: Mutex<HashMap<Hash, bool>>,
    missing: Mutex<HashMap<Hash, Missing>>,
    busy: Mutex<HashSet<Hash>>,
}

/// Removes a file from the busy set when its check ends, however it ends.
struct Busy<'a>(&'a Health, Hash);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.busy.lock().expect("not poisoned").remove(&self.1);
    }
}

fn report(manifest: Option<&Manifest>, message: impl Into<String>) -> RepairReport {
    RepairReport {
        columns: manifest.map_or(0, |m| m.columns().len() as u16),
        message: message.into(),
        ..RepairReport::default()
    }
}

impl Health {
    pub(crate) fn new(
        me: EndpointId,
        store: Store,
        client: Arc<Client>,
        options: HealthOptions,
    ) -> Self {
        Self {
            me,
            store,
            client,
            options,
            counters: HealthCounters::default(),
            kinds: Mutex::default(),
            missing: Mutex::default(),
            busy: Mutex::default(),
        }
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn counters(&self) -> &HealthCounters {
        &self.counters
    }

    /// The counters, for `Status`.
    pub(crate) fn stats(&self) -> HealthStats {
        let c = &self.counters;
        let missing = self.missing.lock().expect("not poisoned");
        HealthStats {
            files: c.files.load(Ordering::Relaxed),
            files_checked: c.files_checked.load(Ordering::Relaxed),
            columns_missing: missing.values().map(|m| m.columns as u64).sum(),
            repair_backlog: missing.len() as u64,
            repairs_done: c.repairs_done.load(Ordering::Relaxed),
            repairs_failed: c.repairs_failed.load(Ordering::Relaxed),
            bytes_rebuilt: c.bytes_rebuilt.load(Ordering::Relaxed),
            bytes_scrubbed: c.bytes_scrubbed.load(Ordering::Relaxed),
            corrupt_found: c.corrupt_found.load(Ordering::Relaxed),
            scrub_passes: c.scrub_passes.load(Ordering::Relaxed),
        }
    }

    /// The files whose manifest this node holds. A held blob small enough to be a
    /// manifest is read once and remembered as one or not.
    pub(crate) async fn files(&self) -> Vec<Hash> {
        let held = match self.store.held_sizes() {
            Ok(held) => held,
            Err(e) => {
                warn!("cannot list held blobs: {e}");
                return Vec::new();
            }
        };
        let unknown: Vec<Hash> = {
            let mut kinds = self.kinds.lock().expect("not poisoned");
            let present: HashSet<Hash> = held.iter().map(|(h, _)| *h).collect();
            kinds.retain(|h, _| present.contains(h));
            for (hash, size) in &held {
                if *size > MAX_MANIFEST_LEN as u64 {
                    kinds.insert(*hash, false);
                }
            }
            held.iter()
                .map(|(h, _)| *h)
                .filter(|h| !kinds.contains_key(h))
                .collect()
        };
        for hash in unknown {
            let is_manifest = match self.store.read_small(&hash, MAX_MANIFEST_LEN as u64).await {
                Ok(Some(bytes)) => Manifest::from_bytes_verified(&bytes, &hash).is_ok(),
                _ => continue,
            };
            self.kinds
                .lock()
                .expect("not poisoned")
                .insert(hash, is_manifest);
        }
        let kinds = self.kinds.lock().expect("not poisoned");
        let files: Vec<Hash> = kinds.iter().filter(|(_, m)| **m).map(|(h, _)| *h).collect();
        self.counters
            .files
            .store(files.len() as u64, Ordering::Relaxed);
        files
    }

    /// The manifest of `file`, from this node's store.
    async fn manifest(&self, file: &Hash) -> Option<Manifest> {
        let bytes = self
            .store
            .read_small(file, MAX_MANIFEST_LEN as u64)
            .await
            .ok()??;
        Manifest::from_bytes_verified(&bytes, file).ok()
    }

    /// The file a held manifest names `column` in, if any.
    pub(crate) async fn file_of_column(&self, column: &Hash) -> Option<Hash> {
        for file in self.files().await {
            if let Some(m) = self.manifest(&file).await {
                if m.columns().contains(column) {
                    return Some(file);
                }
            }
        }
        None
    }

    /// Checks every file on a jittered interval, spread evenly over it.
    pub(crate) async fn run_checks(self: Arc<Self>) {
        let interval = self.options.check_interval;
        tokio::time::sleep(jitter(&self.me, 0, interval)).await;
        let permits = Arc::new(tokio::sync::Semaphore::new(CHECKS_IN_FLIGHT));
        for round in 1u64.. {
            let started = Instant::now();
            let files = self.files().await;
            // Spread over 90 % of the interval, so a round ends before the next begins.
            let pace = (interval * 9 / 10) / files.len().max(1) as u32;
            for file in files {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let this = self.clone();
                tokio::spawn(async move {
                    let r = this.check(file, false).await;
                    debug!(file = %file.fmt_short(), "check: {}", r.message);
                    drop(permit);
                });
                tokio::time::sleep(pace).await;
            }
            let _ = permits.acquire_many(CHECKS_IN_FLIGHT as u32).await;
            // The next round starts one interval after this one did, ± 10 %.
            let next = interval * 9 / 10 + jitter(&self.me, round, interval / 5);
            tokio::time::sleep(next.saturating_sub(started.elapsed())).await;
        }
    }

    /// Checks file `file` and repairs it if the policy says this node should now; with
    /// `force` (a client asked, or this node found a column of it corrupt), repairs any
    /// missing column at once.
    pub(crate) async fn check(&self, file: Hash, force: bool) -> RepairReport {
        // One check of a file at a time. A forced one (a client asked, or scrub found
        // rot) waits for a running one to end, then checks again: the running one may
        // have begun before what the caller knows (a node gone, a corrupt copy dropped).
        while !self.busy.lock().expect("not poisoned").insert(file) {
            if !force {
                return report(None, "a check of this file is already running on this node");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _busy = Busy(self, file);
        let Some(manifest) = self.manifest(&file).await else {
            return report(None, "this node does not hold the file's manifest");
        };
        let health = match self.client.file_health(&manifest, &[]).await {
            Ok(h) => h,
            Err(e) => return report(Some(&manifest), format!("the check failed: {e}")),
        };
        self.counters.files_checked.fetch_add(1, Ordering::Relaxed);
        let params = manifest.layout().params();
        let (k, n) = (params.data_columns(), params.columns());
        let places = self.places(&manifest, &health);
        let missing: Vec<usize> = (0..n).filter(|&c| places[c].is_empty()).collect();
        let mut out = report(Some(&manifest), "");
        out.missing = missing.iter().map(|&c| c as u16).collect();
        if missing.is_empty() {
            self.missing.lock().expect("not poisoned").remove(&file);
            out.message = format!("healthy: all {n} columns have a live holder");
            return out;
        }
        let since = {
            let mut all = self.missing.lock().expect("not poisoned");
            let entry = all.entry(file).or_insert_with(|| Missing {
                since: Instant::now(),
                columns: 0,
                bad_targets: HashSet::new(),
            });
            entry.columns = missing.len();
            entry.since
        };
        let healthy = n - missing.len();
        if healthy < k {
            out.message = format!(
                "only {healthy} of the {k} columns needed have a live holder: the file cannot be rebuilt until some of its holders return"
            );
            warn!(file = %file.fmt_short(), "{}", out.message);
            return out;
        }
        if !force && !self.options.policy.needs_repair(healthy, k, n) {
            out.message = format!("{healthy} of {n} columns: above the repair threshold");
            return out;
        }
        let owners = self.owners(&manifest);
        if owners.is_empty() {
            out.message = "no one pins this file here: it is not repaired".into();
            return out;
        }
        let mut live: Vec<EndpointId> = places.iter().flatten().copied().collect();
        live.extend(health.blobs[0].places.iter().map(|p| p.node));
        live.push(self.me);
        live.sort();
        live.dedup();
        let live_bytes: Vec<[u8; 32]> = live.iter().map(|id| *id.as_bytes()).collect();
        let rank = policy::rank(file.as_bytes(), &live_bytes, self.me.as_bytes()).unwrap_or(0);
        if !force && !self.options.policy.due(since.elapsed(), rank) {
            out.message = format!(
                "columns {missing:?} missing for {} s; this node is ranked {rank} of {} to repair",
                since.elapsed().as_secs(),
                live.len()
            );
            return out;
        }
        match self
            .repair(&manifest, &places, &missing, &owners, &health)
            .await
        {
            Ok(placed) => {
                let bytes = manifest.layout().column_len() * placed.len() as u64;
                self.counters.repairs_done.fetch_add(1, Ordering::Relaxed);
                self.counters
                    .bytes_rebuilt
                    .fetch_add(bytes, Ordering::Relaxed);
                let all = placed.len() == missing.len();
                if all {
                    self.missing.lock().expect("not poisoned").remove(&file);
                }
                out.placed = placed
                    .iter()
                    .map(|(c, node)| (*c as u16, *node.as_bytes()))
                    .collect();
                out.message = format!(
                    "rebuilt {} of {} missing columns ({bytes} bytes)",
                    placed.len(),
                    missing.len()
                );
                info!(file = %file.fmt_short(), "{}", out.message);
            }
            Err(e) => {
                self.counters.repairs_failed.fetch_add(1, Ordering::Relaxed);
                out.message = format!("the repair failed: {e}");
                warn!(file = %file.fmt_short(), "{}", out.message);
            }
        }
        out
    }

    /// For each column, the live nodes holding it (this node from its own store).
    fn places(&self, manifest: &Manifest, health: &FileHealth) -> Vec<Vec<EndpointId>> {
        let columns = manifest.columns();
        let local = self.store.states(&self.me, columns).unwrap_or_default();
        columns
            .iter()
            .enumerate()
            .map(|(c, _)| {
                let mut nodes: Vec<EndpointId> = health
                    .blobs
                    .get(c + 1)
                    .map(|b| b.places.iter().map(|p| p.node).collect())
                    .unwrap_or_default();
                if local.get(c).is_some_and(|s| s.held) {
                    nodes.push(self.me);
                }
                nodes
            })
            .collect()
    }

    /// The owners pinning the file (its manifest or any of its columns) here.
    fn owners(&self, manifest: &Manifest) -> Vec<[u8; 32]> {
        let mut owners: Vec<[u8; 32]> = std::iter::once(manifest.id())
            .chain(manifest.columns().iter().copied())
            .flat_map(|h| self.store.owners_of(&h).unwrap_or_default())
            .map(|id| *id.as_bytes())
            .collect();
        owners.sort();
        owners.dedup();
        owners.truncate(mosaic_wire::proto::MAX_HASHES);
        owners
    }

    /// Rebuilds the `missing` columns and places each on a node holding nothing of the
    /// file. Returns the columns placed and where.
    async fn repair(
        &self,
        manifest: &Manifest,
        places: &[Vec<EndpointId>],
        missing: &[usize],
        owners: &[[u8; 32]],
        health: &FileHealth,
    ) -> Result<Vec<(usize, EndpointId)>, RepairError> {
        let file = manifest.id();
        let column_len = manifest.layout().column_len();
        let mut excluded: HashSet<EndpointId> = health
            .blobs
            .iter()
            .flat_map(|b| b.places.iter().map(|p| p.node))
            .chain(health.unreachable.iter().copied())
            .collect();
        excluded.insert(self.me);
        if let Some(m) = self.missing.lock().expect("not poisoned").get(&file) {
            excluded.extend(m.bad_targets.iter().copied());
        }
        let (_, nodes) = self
            .client
            .storage_nodes()
            .await
            .map_err(RepairError::Nodes)?;
        let need = column_len + manifest.as_bytes().len() as u64;
        let candidates: Vec<EndpointId> = nodes
            .iter()
            .filter(|n| !excluded.contains(&n.id) && n.free() >= need)
            .map(|n| n.id)
            .collect();
        let assigned = policy::assign(file.as_bytes(), missing, &candidates);
        if assigned.is_empty() {
            return Err(RepairError::NoTarget {
                need,
                answered: nodes.len(),
            });
        }
        // Each target adopts the manifest first: it checks the column against it.
        let mut targets = Vec::new();
        for (column, node) in assigned {
            let (tx, rx) = mpsc::channel(1);
            let _ = tx.send(Bytes::copy_from_slice(manifest.as_bytes())).await;
            drop(tx);
            let size = manifest.as_bytes().len() as u64;
            match self.client.adopt(node, &file, None, owners, size, rx).await {
                Ok(_) => targets.push((column, node)),
                Err(e) => {
                    warn!(node = %node.fmt_short(), "adopting the manifest failed: {e}");
                    self.bad_target(&file, node);
                }
            }
        }
        if targets.is_empty() {
            return Err(RepairError::ManifestRefused);
        }
        let sources = self.sources(manifest, places).await?;
        let mut outputs = Vec::new();
        let mut uploads = Vec::new();
        for &(column, node) in &targets {
            let (tx, rx) = mpsc::channel::<Bytes>(PUT_PIPE_DEPTH);
            outputs.push((column, tx));
            let client = self.client.clone();
            uploads.push(async move {
                let r = client
                    .adopt(node, &file, Some(column as u16), owners, column_len, rx)
                    .await;
                (column, node, r)
            });
        }
        let (rebuilt, uploaded) = tokio::join!(
            rebuild_columns(manifest, sources, outputs),
            n0_future::join_all(uploads)
        );
        let mut placed = Vec::new();
        let mut failures = Vec::new();
        for (column, node, result) in uploaded {
            match result {
                Ok(stored) if stored.hash == manifest.columns()[column] => {
                    placed.push((column, node))
                }
                Ok(stored) => failures.push(format!(
                    "node {} stored column {column} as {}",
                    node.fmt_short(),
                    stored.hash.fmt_short()
                )),
                Err(e) => {
                    self.bad_target(&file, node);
                    failures.push(format!(
                        "node {} refused column {column}: {e}",
                        node.fmt_short()
                    ));
                }
            }
        }
        if let Err(e) = rebuilt {
            failures.push(format!("rebuilding: {e}"));
        }
        if placed.is_empty() {
            return Err(RepairError::NothingPlaced(failures.join("; ")));
        }
        if !failures.is_empty() {
            warn!(file = %file.fmt_short(), "repair partly failed: {}", failures.join("; "));
        }
        Ok(placed)
    }

    fn bad_target(&self, file: &Hash, node: EndpointId) {
        if let Some(m) = self.missing.lock().expect("not poisoned").get_mut(file) {
            m.bad_targets.insert(node);
        }
    }

    /// `k` present columns to rebuild from: this node's own first (no network), then
    /// one live holder each for the others.
    async fn sources(
        &self,
        manifest: &Manifest,
        places: &[Vec<EndpointId>],
    ) -> Result<Vec<(usize, ColumnStream)>, RepairError> {
        let k = manifest.layout().params().data_columns();
        let column_len = manifest.layout().column_len();
        let mut order: Vec<usize> = (0..places.len())
            .filter(|&c| !places[c].is_empty())
            .collect();
        order.sort_by_key(|&c| !places[c].contains(&self.me));
        let mut sources: Vec<(usize, ColumnStream)> = Vec::new();
        let mut problems = Vec::new();
        for c in order {
            if sources.len() == k {
                break;
            }
            let hash = manifest.columns()[c];
            if places[c].contains(&self.me) {
                sources.push((c, local_column(self.store.clone(), hash)));
                continue;
            }
            for &holder in &places[c] {
                match self.client.column_stream(holder, &hash, column_len).await {
                    Ok(s) => {
                        sources.push((c, s));
                        break;
                    }
                    Err(e) => problems.push(format!("column {c} from {}: {e}", holder.fmt_short())),
                }
            }
        }
        if sources.len() < k {
            return Err(RepairError::Sources {
                opened: sources.len(),
                needed: k,
                problems: problems.join("; "),
            });
        }
        Ok(sources)
    }
}

/// A column from this node's store, as a stream (unverified here: the rebuilt columns
/// are checked against the manifest).
fn local_column(store: Store, hash: Hash) -> ColumnStream {
    Box::pin(
        store
            .bytes(&hash)
            .map(|r| r.map_err(|e| Box::new(e) as mosaic_client::SourceError)),
    )
}

/// A pseudo-random duration in `[0, span)`, different per node and round: spreads
/// nodes' rounds so they do not check the same files in step.
pub(crate) fn jitter(me: &EndpointId, round: u64, span: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut h = blake3::Hasher::new();
    h.update(me.as_bytes());
    h.update(&round.to_le_bytes());
    h.update(&nanos.to_le_bytes());
    let x = u64::from_le_bytes(h.finalize().as_bytes()[..8].try_into().expect("8 bytes"));
    let span = span.as_nanos().max(1) as u64;
    Duration::from_nanos(x % span)
}
