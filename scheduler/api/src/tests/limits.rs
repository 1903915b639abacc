//! The limits (`crate::limits`) through the router, without sockets.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ConnectInfo;
use futures_util::{StreamExt as _, stream};

use super::*;
use crate::auth::{Principal, Role};
use crate::limits::{DEFAULT_MAX_REQUEST_BODY_BYTES, DEFAULT_RATE_LIMIT_BURST, StreamKind};

fn limited(config: LimitsConfig) -> Harness {
    let mut h = harness(EventBus::default());
    h.state = h.state.with_limits(config);
    h
}

async fn send(s: &ApiState, req: Request<Body>) -> Resp {
    let resp = router(s.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Resp { status, headers, body, text }
}

fn post(uri: &str, body: Body) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri(uri)
        .header("content-type", "application/json")
        .body(body)
        .unwrap()
}

/// An app whose JSON is `len` bytes long (at least its bare length).
fn app_of_size(id: &str, len: usize) -> String {
    let app = |padding: &str| {
        format!(r#"{{"id":"{id}","cmd":"sleep 600","labels":{{"pad":"{padding}"}}}}"#)
    };
    let bare = app("").len();
    app(&"x".repeat(len.saturating_sub(bare)))
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_in_marathons_shape() {
    let h = limited(LimitsConfig { max_request_body_bytes: 1000, ..LimitsConfig::default() });
    let big = app_of_size("big", 1001);
    let r = call(&h.state, "POST", "/v2/apps", &big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.body, json!({"message": "Request body too large: the limit is 1000 bytes"}));
    assert!(h.state.snap().apps.is_empty(), "nothing was created");
    // Up to the limit is fine.
    let fits = app_of_size("fits", 1000);
    assert_eq!((big.len(), fits.len()), (1001, 1000));
    let r = call(&h.state, "POST", "/v2/apps", &fits).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

#[tokio::test]
async fn a_chunked_body_without_length_is_cut_off_at_the_limit() {
    let h = limited(LimitsConfig { max_request_body_bytes: 4096, ..LimitsConfig::default() });
    // An endless body: only a limit that reads as it goes can answer.
    let endless = stream::repeat(()).then(|()| async {
        tokio::task::yield_now().await;
        Ok::<_, Infallible>(Bytes::from_static(&[b' '; 1000]))
    });
    let req = post("/v2/apps", Body::from_stream(endless));
    assert!(req.headers().get("content-length").is_none());
    let r = tokio::time::timeout(Duration::from_secs(10), send(&h.state, req))
        .await
        .expect("the endless body is not read to its end");
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);
    assert_eq!(r.body["message"], "Request body too large: the limit is 4096 bytes");
    // A chunked body within the limit reaches the handler.
    let chunks = ["{\"id\":\"chunked\",", "\"cmd\":\"sleep 1\"}"]
        .map(|c| Ok::<_, Infallible>(Bytes::from_static(c.as_bytes())));
    let r = send(&h.state, post("/v2/apps", Body::from_stream(stream::iter(chunks)))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

#[tokio::test]
async fn chronos_routes_answer_413_in_chronos_shape() {
    let h = limited(LimitsConfig { max_request_body_bytes: 100, ..LimitsConfig::default() });
    let r = call(&h.state, "POST", "/v1/scheduler/iso8601", &"x".repeat(101)).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"status": "Payload Too Large", "message": "Request body too large: the limit is 100 bytes"})
    );
}

#[tokio::test]
async fn the_default_limit_takes_bodies_beyond_axums_own_default() {
    let s = state();
    // Larger than axum's 2 MB default, which would answer in plain text.
    let big = app_of_size("large", 3 << 20);
    assert!(big.len() < DEFAULT_MAX_REQUEST_BODY_BYTES);
    let r = call(&s, "POST", "/v2/apps", &big).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", &r.text[..r.text.len().min(200)]);
    let too_big = "x".repeat(DEFAULT_MAX_REQUEST_BODY_BYTES + 1);
    let r = call(&s, "PUT", "/v2/groups", &too_big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.body["message"].is_string(), "{}", r.text);
}

fn nested(depth: usize) -> String {
    let mut group = json!({"id": "/g0"});
    for i in 1..depth {
        group = json!({"id": format!("/g{i}"), "groups": [group]});
    }
    group.to_string()
}

#[tokio::test]
async fn json_nested_past_the_limit_is_400_before_it_is_parsed() {
    let h = limited(LimitsConfig { max_json_depth: 8, ..LimitsConfig::default() });
    // Each level is an object and an array: depth 2n - 1.
    let r = call(&h.state, "PUT", "/v2/groups", &nested(4)).await;
    assert_ne!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let r = call(&h.state, "PUT", "/v2/groups", &nested(5)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"message": "Invalid JSON", "details": "JSON nested deeper than 8 levels"})
    );
    // Far deeper than any parser's stack would take: still a plain 400.
    let deep = format!("{}{}", "[".repeat(1 << 20), "]".repeat(1 << 20));
    let r = call(&h.state, "POST", "/v2/apps", &deep).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["details"], "JSON nested deeper than 8 levels");
    // Chronos' routes answer in Chronos' shape.
    let job = r#"{"name":"j","command":"true","schedule":"R/2030-01-01T00:00:00Z/PT1H","x":[[[[[[[[[]]]]]]]]]}"#;
    let r = call(&h.state, "POST", "/v1/scheduler/iso8601", job).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"status": "Bad Request", "message": "JSON nested deeper than 8 levels"})
    );
}

