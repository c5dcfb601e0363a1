//! Finding a file, top to bottom: its holders (one DHT lookup: every node holding a
//! column of a file also holds its manifest and announces it), its manifest (fetched
//! once from the first holder that answers, verified against the id), opening it with
//! the key ([`Client::open`]), and locating its columns (one `Stat` per holder: which
//! columns it has) ranked by the round-trip time of their best holder.
//!
//! What it hands on is a list of [`ColumnHolders`]: what `fetch.rs` streams from.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use iroh::{EndpointId, endpoint::Connection};
use mosaic_codec::{Cap, Decoder, Hash, MAX_MANIFEST_LEN, Manifest};
use mosaic_wire::{endpoint::DialError, proto, request};
use n0_future::StreamExt;
use tokio::sync::watch;
use tracing::debug;

use crate::{
    Client, ClientError, PeerError,
    client::{HolderFeed, Holders, rtt},
    fetch::ColumnHolders,
};

/// Files whose holders a client remembers (the gateway reads the same files again and
/// again); older entries are dropped first.
const MAX_KNOWN_FILES: usize = 1024;
/// How long a file's holder list is trusted before it is looked up again.
const HOLDERS_TTL: Duration = Duration::from_secs(60);

/// The least time locating waits for more holders once `k` (then `k + 1`) columns are
/// covered. The wait itself is as long again as covering them took: relative to this
/// network's delays, so a dead or frozen holder costs a fraction of a healthy read, and
/// a slow link still gets its spares.
const LOCATE_GRACE_MIN: Duration = Duration::from_millis(20);

/// Pauses before a file that no holder answered for is looked up again (see
/// [`Client::manifest`]): matched to the holders' first announce retries.
const MANIFEST_RETRIES: [Duration; 2] = [Duration::from_millis(1000), Duration::from_millis(2000)];

/// How long a holder that answered `Busy` is given before it is asked again.
const BUSY_PAUSE_MIN: Duration = Duration::from_millis(50);
const BUSY_PAUSE_MAX: Duration = Duration::from_secs(1);

impl Client {
    /// The nodes holding file `id` (those that announce its manifest), as a lookup finds
    /// them: a list that grows, and `done` once the lookup has ended. A list younger
    /// than [`HOLDERS_TTL`] is reused, the lookup behind it still running or not.
    pub(crate) async fn holders_of(&self, id: &Hash) -> Result<HolderFeed, ClientError> {
        {
            let mut known = self.holders.lock().expect("not poisoned");
            if let Some((at, rx)) = known.get(id) {
                if at.elapsed() < HOLDERS_TTL {
                    return Ok(HolderFeed::new(rx.clone()));
                }
            }
            known.retain(|_, (at, _)| at.elapsed() < HOLDERS_TTL);
            if known.len() >= MAX_KNOWN_FILES {
                known.clear();
            }
        }
        let started = Instant::now();
        let mut lookup = self.routing().providers_stream(id).await?;
        let (tx, rx) = watch::channel(Holders::default());
        let timings = self.timings.clone();
        let what = format!("dht lookup: holders of file {}", id.fmt_short());
        tokio::spawn(async move {
            while let Some(holder) = lookup.next().await {
                if tx.is_closed() {
                    return;
                }
                if tx.borrow().ids.is_empty() {
                    timings.record(what.clone(), started, "first holder found");
                }
                tx.send_modify(|h| h.ids.push(holder));
            }
            tx.send_modify(|h| h.done = true);
            let found = tx.borrow().ids.len();
            timings.record(what, started, format!("lookup ended, {found} holders"));
        });
        self.holders
            .lock()
            .expect("not poisoned")
            .insert(*id, (Instant::now(), rx.clone()));
        Ok(HolderFeed::new(rx))
    }

    /// Forgets the holders found for file `id` (they failed): the next read looks again.
    pub(crate) fn forget_holders(&self, id: &Hash) {
        self.holders.lock().expect("not poisoned").remove(id);
    }

    /// Fetches and checks the manifest of file `id`, asking each holder as soon as the
    /// lookup finds it and taking the first answer (a dead holder costs no more than
    /// the others' answers). A file no holder answers for is looked up again after
    /// pauses of 1 s and 2 s before it is reported unavailable: its holders
    /// announce a file in the background once it is stored, so a read right after a
    /// put can come before the DHT has the records (it retries them after 1 s, 2 s…).
    pub async fn manifest(&self, id: &Hash) -> Result<Manifest, ClientError> {
        let mut pauses = MANIFEST_RETRIES.iter();
        loop {
            match self.manifest_once(id).await {
                Err(e @ ClientError::ManifestUnavailable { .. }) => match pauses.next() {
                    Some(pause) => {
                        debug!("{e}; looking again in {pause:?}");
                        tokio::time::sleep(*pause).await;
                    }
                    None => return Err(e),
                },
                other => return other,
            }
        }
    }

