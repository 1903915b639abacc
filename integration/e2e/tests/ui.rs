//! The web UI (`/ui/`) in a real browser: Debian's headless chromium,
//! driven by `integration/e2e/browser/ui.mjs` (playwright-core, installed
//! by `integration/test.sh` with `npm ci`), against a real `drover serve` on
//! a real Mesos master and agent.
//!
//! The browser loads `/ui`, sees the app with 1 running task, scales it to 2
//! through the confirmation dialog and sees 2 running without a reload (the
//! page follows `/v2/events`); it also checks the app's tasks, an API error
//! shown in a dialog, the launch queue's reject reason, the job list with
//! its dependency graph, and a job run started from the page. Screenshots
//! are kept in `target/ui-e2e/` (the path is printed).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use drover_e2e::{Drover, MesosCluster, bin_dir, eventually, workspace};
use serde_json::{Value, json};

const RESOURCES: &str = "cpus:4;mem:4096;disk:8192;ports:[31000-32000]";
const APP: &str = "/ui-demo";
/// Needs more memory than the agent has: it waits in the launch queue.
const WAITING_APP: &str = "/ui-waiting";
/// Two instances with a command health check, for the healthy counts.
const HEALTHY_APP: &str = "/web/api";
const JOB: &str = "ui-nightly";
const CHILD_JOB: &str = "ui-publish";
/// The browser script gives up after 240 s by itself.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

fn browser_dir() -> PathBuf {
    workspace().join("integration/e2e/browser")
}

/// What the browser script needs, with instructions when it is missing.
fn check_browser() -> anyhow::Result<()> {
    let chromium = std::env::var("DROVER_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !std::path::Path::new(&chromium).is_file() {
        bail!("{chromium} is missing: install Debian's `chromium` (integration/test.sh does)");
    }
    if !browser_dir().join("node_modules/playwright-core/package.json").is_file() {
        bail!(
            "playwright-core is missing: run `npm ci` in {} (integration/test.sh does)",
            browser_dir().display()
        );
    }
    Ok(())
}

/// Screenshots go here, kept after the test.
fn out_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| bin_dir().parent().map(PathBuf::from))
        .unwrap_or_else(|| workspace().join("target"));
    target.join("ui-e2e")
}

async fn post(d: &Drover, path: &str, body: &Value) -> anyhow::Result<()> {
    let (status, answer) = d.call("POST", path, Some(&body.to_string())).await?;
    if !(200..300).contains(&status) {
        bail!("POST {path} answered {status}: {answer}");
    }
    Ok(())
}

async fn app(d: &Drover, id: &str) -> anyhow::Result<Value> {
    let (status, body) = d.call("GET", &format!("/v2/apps{id}"), None).await?;
    if status != 200 {
        bail!("GET /v2/apps{id} answered {status}: {body}");
    }
    Ok(body["app"].clone())
}

/// Runs the browser script; its output is returned, or the error carries it.
async fn run_browser(config: &Value) -> anyhow::Result<String> {
    let child = tokio::process::Command::new("node")
        .arg(browser_dir().join("ui.mjs"))
        .arg(config.to_string())
        .current_dir(browser_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting `node` (install Debian's nodejs; integration/test.sh does)")?;
    let out = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output())
        .await
        .with_context(|| format!("the browser script did not end within {SCRIPT_TIMEOUT:?}"))?
        .context("waiting for the browser script")?;
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        bail!("the browser script failed ({}):\n{text}", out.status);
    }
    Ok(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_scales_an_app_and_follows_it_live_in_a_real_browser() -> anyhow::Result<()> {
    check_browser()?;
    let mesos = MesosCluster::start(1, RESOURCES)?;
    let drover = Drover::start(&mesos.master, &[]).await?;
    eventually("framework drover", Duration::from_secs(20), || mesos.framework("drover")).await?;

    // An app with 1 instance, one that cannot launch, one with health
    // checks, and two jobs (one runs after the other).
    let demo = json!({"id": APP, "cmd": "sleep 600", "instances": 1, "cpus": 0.1, "mem": 32});
    post(&drover, "/v2/apps", &demo).await?;
    let waiting = json!({"id": WAITING_APP, "cmd": "sleep 600", "instances": 1, "cpus": 0.1,
        "mem": 100_000});
    post(&drover, "/v2/apps", &waiting).await?;
    let checked = json!({"id": HEALTHY_APP, "cmd": "sleep 600", "instances": 2, "cpus": 0.1,
        "mem": 32, "healthChecks": [{"protocol": "COMMAND", "command": {"value": "true"},
        "delaySeconds": 1, "intervalSeconds": 2, "gracePeriodSeconds": 30}]});
    post(&drover, "/v2/apps", &checked).await?;
    let nightly = json!({"name": JOB, "command": "echo report", "owner": "ops@example.com",
        "schedule": "R/2099-01-01T03:00:00Z/P1D", "cpus": 0.1, "mem": 32});
    post(&drover, "/v1/scheduler/iso8601", &nightly).await?;
    let publish = json!({"name": CHILD_JOB, "command": "echo publish", "owner": "ops@example.com",
        "parents": [JOB], "cpus": 0.1, "mem": 32});
    post(&drover, "/v1/scheduler/dependency", &publish).await?;

    // The UI's starting point: 1 running, its deployment done (a deployment
    // in progress would lock the app), and the other app's reject reason.
    eventually("1 running task and no deployment", Duration::from_secs(60), || async {
        let a = app(&drover, APP).await?;
        let done = a["tasksRunning"] == 1 && a["deployments"].as_array().is_some_and(Vec::is_empty);
        Ok(done.then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}\n--- drover log ---\n{}", drover.log_text()))?;
    eventually("2 healthy tasks", Duration::from_secs(60), || async {
        Ok((app(&drover, HEALTHY_APP).await?["tasksHealthy"] == 2).then_some(()))
    })
    .await?;
    eventually("the queue to show InsufficientMemory", Duration::from_secs(60), || async {
        let (_, q) = drover.call("GET", "/v2/queue", None).await?;
        let declined = q["queue"][0]["processedOffersSummary"]["rejectSummaryLastOffers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["reason"] == "InsufficientMemory" && r["declined"].as_u64() > Some(0));
        Ok(declined.then_some(()))
    })
    .await?;

    let out = out_dir();
    for old in std::fs::read_dir(&out).into_iter().flatten().flatten() {
        let _ = std::fs::remove_file(old.path());
    }
    let config = json!({"url": drover.url, "app": APP, "waitingApp": WAITING_APP,
        "healthyApp": HEALTHY_APP, "job": JOB, "childJob": CHILD_JOB, "out": out});
    let output = run_browser(&config).await.map_err(|e| {
        let log = drover.log_text();
        let tail: Vec<&str> = log.lines().rev().take(60).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        anyhow::anyhow!("{e:#}\n--- drover log (last lines) ---\n{}", tail.join("\n"))
    })?;
    println!("{output}");
    println!("UI screenshots: {}", out.display());
    assert!(output.contains("UI-E2E-RESULT {\"ok\":true"), "{output}");

    // What the browser did is what the API says.
    let a = app(&drover, APP).await?;
    assert_eq!(a["instances"], 2, "{a}");
    assert_eq!(a["tasksRunning"], 2, "{a}");
    let (_, runs) = drover.call("GET", &format!("/v1/scheduler/job/{JOB}/runs"), None).await?;
    let manual = runs
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| r["trigger"]["type"] == "manual" && r["status"] == "succeeded");
    assert!(manual, "no succeeded manual run of {JOB}: {runs}");
    assert!(out.join("ui-apps.png").is_file());
    Ok(())
}
