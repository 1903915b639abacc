//! Authentication and authorization over every route of the router.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use super::*;
use crate::tests::harness;
use crate::{ApiState, EventBus, router};

const READER: &str = "reader:r-secret";
const DEPLOYER: &str = "deployer:d-secret";
const ADMIN: &str = "admin:a-secret";

/// The credentials file of the tests (hashed once: argon2 takes a while).
fn credentials() -> &'static str {
    static FILE: OnceLock<String> = OnceLock::new();
    FILE.get_or_init(|| {
        let mut text = String::from("# test principals\n\n");
        for (token, role) in
            [(READER, Role::ReadOnly), (DEPLOYER, Role::Deployer), (ADMIN, Role::Admin)]
        {
            let (name, secret) = token.split_once(':').unwrap();
            text.push_str(&credentials_line(name, role, secret).unwrap());
            text.push('\n');
        }
        text
    })
}

fn state() -> ApiState {
    let file = CredentialsFile::parse(credentials()).unwrap();
    harness(EventBus::default()).state.with_auth(Auth::with_credentials(file, Role::Admin))
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

/// One request through the authenticated router. Event streams are not
/// read (they do not end).
async fn request(s: &ApiState, method: &str, uri: &str, auth: Option<&str>, body: &str) -> Answer {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .header("accept", "application/json");
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let app = layer(router(s.clone()), s.auth.clone());
    let resp = app.oneshot(req.body(Body::from(body.to_owned())).unwrap()).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = if status.is_success() && uri.starts_with("/v2/events") {
        Value::Null
    } else {
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    Answer { status, headers, body }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn basic(token: &str) -> String {
    format!("Basic {}", STANDARD.encode(token))
}

fn mutating(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD")
}

/// A concrete path for a documented path (`{appId}` → `web`, ...).
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c);
        out.push_str(match &rest[open + 1..close] {
            "appId" => "web",
            "taskId" => "web.instance-1._app.1",
            "version" => "2023-11-14T22:13:20.000Z",
            "id" => "d1",
            "name" => "etl",
            "task" => "t1",
            "percentile" => "99thPercentile",
            _ => "x",
        });
        rest = &rest[(close + 1).min(rest.len())..];
    }
    out.push_str(rest);
    out
}

/// Every operation of the router's route table (`routes::table`, which
/// mounts every route of `router()`): method and concrete path.
fn every_operation() -> Vec<(String, String)> {
    let mut ops = Vec::new();
    for endpoint in crate::routes::table::table() {
        for op in &endpoint.ops {
            ops.push((op.method.to_string(), concrete(op.path)));
        }
    }
    ops
}

#[tokio::test]
async fn the_table_documents_every_method_the_router_serves() {
    // A method a route answers (as admin: anything but 405) must be an
    // operation of the table, or the walk below would miss it.
    let s = state();
    let ops: BTreeSet<(String, String)> = every_operation().into_iter().collect();
    assert!(ops.len() > 40, "too few operations: {ops:?}");
    for endpoint in crate::routes::table::table() {
        let Some(op) = endpoint.ops.first() else { panic!("{} has no operation", endpoint.route) };
        let path = concrete(op.path);
        if path == "/v2/events" {
            continue;
        }
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let r = request(&s, method, &path, Some(&basic(ADMIN)), "{}").await;
            if r.status != StatusCode::METHOD_NOT_ALLOWED {
                let served = endpoint.ops.iter().any(|o| o.method.as_str() == method);
                assert!(served, "{method} {path} is served ({}) but not in the table", r.status);
            }
        }
    }
}

#[tokio::test]
async fn every_route_is_authorized() {
    let s = state();
    for (method, path) in every_operation() {
        let (method, path) = (method.as_str(), path.as_str());
        let public = is_public(path);
        // No credentials: 401 with Marathon's body and a Basic challenge.
        let r = request(&s, method, path, None, "{}").await;
        if public {
            assert_eq!(r.status, StatusCode::OK, "{method} {path} is public");
        } else {
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {path} without credentials");
            assert_eq!(r.body["message"], UNAUTHENTICATED_MESSAGE, "{method} {path}");
            assert_eq!(r.headers["www-authenticate"], "Basic realm=\"drover\"", "{method} {path}");
        }
        // Read-only: 403 on every change, served on every read.
        let r = request(&s, method, path, Some(&bearer(READER)), "{}").await;
        if mutating(method) {
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {path} as read-only");
            assert_eq!(r.body["message"], FORBIDDEN_MESSAGE, "{method} {path}");
        } else {
            assert!(
                !matches!(r.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN),
                "{method} {path} as read-only: {}",
                r.status
            );
        }
        // Admin passes authentication and authorization everywhere.
        let r = request(&s, method, path, Some(&basic(ADMIN)), "{}").await;
        assert!(
            !matches!(r.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN),
            "{method} {path} as admin: {}",
            r.status
        );
    }
}

