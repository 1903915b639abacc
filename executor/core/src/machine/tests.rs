//! Unit tests of the executor state machine, on a virtual clock.

use super::*;
use crate::task::Command;

const T0: Timestamp = Timestamp::from_secs(1_000);

/// The machine plus a virtual clock; effects are rendered as short strings.
struct Harness {
    ex: Executor,
    now: Timestamp,
}

fn harness(task_killing_state: bool) -> Harness {
    Harness { ex: Executor::new(Config { task_killing_state, ..Config::default() }), now: T0 }
}

fn spec(id: &str, grace: Option<u64>) -> TaskSpec {
    TaskSpec {
        kill_grace: grace.map(Duration::from_secs),
        ..TaskSpec::new(id, Command::Shell("true".into()))
    }
}

fn render(e: &Effect) -> String {
    match e {
        Effect::Spawn(s) => format!("spawn {}", s.task_id),
        Effect::Signal { task_id, signal } => format!("signal {task_id} {signal:?}"),
        Effect::Update { task_id, state, message, reason, healthy, container_id } => {
            let mut s = format!("update {task_id} {state:?}");
            if let Some(h) = healthy {
                s.push_str(if *h { " healthy" } else { " unhealthy" });
            }
            if let Some(m) = message {
                s.push_str(&format!(" '{m}'"));
            }
            if let Some(r) = reason {
                s.push_str(&format!(" {r:?}"));
            }
            if let Some(c) = container_id {
                s.push_str(&format!(" [{c}]"));
            }
            s
        }
        Effect::Probe { task_id, check, seq, probe, timeout } => {
            format!("probe {task_id} #{check}/{seq} {probe} within {timeout:?}")
        }
        Effect::Exit(r) => format!("exit {r:?}"),
    }
}

impl Harness {
    fn send(&mut self, input: Input) -> Result<(), Ignored> {
        self.ex.handle(input, self.now)
    }

    fn effects(&mut self) -> Vec<String> {
        std::iter::from_fn(|| self.ex.poll_effect()).map(|e| render(&e)).collect()
    }

    /// Moves the clock to `T0 + ms` and feeds a timeout.
    fn at_ms(&mut self, ms: i64) -> Vec<String> {
        self.now = Timestamp::from_millis(T0.as_millis() + ms);
        self.send(Input::Timeout).unwrap();
        self.effects()
    }

    fn launch_running(&mut self, id: &str, grace: Option<u64>) {
        self.send(Input::Launch(spec(id, grace))).unwrap();
        self.send(Input::Started { task_id: id.into(), pid: 42, container_id: None }).unwrap();
        assert_eq!(
            self.effects(),
            [
                format!("update {id} Starting"),
                format!("spawn {id}"),
                format!("update {id} Running")
            ]
        );
    }

    fn kill(&mut self, id: &str, grace: Option<u64>) -> Result<(), Ignored> {
        self.send(Input::Kill { task_id: id.into(), grace: grace.map(Duration::from_secs) })
    }

    fn exited(&mut self, id: &str, status: ExitStatus) {
        self.send(Input::Exited { task_id: id.into(), status }).unwrap();
    }

    fn ack(&mut self, id: &str, n: usize) {
        for _ in 0..n {
            self.send(Input::Acknowledged { task_id: id.into() }).unwrap();
        }
    }
}

#[test]
fn launch_reports_starting_spawns_and_reports_running_once_started() {
    let mut h = harness(false);
    h.send(Input::Launch(spec("t1", None))).unwrap();
    assert_eq!(h.effects(), ["update t1 Starting", "spawn t1"]);
    assert_eq!(h.ex.task_state(&"t1".into()), Some(TaskState::Starting));
    h.send(Input::Started { task_id: "t1".into(), pid: 7, container_id: None }).unwrap();
    assert_eq!(h.effects(), ["update t1 Running"]);
    assert_eq!(h.ex.task_state(&"t1".into()), Some(TaskState::Running));
    assert_eq!(h.ex.poll_timeout(), None);
}

