//! The document is complete and honest: every route is documented, every
//! `$ref` resolves, and real responses of every kind — rendered by the
//! handlers over the real core — have a documented status code and
//! validate against their documented schema.

use std::collections::BTreeSet;
use std::time::Duration;

use sched_core::instance::TaskState;
use serde_json::{Value, json};

use crate::EventBus;
use crate::tests::{Harness, Input, Resp, active_tasks, call, harness, offer, status, until};

/// A small validator for the JSON Schema subset the document uses: `$ref`,
/// `type` (with OpenAPI's `nullable`), `properties`, `required`, `items`,
/// `additionalProperties`, `enum`, `anyOf`, `allOf`, `minimum`, `maximum`.
/// Returns the problems, each with its JSON pointer.
fn validate(doc: &Value, schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.trim_start_matches("#/components/schemas/");
        match doc["components"]["schemas"].get(name) {
            Some(s) => validate(doc, s, value, at, out),
            None => out.push(format!("{at}: unresolved {reference}")),
        }
        return;
    }
    if value.is_null() && schema.get("nullable") == Some(&json!(true)) {
        return;
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            validate(doc, s, value, at, out);
        }
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        let fits = any.iter().any(|s| {
            let mut problems = Vec::new();
            validate(doc, s, value, at, &mut problems);
            problems.is_empty()
        });
        if !fits {
            out.push(format!("{at}: {value} matches none of {}", Value::Array(any.clone())));
        }
    }
    if let Some(t) = schema.get("type").and_then(Value::as_str) {
        let ok = match t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "boolean" => value.is_boolean(),
            "number" => value.is_number(),
            "integer" => value.is_i64() || value.is_u64(),
            _ => false,
        };
        if !ok {
            out.push(format!("{at}: {value} is not {t}"));
            return;
        }
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array)
        && !values.contains(value)
    {
        out.push(format!("{at}: {value} is not one of {}", Value::Array(values.clone())));
    }
    if let (Some(min), Some(n)) = (schema.get("minimum").and_then(Value::as_f64), value.as_f64())
        && n < min
    {
        out.push(format!("{at}: {n} < {min}"));
    }
    if let (Some(max), Some(n)) = (schema.get("maximum").and_then(Value::as_f64), value.as_f64())
        && n > max
    {
        out.push(format!("{at}: {n} > {max}"));
    }
    if let Some(obj) = value.as_object() {
        for key in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            if let Some(k) = key.as_str()
                && !obj.contains_key(k)
            {
                out.push(format!("{at}: missing {k}"));
            }
        }
        let props = schema.get("properties").and_then(Value::as_object);
        for (k, v) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(s) => validate(doc, s, v, &format!("{at}/{k}"), out),
                None => {
                    if let Some(extra) = schema.get("additionalProperties")
                        && extra.is_object()
                    {
                        validate(doc, extra, v, &format!("{at}/{k}"), out);
                    }
                }
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), value.as_array()) {
        for (i, v) in arr.iter().enumerate() {
            validate(doc, items, v, &format!("{at}/{i}"), out);
        }
    }
}

/// Whether `concrete` (`/v2/apps/web/tasks`) fits `template`
/// (`/v2/apps/{appId}/tasks`).
fn fits(template: &str, concrete: &str) -> bool {
    let (t, c): (Vec<&str>, Vec<&str>) =
        (template.split('/').collect(), concrete.split('/').collect());
    t.len() == c.len() && t.iter().zip(&c).all(|(t, c)| t.starts_with('{') || t == c)
}

