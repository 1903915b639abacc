//! The contract between Drover's scheduler and its executor: how a
//! `mesos.v1.TaskInfo` describes what to run.
//!
//! A Drover task has an `executor` (this program), so Mesos forbids it a
//! `TaskInfo.command`. The command travels instead in **`TaskInfo.data`**,
//! as the protobuf encoding (binary, not JSON) of a **`mesos.v1.CommandInfo`**:
//!
//! | `CommandInfo` field | meaning |
//! |---|---|
//! | `shell` (default `true`) | `true`: run `value` as `/bin/sh -c <value>`; `arguments` are ignored |
//! | `value` | the shell line, or with `shell = false` the program (looked up in `PATH`) |
//! | `arguments` | with `shell = false`, the full argv as in `execvp(value, arguments)`: `arguments[0]` is the conventional argv\[0\] and is replaced by `value`; `arguments[1..]` are the arguments. If `value` is empty, `arguments[0]` is the program. |
//! | `environment.variables[]` | `{name, value}` pairs added to the task's environment (type `VALUE` only; `SECRET` is rejected) |
//! | `uris` | must be empty (there is no fetcher) |
//! | `user` | ignored: tasks run as the executor's user |
//!
//! The grace period between SIGTERM and SIGKILL is
//! `TaskInfo.kill_policy.grace_period.nanoseconds` (negative counts as 0;
//! absent means the executor's default of 3 s); a KILL's own `kill_policy`
//! overrides it.
//!
//! A task whose `data` is missing or breaks these rules is never run: it is
//! reported `TASK_ERROR` (`REASON_TASK_INVALID`) with the reason as message.
//! [`encode_command`] is the reference encoder; the scheduler must produce
//! the same bytes.

use std::collections::BTreeMap;
use std::time::Duration;

use drover_protos::Message;
use drover_protos::mesos::v1 as mesos;
use exec_core::{Command, TaskId, TaskSpec};

use crate::ExecutorError;

/// Converts a launched `TaskInfo` into the core's task spec.
pub fn task_spec(task: &mesos::TaskInfo) -> Result<TaskSpec, ExecutorError> {
    let data = task.data.as_deref().filter(|d| !d.is_empty()).ok_or(ExecutorError::NoTaskData)?;
    let info = mesos::CommandInfo::decode(data).map_err(ExecutorError::BadTaskData)?;
    let (command, env) = command_from_info(&info)?;
    let kill_grace = kill_grace(task.kill_policy.as_ref());
    Ok(TaskSpec { task_id: TaskId(task.task_id.value.clone()), command, env, kill_grace })
}

/// The kill grace period of a KILL event's `kill_policy`, if it has one.
pub fn kill_grace(policy: Option<&mesos::KillPolicy>) -> Option<Duration> {
    policy
        .and_then(|k| k.grace_period.as_ref())
        .map(|d| Duration::from_nanos(u64::try_from(d.nanoseconds).unwrap_or(0)))
}

