//! Socket-free tests of the REST API against the real scheduling core,
//! driven by a minimal stand-in for the daemon loop (persists succeed at
//! once; no Mesos).

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::Request;
use drover_time::{Clock, ManualClock, Timestamp};
use http_body_util::BodyExt;
use sched_core::app::Resources;
use sched_core::instance::TaskState;
use sched_core::offer::Offer;
use sched_core::ports::PortRanges;
use sched_core::scheduler::{CoreConfig, Effect, Scheduler, StatusUpdate, StoredState};
use serde_json::Value;
use tower::ServiceExt;

use super::*;

pub(super) const T0: Timestamp = Timestamp::from_secs(1_700_000_000);

/// Inputs the tests feed the fake daemon besides commands.
#[derive(Debug)]
pub(super) enum Input {
    /// SUBSCRIBED from the master.
    Subscribed,
    /// Offers.
    Offers(Vec<Offer>),
    /// A status update.
    Status(StatusUpdate),
    /// The core's timer (schedules come due, retries, periodic checks).
    Tick,
}

/// The API over the real core, behind a fake daemon loop that performs
/// persists at once, drops Mesos calls, and publishes notifications on the
/// event bus as the real daemon does. The loop and the API share `clock`
/// (it starts at `T0` and moves only when a test moves it).
pub(super) struct Harness {
    pub(super) state: ApiState,
    pub(super) inputs: mpsc::Sender<Input>,
    pub(super) clock: ManualClock,
}

pub(super) fn harness(events: EventBus) -> Harness {
    let (cmd_tx, mut cmd_rx) = mpsc::channel::<CommandRequest>(16);
    let (in_tx, mut in_rx) = mpsc::channel::<Input>(16);
    let mut core = Scheduler::new(CoreConfig::default(), StoredState::default(), 1, T0);
    let (snap_tx, snap_rx) = watch::channel(Arc::new(core.snapshot()));
    let bus = events.clone();
    let clock = ManualClock::new(T0);
    let loop_clock = clock.clone();
    tokio::spawn(async move {
        let mut replies = BTreeMap::new();
        let mut next = 1;
        loop {
            tokio::select! {
                Some(req) = cmd_rx.recv() => {
                    replies.insert(next, req.reply);
                    core.handle_command(next, req.command, loop_clock.now());
                    next += 1;
                }
                Some(input) = in_rx.recv() => match input {
                    Input::Subscribed => core.handle_subscribed("fw-1".into(), loop_clock.now()),
                    Input::Offers(offers) => core.handle_offers(offers, loop_clock.now()),
                    Input::Status(status) => core.handle_status(status, loop_clock.now()),
                    Input::Tick => core.handle_timeout(loop_clock.now()),
                },
                else => return,
            }
            let now = loop_clock.now();
            while let Some(e) = core.poll_effect() {
                match e {
                    Effect::Persist { token, .. } => core.handle_persisted(token, Ok(()), now),
                    Effect::Reply { request, result } => {
                        snap_tx.send_replace(Arc::new(core.snapshot()));
                        if let Some(tx) = replies.remove(&request) {
                            let _ = tx.send(result);
                        }
                    }
                    Effect::Notify(n) => bus.publish_notification(&n, now),
                    Effect::Call(_) | Effect::Reload { .. } => {}
                }
            }
            snap_tx.send_replace(Arc::new(core.snapshot()));
        }
    });
    let state = ApiState::new(
        snap_rx,
        cmd_tx,
        Arc::new(ServerInfo {
            leader: "127.0.0.1:8080".into(),
            master: "http://127.0.0.1:5050".into(),
            framework_name: "drover".into(),
            failover_timeout_secs: 604_800.0,
            decline_offer_duration_ms: 120_000,
            reconciliation_interval_ms: 600_000,
            min_revive_offers_interval_ms: 5000,
            executor: "/usr/bin/drover-executor".into(),
            mesos_user: "root".into(),
            http_port: 8080,
        }),
        Arc::new(clock.clone()),
        events,
    );
    Harness { state, inputs: in_tx, clock }
}

