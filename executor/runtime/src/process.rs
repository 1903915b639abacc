//! [`ProcessRuntime`]: a task is a child process of the executor.
//!
//! - `Shell(cmd)` runs `/bin/sh -c cmd`; `Argv(argv)` executes `argv[0]`
//!   (looked up in the task's `PATH`) with the rest as arguments.
//! - The working directory is the sandbox. The environment is clean: `PATH`
//!   (the executor's), `HOME` and `MESOS_SANDBOX` (the sandbox),
//!   `MESOS_TASK_ID`, then the task's own variables (which may override them).
//! - stdout and stderr are appended to `<sandbox>/stdout` and `<sandbox>/stderr`.
//! - The child leads its own process group, so a signal reaches everything
//!   it started (`killpg`), and after the main process exits the group is
//!   SIGKILLed to remove stragglers.
//! - Resource limits and containers are not this runtime's business: the
//!   task's `limits` are ignored and a container task is refused.
//! - [`TaskControl::exec`] (health-check commands) runs in the sandbox with
//!   the task's environment, in its own process group, killed when dropped.
//! - The child gets `PR_SET_PDEATHSIG = SIGKILL`: it dies if the executor
//!   dies. The setting is not inherited across `fork`, so the task's own
//!   children are not covered; they stay in the executor's session, which
//!   the agent's launcher kills with the executor. Linux ties this to the *thread* that forked, so `start` must be
//!   called from a thread that lives as long as the executor (a runtime
//!   worker or the main thread of a current-thread runtime, never a
//!   `spawn_blocking` thread), inside a tokio runtime.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::{
    BoxFuture, Command, ContainerRuntime, ExecOutput, ExitStatus, RunningTask, RuntimeError,
    Signal, TaskControl, TaskSpec, output_tail,
};

/// The `PATH` tasks get when the executor has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Runs tasks as child processes in a sandbox directory.
#[derive(Debug, Clone)]
pub struct ProcessRuntime {
    sandbox: PathBuf,
    path: String,
}

impl ProcessRuntime {
    /// A runtime whose tasks run in `sandbox` with `PATH=path`.
    pub fn new(sandbox: impl Into<PathBuf>, path: impl Into<String>) -> Self {
        ProcessRuntime { sandbox: sandbox.into(), path: path.into() }
    }

    /// The sandbox directory.
    pub fn sandbox(&self) -> &Path {
        &self.sandbox
    }

    fn open_log(&self, name: &str) -> Result<File, RuntimeError> {
        let path = self.sandbox.join(name);
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| RuntimeError::Sandbox { path, source })
    }

    /// `program` and `args` of a command, in a clean environment in the
    /// sandbox, in its own process group.
    fn command(
        &self,
        command: &Command,
        task_id: &str,
        env: &BTreeMap<String, String>,
    ) -> Result<tokio::process::Command, RuntimeError> {
        let argv: Vec<&str> = match command {
            Command::Shell(line) => vec!["/bin/sh", "-c", line],
            Command::Argv(argv) => argv.iter().map(String::as_str).collect(),
            Command::ImageDefault => Vec::new(),
        };
        let (program, args) = argv.split_first().ok_or(RuntimeError::EmptyCommand)?;
        if program.is_empty() {
            return Err(RuntimeError::EmptyCommand);
        }
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .env_clear()
            .env("PATH", &self.path)
            .env("HOME", &self.sandbox)
            .env("MESOS_SANDBOX", &self.sandbox)
            .env("MESOS_TASK_ID", task_id)
            .envs(env)
            .current_dir(&self.sandbox)
            .stdin(Stdio::null())
            .process_group(0);
        Ok(cmd)
    }

    fn spawn(&self, spec: &TaskSpec) -> Result<RunningTask, RuntimeError> {
        if spec.container.is_some() {
            return Err(RuntimeError::InvalidContainer(
                "the process runtime cannot run a container".to_owned(),
            ));
        }
        let mut cmd = self.command(&spec.command, spec.task_id.as_str(), &spec.env)?;
        let program = program_name(&spec.command);
        let stdout = self.open_log("stdout")?;
        let stderr = self.open_log("stderr")?;
        cmd.stdout(Stdio::from(stdout)).stderr(Stdio::from(stderr)).kill_on_drop(false);
        // SAFETY: getpid has no preconditions and cannot fail.
        let parent = unsafe { libc::getpid() };
        // SAFETY: the closure runs in the forked child before exec, where only
        // async-signal-safe functions may be called. It calls prctl and
        // getppid, both async-signal-safe system calls; it allocates nothing
        // and takes no lock (io::Error::last_os_error and from_raw_os_error
        // only read errno and build a value without allocating).
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0)
                    == -1
                {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died before prctl took effect.
                if libc::getppid() != parent {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|source| RuntimeError::Spawn { program, source })?;
        let pid = child.id().unwrap_or(0);
        let pgid = i32::try_from(pid).unwrap_or(0);
        let exited = Arc::new(AtomicBool::new(false));
        let control = Arc::new(ProcessControl {
            pgid,
            exited: exited.clone(),
            runtime: self.clone(),
            task_id: spec.task_id.as_str().to_owned(),
            env: spec.env.clone(),
        });
        let exit = Box::pin(async move {
            let status = child.wait().await;
            exited.store(true, Ordering::SeqCst);
            // Whatever the task left in its process group goes with it.
            // ESRCH (nothing left) is the usual answer.
            let _ = killpg(pgid, libc::SIGKILL);
            let status = status.map_err(|source| RuntimeError::Wait { pid, source })?;
            Ok(match (status.code(), status.signal()) {
                (Some(code), _) => ExitStatus::Code(code),
                (None, Some(sig)) => ExitStatus::Signal(sig),
                (None, None) => ExitStatus::Code(-1),
            })
        });
        Ok(RunningTask { pid, container_id: None, control, exit })
    }
}

