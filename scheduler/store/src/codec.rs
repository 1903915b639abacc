//! How records are encoded: JSON documents with a format version,
//! `{"v": 1, "<kind>": {...}}`, through DTOs that live here (the core's
//! types derive no serde; conversions are explicit, both ways).
//!
//! A reader checks `v` before anything else: an unknown version is
//! [`StoreError::UnknownVersion`], a document that does not fit its version
//! is [`StoreError::Corrupt`]; neither panics. A future format bumps `v` and
//! migrates older documents on read.
//!
//! Forms worth knowing when reading records with `etcdctl`: durations are
//! `[seconds, nanoseconds]`, timestamps are milliseconds since the epoch,
//! task states are Mesos' names (`TASK_RUNNING`), a job's schedule is
//! `{"kind": "iso8601" | "cron", "source": ..., "time_zone": ...}` (the text
//! as given, parsed again on read).

use std::collections::BTreeMap;
use std::time::Duration;

use drover_time::Timestamp;
use std::sync::Arc;

use sched_core::app::{
    AppSpec, BackoffPolicy, CommandSpec, ContainerSpec, HealthCheckSpec, HealthProtocol,
    KillSelection, NetworkMode, PlacementSpec, PortDefinition, PortMapping, Resources,
    UpgradeStrategy, Volume, VolumeMode,
};
use sched_core::constraints::Constraint;
use sched_core::deployment::{Action, Deployment, Origin, StepAction};
use sched_core::ids::{AppId, InstanceId, TaskId};
use sched_core::instance::{Goal, Health, Instance, Task, TaskState};
use sched_core::job::{
    ConcurrencyPolicy, JobName, JobRun, JobSpec, JobState, RetryPolicy, RunStatus, Trigger,
};
use sched_core::offer::{AgentFacts, Attribute, AttributeValue};
use sched_core::schedule::Schedule;
use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::layout::RecordKey;

/// The format version this Drover writes (and the only one it reads).
pub const FORMAT_VERSION: u64 = 1;

/// One decoded record.
// Records are moved once, from decoding to their owner: boxing the large
// variants would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// The framework id.
    FrameworkId(String),
    /// An app's current spec.
    App(AppSpec),
    /// One kept version of an app.
    AppVersion(AppSpec),
    /// An instance.
    Instance(Instance),
    /// A deployment.
    Deployment(Box<Deployment>),
    /// A job's spec.
    Job(JobSpec),
    /// What a job remembers between runs.
    JobState(JobName, JobState),
    /// One run of a job.
    JobRun(JobRun),
}

impl Record {
    /// Which record this is.
    pub fn key(&self) -> RecordKey {
        match self {
            Record::FrameworkId(_) => RecordKey::FrameworkId,
            Record::App(a) => RecordKey::App(a.id.clone()),
            Record::AppVersion(a) => RecordKey::AppVersion(a.id.clone(), a.version),
            Record::Instance(i) => RecordKey::Instance(i.id.clone()),
            Record::Deployment(d) => RecordKey::Deployment(d.id.clone()),
            Record::Job(j) => RecordKey::Job(j.name.clone()),
            Record::JobState(name, _) => RecordKey::JobState(name.clone()),
            Record::JobRun(r) => RecordKey::JobRun(r.job.clone(), r.id.clone()),
        }
    }
}

/// The bytes stored for a record. Fails only for a record JSON cannot
/// carry exactly: a float that is NaN or infinite.
pub fn encode(record: &Record) -> Result<Vec<u8>, StoreError> {
    let v = FORMAT_VERSION;
    if let Record::Instance(i) = record {
        let facts = i.task.iter().flat_map(|t| t.facts.attributes.values());
        if facts
            .into_iter()
            .any(|a| matches!(a.value(), AttributeValue::Scalar(s) if !s.is_finite()))
        {
            return Err(StoreError::Unencodable {
                key: format!("{:?}", record.key()),
                reason: "an agent attribute is not a finite number".into(),
            });
        }
    }
    let apps: Vec<&AppSpec> = match record {
        Record::App(a) | Record::AppVersion(a) => vec![a],
        Record::Deployment(d) => d.original.values().chain(d.target.values()).flatten().collect(),
        Record::FrameworkId(_)
        | Record::Instance(_)
        | Record::Job(_)
        | Record::JobState(..)
        | Record::JobRun(_) => Vec::new(),
    };
    if let Some(a) = apps.iter().find(|a| !floats_are_finite(a)) {
        return Err(StoreError::Unencodable {
            key: format!("{:?}", record.key()),
            reason: format!("app `{}` has a float that is not finite", a.id),
        });
    }
    if let Record::Job(j) = record {
        let r = &j.resources;
        if ![r.cpus, r.mem, r.disk, j.retry.backoff_factor].iter().all(|f| f.is_finite()) {
            return Err(StoreError::Unencodable {
                key: format!("{:?}", record.key()),
                reason: format!("job `{}` has a float that is not finite", j.name),
            });
        }
    }
    let doc = match record {
        Record::FrameworkId(id) => serde_json::to_vec(&FrameworkIdDoc { v, framework_id: id }),
        Record::App(a) | Record::AppVersion(a) => {
            serde_json::to_vec(&AppDoc { v, app: AppDto::from(a) })
        }
        Record::Instance(i) => {
            serde_json::to_vec(&InstanceDoc { v, instance: InstanceDto::from(i) })
        }
        Record::Deployment(d) => {
            serde_json::to_vec(&DeploymentDoc { v, deployment: DeploymentDto::from(&**d) })
        }
        Record::Job(j) => serde_json::to_vec(&JobDoc { v, job: JobDto::from(j) }),
        Record::JobState(name, st) => {
            serde_json::to_vec(&JobStateDoc { v, job_state: JobStateDto::from_core(name, st) })
        }
        Record::JobRun(r) => serde_json::to_vec(&JobRunDoc { v, job_run: JobRunDto::from(r) }),
    };
    doc.map_err(|e| StoreError::Unencodable {
        key: format!("{:?}", record.key()),
        reason: e.to_string(),
    })
}