#[test]
fn exit_status_zero_finishes_and_others_fail_with_the_mesos_message() {
    let mut h = harness(false);
    h.launch_running("ok", None);
    h.launch_running("bad", None);
    h.launch_running("sig", None);
    h.exited("ok", ExitStatus::Code(0));
    h.exited("bad", ExitStatus::Code(3));
    h.exited("sig", ExitStatus::Signal(9));
    assert_eq!(
        h.effects(),
        [
            "update ok Finished 'Command exited with status 0'",
            "update bad Failed 'Command exited with status 3'",
            "update sig Failed 'Command terminated with signal Killed'",
        ]
    );
    assert_eq!(h.ex.task_state(&"bad".into()), Some(TaskState::Failed));
    assert_eq!(
        h.send(Input::Exited { task_id: "ok".into(), status: ExitStatus::Code(0) }),
        Err(Ignored::AlreadyTerminal("ok".into()))
    );
}

#[test]
fn kill_sends_sigterm_then_sigkill_after_the_task_grace_then_killed() {
    let mut h = harness(false);
    h.launch_running("t", Some(10));
    h.kill("t", None).unwrap();
    assert_eq!(h.effects(), ["signal t Term"]);
    assert_eq!(h.ex.poll_timeout(), Some(T0.plus(Duration::from_secs(10))));
    assert!(h.at_ms(9_999).is_empty());
    assert_eq!(h.at_ms(10_000), ["signal t Kill"]);
    assert_eq!(h.ex.poll_timeout(), None);
    h.exited("t", ExitStatus::Signal(9));
    assert_eq!(h.effects(), ["update t Killed 'Command terminated with signal Killed'"]);
}

#[test]
fn kill_is_announced_with_task_killing_only_when_the_framework_has_the_capability() {
    let mut h = harness(true);
    h.launch_running("t", None);
    h.kill("t", None).unwrap();
    assert_eq!(h.effects(), ["update t Killing", "signal t Term"]);
    assert_eq!(h.ex.task_state(&"t".into()), Some(TaskState::Killing));

    let mut h = harness(true);
    h.send(Input::FrameworkCapabilities { task_killing_state: false }).unwrap();
    h.launch_running("t", None);
    h.kill("t", None).unwrap();
    assert_eq!(h.effects(), ["signal t Term"]);
}

#[test]
fn a_process_that_exits_on_sigterm_is_killed_without_sigkill() {
    let mut h = harness(false);
    h.launch_running("t", None);
    h.kill("t", None).unwrap();
    h.exited("t", ExitStatus::Signal(15));
    assert_eq!(
        h.effects(),
        ["signal t Term", "update t Killed 'Command terminated with signal Terminated'"]
    );
    assert!(h.at_ms(60_000).iter().all(|e| !e.contains("Kill")));
}

#[test]
fn the_kill_event_grace_overrides_the_task_grace_and_the_default_is_three_seconds() {
    let mut h = harness(false);
    h.launch_running("policy", Some(30));
    h.launch_running("default", None);
    h.kill("policy", Some(1)).unwrap();
    h.kill("default", None).unwrap();
    assert_eq!(h.effects(), ["signal policy Term", "signal default Term"]);
    assert_eq!(h.at_ms(1_000), ["signal policy Kill"]);
    assert!(h.at_ms(2_999).is_empty());
    assert_eq!(h.at_ms(3_000), ["signal default Kill"]);
}

#[test]
fn a_duplicate_kill_does_not_restart_the_grace_timer_but_may_shorten_it() {
    let mut h = harness(true);
    h.launch_running("t", Some(10));
    h.kill("t", None).unwrap();
    h.at_ms(8_000);
    h.kill("t", Some(60)).unwrap();
    assert!(h.effects().is_empty(), "no second KILLING or SIGTERM");
    assert_eq!(h.at_ms(10_000), ["signal t Kill"]);

    let mut h = harness(false);
    h.launch_running("t", Some(10));
    h.kill("t", None).unwrap();
    assert_eq!(h.effects(), ["signal t Term"]);
    h.at_ms(2_000);
    h.kill("t", Some(1)).unwrap();
    assert!(h.effects().is_empty());
    assert_eq!(h.at_ms(3_000), ["signal t Kill"]);
    h.kill("t", None).unwrap();
    assert!(h.at_ms(20_000).is_empty(), "SIGKILL is sent once");
}

