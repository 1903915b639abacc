//! Tests of the scheduler state machine, driven on a virtual clock through a
//! small harness that plays the daemon: it performs persists (or holds them),
//! records calls and replies.

use std::collections::BTreeMap;

use super::*;
use crate::app::{BackoffPolicy, KillSelection};

const T0: Timestamp = Timestamp::from_secs(1_700_000_000);

fn spec(id: &str, instances: u32) -> AppSpec {
    AppSpec {
        id: AppId::parse(id).unwrap(),
        command: Some(CommandSpec::Shell("sleep 600".into())),
        container: None,
        network: crate::app::NetworkMode::Host,
        port_definitions: Vec::new(),
        require_ports: false,
        health_checks: Vec::new(),
        instances,
        resources: Resources { cpus: 0.5, mem: 64.0, disk: 0.0, gpus: 0 },
        placement: crate::app::PlacementSpec::default(),
        env: BTreeMap::new(),
        secrets: BTreeMap::new(),
        secret_env: BTreeMap::new(),
        labels: BTreeMap::new(),
        backoff: BackoffPolicy::default(),
        kill_selection: KillSelection::YoungestFirst,
        upgrade: crate::app::UpgradeStrategy::default(),
        dependencies: Vec::new(),
        progress_deadline: Duration::from_secs(600),
        rollback_on_failure: true,
        kill_grace: None,
        version: Timestamp::EPOCH,
        last_scaling_at: Timestamp::EPOCH,
        last_config_change_at: Timestamp::EPOCH,
    }
}

fn offer(id: &str, cpus: f64) -> Offer {
    Offer::new(id, "agent-1", "127.0.0.1").with_resources(
        "*",
        Resources { cpus, mem: 4096.0, disk: 1000.0, gpus: 0 },
        crate::ports::PortRanges::new([(31000, 32000)]),
    )
}

fn create(spec: AppSpec) -> Command {
    Command::CreateApp { spec: Box::new(spec), force: false }
}

fn put(spec: AppSpec) -> Command {
    Command::PutApps { specs: vec![spec], force: false }
}

/// DELETE is forced by default, as in Marathon.
fn delete(id: AppId) -> Command {
    Command::DeleteApps { ids: vec![id], force: true }
}

/// What the harness saw, in order.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Persist(Vec<Write>),
    Call(MesosCall),
    Reply(RequestId, Result<Outcome, CommandError>),
    Reload,
}

struct Harness {
    s: Scheduler,
    now: Timestamp,
    /// Persist immediately (true) or hold tokens for the test to release.
    auto_persist: bool,
    held: Vec<PersistToken>,
    log: Vec<Seen>,
    next_request: RequestId,
}

impl Harness {
    fn new() -> Self {
        Self::with(CoreConfig::default(), StoredState::default())
    }

    fn with(config: CoreConfig, stored: StoredState) -> Self {
        Harness {
            s: Scheduler::new(config, stored, 42, T0),
            now: T0,
            auto_persist: true,
            held: Vec::new(),
            log: Vec::new(),
            next_request: 1,
        }
    }

    fn drain(&mut self) {
        while let Some(e) = self.s.poll_effect() {
            match e {
                Effect::Persist { token, writes } => {
                    self.log.push(Seen::Persist(writes));
                    if self.auto_persist {
                        self.s.handle_persisted(token, Ok(()), self.now);
                    } else {
                        self.held.push(token);
                    }
                }
                Effect::Call(c) => self.log.push(Seen::Call(c)),
                Effect::Reply { request, result } => self.log.push(Seen::Reply(request, result)),
                Effect::Reload { .. } => self.log.push(Seen::Reload),
                Effect::Notify(_) => {}
            }
        }
    }

    fn take(&mut self) -> Vec<Seen> {
        self.drain();
        std::mem::take(&mut self.log)
    }

    fn calls(&mut self) -> Vec<MesosCall> {
        self.take()
            .into_iter()
            .filter_map(|s| if let Seen::Call(c) = s { Some(c) } else { None })
            .collect()
    }

    fn release(&mut self, outcome: Result<(), String>) {
        for t in std::mem::take(&mut self.held) {
            self.s.handle_persisted(t, outcome.clone(), self.now);
        }
        self.drain();
    }

    fn command(&mut self, c: Command) -> RequestId {
        let r = self.next_request;
        self.next_request += 1;
        self.s.handle_command(r, c, self.now);
        self.drain();
        r
    }

    fn subscribe(&mut self) {
        self.s.handle_subscribed("fw-1".into(), self.now);
        self.drain();
    }

    fn advance(&mut self, d: Duration) {
        self.now = self.now.plus(d);
        self.s.handle_timeout(self.now);
        self.drain();
    }

    fn status(&mut self, task: &TaskId, state: TaskState, uuid: Option<u8>) {
        self.s.handle_status(
            StatusUpdate {
                task_id: task.to_string(),
                state,
                agent_id: Some("agent-1".into()),
                message: Some(format!("now {}", state.mesos_name())),
                reason: None,
                uuid: uuid.map(|b| vec![b; 16]),
                healthy: None,
            },
            self.now,
        );
        self.drain();
    }

    fn tasks(&self, app: &str) -> Vec<(TaskId, TaskState)> {
        let snap = self.s.snapshot();
        snap.app_instances(&AppId::parse(app).unwrap())
            .filter_map(|i| i.task.as_ref().map(|t| (t.id.clone(), t.state)))
            .collect()
    }

