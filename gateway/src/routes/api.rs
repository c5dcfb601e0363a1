//! `/api/…`: what the web page (`/`) asks the gateway, as JSON.
//!
//! - `GET /api/network`: the storage nodes (round-trip time, space, backlogs) and the
//!   gateway's own cache and traffic. One report at a time, reused for
//!   [`NETWORK_TTL`]: a page left open, or many, cost the nodes one probe each per TTL.
//! - `GET /api/open/{id|name}[?path=P]`: a public file's facts or a directory's listing,
//!   directly or through a name. Readcaps are refused: the page opens those itself.
//! - Uploads: [`super::upload`].

use std::time::Duration;

use axum::{
    body::Body,
    extract::{Path, Query, State},
    http::{HeaderValue, header},
    response::Response,
};
use mosaic_client::dir::{self, Lookup};
use mosaic_codec::{Decoder, PublicId};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    error::AppError,
    routes::name::{join, parse_public},
    state::AppStateRef,
};

/// How long a network report is reused.
const NETWORK_TTL: Duration = Duration::from_secs(5);
/// How long one node may take to answer a probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// Most nodes probed for one report.
const MAX_PROBED: usize = 256;

/// `GET /api/network`.
pub(crate) async fn network(State(state): State<AppStateRef>) -> Result<Response, AppError> {
    let mut last = state.network.lock().await;
    if let Some((at, report)) = last.as_ref() {
        if at.elapsed() < NETWORK_TTL {
            return Ok(json_answer(report));
        }
    }
    let client = &state.client;
    let ids = client
        .routing()
        .storage_nodes()
        .await
        .map_err(|e| AppError::Failed {
            what: "finding the storage nodes",
            source: Box::new(e.into()),
        })?;
    let probes = n0_future::join_all(ids.iter().take(MAX_PROBED).map(|&id| async move {
        let answer = tokio::time::timeout(PROBE_TIMEOUT, client.probe(id, &[])).await;
        match answer {
            Ok(Ok((s, rtt))) => json!({
                "id": id.to_string(),
                "rtt_ms": (rtt != Duration::MAX).then_some(rtt.as_secs_f64() * 1000.0),
                "capacity": s.capacity,
                "used": s.used,
                "blobs": s.blobs,
                "announce_backlog": s.announce_backlog,
                "repair_backlog": s.health.repair_backlog,
                "version": s.version,
                "error": null,
            }),
            Ok(Err(e)) => down(id, e.to_string()),
            Err(_) => down(id, format!("no answer within {PROBE_TIMEOUT:?}")),
        }
    }))
    .await;
    let mut gateway = state.metrics.summary();
    gateway["version"] = json!(env!("CARGO_PKG_VERSION"));
    gateway["dht_peers"] = json!(client.routing().routing_table_size().await.unwrap_or(0));
    gateway["uploads"] = json!(state.options.uploads.is_some());
    gateway["upload_max"] = json!(state.options.uploads);
    let report = json!({"gateway": gateway, "nodes": probes});
    *last = Some((std::time::Instant::now(), report.clone()));
    Ok(json_answer(&report))
}

fn down(id: impl std::fmt::Display, error: String) -> Value {
    json!({
        "id": id.to_string(), "rtt_ms": null, "capacity": null, "used": null, "blobs": null,
        "announce_backlog": null, "repair_backlog": null, "version": null, "error": error,
    })
}

/// A JSON answer that no cache keeps (it describes the network now).
pub(crate) fn json_answer(value: &Value) -> Response {
    let mut r = Response::new(Body::from(value.to_string()));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `?path=` of `/api/open`.
#[derive(Debug, Deserialize)]
pub(crate) struct OpenQuery {
    #[serde(default)]
    path: String,
}

/// `GET /api/open/{text}`: `text` is a public id (`mi1…`) or a name (`mn1…`).
pub(crate) async fn open(
    State(state): State<AppStateRef>,
    Path(text): Path<String>,
    Query(q): Query<OpenQuery>,
) -> Result<Response, AppError> {
    let text = text.trim();
    let lower = text.to_ascii_lowercase();
    let (public, via, inner, href) = if lower.starts_with("mn") || lower.starts_with("ms") {
        let key = parse_public(text)?;
        let (public, seq, inner) = state.name_target(key).await?;
        (
            public,
            json!({"key": key.to_string(), "seq": seq}),
            inner,
            format!("/n/{key}"),
        )
    } else if lower.starts_with("mr") {
        return Err(AppError::BadRequest(
            "a readcap holds a key and is not sent to the gateway: open it as /s/#mr1… (the page decrypts it in the browser)".into(),
        ));
    } else {
        let public: PublicId = text.parse().map_err(|e| {
            AppError::BadRequest(format!("{e} (open takes a public id mi1… or a name mn1…)"))
        })?;
        (public, Value::Null, String::new(), format!("/p/{public}"))
    };
    let id = public.id;
    state.check_denied(&id)?;
    let manifest = state.manifest(&id).await?;
    let decoder = Decoder::new(manifest, None).map_err(|e| AppError::file(&id, e))?;
    let meta = decoder.metadata().clone();
    if meta.media_type.as_deref() != Some(dir::MEDIA_TYPE) {
        return Ok(json_answer(&json!({
            "id": public.to_string(), "kind": "file", "name": via, "href": href,
            "size": decoder.layout().length(), "media_type": meta.media_type,
            "file_name": meta.name,
        })));
    }
    let directory = state.directory(decoder).await?;
    let rel = q.path.trim_start_matches('/');
    let rel = if rel.is_empty() || rel.ends_with('/') {
        rel.to_owned()
    } else {
        format!("{rel}/")
    };
    let full = join(&inner, Some(rel.clone())).unwrap_or_default();
    match directory.lookup(&full) {
        Lookup::Dir => {}
        Lookup::File(_) => {
            return Err(AppError::BadRequest(format!(
                "{full:?} is a file: open {href}/{full}"
            )));
        }
        Lookup::Missing => {
            return Err(AppError::NoSuchPath(format!(
                "{full:?} is not in directory {public}"
            )));
        }
    }
    let entries: Vec<Value> = directory
        .children(&full)
        .into_iter()
        .map(|(name, entry)| match entry {
            Some(e) => json!({"name": name, "dir": false, "size": e.size}),
            None => json!({"name": name, "dir": true, "size": null}),
        })
        .collect();
    Ok(json_answer(&json!({
        "id": public.to_string(), "kind": "directory", "name": via,
        "href": format!("{href}/"), "path": rel, "entries": entries,
    })))
}
