//! Snapshot → Marathon JSON: apps with counts, tasks, deployments, the
//! launch queue, groups and info.

use std::collections::{BTreeSet, HashMap};
use std::io::Write as _;
use std::sync::{Arc, Mutex};

use drover_time::Timestamp;
use sched_core::app::AppSpec;
use sched_core::deployment::Deployment;
use sched_core::format_version;
use sched_core::ids::AppId;
use sched_core::instance::{Instance, TaskState};
use sched_core::placement::Reason;
use sched_core::scheduler::{QueueReport, Snapshot};
use serde::Serialize;
use serde_json::{Value, json};

use crate::ServerInfo;
use crate::app_json::render_app;

fn time(t: Option<Timestamp>) -> Value {
    t.map_or(Value::Null, |t| json!(format_version(t)))
}

/// One health check result of a task (Marathon's `healthCheckResults` item).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HealthView<'a> {
    alive: bool,
    consecutive_failures: u32,
    first_success: Option<String>,
    last_failure: Option<String>,
    last_success: Option<String>,
    last_failure_cause: Option<&'a str>,
    instance_id: &'a str,
}

/// One task in Marathon's task shape, serialized straight from the
/// snapshot (no intermediate JSON tree).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TaskView<'a> {
    app_id: &'a str,
    health_check_results: Vec<HealthView<'a>>,
    host: &'a str,
    id: &'a str,
    ip_addresses: [(); 0],
    ports: &'a [u32],
    service_ports: &'a [u32],
    slave_id: &'a str,
    state: &'static str,
    staged_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<String>,
    version: String,
    local_volumes: [(); 0],
    role: &'static str,
}

fn task_view<'a>(inst: &'a Instance, service_ports: &'a [u32]) -> Option<TaskView<'a>> {
    let task = inst.active_task()?;
    let health = task
        .health
        .iter()
        .map(|h| HealthView {
            alive: h.alive,
            consecutive_failures: h.consecutive_failures,
            first_success: h.first_success.map(format_version),
            last_failure: h.last_failure.map(format_version),
            last_success: h.last_success.map(format_version),
            last_failure_cause: h.last_failure_cause.as_deref(),
            instance_id: inst.id.as_str(),
        })
        .collect();
    Some(TaskView {
        app_id: inst.app_id.as_str(),
        health_check_results: health,
        host: &task.hostname,
        id: task.id.as_str(),
        ip_addresses: [],
        ports: &task.host_ports,
        service_ports,
        slave_id: &task.agent_id,
        state: task.state.mesos_name(),
        staged_at: format_version(task.staged_at),
        started_at: task.started_at.map(format_version),
        version: format_version(inst.app_version),
        local_volumes: [],
        role: "*",
    })
}

/// One task in Marathon's task shape.
pub(crate) fn task_json(inst: &Instance, snap: &Snapshot) -> Option<Value> {
    let service_ports = snap.apps.get(&inst.app_id).map(AppSpec::service_ports).unwrap_or_default();
    task_view(inst, &service_ports).and_then(|t| serde_json::to_value(t).ok())
}

/// The tasks of one app.
pub(crate) fn app_tasks(snap: &Snapshot, app: &AppId) -> Vec<Value> {
    snap.app_instances(app).filter_map(|i| task_json(i, snap)).collect()
}

/// Every task, optionally only those in `states`.
pub(crate) fn all_tasks(snap: &Snapshot, states: &[TaskState]) -> Vec<Value> {
    snap.instances
        .values()
        .filter(|i| states.is_empty() || i.active_task().is_some_and(|t| states.contains(&t.state)))
        .filter_map(|i| task_json(i, snap))
        .collect()
}

/// An app with Marathon's read-only additions.
pub(crate) fn app_info(app: &AppSpec, snap: &Snapshot, tasks: bool, last_failure: bool) -> Value {
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
    let deployments: Vec<Value> =
        snap.deployments_of(&app.id).map(|d| json!({"id": d.id})).collect();
    m.insert("deployments".into(), json!(deployments));
    if tasks {
        m.insert("tasks".into(), json!(app_tasks(snap, &app.id)));
    }
    if last_failure && let Some(f) = last_failure_json(app, snap) {
        m.insert("lastTaskFailure".into(), f);
    }
    json!(m)
}