    /// Offers, then reports every launched task as RUNNING.
    fn launch_all(&mut self, offer_id: &str) -> Vec<TaskId> {
        self.s.handle_offers(vec![offer(offer_id, 8.0)], self.now);
        let launched: Vec<TaskId> = self
            .calls()
            .into_iter()
            .filter_map(|c| {
                if let MesosCall::Accept { launches, .. } = c { Some(launches) } else { None }
            })
            .flatten()
            .map(|l| l.task_id)
            .collect();
        for t in &launched {
            self.status(t, TaskState::Running, None);
        }
        self.take();
        launched
    }
}

fn accepts(calls: &[MesosCall]) -> Vec<&LaunchSpec> {
    calls
        .iter()
        .filter_map(
            |c| if let MesosCall::Accept { launches, .. } = c { Some(launches) } else { None },
        )
        .flatten()
        .collect()
}

fn kills(calls: &[MesosCall]) -> Vec<TaskId> {
    calls
        .iter()
        .filter_map(|c| {
            if let MesosCall::Kill { task_id, .. } = c { Some(task_id.clone()) } else { None }
        })
        .collect()
}

#[test]
fn framework_id_is_persisted_before_any_call() {
    let mut h = Harness::new();
    h.auto_persist = false;
    h.subscribe();
    h.s.handle_offers(vec![offer("o1", 4.0)], h.now);
    let seen = h.take();
    assert_eq!(
        seen,
        vec![Seen::Persist(vec![Write::FrameworkId("fw-1".into())])],
        "nothing but the id write"
    );
    h.release(Ok(()));
    let calls = h.calls();
    assert!(calls.contains(&MesosCall::Reconcile { tasks: vec![] }));
    assert!(
        calls.contains(&MesosCall::Decline {
            offer_ids: vec!["o1".into()],
            refuse: Duration::from_secs(120)
        }),
        "the deferred offer is declined once the id is stored: {calls:?}"
    );
    assert!(calls.contains(&MesosCall::Suppress));
}

#[test]
fn known_framework_id_is_not_rewritten() {
    let stored = StoredState { framework_id: Some("fw-1".into()), ..Default::default() };
    let mut h = Harness::with(CoreConfig::default(), stored);
    h.subscribe();
    assert!(h.take().iter().all(|s| !matches!(s, Seen::Persist(_))));
}

#[test]
fn create_app_replies_only_after_persisting() {
    let mut h = Harness::new();
    h.subscribe();
    h.take();
    h.auto_persist = false;
    let req = h.command(create(spec("/web", 3)));
    let seen = h.take();
    assert!(
        seen.iter().all(|s| !matches!(s, Seen::Reply(..))),
        "no reply before the persist: {seen:?}"
    );
    assert!(seen.contains(&Seen::Call(MesosCall::Revive)), "work appeared: {seen:?}");
    let Seen::Persist(writes) = &seen[0] else { panic!("{seen:?}") };
    assert!(matches!(&writes[0], Write::PutApp(a) if a.id.as_str() == "/web" && a.version == T0));
    assert!(
        writes.iter().any(|w| matches!(w, Write::PutDeployment(_))),
        "the intent is stored with the app"
    );
    let instances = seen
        .iter()
        .filter_map(|s| if let Seen::Persist(w) = s { Some(w) } else { None })
        .flatten()
        .filter(|w| matches!(w, Write::PutInstance(_)))
        .count();
    assert_eq!(instances, 3, "the deployment creates the instances");
    h.release(Ok(()));
    let seen = h.take();
    let reply = seen
        .iter()
        .find_map(|s| if let Seen::Reply(r, res) = s { Some((*r, res.clone())) } else { None });
    let (r, res) = reply.expect("a reply after the persist");
    assert_eq!(r, req);
    let Ok(Outcome::Deployed(deployed)) = res else { panic!("{res:?}") };
    assert!(deployed.created);
    assert_eq!(deployed.apps[0].version, T0);
}

#[test]
fn duplicate_create_is_refused_and_changes_nothing() {
    let mut h = Harness::new();
    h.command(create(spec("/web", 1)));
    h.take();
    let before = h.s.snapshot();
    let r = h.command(create(spec("/web", 5)));
    assert_eq!(
        h.take(),
        vec![Seen::Reply(r, Err(CommandError::AppExists(AppId::parse("/web").unwrap())))]
    );
    let after = h.s.snapshot();
    assert_eq!(before.apps, after.apps);
    assert_eq!(before.instances, after.instances);
}

