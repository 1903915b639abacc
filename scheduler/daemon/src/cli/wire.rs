//! The client's reading of the Marathon-style `/v2` JSON: apps, tasks,
//! deployments, the launch queue and events.
//!
//! Every field has a default, so a Drover (or Marathon) that adds fields or
//! lacks one still reads; fields the commands do not show are not read.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// An app (`GET /v2/apps`, `GET /v2/apps/{id}`; also in deployment plans).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct App {
    pub(crate) id: String,
    pub(crate) cmd: Option<String>,
    pub(crate) args: Option<Vec<String>>,
    pub(crate) container: Option<Container>,
    pub(crate) cpus: f64,
    pub(crate) mem: f64,
    pub(crate) disk: f64,
    pub(crate) gpus: f64,
    pub(crate) instances: u32,
    pub(crate) health_checks: Vec<HealthCheck>,
    pub(crate) constraints: Vec<Vec<String>>,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) port_definitions: Vec<PortDefinition>,
    pub(crate) upgrade_strategy: Option<UpgradeStrategy>,
    pub(crate) progress_deadline_seconds: Option<f64>,
    pub(crate) rollback_on_failure: Option<bool>,
    pub(crate) version: String,
    pub(crate) version_info: VersionInfo,
    pub(crate) tasks_staged: u32,
    pub(crate) tasks_running: u32,
    pub(crate) tasks_healthy: u32,
    pub(crate) tasks_unhealthy: u32,
    pub(crate) deployments: Vec<DeploymentRef>,
    pub(crate) tasks: Vec<Task>,
    pub(crate) last_task_failure: Option<TaskFailure>,
}

impl App {
    /// True when a failed deployment of this app is rolled back
    /// (`rollbackOnFailure`, true unless said otherwise).
    pub(crate) fn rolls_back(&self) -> bool {
        self.rollback_on_failure.unwrap_or(true)
    }

    /// When the app's configuration last changed: tasks of that version or
    /// later run the current configuration (a scale changes `version`
    /// only).
    pub(crate) fn config_since(&self) -> &str {
        let since = self.version_info.last_config_change_at.as_str();
        if since.is_empty() { &self.version } else { since }
    }
}

/// An app's container.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Container {
    pub(crate) docker: Option<Docker>,
    #[serde(rename = "portMappings")]
    pub(crate) port_mappings: Vec<PortMapping>,
}

/// A Docker container.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Docker {
    pub(crate) image: String,
}

/// A bridge-mode port mapping.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct PortMapping {
    pub(crate) container_port: u32,
    pub(crate) host_port: Option<u32>,
    pub(crate) service_port: u32,
    pub(crate) protocol: String,
    pub(crate) name: Option<String>,
}

/// A host-mode port definition.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct PortDefinition {
    pub(crate) port: u32,
    pub(crate) protocol: String,
    pub(crate) name: Option<String>,
}

/// A health check of an app.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct HealthCheck {
    pub(crate) protocol: String,
    pub(crate) path: Option<String>,
    pub(crate) command: Option<Value>,
    pub(crate) port_index: Option<u32>,
    pub(crate) port: Option<u32>,
    pub(crate) grace_period_seconds: f64,
    pub(crate) interval_seconds: f64,
    pub(crate) timeout_seconds: f64,
    pub(crate) max_consecutive_failures: u32,
}

/// `upgradeStrategy`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct UpgradeStrategy {
    pub(crate) minimum_health_capacity: f64,
    pub(crate) maximum_over_capacity: f64,
}

/// `versionInfo`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct VersionInfo {
    pub(crate) last_config_change_at: String,
}

/// `{"id": ...}` in an app's `deployments`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct DeploymentRef {
    pub(crate) id: String,
}

/// An app's last task failure.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct TaskFailure {
    pub(crate) message: String,
    pub(crate) state: String,
    pub(crate) task_id: String,
    pub(crate) timestamp: String,
    pub(crate) version: String,
}

/// A task (`GET /v2/tasks`, an app's `tasks`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Task {
    pub(crate) id: String,
    pub(crate) app_id: String,
    pub(crate) host: String,
    pub(crate) ports: Vec<u32>,
    pub(crate) state: String,
    pub(crate) health_check_results: Vec<HealthResult>,
    pub(crate) staged_at: Option<String>,
    pub(crate) started_at: Option<String>,
    pub(crate) version: String,
}

impl Task {
    /// `Some(true)` when every health check passes, `Some(false)` when one
    /// fails, `None` without results (no checks, or none reported yet).
    pub(crate) fn healthy(&self) -> Option<bool> {
        if self.health_check_results.is_empty() {
            None
        } else {
            Some(self.health_check_results.iter().all(|h| h.alive))
        }
    }

    /// Why its health check last failed, when it is failing.
    pub(crate) fn failure_cause(&self) -> Option<&str> {
        self.health_check_results
            .iter()
            .filter(|h| !h.alive)
            .find_map(|h| h.last_failure_cause.as_deref())
            .filter(|c| !c.is_empty())
    }
}

