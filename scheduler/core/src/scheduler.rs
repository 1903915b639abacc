//! The scheduler state machine.
//!
//! [`Scheduler`] owns Drover's view of apps, instances and tasks. Inputs come
//! in through `handle_*` methods (user commands, Mesos subscription changes,
//! offers, status updates, persistence results, time); decisions come out of
//! [`Scheduler::poll_effect`] as [`Effect`]s for the daemon to perform.
//!
//! **Ordering invariants** (the daemon performs effects in the order they are
//! polled, and reports each `Persist` back through `handle_persisted`):
//! - The framework id is persisted before any call is sent or any offer is
//!   used after a subscription (calls wait behind a barrier).
//! - An ACCEPT that launches instance *X* is only yielded after the `Persist`
//!   recording *X*'s task has been reported successful.
//! - A status update is acknowledged only after the state change it caused
//!   has been persisted.
//! - A user command is answered only after its writes have been persisted.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use drover_time::{SplitMix64, Timestamp, format_uuid};
use imbl::OrdMap;

use crate::app::{
    AppSpec, CommandSpec, ContainerSpec, HealthCheckSpec, NetworkMode, Resources, SecretRef,
};
pub use crate::deployment::{Action as DeploymentAction, Deployment, Origin, StepAction};
use crate::ids::{AppId, InstanceId, TaskId};
use crate::instance::{Goal, Instance, Task, TaskState};
use crate::job::{JobName, JobRun, JobSpec, JobState};
use crate::offer::{Offer, RoleResources};
use crate::placement::{
    self, Filter, Placed, Placement, PlacementConfig, PlacementReport, Request,
};

/// Tunables of the scheduler.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// `refuse_seconds` for declined offers and for the unused rest of accepted ones.
    pub decline_refuse: Duration,
    /// `refuse_seconds` for offers received before the framework is ready.
    pub not_ready_refuse: Duration,
    /// Minimum time between two REVIVE calls.
    pub min_revive_interval: Duration,
    /// Time between reconciliation rounds.
    pub reconcile_interval: Duration,
    /// Versions kept per app (besides those instances still run).
    pub max_versions: usize,
    /// Kill tasks Mesos reports that the store does not know (off by
    /// default: they are only reported).
    pub kill_unknown_tasks: bool,
    /// First wait for answers to an explicit reconciliation (doubles per retry).
    pub reconcile_retry: Duration,
    /// Explicit reconciliation attempts before moving on to implicit.
    pub reconcile_attempts: u32,
    /// Time between KILL retries for a task that is still alive.
    pub kill_retry: Duration,
    /// A task still staging after this long is killed and replaced.
    pub launch_timeout: Duration,
    /// Resources of each task's executor, added to the task's own.
    pub executor_resources: Resources,
    /// Placement tunables.
    pub placement: PlacementConfig,
    /// How often periodic checks (kill retries, launch timeouts, delays) run.
    pub tick: Duration,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            decline_refuse: Duration::from_secs(120),
            not_ready_refuse: Duration::from_secs(2),
            min_revive_interval: Duration::from_secs(5),
            reconcile_interval: Duration::from_secs(600),
            max_versions: 50,
            kill_unknown_tasks: false,
            reconcile_retry: Duration::from_secs(5),
            reconcile_attempts: 4,
            kill_retry: Duration::from_secs(10),
            launch_timeout: Duration::from_secs(300),
            executor_resources: Resources { cpus: 0.01, mem: 32.0, disk: 0.0, gpus: 0 },
            placement: PlacementConfig::default(),
            tick: Duration::from_secs(1),
        }
    }
}

/// Cluster-unique service ports (Marathon's `local_port_min`..`local_port_max`).
pub const SERVICE_PORTS: std::ops::RangeInclusive<u32> = 10000..=20000;

/// Identifies one `Persist` effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PersistToken(pub u64);

/// Identifies a user command awaiting its reply.
pub type RequestId = u64;

/// A record to write to (or delete from) the store.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// The framework id Mesos assigned.
    FrameworkId(String),
    /// An app spec: its current version, kept also as one of its versions.
    PutApp(AppSpec),
    /// Make a stored version current again (a rollback).
    RestoreApp(AppSpec),
    /// An old version is no longer kept.
    DeleteAppVersion(AppId, Timestamp),
    /// An app is gone, with its versions.
    DeleteApp(AppId),
    /// A deployment and its progress.
    PutDeployment(Box<Deployment>),
    /// A deployment ended.
    DeleteDeployment(String),
    /// An instance and its task record.
    PutInstance(Instance),
    /// An instance is gone.
    DeleteInstance(InstanceId),
    /// A job spec (created or changed).
    PutJob(Box<JobSpec>),
    /// A job is gone, with its state and runs.
    DeleteJob(JobName),
    /// What a job remembers between runs.
    PutJobState(JobName, Box<JobState>),
    /// A run of a job.
    PutRun(Box<JobRun>),
    /// A run dropped from a job's history.
    DeleteRun(JobName, String),
}

/// Everything needed to build one Mesos TaskInfo.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchSpec {
    /// The task id.
    pub task_id: TaskId,
    /// The instance.
    pub instance_id: InstanceId,
    /// The app.
    pub app_id: AppId,
    /// The app version.
    pub app_version: Timestamp,
    /// The agent (from the offer).
    pub agent_id: String,
    /// The executor id for this task.
    pub executor_id: String,
    /// The agent's hostname.
    pub hostname: String,
    /// The task's own resources.
    pub resources: Resources,
    /// The host ports taken from the offer, in `PORT0..` order.
    pub host_ports: Vec<u32>,
    /// The executor's resources.
    pub executor_resources: Resources,
    /// Where the task's resources and host ports come from, by role (as
    /// offered: unreserved or reserved for a role).
    pub task_roles: Vec<RoleResources>,
    /// Where the executor's resources come from, by role.
    pub executor_roles: Vec<RoleResources>,
    /// The command (`None`: the container image's own).
    pub command: Option<CommandSpec>,
    /// The Docker container, if any.
    pub container: Option<ContainerSpec>,
    /// Bridge (port mappings) rather than host networking.
    pub network: NetworkMode,
    /// Health checks with their ports resolved to `host_ports`.
    pub health_checks: Vec<HealthCheckSpec>,
    /// The task's environment.
    pub env: BTreeMap<String, String>,
    /// Environment variables whose value is a secret, by reference: the
    /// daemon resolves them when it builds the task (they win over `env`).
    pub secret_env: BTreeMap<String, SecretRef>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// SIGTERM-to-SIGKILL grace period.
    pub kill_grace: Option<Duration>,
}

