//! Chronos 3.x job JSON: the wire types ([`JobJson`] in, [`JobView`] out),
//! parsing and validation into a [`JobSpec`], and rendering back.
//!
//! The wire types are not the domain's: [`parse_job`] converts a request
//! body into a [`JobSpec`] explicitly, collecting every problem, and
//! [`render_job`] converts a spec and what Drover remembers about the job
//! into the JSON Chronos clients read. Unknown fields are ignored, as
//! Chronos ignores them.
//!
//! # Fields
//!
//! | field | default | notes |
//! |---|---|---|
//! | `name` | required | Chronos' `[\w.-]+`, at most 200 characters |
//! | `command` | required | with `shell` (default true) run by `/bin/sh -c`; otherwise the program, followed by `arguments` |
//! | `schedule` | see below | `R[n]/<start>/<period>` (ISO 8601) or, Drover's extension, a 5-field cron expression or `@daily`-style shorthand |
//! | `scheduleTimeZone` | none | IANA zone the schedule is read in |
//! | `parents` | none | a dependent job; exclusive with `schedule` |
//! | `cpus`, `mem`, `disk` | 0.1, 128, 256 | 0 or absent means the default, as Chronos' `--mesos_task_*` |
//! | `retries` | 2 | retried after `retryDelaySeconds` (default 60) |
//! | `disabled`, `softError` | false | |
//! | `concurrent` | false | false is `FORBID`, true is `ALLOW` |
//! | `maxCompletionTime` | 0 | seconds; 0 means no limit |
//! | `container` | none | Docker only: `image`, `forcePullImage`, `network` `HOST`/`BRIDGE`, `volumes`, `parameters`, `portMappings` (`BRIDGE`) |
//! | `environmentVariables` | [] | `[{name, value}]` |
//! | `constraints` | [] | `[[attribute, EQUALS\|LIKE\|UNLIKE, value]]`; `EQUALS` is Marathon's `CLUSTER` with a value |
//! | `description`, `owner`, `ownerName` | "" | |
//!
//! A job posted with neither `schedule` nor `parents` runs once, now
//! (Chronos' `R1//PT24H`).
//!
//! **Accepted and ignored:** `highPriority`, `dataProcessingJobType`,
//! `epsilon` and `async` (any value; Drover has one launch queue and never
//! skips a run), `runAsUser` when empty, `root` or the Mesos user Drover
//! runs tasks as, and `executor`, `executorFlags`, `taskInfoData`, `fetch`,
//! `uris` when empty. The read-only fields of `GET` output are ignored when
//! sent back.
//!
//! **Refused** (400), because Drover cannot honour them: non-empty `fetch`
//! or `uris` (bake the files into the Docker image), a custom `executor`
//! (and its `executorFlags` and `taskInfoData`), another `runAsUser`,
//! `container.type` `MESOS` (only Docker images are supported), `USER`
//! networks, and persistent or external volumes.
//!
//! **Drover's extensions**: `concurrencyPolicy` (`ALLOW`, `FORBID`,
//! `REPLACE`; overrides `concurrent`), `startingDeadlineSeconds` (a due run
//! that cannot start within it is recorded as missed), `retryDelaySeconds`,
//! `retryBackoffFactor` (default 1), `maxRetryDelaySeconds` (default 3600),
//! `successfulRunsHistoryLimit` and `failedRunsHistoryLimit` (default 3
//! each, at most 1000). Seconds have millisecond precision.
//!
//! **Output** adds the read-only `successCount`, `errorCount`,
//! `lastSuccess`, `lastError` (ISO 8601 or ""), `errorsSinceLastSuccess`,
//! and Drover's `nextRunAt` and `lastRunStatus` (null when none). `schedule`
//! is written as Chronos writes it back: the remaining repetitions and the
//! next start ([`Schedule::describe`]). `disabled` is also true once an
//! `R<n>` schedule is exhausted.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use drover_time::Timestamp;
use sched_core::app::{
    ContainerSpec, NetworkMode, PlacementSpec, PortMapping, Resources, Volume, VolumeMode,
};
use sched_core::constraints::{Constraint, Operator};
use sched_core::format_version;
use sched_core::job::{ConcurrencyPolicy, JobName, JobSpec, JobState, RetryPolicy, RunStatus};
use sched_core::schedule::Schedule;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// Chronos' `--mesos_task_cpu` default.
pub const DEFAULT_CPUS: f64 = 0.1;
/// Chronos' `--mesos_task_mem` default, MB.
pub const DEFAULT_MEM: f64 = 128.0;
/// Chronos' `--mesos_task_disk` default, MB.
pub const DEFAULT_DISK: f64 = 256.0;
/// Runs of each outcome kept by default (Kubernetes' CronJob default).
pub const DEFAULT_HISTORY_LIMIT: u32 = 3;
/// The most runs of each outcome a job may keep.
pub const MAX_HISTORY_LIMIT: u32 = 1000;
/// Chronos' schedule for a job posted without a schedule or parents: once,
/// now.
pub const RUN_ONCE_NOW: &str = "R1//PT24H";
/// The longest duration any `...Seconds` field may give: ten years.
const MAX_SECONDS: f64 = 315_360_000.0;

