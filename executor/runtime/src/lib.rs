//! How the executor runs a task: the [`ContainerRuntime`] trait and its
//! implementations.
//!
//! The executor core decides *when* to start and signal a task; a runtime
//! does it. A runtime starts a [`TaskSpec`] and hands back a
//! [`RunningTask`]: its pid, a [`TaskControl`] to signal it, and a future
//! that resolves when it exits. The trait is object-safe and every method
//! returns a boxed future, so a Docker runtime (bollard: create + start a
//! container, `kill` with a signal, `wait`) fits beside the process one.
//!
//! - [`process`]: [`ProcessRuntime`], plain child processes in the sandbox.
//! - [`fake`]: [`FakeRuntime`], scripted tasks for tests and simulations.
//! - [`procs`]: `/proc` scanning, the child subreaper and the final
//!   clean-up of every descendant process.
//!
//! This is the one executor crate with `unsafe` code (raw `libc` calls for
//! `prctl`, `killpg`, `kill` and `waitpid`); each block says why it is sound.

#![allow(unsafe_code)]

use std::fmt;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

pub use exec_core::{Command, ExitStatus, Signal, TaskId, TaskSpec};

pub mod fake;
pub mod process;
pub mod procs;

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
}

/// Starts tasks. Implementations: [`ProcessRuntime`], [`FakeRuntime`]; a
/// Docker one later.
pub trait ContainerRuntime: Send + Sync + fmt::Debug {
    /// Starts `spec`; resolves once the task runs (or could not be started).
    fn start(&self, spec: TaskSpec) -> BoxFuture<Result<RunningTask, RuntimeError>>;
}

/// Sends signals to one running task.
pub trait TaskControl: Send + Sync + fmt::Debug {
    /// Delivers `signal` to the task (all of its processes). Signalling a
    /// task that already exited succeeds and does nothing.
    fn signal(&self, signal: Signal) -> BoxFuture<Result<(), RuntimeError>>;
}

/// A started task.
pub struct RunningTask {
    /// The pid of the task's main process (for a container, its init).
    pub pid: u32,
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
            .field("control", &self.control)
            .finish_non_exhaustive()
    }
}
