//! `mosaic-gateway`: Mosaic's HTTP gateway. An axum server that is itself a Mosaic peer:
//! it finds files on the DHT, fetches their columns from the fastest storage nodes,
//! decodes them, and streams plaintext to browsers with the behaviour of a good HTTP
//! origin (ranges, validators, immutable caching). Routes and behaviour:
//! `docs/gateway.md`.
//!
//! Invariants:
//! - memory per request is bounded (the reader's pipes plus one segment in flight),
//!   whatever the file size; a range fetches only the segments it covers;
//! - the segment cache holds only what the reader has authenticated, and ciphertext
//!   for private files (see [`cache`]);
//! - every response is decided before its head is sent: the first segment is in hand,
//!   so a file that cannot be read gets an error status, not a truncated 200; a failure
//!   later in the body aborts the connection (the client sees a short body);
//! - nothing from the network or the request can make it panic.

pub mod cache;
mod deny;
mod error;
mod http;
mod metrics;

use std::{
    net::SocketAddr,
    num::NonZeroUsize,
    ops::Range,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Body,
    extract::{Path, Query, Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use bytes::Bytes;
use lru::LruCache;
use mosaic_client::{
    Client, ClientError, ReadOptions, Segment, SegmentStream,
    dir::{self, Directory, Lookup},
};
use mosaic_codec::{Cap, Decoder, Hash, Manifest, PublicId};
use n0_future::StreamExt;
use serde::Deserialize;
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

pub use cache::DiskCache;
use deny::Denylist;
use error::AppError;
use http::{RangeAsk, etag_of, not_modified, range_ask, value};
pub use metrics::Metrics;

/// `Cache-Control` of public, content-addressed responses: they never change.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of decrypted private files: browsers may keep them, shared caches
/// must not (they would hold plaintext under a URL that carries the key).
const PRIVATE_IMMUTABLE: &str = "private, max-age=31536000, immutable";

/// How to run a gateway.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// HTTP address to listen on.
    pub listen: SocketAddr,
    /// Directory of the segment cache.
    pub cache_dir: PathBuf,
    /// Bytes the segment cache may hold.
    pub cache_bytes: u64,
    /// How long finding a file may take before the answer is 404 (nobody announced
    /// it) or 504 (lookups did not finish).
    pub lookup_timeout: Duration,
    /// A file of denied ids and hashes, one per line; re-read when it changes.
    pub denylist: Option<PathBuf>,
}

/// A running gateway.
#[derive(Debug)]
pub struct Gateway {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    state: Arc<AppState>,
}

impl Gateway {
    /// Binds the listener and starts serving with `client`.
    pub async fn spawn(client: Arc<Client>, options: GatewayOptions) -> std::io::Result<Self> {
        let cache = Arc::new(DiskCache::open(&options.cache_dir, options.cache_bytes)?);
        let metrics = Arc::new(Metrics::new(cache.clone()));
        let denylist = Denylist::load(options.denylist.clone())?;
        let state = Arc::new(AppState {
            client,
            cache,
            metrics,
            denylist,
            manifests: Mutex::new(LruCache::new(NonZeroUsize::new(4096).expect("non-zero"))),
            directories: Mutex::new(LruCache::new(NonZeroUsize::new(64).expect("non-zero"))),
            options: options.clone(),
        });
        let listener = TcpListener::bind(options.listen).await?;
        let addr = listener.local_addr()?;
        let app = router(state.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                warn!("gateway stopped: {e}");
            }
        });
        info!(%addr, cache = %options.cache_dir.display(), "gateway listening on http://{addr}");
        Ok(Self { addr, task, state })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.state.metrics
    }

    /// Stops serving.
    pub fn shutdown(self) {
        self.task.abort();
    }
}

#[derive(Debug)]
struct AppState {
    client: Arc<Client>,
    cache: Arc<DiskCache>,
    metrics: Arc<Metrics>,
    denylist: Denylist,
    manifests: Mutex<LruCache<Hash, Manifest>>,
    directories: Mutex<LruCache<Hash, Arc<Directory>>>,
    options: GatewayOptions,
}

type AppStateRef = Arc<AppState>;

