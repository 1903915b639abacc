//! The `drover.v1.Drover` service.
//!
//! - `GetState` reads the store (state and revision in one consistent
//!   read) and `Watch` follows its change feed: both work on every
//!   instance, standbys included.
//! - The other reads come from the leader's published snapshot, as the
//!   REST API's do.
//! - Mutations parse and validate with `sched-api`'s parsers and become the
//!   same `Command`s the REST handlers send ([`ApiState::run`]), answered
//!   once stored.
//!
//! Everything but `GetState` and `Watch` needs the leader; a standby
//! answers UNAVAILABLE naming it ([`crate::LEADER_METADATA`]).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::ConnectInfo;
use futures_util::{Stream, StreamExt as _};
use sched_api::conn::Peer;
use sched_api::limits::{Caller, StreamKind};
use sched_api::{ApiError, ApiState, ChronosError, FieldError};
use sched_core::app::AppSpec;
use sched_core::ids::{AppId, TaskId};
use sched_core::job::JobName;
use sched_core::scheduler::{Command, Deployed, Outcome, Snapshot};
use sched_store::{Revision, Store, StoreError, Watch};
use serde_json::json;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::convert;
use crate::proto::v1 as pb;
use crate::proto::v1::drover_server::Drover;
use crate::status;

/// The gRPC service over the REST API's state and a store handle.
///
/// `api` is the same [`ApiState`] the REST router serves (its snapshot,
/// command queue, leadership and event bus), so one auth layer can later
/// wrap both. `store` must be a handle of its own (`MemStore::handle`,
/// `EmbeddedStore::handle`, `EtcdStore::handle`), never the scheduler's:
/// a load refreshes the revisions a handle's commits compare against.
pub struct DroverService<S> {
    api: ApiState,
    store: Arc<S>,
    closed: watch::Receiver<bool>,
}

impl<S> std::fmt::Debug for DroverService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DroverService").finish_non_exhaustive()
    }
}

/// Ends every open `Watch` stream (with UNAVAILABLE: resume elsewhere or
/// later) when [`close`](WatchCloser::close)d or dropped, so a server can
/// stop gracefully: a watch never ends by itself.
#[derive(Debug)]
pub struct WatchCloser(watch::Sender<bool>);

impl WatchCloser {
    /// Ends every open watch stream, and those opened later at once.
    pub fn close(&self) {
        self.0.send_replace(true);
    }
}

impl<S: Store> DroverService<S> {
    /// The service, and what ends its watch streams.
    pub fn new(api: ApiState, store: Arc<S>) -> (Self, WatchCloser) {
        let (tx, closed) = watch::channel(false);
        (DroverService { api, store, closed }, WatchCloser(tx))
    }

    /// The REST API's state this service shares.
    pub(crate) fn api(&self) -> &ApiState {
        &self.api
    }

    /// INVALID_ARGUMENT for JSON nested deeper than the REST API allows
    /// (`--max-json-depth`), checked before it is parsed.
    fn check_depth(&self, json: &str) -> Result<(), Status> {
        let max = self.api.limits.config().max_json_depth;
        sched_api::limits::check_json_depth(json.as_bytes(), max)
            .map_err(|e| Status::invalid_argument(e.to_string()))
    }

    /// The leader's live view; UNAVAILABLE (naming the leader) on a standby.
    fn live(&self) -> Result<Arc<Snapshot>, Status> {
        status::require_leader(&self.api.leadership.state.borrow())?;
        Ok(self.api.snapshot.borrow().clone())
    }

    fn require_leader(&self) -> Result<(), Status> {
        status::require_leader(&self.api.leadership.state.borrow())
    }

    async fn run(&self, command: Command) -> Result<Outcome, Status> {
        self.api.run(command).await.map_err(status::api)
    }

    /// Runs a command that must start a deployment.
    async fn deploy(&self, command: Command) -> Result<Deployed, Status> {
        match self.run(command).await? {
            Outcome::Deployed(d) => Ok(d),
            other => Err(Status::internal(format!("unexpected outcome {other:?}"))),
        }
    }

    /// Publishes `api_post_event` for apps changed through this API, as the
    /// REST API does (`uri` is the gRPC method's path).
    fn post_events(&self, peer: Option<SocketAddr>, method: &str, apps: &[AppSpec]) {
        let ip = peer.map(|a| a.ip().to_string()).unwrap_or_default();
        let uri = format!("/drover.v1.Drover/{method}");
        let now = self.api.clock.now();
        for app in apps {
            self.api.events.publish_api_post(&ip, &uri, app, now);
        }
    }
}

/// The peer of a request served through `sched_api::serve`.
fn peer<T>(request: &Request<T>) -> Option<SocketAddr> {
    request.extensions().get::<ConnectInfo<Peer>>().map(|c| c.0.addr)
}

