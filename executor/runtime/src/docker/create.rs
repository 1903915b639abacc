//! The container a task becomes: a pure translation of a [`TaskSpec`] and
//! its [`DockerSpec`] into Docker's create request. No I/O.
//!
//! - Command: [`Command::Shell`] → entrypoint `/bin/sh -c`, command
//!   `[line]`; [`Command::Argv`] → the command after the image's
//!   entrypoint; [`Command::ImageDefault`] → neither is set.
//! - Environment: the task's variables, then `MESOS_TASK_ID` and
//!   `MESOS_SANDBOX=/mnt/mesos/sandbox` (the sandbox is bind-mounted
//!   there, as Mesos' Docker containerizer does), then `env` parameters.
//! - Labels: `drover.framework_id`, `drover.executor_id`, `drover.task_id`,
//!   `drover.app_id` and the executor's identity (see [`Owner`]), then
//!   `label` parameters (which may not use the `drover.` prefix).
//! - Limits: `HostConfig.memory` = the task's memory; `nano_cpus` (a hard
//!   limit) and `cpu_shares` (1024 per CPU, at least 2) from its CPUs.
//! - Network: `host`, `none`, or `bridge` with the port mappings published
//!   on all host addresses.
//! - Volumes: `host:container:ro|rw` binds; a relative host path is
//!   relative to the sandbox.
//! - Parameters (`docker run --key=value`): [`SUPPORTED_PARAMETERS`]; any
//!   other key refuses the task.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use bollard::models::{ContainerCreateBody, HostConfig, PortBinding, ResourcesUlimits};
use exec_core::{DockerSpec, Network};

use crate::{Command, RuntimeError, TaskSpec};

/// Where the sandbox is mounted inside a container.
pub const SANDBOX_IN_CONTAINER: &str = "/mnt/mesos/sandbox";

/// The `docker run` options a task's `parameters` may use.
pub const SUPPORTED_PARAMETERS: &[&str] = &[
    "label",
    "env",
    "user",
    "workdir",
    "hostname",
    "cap-add",
    "cap-drop",
    "memory-swap",
    "shm-size",
    "ulimit",
];

/// Label keys Drover puts on its containers.
pub mod labels {
    /// The framework that launched the task.
    pub const FRAMEWORK_ID: &str = "drover.framework_id";
    /// The executor that owns the container.
    pub const EXECUTOR_ID: &str = "drover.executor_id";
    /// The task the container runs.
    pub const TASK_ID: &str = "drover.task_id";
    /// The task's app.
    pub const APP_ID: &str = "drover.app_id";
    /// The owning executor's pid.
    pub const EXECUTOR_PID: &str = "drover.executor_pid";
    /// The owning executor's start time (`/proc/<pid>/stat` field 22).
    pub const EXECUTOR_START: &str = "drover.executor_start";
    /// The pid namespace the executor's pid belongs to.
    pub const PID_NAMESPACE: &str = "drover.pid_namespace";
}

/// Who owns a container: enough to find it again, and to tell whether the
/// executor that started it still lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// `MESOS_FRAMEWORK_ID`.
    pub framework_id: String,
    /// `MESOS_EXECUTOR_ID`.
    pub executor_id: String,
    /// The executor's pid.
    pub pid: u32,
    /// The executor's start time, in clock ticks since boot.
    pub start_time: u64,
    /// The executor's pid namespace (`pid:[4026531836]`).
    pub pid_namespace: String,
}

