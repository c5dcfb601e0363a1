//! `/f/{readcap}[/{name}]`: a private file, decrypted with the key in the URL, and
//! the byte serving every file route shares ([`serve_file`]).

use std::{ops::Range, sync::Arc};

use axum::{
    body::Body,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, Method, header},
    response::Response,
};
use bytes::Bytes;
use mosaic_client::{ClientError, Segment, SegmentStream};
use mosaic_codec::{Cap, Decoder};
use n0_future::StreamExt;
use serde::Deserialize;
use tracing::debug;

use crate::{
    AppState, AppStateRef, Metrics,
    error::AppError,
    http::{self, etag_of, not_modified, value},
    respond::{content_headers, not_modified_response, plan_range},
};

/// `Cache-Control` of decrypted private files: browsers may keep them, shared caches
/// must not (they would hold plaintext under a URL that carries the key).
const PRIVATE_IMMUTABLE: &str = "private, max-age=31536000, immutable";

/// `?download=1`: ask the browser to save the file rather than show it.
#[derive(Debug, Deserialize)]
pub(crate) struct FileQuery {
    download: Option<String>,
}

impl FileQuery {
    pub(crate) fn download(&self) -> bool {
        matches!(self.download.as_deref(), Some("1" | "true" | "yes"))
    }
}

/// `GET|HEAD /f/{readcap}`.
pub(crate) async fn private_file(
    State(state): State<AppStateRef>,
    Path(cap): Path<String>,
    Query(q): Query<FileQuery>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    private(state, &cap, None, q, method, headers).await
}

/// `GET|HEAD /f/{readcap}/{name}`: the same file, saved under `name`.
pub(crate) async fn private_file_named(
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

/// Serves one file: validators, range, headers, then the body streamed from its
/// segments, trimmed to the range.
/// The policy of every file served (see `serve_file`).
pub(crate) const USER_CONTENT_POLICY: &str =
    "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads";

pub(crate) async fn serve_file(
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
    // Files are anyone's content on the gateway's origin: as documents they run in a
    // sandbox with an opaque origin, so a hostile page cannot script the gateway's own
    // page or API (a static site's scripts still run).
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(USER_CONTENT_POLICY),
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
