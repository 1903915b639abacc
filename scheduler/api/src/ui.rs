//! The web UI at `/ui/`: plain HTML, CSS and JavaScript from
//! `scheduler/api/ui/`, embedded in the binary (no Node toolchain at build
//! or run time). The page reads only Drover's own REST API and follows
//! `/v2/events`; it routes on the client (`#/apps`, `#/jobs`, ...).
//!
//! `/` and `/ui` redirect to `/ui/`. Every instance serves the files itself
//! (a standby does not forward them); the page's API requests are forwarded
//! like any other. Files are revalidated on each use (`no-cache` with an
//! `ETag` derived from their bytes, answered `304` when unchanged), since
//! they change only with the binary. The page is served with a
//! Content-Security-Policy that allows nothing from elsewhere and no inline
//! script or style.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::ApiError;

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    /// FNV-1a of `body`, the `ETag`.
    hash: u64,
}

const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

const fn asset(name: &'static str, content_type: &'static str, body: &'static [u8]) -> Asset {
    Asset { name, content_type, body, hash: fnv1a(body) }
}

/// The page, then the files it loads.
const ASSETS: &[Asset] = &[
    asset("index.html", "text/html; charset=utf-8", include_bytes!("../ui/index.html")),
    asset("app.js", "text/javascript; charset=utf-8", include_bytes!("../ui/app.js")),
    asset("style.css", "text/css; charset=utf-8", include_bytes!("../ui/style.css")),
    asset("favicon.svg", "image/svg+xml", include_bytes!("../ui/favicon.svg")),
];

/// Same-origin only: the API, the files above, `data:` images; no inline
/// script or style, no frames.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// The UI's routes: `/` and `/ui` redirect to `/ui/`, which serves the
/// page; `/ui/{file}` serves its files (404 for any other name).
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(to_ui))
        .route("/ui", get(to_ui))
        .route("/ui/", get(|headers: HeaderMap| async move { serve(&ASSETS[0], &headers) }))
        .route("/ui/{*file}", get(file))
}

async fn to_ui() -> Redirect {
    Redirect::temporary("/ui/")
}

async fn file(Path(name): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(asset) => serve(asset, &headers),
        None => ApiError::NotFound(format!("The UI has no file '{name}'")).into_response(),
    }
}

fn serve(asset: &Asset, request: &HeaderMap) -> Response {
    let etag = format!("\"{:016x}\"", asset.hash);
    let unchanged = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == etag);
    let mut headers = HeaderMap::new();
    let mut set = |name, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    set(header::ETAG, &etag);
    set(header::CACHE_CONTROL, "no-cache");
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    if asset.content_type.starts_with("text/html") {
        set(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY);
        set(header::REFERRER_POLICY, "same-origin");
        set(header::X_FRAME_OPTIONS, "DENY");
    }
    if unchanged {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    set(header::CONTENT_TYPE, asset.content_type);
    (headers, asset.body).into_response()
}

#[cfg(test)]
mod tests;