#[test]
fn accept_is_sent_only_after_the_launch_is_persisted() {
    let mut h = Harness::new();
    h.subscribe();
    h.command(create(spec("/web", 3)));
    h.take();
    h.auto_persist = false;
    h.s.handle_offers(vec![offer("o1", 1.2), offer("o2", 8.0)], h.now);
    let seen = h.take();
    assert!(
        seen.iter().all(|s| !matches!(s, Seen::Call(MesosCall::Accept { .. }))),
        "ACCEPT before persist: {seen:?}"
    );
    let persisted: Vec<&Write> = seen
        .iter()
        .filter_map(|s| if let Seen::Persist(w) = s { Some(w) } else { None })
        .flatten()
        .collect();
    assert_eq!(persisted.len(), 3);
    assert!(persisted.iter().all(|w| matches!(w, Write::PutInstance(i) if i.task.as_ref().unwrap().state == TaskState::Staging)));
    h.release(Ok(()));
    let calls = h.calls();
    let launched = accepts(&calls);
    assert_eq!(launched.len(), 3);
    // 0.51 cpus each (task + executor): two fit in o1's 1.2, one in o2.
    let per_offer: Vec<&str> = calls
        .iter()
        .filter_map(|c| {
            if let MesosCall::Accept { offer_id, .. } = c { Some(offer_id.as_str()) } else { None }
        })
        .collect();
    assert_eq!(per_offer, vec!["o1", "o2"]);
    assert!(launched.iter().all(|l| l.task_id.as_str().ends_with("._app.1")));
    assert_eq!(launched[0].env["MESOS_TASK_ID"], launched[0].task_id.as_str());
    assert_eq!(launched[0].env["MARATHON_APP_ID"], "/web");
}

#[test]
fn persist_failure_of_a_launch_reloads_and_never_accepts() {
    let mut h = Harness::new();
    h.subscribe();
    h.command(create(spec("/web", 1)));
    h.take();
    h.auto_persist = false;
    h.s.handle_offers(vec![offer("o1", 8.0)], h.now);
    h.take();
    h.release(Err("etcd unavailable".into()));
    let seen = h.take();
    assert!(seen.contains(&Seen::Reload));
    assert!(seen.iter().all(|s| !matches!(s, Seen::Call(MesosCall::Accept { .. }))));
}

#[test]
fn failed_command_write_answers_unavailable() {
    let mut h = Harness::new();
    h.auto_persist = false;
    let r = h.command(create(spec("/web", 1)));
    h.release(Err("disk full".into()));
    let seen = h.take();
    assert!(seen.contains(&Seen::Reply(r, Err(CommandError::Unavailable("disk full".into())))));
    assert!(seen.contains(&Seen::Reload));
}

#[test]
fn status_updates_are_acknowledged_after_they_are_persisted() {
    let mut h = Harness::new();
    h.subscribe();
    h.command(create(spec("/web", 1)));
    h.s.handle_offers(vec![offer("o1", 8.0)], h.now);
    let task = accepts(&h.calls())[0].task_id.clone();
    h.auto_persist = false;
    h.status(&task, TaskState::Running, Some(7));
    let seen = h.take();
    assert!(seen.iter().all(|s| matches!(s, Seen::Persist(_))), "only persists: {seen:?}");
    h.release(Ok(()));
    assert_eq!(
        h.calls(),
        vec![MesosCall::Acknowledge {
            agent_id: "agent-1".into(),
            task_id: task.to_string(),
            uuid: vec![7; 16]
        }]
    );
    // A duplicate changes nothing but is still acknowledged.
    h.auto_persist = true;
    h.s.handle_status(
        StatusUpdate {
            task_id: task.to_string(),
            state: TaskState::Running,
            agent_id: Some("agent-1".into()),
            message: Some("now TASK_RUNNING".into()),
            reason: None,
            uuid: Some(vec![8; 16]),
            healthy: None,
        },
        h.now,
    );
    let seen = h.take();
    assert_eq!(
        seen,
        vec![Seen::Call(MesosCall::Acknowledge {
            agent_id: "agent-1".into(),
            task_id: task.to_string(),
            uuid: vec![8; 16]
        })]
    );
    assert_eq!(h.tasks("/web"), vec![(task, TaskState::Running)]);
}

#[test]
fn reconciliation_updates_without_uuid_are_not_acknowledged() {
    let mut h = Harness::new();
    h.subscribe();
    h.command(create(spec("/web", 1)));
    let tasks = h.launch_all("o1");
    h.status(&tasks[0], TaskState::Running, None);
    assert!(h.calls().iter().all(|c| !matches!(c, MesosCall::Acknowledge { .. })));
}

#[test]
fn a_failed_task_is_replaced_after_its_backoff() {
    let mut h = Harness::new();
    h.subscribe();
    h.command(create(spec("/crash", 1)));
    let first = h.launch_all("o1")[0].clone();
    h.status(&first, TaskState::Failed, Some(1));
    let snap = h.s.snapshot();
    let app = AppId::parse("/crash").unwrap();
    assert_eq!(snap.delays[&app].failures, 1);
    assert_eq!(snap.last_failures[&app].task_id, first);
    h.take();
    // Within the 1 s backoff an offer is declined.
    h.s.handle_offers(vec![offer("o2", 8.0)], h.now);
    assert!(accepts(&h.calls()).is_empty());
    h.advance(Duration::from_secs(1));
    assert!(h.calls().contains(&MesosCall::Revive) || h.s.snapshot().subscribed);
    let second = h.launch_all("o3");
    assert_eq!(second.len(), 1);
    assert!(
        second[0].as_str().ends_with("._app.2"),
        "same instance, next incarnation: {}",
        second[0]
    );
    assert_eq!(second[0].parse().unwrap().0, first.parse().unwrap().0);
}

