//! Building responses the routes share: caching headers for immutable content,
//! redirects, 304s, and the range plan and content headers of a byte body.

use std::ops::Range;

use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};

use crate::{
    error::AppError,
    http::{RangeAsk, range_ask, value},
};

/// `Cache-Control` of public, content-addressed responses: they never change.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Marks a response to public, content-addressed content as cacheable forever.
pub(crate) fn immutable(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    r
}

/// Characters a path keeps as they are in a `Location` (ASCII letters, digits, `/` and
/// the unreserved and sub-delimiter marks); everything else, non-ASCII included, is
/// percent-encoded.
const PATH: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@');

/// A path as it goes in a URL (decoded paths from the router go back out encoded).
pub(crate) fn encode_path(path: &str) -> String {
    percent_encoding::utf8_percent_encode(path, PATH).to_string()
}

/// A permanent redirect to path `to` (not yet percent-encoded).
pub(crate) fn redirect(to: &str) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::MOVED_PERMANENTLY;
    r.headers_mut()
        .insert(header::LOCATION, value(&encode_path(to)));
    r
}

/// A 304 for a request whose validator matched `etag`.
pub(crate) fn not_modified_response(etag: &str) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::NOT_MODIFIED;
    r.headers_mut().insert(header::ETAG, value(etag));
    r
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
