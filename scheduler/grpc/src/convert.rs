//! Domain → wire: the core's types into `drover.v1` messages. The only
//! place that knows both; every read, mutation answer and watch change is
//! built here, so the same record always becomes the same message.

use std::collections::HashMap;

use drover_time::Timestamp;
use sched_core::app::{AppSpec, CommandSpec};
use sched_core::deployment::{Action, Deployment, Origin};
use sched_core::ids::AppId;
use sched_core::instance::{Goal, Instance, TaskState};
use sched_core::job::{JobName, JobRun, JobSpec, JobState, RunStatus, Trigger};
use sched_core::scheduler::{Deployed, Snapshot, StoredState};
use sched_store::{Change, Record, RecordKey};

use crate::proto::v1 as pb;
use crate::proto::v1::change::Kind;

fn ms(t: Timestamp) -> i64 {
    t.as_millis()
}

/// An app as stored (no `status`).
pub(crate) fn app(spec: &AppSpec) -> pb::App {
    let (cmd, args) = match &spec.command {
        Some(CommandSpec::Shell(c)) => (c.clone(), Vec::new()),
        Some(CommandSpec::Argv(argv)) => (String::new(), argv.clone()),
        None => (String::new(), Vec::new()),
    };
    let labels: HashMap<String, String> =
        spec.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    pb::App {
        id: spec.id.to_string(),
        instances: spec.instances,
        cpus: spec.resources.cpus,
        mem: spec.resources.mem,
        disk: spec.resources.disk,
        gpus: spec.resources.gpus,
        cmd,
        args,
        image: spec.container.as_ref().map(|c| c.image.clone()).unwrap_or_default(),
        version_ms: ms(spec.version),
        last_scaling_at_ms: ms(spec.last_scaling_at),
        last_config_change_at_ms: ms(spec.last_config_change_at),
        labels,
        app_json: serde_json::Value::Object(sched_api::app_json::render_app(spec)).to_string(),
        status: None,
    }
}

/// An app with its task counts and deployments from the live view
/// (Marathon's `tasksStaged`/`tasksRunning`/`tasksHealthy`/`tasksUnhealthy`,
/// counted as the REST API counts them).
pub(crate) fn app_with_status(spec: &AppSpec, snap: &Snapshot) -> pb::App {
    let mut status = pb::AppStatus::default();
    for t in snap.app_instances(&spec.id).filter_map(Instance::active_task) {
        match t.state {
            TaskState::Staging | TaskState::Starting => status.tasks_staged += 1,
            TaskState::Running => status.tasks_running += 1,
            _ => {}
        }
        match t.health.as_ref().map(|h| h.alive) {
            Some(true) => status.tasks_healthy += 1,
            Some(false) => status.tasks_unhealthy += 1,
            None => {}
        }
    }
    status.deployment_ids = snap.deployments_of(&spec.id).map(|d| d.id.clone()).collect();
    pb::App { status: Some(status), ..app(spec) }
}

fn task_state(state: TaskState) -> pb::TaskState {
    match state {
        TaskState::Staging => pb::TaskState::Staging,
        TaskState::Starting => pb::TaskState::Starting,
        TaskState::Running => pb::TaskState::Running,
        TaskState::Killing => pb::TaskState::Killing,
        TaskState::Finished => pb::TaskState::Finished,
        TaskState::Failed => pb::TaskState::Failed,
        TaskState::Killed => pb::TaskState::Killed,
        TaskState::Error => pb::TaskState::Error,
        TaskState::Lost => pb::TaskState::Lost,
        TaskState::Dropped => pb::TaskState::Dropped,
        TaskState::Unreachable => pb::TaskState::Unreachable,
        TaskState::Gone => pb::TaskState::Gone,
        TaskState::GoneByOperator => pb::TaskState::GoneByOperator,
        TaskState::Unknown => pb::TaskState::Unknown,
    }
}

