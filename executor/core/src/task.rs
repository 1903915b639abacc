//! Domain types of one task: what to run, how it ended, what Mesos is told.
//!
//! These are not the Mesos protos (G10): the daemon converts a
//! `mesos.v1.TaskInfo` into a [`TaskSpec`] at the boundary and a
//! [`TaskState`]/[`Reason`] back into a `mesos.v1.TaskStatus`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// A Mesos task id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(pub String);

impl TaskId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for TaskId {
    fn from(s: &str) -> Self {
        TaskId(s.to_owned())
    }
}

impl From<String> for TaskId {
    fn from(s: String) -> Self {
        TaskId(s)
    }
}

/// What a task runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// A shell command line, run as `/bin/sh -c <line>` (in a container:
    /// entrypoint `/bin/sh -c`, command `<line>`).
    Shell(String),
    /// A program and its arguments, executed directly: `argv[0]` is looked
    /// up in `PATH` and is also the process' `argv[0]`. In a container the
    /// list is the container's command, after the image's entrypoint.
    Argv(Vec<String>),
    /// The container image's own entrypoint and command. Only container
    /// tasks have it; a plain process cannot run it.
    ImageDefault,
}

/// Everything the executor needs to run one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSpec {
    /// The Mesos task id.
    pub task_id: TaskId,
    /// The app the task belongs to, when the scheduler said.
    pub app_id: Option<String>,
    /// What to run.
    pub command: Command,
    /// Environment variables added to the task's clean environment.
    pub env: BTreeMap<String, String>,
    /// The grace period between SIGTERM and SIGKILL (`TaskInfo.kill_policy`);
    /// `None` means the executor's default.
    pub kill_grace: Option<Duration>,
    /// CPU and memory limits from the task's resources.
    pub limits: Limits,
    /// `Some` for a Docker container task; `None` runs a plain process.
    pub container: Option<DockerSpec>,
    /// The health checks the executor runs, in the app's order.
    pub health_checks: Vec<HealthCheck>,
}

impl TaskSpec {
    /// A plain process task with no limits, container or health check.
    pub fn new(task_id: impl Into<TaskId>, command: Command) -> Self {
        TaskSpec {
            task_id: task_id.into(),
            app_id: None,
            command,
            env: BTreeMap::new(),
            kill_grace: None,
            limits: Limits::default(),
            container: None,
            health_checks: Vec::new(),
        }
    }
}

/// Resource limits of a task (`TaskInfo.resources`), in the units Docker
/// takes. The process runtime does not enforce them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// The `cpus` scalar × 10⁹.
    pub nano_cpus: Option<u64>,
    /// The `mem` scalar (MB) × 1 MiB.
    pub memory_bytes: Option<u64>,
}

/// A Docker container task (`ContainerInfo` with `type = DOCKER`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerSpec {
    /// The image reference.
    pub image: String,
    /// Pull the image even when it is present.
    pub force_pull: bool,
    /// Run the container privileged.
    pub privileged: bool,
    /// The container's network.
    pub network: Network,
    /// Host port bindings (bridge networking only).
    pub port_mappings: Vec<PortMapping>,
    /// Host paths mounted into the container.
    pub volumes: Vec<Volume>,
    /// `docker run --key=value` options, in order.
    pub parameters: Vec<(String, String)>,
}

impl DockerSpec {
    /// `image` on host networking, with no port, volume or parameter.
    pub fn new(image: impl Into<String>) -> Self {
        DockerSpec {
            image: image.into(),
            force_pull: false,
            privileged: false,
            network: Network::Host,
            port_mappings: Vec::new(),
            volumes: Vec::new(),
            parameters: Vec::new(),
        }
    }
}

/// A container's network mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// The host's network namespace.
    Host,
    /// Docker's bridge, with published ports.
    Bridge,
    /// No network at all.
    None,
}

/// One published container port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    /// The port on the host.
    pub host_port: u16,
    /// The port inside the container.
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
}

/// One bind mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// The path on the host (absolute, or relative to the sandbox).
    pub host_path: String,
    /// The path inside the container.
    pub container_path: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// One health check of a task (Marathon's semantics, see
