//! The executor's main loop: one closed [`Event`] enum drives the core.
//!
//! Every iteration waits for the next event (an agent event from the
//! `mesos-http` driver, a runtime result, SIGTERM, or the core's deadline),
//! translates it into `exec-core` inputs, then performs the effects the core
//! yields, in order, until it yields `Exit`. Starting a task, waiting for
//! its exit, running a health probe and sweeping orphaned containers run as
//! tasks of one `JoinSet` owned by the loop; their results come back as
//! events, so the core is never called from anywhere else.
//!
//! Orphaned containers are swept when the loop starts and after every
//! SUBSCRIBED; once the core exits, every container of this executor is
//! removed (bounded by [`REMOVE_ALL_TIMEOUT`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use drover_protos::mesos::v1 as mesos;
use drover_protos::mesos::v1::executor::{Event as AgentEvent, event};
use drover_time::Clock;
use exec_core::{
    Config, Effect, Executor, ExitReason, ExitStatus, Input, ProbeOutcome, Reason, TaskId,
    TaskState,
};
use exec_runtime::{ContainerRuntime, RunningTask, RuntimeError, TaskControl, probe};
use mesos_http::executor::ExecutorInput;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::config::Settings;
use crate::{ExecutorError, error_chain, task_info};

/// How long one signal delivery may take before the loop moves on.
const SIGNAL_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the final removal of the executor's containers may take.
pub const REMOVE_ALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The `TaskStatus.labels` key of a task's Docker container id.
pub const CONTAINER_ID_LABEL: &str = "DROVER_CONTAINER_ID";

/// Everything the main loop reacts to.
#[derive(Debug)]
enum Event {
    /// An event from the agent, or the driver giving up on it.
    Agent(ExecutorInput),
    /// The driver stopped without a word (its channel closed).
    AgentGone,
    /// A runtime job finished.
    Runtime(RuntimeEvent),
    /// SIGTERM or SIGINT to the executor itself.
    Terminate,
    /// The core's deadline passed.
    Tick,
}

impl Event {
    fn kind(&self) -> &'static str {
        match self {
            Event::Agent(_) => "agent",
            Event::AgentGone => "agent_gone",
            Event::Runtime(_) => "runtime",
            Event::Terminate => "terminate",
            Event::Tick => "tick",
        }
    }
}

/// The result of a runtime job.
#[derive(Debug)]
enum RuntimeEvent {
    Started { task_id: TaskId, result: Result<RunningTask, RuntimeError> },
    Exited { task_id: TaskId, result: Result<ExitStatus, RuntimeError> },
    Probed { task_id: TaskId, check: usize, seq: u64, outcome: ProbeOutcome },
    Reaped(Result<Vec<String>, RuntimeError>),
}

/// Runs the executor until the core says to exit, and returns why.
pub async fn run(
    settings: &Settings,
    runtime: Arc<dyn ContainerRuntime>,
    clock: Arc<dyn Clock>,
    seed: u64,
) -> Result<ExitReason, ExecutorError> {
    let mut terminate = signal(SignalKind::terminate()).map_err(ExecutorError::Setup)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(ExecutorError::Setup)?;
    let (agent, mut inputs, driver) =
        mesos_http::executor::spawn(settings.client_config(seed), clock.clone());
    tracing::info!(agent = %settings.agent, executor_id = %settings.executor_id, "Subscribing to the agent.");
    // One forwarder keeps the updates in order; the channel is as deep as
    // the driver's own queue.
    let (updates, mut outbox) = mpsc::channel::<mesos::TaskStatus>(256);
    let forwarder = tokio::spawn(async move {
        while let Some(status) = outbox.recv().await {
            if !agent.send_update(status).await {
                tracing::warn!("The agent driver is gone; updates are dropped.");
                return;
            }
        }
    });
    let mut shell = Shell::new(runtime.clone(), updates, settings.shutdown_grace);
    shell.reap_orphans();
    let reason = loop {
        let wait = shell.core.poll_timeout().map(|deadline| deadline.since(clock.now()));
        let event = tokio::select! {
            input = inputs.recv() => input.map_or(Event::AgentGone, Event::Agent),
            Some(joined) = shell.jobs.join_next(), if !shell.jobs.is_empty() => match joined {
                Ok(done) => Event::Runtime(done),
                Err(e) => {
                    tracing::error!(error = %e, "A runtime job failed.");
                    Event::Tick
                }
            },
            _ = terminate.recv() => Event::Terminate,
            _ = interrupt.recv() => Event::Terminate,
            () = tokio::time::sleep(wait.unwrap_or_default()), if wait.is_some() => Event::Tick,
        };
        if let Some(reason) = shell.step(event, clock.now()).await {
            break reason;
        }
    };
    let containers = shell.containers;
    // The exit watchers and probes go first: nothing of them is wanted now.
    drop(shell);
    if containers {
        match tokio::time::timeout(REMOVE_ALL_TIMEOUT, runtime.remove_all()).await {
            Ok(Ok(ids)) if ids.is_empty() => {}
            Ok(Ok(ids)) => {
                tracing::info!(containers = ids.len(), "Removed the remaining containers.")
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %error_chain(&e), "Cannot remove the remaining containers.")
            }
            Err(_) => tracing::warn!("Removing the remaining containers timed out."),
        }
    }
    forwarder.abort();
    driver.abort();
    Ok(reason)
}

