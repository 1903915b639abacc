//! Drover's executor core: the task lifecycle as a pure state machine.
//!
//! This crate never spawns a process, sends a signal, reads a clock or talks
//! to the agent. The daemon (`executor/daemon`) feeds it [`Input`]s with the
//! current time and performs the [`Effect`]s it yields: spawn a task, signal
//! it, send a status update, exit. Time only moves when the caller says so,
//! so every escalation (SIGTERM, then SIGKILL after the grace period) and
//! every deadline is testable on a virtual clock.
//!
//! - [`task`]: the domain types (task spec, container, health checks,
//!   command, exit status, states).
//! - [`machine`]: the [`Executor`] state machine.
//! - [`health`]: the health-check schedule of one task (when to probe, how
//!   results count, when to kill).

pub mod health;
pub mod machine;
pub mod task;

pub use machine::{Config, Effect, Executor, ExitReason, Ignored, Input};
pub use task::{
    Command, DockerSpec, ExitStatus, HealthCheck, Limits, Network, PortMapping, Probe,
    ProbeOutcome, Reason, Signal, TaskId, TaskSpec, TaskState, Volume, signal_name,
};
