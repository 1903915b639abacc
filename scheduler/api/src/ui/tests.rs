//! The UI's files through the whole API router: paths, content types,
//! caching, security headers, and serving on a standby.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use tokio::sync::{mpsc, watch};
use tower::ServiceExt;

use super::ASSETS;
use crate::tests::harness;
use crate::{ApiState, EventBus, LeaderState, Leadership, router};

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: header::HeaderName) -> &str {
        self.headers.get(&name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

async fn get(s: &ApiState, uri: &str, headers: &[(header::HeaderName, &str)]) -> Answer {
    request(s, Method::GET, uri, headers).await
}

async fn request(
    s: &ApiState,
    method: Method,
    uri: &str,
    headers: &[(header::HeaderName, &str)],
) -> Answer {
    let mut req = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        req = req.header(name, *value);
    }
    let resp = router(s.clone()).oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes().to_vec();
    Answer { status, headers, body }
}

fn state() -> ApiState {
    harness(EventBus::default()).state
}

#[tokio::test]
async fn the_page_is_served_at_ui_with_its_security_headers() {
    let s = state();
    let r = get(&s, "/ui/", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header(header::CONTENT_TYPE), "text/html; charset=utf-8");
    assert_eq!(r.header(header::CACHE_CONTROL), "no-cache");
    assert_eq!(r.header(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    let csp = r.header(header::CONTENT_SECURITY_POLICY);
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "{csp}");
    assert!(r.header(header::ETAG).starts_with('"'));
    let html = String::from_utf8(r.body).unwrap();
    assert!(html.contains(r#"<script type="module" src="app.js"></script>"#), "{html}");
}

#[tokio::test]
async fn root_and_ui_redirect_to_the_page() {
    let s = state();
    for path in ["/", "/ui"] {
        let r = get(&s, path, &[]).await;
        assert_eq!(r.status, StatusCode::TEMPORARY_REDIRECT, "{path}");
        assert_eq!(r.header(header::LOCATION), "/ui/", "{path}");
    }
}

#[tokio::test]
async fn every_file_answers_with_its_content_type() {
    let s = state();
    let want = [
        ("index.html", "text/html; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ];
    assert_eq!(ASSETS.len(), want.len());
    for (name, content_type) in want {
        let r = get(&s, &format!("/ui/{name}"), &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{name}");
        assert_eq!(r.header(header::CONTENT_TYPE), content_type, "{name}");
        assert_eq!(r.header(header::CACHE_CONTROL), "no-cache", "{name}");
        assert!(!r.body.is_empty(), "{name}");
    }
}

#[tokio::test]
async fn an_unknown_file_is_404_in_marathons_shape() {
    let s = state();
    for path in ["/ui/nope.js", "/ui/app.js/x", "/ui/../Cargo.toml", "/ui/%2e%2e/lib.rs"] {
        let r = get(&s, path, &[]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert!(body["message"].is_string(), "{path}: {body}");
    }
}

#[tokio::test]
async fn an_unchanged_file_is_answered_304_without_a_body() {
    let s = state();
    let first = get(&s, "/ui/app.js", &[]).await;
    let etag = first.header(header::ETAG).to_owned();
    let again = get(&s, "/ui/app.js", &[(header::IF_NONE_MATCH, &etag)]).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    assert_eq!(again.header(header::ETAG), etag);
    let listed = format!("\"0000000000000000\", W/{etag}");
    let weak = get(&s, "/ui/app.js", &[(header::IF_NONE_MATCH, &listed)]).await;
    assert_eq!(weak.status, StatusCode::NOT_MODIFIED);
    let other = get(&s, "/ui/app.js", &[(header::IF_NONE_MATCH, "\"0000000000000000\"")]).await;
    assert_eq!(other.status, StatusCode::OK);
    // Each file has its own tag.
    let css = get(&s, "/ui/style.css", &[]).await;
    assert_ne!(css.header(header::ETAG), etag);
}

#[tokio::test]
async fn head_answers_the_headers_only() {
    let s = state();
    let r = request(&s, Method::HEAD, "/ui/style.css", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header(header::CONTENT_TYPE), "text/css; charset=utf-8");
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn a_standby_serves_the_ui_itself() {
    // No leader is known: the API answers 503, the UI's files are still served.
    let (_tx, rx) = watch::channel(LeaderState::Standby { leader: None });
    let (abdicate, _) = mpsc::channel(1);
    let s = state().with_leadership(Leadership::new(rx, abdicate, "127.0.0.1:9".into()));
    assert_eq!(get(&s, "/v2/apps", &[]).await.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(get(&s, "/ui/", &[]).await.status, StatusCode::OK);
    assert_eq!(get(&s, "/ui/app.js", &[]).await.status, StatusCode::OK);
    assert_eq!(get(&s, "/", &[]).await.status, StatusCode::TEMPORARY_REDIRECT);
}

/// The page loads nothing from elsewhere (no fonts, CDNs or trackers): its
/// only absolute URL is the SVG namespace, which is a name, not a request.
#[test]
fn the_files_reference_no_other_host() {
    for asset in ASSETS {
        let text = String::from_utf8_lossy(asset.body);
        let urls: Vec<&str> = text
            .match_indices("//")
            .filter(|(i, _)| text[..*i].ends_with("http:") || text[..*i].ends_with("https:"))
            .map(|(i, _)| text[i..].split(['\'', '"', ' ', ')']).next().unwrap_or(""))
            .filter(|url| *url != "//www.w3.org/2000/svg")
            .collect();
        assert!(urls.is_empty(), "{} refers to {urls:?}", asset.name);
    }
}

/// Every file the page names is served.
#[test]
fn the_page_names_only_files_that_exist() {
    let html = String::from_utf8_lossy(ASSETS[0].body);
    let mut named = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for (i, _) in html.match_indices(attr) {
            let value = html[i + attr.len()..].split('"').next().unwrap_or("");
            if !value.starts_with('#') {
                named.push(value.to_owned());
            }
        }
    }
    assert!(named.len() >= 3, "{named:?}");
    for name in named {
        assert!(
            ASSETS.iter().any(|a| a.name == name),
            "index.html names {name}, which is not served"
        );
    }
}
