//! What a user wants for a long-running service: the app spec.

use std::collections::BTreeMap;
use std::time::Duration;

use drover_time::Timestamp;

use crate::constraints::Constraint;
use crate::ids::AppId;
use crate::offer::UNRESERVED;

/// Scalar resources of a task (or of an offer).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Resources {
    /// CPU shares.
    pub cpus: f64,
    /// Memory in MB.
    pub mem: f64,
    /// Disk in MB.
    pub disk: f64,
    /// Whole GPUs.
    pub gpus: u32,
}

impl Resources {
    /// `self + other`.
    pub fn plus(&self, other: &Resources) -> Resources {
        Resources {
            cpus: self.cpus + other.cpus,
            mem: self.mem + other.mem,
            disk: self.disk + other.disk,
            gpus: self.gpus + other.gpus,
        }
    }

    /// `self - other`, never below zero.
    pub fn minus(&self, other: &Resources) -> Resources {
        Resources {
            cpus: (self.cpus - other.cpus).max(0.0),
            mem: (self.mem - other.mem).max(0.0),
            disk: (self.disk - other.disk).max(0.0),
            gpus: self.gpus.saturating_sub(other.gpus),
        }
    }
}

/// How a task's command runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandSpec {
    /// `cmd`: run by `/bin/sh -c`.
    Shell(String),
    /// `args`: executed directly, no shell.
    Argv(Vec<String>),
}

/// Which instances go first when scaling down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KillSelection {
    /// The most recently started first (Marathon's default).
    #[default]
    YoungestFirst,
    /// The longest running first.
    OldestFirst,
}

/// Launch backoff after failed tasks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffPolicy {
    /// The first delay.
    pub initial: Duration,
    /// The multiplier per further failure.
    pub factor: f64,
    /// The cap.
    pub max: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            initial: Duration::from_secs(1),
            factor: 1.15,
            max: Duration::from_secs(300),
        }
    }
}

impl BackoffPolicy {
    /// The delay after `failures` consecutive failures (1 = the first).
    pub fn delay(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let exp = i32::try_from(failures - 1).unwrap_or(i32::MAX);
        let secs = self.initial.as_secs_f64() * self.factor.max(1.0).powi(exp);
        // A finite product can still overflow a Duration (1e300 s).
        Duration::try_from_secs_f64(secs.max(0.0)).map_or(self.max, |d| d.min(self.max))
    }
}

/// How an app's tasks are networked (Marathon's `networks[].mode`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NetworkMode {
    /// The agent's network (Marathon's default): host ports from `portDefinitions`.
    #[default]
    Host,
    /// A Docker bridge: host ports from `container.portMappings`.
    Bridge,
}

/// A port of a host-networked app (Marathon's `portDefinitions[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortDefinition {
    /// With `requirePorts`, the literal host port; otherwise the service
    /// port (0 = Drover assigns one).
    pub port: u32,
    /// `tcp`, `udp` or `udp,tcp`.
    pub protocol: String,
    /// Optional name (`PORT_<NAME>`).
    pub name: Option<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// A port of a bridged container (Marathon's `container.portMappings[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    /// The port inside the container (0 = the same as the host port).
    pub container_port: u32,
    /// The host port: `None` = none, `Some(0)` = any.
    pub host_port: Option<u32>,
    /// The cluster-unique service port (0 = Drover assigns one).
    pub service_port: u32,
    /// `tcp`, `udp` or `udp,tcp`.
    pub protocol: String,
    /// Optional name.
    pub name: Option<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// Read-only or read-write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeMode {
    /// `RO`.
    ReadOnly,
    /// `RW`.
    ReadWrite,
}

/// A host path mounted into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// Path inside the container.
    pub container_path: String,
    /// Path on the agent.
    pub host_path: String,
    /// Access mode.
    pub mode: VolumeMode,
}

/// A Docker container (Marathon's `container` with `type: DOCKER`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    /// The image.
    pub image: String,
    /// Pull even when present.
    pub force_pull: bool,
    /// `--privileged`.
    pub privileged: bool,
    /// Raw `docker run --key=value` parameters, in order.
    pub parameters: Vec<(String, String)>,
    /// Host paths to mount.
    pub volumes: Vec<Volume>,
    /// Port mappings (bridge networking).
    pub port_mappings: Vec<PortMapping>,
}

