//! The contract between Drover's scheduler and its executor: how a
//! `mesos.v1.TaskInfo` describes what to run.
//!
//! A Drover task has an `executor` (this program), so Mesos forbids it a
//! `TaskInfo.command`. What the task runs travels instead in
//! **`TaskInfo.data`**, as the protobuf encoding (binary, not JSON) of a
//! **`drover.v1.TaskData`** (`protos/drover/v1/task.proto`):
//!
//! | `TaskData` field | meaning |
//! |---|---|
//! | `command` | the command and the task's environment (below); may be absent for a container task |
//! | `container` | absent: a plain process; `type = DOCKER`: a Docker container (below) |
//! | `health_checks[]` | the checks the executor runs (below), in order |
//! | `app_id` | the app, for container labels and logs (empty: unknown) |
//!
//! **`command`** (`mesos.v1.CommandInfo`):
//!
//! | field | plain task | Docker task |
//! |---|---|---|
//! | `shell` (default `true`) with `value` | `/bin/sh -c <value>`; `arguments` ignored | entrypoint `/bin/sh -c`, command `[value]` |
//! | `shell = false` | `execvp(value, arguments)`: `arguments[0]` is argv\[0\], replaced by `value` when set; empty `value` runs `arguments[0]` | the same argv, as the container command after the image's entrypoint |
//! | no `value`, no `arguments` (or no `command`) | an error | the image's own entrypoint and command |
//! | `environment.variables[]` | `{name, value}` pairs (type `VALUE`; `SECRET` is an error) | the same, in the container |
//! | `uris` | must be empty (there is no fetcher) | the same |
//! | `user` | ignored: tasks run as the executor's user | ignored (use the `user` parameter) |
//!
//! **`container`** (`mesos.v1.ContainerInfo`, `type = DOCKER`; `MESOS` is
//! an error): `docker.image` (required), `docker.force_pull_image`,
//! `docker.privileged`, `docker.parameters` (`docker run --key=value`,
//! checked when the container is created), `docker.network` (`HOST`, the
//! default, `BRIDGE` or `NONE`; `USER` is an error), `docker.port_mappings`
//! (`BRIDGE` only; `host_port` and `container_port` in 1-65535, `protocol`
//! `tcp` (default), `udp`, or both as `udp,tcp`), `volumes` (`host_path`
//! required, absolute or relative to the sandbox; `container_path`; `mode`
//! `RO`/`RW`), `hostname` (the container's host name).
//!
//! **`health_checks[]`** (`drover.v1.HealthCheck`: a `mesos.v1.HealthCheck`
//! plus `ignore_http1xx`): `type` `HTTP` (`http.port`, `http.path`
//! defaulting to `/`, `http.scheme` empty or `http`, `http.protocol` IPv4 or
//! IPv6), `TCP` (`tcp.port`, `tcp.protocol`) or `COMMAND` (`command`, a
//! shell line or an argv as above, with its own `environment`); ports are
//! the task's host ports and are probed on the loopback address. Timing:
//! `delay_seconds`, `interval_seconds` (> 0), `timeout_seconds` (> 0),
//! `grace_period_seconds` and `consecutive_failures` (0: never kill), with
//! the proto's defaults when absent.
//!
//! **Resources:** the `cpus` and `mem` scalars of `TaskInfo.resources`
//! (summed over roles) become the container's limits: `cpus` × 10⁹ nano
//! CPUs and `mem` MB × 1 MiB bytes.
//!
//! **Kill grace:** `TaskInfo.kill_policy.grace_period.nanoseconds` (negative
//! counts as 0; absent means the executor's default of 3 s); a KILL's own
//! `kill_policy` overrides it.
//!
//! A task whose `data` is missing or breaks these rules is never run: it is
//! reported `TASK_ERROR` (`REASON_TASK_INVALID`) with the reason as message.
//! [`encode_task_data`] is the reference encoder: the scheduler's encoding
//! must decode to the same spec.

use std::collections::BTreeMap;
use std::time::Duration;

use drover_protos::Message;
use drover_protos::drover::v1 as drover;
use drover_protos::mesos::v1 as mesos;
use exec_core::{
    Command, DockerSpec, HealthCheck, Limits, Network, PortMapping, Probe, TaskId, TaskSpec, Volume,
};

use crate::ExecutorError;

