//! [`DockerRuntime`]: a task is a Docker container, driven through the
//! Docker Engine API (bollard).
//!
//! Starting a task:
//! 1. the container description is translated ([`create`]); an invalid one
//!    (an unsupported parameter, ...) fails the start;
//! 2. the image is inspected and pulled when missing or when the task
//!    forces a pull; a failed pull fails the start, naming the image;
//! 3. the container is created (labelled with the framework, executor,
//!    task and app, see [`create::labels`]) and started;
//! 4. its stdout and stderr are streamed (the logs endpoint, following)
//!    and appended to the sandbox's `stdout` and `stderr` files.
//!
//! The exit future waits for the container to stop, lets the log stream
//! drain, removes the container, and yields its status: an exit code above
//! 128 and at most 192 is reported as the signal `code - 128` (Docker's
//! convention for a main process killed by a signal), anything else as an
//! exit code. SIGTERM and SIGKILL go to the container (`docker kill -s`),
//! so the core's grace logic gives `docker stop` semantics.
//!
//! Every API call is bounded: [`DockerConfig::api_timeout`] for plain
//! calls, [`DockerConfig::pull_timeout`] for a pull. The connection is made
//! on first use, so an executor that never runs a container never needs
//! Docker.
//!
//! **Ownership.** The runtime tracks the tasks it is starting or running.
//! [`ContainerRuntime::reap_orphans`] stops and removes the containers
//! labelled with this framework that nobody owns: this executor's own that
//! it does not track, and those of an executor of the same pid namespace
//! whose process (pid and start time) is gone, such as one killed by
//! SIGKILL. [`ContainerRuntime::remove_all`] kills and removes every
//! container of this executor: its last act before exiting.

pub mod create;

use std::collections::{BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::exec::StartExecResults;
use bollard::models::ExecConfig;
use bollard::query_parameters::{
    CreateImageOptions, KillContainerOptions, ListContainersOptions, LogsOptions,
    RemoveContainerOptions, StopContainerOptions,
};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

pub use create::{Owner, SANDBOX_IN_CONTAINER, SUPPORTED_PARAMETERS, labels};

use crate::{
    BoxFuture, Command, ContainerRuntime, EXEC_OUTPUT_LIMIT, ExecOutput, ExitStatus, RunningTask,
    RuntimeError, Signal, TaskControl, TaskSpec, error_chain, output_tail, procs,
};

/// How the executor reaches Docker and whose containers it manages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerConfig {
    /// The engine's address, as in `DOCKER_HOST` (`unix:///path` or
    /// `tcp://host:port`).
    pub host: String,
    /// `MESOS_FRAMEWORK_ID`.
    pub framework_id: String,
    /// `MESOS_EXECUTOR_ID`.
    pub executor_id: String,
    /// The task sandbox on the host (made absolute).
    pub sandbox: PathBuf,
    /// The bound of every API call but pulls.
    pub api_timeout: Duration,
    /// The bound of an image pull.
    pub pull_timeout: Duration,
    /// How long an orphan gets between SIGTERM and SIGKILL.
    pub orphan_grace: Duration,
    /// How long the output may take to drain after the container stopped.
    pub log_flush_timeout: Duration,
}

impl DockerConfig {
    /// Docker's default address.
    pub const DEFAULT_HOST: &'static str = "unix:///var/run/docker.sock";

    /// A configuration with the default timeouts: 30 s per call, 10 min
    /// per pull, 3 s for orphans to stop, 10 s for output to drain.
    pub fn new(
        host: impl Into<String>,
        framework_id: impl Into<String>,
        executor_id: impl Into<String>,
        sandbox: impl Into<PathBuf>,
    ) -> Self {
        DockerConfig {
            host: host.into(),
            framework_id: framework_id.into(),
            executor_id: executor_id.into(),
            sandbox: sandbox.into(),
            api_timeout: Duration::from_secs(30),
            pull_timeout: Duration::from_secs(600),
            orphan_grace: Duration::from_secs(3),
            log_flush_timeout: Duration::from_secs(10),
        }
    }
}

