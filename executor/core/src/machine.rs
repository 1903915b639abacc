//! The executor's state machine: inputs in, effects out, time as an input.
//!
//! The shell calls [`Executor::handle`] with every [`Input`] (agent events,
//! process results, timer ticks) and `now`, then drains
//! [`Executor::poll_effect`] and sleeps until [`Executor::poll_timeout`].
//!
//! Lifecycle of one task, as Mesos' command executor behaves:
//!
//! ```text
//! Launch ──► STARTING + Spawn ──Started──► RUNNING ──Exited──► FINISHED | FAILED
//!                 │                           │
//!               StartFailed ──► FAILED      Kill ──► [KILLING] + SIGTERM
//!                                                      │ grace elapsed
//!                                                      ▼
//!                                                   SIGKILL ──Exited──► KILLED
//! ```
//!
//! While a task runs and no kill was asked for, its health checks (see
//! [`crate::health`]) yield [`Effect::Probe`]s; the shell answers each with
//! [`Input::ProbeResult`] (a timeout is an outcome too, the core reads no
//! clock). Each change of health is a RUNNING update with `healthy` set;
//! too many failures in a row start the normal kill, and the terminal
//! update says which check failed.
//!
//! **Invariants** (checked by `tests/properties.rs`):
//! - every task the executor accepted gets exactly one terminal update, and
//!   no update after it;
//! - a task is spawned at most once;
//! - a task is probed only while it runs and no kill was requested, never
//!   with two probes of one check at once;
//! - SIGKILL never precedes SIGTERM plus the grace period, unless the agent
//!   is lost;
//! - [`Effect::Exit`] is yielded at most once, and last.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::Duration;

use drover_time::Timestamp;

use crate::health::TaskHealth;
use crate::task::{
    ExitStatus, HealthCheck, Probe, ProbeOutcome, Reason, Signal, TaskId, TaskSpec, TaskState,
};

/// Settings of the state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The framework has the `TASK_KILLING_STATE` capability: a kill is
    /// announced with `TASK_KILLING` before the task is signalled.
    pub task_killing_state: bool,
    /// The grace period between SIGTERM and SIGKILL when neither the task
    /// nor the kill request names one (Mesos: 3 seconds).
    pub default_kill_grace: Duration,
    /// Taken off the executor's shutdown grace period to leave time for the
    /// final updates: tasks get `shutdown grace - margin` at most.
    pub shutdown_margin: Duration,
    /// How long to wait for the agent to acknowledge the last updates
    /// before exiting anyway.
    pub ack_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            task_killing_state: false,
            default_kill_grace: Duration::from_secs(3),
            shutdown_margin: Duration::from_secs(1),
            ack_timeout: Duration::from_secs(5),
        }
    }
}

