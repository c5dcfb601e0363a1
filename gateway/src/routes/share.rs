//! `/s/`: the share page. Links look like `/s/#CAP/NAME`: the readcap is in the
//! fragment, which browsers never send, so this route serves the same few static files
//! to everyone and never sees a key. The page's service worker fetches columns from
//! `/blob/{hash}?format=bao` and verifies and decrypts them in the browser with
//! `mosaic.wasm` (built from `gateway/web`, embedded in this binary).
//!
//! Every file is compiled in (no CDN, no file system); ETags are their BLAKE3 hashes so
//! an upgraded gateway's page replaces the cached one at once.

use std::sync::LazyLock;

use axum::{
    body::Body,
    extract::Path,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};

use crate::{
    error::AppError,
    http::{not_modified, value},
    respond::not_modified_response,
};

/// One embedded file, served at `/s/{name}` (the page at `/s/`).
pub(crate) struct Asset {
    pub(crate) name: &'static str,
    pub(crate) bytes: &'static [u8],
    pub(crate) media_type: &'static str,
}

/// The page, then its script, style, worker and the codec module (built by
/// `gateway/web/build.sh`; CI checks it matches the source).
const ASSETS: [Asset; 5] = [
    Asset {
        name: "",
        bytes: include_bytes!("../../assets/share.html"),
        media_type: "text/html; charset=utf-8",
    },
    Asset {
        name: "share.js",
        bytes: include_bytes!("../../assets/share.js"),
        media_type: "text/javascript; charset=utf-8",
    },
    Asset {
        name: "share.css",
        bytes: include_bytes!("../../assets/share.css"),
        media_type: "text/css; charset=utf-8",
    },
    Asset {
        name: "sw.js",
        bytes: include_bytes!("../../assets/sw.js"),
        media_type: "text/javascript; charset=utf-8",
    },
    Asset {
        name: "mosaic.wasm",
        bytes: include_bytes!("../../assets/mosaic.wasm"),
        media_type: "application/wasm",
    },
];

/// What the page may load and run: its own files and the module, nothing from
/// elsewhere, no inline script; media from its own worker. `img-src data:` is for the
/// page's empty icon (`data:,`), which keeps browsers from asking for `/favicon.ico`.
const POLICY: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; \
     connect-src 'self'; media-src 'self'; img-src 'self' data:; style-src 'self'; \
     worker-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Each asset's ETag, in table order: a prefix of its BLAKE3 hash.
pub(crate) fn etags(assets: &[Asset]) -> Vec<String> {
    assets
        .iter()
        .map(|a| format!("\"{}\"", &mosaic_codec::Hash::of(a.bytes).to_hex()[..32]))
        .collect()
}

static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| etags(&ASSETS));

fn serve(index: usize, headers: &HeaderMap) -> Response {
    serve_asset(&ASSETS[index], &ETAGS[index], POLICY, headers)
}

/// An embedded file with its validator and the page's security headers.
pub(crate) fn serve_asset(
    asset: &Asset,
    tag: &str,
    policy: &'static str,
    headers: &HeaderMap,
) -> Response {
    let mut response = if not_modified(headers, tag) {
        not_modified_response(tag)
    } else {
        let mut r = Response::new(Body::from(asset.bytes));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.media_type),
        );
        r.headers_mut().insert(header::ETAG, value(tag));
        r
    };
    let h = response.headers_mut();
    // Revalidate every time: a stale page or worker must not outlive an upgrade.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(policy),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// `GET /s/`: the page.
pub(crate) async fn page(headers: HeaderMap) -> Response {
    serve(0, &headers)
}

/// `GET /s`: the page lives at `/s/` (its worker's scope); the fragment survives a
/// redirect.
pub(crate) async fn page_redirect() -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::PERMANENT_REDIRECT;
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static("/s/"));
    r
}

/// `GET /s/{asset}`: the page's script, style, worker and codec module.
pub(crate) async fn asset(
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    match ASSETS.iter().skip(1).position(|a| a.name == name) {
        Some(i) => Ok(serve(i + 1, &headers)),
        None => Err(AppError::NoSuchPath(format!(
            "/s/{name}: the share page has share.js, share.css, sw.js and mosaic.wasm"
        ))),
    }
}

/// `GET /s/file/…`: the page's worker answers these in the browser. One that reaches
/// the gateway means the worker is not running (a hard reload bypasses it).
pub(crate) async fn worker_file() -> AppError {
    AppError::NoSuchPath(
        "this URL is answered by the share page's service worker inside the browser, which is not running: open the share link again (a hard reload bypasses the worker)".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_module_is_a_wasm_module_and_the_page_loads_the_script() {
        assert_eq!(&ASSETS[4].bytes[..4], b"\0asm");
        let page = std::str::from_utf8(ASSETS[0].bytes).expect("utf-8");
        assert!(page.contains("src=\"share.js\""));
        assert!(
            !page.contains("<script>"),
            "no inline script: the policy forbids it"
        );
        assert_eq!(ETAGS.len(), ASSETS.len());
    }
}
