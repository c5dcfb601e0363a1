//! The gateway's one error type. Every handler returns `Result<Response, AppError>`;
//! [`AppError`] turns itself into a plain-text answer whose status comes from the
//! error's [`ErrorKind`] (one table, [`status_of`]), or from the HTTP condition the
//! gateway itself found (denied, lookup timeout, unsatisfiable range). No status is
//! ever chosen by reading an error's message.

use std::time::Duration;

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use mosaic_client::{BlobError, ClientError, dir::DirectoryError};
use mosaic_codec::{DecodeError, ErrorKind, Hash, name::NameKey};

/// The HTTP status for a kind of failure. The gateway is a proxy for the storage
/// network: a failure that is neither the request's nor a missing thing is the
/// upstream's (502).
pub(crate) fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Refused => StatusCode::FORBIDDEN,
        ErrorKind::BadInput => StatusCode::BAD_REQUEST,
        ErrorKind::Space => StatusCode::INSUFFICIENT_STORAGE,
        ErrorKind::Network | ErrorKind::Other => StatusCode::BAD_GATEWAY,
        _ => StatusCode::BAD_GATEWAY,
    }
}

/// Why a request failed; each says what failed and what to do.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AppError {
    /// Reading file `id` failed.
    #[error("{}", client_detail(.id, .source))]
    File {
        /// The file.
        id: Hash,
        /// What the client said (boxed: errors stay small on the happy path).
        source: Box<ClientError>,
    },
    /// Opening raw blob `hash` failed.
    #[error("{}", blob_detail(.hash, .source))]
    Blob {
        /// The blob.
        hash: Hash,
        /// What the client said (boxed: errors stay small on the happy path).
        source: Box<BlobError>,
    },
    /// A directory index does not parse.
    #[error("directory {id}: {source}")]
    Directory {
        /// The directory's id.
        id: Hash,
        /// Why.
        source: DirectoryError,
    },
    /// A directory index is larger than the gateway reads.
    #[error("directory {id} has a {len}-byte index, more than the {max} allowed")]
    DirectoryTooLarge {
        /// The directory's id.
        id: Hash,
        /// Its index's length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The request names nothing usable: a cap, id or hash that does not parse, or one
    /// of the wrong kind for the route.
    #[error("{0}")]
    BadRequest(String),
    /// Nothing is at this path or route.
    #[error("{0}")]
    NoSuchPath(String),
    /// The operator's denylist holds it.
    #[error("{0} is not served by this gateway (operator's denylist)")]
    Denied(Hash),
    /// Finding it took too long.
    #[error("finding {what} took longer than {limit:?}; try again")]
    LookupTimeout {
        /// `file …` or `blob …`.
        what: String,
        /// The lookup timeout.
        limit: Duration,
    },
    /// Resolving name `key` failed.
    #[error("name {key}: {source}")]
    Name {
        /// The name.
        key: NameKey,
        /// What the client said.
        source: Box<ClientError>,
    },
    /// An error remembered from an earlier request (a name that did not resolve).
    #[error("{0}")]
    Cached(std::sync::Arc<AppError>),
    /// A network operation failed.
    #[error("{what} failed: {source}")]
    Failed {
        /// What was tried.
        what: &'static str,
        /// What the client said.
        source: Box<ClientError>,
    },
    /// The operator does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// Too much is going on; try again later.
    #[error("the gateway is busy: {what}; try again in {retry_after} s")]
    Busy {
        /// What is full.
        what: String,
        /// Seconds to wait (`Retry-After`).
        retry_after: u64,
    },
    /// The client is over one of its limits (requests a second, uploads at once).
    #[error("too many requests from your address: {what}; try again in {retry_after} s")]
    TooManyRequests {
        /// The limit.
        what: String,
        /// Seconds until the client may try again (`Retry-After`).
        retry_after: u64,
    },
    /// The request body is larger than allowed.
    #[error("the upload is larger than this gateway's limit of {max} bytes")]
    TooLarge {
        /// The limit.
        max: u64,
    },
    /// The range asked for is outside the body.
    #[error("the range asked for is outside the {what}'s {len} bytes")]
    RangeNotSatisfiable {
        /// `file` or `blob`.
        what: &'static str,
        /// The body's length.
        len: u64,
    },
}