/// What parsing and rendering need besides the job itself.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The current time: an ISO 8601 schedule with an empty start begins
    /// now, and output describes the schedule as of now.
    pub now: Timestamp,
    /// The Mesos user job tasks run as (`runAsUser` on output; accepted on
    /// input besides "" and `root`).
    pub mesos_user: &'a str,
}

/// Why a job was refused: every problem found, each a sentence fragment
/// naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidJob(pub Vec<String>);

impl InvalidJob {
    fn one(problem: impl Into<String>) -> Self {
        InvalidJob(vec![problem.into()])
    }

    /// The problems as one message (Chronos answers with one).
    pub fn message(&self) -> String {
        self.0.join("; ")
    }
}

// ----- wire types: in ---------------------------------------------------------

/// A job as clients send it (Chronos 3.x plus Drover's extensions). Every
/// field is optional here; [`parse_job`] applies defaults and rules.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct JobJson {
    /// The unique name.
    pub name: Option<String>,
    /// The command.
    pub command: Option<String>,
    /// Run `command` through a shell.
    #[serde(deserialize_with = "loose_bool")]
    pub shell: Option<bool>,
    /// Arguments (without a shell).
    pub arguments: Option<Vec<String>>,
    /// ISO 8601 or cron.
    pub schedule: Option<String>,
    /// IANA zone of the schedule.
    pub schedule_time_zone: Option<String>,
    /// Jobs this one depends on.
    pub parents: Option<Vec<String>>,
    /// Free text.
    pub description: Option<String>,
    /// Owners' emails.
    pub owner: Option<String>,
    /// The owner's name.
    pub owner_name: Option<String>,
    /// CPU shares.
    #[serde(deserialize_with = "loose_number")]
    pub cpus: Option<f64>,
    /// Memory, MB.
    #[serde(deserialize_with = "loose_number")]
    pub mem: Option<f64>,
    /// Disk, MB.
    #[serde(deserialize_with = "loose_number")]
    pub disk: Option<f64>,
    /// Retries after the first attempt.
    #[serde(deserialize_with = "whole")]
    pub retries: Option<i64>,
    /// Paused.
    #[serde(deserialize_with = "loose_bool")]
    pub disabled: Option<bool>,
    /// Runs may overlap.
    #[serde(deserialize_with = "loose_bool")]
    pub concurrent: Option<bool>,
    /// A final failure still releases dependents.
    #[serde(deserialize_with = "loose_bool")]
    pub soft_error: Option<bool>,
    /// Seconds after which a run's task is killed (0 = none).
    #[serde(deserialize_with = "whole")]
    pub max_completion_time: Option<i64>,
    /// The Docker container.
    pub container: Option<ContainerJson>,
    /// Environment variables.
    pub environment_variables: Option<Vec<EnvVarJson>>,
    /// `[[attribute, operator, value]]`.
    pub constraints: Option<Vec<Vec<String>>>,
    /// Mesos fetcher URIs (refused unless empty).
    pub fetch: Option<Vec<Value>>,
    /// Deprecated fetcher URIs (refused unless empty).
    pub uris: Option<Vec<Value>>,
    /// A custom executor (refused unless empty).
    pub executor: Option<String>,
    /// Flags of a custom executor (refused unless empty).
    pub executor_flags: Option<String>,
    /// Data for a custom executor (refused unless empty).
    pub task_info_data: Option<String>,
    /// The user tasks run as.
    pub run_as_user: Option<String>,
    /// Drover: `ALLOW`, `FORBID` or `REPLACE`.
    pub concurrency_policy: Option<String>,
    /// Drover: how late a due run may start.
    #[serde(deserialize_with = "whole")]
    pub starting_deadline_seconds: Option<i64>,
    /// Drover: delay before the first retry.
    #[serde(deserialize_with = "loose_number")]
    pub retry_delay_seconds: Option<f64>,
    /// Drover: multiplier of the delay per further retry.
    #[serde(deserialize_with = "loose_number")]
    pub retry_backoff_factor: Option<f64>,
    /// Drover: cap of the retry delay.
    #[serde(deserialize_with = "loose_number")]
    pub max_retry_delay_seconds: Option<f64>,
    /// Drover: successful runs kept.
    #[serde(deserialize_with = "whole")]
    pub successful_runs_history_limit: Option<i64>,
    /// Drover: failed runs kept.
    #[serde(deserialize_with = "whole")]
    pub failed_runs_history_limit: Option<i64>,
}