/// An instance and its current or last task.
pub(crate) fn task(inst: &Instance) -> pb::Task {
    let mut out = pb::Task {
        instance_id: inst.id.to_string(),
        app_id: inst.app_id.to_string(),
        state: pb::TaskState::NotLaunched as i32,
        version_ms: ms(inst.app_version),
        goal: match inst.goal {
            Goal::Running => pb::InstanceGoal::Running,
            Goal::Decommissioned => pb::InstanceGoal::Decommissioned,
        } as i32,
        incarnation: inst.incarnation,
        ..pb::Task::default()
    };
    if let Some(t) = &inst.task {
        out.id = t.id.to_string();
        out.state = task_state(t.state) as i32;
        out.host = t.hostname.clone();
        out.agent_id = t.agent_id.clone();
        out.ports = t.host_ports.clone();
        out.health = t.health.as_ref().map(|h| pb::TaskHealth {
            alive: h.alive,
            consecutive_failures: h.consecutive_failures,
            first_success_ms: h.first_success.map(ms),
            last_success_ms: h.last_success.map(ms),
            last_failure_ms: h.last_failure.map(ms),
            last_failure_cause: h.last_failure_cause.clone().unwrap_or_default(),
        });
        out.staged_at_ms = Some(ms(t.staged_at));
        out.started_at_ms = t.started_at.map(ms);
        out.message = t.message.clone().unwrap_or_default();
    }
    out
}

fn action_kind(action: Action) -> pb::DeploymentActionKind {
    match action {
        Action::StartApplication => pb::DeploymentActionKind::StartApplication,
        Action::ScaleApplication => pb::DeploymentActionKind::ScaleApplication,
        Action::RestartApplication => pb::DeploymentActionKind::RestartApplication,
        Action::StopApplication => pb::DeploymentActionKind::StopApplication,
    }
}

/// A deployment, its step numbered as the REST API numbers it.
pub(crate) fn deployment(d: &Deployment) -> pb::Deployment {
    let steps = d
        .steps
        .iter()
        .map(|step| pb::DeploymentStep {
            actions: step
                .iter()
                .map(|a| pb::DeploymentAction {
                    kind: action_kind(a.action) as i32,
                    app_id: a.app.to_string(),
                })
                .collect(),
        })
        .collect();
    let current = (d.current_step + 1).min(d.steps.len().max(1));
    pb::Deployment {
        id: d.id.clone(),
        version_ms: ms(d.version),
        app_ids: d.affected_apps().map(AppId::to_string).collect(),
        steps,
        current_step: u32::try_from(current).unwrap_or(u32::MAX),
        rollback_of: match &d.origin {
            Origin::User => String::new(),
            Origin::Rollback { of } => of.clone(),
        },
    }
}

/// A job spec as stored (no `status`, no `next_run_at_ms`).
pub(crate) fn job(spec: &JobSpec) -> pb::Job {
    pb::Job {
        name: spec.name.to_string(),
        command: spec.command.clone(),
        shell: spec.shell,
        arguments: spec.arguments.clone(),
        schedule: spec.schedule.as_ref().map(|s| s.source()).unwrap_or_default(),
        schedule_time_zone: spec
            .schedule
            .as_ref()
            .and_then(|s| s.time_zone())
            .map(str::to_owned)
            .unwrap_or_default(),
        parents: spec.parents.iter().map(JobName::to_string).collect(),
        disabled: spec.disabled,
        cpus: spec.resources.cpus,
        mem: spec.resources.mem,
        disk: spec.resources.disk,
        image: spec.container.as_ref().map(|c| c.image.clone()).unwrap_or_default(),
        owner: spec.owner.clone(),
        description: spec.description.clone(),
        version_ms: ms(spec.version),
        status: None,
        next_run_at_ms: None,
    }
}

/// A job with its status and next run (a job that never ran has the
/// default status).
pub(crate) fn job_with_status(spec: &JobSpec, state: Option<&JobState>) -> pb::Job {
    let fresh = JobState::default();
    let state = state.unwrap_or(&fresh);
    pb::Job {
        status: Some(job_status(&spec.name, state)),
        next_run_at_ms: spec.next_due(state).map(ms),
        ..job(spec)
    }
}