#[test]
fn kill_of_an_unknown_or_terminal_task_changes_nothing() {
    let mut h = harness(true);
    assert_eq!(h.kill("ghost", None), Err(Ignored::UnknownTask("ghost".into())));
    h.launch_running("t", None);
    h.exited("t", ExitStatus::Code(0));
    h.effects();
    assert_eq!(h.kill("t", None), Err(Ignored::AlreadyTerminal("t".into())));
    assert!(h.effects().is_empty());
}

#[test]
fn a_task_killed_while_launching_gets_no_running_and_is_stopped_once_started() {
    let mut h = harness(true);
    h.send(Input::Launch(spec("t", Some(5)))).unwrap();
    h.kill("t", None).unwrap();
    assert_eq!(h.effects(), ["update t Starting", "spawn t", "update t Killing"]);
    assert_eq!(h.ex.poll_timeout(), None);
    h.at_ms(2_000);
    h.send(Input::Started { task_id: "t".into(), pid: 9, container_id: None }).unwrap();
    assert_eq!(h.effects(), ["signal t Term"]);
    assert_eq!(h.at_ms(7_000), ["signal t Kill"]);
    h.exited("t", ExitStatus::Signal(9));
    assert_eq!(h.effects(), ["update t Killed 'Command terminated with signal Killed'"]);
}

#[test]
fn a_failed_start_fails_the_task_or_reports_it_killed_during_launch() {
    let mut h = harness(false);
    h.send(Input::Launch(spec("a", None))).unwrap();
    h.send(Input::Launch(spec("b", None))).unwrap();
    h.kill("b", None).unwrap();
    h.effects();
    h.send(Input::StartFailed { task_id: "a".into(), error: "no such file".into() }).unwrap();
    h.send(Input::StartFailed { task_id: "b".into(), error: "no such file".into() }).unwrap();
    assert_eq!(
        h.effects(),
        [
            "update a Failed 'Failed to launch the command: no such file' ContainerLaunchFailed",
            "update b Killed 'Task killed before it started' TaskKilledDuringLaunch",
        ]
    );
    assert_eq!(
        h.send(Input::Started { task_id: "a".into(), pid: 1, container_id: None }),
        Err(Ignored::AlreadyTerminal("a".into()))
    );
}

#[test]
fn a_duplicate_launch_is_ignored_and_never_spawned_twice() {
    let mut h = harness(false);
    h.launch_running("t", None);
    assert_eq!(h.send(Input::Launch(spec("t", None))), Err(Ignored::DuplicateTask("t".into())));
    assert_eq!(
        h.send(Input::Reject { task_id: "t".into(), message: "x".into() }),
        Err(Ignored::DuplicateTask("t".into()))
    );
    assert_eq!(
        h.send(Input::Started { task_id: "t".into(), pid: 1, container_id: None }),
        Err(Ignored::AlreadyStarted("t".into()))
    );
    assert!(h.effects().is_empty());
}

#[test]
fn a_rejected_launch_is_reported_task_error_and_the_executor_exits_once_acknowledged() {
    let mut h = harness(false);
    h.send(Input::Reject { task_id: "t".into(), message: "task groups are not supported".into() })
        .unwrap();
    assert_eq!(h.effects(), ["update t Error 'task groups are not supported' TaskInvalid"]);
    assert_eq!(h.ex.task_state(&"t".into()), Some(TaskState::Error));
    h.ack("t", 1);
    assert_eq!(h.effects(), ["exit TasksDone"]);
    assert!(h.ex.has_exited());
}

#[test]
fn an_idle_executor_has_no_deadline() {
    let mut h = harness(false);
    h.send(Input::FrameworkCapabilities { task_killing_state: true }).unwrap();
    assert!(h.at_ms(1_000).is_empty());
    assert_eq!(h.ex.poll_timeout(), None);
}