/// Converts a launched `TaskInfo` into the core's task spec.
pub fn task_spec(task: &mesos::TaskInfo) -> Result<TaskSpec, ExecutorError> {
    let data = task.data.as_deref().filter(|d| !d.is_empty()).ok_or(ExecutorError::NoTaskData)?;
    let data = drover::TaskData::decode(data).map_err(ExecutorError::BadTaskData)?;
    let container = data.container.as_ref().map(docker_spec).transpose()?;
    let (command, env) = match &data.command {
        Some(info) => command_from_info(info, container.is_some())?,
        None if container.is_some() => (Command::ImageDefault, BTreeMap::new()),
        None => return Err(ExecutorError::NoCommand),
    };
    let health_checks = data
        .health_checks
        .iter()
        .enumerate()
        .map(|(n, check)| {
            health_check(check)
                .map_err(|reason| ExecutorError::InvalidHealthCheck { number: n + 1, reason })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TaskSpec {
        task_id: TaskId(task.task_id.value.clone()),
        app_id: Some(data.app_id).filter(|a| !a.is_empty()),
        command,
        env,
        kill_grace: kill_grace(task.kill_policy.as_ref()),
        limits: limits(&task.resources),
        container,
        health_checks,
    })
}

/// The kill grace period of a KILL event's `kill_policy`, if it has one.
pub fn kill_grace(policy: Option<&mesos::KillPolicy>) -> Option<Duration> {
    policy
        .and_then(|k| k.grace_period.as_ref())
        .map(|d| Duration::from_nanos(u64::try_from(d.nanoseconds).unwrap_or(0)))
}

/// The `cpus` and `mem` scalars of a task's resources, as limits.
fn limits(resources: &[mesos::Resource]) -> Limits {
    let sum = |name: &str| {
        let values: Vec<f64> = resources
            .iter()
            .filter(|r| r.name == name)
            .filter_map(|r| r.scalar.as_ref().map(|s| s.value))
            .collect();
        let total: f64 = values.iter().sum();
        (!values.is_empty() && total.is_finite() && total > 0.0).then_some(total)
    };
    // `as` saturates; the values are positive and finite.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Limits {
        nano_cpus: sum("cpus").map(|c| (c * 1e9).round() as u64),
        memory_bytes: sum("mem").map(|m| (m * 1_048_576.0).round() as u64),
    }
}

/// The command and environment of a `CommandInfo`. A container task may
/// leave the command empty (the image's defaults).
fn command_from_info(
    info: &mesos::CommandInfo,
    container: bool,
) -> Result<(Command, BTreeMap<String, String>), ExecutorError> {
    if !info.uris.is_empty() {
        return Err(ExecutorError::UnsupportedCommand(
            "`CommandInfo.uris` cannot be fetched by drover-executor",
        ));
    }
    let mut env = BTreeMap::new();
    for var in info.environment.iter().flat_map(|e| &e.variables) {
        if var.r#type() == mesos::environment::variable::Type::Secret {
            return Err(ExecutorError::UnsupportedCommand(
                "secret environment variables are not supported",
            ));
        }
        env.insert(var.name.clone(), var.value.clone().unwrap_or_default());
    }
    let value = info.value.clone().unwrap_or_default();
    let empty =
        || if container { Ok(Command::ImageDefault) } else { Err(ExecutorError::EmptyCommand) };
    let command = if info.shell() {
        if value.trim().is_empty() { empty()? } else { Command::Shell(value) }
    } else {
        let mut argv: Vec<String> = info.arguments.clone();
        match (value.is_empty(), argv.is_empty()) {
            (true, true) => return Ok((empty()?, env)),
            (true, false) => {}
            (false, true) => argv.push(value),
            (false, false) => argv[0] = value,
        }
        if argv[0].is_empty() {
            return Err(ExecutorError::EmptyCommand);
        }
        Command::Argv(argv)
    };
    Ok((command, env))
}

