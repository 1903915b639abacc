//! Health-check properties of the executor state machine, on a virtual
//! clock, over random histories.
//!
//! The world launches tasks with one or two random health checks, starts
//! them, answers the probes the machine asks for with random outcomes at
//! random times, kills tasks, ends them and shuts the executor down. It
//! keeps its own model of every check (when it started running, its
//! results, its counted failures) and each property compares the machine's
//! effects with that model. Each property is a named function.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use drover_time::Timestamp;
use exec_core::{
    Command, Config, Effect, Executor, ExitStatus, HealthCheck, Input, Probe, ProbeOutcome, Reason,
    Signal, TaskId, TaskSpec, TaskState,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct CheckParams {
    delay_s: u64,
    interval_s: u64,
    timeout_s: u64,
    grace_s: u64,
    max: u32,
}

#[derive(Debug, Clone)]
enum Op {
    Launch {
        id: u8,
        checks: Vec<CheckParams>,
    },
    Start {
        id: u8,
    },
    Advance {
        ms: u64,
    },
    /// Answer the `pick`-th probe in flight.
    Answer {
        pick: u8,
        outcome: u8,
    },
    Kill {
        id: u8,
    },
    Exit {
        id: u8,
    },
    Shutdown,
}

fn check_params() -> impl Strategy<Value = CheckParams> {
    (0u64..20, 1u64..15, 1u64..5, 0u64..40, 0u32..4).prop_map(
        |(delay_s, interval_s, timeout_s, grace_s, max)| CheckParams {
            delay_s,
            interval_s,
            timeout_s,
            grace_s,
            max,
        },
    )
}

fn op() -> impl Strategy<Value = Op> {
    let id = 0u8..4;
    prop_oneof![
        2 => (id.clone(), proptest::collection::vec(check_params(), 1..3))
            .prop_map(|(id, checks)| Op::Launch { id, checks }),
        2 => id.clone().prop_map(|id| Op::Start { id }),
        6 => (0u64..15_000).prop_map(|ms| Op::Advance { ms }),
        8 => (any::<u8>(), 0u8..3).prop_map(|(pick, outcome)| Op::Answer { pick, outcome }),
        1 => id.clone().prop_map(|id| Op::Kill { id }),
        1 => id.prop_map(|id| Op::Exit { id }),
        1 => Just(Op::Shutdown),
    ]
}

/// The world's own view of one health check.
#[derive(Debug, Clone)]
struct CheckModel {
    params: HealthCheck,
    /// When the next probe is due, per Marathon's rules (`None` while one
    /// is in flight).
    due: Option<Timestamp>,
    in_flight: Option<(u64, Timestamp)>,
    succeeded: bool,
    counted_failures: u32,
}

#[derive(Debug, Clone, Default)]
struct TaskModel {
    running_at: Option<Timestamp>,
    checks: Vec<CheckModel>,
    /// A kill was requested (by the agent, a shutdown, or a health check).
    killing: bool,
    /// The model says a health check must kill the task.
    health_kill_due: bool,
    ended: bool,
}

#[derive(Debug)]
struct World {
    ex: Executor,
    now: Timestamp,
    log: Vec<(Timestamp, Effect)>,
    tasks: BTreeMap<String, TaskModel>,
    violations: Vec<String>,
}

fn health_check(p: &CheckParams, n: usize) -> HealthCheck {
    HealthCheck {
        probe: Probe::Tcp { port: 1000 + u16::try_from(n).unwrap_or(0), ipv6: false },
        delay: Duration::from_secs(p.delay_s),
        interval: Duration::from_secs(p.interval_s),
        timeout: Duration::from_secs(p.timeout_s),
        grace_period: Duration::from_secs(p.grace_s),
        max_consecutive_failures: p.max,
    }
}

impl World {
    fn new() -> Self {
        World {
            ex: Executor::new(Config { task_killing_state: true, ..Config::default() }),
            now: Timestamp::from_secs(50),
            log: Vec::new(),
            tasks: BTreeMap::new(),
            violations: Vec::new(),
        }
    }

    fn feed(&mut self, input: Input) -> bool {
        let ok = self.ex.handle(input, self.now).is_ok();
        while let Some(effect) = self.ex.poll_effect() {
            self.observe(&effect);
            self.log.push((self.now, effect));
        }
        self.check_nothing_overdue();
        ok
    }

    /// Checks one effect against the model and updates the model.
    fn observe(&mut self, effect: &Effect) {
        let now = self.now;
        match effect {
            Effect::Probe { task_id, check, seq, timeout, .. } => {
                let Some(task) = self.tasks.get_mut(&task_id.0) else {
                    self.violations.push(format!("probe of unknown task {task_id}"));
                    return;
                };
                if task.running_at.is_none() || task.killing || task.ended {
                    self.violations.push(format!("probe of {task_id} while not running: {task:?}"));
                }
                let Some(c) = task.checks.get_mut(*check) else {
                    self.violations.push(format!("probe of a missing check {check} of {task_id}"));
                    return;
                };
                if c.in_flight.is_some() {
                    self.violations.push(format!("two probes of {task_id} #{check} at once"));
                }
                match c.due {
                    Some(due) if due <= now => {}
                    other => self
                        .violations
                        .push(format!("probe of {task_id} #{check} at {now:?}, due {other:?}")),
                }
                if *timeout != c.params.timeout {
                    self.violations.push(format!("probe of {task_id} #{check} with {timeout:?}"));
                }
                c.due = None;
                c.in_flight = Some((*seq, now));
            }
            Effect::Signal { task_id, signal: Signal::Term } => {
                if let Some(task) = self.tasks.get_mut(&task_id.0) {
                    if !task.killing && !task.health_kill_due {
                        self.violations.push(format!("SIGTERM to {task_id} nobody asked for"));
                    }
                    task.killing = true;
                }
            }
            Effect::Update { task_id, state, .. } if state.is_terminal() => {
                if let Some(task) = self.tasks.get_mut(&task_id.0) {
                    task.ended = true;
                }
            }
            Effect::Update { task_id, state: TaskState::Killing, .. } => {
                if let Some(task) = self.tasks.get_mut(&task_id.0) {
                    task.killing = true;
                }
            }
            _ => {}
        }
    }

    /// After every input, no check of a running, unkilled task is overdue.
    fn check_nothing_overdue(&mut self) {
        if self.ex.has_exited() {
            return;
        }
        for (id, task) in &self.tasks {
            if task.running_at.is_none() || task.killing || task.ended || task.health_kill_due {
                continue;
            }
            for (n, c) in task.checks.iter().enumerate() {
                if c.due.is_some_and(|d| d <= self.now) {
                    self.violations.push(format!("{id} #{n} overdue at {:?}: {c:?}", self.now));
                }
            }
        }
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Launch { id, checks } => {
                let id = format!("t{id}");
                let health_checks: Vec<HealthCheck> =
                    checks.iter().enumerate().map(|(n, p)| health_check(p, n)).collect();
                let spec = TaskSpec {
                    health_checks: health_checks.clone(),
                    ..TaskSpec::new(id.clone(), Command::Shell("true".into()))
                };
                let fresh = !self.tasks.contains_key(&id);
                let shutting_down = self.ex.is_shutting_down();
                if self.feed(Input::Launch(spec)) && fresh {
                    let checks = health_checks
                        .into_iter()
                        .map(|params| CheckModel {
                            params,
                            due: None,
                            in_flight: None,
                            succeeded: false,
                            counted_failures: 0,
                        })
                        .collect();
                    self.tasks.insert(
                        id,
                        TaskModel { checks, ended: shutting_down, ..TaskModel::default() },
                    );
                }
            }
            Op::Start { id } => {
                let id = format!("t{id}");
                let Some(task) = self.tasks.get_mut(&id) else { return };
                if task.running_at.is_some() || task.ended {
                    return;
                }
                task.running_at = Some(self.now);
                if !task.killing {
                    for c in &mut task.checks {
                        c.due = Some(self.now.plus(c.params.delay));
                    }
                }
                self.feed(Input::Started { task_id: TaskId(id), pid: 1, container_id: None });
            }
            Op::Advance { ms } => {
                self.now = self.now.plus(Duration::from_millis(ms));
                self.feed(Input::Timeout);
            }
            Op::Answer { pick, outcome } => {
                let in_flight: Vec<(String, usize, u64)> = self
                    .tasks
                    .iter()
                    .flat_map(|(id, t)| {
                        t.checks.iter().enumerate().filter_map(move |(n, c)| {
                            c.in_flight.map(|(seq, _)| (id.clone(), n, seq))
                        })
                    })
                    .collect();
                if in_flight.is_empty() {
                    return;
                }
                let (id, n, seq) = in_flight[usize::from(pick) % in_flight.len()].clone();
                let outcome = match outcome {
                    0 => ProbeOutcome::Healthy,
                    1 => ProbeOutcome::Unhealthy("refused".into()),
                    _ => ProbeOutcome::TimedOut,
                };
                self.record(&id, n, &outcome);
                self.feed(Input::ProbeResult { task_id: TaskId(id), check: n, seq, outcome });
            }
            Op::Kill { id } => {
                let id = format!("t{id}");
                if self.feed(Input::Kill { task_id: TaskId(id.clone()), grace: None })
                    && let Some(task) = self.tasks.get_mut(&id)
                {
                    task.killing = true;
                }
            }
            Op::Exit { id } => {
                let id = format!("t{id}");
                if self.tasks.get(&id).is_some_and(|t| t.running_at.is_some() && !t.ended) {
                    self.feed(Input::Exited { task_id: TaskId(id), status: ExitStatus::Code(0) });
                }
            }
            Op::Shutdown => {
                if self.feed(Input::Shutdown { grace: Duration::from_secs(5) }) {
                    for task in self.tasks.values_mut() {
                        task.killing = true;
                    }
                }
            }
        }
    }

    /// The model's side of a probe result (before the machine sees it).
    fn record(&mut self, id: &str, n: usize, outcome: &ProbeOutcome) {
        let now = self.now;
        let Some(task) = self.tasks.get_mut(id) else { return };
        let running_at = task.running_at.unwrap_or(now);
        let relevant = !task.killing && !task.ended && !self.ex.has_exited();
        let Some(c) = task.checks.get_mut(n) else { return };
        c.in_flight = None;
        if !relevant {
            return;
        }
        c.due = Some(now.plus(c.params.interval));
        if *outcome == ProbeOutcome::Healthy {
            c.succeeded = true;
            c.counted_failures = 0;
        } else if c.succeeded || now >= running_at.plus(c.params.grace_period) {
            c.counted_failures += 1;
            let max = c.params.max_consecutive_failures;
            if max > 0 && c.counted_failures >= max {
                task.health_kill_due = true;
            }
        }
    }

    fn updates_of(&self, id: &str) -> Vec<&Effect> {
        self.log
            .iter()
            .map(|(_, e)| e)
            .filter(|e| matches!(e, Effect::Update { task_id, .. } if task_id.0 == id))
            .collect()
    }
}

