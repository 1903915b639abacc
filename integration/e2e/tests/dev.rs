//! `drover dev` as a newcomer runs it: one command starts a real local
//! Mesos 1.11 cluster and Drover against it. The README's examples then
//! work as written: `curl -X POST .../v2/apps -d @deploy/examples/sleepy.json`
//! gives running tasks that the real master shows, and `drover apps deploy
//! -f deploy/examples/web.json` follows the deployment until the app is
//! healthy (exit 0), while `web-broken.json` fails its progress deadline,
//! is rolled back and exits 2 with the reason.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use drover_e2e::{bin_dir, eventually, free_port, http, http_text, workspace};
use serde_json::Value;

/// A running `drover dev`, interrupted (Ctrl-C) on drop; its cluster is
/// stopped by `mesos-local stop` too in case the interrupt did not.
struct Dev {
    child: std::process::Child,
    work: tempfile::TempDir,
    log: std::path::PathBuf,
}

impl Dev {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("kill").args(["-INT", &pid]).status();
        for _ in 0..400 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let script = workspace().join("integration/mesos-local/mesos-local");
        let _ = std::process::Command::new(script)
            .args(["stop", "--work-dir"])
            .arg(self.work.path().join("mesos"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs `drover ARGS` from the repository's root; (exit code, stdout, stderr).
async fn drover(args: &[&str]) -> anyhow::Result<(Option<i32>, String, String)> {
    let out = tokio::process::Command::new(bin_dir().join("drover"))
        .args(args)
        .current_dir(workspace())
        .env_remove("DROVER_URL")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(240), out)
        .await
        .with_context(|| format!("drover {} did not finish", args.join(" ")))??;
    Ok((
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

fn running(tasks: &Value, app: &str) -> usize {
    tasks["tasks"]
        .as_array()
        .map(|t| t.iter().filter(|t| t["appId"] == app && t["state"] == "TASK_RUNNING").count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn drover_dev_runs_the_readme_examples_on_a_real_local_mesos() -> anyhow::Result<()> {
    let api_port = free_port();
    let mesos_port = free_port();
    let work = tempfile::Builder::new().prefix("drover-e2e-dev-").tempdir()?;
    let log = work.path().join("dev.log");
    let file = std::fs::File::create(&log)?;
    let child = std::process::Command::new(bin_dir().join("drover"))
        .args(["dev", "--listen", &format!("127.0.0.1:{api_port}")])
        .args(["--mesos-port", &mesos_port.to_string(), "--work-dir"])
        .arg(work.path())
        .current_dir(workspace())
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()
        .context("spawning drover dev")?;
    let dev = Dev { child, work, log };
    scenario(&dev, api_port, mesos_port)
        .await
        .map_err(|e| anyhow::anyhow!("{e:#}\n--- drover dev ---\n{}", dev.log_text()))
}

async fn scenario(dev: &Dev, api_port: u16, mesos_port: u16) -> anyhow::Result<()> {
    let url = format!("http://127.0.0.1:{api_port}");
    eventually("drover dev to answer /ping", Duration::from_secs(90), || async {
        Ok(http_text(&format!("{url}/ping")).await.ok().filter(|t| t == "pong"))
    })
    .await?;
    let banner = dev.log_text();
    ensure!(banner.contains("without authentication"), "a loud notice that it runs open: {banner}");

    // The README's curl, with the example file as it is committed.
    let sleepy = std::fs::read_to_string(workspace().join("deploy/examples/sleepy.json"))?;
    let (status, body) = http(&format!("{url}/v2/apps"), "POST", Some(sleepy)).await?;
    ensure!(status == 201, "POST sleepy.json: {status} {body}");
    eventually("3 sleepy tasks running", Duration::from_secs(30), || async {
        let (_, tasks) = http(&format!("{url}/v2/tasks"), "GET", None).await?;
        Ok((running(&tasks, "/sleepy") == 3).then_some(()))
    })
    .await?;
    let master = format!("http://127.0.0.1:{mesos_port}/master/state");
    eventually("the master to show 3 running tasks", Duration::from_secs(15), || async {
        let (_, state) = http(&master, "GET", None).await?;
        let framework = state["frameworks"]
            .as_array()
            .and_then(|f| f.iter().find(|f| f["name"] == "drover"))
            .cloned();
        let running = framework
            .and_then(|f| f["tasks"].as_array().cloned())
            .map(|t| t.iter().filter(|t| t["state"] == "TASK_RUNNING").count());
        Ok((running == Some(3)).then_some(()))
    })
    .await?;

    // `drover apps deploy` follows the deployment to healthy, exit 0.
    let web = Path::new("deploy/examples/web.json").display().to_string();
    let (code, out, err) = drover(&["apps", "deploy", "-f", &web, "--url", &url]).await?;
    eprintln!("--- deploy web.json ---\n{err}{out}");
    ensure!(code == Some(0), "deploy web.json: exit {code:?}\n{err}{out}");
    ensure!(out.ends_with(" succeeded: /demo/web 2/2 healthy\n"), "{out}");
    ensure!(err.contains("  /demo/web: 2/2 healthy"), "the progress is shown: {err}");
    let (_, tasks) = http(&format!("{url}/v2/tasks"), "GET", None).await?;
    ensure!(running(&tasks, "/demo/web") == 2, "{tasks}");

    // A broken version: no progress within 20 s, rolled back, exit 2.
    let broken = Path::new("deploy/examples/web-broken.json").display().to_string();
    let (code, out, err) = drover(&["apps", "deploy", "-f", &broken, "--url", &url]).await?;
    eprintln!("--- deploy web-broken.json ---\n{err}{out}");
    ensure!(code == Some(2), "deploy web-broken.json: exit {code:?}\n{err}{out}");
    ensure!(out.contains("no progress within the progress deadline of 20s"), "{out}");
    ensure!(out.contains("rolled back by deployment "), "the rollback is named: {out}");
    let (_, app) = http(&format!("{url}/v2/apps/demo/web"), "GET", None).await?;
    let cmd = app["app"]["cmd"].as_str().unwrap_or("");
    ensure!(cmd.contains("echo ok > www/health"), "rolled back to the healthy version: {app}");
    Ok(())
}
