//! Chronos' REST API under `/v1/scheduler`: jobs, manual runs, stats, the
//! dependency graph and the leader, plus Drover's run history.
//!
//! Reads come from the published snapshot; writes become job commands
//! (`PutJob`, `DeleteJob`, `RunJob`, `KillJob`, `MarkJobSuccess`), answered
//! once persisted. Errors use Chronos' shape ([`ChronosError`]); a refused
//! request changes nothing.
#![doc = include_str!("../docs/jobs.md")]

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use drover_time::Timestamp;
use sched_core::format_version;
use sched_core::job::{JobName, JobRun, JobSpec, JobState, RunStatus, Trigger};
use sched_core::scheduler::{Command, Snapshot};
use serde::Serialize;
use serde_json::Value;

use super::{Params, param, params};
use crate::ApiState;
use crate::error::ChronosError;
use crate::job_json::{self, Context, JobView};

type Answer = Result<Response, ChronosError>;

fn context(s: &ApiState) -> Context<'_> {
    Context { now: s.clock.now(), mesos_user: &s.info.mesos_user }
}

/// A job name from a path; a name that cannot exist is an unknown job.
fn job_name(raw: &str) -> Result<JobName, ChronosError> {
    JobName::parse(raw).map_err(|_| ChronosError::no_job(raw))
}

fn existing<'a>(snap: &'a Snapshot, raw: &str) -> Result<&'a JobSpec, ChronosError> {
    snap.jobs.get(&job_name(raw)?).ok_or_else(|| ChronosError::no_job(raw))
}

/// One job as JSON, with what Drover remembers about it.
pub(crate) fn view(spec: &JobSpec, snap: &Snapshot, ctx: Context<'_>) -> JobView {
    let fresh = JobState::default();
    let state = snap.job_states.get(&spec.name).unwrap_or(&fresh);
    let last = snap.job_runs(&spec.name).last().map(|r| r.status);
    job_json::render_job(spec, state, last, ctx)
}

fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

fn body_json(body: &[u8]) -> Result<Value, ChronosError> {
    if body.is_empty() {
        return Err(ChronosError::bad_request("the request has no body: send the job as JSON"));
    }
    serde_json::from_slice(body)
        .map_err(|e| ChronosError::bad_request(format!("the body is not valid JSON: {e}")))
}

async fn run(s: &ApiState, command: Command) -> Result<(), ChronosError> {
    s.run(command).await.map(|_| ()).map_err(ChronosError::from)
}

// ----- jobs -----------------------------------------------------------------------

/// `GET /v1/scheduler/jobs`: every job, by name.
pub(crate) async fn list(State(s): State<ApiState>) -> Json<Vec<JobView>> {
    let snap = s.snap();
    let ctx = context(&s);
    Json(snap.jobs.values().map(|j| view(j, &snap, ctx)).collect())
}

/// What a job is doing: `idle`, `queued`, or `<n> running` (Chronos 3's
/// `JobStats` state).
fn activity(snap: &Snapshot, name: &JobName) -> String {
    let Some(runs) = snap.runs.get(name) else { return "idle".into() };
    let running = runs.values().filter(|r| r.status == RunStatus::Running).count();
    if running > 0 {
        format!("{running} running")
    } else if runs.values().any(|r| r.status == RunStatus::Queued) {
        "queued".into()
    } else {
        "idle".into()
    }
}

/// The last result: `success`, `failure` or `fresh`.
fn last_result(snap: &Snapshot, name: &JobName) -> &'static str {
    snap.job_states.get(name).map_or("fresh", JobState::last_result)
}

/// One entry of `GET /v1/scheduler/jobs/summary`.
#[derive(Debug, Serialize)]
struct SummaryItem {
    name: String,
    /// The last result (`success`, `failure`, `fresh`).
    status: &'static str,
    /// What the job is doing (`idle`, `queued`, `<n> running`).
    state: String,
    schedule: String,
    parents: Vec<String>,
    disabled: bool,
}

/// The body of `GET /v1/scheduler/jobs/summary`.
#[derive(Debug, Serialize)]
struct Summary {
    jobs: Vec<SummaryItem>,
}

