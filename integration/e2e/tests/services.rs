//! Services à la Marathon on a real Mesos master: rolling restarts that keep
//! capacity, automatic rollback after the progress deadline, the launch
//! queue's reasons, deployment locks, and the event stream.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use drover_e2e::{Drover, MesosCluster, eventually, http_raw};
use serde_json::{Value, json};

const RESOURCES: &str = "cpus:8;mem:8192;disk:8192;ports:[31000-31999]";

/// A command app serving `$PORT0` with busybox httpd from the sandbox,
/// with an HTTP health check on `/health`.
fn httpd_app(id: &str, instances: u32, marker: &str) -> Value {
    json!({
        "id": id, "instances": instances, "cpus": 0.1, "mem": 32,
        "cmd": format!("mkdir -p www && echo {marker} > www/health && exec /bin/busybox httpd -f -p $PORT0 -h www"),
        "healthChecks": [{"protocol": "HTTP", "path": "/health", "portIndex": 0, "gracePeriodSeconds": 15,
                          "intervalSeconds": 1, "timeoutSeconds": 1, "maxConsecutiveFailures": 0, "delaySeconds": 0}],
        "taskKillGracePeriodSeconds": 1
    })
}

async fn app(d: &Drover, id: &str) -> anyhow::Result<Value> {
    let (status, body) = d.call("GET", &format!("/v2/apps{id}"), None).await?;
    ensure!(status == 200, "GET {id}: {status} {body}");
    Ok(body["app"].clone())
}

/// Ids of the app's tasks that are running and healthy.
fn healthy_tasks(app: &Value) -> BTreeSet<String> {
    app["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["state"] == "TASK_RUNNING" && t["healthCheckResults"][0]["alive"] == true)
        .filter_map(|t| t["id"].as_str().map(str::to_owned))
        .collect()
}

async fn master_running(m: &MesosCluster, prefix: &str) -> anyhow::Result<usize> {
    let fw = m.framework("drover").await?.context("framework drover")?;
    Ok(fw["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| {
            t["state"] == "TASK_RUNNING"
                && t["id"].as_str().is_some_and(|id| id.starts_with(prefix))
        })
        .count())
}

