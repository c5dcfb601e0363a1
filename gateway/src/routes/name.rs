//! `/n/{name}[/{path}]`: what a mutable name points to now, served like `/p/` (files,
//! directories, static sites).
//!
//! A name is resolved at most every [`NAME_TTL`] per gateway and answers carry
//! `Cache-Control: public, max-age=`[`NAME_TTL`], so a new publication is served within
//! about a minute by this gateway and the caches in front of it; the ETag is the
//! target file's, so a revalidation after an update fetches the new bytes. Redirects
//! are temporary (302): a name's target may turn from a directory into a file.
//! Private names (`ms1…`) are refused: their read key would travel to the gateway.

use std::{sync::Arc, time::Instant};

use axum::{
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::Response,
};
use mosaic_client::Resolved;
use mosaic_codec::{
    Cap, PublicId,
    name::{NameKey, NameRef},
};

use crate::{
    content::FileQuery,
    error::AppError,
    respond::encode_path,
    routes::site::public_at,
    state::{AppState, AppStateRef},
};

/// How long a resolved name is reused, and how long clients may cache its answers.
pub(crate) const NAME_TTL: std::time::Duration = std::time::Duration::from_secs(30);
/// A name that did not resolve is asked again after this long.
const FAILED_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// `GET|HEAD /n/{name}`.
pub(crate) async fn root(
    State(state): State<AppStateRef>,
    Path(key): Path<String>,
    Query(q): Query<FileQuery>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    serve(state, &key, None, q, method, headers).await
}

/// `GET|HEAD /n/{name}/`.
pub(crate) async fn root_slash(
    State(state): State<AppStateRef>,
    Path(key): Path<String>,
    Query(q): Query<FileQuery>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    serve(state, &key, Some(String::new()), q, method, headers).await
}

/// `GET|HEAD /n/{name}/{path}`.
pub(crate) async fn path(
    State(state): State<AppStateRef>,
    Path((key, path)): Path<(String, String)>,
    Query(q): Query<FileQuery>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    serve(state, &key, Some(path), q, method, headers).await
}

/// Parses a name from a URL: public names only.
pub(crate) fn parse_public(text: &str) -> Result<NameKey, AppError> {
    match text.parse::<NameRef>() {
        Ok(NameRef::Public(key)) => Ok(key),
        Ok(NameRef::Sealed(_)) => Err(AppError::BadRequest(
            "this is a private name (ms1…): its read key must not be sent to a gateway; resolve it with `mosaic name resolve`".into(),
        )),
        Err(e) => Err(AppError::BadRequest(format!("{e} (this route takes a name, mn1…)"))),
    }
}

impl AppState {
    /// What name `key` points to: from the last [`NAME_TTL`], or resolved now.
    pub(crate) async fn resolve_name(&self, key: NameKey) -> Result<Resolved, Arc<AppError>> {
        {
            let mut names = self.names.lock().expect("not poisoned");
            if let Some((at, answer)) = names.get(&key) {
                let ttl = if answer.is_ok() { NAME_TTL } else { FAILED_TTL };
                if at.elapsed() < ttl {
                    return answer.clone();
                }
            }
        }
        let limit = self.options.lookup_timeout;
        let answer = match tokio::time::timeout(
            limit,
            self.client.resolve_name(&NameRef::Public(key)),
        )
        .await
        {
            Err(_) => Err(Arc::new(AppError::LookupTimeout {
                what: format!("name {key}"),
                limit,
            })),
            Ok(r) => r.map_err(|e| {
                Arc::new(AppError::Name {
                    key,
                    source: Box::new(e),
                })
            }),
        };
        self.names
            .lock()
            .expect("not poisoned")
            .put(key, (Instant::now(), answer.clone()));
        answer
    }

    /// The public target of name `key` and the path inside it the name points to.
    pub(crate) async fn name_target(
        &self,
        key: NameKey,
    ) -> Result<(PublicId, i64, String), AppError> {
        let resolved = self.resolve_name(key).await.map_err(AppError::Cached)?;
        match resolved.pointer.target {
            Cap::Public(public) => Ok((public, resolved.record.seq, resolved.pointer.path)),
            Cap::Read(_) => Err(AppError::Forbidden(format!(
                "name {key} points to a private file; it is resolved with `mosaic name resolve`"
            ))),
        }
    }
}

/// Joins the name's path and the request's.
pub(crate) fn join(base: &str, rest: Option<String>) -> Option<String> {
    match (base, rest) {
        ("", rest) => rest,
        // `/n/{name}` itself: a directory redirects to `/n/{name}/`, a file is served.
        (base, None) => Some(base.trim_end_matches('/').to_owned()),
        (base, Some(rest)) if base.ends_with('/') => Some(format!("{base}{rest}")),
        (base, Some(rest)) => Some(format!("{base}/{rest}")),
    }
}

async fn serve(
    state: AppStateRef,
    key: &str,
    path: Option<String>,
    q: FileQuery,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let key = parse_public(key)?;
    let (public, _, inner) = state.name_target(key).await?;
    let base = format!("/n/{key}");
    let mut response = if inner.is_empty() {
        public_at(&state, &base, public, path, q, method, headers).await?
    } else {
        // The name points inside a directory: its paths are relative to that.
        let full = join(&inner, path.clone());
        // Validators were issued with the path mixed in (below): the inner ones differ.
        let mut headers = headers;
        headers.remove(header::IF_NONE_MATCH);
        headers.remove(header::IF_RANGE);
        let mut r = public_at(&state, &base, public, full, q, method, headers).await?;
        // A redirect names the directory's path; the client knows only the name's.
        if let Some(to) = r
            .headers()
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
        {
            let prefix = encode_path(&format!("{base}/{}", inner.trim_end_matches('/')));
            let rel = to.strip_prefix(&prefix).unwrap_or(to);
            let fixed = format!("{base}/{}", rel.trim_start_matches('/'));
            if let Ok(v) = HeaderValue::from_str(&fixed) {
                r.headers_mut().insert(header::LOCATION, v);
            }
        }
        // A listing's ETag is its directory's id: the name's path must count too, or a
        // name moved to another directory of the same tree would revalidate as fresh.
        if let Some(tag) = r.headers().get(header::ETAG).and_then(|t| t.to_str().ok()) {
            let mixed = mosaic_codec::Hash::of(format!("{tag} {inner}").as_bytes()).to_hex();
            if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", &mixed[..32])) {
                r.headers_mut().insert(header::ETAG, v);
            }
        }
        r
    };
    if response.status() == StatusCode::MOVED_PERMANENTLY {
        *response.status_mut() = StatusCode::FOUND;
    }
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(&format!("public, max-age={}", NAME_TTL.as_secs())).expect("ASCII"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_under_the_names_directory() {
        assert_eq!(join("", None), None);
        assert_eq!(join("", Some("a".into())), Some("a".into()));
        assert_eq!(join("docs/", None), Some("docs".into()));
        assert_eq!(join("docs/", Some("a/b".into())), Some("docs/a/b".into()));
        assert_eq!(join("docs", Some("".into())), Some("docs/".into()));
    }
}
