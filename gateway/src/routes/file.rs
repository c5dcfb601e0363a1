//! `/f/{readcap}[/{name}]`: a private file, decrypted with the key in the URL (its
//! bytes are served by [`serve_file`]).

use axum::{
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, Method, header},
    response::Response,
};
use mosaic_codec::{Cap, Decoder};

use crate::{
    content::{FileQuery, serve_file},
    error::AppError,
    state::AppStateRef,
};

/// `Cache-Control` of decrypted private files: browsers may keep them, shared caches
/// must not (they would hold plaintext under a URL that carries the key).
const PRIVATE_IMMUTABLE: &str = "private, max-age=31536000, immutable";

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