/// What the loop owns besides the core's inputs.
struct Shell {
    core: Executor,
    runtime: Arc<dyn ContainerRuntime>,
    /// Status updates, forwarded in order to the `mesos-http` driver.
    updates: mpsc::Sender<mesos::TaskStatus>,
    controls: BTreeMap<TaskId, Arc<dyn TaskControl>>,
    jobs: JoinSet<RuntimeEvent>,
    shutdown_grace: Duration,
    /// A container task was launched: containers must be removed at exit.
    containers: bool,
}

impl Shell {
    fn new(
        runtime: Arc<dyn ContainerRuntime>,
        updates: mpsc::Sender<mesos::TaskStatus>,
        shutdown_grace: Duration,
    ) -> Self {
        Shell {
            core: Executor::new(Config::default()),
            runtime,
            updates,
            controls: BTreeMap::new(),
            jobs: JoinSet::new(),
            shutdown_grace,
            containers: false,
        }
    }

    /// Sweeps orphaned containers in the background.
    fn reap_orphans(&mut self) {
        let reap = self.runtime.reap_orphans();
        self.jobs.spawn(async move { RuntimeEvent::Reaped(reap.await) });
    }

    /// Feeds one event to the core and performs its effects.
    async fn step(&mut self, event: Event, now: drover_time::Timestamp) -> Option<ExitReason> {
        tracing::trace!(kind = event.kind(), "Event.");
        for input in self.inputs(event) {
            if let Err(ignored) = self.core.handle(input, now) {
                tracing::info!(reason = %ignored, "Input ignored.");
            }
        }
        while let Some(effect) = self.core.poll_effect() {
            if let Some(reason) = self.perform(effect).await {
                return Some(reason);
            }
        }
        None
    }

    fn inputs(&mut self, event: Event) -> Vec<Input> {
        match event {
            Event::Agent(ExecutorInput::Event(event)) => self.agent_inputs(*event),
            Event::Agent(ExecutorInput::GaveUp { reason }) => {
                tracing::error!(%reason, "Lost the agent; killing every task.");
                vec![Input::AgentLost]
            }
            Event::AgentGone => {
                tracing::error!("The agent driver stopped; killing every task.");
                vec![Input::AgentLost]
            }
            Event::Runtime(RuntimeEvent::Started { task_id, result: Ok(task) }) => {
                let container_id = task.container_id.clone();
                let container = container_id.as_deref().unwrap_or("");
                tracing::info!(%task_id, pid = task.pid, container_id = container, "Task process started.");
                self.controls.insert(task_id.clone(), task.control);
                let exit = task.exit;
                let id = task_id.clone();
                self.jobs
                    .spawn(async move { RuntimeEvent::Exited { task_id: id, result: exit.await } });
                vec![Input::Started { task_id, pid: task.pid, container_id }]
            }
            Event::Runtime(RuntimeEvent::Started { task_id, result: Err(e) }) => {
                let error = error_chain(&e);
                tracing::warn!(%task_id, %error, "Task process could not start.");
                vec![Input::StartFailed { task_id, error }]
            }
            Event::Runtime(RuntimeEvent::Exited { task_id, result }) => {
                self.controls.remove(&task_id);
                let status = result.unwrap_or_else(|e| {
                    tracing::warn!(%task_id, error = %error_chain(&e), "Lost track of the task process.");
                    ExitStatus::Code(-1)
                });
                tracing::info!(%task_id, ?status, "Task process exited.");
                vec![Input::Exited { task_id, status }]
            }
            Event::Runtime(RuntimeEvent::Probed { task_id, check, seq, outcome }) => {
                tracing::debug!(%task_id, check, ?outcome, "Health probe finished.");
                vec![Input::ProbeResult { task_id, check, seq, outcome }]
            }
            Event::Runtime(RuntimeEvent::Reaped(Ok(ids))) => {
                if !ids.is_empty() {
                    tracing::info!(containers = ?ids, "Removed orphaned containers.");
                }
                Vec::new()
            }
            Event::Runtime(RuntimeEvent::Reaped(Err(e))) => {
                // Expected where there is no Docker and no container task.
                tracing::debug!(error = %error_chain(&e), "Cannot look for orphaned containers.");
                Vec::new()
            }
            Event::Terminate => {
                tracing::info!("Terminated; shutting down.");
                vec![Input::Shutdown { grace: self.shutdown_grace }]
            }
            Event::Tick => vec![Input::Timeout],
        }
    }