/// `GET /v1/scheduler/jobs/summary`.
///
/// Chronos 3's `getSummary` computes the last result into a variable named
/// `state` and the activity into one named `status`, then passes them to
/// `JobSummary(name, status, state, ...)` in swapped order. The two swaps
/// cancel out: on the wire `status` is the last result
/// (`success`/`failure`/`fresh`) and `state` the activity
/// (`idle`/`queued`/`<n> running`), which is what Chronos clients read
/// (they test `"running" in state`). Drover writes the same.
pub(crate) async fn summary(State(s): State<ApiState>) -> Response {
    let snap = s.snap();
    let now = s.clock.now();
    let jobs: Vec<SummaryItem> = snap
        .jobs
        .values()
        .map(|j| SummaryItem {
            name: j.name.to_string(),
            status: last_result(&snap, &j.name),
            state: activity(&snap, &j.name),
            schedule: j.schedule.as_ref().map(|sc| sc.describe(now)).unwrap_or_default(),
            parents: j.parents.iter().map(JobName::to_string).collect(),
            disabled: j.disabled || snap.job_states.get(&j.name).is_some_and(|st| st.exhausted),
        })
        .collect();
    Json(Summary { jobs }).into_response()
}

fn count_param(q: &Params, key: &str, default: usize) -> Result<usize, ChronosError> {
    match param(q, key) {
        None | Some("") => Ok(default),
        Some(v) => v.parse().map_err(|_| {
            ChronosError::bad_request(format!("`{key}` must be a whole number, got '{v}'"))
        }),
    }
}

/// `GET /v1/scheduler/jobs/search?name=&command=&any=&limit=&offset=`:
/// case-insensitive substrings. A job matches when it matches every given
/// `name`/`command` filter, or when its name or command contains `any`.
/// `limit` defaults to 10, as in Chronos. (Chronos lists every job when only
/// `any` is given; Drover applies `any`.)
pub(crate) async fn search(State(s): State<ApiState>, q: Params) -> Answer {
    let lower = |k: &str| param(&q, k).filter(|v| !v.is_empty()).map(str::to_lowercase);
    let (name, command, any) = (lower("name"), lower("command"), lower("any"));
    let limit = count_param(&q, "limit", 10)?;
    let offset = count_param(&q, "offset", 0)?;
    let snap = s.snap();
    let ctx = context(&s);
    let found: Vec<JobView> = snap
        .jobs
        .values()
        .filter(|j| {
            let (n, c) = (j.name.as_str().to_lowercase(), j.command.to_lowercase());
            let filtered = name.is_some() || command.is_some();
            let by_filters = filtered
                && name.as_ref().is_none_or(|x| n.contains(x.as_str()))
                && command.as_ref().is_none_or(|x| c.contains(x.as_str()));
            let by_any =
                any.as_ref().is_some_and(|x| n.contains(x.as_str()) || c.contains(x.as_str()));
            by_filters || by_any || (!filtered && any.is_none())
        })
        .skip(offset)
        .take(limit)
        .map(|j| view(j, &snap, ctx))
        .collect();
    Ok(Json(found).into_response())
}

/// `GET /v1/scheduler/job/{name}`.
pub(crate) async fn get_job(State(s): State<ApiState>, Path(raw): Path<String>) -> Answer {
    let snap = s.snap();
    let job = existing(&snap, &raw)?;
    Ok(Json(view(job, &snap, context(&s))).into_response())
}