fn floats_are_finite(a: &AppSpec) -> bool {
    let r = &a.resources;
    [
        r.cpus,
        r.mem,
        r.disk,
        a.backoff.factor,
        a.upgrade.minimum_health_capacity,
        a.upgrade.maximum_over_capacity,
    ]
    .iter()
    .all(|f| f.is_finite())
}

/// The record stored at `key` (whose kind `kind` names) from its bytes.
pub fn decode(key: &str, kind: &RecordKey, bytes: &[u8]) -> Result<Record, StoreError> {
    let corrupt =
        |e: serde_json::Error| StoreError::Corrupt { key: key.to_owned(), reason: e.to_string() };
    let version: VersionOnly = serde_json::from_slice(bytes).map_err(corrupt)?;
    if version.v != FORMAT_VERSION {
        return Err(StoreError::UnknownVersion { key: key.to_owned(), version: version.v });
    }
    let invalid = |reason: String| StoreError::Corrupt { key: key.to_owned(), reason };
    let record = match kind {
        RecordKey::FrameworkId => {
            let d: FrameworkIdOwned = serde_json::from_slice(bytes).map_err(corrupt)?;
            Record::FrameworkId(d.framework_id)
        }
        RecordKey::App(_) | RecordKey::AppVersion(..) => {
            let d: AppDocOwned = serde_json::from_slice(bytes).map_err(corrupt)?;
            let app = d.app.into_core().map_err(invalid)?;
            if matches!(kind, RecordKey::App(_)) {
                Record::App(app)
            } else {
                Record::AppVersion(app)
            }
        }
        RecordKey::Instance(_) => {
            let d: InstanceDoc = serde_json::from_slice(bytes).map_err(corrupt)?;
            Record::Instance(d.instance.into_core().map_err(invalid)?)
        }
        RecordKey::Deployment(_) => {
            let d: DeploymentDoc = serde_json::from_slice(bytes).map_err(corrupt)?;
            Record::Deployment(Box::new(d.deployment.into_core().map_err(invalid)?))
        }
        RecordKey::Job(_) => {
            let d: JobDoc = serde_json::from_slice(bytes).map_err(corrupt)?;
            Record::Job(d.job.into_core().map_err(invalid)?)
        }
        RecordKey::JobState(_) => {
            let d: JobStateDoc = serde_json::from_slice(bytes).map_err(corrupt)?;
            let (name, st) = d.job_state.into_core().map_err(invalid)?;
            Record::JobState(name, st)
        }
        RecordKey::JobRun(..) => {
            let d: JobRunDoc = serde_json::from_slice(bytes).map_err(corrupt)?;
            Record::JobRun(d.job_run.into_core().map_err(invalid)?)
        }
    };
    if record.key() != *kind {
        return Err(StoreError::Corrupt {
            key: key.to_owned(),
            reason: "the record's id does not match its key".into(),
        });
    }
    Ok(record)
}

#[derive(Deserialize)]
struct VersionOnly {
    v: u64,
}

#[derive(Serialize)]
struct FrameworkIdDoc<'a> {
    v: u64,
    framework_id: &'a str,
}

#[derive(Deserialize)]
struct FrameworkIdOwned {
    framework_id: String,
}

#[derive(Serialize)]
struct AppDoc {
    v: u64,
    app: AppDto,
}

#[derive(Deserialize)]
struct AppDocOwned {
    app: AppDto,
}

#[derive(Serialize, Deserialize)]
struct InstanceDoc {
    v: u64,
    instance: InstanceDto,
}

#[derive(Serialize, Deserialize)]
struct DeploymentDoc {
    v: u64,
    deployment: DeploymentDto,
}

#[derive(Serialize, Deserialize)]
struct JobDoc {
    v: u64,
    job: JobDto,
}

#[derive(Serialize, Deserialize)]
struct JobStateDoc {
    v: u64,
    job_state: JobStateDto,
}

#[derive(Serialize, Deserialize)]
struct JobRunDoc {
    v: u64,
    job_run: JobRunDto,
}

/// A duration as `[seconds, nanoseconds]`: exact, whatever the precision.
#[derive(Serialize, Deserialize, Clone, Copy)]
struct Dur(u64, u32);

impl From<Duration> for Dur {
    fn from(d: Duration) -> Self {
        Dur(d.as_secs(), d.subsec_nanos())
    }
}

impl Dur {
    fn into_core(self) -> Result<Duration, String> {
        if self.1 >= 1_000_000_000 {
            return Err(format!("duration nanoseconds out of range: {}", self.1));
        }
        Ok(Duration::new(self.0, self.1))
    }
}

fn ts(t: Timestamp) -> i64 {
    t.as_millis()
}

fn app_id(raw: &str) -> Result<AppId, String> {
    let id = AppId::parse(raw).map_err(|e| format!("app id `{raw}` {}", e.message()))?;
    if id.as_str() != raw {
        return Err(format!("app id `{raw}` is not canonical"));
    }
    Ok(id)
}

