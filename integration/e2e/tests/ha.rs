//! High availability with real etcd and a real Mesos master: failover in
//! the middle of a rolling restart, fencing of a paused leader, an etcd
//! outage, and tasks the store does not know.
//!
//! The shared etcd comes from `integration/test.sh` (`DROVER_TEST_ETCD`);
//! each test uses its own key prefix. The etcd outage test starts its own.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use drover_e2e::{Drover, MesosCluster, eventually, http, http_raw};
use serde_json::{Value, json};

const RESOURCES: &str = "cpus:8;mem:8192;disk:8192;ports:[31000-31999]";

fn etcd() -> anyhow::Result<String> {
    std::env::var("DROVER_TEST_ETCD")
        .context("DROVER_TEST_ETCD is not set: run the tests through integration/test.sh")
}

fn prefix(name: &str) -> String {
    format!("/drover-e2e/{name}-{}", std::process::id())
}

async fn etcd_client(endpoint: &str) -> anyhow::Result<etcd_api::Client> {
    Ok(etcd_api::Client::connect(etcd_api::ClientConfig::new([endpoint.to_owned()])).await?)
}

/// Every key under `prefix` with its mod revision, and the store's revision.
async fn etcd_keys(
    client: &etcd_api::Client,
    prefix: &str,
) -> anyhow::Result<(BTreeMap<String, i64>, i64)> {
    let listing = client.get_prefix(format!("{prefix}/").as_bytes(), 1000).await?;
    let keys = listing
        .kvs
        .iter()
        .map(|kv| (String::from_utf8_lossy(&kv.key).into_owned(), kv.mod_revision))
        .collect();
    Ok((keys, listing.revision))
}

/// The `host:port` the instances name as leader, asking `d`.
async fn leader_of(d: &Drover) -> anyhow::Result<Option<String>> {
    let (status, body) = d.call("GET", "/v2/leader", None).await?;
    Ok((status == 200).then(|| body["leader"].as_str().map(str::to_owned)).flatten())
}

fn address(d: &Drover) -> String {
    d.url.trim_start_matches("http://").to_owned()
}

fn httpd_app(id: &str, instances: u32) -> Value {
    json!({
        "id": id, "instances": instances, "cpus": 0.1, "mem": 32,
        "cmd": "mkdir -p www && echo ok > www/health && exec /bin/busybox httpd -f -p $PORT0 -h www",
        "healthChecks": [{"protocol": "HTTP", "path": "/health", "portIndex": 0, "gracePeriodSeconds": 15,
                          "intervalSeconds": 1, "timeoutSeconds": 1, "maxConsecutiveFailures": 0, "delaySeconds": 0}],
        "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0},
        "taskKillGracePeriodSeconds": 1
    })
}

