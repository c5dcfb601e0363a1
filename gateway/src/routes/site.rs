//! `/p/{id}[/{path}]`: public files, and directories (static sites): index pages,
//! listings, trailing-slash redirects.

use axum::{
    body::Body,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, Method, header},
    response::Response,
};
use mosaic_client::dir::{self, Directory, Lookup};
use mosaic_codec::{Decoder, Hash, PublicId};

use crate::{
    content::{FileQuery, serve_file},
    error::AppError,
    http::{etag_of, not_modified, value},
    respond::{immutable, not_modified_response, redirect},
    state::{AppState, AppStateRef},
};

/// `GET|HEAD /p/{id}`.
pub(crate) async fn public_root(
    State(state): State<AppStateRef>,
    Path(id): Path<String>,
    Query(q): Query<FileQuery>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    public(state, &id, None, q, method, headers).await
}

/// `GET|HEAD /p/{id}/`: a directory's index or listing.
pub(crate) async fn public_root_slash(
    State(state): State<AppStateRef>,
    Path(id): Path<String>,
    Query(q): Query<FileQuery>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    public(state, &id, Some(String::new()), q, method, headers).await
}

/// `GET|HEAD /p/{id}/{path}`: a file or sub-directory of a directory.
pub(crate) async fn public_path(
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
    public_at(
        &state,
        &format!("/p/{public}"),
        public,
        path,
        q,
        method,
        headers,
    )
    .await
}

/// Serves public file or directory `public` at `base` (`/p/{id}`, or `/n/{name}` for a
/// name pointing at it): `path` as for [`public`].
pub(crate) async fn public_at(
    state: &AppState,
    base: &str,
    public: PublicId,
    path: Option<String>,
    q: FileQuery,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let id = public.id;
    state.check_denied(&id)?;
    let manifest = state.manifest(&id).await?;
    // A private file asked for by its id alone: the decoder says the key is required.
    let decoder = Decoder::new(manifest, None).map_err(|e| AppError::file(&id, e))?;
    if decoder.metadata().media_type.as_deref() != Some(dir::MEDIA_TYPE) {
        return match path.as_deref() {
            None => serve_file(state, decoder, None, q.download(), &method, &headers)
                .await
                .map(immutable),
            Some(_) => Err(AppError::NoSuchPath(format!(
                "{public} is a file, not a directory: use {base}"
            ))),
        };
    }
    // A directory: relative links in its pages need the trailing slash.
    let Some(path) = path else {
        return Ok(redirect(&format!("{base}/")));
    };
    let directory = state.directory(decoder).await?;
    match directory.lookup(&path) {
        Lookup::File(entry) => {
            serve_entry(state, &entry.id.id, q.download(), &method, &headers).await
        }
        Lookup::Dir if !path.is_empty() && !path.ends_with('/') => {
            Ok(redirect(&format!("{base}/{path}/")))
        }
        Lookup::Dir => {
            let index = format!("{path}index.html");
            if let Lookup::File(entry) = directory.lookup(&index) {
                return serve_entry(state, &entry.id.id, false, &method, &headers).await;
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
