//! Golden tests of what `drover apps`, `tasks`, `deployments`, `queue` and
//! `events` print, from fixed API answers (in the shapes `sched-api`
//! renders).

use std::path::Path;

use expect_test::expect;

use super::*;
use crate::cli::{deployments, events, queue, tasks, wire};

/// `GET /v2/apps` of a Drover with a healthy web app mid-restart, a Docker
/// app without health checks and an app with a long command.
const APPS: &str = r#"{"apps": [
  {"id": "/prod/web", "cmd": "mkdir -p www && echo ok > www/health && exec /bin/busybox httpd -f -p $PORT0 -h www",
   "acceptedResourceRoles": ["*"], "backoffFactor": 1.15, "backoffSeconds": 1, "constraints": [["hostname", "UNIQUE"]],
   "cpus": 0.25, "disk": 0, "executor": "", "gpus": 0, "instances": 3, "labels": {"team": "web", "tier": "front"},
   "healthChecks": [{"protocol": "HTTP", "path": "/health", "ignoreHttp1xx": false, "portIndex": 0,
     "gracePeriodSeconds": 15, "intervalSeconds": 1, "timeoutSeconds": 1, "maxConsecutiveFailures": 3, "delaySeconds": 0}],
   "maxLaunchDelaySeconds": 300, "mem": 64, "networks": [{"mode": "host"}],
   "portDefinitions": [{"port": 10000, "protocol": "tcp", "name": "http"}], "requirePorts": false,
   "upgradeStrategy": {"maximumOverCapacity": 0, "minimumHealthCapacity": 0.5},
   "progressDeadlineSeconds": 300, "rollbackOnFailure": true, "version": "2026-08-21T09:10:00.000Z",
   "versionInfo": {"lastScalingAt": "2026-08-21T09:10:00.000Z", "lastConfigChangeAt": "2026-08-21T09:10:00.000Z"},
   "tasksStaged": 1, "tasksRunning": 2, "tasksHealthy": 2, "tasksUnhealthy": 0,
   "deployments": [{"id": "0f9e2c7a-5b1d-4c3e-9a8b-7d6e5f4a3b21"}]},
  {"id": "/prod/cache", "acceptedResourceRoles": ["*"], "cpus": 1, "disk": 0, "gpus": 0, "instances": 2, "mem": 1024.5,
   "container": {"type": "DOCKER", "docker": {"image": "registry.example/redis:7.2", "forcePullImage": false,
     "privileged": false, "parameters": []}, "volumes": [],
     "portMappings": [{"containerPort": 6379, "hostPort": 0, "servicePort": 10001, "protocol": "tcp"}]},
   "networks": [{"mode": "container/bridge"}], "constraints": [],
   "upgradeStrategy": {"maximumOverCapacity": 1, "minimumHealthCapacity": 1},
   "progressDeadlineSeconds": 600, "rollbackOnFailure": false, "version": "2026-08-20T12:00:00.000Z",
   "versionInfo": {"lastScalingAt": "2026-08-20T12:00:00.000Z", "lastConfigChangeAt": "2026-08-19T08:00:00.000Z"},
   "tasksStaged": 0, "tasksRunning": 2, "tasksHealthy": 0, "tasksUnhealthy": 0, "deployments": []},
  {"id": "/batch/args", "args": ["/bin/sh", "-c", "echo \"hello from $MESOS_TASK_ID\"; exec sleep 3600"],
   "cpus": 0.1, "mem": 32, "disk": 0, "gpus": 0, "instances": 0, "version": "2026-08-20T12:00:00.000Z",
   "tasksStaged": 0, "tasksRunning": 0, "tasksHealthy": 0, "tasksUnhealthy": 0, "deployments": []}
]}"#;

