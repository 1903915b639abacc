//! Docker apps on a real Mesos master, run by `drover-executor` against the
//! real Docker engine that `integration/test.sh` starts (`$DOCKER_HOST`,
//! image `drover-test/busybox:latest` built locally).

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use drover_e2e::{Drover, MesosCluster, eventually, http_raw};
use serde_json::{Value, json};

const IMAGE: &str = "drover-test/busybox:latest";
const RESOURCES: &str = "cpus:4;mem:4096;disk:8192;ports:[31000-31999]";

fn docker(args: &[&str]) -> anyhow::Result<String> {
    let host = std::env::var("DOCKER_HOST")
        .context("DOCKER_HOST is not set: run the tests through integration/test.sh")?;
    let out = Command::new("docker")
        .args(args)
        .env("DOCKER_HOST", host)
        .output()
        .context("running docker")?;
    if !out.status.success() {
        bail!("docker {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Ids of running containers with Drover's label for `app`.
fn containers(app: &str) -> anyhow::Result<Vec<String>> {
    let out = docker(&["ps", "-q", "--filter", &format!("label=drover.app_id={app}")])?;
    Ok(out.lines().map(str::to_owned).filter(|l| !l.is_empty()).collect())
}

/// Every container (running or not) carrying `drover.task_id=<task>`.
fn task_containers(task: &str) -> anyhow::Result<Vec<String>> {
    let out = docker(&["ps", "-aq", "--filter", &format!("label=drover.task_id={task}")])?;
    Ok(out.lines().map(str::to_owned).filter(|l| !l.is_empty()).collect())
}

async fn app(d: &Drover, id: &str) -> anyhow::Result<Value> {
    let (status, body) = d.call("GET", &format!("/v2/apps{id}"), None).await?;
    ensure!(status == 200, "GET {id}: {status} {body}");
    Ok(body["app"].clone())
}

async fn post(d: &Drover, body: Value) -> anyhow::Result<()> {
    let (status, resp) = d.call("POST", "/v2/apps", Some(&body.to_string())).await?;
    ensure!(status == 201, "POST: {status} {resp}");
    Ok(())
}

/// Task states the master recorded for framework `drover` (running and completed).
async fn master_tasks(m: &MesosCluster) -> anyhow::Result<Vec<Value>> {
    let fw = m.framework("drover").await?.context("framework drover")?;
    let mut all: Vec<Value> = fw["tasks"].as_array().cloned().unwrap_or_default();
    all.extend(fw["completed_tasks"].as_array().cloned().unwrap_or_default());
    Ok(all)
}

fn with_log(e: anyhow::Error, d: &Drover) -> anyhow::Error {
    anyhow::anyhow!("{e:#}\n--- drover log (tail) ---\n{}", tail(&d.log_text(), 60))
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_httpd_app_runs_healthy_with_labels_and_memory_limit() -> anyhow::Result<()> {
    let mesos = MesosCluster::start(1, RESOURCES)?;
    let drover = Drover::start(&mesos.master, &[]).await?;
    post(
        &drover,
        json!({
            "id": "/web", "instances": 2, "cpus": 0.1, "mem": 48,
            "container": {"type": "DOCKER", "docker": {"image": IMAGE}},
            "cmd": "mkdir -p /www && echo hello-from-$MESOS_TASK_ID > /www/index.html && exec httpd -f -p $PORT0 -h /www",
            "healthChecks": [{"protocol": "HTTP", "path": "/", "portIndex": 0, "gracePeriodSeconds": 30,
                              "intervalSeconds": 1, "timeoutSeconds": 1, "maxConsecutiveFailures": 3, "delaySeconds": 0}]
        }),
    )
    .await?;
    let app = eventually("2 running, healthy tasks", Duration::from_secs(60), || async {
        let a = app(&drover, "/web").await?;
        Ok((a["tasksRunning"] == 2 && a["tasksHealthy"] == 2).then_some(a))
    })
    .await
    .map_err(|e| with_log(e, &drover))?;
    for t in app["tasks"].as_array().context("tasks")? {
        let port = t["ports"][0].as_u64().context("a host port")?;
        assert!(
            (u64::from(mesos.ports.first)..=u64::from(mesos.ports.last)).contains(&port),
            "{port}"
        );
        let (status, _, body) = http_raw(&format!("http://127.0.0.1:{port}/"), "GET", None).await?;
        assert_eq!(status, 200);
        let id = t["id"].as_str().context("task id")?;
        assert_eq!(String::from_utf8_lossy(&body).trim(), format!("hello-from-{id}"));
        assert_eq!(t["healthCheckResults"][0]["alive"], true);
    }
    let ids = containers("/web")?;
    assert_eq!(ids.len(), 2, "{ids:?}");
    for id in &ids {
        let labels = docker(&["inspect", "--format", "{{json .Config.Labels}}", id])?;
        let labels: Value = serde_json::from_str(&labels)?;
        assert_eq!(labels["drover.app_id"], "/web");
        assert!(
            labels["drover.task_id"].as_str().is_some_and(|t| t.starts_with("web.instance-")),
            "{labels}"
        );
        assert!(labels["drover.framework_id"].is_string(), "{labels}");
        let memory = docker(&["inspect", "--format", "{{.HostConfig.Memory}}", id])?;
        assert_eq!(memory, (48u64 << 20).to_string());
    }
    let (status, _) = drover.call("DELETE", "/v2/apps/web", None).await?;
    assert_eq!(status, 200);
    eventually("containers removed", Duration::from_secs(30), || async {
        Ok(containers("/web")?.is_empty().then_some(()))
    })
    .await?;
    Ok(())
}

/// Seconds from DELETE until the master shows the app's task TASK_KILLED.
async fn kill_time(
    mesos: &MesosCluster,
    drover: &Drover,
    id: &str,
    script: &str,
    grace: u64,
) -> anyhow::Result<f64> {
    post(
        drover,
        json!({"id": id, "cpus": 0.1, "mem": 32, "taskKillGracePeriodSeconds": grace, "portDefinitions": [],
               "container": {"type": "DOCKER", "docker": {"image": IMAGE}}, "cmd": script}),
    )
    .await?;
    let task = eventually("the task to run", Duration::from_secs(60), || async {
        let a = app(drover, id).await?;
        Ok((a["tasksRunning"] == 1)
            .then(|| a["tasks"][0]["id"].as_str().map(str::to_owned))
            .flatten())
    })
    .await
    .map_err(|e| with_log(e, drover))?;
    // Give the shell time to install its trap.
    tokio::time::sleep(Duration::from_secs(1)).await;
    #[allow(clippy::disallowed_methods, reason = "the test measures real time")]
    let start = std::time::Instant::now();
    drover.call("DELETE", &format!("/v2/apps{id}"), None).await?;
    eventually("TASK_KILLED", Duration::from_secs(grace + 30), || async {
        let killed = master_tasks(mesos)
            .await?
            .iter()
            .any(|t| t["id"] == task.as_str() && t["state"] == "TASK_KILLED");
        Ok(killed.then_some(()))
    })
    .await?;
    let took = start.elapsed().as_secs_f64();
    eventually("the container removed", Duration::from_secs(20), || async {
        Ok(task_containers(&task)?.is_empty().then_some(()))
    })
    .await?;
    Ok(took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_is_honoured_and_ignored_sigterm_gets_sigkill_after_the_grace_period()
-> anyhow::Result<()> {
    let mesos = MesosCluster::start(1, RESOURCES)?;
    let drover = Drover::start(&mesos.master, &[]).await?;
    let grace = 6;
    let polite = kill_time(
        &mesos,
        &drover,
        "/polite",
        "trap 'exit 0' TERM; while true; do sleep 1; done",
        grace,
    )
    .await?;
    let stubborn = kill_time(
        &mesos,
        &drover,
        "/stubborn",
        "trap '' TERM; while true; do sleep 1; done",
        grace,
    )
    .await?;
    assert!(
        polite < grace as f64 - 1.0,
        "a SIGTERM-trapping container stops within the grace period ({polite:.1}s)"
    );
    assert!(
        stubborn >= grace as f64 - 0.5,
        "SIGKILL must wait for the grace period ({stubborn:.1}s)"
    );
    assert!(
        stubborn - polite >= grace as f64 - 2.5,
        "polite {polite:.1}s, stubborn {stubborn:.1}s"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_image_fails_with_the_docker_error_and_backs_off() -> anyhow::Result<()> {
    let mesos = MesosCluster::start(1, RESOURCES)?;
    let drover = Drover::start(&mesos.master, &[]).await?;
    // A registry on a closed loopback port: the pull fails at once, and no
    // name is ever looked up off this machine.
    let image = "127.0.0.1:1/drover-test/does-not-exist:1.0";
    post(
        &drover,
        json!({"id": "/ghost", "cpus": 0.1, "mem": 32, "backoffSeconds": 3, "backoffFactor": 2, "portDefinitions": [],
               "container": {"type": "DOCKER", "docker": {"image": image}}}),
    )
    .await?;
    let failure = eventually("TASK_FAILED naming the image", Duration::from_secs(60), || async {
        let a = app(&drover, "/ghost").await?;
        Ok((a["lastTaskFailure"]["state"] == "TASK_FAILED").then(|| a["lastTaskFailure"].clone()))
    })
    .await
    .map_err(|e| with_log(e, &drover))?;
    let message = failure["message"].as_str().unwrap_or("");
    assert!(message.contains(image), "{message}");
    assert!(message.len() > image.len() + 10, "the Docker error is part of the message: {message}");
    // Relaunches are spaced by the backoff: 3 s, then 6 s.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let tasks = master_tasks(&mesos).await?;
    let mut failed: Vec<f64> = tasks
        .iter()
        .filter(|t| t["state"] == "TASK_FAILED")
        .filter_map(|t| {
            t["statuses"]
                .as_array()?
                .iter()
                .filter_map(|s| s["timestamp"].as_f64())
                .reduce(f64::max)
        })
        .collect();
    failed.sort_by(f64::total_cmp);
    assert!((2..=4).contains(&failed.len()), "attempts in ~15 s with 3 s/6 s backoff: {failed:?}");
    for w in failed.windows(2) {
        assert!(w[1] - w[0] >= 2.5, "relaunched without backoff: {failed:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_executor_leaves_no_container_of_its_task() -> anyhow::Result<()> {
    let mesos = MesosCluster::start(1, RESOURCES)?;
    let drover = Drover::start(&mesos.master, &[]).await?;
    post(
        &drover,
        json!({"id": "/orphan", "cpus": 0.1, "mem": 32, "portDefinitions": [],
               "container": {"type": "DOCKER", "docker": {"image": IMAGE}}, "cmd": "exec sleep 3600"}),
    )
    .await?;
    let first = eventually("the task to run", Duration::from_secs(60), || async {
        let a = app(&drover, "/orphan").await?;
        Ok((a["tasksRunning"] == 1)
            .then(|| a["tasks"][0]["id"].as_str().map(str::to_owned))
            .flatten())
    })
    .await
    .map_err(|e| with_log(e, &drover))?;
    assert_eq!(task_containers(&first)?.len(), 1);
    // SIGKILL the task's executor (found by its executor id).
    let executors = drover_e2e::processes_with_env(
        &format!("MESOS_EXECUTOR_ID=drover-executor.{first}"),
        "drover-executor",
    );
    let executor = executors.first().context("the executor process")?;
    Command::new("kill").args(["-KILL", &executor.pid.to_string()]).status()?;
    let replaced: BTreeSet<String> =
        eventually("a replacement task", Duration::from_secs(60), || async {
            let a = app(&drover, "/orphan").await?;
            let ids: BTreeSet<String> = a["tasks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["id"].as_str().map(str::to_owned))
                .collect();
            Ok((a["tasksRunning"] == 1 && !ids.contains(&first)).then_some(ids))
        })
        .await
        .map_err(|e| with_log(e, &drover))?;
    assert_eq!(replaced.len(), 1);
    eventually("no container of the old task", Duration::from_secs(30), || async {
        Ok(task_containers(&first)?.is_empty().then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_health_check_kills_the_task_and_a_healthy_replacement_comes_up()
-> anyhow::Result<()> {
    let mesos = MesosCluster::start(1, RESOURCES)?;
    let drover = Drover::start(&mesos.master, &[]).await?;
    post(
        &drover,
        json!({
            "id": "/sick", "cpus": 0.1, "mem": 32,
            "container": {"type": "DOCKER", "docker": {"image": IMAGE}},
            "cmd": "mkdir -p /www && echo ok > /www/health && exec httpd -f -p $PORT0 -h /www",
            "healthChecks": [{"protocol": "MESOS_HTTP", "path": "/health", "portIndex": 0, "gracePeriodSeconds": 20,
                              "intervalSeconds": 1, "timeoutSeconds": 1, "maxConsecutiveFailures": 2, "delaySeconds": 0}]
        }),
    )
    .await?;
    let first = eventually("a healthy task", Duration::from_secs(60), || async {
        let a = app(&drover, "/sick").await?;
        Ok((a["tasksHealthy"] == 1)
            .then(|| a["tasks"][0]["id"].as_str().map(str::to_owned))
            .flatten())
    })
    .await
    .map_err(|e| with_log(e, &drover))?;
    // Break the health endpoint inside the container.
    let container = task_containers(&first)?.into_iter().next().context("the task's container")?;
    docker(&["exec", &container, "rm", "/www/health"])?;
    let second = eventually("a healthy replacement", Duration::from_secs(60), || async {
        let a = app(&drover, "/sick").await?;
        let t = &a["tasks"][0];
        let id = t["id"].as_str().unwrap_or("");
        Ok((a["tasksHealthy"] == 1 && !id.is_empty() && id != first).then(|| id.to_owned()))
    })
    .await
    .map_err(|e| with_log(e, &drover))?;
    assert_ne!(second, first);
    let killed = master_tasks(&mesos)
        .await?
        .into_iter()
        .find(|t| t["id"] == first.as_str())
        .context("first task")?;
    assert_eq!(killed["state"], "TASK_KILLED", "{killed}");
    Ok(())
}