fn app_id(raw: &str) -> Result<AppId, Status> {
    AppId::parse(raw)
        .map_err(|e| status::api(ApiError::InvalidJson(vec![FieldError::new("/id", e.message())])))
}

/// A job name; one that cannot exist names no job (as in the REST API).
fn job_name(raw: &str) -> Result<JobName, Status> {
    JobName::parse(raw).map_err(|_| status::chronos(ChronosError::no_job(raw)))
}

fn app_not_found(id: &AppId) -> Status {
    status::api(ApiError::NotFound(format!("App '{id}' does not exist")))
}

/// The stream of one `Watch` call.
type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchResponse, Status>> + Send>>;

/// The store's change feed from `from` as API messages: one message per
/// committed batch (never split, so a client that resumes after the last
/// revision it received misses nothing and sees nothing twice), batches
/// with no change the API carries skipped. Ends with an error status: the
/// store's, or UNAVAILABLE when `closed`.
fn changes(watch: Watch, from: Revision, closed: watch::Receiver<bool>) -> WatchStream {
    let stream = futures_util::stream::unfold(Some((watch, closed)), move |state| async move {
        let (mut watch, mut closed) = state?;
        loop {
            let next = tokio::select! {
                biased;
                _ = closed.wait_for(|c| *c) => {
                    let stopping = Status::unavailable(
                        "the server is stopping: resume from the last received revision + 1",
                    );
                    return Some((Err(stopping), None));
                }
                next = watch.next() => next,
            };
            let batch = match next {
                Ok(batch) => batch,
                Err(e) => {
                    if !matches!(e, StoreError::WatchLagged) {
                        tracing::debug!(error = %e, "A gRPC watch ended.");
                    }
                    return Some((Err(status::store(&e)), None));
                }
            };
            // A store replays from `from`; never hand out anything older.
            if batch.revision < from {
                continue;
            }
            let changes: Vec<pb::Change> =
                batch.changes.iter().filter_map(convert::change).collect();
            if changes.is_empty() {
                continue;
            }
            let message = pb::WatchResponse { revision: batch.revision, changes };
            return Some((Ok(message), Some((watch, closed))));
        }
    });
    Box::pin(stream)
}

#[tonic::async_trait]
impl<S: Store> Drover for DroverService<S> {
    async fn get_state(
        &self,
        _request: Request<pb::GetStateRequest>,
    ) -> Result<Response<pb::GetStateResponse>, Status> {
        let loaded = self.store.snapshot().await.map_err(|e| status::store(&e))?;
        // Thousands of records take a while to convert: off the workers.
        let state =
            tokio::task::spawn_blocking(move || convert::state(&loaded.state, loaded.revision))
                .await
                .map_err(|e| Status::internal(format!("converting the state failed: {e}")))?;
        Ok(Response::new(state))
    }

    async fn list_apps(
        &self,
        _request: Request<pb::ListAppsRequest>,
    ) -> Result<Response<pb::ListAppsResponse>, Status> {
        let snap = self.live()?;
        let apps = snap.apps.values().map(|a| convert::app_with_status(a, &snap)).collect();
        Ok(Response::new(pb::ListAppsResponse { apps }))
    }

    async fn get_app(
        &self,
        request: Request<pb::GetAppRequest>,
    ) -> Result<Response<pb::GetAppResponse>, Status> {
        let snap = self.live()?;
        let id = app_id(&request.into_inner().app_id)?;
        let app = snap.apps.get(&id).ok_or_else(|| app_not_found(&id))?;
        Ok(Response::new(pb::GetAppResponse { app: Some(convert::app_with_status(app, &snap)) }))
    }

    async fn list_tasks(
        &self,
        request: Request<pb::ListTasksRequest>,
    ) -> Result<Response<pb::ListTasksResponse>, Status> {
        let snap = self.live()?;
        let filter = request.into_inner().app_id;
        let tasks = if filter.is_empty() {
            snap.instances.values().map(convert::task).collect()
        } else {
            let id = app_id(&filter)?;
            let tasks: Vec<pb::Task> = snap.app_instances(&id).map(convert::task).collect();
            if tasks.is_empty() && !snap.apps.contains_key(&id) {
                return Err(app_not_found(&id));
            }
            tasks
        };
        Ok(Response::new(pb::ListTasksResponse { tasks }))
    }

    async fn list_deployments(
        &self,
        _request: Request<pb::ListDeploymentsRequest>,
    ) -> Result<Response<pb::ListDeploymentsResponse>, Status> {
        let snap = self.live()?;
        let deployments = snap.deployments.values().map(convert::deployment).collect();
        Ok(Response::new(pb::ListDeploymentsResponse { deployments }))
    }

