//! The boundary between Mesos protos and the scheduling core's domain types.
//!
//! Offers and status updates come in as `mesos.v1` messages and leave as
//! core types; the core's [`MesosCall`]s leave as `mesos.v1.scheduler.Call`s.
//! Nothing else in the daemon builds or inspects Mesos messages.
//!
//! **Task contract with `drover-executor`:** every task runs under a custom
//! executor (`ExecutorInfo.type = CUSTOM`) whose command is the
//! `drover-executor` binary. What the task runs travels in `TaskInfo.data`
//! as a protobuf-encoded `drover.v1.TaskData` (`protos/drover/v1/task.proto`):
//! the command (`shell = true` with the command line in `value`, or `shell =
//! false` with the program in `value` and the whole argv in `arguments`) and
//! the task's environment, the Docker container, and the health checks with
//! their ports resolved. The task's host ports are its `ports` resource. The
//! kill grace period is `TaskInfo.kill_policy.grace_period`.
//!
//! **Secrets** are resolved here, when a launch becomes a `TaskInfo`, and
//! only here ([`secrets`]): a launch's secret environment variables carry a
//! reference; their values go into the task's environment inside
//! `TaskInfo.data` (which Mesos does not show in its state endpoints), never
//! into logs, events or errors. A launch whose secret cannot be resolved is
//! left out of the ACCEPT and reported back to the core as `TASK_ERROR`
//! (`REASON_TASK_INVALID`, as the master reports an invalid task), with a
//! message naming the secret and why; the core then relaunches it with
//! backoff.

use std::collections::BTreeMap;
use std::time::Duration;

use drover_protos::Message;
use drover_protos::drover::v1 as drover;
use drover_protos::mesos::v1 as mesos;
use drover_protos::mesos::v1::scheduler::Call;
use mesos_wire::scheduler::calls;
use sched_core::app::{
    CommandSpec, ContainerSpec, HealthCheckSpec, HealthProtocol, NetworkMode, Resources, VolumeMode,
};
use sched_core::instance::TaskState;
use sched_core::offer::{AgentFacts, AttributeValue, Offer, RoleResources, UNRESERVED};
use sched_core::ports::PortRanges;
use sched_core::scheduler::{LaunchSpec, MesosCall, StatusUpdate};

pub(crate) mod secrets;

use self::secrets::SecretSource;

/// Settings of the executor Drover launches its tasks under.
#[derive(Debug, Clone)]
pub(crate) struct ExecutorSettings {
    /// Path of `drover-executor` on the agents.
    pub(crate) path: String,
    /// Extra environment for the executor (`DROVER_LOG`, ...).
    pub(crate) env: Vec<(String, String)>,
}

/// The FrameworkInfo Drover subscribes with; `principal` is the one its
/// HTTP credentials authenticate (the master requires them to match).
pub(crate) fn framework_info(
    name: &str,
    user: &str,
    principal: Option<&str>,
    failover_timeout: Duration,
    hostname: &str,
    webui_url: &str,
) -> mesos::FrameworkInfo {
    let capability = |t: mesos::framework_info::capability::Type| {
        let mut c = mesos::framework_info::Capability::default();
        c.set_type(t);
        c
    };
    use mesos::framework_info::capability::Type;
    mesos::FrameworkInfo {
        user: user.to_owned(),
        name: name.to_owned(),
        failover_timeout: Some(failover_timeout.as_secs_f64()),
        checkpoint: Some(true),
        hostname: Some(hostname.to_owned()),
        webui_url: Some(webui_url.to_owned()),
        principal: principal.map(str::to_owned),
        capabilities: vec![capability(Type::PartitionAware), capability(Type::TaskKillingState)],
        ..Default::default()
    }
}

/// The role whose pool an offered resource belongs to, or `None` when Drover
/// cannot use it (dynamically reserved, revocable, shared, a volume or
/// other disk with a source, or from a resource provider).
///
/// Frameworks without the MULTI_ROLE capability (Drover) get resources in
/// the pre-reservation-refinement format: the (deprecated) `role` field is
/// `*` for unreserved resources and the role of a static reservation;
/// `reservation` is set only for dynamic reservations. The
/// post-refinement format (`reservations`, the last one the effective
/// reservation) is read too.
#[allow(deprecated)]
fn pool_role(r: &mesos::Resource) -> Option<String> {
    use mesos::resource::reservation_info::Type;
    if r.revocable.is_some() || r.disk.is_some() || r.shared.is_some() || r.provider_id.is_some() {
        return None;
    }
    if r.reservation.is_some() {
        return None;
    }
    if let Some(last) = r.reservations.last() {
        let dynamic = last.r#type.and_then(|t| Type::try_from(t).ok()) == Some(Type::Dynamic);
        return if dynamic { None } else { last.role.clone().or_else(|| r.role.clone()) };
    }
    Some(r.role.clone().unwrap_or_else(|| UNRESERVED.to_owned()))
}