/// Runs tasks as Docker containers.
#[derive(Debug, Clone)]
pub struct DockerRuntime {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: DockerConfig,
    sandbox: PathBuf,
    owner: Owner,
    client: tokio::sync::OnceCell<Docker>,
    /// The tasks whose container is being started, runs, or is being removed.
    owned: Mutex<BTreeSet<String>>,
}

impl DockerRuntime {
    /// A runtime for `config`; it connects on first use.
    pub fn new(config: DockerConfig) -> Self {
        let me = std::process::id();
        let sandbox =
            std::path::absolute(&config.sandbox).unwrap_or_else(|_| config.sandbox.clone());
        let owner = Owner {
            framework_id: config.framework_id.clone(),
            executor_id: config.executor_id.clone(),
            pid: me,
            start_time: procs::start_time(me).unwrap_or(0),
            pid_namespace: procs::pid_namespace().unwrap_or_default(),
        };
        let inner = Inner {
            config,
            sandbox,
            owner,
            client: tokio::sync::OnceCell::new(),
            owned: Mutex::new(BTreeSet::new()),
        };
        DockerRuntime { inner: Arc::new(inner) }
    }

    /// Who this runtime's containers say owns them.
    pub fn owner(&self) -> &Owner {
        &self.inner.owner
    }

    /// The Docker client, connected and version-negotiated.
    pub async fn client(&self) -> Result<Docker, RuntimeError> {
        self.inner.client().await
    }
}

impl ContainerRuntime for DockerRuntime {
    fn start(&self, spec: TaskSpec) -> BoxFuture<Result<RunningTask, RuntimeError>> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.start(spec).await })
    }

    fn reap_orphans(&self) -> BoxFuture<Result<Vec<String>, RuntimeError>> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.reap_orphans().await })
    }

    fn remove_all(&self) -> BoxFuture<Result<Vec<String>, RuntimeError>> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.remove_all().await })
    }
}

/// Runs one API call within `after`.
async fn timed<T>(
    what: String,
    after: Duration,
    call: impl Future<Output = Result<T, DockerError>>,
) -> Result<T, RuntimeError> {
    match tokio::time::timeout(after, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(source)) => Err(RuntimeError::Docker { what, source }),
        Err(_) => Err(RuntimeError::DockerTimeout { what, after }),
    }
}

/// Docker answered with one of `codes` (404: no such object; 409: a
/// conflict such as "not running" or "removal in progress").
fn answered(err: &RuntimeError, codes: &[u16]) -> bool {
    matches!(
        err,
        RuntimeError::Docker { source: DockerError::DockerResponseServerError { status_code, .. }, .. }
            if codes.contains(status_code)
    )
}

/// A container's exit code as the task's exit status (see the module docs).
fn exit_status(code: i64) -> ExitStatus {
    match code {
        129..=192 => ExitStatus::Signal(i32::try_from(code - 128).unwrap_or(0)),
        code => ExitStatus::Code(i32::try_from(code).unwrap_or(-1)),
    }
}

/// `fromImage` and `tag` of a pull: an untagged reference pulls `latest`
/// (Docker would otherwise pull every tag).
fn pull_reference(image: &str) -> (String, Option<String>) {
    let name = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || name.contains(':') {
        (image.to_owned(), None)
    } else {
        (image.to_owned(), Some("latest".to_owned()))
    }
}

fn open_log(sandbox: &Path, name: &str) -> Result<File, RuntimeError> {
    let path = sandbox.join(name);
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|source| RuntimeError::Sandbox { path, source })
}

/// Marks a task as owned while it lives.
struct Owned {
    inner: Arc<Inner>,
    task_id: String,
}

impl Owned {
    fn new(inner: Arc<Inner>, task_id: String) -> Self {
        inner.owned().insert(task_id.clone());
        Owned { inner, task_id }
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        self.inner.owned().remove(&self.task_id);
    }
}

