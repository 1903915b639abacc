//! The `drover jobs` client commands, run as the real `drover` binary
//! against a real Drover on a real Mesos 1.11 master and agent: a job added
//! from a file and from stdin, a manual run with an argument followed
//! through `history -o json`, the `list` and `history` tables, the API's
//! error for an unknown job, a Drover that cannot be reached, and deletion.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use anyhow::{Context as _, ensure};
use drover_e2e::{Drover, MesosCluster, bin_dir, eventually, free_port};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;

const RESOURCES: &str = "cpus:4;mem:4096;disk:8192;ports:[31000-32000]";

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

/// Runs `drover ARGS` (with `stdin` piped in when given) and waits for it.
async fn drover(args: &[&str], stdin: Option<&str>) -> anyhow::Result<Ran> {
    let path = bin_dir().join("drover");
    ensure!(path.is_file(), "{} is missing: run `cargo build --bins` first", path.display());
    let mut child = tokio::process::Command::new(&path)
        .args(args)
        .env_remove("DROVER_URL")
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("spawning drover")?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).await.context("writing drover's stdin")?;
    }
    let Output { status, stdout, stderr } =
        tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .context("drover did not finish within 60s")??;
    Ok(Ran {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}

/// Runs `drover jobs ARGS --url URL` and requires success.
async fn jobs(url: &str, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
    let mut all = vec!["jobs"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--url", url]);
    let ran = drover(&all, stdin).await?;
    ensure!(ran.code == Some(0) && ran.stderr.is_empty(), "drover {}: {ran}", all.join(" "));
    Ok(ran.stdout)
}

/// The cell of `column` in the row of a table whose first cell is `first`
/// (columns are aligned under their headers).
fn cell(table: &str, first: &str, column: &str) -> Option<String> {
    let mut lines = table.lines();
    let header = lines.next()?;
    let start = header.find(column)?;
    let row = lines.find(|l| l.split_whitespace().next() == Some(first))?;
    let rest = row.get(start..)?;
    Some(rest.split("   ").next().unwrap_or_default().trim().to_owned())
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_add_run_follow_and_delete_jobs_with_drover_jobs() -> anyhow::Result<()> {
    let mesos = MesosCluster::start(1, RESOURCES)?;
    let d = Drover::start(&mesos.master, &[]).await?;
    let url = d.url.as_str();
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("args");

    // A job that only runs by hand: its schedule starts in 2099. Without a
    // shell, a manual run's arguments follow the job's own.
    let job = json!({
        "name": "cli-job", "schedule": "R/2099-01-01T00:00:00Z/PT1H", "shell": false,
        "command": "/bin/sh", "arguments": ["-c", format!("echo \"$@\" >> {}", out.display()), "sh"],
        "owner": "ops@example.com", "cpus": 0.1, "mem": 32
    });
    let file = dir.path().join("job.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&job)?)?;
    let file = file.display().to_string();
    assert_eq!(jobs(url, &["add", "-f", &file], None).await?, "job cli-job saved\n");
    // A dependent job, from stdin, through the `job` alias.
    let child = json!({"name": "cli-child", "parents": ["cli-job"], "command": "true",
                       "owner": "ops@example.com", "cpus": 0.1, "mem": 32});
    let ran = drover(&["job", "add", "-f", "-", "--url", url], Some(&child.to_string())).await?;
    ensure!(ran.code == Some(0) && ran.stdout == "job cli-child saved\n", "add from stdin: {ran}");
    let (status, posted) = d.call("GET", "/v1/scheduler/job/cli-child", None).await?;
    ensure!(status == 200 && posted["parents"] == json!(["cli-job"]), "{status} {posted}");

    assert_eq!(
        jobs(url, &["run", "cli-job", "--arg", "hi"], None).await?,
        "job cli-job run queued\n"
    );
    let runs = eventually("the manual run to succeed", Duration::from_secs(60), || async {
        let text = jobs(url, &["history", "cli-job", "-o", "json"], None).await?;
        let runs: Value = serde_json::from_str(&text).context("history -o json")?;
        let succeeded =
            runs.as_array().is_some_and(|rs| rs.iter().any(|r| r["status"] == "succeeded"));
        Ok(succeeded.then_some(runs))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}\n{}", d.log_text()))?;
    assert_eq!(runs[0]["trigger"], json!({"type": "manual", "arguments": ["hi"]}), "{runs}");
    assert_eq!(lines(&out), vec!["hi"], "the argument reached the command");

    // The tables, read by their headers. `DROVER_URL` works like `--url`.
    let ran = tokio::process::Command::new(bin_dir().join("drover"))
        .args(["jobs", "list"])
        .env("DROVER_URL", url)
        .output()
        .await?;
    ensure!(ran.status.success(), "list: {}", String::from_utf8_lossy(&ran.stderr));
    let list = String::from_utf8_lossy(&ran.stdout).into_owned();
    assert!(list.starts_with("NAME "), "{list}");
    assert_eq!(cell(&list, "cli-job", "SUCCESSES").as_deref(), Some("1"), "{list}");
    assert_eq!(cell(&list, "cli-job", "ERRORS").as_deref(), Some("0"), "{list}");
    assert_eq!(cell(&list, "cli-job", "LAST RESULT").as_deref(), Some("success"), "{list}");
    assert_eq!(
        cell(&list, "cli-job", "NEXT RUN").as_deref(),
        Some("2099-01-01 00:00:00"),
        "{list}"
    );
    assert_eq!(cell(&list, "cli-child", "SCHEDULE").as_deref(), Some("after cli-job"), "{list}");
    let history = jobs(url, &["history", "cli-job"], None).await?;
    let short_id: String = runs[0]["id"].as_str().unwrap_or_default().chars().take(8).collect();
    assert_eq!(cell(&history, &short_id, "TRIGGER").as_deref(), Some("manual hi"), "{history}");
    assert_eq!(cell(&history, &short_id, "STATUS").as_deref(), Some("succeeded"), "{history}");
    let show = jobs(url, &["show", "cli-job"], None).await?;
    assert!(show.contains("Successes:        1\n"), "{show}");

    // Errors: the API's message on stderr, exit status 1, nothing else.
    let unknown = drover(&["jobs", "show", "no-such-job", "--url", url], None).await?;
    assert_eq!(unknown.code, Some(1), "{unknown}");
    assert_eq!(unknown.stderr, "error: Job 'no-such-job' does not exist\n", "{unknown}");
    assert_eq!(unknown.stdout, "", "{unknown}");
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let gone = drover(&["jobs", "list", "--url", &nowhere], None).await?;
    assert_eq!(gone.code, Some(1), "{gone}");
    assert!(
        gone.stderr.starts_with(&format!("error: cannot reach Drover at {nowhere}: ")),
        "{gone}"
    );

    assert_eq!(jobs(url, &["kill", "cli-job"], None).await?, "job cli-job runs killed\n");
    assert_eq!(jobs(url, &["delete", "cli-job"], None).await?, "job cli-job deleted\n");
    let deleted = drover(&["jobs", "show", "cli-job", "--url", url], None).await?;
    assert_eq!(deleted.stderr, "error: Job 'cli-job' does not exist\n", "{deleted}");
    Ok(())
}
