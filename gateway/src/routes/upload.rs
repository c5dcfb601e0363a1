//! Uploads from the web page, only where the operator allowed them (`--allow-uploads`):
//!
//! - `POST /api/upload?name=N`: a **public** file. The body is spooled to the cache
//!   directory (never held in memory), bounded by `--upload-max`, then put like
//!   `mosaic put --public`.
//! - `POST /api/private-upload/begin?length=L`, then `POST
//!   /api/private-upload/{session}/segment/{i}` for every segment in order, then `POST
//!   /api/private-upload/{session}/manifest`: a **private** file sealed and
//!   erasure-coded in the page (`gateway/web/src/upload.rs`). Each segment's body is its
//!   `n` shards, streamed on to the `n` column nodes at once (one segment in memory per
//!   session); the manifest is checked against what the nodes stored. The gateway never
//!   has the key or the plaintext: the page makes the readcap.
//!
//! Both kinds are stored with the gateway's identity; at most [`PARALLEL_UPLOADS`] of
//! each run at once, and one client (see [`crate::serve`]) holds at most
//! [`UPLOADS_PER_CLIENT`] of them, so one address cannot keep the others out. A private session is dropped (its columns are not kept by the
//! nodes: their streams end short) when the page aborts it (`POST …/{session}/abort`),
//! when it has sent no segment within [`FIRST_SEGMENT`] of its start, or when it is idle
//! for [`SESSION_IDLE`]; the sweep runs before each new session, so a stalled page
//! holds a slot for at most that long.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    body::{Body, Bytes},
    extract::{Extension, Path, Query, State},
    http::HeaderMap,
    response::Response,
};
use mosaic_client::{ClientError, PutReport};
use mosaic_codec::{Access, Layout, MAX_MANIFEST_LEN, MAX_NAME_LEN, Metadata, Params, PublicId};
use n0_future::StreamExt;
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use mosaic_wire::limit::Slot;

use crate::{
    error::AppError,
    routes::api::json_answer,
    server::{ClientKey, Peer, UPLOADS_PER_CLIENT},
    state::{AppStateRef, Session},
};

/// Uploads a gateway runs at once; more wait (public ones) or are refused (private
/// sessions, which hold nodes' streams open).
pub(crate) const PARALLEL_UPLOADS: usize = 4;
/// A private session that receives nothing for this long is dropped.
pub(crate) const SESSION_IDLE: Duration = Duration::from_secs(60);
/// A private session that has sent no segment this long after it began is dropped.
pub(crate) const FIRST_SEGMENT: Duration = Duration::from_secs(15);

static UPLOADS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(PARALLEL_UPLOADS);

static PRIVATE: std::sync::LazyLock<Arc<tokio::sync::Semaphore>> =
    std::sync::LazyLock::new(|| Arc::new(tokio::sync::Semaphore::new(PARALLEL_UPLOADS)));

/// The header every upload request must carry. A page on another site (or a file on
/// this one, which runs sandboxed) cannot send it without a CORS preflight, which the
/// gateway never grants: no cross-site request can upload through a visitor's browser.
pub(crate) const UPLOAD_HEADER: &str = "x-mosaic-upload";

/// Each request body (a segment's shards, the manifest, a public file) must arrive
/// within this long, and each segment be handed to the nodes within it: a session is
/// never held by a request that trickles.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

fn allowed(state: &AppStateRef, headers: &HeaderMap) -> Result<u64, AppError> {
    let max = state.options.uploads.ok_or_else(|| {
        AppError::Forbidden(
            "this gateway does not accept uploads: its operator can allow them with --allow-uploads".into(),
        )
    })?;
    if headers.get(UPLOAD_HEADER).is_none() {
        return Err(AppError::Forbidden(format!(
            "uploads come from the gateway's page, which sends an {UPLOAD_HEADER} header; this request has none"
        )));
    }
    Ok(max)
}

/// `?name=` of `/api/upload`.
#[derive(Debug, Deserialize)]
pub(crate) struct UploadQuery {
    name: Option<String>,
}

/// A file name from the client: its last path component, printable, bounded.
fn clean_name(name: Option<&str>) -> String {
    let name = name
        .unwrap_or("")
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>();
    let mut name = name.trim().to_owned();
    while name.len() > MAX_NAME_LEN {
        name.pop();
    }
    if name.is_empty() || name == "." || name == ".." {
        "upload".into()
    } else {
        name
    }
}