/// The agent facts constraints read: fault domain and attributes.
fn agent_facts(o: &mesos::Offer) -> AgentFacts {
    use mesos::value::Type;
    let mut facts = AgentFacts::default();
    if let Some(fd) = o.domain.as_ref().and_then(|d| d.fault_domain.as_ref()) {
        facts = facts.with_domain(&fd.region.name, &fd.zone.name);
    }
    for a in &o.attributes {
        let value = match a.r#type() {
            Type::Scalar => a.scalar.as_ref().map(|s| AttributeValue::Scalar(s.value)),
            Type::Ranges => a.ranges.as_ref().map(|r| {
                AttributeValue::Ranges(r.range.iter().map(|x| (x.begin, x.end)).collect())
            }),
            Type::Set => a.set.as_ref().map(|s| AttributeValue::Set(s.item.clone())),
            Type::Text => a.text.as_ref().map(|t| AttributeValue::Text(t.value.clone())),
        };
        if let Some(v) = value {
            facts = facts.with_attribute(&a.name, v);
        }
    }
    facts
}

/// An offer as the core sees it: the agent's facts and the resources
/// Drover may use, by role.
pub(crate) fn offer_from_proto(o: &mesos::Offer) -> Offer {
    let mut offer =
        Offer::new(&o.id.value, &o.agent_id.value, &o.hostname).with_facts(agent_facts(o));
    let clamp = |v: u64| u32::try_from(v.min(65535)).unwrap_or(65535);
    for r in &o.resources {
        let Some(role) = pool_role(r) else {
            offer.ignored_resources += 1;
            continue;
        };
        if r.name == "ports" {
            if let Some(ranges) = &r.ranges {
                let ports =
                    PortRanges::new(ranges.range.iter().map(|x| (clamp(x.begin), clamp(x.end))));
                offer.add(&role, Resources::default(), ports);
            }
            continue;
        }
        let Some(value) = r.scalar.as_ref().map(|s| s.value).filter(|v| v.is_finite() && *v > 0.0)
        else {
            continue;
        };
        let mut res = Resources::default();
        match r.name.as_str() {
            "cpus" => res.cpus = value,
            "mem" => res.mem = value,
            "disk" => res.disk = value,
            "gpus" => res.gpus = value.floor().min(f64::from(u32::MAX)) as u32,
            _ => continue,
        }
        offer.add(&role, res, PortRanges::default());
    }
    offer
}

/// The core's view of a task state.
pub(crate) fn task_state(s: mesos::TaskState) -> TaskState {
    use mesos::TaskState as M;
    match s {
        M::TaskStaging => TaskState::Staging,
        M::TaskStarting => TaskState::Starting,
        M::TaskRunning => TaskState::Running,
        M::TaskKilling => TaskState::Killing,
        M::TaskFinished => TaskState::Finished,
        M::TaskFailed => TaskState::Failed,
        M::TaskKilled => TaskState::Killed,
        M::TaskError => TaskState::Error,
        M::TaskLost => TaskState::Lost,
        M::TaskDropped => TaskState::Dropped,
        M::TaskUnreachable => TaskState::Unreachable,
        M::TaskGone => TaskState::Gone,
        M::TaskGoneByOperator => TaskState::GoneByOperator,
        M::TaskUnknown => TaskState::Unknown,
    }
}

/// A status update as the core sees it.
pub(crate) fn status_from_proto(s: &mesos::TaskStatus) -> StatusUpdate {
    let reason = s.reason.and_then(|r| mesos::task_status::Reason::try_from(r).ok());
    StatusUpdate {
        task_id: s.task_id.value.clone(),
        state: task_state(s.state()),
        agent_id: s.agent_id.as_ref().map(|a| a.value.clone()),
        message: s.message.clone().filter(|m| !m.is_empty()),
        reason: reason.map(|r| r.as_str_name().to_owned()),
        uuid: s.uuid.clone().filter(|u| !u.is_empty()),
        healthy: s.healthy,
    }
}

fn scalar(name: &str, value: f64) -> mesos::Resource {
    let mut r = mesos::Resource {
        name: name.to_owned(),
        scalar: Some(mesos::value::Scalar { value }),
        ..Default::default()
    };
    r.set_type(mesos::value::Type::Scalar);
    r
}

/// Launch resources as offered: each part carries its pool's role in the
/// (deprecated) `role` field, which is how a framework without MULTI_ROLE
/// names unreserved (`*`) and statically reserved resources.
#[allow(deprecated)]
fn resources(parts: &[RoleResources]) -> Vec<mesos::Resource> {
    let mut out = Vec::new();
    for part in parts {
        let r = &part.resources;
        let mut add = |mut res: mesos::Resource| {
            res.role = Some(part.role.clone());
            out.push(res);
        };
        for (name, value) in [("cpus", r.cpus), ("mem", r.mem), ("disk", r.disk)] {
            if value > 0.0 {
                add(scalar(name, value));
            }
        }
        if r.gpus > 0 {
            add(scalar("gpus", f64::from(r.gpus)));
        }
        if !part.ports.is_empty() {
            let ranges = PortRanges::new(part.ports.iter().map(|p| (*p, *p)));
            let mut res = mesos::Resource {
                name: "ports".to_owned(),
                ranges: Some(mesos::value::Ranges {
                    range: ranges
                        .ranges()
                        .iter()
                        .map(|(a, b)| mesos::value::Range {
                            begin: u64::from(*a),
                            end: u64::from(*b),
                        })
                        .collect(),
                }),
                ..Default::default()
            };
            res.set_type(mesos::value::Type::Ranges);
            add(res);
        }
    }
    out
}

