//! The gRPC API against in-process servers on 127.0.0.1, served as `drover
//! serve` serves it: the REST router with the gRPC service on one listener
//! (`sched_api::serve`). Behind it runs the real scheduling core in a
//! stand-in for the daemon's main loop that commits every persist to a real
//! store — memory, an embedded database, or etcd (`DROVER_TEST_ETCD`) —
//! before answering; Mesos is played by the test (offers, status updates).
//! The gRPC service reads the store through a handle of its own, as in the
//! daemon.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use drover_time::{Clock, ManualClock, Timestamp};
use sched_api::{
    ApiState, CommandRequest, EventBus, LeaderState, Leadership, LimitsConfig, ServerInfo,
};
use sched_core::app::Resources;
use sched_core::instance::TaskState;
use sched_core::offer::Offer;
use sched_core::ports::PortRanges;
use sched_core::scheduler::{CoreConfig, Effect, Scheduler, Snapshot, StatusUpdate, Write};
use sched_grpc::proto::v1 as pb;
use sched_grpc::proto::v1::change::Kind;
use sched_grpc::proto::v1::drover_client::DroverClient;
use sched_grpc::{DroverService, LEADER_METADATA, WatchCloser};
use sched_store::{EmbeddedConfig, EmbeddedStore, EtcdStore, EtcdStoreConfig, MemStore, Store};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tonic::transport::Channel;
use tonic::{Code, Streaming};
use tower::ServiceExt;

const T0: Timestamp = Timestamp::from_secs(1_700_000_000);

/// What the test plays as Mesos.
#[derive(Debug)]
enum Input {
    Subscribed,
    Offers(Vec<Offer>),
    Status(StatusUpdate),
}

/// One in-process Drover: the REST API and the gRPC service on `addr`.
struct Server {
    addr: SocketAddr,
    api: ApiState,
    inputs: mpsc::Sender<Input>,
    closer: WatchCloser,
}

/// The daemon's main loop, reduced: the real core; each persist committed
/// to `store` (in order, one at a time) before the core hears it
/// succeeded; the snapshot published before a command is answered; Mesos
/// calls dropped.
async fn spawn_daemon<S: Store>(
    store: S,
    events: EventBus,
    clock: ManualClock,
) -> (watch::Receiver<Arc<Snapshot>>, mpsc::Sender<CommandRequest>, mpsc::Sender<Input>) {
    let stored = store.load().await.expect("loading the state");
    let (cmd_tx, mut cmd_rx) = mpsc::channel::<CommandRequest>(16);
    let (in_tx, mut in_rx) = mpsc::channel::<Input>(16);
    let mut core = Scheduler::new(CoreConfig::default(), stored, 1, clock.now());
    let (snap_tx, snap_rx) = watch::channel(Arc::new(core.snapshot()));
    tokio::spawn(async move {
        let mut replies = BTreeMap::new();
        let mut next = 1;
        loop {
            tokio::select! {
                Some(req) = cmd_rx.recv() => {
                    replies.insert(next, req.reply);
                    core.handle_command(next, req.command, clock.now());
                    next += 1;
                }
                Some(input) = in_rx.recv() => match input {
                    Input::Subscribed => core.handle_subscribed("fw-1".into(), clock.now()),
                    Input::Offers(offers) => core.handle_offers(offers, clock.now()),
                    Input::Status(status) => core.handle_status(status, clock.now()),
                },
                else => return,
            }
            while let Some(effect) = core.poll_effect() {
                let now = clock.now();
                match effect {
                    Effect::Persist { token, writes } => {
                        let outcome = store.commit(&writes).await.map_err(|e| e.to_string());
                        core.handle_persisted(token, outcome, now);
                    }
                    Effect::Reply { request, result } => {
                        snap_tx.send_replace(Arc::new(core.snapshot()));
                        if let Some(tx) = replies.remove(&request) {
                            let _ = tx.send(result);
                        }
                    }
                    Effect::Notify(n) => events.publish_notification(&n, now),
                    Effect::Call(_) | Effect::Reload { .. } => {}
                }
            }
            snap_tx.send_replace(Arc::new(core.snapshot()));
        }
    });
    (snap_rx, cmd_tx, in_tx)
}

fn server_info() -> ServerInfo {
    ServerInfo {
        leader: "127.0.0.1:8080".into(),
        master: "http://127.0.0.1:5050".into(),
        framework_name: "drover".into(),
        failover_timeout_secs: 604_800.0,
        decline_offer_duration_ms: 120_000,
        reconciliation_interval_ms: 600_000,
        min_revive_offers_interval_ms: 5000,
        executor: "/usr/bin/drover-executor".into(),
        mesos_user: "root".into(),
        http_port: 8080,
    }
}

/// Starts a Drover whose scheduler writes through `daemon_store` and whose
/// gRPC service reads through `reader` (another handle on the same store);
/// `standby` makes it a standby that knows that state.
async fn start<S: Store>(daemon_store: S, reader: S, standby: Option<LeaderState>) -> Server {
    start_limited(daemon_store, reader, standby, LimitsConfig::default()).await
}

