//! Tests of deployment planning and of the rolling-upgrade rule, including
//! a simulated rollout under random start-up delays.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::app::{BackoffPolicy, CommandSpec, NetworkMode, Resources, UpgradeStrategy};
use crate::instance::{Health, Task};

fn app(id: &str, instances: u32, deps: &[&str]) -> AppSpec {
    AppSpec {
        id: AppId::parse(id).unwrap(),
        command: Some(CommandSpec::Shell("x".into())),
        container: None,
        network: NetworkMode::Host,
        port_definitions: vec![],
        require_ports: false,
        health_checks: vec![],
        instances,
        resources: Resources::default(),
        placement: crate::app::PlacementSpec::default(),
        env: BTreeMap::new(),
        secrets: BTreeMap::new(),
        secret_env: BTreeMap::new(),
        labels: BTreeMap::new(),
        backoff: BackoffPolicy::default(),
        kill_selection: KillSelection::YoungestFirst,
        upgrade: UpgradeStrategy::default(),
        dependencies: deps.iter().map(|d| AppId::parse(d).unwrap()).collect(),
        progress_deadline: Duration::from_secs(600),
        rollback_on_failure: true,
        kill_grace: None,
        version: Timestamp::from_secs(1),
        last_scaling_at: Timestamp::from_secs(1),
        last_config_change_at: Timestamp::from_secs(1),
    }
}

fn names(steps: &[Vec<StepAction>]) -> Vec<Vec<String>> {
    steps
        .iter()
        .map(|s| s.iter().map(|a| format!("{} {}", a.action.name(), a.app)).collect())
        .collect()
}

fn change(before: &[AppSpec], after: &[(&str, Option<AppSpec>)]) -> Vec<Vec<String>> {
    let original: BTreeMap<AppId, Option<AppSpec>> = after
        .iter()
        .map(|(id, _)| {
            let id = AppId::parse(id).unwrap();
            let b = before.iter().find(|a| a.id == id).cloned();
            (id, b)
        })
        .collect();
    let target: BTreeMap<AppId, Option<AppSpec>> =
        after.iter().map(|(id, a)| (AppId::parse(id).unwrap(), a.clone())).collect();
    names(&plan(&original, &target))
}

#[test]
fn starts_follow_dependencies_and_stops_go_in_reverse() {
    let db = app("/db", 1, &[]);
    let api = app("/api", 1, &["/db"]);
    let web = app("/web", 1, &["/api"]);
    assert_eq!(
        change(
            &[],
            &[("/web", Some(web.clone())), ("/db", Some(db.clone())), ("/api", Some(api.clone()))]
        ),
        vec![
            vec!["StartApplication /db"],
            vec!["StartApplication /api"],
            vec!["StartApplication /web"]
        ]
    );
    assert_eq!(
        change(
            &[db.clone(), api.clone(), web.clone()],
            &[("/db", None), ("/api", None), ("/web", None)]
        ),
        vec![
            vec!["StopApplication /web"],
            vec!["StopApplication /api"],
            vec!["StopApplication /db"]
        ]
    );
    let mut api2 = api.clone();
    api2.instances = 3;
    let mut db2 = db.clone();
    db2.command = Some(CommandSpec::Shell("y".into()));
    assert_eq!(
        change(&[db.clone(), api.clone()], &[("/api", Some(api2)), ("/db", Some(db2))]),
        vec![vec!["RestartApplication /db"], vec!["ScaleApplication /api"]]
    );
    let other = app("/other", 1, &[]);
    assert_eq!(
        change(&[], &[("/db", Some(db)), ("/other", Some(other))]),
        vec![vec!["StartApplication /db", "StartApplication /other"]]
    );
}

fn instance(app: &AppSpec, n: u32, ready: bool) -> Instance {
    let id = InstanceId::new(&app.id, &format!("u{n:04}"));
    let task = Task {
        id: id.task_id(1),
        agent_id: "a".into(),
        hostname: "h".into(),
        facts: Default::default(),
        executor_id: "e".into(),
        state: if ready { TaskState::Running } else { TaskState::Staging },
        staged_at: Timestamp::from_secs(i64::from(n)),
        started_at: ready.then(|| Timestamp::from_secs(i64::from(n))),
        updated_at: Timestamp::EPOCH,
        message: None,
        kill_sent_at: None,
        host_ports: vec![],
        health: Some(Health { alive: ready, ..Health::default() }),
    };
    Instance { task: Some(task), ..Instance::new(id, app.id.clone(), app.version) }
}

#[test]
fn new_app_starts_all_instances_and_is_done_when_they_serve() {
    let a = app("/a", 3, &[]);
    let r = rollout(&a, &[]);
    assert_eq!((r.start, r.kill.len(), r.done), (3, 0, false));
    let insts: Vec<Instance> = (0..3).map(|n| instance(&a, n, true)).collect();
    let pairs: Vec<(&Instance, bool)> = insts.iter().map(|i| (i, true)).collect();
    let r = rollout(&a, &pairs);
    assert_eq!((r.start, r.kill.len(), r.done), (0, 0, true));
}

#[test]
fn scale_down_kills_the_youngest_surplus() {
    let a = app("/a", 1, &[]);
    let insts: Vec<Instance> = (0..3).map(|n| instance(&a, n, true)).collect();
    let pairs: Vec<(&Instance, bool)> = insts.iter().map(|i| (i, true)).collect();
    let r = rollout(&a, &pairs);
    assert_eq!(r.kill, vec![insts[2].id.clone(), insts[1].id.clone()]);
    assert!(!r.done);
}