/// Everything that can happen to the executor.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant, reason = "an input is moved once, never stored in bulk")]
pub enum Input {
    /// The framework's capabilities became known (SUBSCRIBED).
    FrameworkCapabilities {
        /// The framework understands `TASK_KILLING`.
        task_killing_state: bool,
    },
    /// LAUNCH of a task that can be run.
    Launch(TaskSpec),
    /// LAUNCH of a task whose description cannot be run: it is reported
    /// `TASK_ERROR` with `message`, and never spawned.
    Reject {
        /// The task.
        task_id: TaskId,
        /// Why, for the framework.
        message: String,
    },
    /// KILL of a task, with the kill policy's grace period if it has one.
    Kill {
        /// The task.
        task_id: TaskId,
        /// Overrides the task's own grace period.
        grace: Option<Duration>,
    },
    /// SHUTDOWN (or SIGTERM to the executor): kill every task within
    /// `grace`, then exit.
    Shutdown {
        /// The executor's shutdown grace period.
        grace: Duration,
    },
    /// The task's process started.
    Started {
        /// The task.
        task_id: TaskId,
        /// Its process id.
        pid: u32,
        /// The Docker container id, for a container task.
        container_id: Option<String>,
    },
    /// The task's process could not be started.
    StartFailed {
        /// The task.
        task_id: TaskId,
        /// What went wrong.
        error: String,
    },
    /// The task's main process ended.
    Exited {
        /// The task.
        task_id: TaskId,
        /// How.
        status: ExitStatus,
    },
    /// A probe of [`Effect::Probe`] finished (or timed out).
    ProbeResult {
        /// The task.
        task_id: TaskId,
        /// The index of the health check in the task's spec.
        check: usize,
        /// The probe's sequence number, from the effect.
        seq: u64,
        /// What the probe found.
        outcome: ProbeOutcome,
    },
    /// The agent acknowledged one update of this task.
    Acknowledged {
        /// The task.
        task_id: TaskId,
    },
    /// The agent is gone for good: kill everything and exit, no updates.
    AgentLost,
    /// Time passed (the deadline of [`Executor::poll_timeout`] was reached).
    Timeout,
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Start the task's process; report `Started` or `StartFailed`.
    Spawn(TaskSpec),
    /// Send a signal to the task's process group.
    Signal {
        /// The task.
        task_id: TaskId,
        /// Which signal.
        signal: Signal,
    },
    /// Send a status update to the agent.
    Update {
        /// The task.
        task_id: TaskId,
        /// Its new state.
        state: TaskState,
        /// A human-readable message.
        message: Option<String>,
        /// Why, when known.
        reason: Option<Reason>,
        /// The task's health, once its health checks gave a verdict.
        healthy: Option<bool>,
        /// The task's Docker container, once it was started.
        container_id: Option<String>,
    },
    /// Probe a task's health; report [`Input::ProbeResult`] with the same
    /// `task_id`, `check` and `seq`, at the latest `timeout` from now.
    Probe {
        /// The task.
        task_id: TaskId,
        /// The index of the health check in the task's spec.
        check: usize,
        /// Identifies this probe.
        seq: u64,
        /// What to do.
        probe: Probe,
        /// How long the probe may take; report [`ProbeOutcome::TimedOut`] after.
        timeout: Duration,
    },
    /// Exit the executor. Always the last effect.
    Exit(ExitReason),
}

/// Why the executor exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    /// Every task is terminal and its updates were acknowledged (or the
    /// acknowledgements did not come in time).
    TasksDone,
    /// SHUTDOWN was requested and the tasks are gone (or the shutdown grace
    /// period ran out).
    Shutdown,
    /// The agent is gone.
    AgentLost,
}

/// An input that changed nothing, and why. The shell logs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignored {
    /// No task has this id.
    UnknownTask(TaskId),
    /// A task with this id was launched before; it is not spawned twice.
    DuplicateTask(TaskId),
    /// The task already reached a terminal state.
    AlreadyTerminal(TaskId),
    /// The task's process already started.
    AlreadyStarted(TaskId),
    /// The executor is shutting down already.
    AlreadyShuttingDown,
    /// No probe of this check is in flight with that number, or the task
    /// is being killed and its health no longer matters.
    StaleProbe(TaskId),
    /// The executor has exited.
    Exited,
}

impl fmt::Display for Ignored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ignored::UnknownTask(id) => write!(f, "unknown task `{id}`"),
            Ignored::DuplicateTask(id) => write!(f, "task `{id}` was launched before"),
            Ignored::AlreadyTerminal(id) => write!(f, "task `{id}` is already terminal"),
            Ignored::AlreadyStarted(id) => write!(f, "task `{id}` already started"),
            Ignored::AlreadyShuttingDown => f.write_str("the executor is already shutting down"),
            Ignored::StaleProbe(id) => write!(f, "a probe result of task `{id}` is stale"),
            Ignored::Exited => f.write_str("the executor has exited"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Spawn was requested; no process yet.
    Launching,
    /// The process runs.
    Running,
    /// The terminal update was sent.
    Done,
}

#[derive(Debug, Clone)]
struct KillRequest {
    /// The grace period, until SIGTERM is sent (the shortest requested).
    grace: Duration,
    /// When SIGKILL is due, once SIGTERM was sent.
    deadline: Option<Timestamp>,
    /// SIGKILL was sent.
    sigkill_sent: bool,
}