/// The parts a launch takes, by role; a launch built without them (by
/// hand) takes its totals from unreserved resources.
fn parts(by_role: &[RoleResources], total: &Resources, ports: &[u32]) -> Vec<RoleResources> {
    if by_role.is_empty() {
        vec![RoleResources {
            role: UNRESERVED.to_owned(),
            resources: *total,
            ports: ports.to_vec(),
        }]
    } else {
        by_role.to_vec()
    }
}

fn environment<'a>(vars: impl IntoIterator<Item = (&'a String, &'a String)>) -> mesos::Environment {
    mesos::Environment {
        variables: vars
            .into_iter()
            .map(|(k, v)| {
                let mut var = mesos::environment::Variable {
                    name: k.clone(),
                    value: Some(v.clone()),
                    ..Default::default()
                };
                var.set_type(mesos::environment::variable::Type::Value);
                var
            })
            .collect(),
    }
}

/// The task's environment: the launch's, plus its secrets' values (which
/// win). The error names the secret that cannot be resolved, never a value.
fn resolved_env(
    spec: &LaunchSpec,
    secrets: &SecretSource,
) -> Result<BTreeMap<String, String>, String> {
    let mut env = spec.env.clone();
    for (var, secret) in &spec.secret_env {
        let value = secrets.resolve(&secret.source).map_err(|e| {
            format!("secret `{}` for {var} cannot be resolved: {}", secret.name, e.describe())
        })?;
        env.insert(var.clone(), value.expose().to_owned());
    }
    Ok(env)
}

/// The command part of `TaskData` (see the module docs).
fn task_command(spec: &LaunchSpec, env: &BTreeMap<String, String>) -> mesos::CommandInfo {
    let (value, shell, arguments) = match &spec.command {
        Some(CommandSpec::Shell(c)) => (Some(c.clone()), true, Vec::new()),
        Some(CommandSpec::Argv(argv)) => (argv.first().cloned(), false, argv.clone()),
        None => (None, false, Vec::new()),
    };
    mesos::CommandInfo {
        value,
        shell: Some(shell),
        arguments,
        environment: Some(environment(env)),
        ..Default::default()
    }
}

fn container_info(
    c: &ContainerSpec,
    network: &NetworkMode,
    host_ports: &[u32],
) -> mesos::ContainerInfo {
    use mesos::container_info::docker_info;
    // Host ports were assigned to the mappings that have one, in order.
    let mut ports = host_ports.iter();
    let port_mappings = match network {
        NetworkMode::Host => Vec::new(),
        NetworkMode::Bridge => c
            .port_mappings
            .iter()
            .filter(|m| m.host_port.is_some())
            .filter_map(|m| {
                let host = *ports.next()?;
                let container = if m.container_port == 0 { host } else { m.container_port };
                Some(docker_info::PortMapping {
                    host_port: host,
                    container_port: container,
                    protocol: Some(m.protocol.clone()),
                })
            })
            .collect(),
    };
    let mut docker = mesos::container_info::DockerInfo {
        image: c.image.clone(),
        port_mappings,
        privileged: Some(c.privileged),
        parameters: c
            .parameters
            .iter()
            .map(|(k, v)| mesos::Parameter { key: k.clone(), value: v.clone() })
            .collect(),
        force_pull_image: Some(c.force_pull),
        ..Default::default()
    };
    docker.set_network(match network {
        NetworkMode::Host => docker_info::Network::Host,
        NetworkMode::Bridge => docker_info::Network::Bridge,
    });
    let mut info = mesos::ContainerInfo {
        docker: Some(docker),
        volumes: c
            .volumes
            .iter()
            .map(|v| {
                let mut vol = mesos::Volume {
                    container_path: v.container_path.clone(),
                    host_path: Some(v.host_path.clone()),
                    ..Default::default()
                };
                vol.set_mode(match v.mode {
                    VolumeMode::ReadOnly => mesos::volume::Mode::Ro,
                    VolumeMode::ReadWrite => mesos::volume::Mode::Rw,
                });
                vol
            })
            .collect(),
        ..Default::default()
    };
    info.set_type(mesos::container_info::Type::Docker);
    info
}

fn health_check(h: &HealthCheckSpec) -> drover::HealthCheck {
    use mesos::health_check::{HttpCheckInfo, TcpCheckInfo, Type};
    let port = h.port.unwrap_or(0);
    let mut check = mesos::HealthCheck {
        delay_seconds: Some(h.delay.as_secs_f64()),
        interval_seconds: Some(h.interval.as_secs_f64()),
        timeout_seconds: Some(h.timeout.as_secs_f64()),
        consecutive_failures: Some(h.max_consecutive_failures),
        grace_period_seconds: Some(h.grace_period.as_secs_f64()),
        ..Default::default()
    };
    match h.protocol {
        HealthProtocol::Http => {
            check.set_type(Type::Http);
            check.http = Some(HttpCheckInfo {
                port,
                path: Some(h.path.clone()),
                scheme: Some("http".to_owned()),
                ..Default::default()
            });
        }
        HealthProtocol::Tcp => {
            check.set_type(Type::Tcp);
            check.tcp = Some(TcpCheckInfo { port, ..Default::default() });
        }
        HealthProtocol::Command => {
            check.set_type(Type::Command);
            check.command = Some(mesos::CommandInfo {
                value: h.command.clone(),
                shell: Some(true),
                ..Default::default()
            });
        }
    }
    drover::HealthCheck { check: Some(check), ignore_http1xx: h.ignore_http1xx }
}