fn instance_id(raw: &str) -> Result<InstanceId, String> {
    InstanceId::parse(raw).ok_or_else(|| format!("invalid instance id `{raw}`"))
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum CommandDto {
    Shell(String),
    Argv(Vec<String>),
}

#[derive(Serialize, Deserialize)]
struct VolumeDto {
    container_path: String,
    host_path: String,
    read_only: bool,
}

#[derive(Serialize, Deserialize)]
struct PortMappingDto {
    container_port: u32,
    host_port: Option<u32>,
    service_port: u32,
    protocol: String,
    name: Option<String>,
    labels: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
struct ContainerDto {
    image: String,
    force_pull: bool,
    privileged: bool,
    parameters: Vec<(String, String)>,
    volumes: Vec<VolumeDto>,
    port_mappings: Vec<PortMappingDto>,
}

impl From<&ContainerSpec> for ContainerDto {
    fn from(c: &ContainerSpec) -> Self {
        ContainerDto {
            image: c.image.clone(),
            force_pull: c.force_pull,
            privileged: c.privileged,
            parameters: c.parameters.clone(),
            volumes: c
                .volumes
                .iter()
                .map(|v| VolumeDto {
                    container_path: v.container_path.clone(),
                    host_path: v.host_path.clone(),
                    read_only: v.mode == VolumeMode::ReadOnly,
                })
                .collect(),
            port_mappings: c
                .port_mappings
                .iter()
                .map(|m| PortMappingDto {
                    container_port: m.container_port,
                    host_port: m.host_port,
                    service_port: m.service_port,
                    protocol: m.protocol.clone(),
                    name: m.name.clone(),
                    labels: m.labels.clone(),
                })
                .collect(),
        }
    }
}

impl ContainerDto {
    fn into_core(self) -> ContainerSpec {
        ContainerSpec {
            image: self.image,
            force_pull: self.force_pull,
            privileged: self.privileged,
            parameters: self.parameters,
            volumes: self
                .volumes
                .into_iter()
                .map(|v| Volume {
                    container_path: v.container_path,
                    host_path: v.host_path,
                    mode: if v.read_only { VolumeMode::ReadOnly } else { VolumeMode::ReadWrite },
                })
                .collect(),
            port_mappings: self
                .port_mappings
                .into_iter()
                .map(|m| PortMapping {
                    container_port: m.container_port,
                    host_port: m.host_port,
                    service_port: m.service_port,
                    protocol: m.protocol,
                    name: m.name,
                    labels: m.labels,
                })
                .collect(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct PortDefinitionDto {
    port: u32,
    protocol: String,
    name: Option<String>,
    labels: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum HealthProtocolDto {
    Http,
    Tcp,
    Command,
}

#[derive(Serialize, Deserialize)]
struct HealthCheckDto {
    protocol: HealthProtocolDto,
    protocol_name: String,
    path: String,
    port_index: Option<u32>,
    port: Option<u32>,
    command: Option<String>,
    grace_period: Dur,
    interval: Dur,
    timeout: Dur,
    max_consecutive_failures: u32,
    delay: Dur,
    ignore_http1xx: bool,
}

#[derive(Serialize, Deserialize)]
struct ResourcesDto {
    cpus: f64,
    mem: f64,
    disk: f64,
    gpus: u32,
}

impl From<&Resources> for ResourcesDto {
    fn from(r: &Resources) -> Self {
        ResourcesDto { cpus: r.cpus, mem: r.mem, disk: r.disk, gpus: r.gpus }
    }
}

impl ResourcesDto {
    fn into_core(self) -> Resources {
        Resources { cpus: self.cpus, mem: self.mem, disk: self.disk, gpus: self.gpus }
    }
}

#[derive(Serialize, Deserialize)]
struct BackoffDto {
    initial: Dur,
    factor: f64,
    max: Dur,
}

#[derive(Serialize, Deserialize)]
struct UpgradeDto {
    minimum_health_capacity: f64,
    maximum_over_capacity: f64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum NetworkDto {
    Host,
    Bridge,
}

impl From<&NetworkMode> for NetworkDto {
    fn from(n: &NetworkMode) -> Self {
        match n {
            NetworkMode::Host => NetworkDto::Host,
            NetworkMode::Bridge => NetworkDto::Bridge,
        }
    }
}

impl NetworkDto {
    fn into_core(self) -> NetworkMode {
        match self {
            NetworkDto::Host => NetworkMode::Host,
            NetworkDto::Bridge => NetworkMode::Bridge,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum KillSelectionDto {
    YoungestFirst,
    OldestFirst,
}

/// Constraints in Marathon's form: `[field, OPERATOR]` or
/// `[field, OPERATOR, value]`.
#[derive(Serialize, Deserialize)]
struct PlacementDto {
    constraints: Vec<Vec<String>>,
    accepted_resource_roles: Vec<String>,
    role: String,
}

impl Default for PlacementDto {
    fn default() -> Self {
        let p = PlacementSpec::default();
        PlacementDto {
            constraints: Vec::new(),
            accepted_resource_roles: p.accepted_resource_roles,
            role: p.role,
        }
    }
}

impl From<&PlacementSpec> for PlacementDto {
    fn from(p: &PlacementSpec) -> Self {
        PlacementDto {
            constraints: p.constraints.iter().map(Constraint::to_strings).collect(),
            accepted_resource_roles: p.accepted_resource_roles.clone(),
            role: p.role.clone(),
        }
    }
}

impl PlacementDto {
    fn into_core(self) -> Result<PlacementSpec, String> {
        let mut constraints = Vec::with_capacity(self.constraints.len());
        for c in &self.constraints {
            let (field, op, value) = match c.as_slice() {
                [field, op] => (field, op, None),
                [field, op, value] => (field, op, Some(value.as_str())),
                _ => return Err(format!("constraint {c:?} does not have 2 or 3 fields")),
            };
            constraints.push(
                Constraint::parse(field, op, value)
                    .map_err(|e| format!("constraint {c:?}: {e}"))?,
            );
        }
        Ok(PlacementSpec {
            constraints,
            accepted_resource_roles: self.accepted_resource_roles,
            role: self.role,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct AppDto {
    id: String,
    command: Option<CommandDto>,
    container: Option<ContainerDto>,
    network: NetworkDto,
    port_definitions: Vec<PortDefinitionDto>,
    require_ports: bool,
    health_checks: Vec<HealthCheckDto>,
    instances: u32,
    resources: ResourcesDto,
    #[serde(default)]
    placement: PlacementDto,
    env: BTreeMap<String, String>,
    /// Secret name → source (a reference, never a value).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    secrets: BTreeMap<String, String>,
    /// Variable → secret name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    secret_env: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
    backoff: BackoffDto,
    kill_selection: KillSelectionDto,
    upgrade: UpgradeDto,
    dependencies: Vec<String>,
    progress_deadline: Dur,
    rollback_on_failure: bool,
    kill_grace: Option<Dur>,
    version: i64,
    last_scaling_at: i64,
    last_config_change_at: i64,
}

impl From<&AppSpec> for AppDto {
    fn from(a: &AppSpec) -> Self {
        AppDto {
            id: a.id.to_string(),
            command: a.command.as_ref().map(|c| match c {
                CommandSpec::Shell(s) => CommandDto::Shell(s.clone()),
                CommandSpec::Argv(v) => CommandDto::Argv(v.clone()),
            }),
            container: a.container.as_ref().map(ContainerDto::from),
            network: NetworkDto::from(&a.network),
            port_definitions: a
                .port_definitions
                .iter()
                .map(|p| PortDefinitionDto {
                    port: p.port,
                    protocol: p.protocol.clone(),
                    name: p.name.clone(),
                    labels: p.labels.clone(),
                })
                .collect(),
            require_ports: a.require_ports,
            health_checks: a
                .health_checks
                .iter()
                .map(|h| HealthCheckDto {
                    protocol: match h.protocol {
                        HealthProtocol::Http => HealthProtocolDto::Http,
                        HealthProtocol::Tcp => HealthProtocolDto::Tcp,
                        HealthProtocol::Command => HealthProtocolDto::Command,
                    },
                    protocol_name: h.protocol_name.clone(),
                    path: h.path.clone(),
                    port_index: h.port_index,
                    port: h.port,
                    command: h.command.clone(),
                    grace_period: h.grace_period.into(),
                    interval: h.interval.into(),
                    timeout: h.timeout.into(),
                    max_consecutive_failures: h.max_consecutive_failures,
                    delay: h.delay.into(),
                    ignore_http1xx: h.ignore_http1xx,
                })
                .collect(),
            instances: a.instances,
            resources: ResourcesDto::from(&a.resources),
            placement: PlacementDto::from(&a.placement),
            env: a.env.clone(),
            secrets: a.secrets.clone(),
            secret_env: a.secret_env.clone(),
            labels: a.labels.clone(),
            backoff: BackoffDto {
                initial: a.backoff.initial.into(),
                factor: a.backoff.factor,
                max: a.backoff.max.into(),
            },
            kill_selection: match a.kill_selection {
                KillSelection::YoungestFirst => KillSelectionDto::YoungestFirst,
                KillSelection::OldestFirst => KillSelectionDto::OldestFirst,
            },
            upgrade: UpgradeDto {
                minimum_health_capacity: a.upgrade.minimum_health_capacity,
                maximum_over_capacity: a.upgrade.maximum_over_capacity,
            },
            dependencies: a.dependencies.iter().map(ToString::to_string).collect(),
            progress_deadline: a.progress_deadline.into(),
            rollback_on_failure: a.rollback_on_failure,
            kill_grace: a.kill_grace.map(Into::into),
            version: ts(a.version),
            last_scaling_at: ts(a.last_scaling_at),
            last_config_change_at: ts(a.last_config_change_at),
        }
    }
}

impl AppDto {
    fn into_core(self) -> Result<AppSpec, String> {
        let mut health_checks = Vec::with_capacity(self.health_checks.len());
        for h in self.health_checks {
            health_checks.push(HealthCheckSpec {
                protocol: match h.protocol {
                    HealthProtocolDto::Http => HealthProtocol::Http,
                    HealthProtocolDto::Tcp => HealthProtocol::Tcp,
                    HealthProtocolDto::Command => HealthProtocol::Command,
                },
                protocol_name: h.protocol_name,
                path: h.path,
                port_index: h.port_index,
                port: h.port,
                command: h.command,
                grace_period: h.grace_period.into_core()?,
                interval: h.interval.into_core()?,
                timeout: h.timeout.into_core()?,
                max_consecutive_failures: h.max_consecutive_failures,
                delay: h.delay.into_core()?,
                ignore_http1xx: h.ignore_http1xx,
            });
        }
        Ok(AppSpec {
            id: app_id(&self.id)?,
            command: self.command.map(|c| match c {
                CommandDto::Shell(s) => CommandSpec::Shell(s),
                CommandDto::Argv(v) => CommandSpec::Argv(v),
            }),
            container: self.container.map(ContainerDto::into_core),
            network: self.network.into_core(),
            port_definitions: self
                .port_definitions
                .into_iter()
                .map(|p| PortDefinition {
                    port: p.port,
                    protocol: p.protocol,
                    name: p.name,
                    labels: p.labels,
                })
                .collect(),
            require_ports: self.require_ports,
            health_checks,
            instances: self.instances,
            resources: self.resources.into_core(),
            placement: self.placement.into_core()?,
            env: self.env,
            secrets: self.secrets,
            secret_env: self.secret_env,
            labels: self.labels,
            backoff: BackoffPolicy {
                initial: self.backoff.initial.into_core()?,
                factor: self.backoff.factor,
                max: self.backoff.max.into_core()?,
            },
            kill_selection: match self.kill_selection {
                KillSelectionDto::YoungestFirst => KillSelection::YoungestFirst,
                KillSelectionDto::OldestFirst => KillSelection::OldestFirst,
            },
            upgrade: UpgradeStrategy {
                minimum_health_capacity: self.upgrade.minimum_health_capacity,
                maximum_over_capacity: self.upgrade.maximum_over_capacity,
            },
            dependencies: self.dependencies.iter().map(|d| app_id(d)).collect::<Result<_, _>>()?,
            progress_deadline: self.progress_deadline.into_core()?,
            rollback_on_failure: self.rollback_on_failure,
            kill_grace: self.kill_grace.map(Dur::into_core).transpose()?,
            version: Timestamp::from_millis(self.version),
            last_scaling_at: Timestamp::from_millis(self.last_scaling_at),
            last_config_change_at: Timestamp::from_millis(self.last_config_change_at),
        })
    }
}

#[derive(Serialize, Deserialize)]
struct HealthDto {
    alive: bool,
    first_success: Option<i64>,
    last_success: Option<i64>,
    last_failure: Option<i64>,
    consecutive_failures: u32,
    last_failure_cause: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum AttributeDto {
    Text(String),
    Scalar(f64),
    Ranges(Vec<(u64, u64)>),
    Set(Vec<String>),
}

/// The agent facts a task was placed with.
#[derive(Serialize, Deserialize, Default)]
struct FactsDto {
    region: Option<String>,
    zone: Option<String>,
    attributes: BTreeMap<String, AttributeDto>,
}

impl From<&AgentFacts> for FactsDto {
    fn from(f: &AgentFacts) -> Self {
        FactsDto {
            region: f.region.clone(),
            zone: f.zone.clone(),
            attributes: f
                .attributes
                .iter()
                .map(|(k, a)| {
                    let v = match a.value() {
                        AttributeValue::Text(t) => AttributeDto::Text(t.clone()),
                        AttributeValue::Scalar(s) => AttributeDto::Scalar(*s),
                        AttributeValue::Ranges(r) => AttributeDto::Ranges(r.clone()),
                        AttributeValue::Set(s) => AttributeDto::Set(s.clone()),
                    };
                    (k.clone(), v)
                })
                .collect(),
        }
    }
}

impl FactsDto {
    fn into_core(self) -> AgentFacts {
        AgentFacts {
            region: self.region,
            zone: self.zone,
            attributes: self
                .attributes
                .into_iter()
                .map(|(k, v)| {
                    let value = match v {
                        AttributeDto::Text(t) => AttributeValue::Text(t),
                        AttributeDto::Scalar(s) => AttributeValue::Scalar(s),
                        AttributeDto::Ranges(r) => AttributeValue::Ranges(r),
                        AttributeDto::Set(s) => AttributeValue::Set(s),
                    };
                    (k, Attribute::new(value))
                })
                .collect(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct TaskDto {
    id: String,
    agent_id: String,
    hostname: String,
    #[serde(default)]
    facts: FactsDto,
    executor_id: String,
    /// Mesos' name, e.g. `TASK_RUNNING`.
    state: String,
    staged_at: i64,
    started_at: Option<i64>,
    updated_at: i64,
    message: Option<String>,
    kill_sent_at: Option<i64>,
    host_ports: Vec<u32>,
    health: Option<HealthDto>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum GoalDto {
    Running,
    Decommissioned,
}

#[derive(Serialize, Deserialize)]
struct InstanceDto {
    id: String,
    app_id: String,
    app_version: i64,
    goal: GoalDto,
    incarnation: u32,
    task: Option<TaskDto>,
}

fn opt_ts(t: Option<Timestamp>) -> Option<i64> {
    t.map(Timestamp::as_millis)
}

fn opt_core(t: Option<i64>) -> Option<Timestamp> {
    t.map(Timestamp::from_millis)
}

impl From<&Instance> for InstanceDto {
    fn from(i: &Instance) -> Self {
        InstanceDto {
            id: i.id.to_string(),
            app_id: i.app_id.to_string(),
            app_version: ts(i.app_version),
            goal: match i.goal {
                Goal::Running => GoalDto::Running,
                Goal::Decommissioned => GoalDto::Decommissioned,
            },
            incarnation: i.incarnation,
            task: i.task.as_ref().map(|t| TaskDto {
                id: t.id.to_string(),
                agent_id: t.agent_id.clone(),
                hostname: t.hostname.clone(),
                facts: FactsDto::from(&*t.facts),
                executor_id: t.executor_id.clone(),
                state: t.state.mesos_name().to_owned(),
                staged_at: ts(t.staged_at),
                started_at: opt_ts(t.started_at),
                updated_at: ts(t.updated_at),
                message: t.message.clone(),
                kill_sent_at: opt_ts(t.kill_sent_at),
                host_ports: t.host_ports.clone(),
                health: t.health.as_ref().map(|h| HealthDto {
                    alive: h.alive,
                    first_success: opt_ts(h.first_success),
                    last_success: opt_ts(h.last_success),
                    last_failure: opt_ts(h.last_failure),
                    consecutive_failures: h.consecutive_failures,
                    last_failure_cause: h.last_failure_cause.clone(),
                }),
            }),
        }
    }
}

impl InstanceDto {
    fn into_core(self) -> Result<Instance, String> {
        let task = match self.task {
            None => None,
            Some(t) => Some(Task {
                id: TaskId::from_raw(t.id),
                agent_id: t.agent_id,
                hostname: t.hostname,
                facts: Arc::new(t.facts.into_core()),
                executor_id: t.executor_id,
                state: TaskState::from_mesos_name(&t.state)
                    .ok_or_else(|| format!("unknown task state `{}`", t.state))?,
                staged_at: Timestamp::from_millis(t.staged_at),
                started_at: opt_core(t.started_at),
                updated_at: Timestamp::from_millis(t.updated_at),
                message: t.message,
                kill_sent_at: opt_core(t.kill_sent_at),
                host_ports: t.host_ports,
                health: t.health.map(|h| Health {
                    alive: h.alive,
                    first_success: opt_core(h.first_success),
                    last_success: opt_core(h.last_success),
                    last_failure: opt_core(h.last_failure),
                    consecutive_failures: h.consecutive_failures,
                    last_failure_cause: h.last_failure_cause,
                }),
            }),
        };
        Ok(Instance {
            id: instance_id(&self.id)?,
            app_id: app_id(&self.app_id)?,
            app_version: Timestamp::from_millis(self.app_version),
            goal: match self.goal {
                GoalDto::Running => Goal::Running,
                GoalDto::Decommissioned => Goal::Decommissioned,
            },
            incarnation: self.incarnation,
            task,
        })
    }
}

// The stored names are the core's (and Marathon's) action names.
#[allow(clippy::enum_variant_names)]
#[derive(Serialize, Deserialize)]
enum ActionDto {
    StartApplication,
    ScaleApplication,
    RestartApplication,
    StopApplication,
}

#[derive(Serialize, Deserialize)]
struct StepActionDto {
    action: ActionDto,
    app: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum OriginDto {
    User,
    Rollback { of: String },
}

#[derive(Serialize, Deserialize)]
struct DeploymentDto {
    id: String,
    version: i64,
    steps: Vec<Vec<StepActionDto>>,
    current_step: u64,
    original: BTreeMap<String, Option<AppDto>>,
    target: BTreeMap<String, Option<AppDto>>,
    last_progress_at: i64,
    progress_mark: Vec<(u32, u32, u32)>,
    origin: OriginDto,
}

fn apps_dto(apps: &BTreeMap<AppId, Option<AppSpec>>) -> BTreeMap<String, Option<AppDto>> {
    apps.iter().map(|(id, a)| (id.to_string(), a.as_ref().map(AppDto::from))).collect()
}

fn apps_core(
    apps: BTreeMap<String, Option<AppDto>>,
) -> Result<BTreeMap<AppId, Option<AppSpec>>, String> {
    apps.into_iter()
        .map(|(id, a)| Ok((app_id(&id)?, a.map(AppDto::into_core).transpose()?)))
        .collect()
}

impl From<&Deployment> for DeploymentDto {
    fn from(d: &Deployment) -> Self {
        DeploymentDto {
            id: d.id.clone(),
            version: ts(d.version),
            steps: d
                .steps
                .iter()
                .map(|step| {
                    step.iter()
                        .map(|s| StepActionDto {
                            action: match s.action {
                                Action::StartApplication => ActionDto::StartApplication,
                                Action::ScaleApplication => ActionDto::ScaleApplication,
                                Action::RestartApplication => ActionDto::RestartApplication,
                                Action::StopApplication => ActionDto::StopApplication,
                            },
                            app: s.app.to_string(),
                        })
                        .collect()
                })
                .collect(),
            current_step: d.current_step as u64,
            original: apps_dto(&d.original),
            target: apps_dto(&d.target),
            last_progress_at: ts(d.last_progress_at),
            progress_mark: d.progress_mark.clone(),
            origin: match &d.origin {
                Origin::User => OriginDto::User,
                Origin::Rollback { of } => OriginDto::Rollback { of: of.clone() },
            },
        }
    }
}

impl DeploymentDto {
    fn into_core(self) -> Result<Deployment, String> {
        let mut steps = Vec::with_capacity(self.steps.len());
        for step in self.steps {
            let mut actions = Vec::with_capacity(step.len());
            for s in step {
                actions.push(StepAction {
                    action: match s.action {
                        ActionDto::StartApplication => Action::StartApplication,
                        ActionDto::ScaleApplication => Action::ScaleApplication,
                        ActionDto::RestartApplication => Action::RestartApplication,
                        ActionDto::StopApplication => Action::StopApplication,
                    },
                    app: app_id(&s.app)?,
                });
            }
            steps.push(actions);
        }
        Ok(Deployment {
            id: self.id,
            version: Timestamp::from_millis(self.version),
            steps,
            current_step: usize::try_from(self.current_step)
                .map_err(|_| "current step out of range".to_owned())?,
            original: apps_core(self.original)?,
            target: apps_core(self.target)?,
            last_progress_at: Timestamp::from_millis(self.last_progress_at),
            progress_mark: self.progress_mark,
            origin: match self.origin {
                OriginDto::User => Origin::User,
                OriginDto::Rollback { of } => Origin::Rollback { of },
            },
        })
    }
}

fn job_name(raw: &str) -> Result<JobName, String> {
    JobName::parse(raw).map_err(|_| format!("invalid job name `{raw}`"))
}

fn job_names(raw: Vec<String>) -> Result<std::collections::BTreeSet<JobName>, String> {
    raw.iter().map(|n| job_name(n)).collect()
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ScheduleKindDto {
    Iso8601,
    Cron,
}

/// A schedule as its text, read again on decode: the parsed form is the
/// core's business, the text is what the user gave (an ISO 8601 schedule's
/// empty start already resolved, so it reads back the same at any time).
#[derive(Serialize, Deserialize)]
struct ScheduleDto {
    kind: ScheduleKindDto,
    source: String,
    time_zone: Option<String>,
}

impl From<&Schedule> for ScheduleDto {
    fn from(s: &Schedule) -> Self {
        ScheduleDto {
            kind: match s {
                Schedule::Iso8601(_) => ScheduleKindDto::Iso8601,
                Schedule::Cron(_) => ScheduleKindDto::Cron,
            },
            source: s.source(),
            time_zone: s.time_zone().map(str::to_owned),
        }
    }
}

impl ScheduleDto {
    fn into_core(self) -> Result<Schedule, String> {
        let tz = self.time_zone.as_deref();
        match self.kind {
            // The source's start is resolved: `now` is never used.
            ScheduleKindDto::Iso8601 => Schedule::parse_iso8601(&self.source, tz, Timestamp::EPOCH),
            ScheduleKindDto::Cron => Schedule::parse_cron(&self.source, tz),
        }
        .map_err(|e| format!("schedule `{}`: {e}", self.source))
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ConcurrencyDto {
    Allow,
    Forbid,
    Replace,
}

#[derive(Serialize, Deserialize)]
struct RetryDto {
    retries: u32,
    backoff: Dur,
    backoff_factor: f64,
    max_backoff: Dur,
}

#[derive(Serialize, Deserialize)]
struct JobDto {
    name: String,
    command: String,
    shell: bool,
    arguments: Vec<String>,
    schedule: Option<ScheduleDto>,
    parents: Vec<String>,
    disabled: bool,
    concurrency: ConcurrencyDto,
    soft_error: bool,
    retry: RetryDto,
    starting_deadline: Option<Dur>,
    resources: ResourcesDto,
    container: Option<ContainerDto>,
    network: NetworkDto,
    env: BTreeMap<String, String>,
    placement: PlacementDto,
    max_completion_time: Option<Dur>,
    owner: String,
    owner_name: String,
    description: String,
    success_history_limit: u32,
    failure_history_limit: u32,
    version: i64,
}

impl From<&JobSpec> for JobDto {
    fn from(j: &JobSpec) -> Self {
        JobDto {
            name: j.name.to_string(),
            command: j.command.clone(),
            shell: j.shell,
            arguments: j.arguments.clone(),
            schedule: j.schedule.as_ref().map(ScheduleDto::from),
            parents: j.parents.iter().map(ToString::to_string).collect(),
            disabled: j.disabled,
            concurrency: match j.concurrency {
                ConcurrencyPolicy::Allow => ConcurrencyDto::Allow,
                ConcurrencyPolicy::Forbid => ConcurrencyDto::Forbid,
                ConcurrencyPolicy::Replace => ConcurrencyDto::Replace,
            },
            soft_error: j.soft_error,
            retry: RetryDto {
                retries: j.retry.retries,
                backoff: j.retry.backoff.into(),
                backoff_factor: j.retry.backoff_factor,
                max_backoff: j.retry.max_backoff.into(),
            },
            starting_deadline: j.starting_deadline.map(Into::into),
            resources: ResourcesDto::from(&j.resources),
            container: j.container.as_ref().map(ContainerDto::from),
            network: NetworkDto::from(&j.network),
            env: j.env.clone(),
            placement: PlacementDto::from(&j.placement),
            max_completion_time: j.max_completion_time.map(Into::into),
            owner: j.owner.clone(),
            owner_name: j.owner_name.clone(),
            description: j.description.clone(),
            success_history_limit: j.success_history_limit,
            failure_history_limit: j.failure_history_limit,
            version: ts(j.version),
        }
    }
}

impl JobDto {
    fn into_core(self) -> Result<JobSpec, String> {
        Ok(JobSpec {
            name: job_name(&self.name)?,
            command: self.command,
            shell: self.shell,
            arguments: self.arguments,
            schedule: self.schedule.map(ScheduleDto::into_core).transpose()?,
            parents: job_names(self.parents)?,
            disabled: self.disabled,
            concurrency: match self.concurrency {
                ConcurrencyDto::Allow => ConcurrencyPolicy::Allow,
                ConcurrencyDto::Forbid => ConcurrencyPolicy::Forbid,
                ConcurrencyDto::Replace => ConcurrencyPolicy::Replace,
            },
            soft_error: self.soft_error,
            retry: RetryPolicy {
                retries: self.retry.retries,
                backoff: self.retry.backoff.into_core()?,
                backoff_factor: self.retry.backoff_factor,
                max_backoff: self.retry.max_backoff.into_core()?,
            },
            starting_deadline: self.starting_deadline.map(Dur::into_core).transpose()?,
            resources: self.resources.into_core(),
            container: self.container.map(ContainerDto::into_core),
            network: self.network.into_core(),
            env: self.env,
            placement: self.placement.into_core()?,
            max_completion_time: self.max_completion_time.map(Dur::into_core).transpose()?,
            owner: self.owner,
            owner_name: self.owner_name,
            description: self.description,
            success_history_limit: self.success_history_limit,
            failure_history_limit: self.failure_history_limit,
            version: Timestamp::from_millis(self.version),
        })
    }
}

/// A job's state, with the job's name (the state itself does not carry it;
/// the key does, and decoding checks that they agree).
#[derive(Serialize, Deserialize)]
struct JobStateDto {
    job: String,
    last_fired: Option<i64>,
    parents_done: Vec<String>,
    success_count: u64,
    error_count: u64,
    missed_count: u64,
    last_success: Option<i64>,
    last_error: Option<i64>,
    errors_since_last_success: u64,
    exhausted: bool,
}

impl JobStateDto {
    fn from_core(name: &JobName, st: &JobState) -> Self {
        JobStateDto {
            job: name.to_string(),
            last_fired: opt_ts(st.last_fired),
            parents_done: st.parents_done.iter().map(ToString::to_string).collect(),
            success_count: st.success_count,
            error_count: st.error_count,
            missed_count: st.missed_count,
            last_success: opt_ts(st.last_success),
            last_error: opt_ts(st.last_error),
            errors_since_last_success: st.errors_since_last_success,
            exhausted: st.exhausted,
        }
    }

    fn into_core(self) -> Result<(JobName, JobState), String> {
        let st = JobState {
            last_fired: opt_core(self.last_fired),
            parents_done: job_names(self.parents_done)?,
            success_count: self.success_count,
            error_count: self.error_count,
            missed_count: self.missed_count,
            last_success: opt_core(self.last_success),
            last_error: opt_core(self.last_error),
            errors_since_last_success: self.errors_since_last_success,
            exhausted: self.exhausted,
        };
        Ok((job_name(&self.job)?, st))
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum TriggerDto {
    Schedule { due: i64 },
    Dependency,
    Manual { arguments: Vec<String> },
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RunStatusDto {
    Queued,
    Running,
    Succeeded,
    Failed,
    Killed,
    Missed,
}

#[derive(Serialize, Deserialize)]
struct JobRunDto {
    id: String,
    job: String,
    trigger: TriggerDto,
    status: RunStatusDto,
    attempts: u32,
    task_ids: Vec<String>,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    message: String,
    not_before: i64,
    instance_id: Option<String>,
}

impl From<&JobRun> for JobRunDto {
    fn from(r: &JobRun) -> Self {
        JobRunDto {
            id: r.id.clone(),
            job: r.job.to_string(),
            trigger: match &r.trigger {
                Trigger::Schedule(due) => TriggerDto::Schedule { due: ts(*due) },
                Trigger::Dependency => TriggerDto::Dependency,
                Trigger::Manual { arguments } => {
                    TriggerDto::Manual { arguments: arguments.clone() }
                }
            },
            status: match r.status {
                RunStatus::Queued => RunStatusDto::Queued,
                RunStatus::Running => RunStatusDto::Running,
                RunStatus::Succeeded => RunStatusDto::Succeeded,
                RunStatus::Failed => RunStatusDto::Failed,
                RunStatus::Killed => RunStatusDto::Killed,
                RunStatus::Missed => RunStatusDto::Missed,
            },
            attempts: r.attempts,
            task_ids: r.task_ids.clone(),
            created_at: ts(r.created_at),
            started_at: opt_ts(r.started_at),
            finished_at: opt_ts(r.finished_at),
            message: r.message.clone(),
            not_before: ts(r.not_before),
            instance_id: r.instance_id.as_ref().map(ToString::to_string),
        }
    }
}

impl JobRunDto {
    fn into_core(self) -> Result<JobRun, String> {
        Ok(JobRun {
            id: self.id,
            job: job_name(&self.job)?,
            trigger: match self.trigger {
                TriggerDto::Schedule { due } => Trigger::Schedule(Timestamp::from_millis(due)),
                TriggerDto::Dependency => Trigger::Dependency,
                TriggerDto::Manual { arguments } => Trigger::Manual { arguments },
            },
            status: match self.status {
                RunStatusDto::Queued => RunStatus::Queued,
                RunStatusDto::Running => RunStatus::Running,
                RunStatusDto::Succeeded => RunStatus::Succeeded,
                RunStatusDto::Failed => RunStatus::Failed,
                RunStatusDto::Killed => RunStatus::Killed,
                RunStatusDto::Missed => RunStatus::Missed,
            },
            attempts: self.attempts,
            task_ids: self.task_ids,
            created_at: Timestamp::from_millis(self.created_at),
            started_at: opt_core(self.started_at),
            finished_at: opt_core(self.finished_at),
            message: self.message,
            not_before: Timestamp::from_millis(self.not_before),
            instance_id: self.instance_id.as_deref().map(instance_id).transpose()?,
        })
    }
}

#[cfg(test)]
mod tests;
