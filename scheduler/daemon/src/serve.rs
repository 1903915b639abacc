//! `drover serve`: the scheduler daemon.
//!
//! The API server runs for the life of the process. The scheduler itself
//! runs in *terms*: with etcd, an instance campaigns for leadership and,
//! once elected, fences its writes with the leader key, loads the state,
//! subscribes to Mesos and runs the main loop until it loses the lease, is
//! asked to abdicate, or stops; then it tears the term down (the Mesos
//! subscription first) and campaigns again. Standbys forward the API to the
//! leader. Without etcd (embedded or in-memory store) the one instance
//! always leads.
//!
//! In a term, one main loop owns the scheduling core and consumes one
//! closed [`Event`] enum: Mesos input, user commands, persistence results
//! and the core's timer. After each event it performs the core's effects in
//! order — persists go to the store worker (one at a time, in order), calls
//! go to the Mesos driver (delivered in order), replies go back to the API —
//! and publishes a fresh snapshot for the API's readers.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use drover_protos::mesos::v1::scheduler::{Event as MesosEvent, event};
use drover_time::{Clock, SystemClock, Timestamp};
use mesos_http::scheduler::{SchedulerConfig, SchedulerHandle, SchedulerInput};
use mesos_wire::scheduler::{SCHEDULER_PATH, SubscriptionConfig};
use mesos_wire::{ContentType, Endpoint};
use sched_api::auth::Auth;
use sched_api::{ApiState, CommandRequest, EventBus, LeaderState, Leadership, ServerInfo};
use sched_core::scheduler::{
    CommandError, CoreConfig, Effect, Notification, Outcome, PersistToken, Scheduler, Snapshot,
    StoredState, Write,
};
use sched_store::{
    EmbeddedConfig, EmbeddedStore, EtcdStore, EtcdStoreConfig, Fence, MemStore, Store, StoreError,
};
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::{ApiAuth, ApiSecurity, MesosAuth, StoreConfig};
use crate::mesos_adapter::secrets::SecretSource;
use crate::mesos_adapter::{self, ExecutorSettings};

/// Everything `drover serve` needs, resolved from flags and the config file.
#[derive(Debug, Clone)]
pub(crate) struct ServeConfig {
    /// Who may use the API, and TLS.
    pub(crate) api: ApiSecurity,
    /// Where state lives.
    pub(crate) store: StoreConfig,
    /// This instance's API address for others (`host:port`).
    pub(crate) advertise: String,
    /// The Mesos master URL.
    pub(crate) master: String,
    /// Where the API listens.
    pub(crate) listen: SocketAddr,
    /// The framework name.
    pub(crate) framework_name: String,
    /// The user tasks run as.
    pub(crate) mesos_user: String,
    /// `FrameworkInfo.failover_timeout`.
    pub(crate) failover_timeout: Duration,
    /// Content type of the Mesos API.
    pub(crate) content_type: ContentType,
    /// The framework's principal and credentials (redacted in `Debug`).
    pub(crate) mesos_auth: MesosAuth,
    /// Where apps' secret values are read at launch.
    pub(crate) secrets: SecretSource,
    /// The executor binary on the agents.
    pub(crate) executor: ExecutorSettings,
    /// Core tunables.
    pub(crate) core: CoreConfig,
    /// Events an event-stream client may fall behind before it is
    /// disconnected (Marathon's `event_stream_max_outstanding_messages`).
    pub(crate) event_capacity: usize,
    /// The API's limits (request bodies, JSON depth, streams, rate).
    pub(crate) limits: sched_api::LimitsConfig,
    /// Largest RecordIO record accepted from the Mesos master.
    pub(crate) mesos_max_record_len: usize,
}

/// A store the daemon can run on: fencing applies to etcd only.
pub(crate) trait DaemonStore: Store {
    /// Fences (or unfences) every later commit with the leader key.
    fn set_fence(&self, _fence: Option<Fence>) {}

    /// Another handle on the same store, for readers (the gRPC API): their
    /// loads must not refresh the revisions the scheduler's commits
    /// compare against.
    fn reader(&self) -> Self;
}

