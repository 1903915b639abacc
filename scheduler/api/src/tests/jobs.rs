//! Chronos' `/v1/scheduler` API against the real core: every route, its
//! 204s and 404s, refusals that change nothing, runs through launch and
//! status updates, the summary and graph outputs (golden), the reserved
//! `/drover.jobs` group on the Marathon side, job metrics, and standbys
//! forwarding `/v1` to the leader.

use std::time::Duration;

use expect_test::{Expect, expect};
use sched_core::instance::TaskState;
use sched_core::job::JobName;

use super::*;
use crate::leader::{LeaderState, Leadership};

const MIN: Duration = Duration::from_secs(60);

/// `T0 + d` as Chronos' ISO 8601 start.
fn at(d: Duration) -> String {
    format_version(T0.plus(d))
}

async fn post(s: &ApiState, path: &str, body: Value) -> Resp {
    call(s, "POST", path, &body.to_string()).await
}

/// Creates a scheduled job, asserting Chronos' 204.
async fn scheduled(s: &ApiState, body: Value) {
    let r = post(s, "/v1/scheduler/iso8601", body.clone()).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{body}: {}", r.text);
    assert!(r.text.is_empty());
}

/// Creates a dependent job, asserting Chronos' 204.
async fn dependent(s: &ApiState, body: Value) {
    let r = post(s, "/v1/scheduler/dependency", body.clone()).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{body}: {}", r.text);
}

async fn get_json(s: &ApiState, path: &str) -> Value {
    let r = call(s, "GET", path, "").await;
    assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
    r.body
}

/// A job due daily from tomorrow, so nothing fires by itself.
fn daily(name: &str) -> Value {
    json!({"name": name, "command": "true", "schedule": format!("R/{}/P1D", at(Duration::from_secs(86_400)))})
}

fn not_found(name: &str) -> Value {
    json!({"status": "Not Found", "message": format!("Job '{name}' does not exist")})
}