/// Chronos' container (flat: `image` is not under `docker`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerJson {
    /// `DOCKER` (default) or `MESOS`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The image.
    pub image: Option<String>,
    /// Pull even when present.
    #[serde(deserialize_with = "loose_bool")]
    pub force_pull_image: Option<bool>,
    /// `HOST` (default), `BRIDGE` or `USER`.
    pub network: Option<String>,
    /// A `USER` network's name (refused unless empty).
    pub network_name: Option<String>,
    /// CNI networks (refused unless empty).
    pub network_infos: Option<Vec<Value>>,
    /// Host paths to mount.
    pub volumes: Option<Vec<VolumeJson>>,
    /// `docker run` parameters.
    pub parameters: Option<Vec<ParameterJson>>,
    /// Port mappings (`BRIDGE` only).
    pub port_mappings: Option<Vec<PortMappingJson>>,
}

/// A volume.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct VolumeJson {
    /// Path inside the container.
    pub container_path: Option<String>,
    /// Path on the agent.
    pub host_path: Option<String>,
    /// `RO` or `RW` (default).
    pub mode: Option<String>,
    /// A persistent volume (refused).
    pub persistent: Option<Value>,
    /// An external volume (refused).
    pub external: Option<Value>,
}

/// A `docker run --key=value` parameter.
#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct ParameterJson {
    /// The option name.
    pub key: Option<String>,
    /// Its value.
    pub value: Option<String>,
}

/// A port mapping of a bridged container.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PortMappingJson {
    /// The port inside the container.
    #[serde(deserialize_with = "whole")]
    pub container_port: Option<i64>,
    /// The host port (0 or absent: any).
    #[serde(deserialize_with = "whole")]
    pub host_port: Option<i64>,
    /// `tcp` (default) or `udp`.
    pub protocol: Option<String>,
}

/// An environment variable.
#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct EnvVarJson {
    /// The name.
    pub name: Option<String>,
    /// The value.
    pub value: Option<String>,
}

/// A boolean, or `"true"`/`"false"` as Chronos' Jackson reader accepts.
fn loose_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(other) => Err(D::Error::custom(format!("expected true or false, got {other}"))),
    }
}

/// A number, or a string holding one.
fn loose_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let value = Option::<Value>::deserialize(d)?;
    let n = match &value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    match n.filter(|n| n.is_finite()) {
        Some(n) => Ok(Some(n)),
        None => Err(D::Error::custom(format!(
            "expected a number, got {}",
            value.unwrap_or(Value::Null)
        ))),
    }
}

/// A whole number (`2` or `2.0`), or a string holding one.
fn whole<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let value = Option::<Value>::deserialize(d)?;
    let from_f64 = |f: f64| {
        // Exactly representable in i64 (and so converted without loss).
        (f.fract() == 0.0 && f.abs() < 9.0e18).then_some(f as i64)
    };
    let n = match &value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().and_then(from_f64)),
        Some(Value::String(s)) => {
            let s = s.trim();
            s.parse::<i64>().ok().or_else(|| s.parse::<f64>().ok().and_then(from_f64))
        }
        Some(_) => None,
    };
    n.map(Some).ok_or_else(|| {
        D::Error::custom(format!("expected a whole number, got {}", value.unwrap_or(Value::Null)))
    })
}

// ----- wire types: out ----------------------------------------------------------

/// A job as Drover shows it: Chronos 3.x's fields (in its `JobSerializer`
/// order) and Drover's extensions.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    /// The name.
    pub name: String,
    /// The command.
    pub command: String,
    /// Run through a shell.
    pub shell: bool,
    /// Always "" (no custom executors).
    pub executor: String,
    /// Always "".
    pub executor_flags: String,
    /// Always "".
    pub task_info_data: String,
    /// Retries.
    pub retries: u32,
    /// Owners.
    pub owner: String,
    /// The owner's name.
    pub owner_name: String,
    /// Free text.
    pub description: String,
    /// Successful runs.
    pub success_count: u64,
    /// Failed runs.
    pub error_count: u64,
    /// When the last run succeeded, or "".
    pub last_success: String,
    /// When the last run failed, or "".
    pub last_error: String,
    /// CPU shares.
    pub cpus: f64,
    /// Disk, MB.
    pub disk: f64,
    /// Memory, MB.
    pub mem: f64,
    /// Paused, or an exhausted `R<n>` schedule.
    pub disabled: bool,
    /// A final failure releases dependents.
    pub soft_error: bool,
    /// Always false.
    pub data_processing_job_type: bool,
    /// Failures since the last success.
    pub errors_since_last_success: u64,
    /// Always empty.
    pub fetch: Vec<Value>,
    /// Always empty.
    pub uris: Vec<String>,
    /// Environment variables, by name.
    pub environment_variables: Vec<EnvVarJson>,
    /// Arguments.
    pub arguments: Vec<String>,
    /// Always false.
    pub high_priority: bool,
    /// The Mesos user tasks run as.
    pub run_as_user: String,
    /// True with `concurrencyPolicy` `ALLOW`.
    pub concurrent: bool,
    /// Seconds, 0 for none.
    pub max_completion_time: u64,
    /// The Docker container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerView>,
    /// `[[attribute, operator, value]]`.
    pub constraints: Vec<Vec<String>>,
    /// The schedule as of now (scheduled jobs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// The schedule's zone, or "" (scheduled jobs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_time_zone: Option<String>,
    /// Parents (dependent jobs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parents: Option<Vec<String>>,
    /// Drover: `ALLOW`, `FORBID` or `REPLACE`.
    pub concurrency_policy: &'static str,
    /// Drover: how late a due run may start, or null.
    pub starting_deadline_seconds: Option<u64>,
    /// Drover: delay before the first retry.
    pub retry_delay_seconds: f64,
    /// Drover: multiplier of the retry delay.
    pub retry_backoff_factor: f64,
    /// Drover: cap of the retry delay.
    pub max_retry_delay_seconds: f64,
    /// Drover: successful runs kept.
    pub successful_runs_history_limit: u32,
    /// Drover: failed runs kept.
    pub failed_runs_history_limit: u32,
    /// Drover: when the schedule next fires, or null.
    pub next_run_at: Option<String>,
    /// Drover: the status of the latest run, or null.
    pub last_run_status: Option<&'static str>,
}

