//! What a user wants for a batch job (Chronos' job, with the Kubernetes
//! CronJob extensions users now expect), and the records of its runs.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use drover_time::Timestamp;

use crate::app::{
    AppSpec, BackoffPolicy, CommandSpec, ContainerSpec, KillSelection, NetworkMode, PlacementSpec,
    Resources, UpgradeStrategy,
};
use crate::ids::{AppId, InstanceId};
use crate::schedule::Schedule;

/// A job's name: Chronos' `[\w.-]+` (letters, digits, `_`, `.`, `-`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobName(String);

/// Why a job name is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidJobName;

impl JobName {
    /// Parses a job name.
    pub fn parse(raw: &str) -> Result<JobName, InvalidJobName> {
        let ok = !raw.is_empty()
            && raw.len() <= 200
            && raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
        if ok { Ok(JobName(raw.to_owned())) } else { Err(InvalidJobName) }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The synthetic app id a job's run tasks are launched under: in the
    /// reserved group `/drover.jobs`, a path segment made of the name
    /// (lowercased, `_` as `-`) and a short hash that keeps distinct names
    /// apart. Run tasks reuse the app machinery (placement, executor,
    /// status handling) under this id.
    pub fn run_app_id(&self) -> AppId {
        let mut label: String = self
            .0
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
            .collect::<String>()
            .trim_matches('-')
            .to_owned();
        label.truncate(40);
        let label = label.trim_matches('-');
        // FNV-1a: a stable, dependency-free hash.
        let hash = self.0.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        let segment = if label.is_empty() {
            format!("j{:08x}", hash as u32)
        } else {
            format!("{label}-{:08x}", hash as u32)
        };
        // The label is lowercase alphanumerics and inner dashes, and ends
        // with the hex hash: always a valid path segment.
        AppId::from_canonical(format!("{JOBS_GROUP}/{segment}"))
    }
}

/// The reserved group under which job runs are launched; users cannot
/// create apps in it.
pub const JOBS_GROUP: &str = "/drover.jobs";

impl fmt::Display for JobName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for JobName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What happens when a run is due while another runs (Kubernetes' names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConcurrencyPolicy {
    /// Run them side by side (Chronos' `concurrent: true`).
    Allow,
    /// Skip the new run (Chronos' default, `concurrent: false`).
    #[default]
    Forbid,
    /// Kill the running one and start the new one.
    Replace,
}

/// How a failed run is retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (Chronos' `retries`, default 2).
    pub retries: u32,
    /// Delay before the first retry.
    pub backoff: Duration,
    /// Multiplier per further retry.
    pub backoff_factor: f64,
    /// Cap of the delay.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 2,
            backoff: Duration::from_secs(60),
            backoff_factor: 1.0,
            max_backoff: Duration::from_secs(3600),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `n` (1 = the first retry).
    pub fn delay(&self, n: u32) -> Duration {
        if n == 0 {
            return Duration::ZERO;
        }
        let exp = i32::try_from(n - 1).unwrap_or(i32::MAX);
        let secs = self.backoff.as_secs_f64() * self.backoff_factor.max(1.0).powi(exp);
        if secs.is_finite() {
            // Finite but past `Duration::MAX` (a 60th doubling) is the cap too.
            Duration::try_from_secs_f64(secs.max(0.0))
                .map_or(self.max_backoff, |d| d.min(self.max_backoff))
        } else {
            self.max_backoff
        }
    }
}

/// A validated job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    /// The unique name.
    pub name: JobName,
    /// The command line (with `shell`) or the program (without).
    pub command: String,
    /// Run `command` through `/bin/sh -c` (default true).
    pub shell: bool,
    /// Arguments appended when `shell` is false.
    pub arguments: Vec<String>,
    /// When it runs by itself; `None` for a dependent job.
    pub schedule: Option<Schedule>,
    /// Jobs that must succeed before this one runs (a dependent job).
    pub parents: BTreeSet<JobName>,
    /// Paused: no scheduled or dependent run (manual runs still work).
    pub disabled: bool,
    /// What a due run does while another runs.
    pub concurrency: ConcurrencyPolicy,
    /// A final failure still releases the dependents.
    pub soft_error: bool,
    /// Retries and their backoff.
    pub retry: RetryPolicy,
    /// A run that starts later than this after its due time is recorded as
    /// missed instead (Kubernetes' `startingDeadlineSeconds`).
    pub starting_deadline: Option<Duration>,
    /// Resources of each run's task.
    pub resources: Resources,
    /// The Docker container, if any.
    pub container: Option<ContainerSpec>,
    /// Host networking or a Docker bridge.
    pub network: NetworkMode,
    /// Environment variables.
    pub env: BTreeMap<String, String>,
    /// Where runs may be placed.
    pub placement: PlacementSpec,
    /// A run's task is killed after this long.
    pub max_completion_time: Option<Duration>,
    /// Owners (Chronos' comma-separated emails).
    pub owner: String,
    /// The owner's name.
    pub owner_name: String,
    /// Free text.
    pub description: String,
    /// Successful runs kept in the history.
    pub success_history_limit: u32,
    /// Failed runs kept in the history.
    pub failure_history_limit: u32,
    /// When the spec was last changed.
    pub version: Timestamp,
}

