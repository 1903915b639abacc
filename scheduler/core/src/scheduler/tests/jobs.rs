//! Jobs through the scheduler: firing, attempts, retries, dependencies,
//! concurrency, deadlines and failover, on a virtual clock.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;
use crate::job::{ConcurrencyPolicy, JobName, JobSpec, RetryPolicy, RunStatus, Trigger};
use crate::schedule::Schedule;

const MIN: Duration = Duration::from_secs(60);

fn name(n: &str) -> JobName {
    JobName::parse(n).unwrap()
}

/// A job due every minute from `T0 + 60s`.
fn job(n: &str) -> JobSpec {
    let start = crate::format_version(T0.plus(MIN));
    JobSpec {
        name: name(n),
        command: "true".into(),
        shell: true,
        arguments: Vec::new(),
        schedule: Some(Schedule::parse_iso8601(&format!("R/{start}/PT1M"), None, T0).unwrap()),
        parents: BTreeSet::new(),
        disabled: false,
        concurrency: ConcurrencyPolicy::Forbid,
        soft_error: false,
        retry: RetryPolicy::default(),
        starting_deadline: None,
        resources: Resources { cpus: 0.1, mem: 32.0, disk: 0.0, gpus: 0 },
        container: None,
        network: crate::app::NetworkMode::Host,
        env: BTreeMap::new(),
        placement: crate::app::PlacementSpec::default(),
        max_completion_time: None,
        owner: "ops@example.com".into(),
        owner_name: String::new(),
        description: String::new(),
        success_history_limit: 3,
        failure_history_limit: 3,
        version: Timestamp::EPOCH,
    }
}

fn dependent(n: &str, parents: &[&str]) -> JobSpec {
    JobSpec { schedule: None, parents: parents.iter().map(|p| name(p)).collect(), ..job(n) }
}

fn put_job(h: &mut Harness, spec: JobSpec) -> Result<Outcome, CommandError> {
    let r = h.command(Command::PutJob(Box::new(spec)));
    reply(h, r)
}

fn reply(h: &mut Harness, r: RequestId) -> Result<Outcome, CommandError> {
    h.take()
        .into_iter()
        .find_map(|s| if let Seen::Reply(id, res) = s { (id == r).then_some(res) } else { None })
        .expect("a reply")
}

fn stored(snap: &Snapshot) -> StoredState {
    StoredState {
        framework_id: snap.framework_id.clone(),
        apps: snap.apps.values().cloned().collect(),
        versions: snap.versions.values().flat_map(|v| v.values().cloned()).collect(),
        instances: snap.instances.values().cloned().collect(),
        deployments: snap.deployments.values().cloned().collect(),
        jobs: snap.jobs.values().cloned().collect(),
        job_states: snap.job_states.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        runs: snap.runs.values().flat_map(|r| r.values().cloned()).collect(),
    }
}

impl Harness {
    fn runs(&self, n: &str) -> Vec<JobRun> {
        self.s.snapshot().job_runs(&name(n)).into_iter().cloned().collect()
    }

    fn job_state(&self, n: &str) -> JobState {
        self.s.snapshot().job_states.get(&name(n)).cloned().unwrap_or_default()
    }

    /// Offers once and returns the launches.
    fn offer_launches(&mut self) -> Vec<LaunchSpec> {
        self.s.handle_offers(vec![offer("o", 8.0)], self.now);
        accepts(&self.calls()).into_iter().cloned().collect()
    }

    /// Launches what waits and reports every launched task in `end`.
    fn run_to(&mut self, end: TaskState) -> Vec<LaunchSpec> {
        let launches = self.offer_launches();
        for l in &launches {
            self.status(&l.task_id, TaskState::Running, None);
            self.status(&l.task_id, end, None);
        }
        self.take();
        launches
    }

    /// Advances in one-second ticks.
    fn tick_to(&mut self, t: Timestamp) {
        while self.now < t {
            let step = Duration::from_secs(1).min(t.since(self.now));
            self.advance(step);
        }
    }
}

