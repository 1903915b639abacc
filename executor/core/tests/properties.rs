//! Safety properties of the executor state machine, over random histories.
//!
//! A small simulated world plays the agent and the processes: it feeds the
//! machine random inputs (launches, kills, shutdowns, process results,
//! acknowledgements, time), answers the effects (a SIGTERM-obeying process
//! exits on SIGTERM, every process exits on SIGKILL), then shuts the
//! executor down and lets it settle. Each property is a named function.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use drover_time::Timestamp;
use exec_core::{
    Command, Config, Effect, Executor, ExitStatus, Input, Signal, TaskId, TaskSpec, TaskState,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Launch { id: u8, grace_s: Option<u64>, obeys_term: bool },
    Reject { id: u8 },
    Kill { id: u8, grace_s: Option<u64> },
    Shutdown { grace_ms: u64 },
    Advance { ms: u64 },
    Start { id: u8, ok: bool },
    Exit { id: u8, code: i32 },
    Deliver { id: u8 },
    Ack { id: u8 },
    Spurious { id: u8 },
    AgentLost,
}

fn op() -> impl Strategy<Value = Op> {
    let id = 0u8..5;
    prop_oneof![
        4 => (id.clone(), proptest::option::of(0u64..8), any::<bool>())
            .prop_map(|(id, grace_s, obeys_term)| Op::Launch { id, grace_s, obeys_term }),
        1 => id.clone().prop_map(|id| Op::Reject { id }),
        3 => (id.clone(), proptest::option::of(0u64..8)).prop_map(|(id, grace_s)| Op::Kill { id, grace_s }),
        1 => (0u64..10_000).prop_map(|grace_ms| Op::Shutdown { grace_ms }),
        4 => (0u64..3_000).prop_map(|ms| Op::Advance { ms }),
        4 => (id.clone(), proptest::bool::weighted(0.9)).prop_map(|(id, ok)| Op::Start { id, ok }),
        2 => (id.clone(), 0i32..3).prop_map(|(id, code)| Op::Exit { id, code }),
        3 => id.clone().prop_map(|id| Op::Deliver { id }),
        4 => id.clone().prop_map(|id| Op::Ack { id }),
        1 => id.prop_map(|id| Op::Spurious { id }),
        1 => Just(Op::AgentLost),
    ]
}

#[derive(Debug, Default)]
struct Proc {
    started: bool,
    exited: bool,
    obeys_term: bool,
    pending_exit: Option<ExitStatus>,
}

/// A kill request as the world made it: when, and the grace it implies.
#[derive(Debug)]
struct KillRequest {
    at: Timestamp,
    task: String,
    grace: Duration,
}

#[derive(Debug)]
struct World {
    ex: Executor,
    now: Timestamp,
    log: Vec<(Timestamp, Effect)>,
    procs: BTreeMap<String, Proc>,
    spawns: BTreeMap<String, u32>,
    unacked: BTreeMap<String, u32>,
    task_grace: BTreeMap<String, Option<Duration>>,
    obeys_term: BTreeMap<String, bool>,
    accepted: BTreeSet<String>,
    requests: Vec<KillRequest>,
    agent_lost_at: Option<Timestamp>,
    running_at_loss: BTreeSet<String>,
    shutdown: Option<(Timestamp, Duration)>,
    /// `(now, deadline)` whenever a deadline was not in the future.
    stale_deadlines: Vec<(Timestamp, Timestamp)>,
}

const DEFAULT_GRACE: Duration = Duration::from_secs(3);
const MARGIN: Duration = Duration::from_secs(1);

impl World {
    fn new(task_killing_state: bool) -> Self {
        World {
            ex: Executor::new(Config { task_killing_state, ..Config::default() }),
            now: Timestamp::from_secs(100),
            log: Vec::new(),
            procs: BTreeMap::new(),
            spawns: BTreeMap::new(),
            unacked: BTreeMap::new(),
            task_grace: BTreeMap::new(),
            obeys_term: BTreeMap::new(),
            accepted: BTreeSet::new(),
            requests: Vec::new(),
            agent_lost_at: None,
            running_at_loss: BTreeSet::new(),
            shutdown: None,
            stale_deadlines: Vec::new(),
        }
    }

