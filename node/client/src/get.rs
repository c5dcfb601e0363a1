//! The get pipeline, top to bottom: reading a file from the network segment by
//! segment, in order. `mosaic get` runs [`Client::get`] (the whole file, checked
//! against the manifest, into a writer); the gateway runs [`Client::read`] (a range of
//! segments, with its segment cache).
//!
//! 1. **Open** ([`Client::open`], `find.rs`): find the file's holders, fetch its
//!    manifest once (verified), check it, open its metadata with the key.
//! 2. **Cache** (here): the segments the caller's [`SegmentCache`] has, opened.
//! 3. **Locate** (`find.rs`): which holder has which column; columns ranked by the
//!    round-trip time of their best holder.
//! 4. **Fetch** (`fetch.rs`, with `failover.rs` deciding): the best `k + 1` columns in
//!    parallel, verified streaming, cut into per-segment shards; the slowest column is
//!    dropped once the first segment is in; a failed holder is followed by the
//!    column's next holder, a lost column by a spare.
//! 5. **Decode** (here): `k` shards per segment to the decoder, plaintext out in order.
//! 6. **Check** (whole-file reads, here): all `n` columns, re-encoded, match the
//!    manifest.
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
    fmt,
    io::Write,
    ops::Range,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Instant,
};

use bytes::Bytes;
use mosaic_codec::{DecodeError, Decoder, Hash};
use n0_future::{Stream, StreamExt};
use tokio::{sync::mpsc, task::JoinHandle};
use tracing::warn;

use crate::{
    Client, ClientError,
    fetch::{Assembly, ColumnHolders, NetworkSource},
};

/// The pause before a read that ran out of columns looks for the file's holders again.
const SECOND_LOOK_PAUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// Segments buffered ahead per column being fetched.
pub const GET_PIPE_DEPTH: usize = 4;

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
                    owed: 0,
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
    /// The first segment of the range not yet handed on.
    owed: u64,
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
        self.owed = segment;
        // A read that runs out of columns looks once more, from scratch, before it
        // reports the file unreadable: the holders it knew may have been a stale list
        // (nodes restarted, columns repaired elsewhere), and a holder that was frozen
        // may be back. It resumes at the segment it owes.
        let mut second_look = true;
        while self.owed < range.end {
            let manifest = self.decoder.manifest().clone();
            let attempt = async {
                let columns = self.client.locate(&manifest).await?;
                self.fetching_since = Some(Instant::now());
                self.fetch(columns, self.owed..range.end).await
            }
            .await;
            match attempt {
                Ok(true) => break,
                Ok(false) => return Ok(()),
                Err(e @ ClientError::ColumnsUnavailable { .. }) if second_look => {
                    warn!(file = %manifest.id().fmt_short(), "{e}; looking for the file's holders once more");
                    second_look = false;
                    self.client.forget_holders(&manifest.id());
                    // Holders announce a file just stored in the background (and retry
                    // after 1 s): give the records a moment before the second look.
                    tokio::time::sleep(SECOND_LOOK_PAUSE).await;
                }
                Err(e) => return Err(e),
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

    /// Fetches segments `range` from the `located` columns; `false` if the reader
    /// went away.
    async fn fetch(
        &mut self,
        located: Vec<ColumnHolders>,
        range: Range<u64>,
    ) -> Result<bool, ClientError> {
        let layout = *self.decoder.layout();
        let (k, n) = (layout.params().data_columns(), layout.params().columns());
        let id = self.decoder.manifest().id();
        let (source, ranked) =
            NetworkSource::new(located, layout, self.client.options().stall_timeout);
        let mut assembly = Assembly::start(&source, (k, n), ranked, range, self.report);
        while let Some((segment, got)) = assembly.next().await? {
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
            self.owed = segment + 1;
        }
        Ok(true)
    }
}