#[test]
fn finished_and_lost_tasks_are_replaced_too() {
    for end in [
        TaskState::Finished,
        TaskState::Lost,
        TaskState::Gone,
        TaskState::Unreachable,
        TaskState::Dropped,
    ] {
        let mut h = Harness::new();
        h.subscribe();
        h.command(create(spec("/w", 1)));
        let t = h.launch_all("o1")[0].clone();
        h.status(&t, end, Some(1));
        h.advance(Duration::from_secs(5));
        let next = h.launch_all("o2");
        assert_eq!(next.len(), 1, "{end:?} not replaced");
        assert!(next[0].as_str().ends_with("._app.2"));
    }
}

#[test]
fn scale_down_kills_the_youngest_and_forgets_them_once_dead() {
    let mut h = Harness::new();
    h.subscribe();
    h.command(create(spec("/web", 3)));
    h.s.handle_offers(vec![offer("o1", 8.0)], h.now);
    let launched: Vec<TaskId> = accepts(&h.calls()).iter().map(|l| l.task_id.clone()).collect();
    for (i, t) in launched.iter().enumerate() {
        h.now = h.now.plus(Duration::from_secs(i as u64 + 1));
        h.status(t, TaskState::Running, None);
    }
    h.take();
    let mut s = spec("/web", 1);
    s.instances = 1;
    h.command(put(s));
    let killed = kills(&h.calls());
    assert_eq!(killed, vec![launched[2].clone(), launched[1].clone()], "youngest first");
    for t in &killed {
        h.status(t, TaskState::Killed, Some(3));
    }
    assert_eq!(h.tasks("/web"), vec![(launched[0].clone(), TaskState::Running)]);
    assert!(h.s.snapshot().deployments.is_empty(), "scale deployment finished");
}

#[test]
fn scale_up_keeps_running_tasks() {
    let mut h = Harness::new();
    h.subscribe();
    h.command(create(spec("/web", 1)));
    let first = h.launch_all("o1");
    h.command(put(spec("/web", 2)));
    assert!(kills(&h.calls()).is_empty());
    let more = h.launch_all("o2");
    assert_eq!(more.len(), 1);
    assert_eq!(h.tasks("/web").len(), 2);
    assert!(h.tasks("/web").iter().any(|(t, _)| *t == first[0]));
}

#[test]
fn config_change_replaces_every_task() {
    let mut h = Harness::new();
    h.subscribe();
    h.command(create(spec("/web", 2)));
    let old = h.launch_all("o1");
    let mut changed = spec("/web", 2);
    changed.command = Some(CommandSpec::Shell("sleep 700".into()));
    h.command(put(changed));
    // The default strategy {1, 1}: new instances first, old ones stay.
    assert!(kills(&h.calls()).is_empty());
    h.s.handle_offers(vec![offer("o2", 8.0)], h.now);
    let new: Vec<TaskId> = accepts(&h.calls()).iter().map(|l| l.task_id.clone()).collect();
    assert_eq!(new.len(), 2);
    assert!(new.iter().all(|t| !old.contains(t)));
    // Each new instance that serves lets one old instance go.
    h.status(&new[0], TaskState::Running, None);
    let mut killed = kills(&h.calls());
    assert_eq!(killed.len(), 1);
    h.status(&new[1], TaskState::Running, None);
    killed.extend(kills(&h.calls()));
    killed.sort();
    let mut want = old.clone();
    want.sort();
    assert_eq!(killed, want);
    for t in &old {
        h.status(t, TaskState::Killed, Some(1));
    }
    assert_eq!(h.tasks("/web").len(), 2);
    assert!(h.s.snapshot().deployments.is_empty());
}

#[test]
fn delete_removes_the_app_at_once_and_instances_when_their_tasks_die() {
    let mut h = Harness::new();
    h.subscribe();
    h.command(create(spec("/web", 2)));
    let tasks = h.launch_all("o1");
    let r = h.command(delete(AppId::parse("/web").unwrap()));
    let seen = h.take();
    assert!(seen.iter().any(|s| matches!(s, Seen::Reply(x, Ok(d)) if *x == r && matches!(d, Outcome::Deployed(d) if d.apps.is_empty()))));
    assert_eq!(
        kills(
            &seen
                .iter()
                .filter_map(|s| if let Seen::Call(c) = s { Some(c.clone()) } else { None })
                .collect::<Vec<_>>()
        )
        .len(),
        2
    );
    assert!(h.s.snapshot().apps.is_empty());
    assert_eq!(h.s.snapshot().instances.len(), 2, "kept until their tasks end");
    for t in &tasks {
        h.status(t, TaskState::Killed, Some(2));
    }
    let snap = h.s.snapshot();
    assert!(snap.instances.is_empty());
    assert!(snap.deployments.is_empty());
    h.take();
    let r = h.command(delete(AppId::parse("/web").unwrap()));
    assert_eq!(
        h.take(),
        vec![Seen::Reply(r, Err(CommandError::AppNotFound(AppId::parse("/web").unwrap())))]
    );
}

#[test]
fn kills_are_retried_until_the_task_dies() {
    let mut h = Harness::new();
    h.subscribe();
    h.command(create(spec("/web", 1)));
    let t = h.launch_all("o1")[0].clone();
    h.command(delete(AppId::parse("/web").unwrap()));
    assert_eq!(kills(&h.calls()), vec![t.clone()]);
    h.advance(Duration::from_secs(5));
    assert!(kills(&h.calls()).is_empty());
    for _ in 0..10 {
        h.advance(Duration::from_secs(1));
    }
    assert_eq!(kills(&h.calls()), vec![t.clone()], "retried after kill_retry");
}