/// A call to the Mesos master, in domain terms.
#[derive(Debug, Clone, PartialEq)]
pub enum MesosCall {
    /// Launch tasks on one offer.
    Accept {
        /// The offer.
        offer_id: String,
        /// The launches.
        launches: Vec<LaunchSpec>,
        /// Refuse the unused rest for this long.
        refuse: Duration,
    },
    /// Decline offers.
    Decline {
        /// The offers.
        offer_ids: Vec<String>,
        /// Refuse them for this long.
        refuse: Duration,
    },
    /// Kill a task.
    Kill {
        /// The task.
        task_id: TaskId,
        /// Its agent, when known.
        agent_id: Option<String>,
        /// Override of the kill grace period.
        grace: Option<Duration>,
    },
    /// Acknowledge a status update.
    Acknowledge {
        /// The agent that sent it.
        agent_id: String,
        /// The task.
        task_id: String,
        /// The update's uuid.
        uuid: Vec<u8>,
    },
    /// Reconcile tasks; empty = implicit.
    Reconcile {
        /// `(task id, agent id)` pairs.
        tasks: Vec<(String, Option<String>)>,
    },
    /// Ask for offers again (clears filters).
    Revive,
    /// Stop offers.
    Suppress,
}

/// A user command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Create an app (`POST /v2/apps`); fails if it exists.
    CreateApp {
        /// The app.
        spec: Box<AppSpec>,
        /// Cancel deployments that lock it.
        force: bool,
    },
    /// Create or replace apps in one deployment (`PUT /v2/apps[/{id}]`, groups).
    PutApps {
        /// The apps.
        specs: Vec<AppSpec>,
        /// Cancel deployments that lock them.
        force: bool,
    },
    /// Delete apps and kill their tasks in one deployment.
    DeleteApps {
        /// The apps.
        ids: Vec<AppId>,
        /// Cancel deployments that lock them.
        force: bool,
    },
    /// Replace every task of an app (`POST /v2/apps/{id}/restart`).
    RestartApp {
        /// The app.
        id: AppId,
        /// Cancel deployments that lock it.
        force: bool,
    },
    /// Kill tasks (`DELETE /v2/apps/{id}/tasks`, `POST /v2/tasks/delete`):
    /// relaunched, unless `scale` (the app shrinks) or `wipe` (the instance
    /// is forgotten and replaced by a new one).
    KillTasks {
        /// The tasks.
        task_ids: Vec<TaskId>,
        /// Scale the apps down by the number killed.
        scale: bool,
        /// Forget the instances (a replacement gets a new instance id).
        wipe: bool,
        /// Cancel deployments that lock the apps (with `scale`).
        force: bool,
    },
    /// Stop a deployment: roll it back, or with `force` just drop it.
    CancelDeployment {
        /// The deployment.
        id: String,
        /// Drop it without rolling back.
        force: bool,
    },
    /// Forget an app's launch backoff.
    ResetDelay(AppId),
    /// Create or replace a job.
    PutJob(Box<JobSpec>),
    /// Delete a job (its children take over its parents or schedule).
    DeleteJob(JobName),
    /// Start a run of a job now, with extra arguments.
    RunJob {
        /// The job.
        name: JobName,
        /// Appended to the command (when it is not run by a shell).
        arguments: Vec<String>,
    },
    /// Kill the active runs of a job.
    KillJob(JobName),
    /// Record a success of a job without running it (releases dependents).
    MarkJobSuccess(JobName),
}

/// A change that became a deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployed {
    /// The deployment started by the command.
    pub deployment_id: String,
    /// The resulting version (for a deletion: when it was deleted).
    pub version: Timestamp,
    /// The apps as stored (none for deletions).
    pub apps: Vec<AppSpec>,
    /// True when the command created the (single) app.
    pub created: bool,
}

/// The successful outcome of a command.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A deployment was started.
    Deployed(Deployed),
    /// Tasks were killed (without a deployment); the instances as they were.
    Killed(Vec<Instance>),
    /// Done; nothing to report (a forced cancel, a reset delay).
    Done,
}

/// Why a command was refused. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// `POST` of an id that exists.
    AppExists(AppId),
    /// No such app.
    AppNotFound(AppId),
    /// Running deployments hold the apps; retry with `force`.
    Locked {
        /// The deployments' ids.
        deployments: Vec<String>,
    },
    /// No such deployment.
    DeploymentNotFound(String),
    /// No such job.
    JobNotFound(JobName),
    /// Unknown task ids.
    TasksNotFound(Vec<String>),
    /// The change cannot be made (e.g. no service port left).
    Invalid(String),
    /// The store refused the write; try again.
    Unavailable(String),
}

/// Something operators and clients may want to hear about (the event bus).
#[derive(Debug, Clone, PartialEq)]
pub enum Notification {
    /// A task changed state (Marathon's `status_update_event`).
    StatusUpdate {
        /// The app.
        app_id: AppId,
        /// The instance.
        instance_id: InstanceId,
        /// The task.
        task_id: TaskId,
        /// Its new state.
        state: TaskState,
        /// The status message.
        message: String,
        /// Its agent.
        agent_id: String,
        /// The agent's host.
        host: String,
        /// Its host ports.
        ports: Vec<u32>,
        /// The app version it runs.
        version: Timestamp,
    },
    /// A task's health changed (`health_status_changed_event` and
    /// `instance_health_changed_event`).
    HealthChanged {
        /// The app.
        app_id: AppId,
        /// The instance.
        instance_id: InstanceId,
        /// The task.
        task_id: TaskId,
        /// The app version.
        version: Timestamp,
        /// Healthy or not.
        alive: bool,
    },
    /// A deployment started or moved to its next step (`deployment_info`).
    DeploymentInfo(Box<Deployment>),
    /// A step finished (`deployment_step_success`).
    DeploymentStepSuccess(Box<Deployment>),
    /// A deployment finished (`deployment_success`).
    DeploymentSuccess(Box<Deployment>),
    /// A deployment failed or was canceled (`deployment_failed`).
    DeploymentFailed {
        /// The deployment.
        deployment: Box<Deployment>,
        /// Why.
        reason: String,
        /// True when a user (or a forced change) stopped it, false when it
        /// failed on its own (e.g. its progress deadline passed).
        canceled: bool,
    },
    /// An app's last instance is gone after its deletion (`app_terminated_event`).
    AppTerminated(AppId),
    /// Mesos reports a task of this framework that Drover has no record of.
    /// It is reported, and killed only when `kill_unknown_tasks` is set.
    UnknownTask {
        /// The task.
        task_id: String,
        /// Its state.
        state: TaskState,
        /// Its agent, when known.
        agent_id: Option<String>,
    },
}

/// Something the daemon must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Write these records atomically, then report through `handle_persisted`.
    Persist {
        /// Identifies this write.
        token: PersistToken,
        /// The records.
        writes: Vec<Write>,
    },
    /// Send a call to the master.
    Call(MesosCall),
    /// Answer a command.
    Reply {
        /// The request.
        request: RequestId,
        /// The answer.
        result: Result<Outcome, CommandError>,
    },
    /// Publish an event.
    Notify(Notification),
    /// A write failed: the in-memory state may be ahead of the store. The
    /// daemon must rebuild the scheduler from the store and re-subscribe.
    Reload {
        /// Why.
        reason: String,
    },
}