#[test]
fn the_executor_exits_once_every_task_is_terminal_and_acknowledged() {
    let mut h = harness(false);
    assert!(h.at_ms(60_000).is_empty(), "no task yet: keep waiting");
    h.launch_running("a", None);
    h.launch_running("b", None);
    h.exited("a", ExitStatus::Code(0));
    h.ack("a", 3);
    h.effects();
    assert!(h.at_ms(120_000).is_empty(), "b still runs");
    h.exited("b", ExitStatus::Code(1));
    h.ack("b", 2);
    assert_eq!(h.effects(), ["update b Failed 'Command exited with status 1'"]);
    h.ack("b", 1);
    assert_eq!(h.effects(), ["exit TasksDone"]);
    assert_eq!(h.send(Input::Timeout), Err(Ignored::Exited));
    assert_eq!(h.ex.poll_timeout(), None);
}

#[test]
fn the_executor_stops_waiting_for_acknowledgements_after_the_ack_timeout() {
    let mut h = harness(false);
    h.launch_running("t", None);
    h.at_ms(1_000);
    h.exited("t", ExitStatus::Code(0));
    h.effects();
    assert_eq!(h.ex.poll_timeout(), Some(T0.plus(Duration::from_secs(6))));
    assert!(h.at_ms(5_999).is_empty());
    assert_eq!(h.at_ms(6_000), ["exit TasksDone"]);
}

#[test]
fn a_launch_while_waiting_for_acknowledgements_cancels_the_exit() {
    let mut h = harness(false);
    h.launch_running("a", None);
    h.exited("a", ExitStatus::Code(0));
    h.at_ms(4_000);
    h.launch_running("b", None);
    assert!(h.at_ms(10_000).is_empty());
    assert_eq!(h.ex.poll_timeout(), None);
}

#[test]
fn shutdown_kills_every_task_within_the_shutdown_grace_minus_the_margin() {
    let mut h = harness(true);
    h.launch_running("long", Some(30));
    h.launch_running("short", Some(1));
    h.launch_running("done", None);
    h.exited("done", ExitStatus::Code(0));
    h.ack("done", 3);
    h.effects();
    h.send(Input::Shutdown { grace: Duration::from_secs(5) }).unwrap();
    assert_eq!(
        h.effects(),
        ["update long Killing", "signal long Term", "update short Killing", "signal short Term"]
    );
    assert_eq!(
        h.send(Input::Shutdown { grace: Duration::from_secs(1) }),
        Err(Ignored::AlreadyShuttingDown)
    );
    assert_eq!(h.at_ms(1_000), ["signal short Kill"]);
    assert_eq!(h.at_ms(4_000), ["signal long Kill"]);
    h.exited("short", ExitStatus::Signal(9));
    h.exited("long", ExitStatus::Signal(9));
    h.effects();
    h.ack("short", 4);
    assert!(h.effects().is_empty(), "long's updates are not acknowledged yet");
    h.ack("long", 4);
    assert_eq!(h.effects(), ["exit Shutdown"]);
}

#[test]
fn shutdown_without_tasks_exits_at_once() {
    let mut h = harness(false);
    h.send(Input::Shutdown { grace: Duration::from_secs(5) }).unwrap();
    assert_eq!(h.effects(), ["exit Shutdown"]);
}

#[test]
fn the_shutdown_grace_period_bounds_the_wait_for_tasks_that_never_exit() {
    let mut h = harness(false);
    h.launch_running("stuck", None);
    h.send(Input::Launch(spec("launching", None))).unwrap();
    h.effects();
    h.send(Input::Shutdown { grace: Duration::from_millis(500) }).unwrap();
    assert_eq!(h.effects(), ["signal stuck Term", "signal stuck Kill"], "grace capped at zero");
    assert_eq!(h.at_ms(500), ["exit Shutdown"]);
}

#[test]
fn a_launch_during_shutdown_is_failed_and_not_spawned() {
    let mut h = harness(false);
    h.launch_running("a", None);
    h.send(Input::Shutdown { grace: Duration::from_secs(5) }).unwrap();
    h.effects();
    h.send(Input::Launch(spec("late", None))).unwrap();
    assert_eq!(h.effects(), ["update late Failed 'Executor is shutting down' ExecutorTerminated"]);
}