fn docker_spec(info: &mesos::ContainerInfo) -> Result<DockerSpec, ExecutorError> {
    use mesos::container_info::docker_info::Network as DockerNetwork;
    let unsupported = |what: &str| Err(ExecutorError::UnsupportedContainer(what.to_owned()));
    if info.r#type() != mesos::container_info::Type::Docker {
        return unsupported("only `DOCKER` containers can be run, not `MESOS`");
    }
    let Some(docker) = info.docker.as_ref() else {
        return unsupported("a `DOCKER` container needs `docker`");
    };
    if docker.image.trim().is_empty() {
        return unsupported("`docker.image` is empty");
    }
    let network = match docker.network() {
        DockerNetwork::Host => Network::Host,
        DockerNetwork::Bridge => Network::Bridge,
        DockerNetwork::None => Network::None,
        DockerNetwork::User => return unsupported("`USER` networks are not supported"),
    };
    if !docker.port_mappings.is_empty() && network != Network::Bridge {
        return unsupported("port mappings need `BRIDGE` networking");
    }
    let mut port_mappings = Vec::new();
    for m in &docker.port_mappings {
        let port = |p: u32| u16::try_from(p).ok().filter(|p| *p > 0);
        let (Some(host_port), Some(container_port)) = (port(m.host_port), port(m.container_port))
        else {
            return Err(ExecutorError::UnsupportedContainer(format!(
                "port mapping {}:{} is out of range",
                m.host_port, m.container_port
            )));
        };
        let protocols = m.protocol.as_deref().unwrap_or("tcp").to_ascii_lowercase();
        for protocol in protocols.split(',').map(str::trim) {
            if protocol != "tcp" && protocol != "udp" {
                return Err(ExecutorError::UnsupportedContainer(format!(
                    "port mapping protocol `{protocol}` (expected `tcp`, `udp` or `udp,tcp`)"
                )));
            }
            port_mappings.push(PortMapping {
                host_port,
                container_port,
                protocol: protocol.to_owned(),
            });
        }
    }
    let mut volumes = Vec::new();
    for v in &info.volumes {
        let host_path = v.host_path.clone().unwrap_or_default();
        if host_path.is_empty() || v.image.is_some() || v.container_path.is_empty() {
            return Err(ExecutorError::UnsupportedContainer(format!(
                "volume `{}`: only host-path volumes (`host_path` and `container_path`) are supported",
                v.container_path
            )));
        }
        volumes.push(Volume {
            host_path,
            container_path: v.container_path.clone(),
            read_only: v.mode() == mesos::volume::Mode::Ro,
        });
    }
    let mut parameters: Vec<(String, String)> = Vec::new();
    if let Some(hostname) = info.hostname.as_ref().filter(|h| !h.is_empty()) {
        parameters.push(("hostname".to_owned(), hostname.clone()));
    }
    parameters.extend(docker.parameters.iter().map(|p| (p.key.clone(), p.value.clone())));
    Ok(DockerSpec {
        image: docker.image.clone(),
        force_pull: docker.force_pull_image(),
        privileged: docker.privileged(),
        network,
        port_mappings,
        volumes,
        parameters,
    })
}

fn seconds(name: &str, value: f64, positive: bool) -> Result<Duration, String> {
    let ok = value.is_finite() && if positive { value > 0.0 } else { value >= 0.0 };
    let duration = ok.then(|| Duration::try_from_secs_f64(value).ok()).flatten();
    duration.ok_or_else(|| {
        let bound = if positive { "positive" } else { "non-negative" };
        format!("`{name}` is {value}, expected a {bound} number of seconds")
    })
}

fn health_check(check: &drover::HealthCheck) -> Result<HealthCheck, String> {
    use mesos::health_check::Type;
    let hc = check.check.as_ref().ok_or("no `check`")?;
    let port = |p: u32| {
        u16::try_from(p).ok().filter(|p| *p > 0).ok_or(format!("port {p} is out of range"))
    };
    let ipv6 = |p: mesos::network_info::Protocol| p == mesos::network_info::Protocol::IPv6;
    let probe = match hc.r#type() {
        Type::Http => {
            let http = hc.http.as_ref().ok_or("an `HTTP` check needs `http`")?;
            match http.scheme.as_deref() {
                None | Some("" | "http" | "HTTP") => {}
                Some(other) => {
                    return Err(format!("scheme `{other}` is not supported (only `http`)"));
                }
            }
            let path = http.path.clone().unwrap_or_default();
            let path = if path.starts_with('/') { path } else { format!("/{path}") };
            Probe::Http {
                port: port(http.port)?,
                path,
                ipv6: ipv6(http.protocol()),
                ignore_1xx: check.ignore_http1xx,
            }
        }
        Type::Tcp => {
            let tcp = hc.tcp.as_ref().ok_or("a `TCP` check needs `tcp`")?;
            Probe::Tcp { port: port(tcp.port)?, ipv6: ipv6(tcp.protocol()) }
        }
        Type::Command => {
            let info = hc.command.as_ref().ok_or("a `COMMAND` check needs `command`")?;
            let (command, env) = command_from_info(info, false).map_err(|e| e.to_string())?;
            Probe::Command { command, env }
        }
        Type::Unknown => return Err("the check has no `type`".to_owned()),
    };
    Ok(HealthCheck {
        probe,
        delay: seconds("delay_seconds", hc.delay_seconds(), false)?,
        interval: seconds("interval_seconds", hc.interval_seconds(), true)?,
        timeout: seconds("timeout_seconds", hc.timeout_seconds(), true)?,
        grace_period: seconds("grace_period_seconds", hc.grace_period_seconds(), false)?,
        max_consecutive_failures: hc.consecutive_failures(),
    })
}

fn environment(env: &BTreeMap<String, String>) -> mesos::Environment {
    let variables = env
        .iter()
        .map(|(name, value)| mesos::environment::Variable {
            name: name.clone(),
            r#type: Some(mesos::environment::variable::Type::Value as i32),
            value: Some(value.clone()),
            secret: None,
        })
        .collect();
    mesos::Environment { variables }
}