/// A status update, in domain terms.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    /// The task.
    pub task_id: String,
    /// Its new state.
    pub state: TaskState,
    /// The agent, when known.
    pub agent_id: Option<String>,
    /// Human-readable message.
    pub message: Option<String>,
    /// Mesos' reason name (`REASON_...`).
    pub reason: Option<String>,
    /// The update's uuid; present = must be acknowledged.
    pub uuid: Option<Vec<u8>>,
    /// The task's health, when the update carries it.
    pub healthy: Option<bool>,
}

/// Launch backoff state of an app.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LaunchDelay {
    /// Consecutive failures counted.
    pub failures: u32,
    /// No launch before this time.
    pub until: Timestamp,
}

/// The last task failure of an app (Marathon's `lastTaskFailure`).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskFailure {
    /// The task.
    pub task_id: TaskId,
    /// Its final state.
    pub state: TaskState,
    /// The message.
    pub message: String,
    /// Where it ran.
    pub host: String,
    /// The agent.
    pub agent_id: String,
    /// When.
    pub timestamp: Timestamp,
    /// The app version it ran.
    pub version: Timestamp,
}

/// A task Mesos reported that Drover has no record of. It is reported to
/// operators, never killed blindly.
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownTask {
    /// Its state.
    pub state: TaskState,
    /// The agent.
    pub agent_id: Option<String>,
    /// When it was first reported.
    pub first_seen: Timestamp,
}

/// What placement said about an app since it started waiting to launch
/// (Marathon's `processedOffersSummary`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueueReport {
    /// When the app started waiting.
    pub since: Timestamp,
    /// Offers considered.
    pub processed_offers: u64,
    /// Offers that took none of its instances.
    pub unused_offers: u64,
    /// When an offer last took an instance.
    pub last_used_at: Option<Timestamp>,
    /// When an offer last took none.
    pub last_unused_at: Option<Timestamp>,
    /// Offers rejected, by reason.
    pub rejected: BTreeMap<placement::Reason, u64>,
}

impl QueueReport {
    fn add(&mut self, round: &PlacementReport, now: Timestamp) {
        self.processed_offers += u64::from(round.offers_processed);
        let unused = round.offers_processed.saturating_sub(round.offers_used);
        self.unused_offers += u64::from(unused);
        if round.offers_used > 0 {
            self.last_used_at = Some(now);
        }
        if unused > 0 {
            self.last_unused_at = Some(now);
        }
        for (reason, n) in &round.rejected {
            *self.rejected.entry(*reason).or_default() += u64::from(*n);
        }
    }
}

/// Why offers were declined when no instance was waiting for them.
pub const DECLINED_NO_DEMAND: &str = "no_demand";

/// Counts of what the scheduler decided, since it started. Plain numbers:
/// the API exports them as Prometheus counters when it is scraped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Tasks launched (one per launch operation in an ACCEPT).
    pub tasks_launched: u64,
    /// Offers declined, by reason: [`DECLINED_NO_DEMAND`] when nothing
    /// waited for them, otherwise the placement [`Reason`](placement::Reason)
    /// most often given in that round (e.g. `InsufficientMemory`).
    pub offers_declined: BTreeMap<&'static str, u64>,
    /// Deployments that ended, by outcome: `success`, `failed`, `canceled`.
    pub deployments: BTreeMap<&'static str, u64>,
    /// Job runs by event: `started`, `succeeded`, `failed`, `killed`, `missed`.
    pub job_runs: BTreeMap<&'static str, u64>,
    /// Scheduled due times fired (each coalesced group counts once).
    pub job_fires: u64,
    /// Sum over fires of the time between due and fired, in milliseconds.
    pub job_fire_lag_ms: u64,
    /// Fires by lag: `job_fire_lag_buckets[i]` counts the fires whose lag
    /// was at most [`JOB_FIRE_LAG_BOUNDS_MS`]`[i]` and more than the bound
    /// before; the last counts the rest.
    pub job_fire_lag_buckets: [u64; JOB_FIRE_LAG_BOUNDS_MS.len() + 1],
}

/// Upper bounds (ms) of the fire-lag histogram's buckets.
pub const JOB_FIRE_LAG_BOUNDS_MS: [u64; 11] =
    [10, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000];

impl Stats {
    /// Counts one fire whose run started `lag` after its due time.
    fn record_fire_lag(&mut self, lag: Duration) {
        let ms = u64::try_from(lag.as_millis()).unwrap_or(u64::MAX);
        self.job_fires += 1;
        self.job_fire_lag_ms = self.job_fire_lag_ms.saturating_add(ms);
        let bucket = JOB_FIRE_LAG_BOUNDS_MS.iter().position(|b| ms <= *b);
        self.job_fire_lag_buckets[bucket.unwrap_or(JOB_FIRE_LAG_BOUNDS_MS.len())] += 1;
    }
}

/// An immutable, cheaply cloned view of the scheduler's state. The API
/// serves reads from it.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The framework id, once known.
    pub framework_id: Option<String>,
    /// True while subscribed to the master.
    pub subscribed: bool,
    /// Apps by id.
    pub apps: OrdMap<AppId, AppSpec>,
    /// Instances by id (ids sort by app, so an app's instances are adjacent).
    pub instances: OrdMap<InstanceId, Instance>,
    /// Every kept version of each app, by version.
    pub versions: OrdMap<AppId, OrdMap<Timestamp, AppSpec>>,
    /// Running deployments.
    pub deployments: OrdMap<String, Deployment>,
    /// Launch delays by app.
    pub delays: OrdMap<AppId, LaunchDelay>,
    /// Last task failure by app.
    pub last_failures: OrdMap<AppId, TaskFailure>,
    /// Placement reports of apps waiting for offers.
    pub queue: OrdMap<AppId, QueueReport>,
    /// Tasks Mesos reported that Drover does not know.
    pub unknown_tasks: OrdMap<String, UnknownTask>,
    /// Counts of decisions (launches, declines, deployment outcomes).
    pub stats: Stats,
    /// Jobs by name.
    pub jobs: OrdMap<JobName, JobSpec>,
    /// What each job remembers between runs.
    pub job_states: OrdMap<JobName, JobState>,
    /// Each job's runs (active ones and the kept history), by run id.
    pub runs: OrdMap<JobName, OrdMap<String, JobRun>>,
    /// The synthetic app spec of the runs of each job that has attempt
    /// instances, by its app id.
    pub run_specs: OrdMap<AppId, AppSpec>,
}