/// The `drover.v1.TaskData` carried in `TaskInfo.data` (see the module
/// docs), with the task's environment `env` (secrets resolved).
fn task_data(spec: &LaunchSpec, env: &BTreeMap<String, String>) -> drover::TaskData {
    drover::TaskData {
        command: Some(task_command(spec, env)),
        container: spec
            .container
            .as_ref()
            .map(|c| container_info(c, &spec.network, &spec.host_ports)),
        health_checks: spec.health_checks.iter().map(health_check).collect(),
        app_id: spec.app_id.to_string(),
    }
}

/// The TaskInfo for one launch, its secrets resolved from `secrets`; an
/// error says which secret cannot be resolved (see the module docs).
pub(crate) fn task_info(
    spec: &LaunchSpec,
    framework_id: &str,
    executor: &ExecutorSettings,
    secrets: &SecretSource,
) -> Result<mesos::TaskInfo, String> {
    let env = resolved_env(spec, secrets)?;
    let exec_env: Vec<(String, String)> = executor.env.clone();
    let mut executor_info = mesos::ExecutorInfo {
        executor_id: mesos::ExecutorId { value: spec.executor_id.clone() },
        framework_id: Some(mesos::FrameworkId { value: framework_id.to_owned() }),
        command: Some(mesos::CommandInfo {
            value: Some(executor.path.clone()),
            shell: Some(false),
            arguments: vec![executor.path.clone()],
            environment: Some(environment(exec_env.iter().map(|(k, v)| (k, v)))),
            ..Default::default()
        }),
        resources: resources(&parts(&spec.executor_roles, &spec.executor_resources, &[])),
        name: Some(format!("drover-executor for {}", spec.task_id)),
        ..Default::default()
    };
    executor_info.set_type(mesos::executor_info::Type::Custom);
    Ok(mesos::TaskInfo {
        name: spec.app_id.safe_path(),
        task_id: mesos::TaskId { value: spec.task_id.to_string() },
        agent_id: mesos::AgentId { value: spec.agent_id.clone() },
        resources: resources(&parts(&spec.task_roles, &spec.resources, &spec.host_ports)),
        executor: Some(executor_info),
        data: Some(task_data(spec, &env).encode_to_vec()),
        kill_policy: spec
            .kill_grace
            .map(|g| mesos::KillPolicy { grace_period: Some(calls::duration_info(g)) }),
        labels: (!spec.labels.is_empty()).then(|| mesos::Labels {
            labels: spec
                .labels
                .iter()
                .map(|(k, v)| mesos::Label { key: k.clone(), value: Some(v.clone()) })
                .collect(),
        }),
        ..Default::default()
    })
}

/// What the master would answer for a task it refuses: `TASK_ERROR` with
/// `REASON_TASK_INVALID` and the reason.
fn refused(spec: &LaunchSpec, message: String) -> StatusUpdate {
    StatusUpdate {
        task_id: spec.task_id.to_string(),
        state: TaskState::Error,
        agent_id: Some(spec.agent_id.clone()),
        message: Some(message),
        reason: Some(mesos::task_status::Reason::TaskInvalid.as_str_name().to_owned()),
        uuid: None,
        healthy: None,
    }
}

