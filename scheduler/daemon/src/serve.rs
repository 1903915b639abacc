//! `drover serve`: the scheduler daemon.
//!
//! One main loop owns the scheduling core and consumes one closed [`Event`]
//! enum: Mesos input, user commands, persistence results and the core's
//! timer. After each event it performs the core's effects in order —
//! persists go to the store worker (one at a time, in order), calls go to
//! the Mesos driver (delivered in order), replies go back to the API — and
//! publishes a fresh snapshot for the API's readers.

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
use sched_api::{ApiState, CommandRequest, EventBus, ServerInfo};
use sched_core::scheduler::{
    CommandError, CoreConfig, Effect, Outcome, PersistToken, Scheduler, Snapshot, Write,
};
use sched_store::{MemStore, Store};
use tokio::sync::{mpsc, oneshot, watch};

use crate::mesos_adapter::{self, ExecutorSettings};

/// Everything `drover serve` needs, resolved from flags and the config file.
#[derive(Debug, Clone)]
pub(crate) struct ServeConfig {
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
    /// The executor binary on the agents.
    pub(crate) executor: ExecutorSettings,
    /// Core tunables.
    pub(crate) core: CoreConfig,
    /// Events an event-stream client may fall behind before it is
    /// disconnected (Marathon's `event_stream_max_outstanding_messages`).
    pub(crate) event_capacity: usize,
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
    /// The core's timer fired.
    Tick,
    /// Stop.
    Shutdown,
}

type PersistJob = (u64, PersistToken, Vec<Write>);

/// Runs the daemon until `shutdown` resolves.
pub(crate) async fn run(
    config: ServeConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = Arc::new(MemStore::new());
    let stored = store.load().await.context("loading state")?;
    let seed = u64::try_from(clock.now().as_millis()).unwrap_or(1) ^ u64::from(std::process::id());
    let framework_id = stored.framework_id.clone();
    let core = Scheduler::new(config.core.clone(), stored, seed, clock.now());

    let master = Endpoint::parse(&config.master, SCHEDULER_PATH).context("--master")?;
    let hostname = config.listen.ip().to_string();
    let webui = format!("http://{}", config.listen);
    let framework_info = mesos_adapter::framework_info(
        &config.framework_name,
        &config.mesos_user,
        config.failover_timeout,
        &hostname,
        &webui,
    );
    let (mesos, mesos_rx, _driver) = mesos_http::scheduler::spawn(
        SchedulerConfig {
            master,
            framework_info,
            framework_id,
            subscription: SubscriptionConfig {
                content_type: config.content_type,
                ..SubscriptionConfig::default()
            },
            max_record_len: mesos_wire::DEFAULT_MAX_RECORD_LEN,
            call_timeout: Duration::from_secs(10),
            authorization: None,
            seed,
        },
        clock.clone(),
    );

    // Bounded: the API waits when the scheduler is busy (backpressure).
    let (cmd_tx, cmd_rx) = mpsc::channel::<CommandRequest>(1024);
    let (snap_tx, snap_rx) = watch::channel(Arc::new(core.snapshot()));
    let events = EventBus::new(config.event_capacity);
    let api = ApiState::new(
        snap_rx,
        cmd_tx,
        Arc::new(ServerInfo {
            leader: config.listen.to_string(),
            master: config.master.clone(),
            framework_name: config.framework_name.clone(),
            failover_timeout_secs: config.failover_timeout.as_secs_f64(),
            decline_offer_duration_ms: u64::try_from(config.core.decline_refuse.as_millis())
                .unwrap_or(u64::MAX),
            reconciliation_interval_ms: u64::try_from(config.core.reconcile_interval.as_millis())
                .unwrap_or(u64::MAX),
            min_revive_offers_interval_ms: u64::try_from(
                config.core.min_revive_interval.as_millis(),
            )
            .unwrap_or(u64::MAX),
            executor: config.executor.path.clone(),
            mesos_user: config.mesos_user.clone(),
            http_port: config.listen.port(),
        }),
        clock.clone(),
        events.clone(),
    );
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    tracing::info!(listen = %config.listen, master = %config.master, "Drover is serving.");

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut api_stop = stop_rx.clone();
    let server = tokio::spawn(async move {
        let stopped = async move {
            let _ = api_stop.wait_for(|s| *s).await;
        };
        if let Err(e) = sched_api::serve(listener, sched_api::router(api), stopped).await {
            tracing::error!(error = %e, "The API server failed.");
        }
    });

    let (persist_tx, persist_rx) = mpsc::channel::<PersistJob>(4096);
    let (persisted_tx, persisted_rx) = mpsc::channel(4096);
    let worker = tokio::spawn(persist_worker(store.clone(), persist_rx, persisted_tx));

    let main = MainLoop {
        core,
        core_config: config.core.clone(),
        generation: 1,
        clock,
        store,
        mesos,
        executor: config.executor.clone(),
        persist_tx,
        replies: BTreeMap::new(),
        next_request: 1,
        snap_tx,
        subscribed: None,
        events: events.clone(),
    };
    let mut shutdown = Box::pin(shutdown);
    let stop = async move {
        (&mut shutdown).await;
    };
    main.run(mesos_rx, cmd_rx, persisted_rx, stop).await;
    // End the event streams, or the server would wait for them forever.
    events.close();
    let _ = stop_tx.send(true);
    let _ = server.await;
    worker.abort();
    tracing::info!("Drover stopped.");
    Ok(())
}