impl Snapshot {
    /// The instances of one app.
    pub fn app_instances<'a>(&'a self, app: &AppId) -> impl Iterator<Item = &'a Instance> + 'a {
        let start = InstanceId::lower_bound(app);
        let prefix = start.as_str().to_owned();
        self.instances
            .range(start..)
            .take_while(move |(id, _)| id.as_str().starts_with(&prefix))
            .map(|(_, i)| i)
    }

    /// The spec an instance runs: the app version it was created for.
    pub fn spec_of(&self, inst: &Instance) -> Option<&AppSpec> {
        self.versions
            .get(&inst.app_id)
            .and_then(|v| v.get(&inst.app_version))
            .or_else(|| self.apps.get(&inst.app_id))
            .or_else(|| self.run_specs.get(&inst.app_id))
    }

    /// The runs of a job, oldest first.
    pub fn job_runs(&self, name: &JobName) -> Vec<&JobRun> {
        let mut runs: Vec<&JobRun> =
            self.runs.get(name).map(|r| r.values().collect()).unwrap_or_default();
        runs.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        runs
    }

    /// True when the instance runs the app's current configuration.
    pub fn is_current(&self, inst: &Instance) -> bool {
        match (self.apps.get(&inst.app_id), self.spec_of(inst)) {
            (Some(app), Some(spec)) => spec.last_config_change_at == app.last_config_change_at,
            _ => false,
        }
    }

    /// The deployments that hold `app`.
    pub fn deployments_of<'a>(
        &'a self,
        app: &'a AppId,
    ) -> impl Iterator<Item = &'a Deployment> + 'a {
        self.deployments.values().filter(move |d| d.target.contains_key(app))
    }
}

/// The persisted state a scheduler starts from.
#[derive(Debug, Clone, Default)]
pub struct StoredState {
    /// The framework id, if Mesos ever assigned one.
    pub framework_id: Option<String>,
    /// Apps (current versions).
    pub apps: Vec<AppSpec>,
    /// Kept versions of the apps (current ones included).
    pub versions: Vec<AppSpec>,
    /// Instances.
    pub instances: Vec<Instance>,
    /// Deployments in progress.
    pub deployments: Vec<Deployment>,
    /// Jobs.
    pub jobs: Vec<JobSpec>,
    /// Job states.
    pub job_states: Vec<(JobName, JobState)>,
    /// Job runs (active ones and the kept history).
    pub runs: Vec<JobRun>,
}

#[derive(Debug, Default)]
struct AfterPersist {
    /// Released once the write succeeded.
    then: Vec<Effect>,
    /// Answered with an error if it failed.
    request: Option<RequestId>,
    /// Instances whose launch waits for this write.
    launching: Vec<InstanceId>,
}

#[derive(Debug, Clone, PartialEq)]
enum Reconciliation {
    /// Next round at this time (`None` before the first subscription).
    Idle(Option<Timestamp>),
    /// Waiting for answers about these tasks.
    Explicit { pending: BTreeSet<String>, attempt: u32, retry_at: Timestamp },
}

/// The scheduler.
pub struct Scheduler {
    config: CoreConfig,
    pipeline: Vec<Box<dyn Filter>>,
    state: Snapshot,
    rng: SplitMix64,
    effects: VecDeque<Effect>,
    next_token: u64,
    after_persist: BTreeMap<PersistToken, AfterPersist>,
    /// While set, calls wait for this write (the framework id) to succeed.
    barrier: Option<PersistToken>,
    held_calls: Vec<Effect>,
    deferred_offers: Vec<Offer>,
    /// Instances whose launch is being persisted (no KILL may overtake the ACCEPT).
    launching: BTreeSet<InstanceId>,
    /// Index: instances that want a task (`Instance::needs_launch`).
    wanting: BTreeSet<InstanceId>,
    /// When the next full scan of instances (kill retries, launch timeouts) runs.
    next_scan: Timestamp,
    suppressed: bool,
    revive_wanted: bool,
    last_revive: Option<Timestamp>,
    reconciliation: Reconciliation,
    next_tick: Timestamp,
    /// Indexes of jobs (due times, retries, attempts, dependents).
    jobs: jobs::JobIndex,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("apps", &self.state.apps.len())
            .field("instances", &self.state.instances.len())
            .field("subscribed", &self.state.subscribed)
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// A scheduler resuming from `stored`. `seed` drives id generation.
    pub fn new(config: CoreConfig, stored: StoredState, seed: u64, now: Timestamp) -> Self {
        let mut state = Snapshot { framework_id: stored.framework_id, ..Snapshot::default() };
        for app in stored.versions {
            state.versions.entry(app.id.clone()).or_default().insert(app.version, app);
        }
        for app in stored.apps {
            state.versions.entry(app.id.clone()).or_default().insert(app.version, app.clone());
            state.apps.insert(app.id.clone(), app);
        }
        for d in stored.deployments {
            state.deployments.insert(d.id.clone(), d);
        }
        let mut wanting = BTreeSet::new();
        for inst in stored.instances {
            if inst.needs_launch() {
                wanting.insert(inst.id.clone());
            }
            state.instances.insert(inst.id.clone(), inst);
        }
        for job in stored.jobs {
            state.jobs.insert(job.name.clone(), job);
        }
        for (name, st) in stored.job_states {
            state.job_states.insert(name, st);
        }
        for run in stored.runs {
            state.runs.entry(run.job.clone()).or_default().insert(run.id.clone(), run);
        }
        let pipeline = placement::default_pipeline(&config.placement);
        let mut scheduler = Scheduler {
            pipeline,
            state,
            rng: SplitMix64::new(seed),
            effects: VecDeque::new(),
            next_token: 1,
            after_persist: BTreeMap::new(),
            barrier: None,
            held_calls: Vec::new(),
            deferred_offers: Vec::new(),
            launching: BTreeSet::new(),
            wanting,
            next_scan: now,
            suppressed: false,
            revive_wanted: false,
            last_revive: None,
            reconciliation: Reconciliation::Idle(None),
            next_tick: now,
            config,
            jobs: jobs::JobIndex::default(),
        };
        scheduler.index_jobs();
        scheduler
    }

    /// The current state, for readers.
    pub fn snapshot(&self) -> Snapshot {
        self.state.clone()
    }

    /// Carries the counters of a scheduler this one replaces (after a
    /// reload), so exported counters do not fall back to zero.
    pub fn resume_stats(&mut self, stats: Stats) {
        self.state.stats = stats;
    }

    /// The framework id, once known.
    pub fn framework_id(&self) -> Option<&str> {
        self.state.framework_id.as_deref()
    }

    /// The next effect to perform.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must run next.
    pub fn poll_timeout(&self) -> Timestamp {
        let mut t = self.next_tick;
        // A job fires at its due time, not at the next tick.
        if let Some(due) = self.next_job_wakeup() {
            t = t.min(due);
        }
        if let Reconciliation::Explicit { retry_at, .. } = &self.reconciliation {
            t = t.min(*retry_at);
        }
        t
    }

    // ----- inputs -------------------------------------------------------

    /// SUBSCRIBED arrived.
    pub fn handle_subscribed(&mut self, framework_id: String, now: Timestamp) {
        self.state.subscribed = true;
        // The master starts every subscription unsuppressed, with no filters.
        self.suppressed = false;
        self.last_revive = None;
        if self.state.framework_id.as_deref() != Some(&framework_id) {
            self.state.framework_id = Some(framework_id.clone());
            let token =
                self.persist(vec![Write::FrameworkId(framework_id)], Vec::new(), None, Vec::new());
            self.barrier = token;
        }
        self.start_reconciliation(now);
        self.update_offer_interest(now);
    }