/// `PUT /v1/scheduler/job/{name}?arguments=a&arguments=b` (or `a,b`): a
/// manual run now, whatever the schedule, `disabled` or concurrency
/// policy. The arguments are appended when `shell` is false. 204.
pub(crate) async fn run_job(
    State(s): State<ApiState>,
    Path(raw): Path<String>,
    q: Params,
) -> Answer {
    let name = job_name(&raw)?;
    let arguments: Vec<String> = params(&q, "arguments")
        .into_iter()
        .flat_map(|a| a.split(','))
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    run(&s, Command::RunJob { name, arguments }).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /v1/scheduler/job/{name}`: active runs are killed; the children
/// take over the job's parents (or its schedule). 204.
pub(crate) async fn delete_job(State(s): State<ApiState>, Path(raw): Path<String>) -> Answer {
    run(&s, Command::DeleteJob(job_name(&raw)?)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PUT /v1/scheduler/job/success/{name}`: records a success without
/// running, releasing the dependents. 200 with Chronos' text.
pub(crate) async fn mark_success(State(s): State<ApiState>, Path(raw): Path<String>) -> Answer {
    let name = job_name(&raw)?;
    run(&s, Command::MarkJobSuccess(name.clone())).await?;
    Ok(text(format!("marked job {name} as successful: true")))
}

/// `DELETE /v1/scheduler/task/kill/{name}`: kills every active run. 204.
pub(crate) async fn kill(State(s): State<ApiState>, Path(raw): Path<String>) -> Answer {
    run(&s, Command::KillJob(job_name(&raw)?)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1/scheduler/job/{name}/task/{taskId}/progress`: Chronos' data
/// tracking needs `dataProcessingJobType` and Cassandra; Drover tracks no
/// processed elements, so every job answers as a Chronos job without it.
pub(crate) async fn progress(
    State(s): State<ApiState>,
    Path((raw, _task)): Path<(String, String)>,
) -> Answer {
    existing(&s.snap(), &raw)?;
    Err(ChronosError::bad_request(format!(
        "Job '{raw}' is not enabled to track data: Drover does not track processed elements"
    )))
}

/// Parses a posted job (Chronos' 400 on any problem).
pub(crate) fn posted_job(s: &ApiState, body: &[u8]) -> Result<JobSpec, ChronosError> {
    let value = body_json(body)?;
    job_json::parse_job(&value, context(s)).map_err(|e| ChronosError::bad_request(e.message()))
}

/// `POST` (or `PUT`) `/v1/scheduler/iso8601`: creates or replaces a
/// scheduled job. 204.
pub(crate) async fn put_scheduled(State(s): State<ApiState>, body: Bytes) -> Answer {
    let job = posted_job(&s, &body)?;
    if !job.parents.is_empty() {
        return Err(ChronosError::bad_request(
            "a job with `parents` is a dependent job: POST it to /v1/scheduler/dependency",
        ));
    }
    run(&s, Command::PutJob(Box::new(job))).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST` (or `PUT`) `/v1/scheduler/dependency`: creates or replaces a
/// dependent job. 204.
pub(crate) async fn put_dependent(State(s): State<ApiState>, body: Bytes) -> Answer {
    let job = posted_job(&s, &body)?;
    if job.parents.is_empty() {
        return Err(ChronosError::bad_request(
            "a dependent job needs `parents`: POST scheduled jobs to /v1/scheduler/iso8601",
        ));
    }
    run(&s, Command::PutJob(Box::new(job))).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ----- stats --------------------------------------------------------------------

/// Durations (ms) of the succeeded runs Drover keeps.
fn succeeded_durations(runs: &[&JobRun]) -> Vec<f64> {
    let mut ms: Vec<f64> = runs
        .iter()
        .filter(|r| r.status == RunStatus::Succeeded)
        .filter_map(|r| {
            let end = r.finished_at?;
            let start = r.started_at.unwrap_or(r.created_at);
            Some(end.since(start).as_millis() as f64)
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    ms
}

/// Dropwizard's `UniformSnapshot.getValue`: the `q` quantile of sorted
/// values, interpolated between neighbours (what Chronos reports).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let Some(last) = sorted.last() else { return 0.0 };
    let pos = q * (sorted.len() as f64 + 1.0);
    let index = pos.floor() as usize;
    if index < 1 {
        return sorted[0];
    }
    match (sorted.get(index - 1), sorted.get(index)) {
        (Some(lower), Some(upper)) => lower + (pos - pos.floor()) * (upper - lower),
        _ => *last,
    }
}

/// Chronos' histogram of run durations, in milliseconds.
#[derive(Debug, Serialize)]
struct Histogram {
    #[serde(rename = "75thPercentile")]
    p75: f64,
    #[serde(rename = "95thPercentile")]
    p95: f64,
    #[serde(rename = "98thPercentile")]
    p98: f64,
    #[serde(rename = "99thPercentile")]
    p99: f64,
    median: f64,
    mean: f64,
    count: usize,
}

fn histogram(sorted: &[f64]) -> Histogram {
    let mean =
        if sorted.is_empty() { 0.0 } else { sorted.iter().sum::<f64>() / sorted.len() as f64 };
    Histogram {
        p75: quantile(sorted, 0.75),
        p95: quantile(sorted, 0.95),
        p98: quantile(sorted, 0.98),
        p99: quantile(sorted, 0.99),
        median: quantile(sorted, 0.5),
        mean,
        count: sorted.len(),
    }
}

/// A histogram value by Chronos' name.
fn percentile_of(h: &Histogram, name: &str) -> Option<f64> {
    Some(match name {
        "99thPercentile" => h.p99,
        "98thPercentile" => h.p98,
        "95thPercentile" => h.p95,
        "75thPercentile" => h.p75,
        "median" => h.median,
        "mean" => h.mean,
        _ => return None,
    })
}

/// Chronos' `MM/dd/yy HH:mm:ss` (UTC), or `N/A`.
fn chronos_time(t: Option<Timestamp>) -> String {
    let Some(t) = t else { return "N/A".into() };
    let iso = format_version(t);
    match (iso.get(2..4), iso.get(5..7), iso.get(8..10), iso.get(11..19)) {
        (Some(yy), Some(mm), Some(dd), Some(hms)) => format!("{mm}/{dd}/{yy} {hms}"),
        _ => "N/A".into(),
    }
}

/// Joda's `PeriodFormat` as Chronos configures it: `1h2m3s`, `45s`.
fn chronos_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{s}s"));
    out
}

/// One run in `taskStatHistory` (Chronos' `TaskStat`, plus the run's id
/// and Drover's status).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TaskStatView {
    task_id: String,
    job_name: String,
    slave_id: String,
    start_time: String,
    end_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<String>,
    /// Chronos' `Success`, `Fail`, `Running` or `Idle`.
    status: &'static str,
    run_id: String,
    run_status: &'static str,
}

fn task_stat(run: &JobRun, snap: &Snapshot) -> TaskStatView {
    let agent = run
        .instance_id
        .as_ref()
        .and_then(|i| snap.instances.get(i))
        .and_then(|i| i.active_task())
        .map(|t| t.agent_id.clone());
    let duration = match (run.started_at, run.finished_at) {
        (Some(start), Some(end)) => Some(chronos_duration(end.since(start))),
        _ => None,
    };
    TaskStatView {
        task_id: run.task_ids.last().cloned().unwrap_or_default(),
        job_name: run.job.to_string(),
        slave_id: agent.unwrap_or_default(),
        start_time: chronos_time(run.started_at),
        end_time: chronos_time(run.finished_at),
        duration,
        status: match run.status {
            RunStatus::Succeeded => "Success",
            RunStatus::Failed | RunStatus::Killed | RunStatus::Missed => "Fail",
            RunStatus::Running => "Running",
            RunStatus::Queued => "Idle",
        },
        run_id: run.id.clone(),
        run_status: run.status.name(),
    }
}

/// The body of `GET /v1/scheduler/job/stat/{name}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct JobStat {
    histogram: Histogram,
    task_stat_history: Vec<TaskStatView>,
}

/// `GET /v1/scheduler/job/stat/{name}`: the duration histogram (ms) of the
/// succeeded runs Drover keeps and those runs, newest first.
pub(crate) async fn stat(State(s): State<ApiState>, Path(raw): Path<String>) -> Answer {
    let snap = s.snap();
    let job = existing(&snap, &raw)?;
    let mut runs = snap.job_runs(&job.name);
    let hist = histogram(&succeeded_durations(&runs));
    runs.reverse();
    let task_stat_history = runs.iter().map(|r| task_stat(r, &snap)).collect();
    Ok(Json(JobStat { histogram: hist, task_stat_history }).into_response())
}

/// `GET /v1/scheduler/stats/{percentile}`: jobs by that duration of their
/// kept succeeded runs, slowest first, in seconds (Chronos' shape). Jobs
/// without a succeeded run are left out.
pub(crate) async fn stats(State(s): State<ApiState>, Path(percentile): Path<String>) -> Answer {
    if percentile_of(&histogram(&[]), &percentile).is_none() {
        return Err(ChronosError::bad_request(format!(
            "unknown percentile '{percentile}': use 99thPercentile, 98thPercentile, \
             95thPercentile, 75thPercentile, median or mean"
        )));
    }
    let snap = s.snap();
    let mut rows: Vec<(f64, String)> = snap
        .jobs
        .keys()
        .filter_map(|name| {
            let ms = succeeded_durations(&snap.job_runs(name));
            let value = percentile_of(&histogram(&ms), &percentile)?;
            (!ms.is_empty()).then(|| (value / 1000.0, name.to_string()))
        })
        .collect();
    rows.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let out: Vec<Value> = rows
        .into_iter()
        .map(|(time, name)| serde_json::json!({"jobNameLabel": name, "time": time}))
        .collect();
    Ok(Json(out).into_response())
}

/// How a run came to be, as JSON.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
enum TriggerView {
    Schedule {
        #[serde(rename = "dueAt")]
        due_at: String,
    },
    Dependency,
    Manual {
        arguments: Vec<String>,
    },
}

/// One run in `GET /v1/scheduler/job/{name}/runs`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RunView {
    id: String,
    trigger: TriggerView,
    status: &'static str,
    attempts: u32,
    task_ids: Vec<String>,
    created_at: String,
    started_at: Option<String>,
    finished_at: Option<String>,
    message: String,
}

fn run_view(r: &JobRun) -> RunView {
    RunView {
        id: r.id.clone(),
        trigger: match &r.trigger {
            Trigger::Schedule(due) => TriggerView::Schedule { due_at: format_version(*due) },
            Trigger::Dependency => TriggerView::Dependency,
            Trigger::Manual { arguments } => TriggerView::Manual { arguments: arguments.clone() },
        },
        status: r.status.name(),
        attempts: r.attempts,
        task_ids: r.task_ids.clone(),
        created_at: format_version(r.created_at),
        started_at: r.started_at.map(format_version),
        finished_at: r.finished_at.map(format_version),
        message: r.message.clone(),
    }
}

/// `GET /v1/scheduler/job/{name}/runs` (Drover): the active runs and the
/// kept history, oldest first.
pub(crate) async fn runs(State(s): State<ApiState>, Path(raw): Path<String>) -> Answer {
    let snap = s.snap();
    let job = existing(&snap, &raw)?;
    let runs: Vec<RunView> = snap.job_runs(&job.name).into_iter().map(run_view).collect();
    Ok(Json(runs).into_response())
}

// ----- graph ----------------------------------------------------------------------

/// Every `(parent, child)` edge, in order.
fn edges(snap: &Snapshot) -> Vec<(&JobName, &JobName)> {
    let mut out: Vec<(&JobName, &JobName)> =
        snap.jobs.values().flat_map(|j| j.parents.iter().map(move |p| (p, &j.name))).collect();
    out.sort();
    out
}

/// `GET /v1/scheduler/graph/dot`: Graphviz DOT as Chronos' jgrapht
/// exporter writes it (vertices numbered from 1 in name order, labelled).
pub(crate) async fn graph_dot(State(s): State<ApiState>) -> Response {
    let snap = s.snap();
    let mut out = String::from("digraph G {\n");
    let ids: std::collections::BTreeMap<&JobName, usize> =
        snap.jobs.keys().enumerate().map(|(i, n)| (n, i + 1)).collect();
    for (name, id) in &ids {
        out.push_str(&format!("  {id} [ label=\"{name}\" ];\n"));
    }
    for (parent, child) in edges(&snap) {
        if let (Some(p), Some(c)) = (ids.get(parent), ids.get(child)) {
            out.push_str(&format!("  {p} -> {c};\n"));
        }
    }
    out.push_str("}\n");
    text(out)
}

/// `GET /v1/scheduler/graph/csv`: what Chronos' UI reads, one line per job
/// `node,<name>,<last result>,<activity>` (the summary's `status` and
/// `state`), then one per dependency `link,<parent>,<child>`.
pub(crate) async fn graph_csv(State(s): State<ApiState>) -> Response {
    let snap = s.snap();
    let mut out = String::new();
    for name in snap.jobs.keys() {
        out.push_str(&format!(
            "node,{name},{},{}\n",
            last_result(&snap, name),
            activity(&snap, name)
        ));
    }
    for (parent, child) in edges(&snap) {
        out.push_str(&format!("link,{parent},{child}\n"));
    }
    text(out)
}

/// `GET /v1/scheduler/leader`: `{"leader": "host:port"}`, the same leader
/// `/v2/leader` names; answered by every instance.
pub(crate) async fn leader(State(s): State<ApiState>) -> Answer {
    match s.leadership.known_leader() {
        Some(l) => Ok(Json(serde_json::json!({"leader": l})).into_response()),
        None => {
            Err(ChronosError { code: StatusCode::NOT_FOUND, message: "There is no leader".into() })
        }
    }
}