#[test]
fn a_kill_never_overtakes_its_accept() {
    let mut h = Harness::new();
    h.subscribe();
    h.command(create(spec("/web", 1)));
    h.take();
    h.auto_persist = false;
    h.s.handle_offers(vec![offer("o1", 8.0)], h.now);
    h.take();
    // Delete while the launch is still being persisted.
    h.auto_persist = true;
    h.command(delete(AppId::parse("/web").unwrap()));
    assert!(kills(&h.calls()).is_empty(), "no KILL before the ACCEPT");
    h.auto_persist = false;
    h.release(Ok(()));
    let calls = h.calls();
    assert_eq!(accepts(&calls).len(), 1);
    h.auto_persist = true;
    h.advance(Duration::from_secs(6));
    assert_eq!(kills(&h.calls()).len(), 1);
}

#[test]
fn staging_tasks_are_killed_after_the_launch_timeout() {
    let mut h = Harness::new();
    h.subscribe();
    h.command(create(spec("/web", 1)));
    h.s.handle_offers(vec![offer("o1", 8.0)], h.now);
    let t = accepts(&h.calls())[0].task_id.clone();
    h.advance(Duration::from_secs(299));
    assert!(kills(&h.calls()).is_empty());
    for _ in 0..6 {
        h.advance(Duration::from_secs(1));
    }
    assert_eq!(kills(&h.calls()), vec![t]);
}

#[test]
fn suppresses_when_idle_and_revives_when_work_appears_rate_limited() {
    let mut h = Harness::new();
    h.subscribe();
    let calls = h.calls();
    assert!(calls.contains(&MesosCall::Suppress));
    h.command(create(spec("/a", 1)));
    assert!(h.calls().contains(&MesosCall::Revive));
    h.command(create(spec("/b", 1)));
    assert!(!h.calls().contains(&MesosCall::Revive), "within min_revive_interval");
    h.advance(Duration::from_secs(5));
    assert!(h.calls().contains(&MesosCall::Revive), "deferred revive");
    h.launch_all("o1");
    h.advance(Duration::from_secs(1));
    assert!(
        h.calls().contains(&MesosCall::Suppress)
            || h.s.snapshot().instances.values().all(|i| !i.needs_launch())
    );
}

#[test]
fn offers_with_no_work_are_declined_with_refuse_seconds() {
    let mut h = Harness::new();
    h.subscribe();
    h.take();
    h.s.handle_offers(vec![offer("o1", 1.0)], h.now);
    assert_eq!(
        h.calls(),
        vec![MesosCall::Decline { offer_ids: vec!["o1".into()], refuse: Duration::from_secs(120) }]
    );
}

#[test]
fn offers_too_small_are_declined_and_reported() {
    let mut h = Harness::new();
    h.subscribe();
    h.command(create(spec("/big", 1)));
    h.take();
    h.s.handle_offers(vec![offer("o1", 0.1)], h.now);
    let calls = h.calls();
    assert!(calls.contains(&MesosCall::Decline {
        offer_ids: vec!["o1".into()],
        refuse: Duration::from_secs(120)
    }));
    let q = &h.s.snapshot().queue[&AppId::parse("/big").unwrap()];
    assert_eq!(q.rejected[&placement::Reason::InsufficientCpus], 1);
    assert_eq!((q.processed_offers, q.unused_offers), (1, 1));
}

#[test]
fn stats_count_launches_declines_and_deployment_outcomes() {
    let mut h = Harness::new();
    h.subscribe();
    h.s.handle_offers(vec![offer("idle", 1.0)], h.now);
    h.command(create(spec("/web", 2)));
    assert_eq!(h.launch_all("o1").len(), 2);
    let mut big = spec("/big", 1);
    big.resources.cpus = 100.0;
    h.command(create(big));
    h.s.handle_offers(vec![offer("small-1", 1.0), offer("small-2", 1.0)], h.now);
    let mut stuck = spec("/stuck", 1);
    stuck.resources.cpus = 100.0;
    stuck.progress_deadline = Duration::from_secs(5);
    stuck.rollback_on_failure = false;
    h.command(create(stuck));
    h.advance(Duration::from_secs(1));
    h.advance(Duration::from_secs(6));
    let big_deployment =
        h.s.snapshot().deployments_of(&AppId::parse("/big").unwrap()).next().unwrap().id.clone();
    h.command(Command::CancelDeployment { id: big_deployment, force: true });
    let stats = h.s.snapshot().stats;
    assert_eq!(stats.tasks_launched, 2);
    assert_eq!(
        stats.offers_declined,
        BTreeMap::from([(DECLINED_NO_DEMAND, 1), ("InsufficientCpus", 2)])
    );
    assert_eq!(stats.deployments, BTreeMap::from([("canceled", 1), ("failed", 1), ("success", 1)]));
}