#[test]
fn half_capacity_without_surge_kills_half_first() {
    let mut a = app("/a", 4, &[]);
    a.upgrade = UpgradeStrategy { minimum_health_capacity: 0.5, maximum_over_capacity: 0.0 };
    let old: Vec<Instance> = (0..4).map(|n| instance(&a, n, true)).collect();
    let pairs: Vec<(&Instance, bool)> = old.iter().map(|i| (i, false)).collect();
    let r = rollout(&a, &pairs);
    assert_eq!(r.kill, vec![old[0].id.clone(), old[1].id.clone()], "the oldest two go");
    assert_eq!(r.start, 0, "the killed ones still run");
    // Once they are gone, two new ones start.
    let pairs: Vec<(&Instance, bool)> = old[2..].iter().map(|i| (i, false)).collect();
    let r = rollout(&a, &pairs);
    assert_eq!((r.start, r.kill.len()), (2, 0));
}

#[test]
fn full_capacity_with_surge_starts_everything_first() {
    let a = app("/a", 4, &[]);
    let old: Vec<Instance> = (0..4).map(|n| instance(&a, n, true)).collect();
    let pairs: Vec<(&Instance, bool)> = old.iter().map(|i| (i, false)).collect();
    let r = rollout(&a, &pairs);
    assert_eq!((r.start, r.kill.len()), (4, 0));
}

#[test]
fn no_surge_and_full_capacity_still_progresses_one_at_a_time() {
    let mut a = app("/a", 2, &[]);
    a.upgrade = UpgradeStrategy { minimum_health_capacity: 1.0, maximum_over_capacity: 0.0 };
    let old: Vec<Instance> = (0..2).map(|n| instance(&a, n, true)).collect();
    let pairs: Vec<(&Instance, bool)> = old.iter().map(|i| (i, false)).collect();
    let r = rollout(&a, &pairs);
    assert_eq!((r.start, r.kill.len()), (1, 0), "one extra instance beyond the strategy");
}

#[test]
fn unready_outdated_instances_go_at_once() {
    let a = app("/a", 2, &[]);
    let old = [instance(&a, 0, true), instance(&a, 1, false)];
    let pairs: Vec<(&Instance, bool)> = old.iter().map(|i| (i, false)).collect();
    let r = rollout(&a, &pairs);
    assert_eq!(r.kill, vec![old[1].id.clone()]);
}

/// A simulated instance for the rollout property: it becomes ready after
/// `ready_in` ticks, and once killed it dies after `ready_in` more.
#[derive(Clone)]
struct Sim {
    inst: Instance,
    current: bool,
    ready_in: u32,
}

fn strategy() -> impl Strategy<Value = (u32, f64, f64, Vec<u32>)> {
    (1u32..9, 0u32..=4, 0u32..=4, proptest::collection::vec(0u32..5, 40))
        .prop_map(|(n, mhc, moc, delays)| (n, f64::from(mhc) / 4.0, f64::from(moc) / 4.0, delays))
}

proptest! {
    /// Property: during a rolling restart, the serving instances never drop
    /// below `ceil(n × minimumHealthCapacity)`, the live instances never
    /// exceed `n + ceil(n × maximumOverCapacity)` (or one above the minimum
    /// when the strategy allows no room), and the rollout finishes.
    #[test]
    fn rolling_restart_keeps_capacity_bounds_and_converges((n, mhc, moc, delays) in strategy()) {
        let mut a = app("/a", n, &[]);
        a.upgrade = UpgradeStrategy { minimum_health_capacity: mhc, maximum_over_capacity: moc };
        let min_ready = (f64::from(n) * mhc - 1e-9).ceil() as u32;
        let max_total = (n + (f64::from(n) * moc - 1e-9).ceil() as u32).max(min_ready + 1);
        let mut sims: Vec<Sim> = (0..n).map(|k| Sim { inst: instance(&a, k, true), current: false, ready_in: 0 }).collect();
        let mut next = n;
        let mut delay = delays.iter().cycle();
        let mut finished = false;
        for _tick in 0..400 {
            let pairs: Vec<(&Instance, bool)> = sims.iter().map(|s| (&s.inst, s.current)).collect();
            let r = rollout(&a, &pairs);
            if r.done {
                finished = true;
                break;
            }
            for s in sims.iter_mut().filter(|s| r.kill.contains(&s.inst.id)) {
                s.inst.goal = Goal::Decommissioned;
                s.ready_in = *delay.next().unwrap_or(&1);
            }
            for _ in 0..r.start {
                sims.push(Sim { inst: instance(&a, next, false), current: true, ready_in: *delay.next().unwrap_or(&1) });
                next += 1;
            }
            let ready = sims.iter().filter(|s| s.inst.goal == Goal::Running && is_ready(&a, &s.inst)).count() as u32;
            prop_assert!(ready >= min_ready, "ready {ready} < {min_ready}");
            prop_assert!(sims.len() as u32 <= max_total, "{} running > {max_total}", sims.len());
            // Killed instances die after their delay.
            sims.retain_mut(|s| {
                if s.inst.goal != Goal::Decommissioned {
                    return true;
                }
                let alive = s.ready_in > 0;
                s.ready_in = s.ready_in.saturating_sub(1);
                alive
            });
            for s in &mut sims {
                if s.inst.goal == Goal::Running && !is_ready(&a, &s.inst) {
                    if s.ready_in == 0 {
                        let id = s.inst.id.clone();
                        let k = id.as_str().rsplit('u').next().and_then(|x| x.parse().ok()).unwrap_or(0);
                        s.inst = instance(&a, k, true);
                    } else {
                        s.ready_in -= 1;
                    }
                }
            }
        }
        prop_assert!(finished, "the rollout did not finish");
        prop_assert!(sims.iter().all(|s| s.current) && sims.len() as u32 == n);
    }
}
