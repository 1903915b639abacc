//! The boundary between Mesos protos and the scheduling core's domain types.
//!
//! Offers and status updates come in as `mesos.v1` messages and leave as
//! core types; the core's [`MesosCall`]s leave as `mesos.v1.scheduler.Call`s.
//! Nothing else in the daemon builds or inspects Mesos messages.
//!
//! **Task contract with `drover-executor`:** every task runs under a custom
//! executor (`ExecutorInfo.type = CUSTOM`) whose command is the
//! `drover-executor` binary. The task's own command travels in
//! `TaskInfo.data` as a protobuf-encoded `mesos.v1.CommandInfo`: `shell =
//! true` with the command line in `value`, or `shell = false` with the
//! program in `value` and the whole argv (program first) in `arguments`; the
//! task's environment is in `environment.variables`. The kill grace period
//! is `TaskInfo.kill_policy.grace_period`.

use std::time::Duration;

use drover_protos::Message;
use drover_protos::mesos::v1 as mesos;
use drover_protos::mesos::v1::scheduler::Call;
use mesos_wire::scheduler::calls;
use sched_core::app::{CommandSpec, Resources};
use sched_core::instance::TaskState;
use sched_core::offer::Offer;
use sched_core::scheduler::{LaunchSpec, MesosCall, StatusUpdate};

/// Settings of the executor Drover launches its tasks under.
#[derive(Debug, Clone)]
pub(crate) struct ExecutorSettings {
    /// Path of `drover-executor` on the agents.
    pub(crate) path: String,
    /// Extra environment for the executor (`DROVER_LOG`, ...).
    pub(crate) env: Vec<(String, String)>,
}

/// The FrameworkInfo Drover subscribes with.
pub(crate) fn framework_info(
    name: &str,
    user: &str,
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
        capabilities: vec![capability(Type::PartitionAware), capability(Type::TaskKillingState)],
        ..Default::default()
    }
}

// Frameworks without the MULTI_ROLE capability see the (deprecated) `role`
// field set on offered resources; it is how an unreserved resource is told
// from a statically reserved one.
#[allow(deprecated)]
fn usable(r: &mesos::Resource) -> bool {
    let unreserved_role = r.role.as_deref().is_none_or(|role| role == "*");
    unreserved_role
        && r.reservation.is_none()
        && r.reservations.is_empty()
        && r.revocable.is_none()
        && r.disk.is_none()
}

