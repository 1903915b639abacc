//! Drover's REST API.
//!
//! Marathon-compatible `/v2` endpoints and Chronos-compatible
//! `/v1/scheduler` endpoints ([`job_json`], `routes::jobs`) over two narrow
//! channels to the daemon: reads are served from the latest published scheduler
//! [`Snapshot`] (never blocking the scheduler or the store), and writes
//! become [`Command`]s sent to the daemon's main loop, answered once their
//! effects are persisted. No handler touches the store or Mesos.
//!
//! Around them: [`events`] (the event bus and the `/v2/events` stream),
//! [`metrics`] (`/metrics`, read from the snapshot at scrape time, plus
//! HTTP latencies) and [`conn`] (serving with connections a handler can
//! cut, so slow event-stream clients can be dropped).

pub mod app_json;
pub mod conn;
pub mod error;
pub mod events;
pub mod job_json;
pub mod leader;
pub mod metrics;
mod render;
mod routes;
mod ui;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use drover_time::Clock;
use sched_core::format_version;
use sched_core::scheduler::{Command, CommandError, Deployed, Outcome, Snapshot};
use serde_json::json;
use tokio::sync::{mpsc, oneshot, watch};

pub use conn::serve;
pub use error::{ApiError, ChronosError, FieldError};
pub use events::EventBus;
pub use leader::{LeaderState, Leadership};
pub use metrics::Metrics;
pub use routes::parse_body;

/// A command on its way to the scheduler, with the channel for its answer.
#[derive(Debug)]
pub struct CommandRequest {
    /// The command.
    pub command: Command,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Result<Outcome, CommandError>>,
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
    /// The clock (for delays in responses and event timestamps).
    pub clock: Arc<dyn Clock>,
    /// Where events for `/v2/events` are published.
    pub events: EventBus,
    /// The HTTP metrics and the `/metrics` registry.
    pub metrics: Arc<Metrics>,
    /// Who leads; standbys forward requests to the leader.
    pub leadership: Leadership,
    /// Rendered app definitions, reused while apps do not change.
    specs: Arc<render::SpecCache>,
}

impl ApiState {
    /// The state for one API server; its metrics read `snapshot` and `events`.
    pub fn new(
        snapshot: watch::Receiver<Arc<Snapshot>>,
        commands: mpsc::Sender<CommandRequest>,
        info: Arc<ServerInfo>,
        clock: Arc<dyn Clock>,
        events: EventBus,
    ) -> Self {
        let metrics = Arc::new(Metrics::new(snapshot.clone(), events.clone()));
        let specs = Arc::default();
        let leadership = Leadership::always(info.leader.clone());
        ApiState { snapshot, commands, info, clock, events, metrics, leadership, specs }
    }

    /// Replaces the always-leader default with the daemon's view.
    pub fn with_leadership(mut self, leadership: Leadership) -> Self {
        self.leadership = leadership;
        self
    }

    fn snap(&self) -> Arc<Snapshot> {
        self.snapshot.borrow().clone()
    }

    /// Runs a command in the daemon and waits until it is stored: the one
    /// way every API's writes take (REST and `sched-grpc`). Refusals are
    /// mapped to the REST API's errors.
    pub async fn run(&self, command: Command) -> Result<Outcome, ApiError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(CommandRequest { command, reply })
            .await
            .map_err(|_| ApiError::Unavailable("the scheduler is shutting down".into()))?;
        let result = rx
            .await
            .map_err(|_| ApiError::Unavailable("the scheduler dropped the request".into()))?;
        result.map_err(command_error)
    }

    /// The spec `PUT /v2/apps/{id}` stores for `body`: merged into the
    /// existing app when `partial` (`partialUpdate`, REST's default), the
    /// body alone otherwise; `{"version": v}` alone is that kept version
    /// (a rollback). Validated as the REST API validates it.
    pub fn app_update(
        &self,
        id: &sched_core::ids::AppId,
        body: &serde_json::Value,
        partial: bool,
    ) -> Result<sched_core::app::AppSpec, ApiError> {
        routes::apps::updated_spec(self, id, routes::apps::object(body)?, partial)
    }

    /// A job posted as Chronos' job JSON (`body`), parsed and validated as
    /// `POST /v1/scheduler/iso8601` and `/v1/scheduler/dependency` do.
    pub fn parse_job(&self, body: &[u8]) -> Result<sched_core::job::JobSpec, ChronosError> {
        routes::jobs::posted_job(self, body)
    }

    /// Runs a command that must start a deployment.
    async fn deploy(&self, command: Command) -> Result<Deployed, ApiError> {
        match self.run(command).await? {
            Outcome::Deployed(d) => Ok(d),
            other => Err(ApiError::Unavailable(format!("unexpected outcome {other:?}"))),
        }
    }
}

/// The command that kills `task_ids` (relaunched, unless `scale` shrinks
/// the apps or `wipe` forgets the instances), checked as the REST API
/// checks it.
pub fn kill_tasks_command(
    task_ids: Vec<sched_core::ids::TaskId>,
    scale: bool,
    wipe: bool,
    force: bool,
) -> Result<Command, ApiError> {
    if scale && wipe {
        return Err(ApiError::InvalidObject(vec![FieldError::new(
            "/",
            "scale and wipe are mutually exclusive",
        )]));
    }
    Ok(Command::KillTasks { task_ids, scale, wipe, force })
}