#[derive(Debug, Clone)]
struct Task {
    kill_grace: Option<Duration>,
    phase: Phase,
    /// The last state reported.
    state: TaskState,
    kill: Option<KillRequest>,
    /// Updates sent and not yet acknowledged.
    unacked: u32,
    /// A container task (messages say "container", not "command").
    container: bool,
    /// The health checks to start once RUNNING.
    checks: Vec<HealthCheck>,
    /// The running health checks (RUNNING, with checks, no kill asked for).
    health: Option<TaskHealth>,
    /// The health last reported; kept after the checks stop.
    healthy: Option<bool>,
    /// The Docker container id, once started.
    container_id: Option<String>,
    /// Set when a failed health check asked for the kill: the message of
    /// the terminal update.
    health_kill: Option<String>,
}

impl Task {
    fn new(kill_grace: Option<Duration>, container: bool, checks: Vec<HealthCheck>) -> Self {
        Task {
            kill_grace,
            phase: Phase::Launching,
            state: TaskState::Starting,
            kill: None,
            unacked: 0,
            container,
            checks,
            health: None,
            healthy: None,
            container_id: None,
            health_kill: None,
        }
    }
}

/// The executor's task lifecycle state machine.
#[derive(Debug)]
pub struct Executor {
    config: Config,
    tasks: BTreeMap<TaskId, Task>,
    /// When SHUTDOWN arrived, the time by which the executor exits anyway.
    shutdown_deadline: Option<Timestamp>,
    /// Since when every task has been terminal (waiting for acks).
    quiet_since: Option<Timestamp>,
    exited: bool,
    effects: VecDeque<Effect>,
}

impl Executor {
    /// A machine with no task.
    pub fn new(config: Config) -> Self {
        Executor {
            config,
            tasks: BTreeMap::new(),
            shutdown_deadline: None,
            quiet_since: None,
            exited: false,
            effects: VecDeque::new(),
        }
    }

    /// The last state reported for a task (`None` if unknown).
    pub fn task_state(&self, task_id: &TaskId) -> Option<TaskState> {
        self.tasks.get(task_id).map(|t| t.state)
    }

    /// True once [`Effect::Exit`] was yielded.
    pub fn has_exited(&self) -> bool {
        self.exited
    }