/// A new leader at `now`, loading what `old` persisted (with its own seed,
/// as the daemon seeds each scheduler differently).
fn restarted(old: &Harness, now: Timestamp) -> Harness {
    let mut h = Harness::with(CoreConfig::default(), stored(&old.s.snapshot()));
    h.s = Scheduler::new(
        CoreConfig::default(),
        stored(&old.s.snapshot()),
        now.as_millis() as u64,
        now,
    );
    h.now = now;
    h.subscribe();
    h.take();
    h
}

fn subscribed() -> Harness {
    let mut h = Harness::new();
    h.subscribe();
    h.take();
    h
}

#[test]
fn a_due_job_fires_once_and_records_the_fire_with_the_run() {
    let mut h = subscribed();
    put_job(&mut h, job("nightly")).unwrap();
    h.tick_to(T0.plus(Duration::from_secs(59)));
    assert!(h.runs("nightly").is_empty(), "not due yet");
    h.advance(Duration::from_secs(1));
    let runs = h.runs("nightly");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].trigger, Trigger::Schedule(T0.plus(MIN)));
    assert_eq!(runs[0].status, RunStatus::Queued);
    assert_eq!(h.job_state("nightly").last_fired, Some(T0.plus(MIN)));
    // The fire, the run and its instance were written in one Persist.
    let mut h2 = subscribed();
    put_job(&mut h2, job("nightly")).unwrap();
    h2.tick_to(T0.plus(Duration::from_secs(59)));
    h2.now = h2.now.plus(Duration::from_secs(1));
    h2.s.handle_timeout(h2.now);
    let persists: Vec<Vec<Write>> = h2
        .take()
        .into_iter()
        .filter_map(|s| if let Seen::Persist(w) = s { Some(w) } else { None })
        .collect();
    let fired = persists
        .iter()
        .find(|w| w.iter().any(|w| matches!(w, Write::PutJobState(..))))
        .expect("a persist with the job state");
    assert!(fired.iter().any(|w| matches!(w, Write::PutRun(..))), "{fired:?}");
    assert!(fired.iter().any(|w| matches!(w, Write::PutInstance(..))), "{fired:?}");

    let launches = h.run_to(TaskState::Finished);
    assert_eq!(launches.len(), 1);
    let l = &launches[0];
    assert_eq!(l.app_id, name("nightly").run_app_id());
    assert_eq!(l.command, Some(CommandSpec::Shell("true".into())));
    assert_eq!(l.env.get("CHRONOS_JOB_NAME").map(String::as_str), Some("nightly"));
    assert_eq!(l.env.get("DROVER_JOB_RUN_ID"), Some(&runs[0].id));
    assert_eq!(
        l.env.get("DROVER_JOB_SCHEDULED_AT").map(String::as_str),
        Some("2023-11-14T22:14:20.000Z")
    );
    let run = &h.runs("nightly")[0];
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(run.task_ids, vec![l.task_id.to_string()]);
    assert!(run.started_at.is_some() && run.finished_at.is_some());
    let st = h.job_state("nightly");
    assert_eq!((st.success_count, st.error_count), (1, 0));
    assert!(h.s.snapshot().instances.is_empty(), "the attempt's instance is forgotten");
    // Next minute: the next run.
    h.tick_to(T0.plus(MIN * 2));
    assert_eq!(h.runs("nightly").len(), 2);
}

