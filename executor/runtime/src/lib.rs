//! How the executor runs a task: the [`ContainerRuntime`] trait and its
//! implementations.
//!
//! The executor core decides *when* to start and signal a task; a runtime
//! does it. A runtime starts a [`TaskSpec`] and hands back a
//! [`RunningTask`]: its pid (and container id), a [`TaskControl`] to signal
//! it and run commands beside it, and a future that resolves when it exits.
//! The trait is object-safe and every method returns a boxed future.
//!
//! - [`process`]: [`ProcessRuntime`], plain child processes in the sandbox.
//! - [`docker`]: [`DockerRuntime`], Docker containers through the Engine
//!   API (bollard), with orphan clean-up.
//! - [`dispatch`]: [`DispatchRuntime`], Docker for container tasks and
//!   processes for the rest.
//! - [`probe`]: the I/O of health-check probes (HTTP, TCP, commands).
//! - [`fake`]: [`FakeRuntime`], scripted tasks for tests and simulations.
//! - [`procs`]: `/proc` scanning, the child subreaper and the final
//!   clean-up of every descendant process.
//!
//! This is the one executor crate with `unsafe` code (raw `libc` calls for
//! `prctl`, `killpg`, `kill` and `waitpid`); each block says why it is sound.

#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub use exec_core::{Command, ExitStatus, Signal, TaskId, TaskSpec};

pub mod dispatch;
pub mod docker;
pub mod fake;
pub mod probe;
pub mod process;
pub mod procs;

pub use dispatch::DispatchRuntime;
pub use docker::{DockerConfig, DockerRuntime};
pub use fake::{FakeBehaviour, FakeRuntime};
pub use process::ProcessRuntime;

/// A boxed, sendable future (the trait's methods return these to stay
/// object-safe).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Why a runtime could not start, signal or watch a task.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// An `Argv` command with no program.
    #[error("the command is empty")]
    EmptyCommand,
    /// The sandbox's `stdout`/`stderr` file could not be opened.
    #[error("cannot open `{}`", path.display())]
    Sandbox {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The process could not be started.
    #[error("cannot start `{program}`")]
    Spawn {
        /// The program.
        program: String,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// A signal could not be delivered.
    #[error("cannot signal process group {pgid}")]
    Signal {
        /// The process group.
        pgid: i32,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// Waiting for the process failed.
    #[error("cannot wait for process {pid}")]
    Wait {
        /// The process.
        pid: u32,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// A system call of the executor itself failed.
    #[error("`{call}` failed")]
    System {
        /// The call.
        call: &'static str,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// A scripted failure of the [`FakeRuntime`].
    #[error("{0}")]
    Scripted(String),
    /// The container description cannot be run (an unsupported parameter,
    /// a bad volume, ...).
    #[error("{0}")]
    InvalidContainer(String),
    /// A Docker Engine API call failed; `what` says which, in the form
    /// "cannot <what>".
    #[error("cannot {what}")]
    Docker {
        /// What the executor tried, e.g. "pull image `busybox:latest`".
        what: String,
        /// What Docker said.
        #[source]
        source: bollard::errors::Error,
    },
    /// A Docker Engine API call did not answer in time.
    #[error("cannot {what}: Docker did not answer within {after:?}")]
    DockerTimeout {
        /// What the executor tried.
        what: String,
        /// The time it waited.
        after: Duration,
    },
}

/// Formats an error with its chain of sources: `outer: inner: innermost`.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// Starts tasks. Implementations: [`ProcessRuntime`], [`DockerRuntime`],
/// [`DispatchRuntime`] (either, per task) and [`FakeRuntime`].
pub trait ContainerRuntime: Send + Sync + fmt::Debug {
    /// Starts `spec`; resolves once the task runs (or could not be started).
    fn start(&self, spec: TaskSpec) -> BoxFuture<Result<RunningTask, RuntimeError>>;

    /// Stops and removes what earlier executors left behind: containers of
    /// this executor that no running task owns, and containers of this
    /// framework whose executor process is gone. Returns their ids. Plain
    /// processes cannot outlive the executor, so the default does nothing.
    fn reap_orphans(&self) -> BoxFuture<Result<Vec<String>, RuntimeError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Kills and removes every container this executor owns, tracked or
    /// not: the last act of an exiting executor. Returns their ids.
    fn remove_all(&self) -> BoxFuture<Result<Vec<String>, RuntimeError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// What a command run beside a task ([`TaskControl::exec`]) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// How it ended.
    pub status: ExitStatus,
    /// The end of its stdout and stderr (at most [`EXEC_OUTPUT_LIMIT`] bytes).
    pub output: String,
}

/// How much of a command's output [`ExecOutput`] keeps.
pub const EXEC_OUTPUT_LIMIT: usize = 512;

/// The last [`EXEC_OUTPUT_LIMIT`] bytes of `bytes`, as text, trimmed.
pub(crate) fn output_tail(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(EXEC_OUTPUT_LIMIT);
    String::from_utf8_lossy(&bytes[start..]).trim().to_owned()
}

/// Signals one running task and runs commands beside it.
pub trait TaskControl: Send + Sync + fmt::Debug {
    /// Delivers `signal` to the task (all of its processes). Signalling a
    /// task that already exited succeeds and does nothing.
    fn signal(&self, signal: Signal) -> BoxFuture<Result<(), RuntimeError>>;

    /// Runs `command` ([`Command::Shell`] or [`Command::Argv`]) where the
    /// task runs: in its sandbox with its environment plus `env`, or inside
    /// its container. Health checks use it. Dropping the future abandons
    /// the command.
    fn exec(
        &self,
        command: &Command,
        env: &BTreeMap<String, String>,
    ) -> BoxFuture<Result<ExecOutput, RuntimeError>>;
}

/// A started task.
pub struct RunningTask {
    /// The pid of the task's main process (for a container, its init).
    pub pid: u32,
    /// The Docker container id, for a container task.
    pub container_id: Option<String>,
    /// Signals the task.
    pub control: Arc<dyn TaskControl>,
    /// Resolves when the task's main process exits; by then the runtime has
    /// also killed whatever the task left behind. Must be polled (spawn it)
    /// for the exit to be noticed.
    pub exit: BoxFuture<Result<ExitStatus, RuntimeError>>,
}

impl fmt::Debug for RunningTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningTask")
            .field("pid", &self.pid)
            .field("container_id", &self.container_id)
            .field("control", &self.control)
            .finish_non_exhaustive()
    }
}