impl DaemonStore for MemStore {
    fn reader(&self) -> Self {
        self.handle()
    }
}
impl DaemonStore for EmbeddedStore {
    fn reader(&self) -> Self {
        self.handle()
    }
}
impl DaemonStore for EtcdStore {
    fn set_fence(&self, fence: Option<Fence>) {
        EtcdStore::set_fence(self, fence);
    }

    fn reader(&self) -> Self {
        self.handle()
    }
}

/// Runs the daemon until `shutdown` resolves.
pub(crate) async fn run(
    config: ServeConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    match &config.api.auth {
        ApiAuth::Unset => anyhow::bail!(
            "the API needs authentication: give --credentials-file FILE (principals made with \
             `drover credentials add`), or --insecure-open to serve it without authentication"
        ),
        ApiAuth::Open => tracing::warn!(
            "THE API IS OPEN (--insecure-open): anyone who can reach it is an admin and can run \
             any container on the cluster."
        ),
        ApiAuth::Credentials(c) => {
            tracing::info!(principals = c.len(), "The API requires authentication.");
        }
    }
    match config.store.clone() {
        StoreConfig::Memory => {
            tracing::warn!("State is kept in memory only: it is lost when Drover stops.");
            serve(Arc::new(MemStore::new()), None, config, shutdown).await
        }
        StoreConfig::Embedded(dir) => {
            let store = EmbeddedStore::open(EmbeddedConfig::in_dir(&dir))
                .with_context(|| format!("opening the store in {}", dir.display()))?;
            serve(Arc::new(store), None, config, shutdown).await
        }
        StoreConfig::Etcd { endpoints, prefix, leader_ttl, tls, credentials } => {
            let mut etcd = etcd_api::ClientConfig::new(endpoints);
            etcd.tls = tls;
            etcd.credentials = credentials;
            let client = etcd_api::Client::connect_lazy(etcd).context("--etcd")?;
            // A wrong password stops the start; an unreachable etcd does not
            // (the client keeps trying).
            match client.authenticate().await {
                Err(e @ etcd_api::Error::AuthFailed { .. }) => {
                    return Err(e).context("checking the etcd login (--etcd-user)");
                }
                Err(e) => tracing::warn!(error = %e, "Cannot log in to etcd yet; retrying later."),
                Ok(()) => {}
            }
            let store = EtcdStore::new(
                client.clone(),
                EtcdStoreConfig { prefix, ..EtcdStoreConfig::default() },
            );
            let election = sched_store::Election::new(client, store.layout().leader());
            serve(Arc::new(store), Some((election, leader_ttl)), config, shutdown).await
        }
    }
}

/// Why a term ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TermEnd {
    /// The process stops.
    Shutdown,
    /// Leadership was lost (lease, key, etcd).
    Lost(String),
    /// `DELETE /v2/leader` asked this instance to step down.
    Abdicated,
}

/// What lives as long as the process: the API's channels.
struct Shared {
    clock: Arc<dyn Clock>,
    events: EventBus,
    snap_tx: watch::Sender<Arc<Snapshot>>,
    leader_tx: watch::Sender<LeaderState>,
}