/// `POST /api/upload?name=N`: stores the body as a public file.
pub(crate) async fn upload(
    State(state): State<AppStateRef>,
    Query(q): Query<UploadQuery>,
    peer: Option<Extension<Peer>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
    let max = allowed(&state, &headers)?;
    let name = clean_name(q.name.as_deref());
    let _client = client_slot(&state, peer)?;
    let _turn = UPLOADS
        .acquire()
        .await
        .map_err(|_| AppError::Forbidden("the gateway is shutting down".into()))?;
    let spool_dir = state.options.cache_dir.join("uploads");
    let io = |e: std::io::Error| AppError::Failed {
        what: "spooling the upload",
        source: Box::new(ClientError::Output(e)),
    };
    tokio::fs::create_dir_all(&spool_dir).await.map_err(io)?;
    // Deleted when dropped, whatever happens below.
    let spool = tempfile::NamedTempFile::new_in(&spool_dir).map_err(io)?;
    let mut file = tokio::fs::File::create(spool.path()).await.map_err(io)?;
    let mut size = 0u64;
    let mut stream = body.into_data_stream();
    // A slow link may take long; a body that stalls gives its slot back.
    let stalled = || AppError::BadRequest(format!("the upload stalled for {REQUEST_TIMEOUT:?}"));
    while let Some(chunk) = tokio::time::timeout(REQUEST_TIMEOUT, stream.next())
        .await
        .map_err(|_| stalled())?
    {
        let chunk = chunk
            .map_err(|e| AppError::BadRequest(format!("the upload stopped before its end: {e}")))?;
        size += chunk.len() as u64;
        if size > max {
            return Err(AppError::TooLarge { max });
        }
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.flush().await.map_err(io)?;
    drop(file);
    let metadata = Metadata {
        media_type: mime_guess::from_path(&name)
            .first()
            .map(|m| m.essence_str().to_owned()),
        name: Some(name.clone()),
        modified: None,
    };
    let public = stored(
        state
            .client
            .put(spool.path(), Params::default(), Access::Public, metadata)
            .await,
    )?;
    Ok(json_answer(&json!({
        "id": public.to_string(), "href": format!("/p/{public}"), "size": size, "name": name,
    })))
}

/// `?length=` of `/api/private-upload/begin`.
#[derive(Debug, Deserialize)]
pub(crate) struct BeginQuery {
    length: u64,
}

/// `POST /api/private-upload/begin?length=L`: places the columns of a file of `L`
/// bytes (default parameters, as the page codes) and opens their streams.
pub(crate) async fn private_begin(
    State(state): State<AppStateRef>,
    Query(q): Query<BeginQuery>,
    peer: Option<Extension<Peer>>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let max = allowed(&state, &headers)?;
    if q.length > max {
        return Err(AppError::TooLarge { max });
    }
    // Idle sessions give their turn back first.
    state.uploads.lock().expect("not poisoned").retain(|_, s| {
        s.try_lock().map_or(true, |s| {
            let limit = if s.upload.next_segment() == 0 {
                FIRST_SEGMENT
            } else {
                SESSION_IDLE
            };
            s.last.elapsed() < limit
        })
    });
    let client = client_slot(&state, peer)?;
    let turn = PRIVATE
        .clone()
        .try_acquire_owned()
        .map_err(|_| AppError::Busy {
            what: format!("{PARALLEL_UPLOADS} uploads are in progress"),
            retry_after: 10,
        })?;
    let layout = Layout::new(Params::default(), q.length).ok_or(AppError::TooLarge { max })?;
    let upload = state
        .client
        .begin_columns(layout)
        .await
        .map_err(|e| AppError::Failed {
            what: "placing the upload's columns",
            source: Box::new(e),
        })?;
    let mut token = [0u8; 16];
    getrandom::fill(&mut token).expect("the operating system's random source failed");
    let token: String = token.iter().map(|b| format!("{b:02x}")).collect();
    state.uploads.lock().expect("not poisoned").insert(
        token.clone(),
        Arc::new(tokio::sync::Mutex::new(Session {
            upload,
            last: Instant::now(),
            _turn: turn,
            _client: client,
        })),
    );
    Ok(json_answer(&json!({
        "session": token,
        "segments": layout.segments(),
        "segment_size": layout.params().segment_size(),
        "columns": layout.params().columns(),
    })))
}

/// One of the client's upload slots (none to take when the request came some other way
/// than the gateway's listener), or 429.
fn client_slot(
    state: &AppStateRef,
    peer: Option<Extension<Peer>>,
) -> Result<Option<Slot<ClientKey>>, AppError> {
    let Some(Extension(Peer(peer))) = peer else {
        return Ok(None);
    };
    state
        .clients
        .uploads
        .take(ClientKey::of(peer.ip()))
        .map(Some)
        .ok_or(AppError::TooManyRequests {
            what: format!("at most {UPLOADS_PER_CLIENT} uploads from one address at once"),
            retry_after: 10,
        })
}

fn session(state: &AppStateRef, token: &str) -> Result<Arc<tokio::sync::Mutex<Session>>, AppError> {
    state
        .uploads
        .lock()
        .expect("not poisoned")
        .get(token)
        .cloned()
        .ok_or_else(|| {
            AppError::NoSuchPath(format!(
                "no upload session {token}: it finished, failed or was idle for {SESSION_IDLE:?}; start the upload again"
            ))
        })
}

fn drop_session(state: &AppStateRef, token: &str) {
    state.uploads.lock().expect("not poisoned").remove(token);
}

/// `POST /api/private-upload/{session}/segment/{i}`: segment `i`'s shards.
pub(crate) async fn private_segment(
    State(state): State<AppStateRef>,
    Path((token, index)): Path<(String, u64)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
    allowed(&state, &headers)?;
    let session = session(&state, &token)?;
    let mut session = session.lock().await;
    let expected = if index < session.upload.layout().segments() {
        session.upload.stripe_len(index)
    } else {
        0
    };
    let stripe = read_bounded(body, expected).await?;
    let sent = tokio::time::timeout(REQUEST_TIMEOUT, session.upload.send_segment(index, stripe))
        .await
        .unwrap_or_else(|_| {
            Err(ClientError::Coded(format!(
                "the column nodes did not take segment {index} within {REQUEST_TIMEOUT:?}"
            )))
        });
    session.last = Instant::now();
    if let Err(e) = sent {
        drop(session);
        drop_session(&state, &token);
        return Err(AppError::Failed {
            what: "sending the segment's shards",
            source: Box::new(e),
        });
    }
    Ok(json_answer(&json!({"next": index + 1})))
}

/// `POST /api/private-upload/{session}/manifest`: the manifest; stores it and ends the
/// session. Answers the file's public id (the page holds the key).
pub(crate) async fn private_manifest(
    State(state): State<AppStateRef>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
    allowed(&state, &headers)?;
    session(&state, &token)?;
    // Read first: a manifest that does not arrive leaves the session as it was.
    let manifest = read_bounded(body, MAX_MANIFEST_LEN).await?;
    let session = session(&state, &token)?;
    drop_session(&state, &token);
    let session = match Arc::try_unwrap(session) {
        Ok(session) => session,
        Err(session) => {
            state
                .uploads
                .lock()
                .expect("not poisoned")
                .insert(token, session);
            return Err(AppError::BadRequest(
                "the session is still receiving a segment: send the manifest after the last segment's answer".into(),
            ));
        }
    };
    let Session { upload, .. } = session.into_inner();
    let size = upload.layout().length();
    let public = stored(upload.finish(&manifest).await)?;
    Ok(json_answer(
        &json!({"id": public.to_string(), "size": size}),
    ))
}

/// `POST /api/private-upload/{session}/abort`: the page gave up; the slot is freed and
/// the nodes keep nothing of it.
pub(crate) async fn private_abort(
    State(state): State<AppStateRef>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    allowed(&state, &headers)?;
    session(&state, &token)?;
    drop_session(&state, &token);
    Ok(json_answer(&json!({"aborted": true})))
}

/// The stored file's id, or why storing failed.
fn stored(report: Result<PutReport, ClientError>) -> Result<PublicId, AppError> {
    let report = report.map_err(|e| AppError::Failed {
        what: "storing the upload",
        source: Box::new(e),
    })?;
    Ok(PublicId {
        id: report.manifest.id(),
    })
}

/// The whole body, refused once it passes `max` bytes or takes longer than
/// [`REQUEST_TIMEOUT`].
async fn read_bounded(body: Body, max: usize) -> Result<Bytes, AppError> {
    tokio::time::timeout(REQUEST_TIMEOUT, read_all(body, max))
        .await
        .unwrap_or_else(|_| {
            Err(AppError::BadRequest(format!(
                "the body did not arrive within {REQUEST_TIMEOUT:?}"
            )))
        })
}

async fn read_all(body: Body, max: usize) -> Result<Bytes, AppError> {
    let mut stream = body.into_data_stream();
    let mut out = Vec::with_capacity(max.min(64 << 20));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| AppError::BadRequest(format!("the upload stopped before its end: {e}")))?;
        if out.len() + chunk.len() > max {
            return Err(AppError::TooLarge { max: max as u64 });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_names_are_one_clean_component() {
        assert_eq!(clean_name(Some("a/b/c.txt")), "c.txt");
        assert_eq!(clean_name(Some("C:\\x\\y.png")), "y.png");
        assert_eq!(clean_name(Some("..")), "upload");
        assert_eq!(clean_name(None), "upload");
        assert_eq!(clean_name(Some("a\u{0}b\nc")), "abc");
        assert!(clean_name(Some(&"x".repeat(10_000))).len() <= MAX_NAME_LEN);
    }
}
