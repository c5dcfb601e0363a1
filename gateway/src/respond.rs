//! Building responses the routes share: caching headers for immutable content,
//! redirects, 304s. The bytes of a body (ranges, streaming) are `content.rs`'s.

use axum::{
    body::Body,
    http::{HeaderValue, StatusCode, header},
    response::Response,
};

use crate::http::value;

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
