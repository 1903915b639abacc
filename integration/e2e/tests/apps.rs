//! Apps on a real Mesos 1.11 master and agent: launch, scale, delete,
//! relaunch after failure, and the API's error answers, all through a real
//! `drover serve` process and real `drover-executor`s.

use std::collections::BTreeSet;
use std::time::Duration;

use drover_e2e::{Drover, MesosCluster, eventually, task_processes};
use serde_json::{Value, json};

const RESOURCES: &str = "cpus:4;mem:4096;disk:8192;ports:[31000-32000]";

async fn running_tasks(d: &Drover, app: &str) -> anyhow::Result<Vec<String>> {
    let (_, body) = d.call("GET", "/v2/tasks", None).await?;
    Ok(body["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["appId"] == app && t["state"] == "TASK_RUNNING")
        .filter_map(|t| t["id"].as_str().map(str::to_owned))
        .collect())
}

/// Task ids the master reports as running for framework `drover`.
async fn master_running(m: &MesosCluster) -> anyhow::Result<BTreeSet<String>> {
    let fw = m
        .framework("drover")
        .await?
        .ok_or_else(|| anyhow::anyhow!("framework drover not subscribed"))?;
    Ok(fw["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["state"] == "TASK_RUNNING")
        .filter_map(|t| t["id"].as_str().map(str::to_owned))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sleep_app_runs_scales_and_is_deleted_on_the_real_master() -> anyhow::Result<()> {
    let mesos = MesosCluster::start(1, RESOURCES)?;
    let drover = Drover::start(&mesos.master, &[]).await?;

    // The framework registers as `drover`, checkpointing, with its capabilities.
    let fw = eventually("framework drover", Duration::from_secs(20), || mesos.framework("drover"))
        .await?;
    assert_eq!(fw["checkpoint"], true);
    assert!(fw["failover_timeout"].as_f64().unwrap_or(0.0) > 0.0);
    let caps = fw["capabilities"].to_string();
    assert!(caps.contains("TASK_KILLING_STATE") && caps.contains("PARTITION_AWARE"), "{caps}");

    let (status, body) = drover
        .call(
            "POST",
            "/v2/apps",
            Some(r#"{"id":"/sleepy","cmd":"sleep 600","instances":3,"cpus":0.1,"mem":32}"#),
        )
        .await?;
    assert_eq!(status, 201, "{body}");

    // 3 TASK_RUNNING in /v2/tasks within 30 s.
    let tasks = eventually("3 running tasks in /v2/tasks", Duration::from_secs(30), || async {
        let t = running_tasks(&drover, "/sleepy").await?;
        Ok((t.len() == 3).then_some(t))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}\n--- drover log ---\n{}", drover.log_text()))?;
    // The real master agrees, and the 3 processes exist.
    let want: BTreeSet<String> = tasks.iter().cloned().collect();
    eventually("the master to show the 3 tasks running", Duration::from_secs(10), || async {
        Ok((master_running(&mesos).await? == want).then_some(()))
    })
    .await?;
    for t in &tasks {
        let procs = task_processes(t, "sleep 600");
        assert!(!procs.is_empty(), "no `sleep 600` process for {t}");
    }
    let (_, app) = drover.call("GET", "/v2/apps/sleepy", None).await?;
    assert_eq!(app["app"]["tasksRunning"], 3);
    assert_eq!(app["app"]["tasks"].as_array().map(Vec::len), Some(3));

    // Scale to 1: exactly one task is left, everywhere.
    let (status, body) = drover.call("PUT", "/v2/apps/sleepy", Some(r#"{"instances":1}"#)).await?;
    assert_eq!(status, 200, "{body}");
    let left = eventually("exactly 1 task after scaling down", Duration::from_secs(30), || async {
        let t = running_tasks(&drover, "/sleepy").await?;
        let (_, all) = drover.call("GET", "/v2/tasks", None).await?;
        let total = all["tasks"].as_array().map_or(0, Vec::len);
        Ok((t.len() == 1 && total == 1).then_some(t))
    })
    .await?;
    eventually("the master to show 1 running task", Duration::from_secs(15), || async {
        Ok((master_running(&mesos).await?.len() == 1).then_some(()))
    })
    .await?;
    assert!(tasks.contains(&left[0]), "scaling down must keep a running task, not start a new one");
    eventually("the killed processes to be gone", Duration::from_secs(15), || async {
        let alive: usize =
            tasks.iter().filter(|t| **t != left[0]).map(|t| task_processes(t, "").len()).sum();
        Ok((alive == 0).then_some(()))
    })
    .await?;

    // Delete: every task ends and no process is left behind.
    let (status, body) = drover.call("DELETE", "/v2/apps/sleepy", None).await?;
    assert_eq!(status, 200, "{body}");
    assert!(body["deploymentId"].is_string());
    eventually("no tasks after DELETE", Duration::from_secs(30), || async {
        let (_, all) = drover.call("GET", "/v2/tasks", None).await?;
        let running = master_running(&mesos).await?;
        Ok((all["tasks"].as_array().is_some_and(Vec::is_empty) && running.is_empty()).then_some(()))
    })
    .await?;
    eventually("no task process left", Duration::from_secs(15), || async {
        let alive: usize = tasks.iter().map(|t| task_processes(t, "").len()).sum();
        Ok((alive == 0).then_some(()))
    })
    .await?;
    let (status, _) = drover.call("GET", "/v2/apps/sleepy", None).await?;
    assert_eq!(status, 404);
    Ok(())
}

/// The instance part of a task id and its incarnation.
fn incarnation(task_id: &str) -> Option<(String, u32)> {
    let (instance, n) = task_id.rsplit_once("._app.")?;
    Some((instance.to_owned(), n.parse().ok()?))
}

async fn failing_app_is_relaunched(content_type: &str) -> anyhow::Result<()> {
    let mesos = MesosCluster::start(1, RESOURCES)?;
    let drover = Drover::start(&mesos.master, &["--mesos-content-type", content_type]).await?;
    let (status, body) = drover
        .call("POST", "/v2/apps", Some(r#"{"id":"/crash","cmd":"echo bye; exit 1","cpus":0.1,"mem":32,"backoffSeconds":1}"#))
        .await?;
    assert_eq!(status, 201, "{body}");
    // A TASK_FAILED with the exit status, then a new task id for the same
    // instance (the next incarnation).
    let failed = std::sync::Mutex::new(BTreeSet::<String>::new());
    let relaunched = eventually("a relaunch after TASK_FAILED", Duration::from_secs(45), || {
        let drover = &drover;
        let failed = &failed;
        async move {
            let (_, app) = drover.call("GET", "/v2/apps/crash", None).await?;
            let f = &app["app"]["lastTaskFailure"];
            if f["state"] == "TASK_FAILED" {
                let message = f["message"].as_str().unwrap_or("");
                anyhow::ensure!(
                    message.contains("exited with status 1"),
                    "unexpected failure message {message:?}"
                );
                if let Some(id) = f["taskId"].as_str() {
                    failed.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.insert(id.to_owned());
                }
            }
            let mut seen: Vec<(String, u32)> = failed
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?
                .iter()
                .filter_map(|t| incarnation(t))
                .collect();
            for t in app["app"]["tasks"].as_array().into_iter().flatten() {
                if let Some(x) = t["id"].as_str().and_then(incarnation) {
                    seen.push(x);
                }
            }
            let first = seen.iter().find(|(_, n)| *n == 1).cloned();
            let later = first
                .and_then(|(inst, _)| seen.iter().find(|(i, n)| *i == inst && *n >= 2).cloned());
            Ok(later)
        }
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}\n--- drover log ---\n{}", drover.log_text()))?;
    assert!(relaunched.1 >= 2);
    // The master saw the failed task too.
    let state = mesos.state().await?;
    let completed = state["frameworks"][0]["completed_tasks"].to_string();
    assert!(completed.contains("TASK_FAILED"), "{completed}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_command_is_relaunched_with_a_new_task_id() -> anyhow::Result<()> {
    failing_app_is_relaunched("protobuf").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_command_is_relaunched_over_the_json_api_too() -> anyhow::Result<()> {
    failing_app_is_relaunched("json").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_errors_have_marathon_codes_and_bodies_and_change_nothing() -> anyhow::Result<()> {
    let mesos = MesosCluster::start(1, RESOURCES)?;
    let drover = Drover::start(&mesos.master, &[]).await?;

    let (status, body) = drover.call("POST", "/v2/apps", Some("{not json")).await?;
    assert_eq!(status, 400);
    assert_eq!(body["message"], "Invalid JSON");

    for (app, path) in [
        (json!({"id": "/Not_Valid", "cmd": "sleep 1"}), "/id"),
        (json!({"id": "/neg", "cmd": "sleep 1", "cpus": -1}), "/cpus"),
        (json!({"id": "/neg", "cmd": "sleep 1", "mem": -64}), "/mem"),
        (json!({"id": "/both", "cmd": "sleep 1", "args": ["sleep", "1"]}), "/"),
    ] {
        let (status, body) = drover.call("POST", "/v2/apps", Some(&app.to_string())).await?;
        assert_eq!(status, 422, "{app}: {body}");
        assert!(body["message"].is_string(), "{body}");
        assert_eq!(body["details"][0]["path"], path, "{body}");
        assert!(body["details"][0]["errors"].as_array().is_some_and(|e| !e.is_empty()), "{body}");
    }

    let app = r#"{"id":"/dup","cmd":"sleep 600","instances":0}"#;
    assert_eq!(drover.call("POST", "/v2/apps", Some(app)).await?.0, 201);
    let (status, body) = drover.call("POST", "/v2/apps", Some(app)).await?;
    assert_eq!(status, 409);
    assert_eq!(body, json!({"message": "An app with id [/dup] already exists."}));

    // Nothing rejected reached the scheduler: only /dup exists, with no task.
    let (_, apps) = drover.call("GET", "/v2/apps", None).await?;
    let ids: Vec<&Value> =
        apps["apps"].as_array().into_iter().flatten().map(|a| &a["id"]).collect();
    assert_eq!(ids, vec![&json!("/dup")]);
    let (_, tasks) = drover.call("GET", "/v2/tasks", None).await?;
    assert_eq!(tasks, json!({"tasks": []}));
    let (_, info) = drover.call("GET", "/v2/info", None).await?;
    assert_eq!(info["name"], "drover");
    assert!(info["frameworkId"].is_string(), "{info}");
    Ok(())
}