    /// The subscription was lost.
    pub fn handle_disconnected(&mut self) {
        self.state.subscribed = false;
        // Offers of a lost subscription are void.
        self.deferred_offers.clear();
        self.held_calls.clear();
        self.reconciliation = Reconciliation::Idle(None);
    }

    /// Offers arrived.
    pub fn handle_offers(&mut self, offers: Vec<Offer>, now: Timestamp) {
        if offers.is_empty() {
            return;
        }
        if self.barrier.is_some() {
            self.deferred_offers.extend(offers);
            return;
        }
        if !self.state.subscribed {
            return;
        }
        let requests = self.launch_requests(now);
        if requests.is_empty() {
            self.count_declined(DECLINED_NO_DEMAND, offers.len());
            let offer_ids = offers.into_iter().map(|o| o.id).collect();
            self.call(MesosCall::Decline { offer_ids, refuse: self.config.decline_refuse });
            self.update_offer_interest(now);
            return;
        }
        let plan = placement::place(&offers, &requests, &self.pipeline);
        for (app, round) in &plan.reports {
            let entry = self
                .state
                .queue
                .entry(app.clone())
                .or_insert_with(|| QueueReport { since: now, ..QueueReport::default() });
            entry.add(round, now);
        }
        let mut by_offer: BTreeMap<usize, Vec<Placement>> = BTreeMap::new();
        for p in plan.placements {
            by_offer.entry(p.offer).or_default().push(p);
        }
        let mut unused = Vec::new();
        for (index, offer) in offers.into_iter().enumerate() {
            match by_offer.remove(&index) {
                Some(instances) => self.launch_on(offer, instances, now),
                None => unused.push(offer.id),
            }
        }
        if !unused.is_empty() {
            self.count_declined(main_reason(&plan.reports), unused.len());
            self.call(MesosCall::Decline { offer_ids: unused, refuse: self.config.decline_refuse });
        }
        let waiting: Vec<AppId> =
            self.state.queue.keys().filter(|a| !self.app_wants_launch(a)).cloned().collect();
        for app in waiting {
            self.state.queue.remove(&app);
        }
        self.update_offer_interest(now);
    }

    /// An offer was rescinded. Drover never holds offers across inputs, so
    /// only offers deferred behind the framework-id barrier can be affected.
    pub fn handle_rescind(&mut self, offer_id: &str) {
        self.deferred_offers.retain(|o| o.id != offer_id);
    }

    /// A status update arrived.
    pub fn handle_status(&mut self, status: StatusUpdate, now: Timestamp) {
        if let Reconciliation::Explicit { pending, .. } = &mut self.reconciliation {
            pending.remove(&status.task_id);
        }
        let ack = match (&status.uuid, &status.agent_id) {
            (Some(uuid), Some(agent)) => vec![Effect::Call(MesosCall::Acknowledge {
                agent_id: agent.clone(),
                task_id: status.task_id.clone(),
                uuid: uuid.clone(),
            })],
            _ => Vec::new(),
        };
        let task_id = TaskId::from_raw(status.task_id.clone());
        let known = task_id.parse().and_then(|(inst, _)| {
            let i = self.state.instances.get(&inst)?;
            (i.task.as_ref()?.id == task_id).then(|| i.clone())
        });
        let writes = match known {
            Some(inst) => {
                self.state.unknown_tasks.remove(task_id.as_str());
                self.apply_status(inst, &status, now)
            }
            None => {
                self.note_unknown(&status, now);
                Vec::new()
            }
        };
        self.persist(writes, ack, None, Vec::new());
        self.finish_reconciliation_if_done(now);
        self.drive_deployments(now);
        self.update_offer_interest(now);
    }

    /// A `Persist` finished.
    pub fn handle_persisted(
        &mut self,
        token: PersistToken,
        outcome: Result<(), String>,
        now: Timestamp,
    ) {
        let after = self.after_persist.remove(&token).unwrap_or_default();
        for id in &after.launching {
            self.launching.remove(id);
        }
        match outcome {
            Ok(()) => {
                for effect in after.then {
                    self.emit(effect);
                }
                if self.barrier == Some(token) {
                    self.barrier = None;
                    let held = std::mem::take(&mut self.held_calls);
                    self.effects.extend(held);
                    let offers = std::mem::take(&mut self.deferred_offers);
                    self.handle_offers(offers, now);
                }
            }
            Err(reason) => {
                if let Some(request) = after.request {
                    self.effects.push_back(Effect::Reply {
                        request,
                        result: Err(CommandError::Unavailable(reason.clone())),
                    });
                }
                // An offer whose launch could not be recorded is given back
                // at once: nothing may be launched unrecorded, and offers
                // are never held.
                for effect in &after.then {
                    if let Effect::Call(MesosCall::Accept { offer_id, .. }) = effect {
                        self.count_declined(DECLINED_NO_DEMAND, 1);
                        self.call(MesosCall::Decline {
                            offer_ids: vec![offer_id.clone()],
                            refuse: self.config.not_ready_refuse,
                        });
                    }
                }
                self.effects.push_back(Effect::Reload { reason });
            }
        }
        self.update_offer_interest(now);
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        if let Reconciliation::Explicit { pending, attempt, retry_at } = &self.reconciliation
            && now >= *retry_at
        {
            if *attempt >= self.config.reconcile_attempts || pending.is_empty() {
                self.implicit_reconciliation(now);
            } else {
                let tasks = self.reconcile_pairs(pending);
                let attempt = attempt + 1;
                let wait = self.config.reconcile_retry.saturating_mul(1 << attempt.min(10));
                self.reconciliation = Reconciliation::Explicit {
                    pending: pending.clone(),
                    attempt,
                    retry_at: now.plus(wait),
                };
                self.call(MesosCall::Reconcile { tasks });
            }
        }
        if now >= self.next_tick {
            self.next_tick = now.plus(self.config.tick);
            if let Reconciliation::Idle(Some(at)) = self.reconciliation
                && now >= at
                && self.state.subscribed
            {
                self.start_reconciliation(now);
            }
            self.periodic(now);
        } else if self.next_job_wakeup().is_some_and(|t| t <= now) {
            let writes = self.jobs_tick(now);
            self.persist(writes, Vec::new(), None, Vec::new());
        }
        self.update_offer_interest(now);
    }

    // ----- instance bookkeeping ------------------------------------------

    /// Stores an instance, keeping the `wanting` index in step.
    fn put_instance(&mut self, inst: Instance) {
        if inst.needs_launch() {
            self.wanting.insert(inst.id.clone());
        } else {
            self.wanting.remove(&inst.id);
        }
        self.state.instances.insert(inst.id.clone(), inst);
    }

