//! Drover's REST API.
//!
//! Marathon-compatible `/v2` endpoints over two narrow channels to the
//! daemon: reads are served from the latest published scheduler
//! [`Snapshot`] (never blocking the scheduler), and writes become
//! [`Command`]s sent to the daemon's main loop, answered once their effects
//! are persisted. No handler touches the store or Mesos.

pub mod app_json;
pub mod error;
mod render;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use drover_time::Clock;
use sched_core::format_version;
use sched_core::ids::AppId;
use sched_core::scheduler::{Command, CommandError, Deployed, Snapshot};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};

pub use error::{ApiError, FieldError};

/// A command on its way to the scheduler, with the channel for its answer.
#[derive(Debug)]
pub struct CommandRequest {
    /// The command.
    pub command: Command,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Result<Deployed, CommandError>>,
}

/// Static facts about this server, for `/v2/info`.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// `host:port` this API is reachable at.
    pub leader: String,
    /// The Mesos master URL.
    pub master: String,
    /// The framework name.
    pub framework_name: String,
    /// `FrameworkInfo.failover_timeout`, seconds.
    pub failover_timeout_secs: f64,
    /// Declined-offer filter, milliseconds.
    pub decline_offer_duration_ms: u64,
    /// Reconciliation interval, milliseconds.
    pub reconciliation_interval_ms: u64,
    /// Minimum time between REVIVE calls, milliseconds.
    pub min_revive_offers_interval_ms: u64,
    /// The executor binary launched on agents.
    pub executor: String,
    /// The Mesos user tasks run as.
    pub mesos_user: String,
    /// The HTTP port.
    pub http_port: u16,
}

/// What every handler can reach.
#[derive(Clone)]
pub struct ApiState {
    /// The latest scheduler state.
    pub snapshot: watch::Receiver<Arc<Snapshot>>,
    /// The daemon's command queue.
    pub commands: mpsc::Sender<CommandRequest>,
    /// Static server facts.
    pub info: Arc<ServerInfo>,
    /// The clock (for delays in responses).
    pub clock: Arc<dyn Clock>,
}

impl ApiState {
    fn snap(&self) -> Arc<Snapshot> {
        self.snapshot.borrow().clone()
    }

    async fn run(&self, command: Command) -> Result<Deployed, ApiError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(CommandRequest { command, reply })
            .await
            .map_err(|_| ApiError::Unavailable("the scheduler is shutting down".into()))?;
        let result = rx
            .await
            .map_err(|_| ApiError::Unavailable("the scheduler dropped the request".into()))?;
        result.map_err(|e| match e {
            CommandError::AppExists(id) => {
                ApiError::Conflict(format!("An app with id [{id}] already exists."))
            }
            CommandError::AppNotFound(id) => {
                ApiError::NotFound(format!("App '{id}' does not exist"))
            }
            CommandError::Invalid(reason) => {
                ApiError::InvalidObject(vec![FieldError::new("/", reason)])
            }
            CommandError::Unavailable(reason) => {
                ApiError::Unavailable(format!("The change could not be stored: {reason}"))
            }
        })
    }
}

/// The API's routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/ping", get(|| async { ([(header::CONTENT_TYPE, "text/plain")], "pong") }))
        .route("/v2/info", get(info))
        .route("/v2/leader", get(leader))
        .route("/v2/apps", get(list_apps).post(create_app))
        .route("/v2/apps/{*id}", get(get_app).put(put_app).delete(delete_app))
        .route("/v2/tasks", get(list_tasks))
        .route("/v2/deployments", get(list_deployments))
        .fallback(|| async { ApiError::NotFound("Not found".into()) })
        .with_state(state)
}

fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Err(ApiError::MalformedJson("Please specify data in JSON format".into()));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::MalformedJson(e.to_string()))
}

fn app_id(raw: &str) -> Result<AppId, ApiError> {
    AppId::parse(raw).map_err(|e| ApiError::InvalidJson(vec![FieldError::new("/id", e.message())]))
}

fn deployment_response(status: StatusCode, d: &Deployed, location: Option<String>) -> Response {
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&d.deployment_id) {
        headers.insert("Marathon-Deployment-Id", v);
    }
    if let Some(loc) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(header::LOCATION, loc);
    }
    let body = json!({"deploymentId": d.deployment_id, "version": format_version(d.version)});
    (status, headers, Json(body)).into_response()
}

#[derive(Debug, Deserialize, Default)]
struct AppsQuery {
    id: Option<String>,
    cmd: Option<String>,
    embed: Option<String>,
}

/// `embed` may repeat (`?embed=a&embed=b`); axum's `Query` keeps the last,
/// so the raw query string is scanned.
fn embeds(raw: Option<&str>) -> Vec<String> {
    raw.unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.strip_prefix("embed="))
        .map(|v| v.replace("%2E", ".").replace("%2e", "."))
        .collect()
}

async fn info(State(s): State<ApiState>) -> Json<Value> {
    Json(render::info(&s.info, &s.snap()))
}

async fn leader(State(s): State<ApiState>) -> Json<Value> {
    Json(json!({"leader": s.info.leader}))
}

