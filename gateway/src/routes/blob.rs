//! `/blob/{hash}`: a raw blob by its BLAKE3 hash, verified as it streams from a
//! holder, with ranges; the bytes are what they are named, so clients can verify them.
//! `?format=bao&start=S&end=E` answers the trustless form: the blob's size, then the
//! bao encoding of the chunks covering bytes `S..E` (what iroh-blobs sends), which a
//! client verifies against the hash alone (docs/gateway.md, "Trustless blob ranges").

use axum::{
    body::Body,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, Method, header},
    response::Response,
};
use mosaic_codec::Hash;
use n0_future::StreamExt;
use serde::Deserialize;

use crate::{
    content::{content_headers, plan_range},
    error::AppError,
    http::{etag_of, not_modified},
    respond::{immutable, not_modified_response},
    state::AppStateRef,
};

/// The media type of a trustless answer.
pub(crate) const BAO_TYPE: &str = "application/vnd.mosaic.bao";

/// `?format=bao&start=S&end=E`.
#[derive(Debug, Deserialize)]
pub(crate) struct BlobQuery {
    format: Option<String>,
    start: Option<u64>,
    end: Option<u64>,
}

/// `/blob/{hash}`: a raw blob from a node that holds it, with Range, for clients that
/// verify for themselves; or, with `?format=bao`, a byte range with its proof.
pub(crate) async fn raw_blob(
    State(state): State<AppStateRef>,
    Path(hash): Path<String>,
    Query(query): Query<BlobQuery>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let trustless = match query.format.as_deref() {
        None | Some("raw") => false,
        Some("bao") => true,
        Some(other) => {
            return Err(AppError::BadRequest(format!(
                "format={other} is not served: use format=bao (a range with its proof) or no format (raw bytes)"
            )));
        }
    };
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
    if trustless {
        return trustless_answer(&state, blob, &hash, &query, &method);
    }
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

/// The trustless answer for `query`'s range of `blob`: `u64 LE size ‖ bao encoding`.
/// A `Range` header does not apply (the body is not the blob's bytes); the range is in
/// the query, so every answer is its own immutable, cacheable URL.
fn trustless_answer(
    state: &AppStateRef,
    blob: mosaic_client::RemoteBlob,
    hash: &Hash,
    query: &BlobQuery,
    method: &Method,
) -> Result<Response, AppError> {
    let len = blob.size();
    let start = query.start.unwrap_or(0);
    let end = query.end.unwrap_or(len);
    if start > end || end > len || (start == end && len != 0) {
        return Err(AppError::RangeNotSatisfiable { what: "blob", len });
    }
    let mut response = if *method == Method::HEAD {
        Response::new(Body::empty())
    } else {
        let metrics = state.metrics.clone();
        let stream = blob.stream_encoded(start..end).map(move |chunk| {
            if let Ok(bytes) = &chunk {
                metrics.bytes_out(bytes.len() as u64);
            }
            chunk.map_err(std::io::Error::other)
        });
        Response::new(Body::from_stream(stream))
    };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(BAO_TYPE));
    h.insert(
        header::ETAG,
        crate::http::value(&format!("\"{}-bao-{start}-{end}\"", hash.to_hex())),
    );
    Ok(immutable(response))
}