/// A container as Drover shows it (Chronos' flat shape).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerView {
    /// Always `DOCKER`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The image.
    pub image: String,
    /// `HOST` or `BRIDGE`.
    pub network: &'static str,
    /// Mounted host paths.
    pub volumes: Vec<VolumeView>,
    /// Pull even when present.
    pub force_pull_image: bool,
    /// `docker run` parameters.
    pub parameters: Vec<ParameterJson>,
    /// Port mappings (`BRIDGE`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_mappings: Option<Vec<PortMappingView>>,
}

/// A volume as Drover shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeView {
    /// Path on the agent.
    pub host_path: String,
    /// Path inside the container.
    pub container_path: String,
    /// `RO` or `RW`.
    pub mode: &'static str,
}

/// A port mapping as Drover shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMappingView {
    /// The port inside the container.
    pub container_port: u32,
    /// The host port (0: any).
    pub host_port: u32,
    /// `tcp` or `udp`.
    pub protocol: String,
}

// ----- parsing ------------------------------------------------------------------

/// Problems found so far.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, problem: impl Into<String>) {
        self.0.push(problem.into());
    }
}

/// Reads a request body into the wire type. A field of the wrong type is
/// reported by name.
fn read_dto(body: &Value) -> Result<JobJson, InvalidJob> {
    let Some(obj) = body.as_object() else {
        return Err(InvalidJob::one("a job must be a JSON object"));
    };
    JobJson::deserialize(body).map_err(|e| {
        // Every field is optional, so the object with only the culprit
        // field fails alone: that names the field.
        let culprit = obj.iter().find_map(|(k, v)| {
            let single = Value::Object(Map::from_iter([(k.clone(), v.clone())]));
            JobJson::deserialize(&single).err().map(|e| format!("`{k}`: {e}"))
        });
        InvalidJob::one(culprit.unwrap_or_else(|| e.to_string()))
    })
}

/// Parses and validates a Chronos job. Nothing about other jobs is checked
/// here (parents' existence and cycles are the scheduler's to refuse).
/// The version is left at the epoch: the scheduler stamps it.
pub fn parse_job(body: &Value, ctx: Context<'_>) -> Result<JobSpec, InvalidJob> {
    let dto = read_dto(body)?;
    to_spec(dto, ctx)
}