async fn serve<S: DaemonStore>(
    store: Arc<S>,
    election: Option<(sched_store::Election, Duration)>,
    config: ServeConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // Bounded: the API waits when the scheduler is busy (backpressure).
    let (cmd_tx, mut cmd_rx) = mpsc::channel::<CommandRequest>(1024);
    let (snap_tx, snap_rx) = watch::channel(Arc::new(Snapshot::default()));
    let initial = if election.is_some() {
        LeaderState::Standby { leader: None }
    } else {
        LeaderState::Leader
    };
    let (leader_tx, leader_rx) = watch::channel(initial);
    let (abdicate_tx, mut abdicate_rx) = mpsc::channel::<()>(4);
    let events = EventBus::new(config.event_capacity);
    let api = ApiState::new(
        snap_rx,
        cmd_tx,
        Arc::new(server_info(&config)),
        clock.clone(),
        events.clone(),
    )
    .with_limits(config.limits)
    .with_leadership({
        let l = Leadership::new(leader_rx, abdicate_tx, config.advertise.clone());
        match &config.api.tls {
            Some(tls) => l.with_tls(tls.forward.clone()),
            None => l,
        }
    })
    .with_auth(match &config.api.auth {
        ApiAuth::Credentials(c) => Auth::with_credentials(c.clone(), config.api.privileged_role)
            .limit_attempts(config.limits.max_auth_attempts_per_second, clock.clone()),
        ApiAuth::Open | ApiAuth::Unset => Auth::open(),
    });
    // Drover's gRPC API, on the same port (requests by content type).
    let (grpc, grpc_watches) =
        sched_grpc::DroverService::new(api.clone(), Arc::new(store.reader()));
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    tracing::info!(
        listen = %config.listen,
        master = %config.master,
        tls = config.api.tls.is_some(),
        "Drover is serving."
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut api_stop = stop_rx.clone();
    let tls = config.api.tls.as_ref().map(|t| t.server.clone());
    let server = tokio::spawn(async move {
        let stopped = async move {
            let _ = api_stop.wait_for(|s| *s).await;
        };
        // Authentication is the outermost layer: it covers REST and gRPC.
        let auth = api.auth.clone();
        let router = sched_grpc::with_grpc(sched_api::router(api), grpc);
        let router = sched_api::auth::layer(router, auth);
        if let Err(e) = sched_api::serve_tls(listener, router, tls, stopped).await {
            tracing::error!(error = %e, "The API server failed.");
        }
    });

    let shared = Shared { clock, events: events.clone(), snap_tx, leader_tx };
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = shutdown_tx.send(true);
    });
    loop {
        if *shutdown_rx.borrow() {
            break;
        }
        // With etcd: campaign, serving as a standby meanwhile.
        let mut leadership = match &election {
            None => None,
            Some((e, ttl)) => {
                match campaign(
                    e,
                    &config.advertise,
                    *ttl,
                    &shared,
                    &mut cmd_rx,
                    shutdown_rx.clone(),
                )
                .await
                {
                    Some(l) => Some(l),
                    None => break,
                }
            }
        };
        if let Some(l) = &leadership {
            store.set_fence(Some(l.fence()));
            tracing::info!(identity = %config.advertise, "This instance leads.");
        }
        shared.leader_tx.send_replace(LeaderState::Leader);
        let lost = async {
            match leadership.as_mut() {
                Some(l) => l.lost().await,
                None => std::future::pending().await,
            }
        };
        let end = run_term(
            &store,
            &config,
            &shared,
            &mut cmd_rx,
            &mut abdicate_rx,
            shutdown_rx.clone(),
            lost,
        )
        .await;
        store.set_fence(None);
        shared.leader_tx.send_replace(LeaderState::Standby { leader: None });
        match end {
            TermEnd::Shutdown => {
                if let Some(l) = leadership {
                    let _ = l.resign().await;
                }
                break;
            }
            TermEnd::Lost(reason) => {
                tracing::warn!(%reason, "Leadership lost; the scheduler stopped and campaigns again.");
            }
            TermEnd::Abdicated => {
                tracing::info!("Leadership abdicated.");
                if let Some(l) = leadership {
                    let ttl = l.ttl();
                    let _ = l.resign().await;
                    // Let another instance win before campaigning again.
                    tokio::time::sleep(ttl.min(Duration::from_secs(5))).await;
                }
            }
        }
    }
    // End the event streams and gRPC watches, or the server would wait for
    // them forever.
    events.close();
    grpc_watches.close();
    let _ = stop_tx.send(true);
    let _ = server.await;
    tracing::info!("Drover stopped.");
    Ok(())
}

