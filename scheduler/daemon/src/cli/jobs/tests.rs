//! Golden tests of what `drover jobs` prints, from fixed API answers.

use std::path::Path;

use expect_test::{Expect, expect};

use super::*;

/// `GET /v1/scheduler/jobs` of a Drover with a nightly cron job, a job run
/// by hand, its dependent and an exhausted `R1` job.
const JOBS: &str = r#"[
  {"name": "by-hand", "command": "/bin/sh", "shell": false, "executor": "", "executorFlags": "",
   "taskInfoData": "", "retries": 2, "owner": "ops@example.com", "ownerName": "", "description": "",
   "successCount": 1, "errorCount": 0, "lastSuccess": "2026-08-21T09:12:03.412Z", "lastError": "",
   "cpus": 0.1, "disk": 256.0, "mem": 32.0, "disabled": false, "softError": false,
   "dataProcessingJobType": false, "errorsSinceLastSuccess": 0, "fetch": [], "uris": [],
   "environmentVariables": [], "arguments": ["-c", "echo \"$@\" >> /tmp/out", "sh"],
   "highPriority": false, "runAsUser": "root", "concurrent": false, "maxCompletionTime": 0,
   "constraints": [], "schedule": "R/2099-01-01T00:00:00.000Z/PT1H", "scheduleTimeZone": "",
   "concurrencyPolicy": "FORBID", "startingDeadlineSeconds": null, "retryDelaySeconds": 60.0,
   "retryBackoffFactor": 1.0, "maxRetryDelaySeconds": 3600.0, "successfulRunsHistoryLimit": 3,
   "failedRunsHistoryLimit": 3, "nextRunAt": "2099-01-01T00:00:00.000Z", "lastRunStatus": "succeeded"},
  {"name": "load", "command": "load.sh --all", "shell": true, "retries": 0, "owner": "", "description": "",
   "successCount": 0, "errorCount": 0, "lastSuccess": "", "lastError": "", "cpus": 0.5, "disk": 256.0,
   "mem": 512.0, "disabled": false, "errorsSinceLastSuccess": 0, "arguments": [],
   "parents": ["extract", "nightly-report"], "concurrencyPolicy": "FORBID", "nextRunAt": null,
   "lastRunStatus": null},
  {"name": "nightly-report", "command": "report --since yesterday", "shell": true, "retries": 2,
   "owner": "data@example.com", "description": "The daily numbers\nfor the board",
   "successCount": 41, "errorCount": 3, "lastSuccess": "2026-08-21T01:15:42.100Z",
   "lastError": "2026-08-19T01:16:02.000Z", "cpus": 1.0, "disk": 256.0, "mem": 1024.0,
   "disabled": false, "errorsSinceLastSuccess": 0, "arguments": [],
   "container": {"type": "DOCKER", "image": "registry.example/report:2.3", "network": "HOST",
                 "volumes": [], "forcePullImage": false, "parameters": []},
   "schedule": "15 3 * * *", "scheduleTimeZone": "Europe/Berlin", "concurrencyPolicy": "REPLACE",
   "nextRunAt": "2026-08-22T01:15:00.000Z", "lastRunStatus": "running"},
  {"name": "once", "command": "true", "shell": true, "successCount": 0, "errorCount": 1,
   "lastSuccess": "", "lastError": "2026-08-20T12:00:01.000Z", "disabled": true,
   "errorsSinceLastSuccess": 1, "schedule": "R0/2026-08-20T13:00:00.000Z/PT1H",
   "scheduleTimeZone": "", "nextRunAt": null, "lastRunStatus": "failed"}
]"#;

/// `GET /v1/scheduler/jobs/summary` of the same Drover (`once` was deleted
/// between the two requests: a job missing from the summary shows `-`).
const SUMMARY: &str = r#"{"jobs": [
  {"name": "by-hand", "status": "success", "state": "idle", "schedule": "R/2099-01-01T00:00:00.000Z/PT1H", "parents": [], "disabled": false},
  {"name": "load", "status": "fresh", "state": "queued", "schedule": "", "parents": ["extract", "nightly-report"], "disabled": false},
  {"name": "nightly-report", "status": "success", "state": "1 running", "schedule": "15 3 * * *", "parents": [], "disabled": false}
]}"#;