impl ContainerRuntime for ProcessRuntime {
    fn start(&self, spec: TaskSpec) -> BoxFuture<Result<RunningTask, RuntimeError>> {
        // Spawn now, on the caller's thread (see PR_SET_PDEATHSIG above).
        let result = self.spawn(&spec);
        Box::pin(async move { result })
    }
}

/// Signals a child's process group; runs commands in its sandbox.
#[derive(Debug)]
struct ProcessControl {
    pgid: i32,
    exited: Arc<AtomicBool>,
    runtime: ProcessRuntime,
    task_id: String,
    /// The task's own environment.
    env: BTreeMap<String, String>,
}

impl TaskControl for ProcessControl {
    fn signal(&self, signal: Signal) -> BoxFuture<Result<(), RuntimeError>> {
        let result = if self.exited.load(Ordering::SeqCst) || self.pgid <= 0 {
            // Reaped: the group id may belong to someone else by now.
            Ok(())
        } else {
            let sig = match signal {
                Signal::Term => libc::SIGTERM,
                Signal::Kill => libc::SIGKILL,
            };
            killpg(self.pgid, sig)
                .map_err(|source| RuntimeError::Signal { pgid: self.pgid, source })
        };
        Box::pin(async move { result })
    }

    fn exec(
        &self,
        command: &Command,
        env: &BTreeMap<String, String>,
    ) -> BoxFuture<Result<ExecOutput, RuntimeError>> {
        let mut all = self.env.clone();
        all.extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
        let program = program_name(command);
        let cmd = self.runtime.command(command, &self.task_id, &all);
        Box::pin(async move {
            let mut cmd = cmd?;
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
            let out =
                cmd.output().await.map_err(|source| RuntimeError::Spawn { program, source })?;
            let status = match (out.status.code(), out.status.signal()) {
                (Some(code), _) => ExitStatus::Code(code),
                (None, Some(sig)) => ExitStatus::Signal(sig),
                (None, None) => ExitStatus::Code(-1),
            };
            let mut output = out.stdout;
            output.extend_from_slice(&out.stderr);
            Ok(ExecOutput { status, output: output_tail(&output) })
        })
    }
}

/// The program a command executes, for error messages.
fn program_name(command: &Command) -> String {
    match command {
        Command::Shell(_) => "/bin/sh".to_owned(),
        Command::Argv(argv) => argv.first().cloned().unwrap_or_default(),
        Command::ImageDefault => String::new(),
    }
}

/// `killpg`, treating "no such process group" as success.
fn killpg(pgid: i32, sig: i32) -> io::Result<()> {
    if pgid <= 0 {
        return Ok(());
    }
    // SAFETY: killpg takes plain integers and has no memory-safety
    // preconditions; pgid > 0 so it never targets the caller's own group.
    if unsafe { libc::killpg(pgid, sig) } == -1 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ESRCH) {
            return Err(err);
        }
    }
    Ok(())
}