#[test]
fn agent_loss_sigkills_every_running_task_and_exits_without_updates() {
    let mut h = harness(true);
    h.launch_running("a", None);
    h.send(Input::Launch(spec("b", None))).unwrap();
    h.effects();
    h.send(Input::AgentLost).unwrap();
    assert_eq!(h.effects(), ["signal a Kill", "exit AgentLost"]);
    assert_eq!(
        h.send(Input::Exited { task_id: "a".into(), status: ExitStatus::Signal(9) }),
        Err(Ignored::Exited)
    );
    assert!(h.effects().is_empty());
}

#[test]
fn results_for_unknown_tasks_are_ignored() {
    let mut h = harness(false);
    let id = TaskId::from("ghost");
    assert_eq!(
        h.send(Input::Started { task_id: id.clone(), pid: 1, container_id: None }),
        Err(Ignored::UnknownTask(id.clone()))
    );
    assert_eq!(
        h.send(Input::StartFailed { task_id: id.clone(), error: "e".into() }),
        Err(Ignored::UnknownTask(id.clone()))
    );
    assert_eq!(
        h.send(Input::Exited { task_id: id.clone(), status: ExitStatus::Code(0) }),
        Err(Ignored::UnknownTask(id.clone()))
    );
    assert_eq!(h.send(Input::Acknowledged { task_id: id.clone() }), Err(Ignored::UnknownTask(id)));
    assert!(h.effects().is_empty());
    assert_eq!(Ignored::UnknownTask("x".into()).to_string(), "unknown task `x`");
}

fn checked_spec(id: &str, max_failures: u32) -> TaskSpec {
    let check = crate::task::HealthCheck {
        probe: Probe::Http { port: 8080, path: "/ping".into(), ipv6: false, ignore_1xx: false },
        delay: Duration::from_secs(5),
        interval: Duration::from_secs(10),
        timeout: Duration::from_secs(2),
        grace_period: Duration::ZERO,
        max_consecutive_failures: max_failures,
    };
    TaskSpec { health_checks: vec![check], ..spec(id, Some(4)) }
}

impl Harness {
    fn probe(&mut self, id: &str, seq: u64, outcome: ProbeOutcome) -> Result<(), Ignored> {
        self.send(Input::ProbeResult { task_id: id.into(), check: 0, seq, outcome })
    }
}

#[test]
fn a_container_task_reports_its_container_id_on_running_and_every_later_update() {
    let mut h = harness(true);
    let docker = crate::task::DockerSpec::new("busybox");
    h.send(Input::Launch(TaskSpec { container: Some(docker.clone()), ..spec("c", None) })).unwrap();
    h.send(Input::Started { task_id: "c".into(), pid: 5, container_id: Some("f00d".into()) })
        .unwrap();
    h.kill("c", None).unwrap();
    h.exited("c", ExitStatus::Code(0));
    assert_eq!(
        h.effects(),
        [
            "update c Starting",
            "spawn c",
            "update c Running 'Container f00d is running' [f00d]",
            "update c Killing [f00d]",
            "signal c Term",
            "update c Killed 'Command exited with status 0' [f00d]",
        ]
    );

    h.send(Input::Launch(TaskSpec { container: Some(docker), ..spec("broken", None) })).unwrap();
    h.send(Input::StartFailed { task_id: "broken".into(), error: "cannot pull image `x`".into() })
        .unwrap();
    assert_eq!(
        h.effects().last().map(String::as_str),
        Some(
            "update broken Failed 'Failed to launch the container: cannot pull image `x`' ContainerLaunchFailed"
        )
    );
}