/// App definitions as `app_json::render_app` writes them, kept per app for
/// as long as its version does not change. Rendering app definitions is
/// most of the cost of `GET /v2/apps`; an app's version changes with every
/// change of its definition (a rollback restores an old definition with
/// its old version), so the version identifies the JSON.
#[derive(Debug, Default)]
pub(crate) struct SpecCache(Mutex<HashMap<AppId, CachedSpec>>);

/// An app's version and its definition's JSON object.
type CachedSpec = (Timestamp, Arc<[u8]>);

impl SpecCache {
    /// The JSON objects of `apps`, rendering only those not cached.
    fn get(&self, apps: &[&AppSpec]) -> Vec<Arc<[u8]>> {
        let mut out: Vec<Option<Arc<[u8]>>> = {
            let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
            apps.iter()
                .map(|a| map.get(&a.id).filter(|(v, _)| *v == a.version).map(|(_, j)| j.clone()))
                .collect()
        };
        // Render misses without holding the lock.
        let mut fresh = Vec::new();
        for (slot, app) in out.iter_mut().zip(apps) {
            if slot.is_none() {
                let json: Arc<[u8]> =
                    serde_json::to_vec(&render_app(app)).unwrap_or_default().into();
                fresh.push((app.id.clone(), (app.version, json.clone())));
                *slot = Some(json);
            }
        }
        if !fresh.is_empty() {
            let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
            // Forget apps that are gone when the cache outgrows the app count.
            if map.len() + fresh.len() > 2 * apps.len().max(1024) {
                map.clear();
            }
            map.extend(fresh);
        }
        out.into_iter().flatten().collect()
    }
}

/// `{"apps": [...]}` for `GET /v2/apps`: the same JSON as [`app_info`] for
/// each app, written straight into one buffer. App definitions come from
/// `cache`; counts, deployments and tasks are written from the snapshot.
pub(crate) fn apps_list(
    snap: &Snapshot,
    apps: &[&AppSpec],
    cache: &SpecCache,
    tasks: bool,
    last_failure: bool,
) -> Vec<u8> {
    let mut deployments: HashMap<&AppId, Vec<&str>> = HashMap::new();
    for d in snap.deployments.values() {
        for app in d.affected_apps() {
            deployments.entry(app).or_default().push(&d.id);
        }
    }
    let specs = cache.get(apps);
    let instances = instances_by_app(snap, apps);
    let size: usize = specs.iter().map(|j| j.len() + 128).sum();
    let mut out = Vec::with_capacity(size + 16);
    out.extend_from_slice(b"{\"apps\":[");
    for (i, (app, spec)) in apps.iter().zip(&specs).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // The definition without its closing brace, then the read-only fields.
        let Some((b'}', open)) = spec.split_last() else { continue };
        out.extend_from_slice(open);
        let active = instances[i].as_slice();
        let (mut staged, mut running, mut healthy, mut unhealthy) = (0u32, 0u32, 0u32, 0u32);
        for t in active.iter().filter_map(|i| i.active_task()) {
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
        let _ = write!(
            out,
            ",\"tasksStaged\":{staged},\"tasksRunning\":{running},\"tasksHealthy\":{healthy},\"tasksUnhealthy\":{unhealthy},\"deployments\":["
        );
        for (j, id) in deployments.get(&app.id).into_iter().flatten().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"id\":");
            let _ = serde_json::to_writer(&mut out, id);
            out.push(b'}');
        }
        out.push(b']');
        if tasks {
            out.extend_from_slice(b",\"tasks\":[");
            let service_ports = app.service_ports();
            let views = active.iter().filter_map(|i| task_view(i, &service_ports));
            for (j, view) in views.enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                let _ = serde_json::to_writer(&mut out, &view);
            }
            out.push(b']');
        }
        if last_failure && let Some(f) = last_failure_json(app, snap) {
            out.extend_from_slice(b",\"lastTaskFailure\":");
            let _ = serde_json::to_writer(&mut out, &f);
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    out
}