/// Campaigns until elected (`None` on shutdown), keeping the API's idea of
/// the leader fresh so standbys can forward requests.
async fn campaign(
    election: &sched_store::Election,
    identity: &str,
    ttl: Duration,
    shared: &Shared,
    cmd_rx: &mut mpsc::Receiver<CommandRequest>,
    mut shutdown: watch::Receiver<bool>,
) -> Option<sched_store::Leadership> {
    let watcher = {
        let election = election.clone();
        let leader_tx = shared.leader_tx.clone();
        let me = identity.to_owned();
        tokio::spawn(async move {
            loop {
                let leader = match election.leader().await {
                    Ok(info) => info.map(|i| i.identity).filter(|i| *i != me),
                    Err(_) => None,
                };
                leader_tx.send_if_modified(|s| {
                    let next = LeaderState::Standby { leader: leader.clone() };
                    let changed = *s != next && *s != LeaderState::Leader;
                    if changed {
                        *s = next;
                    }
                    changed
                });
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    // One campaign at a time, kept across the loop: a campaign dropped
    // half-way would leave its key to block the next one until its lease ran out.
    let campaigning = election.campaign(identity, ttl);
    tokio::pin!(campaigning);
    let result = loop {
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => break None,
            // Commands the API sent while this instance still led (or just
            // before it learnt it no longer does) are answered, not kept
            // waiting for a term that may never come.
            Some(request) = cmd_rx.recv() => {
                let _ = request.reply.send(Err(CommandError::Unavailable(
                    "this instance is no longer the leader; retry (the request will be forwarded to the new leader)".into(),
                )));
            }
            r = &mut campaigning => match r {
                Ok(l) => break Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, "Campaigning failed; retrying.");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    campaigning.set(election.campaign(identity, ttl));
                }
            },
        }
    };
    watcher.abort();
    result
}

fn server_info(config: &ServeConfig) -> ServerInfo {
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    ServerInfo {
        leader: config.advertise.clone(),
        master: config.master.clone(),
        framework_name: config.framework_name.clone(),
        failover_timeout_secs: config.failover_timeout.as_secs_f64(),
        decline_offer_duration_ms: ms(config.core.decline_refuse),
        reconciliation_interval_ms: ms(config.core.reconcile_interval),
        min_revive_offers_interval_ms: ms(config.core.min_revive_interval),
        executor: config.executor.path.clone(),
        mesos_user: config.mesos_user.clone(),
        http_port: config.listen.port(),
    }
}

/// Loads the state, retrying while the store is unreachable; `None` if the
/// term ends meanwhile.
async fn load_state<S: DaemonStore>(
    store: &S,
    ends: &mut (impl std::future::Future<Output = TermEnd> + Unpin),
) -> Result<StoredState, TermEnd> {
    loop {
        tokio::select! {
            end = &mut *ends => return Err(end),
            r = store.load() => match r {
                Ok(s) => return Ok(s),
                Err(e) => {
                    tracing::warn!(error = %e, "Cannot load the state; retrying.");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            },
        }
    }
}

/// One leadership term: load, subscribe, run the main loop until it ends.
async fn run_term<S: DaemonStore>(
    store: &Arc<S>,
    config: &ServeConfig,
    shared: &Shared,
    cmd_rx: &mut mpsc::Receiver<CommandRequest>,
    abdicate_rx: &mut mpsc::Receiver<()>,
    mut shutdown: watch::Receiver<bool>,
    lost: impl std::future::Future<Output = sched_store::LossReason>,
) -> TermEnd {
    let ends = async move {
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => TermEnd::Shutdown,
            reason = lost => TermEnd::Lost(format!("{reason:?}")),
            Some(()) = abdicate_rx.recv() => TermEnd::Abdicated,
        }
    };
    let mut ends = Box::pin(ends);
    let stored = match load_state(store.as_ref(), &mut ends).await {
        Ok(s) => s,
        Err(end) => return end,
    };
    let clock = shared.clock.clone();
    let seed = u64::try_from(clock.now().as_millis()).unwrap_or(1) ^ u64::from(std::process::id());
    let framework_id = stored.framework_id.clone();
    let core = Scheduler::new(config.core.clone(), stored, seed, clock.now());
    shared.snap_tx.send_replace(Arc::new(core.snapshot()));

    let master = match Endpoint::parse(&config.master, SCHEDULER_PATH) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "Invalid --master.");
            return TermEnd::Shutdown;
        }
    };
    let hostname = config.listen.ip().to_string();
    let webui = format!("http://{}", config.advertise);
    let framework_info = mesos_adapter::framework_info(
        &config.framework_name,
        &config.mesos_user,
        config.mesos_auth.principal.as_deref(),
        config.failover_timeout,
        &hostname,
        &webui,
    );
    let (mesos, mesos_rx, driver) = mesos_http::scheduler::spawn(
        SchedulerConfig {
            master,
            framework_info,
            framework_id,
            subscription: SubscriptionConfig {
                content_type: config.content_type,
                ..SubscriptionConfig::default()
            },
            max_record_len: config.mesos_max_record_len,
            call_timeout: Duration::from_secs(10),
            authorization: config.mesos_auth.authorization.clone(),
            seed,
        },
        clock.clone(),
    );
    let (persist_tx, persist_rx) = mpsc::channel::<PersistJob>(4096);
    let (persisted_tx, persisted_rx) = mpsc::channel(4096);
    let worker = tokio::spawn(persist_worker(store.clone(), persist_rx, persisted_tx));
    let main = MainLoop {
        core,
        core_config: config.core.clone(),
        generation: 1,
        clock,
        store: store.clone(),
        mesos,
        executor: config.executor.clone(),
        secrets: config.secrets.clone(),
        persist_tx,
        replies: BTreeMap::new(),
        next_request: 1,
        snap_tx: shared.snap_tx.clone(),
        subscribed: None,
        events: shared.events.clone(),
        reload_at: None,
    };
    let end = main.run(mesos_rx, cmd_rx, persisted_rx, ends).await;
    // The Mesos subscription goes first: a former leader must not talk to
    // the master any more.
    driver.abort();
    worker.abort();
    end
}