fn to_spec(j: JobJson, ctx: Context<'_>) -> Result<JobSpec, InvalidJob> {
    let mut p = Problems::default();

    let name = match j.name.as_deref() {
        None => {
            p.add("`name` is required");
            None
        }
        Some(raw) => JobName::parse(raw)
            .map_err(|_| p.add(format!("`name` '{raw}' is invalid: {NAME_RULE}")))
            .ok(),
    };
    let command = match j.command {
        Some(c) if !c.trim().is_empty() => c,
        _ => {
            p.add(
                "`command` is required: the command line (with `shell`) or the program \
                 (with `shell` false) to run",
            );
            String::new()
        }
    };
    let mut parents = BTreeSet::new();
    for raw in j.parents.unwrap_or_default() {
        match JobName::parse(&raw) {
            Ok(n) => {
                parents.insert(n);
            }
            Err(_) => p.add(format!("parent '{raw}' is not a valid job name: {NAME_RULE}")),
        }
    }
    let time_zone = j.schedule_time_zone.filter(|z| !z.trim().is_empty());
    let schedule_text = j.schedule.filter(|s| !s.trim().is_empty());
    let schedule = match (&schedule_text, parents.is_empty()) {
        (Some(_), false) => {
            p.add("a job has either a `schedule` or `parents`, not both");
            None
        }
        (Some(text), true) => parse_schedule(text, time_zone.as_deref(), ctx.now, &mut p),
        (None, false) => None,
        // Chronos: neither a schedule nor parents means once, now.
        (None, true) => parse_schedule(RUN_ONCE_NOW, time_zone.as_deref(), ctx.now, &mut p),
    };

    let resources = Resources {
        cpus: resource(j.cpus, DEFAULT_CPUS, "cpus", &mut p),
        mem: resource(j.mem, DEFAULT_MEM, "mem", &mut p),
        disk: resource(j.disk, DEFAULT_DISK, "disk", &mut p),
        gpus: 0,
    };
    let defaults = RetryPolicy::default();
    let retries = match j.retries {
        None => defaults.retries,
        Some(n) => u32::try_from(n).unwrap_or_else(|_| {
            p.add(format!("`retries` must be a whole number from 0 to {}", u32::MAX));
            defaults.retries
        }),
    };
    let backoff =
        seconds(j.retry_delay_seconds, "retryDelaySeconds", &mut p).unwrap_or(defaults.backoff);
    let max_backoff = seconds(j.max_retry_delay_seconds, "maxRetryDelaySeconds", &mut p)
        .unwrap_or(defaults.max_backoff);
    let backoff_factor = match j.retry_backoff_factor {
        None => defaults.backoff_factor,
        Some(f) if (1.0..=1000.0).contains(&f) => f,
        Some(f) => {
            p.add(format!("`retryBackoffFactor` must be from 1 to 1000, got {f}"));
            defaults.backoff_factor
        }
    };
    let concurrency = match j.concurrency_policy.as_deref().map(str::trim) {
        Some(text) => match text.to_ascii_uppercase().as_str() {
            "ALLOW" => ConcurrencyPolicy::Allow,
            "FORBID" => ConcurrencyPolicy::Forbid,
            "REPLACE" => ConcurrencyPolicy::Replace,
            _ => {
                p.add(format!(
                    "`concurrencyPolicy` '{text}' is unknown: use ALLOW, FORBID or REPLACE"
                ));
                ConcurrencyPolicy::default()
            }
        },
        None if j.concurrent == Some(true) => ConcurrencyPolicy::Allow,
        None => ConcurrencyPolicy::Forbid,
    };
    let max_completion_time = match j.max_completion_time {
        None | Some(0) => None,
        Some(n) => whole_seconds(n, "maxCompletionTime", &mut p),
    };
    let starting_deadline = match j.starting_deadline_seconds {
        None => None,
        Some(n) if n > 0 => whole_seconds(n, "startingDeadlineSeconds", &mut p),
        Some(n) => {
            p.add(format!("`startingDeadlineSeconds` must be a positive whole number, got {n}"));
            None
        }
    };
    let success_history_limit =
        history_limit(j.successful_runs_history_limit, "successfulRunsHistoryLimit", &mut p);
    let failure_history_limit =
        history_limit(j.failed_runs_history_limit, "failedRunsHistoryLimit", &mut p);

    let (container, network) = match j.container {
        Some(c) => parse_container(c, &mut p),
        None => (None, NetworkMode::Host),
    };
    let mut env = BTreeMap::new();
    for (i, var) in j.environment_variables.unwrap_or_default().into_iter().enumerate() {
        match var.name.filter(|n| !n.is_empty()) {
            Some(n) => {
                env.insert(n, var.value.unwrap_or_default());
            }
            None => p.add(format!("`environmentVariables[{i}]` needs a `name`")),
        }
    }
    let mut placement = PlacementSpec::default();
    for (i, parts) in j.constraints.unwrap_or_default().iter().enumerate() {
        match parse_constraint(parts) {
            Ok(c) => placement.constraints.push(c),
            Err(e) => p.add(format!("`constraints[{i}]`: {e}")),
        }
    }

    // What Drover cannot honour.
    for (field, list) in [("fetch", &j.fetch), ("uris", &j.uris)] {
        if list.as_ref().is_some_and(|l| !l.is_empty()) {
            p.add(format!(
                "`{field}` is not supported: bake the files into the Docker image (Drover does \
                 not run the Mesos fetcher)"
            ));
        }
    }
    if j.executor.as_deref().is_some_and(|e| !e.trim().is_empty()) {
        p.add(
            "a custom `executor` is not supported: Drover runs every job under its own \
             executor; remove `executor`",
        );
    }
    for (field, value) in
        [("executorFlags", &j.executor_flags), ("taskInfoData", &j.task_info_data)]
    {
        if value.as_deref().is_some_and(|v| !v.trim().is_empty()) {
            p.add(format!(
                "`{field}` is not supported: it configures a custom executor, which Drover \
                 does not run"
            ));
        }
    }
    if let Some(user) = j.run_as_user.as_deref().map(str::trim)
        && !user.is_empty()
        && user != "root"
        && user != ctx.mesos_user
    {
        p.add(format!(
            "`runAsUser` '{user}' is not supported: jobs run as the Mesos user '{}' of this \
             Drover",
            ctx.mesos_user
        ));
    }

    if !p.0.is_empty() {
        return Err(InvalidJob(p.0));
    }
    let Some(name) = name else { return Err(InvalidJob::one("`name` is required")) };
    Ok(JobSpec {
        name,
        command,
        shell: j.shell.unwrap_or(true),
        arguments: j.arguments.unwrap_or_default(),
        schedule,
        parents,
        disabled: j.disabled.unwrap_or(false),
        concurrency,
        soft_error: j.soft_error.unwrap_or(false),
        retry: RetryPolicy { retries, backoff, backoff_factor, max_backoff },
        starting_deadline,
        resources,
        container,
        network,
        env,
        placement,
        max_completion_time,
        owner: j.owner.unwrap_or_default(),
        owner_name: j.owner_name.unwrap_or_default(),
        description: j.description.unwrap_or_default(),
        success_history_limit,
        failure_history_limit,
        version: Timestamp::EPOCH,
    })
}