impl Owner {
    /// The labels that mark a container as this executor's.
    pub fn labels(&self) -> BTreeMap<String, String> {
        [
            (labels::FRAMEWORK_ID, self.framework_id.clone()),
            (labels::EXECUTOR_ID, self.executor_id.clone()),
            (labels::EXECUTOR_PID, self.pid.to_string()),
            (labels::EXECUTOR_START, self.start_time.to_string()),
            (labels::PID_NAMESPACE, self.pid_namespace.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

fn invalid(message: String) -> RuntimeError {
    RuntimeError::InvalidContainer(message)
}

/// Parses a Docker size (`512m`, `1g`, `1024`, `64kb`): a number with an
/// optional binary unit `b`, `k`, `m`, `g`, `t` (optionally followed by `b`).
pub fn parse_size(text: &str) -> Option<i64> {
    let text = text.trim().to_ascii_lowercase();
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let power = match unit {
        "" | "b" => 0,
        "k" | "kb" => 1,
        "m" | "mb" => 2,
        "g" | "gb" => 3,
        "t" | "tb" => 4,
        _ => return None,
    };
    let bytes = value * 1024f64.powi(power);
    // `as` saturates; the value is finite and non-negative here.
    #[allow(clippy::cast_possible_truncation)]
    (0.0..9.0e18).contains(&bytes).then_some(bytes.round() as i64)
}

fn ulimit(value: &str) -> Option<ResourcesUlimits> {
    let (name, limits) = value.split_once('=')?;
    let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
    let parse = |v: &str| v.trim().parse::<i64>().ok();
    Some(ResourcesUlimits {
        name: Some(name.trim().to_owned()).filter(|n| !n.is_empty()),
        soft: Some(parse(soft)?),
        hard: Some(parse(hard)?),
    })
}

fn key_value(key: &str, value: &str) -> Result<(String, String), RuntimeError> {
    match value.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(invalid(format!("docker parameter `--{key}={value}` is not `NAME=VALUE`"))),
    }
}

/// The create request for a task's container. `sandbox` is the absolute
/// sandbox path on the host; `owner` marks the container as ours.
pub fn create_body(
    spec: &TaskSpec,
    docker: &DockerSpec,
    sandbox: &Path,
    owner: &Owner,
) -> Result<ContainerCreateBody, RuntimeError> {
    let mut env = spec.env.clone();
    env.insert("MESOS_TASK_ID".to_owned(), spec.task_id.0.clone());
    env.insert("MESOS_SANDBOX".to_owned(), SANDBOX_IN_CONTAINER.to_owned());
    let mut labels = owner.labels();
    labels.insert(labels::TASK_ID.to_owned(), spec.task_id.0.clone());
    labels.insert(labels::APP_ID.to_owned(), spec.app_id.clone().unwrap_or_default());
    let mut binds = vec![format!("{}:{SANDBOX_IN_CONTAINER}:rw", sandbox.display())];
    for v in &docker.volumes {
        let host = if Path::new(&v.host_path).is_absolute() {
            v.host_path.clone()
        } else {
            sandbox.join(&v.host_path).display().to_string()
        };
        let mode = if v.read_only { "ro" } else { "rw" };
        binds.push(format!("{host}:{}:{mode}", v.container_path));
    }
    let mut body = ContainerCreateBody { image: Some(docker.image.clone()), ..Default::default() };
    match &spec.command {
        Command::Shell(line) => {
            body.entrypoint = Some(vec!["/bin/sh".to_owned(), "-c".to_owned()]);
            body.cmd = Some(vec![line.clone()]);
        }
        Command::Argv(argv) => body.cmd = Some(argv.clone()),
        Command::ImageDefault => {}
    }
    let mut host = HostConfig {
        binds: Some(binds),
        privileged: Some(docker.privileged),
        network_mode: Some(
            match docker.network {
                Network::Host => "host",
                Network::Bridge => "bridge",
                Network::None => "none",
            }
            .to_owned(),
        ),
        ..Default::default()
    };
    if let Some(bytes) = spec.limits.memory_bytes {
        host.memory = Some(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
    if let Some(nano) = spec.limits.nano_cpus {
        host.nano_cpus = Some(i64::try_from(nano).unwrap_or(i64::MAX));
        let shares = i64::try_from(nano.saturating_mul(1024) / 1_000_000_000).unwrap_or(i64::MAX);
        host.cpu_shares = Some(shares.max(2));
    }
    if docker.network == Network::Bridge && !docker.port_mappings.is_empty() {
        let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
        let mut exposed = Vec::new();
        for m in &docker.port_mappings {
            let key = format!("{}/{}", m.container_port, m.protocol);
            let binding = PortBinding { host_ip: None, host_port: Some(m.host_port.to_string()) };
            let list = bindings.entry(key.clone()).or_insert_with(|| Some(Vec::new()));
            if let Some(list) = list.as_mut() {
                list.push(binding);
            }
            if !exposed.contains(&key) {
                exposed.push(key);
            }
        }
        host.port_bindings = Some(bindings);
        body.exposed_ports = Some(exposed);
    }
    for (raw_key, value) in &docker.parameters {
        let key = raw_key.trim_start_matches('-');
        match key {
            "label" | "l" => {
                let (k, v) = match value.split_once('=') {
                    Some((k, v)) => (k.to_owned(), v.to_owned()),
                    None => (value.clone(), String::new()),
                };
                if k.is_empty() || k.starts_with("drover.") {
                    return Err(invalid(format!(
                        "docker parameter `--label={value}`: the label must be named and `drover.` labels are reserved"
                    )));
                }
                labels.insert(k, v);
            }
            "env" | "e" => {
                let (k, v) = key_value(key, value)?;
                env.insert(k, v);
            }
            "user" | "u" => body.user = Some(value.clone()),
            "workdir" | "w" => body.working_dir = Some(value.clone()),
            "hostname" | "h" => body.hostname = Some(value.clone()),
            "cap-add" => host.cap_add.get_or_insert_with(Vec::new).push(value.clone()),
            "cap-drop" => host.cap_drop.get_or_insert_with(Vec::new).push(value.clone()),
            "memory-swap" => {
                let bytes = if value.trim() == "-1" { Some(-1) } else { parse_size(value) };
                host.memory_swap = Some(bytes.ok_or_else(|| {
                    invalid(format!("docker parameter `--memory-swap={value}` is not a size"))
                })?);
            }
            "shm-size" => {
                host.shm_size = Some(parse_size(value).ok_or_else(|| {
                    invalid(format!("docker parameter `--shm-size={value}` is not a size"))
                })?);
            }
            "ulimit" => {
                let limit = ulimit(value).ok_or_else(|| {
                    invalid(format!(
                        "docker parameter `--ulimit={value}` is not `NAME=SOFT[:HARD]`"
                    ))
                })?;
                host.ulimits.get_or_insert_with(Vec::new).push(limit);
            }
            _ => {
                return Err(invalid(format!(
                    "unsupported docker parameter `--{key}` (supported: {})",
                    SUPPORTED_PARAMETERS.join(", ")
                )));
            }
        }
    }
    body.env = Some(env.into_iter().map(|(k, v)| format!("{k}={v}")).collect());
    body.labels = Some(labels.into_iter().collect());
    body.host_config = Some(host);
    Ok(body)
}

#[cfg(test)]
mod tests {
    use exec_core::{Limits, PortMapping, Volume};

    use super::*;

    fn owner() -> Owner {
        Owner {
            framework_id: "fw".into(),
            executor_id: "ex".into(),
            pid: 42,
            start_time: 777,
            pid_namespace: "pid:[1]".into(),
        }
    }

    fn docker() -> DockerSpec {
        DockerSpec::new("busybox:latest")
    }

    fn body(spec: &TaskSpec, docker: &DockerSpec) -> Result<ContainerCreateBody, RuntimeError> {
        create_body(spec, docker, Path::new("/sandbox"), &owner())
    }

    fn params(pairs: &[(&str, &str)]) -> DockerSpec {
        DockerSpec {
            parameters: pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            ..docker()
        }
    }

    #[test]
    fn a_shell_task_runs_under_sh_with_labels_limits_env_and_the_sandbox() {
        let spec = TaskSpec {
            app_id: Some("/web".into()),
            env: [("PORT0".to_owned(), "31000".to_owned()), ("MESOS_SANDBOX".into(), "x".into())]
                .into(),
            limits: Limits { nano_cpus: Some(250_000_000), memory_bytes: Some(48 << 20) },
            ..TaskSpec::new("web.1", Command::Shell("exec httpd -f -p $PORT0".into()))
        };
        let b = body(&spec, &docker()).unwrap();
        assert_eq!(b.image.as_deref(), Some("busybox:latest"));
        assert_eq!(b.entrypoint, Some(vec!["/bin/sh".to_owned(), "-c".to_owned()]));
        assert_eq!(b.cmd, Some(vec!["exec httpd -f -p $PORT0".to_owned()]));
        assert_eq!(
            b.env.unwrap(),
            ["MESOS_SANDBOX=/mnt/mesos/sandbox", "MESOS_TASK_ID=web.1", "PORT0=31000"]
        );
        let labels: BTreeMap<String, String> = b.labels.unwrap().into_iter().collect();
        let want: BTreeMap<String, String> = [
            ("drover.app_id", "/web"),
            ("drover.executor_id", "ex"),
            ("drover.executor_pid", "42"),
            ("drover.executor_start", "777"),
            ("drover.framework_id", "fw"),
            ("drover.pid_namespace", "pid:[1]"),
            ("drover.task_id", "web.1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(labels, want);
        let h = b.host_config.unwrap();
        assert_eq!(h.memory, Some(48 << 20));
        assert_eq!((h.nano_cpus, h.cpu_shares), (Some(250_000_000), Some(256)));
        assert_eq!(h.network_mode.as_deref(), Some("host"));
        assert_eq!(h.binds, Some(vec!["/sandbox:/mnt/mesos/sandbox:rw".to_owned()]));
        assert_eq!(h.privileged, Some(false));
        assert_eq!(h.port_bindings, None);
    }

    #[test]
    fn argv_follows_the_entrypoint_and_no_command_keeps_the_image_defaults() {
        let argv = TaskSpec::new("t", Command::Argv(vec!["-f".into(), "-p".into(), "80".into()]));
        let b = body(&argv, &docker()).unwrap();
        assert_eq!((b.entrypoint, b.cmd.map(|c| c.len())), (None, Some(3)));
        let b = body(&TaskSpec::new("t", Command::ImageDefault), &docker()).unwrap();
        assert_eq!((b.entrypoint, b.cmd), (None, None));
        let h = b.host_config.unwrap();
        assert_eq!((h.memory, h.nano_cpus, h.cpu_shares), (None, None, None));
    }

    #[test]
    fn bridge_networking_publishes_the_port_mappings_and_volumes_are_bound() {
        let spec = TaskSpec {
            limits: Limits { nano_cpus: Some(1_000_000), memory_bytes: None },
            ..TaskSpec::new("t", Command::ImageDefault)
        };
        let d = DockerSpec {
            network: Network::Bridge,
            privileged: true,
            port_mappings: vec![
                PortMapping { host_port: 31000, container_port: 80, protocol: "tcp".into() },
                PortMapping { host_port: 31000, container_port: 80, protocol: "udp".into() },
                PortMapping { host_port: 31001, container_port: 80, protocol: "tcp".into() },
            ],
            volumes: vec![
                Volume {
                    host_path: "/etc".into(),
                    container_path: "/host-etc".into(),
                    read_only: true,
                },
                Volume {
                    host_path: "data".into(),
                    container_path: "/data".into(),
                    read_only: false,
                },
            ],
            ..docker()
        };
        let b = body(&spec, &d).unwrap();
        assert_eq!(b.exposed_ports, Some(vec!["80/tcp".to_owned(), "80/udp".to_owned()]));
        let h = b.host_config.unwrap();
        assert_eq!(h.cpu_shares, Some(2), "at least 2 shares");
        assert_eq!(h.network_mode.as_deref(), Some("bridge"));
        assert_eq!(h.privileged, Some(true));
        let ports = h.port_bindings.unwrap();
        let tcp: Vec<String> = ports["80/tcp"]
            .as_ref()
            .unwrap()
            .iter()
            .map(|b| b.host_port.clone().unwrap())
            .collect();
        assert_eq!(tcp, ["31000", "31001"]);
        assert_eq!(ports["80/udp"].as_ref().unwrap().len(), 1);
        assert_eq!(
            h.binds.unwrap(),
            ["/sandbox:/mnt/mesos/sandbox:rw", "/etc:/host-etc:ro", "/sandbox/data:/data:rw"]
        );
        let none = DockerSpec { network: Network::None, ..docker() };
        let h = body(&spec, &none).unwrap().host_config.unwrap();
        assert_eq!(h.network_mode.as_deref(), Some("none"));
    }

    #[test]
    fn supported_parameters_become_docker_options() {
        let d = params(&[
            ("label", "team=web"),
            ("env", "EXTRA=1"),
            ("env", "PORT0=override"),
            ("user", "nobody"),
            ("workdir", "/tmp"),
            ("hostname", "box"),
            ("cap-add", "NET_ADMIN"),
            ("cap-drop", "MKNOD"),
            ("cap-drop", "CHOWN"),
            ("memory-swap", "-1"),
            ("shm-size", "64m"),
            ("ulimit", "nofile=1024:2048"),
            ("--ulimit", "nproc=100"),
        ]);
        let spec = TaskSpec {
            env: [("PORT0".to_owned(), "31000".to_owned())].into(),
            ..TaskSpec::new("t", Command::ImageDefault)
        };
        let b = body(&spec, &d).unwrap();
        assert_eq!(b.labels.unwrap()["team"], "web");
        let env = b.env.unwrap();
        assert!(env.contains(&"EXTRA=1".to_owned()) && env.contains(&"PORT0=override".to_owned()));
        assert_eq!(b.user.as_deref(), Some("nobody"));
        assert_eq!(b.working_dir.as_deref(), Some("/tmp"));
        assert_eq!(b.hostname.as_deref(), Some("box"));
        let h = b.host_config.unwrap();
        assert_eq!(h.cap_add, Some(vec!["NET_ADMIN".to_owned()]));
        assert_eq!(h.cap_drop, Some(vec!["MKNOD".to_owned(), "CHOWN".to_owned()]));
        assert_eq!(h.memory_swap, Some(-1));
        assert_eq!(h.shm_size, Some(64 << 20));
        let ulimits: Vec<(String, i64, i64)> = h
            .ulimits
            .unwrap()
            .into_iter()
            .map(|u| (u.name.unwrap(), u.soft.unwrap(), u.hard.unwrap()))
            .collect();
        assert_eq!(ulimits, [("nofile".to_owned(), 1024, 2048), ("nproc".to_owned(), 100, 100)]);
    }

    #[test]
    fn unsupported_or_malformed_parameters_refuse_the_task_with_the_reason() {
        let err = |pairs: &[(&str, &str)]| {
            body(&TaskSpec::new("t", Command::ImageDefault), &params(pairs))
                .unwrap_err()
                .to_string()
        };
        let e = err(&[("volume-driver", "x")]);
        assert!(
            e.starts_with("unsupported docker parameter `--volume-driver` (supported: label, env,"),
            "{e}"
        );
        assert!(err(&[("label", "drover.task_id=x")]).contains("reserved"));
        assert!(err(&[("env", "NOVALUE")]).contains("is not `NAME=VALUE`"));
        assert!(err(&[("memory-swap", "lots")]).contains("is not a size"));
        assert!(err(&[("shm-size", "-5")]).contains("is not a size"));
        assert!(err(&[("ulimit", "nofile")]).contains("NAME=SOFT[:HARD]"));
    }

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("64k"), Some(64 << 10));
        assert_eq!(parse_size("512MB"), Some(512 << 20));
        assert_eq!(parse_size("1.5g"), Some(3 << 29));
        assert_eq!(parse_size("2t"), Some(2 << 40));
        assert_eq!(parse_size("12q"), None);
        assert_eq!(parse_size(""), None);
    }
}
