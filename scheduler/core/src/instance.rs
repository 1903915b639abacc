//! Instances (desired replicas) and their Mesos tasks.

use std::sync::Arc;

use drover_time::Timestamp;

use crate::ids::{AppId, InstanceId, TaskId};
use crate::offer::AgentFacts;

/// A Mesos task state, as Drover models it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TaskState {
    /// Launched (persisted and sent); no update from the agent yet.
    Staging,
    /// The executor is starting the task.
    Starting,
    /// Running.
    Running,
    /// Being killed.
    Killing,
    /// Exited with status 0.
    Finished,
    /// Exited non-zero, or could not start.
    Failed,
    /// Killed on request.
    Killed,
    /// The task description was invalid.
    Error,
    /// Lost (non-partition-aware form).
    Lost,
    /// Dropped before it started.
    Dropped,
    /// Its agent is unreachable.
    Unreachable,
    /// Gone: its agent was removed.
    Gone,
    /// Gone: an operator marked its agent gone.
    GoneByOperator,
    /// The master does not know it.
    Unknown,
}

impl TaskState {
    /// True for states a task never leaves.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Finished
                | TaskState::Failed
                | TaskState::Killed
                | TaskState::Error
                | TaskState::Lost
                | TaskState::Dropped
                | TaskState::Gone
                | TaskState::GoneByOperator
                | TaskState::Unknown
        )
    }

    /// True when the task is gone and its instance must be replaced (for a
    /// running app). `Unreachable` counts: Drover replaces unreachable tasks
    /// at once (Marathon 1.10's default `unreachableStrategy` of `{0, 0}`).
    pub fn needs_replacement(self) -> bool {
        self.is_terminal() || self == TaskState::Unreachable
    }

    /// True when this end counts as a failure for launch backoff.
    pub fn counts_for_backoff(self) -> bool {
        matches!(self, TaskState::Failed | TaskState::Finished | TaskState::Error)
    }

    /// Marathon's / Mesos' name (`TASK_RUNNING`).
    pub fn mesos_name(self) -> &'static str {
        match self {
            TaskState::Staging => "TASK_STAGING",
            TaskState::Starting => "TASK_STARTING",
            TaskState::Running => "TASK_RUNNING",
            TaskState::Killing => "TASK_KILLING",
            TaskState::Finished => "TASK_FINISHED",
            TaskState::Failed => "TASK_FAILED",
            TaskState::Killed => "TASK_KILLED",
            TaskState::Error => "TASK_ERROR",
            TaskState::Lost => "TASK_LOST",
            TaskState::Dropped => "TASK_DROPPED",
            TaskState::Unreachable => "TASK_UNREACHABLE",
            TaskState::Gone => "TASK_GONE",
            TaskState::GoneByOperator => "TASK_GONE_BY_OPERATOR",
            TaskState::Unknown => "TASK_UNKNOWN",
        }
    }

    /// Parses a Mesos state name.
    pub fn from_mesos_name(name: &str) -> Option<TaskState> {
        ALL_STATES.iter().copied().find(|s| s.mesos_name() == name)
    }
}

/// Every task state.
pub const ALL_STATES: [TaskState; 14] = [
    TaskState::Staging,
    TaskState::Starting,
    TaskState::Running,
    TaskState::Killing,
    TaskState::Finished,
    TaskState::Failed,
    TaskState::Killed,
    TaskState::Error,
    TaskState::Lost,
    TaskState::Dropped,
    TaskState::Unreachable,
    TaskState::Gone,
    TaskState::GoneByOperator,
    TaskState::Unknown,
];

/// What the executor's health checks last said about a task (Marathon's
/// `healthCheckResults`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Health {
    /// The last result.
    pub alive: bool,
    /// When a check first passed.
    pub first_success: Option<Timestamp>,
    /// When a check last passed.
    pub last_success: Option<Timestamp>,
    /// When a check last failed.
    pub last_failure: Option<Timestamp>,
    /// Failed results in a row.
    pub consecutive_failures: u32,
    /// Why the last failure failed.
    pub last_failure_cause: Option<String>,
}