#[test]
fn failed_attempts_retry_after_backoff_then_fail() {
    let mut h = subscribed();
    let spec = JobSpec {
        retry: RetryPolicy {
            retries: 2,
            backoff: Duration::from_secs(30),
            ..RetryPolicy::default()
        },
        schedule: Some(Schedule::parse_iso8601("R1/2023-11-14T22:13:20Z/PT1H", None, T0).unwrap()),
        ..job("flaky")
    };
    put_job(&mut h, spec).unwrap();
    h.advance(Duration::from_secs(1));
    assert_eq!(h.run_to(TaskState::Failed).len(), 1);
    let run = &h.runs("flaky")[0];
    assert_eq!((run.status, run.attempts), (RunStatus::Queued, 1));
    assert_eq!(run.not_before, h.now.plus(Duration::from_secs(30)));
    assert!(h.offer_launches().is_empty(), "backoff: nothing to launch");
    h.tick_to(run.not_before);
    assert_eq!(h.run_to(TaskState::Failed).len(), 1, "the first retry");
    h.tick_to(h.now.plus(Duration::from_secs(30)));
    assert_eq!(h.run_to(TaskState::Error).len(), 1, "the second retry");
    let run = &h.runs("flaky")[0];
    assert_eq!((run.status, run.attempts, run.task_ids.len()), (RunStatus::Failed, 3, 3));
    let st = h.job_state("flaky");
    assert_eq!((st.success_count, st.error_count, st.errors_since_last_success), (0, 1, 1));
    assert!(st.exhausted, "R1 fired its one time");
    h.tick_to(h.now.plus(Duration::from_secs(7200)));
    assert_eq!(h.runs("flaky").len(), 1, "an exhausted schedule never fires again");
}

#[test]
fn dependents_run_once_all_their_parents_succeeded() {
    let mut h = subscribed();
    put_job(&mut h, job("a")).unwrap();
    put_job(&mut h, dependent("b", &["a"])).unwrap();
    put_job(&mut h, dependent("c", &["a", "b"])).unwrap();
    h.tick_to(T0.plus(MIN));
    let l = h.run_to(TaskState::Finished);
    assert_eq!(l[0].app_id, name("a").run_app_id());
    assert_eq!(h.runs("b").len(), 1, "b released by a");
    assert!(h.runs("c").is_empty(), "c waits for b");
    assert_eq!(h.job_state("c").parents_done, BTreeSet::from([name("a")]));
    assert_eq!(h.runs("b")[0].trigger, Trigger::Dependency);
    let l = h.run_to(TaskState::Finished);
    assert_eq!(l[0].app_id, name("b").run_app_id());
    assert_eq!(h.runs("c").len(), 1, "c released by a and b");
    assert!(h.job_state("c").parents_done.is_empty());
}

#[test]
fn a_final_failure_releases_dependents_only_with_soft_error() {
    for soft in [false, true] {
        let mut h = subscribed();
        let parent = JobSpec {
            soft_error: soft,
            retry: RetryPolicy { retries: 0, ..RetryPolicy::default() },
            ..job("a")
        };
        put_job(&mut h, parent).unwrap();
        put_job(&mut h, dependent("b", &["a"])).unwrap();
        h.tick_to(T0.plus(MIN));
        h.run_to(TaskState::Failed);
        assert_eq!(h.runs("a")[0].status, RunStatus::Failed);
        assert_eq!(h.runs("b").len(), usize::from(soft), "soft_error={soft}");
    }
}

#[test]
fn forbid_records_a_missed_run_and_replace_kills_the_active_one() {
    let mut h = subscribed();
    put_job(&mut h, job("long")).unwrap();
    h.tick_to(T0.plus(MIN));
    let l = h.offer_launches();
    h.status(&l[0].task_id, TaskState::Running, None);
    h.tick_to(T0.plus(MIN * 2));
    let runs = h.runs("long");
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].status, RunStatus::Running);
    assert_eq!(runs[1].status, RunStatus::Missed);
    assert!(runs[1].message.contains("still active"), "{}", runs[1].message);
    assert_eq!(h.job_state("long").missed_count, 1);

    let mut h = subscribed();
    put_job(&mut h, JobSpec { concurrency: ConcurrencyPolicy::Replace, ..job("long") }).unwrap();
    h.tick_to(T0.plus(MIN));
    let l = h.offer_launches();
    h.status(&l[0].task_id, TaskState::Running, None);
    h.take();
    h.tick_to(T0.plus(MIN * 2));
    let runs = h.runs("long");
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].status, RunStatus::Killed);
    assert_eq!(runs[1].status, RunStatus::Queued);
    h.status(&l[0].task_id, TaskState::Killed, None);
    assert_eq!(h.runs("long")[0].status, RunStatus::Killed, "stays killed, no retry");
    assert_eq!(h.run_to(TaskState::Finished).len(), 1, "the new run launches");

    let mut h = subscribed();
    put_job(&mut h, JobSpec { concurrency: ConcurrencyPolicy::Allow, ..job("long") }).unwrap();
    h.tick_to(T0.plus(MIN));
    let l = h.offer_launches();
    h.status(&l[0].task_id, TaskState::Running, None);
    h.tick_to(T0.plus(MIN * 2));
    assert_eq!(h.offer_launches().len(), 1, "runs side by side");
}