#[tokio::test]
async fn a_posted_job_reads_back_in_chronos_shape() {
    let s = state();
    scheduled(
        &s,
        json!({"name": "nightly", "command": "backup.sh", "schedule": format!("R3/{}/PT12H", at(MIN)),
               "owner": "ops@example.com", "cpus": 0.25, "mem": 64}),
    )
    .await;
    let job = get_json(&s, "/v1/scheduler/job/nightly").await;
    assert_eq!(job["name"], "nightly");
    assert_eq!(job["command"], "backup.sh");
    assert_eq!(job["schedule"], "R3/2023-11-14T22:14:20.000Z/PT12H");
    assert_eq!(job["scheduleTimeZone"], "");
    assert_eq!((job["cpus"].as_f64(), job["mem"].as_f64()), (Some(0.25), Some(64.0)));
    assert_eq!(job["disk"], 256.0, "Chronos' default");
    assert_eq!(job["retries"], 2);
    assert_eq!((&job["successCount"], &job["lastSuccess"]), (&json!(0), &json!("")));
    assert_eq!(job["nextRunAt"], "2023-11-14T22:14:20.000Z");
    assert_eq!(job["lastRunStatus"], Value::Null);
    assert_eq!(get_json(&s, "/v1/scheduler/jobs").await, json!([job]));
    // The same name again replaces the job: still 204, still one job.
    scheduled(&s, json!({"name": "nightly", "command": "backup.sh --full", "schedule": "@daily"}))
        .await;
    let jobs = get_json(&s, "/v1/scheduler/jobs").await;
    assert_eq!(jobs.as_array().map(Vec::len), Some(1));
    assert_eq!(
        (&jobs[0]["command"], &jobs[0]["schedule"]),
        (&json!("backup.sh --full"), &json!("@daily"))
    );
    // PUT on the create routes works too, as in Chronos.
    let r = call(&s, "PUT", "/v1/scheduler/iso8601", &daily("other").to_string()).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn unknown_jobs_are_404_in_chronos_shape_on_every_route() {
    let s = state();
    for (method, path, name) in [
        ("GET", "/v1/scheduler/job/ghost", "ghost"),
        ("PUT", "/v1/scheduler/job/ghost", "ghost"),
        ("DELETE", "/v1/scheduler/job/ghost", "ghost"),
        ("PUT", "/v1/scheduler/job/success/ghost", "ghost"),
        ("GET", "/v1/scheduler/job/stat/ghost", "ghost"),
        ("GET", "/v1/scheduler/job/ghost/runs", "ghost"),
        ("DELETE", "/v1/scheduler/task/kill/ghost", "ghost"),
        ("POST", "/v1/scheduler/job/ghost/task/ct:1:0:ghost:/progress", "ghost"),
        // A name no job can have is unknown too.
        ("GET", "/v1/scheduler/job/no%20such", "no such"),
    ] {
        let r = call(&s, method, path, "").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {path}: {}", r.text);
        assert_eq!(r.body, not_found(name), "{method} {path}");
        assert_eq!(r.headers["content-type"], "application/json");
    }
}

#[tokio::test]
async fn refused_jobs_are_400_and_change_nothing() {
    let s = state();
    scheduled(&s, daily("base")).await;
    dependent(&s, json!({"name": "kid", "command": "true", "parents": ["base"]})).await;
    let before = get_json(&s, "/v1/scheduler/jobs").await;
    let cases: Vec<(&str, String, &str)> = vec![
        ("/v1/scheduler/iso8601", String::new(), "the request has no body: send the job as JSON"),
        (
            "/v1/scheduler/iso8601",
            "{".into(),
            "the body is not valid JSON: EOF while parsing an object at line 1 column 1",
        ),
        (
            "/v1/scheduler/iso8601",
            json!({"name": "base", "command": "x", "uris": ["http://x"]}).to_string(),
            "`uris` is not supported: bake the files into the Docker image (Drover does not run the Mesos fetcher)",
        ),
        (
            "/v1/scheduler/iso8601",
            json!({"name": "base", "command": "x", "container": {"type": "MESOS", "image": "i"}})
                .to_string(),
            "`container.type` MESOS is not supported: Drover runs jobs in Docker images only; use type DOCKER with an image, or no container",
        ),
        (
            "/v1/scheduler/iso8601",
            json!({"name": "base", "command": "x", "schedule": "R/x/PT1H"}).to_string(),
            "`schedule`: The start `x` is not an ISO 8601 date-time such as `2025-03-01T02:30:00Z`: the date is not YYYY-MM-DD.",
        ),
        (
            "/v1/scheduler/iso8601",
            json!({"name": "kid", "command": "x", "parents": ["base"]}).to_string(),
            "a job with `parents` is a dependent job: POST it to /v1/scheduler/dependency",
        ),
        (
            "/v1/scheduler/dependency",
            json!({"name": "kid", "command": "x"}).to_string(),
            "a dependent job needs `parents`: POST scheduled jobs to /v1/scheduler/iso8601",
        ),
        // The scheduler's own refusals.
        (
            "/v1/scheduler/dependency",
            json!({"name": "kid", "command": "x", "parents": ["nobody"]}).to_string(),
            "parent job 'nobody' does not exist",
        ),
        (
            "/v1/scheduler/dependency",
            json!({"name": "kid", "command": "x", "parents": ["kid"]}).to_string(),
            "job 'kid' cannot be its own parent",
        ),
    ];
    for (path, body, message) in cases {
        let r = call(&s, "POST", path, &body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text);
        assert_eq!(r.body, json!({"status": "Bad Request", "message": message}), "{body}");
        assert_eq!(get_json(&s, "/v1/scheduler/jobs").await, before, "{body} changed nothing");
    }
    // A cycle through the graph.
    dependent(&s, json!({"name": "grandkid", "command": "true", "parents": ["kid"]})).await;
    let before = get_json(&s, "/v1/scheduler/jobs").await;
    let r = post(
        &s,
        "/v1/scheduler/dependency",
        json!({"name": "kid", "command": "x", "parents": ["grandkid"]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body["message"],
        "parent 'grandkid' depends on 'kid': the dependency would form a cycle"
    );
    assert_eq!(get_json(&s, "/v1/scheduler/jobs").await, before);
}

#[tokio::test]
async fn a_scheduler_that_cannot_take_commands_is_503_in_chronos_shape() {
    let s = state();
    let (commands, _) = mpsc::channel(1);
    let down = ApiState { commands, ..s };
    let r = post(&down, "/v1/scheduler/iso8601", daily("j")).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        r.body,
        json!({"status": "Service Unavailable", "message": "the scheduler is shutting down"})
    );
}

/// Launches what waits (one offer) and returns the job's active task id.
async fn launch(h: &Harness) -> String {
    h.inputs.send(Input::Subscribed).await.unwrap();
    h.inputs.send(Input::Offers(vec![offer("o1", 4096.0)])).await.unwrap();
    until(&h.state, "the run's task is staged", |snap| {
        snap.instances.values().any(|i| i.active_task().is_some())
    })
    .await;
    active_tasks(&h.state).pop().unwrap()
}

async fn report(h: &Harness, task: &str, state: TaskState) {
    h.inputs.send(Input::Status(status(task, state, None))).await.unwrap();
}

#[tokio::test]
async fn a_manual_run_launches_succeeds_and_shows_in_runs_stats_and_summary() {
    let h = harness(EventBus::default());
    let s = &h.state;
    scheduled(s, json!({"name": "report", "command": "/bin/echo", "shell": false, "schedule": format!("R/{}/P1D", at(Duration::from_secs(86_400)))})).await;
    let r = call(s, "PUT", "/v1/scheduler/job/report?arguments=a&arguments=b,c", "").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let runs = get_json(s, "/v1/scheduler/job/report/runs").await;
    assert_eq!(runs.as_array().map(Vec::len), Some(1));
    assert_eq!(runs[0]["trigger"], json!({"type": "manual", "arguments": ["a", "b", "c"]}));
    assert_eq!((&runs[0]["status"], &runs[0]["attempts"]), (&json!("queued"), &json!(1)));
    let summary = get_json(s, "/v1/scheduler/jobs/summary").await;
    assert_eq!(
        (&summary["jobs"][0]["status"], &summary["jobs"][0]["state"]),
        (&json!("fresh"), &json!("queued"))
    );

    let task = launch(&h).await;
    assert!(task.starts_with("drover.jobs_report-"), "{task}");
    // Job tasks are real Mesos tasks: /v2/tasks lists them; /v2/apps does not list job apps.
    let tasks = get_json(s, "/v2/tasks").await;
    assert_eq!(tasks["tasks"][0]["id"], task.as_str());
    assert_eq!(get_json(s, "/v2/apps").await, json!({"apps": []}));
    assert_eq!(get_json(s, "/v2/queue").await, json!({"queue": []}));
    assert_eq!(get_json(s, "/v2/groups").await["apps"], json!([]));

    report(&h, &task, TaskState::Running).await;
    until(s, "the run runs", |snap| {
        snap.runs.values().flat_map(|r| r.values()).any(|r| r.started_at.is_some())
    })
    .await;
    let summary = get_json(s, "/v1/scheduler/jobs/summary").await;
    assert_eq!(summary["jobs"][0]["state"], "1 running");
    let csv = call(s, "GET", "/v1/scheduler/graph/csv", "").await.text;
    assert_eq!(csv, "node,report,fresh,1 running\n");

    h.clock.advance(Duration::from_secs(90));
    report(&h, &task, TaskState::Finished).await;
    until(s, "the run succeeded", |snap| snap.job_states.values().any(|st| st.success_count == 1))
        .await;
    let runs = get_json(s, "/v1/scheduler/job/report/runs").await;
    assert_eq!(runs[0]["status"], "succeeded");
    assert_eq!(runs[0]["taskIds"], json!([task]));
    assert_eq!(runs[0]["createdAt"], "2023-11-14T22:13:20.000Z");
    assert_eq!(runs[0]["startedAt"], "2023-11-14T22:13:20.000Z");
    assert_eq!(runs[0]["finishedAt"], "2023-11-14T22:14:50.000Z");
    let job = get_json(s, "/v1/scheduler/job/report").await;
    assert_eq!((&job["successCount"], &job["lastRunStatus"]), (&json!(1), &json!("succeeded")));
    assert_eq!(job["lastSuccess"], "2023-11-14T22:14:50.000Z");
    let summary = get_json(s, "/v1/scheduler/jobs/summary").await;
    assert_eq!(
        (&summary["jobs"][0]["status"], &summary["jobs"][0]["state"]),
        (&json!("success"), &json!("idle"))
    );

    let stat = get_json(s, "/v1/scheduler/job/stat/report").await;
    assert_eq!(
        stat["histogram"],
        json!({"75thPercentile": 90000.0, "95thPercentile": 90000.0, "98thPercentile": 90000.0,
               "99thPercentile": 90000.0, "median": 90000.0, "mean": 90000.0, "count": 1})
    );
    let history = &stat["taskStatHistory"][0];
    assert_eq!(history["taskId"], task.as_str());
    assert_eq!(history["jobName"], "report");
    assert_eq!(
        (&history["startTime"], &history["endTime"]),
        (&json!("11/14/23 22:13:20"), &json!("11/14/23 22:14:50"))
    );
    assert_eq!((&history["duration"], &history["status"]), (&json!("1m30s"), &json!("Success")));
    assert_eq!(history["runStatus"], "succeeded");
    for percentile in ["mean", "median", "75thPercentile", "99thPercentile"] {
        let rows = get_json(s, &format!("/v1/scheduler/stats/{percentile}")).await;
        assert_eq!(rows, json!([{"jobNameLabel": "report", "time": 90.0}]), "{percentile}");
    }
    let r = call(s, "GET", "/v1/scheduler/stats/97thPercentile", "").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["status"], "Bad Request");
}

#[tokio::test]
async fn kill_ends_the_active_runs() {
    let h = harness(EventBus::default());
    let s = &h.state;
    scheduled(s, daily("long")).await;
    assert_eq!(call(s, "PUT", "/v1/scheduler/job/long", "").await.status, StatusCode::NO_CONTENT);
    let task = launch(&h).await;
    report(&h, &task, TaskState::Running).await;
    until(s, "the run runs", |snap| {
        snap.runs.values().flat_map(|r| r.values()).any(|r| r.started_at.is_some())
    })
    .await;
    assert_eq!(get_json(s, "/v1/scheduler/jobs/summary").await["jobs"][0]["state"], "1 running");
    let r = call(s, "DELETE", "/v1/scheduler/task/kill/long", "").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let runs = get_json(s, "/v1/scheduler/job/long/runs").await;
    assert_eq!(
        (&runs[0]["status"], &runs[0]["message"]),
        (&json!("killed"), &json!("killed by a user"))
    );
    assert_eq!(get_json(s, "/v1/scheduler/jobs/summary").await["jobs"][0]["state"], "idle");
    // Killing a job with nothing running is fine.
    let r = call(s, "DELETE", "/v1/scheduler/task/kill/long", "").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn marking_success_answers_chronos_text_and_releases_dependents() {
    let s = state();
    scheduled(&s, daily("extract")).await;
    dependent(&s, json!({"name": "load", "command": "true", "parents": ["extract"]})).await;
    let r = call(&s, "PUT", "/v1/scheduler/job/success/extract", "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text, "marked job extract as successful: true");
    assert_eq!(r.headers["content-type"], "text/plain; charset=utf-8");
    let runs = get_json(&s, "/v1/scheduler/job/load/runs").await;
    assert_eq!(runs[0]["trigger"], json!({"type": "dependency"}));
    let extract = get_json(&s, "/v1/scheduler/job/extract").await;
    assert_eq!(extract["successCount"], 1);
}

#[tokio::test]
async fn deleting_a_parent_hands_its_schedule_to_its_children() {
    let s = state();
    scheduled(&s, daily("parent")).await;
    dependent(&s, json!({"name": "child", "command": "true", "parents": ["parent"]})).await;
    let schedule = get_json(&s, "/v1/scheduler/job/parent").await["schedule"].clone();
    let r = call(&s, "DELETE", "/v1/scheduler/job/parent", "").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(call(&s, "GET", "/v1/scheduler/job/parent", "").await.body, not_found("parent"));
    let child = get_json(&s, "/v1/scheduler/job/child").await;
    assert_eq!(child["schedule"], schedule);
    assert!(child.get("parents").is_none());
}

#[tokio::test]
async fn search_matches_names_and_commands_with_limit_and_offset() {
    let s = state();
    for (name, command) in
        [("etl-a", "python a.py"), ("etl-b", "python b.py"), ("backup", "tar cz /srv")]
    {
        scheduled(&s, json!({"name": name, "command": command, "schedule": "@daily"})).await;
    }
    let names = |v: Value| -> Vec<String> {
        v.as_array().unwrap().iter().map(|j| j["name"].as_str().unwrap().to_owned()).collect()
    };
    let search = |q: &'static str| {
        let s = s.clone();
        async move { names(get_json(&s, &format!("/v1/scheduler/jobs/search{q}")).await) }
    };
    assert_eq!(search("").await, ["backup", "etl-a", "etl-b"]);
    assert_eq!(search("?name=ETL").await, ["etl-a", "etl-b"]);
    assert_eq!(search("?command=TAR").await, ["backup"]);
    assert_eq!(search("?name=etl&command=b.py").await, ["etl-b"]);
    assert_eq!(search("?any=srv").await, ["backup"]);
    assert_eq!(search("?name=etl-a&any=srv").await, ["backup", "etl-a"]);
    assert_eq!(search("?name=etl&limit=1&offset=1").await, ["etl-b"]);
    assert_eq!(search("?name=nothing").await, Vec::<String>::new());
    let r = call(&s, "GET", "/v1/scheduler/jobs/search?limit=ten", "").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body,
        json!({"status": "Bad Request", "message": "`limit` must be a whole number, got 'ten'"})
    );
}

#[track_caller]
fn check_text(text: &str, expect: Expect) {
    expect.assert_eq(text);
}

#[tokio::test]
async fn summary_and_graphs_follow_chronos() {
    let s = state();
    // The zone overrides the start's offset: 02:00 in Berlin.
    scheduled(&s, json!({"name": "extract", "command": "true", "schedule": "R2/2023-11-15T02:00:00Z/PT1H", "scheduleTimeZone": "Europe/Berlin"})).await;
    scheduled(
        &s,
        json!({"name": "audit", "command": "true", "schedule": "0 3 * * *", "disabled": true}),
    )
    .await;
    dependent(&s, json!({"name": "transform", "command": "true", "parents": ["extract"]})).await;
    dependent(&s, json!({"name": "load", "command": "true", "parents": ["transform", "audit"]}))
        .await;
    call(&s, "PUT", "/v1/scheduler/job/success/extract", "").await;
    let summary = get_json(&s, "/v1/scheduler/jobs/summary").await;
    check_text(
        &serde_json::to_string_pretty(&summary).unwrap(),
        expect![[r#"
            {
              "jobs": [
                {
                  "disabled": true,
                  "name": "audit",
                  "parents": [],
                  "schedule": "0 3 * * *",
                  "state": "idle",
                  "status": "fresh"
                },
                {
                  "disabled": false,
                  "name": "extract",
                  "parents": [],
                  "schedule": "R2/2023-11-15T02:00:00.000+01:00/PT1H",
                  "state": "idle",
                  "status": "success"
                },
                {
                  "disabled": false,
                  "name": "load",
                  "parents": [
                    "audit",
                    "transform"
                  ],
                  "schedule": "",
                  "state": "idle",
                  "status": "fresh"
                },
                {
                  "disabled": false,
                  "name": "transform",
                  "parents": [
                    "extract"
                  ],
                  "schedule": "",
                  "state": "queued",
                  "status": "fresh"
                }
              ]
            }"#]],
    );
    let dot = call(&s, "GET", "/v1/scheduler/graph/dot", "").await;
    assert_eq!(dot.headers["content-type"], "text/plain; charset=utf-8");
    check_text(
        &dot.text,
        expect![[r#"
            digraph G {
              1 [ label="audit" ];
              2 [ label="extract" ];
              3 [ label="load" ];
              4 [ label="transform" ];
              1 -> 3;
              2 -> 4;
              4 -> 3;
            }
        "#]],
    );
    let csv = call(&s, "GET", "/v1/scheduler/graph/csv", "").await;
    assert_eq!(csv.headers["content-type"], "text/plain; charset=utf-8");
    check_text(
        &csv.text,
        expect![[r#"
            node,audit,fresh,idle
            node,extract,success,idle
            node,load,fresh,idle
            node,transform,fresh,queued
            link,audit,load
            link,extract,transform
            link,transform,load
        "#]],
    );
}

#[tokio::test]
async fn a_data_tracking_progress_update_is_refused_for_a_known_job() {
    let s = state();
    scheduled(&s, daily("j")).await;
    let r = post(
        &s,
        "/v1/scheduler/job/j/task/ct:1:0:j:/progress",
        json!({"numAdditionalElementsProcessed": 5}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body["message"],
        "Job 'j' is not enabled to track data: Drover does not track processed elements"
    );
}

#[tokio::test]
async fn the_leader_route_names_the_same_leader_as_v2() {
    let s = state();
    let r = call(&s, "GET", "/v1/scheduler/leader", "").await;
    assert_eq!(r.body, json!({"leader": "127.0.0.1:8080"}));
    assert_eq!(r.body, call(&s, "GET", "/v2/leader", "").await.body);
}

#[tokio::test]
async fn apps_in_the_job_group_are_refused_by_the_marathon_api() {
    let s = state();
    let reserved = |id: &str| {
        json!({
            "message": "Object is not valid",
            "details": [{"path": "/id", "errors": [format!(
                "{id} is in /drover.jobs, which is reserved for the runs of jobs; manage jobs through /v1/scheduler"
            )]}],
        })
    };
    let r = call(&s, "POST", "/v2/apps", r#"{"id":"/drover.jobs/sneaky","cmd":"sleep 1"}"#).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.body, reserved("/drover.jobs/sneaky"));
    let r = call(&s, "PUT", "/v2/apps/drover.jobs/x", r#"{"cmd":"sleep 1"}"#).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.body, reserved("/drover.jobs/x"));
    let r = call(&s, "POST", "/v2/apps", r#"{"id":"/drover.jobs","cmd":"sleep 1"}"#).await;
    assert_eq!(r.body, reserved("/drover.jobs"));
    let r = call(
        &s,
        "PUT",
        "/v2/apps",
        r#"[{"id":"/ok","cmd":"sleep 1"},{"id":"/drover.jobs/y","cmd":"sleep 1"}]"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let r = call(
        &s,
        "POST",
        "/v2/groups",
        r#"{"id":"/drover.jobs","apps":[{"id":"z","cmd":"sleep 1"}]}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.body, reserved("/drover.jobs/z"));
    // A neighbour whose name merely starts alike is an ordinary app.
    let r = call(&s, "POST", "/v2/apps", r#"{"id":"/drover.jobsx/a","cmd":"sleep 1"}"#).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let apps = get_json(&s, "/v2/apps").await;
    assert_eq!(apps["apps"].as_array().map(Vec::len), Some(1), "nothing else was created");
}

/// The value of one sample line (`name{labels} value`).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn job_metrics_count_runs_fires_and_lag() {
    let h = harness(EventBus::default());
    let s = &h.state;
    let text = call(s, "GET", "/metrics", "").await.text;
    for event in ["started", "succeeded", "failed", "killed", "missed"] {
        let series = format!("drover_job_runs_total{{event=\"{event}\"}}");
        assert_eq!(sample(&text, &series), Some(0.0), "{series} shows from the start: {text}");
    }
    assert_eq!(sample(&text, "drover_jobs"), Some(0.0));
    assert!(text.contains("# TYPE drover_job_fire_lag_seconds histogram"), "{text}");
    // Due once, a minute from now; the scheduler looks 61 s later.
    scheduled(
        s,
        json!({"name": "tick", "command": "true", "schedule": format!("R1/{}/PT1M", at(MIN))}),
    )
    .await;
    h.clock.advance(Duration::from_secs(61));
    h.inputs.send(Input::Tick).await.unwrap();
    until(s, "the job fired", |snap| snap.stats.job_fires == 1).await;
    let text = call(s, "GET", "/metrics", "").await.text;
    assert_eq!(sample(&text, "drover_job_fires_total"), Some(1.0), "{text}");
    assert_eq!(sample(&text, "drover_job_fire_lag_seconds_sum"), Some(1.0));
    assert_eq!(sample(&text, "drover_job_fire_lag_seconds_count"), Some(1.0));
    assert_eq!(sample(&text, r#"drover_job_fire_lag_seconds_bucket{le="0.5"}"#), Some(0.0));
    assert_eq!(sample(&text, r#"drover_job_fire_lag_seconds_bucket{le="1"}"#), Some(1.0));
    assert_eq!(sample(&text, r#"drover_job_runs_total{event="started"}"#), Some(1.0));
    assert_eq!(sample(&text, "drover_jobs"), Some(1.0));
    assert_eq!(sample(&text, "drover_job_runs_active"), Some(1.0));
    let task = launch(&h).await;
    report(&h, &task, TaskState::Failed).await;
    // Retried twice, each after the default 60 s, failing each time.
    for attempt in 2..=3 {
        until(s, "the failed attempt waits for its retry", |snap| {
            snap.instances.is_empty()
                && snap.runs.values().flat_map(|r| r.values()).any(|r| r.attempts == attempt - 1)
        })
        .await;
        h.clock.advance(Duration::from_secs(60));
        h.inputs.send(Input::Tick).await.unwrap();
        h.inputs.send(Input::Offers(vec![offer(&format!("o{attempt}"), 4096.0)])).await.unwrap();
        until(s, "the retry is staged", |snap| {
            snap.runs.values().flat_map(|r| r.values()).any(|r| r.attempts == attempt)
                && snap.instances.values().any(|i| i.active_task().is_some())
        })
        .await;
        let task = active_tasks(s).pop().unwrap();
        report(&h, &task, TaskState::Failed).await;
    }
    until(s, "the run failed", |snap| snap.job_states.values().any(|st| st.error_count == 1)).await;
    let text = call(s, "GET", "/metrics", "").await.text;
    assert_eq!(sample(&text, r#"drover_job_runs_total{event="failed"}"#), Some(1.0), "{text}");
    assert_eq!(sample(&text, "drover_job_runs_active"), Some(0.0));
    let job = get_json(s, "/v1/scheduler/job/tick").await;
    assert_eq!((&job["errorCount"], &job["lastRunStatus"]), (&json!(1), &json!("failed")));
    assert_eq!(job["disabled"], true, "R1 is exhausted");
    assert_eq!(get_json(s, "/v1/scheduler/job/tick/runs").await[0]["attempts"], 3);
}

#[tokio::test]
async fn standbys_forward_the_chronos_api_to_the_leader() {
    let leader = harness(EventBus::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(crate::serve(listener, router(leader.state.clone()), std::future::pending()));

    let (_keep, known) = watch::channel(LeaderState::Standby { leader: Some(addr.clone()) });
    let (abdicate, _) = mpsc::channel(1);
    let standby = state().with_leadership(Leadership::new(known, abdicate, "127.0.0.1:9".into()));
    let r = post(&standby, "/v1/scheduler/iso8601", daily("via-standby")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(r.headers["x-marathon-leader"], format!("http://{addr}").as_str());
    assert!(leader.state.snap().jobs.contains_key(&JobName::parse("via-standby").unwrap()));
    assert!(standby.snap().jobs.is_empty(), "the standby's own core was not asked");
    let jobs = get_json(&standby, "/v1/scheduler/jobs").await;
    assert_eq!(jobs[0]["name"], "via-standby");
    let r = call(&standby, "GET", "/v1/scheduler/job/nope", "").await;
    assert_eq!(r.body, not_found("nope"), "errors come back from the leader as they are");
    // The leader route is answered by the standby itself.
    assert_eq!(get_json(&standby, "/v1/scheduler/leader").await, json!({"leader": addr}));

    let (_keep, unknown) = watch::channel(LeaderState::Standby { leader: None });
    let (abdicate, _) = mpsc::channel(1);
    let lost = state().with_leadership(Leadership::new(unknown, abdicate, "127.0.0.1:9".into()));
    let r = call(&lost, "GET", "/v1/scheduler/jobs", "").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    let r = call(&lost, "GET", "/v1/scheduler/leader", "").await;
    assert_eq!(r.body, json!({"status": "Not Found", "message": "There is no leader"}));
}