/// The web app's tasks (`embed=app.tasks`): two healthy of the current
/// version, one staging, one unhealthy of the previous version.
const TASKS: &str = r#"[
  {"appId": "/prod/web", "healthCheckResults": [{"alive": true, "consecutiveFailures": 0,
     "firstSuccess": "2026-08-21T09:10:20.000Z", "lastFailure": null, "lastSuccess": "2026-08-21T09:12:00.000Z",
     "lastFailureCause": null, "instanceId": "prod_web.instance-1"}],
   "host": "agent-1.example", "id": "prod_web.instance-1._app.2", "ipAddresses": [], "ports": [31000],
   "servicePorts": [10000], "slaveId": "S1", "state": "TASK_RUNNING", "stagedAt": "2026-08-21T09:10:01.000Z",
   "startedAt": "2026-08-21T09:10:03.120Z", "version": "2026-08-21T09:10:00.000Z", "localVolumes": [], "role": "*"},
  {"appId": "/prod/web", "healthCheckResults": [{"alive": false, "consecutiveFailures": 2,
     "lastFailureCause": "cannot connect to 127.0.0.1:31001: Connection refused (os error 111)"}],
   "host": "agent-2.example", "id": "prod_web.instance-2._app.1", "ports": [31001, 31002],
   "state": "TASK_RUNNING", "stagedAt": "2026-08-20T12:00:01.000Z", "startedAt": "2026-08-20T12:00:02.000Z",
   "version": "2026-08-20T12:00:00.000Z"},
  {"appId": "/prod/web", "healthCheckResults": [], "host": "agent-3.example", "id": "prod_web.instance-3._app.1",
   "ports": [], "state": "TASK_STAGING", "stagedAt": "2026-08-21T09:12:01.000Z",
   "version": "2026-08-21T09:10:00.000Z"}
]"#;

fn apps() -> Vec<App> {
    serde_json::from_str::<Apps>(APPS).unwrap().apps
}

fn tasks_of_web() -> Vec<Task> {
    serde_json::from_str(TASKS).unwrap()
}