#[test]
fn a_restarted_scheduler_neither_repeats_nor_loses_runs() {
    let mut h = subscribed();
    put_job(&mut h, job("j")).unwrap();
    h.tick_to(T0.plus(MIN));
    assert_eq!(h.runs("j").len(), 1);
    let launched = h.offer_launches();
    h.status(&launched[0].task_id, TaskState::Running, None);
    // Failover 30 s later: the new leader loads the store.
    let mut h2 = restarted(&h, h.now.plus(Duration::from_secs(30)));
    h2.tick_to(h2.now.plus(Duration::from_secs(29)));
    assert_eq!(h2.runs("j").len(), 1, "the fired run is not repeated");
    h2.status(&launched[0].task_id, TaskState::Finished, None);
    h2.advance(Duration::from_secs(1));
    let runs = h2.runs("j");
    assert_eq!(runs.len(), 2, "the next is not lost");
    assert_eq!(runs[0].status, RunStatus::Succeeded, "the first run's task was known");
    assert_eq!(h2.offer_launches().len(), 1);
}

#[test]
fn missed_due_times_coalesce_into_one_run_or_miss_past_the_deadline() {
    let mut h = subscribed();
    put_job(&mut h, job("j")).unwrap();
    h.tick_to(T0.plus(MIN));
    h.run_to(TaskState::Finished);
    // Down for 5 minutes and 30 seconds.
    let mut h2 = restarted(&h, T0.plus(MIN * 6).plus(Duration::from_secs(30)));
    h2.advance(Duration::from_secs(1));
    let runs = h2.runs("j");
    assert_eq!(runs.len(), 2, "one run for five due times");
    assert_eq!(runs[1].trigger, Trigger::Schedule(T0.plus(MIN * 6)));
    assert_eq!(h2.job_state("j").missed_count, 4);

    let mut h = subscribed();
    put_job(&mut h, JobSpec { starting_deadline: Some(Duration::from_secs(20)), ..job("j") })
        .unwrap();
    let mut h2 = restarted(&h, T0.plus(MIN).plus(Duration::from_secs(25)));
    h2.advance(Duration::from_secs(1));
    let runs = h2.runs("j");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Missed);
    assert!(runs[0].message.contains("starting deadline of 20s"), "{}", runs[0].message);
    assert!(h2.offer_launches().is_empty());
}

#[test]
fn a_manual_run_appends_arguments_and_ignores_disabled() {
    let mut h = subscribed();
    let spec = JobSpec {
        shell: false,
        command: "/bin/echo".into(),
        arguments: vec!["a".into()],
        disabled: true,
        ..job("m")
    };
    put_job(&mut h, spec).unwrap();
    h.tick_to(T0.plus(MIN * 3));
    assert!(h.runs("m").is_empty(), "disabled: no scheduled run");
    let r = h.command(Command::RunJob { name: name("m"), arguments: vec!["b".into()] });
    assert_eq!(reply(&mut h, r), Ok(Outcome::Done));
    let l = h.run_to(TaskState::Finished);
    assert_eq!(
        l[0].command,
        Some(CommandSpec::Argv(vec!["/bin/echo".into(), "a".into(), "b".into()]))
    );
    let r = h.command(Command::RunJob { name: name("nope"), arguments: vec![] });
    assert_eq!(reply(&mut h, r), Err(CommandError::JobNotFound(name("nope"))));
}