/// What a health check probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthProtocol {
    /// `HTTP` / `MESOS_HTTP`: GET a path; 200-399 is healthy.
    Http,
    /// `TCP` / `MESOS_TCP`: connect.
    Tcp,
    /// `COMMAND`: run a command in the task's context; exit 0 is healthy.
    Command,
}

/// One health check (Marathon's `healthChecks[]`).
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheckSpec {
    /// The protocol.
    pub protocol: HealthProtocol,
    /// The name the user wrote (`HTTP`, `MESOS_HTTP`, ...), shown back.
    pub protocol_name: String,
    /// HTTP path.
    pub path: String,
    /// Index into the task's host ports.
    pub port_index: Option<u32>,
    /// A literal port (instead of `port_index`).
    pub port: Option<u32>,
    /// The command of a COMMAND check.
    pub command: Option<String>,
    /// Failures are ignored this long after the task started (until the first success).
    pub grace_period: Duration,
    /// Time between checks.
    pub interval: Duration,
    /// Time a check may take.
    pub timeout: Duration,
    /// Consecutive failures after which the task is killed (0 = never).
    pub max_consecutive_failures: u32,
    /// Time before the first check.
    pub delay: Duration,
    /// HTTP 1xx answers count as healthy.
    pub ignore_http1xx: bool,
}

impl HealthCheckSpec {
    /// The port this check probes, given the task's host ports.
    pub fn resolve_port(&self, host_ports: &[u32]) -> Option<u32> {
        match (self.port, self.port_index) {
            (Some(p), _) => Some(p),
            (None, Some(i)) => host_ports.get(i as usize).copied(),
            (None, None) => host_ports.first().copied(),
        }
    }
}

/// How a configuration change replaces running instances (Marathon's
/// `upgradeStrategy`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpgradeStrategy {
    /// Fraction of `instances` that must stay serving, 0..=1.
    pub minimum_health_capacity: f64,
    /// Fraction of `instances` that may run on top, 0..=1.
    pub maximum_over_capacity: f64,
}

impl Default for UpgradeStrategy {
    fn default() -> Self {
        UpgradeStrategy { minimum_health_capacity: 1.0, maximum_over_capacity: 1.0 }
    }
}

/// The role Drover registers with: its tasks' role, and the role whose
/// reserved resources it is offered (besides unreserved ones).
pub const FRAMEWORK_ROLE: &str = UNRESERVED;

/// Where an app's tasks may run (Marathon's `constraints`,
/// `acceptedResourceRoles` and `role`).
#[derive(Debug, Clone, PartialEq)]
pub struct PlacementSpec {
    /// Constraints every task's agent must satisfy.
    pub constraints: Vec<Constraint>,
    /// The resource roles tasks may use: `*` (unreserved) and/or the
    /// app's role.
    pub accepted_resource_roles: Vec<String>,
    /// The role tasks run under.
    pub role: String,
}

impl Default for PlacementSpec {
    /// No constraints, the framework's role, and any resources that role
    /// may use: unreserved ones and those reserved for it.
    fn default() -> Self {
        let mut roles = vec![UNRESERVED.to_owned()];
        if FRAMEWORK_ROLE != UNRESERVED {
            roles.push(FRAMEWORK_ROLE.to_owned());
        }
        PlacementSpec {
            constraints: Vec::new(),
            accepted_resource_roles: roles,
            role: FRAMEWORK_ROLE.to_owned(),
        }
    }
}

/// The default progress deadline of a deployment (Drover's extension).
pub const DEFAULT_PROGRESS_DEADLINE: Duration = Duration::from_secs(600);