fn router(state: AppStateRef) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .route("/f/{cap}", get(private_file))
        .route("/f/{cap}/{*name}", get(private_file_named))
        .route("/p/{id}", get(public_root))
        .route("/p/{id}/", get(public_root_slash))
        .route("/p/{id}/{*path}", get(public_path))
        .route("/blob/{hash}", get(raw_blob))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Counts every response by status and times how long its head took.
async fn observe(State(state): State<AppStateRef>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let response = next.run(request).await;
    state
        .metrics
        .response(response.status().as_u16(), start.elapsed().as_secs_f64());
    response
}

async fn not_found() -> AppError {
    AppError::NoSuchPath(
        "no such route: use /f/{readcap}, /p/{id}[/path], /blob/{hash}, /health or /metrics".into(),
    )
}

async fn health(State(state): State<AppStateRef>) -> Response {
    match state.client.routing().routing_table_size().await {
        Ok(n) if n > 0 => (StatusCode::OK, format!("ok: {n} DHT peers\n")).into_response(),
        Ok(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "no DHT peers: check --bootstrap\n",
        )
            .into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
}

async fn metrics_text(State(state): State<AppStateRef>) -> Response {
    let mut r = state.metrics.render().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    r
}

#[derive(Debug, Deserialize)]
struct FileQuery {
    download: Option<String>,
}

impl FileQuery {
    fn download(&self) -> bool {
        matches!(self.download.as_deref(), Some("1" | "true" | "yes"))
    }
}

async fn private_file(
    State(state): State<AppStateRef>,
    Path(cap): Path<String>,
    Query(q): Query<FileQuery>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    private(state, &cap, None, q, method, headers).await
}

async fn private_file_named(
    State(state): State<AppStateRef>,
    Path((cap, name)): Path<(String, String)>,
    Query(q): Query<FileQuery>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    private(state, &cap, Some(name), q, method, headers).await
}

async fn private(
    state: AppStateRef,
    cap: &str,
    name: Option<String>,
    q: FileQuery,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let cap: Cap = cap
        .parse()
        .map_err(|e| AppError::BadRequest(format!("{e} (this route takes a readcap, mr1…)")))?;
    if let Cap::Public(p) = cap {
        return Err(AppError::BadRequest(format!(
            "{p} is a public id: use /p/{p}"
        )));
    }
    let id = cap.id();
    state.check_denied(&id)?;
    let manifest = state.manifest(&id).await?;
    let decoder = Decoder::new(manifest, cap.key()).map_err(|e| AppError::file(&id, e))?;
    let mut response = serve_file(&state, decoder, name, q.download(), &method, &headers).await?;
    let h = response.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(PRIVATE_IMMUTABLE),
    );
    // The URL carries the key: never send it to another site in a Referer.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Ok(response)
}

async fn public_root(
    State(state): State<AppStateRef>,
    Path(id): Path<String>,
    Query(q): Query<FileQuery>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    public(state, &id, None, q, method, headers).await
}

async fn public_root_slash(
    State(state): State<AppStateRef>,
    Path(id): Path<String>,
    Query(q): Query<FileQuery>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    public(state, &id, Some(String::new()), q, method, headers).await
}

async fn public_path(
    State(state): State<AppStateRef>,
    Path((id, path)): Path<(String, String)>,
    Query(q): Query<FileQuery>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    public(state, &id, Some(path), q, method, headers).await
}