    async fn manifest_once(&self, id: &Hash) -> Result<Manifest, ClientError> {
        let started = Instant::now();
        let mut holders = self.holders_of(id).await?;
        let stall = self.options().stall_timeout;
        let mut attempts = n0_future::FuturesUnordered::new();
        loop {
            let (new, done) = holders.take_new();
            for holder in new {
                // Reading the file next asks each holder which columns it has, on the
                // storage protocol: connect now, while the manifest comes.
                drop(self.start_dial(holder, proto::ALPN));
                attempts.push(async move {
                    let conn = self.dial(holder, iroh_blobs::ALPN).await?;
                    let bytes = request::fetch_small(&conn, id, MAX_MANIFEST_LEN, stall).await?;
                    Ok::<_, PeerError>(bytes)
                });
            }
            if done && attempts.is_empty() {
                self.forget_holders(id);
                let asked = holders.seen();
                self.timings().record(
                    "manifest",
                    started,
                    format!("none of {asked} holders answered"),
                );
                return Err(ClientError::ManifestUnavailable {
                    id: *id,
                    holders: asked,
                });
            }
            tokio::select! {
                alive = holders.changed(), if !done => {
                    if !alive {
                        // The lookup task ended without saying so (runtime shutdown).
                        return Err(ClientError::ManifestUnavailable {
                            id: *id,
                            holders: holders.seen(),
                        });
                    }
                }
                Some(attempt) = attempts.next(), if !attempts.is_empty() => match attempt {
                    // The bytes hash to the id: every holder has these same bytes, so a
                    // manifest that does not parse is the file's own fault.
                    Ok(bytes) => {
                        self.timings().record("manifest", started, format!("{} bytes", bytes.len()));
                        return Ok(Manifest::from_bytes_verified(&bytes, id)?);
                    }
                    Err(e) => debug!("manifest fetch failed: {e}"),
                },
            }
        }
    }