impl Inner {
    fn owned(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.owned.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn client(&self) -> Result<Docker, RuntimeError> {
        let host = &self.config.host;
        let connect = || async {
            let what = format!("connect to Docker at `{host}`");
            let docker = Docker::connect_with_host(host)
                .map_err(|source| RuntimeError::Docker { what: what.clone(), source })?;
            timed(what, self.config.api_timeout, docker.negotiate_version()).await
        };
        self.client.get_or_try_init(connect).await.cloned()
    }

    async fn start(self: Arc<Self>, spec: TaskSpec) -> Result<RunningTask, RuntimeError> {
        let docker_spec = spec.container.as_ref().ok_or_else(|| {
            RuntimeError::InvalidContainer("the task has no container".to_owned())
        })?;
        let body = create::create_body(&spec, docker_spec, &self.sandbox, &self.owner)?;
        let stdout = open_log(&self.sandbox, "stdout")?;
        let stderr = open_log(&self.sandbox, "stderr")?;
        let task_id = spec.task_id.0.clone();
        let owned = Owned::new(self.clone(), task_id.clone());
        let docker = self.client().await?;
        self.ensure_image(&docker, &docker_spec.image, docker_spec.force_pull).await?;
        let api = self.config.api_timeout;
        let created = timed(
            format!("create the container of task `{task_id}`"),
            api,
            docker.create_container(None, body),
        )
        .await?;
        let id = created.id;
        let started = timed(format!("start container `{id}`"), api, async {
            docker.start_container(&id, None).await
        })
        .await;
        if let Err(e) = started {
            if let Err(e) = self.remove(&docker, &id).await {
                tracing::warn!(%task_id, container_id = %id, error = %error_chain(&e), "Cannot remove a container that did not start.");
            }
            return Err(e);
        }
        let pid = match timed(
            format!("inspect container `{id}`"),
            api,
            docker.inspect_container(&id, None),
        )
        .await
        {
            Ok(info) => info.state.and_then(|s| s.pid).and_then(|p| u32::try_from(p).ok()),
            Err(_) => None,
        };
        tracing::info!(%task_id, container_id = %id, "Container started.");
        let pump = tokio::spawn(pump_logs(docker.clone(), id.clone(), stdout, stderr));
        let control = Arc::new(DockerControl { docker: docker.clone(), id: id.clone(), api });
        let inner = self.clone();
        let exit_id = id.clone();
        let exit = Box::pin(async move {
            let status = wait_exit(&docker, &exit_id, api).await;
            if tokio::time::timeout(inner.config.log_flush_timeout, pump).await.is_err() {
                tracing::warn!(container_id = %exit_id, "The container's output did not drain in time.");
            }
            if let Err(e) = inner.remove(&docker, &exit_id).await {
                tracing::warn!(container_id = %exit_id, error = %error_chain(&e), "Cannot remove the container.");
            }
            drop(owned);
            status
        });
        Ok(RunningTask { pid: pid.unwrap_or(0), container_id: Some(id), control, exit })
    }

    async fn ensure_image(
        &self,
        docker: &Docker,
        image: &str,
        force_pull: bool,
    ) -> Result<(), RuntimeError> {
        if !force_pull {
            let what = format!("inspect image `{image}`");
            match timed(what, self.config.api_timeout, docker.inspect_image(image)).await {
                Ok(_) => return Ok(()),
                Err(e) if answered(&e, &[404]) => {}
                Err(e) => return Err(e),
            }
        }
        tracing::info!(image, "Pulling image.");
        let (from_image, tag) = pull_reference(image);
        let options =
            CreateImageOptions { from_image: Some(from_image), tag, ..Default::default() };
        let pull = async {
            let mut progress = docker.create_image(Some(options), None, None);
            while let Some(item) = progress.next().await {
                item?;
            }
            Ok(())
        };
        timed(format!("pull image `{image}`"), self.config.pull_timeout, pull).await
    }

    /// Removes a container (killing it if it runs); a missing one is fine.
    async fn remove(&self, docker: &Docker, id: &str) -> Result<(), RuntimeError> {
        let options = RemoveContainerOptions { force: true, v: true, ..Default::default() };
        let what = format!("remove container `{id}`");
        match timed(what, self.config.api_timeout, docker.remove_container(id, Some(options))).await
        {
            Err(e) if !answered(&e, &[404, 409]) => Err(e),
            _ => Ok(()),
        }
    }

    /// The containers labelled with this framework (and this executor).
    async fn list(
        &self,
        docker: &Docker,
        only_mine: bool,
    ) -> Result<Vec<(String, HashMap<String, String>)>, RuntimeError> {
        let mut filter = vec![format!("{}={}", labels::FRAMEWORK_ID, self.owner.framework_id)];
        if only_mine {
            filter.push(format!("{}={}", labels::EXECUTOR_ID, self.owner.executor_id));
        }
        let options = ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([("label".to_owned(), filter)])),
            ..Default::default()
        };
        let what = "list Drover's containers".to_owned();
        let list =
            timed(what, self.config.api_timeout, docker.list_containers(Some(options))).await?;
        Ok(list.into_iter().filter_map(|c| Some((c.id?, c.labels.unwrap_or_default()))).collect())
    }

    /// True when nobody owns a container with these labels.
    fn is_orphan(&self, labels: &HashMap<String, String>) -> bool {
        let get = |key: &str| labels.get(key).map_or("", String::as_str);
        if get(labels::EXECUTOR_ID) == self.owner.executor_id {
            return !self.owned().contains(get(labels::TASK_ID));
        }
        // Another executor's: an orphan once that executor is gone. Pids
        // only mean something in the namespace they were read in.
        if self.owner.pid_namespace.is_empty()
            || get(labels::PID_NAMESPACE) != self.owner.pid_namespace
        {
            return false;
        }
        match (get(labels::EXECUTOR_PID).parse(), get(labels::EXECUTOR_START).parse()) {
            (Ok(pid), Ok(start)) => !procs::is_same_process_alive(pid, start),
            _ => false,
        }
    }

    async fn reap_orphans(&self) -> Result<Vec<String>, RuntimeError> {
        let docker = self.client().await?;
        let mut reaped = Vec::new();
        for (id, labels) in self.list(&docker, false).await? {
            if !self.is_orphan(&labels) {
                continue;
            }
            let task_id = labels.get(labels::TASK_ID).cloned().unwrap_or_default();
            tracing::info!(%task_id, container_id = %id, "Stopping an orphaned container.");
            let grace = self.config.orphan_grace;
            let options = StopContainerOptions {
                t: Some(i32::try_from(grace.as_secs()).unwrap_or(i32::MAX)),
                signal: None,
            };
            let stop = timed(
                format!("stop container `{id}`"),
                grace + self.config.api_timeout,
                docker.stop_container(&id, Some(options)),
            )
            .await;
            // 304: it was not running; 404: it is gone already.
            if let Err(e) = stop
                && !answered(&e, &[304, 404])
            {
                tracing::warn!(container_id = %id, error = %error_chain(&e), "Cannot stop an orphaned container.");
            }
            match self.remove(&docker, &id).await {
                Ok(()) => reaped.push(id),
                Err(e) => {
                    tracing::warn!(container_id = %id, error = %error_chain(&e), "Cannot remove an orphaned container.")
                }
            }
        }
        Ok(reaped)
    }

    async fn remove_all(&self) -> Result<Vec<String>, RuntimeError> {
        let docker = self.client().await?;
        let mut removed = Vec::new();
        for (id, labels) in self.list(&docker, true).await? {
            let task_id = labels.get(labels::TASK_ID).cloned().unwrap_or_default();
            match self.remove(&docker, &id).await {
                Ok(()) => {
                    tracing::info!(%task_id, container_id = %id, "Removed a container.");
                    removed.push(id);
                }
                Err(e) => {
                    tracing::warn!(%task_id, container_id = %id, error = %error_chain(&e), "Cannot remove a container.")
                }
            }
        }
        Ok(removed)
    }
}