/// A validated app: everything the scheduler needs to run it.
#[derive(Debug, Clone, PartialEq)]
pub struct AppSpec {
    /// The path id.
    pub id: AppId,
    /// The command; `None` runs a container image's own entrypoint.
    pub command: Option<CommandSpec>,
    /// The Docker container, if any.
    pub container: Option<ContainerSpec>,
    /// Networking.
    pub network: NetworkMode,
    /// Ports of host networking.
    pub port_definitions: Vec<PortDefinition>,
    /// Use `port_definitions`' ports literally as host ports.
    pub require_ports: bool,
    /// Health checks, run by the executor.
    pub health_checks: Vec<HealthCheckSpec>,
    /// Desired instance count.
    pub instances: u32,
    /// Resources of each task.
    pub resources: Resources,
    /// Constraints and resource roles.
    pub placement: PlacementSpec,
    /// Environment variables given by the user.
    pub env: BTreeMap<String, String>,
    /// Secrets the app declares (Marathon's `secrets`): name → source. The
    /// spec holds where a secret comes from, never its value.
    pub secrets: BTreeMap<String, String>,
    /// Environment variables whose value is a secret (Marathon's
    /// `"VAR": {"secret": "name"}`): variable → secret name, each declared
    /// in `secrets`. The value is resolved by the daemon at launch.
    pub secret_env: BTreeMap<String, String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Launch backoff.
    pub backoff: BackoffPolicy,
    /// Scale-down order.
    pub kill_selection: KillSelection,
    /// Rolling-replacement limits.
    pub upgrade: UpgradeStrategy,
    /// Apps that must be deployed before this one.
    pub dependencies: Vec<AppId>,
    /// A deployment of this app that makes no progress for this long fails.
    pub progress_deadline: Duration,
    /// A failed deployment is rolled back automatically.
    pub rollback_on_failure: bool,
    /// Time between SIGTERM and SIGKILL when a task is killed (`None` = the executor's default).
    pub kill_grace: Option<Duration>,
    /// The version: when this spec was last changed in any way.
    pub version: Timestamp,
    /// When the instance count last changed.
    pub last_scaling_at: Timestamp,
    /// When anything but the instance count last changed.
    pub last_config_change_at: Timestamp,
}

/// What a task asks of an offer's `ports`: `None` = any free port,
/// `Some(p)` = exactly port `p`.
pub type PortRequest = Option<u32>;

impl AppSpec {
    /// The host ports each task needs, in `PORT0..` order.
    pub fn port_requests(&self) -> Vec<PortRequest> {
        match self.network {
            NetworkMode::Host => self
                .port_definitions
                .iter()
                .map(|p| if self.require_ports && p.port != 0 { Some(p.port) } else { None })
                .collect(),
            NetworkMode::Bridge => self
                .container
                .iter()
                .flat_map(|c| &c.port_mappings)
                .filter_map(|m| m.host_port.map(|h| if h == 0 { None } else { Some(h) }))
                .collect(),
        }
    }

    /// The app's service ports, in order.
    pub fn service_ports(&self) -> Vec<u32> {
        match self.network {
            NetworkMode::Host => self.port_definitions.iter().map(|p| p.port).collect(),
            NetworkMode::Bridge => self
                .container
                .iter()
                .flat_map(|c| &c.port_mappings)
                .map(|m| m.service_port)
                .collect(),
        }
    }

    /// The names of the host ports, in `PORT0..` order.
    fn port_names(&self) -> Vec<Option<String>> {
        match self.network {
            NetworkMode::Host => self.port_definitions.iter().map(|p| p.name.clone()).collect(),
            NetworkMode::Bridge => self
                .container
                .iter()
                .flat_map(|c| &c.port_mappings)
                .filter(|m| m.host_port.is_some())
                .map(|m| m.name.clone())
                .collect(),
        }
    }

    /// True when `other` differs from `self` in more than the instance count
    /// and the version stamps: the running tasks must be replaced.
    pub fn config_differs(&self, other: &AppSpec) -> bool {
        let normalize = |s: &AppSpec| AppSpec {
            instances: 0,
            version: Timestamp::EPOCH,
            last_scaling_at: Timestamp::EPOCH,
            last_config_change_at: Timestamp::EPOCH,
            ..s.clone()
        };
        normalize(self) != normalize(other)
    }

