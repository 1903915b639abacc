//! The real `drover-executor` binary against a fake agent on 127.0.0.1
//! (`support`), with plain process tasks. Each scenario launches a task and
//! checks the updates, the executor's exit code, and that no task process
//! outlives the executor.

mod support;

use std::time::Duration;

use drover_protos::mesos::v1 as mesos;
use drover_protos::mesos::v1::executor::event;
use exec_core::{Command, HealthCheck, Probe, TaskSpec};
use support::Scenario;
use tokio::time::Instant;

#[tokio::test]
async fn a_failing_task_is_reported_with_its_exit_status_and_the_executor_exits() {
    let mut s = Scenario::start("5secs").await;
    s.subscribe(false).await;
    s.launch("job.1", "echo hi; echo oops >&2; exit 3", None);
    let starting = s.expect_update(mesos::TaskState::TaskStarting, None).await;
    assert_eq!(starting.task_id.value, "job.1");
    assert_eq!(starting.executor_id.as_ref().map(|e| e.value.as_str()), Some("ex-1"));
    s.expect_update(mesos::TaskState::TaskRunning, None).await;
    s.expect_update(mesos::TaskState::TaskFailed, Some("Command exited with status 3")).await;
    assert_eq!(s.exit_code().await, Some(0), "{}", s.log());
    assert_eq!(std::fs::read_to_string(s.sandbox().join("stdout")).unwrap(), "hi\n");
    assert_eq!(std::fs::read_to_string(s.sandbox().join("stderr")).unwrap(), "oops\n");
    let log = s.log();
    assert!(log.contains("Task status changed.") && log.contains("task_id=job.1"), "{log}");
}

#[tokio::test]
async fn a_killed_task_is_announced_stopped_within_its_grace_and_leaves_nothing() {
    let mut s = Scenario::start("5secs").await;
    s.subscribe(true).await;
    s.launch("web.1", "sleep 100", Some(Duration::from_secs(10)));
    s.expect_update(mesos::TaskState::TaskStarting, None).await;
    s.expect_update(mesos::TaskState::TaskRunning, None).await;
    let asked = Instant::now();
    s.kill("web.1", Duration::from_secs(2));
    s.expect_update(mesos::TaskState::TaskKilling, None).await;
    s.expect_update(
        mesos::TaskState::TaskKilled,
        Some("Command terminated with signal Terminated"),
    )
    .await;
    assert!(asked.elapsed() < Duration::from_secs(2), "took {:?}", asked.elapsed());
    assert_eq!(s.exit_code().await, Some(0), "{}", s.log());
    s.assert_nothing_left().await;
}

#[tokio::test]
async fn shutdown_sigkills_a_task_that_ignores_sigterm_and_reaps_escaped_processes() {
    let mut s = Scenario::start("2secs").await;
    s.subscribe(false).await;
    // `setsid` puts a grandchild in its own session: only the subreaper
    // clean-up can find it once its parent is gone.
    s.launch(
        "stubborn.1",
        "setsid sleep 101 & trap '' TERM; sleep 100",
        Some(Duration::from_secs(30)),
    );
    s.expect_update(mesos::TaskState::TaskStarting, None).await;
    s.expect_update(mesos::TaskState::TaskRunning, None).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let asked = Instant::now();
    s.send(s.simple(event::Type::Shutdown));
    s.expect_update(mesos::TaskState::TaskKilled, Some("Command terminated with signal Killed"))
        .await;
    let took = asked.elapsed();
    // The task's 30 s grace is capped at the shutdown grace minus 1 s.
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(s.exit_code().await, Some(0), "{}", s.log());
    s.assert_nothing_left().await;
}

#[tokio::test]
async fn sigterm_to_the_executor_kills_its_tasks_like_a_shutdown() {
    let mut s = Scenario::start("5secs").await;
    s.subscribe(false).await;
    s.launch("svc.1", "sleep 100", None);
    s.expect_update(mesos::TaskState::TaskStarting, None).await;
    s.expect_update(mesos::TaskState::TaskRunning, None).await;
    let pid = s.executor.id().expect("executor pid");
    let status =
        std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    assert!(status.success());
    s.expect_update(
        mesos::TaskState::TaskKilled,
        Some("Command terminated with signal Terminated"),
    )
    .await;
    assert_eq!(s.exit_code().await, Some(0), "{}", s.log());
    s.assert_nothing_left().await;
}