/// What a job remembers between runs.
pub(crate) fn job_status(name: &JobName, st: &JobState) -> pb::JobStatus {
    pb::JobStatus {
        job: name.to_string(),
        success_count: st.success_count,
        error_count: st.error_count,
        missed_count: st.missed_count,
        errors_since_last_success: st.errors_since_last_success,
        last_success_ms: st.last_success.map(ms),
        last_error_ms: st.last_error.map(ms),
        last_fired_ms: st.last_fired.map(ms),
        exhausted: st.exhausted,
    }
}

fn run_status(status: RunStatus) -> pb::RunStatus {
    match status {
        RunStatus::Queued => pb::RunStatus::Queued,
        RunStatus::Running => pb::RunStatus::Running,
        RunStatus::Succeeded => pb::RunStatus::Succeeded,
        RunStatus::Failed => pb::RunStatus::Failed,
        RunStatus::Killed => pb::RunStatus::Killed,
        RunStatus::Missed => pb::RunStatus::Missed,
    }
}

/// One run of a job.
pub(crate) fn run(r: &JobRun) -> pb::JobRun {
    use pb::run_trigger::{Dependency, Kind as T, Manual, Schedule};
    let trigger = match &r.trigger {
        Trigger::Schedule(due) => T::Schedule(Schedule { due_at_ms: ms(*due) }),
        Trigger::Dependency => T::Dependency(Dependency {}),
        Trigger::Manual { arguments } => T::Manual(Manual { arguments: arguments.clone() }),
    };
    pb::JobRun {
        id: r.id.clone(),
        job: r.job.to_string(),
        trigger: Some(pb::RunTrigger { kind: Some(trigger) }),
        status: run_status(r.status) as i32,
        attempts: r.attempts,
        task_ids: r.task_ids.clone(),
        created_at_ms: ms(r.created_at),
        started_at_ms: r.started_at.map(ms),
        finished_at_ms: r.finished_at.map(ms),
        message: r.message.clone(),
    }
}

/// The deployment a command started.
pub(crate) fn deployed(d: &Deployed) -> pb::DeploymentStarted {
    pb::DeploymentStarted { deployment_id: d.deployment_id.clone(), version_ms: ms(d.version) }
}

/// Everything stored, in the store's order (by id), as `GetState` answers.
pub(crate) fn state(stored: &StoredState, revision: i64) -> pb::GetStateResponse {
    pb::GetStateResponse {
        revision,
        apps: stored.apps.iter().map(app).collect(),
        tasks: stored.instances.iter().map(task).collect(),
        deployments: stored.deployments.iter().map(deployment).collect(),
        jobs: stored.jobs.iter().map(job).collect(),
        job_statuses: stored.job_states.iter().map(|(n, st)| job_status(n, st)).collect(),
        runs: stored.runs.iter().map(run).collect(),
    }
}

/// One stored change as the API shows it; `None` for records the API does
/// not carry (the framework id, kept app versions).
pub(crate) fn change(c: &Change) -> Option<pb::Change> {
    let kind = match c {
        Change::Put(record) => match record {
            Record::App(a) => Kind::App(app(a)),
            Record::Instance(i) => Kind::Task(task(i)),
            Record::Deployment(d) => Kind::Deployment(deployment(d)),
            Record::Job(j) => Kind::Job(job(j)),
            Record::JobState(name, st) => Kind::JobStatus(job_status(name, st)),
            Record::JobRun(r) => Kind::Run(run(r)),
            Record::FrameworkId(_) | Record::AppVersion(_) => return None,
        },
        Change::Delete(key) => match key {
            RecordKey::App(id) => Kind::AppDeleted(id.to_string()),
            RecordKey::Instance(id) => Kind::TaskDeleted(id.to_string()),
            RecordKey::Deployment(id) => Kind::DeploymentDeleted(id.clone()),
            RecordKey::Job(name) => Kind::JobDeleted(name.to_string()),
            RecordKey::JobState(name) => Kind::JobStatusDeleted(name.to_string()),
            RecordKey::JobRun(job, id) => {
                Kind::RunDeleted(pb::RunKey { job: job.to_string(), id: id.clone() })
            }
            RecordKey::FrameworkId | RecordKey::AppVersion(..) => return None,
        },
    };
    Some(pb::Change { kind: Some(kind) })
}

#[cfg(test)]
mod tests;