#[test]
fn list_shows_counts_deployments_and_what_runs() {
    expect![[r#"
        ID            INSTANCES   HEALTHY   DEPLOYING   CPUS   MEM      IMAGE/CMD
        /prod/web     2/3         2/3       yes         0.25   64       mkdir -p www && echo ok > www/health &&…
        /prod/cache   2/2         -         no          1      1024.5   registry.example/redis:7.2
        /batch/args   0/0         -         no          0.1    32       /bin/sh -c 'echo "hello from $MESOS_TAS…
    "#]]
    .assert_eq(&render_list(&apps()));
}

#[test]
fn list_of_no_apps_is_its_header() {
    expect![[r#"
        ID   INSTANCES   HEALTHY   DEPLOYING   CPUS   MEM   IMAGE/CMD
    "#]]
    .assert_eq(&render_list(&[]));
}

#[test]
fn show_summarises_the_spec_and_lists_the_tasks() {
    let mut web = apps().remove(0);
    web.tasks = tasks_of_web();
    web.last_task_failure = Some(wire::TaskFailure {
        message:
            "Killed after failing health check 1 (HTTP GET /health on port 31004) 3 times: HTTP 404"
                .into(),
        state: "TASK_KILLED".into(),
        task_id: "prod_web.instance-4._app.1".into(),
        timestamp: "2026-08-21T09:05:00.000Z".into(),
        version: "2026-08-20T12:00:00.000Z".into(),
    });
    expect![[r#"
        ID:             /prod/web
        Version:        2026-08-21 09:10:00
        Config since:   2026-08-21 09:10:00
        Command:        mkdir -p www && echo ok > www/health && exec /bin/busybox httpd -f -p $PORT0 -h www
        Instances:      3 wanted, 2 running, 1 staging
        Health:         2 healthy, 0 unhealthy
        Resources:      cpus 0.25, mem 64 MB, disk 0 MB
        Ports:          10000/tcp (http)
        Health checks:  HTTP /health on port index 0, every 1s (timeout 1s, grace 15s), killed after 3 failures
        Constraints:    hostname:UNIQUE
        Labels:         team=web, tier=front
        Upgrade:        minimumHealthCapacity 0.5, maximumOverCapacity 0
        Deployment:     fails after 300s without progress, then rolled back
        Deployments:    0f9e2c7a-5b1d-4c3e-9a8b-7d6e5f4a3b21
        Last failure:   2026-08-21 09:05:00 TASK_KILLED: Killed after failing health check 1 (HTTP GET /health on port 31004) 3 times: HTTP 404

        TASK                         HOST              PORTS         STATE          HEALTH                                                 STARTED               VERSION
        prod_web.instance-1._app.2   agent-1.example   31000         TASK_RUNNING   healthy                                                2026-08-21 09:10:03   2026-08-21 09:10:00
        prod_web.instance-2._app.1   agent-2.example   31001,31002   TASK_RUNNING   unhealthy (cannot connect to 127.0.0.1:31001: Conn…)   2026-08-20 12:00:02   2026-08-20 12:00:00
        prod_web.instance-3._app.1   agent-3.example   -             TASK_STAGING   -                                                      -                     2026-08-21 09:10:00
    "#]]
    .assert_eq(&render_show(&web));
}

#[test]
fn show_of_a_docker_app_names_its_image_and_port_mappings() {
    let cache = apps().remove(1);
    expect![[r#"
        ID:             /prod/cache
        Version:        2026-08-20 12:00:00
        Config since:   2026-08-19 08:00:00
        Image:          registry.example/redis:7.2
        Command:        -
        Instances:      2 wanted, 2 running, 0 staging
        Health:         -
        Resources:      cpus 1, mem 1024.5 MB, disk 0 MB
        Ports:          0:6379/tcp
        Health checks:  -
        Constraints:    -
        Labels:         -
        Upgrade:        minimumHealthCapacity 1, maximumOverCapacity 1
        Deployment:     fails after 600s without progress, then not rolled back
        Deployments:    -
        Last failure:   -

        TASK   HOST   PORTS   STATE   HEALTH   STARTED   VERSION
    "#]]
    .assert_eq(&render_show(&cache));
}

#[test]
fn an_app_file_names_its_app() {
    let file = Path::new("app.json");
    assert_eq!(app_id_of(br#"{"id": "prod/web", "cmd": "x"}"#, file).unwrap(), "/prod/web");
    assert_eq!(app_id_of(br#"{"id": "/web/"}"#, file).unwrap(), "/web");
    let errors: Vec<String> = [&br#"{"cmd": "x"}"#[..], b"[]", b"{", br#"{"id": "/"}"#]
        .iter()
        .map(|raw| format!("{:#}", app_id_of(raw, Path::new("-")).unwrap_err()))
        .collect();
    expect![[r#"
        stdin: the app has no "id"
        stdin must hold one app, a JSON object
        stdin does not hold valid app JSON: EOF while parsing an object at line 1 column 1
        stdin: the app has no "id""#]]
    .assert_eq(&errors.join("\n"));
}

#[test]
fn tasks_show_app_ports_state_and_health() {
    expect![[r#"
        ID                           APP         HOST              PORTS         STATE          HEALTH                                                 STARTED
        prod_web.instance-1._app.2   /prod/web   agent-1.example   31000         TASK_RUNNING   healthy                                                2026-08-21 09:10:03
        prod_web.instance-2._app.1   /prod/web   agent-2.example   31001,31002   TASK_RUNNING   unhealthy (cannot connect to 127.0.0.1:31001: Conn…)   2026-08-20 12:00:02
        prod_web.instance-3._app.1   /prod/web   agent-3.example   -             TASK_STAGING   -                                                      -
    "#]]
    .assert_eq(&tasks::render(&tasks_of_web()));
}

#[test]
fn deployments_show_step_and_current_actions() {
    let list: Vec<wire::Deployment> = serde_json::from_str(
        r#"[{"id": "0f9e2c7a-5b1d-4c3e-9a8b-7d6e5f4a3b21", "version": "2026-08-21T09:10:00.000Z",
             "affectedApps": ["/prod/db", "/prod/web"], "affectedPods": [],
             "steps": [{"actions": [{"action": "RestartApplication", "app": "/prod/db"}]},
                       {"actions": [{"action": "RestartApplication", "app": "/prod/web"}]}],
             "currentActions": [{"action": "RestartApplication", "app": "/prod/web", "readinessCheckResults": []}],
             "currentStep": 2, "totalSteps": 2},
            {"id": "6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d", "version": "2026-08-21T09:11:00.000Z",
             "affectedApps": ["/empty"], "steps": [], "currentActions": [], "currentStep": 1, "totalSteps": 0}]"#,
    )
    .unwrap();
    expect![[r#"
        ID                                     APPS                  STEP   ACTIONS                        VERSION
        0f9e2c7a-5b1d-4c3e-9a8b-7d6e5f4a3b21   /prod/db, /prod/web   2/2    RestartApplication /prod/web   2026-08-21 09:10:00
        6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d   /empty                1/0    -                              2026-08-21 09:11:00
    "#]]
    .assert_eq(&deployments::render(&list));
    assert_eq!(
        deployments::cancel_message("a", Some("b")),
        "deployment a canceled; rolling back in deployment b\n"
    );
    assert_eq!(deployments::cancel_message("a", None), "deployment a canceled, not rolled back\n");
}

#[test]
fn queue_shows_waiting_apps_delays_and_reject_reasons() {
    let q: wire::Queue = serde_json::from_str(
        r#"{"queue": [
          {"app": {"id": "/big", "cpus": 16, "mem": 32, "instances": 2}, "count": 2, "role": "*",
           "delay": {"timeLeftSeconds": 0, "overdue": true}, "since": "2026-08-21T09:00:00.000Z",
           "processedOffersSummary": {"processedOffersCount": 14, "unusedOffersCount": 14,
             "lastUnusedOfferAt": "2026-08-21T09:12:30.500Z", "lastUsedOfferAt": null,
             "rejectSummaryLastOffers": [
               {"reason": "UnfulfilledRole", "declined": 0, "processed": 14},
               {"reason": "UnfulfilledConstraint", "declined": 2, "processed": 14},
               {"reason": "InsufficientCpus", "declined": 12, "processed": 12},
               {"reason": "InsufficientMemory", "declined": 0, "processed": 0}],
             "rejectSummaryLaunchAttempt": []}},
          {"app": {"id": "/crashy"}, "count": 1, "delay": {"timeLeftSeconds": 17, "overdue": false},
           "since": "2026-08-21T09:12:00.000Z",
           "processedOffersSummary": {"processedOffersCount": 0, "unusedOffersCount": 0,
             "lastUnusedOfferAt": null, "rejectSummaryLastOffers": []}}
        ]}"#,
    )
    .unwrap();
    expect![[r#"
        APP       WAITING   DELAY   SINCE                 OFFERS   UNUSED   LAST UNUSED OFFER     DECLINED BY
        /big      2         -       2026-08-21 09:00:00   14       14       2026-08-21 09:12:30   InsufficientCpus 12, UnfulfilledConstraint 2
        /crashy   1         17s     2026-08-21 09:12:00   0        0        -                     -
    "#]]
    .assert_eq(&queue::render(&q.queue));
}

#[test]
fn events_are_one_line_each() {
    let events = [
        (
            "status_update_event",
            r#"{"slaveId":"S1","taskId":"web.instance-a._app.1","taskStatus":"TASK_FAILED","message":"exited with status 1\nbye","appId":"/web","host":"agent-1","ipAddresses":[],"ports":[31000],"version":"2026-08-21T09:10:00.000Z","eventType":"status_update_event","timestamp":"2026-08-21T09:12:00.250Z"}"#,
        ),
        (
            "health_status_changed_event",
            r#"{"appId":"/web","instanceId":"web.instance-a","taskId":"web.instance-a._app.1","version":"2026-08-21T09:10:00.000Z","alive":false,"eventType":"health_status_changed_event","timestamp":"2026-08-21T09:12:01.000Z"}"#,
        ),
        (
            "deployment_info",
            r#"{"plan":{"id":"d1","steps":[]},"currentStep":{"actions":[{"action":"ScaleApplication","app":"/web"}]},"eventType":"deployment_info","timestamp":"2026-08-21T09:12:02.000Z"}"#,
        ),
        (
            "deployment_success",
            r#"{"id":"d1","plan":{"id":"d1","steps":[{"actions":[{"action":"ScaleApplication","app":"/web"}]}]},"eventType":"deployment_success","timestamp":"2026-08-21T09:12:03.000Z"}"#,
        ),
        (
            "deployment_failed",
            r#"{"id":"d2","plan":{"id":"d2"},"reason":"no progress within the progress deadline of 12s","canceled":false,"eventType":"deployment_failed","timestamp":"2026-08-21T09:12:04.000Z"}"#,
        ),
        (
            "api_post_event",
            r#"{"clientIp":"127.0.0.1","uri":"/v2/apps","appDefinition":{"id":"/web"},"eventType":"api_post_event","timestamp":"2026-08-21T09:12:05.000Z"}"#,
        ),
        (
            "framework_message_event",
            r#"{"executorId":"e","message":"aGk=","eventType":"framework_message_event","timestamp":"2026-08-21T09:12:06.000Z"}"#,
        ),
        ("weird", "not json"),
    ];
    let lines: Vec<String> = events.iter().map(|(k, d)| events::render_line(k, d)).collect();
    expect![[r#"
        2026-08-21 09:12:00 status_update_event /web web.instance-a._app.1 TASK_FAILED on agent-1: exited with status 1 bye
        2026-08-21 09:12:01 health_status_changed_event /web web.instance-a._app.1 unhealthy
        2026-08-21 09:12:02 deployment_info d1 step: ScaleApplication /web
        2026-08-21 09:12:03 deployment_success d1 /web
        2026-08-21 09:12:04 deployment_failed d2: no progress within the progress deadline of 12s
        2026-08-21 09:12:05 api_post_event 127.0.0.1 /v2/apps /web
        2026-08-21 09:12:06 framework_message_event {"executorId":"e","message":"aGk="}
        - weird not json"#]]
    .assert_eq(&lines.join("\n"));
}

#[test]
fn long_text_is_cut_with_an_ellipsis() {
    assert_eq!(truncate("abcdef", 6), "abcdef");
    assert_eq!(truncate("abcdefg", 6), "abcde…");
    assert_eq!(truncate("a\nb", 6), "a b");
}
