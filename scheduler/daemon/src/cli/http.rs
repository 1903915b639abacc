//! The client commands' HTTP client: one request at a time to a Drover's
//! REST API, over hyper.
//!
//! A 2xx answer gives its body. Anything else is an error that reads like
//! the API: the `message` of Chronos' `{"status", "message"}` or Marathon's
//! `{"message", "details"}` (with the details, one per line), or the status
//! line and the start of the body when the answer is not Drover's. A server
//! that cannot be reached is an error naming the URL.
//!
//! [`Client::events`] opens the `/v2/events` stream, read event by event
//! ([`EventStream`], decoded by [`super::sse`]); only its opening is bounded
//! in time.

use std::collections::VecDeque;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use bytes::Bytes;
use http::{Method, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as Hyper;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::sse::{SseDecoder, SseEvent};

/// How long a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a whole request may take. Drover answers writes once they are
/// stored (or with 503 when the store is unreachable), so this only bounds a
/// server that hangs.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How much of a body that is not Drover's JSON an error quotes.
const QUOTED_BODY_CHARS: usize = 200;

/// A client of one Drover API.
pub(crate) struct Client {
    /// `http://host:port`, plus any path prefix, without a trailing `/`.
    base: String,
    http: Hyper<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// `Authorization` of every request (`--token`), marked sensitive.
    authorization: Option<http::HeaderValue>,
}

/// The API's base URL from `--url`: `http://` is assumed when no scheme is
/// given; the URL may carry a path prefix (a proxy), not a query.
pub(crate) fn base_url(url: &str) -> anyhow::Result<String> {
    let trimmed = url.trim();
    let with_scheme =
        if trimmed.contains("://") { trimmed.to_owned() } else { format!("http://{trimmed}") };
    let uri: http::Uri = with_scheme
        .parse()
        .map_err(|_| anyhow!("'{url}' is not a URL such as http://127.0.0.1:8080"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => bail!("'{url}' is not an http:// or https:// URL"),
    }
    if uri.host().is_none_or(str::is_empty) || uri.query().is_some() {
        bail!("'{url}' is not a URL such as http://127.0.0.1:8080");
    }
    Ok(with_scheme.trim_end_matches('/').to_owned())
}

impl Client {
    /// A client of the API at `url` (see [`base_url`]), without
    /// credentials.
    #[cfg(test)]
    pub(crate) fn new(url: &str) -> anyhow::Result<Client> {
        Client::build(url, None, None, None)
    }

    /// A client as the common options say: `--url`, `--token`, and for
    /// https `--ca-file` and `--client-cert-file`/`--client-key-file`.
    pub(crate) fn from_args(args: &super::ClientArgs) -> anyhow::Result<Client> {
        let read = |path: &std::path::Path, flag: &str| {
            std::fs::read(path).with_context(|| format!("reading --{flag} {}", path.display()))
        };
        let ca = args.ca_file.as_deref().map(|p| read(p, "ca-file")).transpose()?;
        let identity = match (&args.client_cert_file, &args.client_key_file) {
            (Some(c), Some(k)) => Some((read(c, "client-cert-file")?, read(k, "client-key-file")?)),
            (None, None) => None,
            _ => bail!("--client-cert-file and --client-key-file go together"),
        };
        Client::build(&args.url, args.token.as_ref().map(|t| t.0.as_str()), ca, identity)
    }

    fn build(
        url: &str,
        token: Option<&str>,
        ca: Option<Vec<u8>>,
        identity: Option<(Vec<u8>, Vec<u8>)>,
    ) -> anyhow::Result<Client> {
        let base = base_url(url)?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.enforce_http(false);
        let tls = sched_api::tls::client_config(
            ca.as_deref(),
            identity.as_ref().map(|(c, k)| (&c[..], &k[..])),
        )
        .map_err(|e| anyhow!("--ca-file/--client-cert-file: {e}"))?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let http = Hyper::builder(TokioExecutor::new()).build(connector);
        let authorization = match token {
            Some(token) => {
                let mut v = http::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
                    .map_err(|_| anyhow!("--token is not a valid header value"))?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        Ok(Client { base, http, authorization })
    }

    /// `GET path`: the body of a 2xx answer.
    pub(crate) async fn get(&self, path: &str) -> anyhow::Result<Bytes> {
        self.send(Method::GET, path, None).await
    }

    /// `GET path`, decoded from JSON.
    pub(crate) async fn get_json<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let body = self.get(path).await?;
        serde_json::from_slice(&body)
            .with_context(|| format!("unexpected answer from {}{path}", self.base))
    }

    /// One request with an optional JSON body: the body of a 2xx answer,
    /// otherwise the error the API (or the network) gave.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> anyhow::Result<Bytes> {
        let (status, body) = self.exchange(method, path, body).await?;
        if status.is_success() { Ok(body) } else { Err(anyhow!(api_error(status, &body))) }
    }

    /// One request with an optional JSON body: the answer's status and
    /// body, whatever the status; an error only when there was no answer.
    pub(crate) async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let url = format!("{}{path}", self.base);
        let mut request = http::Request::builder()
            .method(method.clone())
            .uri(&url)
            .header(header::ACCEPT, "application/json");
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        if let Some(a) = &self.authorization {
            request = request.header(header::AUTHORIZATION, a.clone());
        }
        let request = request
            .body(Full::new(body.unwrap_or_default()))
            .with_context(|| format!("'{url}' is not a valid request URL"))?;
        let exchange = async {
            let response =
                self.http.request(request).await.map_err(|e| {
                    anyhow!("cannot reach Drover at {}: {}", self.base, root_cause(&e))
                })?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| anyhow!("reading the answer of {method} {url}: {}", root_cause(&e)))?
                .to_bytes();
            Ok::<_, anyhow::Error>((status, body))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| anyhow!("{method} {url}: no answer within {REQUEST_TIMEOUT:?}"))?
    }

    /// Opens `GET /v2/events` (only the given event types, or all when
    /// none is given). The subscription exists once this returns: Drover
    /// subscribes a client before it answers.
    pub(crate) async fn events(&self, types: &[&str]) -> anyhow::Result<EventStream> {
        let query: Vec<String> =
            types.iter().map(|t| format!("event_type={}", encode(t))).collect();
        let path = if query.is_empty() {
            EVENTS.to_owned()
        } else {
            format!("{EVENTS}?{}", query.join("&"))
        };
        let url = format!("{}{path}", self.base);
        let mut request = http::Request::builder()
            .method(Method::GET)
            .uri(&url)
            .header(header::ACCEPT, "text/event-stream");
        if let Some(a) = &self.authorization {
            request = request.header(header::AUTHORIZATION, a.clone());
        }
        let request = request
            .body(Full::new(Bytes::new()))
            .with_context(|| format!("'{url}' is not a valid request URL"))?;
        let response = tokio::time::timeout(REQUEST_TIMEOUT, self.http.request(request))
            .await
            .map_err(|_| anyhow!("GET {url}: no answer within {REQUEST_TIMEOUT:?}"))?
            .map_err(|e| anyhow!("cannot reach Drover at {}: {}", self.base, root_cause(&e)))?;
        let status = response.status();
        if !status.is_success() {
            let body = tokio::time::timeout(REQUEST_TIMEOUT, response.into_body().collect())
                .await
                .ok()
                .and_then(Result::ok)
                .map(http_body_util::Collected::to_bytes)
                .unwrap_or_default();
            bail!(api_error(status, &body));
        }
        Ok(EventStream {
            body: response.into_body(),
            decoder: SseDecoder::default(),
            ready: VecDeque::new(),
        })
    }
}