#[tokio::test]
async fn the_default_depth_admits_deep_groups_and_refuses_deeper() {
    let s = state();
    // 16 levels of groups: 31 levels of JSON.
    let r = call(&s, "PUT", "/v2/groups", &nested(16)).await;
    assert_ne!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let r = call(&s, "PUT", "/v2/groups", &nested(17)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.body["details"], "JSON nested deeper than 32 levels");
}

fn get_as(uri: &str, who: Option<&str>, from: [u8; 4]) -> Request<Body> {
    let mut req = Request::builder().uri(uri).body(Body::empty()).unwrap();
    req.extensions_mut().insert(ConnectInfo(SocketAddr::from((from, 40000))));
    if let Some(name) = who {
        req.extensions_mut().insert(Principal { name: name.into(), role: Role::ReadOnly });
    }
    req
}

#[tokio::test]
async fn a_principal_past_its_rate_gets_429_with_retry_after() {
    let h = limited(LimitsConfig {
        rate_limit_per_second: 2,
        rate_limit_burst: 3,
        ..LimitsConfig::default()
    });
    let s = &h.state;
    for i in 0..3 {
        let r = send(s, get_as("/v2/apps", Some("alice"), [10, 0, 0, 1])).await;
        assert_eq!(r.status, StatusCode::OK, "request {i}");
    }
    // From another address, still alice: refused.
    let r = send(s, get_as("/v2/apps", Some("alice"), [10, 0, 0, 2])).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert_eq!(r.headers["retry-after"], "1");
    assert_eq!(r.body, json!({"message": "Too many requests: at most 2 per second (bursts of 3)"}));
    let r = send(s, get_as("/v1/scheduler/jobs", Some("alice"), [10, 0, 0, 1])).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.body["status"], "Too Many Requests", "{}", r.text);
    // Others are not affected: another principal, anonymous callers by address.
    let r = send(s, get_as("/v2/apps", Some("bob"), [10, 0, 0, 1])).await;
    assert_eq!(r.status, StatusCode::OK);
    for _ in 0..3 {
        let r = send(s, get_as("/ping", Some("anonymous"), [10, 0, 0, 7])).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let r = send(s, get_as("/ping", Some("anonymous"), [10, 0, 0, 7])).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let r = send(s, get_as("/ping", None, [10, 0, 0, 8])).await;
    assert_eq!(r.status, StatusCode::OK);
    // Half a second later one request more is admitted.
    h.clock.advance(Duration::from_millis(500));
    let r = send(s, get_as("/v2/apps", Some("alice"), [10, 0, 0, 1])).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(s, get_as("/v2/apps", Some("alice"), [10, 0, 0, 1])).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn default_rates_are_generous_and_zero_disables() {
    let s = state();
    let burst = usize::try_from(DEFAULT_RATE_LIMIT_BURST).unwrap();
    for _ in 0..burst {
        assert_eq!(call(&s, "GET", "/ping", "").await.status, StatusCode::OK);
    }
    assert_eq!(call(&s, "GET", "/ping", "").await.status, StatusCode::TOO_MANY_REQUESTS);
    let h = limited(LimitsConfig { rate_limit_per_second: 0, ..LimitsConfig::default() });
    for _ in 0..burst * 2 {
        assert_eq!(call(&h.state, "GET", "/ping", "").await.status, StatusCode::OK);
    }
}

fn events_as(who: &str) -> Request<Body> {
    let mut req = get_as("/v2/events", Some(who), [10, 0, 0, 1]);
    req.headers_mut().insert("accept", HeaderValue::from_static("text/event-stream"));
    req
}

#[tokio::test]
async fn event_streams_past_the_limit_get_429_until_one_ends() {
    let h = limited(LimitsConfig { max_event_streams_per_principal: 2, ..LimitsConfig::default() });
    let s = &h.state;
    let alice = crate::limits::Caller::Principal("alice".into());
    let first = router(s.clone()).oneshot(events_as("alice")).await.unwrap();
    let second = router(s.clone()).oneshot(events_as("alice")).await.unwrap();
    assert_eq!((first.status(), second.status()), (StatusCode::OK, StatusCode::OK));
    assert_eq!(s.limits.open_streams(StreamKind::Events, &alice), 2);
    let r = send(s, events_as("alice")).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert_eq!(r.body, json!({"message": "Too many concurrent streams: at most 2 per principal"}));
    // Someone else may still listen.
    let bob = router(s.clone()).oneshot(events_as("bob")).await.unwrap();
    assert_eq!(bob.status(), StatusCode::OK);
    // The stream's end (its body dropped) gives the slot back.
    drop(first);
    assert_eq!(s.limits.open_streams(StreamKind::Events, &alice), 1);
    let third = router(s.clone()).oneshot(events_as("alice")).await.unwrap();
    assert_eq!(third.status(), StatusCode::OK);
    drop((second, third, bob));
    assert_eq!(s.limits.open_streams(StreamKind::Events, &alice), 0);
}