fn jobs() -> Vec<Job> {
    serde_json::from_str(JOBS).unwrap()
}

fn job(name: &str) -> Job {
    jobs().into_iter().find(|j| j.name == name).unwrap()
}

#[test]
fn list_shows_each_job_with_its_last_result_and_activity() {
    let summary: Summary = serde_json::from_str(SUMMARY).unwrap();
    expect![[r#"
        NAME             SCHEDULE                           NEXT RUN              LAST RESULT   ACTIVE      SUCCESSES   ERRORS   DISABLED
        by-hand          R/2099-01-01T00:00:00.000Z/PT1H    2099-01-01 00:00:00   success       idle        1           0        no
        load             after extract, nightly-report      -                     fresh         queued      0           0        no
        nightly-report   15 3 * * * (Europe/Berlin)         2026-08-22 01:15:00   success       1 running   41          3        no
        once             R0/2026-08-20T13:00:00.000Z/PT1H   -                     -             -           0           1        yes
    "#]]
    .assert_eq(&render_list(&jobs(), &summary.jobs));
}

#[test]
fn list_of_no_jobs_is_its_header() {
    expect![[r#"
        NAME   SCHEDULE   NEXT RUN   LAST RESULT   ACTIVE   SUCCESSES   ERRORS   DISABLED
    "#]]
    .assert_eq(&render_list(&[], &[]));
}

fn check_show(name: &str, expect: Expect) {
    expect.assert_eq(&render_show(&job(name)));
}

#[test]
fn show_of_a_job_without_a_shell_quotes_its_command_line() {
    check_show(
        "by-hand",
        expect![[r#"
            Name:             by-hand
            Description:      -
            Owner:            ops@example.com
            Schedule:         R/2099-01-01T00:00:00.000Z/PT1H
            Time zone:        -
            Next run:         2099-01-01 00:00:00
            Parents:          -
            Command:          /bin/sh -c 'echo "$@" >> /tmp/out' sh
            Shell:            no
            Container image:  -
            Resources:        cpus 0.1, mem 32 MB, disk 256 MB
            Retries:          2
            Concurrency:      FORBID
            Disabled:         no
            Last run:         succeeded
            Successes:        1
            Errors:           0 (0 since the last success)
            Last success:     2026-08-21 09:12:03
            Last error:       -
        "#]],
    );
}

#[test]
fn show_of_a_container_job_names_its_zone_and_image() {
    check_show(
        "nightly-report",
        expect![[r#"
            Name:             nightly-report
            Description:      The daily numbers for the board
            Owner:            data@example.com
            Schedule:         15 3 * * *
            Time zone:        Europe/Berlin
            Next run:         2026-08-22 01:15:00
            Parents:          -
            Command:          report --since yesterday
            Shell:            yes
            Container image:  registry.example/report:2.3
            Resources:        cpus 1, mem 1024 MB, disk 256 MB
            Retries:          2
            Concurrency:      REPLACE
            Disabled:         no
            Last run:         running
            Successes:        41
            Errors:           3 (0 since the last success)
            Last success:     2026-08-21 01:15:42
            Last error:       2026-08-19 01:16:02
        "#]],
    );
}

#[test]
fn show_of_a_dependent_job_names_its_parents() {
    check_show(
        "load",
        expect![[r#"
            Name:             load
            Description:      -
            Owner:            -
            Schedule:         -
            Time zone:        -
            Next run:         -
            Parents:          extract, nightly-report
            Command:          load.sh --all
            Shell:            yes
            Container image:  -
            Resources:        cpus 0.5, mem 512 MB, disk 256 MB
            Retries:          0
            Concurrency:      FORBID
            Disabled:         no
            Last run:         -
            Successes:        0
            Errors:           0 (0 since the last success)
            Last success:     -
            Last error:       -
        "#]],
    );
}

/// `GET /v1/scheduler/job/nightly-report/runs`: every trigger and status.
const RUNS: &str = r#"[
  {"id": "0b7f6c1e-2d4a-4c53-9a51-5f1f0c8e2b11", "trigger": {"type": "schedule", "dueAt": "2026-08-19T01:15:00.000Z"},
   "status": "failed", "attempts": 3, "taskIds": ["a", "b", "c"], "createdAt": "2026-08-19T01:15:00.004Z",
   "startedAt": "2026-08-19T01:15:01.250Z", "finishedAt": "2026-08-19T01:16:02.000Z",
   "message": "Command exited with status 2\n(out of memory?)"},
  {"id": "51c2e0d9-8f5b-4e0a-b1a2-33c4d5e6f708", "trigger": {"type": "schedule", "dueAt": "2026-08-20T01:15:00.000Z"},
   "status": "missed", "attempts": 0, "taskIds": [], "createdAt": "2026-08-20T01:25:00.000Z",
   "startedAt": null, "finishedAt": "2026-08-20T01:25:00.000Z",
   "message": "could not start within the starting deadline of 600s"},
  {"id": "9e8d7c6b-5a49-4382-9180-7f6e5d4c3b2a", "trigger": {"type": "manual", "arguments": ["--since", "last week"]},
   "status": "succeeded", "attempts": 1, "taskIds": ["d"], "createdAt": "2026-08-21T01:14:01.000Z",
   "startedAt": "2026-08-21T01:14:02.000Z", "finishedAt": "2026-08-21T01:15:42.100Z",
   "message": "Command exited with status 0"},
  {"id": "c0ffee00-1111-4222-8333-444455556666", "trigger": {"type": "dependency"},
   "status": "running", "attempts": 1, "taskIds": ["e"], "createdAt": "2026-08-22T01:15:00.000Z",
   "startedAt": "2026-08-22T01:15:00.500Z", "finishedAt": null, "message": ""},
  {"id": "deadbeef-0000-4000-8000-000000000000", "trigger": {"type": "manual", "arguments": []},
   "status": "queued", "attempts": 0, "taskIds": [], "createdAt": "2026-08-22T01:15:03.000Z",
   "startedAt": null, "finishedAt": null, "message": ""}
]"#;

#[test]
fn history_shows_each_run_oldest_first() {
    let runs: Vec<Run> = serde_json::from_str(RUNS).unwrap();
    expect![[r#"
        RUN ID     TRIGGER                        STATUS      ATTEMPTS   STARTED               DURATION   MESSAGE
        0b7f6c1e   schedule 2026-08-19 01:15:00   failed      3          2026-08-19 01:15:01   1m0s       Command exited with status 2 (out of memory?)
        51c2e0d9   schedule 2026-08-20 01:15:00   missed      0          -                     -          could not start within the starting deadline of 600s
        9e8d7c6b   manual --since 'last week'     succeeded   1          2026-08-21 01:14:02   1m40s      Command exited with status 0
        c0ffee00   dependency                     running     1          2026-08-22 01:15:00   -
        deadbeef   manual                         queued      0          -                     -
    "#]]
    .assert_eq(&render_history(&runs));
}

#[test]
fn jobs_with_parents_are_posted_as_dependent_jobs() {
    let file = Path::new("job.json");
    let scheduled = add_request(br#"{"name": "a", "schedule": "R//PT1H", "parents": []}"#, file);
    assert_eq!(scheduled.unwrap(), ("/v1/scheduler/iso8601", "a".to_owned()));
    let dependent = add_request(br#"{"name": "b", "parents": ["a"]}"#, file);
    assert_eq!(dependent.unwrap(), ("/v1/scheduler/dependency", "b".to_owned()));
    let errors: Vec<String> = [&b"[{}]"[..], b"{\"name\": "]
        .iter()
        .map(|raw| format!("{:#}", add_request(raw, Path::new("-")).unwrap_err()))
        .collect();
    expect![[r#"
        stdin must hold one job, a JSON object
        stdin does not hold valid job JSON: EOF while parsing a value at line 1 column 9"#]]
    .assert_eq(&errors.join("\n"));
}

#[test]
fn manual_run_arguments_are_query_values() {
    assert_eq!(run_query(&[]).unwrap(), "");
    let args = ["hi".to_owned(), "two words&more".to_owned()];
    assert_eq!(run_query(&args).unwrap(), "?arguments=hi&arguments=two%20words%26more");
    let e = run_query(&["a,b".to_owned()]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "--arg 'a,b': the API splits arguments at commas, so an argument cannot contain one"
    );
}