/// Every probe starts when the model says it is due: not before the delay
/// after RUNNING (nor before the interval after the previous result), not
/// after (nothing is ever overdue), only while the task runs unkilled, and
/// never two of one check at once.
fn probes_follow_marathons_schedule(w: &World) -> Result<(), String> {
    match w.violations.first() {
        Some(v) => Err(v.clone()),
        None => Ok(()),
    }
}

/// A task is killed for its health exactly when one of its checks reached
/// its maximum of counted consecutive failures (failures inside the grace
/// period before a first success do not count), and its terminal update
/// then names the check.
fn health_kills_follow_counted_failures(w: &World) -> Result<(), String> {
    for (id, task) in &w.tasks {
        let updates = w.updates_of(id);
        let killed_for_health = updates.iter().any(|e| {
            matches!(e, Effect::Update { state, message: Some(m), .. }
                if state.is_terminal() && m.starts_with("Killed after failing health check"))
        });
        let sigtermed = w.log.iter().any(|(_, e)| {
            matches!(e, Effect::Signal { task_id, signal: Signal::Term } if task_id.0 == *id)
        });
        if task.health_kill_due && !task.ended && !sigtermed && !w.ex.has_exited() {
            return Err(format!("{id} should have been killed for its health: {task:?}"));
        }
        if killed_for_health && !task.health_kill_due {
            return Err(format!("{id} was killed for its health without reason: {task:?}"));
        }
    }
    Ok(())
}