    async fn list_jobs(
        &self,
        _request: Request<pb::ListJobsRequest>,
    ) -> Result<Response<pb::ListJobsResponse>, Status> {
        let snap = self.live()?;
        let jobs = snap
            .jobs
            .values()
            .map(|j| convert::job_with_status(j, snap.job_states.get(&j.name)))
            .collect();
        Ok(Response::new(pb::ListJobsResponse { jobs }))
    }

    async fn get_job(
        &self,
        request: Request<pb::GetJobRequest>,
    ) -> Result<Response<pb::GetJobResponse>, Status> {
        let snap = self.live()?;
        let raw = request.into_inner().name;
        let name = job_name(&raw)?;
        let job =
            snap.jobs.get(&name).ok_or_else(|| status::chronos(ChronosError::no_job(&raw)))?;
        let job = convert::job_with_status(job, snap.job_states.get(&name));
        Ok(Response::new(pb::GetJobResponse { job: Some(job) }))
    }

    async fn list_runs(
        &self,
        request: Request<pb::ListRunsRequest>,
    ) -> Result<Response<pb::ListRunsResponse>, Status> {
        let snap = self.live()?;
        let raw = request.into_inner().job;
        let name = job_name(&raw)?;
        if !snap.jobs.contains_key(&name) {
            return Err(status::chronos(ChronosError::no_job(&raw)));
        }
        let runs = snap.job_runs(&name).into_iter().map(convert::run).collect();
        Ok(Response::new(pb::ListRunsResponse { runs }))
    }

    async fn create_app(
        &self,
        request: Request<pb::CreateAppRequest>,
    ) -> Result<Response<pb::CreateAppResponse>, Status> {
        self.require_leader()?;
        let peer = peer(&request);
        let req = request.into_inner();
        self.check_depth(&req.app_json)?;
        let value = sched_api::parse_body(req.app_json.as_bytes()).map_err(status::api)?;
        let spec = sched_api::app_json::parse_app(&value, None).map_err(status::api)?;
        let d = self.deploy(Command::CreateApp { spec: Box::new(spec), force: req.force }).await?;
        self.post_events(peer, "CreateApp", &d.apps);
        let snap = self.api.snapshot.borrow().clone();
        let app = d.apps.first().map(|a| convert::app_with_status(a, &snap));
        Ok(Response::new(pb::CreateAppResponse { app, deployment: Some(convert::deployed(&d)) }))
    }

    async fn update_app(
        &self,
        request: Request<pb::UpdateAppRequest>,
    ) -> Result<Response<pb::UpdateAppResponse>, Status> {
        self.require_leader()?;
        let peer = peer(&request);
        let req = request.into_inner();
        self.check_depth(&req.app_json)?;
        let value = sched_api::parse_body(req.app_json.as_bytes()).map_err(status::api)?;
        let raw = if req.app_id.is_empty() {
            value.get("id").and_then(|v| v.as_str()).map(str::to_owned).ok_or_else(|| {
                status::api(ApiError::InvalidJson(vec![FieldError::new(
                    "/id",
                    "error.path.missing",
                )]))
            })?
        } else {
            req.app_id
        };
        let id = app_id(&raw)?;
        let spec =
            self.api.app_update(&id, &value, req.partial.unwrap_or(true)).map_err(status::api)?;
        let d = self.deploy(Command::PutApps { specs: vec![spec], force: req.force }).await?;
        self.post_events(peer, "UpdateApp", &d.apps);
        Ok(Response::new(pb::UpdateAppResponse {
            deployment: Some(convert::deployed(&d)),
            created: d.created,
        }))
    }

    async fn delete_app(
        &self,
        request: Request<pb::DeleteAppRequest>,
    ) -> Result<Response<pb::DeleteAppResponse>, Status> {
        self.require_leader()?;
        let req = request.into_inner();
        let id = app_id(&req.app_id)?;
        // Marathon deletes with force by default.
        let force = req.force.unwrap_or(true);
        let d = self.deploy(Command::DeleteApps { ids: vec![id], force }).await?;
        Ok(Response::new(pb::DeleteAppResponse { deployment: Some(convert::deployed(&d)) }))
    }

    async fn scale_app(
        &self,
        request: Request<pb::ScaleAppRequest>,
    ) -> Result<Response<pb::ScaleAppResponse>, Status> {
        let snap = self.live()?;
        let peer = peer(&request);
        let req = request.into_inner();
        let id = app_id(&req.app_id)?;
        if !snap.apps.contains_key(&id) {
            return Err(app_not_found(&id));
        }
        // `PATCH /v2/apps/{id}` with `{"instances": n}`.
        let body = json!({"instances": req.instances});
        let spec = self.api.app_update(&id, &body, true).map_err(status::api)?;
        let d = self.deploy(Command::PutApps { specs: vec![spec], force: req.force }).await?;
        self.post_events(peer, "ScaleApp", &d.apps);
        Ok(Response::new(pb::ScaleAppResponse { deployment: Some(convert::deployed(&d)) }))
    }