fn client_detail(id: &Hash, e: &ClientError) -> String {
    match e {
        ClientError::ManifestUnavailable { holders: 0, .. } => {
            format!("no storage node announces file {id}: check the id, or upload it again")
        }
        ClientError::Decode(DecodeError::WrongKey) => {
            format!("the key in this readcap does not open file {id}: check the readcap")
        }
        ClientError::Decode(DecodeError::KeyRequired) => {
            format!("file {id} is private: ask its owner for the readcap (mr1…) and use /f/")
        }
        ClientError::Manifest(_) | ClientError::Decode(_) => {
            format!("file {id} could not be decoded from what storage nodes sent: {e}")
        }
        other => other.to_string(),
    }
}

fn blob_detail(hash: &Hash, e: &BlobError) -> String {
    match e {
        BlobError::NotFound => format!("no storage node announces blob {hash}"),
        other => format!("blob {hash}: {other}"),
    }
}

impl AppError {
    /// The kind of failure, where the error has one.
    fn kind(&self) -> Option<ErrorKind> {
        match self {
            AppError::File { source, .. } => Some(source.kind()),
            AppError::Blob { source, .. } => Some(source.kind()),
            AppError::Name { source, .. } | AppError::Failed { source, .. } => Some(source.kind()),
            AppError::Forbidden(_) => Some(ErrorKind::Refused),
            AppError::Cached(inner) => inner.kind(),
            AppError::Directory { .. } | AppError::DirectoryTooLarge { .. } => {
                Some(ErrorKind::Other)
            }
            AppError::BadRequest(_) => Some(ErrorKind::BadInput),
            AppError::NoSuchPath(_) => Some(ErrorKind::NotFound),
            AppError::Denied(_)
            | AppError::LookupTimeout { .. }
            | AppError::RangeNotSatisfiable { .. }
            | AppError::TooLarge { .. }
            | AppError::Busy { .. }
            | AppError::TooManyRequests { .. } => None,
        }
    }

    /// The answer's status.
    pub(crate) fn status(&self) -> StatusCode {
        match (self, self.kind()) {
            (AppError::Cached(inner), _) => inner.status(),
            (_, Some(kind)) => status_of(kind),
            (AppError::Denied(_), _) => StatusCode::GONE,
            (AppError::LookupTimeout { .. }, _) => StatusCode::GATEWAY_TIMEOUT,
            (AppError::RangeNotSatisfiable { .. }, _) => StatusCode::RANGE_NOT_SATISFIABLE,
            (AppError::TooLarge { .. }, _) => StatusCode::PAYLOAD_TOO_LARGE,
            (AppError::Busy { .. }, _) => StatusCode::SERVICE_UNAVAILABLE,
            (AppError::TooManyRequests { .. }, _) => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::BAD_GATEWAY,
        }
    }

    /// A file error, in context.
    pub(crate) fn file(id: &Hash, source: impl Into<ClientError>) -> Self {
        AppError::File {
            id: *id,
            source: Box::new(source.into()),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut r = (status, format!("{self}\n")).into_response();
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let AppError::Busy { retry_after, .. } | AppError::TooManyRequests { retry_after, .. } =
            &self
        {
            h.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
        }
        if let AppError::RangeNotSatisfiable { len, .. } = self {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                h.insert(header::CONTENT_RANGE, v);
            }
            h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Statuses come from kinds: rewording a message changes none of them.
    #[test]
    fn statuses_come_from_kinds() {
        let id = Hash::of(b"x");
        let cases = [
            (
                AppError::file(&id, ClientError::ManifestUnavailable { id, holders: 0 }),
                404,
            ),
            (
                AppError::file(&id, ClientError::ManifestUnavailable { id, holders: 3 }),
                502,
            ),
            (AppError::file(&id, DecodeError::WrongKey), 403),
            (AppError::file(&id, DecodeError::KeyRequired), 400),
            (
                AppError::file(
                    &id,
                    ClientError::ColumnsUnavailable {
                        available: 2,
                        need: 3,
                        missing: vec![2, 3, 4],
                    },
                ),
                502,
            ),
            (
                AppError::Blob {
                    hash: id,
                    source: Box::new(BlobError::NotFound),
                },
                404,
            ),
            (AppError::BadRequest("x".into()), 400),
            (AppError::NoSuchPath("x".into()), 404),
            (AppError::Denied(id), 410),
            (
                AppError::LookupTimeout {
                    what: "file".into(),
                    limit: Duration::from_secs(1),
                },
                504,
            ),
            (
                AppError::RangeNotSatisfiable {
                    what: "file",
                    len: 3,
                },
                416,
            ),
        ];
        for (error, status) in cases {
            assert_eq!(error.status().as_u16(), status, "{error}");
        }
    }
}