/// Health updates report only changes: each carries `healthy`, the
/// current (non-terminal) state, the health-check reason, and a value that
/// differs from the previous one.
fn health_updates_report_only_changes(w: &World) -> Result<(), String> {
    for id in w.tasks.keys() {
        let mut last: Option<bool> = None;
        for e in w.updates_of(id) {
            let Effect::Update { state, reason, healthy, .. } = e else { continue };
            if *reason != Some(Reason::HealthCheckStatusUpdated) || state.is_terminal() {
                continue;
            }
            if *state != TaskState::Running {
                return Err(format!("{id}: health update in state {state:?}"));
            }
            if healthy.is_none() || *healthy == last {
                return Err(format!("{id}: health update {healthy:?} after {last:?}"));
            }
            last = *healthy;
        }
    }
    Ok(())
}

/// After every input, the machine's next deadline is no later than the
/// earliest probe the model says is due.
fn the_deadline_covers_every_due_probe(w: &World) -> Result<(), String> {
    if w.ex.has_exited() {
        return Ok(());
    }
    let next_due = w
        .tasks
        .values()
        .filter(|t| t.running_at.is_some() && !t.killing && !t.ended && !t.health_kill_due)
        .flat_map(|t| t.checks.iter().filter_map(|c| c.due))
        .min();
    match (next_due, w.ex.poll_timeout()) {
        (Some(due), Some(deadline)) if deadline <= due => Ok(()),
        (Some(due), deadline) => Err(format!("probe due {due:?}, deadline {deadline:?}")),
        (None, _) => Ok(()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn health_check_properties_hold(ops in proptest::collection::vec(op(), 0..80)) {
        let mut w = World::new();
        let mut seen = BTreeSet::new();
        for op in ops {
            w.apply(op);
            if let Err(e) = the_deadline_covers_every_due_probe(&w) {
                prop_assert!(false, "{e}\nlog: {:#?}", w.log);
            }
            seen.extend(w.tasks.keys().cloned());
        }
        for check in [
            probes_follow_marathons_schedule,
            health_kills_follow_counted_failures,
            health_updates_report_only_changes,
        ] {
            if let Err(e) = check(&w) {
                prop_assert!(false, "{e}\nlog: {:#?}", w.log);
            }
        }
    }
}