    fn feed(&mut self, input: Input) -> bool {
        let ok = self.ex.handle(input, self.now).is_ok();
        if let Some(deadline) = self.ex.poll_timeout().filter(|d| *d <= self.now) {
            self.stale_deadlines.push((self.now, deadline));
        }
        while let Some(effect) = self.ex.poll_effect() {
            match &effect {
                Effect::Spawn(spec) => {
                    let id = spec.task_id.0.clone();
                    *self.spawns.entry(id.clone()).or_default() += 1;
                    let obeys_term = self.obeys_term.get(&id).copied().unwrap_or(true);
                    self.procs.insert(id, Proc { obeys_term, ..Proc::default() });
                }
                Effect::Signal { task_id, signal } => {
                    if let Some(p) = self.procs.get_mut(&task_id.0)
                        && p.started
                        && !p.exited
                    {
                        match signal {
                            Signal::Term if p.obeys_term => {
                                p.pending_exit = Some(ExitStatus::Signal(15))
                            }
                            Signal::Term => {}
                            Signal::Kill => p.pending_exit = Some(ExitStatus::Signal(9)),
                        }
                    }
                }
                Effect::Update { task_id, .. } => {
                    *self.unacked.entry(task_id.0.clone()).or_default() += 1
                }
                Effect::Probe { .. } | Effect::Exit(_) => {}
            }
            self.log.push((self.now, effect));
        }
        ok
    }