fn state() -> ApiState {
    harness(EventBus::default()).state
}

/// An offer of agent-1 with room for many small tasks.
pub(super) fn offer(id: &str, mem: f64) -> Offer {
    Offer::new(id, "agent-1", "10.0.0.7").with_resources(
        "*",
        Resources { cpus: 8.0, mem, disk: 1000.0, gpus: 0 },
        PortRanges::new([(31000, 32000)]),
    )
}

/// A status update from agent-1.
pub(super) fn status(task_id: &str, state: TaskState, healthy: Option<bool>) -> StatusUpdate {
    StatusUpdate {
        task_id: task_id.to_owned(),
        state,
        agent_id: Some("agent-1".into()),
        message: None,
        reason: None,
        uuid: None,
        healthy,
    }
}

/// The ids of the active tasks, in instance order.
pub(super) fn active_tasks(s: &ApiState) -> Vec<String> {
    s.snap().instances.values().filter_map(|i| i.active_task()).map(|t| t.id.to_string()).collect()
}

/// Waits (up to 5 s) until the published snapshot satisfies `cond`.
pub(super) async fn until(s: &ApiState, what: &str, cond: impl Fn(&Snapshot) -> bool) {
    for _ in 0..500 {
        if cond(&s.snap()) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

pub(super) struct Resp {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) body: Value,
    pub(super) text: String,
}

pub(super) async fn call(s: &ApiState, method: &str, uri: &str, body: &str) -> Resp {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    let resp = router(s.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Resp { status, headers, body, text }
}

#[tokio::test]
async fn post_app_answers_201_with_marathon_headers_and_body() {
    let s = state();
    let r =
        call(&s, "POST", "/v2/apps", r#"{"id":"sleepy","cmd":"sleep 600","instances":3}"#).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.headers["location"], "/v2/apps/sleepy");
    let dep = r.headers["marathon-deployment-id"].to_str().unwrap().to_owned();
    assert_eq!(r.body["id"], "/sleepy");
    assert_eq!(r.body["instances"], 3);
    assert_eq!(r.body["cpus"], 1.0);
    assert_eq!(r.body["mem"], 128.0);
    assert_eq!(r.body["tasksStaged"], 0);
    assert_eq!(r.body["tasksRunning"], 0);
    assert_eq!(r.body["deployments"], json!([{"id": dep}]));
    assert_eq!(r.body["version"], "2023-11-14T22:13:20.000Z");
    assert!(r.body.get("tasks").is_none());
}

#[tokio::test]
async fn get_app_shows_counts_and_tasks_and_404s_unknown_apps() {
    let s = state();
    call(&s, "POST", "/v2/apps", r#"{"id":"/a/b","cmd":"sleep 1","env":{"X":"1"}}"#).await;
    let r = call(&s, "GET", "/v2/apps/a/b", "").await;
    assert_eq!(r.status, StatusCode::OK);
    let app = &r.body["app"];
    assert_eq!(app["id"], "/a/b");
    assert_eq!(app["env"], json!({"X": "1"}));
    assert_eq!(app["tasks"], json!([]));
    assert_eq!(app["tasksRunning"], 0);
    assert_eq!(app["networks"], json!([{"mode": "host"}]));
    let r = call(&s, "GET", "/v2/apps", "").await;
    assert_eq!(r.body["apps"].as_array().unwrap().len(), 1);
    assert!(r.body["apps"][0].get("tasks").is_none());
    let r = call(&s, "GET", "/v2/apps?embed=apps.tasks", "").await;
    assert_eq!(r.body["apps"][0]["tasks"], json!([]));
    let r = call(&s, "GET", "/v2/apps/nope", "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body, json!({"message": "App '/nope' does not exist"}));
}

#[tokio::test]
async fn duplicate_post_is_409_and_changes_nothing() {
    let s = state();
    call(&s, "POST", "/v2/apps", r#"{"id":"x","cmd":"sleep 1","instances":1}"#).await;
    let r = call(&s, "POST", "/v2/apps", r#"{"id":"x","cmd":"sleep 2","instances":9}"#).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body, json!({"message": "An app with id [/x] already exists."}));
    let r = call(&s, "GET", "/v2/apps/x", "").await;
    assert_eq!(r.body["app"]["instances"], 1);
    assert_eq!(r.body["app"]["cmd"], "sleep 1");
}

#[tokio::test]
async fn malformed_json_is_400() {
    let s = state();
    for body in ["{", "not json", ""] {
        let r = call(&s, "POST", "/v2/apps", body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(r.body["message"].is_string());
    }
    assert_eq!(call(&s, "POST", "/v2/apps", "{").await.body["message"], "Invalid JSON");
}

#[tokio::test]
async fn validation_failures_are_422_with_details_and_change_nothing() {
    let s = state();
    let cases = [
        (r#"{"id":"/Bad","cmd":"x"}"#, "Invalid JSON", "/id"),
        (r#"{"id":"/ok","cmd":"x","cpus":-1}"#, "Invalid JSON", "/cpus"),
        (r#"{"id":"/ok","cmd":"x","mem":-1}"#, "Invalid JSON", "/mem"),
        (r#"{"id":"/ok","cmd":"x","disk":-1}"#, "Invalid JSON", "/disk"),
        (r#"{"id":"/ok","cmd":"x","instances":-1}"#, "Invalid JSON", "/instances"),
        (r#"{"id":"/ok","cmd":"x","args":["y"]}"#, "Object is not valid", "/"),
        (r#"{"id":"/ok/tasks","cmd":"x"}"#, "Object is not valid", "/id"),
    ];
    for (body, message, path) in cases {
        let r = call(&s, "POST", "/v2/apps", body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {}", r.text);
        assert_eq!(r.body["message"], message, "{body}");
        assert_eq!(r.body["details"][0]["path"], path, "{body}");
        assert!(r.body["details"][0]["errors"].as_array().is_some_and(|e| !e.is_empty()));
    }
    let r = call(&s, "GET", "/v2/apps", "").await;
    assert_eq!(r.body, json!({"apps": []}));
}

#[tokio::test]
async fn put_scales_partially_and_creates_when_missing() {
    let s = state();
    call(&s, "POST", "/v2/apps", r#"{"id":"web","cmd":"sleep 1","instances":1,"mem":64}"#).await;
    // Without Mesos the creation never finishes, so its deployment holds the app.
    let r = call(&s, "PUT", "/v2/apps/web", r#"{"instances":3}"#).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    let first = call(&s, "GET", "/v2/deployments", "").await.body[0]["id"].clone();
    assert_eq!(r.body["deployments"], json!([{"id": first}]));
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .starts_with("App is locked by one or more deployments.")
    );
    let r = call(&s, "PUT", "/v2/apps/web?force=true", r#"{"instances":3}"#).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body["deploymentId"].is_string());
    assert!(r.body["version"].is_string());
    assert!(r.headers.contains_key("marathon-deployment-id"));
    let app = call(&s, "GET", "/v2/apps/web", "").await.body["app"].clone();
    assert_eq!(app["instances"], 3);
    assert_eq!(app["mem"], 64.0);
    let r = call(&s, "PUT", "/v2/apps/fresh", r#"{"cmd":"sleep 1"}"#).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.headers["location"], "/v2/apps/fresh");
    let r = call(&s, "PUT", "/v2/apps/web?force=true", r#"{"instances":-2}"#).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(call(&s, "GET", "/v2/apps/web", "").await.body["app"]["instances"], 3);
}

#[tokio::test]
async fn delete_removes_the_app() {
    let s = state();
    call(&s, "POST", "/v2/apps", r#"{"id":"web","cmd":"sleep 1","instances":0}"#).await;
    let r = call(&s, "DELETE", "/v2/apps/web", "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["deploymentId"].is_string());
    assert_eq!(call(&s, "GET", "/v2/apps/web", "").await.status, StatusCode::NOT_FOUND);
    let r = call(&s, "DELETE", "/v2/apps/web", "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body, json!({"message": "App '/web' does not exist"}));
}

#[tokio::test]
async fn ping_info_tasks_and_unknown_routes() {
    let s = state();
    let r = call(&s, "GET", "/ping", "").await;
    assert_eq!((r.status, r.text.as_str()), (StatusCode::OK, "pong"));
    let r = call(&s, "GET", "/v2/info", "").await;
    assert_eq!(r.body["name"], "drover");
    assert_eq!(r.body["marathon_config"]["framework_name"], "drover");
    assert_eq!(r.body["http_config"]["http_port"], 8080);
    let r = call(&s, "GET", "/v2/tasks", "").await;
    assert_eq!(r.body, json!({"tasks": []}));
    assert_eq!(call(&s, "GET", "/v2/tasks?status=running", "").await.status, StatusCode::OK);
    assert_eq!(call(&s, "GET", "/v2/nothing", "").await.status, StatusCode::NOT_FOUND);
    assert_eq!(call(&s, "GET", "/v2/leader", "").await.body, json!({"leader": "127.0.0.1:8080"}));
    let r = call(&s, "GET", "/v2/deployments", "").await;
    assert_eq!(r.body, json!([]));
}

#[tokio::test]
async fn versions_groups_queue_and_deployment_cancel() {
    let s = state();
    call(&s, "POST", "/v2/groups", r#"{"id":"/prod","apps":[{"id":"db","cmd":"sleep 1"},{"id":"web","cmd":"sleep 1","dependencies":["db"]}]}"#).await;
    let r = call(&s, "GET", "/v2/groups", "").await;
    assert_eq!(r.body["id"], "/");
    assert_eq!(r.body["groups"][0]["id"], "/prod");
    let apps: Vec<&str> = r.body["groups"][0]["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(apps, vec!["/prod/db", "/prod/web"]);
    let deps = call(&s, "GET", "/v2/deployments", "").await.body;
    assert_eq!(deps.as_array().unwrap().len(), 1);
    assert_eq!(deps[0]["totalSteps"], 2, "db first, then web: {deps}");
    assert_eq!(deps[0]["steps"][0]["actions"][0]["app"], "/prod/db");
    let r = call(&s, "POST", "/v2/groups/prod", r#"{"apps":[]}"#).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    // Waiting instances show in the queue.
    let q = call(&s, "GET", "/v2/queue", "").await.body;
    assert_eq!(q["queue"][0]["app"]["id"], "/prod/db");
    assert_eq!(q["queue"][0]["count"], 1);
    assert!(
        q["queue"][0]["processedOffersSummary"]["rejectSummaryLastOffers"]
            .as_array()
            .unwrap()
            .len()
            >= 9
    );
    // Versions accumulate; an old one can be fetched.
    let id = deps[0]["id"].as_str().unwrap().to_owned();
    let r = call(&s, "DELETE", &format!("/v2/deployments/{id}?force=true"), "").await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    call(&s, "PUT", "/v2/apps/prod/db", r#"{"cmd":"sleep 2"}"#).await;
    let versions = call(&s, "GET", "/v2/apps/prod/db/versions", "").await.body;
    let list = versions["versions"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    let old = list[1].as_str().unwrap();
    let v = call(&s, "GET", &format!("/v2/apps/prod/db/versions/{old}"), "").await;
    assert_eq!(v.body["cmd"], "sleep 1");
    let r = call(&s, "DELETE", "/v2/deployments/nope", "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(&s, "DELETE", "/v2/groups/prod?force=true", "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(call(&s, "GET", "/v2/apps", "").await.body, json!({"apps": []}));
}

#[tokio::test]
async fn the_app_list_is_the_app_renderer_written_straight() {
    let h = harness(EventBus::default());
    let s = &h.state;
    let web = r#"{"id":"web","cmd":"sleep 600","instances":3,"portDefinitions":[{"port":0}],
        "healthChecks":[{"protocol":"COMMAND","command":{"value":"true"}}]}"#;
    assert_eq!(call(s, "POST", "/v2/apps", web).await.status, StatusCode::CREATED);
    let db = r#"{"id":"/db/main","cmd":"sleep 1","instances":0,"labels":{"tier":"db"}}"#;
    assert_eq!(call(s, "POST", "/v2/apps", db).await.status, StatusCode::CREATED);
    // Enough apps for the writer's one-pass strategy (`?id=` takes the other).
    for i in 0..70 {
        let app = format!(r#"{{"id":"/many/app-{i}","cmd":"sleep 1","instances":0}}"#);
        assert_eq!(call(s, "POST", "/v2/apps", &app).await.status, StatusCode::CREATED);
    }
    h.inputs.send(Input::Subscribed).await.unwrap();
    h.inputs.send(Input::Offers(vec![offer("o1", 4096.0)])).await.unwrap();
    until(s, "three tasks are staging", |snap| {
        snap.instances.values().filter_map(|i| i.active_task()).count() == 3
    })
    .await;
    let tasks = active_tasks(s);
    let updates = [
        status(&tasks[0], TaskState::Running, Some(true)),
        status(&tasks[1], TaskState::Running, Some(false)),
        status(&tasks[2], TaskState::Failed, None),
    ];
    for u in updates {
        h.inputs.send(Input::Status(u)).await.unwrap();
    }
    until(s, "a task failed", |snap| !snap.last_failures.is_empty()).await;
    let snap = s.snap();
    assert!(!snap.deployments.is_empty());
    for (query, tasks, failures) in [
        ("", false, false),
        ("?embed=apps.tasks", true, false),
        ("?embed=apps.tasks&embed=apps.lastTaskFailure", true, true),
        ("?embed=apps.failures&id=web", false, true),
    ] {
        let r = call(s, "GET", &format!("/v2/apps{query}"), "").await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.headers["content-type"], "application/json");
        let expected: Vec<Value> = snap
            .apps
            .values()
            .filter(|a| !query.contains("id=web") || a.id.as_str() == "/web")
            .map(|a| render::app_info(a, &snap, tasks, failures))
            .collect();
        assert_eq!(r.body, json!({"apps": expected}), "{query}");
    }
    let listed = call(s, "GET", "/v2/apps?embed=apps.tasks", "").await.body;
    let web = &listed["apps"][71];
    assert_eq!((web["id"].as_str(), web["tasksRunning"].as_u64()), (Some("/web"), Some(2)));
    assert_eq!((web["tasksHealthy"].as_u64(), web["tasksUnhealthy"].as_u64()), (Some(1), Some(1)));
    assert_eq!(web["tasks"].as_array().unwrap().len(), 2);
    // A change shows at once: cached definitions follow app versions.
    let r =
        call(s, "PUT", "/v2/apps/db/main?force=true", r#"{"instances":2,"cmd":"sleep 2"}"#).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let listed = call(s, "GET", "/v2/apps", "").await.body;
    assert_eq!(listed["apps"][0]["instances"], 2);
    assert_eq!(listed["apps"][0]["cmd"], "sleep 2");
}

mod events;
mod jobs;
mod limits;
mod metrics;

/// A method an app sub-path does not answer is 405 with `Allow` naming
/// the ones it does (RFC 9110), in Marathon's error shape.
#[tokio::test]
async fn app_sub_paths_answer_405_with_allow() {
    let s = state();
    for (method, uri, allow) in [
        ("PUT", "/v2/apps/web/restart", "POST"),
        ("GET", "/v2/apps/web/restart", "POST"),
        ("GET", "/v2/apps/web/tasks/web.1", "DELETE"),
        ("POST", "/v2/apps/web/tasks", "GET, DELETE"),
        ("DELETE", "/v2/apps/web/versions", "GET"),
        ("PATCH", "/v2/apps/web/versions/2020-01-01T00:00:00.000Z", "GET"),
        ("POST", "/v2/apps/web", "GET, PUT, PATCH, DELETE"),
    ] {
        let r = call(&s, method, uri, "{}").await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}: {}", r.text);
        assert_eq!(r.headers["allow"], allow, "{method} {uri}");
        assert_eq!(r.body["message"], "Method not allowed", "{method} {uri}");
    }
}