/// Checks one real response against the document's operation `method`
/// `template`; panics with what does not fit.
fn check(doc: &Value, method: &str, template: &str, uri: &str, r: &Resp) {
    let path = uri.split('?').next().unwrap_or(uri);
    assert!(fits(template, path), "{uri} is not {template}");
    let op = &doc["paths"][template][method.to_ascii_lowercase()];
    assert!(op.is_object(), "{method} {template} is not documented");
    let status = r.status.as_u16().to_string();
    let response = &op["responses"][&status];
    assert!(response.is_object(), "{method} {uri}: {status} is not documented: {}", r.text);
    for (name, _) in response.get("headers").and_then(Value::as_object).into_iter().flatten() {
        assert!(r.headers.contains_key(name.as_str()), "{method} {uri} {status}: no {name}");
    }
    let content_type =
        r.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    match response.get("content").and_then(Value::as_object) {
        None => assert!(r.text.is_empty(), "{method} {uri}: {status} has a body: {}", r.text),
        Some(content) => {
            let (media, spec) = content.iter().next().unwrap();
            assert!(
                content_type.starts_with(media.as_str()),
                "{method} {uri}: {status} is {content_type}, documented {media}"
            );
            if media == "application/json" {
                let body: Value = serde_json::from_str(&r.text)
                    .unwrap_or_else(|e| panic!("{method} {uri}: not JSON ({e}): {}", r.text));
                let mut problems = Vec::new();
                validate(doc, &spec["schema"], &body, "", &mut problems);
                assert!(problems.is_empty(), "{method} {uri} {status}: {problems:#?}\n{body:#}");
            }
        }
    }
}

/// Calls `uri` and checks the answer against the document; returns it.
async fn walk(
    h: &Harness,
    doc: &Value,
    method: &str,
    template: &str,
    uri: &str,
    body: &str,
) -> Resp {
    let r = call(&h.state, method, uri, body).await;
    check(doc, method, template, uri, &r);
    r
}

#[test]
fn every_route_is_documented_with_its_parameters_and_every_ref_resolves() {
    let doc = crate::routes::table::document();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let text = doc.to_string();
    for piece in text.split("\"#/components/schemas/").skip(1) {
        let name = piece.split('"').next().unwrap();
        assert!(schemas.contains_key(name), "unresolved $ref {name}");
    }
    let mut ids = BTreeSet::new();
    let mut count = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let declared: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        for (method, op) in item.as_object().unwrap() {
            count += 1;
            assert!(ids.insert(op["operationId"].as_str().unwrap().to_owned()), "{method} {path}");
            let in_path: BTreeSet<&str> = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert_eq!(declared, in_path, "{method} {path}");
            // Chronos' progress report is always refused (Drover tracks no data).
            let success = op["responses"].as_object().unwrap().keys().any(|s| s.starts_with('2'));
            assert!(success || path.ends_with("/progress"), "{method} {path} never succeeds");
        }
    }
    assert!(count >= 50, "{count} operations");
    for (route, expected) in [
        ("/v2/apps/{appId}/restart", "post"),
        ("/v1/scheduler/job/{name}", "put"),
        ("/openapi.json", "get"),
        ("/v2/events", "get"),
    ] {
        assert!(doc["paths"][route][expected].is_object(), "{expected} {route}");
    }
}

/// Like `app_json`'s `instances_are_capped`: a group's `scaleBy` multiplied
/// instance counts up to `u32::MAX` (the core allocates a record per
/// instance).
#[tokio::test]
async fn scale_by_is_capped_like_instances() {
    let h = harness(EventBus::default());
    let group = json!({"id": "/g", "apps": [{"id": "a", "cmd": "x", "instances": 2}]});
    let r = call(&h.state, "POST", "/v2/groups", &group.to_string()).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.text);
    let r = call(&h.state, "PUT", "/v2/groups/g?force=true", r#"{"scaleBy":1e12}"#).await;
    assert_eq!(r.status.as_u16(), 422, "{}", r.text);
    assert_eq!(r.body["details"][0]["path"], "/scaleBy");
    assert_eq!(h.state.snap().apps.values().map(|a| a.instances).sum::<u32>(), 2);
    let r = call(&h.state, "PUT", "/v2/groups/g?force=true", r#"{"scaleBy":5000}"#).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    assert_eq!(h.state.snap().apps.values().map(|a| a.instances).sum::<u32>(), 10_000);
}

/// Found by schemathesis (`negative_data_rejection`): `dryRun` took
/// anything but `true` as false (and deployed); it is a flag like the others.
#[tokio::test]
async fn dry_run_is_a_checked_flag() {
    let h = harness(EventBus::default());
    let group = json!({"id": "/g", "apps": [{"id": "a", "cmd": "x"}]}).to_string();
    let r = call(&h.state, "POST", "/v2/groups?dryRun=null", &group).await;
    assert_eq!(r.status.as_u16(), 422, "{}", r.text);
    assert_eq!(r.body["details"][0]["path"], "/dryRun");
    let r = call(&h.state, "POST", "/v2/groups?dryRun=true", &group).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    assert!(r.body["steps"].is_array());
    assert!(h.state.snap().apps.is_empty());
    let r = call(&h.state, "POST", "/v2/groups?dryRun=false", &group).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.text);
}

