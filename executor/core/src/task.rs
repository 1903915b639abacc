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
    /// A shell command line, run as `/bin/sh -c <line>`.
    Shell(String),
    /// A program and its arguments, executed directly: `argv[0]` is looked
    /// up in `PATH` and is also the process' `argv[0]`.
    Argv(Vec<String>),
}

/// Everything the executor needs to run one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSpec {
    /// The Mesos task id.
    pub task_id: TaskId,
    /// What to run.
    pub command: Command,
    /// Environment variables added to the task's clean environment.
    pub env: BTreeMap<String, String>,
    /// The grace period between SIGTERM and SIGKILL (`TaskInfo.kill_policy`);
    /// `None` means the executor's default.
    pub kill_grace: Option<Duration>,
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