    /// Forgets an instance.
    fn remove_instance(&mut self, id: &InstanceId) {
        self.wanting.remove(id);
        self.state.instances.remove(id);
    }

    /// True when some instance of `app` wants a task.
    fn app_wants_launch(&self, app: &AppId) -> bool {
        let start = InstanceId::lower_bound(app);
        self.wanting
            .range(start.clone()..)
            .next()
            .is_some_and(|id| id.as_str().starts_with(start.as_str()))
    }

    fn new_instance_id(&mut self, app: &AppId) -> InstanceId {
        InstanceId::new(app, &format_uuid(&self.rng.uuid_v4()))
    }

    fn add_instances(&mut self, spec: &AppSpec, count: u32) -> Vec<Write> {
        if count > 0 {
            self.revive_wanted = true;
        }
        (0..count)
            .map(|_| {
                let id = self.new_instance_id(&spec.id);
                let inst = Instance::new(id, spec.id.clone(), spec.version);
                self.put_instance(inst.clone());
                Write::PutInstance(inst)
            })
            .collect()
    }

    /// Marks an instance for removal: kill its task, or forget it at once
    /// when it has none.
    fn decommission(&mut self, id: &InstanceId, now: Timestamp) -> Vec<Write> {
        let Some(mut inst) = self.state.instances.get(id).cloned() else { return Vec::new() };
        inst.goal = Goal::Decommissioned;
        if inst.active_task().is_none() && !self.launching.contains(id) {
            self.remove_instance(id);
            return vec![Write::DeleteInstance(id.clone())];
        }
        if !self.launching.contains(id)
            && let Some(task) = inst.task.as_mut()
        {
            task.kill_sent_at = Some(now);
            let call = kill_call(task);
            self.call(call);
        }
        self.put_instance(inst.clone());
        vec![Write::PutInstance(inst)]
    }

    // ----- offers and launches -------------------------------------------