const NAME_RULE: &str = "use 1 to 200 letters, digits, '_', '.' and '-' (Chronos' [\\w.-]+)";

/// `R...` is ISO 8601 (Chronos); anything else is cron (Drover).
fn parse_schedule(
    text: &str,
    time_zone: Option<&str>,
    now: Timestamp,
    p: &mut Problems,
) -> Option<Schedule> {
    let text = text.trim();
    let parsed = if text.starts_with('R') {
        Schedule::parse_iso8601(text, time_zone, now)
    } else {
        Schedule::parse_cron(text, time_zone)
    };
    parsed.map_err(|e| p.add(format!("`schedule`: {e}"))).ok()
}

/// A resource: absent or 0 means the default (Chronos); negative is refused.
fn resource(value: Option<f64>, default: f64, field: &str, p: &mut Problems) -> f64 {
    match value {
        None => default,
        Some(0.0) => default,
        Some(v) if v > 0.0 => v,
        Some(v) => {
            p.add(format!(
                "`{field}` must not be negative, got {v} (0 means the default {default})"
            ));
            default
        }
    }
}

/// Seconds (millisecond precision) from 0 to ten years.
fn seconds(value: Option<f64>, field: &str, p: &mut Problems) -> Option<Duration> {
    let v = value?;
    if (0.0..=MAX_SECONDS).contains(&v) {
        // In range, so the product fits a u64 exactly.
        Some(Duration::from_millis((v * 1000.0).round() as u64))
    } else {
        p.add(format!("`{field}` must be from 0 to {MAX_SECONDS} seconds, got {v}"));
        None
    }
}

/// Positive whole seconds up to ten years.
fn whole_seconds(n: i64, field: &str, p: &mut Problems) -> Option<Duration> {
    match u64::try_from(n) {
        Ok(s) if s as f64 <= MAX_SECONDS => Some(Duration::from_secs(s)),
        _ => {
            p.add(format!("`{field}` must be a whole number from 0 to {MAX_SECONDS}, got {n}"));
            None
        }
    }
}

fn history_limit(value: Option<i64>, field: &str, p: &mut Problems) -> u32 {
    match value {
        None => DEFAULT_HISTORY_LIMIT,
        Some(n) => match u32::try_from(n) {
            Ok(k) if k <= MAX_HISTORY_LIMIT => k,
            _ => {
                p.add(format!(
                    "`{field}` must be a whole number from 0 to {MAX_HISTORY_LIMIT}, got {n}"
                ));
                DEFAULT_HISTORY_LIMIT
            }
        },
    }
}

/// `[attribute, EQUALS|LIKE|UNLIKE, value]`.
fn parse_constraint(parts: &[String]) -> Result<Constraint, String> {
    let [field, op, value] = parts else {
        return Err(format!(
            "a constraint is [attribute, EQUALS|LIKE|UNLIKE, value], got {} element{}",
            parts.len(),
            if parts.len() == 1 { "" } else { "s" }
        ));
    };
    let marathon_op = match op.to_ascii_uppercase().as_str() {
        "EQUALS" => Operator::Cluster,
        "LIKE" => Operator::Like,
        "UNLIKE" => Operator::Unlike,
        _ => return Err(format!("operator '{op}' is not supported: use EQUALS, LIKE or UNLIKE")),
    };
    Constraint::parse(field, marathon_op.name(), Some(value))
}

