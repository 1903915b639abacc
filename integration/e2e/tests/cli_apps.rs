//! The operator commands for apps, tasks, deployments, the queue and
//! events, run as the real `drover` binary against a real Drover on a real
//! Mesos 1.11 master and agent: `apps deploy -f` of a health-checked app
//! that waits until it is healthy, `scale` and `restart` that wait,
//! `list`/`show`/`tasks`/`deployments`/`events`, a version whose health
//! check fails (exit 2, the failure and the rollback named), the queue's
//! reject reason for an app that needs more cpus than offered, a forced
//! delete, and the exit statuses of errors.

use std::process::{Output, Stdio};
use std::time::Duration;

use anyhow::{Context as _, ensure};
use drover_e2e::{Drover, MesosCluster, bin_dir, eventually};
use serde_json::{Value, json};

/// Two cpus: an app asking for four never fits.
const RESOURCES: &str = "cpus:2;mem:4096;disk:8192;ports:[31000-31099]";

/// What one `drover` command did.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {:?}\nstdout:\n{}\nstderr:\n{}", self.code, self.stdout, self.stderr)
    }
}

/// Runs `drover ARGS --url URL` (stdin, stdout and stderr not terminals)
/// and waits for it.
async fn drover(url: &str, args: &[&str]) -> anyhow::Result<Ran> {
    let path = bin_dir().join("drover");
    ensure!(path.is_file(), "{} is missing: run `cargo build --bins` first", path.display());
    let child = tokio::process::Command::new(&path)
        .args(args)
        .args(["--url", url])
        .env_remove("DROVER_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("spawning drover")?;
    let Output { status, stdout, stderr } =
        tokio::time::timeout(Duration::from_secs(240), child.wait_with_output())
            .await
            .with_context(|| format!("drover {} did not finish within 240s", args.join(" ")))??;
    Ok(Ran {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}

/// Runs a command that must succeed; its stdout.
async fn ok(url: &str, args: &[&str]) -> anyhow::Result<String> {
    let ran = drover(url, args).await?;
    ensure!(ran.code == Some(0), "drover {}: {ran}", args.join(" "));
    Ok(ran.stdout)
}

/// A command app serving `$PORT0` with busybox httpd from the sandbox,
/// healthy when `/health` answers.
fn httpd_app(id: &str, instances: u32, marker: &str) -> Value {
    json!({
        "id": id, "instances": instances, "cpus": 0.1, "mem": 32,
        "cmd": format!("mkdir -p www && echo {marker} > www/health && exec /bin/busybox httpd -f -p $PORT0 -h www"),
        "healthChecks": [{"protocol": "HTTP", "path": "/health", "portIndex": 0, "gracePeriodSeconds": 15,
                          "intervalSeconds": 1, "timeoutSeconds": 1, "maxConsecutiveFailures": 0, "delaySeconds": 0}],
        "taskKillGracePeriodSeconds": 1
    })
}

/// The cell of `column` in the row of a table whose first cell is `first`.
fn cell(table: &str, first: &str, column: &str) -> Option<String> {
    let mut lines = table.lines();
    let header = lines.next()?;
    let start = header.find(column)?;
    let row = lines.find(|l| l.split_whitespace().next() == Some(first))?;
    let rest = row.get(start..)?;
    Some(rest.split("   ").next().unwrap_or_default().trim().to_owned())
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
async fn operators_deploy_scale_follow_and_inspect_apps_with_drover() -> anyhow::Result<()> {
    let mesos = MesosCluster::start(1, RESOURCES)?;
    let d = Drover::start(&mesos.master, &[]).await?;
    run(&d).await.map_err(|e| with_log(e, &d))
}

async fn run(d: &Drover) -> anyhow::Result<()> {
    let url = d.url.as_str();
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("web.json");
    let file_arg = file.display().to_string();

    // A new app: created, followed until healthy, one line per change.
    std::fs::write(&file, serde_json::to_vec_pretty(&httpd_app("/cli-web", 1, "v1"))?)?;
    let deploy = drover(url, &["apps", "deploy", "-f", &file_arg, "--timeout", "120"]).await?;
    ensure!(deploy.code == Some(0), "deploy: {deploy}");
    ensure!(
        deploy.stdout.starts_with("deployment ")
            && deploy.stdout.ends_with(" succeeded: /cli-web 1/1 healthy\n"),
        "deploy: {deploy}"
    );
    ensure!(deploy.stderr.starts_with("app /cli-web created: following deployment "), "{deploy}");
    ensure!(deploy.stderr.contains("StartApplication /cli-web"), "deploy: {deploy}");
    ensure!(deploy.stderr.contains("  /cli-web: 1/1 healthy, 1 running\n"), "deploy: {deploy}");
    eprintln!("--- apps deploy ---\n{deploy}");

    // Scaled to 2: waits for the second healthy instance.
    let scale = drover(url, &["apps", "scale", "cli-web", "2"]).await?;
    ensure!(scale.code == Some(0), "scale: {scale}");
    ensure!(scale.stdout.ends_with(" succeeded: /cli-web 2/2 healthy\n"), "scale: {scale}");
    ensure!(scale.stderr.contains("ScaleApplication /cli-web"), "scale: {scale}");

    // The tables.
    let list = ok(url, &["apps", "list"]).await?;
    eprintln!("--- apps list ---\n{list}");
    assert_eq!(cell(&list, "/cli-web", "INSTANCES").as_deref(), Some("2/2"), "{list}");
    assert_eq!(cell(&list, "/cli-web", "HEALTHY").as_deref(), Some("2/2"), "{list}");
    assert_eq!(cell(&list, "/cli-web", "DEPLOYING").as_deref(), Some("no"), "{list}");
    let show = ok(url, &["apps", "show", "/cli-web"]).await?;
    eprintln!("--- apps show ---\n{show}");
    assert!(show.starts_with("ID:             /cli-web\n"), "{show}");
    let task_rows: Vec<&str> = show.lines().filter(|l| l.starts_with("cli-web.")).collect();
    assert_eq!(task_rows.len(), 2, "{show}");
    assert!(
        task_rows.iter().all(|r| r.contains("TASK_RUNNING") && r.contains("healthy")),
        "{show}"
    );
    let tasks: Value = serde_json::from_str(&ok(url, &["tasks", "-o", "json"]).await?)?;
    let web_tasks: Vec<&Value> = tasks["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["appId"] == "/cli-web" && t["state"] == "TASK_RUNNING")
        .collect();
    assert_eq!(web_tasks.len(), 2, "{tasks}");
    let table = ok(url, &["tasks", "--app", "/cli-web"]).await?;
    let id = web_tasks[0]["id"].as_str().context("task id")?;
    assert_eq!(cell(&table, id, "HEALTH").as_deref(), Some("healthy"), "{table}");

    // A restart, watched on the event stream by `drover events`.
    let mut events = tokio::process::Command::new(bin_dir().join("drover"))
        .args(["events", "-o", "json", "--type", "deployment_success", "--url", url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    // Let it subscribe before the change.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let restart = drover(url, &["apps", "restart", "cli-web"]).await?;
    ensure!(restart.stdout.ends_with(" succeeded: /cli-web 2/2 healthy\n"), "restart: {restart}");
    let restart_id = restart.stdout.split_whitespace().nth(1).context("deployment id")?.to_owned();
    events.start_kill()?;
    let seen = events.wait_with_output().await?;
    let seen = String::from_utf8_lossy(&seen.stdout).into_owned();
    let success: Vec<Value> = seen.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(
        success
            .iter()
            .any(|e| e["eventType"] == "deployment_success" && e["id"] == restart_id.as_str()),
        "events: {seen}"
    );

    // A version whose health check fails (its /health 404s): exit 2, the
    // failure, its cause and the rollback named.
    let mut broken = httpd_app("/cli-web", 2, "v2");
    broken["cmd"] = json!("mkdir -p www && exec /bin/busybox httpd -f -p $PORT0 -h www");
    broken["healthChecks"][0]["gracePeriodSeconds"] = json!(1);
    broken["healthChecks"][0]["maxConsecutiveFailures"] = json!(3);
    broken["progressDeadlineSeconds"] = json!(15);
    std::fs::write(&file, serde_json::to_vec_pretty(&broken)?)?;
    let failed = drover(url, &["apps", "deploy", "-f", &file_arg, "--timeout", "180"]).await?;
    eprintln!("--- failed deploy ---\n{failed}");
    ensure!(failed.code == Some(2), "failed deploy: {failed}");
    let line = failed.stdout.trim_end();
    ensure!(line.starts_with("deployment ") && line.contains(" failed: "), "{failed}");
    ensure!(line.contains("no progress within the progress deadline of 15s"), "{failed}");
    ensure!(line.contains("HTTP 404"), "the cause is named: {failed}");
    ensure!(line.contains("rolled back by deployment "), "the rollback is named: {failed}");
    ensure!(line.ends_with("/cli-web 2/2 healthy"), "{failed}");
    ensure!(failed.stderr.contains("\nrollback "), "the view followed the rollback: {failed}");
    let (_, app) = d.call("GET", "/v2/apps/cli-web", None).await?;
    assert!(app["app"]["cmd"].as_str().unwrap_or("").contains("echo v1"), "rolled back: {app}");

    // An app that needs more cpus than any offer has: its queue row names
    // the reason; `--no-wait` returns at once; `deployments` lists it.
    let big = json!({"id": "/cli-big", "cmd": "sleep 600", "cpus": 4, "mem": 32});
    let big_file = dir.path().join("big.json");
    std::fs::write(&big_file, big.to_string())?;
    let started =
        ok(url, &["apps", "deploy", "-f", &big_file.display().to_string(), "--no-wait"]).await?;
    ensure!(started.starts_with("app /cli-big created: deployment "), "{started}");
    let big_deployment = started.trim_end().rsplit(' ').nth(1).context("id")?.to_owned();
    let queue =
        eventually("the queue to name InsufficientCpus", Duration::from_secs(60), || async {
            let q = ok(url, &["queue"]).await?;
            Ok(cell(&q, "/cli-big", "DECLINED BY")
                .filter(|c| c.contains("InsufficientCpus"))
                .map(|_| q))
        })
        .await?;
    eprintln!("--- queue ---\n{queue}");
    assert_eq!(cell(&queue, "/cli-big", "WAITING").as_deref(), Some("1"), "{queue}");
    let deployments = ok(url, &["deployments"]).await?;
    eprintln!("--- deployments ---\n{deployments}");
    assert_eq!(
        cell(&deployments, &big_deployment, "ACTIONS").as_deref(),
        Some("StartApplication /cli-big"),
        "{deployments}"
    );
    // Its deployment holds the app: deleting needs --force.
    let locked = drover(url, &["apps", "delete", "cli-big"]).await?;
    ensure!(locked.code == Some(1), "{locked}");
    ensure!(locked.stderr.contains("--force overrides it"), "{locked}");
    let deleted = drover(url, &["apps", "delete", "cli-big", "--force"]).await?;
    ensure!(deleted.code == Some(0), "{deleted}");
    ensure!(deleted.stdout.ends_with(" succeeded: /cli-big deleted\n"), "{deleted}");

    // Errors read like the API; usage errors are status 1 too.
    let unknown = drover(url, &["apps", "show", "nope"]).await?;
    assert_eq!(unknown.code, Some(1), "{unknown}");
    assert_eq!(unknown.stderr, "error: App '/nope' does not exist\n", "{unknown}");
    let usage = drover(url, &["apps", "scale", "cli-web"]).await?;
    assert_eq!(usage.code, Some(1), "{usage}");
    let completions = tokio::process::Command::new(bin_dir().join("drover"))
        .args(["completions", "bash"])
        .output()
        .await?;
    assert!(completions.status.success(), "completions: {completions:?}");
    assert!(String::from_utf8_lossy(&completions.stdout).contains("_drover()"), "{completions:?}");
    Ok(())
}
