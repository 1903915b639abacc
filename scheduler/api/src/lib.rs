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
pub mod auth;
pub mod conn;
pub mod error;
pub mod events;
pub mod job_json;
pub mod leader;
pub mod limits;
pub mod metrics;
mod openapi;
mod render;
mod routes;
pub mod tls;
mod ui;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use drover_time::Clock;
use sched_core::format_version;
use sched_core::scheduler::{Command, CommandError, Deployed, Outcome, Snapshot};
use serde_json::json;
use tokio::sync::{mpsc, oneshot, watch};

pub use conn::{serve, serve_tls};
pub use error::{ApiError, ChronosError, FieldError};
pub use events::EventBus;
pub use leader::{LeaderState, Leadership};
pub use limits::{Limits, LimitsConfig};
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
    /// Request limits and the state they keep (`limits`).
    pub limits: Arc<Limits>,
    /// Who may do what (open unless [`ApiState::with_auth`]).
    pub auth: auth::Auth,
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
        let limits = Arc::default();
        let auth = auth::Auth::open();
        ApiState {
            snapshot,
            commands,
            info,
            clock,
            events,
            metrics,
            leadership,
            limits,
            auth,
            specs,
        }
    }

    /// Replaces the open default with the daemon's authentication settings.
    pub fn with_auth(mut self, auth: auth::Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Replaces the default limits.
    pub fn with_limits(mut self, config: LimitsConfig) -> Self {
        self.limits = Arc::new(Limits::new(config));
        self
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
    /// mapped to the REST API's errors. The request's principal (see
    /// [`auth::current`]) must be allowed to run it: this is the one
    /// authorization check of every write.
    pub async fn run(&self, command: Command) -> Result<Outcome, ApiError> {
        self.auth.authorize_command(auth::current().as_ref(), &command)?;
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
    // One table mounts the routes and documents them (`/openapi.json`).
    routes::table::table()
        .into_iter()
        .fold(Router::new(), |router, e| router.route(e.route, e.handler))
        .fallback(|| async { ApiError::NotFound("Not found".into()) })
        .layer(axum::middleware::from_fn_with_state(state.clone(), leader::forward_to_leader))
        // The web UI's files are served by every instance, never forwarded.
        .merge(ui::routes())
        // Rate, body size and JSON depth (413/429/400 in the API's shapes,
        // never axum's own plain-text 413).
        .layer(axum::middleware::from_fn_with_state(state.clone(), limits::enforce))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .with_state(state)
}

#[cfg(test)]
mod tests;