/// [`start`] with these limits.
async fn start_limited<S: Store>(
    daemon_store: S,
    reader: S,
    standby: Option<LeaderState>,
    limits: LimitsConfig,
) -> Server {
    let clock = ManualClock::new(T0);
    let events = EventBus::default();
    let (snap_rx, cmd_tx, inputs) = spawn_daemon(daemon_store, events.clone(), clock.clone()).await;
    let mut api = ApiState::new(snap_rx, cmd_tx, Arc::new(server_info()), Arc::new(clock), events)
        .with_limits(limits);
    if let Some(state) = standby {
        let (_, leader_rx) = watch::channel(state);
        let (abdicate, _) = mpsc::channel(1);
        api = api.with_leadership(Leadership::new(leader_rx, abdicate, "127.0.0.1:8081".into()));
    }
    let (service, closer) = DroverService::new(api.clone(), Arc::new(reader));
    let router = sched_grpc::with_grpc(sched_api::router(api.clone()), service);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(sched_api::serve(listener, router, std::future::pending()));
    Server { addr, api, inputs, closer }
}

async fn mem_server() -> (Server, MemStore) {
    let store = MemStore::new();
    let server = start(store.handle(), store.handle(), None).await;
    (server, store)
}

impl Server {
    async fn client(&self) -> DroverClient<Channel> {
        DroverClient::connect(format!("http://{}", self.addr)).await.expect("connecting")
    }