/// The label that names the job on the synthetic app spec of its runs.
pub const JOB_LABEL: &str = "DROVER_JOB";

impl JobSpec {
    /// The exclusive lower bound of the job's next due times: the last
    /// fired one, or for a job that never fired, its ISO 8601 start (so a
    /// start in the past runs at once, as Chronos) or, for a cron
    /// schedule, the time the job was saved (no retroactive runs).
    pub fn fire_after(&self, schedule: &Schedule, state: &JobState) -> Timestamp {
        if let Some(t) = state.last_fired {
            return t;
        }
        match schedule.start() {
            Some(start) => start.minus(Duration::from_millis(1)),
            None => self.version,
        }
    }

    /// When the schedule next fires; `None` for dependent, disabled and
    /// exhausted jobs.
    pub fn next_due(&self, state: &JobState) -> Option<Timestamp> {
        if self.disabled || state.exhausted {
            return None;
        }
        let schedule = self.schedule.as_ref()?;
        schedule.next_after(self.fire_after(schedule, state))
    }

    /// The app spec each run's task is launched from: the job's command,
    /// container, resources and placement under [`JobName::run_app_id`].
    /// Its version is the job's, so a changed job launches its new spec.
    pub fn run_spec(&self) -> AppSpec {
        let command = if self.shell {
            CommandSpec::Shell(self.command.clone())
        } else {
            let mut argv = vec![self.command.clone()];
            argv.extend(self.arguments.iter().cloned());
            CommandSpec::Argv(argv)
        };
        let mut env = self.env.clone();
        env.insert("CHRONOS_JOB_NAME".into(), self.name.0.clone());
        env.insert("CHRONOS_JOB_OWNER".into(), self.owner.clone());
        env.insert("CHRONOS_RESOURCE_CPU".into(), self.resources.cpus.to_string());
        env.insert("CHRONOS_RESOURCE_MEM".into(), self.resources.mem.to_string());
        env.insert("CHRONOS_RESOURCE_DISK".into(), self.resources.disk.to_string());
        AppSpec {
            id: self.name.run_app_id(),
            command: Some(command),
            container: self.container.clone(),
            network: self.network.clone(),
            port_definitions: Vec::new(),
            require_ports: false,
            health_checks: Vec::new(),
            instances: 0,
            resources: self.resources,
            placement: self.placement.clone(),
            env,
            secrets: BTreeMap::new(),
            secret_env: BTreeMap::new(),
            labels: BTreeMap::from([(JOB_LABEL.to_owned(), self.name.0.clone())]),
            backoff: BackoffPolicy::default(),
            kill_selection: KillSelection::default(),
            upgrade: UpgradeStrategy::default(),
            dependencies: Vec::new(),
            progress_deadline: Duration::from_secs(600),
            rollback_on_failure: false,
            kill_grace: None,
            version: self.version,
            last_scaling_at: self.version,
            last_config_change_at: self.version,
        }
    }
}

/// Why a run exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// Its schedule came due at this time.
    Schedule(Timestamp),
    /// All its parents succeeded.
    Dependency,
    /// A user asked (`PUT /v1/scheduler/job/{name}`), with extra arguments.
    Manual {
        /// Arguments appended to the command.
        arguments: Vec<String>,
    },
}

/// How a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RunStatus {
    /// Waiting for its task to start (or for a retry's backoff).
    Queued,
    /// Its task runs.
    Running,
    /// Its task finished with status 0.
    Succeeded,
    /// Every attempt failed.
    Failed,
    /// Killed by a user, or replaced (`REPLACE`).
    Killed,
    /// Due, but too late to start (`startingDeadlineSeconds`), or skipped
    /// because another run was active (`FORBID`).
    Missed,
}

impl RunStatus {
    /// The name the API and metrics use (`queued`, `running`, ...).
    pub fn name(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Killed => "killed",
            RunStatus::Missed => "missed",
        }
    }

    /// True once nothing more will happen to the run.
    pub fn is_final(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Running)
    }
}

