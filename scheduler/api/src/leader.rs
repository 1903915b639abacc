//! Leadership as the API sees it: a standby forwards every request to the
//! leader (Marathon's proxying, with `X-Marathon-Leader` and
//! `X-Marathon-Via`; Chronos' `/v1` routes the same way, as Chronos'
//! `RedirectFilter` does), and `/v2/leader` names or deposes the leader.

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tokio::sync::{mpsc, watch};

use crate::{ApiError, ApiState};

/// Who leads, as far as this instance knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaderState {
    /// This instance leads: requests are served here.
    Leader,
    /// Another instance leads (its `host:port`), or none is known yet.
    Standby {
        /// The leader's API address.
        leader: Option<String>,
    },
}

/// The API's view of leadership, shared by every handler.
#[derive(Clone)]
pub struct Leadership {
    /// The current state, kept by the daemon.
    pub state: watch::Receiver<LeaderState>,
    /// Asks the daemon to give up leadership (`DELETE /v2/leader`).
    pub abdicate: mpsc::Sender<()>,
    /// This instance's API address (`host:port`), its identity.
    pub identity: String,
    /// `http`, or `https` when the instances serve TLS.
    scheme: &'static str,
    client: Client<HttpConnector, Body>,
    tls_client: Option<Client<HttpsConnector<HttpConnector>, Body>>,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership").field("identity", &self.identity).finish_non_exhaustive()
    }
}

/// Marathon's header naming the leader on every answer.
pub const LEADER_HEADER: &str = "X-Marathon-Leader";
/// Marathon's header naming the instances a request was forwarded by.
pub const VIA_HEADER: &str = "X-Marathon-Via";

/// Time to connect to the leader (Marathon's `leader_proxy_connection_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time for the leader's answer to start (Marathon's `leader_proxy_read_timeout`).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

impl Leadership {
    /// A leadership view fed by the daemon.
    pub fn new(
        state: watch::Receiver<LeaderState>,
        abdicate: mpsc::Sender<()>,
        identity: String,
    ) -> Self {
        let client = Client::builder(TokioExecutor::new()).build(http_connector());
        Leadership { state, abdicate, identity, scheme: "http", client, tls_client: None }
    }

    /// Forwards to the leader over TLS (`https://`), verifying its
    /// certificate with `config` (which may present a client certificate).
    pub fn with_tls(mut self, config: tokio_rustls::rustls::ClientConfig) -> Self {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_only()
            .enable_http1()
            .wrap_connector(http_connector());
        self.tls_client = Some(Client::builder(TokioExecutor::new()).build(connector));
        self.scheme = "https";
        self
    }

    fn url(&self, addr: &str) -> String {
        format!("{}://{addr}", self.scheme)
    }

    /// An instance that always leads (single node, tests).
    pub fn always(identity: String) -> Self {
        // A receiver keeps the last value after its sender is gone.
        let (_, rx) = watch::channel(LeaderState::Leader);
        let (abdicate, _) = mpsc::channel(1);
        Leadership::new(rx, abdicate, identity)
    }

    fn current(&self) -> LeaderState {
        self.state.borrow().clone()
    }

    /// The leader's API address (`host:port`), if one is known: this
    /// instance's when it leads.
    pub(crate) fn known_leader(&self) -> Option<String> {
        match self.current() {
            LeaderState::Leader => Some(self.identity.clone()),
            LeaderState::Standby { leader } => leader,
        }
    }
}

fn http_connector() -> HttpConnector {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    connector.set_nodelay(true);
    // https:// too, under hyper-rustls.
    connector.enforce_http(false);
    connector
}

/// Requests answered by every instance itself; everything else, Chronos'
/// `/v1/scheduler` included, is served by the leader.
fn local(req: &Request) -> bool {
    let path = req.uri().path();
    path == "/ping"
        || path.starts_with("/metrics")
        || (matches!(path, "/v2/leader" | "/v1/scheduler/leader")
            && req.method() == axum::http::Method::GET)
}

/// Middleware: serve here when leading, forward to the leader otherwise.
pub async fn forward_to_leader(State(s): State<ApiState>, req: Request, next: Next) -> Response {
    let l = &s.leadership;
    if local(&req) {
        return next.run(req).await;
    }
    match l.current() {
        LeaderState::Leader => {
            let mut resp = next.run(req).await;
            if let Ok(v) = HeaderValue::from_str(&l.url(&l.identity)) {
                resp.headers_mut().insert(HeaderName::from_static("x-marathon-leader"), v);
            }
            resp
        }
        LeaderState::Standby { leader: None } => {
            ApiError::Unavailable("Could not determine the current leader".into()).into_response()
        }
        LeaderState::Standby { leader: Some(leader) } => forward(l, &leader, req).await,
    }
}

async fn forward(l: &Leadership, leader: &str, req: Request) -> Response {
    if req.headers().contains_key(VIA_HEADER) {
        // Forwarded once already: the instances disagree about the leader.
        return ApiError::Status(StatusCode::BAD_GATEWAY, "Detected proxying loop.".into())
            .into_response();
    }
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let Ok(uri) = format!("{}{path}", l.url(leader)).parse::<Uri>() else {
        return ApiError::Unavailable(format!("Invalid leader address {leader}")).into_response();
    };
    parts.uri = uri;
    parts.headers.remove(header::HOST);
    if let Ok(v) = HeaderValue::from_str(&format!("1.1 {}", l.identity)) {
        parts.headers.insert(HeaderName::from_static("x-marathon-via"), v);
    }
    let outbound = Request::from_parts(parts, body);
    let answer = async {
        match &l.tls_client {
            Some(tls) => tls.request(outbound).await,
            None => l.client.request(outbound).await,
        }
    };
    match tokio::time::timeout(ANSWER_TIMEOUT, answer).await {
        Ok(Ok(resp)) => {
            let (mut parts, body) = resp.into_parts();
            if let Ok(v) = HeaderValue::from_str(&l.url(leader)) {
                parts.headers.insert(HeaderName::from_static("x-marathon-leader"), v);
            }
            Response::from_parts(parts, Body::new(body))
        }
        Ok(Err(e)) => ApiError::Unavailable(format!("Could not reach the leader at {leader}: {e}"))
            .into_response(),
        Err(_) => ApiError::Unavailable(format!("The leader at {leader} did not answer in time"))
            .into_response(),
    }
}

/// `GET /v2/leader`.
pub(crate) async fn get_leader(State(s): State<ApiState>) -> Response {
    match s.leadership.known_leader() {
        Some(l) => Json(json!({"leader": l})).into_response(),
        None => ApiError::NotFound("There is no leader".into()).into_response(),
    }
}

/// `DELETE /v2/leader` (reaches the leader: standbys forward it).
pub(crate) async fn abdicate(State(s): State<ApiState>) -> Response {
    // Admins only (the middleware checks it first; this holds whatever the
    // path looked like).
    let admin = crate::auth::current().is_some_and(|p| p.role >= crate::auth::Role::Admin);
    if !s.auth.is_open() && !admin {
        return ApiError::Status(StatusCode::FORBIDDEN, crate::auth::FORBIDDEN_MESSAGE.into())
            .into_response();
    }
    if s.leadership.abdicate.send(()).await.is_err() {
        return ApiError::Unavailable("Leadership cannot be abdicated now".into()).into_response();
    }
    Json(json!({"message": "Leadership abdicated"})).into_response()
}