    /// Finds the file `cap` names and opens it: its manifest fetched once and checked,
    /// its metadata opened with the cap's key (a wrong key fails here, before any
    /// column is fetched). Read it with [`Client::get`] or [`Client::read`].
    pub async fn open(&self, cap: &Cap) -> Result<Decoder, ClientError> {
        let manifest = self.manifest(&cap.id()).await?;
        Ok(Decoder::new(manifest, cap.key())?)
    }
    /// Finds holders for the columns of `manifest` and ranks the columns by the
    /// round-trip time of their best holder (data columns first among equals).
    ///
    /// The file's holders come from the one lookup [`Client::open`] started (every
    /// column holder announces the manifest); each is asked with one `Stat` which
    /// columns it holds, as soon as it is found. This stops once every column has a
    /// holder, or every holder has answered, or a grace after `k` columns have one (as
    /// long again as that took, at least [`LOCATE_GRACE_MIN`]), shortened once `k + 1`
    /// (the fetch's `k` and a spare) have one: holders that are down or frozen are not
    /// waited for. With fewer than `k + 1` columns covered, the missing columns are
    /// looked up one by one, in parallel (a column copied to a node that lacks the
    /// manifest is found that way); with `k` already covered, only within another such
    /// grace. Holders that failed lately are skipped (their dials fail at once), unless
    /// the others cover fewer than `k` columns: then each gets one more try. Fails if
    /// fewer than `k` columns have a reachable holder.
    pub(crate) async fn locate(
        &self,
        manifest: &Manifest,
    ) -> Result<Vec<ColumnHolders>, ClientError> {
        let started = Instant::now();
        let layout = manifest.layout();
        let (k, n) = (layout.params().data_columns(), layout.params().columns());
        let want = (k + 1).min(n);
        let hashes = manifest.columns();
        let mut holders = self.holders_of(&manifest.id()).await?;
        let mut sources: Vec<Vec<(EndpointId, Connection, Duration)>> = vec![Vec::new(); n];
        let mut asking = n0_future::FuturesUnordered::new();
        let mut grace = None;
        let mut spare_covered = false;
        let mut retried = HashSet::new();
        let ask = |id| async move { (id, self.columns_held(id, hashes).await) };
        loop {
            let (new, done) = holders.take_new();
            for id in new {
                asking.push(ask(id));
            }
            let covered = sources.iter().filter(|s| !s.is_empty()).count();
            if covered == n || (done && asking.is_empty()) {
                break;
            }
            // Enough to start; the others are spares for holders that fail mid-read
            // (a read that lost two columns with no spare known would fail), so wait
            // for them a little, not for a dead holder's connect timeout.
            let now = tokio::time::Instant::now();
            let again = now + started.elapsed().max(LOCATE_GRACE_MIN);
            if covered >= k && grace.is_none() {
                grace = Some(again);
            }
            if covered >= want && !spare_covered {
                spare_covered = true;
                grace = grace.map(|at| at.min(again));
            }
            let spares = async {
                match grace {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = spares => break,
                alive = holders.changed(), if !done => {
                    if !alive {
                        break;
                    }
                }
                Some((id, answer)) = asking.next(), if !asking.is_empty() => match answer {
                    Ok((conn, held)) => {
                        let r = rtt(&conn);
                        for (column, _) in held.iter().enumerate().filter(|(_, h)| **h) {
                            if let Some(list) = sources.get_mut(column) {
                                list.push((id, conn.clone(), r));
                            }
                        }
                    }
                    // Skipping holders that failed lately is right while others can
                    // serve; while the read cannot start without them (a node restarted
                    // since, say), each gets one more try.
                    Err(PeerError::Dial(DialError::BackedOff { .. }))
                        if covered < k && retried.insert(id) =>
                    {
                        self.forgive(id);
                        asking.push(ask(id));
                    }
                    Err(e) => debug!(node = %id.fmt_short(), "holder unreachable: {e}"),
                },
            }
        }
        let covered = sources.iter().filter(|s| !s.is_empty()).count();
        self.timings().record(
            "locate columns",
            started,
            format!(
                "{covered} of {n} columns have a holder, from {} holders of the file",
                holders.seen()
            ),
        );
        if covered < want {
            let lookups = self.locate_one_by_one(hashes, &mut sources);
            if covered >= k {
                // The read can start without a spare: look for one only briefly.
                let limit = started.elapsed().max(LOCATE_GRACE_MIN);
                let _ = tokio::time::timeout(limit, lookups).await;
            } else {
                lookups.await;
            }
        }
        let mut columns: Vec<ColumnHolders> = Vec::new();
        let mut missing = Vec::new();
        for (column, mut list) in sources.into_iter().enumerate() {
            list.sort_by_key(|s| s.2);
            match list.first() {
                None => missing.push(column),
                Some(best) => columns.push(ColumnHolders {
                    column,
                    hash: hashes[column],
                    best_rtt: best.2,
                    holders: list.into_iter().map(|(id, c, _)| (id, c)).collect(),
                }),
            }
        }
        if columns.len() < k {
            self.forget_holders(&manifest.id());
            return Err(ClientError::ColumnsUnavailable {
                available: columns.len(),
                need: k,
                missing,
            });
        }
        columns.sort_by_key(|c| (c.best_rtt, c.column));
        Ok(columns)
    }

    /// Which of `columns` node `id` holds, and a connection to fetch them on.
    async fn columns_held(
        &self,
        id: EndpointId,
        columns: &[Hash],
    ) -> Result<(Connection, Vec<bool>), PeerError> {
        let started = Instant::now();
        let (control, blobs) =
            tokio::join!(self.dial(id, proto::ALPN), self.dial(id, iroh_blobs::ALPN));
        let control = control?;
        let stat = match request::stat(&control, columns).await {
            // Alive, but over its limit for us: ask once more after a few round trips
            // rather than count a live holder as unreachable.
            Err(e) if e.refusal() == Some(proto::Refusal::Busy) => {
                tokio::time::sleep((rtt(&control) * 4).clamp(BUSY_PAUSE_MIN, BUSY_PAUSE_MAX)).await;
                request::stat(&control, columns).await
            }
            other => other,
        };
        let stat = match stat {
            Err(e @ request::RequestError::Silent(_)) => {
                self.lost(id);
                return Err(e.into());
            }
            other => other?,
        };
        let held = stat.held.iter().filter(|h| **h).count();
        self.timings().record(
            format!("stat {}", id.fmt_short()),
            started,
            format!("holds {held} columns"),
        );
        Ok((blobs?, stat.held))
    }

    /// The slow path: one DHT lookup per column that has no holder yet.
    async fn locate_one_by_one(
        &self,
        hashes: &[Hash],
        sources: &mut [Vec<(EndpointId, Connection, Duration)>],
    ) {
        let started = Instant::now();
        let empty: Vec<usize> = (0..sources.len())
            .filter(|&j| sources[j].is_empty())
            .collect();
        let found = n0_future::join_all(
            empty
                .iter()
                .map(|&j| async move { (j, self.routing().providers(&hashes[j]).await) }),
        )
        .await;
        let ids: HashSet<EndpointId> = found
            .iter()
            .flat_map(|(_, r)| r.iter().flatten().copied())
            .collect();
        let dialed = n0_future::join_all(
            ids.into_iter()
                .map(|id| async move { (id, self.dial(id, iroh_blobs::ALPN).await) }),
        )
        .await;
        let reachable: HashMap<EndpointId, Connection> = dialed
            .into_iter()
            .filter_map(|(id, r)| r.ok().map(|c| (id, c)))
            .collect();
        for (j, list) in found {
            for id in list.unwrap_or_default() {
                if let Some(conn) = reachable.get(&id) {
                    sources[j].push((id, conn.clone(), rtt(conn)));
                }
            }
        }
        self.timings().record(
            "dht lookups: column by column",
            started,
            format!("{} columns looked up", empty.len()),
        );
    }
}
