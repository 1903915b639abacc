//! Support for Drover's end-to-end tests: a real Mesos 1.11 cluster
//! (`integration/mesos-local`), a real `drover serve` process against it,
//! an HTTP client, and `/proc` inspection.
//!
//! Every test starts its own cluster and its own Drover on free ports, so
//! tests run in parallel. Everything started is stopped on drop, by PID.
//!
//! The binaries come from `$DROVER_BIN_DIR` (set by `integration/test.sh`)
//! or the workspace's `target/debug`; build them first with
//! `cargo build --bins`.

use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

pub mod capture;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from("../.."))
}

/// Where `drover` and `drover-executor` are.
pub fn bin_dir() -> PathBuf {
    std::env::var_os("DROVER_BIN_DIR").map(PathBuf::from).unwrap_or_else(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace().join("target"));
        target.join("debug")
    })
}

fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let p = bin_dir().join(name);
    if !p.is_file() {
        bail!(
            "{} is missing: run `cargo build --bins` first (integration/test.sh does)",
            p.display()
        );
    }
    Ok(p)
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

/// Polls `check` until it returns `Ok(Some(v))` or `timeout` passes; the
/// error names the last observation.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    #[allow(clippy::disallowed_methods, reason = "tests measure real elapsed time")]
    let start = Instant::now();
    loop {
        let last = match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => "condition not met".to_owned(),
            Err(e) => format!("{e:#}"),
        };
        if start.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for {what}: {last}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A block of host ports claimed by one cluster, so that clusters running
/// at the same time (tests run in parallel, in several processes) never
/// hand out the same host port. Claims are files created exclusively in a
/// shared directory; a claim whose owner died is taken over.
pub struct PortBlock {
    /// First port.
    pub first: u32,
    /// Last port (inclusive).
    pub last: u32,
    claim: PathBuf,
}

const PORT_BLOCK: u32 = 200;

impl PortBlock {
    fn claim() -> anyhow::Result<PortBlock> {
        use std::io::Write as _;
        let dir = std::env::temp_dir().join("drover-e2e-ports");
        std::fs::create_dir_all(&dir).context("port claims dir")?;
        for first in (20000..32000).step_by(PORT_BLOCK as usize) {
            let claim = dir.join(first.to_string());
            for _ in 0..2 {
                match std::fs::OpenOptions::new().write(true).create_new(true).open(&claim) {
                    Ok(mut f) => {
                        write!(f, "{}", std::process::id()).context("writing a port claim")?;
                        let block = PortBlock { first, last: first + PORT_BLOCK - 1, claim };
                        // A process left over from an earlier run (e.g. a
                        // container) may still hold a port: skip the block.
                        if block.all_free() {
                            return Ok(block);
                        }
                        break;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        let owner = std::fs::read_to_string(&claim).unwrap_or_default();
                        let alive = owner
                            .trim()
                            .parse::<u32>()
                            .is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
                        if alive || owner.is_empty() {
                            break;
                        }
                        let _ = std::fs::remove_file(&claim);
                    }
                    Err(e) => return Err(e).context("claiming ports"),
                }
            }
        }
        bail!("no free block of host ports left")
    }
}

impl PortBlock {
    fn all_free(&self) -> bool {
        (self.first..=self.last).all(|p| {
            u16::try_from(p).is_ok_and(|p| {
                TcpListener::bind(("0.0.0.0", p)).is_ok()
                    && TcpListener::bind(("127.0.0.1", p)).is_ok()
            })
        })
    }
}

impl Drop for PortBlock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.claim);
    }
}

/// `resources` with its `ports` replaced by `block`.
fn with_ports(resources: &str, block: &PortBlock) -> String {
    let mut parts: Vec<String> = resources
        .split(';')
        .filter(|p| !p.trim().starts_with("ports:") && !p.trim().is_empty())
        .map(str::to_owned)
        .collect();
    parts.push(format!("ports:[{}-{}]", block.first, block.last));
    parts.join(";")
}

/// A real Mesos master with agents, stopped on drop.
pub struct MesosCluster {
    /// `http://127.0.0.1:PORT`.
    pub master: String,
    /// The cluster's work dir.
    pub work_dir: PathBuf,
    /// The host ports its agents offer (shared by all of them).
    pub ports: PortBlock,
    _dir: tempfile::TempDir,
}

fn script() -> PathBuf {
    workspace().join("integration/mesos-local/mesos-local")
}

impl MesosCluster {
    /// Starts a cluster with `agents` agents of the given resources; their
    /// `ports` are replaced by a block no other cluster uses.
    pub fn start(agents: u32, resources: &str) -> anyhow::Result<Self> {
        MesosCluster::start_with_env(agents, resources, &[])
    }