/// The one input type of the main loop.
#[derive(Debug)]
enum Event {
    /// Something from the Mesos driver.
    Mesos(SchedulerInput),
    /// A user command.
    Command(CommandRequest),
    /// A persist finished.
    Persisted { generation: u64, token: PersistToken, outcome: Result<(), String> },
    /// The core's timer (or the store retry) fired.
    Tick,
    /// The term ends.
    End(TermEnd),
}

type PersistJob = (u64, PersistToken, Vec<Write>);

async fn persist_worker<S: DaemonStore>(
    store: Arc<S>,
    mut jobs: mpsc::Receiver<PersistJob>,
    done: mpsc::Sender<(u64, PersistToken, Result<(), String>)>,
) {
    while let Some((generation, token, writes)) = jobs.recv().await {
        let outcome = store.commit(&writes).await.map_err(|e| describe(&e));
        if done.send((generation, token, outcome)).await.is_err() {
            return;
        }
    }
}

fn describe(e: &StoreError) -> String {
    if e.is_unavailable() { format!("the state store is unreachable ({e})") } else { e.to_string() }
}

struct MainLoop<S: DaemonStore> {
    core: Scheduler,
    core_config: CoreConfig,
    /// Bumped when the core is rebuilt; persist results of older cores are stale.
    generation: u64,
    clock: Arc<dyn Clock>,
    store: Arc<S>,
    mesos: SchedulerHandle,
    executor: ExecutorSettings,
    /// Where secret values are read when a launch becomes a TaskInfo.
    secrets: SecretSource,
    persist_tx: mpsc::Sender<PersistJob>,
    replies: BTreeMap<u64, oneshot::Sender<Result<Outcome, CommandError>>>,
    /// Where notifications go, rendered once, for event-stream clients
    /// (bounded; publishing never waits, slow readers are disconnected).
    events: EventBus,
    next_request: u64,
    snap_tx: watch::Sender<Arc<Snapshot>>,
    /// The framework id while subscribed.
    subscribed: Option<String>,
    /// A write failed: the core must be rebuilt from the store, tried again
    /// at this time while the store is unreachable. Meanwhile the current
    /// core keeps serving reads and keeps the tasks running.
    reload_at: Option<Timestamp>,
}