/// A core call as a Mesos scheduler call, plus the launches it leaves out
/// because a secret cannot be resolved, as the status updates to give the
/// core. An ACCEPT whose launches are all left out accepts nothing (a
/// decline with the same filter).
pub(crate) fn call_to_proto(
    call: &MesosCall,
    framework_id: &str,
    executor: &ExecutorSettings,
    secrets: &SecretSource,
) -> (Call, Vec<StatusUpdate>) {
    let secs = |d: &Duration| d.as_secs_f64();
    let call = match call {
        MesosCall::Accept { offer_id, launches, refuse } => {
            let mut tasks = Vec::with_capacity(launches.len());
            let mut failed = Vec::new();
            for l in launches {
                match task_info(l, framework_id, executor, secrets) {
                    Ok(t) => tasks.push(t),
                    Err(message) => failed.push(refused(l, message)),
                }
            }
            let operations = if tasks.is_empty() { vec![] } else { vec![calls::launch(tasks)] };
            let call = calls::accept(
                framework_id,
                std::slice::from_ref(offer_id),
                operations,
                secs(refuse),
            );
            return (call, failed);
        }
        MesosCall::Decline { offer_ids, refuse } => {
            calls::decline(framework_id, offer_ids, secs(refuse))
        }
        MesosCall::Kill { task_id, agent_id, grace } => {
            calls::kill(framework_id, task_id.as_str(), agent_id.as_deref(), *grace)
        }
        MesosCall::Acknowledge { agent_id, task_id, uuid } => {
            calls::acknowledge(framework_id, agent_id, task_id, uuid.clone())
        }
        MesosCall::Reconcile { tasks } => calls::reconcile(framework_id, tasks),
        MesosCall::Revive => calls::revive(framework_id, &[]),
        MesosCall::Suppress => calls::suppress(framework_id, &[]),
    };
    (call, Vec::new())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use drover_time::Timestamp;
    use sched_core::ids::{AppId, InstanceId};

    use super::*;

    fn launch(command: CommandSpec) -> LaunchSpec {
        let app = AppId::parse("/prod/web").unwrap();
        let inst = InstanceId::new(&app, "u1");
        let mut env = BTreeMap::new();
        env.insert("A".into(), "1".into());
        LaunchSpec {
            task_id: inst.task_id(1),
            instance_id: inst,
            app_id: app,
            app_version: Timestamp::EPOCH,
            agent_id: "S1".into(),
            hostname: "h".into(),
            executor_id: "drover-executor.t".into(),
            resources: Resources { cpus: 0.5, mem: 64.0, disk: 0.0, gpus: 0 },
            host_ports: vec![],
            executor_resources: Resources { cpus: 0.01, mem: 32.0, disk: 0.0, gpus: 0 },
            task_roles: vec![],
            executor_roles: vec![],
            command: Some(command),
            container: None,
            network: NetworkMode::Host,
            health_checks: vec![],
            env,
            secret_env: BTreeMap::new(),
            labels: BTreeMap::new(),
            kill_grace: Some(Duration::from_secs(4)),
        }
    }

    fn exec() -> ExecutorSettings {
        ExecutorSettings {
            path: "/opt/drover-executor".into(),
            env: vec![("DROVER_LOG".into(), "info".into())],
        }
    }

    #[test]
    fn task_info_runs_under_drover_executor_with_the_command_in_data() {
        let t = task_info(
            &launch(CommandSpec::Shell("sleep 600".into())),
            "fw",
            &exec(),
            &SecretSource::None,
        )
        .unwrap();
        assert_eq!(t.task_id.value, "prod_web.instance-u1._app.1");
        assert!(t.command.is_none(), "a task with an executor must not carry a command");
        let e = t.executor.as_ref().unwrap();
        assert_eq!(e.r#type(), mesos::executor_info::Type::Custom);
        let ec = e.command.as_ref().unwrap();
        assert_eq!(ec.value.as_deref(), Some("/opt/drover-executor"));
        assert_eq!(ec.shell, Some(false));
        assert_eq!(ec.environment.as_ref().unwrap().variables[0].name, "DROVER_LOG");
        let data = drover::TaskData::decode(t.data.as_deref().unwrap()).unwrap();
        assert_eq!(data.app_id, "/prod/web");
        assert!(data.container.is_none() && data.health_checks.is_empty());
        let cmd = data.command.unwrap();
        assert_eq!((cmd.value.as_deref(), cmd.shell), (Some("sleep 600"), Some(true)));
        assert_eq!(cmd.environment.unwrap().variables[0].value.as_deref(), Some("1"));
        assert_eq!(t.kill_policy.unwrap().grace_period.unwrap().nanoseconds, 4_000_000_000);
        let names: Vec<&str> = t.resources.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, vec!["cpus", "mem"]);
    }

    #[test]
    fn argv_commands_put_the_program_first() {
        let t = task_info(
            &launch(CommandSpec::Argv(vec!["sleep".into(), "5".into()])),
            "fw",
            &exec(),
            &SecretSource::None,
        )
        .unwrap();
        let cmd = drover::TaskData::decode(t.data.as_deref().unwrap()).unwrap().command.unwrap();
        assert_eq!(cmd.shell, Some(false));
        assert_eq!(cmd.value.as_deref(), Some("sleep"));
        assert_eq!(cmd.arguments, vec!["sleep", "5"]);
    }

    #[test]
    fn docker_bridge_task_carries_container_ports_and_health_checks() {
        use sched_core::app::PortMapping;
        let mut l = launch(CommandSpec::Shell("httpd".into()));
        l.command = None;
        l.host_ports = vec![31005, 31002];
        l.network = NetworkMode::Bridge;
        let mapping = |container_port, host_port| PortMapping {
            container_port,
            host_port,
            service_port: 10000,
            protocol: "tcp".into(),
            name: None,
            labels: BTreeMap::new(),
        };
        l.container = Some(ContainerSpec {
            image: "busybox".into(),
            force_pull: true,
            privileged: false,
            parameters: vec![("label".into(), "a=b".into())],
            volumes: vec![sched_core::app::Volume {
                container_path: "/c".into(),
                host_path: "/h".into(),
                mode: VolumeMode::ReadOnly,
            }],
            port_mappings: vec![mapping(80, Some(0)), mapping(9, None), mapping(0, Some(0))],
        });
        l.health_checks = vec![HealthCheckSpec {
            protocol: HealthProtocol::Http,
            protocol_name: "HTTP".into(),
            path: "/ok".into(),
            port_index: None,
            port: Some(31005),
            command: None,
            grace_period: Duration::from_secs(5),
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            max_consecutive_failures: 3,
            delay: Duration::from_secs(0),
            ignore_http1xx: true,
        }];
        let t = task_info(&l, "fw", &exec(), &SecretSource::None).unwrap();
        let ports = t.resources.iter().find(|r| r.name == "ports").unwrap();
        let ranges: Vec<(u64, u64)> =
            ports.ranges.as_ref().unwrap().range.iter().map(|r| (r.begin, r.end)).collect();
        assert_eq!(ranges, vec![(31002, 31002), (31005, 31005)]);
        let data = drover::TaskData::decode(t.data.as_deref().unwrap()).unwrap();
        let cmd = data.command.unwrap();
        assert_eq!(
            (cmd.value, cmd.shell, cmd.arguments.len()),
            (None, Some(false), 0),
            "image defaults"
        );
        let c = data.container.unwrap();
        assert_eq!(c.r#type(), mesos::container_info::Type::Docker);
        let d = c.docker.unwrap();
        assert_eq!(d.network(), mesos::container_info::docker_info::Network::Bridge);
        let maps: Vec<(u32, u32)> =
            d.port_mappings.iter().map(|m| (m.host_port, m.container_port)).collect();
        assert_eq!(maps, vec![(31005, 80), (31002, 31002)]);
        assert_eq!(d.force_pull_image, Some(true));
        assert_eq!(d.parameters[0].key, "label");
        assert_eq!(c.volumes[0].mode(), mesos::volume::Mode::Ro);
        let h = data.health_checks[0].check.as_ref().unwrap();
        assert_eq!(h.r#type(), mesos::health_check::Type::Http);
        assert_eq!(h.http.as_ref().unwrap().port, 31005);
        assert_eq!(h.http.as_ref().unwrap().path.as_deref(), Some("/ok"));
        assert_eq!(h.consecutive_failures, Some(3));
        assert!(data.health_checks[0].ignore_http1xx);
    }

    #[test]
    #[allow(deprecated)]
    fn offers_split_resources_by_role_and_skip_what_drover_cannot_use() {
        use mesos::resource::ReservationInfo;
        use mesos::resource::reservation_info::Type;
        let with_role = |mut r: mesos::Resource, role: &str| {
            r.role = Some(role.into());
            r
        };
        let mut dynamic = with_role(scalar("cpus", 16.0), "prod");
        dynamic.reservation = Some(ReservationInfo::default());
        let mut refined = scalar("mem", 256.0);
        let mut static_info = ReservationInfo { role: Some("ops".into()), ..Default::default() };
        static_info.set_type(Type::Static);
        refined.reservations = vec![static_info];
        let mut revocable = scalar("cpus", 4.0);
        revocable.revocable = Some(Default::default());
        let ports = |begin, end| {
            let mut r = mesos::Resource {
                name: "ports".into(),
                ranges: Some(mesos::value::Ranges {
                    range: vec![mesos::value::Range { begin, end }],
                }),
                ..Default::default()
            };
            r.set_type(mesos::value::Type::Ranges);
            r
        };
        let o = mesos::Offer {
            id: mesos::OfferId { value: "o".into() },
            agent_id: mesos::AgentId { value: "a".into() },
            hostname: "h".into(),
            resources: vec![
                with_role(scalar("cpus", 2.0), "*"),
                with_role(scalar("cpus", 8.0), "prod"),
                scalar("mem", 100.0),
                scalar("gpus", 1.0),
                scalar("cpus", 1.5),
                with_role(ports(31000, 31010), "*"),
                ports(5, 6),
                with_role(ports(5000, 5001), "prod"),
                dynamic,
                refined,
                revocable,
            ],
            ..Default::default()
        };
        let got = offer_from_proto(&o);
        type PoolRow<'a> = (&'a str, Resources, Vec<(u32, u32)>);
        let pools: Vec<PoolRow<'_>> = got
            .pools
            .iter()
            .map(|p| (p.role.as_str(), p.resources, p.ports.ranges().to_vec()))
            .collect();
        assert_eq!(
            pools,
            vec![
                (
                    "*",
                    Resources { cpus: 3.5, mem: 100.0, disk: 0.0, gpus: 1 },
                    vec![(5, 6), (31000, 31010)]
                ),
                ("ops", Resources { cpus: 0.0, mem: 256.0, disk: 0.0, gpus: 0 }, vec![]),
                ("prod", Resources { cpus: 8.0, mem: 0.0, disk: 0.0, gpus: 0 }, vec![(5000, 5001)]),
            ]
        );
        assert_eq!(got.ignored_resources, 2, "the dynamic reservation and the revocable cpus");
    }

    #[test]
    fn offers_carry_the_fault_domain_and_typed_attributes() {
        use mesos::domain_info::FaultDomain;
        use mesos::domain_info::fault_domain::{RegionInfo, ZoneInfo};
        let attr = |name: &str, t: mesos::value::Type| {
            let mut a = mesos::Attribute { name: name.into(), ..Default::default() };
            a.set_type(t);
            a
        };
        let mut rack = attr("rack", mesos::value::Type::Text);
        rack.text = Some(mesos::value::Text { value: "r1".into() });
        let mut cores = attr("cores", mesos::value::Type::Scalar);
        cores.scalar = Some(mesos::value::Scalar { value: 4.0 });
        let mut slots = attr("slots", mesos::value::Type::Ranges);
        slots.ranges = Some(mesos::value::Ranges {
            range: vec![
                mesos::value::Range { begin: 300, end: 400 },
                mesos::value::Range { begin: 100, end: 200 },
            ],
        });
        let mut disks = attr("disks", mesos::value::Type::Set);
        disks.set = Some(mesos::value::Set { item: vec!["ssd".into(), "hdd".into()] });
        let o = mesos::Offer {
            id: mesos::OfferId { value: "o".into() },
            agent_id: mesos::AgentId { value: "a".into() },
            hostname: "h".into(),
            attributes: vec![rack, cores, slots, disks],
            domain: Some(mesos::DomainInfo {
                fault_domain: Some(FaultDomain {
                    region: RegionInfo { name: "eu".into() },
                    zone: ZoneInfo { name: "eu-1".into() },
                }),
            }),
            ..Default::default()
        };
        let got = offer_from_proto(&o);
        assert_eq!(
            (got.facts.region.as_deref(), got.facts.zone.as_deref()),
            (Some("eu"), Some("eu-1"))
        );
        let texts: Vec<(&str, &str)> =
            got.facts.attributes.iter().map(|(k, v)| (k.as_str(), v.text())).collect();
        assert_eq!(
            texts,
            vec![
                ("cores", "4"),
                ("disks", "{hdd,ssd}"),
                ("rack", "r1"),
                ("slots", "[100-200,300-400]")
            ]
        );
    }

    #[test]
    fn a_real_masters_offer_is_all_unreserved() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../protos/types/tests/fixtures/json/offers.json"
        );
        let bytes = std::fs::read(path).unwrap();
        let event: mesos::scheduler::Event = drover_protos::json::from_json(&bytes).unwrap();
        let offer = offer_from_proto(&event.offers.unwrap().offers[0]);
        assert_eq!(offer.pools.len(), 1);
        assert_eq!(offer.pools[0].role, "*");
        assert_eq!(
            offer.pools[0].resources,
            Resources { cpus: 4.0, mem: 4096.0, disk: 8192.0, gpus: 0 }
        );
        assert_eq!(offer.pools[0].ports.ranges(), &[(31000, 32000)]);
        assert_eq!(offer.ignored_resources, 0);
    }

    #[test]
    #[allow(deprecated)]
    fn task_resources_carry_the_role_they_were_offered_in() {
        let mut l = launch(CommandSpec::Shell("x".into()));
        l.host_ports = vec![5000, 31000];
        l.task_roles = vec![
            RoleResources {
                role: "*".into(),
                resources: Resources { cpus: 0.25, mem: 64.0, disk: 0.0, gpus: 0 },
                ports: vec![31000],
            },
            RoleResources {
                role: "prod".into(),
                resources: Resources { cpus: 0.25, mem: 0.0, disk: 0.0, gpus: 0 },
                ports: vec![5000],
            },
        ];
        l.executor_roles = vec![RoleResources {
            role: "prod".into(),
            resources: l.executor_resources,
            ports: vec![],
        }];
        let t = task_info(&l, "fw", &exec(), &SecretSource::None).unwrap();
        let got: Vec<(String, Option<String>)> =
            t.resources.iter().map(|r| (r.name.clone(), r.role.clone())).collect();
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(
            got,
            vec![
                ("cpus".into(), some("*")),
                ("mem".into(), some("*")),
                ("ports".into(), some("*")),
                ("cpus".into(), some("prod")),
                ("ports".into(), some("prod")),
            ]
        );
        let e = t.executor.unwrap();
        assert!(e.resources.iter().all(|r| r.role.as_deref() == Some("prod")));
    }

    #[test]
    fn statuses_map_state_reason_and_uuid() {
        let mut s = mesos::TaskStatus {
            task_id: mesos::TaskId { value: "t".into() },
            agent_id: Some(mesos::AgentId { value: "a".into() }),
            message: Some(String::new()),
            uuid: Some(vec![1; 16]),
            ..Default::default()
        };
        s.set_state(mesos::TaskState::TaskGone);
        s.set_reason(mesos::task_status::Reason::Reconciliation);
        let u = status_from_proto(&s);
        assert_eq!(u.state, TaskState::Gone);
        assert_eq!(u.reason.as_deref(), Some("REASON_RECONCILIATION"));
        assert_eq!(u.message, None);
        assert_eq!(u.uuid, Some(vec![1; 16]));
    }

    #[test]
    fn every_mesos_state_maps_to_the_same_name() {
        for n in 0..=13 {
            let m = mesos::TaskState::try_from(n).unwrap();
            assert_eq!(task_state(m).mesos_name(), m.as_str_name());
        }
    }

    #[test]
    fn framework_info_checkpoints_and_declares_capabilities() {
        let f = framework_info(
            "drover",
            "root",
            None,
            Duration::from_secs(604_800),
            "h",
            "http://h:8080",
        );
        assert_eq!(f.checkpoint, Some(true));
        assert_eq!(f.failover_timeout, Some(604_800.0));
        let caps: Vec<_> = f.capabilities.iter().map(|c| c.r#type()).collect();
        assert!(caps.contains(&mesos::framework_info::capability::Type::TaskKillingState));
        assert!(caps.contains(&mesos::framework_info::capability::Type::PartitionAware));
        assert_eq!(f.principal, None);
        let f = framework_info("d", "root", Some("drover"), Duration::ZERO, "h", "http://h");
        assert_eq!(f.principal.as_deref(), Some("drover"));
    }

    /// A secrets directory of this test's own, removed when dropped.
    struct SecretsDir(std::path::PathBuf);

    impl SecretsDir {
        fn new(name: &str, files: &[(&str, &str)]) -> SecretsDir {
            let dir = std::env::temp_dir()
                .join(format!("drover-adapter-secrets-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            for (file, text) in files {
                std::fs::write(dir.join(file), text).unwrap();
            }
            SecretsDir(dir)
        }

        fn source(&self) -> SecretSource {
            SecretSource::Dir(self.0.clone())
        }
    }

    impl Drop for SecretsDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn with_secret(var: &str, name: &str, source: &str) -> LaunchSpec {
        let mut l = launch(CommandSpec::Shell("echo $DB_PASSWORD".into()));
        l.secret_env.insert(
            var.into(),
            sched_core::app::SecretRef { name: name.into(), source: source.into() },
        );
        l
    }

    fn task_env(t: &mesos::TaskInfo) -> BTreeMap<String, String> {
        let data = drover::TaskData::decode(t.data.as_deref().unwrap()).unwrap();
        data.command
            .unwrap()
            .environment
            .unwrap()
            .variables
            .into_iter()
            .map(|v| (v.name, v.value.unwrap_or_default()))
            .collect()
    }

    #[test]
    fn secret_env_vars_get_their_values_in_the_task_environment_only() {
        let dir = SecretsDir::new("values", &[("prod-db", "hunter2\n")]);
        let mut l = with_secret("DB_PASSWORD", "db", "prod-db");
        l.env.insert("DB_PASSWORD".into(), "overridden".into());
        let t = task_info(&l, "fw", &exec(), &dir.source()).unwrap();
        let env = task_env(&t);
        assert_eq!(env["DB_PASSWORD"], "hunter2");
        assert_eq!(env["A"], "1");
        // The executor's own environment and the task's labels do not have it.
        let exec_env = format!("{:?}", t.executor.as_ref().unwrap().command);
        assert!(!exec_env.contains("hunter2"), "{exec_env}");
        assert!(!format!("{:?}", t.labels).contains("hunter2"));
    }

    #[test]
    fn an_unresolvable_secret_leaves_the_launch_out_and_fails_it_by_name() {
        let dir = SecretsDir::new("refused", &[("ok", "fine-value")]);
        let good = with_secret("DB_PASSWORD", "db", "ok");
        let mut missing = with_secret("DB_PASSWORD", "db2", "absent");
        missing.task_id = missing.instance_id.task_id(2);
        let mut traversal = with_secret("TOKEN", "tok", "../etc/passwd");
        traversal.task_id = traversal.instance_id.task_id(3);
        let call = MesosCall::Accept {
            offer_id: "o1".into(),
            launches: vec![good, missing, traversal],
            refuse: Duration::from_secs(5),
        };
        let (proto, failed) = call_to_proto(&call, "fw", &exec(), &dir.source());
        let accept = proto.accept.unwrap();
        let launched = &accept.operations[0].launch.as_ref().unwrap().task_infos;
        assert_eq!(launched.len(), 1);
        assert_eq!(task_env(&launched[0])["DB_PASSWORD"], "fine-value");
        assert_eq!(failed.len(), 2);
        let f = &failed[0];
        assert_eq!(f.task_id, "prod_web.instance-u1._app.2");
        assert_eq!(f.state, TaskState::Error);
        assert_eq!(f.reason.as_deref(), Some("REASON_TASK_INVALID"));
        assert_eq!((f.uuid.as_ref(), f.agent_id.as_deref()), (None, Some("S1")));
        let message = f.message.as_deref().unwrap();
        assert!(
            message.starts_with("secret `db2` for DB_PASSWORD cannot be resolved: cannot read ")
                && message.contains("absent"),
            "{message}"
        );
        let message = failed[1].message.as_deref().unwrap();
        assert!(message.starts_with("secret `tok` for TOKEN cannot be resolved: source `../etc/passwd` is not a secret name"), "{message}");
        // Nothing launchable: the offer is accepted with no operation.
        let call = MesosCall::Accept {
            offer_id: "o2".into(),
            launches: vec![with_secret("X", "x", "absent")],
            refuse: Duration::from_secs(5),
        };
        let (proto, failed) = call_to_proto(&call, "fw", &exec(), &SecretSource::None);
        assert!(proto.accept.unwrap().operations.is_empty());
        assert_eq!(
            failed[0].message.as_deref(),
            Some(
                "secret `x` for X cannot be resolved: no secrets source is configured (drover serve --secrets-dir)"
            )
        );
    }
}