fn parse_container(c: ContainerJson, p: &mut Problems) -> (Option<ContainerSpec>, NetworkMode) {
    let kind = c.kind.as_deref().map(str::trim).unwrap_or("DOCKER");
    if kind.eq_ignore_ascii_case("MESOS") {
        p.add(
            "`container.type` MESOS is not supported: Drover runs jobs in Docker images only; \
             use type DOCKER with an image, or no container",
        );
        return (None, NetworkMode::Host);
    }
    if !kind.eq_ignore_ascii_case("DOCKER") {
        p.add(format!("`container.type` '{kind}' is unknown: use DOCKER"));
        return (None, NetworkMode::Host);
    }
    let image = match c.image.as_deref().map(str::trim) {
        Some(i) if !i.is_empty() => i.to_owned(),
        _ => {
            p.add("`container.image` is required");
            String::new()
        }
    };
    let network = match c.network.as_deref().map(str::trim).unwrap_or("HOST") {
        n if n.eq_ignore_ascii_case("HOST") || n.is_empty() => NetworkMode::Host,
        n if n.eq_ignore_ascii_case("BRIDGE") => NetworkMode::Bridge,
        n if n.eq_ignore_ascii_case("USER") => {
            p.add("`container.network` USER is not supported: use HOST or BRIDGE");
            NetworkMode::Host
        }
        other => {
            p.add(format!("`container.network` '{other}' is unknown: use HOST or BRIDGE"));
            NetworkMode::Host
        }
    };
    if c.network_name.as_deref().is_some_and(|n| !n.trim().is_empty())
        || c.network_infos.as_ref().is_some_and(|n| !n.is_empty())
    {
        p.add(
            "`container.networkName` and `container.networkInfos` are not supported: use \
             network HOST or BRIDGE",
        );
    }
    let mut volumes = Vec::new();
    for (i, v) in c.volumes.unwrap_or_default().into_iter().enumerate() {
        let at = format!("`container.volumes[{i}]`");
        if v.persistent.is_some_and(|x| !x.is_null()) || v.external.is_some_and(|x| !x.is_null()) {
            p.add(format!("{at}: persistent and external volumes are not supported"));
            continue;
        }
        let mode = match v.mode.as_deref().map(str::trim) {
            None | Some("") => VolumeMode::ReadWrite,
            Some(m) if m.eq_ignore_ascii_case("RW") => VolumeMode::ReadWrite,
            Some(m) if m.eq_ignore_ascii_case("RO") => VolumeMode::ReadOnly,
            Some(m) => {
                p.add(format!("{at}: mode '{m}' is unknown: use RO or RW"));
                continue;
            }
        };
        let container_path = match v.container_path {
            Some(cp) if cp.starts_with('/') => cp,
            _ => {
                p.add(format!("{at}: `containerPath` must be an absolute path"));
                continue;
            }
        };
        let Some(host_path) = v.host_path.filter(|h| !h.is_empty()) else {
            p.add(format!("{at}: `hostPath` is required"));
            continue;
        };
        volumes.push(Volume { container_path, host_path, mode });
    }
    let mut parameters = Vec::new();
    for (i, param) in c.parameters.unwrap_or_default().into_iter().enumerate() {
        match param.key.filter(|k| !k.trim().is_empty()) {
            Some(k) => parameters.push((k, param.value.unwrap_or_default())),
            None => p.add(format!("`container.parameters[{i}]` needs a `key`")),
        }
    }
    let mappings = c.port_mappings.unwrap_or_default();
    if network == NetworkMode::Host && !mappings.is_empty() {
        p.add("`container.portMappings` need network BRIDGE");
    }
    let mut port_mappings = Vec::new();
    for (i, m) in mappings.into_iter().enumerate() {
        let at = format!("`container.portMappings[{i}]`");
        let container_port = m.container_port.and_then(|n| u32::try_from(n).ok());
        let Some(container_port) = container_port.filter(|n| (1..=65535).contains(n)) else {
            p.add(format!("{at}: `containerPort` must be from 1 to 65535"));
            continue;
        };
        let Some(host_port) = u32::try_from(m.host_port.unwrap_or(0)).ok().filter(|n| *n <= 65535)
        else {
            p.add(format!("{at}: `hostPort` must be from 0 (any) to 65535"));
            continue;
        };
        let protocol = m.protocol.as_deref().map(str::trim).unwrap_or("tcp").to_ascii_lowercase();
        if !matches!(protocol.as_str(), "tcp" | "udp") {
            p.add(format!("{at}: protocol '{protocol}' is unknown: use tcp or udp"));
            continue;
        }
        port_mappings.push(PortMapping {
            container_port,
            host_port: Some(host_port),
            service_port: 0,
            protocol,
            name: None,
            labels: BTreeMap::new(),
        });
    }
    let force_pull = c.force_pull_image.unwrap_or(false);
    let spec =
        ContainerSpec { image, force_pull, privileged: false, parameters, volumes, port_mappings };
    (Some(spec), network)
}

// ----- rendering ----------------------------------------------------------------