#[test]
fn health_checks_start_after_the_delay_and_report_each_change_of_health() {
    let mut h = harness(false);
    h.send(Input::Launch(checked_spec("t", 0))).unwrap();
    assert_eq!(h.ex.poll_timeout(), None, "no probe before RUNNING");
    h.send(Input::Started { task_id: "t".into(), pid: 1, container_id: None }).unwrap();
    h.effects();
    assert_eq!(h.ex.poll_timeout(), Some(T0.plus(Duration::from_secs(5))));
    assert!(h.at_ms(4_999).is_empty());
    assert_eq!(h.at_ms(5_000), ["probe t #0/1 HTTP GET http://127.0.0.1:8080/ping within 2s"]);
    assert_eq!(h.ex.poll_timeout(), None, "one probe at a time");
    h.now = T0.plus(Duration::from_millis(5_300));
    h.probe("t", 1, ProbeOutcome::Healthy).unwrap();
    assert_eq!(
        h.effects(),
        ["update t Running healthy 'Task is healthy' HealthCheckStatusUpdated"]
    );
    assert_eq!(h.ex.poll_timeout(), Some(T0.plus(Duration::from_millis(15_300))));
    h.at_ms(15_300);
    h.probe("t", 2, ProbeOutcome::Healthy).unwrap();
    assert!(h.effects().is_empty(), "no update without a change");
    h.at_ms(25_300);
    h.probe("t", 3, ProbeOutcome::Unhealthy("HTTP 503".into())).unwrap();
    assert_eq!(
        h.effects(),
        [
            "update t Running unhealthy 'Health check 1 (HTTP GET http://127.0.0.1:8080/ping) failed: HTTP 503' HealthCheckStatusUpdated"
        ]
    );
    assert_eq!(h.probe("t", 3, ProbeOutcome::Healthy), Err(Ignored::StaleProbe("t".into())));
    h.at_ms(35_300);
    h.probe("t", 4, ProbeOutcome::TimedOut).unwrap();
    assert!(h.effects().is_empty(), "0 failures allowed means never kill");
    h.exited("t", ExitStatus::Code(0));
    assert_eq!(h.effects(), ["update t Finished unhealthy 'Command exited with status 0'"]);
    assert_eq!(h.probe("t", 5, ProbeOutcome::Healthy), Err(Ignored::AlreadyTerminal("t".into())));
    assert_eq!(h.at_ms(60_000), ["exit TasksDone"], "no probe after the end");
}

#[test]
fn too_many_failures_kill_the_task_through_the_normal_kill_path() {
    let mut h = harness(true);
    h.send(Input::Launch(checked_spec("t", 2))).unwrap();
    h.send(Input::Started { task_id: "t".into(), pid: 1, container_id: None }).unwrap();
    h.effects();
    h.at_ms(5_000);
    h.probe("t", 1, ProbeOutcome::Unhealthy("connection refused".into())).unwrap();
    assert_eq!(h.effects().len(), 1, "unhealthy, not yet killed");
    h.at_ms(15_000);
    h.probe("t", 2, ProbeOutcome::Unhealthy("connection refused".into())).unwrap();
    assert_eq!(h.effects(), ["update t Killing unhealthy", "signal t Term"]);
    assert_eq!(h.ex.poll_timeout(), Some(T0.plus(Duration::from_secs(19))), "the task's 4 s grace");
    assert!(h.at_ms(18_999).is_empty(), "no probe while killing");
    assert_eq!(h.at_ms(19_000), ["signal t Kill"]);
    h.exited("t", ExitStatus::Signal(9));
    assert_eq!(
        h.effects(),
        [
            "update t Killed unhealthy 'Killed after failing health check 1 (HTTP GET http://127.0.0.1:8080/ping) 2 times in a row: connection refused. Command terminated with signal Killed' HealthCheckStatusUpdated"
        ]
    );
}

#[test]
fn a_killed_or_shutting_down_task_is_not_probed_and_late_results_are_stale() {
    let mut h = harness(false);
    h.send(Input::Launch(checked_spec("a", 1))).unwrap();
    h.send(Input::Launch(checked_spec("b", 1))).unwrap();
    h.kill("b", None).unwrap();
    h.send(Input::Started { task_id: "a".into(), pid: 1, container_id: None }).unwrap();
    h.send(Input::Started { task_id: "b".into(), pid: 2, container_id: None }).unwrap();
    h.effects();
    let probes: Vec<String> =
        h.at_ms(5_000).into_iter().filter(|e| e.starts_with("probe")).collect();
    assert_eq!(probes, ["probe a #0/1 HTTP GET http://127.0.0.1:8080/ping within 2s"]);
    h.send(Input::Shutdown { grace: Duration::from_secs(10) }).unwrap();
    h.effects();
    assert_eq!(h.probe("a", 1, ProbeOutcome::Healthy), Err(Ignored::StaleProbe("a".into())));
    assert!(h.at_ms(9_000).iter().all(|e| !e.starts_with("probe")));
}