/// `shell = true` and `value` for [`Command::Shell`]; `shell = false`,
/// `value = argv[0]` and `arguments = argv` for [`Command::Argv`];
/// `shell = false` alone for [`Command::ImageDefault`].
fn command_info(command: &Command, env: &BTreeMap<String, String>) -> mesos::CommandInfo {
    let (shell, value, arguments) = match command {
        Command::Shell(line) => (true, Some(line.clone()), Vec::new()),
        Command::Argv(argv) => (false, argv.first().cloned(), argv.clone()),
        Command::ImageDefault => (false, None, Vec::new()),
    };
    mesos::CommandInfo {
        environment: Some(environment(env)),
        shell: Some(shell),
        value,
        arguments,
        ..Default::default()
    }
}

fn container_info(docker: &DockerSpec) -> mesos::ContainerInfo {
    use mesos::container_info::docker_info;
    let port_mappings = docker
        .port_mappings
        .iter()
        .map(|m| docker_info::PortMapping {
            host_port: u32::from(m.host_port),
            container_port: u32::from(m.container_port),
            protocol: Some(m.protocol.clone()),
        })
        .collect();
    let mut d = mesos::container_info::DockerInfo {
        image: docker.image.clone(),
        port_mappings,
        privileged: Some(docker.privileged),
        parameters: docker
            .parameters
            .iter()
            .map(|(key, value)| mesos::Parameter { key: key.clone(), value: value.clone() })
            .collect(),
        force_pull_image: Some(docker.force_pull),
        ..Default::default()
    };
    d.set_network(match docker.network {
        Network::Host => docker_info::Network::Host,
        Network::Bridge => docker_info::Network::Bridge,
        Network::None => docker_info::Network::None,
    });
    let volumes = docker
        .volumes
        .iter()
        .map(|v| {
            let mut volume = mesos::Volume {
                container_path: v.container_path.clone(),
                host_path: Some(v.host_path.clone()),
                ..Default::default()
            };
            volume.set_mode(if v.read_only {
                mesos::volume::Mode::Ro
            } else {
                mesos::volume::Mode::Rw
            });
            volume
        })
        .collect();
    let mut info = mesos::ContainerInfo { docker: Some(d), volumes, ..Default::default() };
    info.set_type(mesos::container_info::Type::Docker);
    info
}

fn health_check_proto(check: &HealthCheck) -> drover::HealthCheck {
    use mesos::health_check::{HttpCheckInfo, TcpCheckInfo, Type};
    let protocol = |ipv6: bool| {
        Some(if ipv6 {
            mesos::network_info::Protocol::IPv6
        } else {
            mesos::network_info::Protocol::IPv4
        } as i32)
    };
    let mut hc = mesos::HealthCheck {
        delay_seconds: Some(check.delay.as_secs_f64()),
        interval_seconds: Some(check.interval.as_secs_f64()),
        timeout_seconds: Some(check.timeout.as_secs_f64()),
        consecutive_failures: Some(check.max_consecutive_failures),
        grace_period_seconds: Some(check.grace_period.as_secs_f64()),
        ..Default::default()
    };
    let mut ignore_http1xx = false;
    match &check.probe {
        Probe::Http { port, path, ipv6, ignore_1xx } => {
            hc.set_type(Type::Http);
            ignore_http1xx = *ignore_1xx;
            hc.http = Some(HttpCheckInfo {
                protocol: protocol(*ipv6),
                scheme: Some("http".to_owned()),
                port: u32::from(*port),
                path: Some(path.clone()),
                statuses: Vec::new(),
            });
        }
        Probe::Tcp { port, ipv6 } => {
            hc.set_type(Type::Tcp);
            hc.tcp = Some(TcpCheckInfo { protocol: protocol(*ipv6), port: u32::from(*port) });
        }
        Probe::Command { command, env } => {
            hc.set_type(Type::Command);
            hc.command = Some(command_info(command, env));
        }
    }
    drover::HealthCheck { check: Some(hc), ignore_http1xx }
}

/// Encodes a spec as the `TaskInfo.data` the executor expects: a protobuf
/// `drover.v1.TaskData` with the command and environment (see
/// `command_info`), the container, the health checks and the app id. The
/// task id, limits and kill grace are not part of it: they are
/// `TaskInfo.task_id`, `TaskInfo.resources` and `TaskInfo.kill_policy`.
pub fn encode_task_data(spec: &TaskSpec) -> Vec<u8> {
    drover::TaskData {
        command: Some(command_info(&spec.command, &spec.env)),
        container: spec.container.as_ref().map(container_info),
        health_checks: spec.health_checks.iter().map(health_check_proto).collect(),
        app_id: spec.app_id.clone().unwrap_or_default(),
    }
    .encode_to_vec()
}

#[cfg(test)]
mod tests;