/// `ALLOW`, `FORBID` or `REPLACE`.
pub fn policy_name(policy: ConcurrencyPolicy) -> &'static str {
    match policy {
        ConcurrencyPolicy::Allow => "ALLOW",
        ConcurrencyPolicy::Forbid => "FORBID",
        ConcurrencyPolicy::Replace => "REPLACE",
    }
}

/// A constraint in Chronos' form: Marathon's `CLUSTER` with a value is
/// `EQUALS`; operators Chronos lacks (which this API never creates) keep
/// Marathon's form.
fn render_constraint(c: &Constraint) -> Vec<String> {
    match (c.operator, &c.value) {
        (Operator::Cluster, Some(v)) => vec![c.field_name.clone(), "EQUALS".into(), v.clone()],
        _ => c.to_strings(),
    }
}

fn seconds_f64(d: Duration) -> f64 {
    // Whole milliseconds, so parsing the result gives `d` back.
    u64::try_from(d.as_millis()).map_or(f64::MAX, |ms| ms as f64 / 1000.0)
}

fn render_container(c: &ContainerSpec, network: &NetworkMode) -> ContainerView {
    let bridge = *network == NetworkMode::Bridge;
    ContainerView {
        kind: "DOCKER",
        image: c.image.clone(),
        network: if bridge { "BRIDGE" } else { "HOST" },
        volumes: c
            .volumes
            .iter()
            .map(|v| VolumeView {
                host_path: v.host_path.clone(),
                container_path: v.container_path.clone(),
                mode: match v.mode {
                    VolumeMode::ReadOnly => "RO",
                    VolumeMode::ReadWrite => "RW",
                },
            })
            .collect(),
        force_pull_image: c.force_pull,
        parameters: c
            .parameters
            .iter()
            .map(|(k, v)| ParameterJson { key: Some(k.clone()), value: Some(v.clone()) })
            .collect(),
        port_mappings: bridge.then(|| {
            c.port_mappings
                .iter()
                .map(|m| PortMappingView {
                    container_port: m.container_port,
                    host_port: m.host_port.unwrap_or(0),
                    protocol: m.protocol.clone(),
                })
                .collect()
        }),
    }
}

fn time_or_empty(t: Option<Timestamp>) -> String {
    t.map(format_version).unwrap_or_default()
}

/// A job as JSON: its spec, what Drover remembers about it (`state`) and
/// the status of its latest run.
pub fn render_job(
    spec: &JobSpec,
    state: &JobState,
    last_run: Option<RunStatus>,
    ctx: Context<'_>,
) -> JobView {
    let scheduled = spec.schedule.as_ref();
    JobView {
        name: spec.name.to_string(),
        command: spec.command.clone(),
        shell: spec.shell,
        executor: String::new(),
        executor_flags: String::new(),
        task_info_data: String::new(),
        retries: spec.retry.retries,
        owner: spec.owner.clone(),
        owner_name: spec.owner_name.clone(),
        description: spec.description.clone(),
        success_count: state.success_count,
        error_count: state.error_count,
        last_success: time_or_empty(state.last_success),
        last_error: time_or_empty(state.last_error),
        cpus: spec.resources.cpus,
        disk: spec.resources.disk,
        mem: spec.resources.mem,
        disabled: spec.disabled || state.exhausted,
        soft_error: spec.soft_error,
        data_processing_job_type: false,
        errors_since_last_success: state.errors_since_last_success,
        fetch: Vec::new(),
        uris: Vec::new(),
        environment_variables: spec
            .env
            .iter()
            .map(|(k, v)| EnvVarJson { name: Some(k.clone()), value: Some(v.clone()) })
            .collect(),
        arguments: spec.arguments.clone(),
        high_priority: false,
        run_as_user: ctx.mesos_user.to_owned(),
        concurrent: spec.concurrency == ConcurrencyPolicy::Allow,
        max_completion_time: spec.max_completion_time.map_or(0, |d| d.as_secs()),
        container: spec.container.as_ref().map(|c| render_container(c, &spec.network)),
        constraints: spec.placement.constraints.iter().map(render_constraint).collect(),
        schedule: scheduled.map(|s| s.describe(ctx.now)),
        schedule_time_zone: scheduled.map(|s| s.time_zone().unwrap_or("").to_owned()),
        parents: scheduled.is_none().then(|| spec.parents.iter().map(JobName::to_string).collect()),
        concurrency_policy: policy_name(spec.concurrency),
        starting_deadline_seconds: spec.starting_deadline.map(|d| d.as_secs()),
        retry_delay_seconds: seconds_f64(spec.retry.backoff),
        retry_backoff_factor: spec.retry.backoff_factor,
        max_retry_delay_seconds: seconds_f64(spec.retry.max_backoff),
        successful_runs_history_limit: spec.success_history_limit,
        failed_runs_history_limit: spec.failure_history_limit,
        next_run_at: spec.next_due(state).map(format_version),
        last_run_status: last_run.map(RunStatus::name),
    }
}

#[cfg(test)]
mod tests;
