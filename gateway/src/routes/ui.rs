//! `/`: the gateway's web page. The network (storage nodes, the gateway's cache and
//! traffic), opening a share link, id or name, browsing public directories, playing
//! media, and (where the operator allows it) public uploads. Plain HTML, CSS and
//! JavaScript compiled into the binary: nothing is loaded from elsewhere. Its data
//! comes from `/api/…` (see [`super::api`]).

use std::sync::LazyLock;

use axum::{extract::Path, http::HeaderMap, response::Response};

use crate::{
    error::AppError,
    routes::share::{Asset, etags, serve_asset},
};

/// The page, its script and its style.
const ASSETS: [Asset; 3] = [
    Asset {
        name: "",
        bytes: include_bytes!("../../assets/ui.html"),
        media_type: "text/html; charset=utf-8",
    },
    Asset {
        name: "ui.js",
        bytes: include_bytes!("../../assets/ui.js"),
        media_type: "text/javascript; charset=utf-8",
    },
    Asset {
        name: "ui.css",
        bytes: include_bytes!("../../assets/ui.css"),
        media_type: "text/css; charset=utf-8",
    },
];

/// Its own files only; media and images from this gateway (or the page's own blobs);
/// the share page's codec module (`/s/mosaic.wasm`) for private uploads.
const POLICY: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
     connect-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| etags(&ASSETS));

/// `GET /`.
pub(crate) async fn page(headers: HeaderMap) -> Response {
    serve_asset(&ASSETS[0], &ETAGS[0], POLICY, &headers)
}

/// `GET /ui/{asset}`.
pub(crate) async fn asset(
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    match ASSETS.iter().skip(1).position(|a| a.name == name) {
        Some(i) => Ok(serve_asset(&ASSETS[i + 1], &ETAGS[i + 1], POLICY, &headers)),
        None => Err(AppError::NoSuchPath(format!(
            "/ui/{name}: the page has ui.js and ui.css"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_its_own_files_and_nothing_inline() {
        let page = std::str::from_utf8(ASSETS[0].bytes).expect("utf-8");
        assert!(page.contains("/ui/ui.js"));
        assert!(page.contains("/ui/ui.css"));
        assert!(
            !page.contains("<script>"),
            "no inline script: the policy forbids it"
        );
        assert!(
            !page.contains("<style"),
            "no inline style: the policy forbids it"
        );
        assert!(!page.contains("http://") && !page.contains("https://"));
    }
}
