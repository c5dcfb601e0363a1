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
mod content;
mod deny;
mod error;
mod http;
mod metrics;
mod respond;
mod routes;
mod server;
mod state;

use std::{
    net::SocketAddr,
    num::NonZeroUsize,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    extract::DefaultBodyLimit,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use lru::LruCache;
use mosaic_client::Client;
use tokio::{net::TcpListener, sync::watch};
use tracing::info;

pub use cache::DiskCache;
use deny::Denylist;
use error::AppError;
pub use metrics::Metrics;
use routes::{api, blob, file, name, share, site, ui, upload};
pub use server::ServeLimits;
use server::{ClientKey, Clients, Peer};
use state::{AppState, AppStateRef};

/// Connections the kernel queues for the gateway before it accepts them.
const LISTEN_BACKLOG: u32 = 1024;

/// How to run a gateway.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// HTTP address to listen on.
    pub listen: SocketAddr,
    /// Directory of the segment cache.
    pub cache_dir: PathBuf,
    /// Bytes the segment cache may hold.
    pub cache_bytes: u64,
    /// Bytes of opened public segments the cache may keep in memory (0: none).
    pub memory_cache_bytes: u64,
    /// How long finding a file may take before the answer is 404 (nobody announced
    /// it) or 504 (lookups did not finish).
    pub lookup_timeout: Duration,
    /// A file of denied ids and hashes, one per line; re-read when it changes.
    pub denylist: Option<PathBuf>,
    /// Accept public uploads from the web page, up to this many bytes each; `None`:
    /// refuse them (the default).
    pub uploads: Option<u64>,
    /// What one client, and all together, may hold of the gateway.
    pub limits: ServeLimits,
}

/// Default HTTP address of a gateway.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::LOCALHOST,
    8080,
));
/// The largest upload a gateway accepts when uploads are on and nobody said: 1 GiB.
pub const DEFAULT_UPLOAD_MAX: u64 = 1 << 30;

impl GatewayOptions {
    /// The defaults, every one of them, for a gateway keeping its segment cache in
    /// `cache_dir`: on [`DEFAULT_LISTEN`], a 1 GiB disk cache and 32 MiB of opened
    /// segments in memory, 5 s to find a file, no denylist, no uploads, the default
    /// [`ServeLimits`].
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: DEFAULT_LISTEN,
            cache_dir: cache_dir.into(),
            cache_bytes: 1 << 30,
            memory_cache_bytes: 32 << 20,
            lookup_timeout: Duration::from_secs(5),
            denylist: None,
            uploads: None,
            limits: ServeLimits::default(),
        }
    }
}

/// A running gateway.
#[derive(Debug)]
pub struct Gateway {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    stop: watch::Sender<bool>,
    state: Arc<AppState>,
}

impl Gateway {
    /// Binds the listener and starts serving with `client`.
    pub async fn spawn(client: Arc<Client>, options: GatewayOptions) -> std::io::Result<Self> {
        let cache = Arc::new(
            DiskCache::open(&options.cache_dir, options.cache_bytes)?
                .with_memory(options.memory_cache_bytes),
        );
        let metrics = Arc::new(Metrics::new(cache.clone()));
        let denylist = Denylist::load(options.denylist.clone())?;
        let state = Arc::new(AppState {
            client,
            cache,
            metrics,
            denylist,
            manifests: Mutex::new(LruCache::new(NonZeroUsize::new(4096).expect("non-zero"))),
            directories: Mutex::new(LruCache::new(NonZeroUsize::new(64).expect("non-zero"))),
            names: Mutex::new(LruCache::new(NonZeroUsize::new(1024).expect("non-zero"))),
            network: tokio::sync::Mutex::new(None),
            uploads: Default::default(),
            clients: Arc::new(Clients::new(options.limits.clone())),
            options: options.clone(),
        });
        // A listen queue as long as nginx's: tokio's default (128) dropped connections
        // opened in a burst (measured: docs/performance.md, the gateway under load).
        let socket = if options.listen.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(options.listen)?;
        let listener: TcpListener = socket.listen(LISTEN_BACKLOG)?;
        let addr = listener.local_addr()?;
        let app = router(state.clone());
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(server::serve(
            listener,
            app,
            state.clients.clone(),
            state.metrics.clone(),
            stopped,
        ));
        info!(%addr, cache = %options.cache_dir.display(), "gateway listening on http://{addr}");
        Ok(Self {
            addr,
            task,
            stop,
            state,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.state.metrics
    }

    /// Stops serving: no new connection is accepted and open ones end.
    pub fn shutdown(self) {
        let _ = self.stop.send(true);
        self.task.abort();
    }
}

fn router(state: AppStateRef) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .route("/f/{cap}", get(file::private_file))
        .route("/f/{cap}/{*name}", get(file::private_file_named))
        .route("/p/{id}", get(site::public_root))
        .route("/p/{id}/", get(site::public_root_slash))
        .route("/p/{id}/{*path}", get(site::public_path))
        .route("/n/{key}", get(name::root))
        .route("/n/{key}/", get(name::root_slash))
        .route("/n/{key}/{*path}", get(name::path))
        .route("/", get(ui::page))
        .route("/ui/{asset}", get(ui::asset))
        .route("/api/network", get(api::network))
        .route("/api/open/{text}", get(api::open))
        .route(
            "/api/upload",
            axum::routing::post(upload::upload).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/api/private-upload/begin",
            axum::routing::post(upload::private_begin),
        )
        .route(
            "/api/private-upload/{session}/segment/{index}",
            axum::routing::post(upload::private_segment).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/api/private-upload/{session}/manifest",
            axum::routing::post(upload::private_manifest),
        )
        .route(
            "/api/private-upload/{session}/abort",
            axum::routing::post(upload::private_abort),
        )
        .route("/blob/{hash}", get(blob::raw_blob))
        .route("/s", get(share::page_redirect))
        .route("/s/", get(share::page))
        .route("/s/file/{*rest}", get(share::worker_file))
        .route("/s/{asset}", get(share::asset))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), meter))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Counts every response by status and times how long its head took.
