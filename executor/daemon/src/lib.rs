//! `drover-executor`: the process a Mesos agent starts to run Drover's tasks.
//!
//! It subscribes to its agent's executor API (through `mesos-http`), turns
//! the agent's events into inputs of the pure task lifecycle machine
//! (`exec-core`), performs that machine's effects with a container runtime
//! (`exec-runtime`), and sends the resulting status updates back.
//!
//! - [`config`]: the settings the agent passes in the environment.
//! - [`duration`]: Mesos' duration text (`5secs`, `15mins`).
//! - [`task_info`]: the `TaskInfo` → task spec contract with the scheduler
//!   (`drover.v1.TaskData` in `TaskInfo.data`).
//! - [`main_loop`]: the closed event loop that drives the core.

pub mod config;
pub mod duration;
pub mod main_loop;
pub mod task_info;

/// Everything that can go wrong in the executor daemon.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// A required environment variable is not set.
    #[error("environment variable `{0}` is not set")]
    MissingEnv(&'static str),
    /// An environment variable has a value the executor cannot use.
    #[error("environment variable `{name}` is `{value}`, expected {expected}")]
    InvalidEnv {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What would have been valid.
        expected: &'static str,
    },
    /// A variable holding a credential has a value that cannot be sent;
    /// the value is not repeated.
    #[error("environment variable `{0}` holds characters an HTTP header cannot carry")]
    InvalidSecretEnv(&'static str),
    /// A LAUNCH whose `TaskInfo.data` is empty.
    #[error("the task has no `data`; Drover tasks carry a protobuf `drover.v1.TaskData` there")]
    NoTaskData,
    /// A LAUNCH whose `TaskInfo.data` is not a `TaskData`.
    #[error("the task's `data` is not a protobuf `drover.v1.TaskData`")]
    BadTaskData(#[source] drover_protos::prost::DecodeError),
    /// A plain (non-container) task without a command.
    #[error("the task's `data` has no `command`")]
    NoCommand,
    /// A command the executor cannot run.
    #[error("unsupported command: {0}")]
    UnsupportedCommand(&'static str),
    /// A command with nothing to run.
    #[error("the command is empty")]
    EmptyCommand,
    /// A container the executor cannot run.
    #[error("unsupported container: {0}")]
    UnsupportedContainer(String),
    /// A health check the executor cannot run.
    #[error("health check {number}: {reason}")]
    InvalidHealthCheck {
        /// Its position in the task's list, from 1.
        number: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The executor could not set itself up.
    #[error("cannot set up the executor")]
    Setup(#[source] std::io::Error),
}

/// Formats an error with its chain of sources: `outer: inner: innermost`.
pub use exec_runtime::error_chain;