/// [`crate::health`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// What one probe does.
    pub probe: Probe,
    /// From RUNNING to the first probe.
    pub delay: Duration,
    /// From the end of one probe to the start of the next.
    pub interval: Duration,
    /// How long one probe may take; a slower one failed.
    pub timeout: Duration,
    /// From RUNNING, failures are not counted until this has passed or a
    /// probe succeeded.
    pub grace_period: Duration,
    /// Kill the task after this many counted failures in a row; 0 never kills.
    pub max_consecutive_failures: u32,
}

/// How a health check probes the task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// `GET http://127.0.0.1:<port><path>` (`[::1]` for IPv6): healthy on
    /// 200-399, and on 100-199 with `ignore_1xx`.
    Http {
        /// The host port.
        port: u16,
        /// The path, starting with `/`.
        path: String,
        /// Probe `[::1]` instead of `127.0.0.1`.
        ipv6: bool,
        /// Informational answers count as healthy.
        ignore_1xx: bool,
    },
    /// A TCP connection to `127.0.0.1:<port>` (`[::1]` for IPv6) opens.
    Tcp {
        /// The host port.
        port: u16,
        /// Probe `[::1]` instead of `127.0.0.1`.
        ipv6: bool,
    },
    /// A command exits with 0: in the sandbox with the task's environment
    /// for a process task, inside the container for a container task.
    Command {
        /// What to run ([`Command::Shell`] or [`Command::Argv`]).
        command: Command,
        /// Variables added to the task's environment.
        env: BTreeMap<String, String>,
    },
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = |ipv6: bool| if ipv6 { "[::1]" } else { "127.0.0.1" };
        match self {
            Probe::Http { port, path, ipv6, .. } => {
                write!(f, "HTTP GET http://{}:{port}{path}", host(*ipv6))
            }
            Probe::Tcp { port, ipv6 } => write!(f, "TCP {}:{port}", host(*ipv6)),
            Probe::Command { command: Command::Shell(line), .. } => write!(f, "COMMAND `{line}`"),
            Probe::Command { command: Command::Argv(argv), .. } => {
                write!(f, "COMMAND `{}`", argv.join(" "))
            }
            Probe::Command { command: Command::ImageDefault, .. } => f.write_str("COMMAND"),
        }
    }
}

/// The result of one probe, as the shell observed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// The probe passed.
    Healthy,
    /// The probe failed, and why (`connection refused`, `HTTP 503`, ...).
    Unhealthy(String),
    /// The probe did not finish within the check's timeout.
    TimedOut,
}

/// A signal the executor sends to a task's process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Signal {
    /// SIGTERM: please stop.
    Term,
    /// SIGKILL: stop now.
    Kill,
}

impl Signal {
    /// The Linux signal number.
    pub fn number(self) -> i32 {
        match self {
            Signal::Term => 15,
            Signal::Kill => 9,
        }
    }
}

/// How a task's main process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this status code.
    Code(i32),
    /// It was terminated by this signal number.
    Signal(i32),
}

impl ExitStatus {
    /// True for a zero exit code.
    pub fn success(self) -> bool {
        self == ExitStatus::Code(0)
    }

    /// The status text Mesos' command executor reports, e.g.
    /// `Command exited with status 3` or `Command terminated with signal Killed`.
    pub fn message(self) -> String {
        match self {
            ExitStatus::Code(code) => format!("Command exited with status {code}"),
            ExitStatus::Signal(sig) => {
                format!("Command terminated with signal {}", signal_name(sig))
            }
        }
    }
}

/// The conventional (glibc `strsignal`) description of a Linux signal
/// number, as Mesos prints it: 9 is `Killed`, 15 is `Terminated`.
pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        1 => "Hangup",
        2 => "Interrupt",
        3 => "Quit",
        4 => "Illegal instruction",
        5 => "Trace/breakpoint trap",
        6 => "Aborted",
        7 => "Bus error",
        8 => "Floating point exception",
        9 => "Killed",
        10 => "User defined signal 1",
        11 => "Segmentation fault",
        12 => "User defined signal 2",
        13 => "Broken pipe",
        14 => "Alarm clock",
        15 => "Terminated",
        16 => "Stack fault",
        17 => "Child exited",
        18 => "Continued",
        19 => "Stopped (signal)",
        20 => "Stopped",
        21 => "Stopped (tty input)",
        22 => "Stopped (tty output)",
        23 => "Urgent I/O condition",
        24 => "CPU time limit exceeded",
        25 => "File size limit exceeded",
        26 => "Virtual timer expired",
        27 => "Profiling timer expired",
        28 => "Window changed",
        29 => "I/O possible",
        30 => "Power failure",
        31 => "Bad system call",
        32..=64 => return format!("Real-time signal {}", sig - 32),
        _ => return format!("Unknown signal {sig}"),
    };
    name.to_owned()
}