    /// Waits (up to 10 s) until the published snapshot satisfies `cond`.
    async fn until(&self, what: &str, cond: impl Fn(&Snapshot) -> bool) {
        for _ in 0..1000 {
            if cond(&self.api.snapshot.borrow()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting until {what}");
    }

    /// The ids of the active tasks, in instance order.
    fn active_tasks(&self) -> Vec<String> {
        let snap = self.api.snapshot.borrow().clone();
        snap.instances.values().filter_map(|i| i.active_task()).map(|t| t.id.to_string()).collect()
    }

    async fn send(&self, input: Input) {
        self.inputs.send(input).await.expect("the daemon loop runs");
    }

    /// Subscribes and offers room for many small tasks; waits until `n`
    /// tasks were launched.
    async fn launch(&self, n: usize) -> Vec<String> {
        self.send(Input::Subscribed).await;
        self.send(Input::Offers(vec![offer("o1")])).await;
        self.until("the tasks are launched", |s| {
            s.instances.values().filter_map(|i| i.active_task()).count() >= n
        })
        .await;
        self.active_tasks()
    }

    async fn status(&self, task_id: &str, state: TaskState, healthy: Option<bool>) {
        self.send(Input::Status(StatusUpdate {
            task_id: task_id.to_owned(),
            state,
            agent_id: Some("agent-1".into()),
            message: None,
            reason: None,
            uuid: None,
            healthy,
        }))
        .await;
    }
}

/// An offer of agent-1 with room for many small tasks.
fn offer(id: &str) -> Offer {
    Offer::new(id, "agent-1", "10.0.0.7").with_resources(
        "*",
        Resources { cpus: 16.0, mem: 16384.0, disk: 1000.0, gpus: 0 },
        PortRanges::new([(31000, 32000)]),
    )
}

fn app_json(id: &str, instances: u32) -> String {
    json!({"id": id, "cmd": "sleep 600", "instances": instances, "mem": 64, "cpus": 0.5,
           "labels": {"tier": "web"}})
    .to_string()
}

/// A job far in the future, so it never fires by itself.
fn job_json(name: &str) -> String {
    json!({"name": name, "command": "true", "schedule": "R/2030-01-01T00:00:00Z/P1D"}).to_string()
}

async fn create(c: &mut DroverClient<Channel>, id: &str, instances: u32) -> pb::CreateAppResponse {
    let req = pb::CreateAppRequest { app_json: app_json(id, instances), force: false };
    c.create_app(req).await.expect("creating the app").into_inner()
}

async fn state(c: &mut DroverClient<Channel>) -> pb::GetStateResponse {
    c.get_state(pb::GetStateRequest {}).await.expect("GetState").into_inner()
}

async fn watch_from(c: &mut DroverClient<Channel>, from: i64) -> Streaming<pb::WatchResponse> {
    c.watch(pb::WatchRequest { from_revision: from }).await.expect("Watch").into_inner()
}

/// The next watch message (10 s at most).
async fn next(stream: &mut Streaming<pb::WatchResponse>) -> pb::WatchResponse {
    match tokio::time::timeout(Duration::from_secs(10), stream.message()).await {
        Ok(Ok(Some(m))) => m,
        Ok(Ok(None)) => panic!("the watch ended"),
        Ok(Err(status)) => panic!("the watch failed: {status:?}"),
        Err(_) => panic!("no watch message for 10 s"),
    }
}

/// Messages up to and including the first for which `done(all so far)`.
async fn read_until(
    stream: &mut Streaming<pb::WatchResponse>,
    done: impl Fn(&[pb::WatchResponse]) -> bool,
) -> Vec<pb::WatchResponse> {
    let mut out = Vec::new();
    while out.is_empty() || !done(&out) {
        out.push(next(stream).await);
    }
    out
}

fn kinds(messages: &[pb::WatchResponse]) -> impl Iterator<Item = &Kind> {
    messages.iter().flat_map(|m| &m.changes).filter_map(|c| c.kind.as_ref())
}

/// How many task changes in `messages` report a running task.
fn running_updates(messages: &[pb::WatchResponse]) -> usize {
    kinds(messages)
        .filter(|k| matches!(k, Kind::Task(t) if t.state == pb::TaskState::Running as i32))
        .count()
}

fn has_job(messages: &[pb::WatchResponse], name: &str) -> bool {
    kinds(messages).any(|k| matches!(k, Kind::Job(j) if j.name == name))
}

/// What a client keeps: `GetState`'s records, by key, kept current by
/// applying watch changes.
#[derive(Debug, Default, PartialEq)]
struct Model {
    apps: BTreeMap<String, pb::App>,
    tasks: BTreeMap<String, pb::Task>,
    deployments: BTreeMap<String, pb::Deployment>,
    jobs: BTreeMap<String, pb::Job>,
    job_statuses: BTreeMap<String, pb::JobStatus>,
    runs: BTreeMap<(String, String), pb::JobRun>,
}

impl Model {
    fn of(s: &pb::GetStateResponse) -> Model {
        Model {
            apps: s.apps.iter().map(|a| (a.id.clone(), a.clone())).collect(),
            tasks: s.tasks.iter().map(|t| (t.instance_id.clone(), t.clone())).collect(),
            deployments: s.deployments.iter().map(|d| (d.id.clone(), d.clone())).collect(),
            jobs: s.jobs.iter().map(|j| (j.name.clone(), j.clone())).collect(),
            job_statuses: s.job_statuses.iter().map(|j| (j.job.clone(), j.clone())).collect(),
            runs: s.runs.iter().map(|r| ((r.job.clone(), r.id.clone()), r.clone())).collect(),
        }
    }

    fn apply(&mut self, m: &pb::WatchResponse) {
        for kind in m.changes.iter().filter_map(|c| c.kind.clone()) {
            match kind {
                Kind::App(a) => {
                    self.apps.insert(a.id.clone(), a);
                }
                Kind::AppDeleted(id) => {
                    self.apps.remove(&id);
                }
                Kind::Task(t) => {
                    self.tasks.insert(t.instance_id.clone(), t);
                }
                Kind::TaskDeleted(id) => {
                    self.tasks.remove(&id);
                }
                Kind::Deployment(d) => {
                    self.deployments.insert(d.id.clone(), d);
                }
                Kind::DeploymentDeleted(id) => {
                    self.deployments.remove(&id);
                }
                Kind::Job(j) => {
                    self.jobs.insert(j.name.clone(), j);
                }
                Kind::JobDeleted(name) => {
                    self.jobs.remove(&name);
                }
                Kind::JobStatus(s) => {
                    self.job_statuses.insert(s.job.clone(), s);
                }
                Kind::JobStatusDeleted(name) => {
                    self.job_statuses.remove(&name);
                }
                Kind::Run(r) => {
                    self.runs.insert((r.job.clone(), r.id.clone()), r);
                }
                Kind::RunDeleted(k) => {
                    self.runs.remove(&(k.job, k.id));
                }
            }
        }
    }
}

/// The acceptance scenario, on any store: a deployment runs (app and
/// deployment written, instances created, launched and running, the
/// deployment deleted) while watches read; one watch is cut mid-deployment
/// and resumed after the last revision it saw, missing changes made while
/// it was away. Its messages, joined, must equal an uninterrupted watch
/// from the same start: every change exactly once, in revision order. And
/// `GetState` at a revision R plus `Watch(R + 1)` must rebuild what a later
/// `GetState` reads.
async fn a_cut_watch_resumes_exactly_once<S: Store>(daemon_store: S, reader: S) {
    let server = start(daemon_store, reader, None).await;
    let mut c = server.client().await;
    let start_rev = state(&mut c).await.revision;
    let mut whole = watch_from(&mut c, start_rev + 1).await;
    let mut cut = watch_from(&mut c, start_rev + 1).await;

    create(&mut c, "/web", 4).await;
    let tasks = server.launch(4).await;
    assert_eq!(tasks.len(), 4);
    // Two tasks run. The cut watch reads until it saw them, and is dropped:
    // the deployment still waits for two.
    server.status(&tasks[0], TaskState::Running, None).await;
    server.status(&tasks[1], TaskState::Running, None).await;
    let seen = read_until(&mut cut, |m| running_updates(m) >= 2).await;
    drop(cut);
    assert!(
        !kinds(&seen).any(|k| matches!(k, Kind::DeploymentDeleted(_))),
        "the cut must come before the deployment ends"
    );
    let mid = state(&mut c).await;
    assert_eq!(mid.deployments.len(), 1, "mid-deployment");
    // While no watch is connected, a third task runs.
    server.status(&tasks[2], TaskState::Running, None).await;
    server
        .until("three tasks run", |s| {
            s.instances
                .values()
                .filter_map(|i| i.active_task())
                .filter(|t| t.state == TaskState::Running)
                .count()
                == 3
        })
        .await;
    // Resume after the last revision seen, then the deployment finishes.
    let last_seen = seen.last().map(|m| m.revision).unwrap();
    let mut resumed = watch_from(&mut c, last_seen + 1).await;
    server.status(&tasks[3], TaskState::Running, None).await;
    server.until("the deployment finished", |s| s.deployments.is_empty()).await;
    // A last change marks the end of the story.
    let sentinel = pb::PutJobRequest { job_json: job_json("sentinel") };
    c.put_job(sentinel).await.expect("PutJob");
    let rest = read_until(&mut resumed, |m| has_job(m, "sentinel")).await;
    let reference = read_until(&mut whole, |m| has_job(m, "sentinel")).await;

    assert!(seen.len() >= 3, "the cut came after several changes: {seen:?}");
    assert_eq!(running_updates(&rest), 2, "the change made while away, and the last");
    let mut joined = seen.clone();
    joined.extend(rest);
    assert_eq!(joined, reference, "cut + resumed must equal the uninterrupted watch");
    assert!(reference.windows(2).all(|w| w[0].revision < w[1].revision), "in revision order");
    assert!(reference[0].revision > start_rev);
    // It was the whole deployment.
    let k: Vec<&Kind> = kinds(&reference).collect();
    assert!(k.iter().any(|k| matches!(k, Kind::App(a) if a.id == "/web" && a.instances == 4)));
    assert!(k.iter().any(|k| matches!(k, Kind::Deployment(d) if d.app_ids == ["/web"])));
    assert!(k.iter().any(|k| matches!(k, Kind::DeploymentDeleted(_))));
    let launched = k
        .iter()
        .filter(|k| matches!(k, Kind::Task(t) if t.state == pb::TaskState::Staging as i32))
        .count();
    assert_eq!(launched, 4);
    assert_eq!(running_updates(&reference), 4);

    // GetState at R, then Watch(R + 1), rebuilds a fresh GetState.
    let mut from_mid = watch_from(&mut c, mid.revision + 1).await;
    let tail = read_until(&mut from_mid, |m| has_job(m, "sentinel")).await;
    let mut model = Model::of(&mid);
    tail.iter().for_each(|m| model.apply(m));
    let fresh = state(&mut c).await;
    // (etcd's revision counts the other tests' writes too.)
    assert!(fresh.revision >= tail.last().unwrap().revision);
    assert_eq!(model, Model::of(&fresh));
    assert_eq!(fresh.apps.len(), 1);
    assert_eq!(fresh.tasks.len(), 4);
    assert!(fresh.tasks.iter().all(|t| t.state == pb::TaskState::Running as i32));
    assert!(fresh.deployments.is_empty());
}

#[tokio::test]
async fn a_cut_watch_resumes_exactly_once_on_the_memory_store() {
    let store = MemStore::new();
    a_cut_watch_resumes_exactly_once(store.handle(), store.handle()).await;
}

#[tokio::test]
async fn a_cut_watch_resumes_exactly_once_on_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(EmbeddedConfig::in_dir(dir.path())).unwrap();
    a_cut_watch_resumes_exactly_once(store.handle(), store.handle()).await;
}

#[tokio::test]
async fn a_cut_watch_resumes_exactly_once_on_etcd() {
    let client = sched_store::testing::etcd_client().await;
    let config = EtcdStoreConfig {
        prefix: sched_store::testing::unique_prefix("grpc-watch"),
        ..EtcdStoreConfig::default()
    };
    let store = EtcdStore::new(client, config);
    a_cut_watch_resumes_exactly_once(store.handle(), store.handle()).await;
}

#[tokio::test]
async fn get_state_answers_what_is_stored_and_the_revision_it_was_read_at() {
    let (server, store) = mem_server().await;
    let mut c = server.client().await;
    let empty = state(&mut c).await;
    assert_eq!(empty.apps, []);
    create(&mut c, "/web", 2).await;
    let job = json!({"name": "nightly", "command": "backup.sh", "schedule": "0 3 * * *",
                     "scheduleTimeZone": "Europe/Berlin"});
    c.put_job(pb::PutJobRequest { job_json: job.to_string() }).await.unwrap();
    let run = pb::RunJobRequest { name: "nightly".into(), arguments: vec!["--full".into()] };
    c.run_job(run).await.unwrap();

    let got = state(&mut c).await;
    let stored = store.snapshot().await.unwrap();
    assert_eq!(got.revision, stored.revision);
    assert!(got.revision > empty.revision);
    let app = &got.apps[0];
    assert_eq!((app.id.as_str(), app.instances, app.cpus, app.mem), ("/web", 2, 0.5, 64.0));
    assert_eq!((app.cmd.as_str(), app.labels["tier"].as_str()), ("sleep 600", "web"));
    assert_eq!(app.version_ms, T0.as_millis());
    assert_eq!(app.status, None, "GetState carries records only");
    let definition: Value = serde_json::from_str(&app.app_json).unwrap();
    assert_eq!((&definition["id"], &definition["instances"]), (&json!("/web"), &json!(2)));
    let web: Vec<&pb::Task> = got.tasks.iter().filter(|t| t.app_id == "/web").collect();
    assert_eq!(web.len(), 2);
    assert!(web.iter().all(|t| t.state == pb::TaskState::NotLaunched as i32 && t.id.is_empty()));
    assert!(web.iter().all(|t| t.goal == pb::InstanceGoal::Running as i32));
    let d = &got.deployments[0];
    assert_eq!(
        (d.app_ids.as_slice(), d.current_step, d.steps.len()),
        (&["/web".to_owned()][..], 1, 1)
    );
    let action = &d.steps[0].actions[0];
    assert_eq!(action.kind, pb::DeploymentActionKind::StartApplication as i32);
    let job = &got.jobs[0];
    assert_eq!((job.name.as_str(), job.schedule.as_str()), ("nightly", "0 3 * * *"));
    assert_eq!(job.schedule_time_zone, "Europe/Berlin");
    assert_eq!((job.status.as_ref(), job.next_run_at_ms), (None, None));
    let run = &got.runs[0];
    assert_eq!((run.job.as_str(), run.status), ("nightly", pb::RunStatus::Queued as i32));
    let manual =
        pb::run_trigger::Kind::Manual(pb::run_trigger::Manual { arguments: vec!["--full".into()] });
    assert_eq!(run.trigger.as_ref().and_then(|t| t.kind.clone()), Some(manual));
    assert_eq!(got.deployments.len(), stored.state.deployments.len());
    assert_eq!(got.tasks.len(), stored.state.instances.len());
}

#[tokio::test]
async fn reads_show_the_live_view_with_counts_status_and_next_runs() {
    let (server, _store) = mem_server().await;
    let mut c = server.client().await;
    create(&mut c, "/web", 3).await;
    create(&mut c, "/db", 0).await;
    let tasks = server.launch(3).await;
    server.status(&tasks[0], TaskState::Running, Some(true)).await;
    server.status(&tasks[1], TaskState::Running, Some(false)).await;
    server
        .until("two tasks run", |s| {
            s.instances
                .values()
                .filter_map(|i| i.active_task())
                .filter(|t| t.started_at.is_some())
                .count()
                == 2
        })
        .await;

    let apps = c.list_apps(pb::ListAppsRequest {}).await.unwrap().into_inner().apps;
    let ids: Vec<&str> = apps.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["/db", "/web"]);
    let web = c.get_app(pb::GetAppRequest { app_id: "/web".into() }).await.unwrap().into_inner();
    let status = web.app.unwrap().status.unwrap();
    assert_eq!((status.tasks_staged, status.tasks_running), (1, 2));
    assert_eq!((status.tasks_healthy, status.tasks_unhealthy), (1, 1));
    assert_eq!(status.deployment_ids.len(), 1);