/// `/p/{id}` (`path` `None`), `/p/{id}/` (`Some("")`) and `/p/{id}/{path}`.
async fn public(
    state: AppStateRef,
    id: &str,
    path: Option<String>,
    q: FileQuery,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let public: PublicId = id
        .parse()
        .map_err(|e| AppError::BadRequest(format!("{e} (this route takes a public id, mi1…)")))?;
    let id = public.id;
    state.check_denied(&id)?;
    let manifest = state.manifest(&id).await?;
    // A private file asked for by its id alone: the decoder says the key is required.
    let decoder = Decoder::new(manifest, None).map_err(|e| AppError::file(&id, e))?;
    if decoder.metadata().media_type.as_deref() != Some(dir::MEDIA_TYPE) {
        return match path.as_deref() {
            None => serve_file(&state, decoder, None, q.download(), &method, &headers)
                .await
                .map(immutable),
            Some(_) => Err(AppError::NoSuchPath(format!(
                "{public} is a file, not a directory: use /p/{public}"
            ))),
        };
    }
    // A directory: relative links in its pages need the trailing slash.
    let Some(path) = path else {
        return Ok(redirect(&format!("/p/{public}/")));
    };
    let directory = state.directory(decoder).await?;
    match directory.lookup(&path) {
        Lookup::File(entry) => {
            serve_entry(&state, &entry.id.id, q.download(), &method, &headers).await
        }
        Lookup::Dir if !path.is_empty() && !path.ends_with('/') => {
            Ok(redirect(&format!("/p/{public}/{path}/")))
        }
        Lookup::Dir => {
            let index = format!("{path}index.html");
            if let Lookup::File(entry) = directory.lookup(&index) {
                return serve_entry(&state, &entry.id.id, false, &method, &headers).await;
            }
            let etag = etag_of(&id);
            if not_modified(&headers, &etag) {
                return Ok(immutable(not_modified_response(&etag)));
            }
            let html = listing(&public, &path, &directory);
            let mut r = if method == Method::HEAD {
                let mut r = Response::new(Body::empty());
                r.headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(html.len()));
                r
            } else {
                Response::new(Body::from(html))
            };
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            h.insert(header::ETAG, value(&etag));
            Ok(immutable(r))
        }
        Lookup::Missing => Err(AppError::NoSuchPath(format!(
            "{path:?} is not in directory {public}"
        ))),
    }
}

/// Serves a public file listed in a directory.
async fn serve_entry(
    state: &AppState,
    id: &Hash,
    download: bool,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, AppError> {
    state.check_denied(id)?;
    let manifest = state.manifest(id).await?;
    let decoder = Decoder::new(manifest, None).map_err(|e| AppError::file(id, e))?;
    serve_file(state, decoder, None, download, method, headers)
        .await
        .map(immutable)
}

fn immutable(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    r
}

fn redirect(to: &str) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::MOVED_PERMANENTLY;
    r.headers_mut().insert(header::LOCATION, value(to));
    r
}

fn not_modified_response(etag: &str) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::NOT_MODIFIED;
    r.headers_mut().insert(header::ETAG, value(etag));
    r
}

/// A plain HTML listing of a directory without `index.html`.
fn listing(public: &PublicId, path: &str, directory: &Directory) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let href = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let title = format!("/{path}");
    let mut html = format!(
        "<!doctype html>\n<meta charset=\"utf-8\">\n<title>Index of {t}</title>\n<h1>Index of {t}</h1>\n<ul>\n",
        t = esc(&title)
    );
    if !path.is_empty() {
        html.push_str("<li><a href=\"../\">../</a></li>\n");
    }
    for (name, entry) in directory.children(path) {
        match entry {
            Some(e) => html.push_str(&format!(
                "<li><a href=\"{}\">{}</a> ({} bytes)</li>\n",
                href(&name),
                esc(&name),
                e.size
            )),
            None => html.push_str(&format!(
                "<li><a href=\"{}/\">{}/</a></li>\n",
                href(&name),
                esc(&name)
            )),
        }
    }
    html.push_str(&format!(
        "</ul>\n<p><small>Mosaic directory {}</small></p>\n",
        esc(&public.to_string())
    ));
    html
}

impl AppState {
    fn check_denied(&self, hash: &Hash) -> Result<(), AppError> {
        if self.denylist.denies(hash) {
            Err(AppError::Denied(*hash))
        } else {
            Ok(())
        }
    }

    /// The manifest of file `id`: from memory, or found within the lookup timeout.
    async fn manifest(&self, id: &Hash) -> Result<Manifest, AppError> {
        if let Some(m) = self.manifests.lock().expect("not poisoned").get(id) {
            return Ok(m.clone());
        }
        let limit = self.options.lookup_timeout;
        let manifest = tokio::time::timeout(limit, self.client.manifest(id))
            .await
            .map_err(|_| AppError::LookupTimeout {
                what: format!("file {id}"),
                limit,
            })?
            .map_err(|e| AppError::file(id, e))?;
        self.manifests
            .lock()
            .expect("not poisoned")
            .put(*id, manifest.clone());
        Ok(manifest)
    }