impl<S: DaemonStore> MainLoop<S> {
    async fn run(
        mut self,
        mut mesos_rx: mpsc::Receiver<SchedulerInput>,
        cmd_rx: &mut mpsc::Receiver<CommandRequest>,
        mut persisted_rx: mpsc::Receiver<(u64, PersistToken, Result<(), String>)>,
        mut ends: impl std::future::Future<Output = TermEnd> + Unpin,
    ) -> TermEnd {
        loop {
            let mut deadline = self.core.poll_timeout();
            if let Some(at) = self.reload_at {
                deadline = deadline.min(at);
            }
            let event = tokio::select! {
                end = &mut ends => Event::End(end),
                Some(input) = mesos_rx.recv() => Event::Mesos(input),
                Some(req) = cmd_rx.recv() => Event::Command(req),
                Some((generation, token, outcome)) = persisted_rx.recv() => Event::Persisted { generation, token, outcome },
                () = sleep_until(&*self.clock, deadline) => Event::Tick,
            };
            if let Event::End(end) = event {
                return end;
            }
            let now = self.clock.now();
            self.handle(event, now);
            if self.reload_at.is_some_and(|at| now >= at) {
                self.reload(now).await;
            }
            self.perform_effects().await;
        }
    }

    fn handle(&mut self, event: Event, now: Timestamp) {
        match event {
            Event::Mesos(SchedulerInput::Subscribed { framework_id, .. }) => {
                self.subscribed = Some(framework_id.clone());
                self.core.handle_subscribed(framework_id, now);
            }
            Event::Mesos(SchedulerInput::Disconnected { .. }) => {
                self.subscribed = None;
                self.core.handle_disconnected();
            }
            Event::Mesos(SchedulerInput::Event(e)) => self.on_mesos_event(*e, now),
            Event::Command(req) => {
                let id = self.next_request;
                self.next_request += 1;
                self.replies.insert(id, req.reply);
                self.core.handle_command(id, req.command, now);
            }
            Event::Persisted { generation, token, outcome } => {
                if generation == self.generation {
                    self.core.handle_persisted(token, outcome, now);
                }
            }
            Event::Tick => self.core.handle_timeout(now),
            Event::End(_) => {}
        }
    }