async fn observe(State(state): State<AppStateRef>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    // The access log (target `mosaic::access`, debug level), without readcaps: what it
    // needs is copied only when it is on, so the hot path pays nothing otherwise.
    let access = tracing::enabled!(target: "mosaic::access", tracing::Level::DEBUG)
        .then(|| access_line(&request));
    let response = next.run(request).await;
    if let Some((method, uri, referer)) = access {
        tracing::debug!(
            target: "mosaic::access",
            %method,
            %uri,
            %referer,
            status = response.status().as_u16(),
            ms = start.elapsed().as_millis() as u64,
            "request"
        );
    }
    state
        .metrics
        .response(response.status().as_u16(), start.elapsed().as_secs_f64());
    response
}

/// Meters each client's requests (see [`serve`]): over its rate, `429` with the
/// seconds until it may ask again, before any work is done for it.
async fn meter(State(state): State<AppStateRef>, request: Request, next: Next) -> Response {
    if let Some(Peer(peer)) = request.extensions().get::<Peer>() {
        let key = ClientKey::of(peer.ip());
        if let Err(wait) = state.clients.admit(key, Instant::now()) {
            return AppError::TooManyRequests {
                what: format!("at most {} a second here", state.options.limits.client_rate),
                retry_after: wait.as_secs_f64().ceil().max(1.0) as u64,
            }
            .into_response();
        }
    }
    next.run(request).await
}

/// A request's method, URI and `Referer` for the access log; `/f/` paths and referers
/// carry readcaps and are withheld.
fn access_line(request: &Request) -> (axum::http::Method, String, String) {
    let uri = if request.uri().path().starts_with("/f/") {
        "/f/(readcap withheld)".to_owned()
    } else if holds_key(request.uri().path()) {
        "(path with a readcap or private name withheld)".to_owned()
    } else {
        request.uri().to_string()
    };
    let referer = match request.headers().get(header::REFERER) {
        None => "-".to_owned(),
        Some(r) => {
            let r = String::from_utf8_lossy(r.as_bytes());
            if r.contains("/f/") || holds_key(&r) {
                "(withheld)".into()
            } else {
                r.into_owned()
            }
        }
    };
    (request.method().clone(), uri, referer)
}

/// Whether a path may hold a key: a segment that starts like a readcap (`mr…`) or a
/// private name (`ms…`), plain or percent-encoded. Routes refuse them, but the log must
/// not keep them.
fn holds_key(path: &str) -> bool {
    path.split('/').any(|segment| {
        let s = segment.trim().to_ascii_lowercase();
        s.starts_with("mr") || s.starts_with("ms") || s.starts_with("%6d")
    })
}

async fn not_found() -> AppError {
    AppError::NoSuchPath(
        "no such route: use / (the web page), /s/#{readcap} (share links), /f/{readcap}, /p/{id}[/path], /n/{name}[/path], /blob/{hash}, /health or /metrics".into(),
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
