//! Batch jobs on a real Mesos 1.11 master and agent through the
//! Chronos-compatible API: scheduled runs that exhaust their repetitions,
//! dependencies, retries, manual runs with arguments, a job in a Docker
//! container, killing a running job, and a restart (embedded store) and a
//! leader failover (state in the shared test etcd) that neither repeat nor
//! lose a run.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use drover_e2e::{Drover, MesosCluster, eventually};
use serde_json::{Value, json};

const RESOURCES: &str = "cpus:4;mem:4096;disk:8192;ports:[31000-32000]";

async fn job(d: &Drover, name: &str) -> anyhow::Result<Value> {
    let (status, body) = d.call("GET", &format!("/v1/scheduler/job/{name}"), None).await?;
    ensure!(status == 200, "GET job {name}: {status} {body}");
    Ok(body)
}

async fn post(d: &Drover, path: &str, body: &Value) -> anyhow::Result<()> {
    let (status, resp) = d.call("POST", path, Some(&body.to_string())).await?;
    ensure!(status == 204, "POST {path}: {status} {resp}");
    Ok(())
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_owned).collect()
}

async fn count_is(d: &Drover, name: &str, field: &str, n: u64) -> anyhow::Result<Option<Value>> {
    let j = job(d, name).await?;
    Ok((j[field].as_u64() == Some(n)).then_some(j))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_job_runs_its_repetitions_and_then_disables_itself() -> anyhow::Result<()> {
    let mesos = MesosCluster::start(1, RESOURCES)?;
    let drover = Drover::start(&mesos.master, &[]).await?;
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("runs");
    // An empty start means now (Chronos): three runs, two seconds apart.
    let spec = json!({
        "name": "thrice", "schedule": "R3//PT2S", "owner": "ops@example.com", "concurrent": true,
        "command": format!("echo \"$CHRONOS_JOB_NAME $DROVER_JOB_SCHEDULED_AT\" >> {}", out.display()),
        "cpus": 0.1, "mem": 32
    });
    post(&drover, "/v1/scheduler/iso8601", &spec).await?;
    let done = eventually("three successes", Duration::from_secs(60), || async {
        count_is(&drover, "thrice", "successCount", 3).await
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}\n{}", drover.log_text()))?;
    assert_eq!(done["errorCount"], 0);
    assert_eq!(done["errorsSinceLastSuccess"], 0);
    assert_eq!(done["lastError"], "", "{done}");
    let last = done["lastSuccess"].as_str().context("lastSuccess")?;
    ensure!(last.len() >= 20 && last.ends_with('Z'), "lastSuccess {last:?}");
    assert_eq!(done["disabled"], true, "R3 is exhausted: {done}");
    assert!(done["schedule"].as_str().is_some_and(|s| s.starts_with("R0/")), "{done}");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let runs = lines(&out);
    assert_eq!(runs.len(), 3, "exactly three runs: {runs:?}");
    let due: BTreeSet<&str> = runs.iter().filter_map(|l| l.strip_prefix("thrice ")).collect();
    assert_eq!(due.len(), 3, "three distinct due times: {runs:?}");
    // The runs' tasks were real Mesos tasks of the framework.
    let fw = mesos.framework("drover").await?.context("framework drover")?;
    let finished = fw["completed_tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["state"] == "TASK_FINISHED")
        .count();
    assert!(finished >= 3, "the master saw {finished} finished tasks");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependents_follow_their_parent_and_failures_are_retried() -> anyhow::Result<()> {
    let mesos = MesosCluster::start(1, RESOURCES)?;
    let drover = Drover::start(&mesos.master, &[]).await?;
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("order");
    let echo = |word: &str| format!("echo {word} >> {}", out.display());
    post(
        &drover,
        "/v1/scheduler/iso8601",
        &json!({"name": "extract", "schedule": "R1//PT1H", "command": echo("extract"), "owner": "a@b.c", "cpus": 0.1, "mem": 32}),
    )
    .await?;
    post(
        &drover,
        "/v1/scheduler/dependency",
        &json!({"name": "load", "parents": ["extract"], "command": echo("load"), "owner": "a@b.c", "cpus": 0.1, "mem": 32}),
    )
    .await?;
    // A job that always fails: one try and one retry, a second apart.
    post(
        &drover,
        "/v1/scheduler/iso8601",
        &json!({"name": "flaky", "schedule": "R1//PT1H", "command": "exit 3", "retries": 1,
                "retryDelaySeconds": 1, "owner": "a@b.c", "cpus": 0.1, "mem": 32}),
    )
    .await?;
    eventually("load to succeed", Duration::from_secs(60), || async {
        count_is(&drover, "load", "successCount", 1).await
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}\n{}", drover.log_text()))?;
    assert_eq!(lines(&out), vec!["extract", "load"], "the dependent ran after its parent");
    let flaky = eventually("flaky to fail", Duration::from_secs(60), || async {
        count_is(&drover, "flaky", "errorCount", 1).await
    })
    .await?;
    assert_eq!(flaky["successCount"], 0);
    assert_eq!(flaky["errorsSinceLastSuccess"], 1);
    let (status, runs) = drover.call("GET", "/v1/scheduler/job/flaky/runs", None).await?;
    ensure!(status == 200, "{runs}");
    let run = &runs.as_array().context("runs")?[0];
    assert_eq!(run["attempts"], 2, "one try and one retry: {run}");
    assert_eq!(run["taskIds"].as_array().map(Vec::len), Some(2), "{run}");

    // The graph shows the dependency.
    let (_, _, dot) =
        drover_e2e::http_raw(&format!("{}/v1/scheduler/graph/dot", drover.url), "GET", None)
            .await?;
    let dot = String::from_utf8_lossy(&dot);
    assert!(dot.contains("extract") && dot.contains("load"), "{dot}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_runs_take_arguments_and_jobs_run_in_docker() -> anyhow::Result<()> {
    let mesos = MesosCluster::start(1, RESOURCES)?;
    let drover = Drover::start(&mesos.master, &[]).await?;
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("args");
    // Not scheduled on its own for an hour; run by hand with arguments.
    post(
        &drover,
        "/v1/scheduler/iso8601",
        &json!({"name": "by-hand", "schedule": "R/2099-01-01T00:00:00Z/PT1H", "shell": false,
                "command": "/bin/sh", "arguments": ["-c", format!("echo \"$@\" >> {}", out.display()), "sh"],
                "owner": "a@b.c", "cpus": 0.1, "mem": 32}),
    )
    .await?;
    let (status, body) =
        drover.call("PUT", "/v1/scheduler/job/by-hand?arguments=hello,world", None).await?;
    ensure!(status == 204, "manual run: {status} {body}");
    eventually("the manual run", Duration::from_secs(60), || async {
        count_is(&drover, "by-hand", "successCount", 1).await
    })
    .await?;
    assert_eq!(lines(&out), vec!["hello world"]);

    // A job in a container from the local test image: its exit status is
    // the run's outcome.
    for (name, command) in [("in-docker", "test -x /bin/busybox"), ("in-docker-fails", "exit 7")] {
        post(
            &drover,
            "/v1/scheduler/iso8601",
            &json!({"name": name, "schedule": "R1//PT1H", "command": command, "retries": 0,
                    "container": {"type": "DOCKER", "image": "drover-test/busybox:latest", "network": "HOST"},
                    "owner": "a@b.c", "cpus": 0.1, "mem": 32}),
        )
        .await?;
    }
    eventually("the docker job to succeed", Duration::from_secs(90), || async {
        count_is(&drover, "in-docker", "successCount", 1).await
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}\n{}", drover.log_text()))?;
    eventually("the failing docker job to fail", Duration::from_secs(90), || async {
        count_is(&drover, "in-docker-fails", "errorCount", 1).await
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_failover_neither_repeats_nor_loses_a_scheduled_run() -> anyhow::Result<()> {
    let endpoint = std::env::var("DROVER_TEST_ETCD")
        .context("DROVER_TEST_ETCD is not set: run the tests through integration/test.sh")?;
    let prefix = format!("/drover-e2e/jobs-failover-{}", std::process::id());
    let mesos = MesosCluster::start(1, RESOURCES)?;
    let flags = ["--etcd", &endpoint, "--etcd-prefix", &prefix, "--leader-ttl-secs", "3"];
    let a = Drover::start(&mesos.master, &flags).await?;
    let b = Drover::start(&mesos.master, &flags).await?;
    let leader_url = eventually("a leader", Duration::from_secs(30), || async {
        let (status, body) = a.call("GET", "/v2/leader", None).await?;
        Ok((status == 200).then(|| body["leader"].as_str().map(str::to_owned)).flatten())
    })
    .await?;
    let (first, second) = if a.url.ends_with(&leader_url) { (&a, &b) } else { (&b, &a) };
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("due");
    post(
        first,
        "/v1/scheduler/iso8601",
        &json!({"name": "every2s", "schedule": "R//PT2S", "owner": "a@b.c", "cpus": 0.1, "mem": 32,
                "concurrent": true,
                "command": format!("echo $DROVER_JOB_SCHEDULED_AT >> {}", out.display())}),
    )
    .await?;
    eventually("three runs before the failover", Duration::from_secs(60), || async {
        Ok((lines(&out).len() >= 3).then_some(()))
    })
    .await?;
    first.signal("KILL");
    let before = lines(&out).len();
    eventually("three more runs after the failover", Duration::from_secs(60), || async {
        Ok((lines(&out).len() >= before + 3).then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}\n{}", second.log_text()))?;
    // Stop scheduling, then check the record.
    let (status, _) = second.call("DELETE", "/v1/scheduler/job/every2s", None).await?;
    ensure!(status == 204, "delete: {status}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let due = lines(&out);
    let distinct: BTreeSet<&String> = due.iter().collect();
    assert_eq!(distinct.len(), due.len(), "a due time ran twice: {due:?}");
    // Between runs: one period, except once across the failover, where
    // the missed due times were coalesced into the first run of the new
    // leader (at most the lease TTL plus a few periods).
    let mut secs: Vec<i64> = due.iter().map(|d| seconds_of(d)).collect::<anyhow::Result<_>>()?;
    secs.sort_unstable();
    let gaps: Vec<i64> = secs.windows(2).map(|w| w[1] - w[0]).collect();
    let long: Vec<&i64> = gaps.iter().filter(|g| **g != 2).collect();
    assert!(long.len() <= 1 && long.iter().all(|g| **g <= 14), "gaps {gaps:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_job_stops_its_running_task_without_retry() -> anyhow::Result<()> {
    let mesos = MesosCluster::start(1, RESOURCES)?;
    let drover = Drover::start(&mesos.master, &[]).await?;
    post(
        &drover,
        "/v1/scheduler/iso8601",
        &json!({"name": "sleeper", "schedule": "R/2099-01-01T00:00:00Z/PT1H", "command": "sleep 300",
                "retries": 2, "owner": "a@b.c", "cpus": 0.1, "mem": 32}),
    )
    .await?;
    let (status, _) = drover.call("PUT", "/v1/scheduler/job/sleeper", None).await?;
    ensure!(status == 204, "manual run: {status}");
    let run = eventually("the run to be running", Duration::from_secs(60), || async {
        let (_, runs) = drover.call("GET", "/v1/scheduler/job/sleeper/runs", None).await?;
        Ok(runs.as_array().and_then(|r| r.first()).filter(|r| r["status"] == "running").cloned())
    })
    .await
    .map_err(|e| {
        anyhow::anyhow!(
            "{e:#}
{}",
            drover.log_text()
        )
    })?;
    let task = run["taskIds"][0].as_str().context("a task id")?.to_owned();
    let (status, body) = drover.call("DELETE", "/v1/scheduler/task/kill/sleeper", None).await?;
    ensure!(status == 204, "kill: {status} {body}");
    eventually("the run to be killed", Duration::from_secs(30), || async {
        let (_, runs) = drover.call("GET", "/v1/scheduler/job/sleeper/runs", None).await?;
        Ok((runs[0]["status"] == "killed").then_some(()))
    })
    .await?;
    eventually("the master to see the task killed", Duration::from_secs(30), || async {
        let fw = mesos.framework("drover").await?.context("framework drover")?;
        let killed = fw["completed_tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| t["id"] == task.as_str() && t["state"] == "TASK_KILLED");
        Ok(killed.then_some(()))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let j = job(&drover, "sleeper").await?;
    assert_eq!((j["successCount"].as_u64(), j["errorCount"].as_u64()), (Some(0), Some(0)), "{j}");
    let (_, runs) = drover.call("GET", "/v1/scheduler/job/sleeper/runs", None).await?;
    assert_eq!(runs[0]["attempts"], 1, "a killed run is not retried: {runs}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_around_due_times_neither_repeats_nor_loses_a_run() -> anyhow::Result<()> {
    let mesos = MesosCluster::start(1, RESOURCES)?;
    let state = tempfile::tempdir()?;
    let data = state.path().join("store").display().to_string();
    let mut first = Drover::start(&mesos.master, &["--data-dir", &data]).await?;
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("due");
    post(
        &first,
        "/v1/scheduler/iso8601",
        &json!({"name": "every3s", "schedule": "R//PT3S", "owner": "a@b.c", "cpus": 0.1, "mem": 32,
                "concurrent": true, "command": format!("echo $DROVER_JOB_SCHEDULED_AT >> {}", out.display())}),
    )
    .await?;
    eventually("two runs", Duration::from_secs(60), || async {
        Ok((lines(&out).len() >= 2).then_some(()))
    })
    .await?;
    first.stop();
    let before = lines(&out).len();
    let second = Drover::start(&mesos.master, &["--data-dir", &data]).await?;
    eventually("two more runs after the restart", Duration::from_secs(60), || async {
        Ok((lines(&out).len() >= before + 2).then_some(()))
    })
    .await
    .map_err(|e| {
        anyhow::anyhow!(
            "{e:#}
{}",
            second.log_text()
        )
    })?;
    let (status, _) = second.call("DELETE", "/v1/scheduler/job/every3s", None).await?;
    ensure!(status == 204, "delete: {status}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let due = lines(&out);
    let distinct: BTreeSet<&String> = due.iter().collect();
    assert_eq!(distinct.len(), due.len(), "a due time ran twice: {due:?}");
    let mut secs: Vec<i64> = due.iter().map(|d| seconds_of(d)).collect::<anyhow::Result<_>>()?;
    secs.sort_unstable();
    let gaps: Vec<i64> = secs.windows(2).map(|w| w[1] - w[0]).collect();
    let long: Vec<&i64> = gaps.iter().filter(|g| **g != 3).collect();
    assert!(long.len() <= 1 && long.iter().all(|g| **g % 3 == 0 && **g <= 15), "gaps {gaps:?}");
    Ok(())
}

/// Seconds since midnight of `YYYY-MM-DDTHH:MM:SS.sssZ` (the runs span less
/// than a day; a wrap past midnight adds a day).
fn seconds_of(t: &str) -> anyhow::Result<i64> {
    let hms = t.get(11..19).context("a timestamp")?;
    let parts: Vec<i64> = hms.split(':').map(str::parse).collect::<Result<_, _>>()?;
    let day: i64 = t.get(8..10).context("a day")?.parse()?;
    Ok(day * 86_400 + parts[0] * 3600 + parts[1] * 60 + parts[2])
}