    fn agent_inputs(&mut self, event: AgentEvent) -> Vec<Input> {
        match event.r#type() {
            event::Type::Subscribed => {
                let Some(subscribed) = event.subscribed else { return Vec::new() };
                let agent_id = subscribed.agent_info.id.map(|id| id.value).unwrap_or_default();
                let task_killing_state = subscribed.framework_info.capabilities.iter().any(|c| {
                    c.r#type() == mesos::framework_info::capability::Type::TaskKillingState
                });
                tracing::info!(%agent_id, task_killing_state, "Subscribed to the agent.");
                self.reap_orphans();
                vec![Input::FrameworkCapabilities { task_killing_state }]
            }
            event::Type::Launch => {
                let Some(launch) = event.launch else { return Vec::new() };
                let task_id = TaskId(launch.task.task_id.value.clone());
                match task_info::task_spec(&launch.task) {
                    Ok(spec) => {
                        let app_id = spec.app_id.clone().unwrap_or_default();
                        let image = spec.container.as_ref().map_or("", |c| c.image.as_str());
                        tracing::info!(%task_id, %app_id, image, command = ?spec.command, "Launching task.");
                        self.containers |= spec.container.is_some();
                        vec![Input::Launch(spec)]
                    }
                    Err(e) => {
                        let message = error_chain(&e);
                        tracing::warn!(%task_id, error = %message, "Task cannot be run.");
                        vec![Input::Reject { task_id, message }]
                    }
                }
            }
            event::Type::LaunchGroup => {
                let tasks = event.launch_group.map(|g| g.task_group.tasks).unwrap_or_default();
                tracing::warn!(tasks = tasks.len(), "Task groups are not supported.");
                tasks
                    .into_iter()
                    .map(|t| Input::Reject {
                        task_id: TaskId(t.task_id.value),
                        message: "task groups are not supported".to_owned(),
                    })
                    .collect()
            }
            event::Type::Kill => {
                let Some(kill) = event.kill else { return Vec::new() };
                let task_id = TaskId(kill.task_id.value);
                tracing::info!(%task_id, "Killing task.");
                vec![Input::Kill {
                    task_id,
                    grace: task_info::kill_grace(kill.kill_policy.as_ref()),
                }]
            }
            event::Type::Acknowledged => match event.acknowledged {
                Some(ack) => vec![Input::Acknowledged { task_id: TaskId(ack.task_id.value) }],
                None => Vec::new(),
            },
            event::Type::Shutdown => {
                tracing::info!("The agent asked for a shutdown.");
                vec![Input::Shutdown { grace: self.shutdown_grace }]
            }
            event::Type::Message => {
                let len = event.message.map_or(0, |m| m.data.len());
                tracing::info!(bytes = len, "Ignoring a framework message.");
                Vec::new()
            }
            event::Type::Error => {
                let message = event.error.map(|e| e.message).unwrap_or_default();
                tracing::warn!(%message, "The agent reported an error.");
                Vec::new()
            }
            event::Type::Unknown => {
                tracing::debug!("Ignoring an event of unknown type.");
                Vec::new()
            }
        }
    }

    /// Performs one effect; returns the exit reason on `Exit`.
    async fn perform(&mut self, effect: Effect) -> Option<ExitReason> {
        match effect {
            Effect::Spawn(spec) => {
                let task_id = spec.task_id.clone();
                // `start` forks right away, on this (the main) thread.
                let starting = self.runtime.start(spec);
                self.jobs.spawn(async move {
                    RuntimeEvent::Started { task_id, result: starting.await }
                });
            }
            Effect::Signal { task_id, signal } => match self.controls.get(&task_id) {
                Some(control) => match tokio::time::timeout(SIGNAL_TIMEOUT, control.signal(signal))
                    .await
                {
                    Ok(Ok(())) => tracing::info!(%task_id, ?signal, "Signalled task."),
                    Ok(Err(e)) => {
                        tracing::warn!(%task_id, ?signal, error = %error_chain(&e), "Cannot signal task.")
                    }
                    Err(_) => tracing::warn!(%task_id, ?signal, "Signalling the task timed out."),
                },
                None => tracing::debug!(%task_id, ?signal, "No process to signal."),
            },
            Effect::Update { task_id, state, message, reason, healthy, container_id } => {
                tracing::info!(%task_id, ?state, ?healthy, detail = message.as_deref().unwrap_or(""), "Task status changed.");
                let update = Update { state, message, reason, healthy, container_id };
                if self.updates.send(status(&task_id, update)).await.is_err() {
                    tracing::warn!(%task_id, "The update forwarder is gone; update dropped.");
                }
            }
            Effect::Probe { task_id, check, seq, probe, timeout } => {
                tracing::debug!(%task_id, check, %probe, "Probing the task's health.");
                let control = self.controls.get(&task_id).cloned();
                let running = probe::run(probe, control, timeout);
                self.jobs.spawn(async move {
                    RuntimeEvent::Probed { task_id, check, seq, outcome: running.await }
                });
            }
            Effect::Exit(reason) => {
                tracing::info!(?reason, "Executor exiting.");
                return Some(reason);
            }
        }
        None
    }
}