    /// [`MesosCluster::start`] with extra `MESOS_*` settings for the master
    /// and agents (e.g. `MESOS_AUTHENTICATE_HTTP_FRAMEWORKS=true`).
    pub fn start_with_env(
        agents: u32,
        resources: &str,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let ports = PortBlock::claim()?;
        let resources = with_ports(resources, &ports);
        let resources = resources.as_str();
        let dir = tempfile::Builder::new().prefix("drover-e2e-").tempdir().context("temp dir")?;
        let work_dir = dir.path().join("mesos");
        let mut last = String::new();
        // A port picked free can be taken before Mesos binds it: retry.
        for _ in 0..3 {
            let port = free_port();
            let out = Command::new(script())
                .args(["start", "--work-dir"])
                .arg(&work_dir)
                .args([
                    "--port",
                    &port.to_string(),
                    "--agents",
                    &agents.to_string(),
                    "--resources",
                    resources,
                ])
                .envs(env.iter().copied())
                .stdin(Stdio::null())
                .output()
                .context("running mesos-local")?;
            if out.status.success() {
                return Ok(MesosCluster {
                    master: format!("http://127.0.0.1:{port}"),
                    work_dir,
                    ports,
                    _dir: dir,
                });
            }
            last = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        bail!("mesos-local start failed:\n{last}")
    }

    /// `GET /master/state`.
    pub async fn state(&self) -> anyhow::Result<Value> {
        let (status, body) = http(&format!("{}/master/state", self.master), "GET", None).await?;
        if status != 200 {
            bail!("/master/state answered {status}");
        }
        Ok(body)
    }

    /// The framework named `name` in `/master/state`, if subscribed.
    pub async fn framework(&self, name: &str) -> anyhow::Result<Option<Value>> {
        let state = self.state().await?;
        Ok(state["frameworks"]
            .as_array()
            .and_then(|fs| fs.iter().find(|f| f["name"] == name))
            .cloned())
    }
}

impl Drop for MesosCluster {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .args(["stop", "--work-dir"])
            .arg(&self.work_dir)
            .stdout(Stdio::null())
            .status();
        remove_orphan_containers();
        archive_logs(&self.work_dir, "mesos");
    }
}

/// The environment variable naming a directory where every cluster and
/// daemon keeps its logs when it stops (integration/test.sh sets it, then
/// greps them for the test secrets: integration/e2e/test-secrets.txt).
pub const LOG_ARCHIVE_ENV: &str = "DROVER_E2E_LOG_ARCHIVE";

/// Copies the logs under `dir` (daemon logs, Mesos' logs, sandbox `stdout`
/// and `stderr` files, at most 16 MiB each) into a fresh directory of
/// [`LOG_ARCHIVE_ENV`], when it is set.
fn archive_logs(dir: &Path, kind: &str) {
    let Some(archive) = std::env::var_os(LOG_ARCHIVE_ENV) else { return };
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let to = Path::new(&archive).join(format!("{kind}-{}-{n}", std::process::id()));
    let mut pending = vec![dir.to_path_buf()];
    while let Some(at) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&at) else { continue };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else { continue };
            let path = entry.path();
            if kind.is_dir() {
                pending.push(path);
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_log = name == "stdout" || name == "stderr" || name.contains(".log");
            let small = entry.metadata().is_ok_and(|m| m.len() <= 16 << 20);
            if kind.is_file() && is_log && small {
                let rel = path.strip_prefix(dir).unwrap_or(&path);
                let dest = to.join(rel);
                if let Some(parent) = dest.parent() {
                    let _ = std::fs::create_dir_all(parent);
                }
                let _ = std::fs::copy(&path, dest);
            }
        }
    }
}