/// The instances with an active task of each of `apps` (in the same
/// order), each in instance order. Many apps: one pass over every instance
/// (an app's instances are adjacent, so the app is looked up once per run
/// of them); a few: a seek each into the instance map.
fn instances_by_app<'a>(snap: &'a Snapshot, apps: &[&'a AppSpec]) -> Vec<Vec<&'a Instance>> {
    if apps.len() <= 64 {
        return apps
            .iter()
            .map(|app| snap.app_instances(&app.id).filter(|i| i.active_task().is_some()).collect())
            .collect();
    }
    let index: HashMap<&AppId, usize> = apps.iter().enumerate().map(|(i, a)| (&a.id, i)).collect();
    let mut by_app: Vec<Vec<&Instance>> = vec![Vec::new(); apps.len()];
    let mut run: Option<(&AppId, Option<usize>)> = None;
    for inst in snap.instances.values() {
        let slot = match run {
            Some((app, slot)) if *app == inst.app_id => slot,
            _ => {
                let slot = index.get(&inst.app_id).copied();
                run = Some((&inst.app_id, slot));
                slot
            }
        };
        if let Some(slot) = slot
            && inst.active_task().is_some()
        {
            by_app[slot].push(inst);
        }
    }
    by_app
}

fn last_failure_json(app: &AppSpec, snap: &Snapshot) -> Option<Value> {
    let f = snap.last_failures.get(&app.id)?;
    Some(json!({
        "appId": app.id.as_str(),
        "host": f.host,
        "message": f.message,
        "state": f.state.mesos_name(),
        "taskId": f.task_id.as_str(),
        "timestamp": format_version(f.timestamp),
        "version": format_version(f.version),
        "slaveId": f.agent_id,
    }))
}

/// One deployment in Marathon's `DeploymentStepInfo` shape.
pub(crate) fn deployment(d: &Deployment) -> Value {
    let affected: Vec<&str> = d.affected_apps().map(AppId::as_str).collect();
    let steps: Vec<Value> = d
        .steps
        .iter()
        .map(|s| json!({"actions": s.iter().map(|a| json!({"action": a.action.name(), "app": a.app.as_str()})).collect::<Vec<_>>()}))
        .collect();
    let current: Vec<Value> = d
        .current_actions()
        .iter()
        .map(|a| json!({"action": a.action.name(), "app": a.app.as_str(), "readinessCheckResults": []}))
        .collect();
    json!({
        "id": d.id,
        "version": format_version(d.version),
        "affectedApps": affected,
        "affectedPods": [],
        "steps": steps,
        "currentActions": current,
        "currentStep": (d.current_step + 1).min(d.steps.len().max(1)),
        "totalSteps": d.steps.len(),
    })
}

/// `GET /v2/deployments`.
pub(crate) fn deployments(snap: &Snapshot) -> Value {
    json!(snap.deployments.values().map(deployment).collect::<Vec<_>>())
}

/// Every reason Marathon reports in `rejectSummaryLastOffers`, in its
/// funnel order (which is also the order of Drover's placement pipeline).
const REASONS: &[(&str, Option<Reason>)] = &[
    ("UnfulfilledRole", Some(Reason::UnfulfilledRole)),
    ("UnfulfilledConstraint", Some(Reason::UnfulfilledConstraint)),
    ("NoCorrespondingReservationFound", None),
    ("AgentMaintenance", None),
    ("InsufficientCpus", Some(Reason::InsufficientCpus)),
    ("InsufficientMemory", Some(Reason::InsufficientMemory)),
    ("InsufficientDisk", Some(Reason::InsufficientDisk)),
    ("InsufficientGpus", Some(Reason::InsufficientGpus)),
    ("InsufficientPorts", Some(Reason::InsufficientPorts)),
    ("DeclinedScarceResources", None),
];

/// Marathon's `rejectSummaryLastOffers`: a funnel. The offers that reached
/// a check (`processed`) are those processed less those an earlier check
/// (in pipeline order) rejected; `declined` are those this check rejected.
fn reject_summary(report: &QueueReport) -> Vec<Value> {
    REASONS
        .iter()
        .enumerate()
        .map(|(i, (name, reason))| {
            let declined = reason.and_then(|r| report.rejected.get(&r)).copied().unwrap_or(0);
            // A reason Drover never gives sits where the next one it gives does.
            let before: u64 = match REASONS[i..].iter().find_map(|(_, r)| *r) {
                Some(r) => report.rejected.range(..r).map(|(_, n)| *n).sum(),
                None => report.rejected.values().sum(),
            };
            let processed = report.processed_offers.saturating_sub(before);
            json!({"reason": name, "declined": declined, "processed": processed})
        })
        .collect()
}

/// `GET /v2/queue`: apps with instances waiting to launch.
pub(crate) fn queue(snap: &Snapshot, now: Timestamp) -> Value {
    let mut waiting: BTreeSet<&AppId> = BTreeSet::new();
    for i in snap.instances.values().filter(|i| i.needs_launch()) {
        if snap.apps.contains_key(&i.app_id) {
            waiting.insert(&i.app_id);
        }
    }
    let items: Vec<Value> = waiting
        .into_iter()
        .filter_map(|id| snap.apps.get(id).map(|app| (id, app)))
        .map(|(id, app)| {
            let count = snap.app_instances(id).filter(|i| i.needs_launch()).count();
            let delay = snap.delays.get(id).filter(|d| d.until > now);
            let left = delay.map_or(0.0, |d| d.until.since(now).as_secs_f64());
            let report = snap.queue.get(id).cloned().unwrap_or_default();
            let summary = reject_summary(&report);
            let mut app_json = app_info(app, snap, false, false);
            if let Some(obj) = app_json.as_object_mut() {
                obj.remove("deployments");
            }
            json!({
                "app": app_json,
                "count": count,
                "role": app.placement.role,
                "delay": {"timeLeftSeconds": left.ceil() as u64, "overdue": delay.is_none()},
                "since": format_version(if snap.queue.contains_key(id) { report.since } else { now }),
                "processedOffersSummary": {
                    "processedOffersCount": report.processed_offers,
                    "unusedOffersCount": report.unused_offers,
                    "lastUnusedOfferAt": time(report.last_unused_at),
                    "lastUsedOfferAt": time(report.last_used_at),
                    "rejectSummaryLastOffers": summary,
                    "rejectSummaryLaunchAttempt": [],
                },
            })
        })
        .collect();
    json!({"queue": items})
}

/// The group `path` (`""` = root) with its apps and subgroups, or `None`
/// when no app lives beneath it.
pub(crate) fn group(snap: &Snapshot, path: &str, tasks: bool) -> Option<Value> {
    let inside: Vec<&AppSpec> =
        snap.apps.values().filter(|a| a.id.is_in_group(path) && a.id.as_str() != path).collect();
    if inside.is_empty() && !path.is_empty() {
        return None;
    }
    let depth = if path.is_empty() { 0 } else { path.matches('/').count() };
    let mut apps = Vec::new();
    let mut subgroups: BTreeSet<String> = BTreeSet::new();
    for a in &inside {
        let segments: Vec<&str> = a.id.as_str().split('/').skip(1).collect();
        if segments.len() == depth + 1 {
            apps.push(app_info(a, snap, tasks, false));
        } else {
            subgroups.insert(format!("/{}", segments[..=depth].join("/")));
        }
    }
    let groups: Vec<Value> = subgroups.iter().filter_map(|g| group(snap, g, tasks)).collect();
    let version = inside.iter().map(|a| a.version).max().unwrap_or(Timestamp::EPOCH);
    Some(json!({
        "id": if path.is_empty() { "/" } else { path },
        "apps": apps,
        "groups": groups,
        "pods": [],
        "dependencies": [],
        "version": format_version(version),
        "enforceRole": false,
    }))
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

#[cfg(test)]
mod queue_tests {
    use super::*;

    #[test]
    fn reject_summary_is_a_funnel_in_pipeline_order() {
        let report = QueueReport {
            processed_offers: 10,
            rejected: [
                (Reason::UnfulfilledRole, 1),
                (Reason::UnfulfilledConstraint, 2),
                (Reason::InsufficientMemory, 3),
            ]
            .into_iter()
            .collect(),
            ..QueueReport::default()
        };
        let rows: Vec<String> = reject_summary(&report)
            .iter()
            .map(|r| format!("{} {}/{}", r["reason"], r["declined"], r["processed"]))
            .collect();
        assert_eq!(
            rows,
            [
                "\"UnfulfilledRole\" 1/10",
                "\"UnfulfilledConstraint\" 2/9",
                "\"NoCorrespondingReservationFound\" 0/7",
                "\"AgentMaintenance\" 0/7",
                "\"InsufficientCpus\" 0/7",
                "\"InsufficientMemory\" 3/7",
                "\"InsufficientDisk\" 0/4",
                "\"InsufficientGpus\" 0/4",
                "\"InsufficientPorts\" 0/4",
                "\"DeclinedScarceResources\" 0/4",
            ]
        );
    }
}