fn with_log(e: anyhow::Error, d: &Drover) -> anyhow::Error {
    let log = d.log_text();
    let lines: Vec<&str> = log.lines().collect();
    anyhow::anyhow!(
        "{e:#}\n--- drover log (tail) ---\n{}",
        lines[lines.len().saturating_sub(60)..].join("\n")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_at_half_capacity_never_drops_below_two_healthy() -> anyhow::Result<()> {
    let mesos = MesosCluster::start(1, RESOURCES)?;
    let drover = Drover::start(&mesos.master, &[]).await?;
    let mut body = httpd_app("/roll", 4, "v1");
    body["upgradeStrategy"] = json!({"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0});
    let (status, resp) = drover.call("POST", "/v2/apps", Some(&body.to_string())).await?;
    ensure!(status == 201, "{resp}");
    let before = eventually("4 healthy tasks", Duration::from_secs(60), || async {
        let a = app(&drover, "/roll").await?;
        let h = healthy_tasks(&a);
        Ok((h.len() == 4 && a["deployments"].as_array().is_some_and(Vec::is_empty)).then_some(h))
    })
    .await
    .map_err(|e| with_log(e, &drover))?;

    let (status, resp) = drover.call("POST", "/v2/apps/roll/restart", None).await?;
    ensure!(status == 200, "{resp}");
    let deployment = resp["deploymentId"].as_str().context("deploymentId")?.to_owned();
    let mut samples = 0;
    let mut min_healthy = usize::MAX;
    let mut max_running = 0;
    #[allow(clippy::disallowed_methods, reason = "the test bounds real time")]
    let start = std::time::Instant::now();
    loop {
        let a = app(&drover, "/roll").await?;
        let healthy = healthy_tasks(&a).len();
        let running = master_running(&mesos, "roll.").await?;
        min_healthy = min_healthy.min(healthy);
        max_running = max_running.max(running);
        samples += 1;
        assert!(healthy >= 2, "sample {samples}: only {healthy} healthy tasks");
        assert!(
            running <= 4,
            "sample {samples}: the master shows {running} running tasks (instances 4, no surge)"
        );
        let (_, deps) = drover.call("GET", "/v2/deployments", None).await?;
        let open = deps.as_array().into_iter().flatten().any(|d| d["id"] == deployment.as_str());
        if !open {
            break;
        }
        ensure!(start.elapsed() < Duration::from_secs(120), "the restart did not finish: {deps}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = healthy_tasks(&app(&drover, "/roll").await?);
    assert_eq!(after.len(), 4);
    assert!(after.is_disjoint(&before), "every task was replaced");
    assert!(samples > 5, "sampled {samples} times");
    eprintln!(
        "rolling restart: {samples} samples, min healthy {min_healthy}, max running {max_running}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_that_never_gets_healthy_is_rolled_back_after_the_deadline() -> anyhow::Result<()>
{
    let mesos = MesosCluster::start(1, RESOURCES)?;
    let drover = Drover::start(&mesos.master, &[]).await?;
    let mut v1 = httpd_app("/stable", 2, "v1");
    v1["progressDeadlineSeconds"] = json!(12);
    let (status, resp) = drover.call("POST", "/v2/apps", Some(&v1.to_string())).await?;
    ensure!(status == 201, "{resp}");
    let original = eventually("2 healthy tasks", Duration::from_secs(60), || async {
        let a = app(&drover, "/stable").await?;
        let h = healthy_tasks(&a);
        Ok((h.len() == 2 && a["deployments"].as_array().is_some_and(Vec::is_empty)).then_some(a))
    })
    .await
    .map_err(|e| with_log(e, &drover))?;
    let ports: Vec<u64> = original["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["ports"][0].as_u64())
        .collect();
    // v2 serves no /health: its tasks never become healthy.
    let broken = json!({"cmd": "mkdir -p www && exec /bin/busybox httpd -f -p $PORT0 -h www"});
    let (status, resp) = drover.call("PUT", "/v2/apps/stable", Some(&broken.to_string())).await?;
    ensure!(status == 200, "{resp}");
    let failed = resp["deploymentId"].as_str().context("deploymentId")?.to_owned();
    let (_, deps) = drover.call("GET", "/v2/deployments", None).await?;
    assert!(deps.to_string().contains(&failed), "{deps}");
    // The old version keeps serving all along, and the change is rolled back.
    let rolled_back = eventually("the rollback to finish", Duration::from_secs(90), || async {
        for p in &ports {
            let (status, _, body) =
                http_raw(&format!("http://127.0.0.1:{p}/health"), "GET", None).await?;
            ensure!(
                status == 200 && String::from_utf8_lossy(&body).trim() == "v1",
                "the old version stopped serving"
            );
        }
        let a = app(&drover, "/stable").await?;
        let (_, deps) = drover.call("GET", "/v2/deployments", None).await?;
        let idle = deps.as_array().is_some_and(Vec::is_empty);
        Ok((idle && a["cmd"].as_str().is_some_and(|c| c.contains("echo v1"))).then_some(a))
    })
    .await
    .map_err(|e| with_log(e, &drover))?;
    let still: BTreeSet<String> = healthy_tasks(&rolled_back);
    let before: BTreeSet<String> = healthy_tasks(&original);
    assert_eq!(still, before, "the original tasks kept running");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_names_insufficient_memory_and_locked_apps_need_force() -> anyhow::Result<()> {
    let mesos = MesosCluster::start(1, "cpus:2;mem:1024;disk:1024;ports:[31000-31099]")?;
    let drover = Drover::start(&mesos.master, &[]).await?;
    let big = json!({"id": "/big", "cmd": "sleep 600", "cpus": 0.1, "mem": 4096});
    let (status, resp) = drover.call("POST", "/v2/apps", Some(&big.to_string())).await?;
    ensure!(status == 201, "{resp}");
    let item =
        eventually("the queue to name InsufficientMemory", Duration::from_secs(30), || async {
            let (_, q) = drover.call("GET", "/v2/queue", None).await?;
            let item = q["queue"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|i| i["app"]["id"] == "/big")
                .cloned();
            let declined = item.as_ref().and_then(|i| {
                i["processedOffersSummary"]["rejectSummaryLastOffers"]
                    .as_array()?
                    .iter()
                    .find(|r| r["reason"] == "InsufficientMemory")?["declined"]
                    .as_u64()
            });
            Ok(item.filter(|_| declined.unwrap_or(0) > 0))
        })
        .await
        .map_err(|e| with_log(e, &drover))?;
    assert_eq!(item["count"], 1);
    assert!(item["processedOffersSummary"]["processedOffersCount"].as_u64().unwrap_or(0) > 0);

    // The app's deployment never finishes, so it holds the app.
    let (status, resp) = drover.call("PUT", "/v2/apps/big", Some(r#"{"instances": 2}"#)).await?;
    assert_eq!(status, 409, "{resp}");
    assert!(resp["message"].as_str().unwrap_or("").contains("locked"), "{resp}");
    assert!(resp["deployments"][0]["id"].is_string(), "{resp}");
    let (status, resp) = drover
        .call("PUT", "/v2/apps/big?force=true", Some(r#"{"instances": 0, "mem": 64}"#))
        .await?;
    assert_eq!(status, 200, "{resp}");
    eventually("the forced change to finish", Duration::from_secs(30), || async {
        let (_, deps) = drover.call("GET", "/v2/deployments", None).await?;
        Ok(deps.as_array().is_some_and(Vec::is_empty).then_some(()))
    })
    .await?;
    Ok(())
}