impl Health {
    /// Records one result at `now`.
    pub fn record(&mut self, healthy: bool, cause: Option<&str>, now: Timestamp) {
        self.alive = healthy;
        if healthy {
            self.first_success.get_or_insert(now);
            self.last_success = Some(now);
            self.consecutive_failures = 0;
        } else {
            self.last_failure = Some(now);
            self.consecutive_failures += 1;
            self.last_failure_cause = cause.map(str::to_owned);
        }
    }
}

/// One Mesos task of an instance: the facts Drover recorded about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// The Mesos task id.
    pub id: TaskId,
    /// The agent it was launched on.
    pub agent_id: String,
    /// That agent's hostname.
    pub hostname: String,
    /// That agent's fault domain and attributes, as offered (what
    /// constraints count).
    pub facts: Arc<AgentFacts>,
    /// The executor running it.
    pub executor_id: String,
    /// Its last known state.
    pub state: TaskState,
    /// When the launch was committed.
    pub staged_at: Timestamp,
    /// When it was first reported running.
    pub started_at: Option<Timestamp>,
    /// When its state last changed.
    pub updated_at: Timestamp,
    /// The last status message.
    pub message: Option<String>,
    /// When Drover last asked Mesos to kill it.
    pub kill_sent_at: Option<Timestamp>,
    /// The host ports it got from its offer, in `PORT0..` order.
    pub host_ports: Vec<u32>,
    /// Health check results, once the executor reported any.
    pub health: Option<Health>,
}

impl Task {
    /// True while the task may still be running.
    pub fn is_active(&self) -> bool {
        !self.state.needs_replacement()
    }
}

/// What Drover wants of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// Keep a task running.
    Running,
    /// Kill its task and forget the instance (scale-down, app deletion,
    /// replacement by a new version).
    Decommissioned,
}

/// One desired replica of an app.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// Stable id.
    pub id: InstanceId,
    /// The app.
    pub app_id: AppId,
    /// The app version this instance runs.
    pub app_version: Timestamp,
    /// What Drover wants.
    pub goal: Goal,
    /// The incarnation of the current (or last) task; 0 before the first launch.
    pub incarnation: u32,
    /// The current or last task.
    pub task: Option<Task>,
}

impl Instance {
    /// A new instance that has never been launched.
    pub fn new(id: InstanceId, app_id: AppId, app_version: Timestamp) -> Self {
        Instance { id, app_id, app_version, goal: Goal::Running, incarnation: 0, task: None }
    }

    /// The task if it may still be running.
    pub fn active_task(&self) -> Option<&Task> {
        self.task.as_ref().filter(|t| t.is_active())
    }

    /// True when the instance wants a (new) task.
    pub fn needs_launch(&self) -> bool {
        self.goal == Goal::Running && self.active_task().is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_names_round_trip() {
        for s in ALL_STATES {
            assert_eq!(TaskState::from_mesos_name(s.mesos_name()), Some(s));
        }
        assert_eq!(TaskState::from_mesos_name("TASK_NOPE"), None);
    }

    #[test]
    fn terminal_states_are_exactly_the_final_ones() {
        let terminal: Vec<_> =
            ALL_STATES.iter().filter(|s| s.is_terminal()).map(|s| s.mesos_name()).collect();
        assert_eq!(
            terminal,
            [
                "TASK_FINISHED",
                "TASK_FAILED",
                "TASK_KILLED",
                "TASK_ERROR",
                "TASK_LOST",
                "TASK_DROPPED",
                "TASK_GONE",
                "TASK_GONE_BY_OPERATOR",
                "TASK_UNKNOWN"
            ]
        );
        assert!(TaskState::Unreachable.needs_replacement());
        assert!(!TaskState::Killing.needs_replacement());
    }
}
