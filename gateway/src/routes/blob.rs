//! `/blob/{hash}`: a raw blob by its BLAKE3 hash, verified as it streams from a
//! holder, with ranges; the bytes are what they are named, so clients can verify them.

use axum::{
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, Method, header},
    response::Response,
};
use mosaic_codec::Hash;
use n0_future::StreamExt;

use crate::{
    AppStateRef,
    error::AppError,
    http::{etag_of, not_modified},
    respond::{content_headers, immutable, not_modified_response, plan_range},
};

/// `/blob/{hash}`: a raw blob from a node that holds it, with Range, for clients that
/// verify for themselves.
pub(crate) async fn raw_blob(
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