/// The event stream's path.
const EVENTS: &str = "/v2/events";

/// An open `/v2/events` stream.
pub(crate) struct EventStream {
    body: hyper::body::Incoming,
    decoder: SseDecoder,
    ready: VecDeque<SseEvent>,
}

impl EventStream {
    /// The next event; `None` when the server ended the stream.
    pub(crate) async fn next(&mut self) -> Option<anyhow::Result<SseEvent>> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(Ok(event));
            }
            let frame = match self.body.frame().await? {
                Ok(frame) => frame,
                Err(e) => return Some(Err(anyhow!("the event stream broke: {}", root_cause(&e)))),
            };
            if let Ok(data) = frame.into_data() {
                match self.decoder.push(&data) {
                    Ok(events) => self.ready.extend(events),
                    Err(e) => return Some(Err(anyhow!(e))),
                }
            }
        }
    }
}

/// The innermost cause of an error, which is the one that says what
/// happened ("Connection refused (os error 111)"), not which layer saw it.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// What an error answer says, as one message: the API's `message` (with a
/// Marathon `details` list, one `path: errors` per line, or a `details`
/// text after a colon), else the status and the start of the body.
pub(crate) fn api_error(status: StatusCode, body: &[u8]) -> String {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let message = json.as_ref().and_then(|j| j["message"].as_str()).filter(|m| !m.is_empty());
    let Some(message) = message else {
        let reason = status.canonical_reason().unwrap_or("");
        let text = String::from_utf8_lossy(body);
        let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let quoted: String = text.chars().take(QUOTED_BODY_CHARS).collect();
        let more = if quoted.len() < text.len() { "..." } else { "" };
        return if quoted.is_empty() {
            format!("the API answered {} {reason}", status.as_u16())
        } else {
            format!("the API answered {} {reason}: {quoted}{more}", status.as_u16())
        };
    };
    let mut out = message.to_owned();
    match json.as_ref().map(|j| &j["details"]) {
        Some(Value::String(detail)) if !detail.is_empty() => {
            out.push_str(": ");
            out.push_str(detail);
        }
        Some(Value::Array(details)) => {
            for d in details {
                let path = d["path"].as_str().unwrap_or("/");
                let errors: Vec<String> = match &d["errors"] {
                    Value::Array(es) => es
                        .iter()
                        .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_owned))
                        .collect(),
                    other => vec![other.to_string()],
                };
                out.push_str(&format!("\n  {path}: {}", errors.join("; ")));
            }
        }
        _ => {}
    }
    out
}