    /// The environment Marathon gives every task of this app on `host`
    /// with the given host ports, plus the user's `env` (which wins on
    /// conflicts).
    pub fn task_env(&self, host: &str, host_ports: &[u32]) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        env.insert("HOST".to_owned(), host.to_owned());
        if !host_ports.is_empty() {
            for (i, p) in host_ports.iter().enumerate() {
                env.insert(format!("PORT{i}"), p.to_string());
            }
            env.insert("PORT".to_owned(), host_ports[0].to_string());
            env.insert(
                "PORTS".to_owned(),
                host_ports.iter().map(u32::to_string).collect::<Vec<_>>().join(","),
            );
            for (name, p) in self.port_names().iter().zip(host_ports) {
                if let Some(name) = name {
                    env.insert(format!("PORT_{}", env_name(name)), p.to_string());
                }
            }
        }
        if let Some(c) = &self.container {
            env.insert("MARATHON_APP_DOCKER_IMAGE".to_owned(), c.image.clone());
        }
        env.insert("MARATHON_APP_ID".to_owned(), self.id.to_string());
        env.insert("MARATHON_APP_VERSION".to_owned(), crate::format_version(self.version));
        env.insert("MARATHON_APP_RESOURCE_CPUS".to_owned(), self.resources.cpus.to_string());
        env.insert("MARATHON_APP_RESOURCE_MEM".to_owned(), self.resources.mem.to_string());
        env.insert("MARATHON_APP_RESOURCE_DISK".to_owned(), self.resources.disk.to_string());
        env.insert("MARATHON_APP_RESOURCE_GPUS".to_owned(), self.resources.gpus.to_string());
        let mut label_names = Vec::new();
        for (k, v) in &self.labels {
            let safe: String = k
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
                .collect();
            let safe = safe.to_ascii_uppercase();
            // Marathon skips labels whose values are too long for an env var.
            if v.len() <= 512 {
                env.insert(format!("MARATHON_APP_LABEL_{safe}"), v.clone());
                label_names.push(safe);
            }
        }
        env.insert("MARATHON_APP_LABELS".to_owned(), label_names.join(" "));
        for (k, v) in &self.env {
            env.insert(k.clone(), v.clone());
        }
        env
    }
}

impl AppSpec {
    /// The secret each secret environment variable references, with its
    /// source (variables whose secret is not declared are left out;
    /// validation refuses such specs).
    pub fn secret_refs(&self) -> BTreeMap<String, SecretRef> {
        self.secret_env
            .iter()
            .filter_map(|(var, name)| {
                let source = self.secrets.get(name)?;
                Some((var.clone(), SecretRef { name: name.clone(), source: source.clone() }))
            })
            .collect()
    }
}

/// A reference to a secret: what a launch carries instead of its value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SecretRef {
    /// The secret's name in the app (a key of `secrets`).
    pub name: String,
    /// Where its value comes from (`secrets.<name>.source`).
    pub source: String,
}