/// An offer as the core sees it: the unreserved scalar resources Drover may use.
pub(crate) fn offer_from_proto(o: &mesos::Offer) -> Offer {
    let mut resources = Resources::default();
    let mut ignored = 0;
    for r in &o.resources {
        let Some(value) = r.scalar.as_ref().map(|s| s.value).filter(|v| v.is_finite() && *v > 0.0)
        else {
            continue;
        };
        if !usable(r) {
            ignored += 1;
            continue;
        }
        match r.name.as_str() {
            "cpus" => resources.cpus += value,
            "mem" => resources.mem += value,
            "disk" => resources.disk += value,
            "gpus" => resources.gpus += value.floor().min(f64::from(u32::MAX)) as u32,
            _ => {}
        }
    }
    Offer {
        id: o.id.value.clone(),
        agent_id: o.agent_id.value.clone(),
        hostname: o.hostname.clone(),
        resources,
        ignored_resources: ignored,
    }
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

fn resources(r: &Resources) -> Vec<mesos::Resource> {
    let mut out = vec![scalar("cpus", r.cpus), scalar("mem", r.mem)];
    if r.disk > 0.0 {
        out.push(scalar("disk", r.disk));
    }
    if r.gpus > 0 {
        out.push(scalar("gpus", f64::from(r.gpus)));
    }
    out
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

/// The `CommandInfo` carried in `TaskInfo.data` (see the module docs).
pub(crate) fn task_command(spec: &LaunchSpec) -> mesos::CommandInfo {
    let (value, shell, arguments) = match &spec.command {
        CommandSpec::Shell(c) => (c.clone(), true, Vec::new()),
        CommandSpec::Argv(argv) => (argv.first().cloned().unwrap_or_default(), false, argv.clone()),
    };
    mesos::CommandInfo {
        value: Some(value),
        shell: Some(shell),
        arguments,
        environment: Some(environment(&spec.env)),
        ..Default::default()
    }
}

/// The TaskInfo for one launch.
pub(crate) fn task_info(
    spec: &LaunchSpec,
    framework_id: &str,
    executor: &ExecutorSettings,
) -> mesos::TaskInfo {
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
        resources: resources(&spec.executor_resources),
        name: Some(format!("drover-executor for {}", spec.task_id)),
        ..Default::default()
    };
    executor_info.set_type(mesos::executor_info::Type::Custom);
    mesos::TaskInfo {
        name: spec.app_id.safe_path(),
        task_id: mesos::TaskId { value: spec.task_id.to_string() },
        agent_id: mesos::AgentId { value: spec.agent_id.clone() },
        resources: resources(&spec.resources),
        executor: Some(executor_info),
        data: Some(task_command(spec).encode_to_vec()),
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
    }
}

/// A core call as a Mesos scheduler call.
pub(crate) fn call_to_proto(
    call: &MesosCall,
    framework_id: &str,
    executor: &ExecutorSettings,
) -> Call {
    let secs = |d: &Duration| d.as_secs_f64();
    match call {
        MesosCall::Accept { offer_id, launches, refuse } => {
            let tasks = launches.iter().map(|l| task_info(l, framework_id, executor)).collect();
            calls::accept(
                framework_id,
                std::slice::from_ref(offer_id),
                vec![calls::launch(tasks)],
                secs(refuse),
            )
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
    }
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
            executor_id: "drover-executor.t".into(),
            resources: Resources { cpus: 0.5, mem: 64.0, disk: 0.0, gpus: 0 },
            executor_resources: Resources { cpus: 0.01, mem: 32.0, disk: 0.0, gpus: 0 },
            command,
            env,
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
        let t = task_info(&launch(CommandSpec::Shell("sleep 600".into())), "fw", &exec());
        assert_eq!(t.task_id.value, "prod_web.instance-u1._app.1");
        assert!(t.command.is_none(), "a task with an executor must not carry a command");
        let e = t.executor.as_ref().unwrap();
        assert_eq!(e.r#type(), mesos::executor_info::Type::Custom);
        let ec = e.command.as_ref().unwrap();
        assert_eq!(ec.value.as_deref(), Some("/opt/drover-executor"));
        assert_eq!(ec.shell, Some(false));
        assert_eq!(ec.environment.as_ref().unwrap().variables[0].name, "DROVER_LOG");
        let cmd = mesos::CommandInfo::decode(t.data.as_deref().unwrap()).unwrap();
        assert_eq!((cmd.value.as_deref(), cmd.shell), (Some("sleep 600"), Some(true)));
        assert_eq!(cmd.environment.unwrap().variables[0].value.as_deref(), Some("1"));
        assert_eq!(t.kill_policy.unwrap().grace_period.unwrap().nanoseconds, 4_000_000_000);
        let names: Vec<&str> = t.resources.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, vec!["cpus", "mem"]);
    }

    #[test]
    fn argv_commands_put_the_program_first() {
        let t =
            task_info(&launch(CommandSpec::Argv(vec!["sleep".into(), "5".into()])), "fw", &exec());
        let cmd = mesos::CommandInfo::decode(t.data.as_deref().unwrap()).unwrap();
        assert_eq!(cmd.shell, Some(false));
        assert_eq!(cmd.value.as_deref(), Some("sleep"));
        assert_eq!(cmd.arguments, vec!["sleep", "5"]);
    }

    #[test]
    #[allow(deprecated)]
    fn offers_count_only_unreserved_scalars() {
        let mut reserved = scalar("cpus", 8.0);
        reserved.role = Some("prod".into());
        let mut star = scalar("cpus", 2.0);
        star.role = Some("*".into());
        let o = mesos::Offer {
            id: mesos::OfferId { value: "o".into() },
            agent_id: mesos::AgentId { value: "a".into() },
            hostname: "h".into(),
            resources: vec![
                star,
                reserved,
                scalar("mem", 100.0),
                scalar("gpus", 1.0),
                scalar("cpus", 1.5),
            ],
            ..Default::default()
        };
        let got = offer_from_proto(&o);
        assert_eq!(got.resources, Resources { cpus: 3.5, mem: 100.0, disk: 0.0, gpus: 1 });
        assert_eq!(got.ignored_resources, 1);
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
        let f =
            framework_info("drover", "root", Duration::from_secs(604_800), "h", "http://h:8080");
        assert_eq!(f.checkpoint, Some(true));
        assert_eq!(f.failover_timeout, Some(604_800.0));
        let caps: Vec<_> = f.capabilities.iter().map(|c| c.r#type()).collect();
        assert!(caps.contains(&mesos::framework_info::capability::Type::TaskKillingState));
        assert!(caps.contains(&mesos::framework_info::capability::Type::PartitionAware));
    }
}