#[test]
fn resubscription_reconciles_explicitly_then_implicitly() {
    let mut h = Harness::new();
    h.subscribe();
    h.command(create(spec("/web", 2)));
    let tasks = h.launch_all("o1");
    h.s.handle_disconnected();
    h.s.handle_subscribed("fw-1".into(), h.now);
    let calls = h.calls();
    let Some(MesosCall::Reconcile { tasks: asked }) =
        calls.iter().find(|c| matches!(c, MesosCall::Reconcile { .. }))
    else {
        panic!("{calls:?}")
    };
    let mut asked: Vec<String> = asked
        .iter()
        .map(|(t, a)| {
            assert_eq!(a.as_deref(), Some("agent-1"));
            t.clone()
        })
        .collect();
    asked.sort();
    let mut want: Vec<String> = tasks.iter().map(|t| t.to_string()).collect();
    want.sort();
    assert_eq!(asked, want);
    // One answer: no implicit round yet. Retry after the timeout.
    h.status(&tasks[0], TaskState::Running, None);
    assert!(!h.calls().contains(&MesosCall::Reconcile { tasks: vec![] }));
    h.advance(Duration::from_secs(5));
    let calls = h.calls();
    assert!(
        calls.contains(&MesosCall::Reconcile {
            tasks: vec![(tasks[1].to_string(), Some("agent-1".into()))]
        }),
        "{calls:?}"
    );
    h.status(&tasks[1], TaskState::Running, None);
    assert!(
        h.calls().contains(&MesosCall::Reconcile { tasks: vec![] }),
        "implicit after all answered"
    );
}

#[test]
fn unknown_tasks_are_reported_not_killed() {
    let mut h = Harness::new();
    h.subscribe();
    h.take();
    let stranger = TaskId::from_raw("other.instance-x._app.1");
    h.status(&stranger, TaskState::Running, Some(5));
    let calls = h.calls();
    assert!(kills(&calls).is_empty());
    assert!(calls.iter().any(|c| matches!(c, MesosCall::Acknowledge { .. })));
    assert!(h.s.snapshot().unknown_tasks.contains_key(stranger.as_str()));
    h.status(&stranger, TaskState::Killed, None);
    assert!(h.s.snapshot().unknown_tasks.is_empty());
}

#[test]
fn calls_are_not_sent_while_disconnected() {
    let mut h = Harness::new();
    h.subscribe();
    h.command(create(spec("/web", 1)));
    h.launch_all("o1");
    h.s.handle_disconnected();
    h.command(put(spec("/web", 0)));
    assert!(h.calls().is_empty());
    h.s.handle_offers(vec![offer("o9", 8.0)], h.now);
    assert!(h.calls().is_empty(), "offers of a lost subscription are ignored");
}

#[test]
fn recovery_from_stored_state_resumes_instances() {
    let mut h = Harness::new();
    h.subscribe();
    h.command(create(spec("/web", 2)));
    h.launch_all("o1");
    let snap = h.s.snapshot();
    let stored = StoredState {
        framework_id: snap.framework_id.clone(),
        apps: snap.apps.values().cloned().collect(),
        instances: snap.instances.values().cloned().collect(),
        versions: snap.versions.values().flat_map(|v| v.values().cloned()).collect(),
        deployments: snap.deployments.values().cloned().collect(),
        ..Default::default()
    };
    let mut h2 = Harness::with(CoreConfig::default(), stored);
    h2.subscribe();
    let calls = h2.calls();
    assert!(matches!(&calls[0], MesosCall::Reconcile { tasks } if tasks.len() == 2), "{calls:?}");
    h2.s.handle_offers(vec![offer("o2", 8.0)], h2.now);
    assert!(accepts(&h2.calls()).is_empty(), "nothing relaunched that is running");
}