/// `text` as one URL path segment or query value: everything but RFC 3986's
/// unreserved characters percent-encoded.
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::response::IntoResponse;
    use axum::routing::get;
    use expect_test::expect;

    #[test]
    fn api_errors_read_like_the_api() {
        let chronos = br#"{"status":"Not Found","message":"Job 'nope' does not exist"}"#;
        let marathon = br#"{"message":"Object is not valid","details":[
            {"path":"/cpus","errors":["must be positive"]},
            {"path":"/id","errors":["is required","must be a path"]}]}"#;
        let malformed = br#"{"message":"Invalid JSON","details":"expected value at line 1"}"#;
        let proxy = b"<html>\n<body>Bad   gateway</body></html>";
        let got = [
            api_error(StatusCode::NOT_FOUND, chronos),
            api_error(StatusCode::UNPROCESSABLE_ENTITY, marathon),
            api_error(StatusCode::BAD_REQUEST, malformed),
            api_error(StatusCode::BAD_GATEWAY, proxy),
            api_error(StatusCode::NOT_FOUND, b""),
        ];
        expect![[r#"
            Job 'nope' does not exist
            Object is not valid
              /cpus: must be positive
              /id: is required; must be a path
            Invalid JSON: expected value at line 1
            the API answered 502 Bad Gateway: <html> <body>Bad gateway</body></html>
            the API answered 404 Not Found"#]]
        .assert_eq(&got.join("\n"));
    }

    #[test]
    fn urls_default_to_http_and_refuse_what_cannot_work() {
        let got: Vec<String> = [
            "http://127.0.0.1:8080/",
            "drover.example:8080",
            "http://proxy.example/drover",
            "https://drover.example",
            "ftp://drover.example",
            "http://drover.example/?a=b",
            "http://",
        ]
        .iter()
        .map(|u| base_url(u).unwrap_or_else(|e| format!("error: {e}")))
        .collect();
        expect![[r#"
            http://127.0.0.1:8080
            http://drover.example:8080
            http://proxy.example/drover
            https://drover.example
            error: 'ftp://drover.example' is not an http:// or https:// URL
            error: 'http://drover.example/?a=b' is not a URL such as http://127.0.0.1:8080
            error: 'http://' is not a URL such as http://127.0.0.1:8080"#]]
        .assert_eq(&got.join("\n"));
    }

    #[test]
    fn path_segments_and_query_values_are_percent_encoded() {
        assert_eq!(encode("nightly-report_2.v~1"), "nightly-report_2.v~1");
        assert_eq!(encode("a b/c?d&e=%"), "a%20b%2Fc%3Fd%26e%3D%25");
        assert_eq!(encode("ü"), "%C3%BC");
    }

    #[tokio::test]
    async fn answers_from_a_server_become_bodies_or_its_error_messages() {
        let app = Router::new().route("/ok", get(|| async { r#"{"fine":true}"# })).route(
            "/missing",
            get(|| async {
                let body = r#"{"status":"Not Found","message":"Job 'x' does not exist"}"#;
                (StatusCode::NOT_FOUND, body).into_response()
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let client = Client::new(&format!("http://{addr}")).unwrap();
        let ok: Value = client.get_json("/ok").await.unwrap();
        assert_eq!(ok["fine"], true);
        let missing = client.get("/missing").await.unwrap_err();
        assert_eq!(format!("{missing:#}"), "Job 'x' does not exist");
        server.abort();
    }

    #[tokio::test]
    async fn a_server_that_is_not_there_is_named() {
        // A port that was free a moment ago: nothing listens on it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let client = Client::new(&format!("127.0.0.1:{port}")).unwrap();
        let e = client.get("/v1/scheduler/jobs").await.unwrap_err();
        let text = format!("{e:#}");
        assert!(
            text.starts_with(&format!("cannot reach Drover at http://127.0.0.1:{port}: ")),
            "{text}"
        );
        assert!(text.contains("refused"), "{text}");
    }
}