/// One run of a job: the record Drover keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRun {
    /// Unique id (a UUID).
    pub id: String,
    /// The job.
    pub job: JobName,
    /// Why it runs.
    pub trigger: Trigger,
    /// Its state.
    pub status: RunStatus,
    /// Attempts started so far (1 = the first).
    pub attempts: u32,
    /// Mesos task ids of its attempts, in order.
    pub task_ids: Vec<String>,
    /// When it was created (queued).
    pub created_at: Timestamp,
    /// When its first task started.
    pub started_at: Option<Timestamp>,
    /// When it ended.
    pub finished_at: Option<Timestamp>,
    /// The last task message (exit status, error).
    pub message: String,
    /// No attempt before this time (retry backoff).
    pub not_before: Timestamp,
    /// The instance of the current attempt, while one exists.
    pub instance_id: Option<InstanceId>,
}

impl JobRun {
    /// The arguments a manual run appends to the command.
    pub fn extra_arguments(&self) -> &[String] {
        match &self.trigger {
            Trigger::Manual { arguments } => arguments,
            _ => &[],
        }
    }
}

/// What Drover remembers about a job between runs (persisted).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobState {
    /// The due time of the last scheduled run fired (or recorded missed):
    /// the schedule resumes after it, so no run happens twice.
    pub last_fired: Option<Timestamp>,
    /// Parents that succeeded since this job's last dependent run.
    pub parents_done: BTreeSet<JobName>,
    /// Successful runs.
    pub success_count: u64,
    /// Failed runs.
    pub error_count: u64,
    /// Runs recorded as missed.
    pub missed_count: u64,
    /// When the last run succeeded.
    pub last_success: Option<Timestamp>,
    /// When the last run failed.
    pub last_error: Option<Timestamp>,
    /// Failures since the last success.
    pub errors_since_last_success: u64,
    /// Set when an `R<n>` schedule ran out; the job is then disabled.
    pub exhausted: bool,
}

impl JobState {
    /// Chronos' last result: `success`, `failure` or `fresh` (never ran).
    pub fn last_result(&self) -> &'static str {
        match (self.last_success, self.last_error) {
            (None, None) => "fresh",
            (Some(s), Some(e)) if e > s => "failure",
            (None, Some(_)) => "failure",
            _ => "success",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_follow_chronos() {
        for ok in ["a", "nightly-backup", "etl.step_2", "A-B.c_D"] {
            assert!(JobName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "with space", "slash/y", "ümlaut", &"x".repeat(201)] {
            assert_eq!(JobName::parse(bad), Err(InvalidJobName), "{bad}");
        }
    }

    #[test]
    fn run_app_ids_are_readable_and_apart() {
        let id = JobName::parse("Nightly_Backup").unwrap().run_app_id();
        assert!(id.as_str().starts_with("/drover.jobs/nightly-backup-"), "{id}");
        let a = JobName::parse("a.b").unwrap().run_app_id();
        let b = JobName::parse("a-b").unwrap().run_app_id();
        assert_ne!(a, b, "names that read alike get distinct ids");
        assert!(JobName::parse("___").unwrap().run_app_id().as_str().starts_with("/drover.jobs/j"));
    }

    #[test]
    fn retry_delays_grow_to_the_cap() {
        let p = RetryPolicy {
            retries: 5,
            backoff: Duration::from_secs(10),
            backoff_factor: 2.0,
            max_backoff: Duration::from_secs(50),
        };
        let d: Vec<u64> = (0..=5).map(|n| p.delay(n).as_secs()).collect();
        assert_eq!(d, vec![0, 10, 20, 40, 50, 50]);
    }

    /// Found by `fuzz/fuzz_targets/job_json.rs`: with `retries: 3600` and
    /// `retryBackoffFactor: 2`, the 60th retry's delay (60 s × 2^59) was
    /// finite but too long for a `Duration`, and panicked.
    #[test]
    fn retry_delays_past_duration_max_are_the_cap() {
        let p = RetryPolicy {
            retries: 3600,
            backoff: Duration::from_secs(60),
            backoff_factor: 2.0,
            max_backoff: Duration::from_secs(600),
        };
        for n in [59, 60, 61, 1000, 1025, 3600, u32::MAX] {
            assert_eq!(p.delay(n), Duration::from_secs(600), "retry {n}");
        }
    }

    #[test]
    fn last_result_reads_like_chronos() {
        let t = Timestamp::from_secs;
        let mut st = JobState::default();
        assert_eq!(st.last_result(), "fresh");
        st.last_error = Some(t(5));
        assert_eq!(st.last_result(), "failure");
        st.last_success = Some(t(6));
        assert_eq!(st.last_result(), "success");
    }

    proptest! {
        /// Property: every valid job name maps to a valid app id in the
        /// reserved group.
        #[test]
        fn every_name_maps_to_a_valid_app_id(raw in "[A-Za-z0-9_.-]{1,200}") {
            let id = JobName::parse(&raw).unwrap().run_app_id();
            prop_assert!(AppId::parse(id.as_str()).is_ok_and(|p| p == id));
            prop_assert!(id.as_str().starts_with("/drover.jobs/"));
        }
    }
}
