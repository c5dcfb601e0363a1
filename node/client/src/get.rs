//! The get pipeline, top to bottom: reading a file from the network segment by
//! segment, in order. `mosaic get` runs [`Client::get`] (the whole file, checked
//! against the manifest, into a writer); the gateway runs [`Client::read`] (a range of
//! segments, with its segment cache).
//!
//! 1. **Open** ([`Client::open`], in `client.rs`): find the manifest's holders, fetch
//!    it once (verified), check it, open its metadata with the key.
//! 2. **Locate**: find every column's holders on the DHT, dial them, rank the columns
//!    by the round-trip time of their best holder.
//! 3. **Fetch**: the best `k + 1` columns in parallel, verified streaming, cut into
//!    per-segment shards; the slowest column is dropped once the first segment is in.
//! 4. **Decode**: `k` shards per segment to the decoder, plaintext out in order.
//! 5. **Check** (whole-file reads): all `n` columns, re-encoded, match the manifest.
//!
//! A read covers a range of segments. Segments already in the caller's
//! [`SegmentCache`] are opened from it (no network at all when the whole range is
//! cached); from the first segment missing, the reader finds every column's holders on
//! the DHT, ranks the columns by the round-trip time of their best holder, fetches the
//! best `k + 1` columns in parallel with iroh-blobs verified streaming (only the byte
//! span of the segments asked for), drops the slowest once the first segment is in, and
//! hands `k` shards per segment to the decoder. A column whose holder fails or stalls is
//! resumed from its next holder, or replaced by a spare column, from the current segment
//! on.
//!
//! Invariants:
//! - every segment yielded opened under the file's key (private files: AEAD tag; public
//!   files: BLAKE3 tag), whatever it came from; a cache entry that does not open is
//!   dropped and the segment fetched again;
//! - a whole-file read with [`ReadOptions::check_whole`] also re-encodes every segment
//!   and checks all `n` columns against the manifest before its last item: an uploader
//!   cannot show different readers different files under one id;
//! - memory is bounded: [`GET_PIPE_DEPTH`] shards per active column plus one stripe,
//!   whatever the file size; dropping the stream stops every fetch.

use std::{
    collections::{HashMap, HashSet},
    fmt,
    ops::Range,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use std::io::Write;

use bao_tree::io::BaoContentItem;
use bytes::Bytes;
use iroh::{EndpointId, endpoint::Connection};
use iroh_blobs::protocol::{ChunkRanges, ChunkRangesExt, GetRequest};
use mosaic_codec::{DecodeError, Decoder, Hash, Layout, Manifest};
use mosaic_wire::{
    proto,
    request::{self, FetchError},
};
use n0_future::{Stream, StreamExt};
use tokio::{sync::mpsc, task::JoinHandle};
use tracing::{debug, warn};

use crate::{Client, ClientError, PeerError, client::rtt};

/// Segments buffered ahead per column being fetched.
pub const GET_PIPE_DEPTH: usize = 4;

/// How long locating waits for the spare columns' holders once `k + 1` columns are
/// covered (normally they answer within a millisecond or two of the others).
const LOCATE_GRACE: Duration = Duration::from_millis(100);

/// What a get noticed.
#[derive(Debug, Clone, Default)]
pub struct GetReport {
    /// Columns fetched, in the order they were started.
    pub columns_used: Vec<usize>,
    /// Holders that failed or stalled and were replaced.
    pub failovers: usize,
}

/// Where a reader keeps and finds segments it already has: the `k` authentic data
/// shards of a segment ([`Decoder::data_shards`]), which open again without erasure
/// decoding. Entries hold ciphertext for private files, so a cache never serves a
/// segment to a reader without the key: opening fails and the entry is dropped.
pub trait SegmentCache: Send + Sync + fmt::Debug {
    /// The data shards of segment `segment` of file `id`, if kept.
    fn get(&self, id: &Hash, segment: u64) -> Option<Bytes>;
    /// Keeps the data shards of a segment just opened.
    fn put(&self, id: &Hash, segment: u64, shards: Bytes);
    /// Forgets an entry that did not open.
    fn remove(&self, id: &Hash, segment: u64);
    /// The plaintext of segment `segment` of the *public* file `id`, if kept opened.
    /// Readers ask only for public files (whose plaintext is anyone's who has the id)
    /// and keep only segments they authenticated, so an entry is served as it is: no
    /// re-hashing of a whole segment for a small range. Default: nothing kept.
    fn get_opened(&self, _id: &Hash, _segment: u64) -> Option<Bytes> {
        None
    }
    /// Keeps the plaintext of a segment of a public file, just authenticated.
    fn put_opened(&self, _id: &Hash, _segment: u64, _plaintext: &Bytes) {}
}

/// What to read.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Segments to read; `None` for the whole file.
    pub segments: Option<Range<u64>>,
    /// Re-encode and check all `n` columns against the manifest (whole-file reads only;
    /// ignored for a partial range).
    pub check_whole: bool,
    /// Segments already at hand, and where to keep the ones fetched.
    pub cache: Option<Arc<dyn SegmentCache>>,
}