#[test]
fn the_examples_fit_the_request_schemas() {
    let doc = crate::routes::table::document();
    let examples = [
        ("AppCreate", include_str!("../../../../deploy/examples/sleepy.json")),
        ("AppCreate", include_str!("../../../../deploy/examples/crashy.json")),
        ("AppCreate", include_str!("../../../../deploy/examples/hello-args.json")),
        ("ScheduledJob", include_str!("../../../../deploy/examples/job-nightly.json")),
        ("DependentJob", include_str!("../../../../deploy/examples/job-dependent.json")),
    ];
    for (schema, text) in examples {
        let value: Value = serde_json::from_str(text).unwrap();
        let mut problems = Vec::new();
        validate(&doc, &crate::openapi::r(schema), &value, "", &mut problems);
        assert!(problems.is_empty(), "{schema}: {problems:#?}");
    }
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    // Each operation with sample parameters reaches a handler: neither
    // axum's 405 (method not mounted) nor the fallback's "Not found".
    let h = harness(EventBus::default());
    let doc = crate::routes::table::document();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, _) in item.as_object().unwrap() {
            if path == "/v2/events" {
                continue; // A stream that does not end; routed by events' own tests.
            }
            let uri = path
                .replace("{appId}", "web")
                .replace("{groupId}", "web")
                .replace("{name}", "job")
                .replace("{percentile}", "mean")
                .replace("{version}", "2024-01-01T00:00:00.000Z")
                .replace(['{', '}'], "");
            let r = call(&h.state, &method.to_ascii_uppercase(), &uri, "{}").await;
            assert_ne!(r.status.as_u16(), 405, "{method} {uri}: {}", r.text);
            assert_ne!(r.text, r#"{"message":"Not found"}"#, "{method} {uri}");
        }
    }
}