    /// True while tasks are being stopped for a shutdown.
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown_deadline.is_some()
    }

    /// Feeds one input at `now`. An input that changes nothing returns why.
    pub fn handle(&mut self, input: Input, now: Timestamp) -> Result<(), Ignored> {
        if self.exited {
            return Err(Ignored::Exited);
        }
        let result = match input {
            Input::FrameworkCapabilities { task_killing_state } => {
                self.config.task_killing_state = task_killing_state;
                Ok(())
            }
            Input::Launch(spec) => self.launch(spec),
            Input::Reject { task_id, message } => self.reject(task_id, message),
            Input::Kill { task_id, grace } => self.kill(&task_id, grace, now),
            Input::Shutdown { grace } => self.shutdown(grace, now),
            Input::Started { task_id, pid: _, container_id } => {
                self.started(&task_id, container_id, now)
            }
            Input::ProbeResult { task_id, check, seq, outcome } => {
                self.probe_result(&task_id, check, seq, outcome, now)
            }
            Input::StartFailed { task_id, error } => self.start_failed(&task_id, &error),
            Input::Exited { task_id, status } => self.process_exited(&task_id, status),
            Input::Acknowledged { task_id } => match self.tasks.get_mut(&task_id) {
                Some(task) => {
                    task.unacked = task.unacked.saturating_sub(1);
                    Ok(())
                }
                None => Err(Ignored::UnknownTask(task_id)),
            },
            Input::AgentLost => {
                self.agent_lost();
                Ok(())
            }
            Input::Timeout => Ok(()),
        };
        self.advance(now);
        result
    }

    /// The next effect to perform, in order.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    /// When [`Input::Timeout`] must be fed next.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        if self.exited {
            return None;
        }
        let kills = self.tasks.values().filter_map(|t| match (&t.kill, t.phase) {
            (Some(k), Phase::Running) if !k.sigkill_sent => k.deadline,
            _ => None,
        });
        let probes = self.tasks.values().filter_map(|t| t.health.as_ref()?.next_deadline());
        let acks = self.quiet_since.map(|t| t.plus(self.config.ack_timeout));
        kills.chain(probes).chain(acks).chain(self.shutdown_deadline).min()
    }

    fn update(
        &mut self,
        task_id: &TaskId,
        state: TaskState,
        message: Option<String>,
        reason: Option<Reason>,
    ) {
        let (mut healthy, mut container_id) = (None, None);
        if let Some(task) = self.tasks.get_mut(task_id) {
            task.unacked = task.unacked.saturating_add(1);
            task.state = state;
            if state.is_terminal() {
                task.phase = Phase::Done;
                task.health = None;
            }
            healthy = task.healthy;
            container_id = task.container_id.clone();
        }
        self.effects.push_back(Effect::Update {
            task_id: task_id.clone(),
            state,
            message,
            reason,
            healthy,
            container_id,
        });
    }

    fn launch(&mut self, spec: TaskSpec) -> Result<(), Ignored> {
        let task_id = spec.task_id.clone();
        if self.tasks.contains_key(&task_id) {
            // A second terminal update for the id would make the framework
            // believe the first task ended; the agent never does this anyway.
            return Err(Ignored::DuplicateTask(task_id));
        }
        let task = Task::new(spec.kill_grace, spec.container.is_some(), spec.health_checks.clone());
        self.tasks.insert(task_id.clone(), task);
        if self.is_shutting_down() {
            let message = Some("Executor is shutting down".to_owned());
            self.update(&task_id, TaskState::Failed, message, Some(Reason::ExecutorTerminated));
            return Ok(());
        }
        self.update(&task_id, TaskState::Starting, None, None);
        self.effects.push_back(Effect::Spawn(spec));
        Ok(())
    }

    fn reject(&mut self, task_id: TaskId, message: String) -> Result<(), Ignored> {
        if self.tasks.contains_key(&task_id) {
            return Err(Ignored::DuplicateTask(task_id));
        }
        self.tasks.insert(task_id.clone(), Task::new(None, false, Vec::new()));
        self.update(&task_id, TaskState::Error, Some(message), Some(Reason::TaskInvalid));
        Ok(())
    }

    fn kill(
        &mut self,
        task_id: &TaskId,
        grace: Option<Duration>,
        now: Timestamp,
    ) -> Result<(), Ignored> {
        let Some(task) = self.tasks.get(task_id) else {
            return Err(Ignored::UnknownTask(task_id.clone()));
        };
        let grace = grace.or(task.kill_grace).unwrap_or(self.config.default_kill_grace);
        self.request_kill(task_id, grace, now)
    }

    /// Asks for `task_id` to stop within `grace`. A repeated request never
    /// restarts the grace period; it can only bring SIGKILL closer.
    fn request_kill(
        &mut self,
        task_id: &TaskId,
        grace: Duration,
        now: Timestamp,
    ) -> Result<(), Ignored> {
        let Some(task) = self.tasks.get_mut(task_id) else {
            return Err(Ignored::UnknownTask(task_id.clone()));
        };
        match (task.phase, &mut task.kill) {
            (Phase::Done, _) => Err(Ignored::AlreadyTerminal(task_id.clone())),
            (_, Some(kill)) => {
                kill.grace = kill.grace.min(grace);
                if let Some(deadline) = &mut kill.deadline {
                    *deadline = (*deadline).min(now.plus(grace));
                }
                Ok(())
            }
            (phase, kill @ None) => {
                *kill = Some(KillRequest { grace, deadline: None, sigkill_sent: false });
                // A task being killed is not probed any more.
                task.health = None;
                if self.config.task_killing_state {
                    self.update(task_id, TaskState::Killing, None, None);
                }
                if phase == Phase::Running {
                    self.send_sigterm(task_id, now);
                }
                Ok(())
            }
        }
    }

    fn send_sigterm(&mut self, task_id: &TaskId, now: Timestamp) {
        if let Some(kill) = self.tasks.get_mut(task_id).and_then(|t| t.kill.as_mut()) {
            kill.deadline = Some(now.plus(kill.grace));
            self.effects
                .push_back(Effect::Signal { task_id: task_id.clone(), signal: Signal::Term });
        }
    }

    fn shutdown(&mut self, grace: Duration, now: Timestamp) -> Result<(), Ignored> {
        if self.is_shutting_down() {
            return Err(Ignored::AlreadyShuttingDown);
        }
        self.shutdown_deadline = Some(now.plus(grace));
        let cap = grace.saturating_sub(self.config.shutdown_margin);
        let live: Vec<(TaskId, Option<Duration>)> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.phase != Phase::Done)
            .map(|(id, t)| (id.clone(), t.kill_grace))
            .collect();
        for (task_id, task_grace) in live {
            let grace = task_grace.unwrap_or(self.config.default_kill_grace).min(cap);
            // Cannot be ignored: the task exists and is not terminal.
            let _ = self.request_kill(&task_id, grace, now);
        }
        Ok(())
    }

    fn started(
        &mut self,
        task_id: &TaskId,
        container_id: Option<String>,
        now: Timestamp,
    ) -> Result<(), Ignored> {
        let Some(task) = self.tasks.get_mut(task_id) else {
            return Err(Ignored::UnknownTask(task_id.clone()));
        };
        match task.phase {
            Phase::Done => return Err(Ignored::AlreadyTerminal(task_id.clone())),
            Phase::Running => return Err(Ignored::AlreadyStarted(task_id.clone())),
            Phase::Launching => task.phase = Phase::Running,
        }
        task.container_id = container_id;
        if task.kill.is_some() {
            // Killed while launching: no RUNNING, stop it right away.
            self.send_sigterm(task_id, now);
        } else {
            if !task.checks.is_empty() {
                task.health = Some(TaskHealth::new(&task.checks, now));
            }
            let message = task.container_id.as_ref().map(|id| format!("Container {id} is running"));
            self.update(task_id, TaskState::Running, message, None);
        }
        Ok(())
    }

    fn probe_result(
        &mut self,
        task_id: &TaskId,
        check: usize,
        seq: u64,
        outcome: ProbeOutcome,
        now: Timestamp,
    ) -> Result<(), Ignored> {
        let Some(task) = self.tasks.get_mut(task_id) else {
            return Err(Ignored::UnknownTask(task_id.clone()));
        };
        if task.phase == Phase::Done {
            return Err(Ignored::AlreadyTerminal(task_id.clone()));
        }
        let verdict = task
            .health
            .as_mut()
            .and_then(|h| h.record(check, seq, outcome, now))
            .ok_or_else(|| Ignored::StaleProbe(task_id.clone()))?;
        if let Some((healthy, message)) = verdict.changed {
            task.healthy = Some(healthy);
            let state = task.state;
            let reason = Some(Reason::HealthCheckStatusUpdated);
            self.update(task_id, state, Some(message), reason);
        }
        if let Some(message) = verdict.kill {
            let grace = self.tasks.get_mut(task_id).map(|t| {
                t.health_kill = Some(message);
                t.kill_grace
            });
            let grace = grace.flatten().unwrap_or(self.config.default_kill_grace);
            // Cannot be ignored: the task runs and no kill was asked for.
            let _ = self.request_kill(task_id, grace, now);
        }
        Ok(())
    }

    fn start_failed(&mut self, task_id: &TaskId, error: &str) -> Result<(), Ignored> {
        let Some(task) = self.tasks.get(task_id) else {
            return Err(Ignored::UnknownTask(task_id.clone()));
        };
        match task.phase {
            Phase::Done => return Err(Ignored::AlreadyTerminal(task_id.clone())),
            Phase::Running => return Err(Ignored::AlreadyStarted(task_id.clone())),
            Phase::Launching => {}
        }
        if task.kill.is_some() {
            let message = Some("Task killed before it started".to_owned());
            self.update(task_id, TaskState::Killed, message, Some(Reason::TaskKilledDuringLaunch));
        } else {
            let what = if task.container { "container" } else { "command" };
            let message = Some(format!("Failed to launch the {what}: {error}"));
            self.update(task_id, TaskState::Failed, message, Some(Reason::ContainerLaunchFailed));
        }
        Ok(())
    }

    fn process_exited(&mut self, task_id: &TaskId, status: ExitStatus) -> Result<(), Ignored> {
        let Some(task) = self.tasks.get(task_id) else {
            return Err(Ignored::UnknownTask(task_id.clone()));
        };
        if task.phase == Phase::Done {
            return Err(Ignored::AlreadyTerminal(task_id.clone()));
        }
        let state = if task.kill.is_some() {
            TaskState::Killed
        } else if status.success() {
            TaskState::Finished
        } else {
            TaskState::Failed
        };
        let (message, reason) = match &task.health_kill {
            Some(cause) => {
                (format!("{cause}. {}", status.message()), Some(Reason::HealthCheckStatusUpdated))
            }
            None => (status.message(), None),
        };
        self.update(task_id, state, Some(message), reason);
        Ok(())
    }

    fn agent_lost(&mut self) {
        let running: Vec<TaskId> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.phase == Phase::Running)
            .map(|(id, _)| id.clone())
            .collect();
        for task_id in running {
            self.effects.push_back(Effect::Signal { task_id, signal: Signal::Kill });
        }
        self.exit(ExitReason::AgentLost);
    }

    fn exit(&mut self, reason: ExitReason) {
        self.exited = true;
        self.effects.push_back(Effect::Exit(reason));
    }

    /// Escalates kills whose grace period is over, and exits when there is
    /// nothing left to do.
    fn advance(&mut self, now: Timestamp) {
        if self.exited {
            return;
        }
        let mut overdue = Vec::new();
        for (task_id, task) in &mut self.tasks {
            if let (Some(kill), Phase::Running) = (&mut task.kill, task.phase)
                && !kill.sigkill_sent
                && kill.deadline.is_some_and(|d| d <= now)
            {
                kill.sigkill_sent = true;
                overdue.push(task_id.clone());
            }
        }
        for task_id in overdue {
            self.effects.push_back(Effect::Signal { task_id, signal: Signal::Kill });
        }
        for (task_id, task) in &mut self.tasks {
            let Some(health) = task.health.as_mut() else { continue };
            for due in health.take_due(now) {
                self.effects.push_back(Effect::Probe {
                    task_id: task_id.clone(),
                    check: due.check,
                    seq: due.seq,
                    probe: due.probe,
                    timeout: due.timeout,
                });
            }
        }

        let all_done = self.tasks.values().all(|t| t.phase == Phase::Done);
        let all_acked = self.tasks.values().all(|t| t.unacked == 0);
        // Before the first launch there is nothing to wait for (and no deadline).
        let waiting = all_done && !self.tasks.is_empty();
        self.quiet_since = if waiting { Some(self.quiet_since.unwrap_or(now)) } else { None };
        let ack_wait_over =
            self.quiet_since.is_some_and(|t| now >= t.plus(self.config.ack_timeout));
        let settled = all_done && (all_acked || ack_wait_over);
        match self.shutdown_deadline {
            Some(_) if settled => self.exit(ExitReason::Shutdown),
            Some(deadline) if now >= deadline => {
                let left: Vec<TaskId> = self
                    .tasks
                    .iter()
                    .filter(|(_, t)| {
                        t.phase == Phase::Running
                            && t.kill.as_ref().is_some_and(|k| !k.sigkill_sent)
                    })
                    .map(|(id, _)| id.clone())
                    .collect();
                for task_id in left {
                    self.effects.push_back(Effect::Signal { task_id, signal: Signal::Kill });
                }
                self.exit(ExitReason::Shutdown);
            }
            None if settled && !self.tasks.is_empty() => self.exit(ExitReason::TasksDone),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