/// Waits for a container to stop and returns its exit status. A broken
/// wait is retried; Docker is asked directly in between.
async fn wait_exit(docker: &Docker, id: &str, api: Duration) -> Result<ExitStatus, RuntimeError> {
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut wait = docker.wait_container(id, None);
        match wait.next().await {
            Some(Ok(answer)) => return Ok(exit_status(answer.status_code)),
            Some(Err(DockerError::DockerContainerWaitError { code, .. })) => {
                return Ok(exit_status(code));
            }
            broken => {
                let what = format!("inspect container `{id}`");
                match timed(what, api, docker.inspect_container(id, None)).await {
                    Ok(info) => {
                        let state = info.state.unwrap_or_default();
                        if state.running == Some(false) {
                            return Ok(exit_status(state.exit_code.unwrap_or(-1)));
                        }
                    }
                    Err(e) if answered(&e, &[404]) => return Err(e),
                    Err(e) => {
                        tracing::warn!(container_id = %id, error = %error_chain(&e), wait = ?broken.map(|r| r.map(|_| ())), "Cannot wait for the container.");
                    }
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Appends a container's output to the sandbox files until it ends.
async fn pump_logs(docker: Docker, id: String, stdout: File, stderr: File) {
    let mut out = tokio::fs::File::from_std(stdout);
    let mut err = tokio::fs::File::from_std(stderr);
    let options = LogsOptions { follow: true, stdout: true, stderr: true, ..Default::default() };
    let mut logs = docker.logs(&id, Some(options));
    while let Some(item) = logs.next().await {
        let written = match item {
            Ok(LogOutput::StdErr { message }) => err.write_all(&message).await,
            Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                out.write_all(&message).await
            }
            Ok(LogOutput::StdIn { .. }) => Ok(()),
            Err(e) => {
                tracing::warn!(container_id = %id, error = %error_chain(&e), "Cannot read the container's output.");
                break;
            }
        };
        if let Err(e) = written {
            tracing::warn!(container_id = %id, error = %e, "Cannot write the container's output to the sandbox.");
            break;
        }
    }
    let _ = out.flush().await;
    let _ = err.flush().await;
}

/// Signals a container; runs commands in it (`docker exec`).
#[derive(Debug)]
struct DockerControl {
    docker: Docker,
    id: String,
    api: Duration,
}

impl TaskControl for DockerControl {
    fn signal(&self, signal: Signal) -> BoxFuture<Result<(), RuntimeError>> {
        let (docker, id, api) = (self.docker.clone(), self.id.clone(), self.api);
        Box::pin(async move {
            let name = match signal {
                Signal::Term => "SIGTERM",
                Signal::Kill => "SIGKILL",
            };
            let options = KillContainerOptions { signal: name.to_owned() };
            let what = format!("send {name} to container `{id}`");
            match timed(what, api, docker.kill_container(&id, Some(options))).await {
                // Gone or not running: it exited already.
                Err(e) if !answered(&e, &[404, 409]) => Err(e),
                _ => Ok(()),
            }
        })
    }

    fn exec(
        &self,
        command: &Command,
        env: &std::collections::BTreeMap<String, String>,
    ) -> BoxFuture<Result<ExecOutput, RuntimeError>> {
        let (docker, id, api) = (self.docker.clone(), self.id.clone(), self.api);
        let cmd = match command {
            Command::Shell(line) => vec!["/bin/sh".to_owned(), "-c".to_owned(), line.clone()],
            Command::Argv(argv) => argv.clone(),
            Command::ImageDefault => Vec::new(),
        };
        let env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        Box::pin(async move {
            if cmd.first().is_none_or(String::is_empty) {
                return Err(RuntimeError::EmptyCommand);
            }
            let config = ExecConfig {
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                cmd: Some(cmd),
                env: Some(env),
                ..Default::default()
            };
            let what = format!("run a command in container `{id}`");
            let exec = timed(what.clone(), api, docker.create_exec(&id, config)).await?;
            let started = timed(what.clone(), api, docker.start_exec(&exec.id, None)).await?;
            let mut output = Vec::new();
            if let StartExecResults::Attached { output: mut stream, .. } = started {
                while let Some(Ok(chunk)) = stream.next().await {
                    output.extend_from_slice(chunk.as_ref());
                    if output.len() > 4 * EXEC_OUTPUT_LIMIT {
                        output.drain(..output.len() - EXEC_OUTPUT_LIMIT);
                    }
                }
            }
            // The output ends a moment before Docker records the exit code.
            let mut code = None;
            for _ in 0..100 {
                let info = timed(what.clone(), api, docker.inspect_exec(&exec.id)).await?;
                if info.running != Some(true) {
                    code = info.exit_code;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let status = ExitStatus::Code(code.and_then(|c| i32::try_from(c).ok()).unwrap_or(-1));
            Ok(ExecOutput { status, output: output_tail(&output) })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_above_128_are_signals_as_docker_reports_them() {
        assert_eq!(exit_status(0), ExitStatus::Code(0));
        assert_eq!(exit_status(3), ExitStatus::Code(3));
        assert_eq!(exit_status(128), ExitStatus::Code(128));
        assert_eq!(exit_status(137), ExitStatus::Signal(9));
        assert_eq!(exit_status(143), ExitStatus::Signal(15));
        assert_eq!(exit_status(192), ExitStatus::Signal(64));
        assert_eq!(exit_status(255), ExitStatus::Code(255));
        assert_eq!(exit_status(-1), ExitStatus::Code(-1));
    }

    #[test]
    fn untagged_images_pull_latest_and_tags_or_digests_are_kept() {
        assert_eq!(pull_reference("busybox"), ("busybox".into(), Some("latest".into())));
        assert_eq!(pull_reference("busybox:1.36"), ("busybox:1.36".into(), None));
        assert_eq!(
            pull_reference("127.0.0.1:5000/team/app"),
            ("127.0.0.1:5000/team/app".into(), Some("latest".into()))
        );
        assert_eq!(pull_reference("127.0.0.1:5000/app:2"), ("127.0.0.1:5000/app:2".into(), None));
        assert_eq!(pull_reference("app@sha256:abcd"), ("app@sha256:abcd".into(), None));
    }

    fn runtime() -> DockerRuntime {
        DockerRuntime::new(DockerConfig::new("unix:///nonexistent.sock", "fw", "ex", "/tmp"))
    }

    fn owner_labels(
        owner: &Owner,
        executor_id: &str,
        pid: u32,
        start: u64,
    ) -> HashMap<String, String> {
        let mut labels: HashMap<String, String> =
            Owner { executor_id: executor_id.into(), pid, start_time: start, ..owner.clone() }
                .labels()
                .into_iter()
                .collect();
        labels.insert(labels::TASK_ID.into(), "t1".into());
        labels
    }

    #[test]
    fn orphans_are_untracked_containers_of_this_executor_or_of_a_dead_one() {
        let rt = runtime();
        let me = rt.owner().clone();
        assert!(me.start_time > 0 && me.pid_namespace.starts_with("pid:["), "{me:?}");
        let mine = owner_labels(&me, "ex", me.pid, me.start_time);
        assert!(rt.inner.is_orphan(&mine), "not tracked");
        let owned = Owned::new(rt.inner.clone(), "t1".into());
        assert!(!rt.inner.is_orphan(&mine), "tracked");
        drop(owned);
        assert!(rt.inner.is_orphan(&mine));
        // Another executor that lives (this very process) keeps its containers.
        assert!(!rt.inner.is_orphan(&owner_labels(&me, "other", me.pid, me.start_time)));
        // The same pid with another start time is a dead executor.
        assert!(rt.inner.is_orphan(&owner_labels(&me, "other", me.pid, me.start_time + 1)));
        // Pids of another namespace, or missing labels, prove nothing.
        let mut foreign = owner_labels(&me, "other", me.pid, me.start_time + 1);
        foreign.insert(labels::PID_NAMESPACE.into(), "pid:[1]".into());
        assert!(!rt.inner.is_orphan(&foreign));
        let mut unlabelled = owner_labels(&me, "other", me.pid, me.start_time + 1);
        unlabelled.remove(labels::EXECUTOR_PID);
        assert!(!rt.inner.is_orphan(&unlabelled));
    }

    #[tokio::test]
    async fn an_unreachable_engine_fails_the_start_with_the_address() {
        let rt = runtime();
        let spec = TaskSpec {
            container: Some(exec_core::DockerSpec::new("busybox")),
            ..TaskSpec::new("t1", Command::ImageDefault)
        };
        let dir = tempfile::tempdir().unwrap();
        let rt = DockerRuntime::new(DockerConfig {
            sandbox: dir.path().to_owned(),
            ..rt.inner.config.clone()
        });
        let err = rt.start(spec).await.unwrap_err();
        assert!(
            error_chain(&err).starts_with("cannot connect to Docker at `unix:///nonexistent.sock`"),
            "{}",
            error_chain(&err)
        );
        assert!(rt.inner.owned().is_empty(), "a failed start owns nothing");
        let err = rt.reap_orphans().await.unwrap_err();
        assert!(error_chain(&err).contains("nonexistent.sock"));
    }
}