/// A name made safe for an environment variable: `[A-Z0-9_]`.
fn env_name(raw: &str) -> String {
    raw.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn spec(id: &str) -> AppSpec {
        AppSpec {
            id: AppId::parse(id).unwrap(),
            command: Some(CommandSpec::Shell("sleep 600".into())),
            container: None,
            network: NetworkMode::Host,
            port_definitions: Vec::new(),
            require_ports: false,
            health_checks: Vec::new(),
            instances: 1,
            resources: Resources { cpus: 1.0, mem: 128.0, disk: 0.0, gpus: 0 },
            placement: PlacementSpec::default(),
            env: BTreeMap::new(),
            secrets: BTreeMap::new(),
            secret_env: BTreeMap::new(),
            labels: BTreeMap::new(),
            backoff: BackoffPolicy::default(),
            kill_selection: KillSelection::YoungestFirst,
            upgrade: UpgradeStrategy::default(),
            dependencies: Vec::new(),
            progress_deadline: DEFAULT_PROGRESS_DEADLINE,
            rollback_on_failure: true,
            kill_grace: None,
            version: Timestamp::from_secs(1),
            last_scaling_at: Timestamp::from_secs(1),
            last_config_change_at: Timestamp::from_secs(1),
        }
    }

    #[test]
    fn backoff_grows_by_factor_and_caps() {
        let p = BackoffPolicy::default();
        assert_eq!(p.delay(0), Duration::ZERO);
        assert_eq!(p.delay(1), Duration::from_secs(1));
        assert!((p.delay(2).as_secs_f64() - 1.15).abs() < 1e-9);
        assert_eq!(p.delay(200), Duration::from_secs(300));
        let silly = BackoffPolicy {
            initial: Duration::from_secs(1),
            factor: f64::MAX,
            max: Duration::from_secs(9),
        };
        assert_eq!(silly.delay(5), Duration::from_secs(9));
        // Finite, yet far past what a Duration holds.
        let huge = BackoffPolicy { factor: 1e100, ..silly };
        assert_eq!(huge.delay(4), Duration::from_secs(9));
    }

    #[test]
    fn scaling_is_not_a_config_change() {
        let a = spec("/a");
        let mut b = a.clone();
        b.instances = 5;
        b.version = Timestamp::from_secs(99);
        assert!(!a.config_differs(&b));
        b.command = Some(CommandSpec::Shell("sleep 1".into()));
        assert!(a.config_differs(&b));
    }

    #[test]
    fn task_env_has_marathon_variables_and_user_env_wins() {
        let mut a = spec("/prod/web");
        a.labels.insert("HAPROXY-group".into(), "ext".into());
        a.env.insert("MARATHON_APP_ID".into(), "override".into());
        a.env.insert("FOO".into(), "bar".into());
        a.port_definitions = vec![
            PortDefinition {
                port: 10000,
                protocol: "tcp".into(),
                name: Some("http".into()),
                labels: BTreeMap::new(),
            },
            PortDefinition {
                port: 10001,
                protocol: "tcp".into(),
                name: None,
                labels: BTreeMap::new(),
            },
        ];
        let env = a.task_env("h1", &[31000, 31005]);
        assert_eq!(env["HOST"], "h1");
        assert_eq!(env["PORT0"], "31000");
        assert_eq!(env["PORT1"], "31005");
        assert_eq!(env["PORT"], "31000");
        assert_eq!(env["PORTS"], "31000,31005");
        assert_eq!(env["PORT_HTTP"], "31000");
        assert!(!env.contains_key("MARATHON_APP_DOCKER_IMAGE"));
        assert_eq!(env["MARATHON_APP_ID"], "override");
        assert_eq!(env["FOO"], "bar");
        assert_eq!(env["MARATHON_APP_LABEL_HAPROXY_GROUP"], "ext");
        assert_eq!(env["MARATHON_APP_LABELS"], "HAPROXY_GROUP");
        assert_eq!(env["MARATHON_APP_RESOURCE_MEM"], "128");
        assert_eq!(env["MARATHON_APP_VERSION"], "1970-01-01T00:00:01.000Z");
    }

    #[test]
    fn port_requests_follow_the_network_mode() {
        let mut a = spec("/p");
        let def = |port| PortDefinition {
            port,
            protocol: "tcp".into(),
            name: None,
            labels: BTreeMap::new(),
        };
        a.port_definitions = vec![def(10000), def(0)];
        assert_eq!(a.port_requests(), vec![None, None], "service ports are not host ports");
        a.require_ports = true;
        assert_eq!(a.port_requests(), vec![Some(10000), None]);
        let map = |host_port| PortMapping {
            container_port: 80,
            host_port,
            service_port: 0,
            protocol: "tcp".into(),
            name: None,
            labels: BTreeMap::new(),
        };
        a.network = NetworkMode::Bridge;
        a.container = Some(ContainerSpec {
            image: "x".into(),
            force_pull: false,
            privileged: false,
            parameters: vec![],
            volumes: vec![],
            port_mappings: vec![map(Some(0)), map(None), map(Some(8080))],
        });
        assert_eq!(a.port_requests(), vec![None, Some(8080)]);
        assert_eq!(a.task_env("h", &[1, 2])["MARATHON_APP_DOCKER_IMAGE"], "x");
    }
}