#[test]
fn same_seed_same_decisions() {
    let run = || {
        let mut h = Harness::new();
        h.subscribe();
        h.command(create(spec("/web", 3)));
        h.launch_all("o1");
        h.take();
        h.s.snapshot().instances.keys().cloned().collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

fn with_port(mut s: AppSpec, port: u32) -> AppSpec {
    s.port_definitions = vec![crate::app::PortDefinition {
        port,
        protocol: "tcp".into(),
        name: Some("http".into()),
        labels: BTreeMap::new(),
    }];
    s
}

#[test]
fn service_ports_are_assigned_unique_in_range() {
    let mut h = Harness::new();
    h.command(create(with_port(spec("/a", 1), 0)));
    h.command(create(with_port(spec("/b", 1), 10000)));
    h.command(create(with_port(spec("/c", 1), 0)));
    let snap = h.s.snapshot();
    let port = |id: &str| snap.apps[&AppId::parse(id).unwrap()].port_definitions[0].port;
    assert_eq!(port("/a"), 10000);
    assert_eq!(port("/b"), 10000, "an explicit service port is kept");
    assert_eq!(port("/c"), 10001);
    // Updating an app keeps its own port available to itself.
    h.command(put(with_port(spec("/c", 2), 10001)));
    assert_eq!(h.s.snapshot().apps[&AppId::parse("/c").unwrap()].port_definitions[0].port, 10001);
}

#[test]
fn launches_get_host_ports_and_port_env() {
    let mut h = Harness::new();
    h.subscribe();
    h.command(create(with_port(spec("/web", 2), 0)));
    h.s.handle_offers(vec![offer("o1", 8.0)], h.now);
    let calls = h.calls();
    let launches = accepts(&calls);
    assert_eq!(launches[0].host_ports, vec![31000]);
    assert_eq!(launches[1].host_ports, vec![31001]);
    assert_eq!(launches[1].env["PORT0"], "31001");
    assert_eq!(launches[1].env["PORT_HTTP"], "31001");
    assert_eq!(launches[1].env["HOST"], "127.0.0.1");
    let tasks = h.s.snapshot();
    assert!(tasks.instances.values().all(|i| i.task.as_ref().unwrap().host_ports.len() == 1));
}

#[test]
fn launches_carry_secret_env_vars_by_reference_only() {
    let mut h = Harness::new();
    h.subscribe();
    let mut app = spec("/db-client", 1);
    app.env.insert("PLAIN".into(), "1".into());
    app.secrets.insert("db".into(), "prod-db-password".into());
    app.secret_env.insert("DB_PASSWORD".into(), "db".into());
    h.command(create(app));
    h.s.handle_offers(vec![offer("o1", 8.0)], h.now);
    let calls = h.calls();
    let launches = accepts(&calls);
    let l = launches[0];
    assert_eq!(l.env["PLAIN"], "1");
    assert!(!l.env.contains_key("DB_PASSWORD"), "the core never has a secret's value");
    assert_eq!(
        l.secret_env,
        BTreeMap::from([(
            "DB_PASSWORD".to_owned(),
            crate::app::SecretRef { name: "db".into(), source: "prod-db-password".into() }
        )])
    );
}

#[test]
fn health_results_are_recorded_and_gate_the_deployment() {
    let mut h = Harness::new();
    h.subscribe();
    let mut s = with_port(spec("/web", 1), 0);
    s.health_checks = vec![crate::app::HealthCheckSpec {
        protocol: crate::app::HealthProtocol::Http,
        protocol_name: "HTTP".into(),
        path: "/".into(),
        port_index: Some(0),
        port: None,
        command: None,
        grace_period: Duration::from_secs(1),
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        max_consecutive_failures: 3,
        delay: Duration::from_secs(0),
        ignore_http1xx: false,
    }];
    h.command(create(s));
    h.s.handle_offers(vec![offer("o1", 8.0)], h.now);
    let launch = accepts(&h.calls())[0].clone();
    assert_eq!(launch.health_checks[0].port, Some(launch.host_ports[0]), "port index resolved");
    h.status(&launch.task_id, TaskState::Running, Some(1));
    assert_eq!(h.s.snapshot().deployments.len(), 1, "running but not yet healthy");
    let healthy = |h: &mut Harness, ok: bool, b: u8| {
        h.s.handle_status(
            StatusUpdate {
                task_id: launch.task_id.to_string(),
                state: TaskState::Running,
                agent_id: Some("agent-1".into()),
                message: Some(if ok { "ok".into() } else { "HTTP 500".into() }),
                reason: Some("REASON_TASK_HEALTH_CHECK_STATUS_UPDATED".into()),
                uuid: Some(vec![b; 16]),
                healthy: Some(ok),
            },
            h.now,
        );
        h.drain();
    };
    healthy(&mut h, true, 2);
    let snap = h.s.snapshot();
    assert!(snap.deployments.is_empty(), "healthy: the deployment is done");
    let health =
        snap.instances.values().next().unwrap().task.as_ref().unwrap().health.clone().unwrap();
    assert!(health.alive);
    assert_eq!(health.first_success, Some(h.now));
    h.now = h.now.plus(Duration::from_secs(3));
    healthy(&mut h, false, 3);
    let health =
        h.s.snapshot().instances.values().next().unwrap().task.clone().unwrap().health.unwrap();
    assert!(!health.alive);
    assert_eq!(health.consecutive_failures, 1);
    assert_eq!(health.last_failure_cause.as_deref(), Some("HTTP 500"));
    assert_eq!(health.first_success, Some(h.now.minus(Duration::from_secs(3))));
}

// ----- placement: constraints and roles through the scheduler -----

fn agent_offer(id: &str, host: &str, rack: &str) -> Offer {
    let facts = crate::offer::AgentFacts::default()
        .with_attribute("rack", crate::offer::AttributeValue::Text(rack.into()));
    offer(id, 8.0).with_facts(facts).tap_host(host)
}

trait TapHost {
    fn tap_host(self, host: &str) -> Self;
}

impl TapHost for Offer {
    fn tap_host(mut self, host: &str) -> Self {
        self.hostname = host.into();
        self.agent_id = format!("agent-{host}");
        self
    }
}

#[test]
fn unique_constraints_count_instances_launched_in_earlier_rounds() {
    let mut h = Harness::new();
    h.subscribe();
    let mut web = spec("/web", 3);
    web.placement.constraints =
        vec![crate::constraints::Constraint::parse("rack", "UNIQUE", None).unwrap()];
    h.command(create(web));
    h.take();
    h.s.handle_offers(vec![agent_offer("o1", "h1", "r1")], h.now);
    let calls = h.calls();
    let launched = accepts(&calls);
    assert_eq!(launched.len(), 1, "one per rack: {calls:?}");
    assert_eq!(launched[0].task_roles[0].resources.cpus, 0.5);
    assert_eq!(launched[0].task_roles[0].role, "*");
    assert_eq!(launched[0].executor_roles[0].role, "*");
    // A later round: another agent on the same rack is refused, with a reason.
    h.s.handle_offers(vec![agent_offer("o2", "h2", "r1"), agent_offer("o3", "h3", "r2")], h.now);
    let calls = h.calls();
    let hosts: Vec<&str> = accepts(&calls).iter().map(|l| l.hostname.as_str()).collect();
    assert_eq!(hosts, vec!["h3"]);
    let q = &h.s.snapshot().queue[&AppId::parse("/web").unwrap()];
    assert_eq!(q.rejected[&placement::Reason::UnfulfilledConstraint], 1);
    let snap = h.s.snapshot();
    let mut racks: Vec<String> = snap
        .app_instances(&AppId::parse("/web").unwrap())
        .filter_map(|i| i.task.as_ref())
        .map(|t| t.facts.attributes["rack"].text().to_owned())
        .collect();
    racks.sort();
    assert_eq!(racks, ["r1", "r2"], "tasks keep their agent's attributes");
}

#[test]
fn offers_without_an_accepted_role_are_unfulfilled_role() {
    let mut h = Harness::new();
    h.subscribe();
    h.command(create(spec("/web", 1)));
    h.take();
    let reserved = Offer::new("o1", "agent-1", "h1").with_resources(
        "prod",
        Resources { cpus: 8.0, mem: 4096.0, disk: 0.0, gpus: 0 },
        crate::ports::PortRanges::new([(31000, 32000)]),
    );
    h.s.handle_offers(vec![reserved], h.now);
    assert!(accepts(&h.calls()).is_empty());
    let q = &h.s.snapshot().queue[&AppId::parse("/web").unwrap()];
    assert_eq!(q.rejected[&placement::Reason::UnfulfilledRole], 1);
}

#[test]
fn apps_without_a_deployment_are_kept_at_their_instance_count() {
    let mut h = Harness::new();
    h.subscribe();
    h.command(create(spec("/web", 2)));
    h.launch_all("o1");
    assert!(h.s.snapshot().deployments.is_empty());
    // The store lost an instance record (as after a failover): the next
    // scan creates a replacement.
    let stored = StoredState {
        framework_id: h.s.snapshot().framework_id.clone(),
        apps: h.s.snapshot().apps.values().cloned().collect(),
        versions: vec![],
        instances: h.s.snapshot().instances.values().take(1).cloned().collect(),
        deployments: vec![],
        ..Default::default()
    };
    let mut h2 = Harness::with(CoreConfig::default(), stored);
    h2.subscribe();
    h2.advance(Duration::from_secs(1));
    let snap = h2.s.snapshot();
    assert_eq!(snap.app_instances(&AppId::parse("/web").unwrap()).count(), 2);
    assert_eq!(snap.instances.values().filter(|i| i.needs_launch()).count(), 1);
}

fn health_check() -> crate::app::HealthCheckSpec {
    crate::app::HealthCheckSpec {
        protocol: crate::app::HealthProtocol::Http,
        protocol_name: "HTTP".into(),
        path: "/".into(),
        port_index: Some(0),
        port: None,
        command: None,
        grace_period: Duration::from_secs(1),
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        max_consecutive_failures: 0,
        delay: Duration::from_secs(0),
        ignore_http1xx: false,
    }
}

#[test]
fn a_stalled_deployment_fails_after_its_deadline_and_rolls_back() {
    let mut h = Harness::new();
    h.subscribe();
    let mut v1 = with_port(spec("/web", 2), 0);
    v1.health_checks = vec![health_check()];
    v1.progress_deadline = Duration::from_secs(12);
    h.command(create(v1.clone()));
    h.s.handle_offers(vec![offer("o1", 8.0)], h.now);
    let old: Vec<TaskId> = accepts(&h.calls()).iter().map(|l| l.task_id.clone()).collect();
    for t in &old {
        h.status(t, TaskState::Running, None);
        h.s.handle_status(
            StatusUpdate {
                task_id: t.to_string(),
                state: TaskState::Running,
                agent_id: Some("agent-1".into()),
                message: None,
                reason: None,
                uuid: None,
                healthy: Some(true),
            },
            h.now,
        );
    }
    h.take();
    assert!(h.s.snapshot().deployments.is_empty());
    let mut v2 = h.s.snapshot().apps[&AppId::parse("/web").unwrap()].clone();
    v2.command = Some(CommandSpec::Shell("broken".into()));
    h.command(put(v2));
    h.s.handle_offers(vec![offer("o2", 8.0)], h.now);
    let new: Vec<TaskId> = accepts(&h.calls()).iter().map(|l| l.task_id.clone()).collect();
    assert_eq!(new.len(), 2);
    for t in &new {
        h.status(t, TaskState::Running, None);
    }
    let mut events = Vec::new();
    for _ in 0..15 {
        h.now = h.now.plus(Duration::from_secs(1));
        h.s.handle_timeout(h.now);
        while let Some(e) = h.s.poll_effect() {
            match e {
                Effect::Persist { token, .. } => h.s.handle_persisted(token, Ok(()), h.now),
                Effect::Notify(n) => events.push(n),
                Effect::Call(c) => h.log.push(Seen::Call(c)),
                _ => {}
            }
        }
    }
    assert!(
        events.iter().any(|n| matches!(n, Notification::DeploymentFailed { reason, .. } if reason.contains("progress deadline"))),
        "{events:?}"
    );
    let snap = h.s.snapshot();
    let app = &snap.apps[&AppId::parse("/web").unwrap()];
    assert_eq!(app.command, v1.command, "rolled back to v1");
    let mut killed = kills(&h.calls());
    killed.sort();
    let mut want = new.clone();
    want.sort();
    assert_eq!(killed, want, "the new version's tasks are killed, the old ones stay");
}

mod jobs;