/// One segment's plaintext.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Its index in the file.
    pub index: u64,
    /// Its plaintext.
    pub plaintext: Bytes,
    /// Whether it came from the cache.
    pub cached: bool,
}

/// The segments of a read, in order. Dropping it stops the read and every fetch.
#[derive(Debug)]
pub struct SegmentStream {
    rx: mpsc::Receiver<Result<Segment, ClientError>>,
    task: JoinHandle<()>,
    report: Arc<Mutex<GetReport>>,
    range: Range<u64>,
}

impl SegmentStream {
    /// The segments this read yields, when all goes well.
    pub fn range(&self) -> Range<u64> {
        self.range.clone()
    }
    /// What the read noticed so far.
    pub fn report(&self) -> GetReport {
        self.report.lock().expect("not poisoned").clone()
    }
}

impl Stream for SegmentStream {
    type Item = Result<Segment, ClientError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for SegmentStream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Client {
    /// Downloads the whole file `file` (from [`Client::open`]) and writes its plaintext
    /// to `out`, checking all `n` columns against the manifest at the end. On error,
    /// what was written must be discarded (the CLI writes to a temporary file).
    pub async fn get(
        self: &Arc<Self>,
        file: Decoder,
        out: &mut (dyn Write + Send),
    ) -> Result<GetReport, ClientError> {
        let mut segments = self.read(
            file,
            ReadOptions {
                check_whole: true,
                ..Default::default()
            },
        );
        let mut expected = segments.range();
        while let Some(segment) = segments.next().await {
            let segment = segment?;
            // (Not a debug assertion: advancing `expected` must happen in every build.)
            if expected.next() != Some(segment.index) {
                return Err(ClientError::ReadStopped);
            }
            out.write_all(&segment.plaintext)
                .map_err(ClientError::Output)?;
        }
        if expected.next().is_some() {
            return Err(ClientError::ReadStopped);
        }
        out.flush().map_err(ClientError::Output)?;
        Ok(segments.report())
    }

    /// Reads segments of the file `decoder` opens (see the module notes).
    pub fn read(self: &Arc<Self>, decoder: Decoder, options: ReadOptions) -> SegmentStream {
        let all = 0..decoder.layout().segments();
        let range = match options.segments.clone() {
            Some(r) => r.start.min(all.end)..r.end.min(all.end),
            None => all.clone(),
        };
        let check_whole = options.check_whole && range == all;
        let (tx, rx) = mpsc::channel(2);
        let report = Arc::new(Mutex::new(GetReport::default()));
        let task = tokio::spawn({
            let client = self.clone();
            let report = report.clone();
            let range = range.clone();
            async move {
                let reader = Reader {
                    client: &client,
                    decoder,
                    cache: options.cache,
                    tx: &tx,
                    report: &report,
                    fetching_since: None,
                };
                if let Err(e) = reader.run(range, check_whole).await {
                    let _ = tx.send(Err(e)).await;
                }
            }
        });
        SegmentStream {
            rx,
            task,
            report,
            range,
        }
    }

    /// Finds holders for the columns of `manifest` and ranks the columns by the
    /// round-trip time of their best holder (data columns first among equals).
    ///
    /// The file's holders come from the one lookup [`Client::open`] started (every
    /// column holder announces the manifest); each is asked with one `Stat` which
    /// columns it holds, as soon as it is found. This stops once every column has a
    /// holder, or every holder has answered, or [`LOCATE_GRACE`] after `k + 1` columns
    /// (the fetch's `k` and a spare) have one; if the lookup ends with fewer than `k`, the missing columns are looked up one by one (a column copied to a node
    /// that lacks the manifest is found that way). Fails if fewer than `k` columns have
    /// a reachable holder.
    async fn locate(&self, manifest: &Manifest) -> Result<Vec<ColumnHolders>, ClientError> {
        let started = Instant::now();
        let layout = manifest.layout();
        let (k, n) = (layout.params().data_columns(), layout.params().columns());
        let want = (k + 1).min(n);
        let hashes = manifest.columns();
        let mut holders = self.holders_of(&manifest.id()).await?;
        let mut sources: Vec<Vec<(EndpointId, Connection, Duration)>> = vec![Vec::new(); n];
        let mut asking = n0_future::FuturesUnordered::new();
        let mut grace = None;
        loop {
            let (new, done) = holders.take_new();
            for id in new {
                asking.push(async move { (id, self.columns_held(id, hashes).await) });
            }
            let covered = sources.iter().filter(|s| !s.is_empty()).count();
            if covered == n || (done && asking.is_empty()) {
                break;
            }
            // Enough to start; the others are spares for holders that fail mid-read
            // (a read that lost two columns with no spare known would fail), so wait
            // for them a little, not for a dead holder's connect timeout.
            if covered >= want && grace.is_none() {
                grace = Some(tokio::time::Instant::now() + LOCATE_GRACE);
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
        if covered < k {
            self.locate_one_by_one(hashes, &mut sources).await;
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
        let stat = request::stat(&control?, columns).await?;
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

/// One read in progress.
struct Reader<'a> {
    client: &'a Client,
    decoder: Decoder,
    cache: Option<Arc<dyn SegmentCache>>,
    tx: &'a mpsc::Sender<Result<Segment, ClientError>>,
    report: &'a Mutex<GetReport>,
    /// When the network fetch began, until its first segment is out (for timings).
    fetching_since: Option<Instant>,
}

impl Reader<'_> {
    async fn run(mut self, range: Range<u64>, check_whole: bool) -> Result<(), ClientError> {
        let layout = *self.decoder.layout();
        let n = layout.params().columns();
        if check_whole {
            self.decoder.hash_columns(&vec![true; n]);
        }
        let mut segment = range.start;
        // The cached prefix of the range (opened through the decoder when the whole
        // file is being checked: the check needs every segment re-encoded).
        while segment < range.end {
            let sent = if check_whole {
                self.open_cached(segment) && self.send(segment, true).await
            } else {
                match self
                    .opened(segment)
                    .or_else(|| self.open_cached_in_place(segment))
                {
                    None => false,
                    Some(plaintext) => self
                        .tx
                        .send(Ok(Segment {
                            index: segment,
                            plaintext,
                            cached: true,
                        }))
                        .await
                        .is_ok(),
                }
            };
            if !sent {
                break;
            }
            segment += 1;
            // Opening a cached segment never waits, so without this the consumer woken
            // by the send (put in this worker's LIFO slot) would only run once the
            // channel is full: two more segments later (measured: 2.7 ms to the first
            // byte instead of 0.6).
            tokio::task::yield_now().await;
        }
        if self.tx.is_closed() {
            return Ok(());
        }
        if segment < range.end {
            let columns = self.client.locate(self.decoder.manifest()).await?;
            self.fetching_since = Some(Instant::now());
            if !self.fetch(columns, segment..range.end).await? {
                return Ok(());
            }
        }
        if check_whole {
            self.decoder.check_columns()?;
        }
        Ok(())
    }

    /// Opens `segment` from the cache, if it is there and opens.
    fn open_cached(&mut self, segment: u64) -> bool {
        let Some(cache) = self.cache.clone() else {
            return false;
        };
        let id = self.decoder.manifest().id();
        let Some(shards) = cache.get(&id, segment) else {
            return false;
        };
        let layout = *self.decoder.layout();
        let k = layout.params().data_columns();
        let len = layout.segment_shard_len(segment);
        if shards.len() != k * len {
            cache.remove(&id, segment);
            return false;
        }
        self.decoder.begin_segment(segment);
        for c in 0..k {
            self.decoder
                .shard_mut(c)
                .copy_from_slice(&shards[c * len..(c + 1) * len]);
            self.decoder.set_present(c, true);
        }
        if self.decoder.open_segment().is_ok() {
            true
        } else {
            warn!(%id, segment, "cached segment does not open; fetching it again");
            cache.remove(&id, segment);
            false
        }
    }

    /// Opens `segment` from the cache in place (no copy, no decoder buffers): its
    /// plaintext, if it is there and opens.
    fn open_cached_in_place(&mut self, segment: u64) -> Option<Bytes> {
        let cache = self.cache.clone()?;
        let id = self.decoder.manifest().id();
        let mut buf = Vec::from(cache.get(&id, segment)?);
        match self.decoder.open_data_shards_in_place(segment, &mut buf) {
            Ok(len) => {
                buf.truncate(len);
                let plaintext = Bytes::from(buf);
                self.keep_opened(segment, &plaintext);
                Some(plaintext)
            }
            Err(_) => {
                warn!(%id, segment, "cached segment does not open; fetching it again");
                cache.remove(&id, segment);
                None
            }
        }
    }

    /// A public segment's plaintext kept opened by the cache.
    fn opened(&self, segment: u64) -> Option<Bytes> {
        let manifest = self.decoder.manifest();
        if !manifest.is_public() {
            return None;
        }
        self.cache.as_ref()?.get_opened(&manifest.id(), segment)
    }

    /// Offers a segment just authenticated to the cache's opened entries (public files
    /// only: a private file's plaintext is never kept).
    fn keep_opened(&self, segment: u64, plaintext: &Bytes) {
        let manifest = self.decoder.manifest();
        if let (true, Some(cache)) = (manifest.is_public(), &self.cache) {
            cache.put_opened(&manifest.id(), segment, plaintext);
        }
    }

    /// Sends the segment just opened; `false` if the reader is gone.
    async fn send(&mut self, index: u64, cached: bool) -> bool {
        // `open_segment` succeeded just before: the plaintext is the decoder's.
        let plaintext = Bytes::copy_from_slice(self.decoder.plaintext());
        self.keep_opened(index, &plaintext);
        if let Some(since) = self.fetching_since.filter(|_| !cached) {
            self.fetching_since = None;
            self.client.timings().record(
                "first segment from the network",
                since,
                format!("segment {index}, {} bytes", plaintext.len()),
            );
        }
        self.tx
            .send(Ok(Segment {
                index,
                plaintext,
                cached,
            }))
            .await
            .is_ok()
    }

    /// Fetches segments `range` from the network; `false` if the reader went away.
    async fn fetch(
        &mut self,
        columns: Vec<ColumnHolders>,
        range: Range<u64>,
    ) -> Result<bool, ClientError> {
        let layout = *self.decoder.layout();
        let (k, n) = (layout.params().data_columns(), layout.params().columns());
        let stall = self.client.options().stall_timeout;
        let id = self.decoder.manifest().id();
        let mut columns = columns;
        let mut spare: Vec<ColumnHolders> = columns.split_off((k + 1).min(columns.len()));
        spare.reverse(); // pop() takes the fastest
        let mut active: Vec<Fetch> = Vec::new();
        for c in columns {
            self.report
                .lock()
                .expect("not poisoned")
                .columns_used
                .push(c.column);
            active.push(Fetch::start(c, layout, range.clone(), stall));
        }
        for segment in range.clone() {
            let mut got: Vec<(usize, Vec<u8>)> = Vec::with_capacity(k);
            let mut waiting: Vec<bool> = vec![true; active.len()];
            while got.len() < k {
                let next = std::future::poll_fn(|cx| {
                    for (i, f) in active.iter_mut().enumerate() {
                        if waiting[i] {
                            if let Poll::Ready(m) = f.rx.poll_recv(cx) {
                                return Poll::Ready((i, m));
                            }
                        }
                    }
                    Poll::Pending
                })
                .await;
                match next {
                    (i, Some(Ok((seg, shard)))) if seg == segment => {
                        waiting[i] = false;
                        got.push((active[i].source.column, shard));
                    }
                    (i, other) => {
                        // Failed (or out of step): replace it with a spare column, from
                        // this segment on.
                        let failed = active.swap_remove(i);
                        waiting.swap_remove(i);
                        warn!(
                            column = failed.source.column,
                            "column fetch failed at segment {segment}: {}",
                            match other {
                                Some(Err(e)) => e.to_string(),
                                Some(Ok((s, _))) => format!("sent segment {s}"),
                                None => "ended".into(),
                            }
                        );
                        drop(failed);
                        let mut report = self.report.lock().expect("not poisoned");
                        report.failovers += 1;
                        if let Some(c) = spare.pop() {
                            report.columns_used.push(c.column);
                            active.push(Fetch::start(c, layout, segment..range.end, stall));
                            waiting.push(true);
                        } else if got.len() + waiting.iter().filter(|w| **w).count() < k {
                            let have: HashSet<usize> = got.iter().map(|g| g.0).collect();
                            return Err(ClientError::ColumnsUnavailable {
                                available: have.len() + waiting.iter().filter(|w| **w).count(),
                                need: k,
                                missing: (0..n)
                                    .filter(|c| {
                                        !have.contains(c)
                                            && !active.iter().any(|f| f.source.column == *c)
                                    })
                                    .collect(),
                            });
                        }
                    }
                }
            }
            // After the first segment, drop the slowest: whatever has not delivered.
            if segment == range.start {
                let mut i = 0;
                while i < active.len() {
                    if waiting[i] {
                        let slow = active.swap_remove(i);
                        waiting.swap_remove(i);
                        spare.insert(0, slow.source.clone());
                    } else {
                        i += 1;
                    }
                }
            }
            self.decoder.begin_segment(segment);
            for (column, shard) in &got {
                self.decoder.shard_mut(*column).copy_from_slice(shard);
                self.decoder.set_present(*column, true);
            }
            self.decoder
                .open_segment()
                .map_err(|_| DecodeError::Inconsistent {
                    segment: Some(segment),
                    columns: got.iter().map(|g| g.0).collect(),
                })?;
            if let Some(cache) = &self.cache {
                cache.put(
                    &id,
                    segment,
                    Bytes::copy_from_slice(self.decoder.data_shards()),
                );
            }
            if !self.send(segment, false).await {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// One column and its reachable holders, best first.
#[derive(Debug, Clone)]
struct ColumnHolders {
    column: usize,
    hash: Hash,
    holders: Vec<(EndpointId, Connection)>,
    best_rtt: Duration,
}

/// A running column fetch: verified shards, one segment at a time, in order. Dropping
/// it stops the fetch.
struct Fetch {
    source: ColumnHolders,
    rx: mpsc::Receiver<Result<(u64, Vec<u8>), FetchError>>,
    task: JoinHandle<()>,
}

impl Fetch {
    fn start(source: ColumnHolders, layout: Layout, range: Range<u64>, stall: Duration) -> Self {
        let (tx, rx) = mpsc::channel(GET_PIPE_DEPTH);
        let task = tokio::spawn(fetch_column(source.clone(), layout, range, stall, tx));
        Self { source, rx, task }
    }
}

impl Drop for Fetch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Streams segments `range` of one column, trying its holders in turn: a holder that
/// fails or stalls is left for the next, which resumes at the first missing segment.
async fn fetch_column(
    source: ColumnHolders,
    layout: Layout,
    range: Range<u64>,
    stall: Duration,
    tx: mpsc::Sender<Result<(u64, Vec<u8>), FetchError>>,
) {
    let mut next = range.start;
    let mut last = None;
    for (holder, conn) in &source.holders {
        match stream_segments(
            conn,
            &source.hash,
            &layout,
            &mut next,
            range.end,
            stall,
            &tx,
        )
        .await
        {
            Ok(()) => return,
            Err(e) => {
                debug!(holder = %holder.fmt_short(), column = source.column, "fetch failed: {e}");
                last = Some(e);
            }
        }
        if tx.is_closed() {
            return;
        }
    }
    // Every holder failed (each logged above): the last one's error speaks for them.
    if let Some(e) = last {
        let _ = tx.send(Err(e)).await;
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
    tx: &mpsc::Sender<Result<(u64, Vec<u8>), FetchError>>,
) -> Result<(), FetchError> {
    if *next >= end {
        return Ok(());
    }
    let start = layout.column_span(*next).start;
    let stop = layout.column_span(end - 1).end;
    let hash = iroh_blobs::Hash::from_bytes(*hash.as_bytes());
    let get = GetRequest::blob_ranges(hash, ChunkRanges::bytes(start..stop));
    let (mut content, size) = request::get_blob(conn, get, stall).await?;
    if size != layout.column_len() {
        return Err(FetchError::WrongSize {
            size,
            expected: layout.column_len(),
        });
    }
    let mut shard: Vec<u8> = Vec::with_capacity(layout.segment_shard_len(*next));
    let mut pos = start;
    while let Some((more, item)) = request::next_item(content, stall).await? {
        content = more;
        let BaoContentItem::Leaf(leaf) = item else {
            continue;
        };
        // Leaves come in order; skip bytes before the segment we need (a leaf is a
        // whole chunk group, which may start before it).
        let mut data: &[u8] = &leaf.data;
        if leaf.offset < pos {
            let skip = ((pos - leaf.offset) as usize).min(data.len());
            data = &data[skip..];
        }
        while !data.is_empty() && *next < end {
            let want = layout.segment_shard_len(*next) - shard.len();
            let take = want.min(data.len());
            shard.extend_from_slice(&data[..take]);
            data = &data[take..];
            pos += take as u64;
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
    if *next >= end {
        Ok(())
    } else {
        Err(FetchError::Ended {
            at: layout.column_span(*next).start,
        })
    }
}
