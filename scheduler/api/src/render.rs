//! Snapshot → Marathon JSON (apps with counts, tasks, deployments, info).

use drover_time::Timestamp;
use sched_core::app::AppSpec;
use sched_core::format_version;
use sched_core::ids::AppId;
use sched_core::instance::{Instance, TaskState};
use sched_core::scheduler::Snapshot;
use serde_json::{Value, json};

use crate::ServerInfo;
use crate::app_json::render_app;

fn time(t: Option<Timestamp>) -> Value {
    t.map_or(Value::Null, |t| json!(format_version(t)))
}

/// One task in Marathon's task shape.
fn task_json(inst: &Instance, snap: &Snapshot) -> Option<Value> {
    let task = inst.active_task()?;
    let service_ports = snap.apps.get(&inst.app_id).map(AppSpec::service_ports).unwrap_or_default();
    let health: Vec<Value> = task
        .health
        .iter()
        .map(|h| {
            json!({
                "alive": h.alive,
                "consecutiveFailures": h.consecutive_failures,
                "firstSuccess": time(h.first_success),
                "lastFailure": time(h.last_failure),
                "lastSuccess": time(h.last_success),
                "lastFailureCause": h.last_failure_cause,
                "instanceId": inst.id.as_str(),
            })
        })
        .collect();
    let mut t = json!({
        "appId": inst.app_id.as_str(),
        "healthCheckResults": health,
        "host": task.hostname,
        "id": task.id.as_str(),
        "ipAddresses": [],
        "ports": task.host_ports,
        "servicePorts": service_ports,
        "slaveId": task.agent_id,
        "state": task.state.mesos_name(),
        "stagedAt": format_version(task.staged_at),
        "version": format_version(inst.app_version),
        "localVolumes": [],
        "role": "*",
    });
    if let (Some(obj), Some(started)) = (t.as_object_mut(), task.started_at) {
        obj.insert("startedAt".into(), json!(format_version(started)));
    }
    Some(t)
}

/// The tasks of one app.
pub(crate) fn app_tasks(snap: &Snapshot, app: &AppId) -> Vec<Value> {
    snap.app_instances(app).filter_map(|i| task_json(i, snap)).collect()
}

/// Every task, optionally of one state.
pub(crate) fn all_tasks(snap: &Snapshot, state: Option<TaskState>) -> Vec<Value> {
    snap.instances
        .values()
        .filter(|i| state.is_none_or(|s| i.active_task().is_some_and(|t| t.state == s)))
        .filter_map(|i| task_json(i, snap))
        .collect()
}

/// An app with Marathon's read-only additions.
pub(crate) fn app_info(
    app: &AppSpec,
    snap: &Snapshot,
    tasks: bool,
    last_failure: bool,
    _now: Timestamp,
) -> Value {
    let mut m = render_app(app);
    let (mut staged, mut running, mut healthy, mut unhealthy) = (0u32, 0u32, 0u32, 0u32);
    for t in snap.app_instances(&app.id).filter_map(Instance::active_task) {
        match t.state {
            TaskState::Staging | TaskState::Starting => staged += 1,
            TaskState::Running => running += 1,
            _ => {}
        }
        match t.health.as_ref().map(|h| h.alive) {
            Some(true) => healthy += 1,
            Some(false) => unhealthy += 1,
            None => {}
        }
    }
    m.insert("tasksStaged".into(), json!(staged));
    m.insert("tasksRunning".into(), json!(running));
    m.insert("tasksHealthy".into(), json!(healthy));
    m.insert("tasksUnhealthy".into(), json!(unhealthy));
    let deployments: Vec<Value> = snap
        .deployments
        .values()
        .filter(|d| d.app_id == app.id)
        .map(|d| json!({"id": d.id}))
        .collect();
    m.insert("deployments".into(), json!(deployments));
    if tasks {
        m.insert("tasks".into(), json!(app_tasks(snap, &app.id)));
    }
    if last_failure && let Some(f) = snap.last_failures.get(&app.id) {
        m.insert(
            "lastTaskFailure".into(),
            json!({
                "appId": app.id.as_str(),
                "host": f.host,
                "message": f.message,
                "state": f.state.mesos_name(),
                "taskId": f.task_id.as_str(),
                "timestamp": format_version(f.timestamp),
                "version": format_version(f.version),
                "slaveId": f.agent_id,
            }),
        );
    }
    json!(m)
}

/// `GET /v2/deployments`.
pub(crate) fn deployments(snap: &Snapshot) -> Value {
    let list: Vec<Value> = snap
        .deployments
        .values()
        .map(|d| {
            let action = json!({"action": d.action.name(), "app": d.app_id.as_str()});
            json!({
                "id": d.id,
                "version": format_version(d.version),
                "affectedApps": [d.app_id.as_str()],
                "affectedPods": [],
                "steps": [{"actions": [action]}],
                "currentActions": [{"action": d.action.name(), "app": d.app_id.as_str(), "readinessCheckResults": []}],
                "currentStep": 1,
                "totalSteps": 1,
            })
        })
        .collect();
    json!(list)
}

/// `GET /v2/info`.
pub(crate) fn info(info: &ServerInfo, snap: &Snapshot) -> Value {
    json!({
        "name": "drover",
        "version": env!("CARGO_PKG_VERSION"),
        "buildref": "unknown",
        "elected": true,
        "leader": info.leader,
        "frameworkId": snap.framework_id,
        "marathon_config": {
            "checkpoint": true,
            "decline_offer_duration": info.decline_offer_duration_ms,
            "executor": info.executor,
            "failover_timeout": info.failover_timeout_secs,
            "features": [],
            "framework_name": info.framework_name,
            "ha": false,
            "hostname": info.leader.rsplit_once(':').map_or(info.leader.as_str(), |(h, _)| h),
            "local_port_max": 20000,
            "local_port_min": 10000,
            "master": info.master,
            "mesos_role": "*",
            "mesos_user": info.mesos_user,
            "min_revive_offers_interval": info.min_revive_offers_interval_ms,
            "reconciliation_interval": info.reconciliation_interval_ms,
            "mesos_heartbeat_failure_threshold": 5,
            "webui_url": null,
        },
        "http_config": {"http_port": info.http_port},
        "subscribed": snap.subscribed,
    })
}