async fn persist_worker(
    store: Arc<MemStore>,
    mut jobs: mpsc::Receiver<PersistJob>,
    done: mpsc::Sender<(u64, PersistToken, Result<(), String>)>,
) {
    while let Some((generation, token, writes)) = jobs.recv().await {
        let outcome = store.commit(&writes).await.map_err(|e| e.to_string());
        if done.send((generation, token, outcome)).await.is_err() {
            return;
        }
    }
}

struct MainLoop {
    core: Scheduler,
    core_config: CoreConfig,
    /// Bumped when the core is rebuilt; persist results of older cores are stale.
    generation: u64,
    clock: Arc<dyn Clock>,
    store: Arc<MemStore>,
    mesos: SchedulerHandle,
    executor: ExecutorSettings,
    persist_tx: mpsc::Sender<PersistJob>,
    replies: BTreeMap<u64, oneshot::Sender<Result<Outcome, CommandError>>>,
    /// Where notifications go, rendered once, for event-stream clients
    /// (bounded; publishing never waits, slow readers are disconnected).
    events: EventBus,
    next_request: u64,
    snap_tx: watch::Sender<Arc<Snapshot>>,
    /// The framework id while subscribed.
    subscribed: Option<String>,
}

impl MainLoop {
    async fn run(
        mut self,
        mut mesos_rx: mpsc::Receiver<SchedulerInput>,
        mut cmd_rx: mpsc::Receiver<CommandRequest>,
        mut persisted_rx: mpsc::Receiver<(u64, PersistToken, Result<(), String>)>,
        stop: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        loop {
            let deadline = self.core.poll_timeout();
            let event = tokio::select! {
                () = &mut stop => Event::Shutdown,
                Some(input) = mesos_rx.recv() => Event::Mesos(input),
                Some(req) = cmd_rx.recv() => Event::Command(req),
                Some((generation, token, outcome)) = persisted_rx.recv() => Event::Persisted { generation, token, outcome },
                () = sleep_until(&*self.clock, deadline) => Event::Tick,
            };
            if matches!(event, Event::Shutdown) {
                return;
            }
            let now = self.clock.now();
            self.handle(event, now);
            if !self.perform_effects().await {
                return;
            }
            self.snap_tx.send_replace(Arc::new(self.core.snapshot()));
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
            Event::Shutdown => {}
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

    /// Performs every pending effect; false if the daemon must stop.
    async fn perform_effects(&mut self) -> bool {
        while let Some(effect) = self.core.poll_effect() {
            match effect {
                Effect::Persist { token, writes } => {
                    if self.persist_tx.send((self.generation, token, writes)).await.is_err() {
                        return false;
                    }
                }
                Effect::Call(call) => {
                    let Some(fid) = self.core.framework_id().map(str::to_owned) else { continue };
                    let proto = mesos_adapter::call_to_proto(&call, &fid, &self.executor);
                    let kind = format!("{:?}", proto.r#type());
                    let rx = self.mesos.enqueue(proto).await;
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
                Effect::Notify(n) => self.events.publish_notification(&n, self.clock.now()),
                Effect::Reply { request, result } => {
                    if let Some(tx) = self.replies.remove(&request) {
                        let _ = tx.send(result);
                    }
                }
                Effect::Reload { reason } => {
                    tracing::error!(%reason, "A write failed; rebuilding the scheduler from the store.");
                    if !self.reload().await {
                        return false;
                    }
                }
            }
        }
        true
    }

    async fn reload(&mut self) -> bool {
        let stored = match self.store.load().await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "Cannot reload state; stopping.");
                return false;
            }
        };
        let now = self.clock.now();
        self.generation += 1;
        let seed = self.generation ^ u64::try_from(now.as_millis()).unwrap_or(0);
        let stats = self.core.snapshot().stats;
        self.core = Scheduler::new(self.core_config.clone(), stored, seed, now);
        self.core.resume_stats(stats);
        if let Some(fid) = self.subscribed.clone() {
            self.core.handle_subscribed(fid, now);
        }
        true
    }
}

async fn sleep_until(clock: &dyn Clock, deadline: Timestamp) {
    let wait = deadline.since(clock.now()).clamp(Duration::from_millis(1), Duration::from_secs(1));
    tokio::time::sleep(wait).await;
}