fn healthy(app: &Value) -> BTreeSet<String> {
    app["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["state"] == "TASK_RUNNING" && t["healthCheckResults"][0]["alive"] == true)
        .filter_map(|t| t["id"].as_str().map(str::to_owned))
        .collect()
}

/// Task ids the master knows for framework `drover` (running and done),
/// and how many of the app's run now.
async fn master_tasks(m: &MesosCluster, app_prefix: &str) -> anyhow::Result<(Vec<String>, usize)> {
    let fw = m.framework("drover").await?.context("framework drover")?;
    let mut ids = Vec::new();
    let mut running = 0;
    for t in fw["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(fw["completed_tasks"].as_array().into_iter().flatten())
    {
        let id = t["id"].as_str().unwrap_or_default().to_owned();
        if id.starts_with(app_prefix) && t["state"] == "TASK_RUNNING" {
            running += 1;
        }
        ids.push(id);
    }
    Ok((ids, running))
}

fn log_tails(ds: &[&Drover]) -> String {
    ds.iter()
        .map(|d| {
            let log = d.log_text();
            let lines: Vec<&str> = log.lines().collect();
            format!("--- {} ---\n{}", d.url, lines[lines.len().saturating_sub(40)..].join("\n"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_mid_rolling_restart_the_standby_finishes_it() -> anyhow::Result<()> {
    let mesos = MesosCluster::start(1, RESOURCES)?;
    let endpoint = etcd()?;
    let prefix = prefix("failover");
    let flags = ["--etcd", &endpoint, "--etcd-prefix", &prefix, "--leader-ttl-secs", "3"];
    let a = Drover::start(&mesos.master, &flags).await?;
    let b = Drover::start(&mesos.master, &flags).await?;
    let leader =
        eventually("a leader", Duration::from_secs(30), || async { leader_of(&a).await }).await?;
    let (first, second) = if leader == address(&a) { (&a, &b) } else { (&b, &a) };
    ensure!(leader == address(first), "the leader {leader} is one of the two");
    assert_eq!(
        leader_of(second).await?.as_deref(),
        Some(leader.as_str()),
        "both name the same leader"
    );

    // Through the standby: it forwards to the leader.
    let body = httpd_app("/ha", 4).to_string();
    let (status, headers, resp) =
        http_raw(&format!("{}/v2/apps", second.url), "POST", Some(body)).await?;
    ensure!(status == 201, "{}", String::from_utf8_lossy(&resp));
    assert_eq!(
        headers.get("x-marathon-leader").and_then(|v| v.to_str().ok()),
        Some(first.url.as_str())
    );
    let before = eventually("4 healthy tasks", Duration::from_secs(60), || async {
        let (_, a) = first.call("GET", "/v2/apps/ha", None).await?;
        let h = healthy(&a["app"]);
        Ok((h.len() == 4 && a["app"]["deployments"].as_array().is_some_and(Vec::is_empty))
            .then_some(h))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}\n{}", log_tails(&[first, second])))?;

    let (status, resp) = first.call("POST", "/v2/apps/ha/restart", None).await?;
    ensure!(status == 200, "{resp}");
    // Wait until the restart is under way: a new task runs.
    eventually("the restart to be half way", Duration::from_secs(60), || async {
        let (_, a) = first.call("GET", "/v2/apps/ha", None).await?;
        let new: Vec<String> = healthy(&a["app"]).difference(&before).cloned().collect();
        Ok((!new.is_empty()).then_some(()))
    })
    .await?;
    first.signal("KILL");
    #[allow(clippy::disallowed_methods, reason = "the test measures real time")]
    let killed_at = std::time::Instant::now();
    let me = address(second);
    eventually("the standby to lead", Duration::from_secs(15), || async {
        Ok((leader_of(second).await? == Some(me.clone())).then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}\n{}", log_tails(&[second])))?;
    let took = killed_at.elapsed();
    assert!(took <= Duration::from_secs(3 + 5), "failover took {took:?}");
    eprintln!("failover: the standby led {took:?} after the leader was killed");

    // The deployment finishes; the master never shows more than 4 running.
    eventually("the restart to finish", Duration::from_secs(120), || async {
        let (_, running) = master_tasks(&mesos, "ha.").await?;
        ensure!(running <= 4, "the master shows {running} running tasks of /ha");
        let (_, deps) = second.call("GET", "/v2/deployments", None).await?;
        let (_, app) = second.call("GET", "/v2/apps/ha", None).await?;
        let done = deps.as_array().is_some_and(Vec::is_empty) && healthy(&app["app"]).len() == 4;
        Ok(done.then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}\n{}", log_tails(&[second])))?;
    let (ids, running) = master_tasks(&mesos, "ha.").await?;
    assert_eq!(running, 4, "exactly the app's instances run at the end");
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "a task id was launched twice: {ids:?}");
    let after = healthy(&second.call("GET", "/v2/apps/ha", None).await?.1["app"]);
    assert!(after.is_disjoint(&before), "every task of the old version was replaced");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_leader_whose_lease_expired_cannot_write() -> anyhow::Result<()> {
    let endpoint = etcd()?;
    let prefix = prefix("fencing");
    // No Mesos master is needed to write state: the API's writes suffice.
    let master = format!("http://127.0.0.1:{}", drover_e2e::free_port());
    let flags = ["--etcd", &endpoint, "--etcd-prefix", &prefix, "--leader-ttl-secs", "2"];
    let a = Drover::start(&master, &flags).await?;
    let b = Drover::start(&master, &flags).await?;
    let leader =
        eventually("a leader", Duration::from_secs(30), || async { leader_of(&a).await }).await?;
    let (old, new) = if leader == address(&a) { (&a, &b) } else { (&b, &a) };
    let (status, resp) = old
        .call("POST", "/v2/apps", Some(r#"{"id":"/before","cmd":"sleep 1","instances":0}"#))
        .await?;
    ensure!(status == 201, "{resp}");

    old.signal("STOP");
    let new_address = address(new);
    eventually("the other instance to lead", Duration::from_secs(20), || async {
        Ok((leader_of(new).await? == Some(new_address.clone())).then_some(()))
    })
    .await?;
    let client = etcd_client(&endpoint).await?;
    let (keys_before, revision) = etcd_keys(&client, &prefix).await?;

    // A write sent to the paused instance waits in its socket; resume it.
    let url = format!("{}/v2/apps", old.url);
    let pending = tokio::spawn(async move {
        http_raw(&url, "POST", Some(r#"{"id":"/after","cmd":"sleep 1","instances":0}"#.to_owned()))
            .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    old.signal("CONT");
    let (status, headers, body) =
        pending.await?.map_err(|e| anyhow::anyhow!("{e:#}\n{}", log_tails(&[old, new])))?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (keys_after, _) = etcd_keys(&client, &prefix).await?;
    let forwarded =
        headers.get("x-marathon-leader").and_then(|v| v.to_str().ok()) == Some(new.url.as_str());
    let written: Vec<&String> = keys_after
        .iter()
        .filter(|(k, rev)| keys_before.get(*k) != Some(*rev) && **rev > revision)
        .map(|(k, _)| k)
        .collect();
    if forwarded {
        // It knew it no longer led and forwarded: the new leader wrote.
        ensure!(
            status == 201,
            "forwarded write answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
        for k in &written {
            ensure!(k.contains("after") || k.contains("/deployments/"), "unexpected write to {k}");
        }
    } else {
        // It still believed it led: the write must have been refused.
        ensure!(
            status == 503,
            "a deposed leader answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
        ensure!(written.is_empty(), "a deposed leader wrote {written:?}");
    }
    // It stepped down and now forwards.
    eventually("the old leader to step down", Duration::from_secs(15), || async {
        Ok((leader_of(old).await? == Some(new_address.clone())).then_some(()))
    })
    .await?;
    let (_, apps) = new.call("GET", "/v2/apps", None).await?;
    assert!(apps.to_string().contains("/before"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_etcd_outage_keeps_tasks_running_refuses_writes_and_recovers() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut etcd =
        sched_store::testing::TestEtcd::start(dir.path()).await.map_err(|e| anyhow::anyhow!(e))?;
    let endpoint = etcd.endpoint();
    let mesos = MesosCluster::start(1, RESOURCES)?;
    let flags = ["--etcd", &endpoint, "--etcd-prefix", "/outage", "--leader-ttl-secs", "4"];
    let d = Drover::start(&mesos.master, &flags).await?;
    let (status, resp) = d
        .call(
            "POST",
            "/v2/apps",
            Some(r#"{"id":"/steady","cmd":"sleep 600","instances":2,"cpus":0.1,"mem":32}"#),
        )
        .await?;
    ensure!(status == 201, "{resp}");
    let tasks: BTreeSet<String> =
        eventually("2 running tasks", Duration::from_secs(60), || async {
            let (_, a) = d.call("GET", "/v2/apps/steady", None).await?;
            let ids: BTreeSet<String> = a["app"]["tasks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|t| t["state"] == "TASK_RUNNING")
                .filter_map(|t| t["id"].as_str().map(str::to_owned))
                .collect();
            Ok((ids.len() == 2 && a["app"]["deployments"].as_array().is_some_and(Vec::is_empty))
                .then_some(ids))
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e:#}\n{}", log_tails(&[&d])))?;

    etcd.stop();
    // Writes are refused with 503 while etcd is away.
    let mut refused = 0;
    for i in 0..5 {
        let body = format!(r#"{{"id":"/during-{i}","cmd":"sleep 1","instances":0}}"#);
        let (status, resp) = d.call("POST", "/v2/apps", Some(&body)).await?;
        ensure!(
            status == 503 || status == 201,
            "a write during the outage answered {status}: {resp}"
        );
        if status == 503 {
            refused += 1;
            ensure!(resp["message"].as_str().is_some_and(|m| !m.is_empty()), "{resp}");
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    assert!(refused >= 4, "only {refused} of 5 writes were refused");
    // Running tasks are untouched.
    for t in &tasks {
        assert!(
            !drover_e2e::task_processes(t, "sleep 600").is_empty(),
            "{t} stopped during the outage"
        );
    }
    let (_, running) = master_tasks(&mesos, "steady.").await?;
    assert_eq!(running, 2);

    etcd.restart().await.map_err(|e| anyhow::anyhow!(e))?;
    // Everything converges: writes work again, the same tasks run.
    eventually("writes to work again", Duration::from_secs(60), || async {
        let (status, _) = d
            .call(
                "POST",
                "/v2/apps",
                Some(r#"{"id":"/after","cmd":"sleep 600","instances":1,"cpus":0.1,"mem":32}"#),
            )
            .await?;
        Ok((status == 201).then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}\n{}", log_tails(&[&d])))?;
    eventually("the new app to run and the old tasks to stay", Duration::from_secs(60), || async {
        let (_, steady) = d.call("GET", "/v2/apps/steady", None).await?;
        let (_, after) = d.call("GET", "/v2/apps/after", None).await?;
        let ids: BTreeSet<String> = steady["app"]["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["state"] == "TASK_RUNNING")
            .filter_map(|t| t["id"].as_str().map(str::to_owned))
            .collect();
        if !ids.is_empty() && ids != tasks {
            bail!("the running tasks changed: {ids:?} != {tasks:?}");
        }
        Ok((ids == tasks && after["app"]["tasksRunning"] == 1).then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}\n{}", log_tails(&[&d])))?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_the_store_forgot_is_reported_not_killed() -> anyhow::Result<()> {
    let mesos = MesosCluster::start(1, RESOURCES)?;
    let endpoint = etcd()?;
    let prefix = prefix("unknown");
    let flags = ["--etcd", &endpoint, "--etcd-prefix", &prefix, "--leader-ttl-secs", "3"];
    let mut d = Drover::start(&mesos.master, &flags).await?;
    let (status, resp) = d
        .call(
            "POST",
            "/v2/apps",
            Some(r#"{"id":"/lost","cmd":"sleep 600","instances":1,"cpus":0.1,"mem":32}"#),
        )
        .await?;
    ensure!(status == 201, "{resp}");
    let task = eventually("the task to run", Duration::from_secs(60), || async {
        let (_, a) = d.call("GET", "/v2/apps/lost", None).await?;
        Ok((a["app"]["tasksRunning"] == 1)
            .then(|| a["app"]["tasks"][0]["id"].as_str().map(str::to_owned))
            .flatten())
    })
    .await?;
    d.stop();
    // The store forgets the instance (as if its record were lost).
    let client = etcd_client(&endpoint).await?;
    let instance = task.rsplit_once("._app.").map(|(i, _)| i.to_owned()).context("instance id")?;
    let removed = client.delete(format!("{prefix}/instances/{instance}")).await?;
    ensure!(removed == 1, "the instance record was not found under {prefix}");

    let d2 = Drover::start(&mesos.master, &flags).await?;
    eventually("the unknown task to be reported", Duration::from_secs(60), || async {
        let (_, _, metrics) = http_raw(&format!("{}/metrics", d2.url), "GET", None).await?;
        let text = String::from_utf8_lossy(&metrics).into_owned();
        let reported =
            text.lines().any(|l| l.starts_with("scheduler_unknown_tasks ") && !l.ends_with(" 0"));
        Ok((reported && d2.log_text().contains(&task)).then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}\n{}", log_tails(&[&d2])))?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        !drover_e2e::task_processes(&task, "sleep 600").is_empty(),
        "the unknown task was killed"
    );
    let (_, state) = http(&format!("{}/master/state", mesos.master), "GET", None).await?;
    assert!(state.to_string().contains(&task));
    Ok(())
}