    async fn restart_app(
        &self,
        request: Request<pb::RestartAppRequest>,
    ) -> Result<Response<pb::RestartAppResponse>, Status> {
        self.require_leader()?;
        let req = request.into_inner();
        let id = app_id(&req.app_id)?;
        let d = self.deploy(Command::RestartApp { id, force: req.force }).await?;
        Ok(Response::new(pb::RestartAppResponse { deployment: Some(convert::deployed(&d)) }))
    }

    async fn kill_tasks(
        &self,
        request: Request<pb::KillTasksRequest>,
    ) -> Result<Response<pb::KillTasksResponse>, Status> {
        self.require_leader()?;
        let req = request.into_inner();
        let ids = req.task_ids.into_iter().map(TaskId::from_raw).collect();
        let command = sched_api::kill_tasks_command(ids, req.scale, req.wipe, req.force)
            .map_err(status::api)?;
        let answer = match self.run(command).await? {
            Outcome::Deployed(d) => pb::KillTasksResponse {
                killed: Vec::new(),
                deployment: Some(convert::deployed(&d)),
            },
            Outcome::Killed(instances) => pb::KillTasksResponse {
                killed: instances.iter().map(convert::task).collect(),
                deployment: None,
            },
            Outcome::Done => pb::KillTasksResponse::default(),
        };
        Ok(Response::new(answer))
    }

    async fn cancel_deployment(
        &self,
        request: Request<pb::CancelDeploymentRequest>,
    ) -> Result<Response<pb::CancelDeploymentResponse>, Status> {
        self.require_leader()?;
        let req = request.into_inner();
        let command = Command::CancelDeployment { id: req.deployment_id, force: req.force };
        let rollback = match self.run(command).await? {
            Outcome::Deployed(d) => Some(convert::deployed(&d)),
            _ => None,
        };
        Ok(Response::new(pb::CancelDeploymentResponse { rollback }))
    }

    async fn put_job(
        &self,
        request: Request<pb::PutJobRequest>,
    ) -> Result<Response<pb::PutJobResponse>, Status> {
        self.require_leader()?;
        let job_json = request.into_inner().job_json;
        self.check_depth(&job_json)?;
        let job = self.api.parse_job(job_json.as_bytes()).map_err(status::chronos)?;
        self.run(Command::PutJob(Box::new(job))).await?;
        Ok(Response::new(pb::PutJobResponse {}))
    }

    async fn delete_job(
        &self,
        request: Request<pb::DeleteJobRequest>,
    ) -> Result<Response<pb::DeleteJobResponse>, Status> {
        self.require_leader()?;
        let name = job_name(&request.into_inner().name)?;
        self.run(Command::DeleteJob(name)).await?;
        Ok(Response::new(pb::DeleteJobResponse {}))
    }

    async fn run_job(
        &self,
        request: Request<pb::RunJobRequest>,
    ) -> Result<Response<pb::RunJobResponse>, Status> {
        self.require_leader()?;
        let req = request.into_inner();
        let name = job_name(&req.name)?;
        self.run(Command::RunJob { name, arguments: req.arguments }).await?;
        Ok(Response::new(pb::RunJobResponse {}))
    }

    async fn kill_job(
        &self,
        request: Request<pb::KillJobRequest>,
    ) -> Result<Response<pb::KillJobResponse>, Status> {
        self.require_leader()?;
        let name = job_name(&request.into_inner().name)?;
        self.run(Command::KillJob(name)).await?;
        Ok(Response::new(pb::KillJobResponse {}))
    }

    async fn mark_job_success(
        &self,
        request: Request<pb::MarkJobSuccessRequest>,
    ) -> Result<Response<pb::MarkJobSuccessResponse>, Status> {
        self.require_leader()?;
        let name = job_name(&request.into_inner().name)?;
        self.run(Command::MarkJobSuccess(name)).await?;
        Ok(Response::new(pb::MarkJobSuccessResponse {}))
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        // Held by the stream: the slot is given back when it is dropped.
        let caller = Caller::of(request.extensions());
        let Some(slot) = self.api.limits.open_stream(StreamKind::Watch, &caller) else {
            return Err(Status::resource_exhausted(self.api.limits.streams_message()));
        };
        let from = request.into_inner().from_revision;
        if from < 0 {
            return Err(Status::invalid_argument(format!(
                "from_revision must be 0 (the next change) or a revision, not {from}"
            )));
        }
        let watch = self.store.watch(from).await.map_err(|e| status::store(&e))?;
        let stream = changes(watch, from, self.closed.clone()).map(move |message| {
            let _held = &slot;
            message
        });
        Ok(Response::new(Box::pin(stream)))
    }
}