#[test]
fn bad_dependencies_are_refused_and_change_nothing() {
    let mut h = subscribed();
    assert!(
        matches!(put_job(&mut h, dependent("b", &["a"])), Err(CommandError::Invalid(m)) if m.contains("does not exist"))
    );
    put_job(&mut h, job("a")).unwrap();
    put_job(&mut h, dependent("b", &["a"])).unwrap();
    put_job(&mut h, dependent("c", &["b"])).unwrap();
    let before = h.s.snapshot().jobs.clone();
    let cyclic = JobSpec { schedule: None, parents: BTreeSet::from([name("c")]), ..job("a") };
    assert!(
        matches!(put_job(&mut h, cyclic), Err(CommandError::Invalid(m)) if m.contains("cycle"))
    );
    assert!(matches!(put_job(&mut h, dependent("d", &["d"])), Err(CommandError::Invalid(_))));
    let both = JobSpec { parents: BTreeSet::from([name("a")]), ..job("e") };
    assert!(matches!(put_job(&mut h, both), Err(CommandError::Invalid(_))));
    assert_eq!(h.s.snapshot().jobs, before);
}

#[test]
fn deleting_a_job_reparents_its_children() {
    let mut h = subscribed();
    put_job(&mut h, job("a")).unwrap();
    put_job(&mut h, dependent("b", &["a"])).unwrap();
    put_job(&mut h, dependent("c", &["b"])).unwrap();
    let r = h.command(Command::DeleteJob(name("b")));
    assert_eq!(reply(&mut h, r), Ok(Outcome::Done));
    let snap = h.s.snapshot();
    assert_eq!(snap.jobs[&name("c")].parents, BTreeSet::from([name("a")]));
    // Deleting the scheduled root: its child inherits the schedule.
    let r = h.command(Command::DeleteJob(name("a")));
    reply(&mut h, r).unwrap();
    let snap = h.s.snapshot();
    let c = &snap.jobs[&name("c")];
    assert!(c.parents.is_empty());
    assert_eq!(c.schedule, job("a").schedule);
    h.tick_to(T0.plus(MIN));
    assert_eq!(h.runs("c").len(), 1, "c now runs on a's schedule");
}

#[test]
fn killing_a_job_ends_its_runs_without_retry() {
    let mut h = subscribed();
    put_job(&mut h, job("k")).unwrap();
    h.tick_to(T0.plus(MIN));
    let l = h.offer_launches();
    h.status(&l[0].task_id, TaskState::Running, None);
    let r = h.command(Command::KillJob(name("k")));
    let seen = h.take();
    assert!(seen.contains(&Seen::Reply(r, Ok(Outcome::Done))));
    let calls: Vec<MesosCall> = seen
        .into_iter()
        .filter_map(|s| if let Seen::Call(c) = s { Some(c) } else { None })
        .collect();
    assert_eq!(kills(&calls), vec![l[0].task_id.clone()]);
    h.status(&l[0].task_id, TaskState::Killed, None);
    assert_eq!(h.runs("k")[0].status, RunStatus::Killed);
    assert!(h.s.snapshot().instances.is_empty());
    assert!(h.offer_launches().is_empty(), "no retry");
}

#[test]
fn a_run_past_its_maximum_completion_time_is_killed_and_counts_as_failed() {
    let mut h = subscribed();
    let spec = JobSpec {
        max_completion_time: Some(Duration::from_secs(30)),
        retry: RetryPolicy { retries: 0, ..RetryPolicy::default() },
        ..job("slow")
    };
    put_job(&mut h, spec).unwrap();
    h.tick_to(T0.plus(MIN));
    let l = h.offer_launches();
    h.status(&l[0].task_id, TaskState::Running, None);
    h.take();
    let mut killed = Vec::new();
    for _ in 0..40 {
        h.advance(Duration::from_secs(1));
        killed.extend(kills(&h.calls()));
    }
    assert_eq!(killed, vec![l[0].task_id.clone()]);
    h.status(&l[0].task_id, TaskState::Killed, None);
    let run = &h.runs("slow")[0];
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(h.job_state("slow").error_count, 1);
}