#[tokio::test]
async fn real_responses_fit_the_document() {
    let h = harness(EventBus::default());
    let doc = crate::routes::table::document();
    let d = &doc;
    walk(&h, d, "GET", "/openapi.json", "/openapi.json", "").await;
    walk(&h, d, "GET", "/ping", "/ping", "").await;
    walk(&h, d, "GET", "/metrics", "/metrics", "").await;
    walk(&h, d, "GET", "/v2/info", "/v2/info", "").await;
    walk(&h, d, "GET", "/v2/leader", "/v2/leader", "").await;
    walk(&h, d, "GET", "/v1/scheduler/leader", "/v1/scheduler/leader", "").await;

    // Apps: created, listed, with tasks that run and report health.
    let app = json!({
        "id": "/prod/web", "cmd": "sleep 600", "instances": 2, "mem": 64,
        "env": {"A": "1", "DB": {"secret": "db"}}, "secrets": {"db": {"source": "db"}},
        "labels": {"tier": "web"}, "constraints": [["hostname", "UNIQUE"]],
        "healthChecks": [{"protocol": "COMMAND", "command": {"value": "true"}}],
        "portDefinitions": [{"port": 0, "name": "http"}],
    });
    let r = walk(&h, d, "POST", "/v2/apps", "/v2/apps", &app.to_string()).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.text);
    let r = walk(&h, d, "POST", "/v2/apps", "/v2/apps", &app.to_string()).await;
    assert_eq!(r.status.as_u16(), 409);
    walk(&h, d, "POST", "/v2/apps", "/v2/apps", "{").await;
    walk(&h, d, "POST", "/v2/apps", "/v2/apps", r#"{"id":"x","cmd":"y","cpus":-1}"#).await;
    walk(&h, d, "POST", "/v2/apps", "/v2/apps", r#"{"id":"x","cmd":"y","instances":4000000000}"#)
        .await;
    let argv = json!({"id": "/argv", "args": ["/bin/sleep", "9"], "instances": 0,
        "container": {"type": "DOCKER", "docker": {"image": "busybox"}}})
    .to_string();
    walk(&h, d, "POST", "/v2/apps", "/v2/apps", &argv).await;
    walk(&h, d, "GET", "/v2/queue", "/v2/queue", "").await;

    h.inputs.send(Input::Subscribed).await.unwrap();
    h.inputs.send(Input::Offers(vec![offer("o1", 4096.0)])).await.unwrap();
    until(&h.state, "tasks are staged", |snap| {
        snap.instances.values().filter(|i| i.active_task().is_some()).count() == 1
    })
    .await;
    let tasks = active_tasks(&h.state);
    for t in &tasks {
        h.inputs.send(Input::Status(status(t, TaskState::Running, Some(true)))).await.unwrap();
    }
    h.clock.advance(Duration::from_secs(5));
    until(&h.state, "a task runs", |snap| {
        snap.instances.values().any(|i| i.active_task().is_some_and(|t| t.started_at.is_some()))
    })
    .await;
    for uri in [
        "/v2/apps",
        "/v2/apps?embed=apps.tasks&embed=apps.lastTaskFailure",
        "/v2/apps?label=tier==web&id=web&cmd=sleep",
        "/v2/apps?label=a%20b",
    ] {
        walk(&h, d, "GET", "/v2/apps", uri, "").await;
    }
    for (template, uri) in [
        ("/v2/apps/{appId}", "/v2/apps/prod/web"),
        ("/v2/apps/{appId}", "/v2/apps/nope"),
        ("/v2/apps/{appId}", "/v2/apps/Bad"),
        ("/v2/apps/{appId}/tasks", "/v2/apps/prod/web/tasks"),
        ("/v2/apps/{appId}/versions", "/v2/apps/prod/web/versions"),
        ("/v2/tasks", "/v2/tasks"),
        ("/v2/tasks", "/v2/tasks?status=running"),
        ("/v2/tasks", "/v2/tasks?status=lost"),
        ("/v2/deployments", "/v2/deployments"),
        ("/v2/queue", "/v2/queue"),
        ("/v2/groups", "/v2/groups"),
        ("/v2/groups", "/v2/groups?embed=group.apps.tasks"),
        ("/v2/groups/{groupId}", "/v2/groups/prod"),
        ("/v2/groups/{groupId}", "/v2/groups/nope"),
    ] {
        let path = uri.split('?').next().unwrap();
        // Nested ids are several segments; check them against a template of the same depth.
        let fitted = template.replace("{appId}", &path_segments(path, template));
        let r = call(&h.state, "GET", uri, "").await;
        check(d, "GET", template, &fitted, &r);
    }
    let versions = call(&h.state, "GET", "/v2/apps/argv/versions", "").await.body;
    let v = versions["versions"][0].as_str().unwrap().to_owned();
    walk(
        &h,
        d,
        "GET",
        "/v2/apps/{appId}/versions/{version}",
        &format!("/v2/apps/argv/versions/{v}"),
        "",
    )
    .await;
    walk(&h, d, "GET", "/v2/apps/{appId}/versions/{version}", "/v2/apps/argv/versions/nope", "")
        .await;
    // A sub-resource that does not take GET.
    let r = call(&h.state, "GET", "/v2/apps/argv/restart", "").await;
    assert_eq!(r.status.as_u16(), 405);
    check(d, "GET", "/v2/apps/{appId}", "/v2/apps/x", &r);

    // Writes answer deployments, locks and kills.
    walk(&h, d, "PUT", "/v2/apps/{appId}", "/v2/apps/argv", r#"{"instances":1}"#).await;
    walk(&h, d, "PUT", "/v2/apps/{appId}", "/v2/apps/argv?force=true", r#"{"instances":1}"#).await;
    walk(&h, d, "PUT", "/v2/apps/{appId}", "/v2/apps/fresh", r#"{"cmd":"sleep 1"}"#).await;
    walk(&h, d, "PATCH", "/v2/apps/{appId}", "/v2/apps/nope", r#"{"cmd":"sleep 1"}"#).await;
    walk(&h, d, "PUT", "/v2/apps", "/v2/apps?force=true", r#"[{"id":"fresh","instances":0}]"#)
        .await;
    walk(&h, d, "PATCH", "/v2/apps", "/v2/apps", r#"[{"cmd":"x"}]"#).await;
    walk(&h, d, "POST", "/v2/apps/{appId}/restart", "/v2/apps/fresh/restart?force=true", "").await;
    walk(&h, d, "GET", "/v2/deployments", "/v2/deployments", "").await;
    walk(&h, d, "DELETE", "/v2/apps/{appId}/tasks", "/v2/apps/fresh/tasks", "").await;
    walk(&h, d, "DELETE", "/v2/apps/{appId}/tasks/{taskId}", "/v2/apps/fresh/tasks/nope", "").await;
    let task = &tasks[0];
    let r =
        call(&h.state, "DELETE", &format!("/v2/apps/prod/web/tasks/{task}?force=true"), "").await;
    check(
        d,
        "DELETE",
        "/v2/apps/{appId}/tasks/{taskId}",
        &format!("/v2/apps/web/tasks/{task}"),
        &r,
    );
    let r = call(&h.state, "DELETE", "/v2/apps/prod/web/tasks?scale=true&force=true", "").await;
    check(d, "DELETE", "/v2/apps/{appId}/tasks", "/v2/apps/web/tasks", &r);
    walk(&h, d, "POST", "/v2/tasks/delete", "/v2/tasks/delete", r#"{"ids":["nope"]}"#).await;
    walk(
        &h,
        d,
        "POST",
        "/v2/tasks/delete",
        "/v2/tasks/delete?scale=true&wipe=true",
        r#"{"ids":[]}"#,
    )
    .await;
    walk(&h, d, "POST", "/v2/tasks/delete", "/v2/tasks/delete", r#"{"ids":[]}"#).await;
    walk(&h, d, "DELETE", "/v2/queue/{appId}/delay", "/v2/queue/nope/delay", "").await;
    walk(&h, d, "DELETE", "/v2/queue/{appId}/delay", "/v2/queue/argv/delay", "").await;
    let deployment = call(&h.state, "GET", "/v2/deployments", "").await.body[0]["id"].clone();
    let id = deployment.as_str().unwrap();
    walk(&h, d, "DELETE", "/v2/deployments/{id}", &format!("/v2/deployments/{id}"), "").await;
    walk(&h, d, "DELETE", "/v2/deployments/{id}", "/v2/deployments/nope?force=true", "").await;
    let group = r#"{"id":"/batch","apps":[{"id":"a","cmd":"sleep 1","instances":0}]}"#;
    walk(&h, d, "POST", "/v2/groups", "/v2/groups?dryRun=true", group).await;
    walk(&h, d, "POST", "/v2/groups", "/v2/groups", group).await;
    walk(&h, d, "POST", "/v2/groups/{groupId}", "/v2/groups/batch", group).await;
    walk(&h, d, "PUT", "/v2/groups/{groupId}", "/v2/groups/batch?force=true", r#"{"scaleBy":2}"#)
        .await;
    walk(&h, d, "PUT", "/v2/groups", "/v2/groups?force=true", r#"{"scaleBy":1e12}"#).await;
    walk(&h, d, "DELETE", "/v2/groups/{groupId}", "/v2/groups/batch?force=true", "").await;
    walk(&h, d, "DELETE", "/v2/groups/{groupId}", "/v2/groups/nope", "").await;
    walk(&h, d, "DELETE", "/v2/apps/{appId}", "/v2/apps/fresh", "").await;
    walk(&h, d, "DELETE", "/v2/apps/{appId}", "/v2/apps/nope", "").await;

    // Jobs: stored, run, reported.
    let job = json!({"name": "report", "command": "echo hi",
        "schedule": "R/2030-01-01T00:00:00Z/P1D",
        "environmentVariables": [{"name": "A", "value": "1"}],
        "container": {"type": "DOCKER", "image": "busybox"}});
    walk(&h, d, "POST", "/v1/scheduler/iso8601", "/v1/scheduler/iso8601", &job.to_string()).await;
    walk(&h, d, "POST", "/v1/scheduler/iso8601", "/v1/scheduler/iso8601", "{}").await;
    let child = json!({"name": "child", "command": "echo", "parents": ["report"]});
    walk(&h, d, "POST", "/v1/scheduler/dependency", "/v1/scheduler/dependency", &child.to_string())
        .await;
    walk(&h, d, "PUT", "/v1/scheduler/job/{name}", "/v1/scheduler/job/report?arguments=a", "")
        .await;
    h.inputs.send(Input::Offers(vec![offer("o2", 4096.0)])).await.unwrap();
    until(&h.state, "the run starts", |snap| {
        snap.runs.values().flat_map(|r| r.values()).any(|r| !r.task_ids.is_empty())
    })
    .await;
    let run_task = h
        .state
        .snap()
        .runs
        .values()
        .flat_map(|r| r.values())
        .find_map(|r| r.task_ids.last().cloned())
        .unwrap();
    h.inputs.send(Input::Status(status(&run_task, TaskState::Running, None))).await.unwrap();
    h.clock.advance(Duration::from_secs(61));
    h.inputs.send(Input::Status(status(&run_task, TaskState::Finished, None))).await.unwrap();
    until(&h.state, "the run succeeds", |snap| {
        snap.job_states.values().any(|st| st.success_count == 1)
    })
    .await;
    for (template, uri) in [
        ("/v1/scheduler/jobs", "/v1/scheduler/jobs"),
        ("/v1/scheduler/jobs/summary", "/v1/scheduler/jobs/summary"),
        ("/v1/scheduler/jobs/search", "/v1/scheduler/jobs/search?name=rep&limit=5"),
        ("/v1/scheduler/jobs/search", "/v1/scheduler/jobs/search?limit=x"),
        ("/v1/scheduler/job/{name}", "/v1/scheduler/job/report"),
        ("/v1/scheduler/job/{name}", "/v1/scheduler/job/child"),
        ("/v1/scheduler/job/{name}", "/v1/scheduler/job/nope"),
        ("/v1/scheduler/job/stat/{name}", "/v1/scheduler/job/stat/report"),
        ("/v1/scheduler/job/{name}/runs", "/v1/scheduler/job/report/runs"),
        ("/v1/scheduler/job/{name}/runs", "/v1/scheduler/job/nope/runs"),
        ("/v1/scheduler/stats/{percentile}", "/v1/scheduler/stats/median"),
        ("/v1/scheduler/stats/{percentile}", "/v1/scheduler/stats/p42"),
        ("/v1/scheduler/graph/dot", "/v1/scheduler/graph/dot"),
        ("/v1/scheduler/graph/csv", "/v1/scheduler/graph/csv"),
    ] {
        walk(&h, d, "GET", template, uri, "").await;
    }
    walk(
        &h,
        d,
        "POST",
        "/v1/scheduler/job/{name}/task/{task}/progress",
        "/v1/scheduler/job/report/task/t/progress",
        "",
    )
    .await;
    walk(&h, d, "PUT", "/v1/scheduler/job/success/{name}", "/v1/scheduler/job/success/report", "")
        .await;
    walk(&h, d, "DELETE", "/v1/scheduler/task/kill/{name}", "/v1/scheduler/task/kill/report", "")
        .await;
    walk(&h, d, "DELETE", "/v1/scheduler/job/{name}", "/v1/scheduler/job/child", "").await;
    walk(&h, d, "DELETE", "/v1/scheduler/job/{name}", "/v1/scheduler/job/nope", "").await;
    walk(&h, d, "DELETE", "/v2/leader", "/v2/leader", "").await;
}

/// `/v2/apps/prod/web/tasks` against `/v2/apps/{appId}/tasks`: the app id's
/// segments as one (`prod%2Fweb`), so the path has the template's depth.
fn path_segments(path: &str, template: &str) -> String {
    let prefix = template.split("{appId}").next().unwrap_or_default();
    let suffix = template.split("{appId}").nth(1).unwrap_or_default();
    let id = path.strip_prefix(prefix).unwrap_or(path);
    let id = id.strip_suffix(suffix).unwrap_or(id);
    id.replace('/', "%2F")
}