#[tokio::test]
async fn scripts_get_a_bearer_challenge_so_browsers_show_no_dialog() {
    let s = state();
    let req = Request::builder()
        .uri("/v2/apps")
        .header("x-requested-with", "XMLHttpRequest")
        .body(Body::empty())
        .unwrap();
    let resp = layer(router(s.clone()), s.auth.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer realm=\"drover\"");
}

#[tokio::test]
async fn the_ui_files_are_public() {
    let s = state();
    for path in ["/", "/ui", "/ui/", "/ui/app.js"] {
        let r = request(&s, "GET", path, None, "").await;
        assert!(
            !matches!(r.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN),
            "{path}: {}",
            r.status
        );
    }
}

#[tokio::test]
async fn wrong_or_unknown_credentials_are_401() {
    let s = state();
    for auth in [
        basic("admin:wrong"),
        basic("nobody:a-secret"),
        basic("admin"),
        bearer("admin:wrong"),
        bearer("a-secret"),
        "Basic !!!".to_owned(),
        "Digest admin:a-secret".to_owned(),
    ] {
        let r = request(&s, "GET", "/v2/apps", Some(&auth), "").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{auth}");
        assert_eq!(r.body["message"], UNAUTHENTICATED_MESSAGE);
    }
    // The right ones, twice (the second from the cache).
    for _ in 0..2 {
        assert_eq!(request(&s, "GET", "/v2/apps", Some(&basic(ADMIN)), "").await.status, 200);
        assert_eq!(request(&s, "GET", "/v2/apps", Some(&bearer(READER)), "").await.status, 200);
    }
}

const PRIVILEGED_APP: &str = r#"{"id":"/priv","cmd":"sleep 100","container":{"type":"DOCKER",
    "docker":{"image":"busybox","privileged":true}}}"#;
const HOST_VOLUME_APP: &str = r#"{"id":"/vol","cmd":"sleep 100","container":{"type":"DOCKER",
    "docker":{"image":"busybox"},"volumes":[{"containerPath":"/data","hostPath":"/srv","mode":"RW"}]}}"#;
const PARAMETER_APP: &str = r#"{"id":"/param","cmd":"sleep 100","container":{"type":"DOCKER",
    "docker":{"image":"busybox","parameters":[{"key":"cap-add","value":"SYS_ADMIN"}]}}}"#;
const PLAIN_APP: &str = r#"{"id":"/plain","cmd":"sleep 100","container":{"type":"DOCKER",
    "docker":{"image":"busybox"}}}"#;
const HOST_VOLUME_JOB: &str = r#"{"name":"voljob","command":"true","owner":"ops@example.com",
    "schedule":"R/2030-01-01T00:00:00Z/PT1H","container":{"type":"DOCKER","image":"busybox",
    "volumes":[{"containerPath":"/data","hostPath":"/srv","mode":"RW"}]}}"#;