/// The task states the executor reports (a subset of `mesos.v1.TaskState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TaskState {
    /// The process is being started.
    Starting,
    /// The process runs.
    Running,
    /// A kill was requested; the process is being stopped.
    Killing,
    /// The process exited with status 0.
    Finished,
    /// The process exited otherwise, or could not be started.
    Failed,
    /// The process ended after a kill request.
    Killed,
    /// The task description could not be run at all.
    Error,
}

impl TaskState {
    /// True for states after which no other update follows.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Finished | TaskState::Failed | TaskState::Killed | TaskState::Error
        )
    }
}

/// Why a task reached a state, when more than the state is known (a subset
/// of `mesos.v1.TaskStatus.Reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// The task description is invalid (`REASON_TASK_INVALID`).
    TaskInvalid,
    /// The process could not be started (`REASON_CONTAINER_LAUNCH_FAILED`).
    ContainerLaunchFailed,
    /// The task was killed before its process started
    /// (`REASON_TASK_KILLED_DURING_LAUNCH`).
    TaskKilledDuringLaunch,
    /// The executor is shutting down (`REASON_EXECUTOR_TERMINATED`).
    ExecutorTerminated,
    /// The task's health changed, or it was killed for failing a health
    /// check (`REASON_TASK_HEALTH_CHECK_STATUS_UPDATED`).
    HealthCheckStatusUpdated,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_messages_match_the_mesos_command_executor() {
        assert_eq!(ExitStatus::Code(3).message(), "Command exited with status 3");
        assert_eq!(ExitStatus::Code(0).message(), "Command exited with status 0");
        assert_eq!(ExitStatus::Signal(9).message(), "Command terminated with signal Killed");
        assert_eq!(ExitStatus::Signal(15).message(), "Command terminated with signal Terminated");
        assert_eq!(
            ExitStatus::Signal(11).message(),
            "Command terminated with signal Segmentation fault"
        );
    }

    #[test]
    fn signal_names_cover_realtime_and_unknown_numbers() {
        assert_eq!(signal_name(2), "Interrupt");
        assert_eq!(signal_name(34), "Real-time signal 2");
        assert_eq!(signal_name(0), "Unknown signal 0");
        assert_eq!(signal_name(99), "Unknown signal 99");
        assert_eq!(Signal::Term.number(), 15);
        assert_eq!(Signal::Kill.number(), 9);
    }

    #[test]
    fn probes_describe_themselves_with_the_address_they_reach() {
        let http =
            Probe::Http { port: 8080, path: "/health".into(), ipv6: false, ignore_1xx: false };
        assert_eq!(http.to_string(), "HTTP GET http://127.0.0.1:8080/health");
        assert_eq!(Probe::Tcp { port: 9, ipv6: true }.to_string(), "TCP [::1]:9");
        let shell =
            Probe::Command { command: Command::Shell("test -f x".into()), env: BTreeMap::new() };
        assert_eq!(shell.to_string(), "COMMAND `test -f x`");
        let argv = Probe::Command {
            command: Command::Argv(vec!["true".into(), "1".into()]),
            env: BTreeMap::new(),
        };
        assert_eq!(argv.to_string(), "COMMAND `true 1`");
        let spec = TaskSpec::new("t", Command::Shell("x".into()));
        assert_eq!(
            (spec.container, spec.limits, spec.health_checks.len()),
            (None, Limits::default(), 0)
        );
    }

    #[test]
    fn only_end_states_are_terminal() {
        let terminal: Vec<TaskState> = [
            TaskState::Starting,
            TaskState::Running,
            TaskState::Killing,
            TaskState::Finished,
            TaskState::Failed,
            TaskState::Killed,
            TaskState::Error,
        ]
        .into_iter()
        .filter(|s| s.is_terminal())
        .collect();
        assert_eq!(
            terminal,
            [TaskState::Finished, TaskState::Failed, TaskState::Killed, TaskState::Error]
        );
        assert!(ExitStatus::Code(0).success());
        assert!(!ExitStatus::Signal(0).success());
    }
}