    /// A directory index, read whole (it is at most [`dir::MAX_INDEX_LEN`] bytes).
    async fn directory(&self, decoder: Decoder) -> Result<Arc<Directory>, AppError> {
        let id = decoder.manifest().id();
        if let Some(d) = self.directories.lock().expect("not poisoned").get(&id) {
            return Ok(d.clone());
        }
        let len = decoder.layout().length();
        if len > dir::MAX_INDEX_LEN {
            return Err(AppError::DirectoryTooLarge {
                id,
                len,
                max: dir::MAX_INDEX_LEN,
            });
        }
        let mut stream = self.read(decoder, None);
        let mut bytes = Vec::with_capacity(len as usize);
        while let Some(segment) = stream.next().await {
            let segment = segment.map_err(|e| AppError::file(&id, e))?;
            bytes.extend_from_slice(&segment.plaintext);
        }
        if bytes.len() as u64 != len {
            return Err(AppError::file(&id, ClientError::ReadStopped));
        }
        let directory = Arc::new(
            Directory::parse(&bytes).map_err(|source| AppError::Directory { id, source })?,
        );
        self.directories
            .lock()
            .expect("not poisoned")
            .put(id, directory.clone());
        Ok(directory)
    }

    fn read(&self, decoder: Decoder, segments: Option<Range<u64>>) -> SegmentStream {
        self.client.read(
            decoder,
            ReadOptions {
                segments,
                check_whole: false,
                cache: Some(self.cache.clone()),
            },
        )
    }
}

/// Serves one file: validators, range, headers, then the body streamed from its
/// segments, trimmed to the range.
async fn serve_file(
    state: &AppState,
    decoder: Decoder,
    name: Option<String>,
    download: bool,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, AppError> {
    let id = decoder.manifest().id();
    let layout = *decoder.layout();
    let len = layout.length();
    let etag = etag_of(&id);
    if not_modified(headers, &etag) {
        return Ok(not_modified_response(&etag));
    }
    let metadata = decoder.metadata().clone();
    let name = name
        .filter(|n| !n.is_empty())
        .or_else(|| metadata.name.clone());
    let (status, range) = plan_range(headers, len, &etag, "file")?;
    let guessed = metadata.media_type.clone().or_else(|| {
        name.as_deref()
            .and_then(|n| mime_guess::from_path(n).first_raw())
            .map(str::to_owned)
    });
    // The body: the first segment is read before the head is sent (see the invariants).
    let segments = layout.segments_for(range.clone());
    let needs_sniff = guessed.is_none() && len > 0;
    let body_wanted = *method != Method::HEAD && !range.is_empty();
    let mut first: Option<Segment> = None;
    let mut stream = None;
    if body_wanted || needs_sniff {
        let read_range = if body_wanted { segments.clone() } else { 0..1 };
        let mut s = state.read(decoder, Some(read_range));
        first = match s.next().await {
            Some(Ok(seg)) => Some(seg),
            Some(Err(e)) => return Err(AppError::file(&id, e)),
            None => return Err(AppError::file(&id, ClientError::ReadStopped)),
        };
        stream = Some(s);
    }
    let media_type = match guessed {
        Some(t) => t,
        None if needs_sniff && first.as_ref().is_some_and(|s| s.index == 0) => {
            http::sniff(&first.as_ref().expect("checked").plaintext[..]).to_owned()
        }
        None => "application/octet-stream".to_owned(),
    };
    let mut response = if body_wanted {
        let first = first.expect("read above");
        let stream = stream.expect("read above");
        Response::new(Body::from_stream(body(
            state.metrics.clone(),
            layout,
            range.clone(),
            first,
            stream,
        )))
    } else {
        Response::new(Body::empty())
    };
    *response.status_mut() = status;
    let h = response.headers_mut();
    content_headers(h, status, &range, len, &etag);
    h.insert(header::CONTENT_TYPE, value(&media_type));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(modified) = metadata.modified {
        h.insert(
            header::LAST_MODIFIED,
            value(&httpdate::fmt_http_date(modified)),
        );
    }
    if download {
        h.insert(
            header::CONTENT_DISPOSITION,
            http::attachment(name.as_deref().unwrap_or("download")),
        );
    }
    Ok(response)
}

/// The status and byte range to answer for a `len`-byte representation, or the 416
/// error when nothing asked for is satisfiable. `what` names it in the error.
fn plan_range(
    headers: &HeaderMap,
    len: u64,
    etag: &str,
    what: &'static str,
) -> Result<(StatusCode, Range<u64>), AppError> {
    match range_ask(headers, len, etag) {
        RangeAsk::Whole => Ok((StatusCode::OK, 0..len)),
        RangeAsk::Part(r) => Ok((StatusCode::PARTIAL_CONTENT, r)),
        RangeAsk::Unsatisfiable => Err(AppError::RangeNotSatisfiable { what, len }),
    }
}

/// The headers every byte response carries: length, range, validators.
fn content_headers(
    h: &mut HeaderMap,
    status: StatusCode,
    range: &Range<u64>,
    len: u64,
    etag: &str,
) {
    h.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(range.end - range.start),
    );
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(
            header::CONTENT_RANGE,
            value(&format!("bytes {}-{}/{len}", range.start, range.end - 1)),
        );
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::ETAG, value(etag));
}