    fn kill_request(&mut self, task: &str, grace: Duration) {
        self.requests.push(KillRequest { at: self.now, task: task.to_owned(), grace });
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Launch { id, grace_s, obeys_term } => {
                let id = format!("t{id}");
                let grace = grace_s.map(Duration::from_secs);
                self.obeys_term.entry(id.clone()).or_insert(obeys_term);
                let spec = TaskSpec {
                    kill_grace: grace,
                    ..TaskSpec::new(id.clone(), Command::Shell("true".into()))
                };
                if self.feed(Input::Launch(spec)) {
                    self.task_grace.insert(id.clone(), grace);
                    self.accepted.insert(id);
                }
            }
            Op::Reject { id } => {
                let id = format!("t{id}");
                if self.feed(Input::Reject { task_id: TaskId(id.clone()), message: "bad".into() }) {
                    self.task_grace.insert(id.clone(), None);
                    self.accepted.insert(id);
                }
            }
            Op::Kill { id, grace_s } => {
                let id = format!("t{id}");
                let grace = grace_s.map(Duration::from_secs);
                if self.feed(Input::Kill { task_id: TaskId(id.clone()), grace }) {
                    let task_grace = self.task_grace.get(&id).copied().flatten();
                    self.kill_request(&id, grace.or(task_grace).unwrap_or(DEFAULT_GRACE));
                }
            }
            Op::Shutdown { grace_ms } => {
                let grace = Duration::from_millis(grace_ms);
                let now = self.now;
                if self.feed(Input::Shutdown { grace }) {
                    self.shutdown = Some((now, grace));
                    let graces: Vec<(String, Duration)> = self
                        .task_grace
                        .iter()
                        .map(|(id, g)| {
                            (
                                id.clone(),
                                g.unwrap_or(DEFAULT_GRACE).min(grace.saturating_sub(MARGIN)),
                            )
                        })
                        .collect();
                    for (id, g) in graces {
                        self.requests.push(KillRequest { at: now, task: id, grace: g });
                    }
                }
            }
            Op::Advance { ms } => {
                self.now = self.now.plus(Duration::from_millis(ms));
                self.feed(Input::Timeout);
            }
            Op::Start { id, ok } => {
                let id = format!("t{id}");
                if self.procs.get(&id).is_some_and(|p| !p.started && !p.exited) {
                    if ok {
                        if let Some(p) = self.procs.get_mut(&id) {
                            p.started = true;
                        }
                        self.feed(Input::Started {
                            task_id: TaskId(id),
                            pid: 1,
                            container_id: None,
                        });
                    } else {
                        if let Some(p) = self.procs.get_mut(&id) {
                            p.exited = true;
                        }
                        self.feed(Input::StartFailed { task_id: TaskId(id), error: "nope".into() });
                    }
                }
            }
            Op::Exit { id, code } => self.exit_with(&format!("t{id}"), ExitStatus::Code(code)),
            Op::Deliver { id } => self.deliver(&format!("t{id}")),
            Op::Ack { id } => self.ack(&format!("t{id}")),
            Op::Spurious { id } => {
                self.feed(Input::Exited {
                    task_id: TaskId(format!("t{id}")),
                    status: ExitStatus::Code(1),
                });
            }
            Op::AgentLost => {
                let running: BTreeSet<String> = self
                    .procs
                    .iter()
                    .filter(|(id, p)| {
                        p.started
                            && self
                                .ex
                                .task_state(&TaskId((*id).clone()))
                                .is_some_and(|s| !s.is_terminal())
                    })
                    .map(|(id, _)| id.clone())
                    .collect();
                if self.agent_lost_at.is_none() && self.feed(Input::AgentLost) {
                    self.running_at_loss = running;
                    self.agent_lost_at = Some(self.now);
                }
            }
        }
    }

    fn exit_with(&mut self, id: &str, status: ExitStatus) {
        if let Some(p) = self.procs.get_mut(id)
            && p.started
            && !p.exited
        {
            p.exited = true;
            self.feed(Input::Exited { task_id: TaskId(id.to_owned()), status });
        }
    }

    fn deliver(&mut self, id: &str) {
        if let Some(status) = self.procs.get_mut(id).and_then(|p| p.pending_exit.take()) {
            self.exit_with(id, status);
        }
    }

    fn ack(&mut self, id: &str) {
        if let Some(n) = self.unacked.get_mut(id).filter(|n| **n > 0) {
            *n -= 1;
            self.feed(Input::Acknowledged { task_id: TaskId(id.to_owned()) });
        }
    }

    /// Shuts the executor down and answers everything promptly until it exits.
    fn settle(&mut self) {
        self.apply(Op::Shutdown { grace_ms: 5_000 });
        for _ in 0..200 {
            if self.ex.has_exited() {
                return;
            }
            let ids: Vec<String> = self.procs.keys().cloned().collect();
            for id in &ids {
                if self.procs.get(id).is_some_and(|p| !p.started && !p.exited) {
                    if let Some(p) = self.procs.get_mut(id) {
                        p.started = true;
                    }
                    self.feed(Input::Started {
                        task_id: TaskId(id.clone()),
                        pid: 1,
                        container_id: None,
                    });
                }
                self.deliver(id);
            }
            let ids: Vec<String> = self.unacked.keys().cloned().collect();
            for id in &ids {
                while self.unacked.get(id).is_some_and(|n| *n > 0) {
                    self.ack(id);
                }
            }
            let next = self.ex.poll_timeout().unwrap_or(self.now.plus(Duration::from_secs(1)));
            self.now = next.max(self.now);
            self.feed(Input::Timeout);
        }
    }

    fn updates_of(&self, id: &str) -> Vec<TaskState> {
        self.log
            .iter()
            .filter_map(|(_, e)| match e {
                Effect::Update { task_id, state, .. } if task_id.0 == id => Some(*state),
                _ => None,
            })
            .collect()
    }

    fn exit_time(&self) -> Option<Timestamp> {
        self.log.iter().find(|(_, e)| matches!(e, Effect::Exit(_))).map(|(t, _)| *t)
    }

    /// The executor left before its tasks could end: the agent is gone or the
    /// shutdown grace period ran out.
    fn gave_up(&self) -> bool {
        let forced = match (self.shutdown, self.exit_time()) {
            (Some((at, grace)), Some(exit)) => exit >= at.plus(grace),
            _ => false,
        };
        self.agent_lost_at.is_some() || forced
    }
}

/// Every task the executor accepted gets exactly one terminal update (at
/// most one if it gave up on its tasks), and no update ever follows it.
fn every_accepted_task_gets_exactly_one_terminal_update(w: &World) -> Result<(), String> {
    for id in &w.accepted {
        let states = w.updates_of(id);
        let terminal = states.iter().filter(|s| s.is_terminal()).count();
        if terminal > 1 || (terminal == 0 && !w.gave_up()) {
            return Err(format!("task {id}: updates {states:?}"));
        }
        if let Some(pos) = states.iter().position(|s| s.is_terminal())
            && pos + 1 != states.len()
        {
            return Err(format!("task {id}: update after terminal: {states:?}"));
        }
    }
    Ok(())
}

