//! The bytes of a response, for every route that serves them (`/f/`, `/p/`, `/n/`
//! and `/blob/`): the range plan (status and byte range from `Range`, `If-Range`
//! and the representation's validator), the content headers, and a file's body
//! streamed from its segments and trimmed to the range.
//!
//! Invariant: a file's head is sent only once its first segment is in hand (see the
//! crate's notes), and its body is exactly the planned range's bytes.

use std::{ops::Range, sync::Arc};

use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::Response,
};
use bytes::Bytes;
use mosaic_client::{ClientError, Segment, SegmentStream};
use mosaic_codec::Decoder;
use n0_future::StreamExt;
use serde::Deserialize;
use tracing::debug;

use crate::{
    Metrics,
    error::AppError,
    http::{self, RangeAsk, etag_of, not_modified, range_ask, value},
    respond::not_modified_response,
    state::AppState,
};

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

/// The status and byte range to answer for a `len`-byte representation, or the 416
/// error when nothing asked for is satisfiable. `what` names it in the error.
pub(crate) fn plan_range(
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
pub(crate) fn content_headers(
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

/// The policy of every file served (see [`serve_file`]).
pub(crate) const USER_CONTENT_POLICY: &str =
    "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads";

/// Serves one file: validators, range, headers, then the body streamed from its
/// segments, trimmed to the range.
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