fn command_error(e: CommandError) -> ApiError {
    match e {
        CommandError::AppExists(id) => {
            ApiError::Conflict(format!("An app with id [{id}] already exists."))
        }
        CommandError::AppNotFound(id) => ApiError::NotFound(format!("App '{id}' does not exist")),
        CommandError::Locked { deployments } => ApiError::Locked(deployments),
        CommandError::DeploymentNotFound(id) => {
            ApiError::NotFound(format!("DeploymentPlan {id} does not exist"))
        }
        CommandError::TasksNotFound(ids) => ApiError::NotFound(format!(
            "Task '{}' does not exist",
            ids.first().cloned().unwrap_or_default()
        )),
        CommandError::JobNotFound(name) => {
            ApiError::NotFound(format!("Job '{name}' does not exist"))
        }
        CommandError::Invalid(reason) => {
            ApiError::InvalidObject(vec![FieldError::new("/", reason)])
        }
        CommandError::Unavailable(reason) => {
            ApiError::Unavailable(format!("The change could not be stored: {reason}"))
        }
    }
}

/// `{"deploymentId", "version"}` with the `Marathon-Deployment-Id` header.
fn deployment_response(status: StatusCode, d: &Deployed, location: Option<String>) -> Response {
    let mut headers = deployment_headers(&d.deployment_id);
    if let Some(loc) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(header::LOCATION, loc);
    }
    let body = json!({"deploymentId": d.deployment_id, "version": format_version(d.version)});
    (status, headers, axum::Json(body)).into_response()
}

fn deployment_headers(id: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(id) {
        headers.insert("Marathon-Deployment-Id", v);
    }
    headers
}

/// The API's routes, each measured by the latency middleware.
pub fn router(state: ApiState) -> Router {
    use routes::{apps, deployments, groups, jobs, misc, tasks};
    Router::new()
        .route("/ping", get(misc::ping))
        .route("/metrics", get(metrics::scrape))
        .route("/metrics/prometheus", get(metrics::scrape))
        .route("/v2/events", get(events::stream))
        .route("/v2/info", get(misc::info))
        .route("/v2/leader", get(leader::get_leader).delete(leader::abdicate))
        .route(
            "/v2/apps",
            get(apps::list).post(apps::create).put(apps::put_many).patch(apps::patch_many),
        )
        .route(
            "/v2/apps/{*path}",
            get(apps::get_path)
                .put(apps::put_path)
                .patch(apps::patch_path)
                .delete(apps::delete_path)
                .post(apps::post_path),
        )
        .route("/v2/tasks", get(tasks::list))
        .route("/v2/tasks/delete", post(tasks::delete_many))
        .route("/v2/deployments", get(deployments::list))
        .route("/v2/deployments/{id}", delete(deployments::cancel))
        .route("/v2/queue", get(deployments::queue))
        .route("/v2/queue/{*path}", delete(deployments::reset_delay))
        .route(
            "/v2/groups",
            get(groups::get_root)
                .post(groups::post_root)
                .put(groups::put_root)
                .delete(groups::delete_root),
        )
        .route(
            "/v2/groups/{*path}",
            get(groups::get_path)
                .post(groups::post_path)
                .put(groups::put_path)
                .delete(groups::delete_path),
        )
        // Chronos 3.x (`routes::jobs`).
        .route("/v1/scheduler/jobs", get(jobs::list))
        .route("/v1/scheduler/jobs/summary", get(jobs::summary))
        .route("/v1/scheduler/jobs/search", get(jobs::search))
        .route(
            "/v1/scheduler/job/{name}",
            get(jobs::get_job).put(jobs::run_job).delete(jobs::delete_job),
        )
        .route("/v1/scheduler/job/success/{name}", put(jobs::mark_success))
        .route("/v1/scheduler/job/stat/{name}", get(jobs::stat))
        .route("/v1/scheduler/job/{name}/runs", get(jobs::runs))
        .route("/v1/scheduler/job/{name}/task/{task}/progress", post(jobs::progress))
        .route("/v1/scheduler/iso8601", post(jobs::put_scheduled).put(jobs::put_scheduled))
        .route("/v1/scheduler/dependency", post(jobs::put_dependent).put(jobs::put_dependent))
        .route("/v1/scheduler/task/kill/{name}", delete(jobs::kill))
        .route("/v1/scheduler/graph/dot", get(jobs::graph_dot))
        .route("/v1/scheduler/graph/csv", get(jobs::graph_csv))
        .route("/v1/scheduler/stats/{percentile}", get(jobs::stats))
        .route("/v1/scheduler/leader", get(jobs::leader))
        .fallback(|| async { ApiError::NotFound("Not found".into()) })
        .layer(axum::middleware::from_fn_with_state(state.clone(), leader::forward_to_leader))
        // The web UI's files are served by every instance, never forwarded.
        .merge(ui::routes())
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .with_state(state)
}

#[cfg(test)]
mod tests;