#[tokio::test]
async fn undecodable_tasks_and_task_groups_are_errors_not_crashes() {
    let mut s = Scenario::start("5secs").await;
    s.subscribe(false).await;
    let mut launch = s.simple(event::Type::Launch);
    launch.launch = Some(event::Launch {
        task: mesos::TaskInfo {
            name: "bad".into(),
            task_id: mesos::TaskId { value: "bad.1".into() },
            agent_id: mesos::AgentId { value: "agent-1".into() },
            data: Some(b"\xff\xff not protobuf".to_vec()),
            ..Default::default()
        },
    });
    s.send(launch);
    let status = s.next_update().await;
    assert_eq!(status.state(), mesos::TaskState::TaskError);
    assert_eq!(status.reason(), mesos::task_status::Reason::TaskInvalid);
    assert!(
        status.message().starts_with("the task's `data` is not a protobuf `drover.v1.TaskData`"),
        "{status:?}"
    );
    assert_eq!(s.exit_code().await, Some(0), "{}", s.log());

    let mut s = Scenario::start("5secs").await;
    s.subscribe(false).await;
    let mut group = s.simple(event::Type::LaunchGroup);
    let task = |id: &str| mesos::TaskInfo {
        name: id.into(),
        task_id: mesos::TaskId { value: id.into() },
        agent_id: mesos::AgentId { value: "agent-1".into() },
        ..Default::default()
    };
    group.launch_group = Some(event::LaunchGroup {
        task_group: mesos::TaskGroupInfo { tasks: vec![task("g.1"), task("g.2")] },
    });
    s.send(group);
    for id in ["g.1", "g.2"] {
        let status = s
            .expect_update(mesos::TaskState::TaskError, Some("task groups are not supported"))
            .await;
        assert_eq!(status.task_id.value, id);
    }
    assert_eq!(s.exit_code().await, Some(0), "{}", s.log());
}

#[tokio::test]
async fn a_failing_command_health_check_kills_a_process_task_after_max_failures() {
    let mut s = Scenario::start("5secs").await;
    s.subscribe(false).await;
    std::fs::write(s.sandbox().join("ready"), "").unwrap();
    let check = HealthCheck {
        probe: Probe::Command {
            // In the sandbox, with the task's and the check's environment.
            command: Command::Shell(
                "test -f \"$MESOS_SANDBOX/$FILE\" && test \"$APP\" = web".into(),
            ),
            env: [("FILE".to_owned(), "ready".to_owned())].into(),
        },
        delay: Duration::ZERO,
        interval: Duration::from_millis(300),
        timeout: Duration::from_secs(2),
        grace_period: Duration::ZERO,
        max_consecutive_failures: 2,
    };
    s.launch_spec(&TaskSpec {
        env: [("APP".to_owned(), "web".to_owned()), support::marker_pair(&s.marker)].into(),
        health_checks: vec![check],
        kill_grace: Some(Duration::from_secs(5)),
        ..TaskSpec::new("checked.1", Command::Shell("sleep 100".into()))
    });
    s.expect_update(mesos::TaskState::TaskStarting, None).await;
    s.expect_update(mesos::TaskState::TaskRunning, None).await;
    let healthy = s.expect_update(mesos::TaskState::TaskRunning, Some("Task is healthy")).await;
    assert_eq!(healthy.healthy, Some(true));
    assert_eq!(healthy.reason(), mesos::task_status::Reason::TaskHealthCheckStatusUpdated);
    std::fs::remove_file(s.sandbox().join("ready")).unwrap();
    let probe = "COMMAND `test -f \"$MESOS_SANDBOX/$FILE\" && test \"$APP\" = web`";
    let failed = format!("Health check 1 ({probe}) failed: exit status 1");
    let sick = s.expect_update(mesos::TaskState::TaskRunning, Some(&failed)).await;
    assert_eq!(sick.healthy, Some(false));
    let killed = s.next_update().await;
    assert_eq!(killed.state(), mesos::TaskState::TaskKilled, "{killed:?}");
    assert_eq!(
        killed.message(),
        format!(
            "Killed after failing health check 1 ({probe}) 2 times in a row: exit status 1. \
             Command terminated with signal Terminated"
        )
    );
    assert_eq!(killed.healthy, Some(false));
    assert_eq!(s.exit_code().await, Some(0), "{}", s.log());
    s.assert_nothing_left().await;
}

#[tokio::test]
async fn an_agent_requiring_executor_authentication_gets_the_bearer_token_on_every_call() {
    const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl";
    let mut s =
        Scenario::start_with("5secs", &[("MESOS_EXECUTOR_AUTHENTICATION_TOKEN", TOKEN)]).await;
    s.subscribe(false).await;
    s.launch("authed.1", "env; exit 0", None);
    s.expect_update(mesos::TaskState::TaskStarting, None).await;
    s.expect_update(mesos::TaskState::TaskRunning, None).await;
    s.expect_update(mesos::TaskState::TaskFinished, Some("Command exited with status 0")).await;
    assert_eq!(s.exit_code().await, Some(0), "{}", s.log());
    let seen = s.authorizations.lock().unwrap().clone();
    // SUBSCRIBE and the three UPDATEs, each with the token, none refused.
    assert!(seen.len() >= 4, "{seen:?}");
    let want = format!("Bearer {TOKEN}");
    assert!(seen.iter().all(|a| a.as_deref() == Some(want.as_str())), "{seen:?}");
    // The token is neither logged (at debug level) nor given to the task.
    let log = s.log();
    assert!(!log.contains(TOKEN), "{log}");
    let stdout = std::fs::read_to_string(s.sandbox().join("stdout")).unwrap();
    assert!(stdout.contains("MESOS_TASK_ID=authed.1") && !stdout.contains(TOKEN), "{stdout}");
}