/// Removes the test engine's Drover containers whose executor is gone (the
/// cluster that ran them stopped): they would hold host ports that a later
/// test's agent offers.
fn remove_orphan_containers() {
    if std::env::var_os("DOCKER_HOST").is_none() {
        return;
    }
    let Ok(out) = Command::new("docker")
        .args(["ps", "-q", "--filter", "label=drover.executor_pid"])
        .args(["--format", "{{.ID}} {{index .Labels \"drover.executor_pid\"}}"])
        .stderr(Stdio::null())
        .output()
    else {
        return;
    };
    let orphans: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, pid)| !Path::new(&format!("/proc/{}", pid.trim())).exists())
        .map(|(id, _)| id.to_owned())
        .collect();
    if !orphans.is_empty() {
        let _ = Command::new("docker")
            .args(["rm", "-f"])
            .args(&orphans)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A `drover serve` process, stopped on drop.
pub struct Drover {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The daemon's log file.
    pub log: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drover {
    /// Starts `drover serve` against `master` with extra flags. The API runs
    /// open (`--insecure-open`) unless `extra` has `--credentials-file` (or
    /// `--insecure-open`); with `--tls-cert-file` [`Drover::url`] is
    /// `https://` (and the test makes its own HTTPS requests).
    pub async fn start(master: &str, extra: &[&str]) -> anyhow::Result<Self> {
        Drover::start_with_env(master, extra, &[]).await
    }

    /// [`Drover::start`] with extra environment variables (they win over
    /// the default `DROVER_LOG`).
    pub async fn start_with_env(
        master: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let drover = binary("drover")?;
        let executor = binary("drover-executor")?;
        let dir =
            tempfile::Builder::new().prefix("drover-e2e-log-").tempdir().context("temp dir")?;
        let log = dir.path().join("drover.log");
        let port = free_port();
        let file = std::fs::File::create(&log).context("log file")?;
        // State in an embedded store under the test's dir, unless the test
        // chose a store itself.
        let store_args: Vec<String> =
            if extra.iter().any(|a| *a == "--etcd" || *a == "--data-dir" || *a == "--in-memory") {
                Vec::new()
            } else {
                vec!["--data-dir".into(), dir.path().join("state").display().to_string()]
            };
        // The API runs open unless the test gives credentials.
        let open_args: &[&str] =
            if extra.iter().any(|a| *a == "--credentials-file" || *a == "--insecure-open") {
                &[]
            } else {
                &["--insecure-open"]
            };
        let tls = extra.contains(&"--tls-cert-file");
        let child = Command::new(drover)
            .args(["serve", "--master", master, "--listen", &format!("127.0.0.1:{port}")])
            .args(&store_args)
            .args(open_args)
            .arg("--executor-path")
            .arg(&executor)
            .args(["--min-revive-offers-interval-secs", "1", "--executor-log", "debug"])
            .args(extra)
            .env("DROVER_LOG", "info,drover=debug,sched_api=debug,mesos_http=debug,etcd_api=debug,sched_store=debug")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone().context("log file")?)
            .stderr(file)
            .spawn()
            .context("spawning drover")?;
        let scheme = if tls { "https" } else { "http" };
        let d = Drover { url: format!("{scheme}://127.0.0.1:{port}"), log, child, _dir: dir };
        let ping = format!("{}/ping", d.url);
        eventually("drover to answer /ping", Duration::from_secs(20), || async {
            if tls {
                // The test checks HTTPS itself; here the port is enough.
                let serving = d.log_text().contains("Drover is serving.");
                return Ok(serving.then_some(()));
            }
            Ok(http_text(&ping).await.ok().filter(|t| t == "pong").map(|_| ()))
        })
        .await
        .map_err(|e| anyhow!("{e:#}\n{}", d.log_text()))?;
        Ok(d)
    }

    /// The daemon's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A request to the API.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> anyhow::Result<(u16, Value)> {
        http(&format!("{}{}", self.url, path), method, body.map(str::to_owned)).await
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`KILL`, `STOP`, `CONT`, ...) to the daemon.
    pub fn signal(&self, signal: &str) {
        let _ =
            Command::new("kill").args([format!("-{signal}"), self.child.id().to_string()]).status();
    }

    /// Stops the daemon with SIGTERM and waits for it.
    pub fn stop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Drover {
    fn drop(&mut self) {
        self.stop();
        archive_logs(self._dir.path(), "drover");
    }
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// One HTTP request with an optional JSON body; answers the status and the
/// JSON body (`Null` when the body is not JSON).
pub async fn http(url: &str, method: &str, body: Option<String>) -> anyhow::Result<(u16, Value)> {
    let (status, _, bytes) = http_raw(url, method, body).await?;
    Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
}

/// One HTTP request; answers the status, the headers and the raw body.
pub async fn http_raw(
    url: &str,
    method: &str,
    body: Option<String>,
) -> anyhow::Result<(u16, http::HeaderMap, Bytes)> {
    let req = http::Request::builder()
        .method(method)
        .uri(url)
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .context("building request")?;
    let resp = tokio::time::timeout(Duration::from_secs(20), client().request(req))
        .await
        .map_err(|_| anyhow!("{method} {url} timed out"))?
        .with_context(|| format!("{method} {url}"))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.context("reading body")?.to_bytes();
    Ok((status, headers, bytes))
}

/// A GET whose body is read as text.
pub async fn http_text(url: &str) -> anyhow::Result<String> {
    let (_, _, bytes) = http_raw(url, "GET", None).await?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// A live (non-zombie) process.
#[derive(Debug, Clone)]
pub struct Proc {
    /// Its pid.
    pub pid: u32,
    /// Its command line, space-joined.
    pub cmdline: String,
}

/// Live processes whose environment has `MESOS_TASK_ID=<task_id>` and whose
/// command line contains `needle`.
pub fn task_processes(task_id: &str, needle: &str) -> Vec<Proc> {
    processes_with_env(&format!("MESOS_TASK_ID={task_id}"), needle)
}

/// Live processes whose environment holds `var` (`NAME=value`) and whose
/// command line contains `needle`.
pub fn processes_with_env(var: &str, needle: &str) -> Vec<Proc> {
    let want = var.to_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let base = e.path();
        let Ok(stat) = std::fs::read_to_string(base.join("stat")) else { continue };
        // Field 3 (after the parenthesised name) is the state; Z = zombie.
        if stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')) {
            continue;
        }
        let Ok(environ) = std::fs::read(base.join("environ")) else { continue };
        if !environ.split(|b| *b == 0).any(|kv| kv == want.as_bytes()) {
            continue;
        }
        let cmdline = std::fs::read(base.join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ").trim().to_owned();
        if cmdline.contains(needle) {
            out.push(Proc { pid, cmdline });
        }
    }
    out
}