/// The content of an [`Effect::Update`].
#[derive(Debug, Clone)]
struct Update {
    state: TaskState,
    message: Option<String>,
    reason: Option<Reason>,
    healthy: Option<bool>,
    container_id: Option<String>,
}

/// The Mesos status update for a state change: the container id goes in
/// the `DROVER_CONTAINER_ID` label.
fn status(task_id: &TaskId, update: Update) -> mesos::TaskStatus {
    let Update { state, message, reason, healthy, container_id } = update;
    let mut status = mesos::TaskStatus {
        task_id: mesos::TaskId { value: task_id.0.clone() },
        message,
        healthy,
        labels: container_id.map(|id| mesos::Labels {
            labels: vec![mesos::Label { key: CONTAINER_ID_LABEL.to_owned(), value: Some(id) }],
        }),
        ..Default::default()
    };
    status.set_state(match state {
        TaskState::Starting => mesos::TaskState::TaskStarting,
        TaskState::Running => mesos::TaskState::TaskRunning,
        TaskState::Killing => mesos::TaskState::TaskKilling,
        TaskState::Finished => mesos::TaskState::TaskFinished,
        TaskState::Failed => mesos::TaskState::TaskFailed,
        TaskState::Killed => mesos::TaskState::TaskKilled,
        TaskState::Error => mesos::TaskState::TaskError,
    });
    if let Some(reason) = reason {
        status.set_reason(match reason {
            Reason::TaskInvalid => mesos::task_status::Reason::TaskInvalid,
            Reason::ContainerLaunchFailed => mesos::task_status::Reason::ContainerLaunchFailed,
            Reason::TaskKilledDuringLaunch => mesos::task_status::Reason::TaskKilledDuringLaunch,
            Reason::ExecutorTerminated => mesos::task_status::Reason::ExecutorTerminated,
            Reason::HealthCheckStatusUpdated => {
                mesos::task_status::Reason::TaskHealthCheckStatusUpdated
            }
        });
    }
    status
}

#[cfg(test)]
mod tests {
    //! The loop's pieces that need no agent: the status mapping, and a
    //! fake-runtime round trip through the shell on paused time.

    use exec_runtime::{FakeBehaviour, FakeRuntime, Signal};

    use super::*;

    fn update(state: TaskState) -> Update {
        Update { state, message: None, reason: None, healthy: None, container_id: None }
    }