    fn on_mesos_event(&mut self, e: MesosEvent, now: Timestamp) {
        match e.r#type() {
            event::Type::Offers => {
                let offers: Vec<_> = e
                    .offers
                    .iter()
                    .flat_map(|o| &o.offers)
                    .map(mesos_adapter::offer_from_proto)
                    .collect();
                tracing::debug!(count = offers.len(), "Offers received.");
                self.core.handle_offers(offers, now);
            }
            event::Type::Rescind => {
                if let Some(r) = &e.rescind {
                    tracing::debug!(offer_id = %r.offer_id.value, "Offer rescinded.");
                    self.core.handle_rescind(&r.offer_id.value);
                }
            }
            event::Type::Update => {
                if let Some(u) = &e.update {
                    let status = mesos_adapter::status_from_proto(&u.status);
                    tracing::info!(
                        task_id = %status.task_id,
                        state = status.state.mesos_name(),
                        message = status.message.as_deref().unwrap_or(""),
                        "Task status update."
                    );
                    self.core.handle_status(status, now);
                }
            }
            event::Type::Failure => {
                if let Some(f) = &e.failure {
                    tracing::warn!(
                        agent_id = f.agent_id.as_ref().map(|a| a.value.as_str()).unwrap_or(""),
                        executor_id =
                            f.executor_id.as_ref().map(|x| x.value.as_str()).unwrap_or(""),
                        status = f.status.unwrap_or_default(),
                        "Executor or agent failure."
                    );
                }
            }
            event::Type::Message => tracing::debug!("Framework message received."),
            event::Type::Error => {
                let message = e.error.as_ref().map(|x| x.message.as_str()).unwrap_or("");
                tracing::error!(%message, "The master sent an error.");
            }
            _ => {}
        }
    }

    /// Performs every pending effect, then publishes the new snapshot, and
    /// only then answers requests and publishes events: a client that reads
    /// right after its write was acknowledged (or after an event) sees it.
    async fn perform_effects(&mut self) {
        let mut answers = Vec::new();
        while let Some(effect) = self.core.poll_effect() {
            match effect {
                Effect::Persist { token, writes } => {
                    // The worker lives as long as the term.
                    let _ = self.persist_tx.send((self.generation, token, writes)).await;
                }
                Effect::Call(call) => {
                    let Some(fid) = self.core.framework_id().map(str::to_owned) else { continue };
                    let (proto, refused) =
                        mesos_adapter::call_to_proto(&call, &fid, &self.executor, &self.secrets);
                    let kind = format!("{:?}", proto.r#type());
                    let rx = self.mesos.enqueue(proto).await;
                    // Launches whose secrets cannot be resolved failed like
                    // tasks the master refuses (the message names the secret).
                    for status in refused {
                        tracing::warn!(
                            task_id = %status.task_id,
                            reason = status.message.as_deref().unwrap_or(""),
                            "Task not launched: a secret cannot be resolved."
                        );
                        self.core.handle_status(status, self.clock.now());
                    }
                    tokio::spawn(async move {
                        match rx.await {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => {
                                tracing::warn!(call = %kind, error = %e, "A Mesos call failed.")
                            }
                            Err(_) => tracing::warn!(call = %kind, "A Mesos call was dropped."),
                        }
                    });
                }
                Effect::Notify(_) | Effect::Reply { .. } => answers.push(effect),
                Effect::Reload { reason } => {
                    if self.reload_at.is_none() {
                        tracing::error!(%reason, "A write failed; rebuilding the scheduler from the store.");
                        self.reload_at = Some(self.clock.now());
                    }
                }
            }
        }
        self.snap_tx.send_replace(Arc::new(self.core.snapshot()));
        for effect in answers {
            match effect {
                Effect::Notify(n) => {
                    log_notification(&n);
                    self.events.publish_notification(&n, self.clock.now());
                }
                Effect::Reply { request, result } => {
                    if let Some(tx) = self.replies.remove(&request) {
                        let _ = tx.send(result);
                    }
                }
                _ => {}
            }
        }
    }

    /// Rebuilds the core from the store. While the store is unreachable the
    /// current core goes on (reads, running tasks, refused writes) and the
    /// reload is retried.
    async fn reload(&mut self, now: Timestamp) {
        let stored = match self.store.load().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "Cannot reload the state yet; retrying.");
                self.reload_at = Some(now.plus(Duration::from_secs(2)));
                return;
            }
        };
        self.reload_at = None;
        self.generation += 1;
        let seed = self.generation ^ u64::try_from(now.as_millis()).unwrap_or(0);
        let stats = self.core.snapshot().stats;
        self.core = Scheduler::new(self.core_config.clone(), stored, seed, now);
        self.core.resume_stats(stats);
        tracing::info!("The scheduler was rebuilt from the store.");
        if let Some(fid) = self.subscribed.clone() {
            self.core.handle_subscribed(fid, now);
        }
    }
}

/// Notifications operators should see in the log.
fn log_notification(n: &Notification) {
    match n {
        Notification::DeploymentFailed { deployment, reason, .. } => {
            tracing::warn!(deployment_id = %deployment.id, %reason, "Deployment failed.");
        }
        Notification::DeploymentSuccess(d) => {
            tracing::info!(deployment_id = %d.id, "Deployment finished.");
        }
        Notification::UnknownTask { task_id, state, agent_id } => {
            tracing::warn!(
                %task_id,
                state = state.mesos_name(),
                agent_id = agent_id.as_deref().unwrap_or(""),
                "Mesos reports a task the store does not know; it is not killed."
            );
        }
        _ => {}
    }
}

async fn sleep_until(clock: &dyn Clock, deadline: Timestamp) {
    let wait = deadline.since(clock.now()).clamp(Duration::from_millis(1), Duration::from_secs(1));
    tokio::time::sleep(wait).await;
}