#[tokio::test]
async fn privileged_containers_and_host_volumes_need_admin() {
    let s = state();
    for app in [PRIVILEGED_APP, HOST_VOLUME_APP, PARAMETER_APP] {
        let r = request(&s, "POST", "/v2/apps", Some(&bearer(DEPLOYER)), app).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{app}");
        assert_eq!(r.body["message"], FORBIDDEN_MESSAGE);
        // Nor by PUT, or inside a group.
        let r = request(&s, "PUT", "/v2/apps/x", Some(&bearer(DEPLOYER)), app).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "PUT {app}");
        let inner = app.replacen(r#""id":"/"#, r#""id":"/g/"#, 1);
        let group = format!(r#"{{"id":"/g","apps":[{inner}]}}"#);
        let r = request(&s, "PUT", "/v2/groups/g", Some(&bearer(DEPLOYER)), &group).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "group {app}");
    }
    let r = request(&s, "POST", "/v1/scheduler/iso8601", Some(&bearer(DEPLOYER)), HOST_VOLUME_JOB)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert!(s.snapshot.borrow().apps.is_empty(), "nothing was created");
    // A deployer deploys the rest; an admin everything.
    let r = request(&s, "POST", "/v2/apps", Some(&bearer(DEPLOYER)), PLAIN_APP).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    for app in [PRIVILEGED_APP, HOST_VOLUME_APP, PARAMETER_APP] {
        let r = request(&s, "POST", "/v2/apps", Some(&bearer(ADMIN)), app).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    let r =
        request(&s, "POST", "/v1/scheduler/iso8601", Some(&bearer(ADMIN)), HOST_VOLUME_JOB).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    // Only an admin deposes the leader.
    let r = request(&s, "DELETE", "/v2/leader", Some(&bearer(DEPLOYER)), "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_deployer_may_run_privileged_apps_when_configured() {
    let file = CredentialsFile::parse(credentials()).unwrap();
    let s =
        harness(EventBus::default()).state.with_auth(Auth::with_credentials(file, Role::Deployer));
    let r = request(&s, "POST", "/v2/apps", Some(&bearer(DEPLOYER)), PRIVILEGED_APP).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}

#[tokio::test]
async fn commands_outside_a_request_are_refused_unless_open() {
    let s = state();
    let command = Command::ResetDelay(sched_core::ids::AppId::parse("/web").unwrap());
    let e = s.run(command.clone()).await.unwrap_err();
    assert_eq!(e, ApiError::Status(StatusCode::FORBIDDEN, FORBIDDEN_MESSAGE.into()));
    // As a read-only principal: refused; as a deployer: it reaches the core.
    let reader = Principal { name: "reader".into(), role: Role::ReadOnly };
    assert!(
        scope(reader, s.run(command.clone()))
            .await
            .is_err_and(|e| matches!(e, ApiError::Status(StatusCode::FORBIDDEN, _)))
    );
    let deployer = Principal { name: "deployer".into(), role: Role::Deployer };
    let r = scope(deployer, s.run(command.clone())).await;
    assert!(!matches!(r, Err(ApiError::Status(StatusCode::FORBIDDEN, _))), "{r:?}");
    let open = harness(EventBus::default()).state;
    assert!(!matches!(open.run(command).await, Err(ApiError::Status(StatusCode::FORBIDDEN, _))));
}

#[tokio::test]
async fn grpc_requests_get_grpc_statuses() {
    let s = state();
    let grpc = |path: &str, auth: Option<String>| {
        let mut req = Request::builder()
            .method("POST")
            .uri(path.to_owned())
            .header("content-type", "application/grpc");
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let app = layer(router(s.clone()), s.auth.clone());
        async move { app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap() }
    };
    let r = grpc("/drover.v1.Drover/ListApps", None).await;
    assert_eq!(r.headers()["grpc-status"], "16");
    let r = grpc("/drover.v1.Drover/CreateApp", Some(bearer(READER))).await;
    assert_eq!(r.headers()["grpc-status"], "7");
    // Reads pass for read-only principals (on to the REST router here).
    let r = grpc("/drover.v1.Drover/ListApps", Some(bearer(READER))).await;
    assert!(r.headers().get("grpc-status").is_none());
}

#[test]
fn request_roles() {
    use axum::http::Method;
    assert_eq!(required_role(&Method::GET, "/v2/apps", false), Role::ReadOnly);
    assert_eq!(required_role(&Method::HEAD, "/v2/apps", false), Role::ReadOnly);
    assert_eq!(required_role(&Method::POST, "/v2/apps", false), Role::Deployer);
    assert_eq!(required_role(&Method::DELETE, "/v2/leader", false), Role::Admin);
    assert_eq!(required_role(&Method::POST, "/drover.v1.Drover/Watch", true), Role::ReadOnly);
    assert_eq!(required_role(&Method::POST, "/drover.v1.Drover/DeleteApp", true), Role::Deployer);
    assert_eq!(required_role(&Method::POST, "/other.Svc/ListApps", true), Role::Deployer);
}

#[test]
fn credentials_files_are_checked_line_by_line() {
    let good = credentials();
    let file = CredentialsFile::parse(good).unwrap();
    assert_eq!(file.len(), 3);
    assert!(file.contains("admin"));
    // Debug shows names and roles, never hashes.
    let debug = format!("{file:?}");
    assert!(debug.contains("admin") && !debug.contains("argon2"), "{debug}");
    let hash = good.lines().nth(2).unwrap().splitn(3, ':').nth(2).unwrap();
    let cases = [
        ("nocolons\n", 1, "expected"),
        (&format!("# c\nbad name:admin:{hash}\n"), 2, "name"),
        (&format!("a:root:{hash}\n"), 1, "unknown role"),
        ("a:admin:plaintext\n", 1, "not a PHC string"),
        (
            "a:admin:$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E\n",
            1,
            "not argon2id",
        ),
        (&format!("a:admin:{hash}\n\na:deployer:{hash}\n"), 3, "twice"),
    ];
    for (text, line, what) in cases {
        let e = CredentialsFile::parse(text).unwrap_err();
        let message = e.to_string();
        assert!(message.starts_with(&format!("line {line}:")), "{message}");
        assert!(message.contains(what), "{message}");
        assert!(!message.contains("$argon2"), "{message}");
    }
}

#[test]
fn generated_secrets_are_long_and_have_no_colon() {
    let a = generate_secret();
    assert!(a.len() >= 43 && !a.contains(':'), "{a}");
    assert_ne!(a, generate_secret());
    let auth = Auth::open();
    assert!(auth.is_open());
    assert!(format!("{:?}", Arc::new(auth)).contains("open"));
}

#[tokio::test]
async fn only_admins_depose_the_leader_whatever_the_path_looked_like() {
    // The handler checks too, beside the middleware's check of the path.
    let s = state();
    let deployer = Principal { name: "deployer".into(), role: Role::Deployer };
    let req = Request::builder().method("DELETE").uri("/v2/leader").body(Body::empty()).unwrap();
    let resp = scope(deployer, router(s.clone()).oneshot(req)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let admin = Principal { name: "admin".into(), role: Role::Admin };
    let req = Request::builder().method("DELETE").uri("/v2/leader").body(Body::empty()).unwrap();
    let resp = scope(admin, router(s).oneshot(req)).await.unwrap();
    assert_ne!(resp.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn password_guessing_is_throttled_before_argon2_but_known_callers_are_not() {
    let h = harness(EventBus::default());
    let file = CredentialsFile::parse(credentials()).unwrap();
    let clock: Arc<dyn drover_time::Clock> = Arc::new(h.clock.clone());
    let s = h.state.with_auth(Auth::with_credentials(file, Role::Admin).limit_attempts(1, clock));
    // A good login first: cached afterwards, so never throttled.
    assert_eq!(request(&s, "GET", "/v2/apps", Some(&basic(ADMIN)), "").await.status, 200);
    // One attempt per second, bursts of two (the good login took one).
    let r = request(&s, "GET", "/v2/apps", Some(&basic("admin:guess-1")), "").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = request(&s, "GET", "/v2/apps", Some(&basic("nobody:guess-2")), "").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{:?}", r.body);
    assert_eq!(r.headers["retry-after"], "1");
    let message = r.body["message"].as_str().unwrap_or("");
    assert!(
        message.starts_with("Too many authentication attempts: at most 1 per second"),
        "{message}"
    );
    // gRPC callers get RESOURCE_EXHAUSTED.
    let req = Request::builder()
        .method("POST")
        .uri("/drover.v1.Drover/ListApps")
        .header("content-type", "application/grpc")
        .header("authorization", basic("admin:guess-3"))
        .body(Body::empty())
        .unwrap();
    let resp = layer(router(s.clone()), s.auth.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.headers()["grpc-status"], "8");
    // The cached principal goes on; a second later guesses are admitted again.
    assert_eq!(request(&s, "GET", "/v2/apps", Some(&basic(ADMIN)), "").await.status, 200);
    h.clock.advance(std::time::Duration::from_secs(1));
    let r = request(&s, "GET", "/v2/apps", Some(&basic("admin:guess-4")), "").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}