/// The body of a response: each segment's plaintext trimmed to `range`.
fn body(
    metrics: Arc<Metrics>,
    layout: mosaic_codec::Layout,
    range: Range<u64>,
    first: Segment,
    rest: SegmentStream,
) -> impl n0_future::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let trim = move |segment: Segment| -> Bytes {
        let start = layout.plain_offset(segment.index);
        let end = start + segment.plaintext.len() as u64;
        let from = range.start.max(start) - start;
        let to = range.end.min(end).saturating_sub(start).max(from);
        segment.plaintext.slice(from as usize..to as usize)
    };
    let failovers = move |s: &SegmentStream| s.report().failovers as u64;
    n0_future::stream::unfold(
        (Some(first), rest, 0u64, metrics, trim),
        move |(first, mut rest, mut counted, metrics, trim)| async move {
            let segment = match first {
                Some(s) => s,
                None => match rest.next().await {
                    Some(Ok(s)) => s,
                    Some(Err(e)) => {
                        debug!("body ended by error: {e}");
                        let errors = failovers(&rest);
                        metrics.peer_errors(errors.saturating_sub(counted));
                        return Some((
                            Err(std::io::Error::other(e.to_string())),
                            (None, rest, errors, metrics, trim),
                        ));
                    }
                    None => {
                        let errors = failovers(&rest);
                        metrics.peer_errors(errors.saturating_sub(counted));
                        return None;
                    }
                },
            };
            metrics.segment(segment.cached);
            let errors = failovers(&rest);
            metrics.peer_errors(errors.saturating_sub(counted));
            counted = counted.max(errors);
            let bytes = trim(segment);
            metrics.bytes_out(bytes.len() as u64);
            Some((Ok(bytes), (None, rest, counted, metrics, trim)))
        },
    )
}

/// `/blob/{hash}`: a raw blob from a node that holds it, with Range, for clients that
/// verify for themselves.
async fn raw_blob(
    State(state): State<AppStateRef>,
    Path(hash): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let hash = Hash::from_hex(&hash)
        .map_err(|e| AppError::BadRequest(format!("{e} (this route takes a blob hash in hex)")))?;
    state.check_denied(&hash)?;
    let etag = etag_of(&hash);
    if not_modified(&headers, &etag) {
        return Ok(immutable(not_modified_response(&etag)));
    }
    let limit = state.options.lookup_timeout;
    let blob = tokio::time::timeout(limit, state.client.open_blob(&hash))
        .await
        .map_err(|_| AppError::LookupTimeout {
            what: format!("blob {hash}"),
            limit,
        })?
        .map_err(|source| AppError::Blob {
            hash,
            source: Box::new(source),
        })?;
    let len = blob.size();
    let (status, range) = plan_range(&headers, len, &etag, "blob")?;
    let mut response = if method == Method::HEAD || range.is_empty() {
        Response::new(Body::empty())
    } else {
        let metrics = state.metrics.clone();
        let stream = blob.stream(range.clone()).map(move |chunk| {
            if let Ok(bytes) = &chunk {
                metrics.bytes_out(bytes.len() as u64);
            }
            chunk.map_err(std::io::Error::other)
        });
        Response::new(Body::from_stream(stream))
    };
    *response.status_mut() = status;
    let h = response.headers_mut();
    content_headers(h, status, &range, len, &etag);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    Ok(immutable(response))
}