fn command_from_info(
    info: &mesos::CommandInfo,
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
    let command = if info.shell() {
        if value.trim().is_empty() {
            return Err(ExecutorError::EmptyCommand);
        }
        Command::Shell(value)
    } else {
        let mut argv: Vec<String> = info.arguments.clone();
        match (value.is_empty(), argv.is_empty()) {
            (true, true) => return Err(ExecutorError::EmptyCommand),
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

/// Encodes a command and its environment as the `TaskInfo.data` the
/// executor expects: a protobuf `mesos.v1.CommandInfo` with `shell = true`
/// and `value` for [`Command::Shell`], or `shell = false`, `value = argv[0]`
/// and `arguments = argv` for [`Command::Argv`]; variables as `VALUE`s.
pub fn encode_command(command: &Command, env: &BTreeMap<String, String>) -> Vec<u8> {
    let (shell, value, arguments) = match command {
        Command::Shell(line) => (true, line.clone(), Vec::new()),
        Command::Argv(argv) => (false, argv.first().cloned().unwrap_or_default(), argv.clone()),
    };
    let variables = env
        .iter()
        .map(|(name, value)| mesos::environment::Variable {
            name: name.clone(),
            r#type: Some(mesos::environment::variable::Type::Value as i32),
            value: Some(value.clone()),
            secret: None,
        })
        .collect();
    let info = mesos::CommandInfo {
        environment: Some(mesos::Environment { variables }),
        shell: Some(shell),
        value: Some(value),
        arguments,
        ..Default::default()
    };
    info.encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(data: Option<Vec<u8>>, grace_ns: Option<i64>) -> mesos::TaskInfo {
        mesos::TaskInfo {
            name: "web".into(),
            task_id: mesos::TaskId { value: "web.1".into() },
            agent_id: mesos::AgentId { value: "agent".into() },
            data,
            kill_policy: grace_ns.map(|nanoseconds| mesos::KillPolicy {
                grace_period: Some(mesos::DurationInfo { nanoseconds }),
            }),
            ..Default::default()
        }
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn encoded_commands_round_trip_with_environment_and_grace() {
        let cases = [
            Command::Shell("echo hi; exit 3".into()),
            Command::Argv(vec!["sleep".into(), "100".into()]),
            Command::Argv(vec!["/bin/true".into()]),
        ];
        for command in cases {
            let vars = env(&[("FOO", "1"), ("EMPTY", "")]);
            let data = encode_command(&command, &vars);
            let spec = task_spec(&task(Some(data), Some(2_500_000_000))).unwrap();
            assert_eq!(spec.task_id, TaskId::from("web.1"));
            assert_eq!(spec.command, command);
            assert_eq!(spec.env, vars);
            assert_eq!(spec.kill_grace, Some(Duration::from_millis(2_500)));
        }
    }

    #[test]
    fn the_mesos_command_info_defaults_apply() {
        // `shell` unset means true; `arguments` are then ignored.
        let info = mesos::CommandInfo {
            value: Some("exit 0".into()),
            arguments: vec!["ignored".into()],
            ..Default::default()
        };
        let spec = task_spec(&task(Some(info.encode_to_vec()), None)).unwrap();
        assert_eq!(spec.command, Command::Shell("exit 0".into()));
        assert_eq!(spec.kill_grace, None);
        assert!(spec.env.is_empty());
        // execvp semantics: arguments[0] is argv[0], replaced by `value`.
        let info = mesos::CommandInfo {
            shell: Some(false),
            value: Some("/bin/echo".into()),
            arguments: vec!["echo".into(), "a".into()],
            ..Default::default()
        };
        let spec = task_spec(&task(Some(info.encode_to_vec()), Some(-5))).unwrap();
        assert_eq!(spec.command, Command::Argv(vec!["/bin/echo".into(), "a".into()]));
        assert_eq!(spec.kill_grace, Some(Duration::ZERO));
        let info = mesos::CommandInfo {
            shell: Some(false),
            arguments: vec!["ls".into()],
            ..Default::default()
        };
        let spec = task_spec(&task(Some(info.encode_to_vec()), None)).unwrap();
        assert_eq!(spec.command, Command::Argv(vec!["ls".into()]));
    }

    #[test]
    fn tasks_that_cannot_run_are_errors_not_panics() {
        let err = |data: Option<Vec<u8>>| task_spec(&task(data, None)).unwrap_err().to_string();
        assert!(err(None).contains("has no `data`"));
        assert!(err(Some(Vec::new())).contains("has no `data`"));
        assert!(
            err(Some(vec![0xff, 0xff, 0xff])).contains("not a protobuf `mesos.v1.CommandInfo`")
        );
        let blank = mesos::CommandInfo { value: Some("  ".into()), ..Default::default() };
        assert_eq!(err(Some(blank.encode_to_vec())), "the command is empty");
        let no_argv = mesos::CommandInfo { shell: Some(false), ..Default::default() };
        assert_eq!(err(Some(no_argv.encode_to_vec())), "the command is empty");
        let empty_prog = mesos::CommandInfo {
            shell: Some(false),
            arguments: vec![String::new()],
            ..Default::default()
        };
        assert_eq!(err(Some(empty_prog.encode_to_vec())), "the command is empty");
        let uris = mesos::CommandInfo {
            value: Some("x".into()),
            uris: vec![mesos::command_info::Uri {
                value: "http://x/y".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(err(Some(uris.encode_to_vec())).contains("uris"));
        let secret = mesos::CommandInfo {
            value: Some("x".into()),
            environment: Some(mesos::Environment {
                variables: vec![mesos::environment::Variable {
                    name: "S".into(),
                    r#type: Some(mesos::environment::variable::Type::Secret as i32),
                    ..Default::default()
                }],
            }),
            ..Default::default()
        };
        assert!(err(Some(secret.encode_to_vec())).contains("secret"));
    }

    #[test]
    fn kill_policies_of_kill_events_convert() {
        assert_eq!(kill_grace(None), None);
        assert_eq!(kill_grace(Some(&mesos::KillPolicy { grace_period: None })), None);
        let p = mesos::KillPolicy {
            grace_period: Some(mesos::DurationInfo { nanoseconds: 1_000_000_000 }),
        };
        assert_eq!(kill_grace(Some(&p)), Some(Duration::from_secs(1)));
    }
}