/// One health check result of a task.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct HealthResult {
    pub(crate) alive: bool,
    pub(crate) consecutive_failures: u32,
    pub(crate) last_failure_cause: Option<String>,
}

/// `{"tasks": [...]}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Tasks {
    pub(crate) tasks: Vec<Task>,
}

/// `{"apps": [...]}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Apps {
    pub(crate) apps: Vec<App>,
}

/// `{"app": ...}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct AppEnvelope {
    pub(crate) app: App,
}

/// One action of a deployment step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct Action {
    pub(crate) action: String,
    pub(crate) app: String,
}

/// A step: actions run together.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct Step {
    pub(crate) actions: Vec<Action>,
}

/// A deployment (`GET /v2/deployments`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Deployment {
    pub(crate) id: String,
    pub(crate) version: String,
    pub(crate) affected_apps: Vec<String>,
    pub(crate) steps: Vec<Step>,
    pub(crate) current_actions: Vec<Action>,
    /// 1-based.
    pub(crate) current_step: usize,
    pub(crate) total_steps: usize,
}

/// The answer to a change: `{"deploymentId", "version"}`, or (`POST
/// /v2/apps`) the app with `deployments: [{"id"}]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Deployed {
    pub(crate) deployment_id: Option<String>,
    pub(crate) deployments: Vec<DeploymentRef>,
    pub(crate) version: String,
}

impl Deployed {
    /// The deployment the change started.
    pub(crate) fn id(&self) -> Option<&str> {
        self.deployment_id
            .as_deref()
            .or_else(|| self.deployments.first().map(|d| d.id.as_str()))
            .filter(|id| !id.is_empty())
    }
}

/// `GET /v2/queue`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Queue {
    pub(crate) queue: Vec<QueueItem>,
}

/// One app waiting to launch.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct QueueItem {
    pub(crate) app: App,
    pub(crate) count: u32,
    pub(crate) role: Option<String>,
    pub(crate) delay: QueueDelay,
    pub(crate) since: Option<String>,
    pub(crate) processed_offers_summary: OffersSummary,
}

/// A queue item's launch delay (backoff).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct QueueDelay {
    pub(crate) time_left_seconds: u64,
    pub(crate) overdue: bool,
}

/// What the offers a queued app saw did.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct OffersSummary {
    pub(crate) processed_offers_count: u64,
    pub(crate) unused_offers_count: u64,
    pub(crate) last_unused_offer_at: Option<String>,
    pub(crate) last_used_offer_at: Option<String>,
    pub(crate) reject_summary_last_offers: Vec<RejectCount>,
}

/// How many offers one check declined.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RejectCount {
    pub(crate) reason: String,
    pub(crate) declined: u64,
    pub(crate) processed: u64,
}

/// A deployment plan as events carry it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Plan {
    pub(crate) id: String,
    pub(crate) version: String,
    pub(crate) original: PlanGroup,
    pub(crate) target: PlanGroup,
    pub(crate) steps: Vec<Step>,
}

impl Plan {
    /// The apps it touches: those of its target and its original.
    pub(crate) fn affected(&self) -> Vec<String> {
        let mut ids: Vec<String> =
            self.original.apps.iter().chain(&self.target.apps).map(|a| a.id.clone()).collect();
        for step in &self.steps {
            ids.extend(step.actions.iter().map(|a| a.app.clone()));
        }
        ids.sort();
        ids.dedup();
        ids
    }
}

/// The group of apps in a plan.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct PlanGroup {
    pub(crate) apps: Vec<App>,
}

/// The data of the events `drover` follows (one shape for all: each reads
/// the fields of its type).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct EventData {
    pub(crate) event_type: String,
    pub(crate) timestamp: String,
    /// `deployment_success`, `deployment_failed`.
    pub(crate) id: String,
    pub(crate) plan: Plan,
    /// `deployment_info`, `deployment_step_success`: the step's actions.
    pub(crate) current_step: Option<Step>,
    /// `deployment_failed`.
    pub(crate) reason: String,
    pub(crate) canceled: bool,
    /// Task events.
    pub(crate) app_id: String,
    pub(crate) task_id: String,
    pub(crate) task_status: String,
    pub(crate) message: String,
    pub(crate) host: String,
    pub(crate) ports: Vec<u32>,
    pub(crate) version: String,
    /// `health_status_changed_event`.
    pub(crate) alive: Option<bool>,
}

/// Mesos task states after which a task is gone.
pub(crate) fn is_terminal(state: &str) -> bool {
    matches!(
        state,
        "TASK_FINISHED"
            | "TASK_FAILED"
            | "TASK_KILLED"
            | "TASK_ERROR"
            | "TASK_LOST"
            | "TASK_DROPPED"
            | "TASK_GONE"
            | "TASK_GONE_BY_OPERATOR"
            | "TASK_UNKNOWN"
    )
}

/// Terminal states that say something went wrong (not a requested kill or
/// a normal exit).
pub(crate) fn is_failure(state: &str) -> bool {
    matches!(state, "TASK_FAILED" | "TASK_ERROR" | "TASK_LOST" | "TASK_DROPPED" | "TASK_GONE")
}
