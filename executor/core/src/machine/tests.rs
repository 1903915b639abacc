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
        task_id: id.into(),
        command: Command::Shell("true".into()),
        env: BTreeMap::new(),
        kill_grace: grace.map(Duration::from_secs),
    }
}

fn render(e: &Effect) -> String {
    match e {
        Effect::Spawn(s) => format!("spawn {}", s.task_id),
        Effect::Signal { task_id, signal } => format!("signal {task_id} {signal:?}"),
        Effect::Update { task_id, state, message, reason } => {
            let mut s = format!("update {task_id} {state:?}");
            if let Some(m) = message {
                s.push_str(&format!(" '{m}'"));
            }
            if let Some(r) = reason {
                s.push_str(&format!(" {r:?}"));
            }
            s
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
        self.send(Input::Started { task_id: id.into(), pid: 42 }).unwrap();
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
    h.send(Input::Started { task_id: "t1".into(), pid: 7 }).unwrap();
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
    h.send(Input::Started { task_id: "t".into(), pid: 9 }).unwrap();
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
        h.send(Input::Started { task_id: "a".into(), pid: 1 }),
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
        h.send(Input::Started { task_id: "t".into(), pid: 1 }),
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
        h.send(Input::Started { task_id: id.clone(), pid: 1 }),
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
