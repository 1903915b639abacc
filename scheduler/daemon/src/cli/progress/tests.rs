//! Golden tests of following a deployment: fixed sequences of events and
//! polls in, the live view after each input (only when it changed, as a log
//! shows it) and the outcome out.

use expect_test::{Expect, expect};
use serde_json::{Value, json};

use super::*;

const V1: &str = "2026-08-21T09:00:00.000Z";
const V2: &str = "2026-08-21T09:10:00.000Z";
const DEP: &str = "0f9e2c7a-5b1d-4c3e-9a8b-7d6e5f4a3b21";
const ROLLBACK: &str = "6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d";

/// An app as the API renders it (in plans and `GET /v2/apps/{id}`).
fn app(id: &str, instances: u32, version: &str, config_since: &str, checks: bool) -> Value {
    let mut app = json!({
        "id": id, "cmd": "exec httpd", "instances": instances, "cpus": 0.1, "mem": 32,
        "version": version, "versionInfo": {"lastScalingAt": version, "lastConfigChangeAt": config_since},
        "rollbackOnFailure": true, "progressDeadlineSeconds": 12,
    });
    if checks {
        app["healthChecks"] = json!([{"protocol": "HTTP", "path": "/health", "portIndex": 0}]);
    }
    app
}

fn plan(id: &str, original: Vec<Value>, target: Vec<Value>, steps: Value) -> Value {
    json!({
        "id": id, "version": V2,
        "original": {"id": "/", "apps": original, "groups": []},
        "target": {"id": "/", "apps": target, "groups": []},
        "steps": steps,
    })
}

fn event(kind: &str, mut data: Value) -> Input {
    data["eventType"] = json!(kind);
    data["timestamp"] = json!(V2);
    Input::Event(kind.to_owned(), serde_json::from_value(data).unwrap())
}

fn status(app: &str, task: &str, state: &str, version: &str, message: &str) -> Input {
    event(
        "status_update_event",
        json!({"appId": app, "taskId": task, "taskStatus": state, "version": version,
               "message": message, "host": "agent-1", "ports": [31000], "slaveId": "S1"}),
    )
}

fn health(app: &str, task: &str, alive: bool, version: &str) -> Input {
    event(
        "health_status_changed_event",
        json!({"appId": app, "taskId": task, "alive": alive, "version": version,
               "instanceId": task.split("._app").next()}),
    )
}

fn polled_app(app: Value, tasks: Value) -> Input {
    let mut app = app;
    app["tasks"] = tasks;
    let id = app["id"].as_str().unwrap().to_owned();
    Input::App(id, Some(serde_json::from_value(app).unwrap()))
}

fn deployments(list: Value) -> Input {
    Input::Deployments(serde_json::from_value(list).unwrap())
}

/// Feeds the inputs; the transcript is the lines a log would show (each
/// line once per change), then the outcome.
fn check(mut progress: Progress, inputs: Vec<Input>, expect: Expect) {
    let mut shown: Vec<String> = Vec::new();
    let mut out = String::new();
    for input in inputs {
        progress.apply(input);
        let view = progress.view();
        for line in new_lines(&shown, &view) {
            out.push_str(&line);
            out.push('\n');
        }
        shown = view;
        if let Some(outcome) = progress.outcome() {
            out.push_str(&format!("=> {}: {}\n", exit(&outcome), outcome.line));
            out.push_str(&format!("{}\n", outcome.json));
            break;
        }
    }
    if progress.outcome().is_none() {
        out.push_str("=> still running\n");
    }
    expect.assert_eq(&out);
}

fn exit(outcome: &Outcome) -> &'static str {
    if outcome.success { "exit 0" } else { "exit 2" }
}

fn web_start_plan() -> Value {
    plan(
        DEP,
        vec![],
        vec![app("/web", 2, V2, V2, true)],
        json!([{"actions": [{"action": "StartApplication", "app": "/web"}]}]),
    )
}