async fn list_apps(
    State(s): State<ApiState>,
    Query(q): Query<AppsQuery>,
    uri: axum::http::Uri,
) -> Json<Value> {
    let snap = s.snap();
    let embed = embeds(uri.query());
    let _ = q.embed;
    let now = s.clock.now();
    let apps: Vec<Value> = snap
        .apps
        .values()
        .filter(|a| q.id.as_deref().is_none_or(|f| a.id.as_str().contains(f)))
        .filter(|a| {
            q.cmd.as_deref().is_none_or(|f| match &a.command {
                Some(sched_core::app::CommandSpec::Shell(c)) => c.contains(f),
                Some(sched_core::app::CommandSpec::Argv(v)) => v.join(" ").contains(f),
                None => false,
            })
        })
        .map(|a| {
            render::app_info(
                a,
                &snap,
                embed.iter().any(|e| e == "apps.tasks"),
                embed.iter().any(|e| e == "apps.lastTaskFailure"),
                now,
            )
        })
        .collect();
    Json(json!({"apps": apps}))
}

async fn create_app(State(s): State<ApiState>, body: Bytes) -> Result<Response, ApiError> {
    let value = parse_body(&body)?;
    let spec = app_json::parse_app(&value, None)?;
    let id = spec.id.clone();
    let d = s.run(Command::CreateApp(spec)).await?;
    let app = d.app.as_ref().ok_or_else(|| ApiError::Unavailable("no app in the reply".into()))?;
    let mut body = render::app_info(app, &s.snap(), false, false, s.clock.now());
    if let Some(obj) = body.as_object_mut() {
        obj.remove("tasks");
        obj.insert("deployments".into(), json!([{"id": d.deployment_id}]));
    }
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&d.deployment_id) {
        headers.insert("Marathon-Deployment-Id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("/v2/apps{id}")) {
        headers.insert(header::LOCATION, v);
    }
    Ok((StatusCode::CREATED, headers, Json(body)).into_response())
}

/// Splits `/v2/apps/{id}/tasks` style paths into the app id and the
/// sub-resource.
fn split_sub(raw: &str) -> (&str, Option<&str>) {
    for sub in ["tasks", "versions", "restart"] {
        if let Some(id) = raw.strip_suffix(sub).and_then(|r| r.strip_suffix('/')) {
            return (id, Some(sub));
        }
    }
    (raw, None)
}

async fn get_app(
    State(s): State<ApiState>,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (raw_id, sub) = split_sub(&raw);
    let id = app_id(raw_id)?;
    let snap = s.snap();
    let app = snap
        .apps
        .get(&id)
        .ok_or_else(|| ApiError::NotFound(format!("App '{id}' does not exist")))?;
    match sub {
        None => Ok(Json(json!({"app": render::app_info(app, &snap, true, true, s.clock.now())}))),
        Some("tasks") => Ok(Json(json!({"tasks": render::app_tasks(&snap, &id)}))),
        Some("versions") => Ok(Json(json!({"versions": [format_version(app.version)]}))),
        Some(_) => Err(ApiError::Status(StatusCode::METHOD_NOT_ALLOWED, "Use POST".into())),
    }
}

async fn put_app(
    State(s): State<ApiState>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = app_id(&raw)?;
    let value = parse_body(&body)?;
    let Some(patch) = value.as_object() else {
        return Err(ApiError::InvalidJson(vec![FieldError::new("/", "error.expected.jsobject")]));
    };
    let existing = s.snap().apps.get(&id).cloned();
    let merged = match &existing {
        Some(app) => app_json::merge(app, patch),
        None => value.clone(),
    };
    let spec = app_json::parse_app(&merged, Some(id.as_str()))?;
    let d = s.run(Command::PutApp(spec)).await?;
    if d.created {
        Ok(deployment_response(StatusCode::CREATED, &d, Some(format!("/v2/apps{id}"))))
    } else {
        Ok(deployment_response(StatusCode::OK, &d, None))
    }
}

async fn delete_app(
    State(s): State<ApiState>,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let id = app_id(&raw)?;
    let d = s.run(Command::DeleteApp(id)).await?;
    Ok(deployment_response(StatusCode::OK, &d, None))
}

#[derive(Debug, Deserialize, Default)]
struct TasksQuery {
    status: Option<String>,
}

async fn list_tasks(
    State(s): State<ApiState>,
    Query(q): Query<TasksQuery>,
) -> Result<Json<Value>, ApiError> {
    let filter = match q.status.as_deref() {
        None => None,
        Some("running") => Some(sched_core::instance::TaskState::Running),
        Some("staging") => Some(sched_core::instance::TaskState::Staging),
        Some(other) => {
            return Err(ApiError::InvalidJson(vec![FieldError::new(
                "/status",
                format!("unknown status `{other}` (expected running or staging)"),
            )]));
        }
    };
    let snap = s.snap();
    let tasks = render::all_tasks(&snap, filter);
    Ok(Json(json!({"tasks": tasks})))
}

async fn list_deployments(State(s): State<ApiState>) -> Json<Value> {
    Json(render::deployments(&s.snap()))
}

#[cfg(test)]
mod tests;