    let err = c.get_app(pb::GetAppRequest { app_id: "/nope".into() }).await.unwrap_err();
    assert_eq!((err.code(), err.message()), (Code::NotFound, "App '/nope' does not exist"));
    let err = c.get_app(pb::GetAppRequest { app_id: "/Bad".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("Invalid JSON: /id: "), "{}", err.message());

    let all = c.list_tasks(pb::ListTasksRequest::default()).await.unwrap().into_inner().tasks;
    assert_eq!(all.len(), 3);
    let web_tasks =
        c.list_tasks(pb::ListTasksRequest { app_id: "/web".into() }).await.unwrap().into_inner();
    let running = web_tasks.tasks.iter().find(|t| t.id == tasks[0]).unwrap();
    assert_eq!(running.state, pb::TaskState::Running as i32);
    assert_eq!((running.host.as_str(), running.agent_id.as_str()), ("10.0.0.7", "agent-1"));
    assert!(running.health.as_ref().is_some_and(|h| h.alive));
    assert!(running.started_at_ms.is_some() && running.staged_at_ms.is_some());
    let none = c.list_tasks(pb::ListTasksRequest { app_id: "/db".into() }).await.unwrap();
    assert_eq!(none.into_inner().tasks, []);
    let err = c.list_tasks(pb::ListTasksRequest { app_id: "/nope".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    let deployments =
        c.list_deployments(pb::ListDeploymentsRequest {}).await.unwrap().into_inner().deployments;
    assert_eq!(deployments.len(), 1);
    assert_eq!(deployments[0].app_ids, ["/web"]);

    c.put_job(pb::PutJobRequest { job_json: job_json("etl") }).await.unwrap();
    let jobs = c.list_jobs(pb::ListJobsRequest {}).await.unwrap().into_inner().jobs;
    assert_eq!(jobs.len(), 1);
    let etl = c.get_job(pb::GetJobRequest { name: "etl".into() }).await.unwrap().into_inner();
    let etl = etl.job.unwrap();
    assert_eq!(etl.next_run_at_ms, Some(1_893_456_000_000), "2030-01-01T00:00:00Z");
    assert_eq!(etl.status.unwrap().success_count, 0);
    c.mark_job_success(pb::MarkJobSuccessRequest { name: "etl".into() }).await.unwrap();
    let etl = c.get_job(pb::GetJobRequest { name: "etl".into() }).await.unwrap().into_inner();
    let status = etl.job.unwrap().status.unwrap();
    assert_eq!((status.success_count, status.last_success_ms), (1, Some(T0.as_millis())));
    let err = c.get_job(pb::GetJobRequest { name: "nope".into() }).await.unwrap_err();
    assert_eq!((err.code(), err.message()), (Code::NotFound, "Job 'nope' does not exist"));

    c.run_job(pb::RunJobRequest { name: "etl".into(), arguments: vec![] }).await.unwrap();
    let runs = c.list_runs(pb::ListRunsRequest { job: "etl".into() }).await.unwrap().into_inner();
    assert_eq!(runs.runs.len(), 1);
    assert_eq!(runs.runs[0].job, "etl");
    let err = c.list_runs(pb::ListRunsRequest { job: "nope".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn mutations_go_through_the_rest_command_layer() {
    let (server, _store) = mem_server().await;
    let mut c = server.client().await;
    let created = create(&mut c, "/web", 1).await;
    let app = created.app.unwrap();
    assert_eq!((app.id.as_str(), app.instances), ("/web", 1));
    let first = created.deployment.unwrap();
    assert_eq!(app.status.unwrap().deployment_ids, std::slice::from_ref(&first.deployment_id));
    assert_eq!(first.version_ms, T0.as_millis());

    let again = c.create_app(pb::CreateAppRequest { app_json: app_json("/web", 2), force: false });
    let err = again.await.unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (Code::AlreadyExists, "An app with id [/web] already exists.")
    );

    // Without Mesos the creation never finishes: its deployment locks the app.
    let scale = pb::ScaleAppRequest { app_id: "/web".into(), instances: 3, force: false };
    let err = c.scale_app(scale.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let locked_by = err.metadata().get(sched_grpc::DEPLOYMENTS_METADATA).unwrap();
    assert_eq!(locked_by.to_str().unwrap(), first.deployment_id);
    let scaled = c.scale_app(pb::ScaleAppRequest { force: true, ..scale }).await.unwrap();
    assert!(scaled.into_inner().deployment.is_some());
    server.until("the app has 3 instances", |s| s.apps.values().any(|a| a.instances == 3)).await;
    let err = c
        .scale_app(pb::ScaleAppRequest { app_id: "/nope".into(), instances: 1, force: true })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // A partial update keeps the other fields; a full one replaces them.
    let update = pb::UpdateAppRequest {
        app_id: "/web".into(),
        app_json: r#"{"cmd": "sleep 700"}"#.into(),
        force: true,
        partial: None,
    };
    let updated = c.update_app(update).await.unwrap().into_inner();
    assert!(!updated.created);
    let web = c.get_app(pb::GetAppRequest { app_id: "/web".into() }).await.unwrap().into_inner();
    let web = web.app.unwrap();
    assert_eq!((web.cmd.as_str(), web.instances, web.mem), ("sleep 700", 3, 64.0));
    let fresh = pb::UpdateAppRequest {
        app_id: String::new(),
        app_json: r#"{"id": "/fresh", "cmd": "sleep 1"}"#.into(),
        force: false,
        partial: Some(false),
    };
    assert!(c.update_app(fresh).await.unwrap().into_inner().created);
    let no_id = pb::UpdateAppRequest { app_json: r#"{"cmd": "x"}"#.into(), ..Default::default() };
    let err = c.update_app(no_id).await.unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (Code::InvalidArgument, "Invalid JSON: /id: error.path.missing")
    );

    let restart = c.restart_app(pb::RestartAppRequest { app_id: "/web".into(), force: true });
    assert!(restart.await.unwrap().into_inner().deployment.is_some());

    let kill =
        pb::KillTasksRequest { task_ids: vec!["x".into()], scale: true, wipe: true, force: false };
    let err = c.kill_tasks(kill).await.unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (Code::InvalidArgument, "Object is not valid: /: scale and wipe are mutually exclusive")
    );
    let unknown =
        pb::KillTasksRequest { task_ids: vec!["web.nope._app.1".into()], ..Default::default() };
    assert_eq!(c.kill_tasks(unknown).await.unwrap_err().code(), Code::NotFound);

    let deployments = c.list_deployments(pb::ListDeploymentsRequest {}).await.unwrap().into_inner();
    let id = deployments.deployments[0].id.clone();
    let cancel = pb::CancelDeploymentRequest { deployment_id: id, force: true };
    assert_eq!(c.cancel_deployment(cancel).await.unwrap().into_inner().rollback, None);
    let cancel = pb::CancelDeploymentRequest { deployment_id: "nope".into(), force: false };
    assert_eq!(c.cancel_deployment(cancel).await.unwrap_err().code(), Code::NotFound);

    let deleted = c.delete_app(pb::DeleteAppRequest { app_id: "/fresh".into(), force: None });
    assert!(deleted.await.unwrap().into_inner().deployment.is_some());
    server.until("/fresh is gone", |s| s.apps.len() == 1).await;

    // Jobs.
    c.put_job(pb::PutJobRequest { job_json: job_json("etl") }).await.unwrap();
    let bad =
        pb::PutJobRequest { job_json: json!({"name": "bad job", "command": "x"}).to_string() };
    let err = c.put_job(bad).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("name"), "{}", err.message());
    let bad = pb::PutJobRequest { job_json: "{".into() };
    let err = c.put_job(bad).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("the body is not valid JSON"), "{}", err.message());
    c.run_job(pb::RunJobRequest { name: "etl".into(), arguments: vec!["a".into()] }).await.unwrap();
    server.until("a run is queued", |s| s.runs.values().any(|r| !r.is_empty())).await;
    c.kill_job(pb::KillJobRequest { name: "etl".into() }).await.unwrap();
    c.delete_job(pb::DeleteJobRequest { name: "etl".into() }).await.unwrap();
    server.until("the job is gone", |s| s.jobs.is_empty()).await;
    let err =
        c.run_job(pb::RunJobRequest { name: "etl".into(), arguments: vec![] }).await.unwrap_err();
    assert_eq!((err.code(), err.message()), (Code::NotFound, "Job 'etl' does not exist"));
    let err = c.kill_job(pb::KillJobRequest { name: "no/such".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

/// The REST API's answer to `method uri body`, in process.
async fn rest(s: &ApiState, method: &str, uri: &str, body: &str) -> Value {
    let request = axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_owned()))
        .unwrap();
    let response = sched_api::router(s.clone()).oneshot(request).await.unwrap();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn invalid_app_json_is_invalid_argument_with_the_rest_message() {
    let (server, _store) = mem_server().await;
    let mut c = server.client().await;
    let cases = [
        r#"{"id":"/Bad","cmd":"x"}"#,
        r#"{"id":"/ok","cmd":"x","cpus":-1}"#,
        r#"{"id":"/ok","cmd":"x","args":["y"]}"#,
        r#"{"id":"/ok/tasks","cmd":"x"}"#,
        "[1]",
    ];
    for body in cases {
        let expected = rest(&server.api, "POST", "/v2/apps", body).await;
        let err = c
            .create_app(pb::CreateAppRequest { app_json: body.into(), force: false })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{body}");
        let details: Vec<String> = expected["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                let errors: Vec<&str> =
                    d["errors"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect();
                format!("{}: {}", d["path"].as_str().unwrap(), errors.join(", "))
            })
            .collect();
        let message = format!("{}: {}", expected["message"].as_str().unwrap(), details.join("; "));
        assert_eq!(err.message(), message, "{body}");
    }
    for body in ["", "{"] {
        let err = c
            .create_app(pb::CreateAppRequest { app_json: body.into(), force: false })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().starts_with("Invalid JSON: "), "{}", err.message());
    }
    assert_eq!(state(&mut c).await.apps, [], "nothing was created");
}

#[tokio::test]
async fn history_the_store_no_longer_keeps_is_out_of_range() {
    let (server, store) = mem_server().await;
    let mut c = server.client().await;
    // The in-process stores keep the last 1024 batches.
    let writer = store.handle();
    for i in 0..1100 {
        writer.commit(&[Write::FrameworkId(format!("fw-{i}"))]).await.unwrap();
    }
    // The in-process stores refuse at once; etcd's refusal comes as the
    // stream's first item. Either way the client gets the status.
    let err = match c.watch(pb::WatchRequest { from_revision: 1 }).await {
        Err(status) => status,
        Ok(stream) => match stream.into_inner().message().await {
            Err(status) => status,
            Ok(m) => panic!("expected OUT_OF_RANGE, got {m:?}"),
        },
    };
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");
    assert!(err.message().contains("call GetState"), "{}", err.message());
    // What GetState says is kept.
    let now = state(&mut c).await;
    let mut fresh = watch_from(&mut c, now.revision + 1).await;
    create(&mut c, "/web", 0).await;
    let m = next(&mut fresh).await;
    assert_eq!(m.revision, now.revision + 1);
    let err = c.watch(pb::WatchRequest { from_revision: -1 }).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn standbys_serve_state_and_watch_and_name_the_leader_for_the_rest() {
    let store = MemStore::new();
    let leader = LeaderState::Standby { leader: Some("10.1.2.3:8080".into()) };
    let server = start(store.handle(), store.handle(), Some(leader)).await;
    let mut c = server.client().await;
    let at = state(&mut c).await.revision;
    let mut feed = watch_from(&mut c, at + 1).await;
    // Another instance (the leader) writes.
    let app =
        sched_api::app_json::parse_app(&serde_json::from_str(&app_json("/web", 1)).unwrap(), None)
            .unwrap();
    store.handle().commit(&[Write::PutApp(app)]).await.unwrap();
    let m = next(&mut feed).await;
    assert!(matches!(m.changes[0].kind, Some(Kind::App(ref a)) if a.id == "/web"));
    assert_eq!(state(&mut c).await.apps.len(), 1);

    let create = c.create_app(pb::CreateAppRequest { app_json: app_json("/x", 1), force: false });
    let err = create.await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains("10.1.2.3:8080"), "{}", err.message());
    assert_eq!(err.metadata().get(LEADER_METADATA).unwrap(), "10.1.2.3:8080");
    let err = c.list_apps(pb::ListAppsRequest {}).await.unwrap_err();
    assert_eq!(err.metadata().get(LEADER_METADATA).unwrap(), "10.1.2.3:8080");
    let err = c.put_job(pb::PutJobRequest { job_json: job_json("etl") }).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
}

#[tokio::test]
async fn closing_ends_open_watches_and_rest_keeps_sharing_the_port() {
    let (server, _store) = mem_server().await;
    let mut c = server.client().await;
    let mut open = watch_from(&mut c, 0).await;
    create(&mut c, "/web", 0).await;
    assert!(!next(&mut open).await.changes.is_empty(), "watch from 0 sees the next change");
    server.closer.close();
    let err = loop {
        match tokio::time::timeout(Duration::from_secs(10), open.message()).await {
            Ok(Ok(Some(_))) => continue, // sent before the close
            Ok(Err(status)) => break status,
            other => panic!("the watch must end with a status: {other:?}"),
        }
    };
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains("resume"), "{}", err.message());
    // REST (HTTP/1.1) on the same port.
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"GET /v2/apps/web HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""id":"/web""#), "{answer}");
}

#[tokio::test]
async fn watches_past_the_limit_are_resource_exhausted_until_one_ends() {
    let store = MemStore::new();
    let limits = LimitsConfig { max_event_streams_per_principal: 2, ..LimitsConfig::default() };
    let server = start_limited(store.handle(), store.handle(), None, limits).await;
    let mut c = server.client().await;
    let first = watch_from(&mut c, 0).await;
    let mut second = watch_from(&mut c, 0).await;
    let err = c.watch(pb::WatchRequest { from_revision: 0 }).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(err.message().contains("at most 2 per principal"), "{}", err.message());
    // Other calls are not limited by it, and the open watches still work.
    create(&mut c, "/web", 0).await;
    assert!(!next(&mut second).await.changes.is_empty());
    // Once a watch ends (the client dropped it) its slot is free again.
    drop(first);
    let mut third = None;
    for _ in 0..500 {
        match c.watch(pb::WatchRequest { from_revision: 0 }).await {
            Ok(stream) => {
                third = Some(stream.into_inner());
                break;
            }
            Err(status) => assert_eq!(status.code(), Code::ResourceExhausted),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut third = third.expect("a slot is given back when a watch ends");
    create(&mut c, "/api", 0).await;
    assert!(!next(&mut third).await.changes.is_empty());
}

#[tokio::test]
async fn calls_past_the_rate_are_resource_exhausted() {
    let store = MemStore::new();
    let limits =
        LimitsConfig { rate_limit_per_second: 1, rate_limit_burst: 2, ..LimitsConfig::default() };
    let server = start_limited(store.handle(), store.handle(), None, limits).await;
    let mut c = server.client().await;
    for _ in 0..2 {
        c.list_apps(pb::ListAppsRequest {}).await.expect("within the burst");
    }
    // The clock stands still: no token comes back.
    let err = c.list_apps(pb::ListAppsRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(err.message().contains("at most 1 per second"), "{}", err.message());
    // REST shares the bucket.
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"GET /v2/apps HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await.unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(answer.to_lowercase().contains("retry-after: 1"), "{answer}");
}

#[tokio::test]
async fn json_nested_past_the_limit_is_invalid_argument() {
    let store = MemStore::new();
    let limits = LimitsConfig { max_json_depth: 4, ..LimitsConfig::default() };
    let server = start_limited(store.handle(), store.handle(), None, limits).await;
    let mut c = server.client().await;
    let deep = r#"{"id":"/web","cmd":"x","labels":{"a":[[["x"]]]}}"#;
    let err = c
        .create_app(pb::CreateAppRequest { app_json: deep.into(), force: false })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert_eq!(err.message(), "JSON nested deeper than 4 levels");
    let job =
        r#"{"name":"j","command":"true","schedule":"R/2030-01-01T00:00:00Z/P1D","x":[[[[1]]]]}"#;
    let err = c.put_job(pb::PutJobRequest { job_json: job.into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert_eq!(err.message(), "JSON nested deeper than 4 levels");
    // Within the limit, the same app is created.
    let fits = r#"{"id":"/web","cmd":"x","labels":{"a":"[[[[[["}}"#;
    c.create_app(pb::CreateAppRequest { app_json: fits.into(), force: false })
        .await
        .expect("within the depth limit");
}