#[test]
fn a_new_app_is_followed_until_it_is_healthy() {
    let p = web_start_plan();
    let step = json!({"actions": [{"action": "StartApplication", "app": "/web"}]});
    let (t1, t2) = ("web.instance-a._app.1", "web.instance-b._app.1");
    check(
        Progress::new(DEP, V2, &["/web".into()], false),
        vec![
            event("deployment_info", json!({"plan": p, "currentStep": step})),
            status("/web", t1, "TASK_STAGING", V2, ""),
            status("/web", t2, "TASK_STAGING", V2, ""),
            status("/web", t1, "TASK_RUNNING", V2, ""),
            status("/web", t2, "TASK_RUNNING", V2, ""),
            health("/web", t1, true, V2),
            health("/web", t2, true, V2),
            event("deployment_step_success", json!({"plan": p, "currentStep": step})),
            event("deployment_success", json!({"id": DEP, "plan": p})),
        ],
        expect![[r#"
            deployment 0f9e2c7a-5b1d-4c3e-9a8b-7d6e5f4a3b21: step 1/1: StartApplication /web
              /web: 0/2 healthy, 0 running
              /web: 0/2 healthy, 0 running, 1 starting
              /web: 0/2 healthy, 0 running, 2 starting
              /web: 0/2 healthy, 1 running, 1 starting
              /web: 0/2 healthy, 2 running
              /web: 1/2 healthy, 2 running
              /web: 2/2 healthy, 2 running
            deployment 0f9e2c7a-5b1d-4c3e-9a8b-7d6e5f4a3b21: done
            => exit 0: deployment 0f9e2c7a-5b1d-4c3e-9a8b-7d6e5f4a3b21 succeeded: /web 2/2 healthy
            {"apps":[{"deleted":false,"healthCheckFailure":null,"healthy":2,"id":"/web","lastTaskFailure":null,"otherVersions":0,"running":2,"staging":0,"target":2}],"deploymentId":"0f9e2c7a-5b1d-4c3e-9a8b-7d6e5f4a3b21","outcome":"succeeded"}
        "#]],
    );
}

#[test]
fn an_unhealthy_version_fails_with_its_cause_and_is_rolled_back() {
    let (old1, old2, new1, new2) = (
        "web.instance-a._app.1",
        "web.instance-b._app.1",
        "web.instance-c._app.1",
        "web.instance-d._app.1",
    );
    let restart = json!([{"actions": [{"action": "RestartApplication", "app": "/web"}]}]);
    let p = plan(
        DEP,
        vec![app("/web", 2, V1, V1, true)],
        vec![app("/web", 2, V2, V2, true)],
        restart.clone(),
    );
    let back = plan(
        ROLLBACK,
        vec![app("/web", 2, V2, V2, true)],
        vec![app("/web", 2, V1, V1, true)],
        restart.clone(),
    );
    let old_task = |id: &str| {
        json!({"id": id, "appId": "/web", "host": "agent-1", "ports": [31000], "state": "TASK_RUNNING",
               "version": V1, "healthCheckResults": [{"alive": true, "consecutiveFailures": 0}]})
    };
    let failing = json!({"id": new1, "appId": "/web", "host": "agent-1", "ports": [31002],
        "state": "TASK_RUNNING", "version": V2,
        "healthCheckResults": [{"alive": false, "consecutiveFailures": 2, "lastFailureCause": "HTTP 404"}]});
    let kill_message = "Killed after failing health check 1 (HTTP GET /health on port 31002) 3 times: \
                        HTTP 404. Killed by signal 15";
    check(
        Progress::new(DEP, V2, &["/web".into()], false),
        vec![
            event("deployment_info", json!({"plan": p, "currentStep": restart[0]})),
            polled_app(app("/web", 2, V2, V2, true), json!([old_task(old1), old_task(old2)])),
            status("/web", new1, "TASK_STAGING", V2, ""),
            status("/web", new1, "TASK_RUNNING", V2, ""),
            polled_app(
                app("/web", 2, V2, V2, true),
                json!([old_task(old1), old_task(old2), failing]),
            ),
            health("/web", new1, false, V2),
            status("/web", new1, "TASK_KILLED", V2, kill_message),
            status("/web", new2, "TASK_RUNNING", V2, ""),
            event(
                "deployment_failed",
                json!({"id": DEP, "plan": p, "canceled": false,
                       "reason": "no progress within the progress deadline of 12s"}),
            ),
            event("deployment_info", json!({"plan": back, "currentStep": restart[0]})),
            status("/web", new2, "TASK_KILLED", V2, "Killed by signal 15"),
            event("deployment_success", json!({"id": ROLLBACK, "plan": back})),
        ],
        expect![[r#"
            deployment 0f9e2c7a-5b1d-4c3e-9a8b-7d6e5f4a3b21: step 1/1: RestartApplication /web
              /web: 0/2 healthy, 0 running
              /web: 0/2 healthy, 0 running, 2 of the previous version
              /web: 0/2 healthy, 0 running, 1 starting, 2 of the previous version
              /web: 0/2 healthy, 1 running, 2 of the previous version
              /web: 0/2 healthy, 1 running, 2 of the previous version; health check failing: HTTP 404
              /web: 0/2 healthy, 0 running, 2 of the previous version; health check failing: HTTP 404
              /web: 0/2 healthy, 1 running, 2 of the previous version; health check failing: HTTP 404
            deployment 0f9e2c7a-5b1d-4c3e-9a8b-7d6e5f4a3b21 failed: no progress within the progress deadline of 12s
            rollback 6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d: step 1/1: RestartApplication /web
              /web: 2/2 healthy, 2 running, 1 of the failed version
              /web: 2/2 healthy, 2 running
            rollback 6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d: done
            => exit 2: deployment 0f9e2c7a-5b1d-4c3e-9a8b-7d6e5f4a3b21 failed: no progress within the progress deadline of 12s (/web: health check failing: HTTP 404; last task failure: TASK_KILLED: Killed after failing health check 1 (HTTP GET /health on port 31002) 3 times: HTTP 404. Killed by signal 15); rolled back by deployment 6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d: /web 2/2 healthy
            {"apps":[{"deleted":false,"healthCheckFailure":"HTTP 404","healthy":2,"id":"/web","lastTaskFailure":"TASK_KILLED: Killed after failing health check 1 (HTTP GET /health on port 31002) 3 times: HTTP 404. Killed by signal 15","otherVersions":0,"running":2,"staging":0,"target":2}],"deploymentId":"0f9e2c7a-5b1d-4c3e-9a8b-7d6e5f4a3b21","outcome":"failed","reason":"no progress within the progress deadline of 12s","rollback":{"deploymentId":"6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d","outcome":"succeeded"}}
        "#]],
    );
}

#[test]
fn a_failure_of_an_app_that_opted_out_of_rollback_ends_at_once() {
    let mut target = app("/web", 2, V2, V2, false);
    target["rollbackOnFailure"] = json!(false);
    let p = plan(
        DEP,
        vec![app("/web", 1, V1, V1, false)],
        vec![target],
        json!([{"actions": [{"action": "ScaleApplication", "app": "/web"}]}]),
    );
    check(
        Progress::new(DEP, V2, &["/web".into()], false),
        vec![event(
            "deployment_failed",
            json!({"id": DEP, "plan": p, "canceled": false,
                   "reason": "no progress within the progress deadline of 12s"}),
        )],
        expect![[r#"
            deployment 0f9e2c7a-5b1d-4c3e-9a8b-7d6e5f4a3b21 failed: no progress within the progress deadline of 12s
              /web: 0/2 running
            => exit 2: deployment 0f9e2c7a-5b1d-4c3e-9a8b-7d6e5f4a3b21 failed: no progress within the progress deadline of 12s; not rolled back
            {"apps":[{"deleted":false,"healthCheckFailure":null,"healthy":0,"id":"/web","lastTaskFailure":null,"otherVersions":0,"running":0,"staging":0,"target":2}],"deploymentId":"0f9e2c7a-5b1d-4c3e-9a8b-7d6e5f4a3b21","outcome":"failed","reason":"no progress within the progress deadline of 12s","rollback":null}
        "#]],
    );
}

#[test]
fn a_forced_cancel_is_a_failure_without_rollback() {
    check(
        Progress::new(DEP, V2, &["/web".into()], false),
        vec![event(
            "deployment_failed",
            json!({"id": DEP, "plan": web_start_plan(), "canceled": true,
                   "reason": "canceled by a forced change"}),
        )],
        expect![[r#"
            deployment 0f9e2c7a-5b1d-4c3e-9a8b-7d6e5f4a3b21 failed: canceled by a forced change
              /web: 0/2 healthy, 0 running
            => exit 2: deployment 0f9e2c7a-5b1d-4c3e-9a8b-7d6e5f4a3b21 failed: canceled by a forced change; not rolled back
            {"apps":[{"deleted":false,"healthCheckFailure":null,"healthy":0,"id":"/web","lastTaskFailure":null,"otherVersions":0,"running":0,"staging":0,"target":2}],"deploymentId":"0f9e2c7a-5b1d-4c3e-9a8b-7d6e5f4a3b21","outcome":"failed","reason":"canceled by a forced change","rollback":null}
        "#]],
    );
}

#[test]
fn without_the_event_stream_polls_decide_after_two_quiet_polls() {
    let open = json!([{"id": DEP, "version": V2, "affectedApps": ["/web"], "currentStep": 1,
        "totalSteps": 1, "currentActions": [{"action": "ScaleApplication", "app": "/web"}],
        "steps": [{"actions": [{"action": "ScaleApplication", "app": "/web"}]}]}]);
    let task = |id: &str| {
        json!({"id": id, "appId": "/web", "host": "agent-1", "ports": [31000],
               "state": "TASK_RUNNING", "version": V1})
    };
    // Scaled from 1 to 2: the app's version is the change's, its
    // configuration (and so its tasks') is older.
    let scaled = app("/web", 2, V2, V1, false);
    check(
        Progress::new(DEP, V2, &["/web".into()], false),
        vec![
            deployments(open),
            polled_app(scaled.clone(), json!([task("web.instance-a._app.1")])),
            deployments(json!([])),
            polled_app(
                scaled.clone(),
                json!([task("web.instance-a._app.1"), task("web.instance-b._app.1")]),
            ),
            deployments(json!([])),
            polled_app(
                scaled,
                json!([task("web.instance-a._app.1"), task("web.instance-b._app.1")]),
            ),
        ],
        expect![[r#"
            deployment 0f9e2c7a-5b1d-4c3e-9a8b-7d6e5f4a3b21: step 1/1: ScaleApplication /web
              /web: 0/? running
              /web: 1/2 running
              /web: 2/2 running
            deployment 0f9e2c7a-5b1d-4c3e-9a8b-7d6e5f4a3b21: done
            => exit 0: deployment 0f9e2c7a-5b1d-4c3e-9a8b-7d6e5f4a3b21 succeeded: /web 2/2 running
            {"apps":[{"deleted":false,"healthCheckFailure":null,"healthy":0,"id":"/web","lastTaskFailure":null,"otherVersions":0,"running":2,"staging":0,"target":2}],"deploymentId":"0f9e2c7a-5b1d-4c3e-9a8b-7d6e5f4a3b21","outcome":"succeeded"}
        "#]],
    );
}

#[test]
fn without_the_event_stream_an_app_back_at_its_old_version_is_a_failure() {
    check(
        Progress::new(DEP, V2, &["/web".into()], false),
        vec![
            deployments(json!([])),
            deployments(json!([])),
            polled_app(app("/web", 2, V1, V1, false), json!([])),
        ],
        expect![[r#"
            deployment 0f9e2c7a-5b1d-4c3e-9a8b-7d6e5f4a3b21: step 1/?
              /web: 0/? running
            deployment 0f9e2c7a-5b1d-4c3e-9a8b-7d6e5f4a3b21 failed: the deployment ended, but /web is at 2026-08-21T09:00:00.000Z (wanted: at 2026-08-21T09:10:00.000Z): it was canceled, rolled back or replaced, and without the event stream the reason is unknown
              /web: 0/2 running
            => exit 2: deployment 0f9e2c7a-5b1d-4c3e-9a8b-7d6e5f4a3b21 failed: the deployment ended, but /web is at 2026-08-21T09:00:00.000Z (wanted: at 2026-08-21T09:10:00.000Z): it was canceled, rolled back or replaced, and without the event stream the reason is unknown
            {"apps":[{"deleted":false,"healthCheckFailure":null,"healthy":0,"id":"/web","lastTaskFailure":null,"otherVersions":0,"running":0,"staging":0,"target":2}],"deploymentId":"0f9e2c7a-5b1d-4c3e-9a8b-7d6e5f4a3b21","outcome":"failed","reason":"the deployment ended, but /web is at 2026-08-21T09:00:00.000Z (wanted: at 2026-08-21T09:10:00.000Z): it was canceled, rolled back or replaced, and without the event stream the reason is unknown","rollback":null}
        "#]],
    );
}

#[test]
fn a_deleted_app_is_followed_until_its_tasks_are_gone() {
    let p = plan(
        DEP,
        vec![app("/web", 1, V1, V1, false)],
        vec![],
        json!([{"actions": [{"action": "StopApplication", "app": "/web"}]}]),
    );
    let step = json!({"actions": [{"action": "StopApplication", "app": "/web"}]});
    check(
        Progress::new(DEP, V2, &["/web".into()], true),
        vec![
            event("deployment_info", json!({"plan": p, "currentStep": step})),
            status("/web", "web.instance-a._app.1", "TASK_KILLING", V1, ""),
            status("/web", "web.instance-a._app.1", "TASK_KILLED", V1, "Killed by signal 15"),
            event("deployment_success", json!({"id": DEP, "plan": p})),
        ],
        expect![[r#"
            deployment 0f9e2c7a-5b1d-4c3e-9a8b-7d6e5f4a3b21: step 1/1: StopApplication /web
              /web: stopping
              /web: stopping, 1 left
              /web: stopping
            deployment 0f9e2c7a-5b1d-4c3e-9a8b-7d6e5f4a3b21: done
              /web: stopped
            => exit 0: deployment 0f9e2c7a-5b1d-4c3e-9a8b-7d6e5f4a3b21 succeeded: /web deleted
            {"apps":[{"deleted":true,"healthCheckFailure":null,"healthy":0,"id":"/web","lastTaskFailure":null,"otherVersions":0,"running":0,"staging":0,"target":null}],"deploymentId":"0f9e2c7a-5b1d-4c3e-9a8b-7d6e5f4a3b21","outcome":"succeeded"}
        "#]],
    );
}

#[test]
fn events_of_other_deployments_and_apps_change_nothing() {
    let other = plan(
        "other",
        vec![],
        vec![app("/db", 1, V2, V2, false)],
        json!([{"actions": [{"action": "StartApplication", "app": "/db"}]}]),
    );
    check(
        Progress::new(DEP, V2, &["/web".into()], false),
        vec![
            event(
                "deployment_info",
                json!({"plan": web_start_plan(), "currentStep": {"actions": []}}),
            ),
            event("deployment_info", json!({"plan": other, "currentStep": {"actions": []}})),
            status("/db", "db.instance-a._app.1", "TASK_RUNNING", V2, ""),
            event("deployment_success", json!({"id": "other", "plan": other})),
            event("deployment_failed", json!({"id": "other", "plan": other, "reason": "x"})),
        ],
        expect![[r#"
            deployment 0f9e2c7a-5b1d-4c3e-9a8b-7d6e5f4a3b21: step 1/1: StartApplication /web
              /web: 0/2 healthy, 0 running
            => still running
        "#]],
    );
}

#[test]
fn a_timeout_says_where_the_deployment_stands_and_how_to_cancel_it() {
    let mut progress = Progress::new(DEP, V2, &["/web".into()], false);
    let step = json!({"actions": [{"action": "StartApplication", "app": "/web"}]});
    progress
        .apply(event("deployment_info", json!({"plan": web_start_plan(), "currentStep": step})));
    progress.apply(status(
        "/web",
        "web.instance-a._app.1",
        "TASK_FAILED",
        V2,
        "exited with status 1",
    ));
    let outcome = progress.timed_out(600);
    assert!(!outcome.success);
    expect![[r#"
        deployment 0f9e2c7a-5b1d-4c3e-9a8b-7d6e5f4a3b21 timed out after 600s at step 1/1: StartApplication /web: /web 0/2 healthy (/web: last task failure: TASK_FAILED: exited with status 1); it goes on: cancel it with `drover deployments cancel 0f9e2c7a-5b1d-4c3e-9a8b-7d6e5f4a3b21`"#]]
    .assert_eq(&outcome.line);
    assert_eq!(outcome.json["outcome"], "timeout");
}

#[test]
fn a_rollback_still_running_at_the_timeout_is_named() {
    let mut progress = Progress::new(DEP, V2, &["/web".into()], false);
    let p = web_start_plan();
    progress.apply(event(
        "deployment_failed",
        json!({"id": DEP, "plan": p, "reason": "no progress within the progress deadline of 12s"}),
    ));
    // Polls see the rollback (a deployment of /web not seen before).
    progress
        .apply(deployments(json!([{"id": ROLLBACK, "affectedApps": ["/web"], "currentStep": 1,
        "totalSteps": 1, "currentActions": [{"action": "StopApplication", "app": "/web"}]}])));
    expect![[r#"
        rollback 6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d: step 1/1: StopApplication /web
          /web: 0/? healthy, 0 running"#]]
    .assert_eq(&progress.view().join("\n"));
    expect![[r#"
        deployment 0f9e2c7a-5b1d-4c3e-9a8b-7d6e5f4a3b21 failed: no progress within the progress deadline of 12s; its rollback 6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d was still running after 30s (step 1/1: StopApplication /web)"#]]
    .assert_eq(&progress.timed_out(30).line);
}

#[test]
fn an_expected_rollback_that_never_shows_is_given_up_after_two_polls() {
    let mut progress = Progress::new(DEP, V2, &["/web".into()], false);
    progress.apply(event(
        "deployment_failed",
        json!({"id": DEP, "plan": web_start_plan(), "reason": "boom"}),
    ));
    assert!(progress.outcome().is_none());
    progress.apply(deployments(json!([])));
    assert!(progress.outcome().is_none());
    progress.apply(deployments(json!([])));
    let outcome = progress.outcome().unwrap();
    assert_eq!(
        outcome.line,
        "deployment 0f9e2c7a-5b1d-4c3e-9a8b-7d6e5f4a3b21 failed: boom; not rolled back"
    );
}

#[test]
fn a_log_shows_only_the_lines_that_changed() {
    let a = vec!["head".to_owned(), "  /a: 0/1".to_owned(), "  /b: 1/1".to_owned()];
    let b = vec!["head".to_owned(), "  /a: 1/1".to_owned(), "  /b: 1/1".to_owned()];
    assert_eq!(new_lines(&a, &b), ["  /a: 1/1"]);
    assert_eq!(new_lines(&[], &a), a);
}