    /// Instances that may launch now with the spec they run, in priority
    /// order (app id, then instance id: deterministic).
    fn launchable(&self, now: Timestamp) -> impl Iterator<Item = (&Instance, &AppSpec)> + '_ {
        self.wanting
            .iter()
            .filter(|id| !self.launching.contains(*id))
            .filter_map(|id| self.state.instances.get(id))
            .filter(move |i| self.state.delays.get(&i.app_id).is_none_or(|d| d.until <= now))
            .filter_map(|i| {
                // Instances of deleted apps (and jobs) never launch.
                if !self.state.apps.contains_key(&i.app_id)
                    && !self.state.run_specs.contains_key(&i.app_id)
                {
                    return None;
                }
                Some((i, self.state.spec_of(i)?))
            })
    }

    /// The waiting instances grouped by app configuration (instances of one
    /// configuration need the same, so placement matches them together),
    /// in priority order. Each group knows where its app's live instances
    /// of the same configuration run, for constraints (as Marathon, only
    /// the current configuration's instances count).
    fn launch_requests(&self, now: Timestamp) -> Vec<Request<'_>> {
        let exec = self.config.executor_resources;
        let mut requests: Vec<Request<'_>> = Vec::new();
        let mut index: BTreeMap<(&AppId, Timestamp), usize> = BTreeMap::new();
        for (inst, app) in self.launchable(now) {
            let key = (&inst.app_id, app.last_config_change_at);
            let at = *index.entry(key).or_insert_with(|| {
                requests.push(Request {
                    app: inst.app_id.clone(),
                    instances: Vec::new(),
                    task: app.resources,
                    executor: exec,
                    ports: app.port_requests(),
                    roles: app.placement.accepted_resource_roles.clone(),
                    constraints: app.placement.constraints.clone(),
                    placed: self.placed_instances(app),
                });
                requests.len() - 1
            });
            requests[at].instances.push(inst.id.clone());
        }
        requests
    }

    /// Where the live instances of `app`'s configuration run (only needed
    /// when it has constraints).
    fn placed_instances(&self, app: &AppSpec) -> Vec<Placed<'_>> {
        if app.placement.constraints.is_empty() {
            return Vec::new();
        }
        self.state
            .app_instances(&app.id)
            .filter(|i| i.goal == Goal::Running)
            .filter(|i| {
                self.state
                    .spec_of(i)
                    .is_some_and(|s| s.last_config_change_at == app.last_config_change_at)
            })
            .filter_map(|i| i.active_task())
            .map(|t| Placed { hostname: &t.hostname, facts: &t.facts })
            .collect()
    }

    fn launch_on(&mut self, offer: Offer, placed: Vec<Placement>, now: Timestamp) {
        let mut writes = Vec::new();
        let mut launches = Vec::new();
        let instances: Vec<InstanceId> = placed.iter().map(|p| p.instance.clone()).collect();
        let roles = |shares: &[placement::Share]| -> Vec<RoleResources> {
            shares
                .iter()
                .filter_map(|s| {
                    Some(RoleResources {
                        role: offer.pools.get(s.pool)?.role.clone(),
                        resources: s.resources,
                        ports: s.ports.clone(),
                    })
                })
                .collect()
        };
        for p in placed {
            let (task_roles, executor_roles) = (roles(&p.task), roles(&p.executor));
            let (id, host_ports) = (p.instance, p.host_ports);
            let Some(mut inst) = self.state.instances.get(&id).cloned() else { continue };
            let Some(app) = self.state.spec_of(&inst).cloned() else { continue };
            inst.incarnation += 1;
            let task_id = inst.id.task_id(inst.incarnation);
            let executor_id = format!("drover-executor.{task_id}");
            inst.task = Some(Task {
                id: task_id.clone(),
                agent_id: offer.agent_id.clone(),
                hostname: offer.hostname.clone(),
                facts: offer.facts.clone(),
                executor_id: executor_id.clone(),
                state: TaskState::Staging,
                staged_at: now,
                started_at: None,
                updated_at: now,
                message: None,
                kill_sent_at: None,
                host_ports: host_ports.clone(),
                health: None,
            });
            let mut env = app.task_env(&offer.hostname, &host_ports);
            env.insert("MESOS_TASK_ID".into(), task_id.to_string());
            let mut command = app.command.clone();
            self.job_launch_extras(&inst.id, &mut env, &mut command);
            let health_checks = app
                .health_checks
                .iter()
                .map(|h| HealthCheckSpec {
                    port: h.resolve_port(&host_ports),
                    port_index: None,
                    ..h.clone()
                })
                .collect();
            launches.push(LaunchSpec {
                task_id,
                instance_id: inst.id.clone(),
                app_id: app.id.clone(),
                app_version: app.version,
                agent_id: offer.agent_id.clone(),
                hostname: offer.hostname.clone(),
                executor_id,
                resources: app.resources,
                host_ports,
                executor_resources: self.config.executor_resources,
                task_roles,
                executor_roles,
                command,
                container: app.container.clone(),
                network: app.network.clone(),
                health_checks,
                env,
                secret_env: app.secret_refs(),
                labels: app.labels.clone(),
                kill_grace: app.kill_grace,
            });
            self.put_instance(inst.clone());
            writes.push(Write::PutInstance(inst));
        }
        if launches.is_empty() {
            self.count_declined(DECLINED_NO_DEMAND, 1);
            self.call(MesosCall::Decline {
                offer_ids: vec![offer.id],
                refuse: self.config.decline_refuse,
            });
            return;
        }
        self.state.stats.tasks_launched += launches.len() as u64;
        self.launching.extend(instances.iter().cloned());
        let accept = Effect::Call(MesosCall::Accept {
            offer_id: offer.id,
            launches,
            refuse: self.config.decline_refuse,
        });
        self.persist(writes, vec![accept], None, instances);
    }

    /// REVIVE when work appeared, SUPPRESS when there is none.
    fn update_offer_interest(&mut self, now: Timestamp) {
        if !self.state.subscribed || self.barrier.is_some() {
            return;
        }
        let wants = self.launchable(now).next().is_some();
        if wants && (self.suppressed || self.revive_wanted) {
            let allowed =
                self.last_revive.is_none_or(|t| now >= t.plus(self.config.min_revive_interval));
            if allowed {
                self.call(MesosCall::Revive);
                self.suppressed = false;
                self.revive_wanted = false;
                self.last_revive = Some(now);
            } else if let Some(t) = self.last_revive {
                self.next_tick = self.next_tick.min(t.plus(self.config.min_revive_interval));
            }
        } else if !wants {
            self.revive_wanted = false;
            if !self.suppressed {
                self.call(MesosCall::Suppress);
                self.suppressed = true;
            }
        }
    }

    // ----- status updates -------------------------------------------------

    fn apply_status(
        &mut self,
        mut inst: Instance,
        status: &StatusUpdate,
        now: Timestamp,
    ) -> Vec<Write> {
        let Some(task) = inst.task.as_mut() else { return Vec::new() };
        if task.state.is_terminal() {
            // Terminal is final; a late duplicate changes nothing.
            return Vec::new();
        }
        let state_changed = task.state != status.state;
        let mut changed = state_changed || task.message != status.message;
        let mut health_flip = None;
        if let Some(healthy) = status.healthy {
            let health = task.health.get_or_insert_with(Default::default);
            let flipped = health.alive != healthy
                || health.last_success.is_none() && health.last_failure.is_none();
            changed |= flipped;
            if flipped {
                health_flip = Some(healthy);
            }
            let cause = if healthy { None } else { status.message.as_deref() };
            health.record(healthy, cause, now);
        }
        task.state = status.state;
        task.updated_at = now;
        if status.message.is_some() {
            task.message.clone_from(&status.message);
        }
        if let Some(agent) = &status.agent_id {
            task.agent_id.clone_from(agent);
        }
        if status.state == TaskState::Running && task.started_at.is_none() {
            task.started_at = Some(now);
        }
        let ended = task.state.needs_replacement();
        let task = task.clone();
        if state_changed {
            self.notify(Notification::StatusUpdate {
                app_id: inst.app_id.clone(),
                instance_id: inst.id.clone(),
                task_id: task.id.clone(),
                state: task.state,
                message: task.message.clone().unwrap_or_default(),
                agent_id: task.agent_id.clone(),
                host: task.hostname.clone(),
                ports: task.host_ports.clone(),
                version: inst.app_version,
            });
        }
        if let Some(alive) = health_flip {
            self.notify(Notification::HealthChanged {
                app_id: inst.app_id.clone(),
                instance_id: inst.id.clone(),
                task_id: task.id.clone(),
                version: inst.app_version,
                alive,
            });
        }
        let mut writes = Vec::new();
        if state_changed && task.state == TaskState::Running {
            writes.extend(self.job_task_running(&inst, now));
        }
        if ended && self.is_job_instance(&inst) {
            writes.extend(self.job_task_ended(&inst, &task, now));
            return writes;
        }
        if ended {
            if inst.goal == Goal::Decommissioned {
                self.remove_instance(&inst.id);
                return vec![Write::DeleteInstance(inst.id)];
            }
            self.on_task_ended(&inst, &task, now);
        }
        if changed {
            self.put_instance(inst.clone());
            writes.push(Write::PutInstance(inst));
        }
        writes
    }

    fn on_task_ended(&mut self, inst: &Instance, task: &Task, now: Timestamp) {
        self.revive_wanted = true;
        let Some(app) = self.state.apps.get(&inst.app_id) else { return };
        if task.state.counts_for_backoff() {
            let failures = self.state.delays.get(&app.id).map_or(0, |d| d.failures) + 1;
            let until = now.plus(app.backoff.delay(failures));
            self.state.delays.insert(app.id.clone(), LaunchDelay { failures, until });
        }
        if task.state != TaskState::Killed && task.state != TaskState::Finished {
            self.state.last_failures.insert(
                app.id.clone(),
                TaskFailure {
                    task_id: task.id.clone(),
                    state: task.state,
                    message: task.message.clone().unwrap_or_default(),
                    host: task.hostname.clone(),
                    agent_id: task.agent_id.clone(),
                    timestamp: now,
                    version: inst.app_version,
                },
            );
        }
    }

    fn note_unknown(&mut self, status: &StatusUpdate, now: Timestamp) {
        if status.state.needs_replacement() {
            self.state.unknown_tasks.remove(&status.task_id);
            return;
        }
        if !self.state.unknown_tasks.contains_key(&status.task_id) {
            self.notify(Notification::UnknownTask {
                task_id: status.task_id.clone(),
                state: status.state,
                agent_id: status.agent_id.clone(),
            });
            if self.config.kill_unknown_tasks {
                self.call(MesosCall::Kill {
                    task_id: TaskId::from_raw(status.task_id.clone()),
                    agent_id: status.agent_id.clone(),
                    grace: None,
                });
            }
            self.state.unknown_tasks.insert(
                status.task_id.clone(),
                UnknownTask {
                    state: status.state,
                    agent_id: status.agent_id.clone(),
                    first_seen: now,
                },
            );
        } else if let Some(u) = self.state.unknown_tasks.get_mut(&status.task_id) {
            u.state = status.state;
        }
    }

    // ----- reconciliation -------------------------------------------------

    fn reconcile_pairs(&self, tasks: &BTreeSet<String>) -> Vec<(String, Option<String>)> {
        tasks
            .iter()
            .map(|t| {
                let agent = TaskId::from_raw(t.clone())
                    .parse()
                    .and_then(|(i, _)| self.state.instances.get(&i))
                    .and_then(|i| i.task.as_ref())
                    .map(|task| task.agent_id.clone());
                (t.clone(), agent)
            })
            .collect()
    }

    fn start_reconciliation(&mut self, now: Timestamp) {
        let pending: BTreeSet<String> = self
            .state
            .instances
            .values()
            .filter_map(|i| i.active_task())
            .map(|t| t.id.to_string())
            .collect();
        if pending.is_empty() {
            self.implicit_reconciliation(now);
            return;
        }
        let tasks = self.reconcile_pairs(&pending);
        self.call(MesosCall::Reconcile { tasks });
        self.reconciliation = Reconciliation::Explicit {
            pending,
            attempt: 1,
            retry_at: now.plus(self.config.reconcile_retry),
        };
    }

    fn finish_reconciliation_if_done(&mut self, now: Timestamp) {
        if matches!(&self.reconciliation, Reconciliation::Explicit { pending, .. } if pending.is_empty())
        {
            self.implicit_reconciliation(now);
        }
    }

    fn implicit_reconciliation(&mut self, now: Timestamp) {
        self.call(MesosCall::Reconcile { tasks: Vec::new() });
        self.reconciliation = Reconciliation::Idle(Some(now.plus(self.config.reconcile_interval)));
    }

    // ----- periodic work ------------------------------------------------

    fn periodic(&mut self, now: Timestamp) {
        let mut writes = Vec::new();
        let scan = now >= self.next_scan;
        if scan {
            self.next_scan = now.plus(self.config.kill_retry.min(Duration::from_secs(5)));
        }
        let ids: Vec<InstanceId> =
            if scan { self.state.instances.keys().cloned().collect() } else { Vec::new() };
        for id in ids {
            if self.launching.contains(&id) {
                continue;
            }
            let Some(inst) = self.state.instances.get(&id) else { continue };
            let Some(task) = inst.active_task() else {
                if inst.goal == Goal::Decommissioned {
                    let app = inst.app_id.clone();
                    self.remove_instance(&id);
                    self.release_run_spec(&app);
                    writes.push(Write::DeleteInstance(id));
                }
                continue;
            };
            let overdue_launch = task.state == TaskState::Staging
                && now >= task.staged_at.plus(self.config.launch_timeout);
            let kill_due = inst.goal == Goal::Decommissioned || overdue_launch;
            let retry_due = task.kill_sent_at.is_none_or(|t| now >= t.plus(self.config.kill_retry));
            if kill_due && retry_due && self.state.subscribed {
                let call = kill_call(task);
                if let Some(t) = self.state.instances.get_mut(&id).and_then(|i| i.task.as_mut()) {
                    t.kill_sent_at = Some(now);
                }
                self.call(call);
            }
        }
        // A delay that expired makes work appear.
        let expired: Vec<AppId> = self
            .state
            .delays
            .iter()
            .filter(|(_, d)| d.until <= now)
            .map(|(a, _)| a.clone())
            .collect();
        for app in expired {
            if self.app_wants_launch(&app) {
                self.revive_wanted = true;
            }
        }
        if scan {
            writes.extend(self.converge_idle_apps(now));
            writes.extend(self.check_job_instances(now));
        }
        writes.extend(self.jobs_tick(now));
        self.persist(writes, Vec::new(), None, Vec::new());
        self.drive_deployments(now);
    }

    /// Keeps apps that no deployment holds at their instance count (after a
    /// forced cancel, or when the store lost instance records): missing
    /// instances are created, surplus ones killed in the app's kill order.
    fn converge_idle_apps(&mut self, now: Timestamp) -> Vec<Write> {
        let busy: BTreeSet<AppId> =
            self.state.deployments.values().flat_map(|d| d.affected_apps().cloned()).collect();
        let idle: Vec<AppSpec> =
            self.state.apps.values().filter(|a| !busy.contains(&a.id)).cloned().collect();
        let mut writes = Vec::new();
        for app in idle {
            let live: Vec<Instance> = self
                .state
                .app_instances(&app.id)
                .filter(|i| i.goal == Goal::Running)
                .cloned()
                .collect();
            let have = u32::try_from(live.len()).unwrap_or(u32::MAX);
            if have < app.instances {
                writes.extend(self.add_instances(&app, app.instances - have));
            } else if have > app.instances {
                let surplus = (have - app.instances) as usize;
                for id in crate::deployment::select_victims(&live, surplus, app.kill_selection) {
                    writes.extend(self.decommission(&id, now));
                }
            }
        }
        writes
    }

    // ----- effects ------------------------------------------------------

    fn notify(&mut self, n: Notification) {
        let outcome = match &n {
            Notification::DeploymentSuccess(_) => Some("success"),
            Notification::DeploymentFailed { canceled: true, .. } => Some("canceled"),
            Notification::DeploymentFailed { canceled: false, .. } => Some("failed"),
            _ => None,
        };
        if let Some(outcome) = outcome {
            *self.state.stats.deployments.entry(outcome).or_default() += 1;
        }
        self.effects.push_back(Effect::Notify(n));
    }

    fn count_declined(&mut self, reason: &'static str, offers: usize) {
        *self.state.stats.offers_declined.entry(reason).or_default() += offers as u64;
    }

    fn call(&mut self, call: MesosCall) {
        self.emit(Effect::Call(call));
    }

    fn emit(&mut self, effect: Effect) {
        if matches!(effect, Effect::Call(_)) && (self.barrier.is_some() || !self.state.subscribed) {
            if self.state.subscribed {
                self.held_calls.push(effect);
            }
            return;
        }
        self.effects.push_back(effect);
    }

    /// Emits a `Persist` for `writes` (if any) and schedules `then` after
    /// it; with no writes, `then` is emitted at once.
    fn persist(
        &mut self,
        writes: Vec<Write>,
        then: Vec<Effect>,
        request: Option<RequestId>,
        launching: Vec<InstanceId>,
    ) -> Option<PersistToken> {
        if writes.is_empty() {
            for e in then {
                self.emit(e);
            }
            return None;
        }
        let token = PersistToken(self.next_token);
        self.next_token += 1;
        self.effects.push_back(Effect::Persist { token, writes });
        self.after_persist.insert(token, AfterPersist { then, request, launching });
        Some(token)
    }
}

/// The reason placement gave most often in a round (the first in `Reason`
/// order on a tie); [`DECLINED_NO_DEMAND`] when it rejected nothing (the
/// offers left over once every waiting instance was placed).
fn main_reason(reports: &BTreeMap<AppId, PlacementReport>) -> &'static str {
    let mut by_reason: BTreeMap<placement::Reason, u64> = BTreeMap::new();
    for (reason, n) in reports.values().flat_map(|r| &r.rejected) {
        *by_reason.entry(*reason).or_default() += u64::from(*n);
    }
    let mut best: Option<(placement::Reason, u64)> = None;
    for (reason, n) in by_reason {
        if best.is_none_or(|(_, m)| n > m) {
            best = Some((reason, n));
        }
    }
    best.map_or(DECLINED_NO_DEMAND, |(r, _)| r.name())
}

fn kill_call(task: &Task) -> MesosCall {
    MesosCall::Kill { task_id: task.id.clone(), agent_id: Some(task.agent_id.clone()), grace: None }
}

mod commands;
mod deploy;
mod jobs;

#[cfg(test)]
mod tests;