    #[test]
    fn statuses_carry_state_message_reason_health_and_the_container_id() {
        let bad = Update {
            message: Some("bad".into()),
            reason: Some(Reason::TaskInvalid),
            ..update(TaskState::Error)
        };
        let s = status(&"t".into(), bad);
        assert_eq!(s.task_id.value, "t");
        assert_eq!(s.state(), mesos::TaskState::TaskError);
        assert_eq!(s.message.as_deref(), Some("bad"));
        assert_eq!(s.reason(), mesos::task_status::Reason::TaskInvalid);
        assert_eq!((s.healthy, s.labels), (None, None));
        let s = status(&"t".into(), update(TaskState::Killing));
        assert_eq!(s.state(), mesos::TaskState::TaskKilling);
        assert_eq!(s.reason, None);
        let healthy = Update {
            reason: Some(Reason::HealthCheckStatusUpdated),
            healthy: Some(true),
            container_id: Some("c0ffee".into()),
            ..update(TaskState::Running)
        };
        let s = status(&"t".into(), healthy);
        assert_eq!(s.reason(), mesos::task_status::Reason::TaskHealthCheckStatusUpdated);
        assert_eq!(s.healthy, Some(true));
        let labels = s.labels.unwrap().labels;
        assert_eq!(labels.len(), 1);
        assert_eq!(
            (labels[0].key.as_str(), labels[0].value.as_deref()),
            ("DROVER_CONTAINER_ID", Some("c0ffee"))
        );
    }

    fn launch_event(id: &str, data: Option<Vec<u8>>) -> AgentEvent {
        let mut e = AgentEvent::default();
        e.set_type(event::Type::Launch);
        e.launch = Some(event::Launch {
            task: mesos::TaskInfo {
                name: id.into(),
                task_id: mesos::TaskId { value: id.into() },
                agent_id: mesos::AgentId { value: "a".into() },
                data,
                ..Default::default()
            },
        });
        e
    }

    #[tokio::test(start_paused = true)]
    async fn the_shell_runs_kills_and_rejects_tasks_through_the_runtime() {
        let fake = FakeRuntime::new(FakeBehaviour {
            ignores_term: true,
            ..FakeBehaviour::exits(Duration::from_secs(100), 0)
        });
        let (tx, mut updates) = mpsc::channel(64);
        let mut shell = Shell::new(Arc::new(fake.clone()), tx, Duration::from_secs(5));
        let now = drover_time::Timestamp::from_secs(1);
        let data = task_info::encode_task_data(&exec_core::TaskSpec::new(
            "ok",
            exec_core::Command::Shell("x".into()),
        ));
        assert!(
            shell
                .step(
                    Event::Agent(ExecutorInput::Event(Box::new(launch_event("ok", Some(data))))),
                    now
                )
                .await
                .is_none()
        );
        assert!(
            shell
                .step(Event::Agent(ExecutorInput::Event(Box::new(launch_event("bad", None)))), now)
                .await
                .is_none()
        );
        let joined = shell.jobs.join_next().await.unwrap().unwrap();
        shell.step(Event::Runtime(joined), now).await;
        shell.step(Event::Terminate, now).await;
        assert_eq!(fake.signals(), [("ok".into(), Signal::Term)]);
        let later = now.plus(Duration::from_secs(4));
        shell.step(Event::Tick, later).await;
        assert_eq!(fake.signals(), [("ok".into(), Signal::Term), ("ok".into(), Signal::Kill)]);
        let joined = shell.jobs.join_next().await.unwrap().unwrap();
        shell.step(Event::Runtime(joined), later).await;
        let mut seen = Vec::new();
        while let Ok(s) = updates.try_recv() {
            seen.push((s.task_id.value.clone(), s.state(), s.message.clone().unwrap_or_default()));
        }
        assert_eq!(
            seen,
            [
                ("ok".to_owned(), mesos::TaskState::TaskStarting, String::new()),
                (
                    "bad".to_owned(),
                    mesos::TaskState::TaskError,
                    error_chain(&ExecutorError::NoTaskData)
                ),
                ("ok".to_owned(), mesos::TaskState::TaskRunning, String::new()),
                (
                    "ok".to_owned(),
                    mesos::TaskState::TaskKilled,
                    "Command terminated with signal Killed".to_owned()
                ),
            ]
        );
    }
}