#[test]
fn history_keeps_the_newest_runs_within_the_limits() {
    let mut h = subscribed();
    put_job(&mut h, JobSpec { success_history_limit: 2, ..job("h") }).unwrap();
    for k in 1..=5 {
        h.tick_to(T0.plus(MIN * k));
        h.run_to(TaskState::Finished);
    }
    let runs = h.runs("h");
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1].trigger, Trigger::Schedule(T0.plus(MIN * 5)));
    assert_eq!(h.job_state("h").success_count, 5);
}

#[test]
fn mark_success_releases_dependents() {
    let mut h = subscribed();
    put_job(&mut h, job("a")).unwrap();
    put_job(&mut h, dependent("b", &["a"])).unwrap();
    let r = h.command(Command::MarkJobSuccess(name("a")));
    assert_eq!(reply(&mut h, r), Ok(Outcome::Done));
    assert_eq!(h.runs("b").len(), 1);
    assert_eq!(h.job_state("a").last_result(), "success");
}

#[test]
fn instances_of_deleted_jobs_are_killed_and_forgotten() {
    let mut h = subscribed();
    put_job(&mut h, job("gone")).unwrap();
    h.tick_to(T0.plus(MIN));
    let l = h.offer_launches();
    h.status(&l[0].task_id, TaskState::Running, None);
    h.take();
    let r = h.command(Command::DeleteJob(name("gone")));
    let seen = h.take();
    assert!(seen.contains(&Seen::Reply(r, Ok(Outcome::Done))));
    h.status(&l[0].task_id, TaskState::Killed, None);
    assert!(h.s.snapshot().instances.is_empty());
    assert!(h.s.snapshot().runs.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Property: whatever the pauses and failovers, every due time up to now
    /// either started a run or is counted missed (coalesced, or skipped
    /// while the previous run was still active), and no due time appears
    /// in two runs.
    #[test]
    fn every_due_time_runs_once_or_counts_missed(
        steps in proptest::collection::vec((1u64..400, any::<bool>()), 1..25),
    ) {
        let mut h = subscribed();
        put_job(&mut h, JobSpec { success_history_limit: 10_000, ..job("p") }).unwrap();
        for (secs, failover) in steps {
            let target = h.now.plus(Duration::from_secs(secs));
            if failover {
                h = restarted(&h, target);
                h.advance(Duration::from_secs(1));
            } else {
                h.tick_to(target);
            }
            h.run_to(TaskState::Finished);
        }
        let runs = h.runs("p");
        let dues: Vec<Timestamp> = runs
            .iter()
            .filter_map(|r| if let Trigger::Schedule(t) = r.trigger { Some(t) } else { None })
            .collect();
        let distinct: BTreeSet<Timestamp> = dues.iter().copied().collect();
        prop_assert_eq!(distinct.len(), dues.len(), "a due time ran twice");
        let ran = runs
            .iter()
            .filter(|r| r.status != RunStatus::Missed && matches!(r.trigger, Trigger::Schedule(_)))
            .count();
        let due_so_far = (h.now.as_millis() - T0.plus(MIN).as_millis()).div_euclid(60_000) + 1;
        let st = h.job_state("p");
        prop_assert_eq!(ran as i64 + st.missed_count as i64, due_so_far.max(0));
    }
}

#[test]
fn a_past_start_runs_at_once_then_follows_the_period() {
    let mut h = subscribed();
    let spec = JobSpec {
        schedule: Some(
            Schedule::parse_iso8601("R/2014-03-08T20:00:00.000Z/PT2H", None, T0).unwrap(),
        ),
        ..job("old")
    };
    put_job(&mut h, spec).unwrap();
    h.advance(Duration::from_secs(1));
    let runs = h.runs("old");
    assert_eq!(runs.len(), 1, "Chronos 3: a start in the past runs at once");
    assert_eq!(
        h.job_state("old").missed_count,
        0,
        "due times before the job existed are not missed"
    );
    // T0 is 22:13:20Z; the next 2-hour mark from 20:00 is 22:00 + 2h = 00:00Z.
    let next = h.s.job_next_due(&name("old")).unwrap();
    assert_eq!(crate::format_version(next), "2023-11-15T00:00:00.000Z");
}

#[test]
fn cron_jobs_do_not_run_retroactively() {
    let mut h = subscribed();
    let spec =
        JobSpec { schedule: Some(Schedule::parse_cron("*/5 * * * *", None).unwrap()), ..job("c") };
    put_job(&mut h, spec).unwrap();
    h.advance(Duration::from_secs(1));
    assert!(h.runs("c").is_empty());
    // 22:13:20Z → next at 22:15:00Z.
    assert_eq!(
        crate::format_version(h.s.job_next_due(&name("c")).unwrap()),
        "2023-11-14T22:15:00.000Z"
    );
}

#[test]
fn a_diamond_runs_its_child_once_per_round() {
    // a → b, a → c, {b, c} → d: each round of a runs d exactly once.
    let mut h = subscribed();
    put_job(&mut h, job("a")).unwrap();
    put_job(&mut h, dependent("b", &["a"])).unwrap();
    put_job(&mut h, dependent("c", &["a"])).unwrap();
    put_job(&mut h, dependent("d", &["b", "c"])).unwrap();
    for round in 1..=2u32 {
        h.tick_to(T0.plus(MIN * round));
        assert_eq!(h.run_to(TaskState::Finished).len(), 1, "a");
        assert_eq!(h.run_to(TaskState::Finished).len(), 2, "b and c");
        assert_eq!(h.run_to(TaskState::Finished).len(), 1, "d once");
        assert!(h.offer_launches().is_empty(), "nothing more this round");
        for (n, want) in [("a", round), ("b", round), ("c", round), ("d", round)] {
            assert_eq!(h.job_state(n).success_count, u64::from(want), "{n} in round {round}");
        }
    }
}

#[test]
fn r5_runs_five_times_then_disables_the_job() {
    let mut h = subscribed();
    let start = crate::format_version(T0.plus(MIN));
    let spec = JobSpec {
        schedule: Some(Schedule::parse_iso8601(&format!("R5/{start}/PT1M"), None, T0).unwrap()),
        ..job("five")
    };
    put_job(&mut h, spec).unwrap();
    for k in 1..=7 {
        h.tick_to(T0.plus(MIN * k));
        h.run_to(TaskState::Finished);
    }
    assert_eq!(h.runs("five").len(), 3, "history keeps 3");
    let st = h.job_state("five");
    assert_eq!(st.success_count, 5);
    assert!(st.exhausted);
    assert_eq!(h.s.job_next_due(&name("five")), None);
}

#[test]
fn down_for_three_periods_coalesces_into_exactly_one_run() {
    let mut h = subscribed();
    put_job(&mut h, job("j")).unwrap();
    h.tick_to(T0.plus(MIN));
    h.run_to(TaskState::Finished);
    // Down from just after the first run until after the fourth due time.
    let mut h2 = restarted(&h, T0.plus(MIN * 4).plus(Duration::from_secs(10)));
    h2.advance(Duration::from_secs(1));
    let runs = h2.runs("j");
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1].trigger, Trigger::Schedule(T0.plus(MIN * 4)));
    assert_eq!(h2.job_state("j").missed_count, 2, "due at 2 and 3 minutes: coalesced");
    h2.tick_to(T0.plus(MIN * 5).minus(Duration::from_secs(1)));
    assert_eq!(h2.runs("j").len(), 2, "nothing more until the next due time");
}

#[test]
fn a_job_fires_at_its_due_time_not_at_the_next_tick() {
    let mut h = subscribed();
    put_job(&mut h, job("exact")).unwrap();
    // Play the daemon: sleep until poll_timeout, then handle it.
    let mut fired_at = None;
    for _ in 0..200 {
        let t = h.s.poll_timeout();
        h.now = t;
        h.s.handle_timeout(t);
        h.take();
        if !h.runs("exact").is_empty() {
            fired_at = Some(t);
            break;
        }
    }
    assert_eq!(fired_at, Some(T0.plus(MIN)));
    let stats = h.s.snapshot().stats;
    assert_eq!((stats.job_fires, stats.job_fire_lag_ms), (1, 0));
    assert_eq!(stats.job_fire_lag_buckets[0], 1, "lag ≤ 10 ms");
}