/// A task is spawned at most once, whatever the agent sends.
fn no_task_is_spawned_twice(w: &World) -> Result<(), String> {
    match w.spawns.iter().find(|(_, n)| **n > 1) {
        Some((id, n)) => Err(format!("task {id} spawned {n} times")),
        None => Ok(()),
    }
}

/// SIGKILL is never sent before SIGTERM, nor before the grace period of
/// some kill request has elapsed since both that request and the SIGTERM;
/// unless the agent was lost or the shutdown grace period ran out.
fn sigkill_never_precedes_sigterm_plus_grace(w: &World) -> Result<(), String> {
    for (at, effect) in &w.log {
        let Effect::Signal { task_id, signal: Signal::Kill } = effect else { continue };
        if w.agent_lost_at.is_some_and(|t| t <= *at) {
            continue;
        }
        if w.shutdown.is_some_and(|(t, grace)| *at >= t.plus(grace)) {
            continue;
        }
        let term = w.log.iter().find(|(_, e)| {
            matches!(e, Effect::Signal { task_id: t, signal: Signal::Term } if t == task_id)
        });
        let Some((term_at, _)) = term else {
            return Err(format!("SIGKILL of {task_id} without SIGTERM"));
        };
        let honoured = w
            .requests
            .iter()
            .filter(|r| r.task == task_id.0)
            .any(|r| (*term_at).max(r.at).plus(r.grace) <= *at);
        if !honoured {
            return Err(format!(
                "SIGKILL of {task_id} at {at:?} too early (SIGTERM at {term_at:?})"
            ));
        }
    }
    Ok(())
}

/// The executor exits exactly once, and nothing follows the exit.
fn exit_happens_once_and_last(w: &World) -> Result<(), String> {
    let exits: Vec<usize> = w
        .log
        .iter()
        .enumerate()
        .filter(|(_, (_, e))| matches!(e, Effect::Exit(_)))
        .map(|(i, _)| i)
        .collect();
    match exits.as_slice() {
        [i] if *i + 1 == w.log.len() => Ok(()),
        _ => Err(format!("exits at {exits:?} of {} effects", w.log.len())),
    }
}

/// When the agent is lost, every task whose process runs is SIGKILLed.
fn agent_loss_sigkills_every_running_task(w: &World) -> Result<(), String> {
    for id in &w.running_at_loss {
        let killed = w.log.iter().any(|(at, e)| {
            matches!(e, Effect::Signal { task_id, signal: Signal::Kill } if task_id.0 == *id)
                && Some(*at) == w.agent_lost_at
        });
        if !killed {
            return Err(format!("task {id} was left running after the agent was lost"));
        }
    }
    Ok(())
}

/// After every input the next deadline, if any, lies in the future: the
/// shell never spins on a deadline the core has already handled.
fn deadlines_are_always_in_the_future(w: &World) -> Result<(), String> {
    match w.stale_deadlines.first() {
        Some((now, deadline)) => Err(format!("at {now:?} the next deadline was {deadline:?}")),
        None => Ok(()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn executor_safety_properties_hold(ops in proptest::collection::vec(op(), 0..60), killing in any::<bool>()) {
        let mut w = World::new(killing);
        for op in ops {
            w.apply(op);
        }
        w.settle();
        prop_assert!(w.ex.has_exited(), "the executor never exited: {:?}", w.log);
        for check in [
            every_accepted_task_gets_exactly_one_terminal_update,
            no_task_is_spawned_twice,
            sigkill_never_precedes_sigterm_plus_grace,
            exit_happens_once_and_last,
            agent_loss_sigkills_every_running_task,
            deadlines_are_always_in_the_future,
        ] {
            if let Err(e) = check(&w) {
                prop_assert!(false, "{e}\nlog: {:#?}", w.log);
            }
        }
    }
}
