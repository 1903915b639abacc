//! Job scheduling at 50,000 jobs: saving them, the cost of a tick when
//! nothing is due, and firing a minute in which 1,000 jobs come due at once
//! (each run persisted with its instance), then launching those runs; all
//! on a virtual clock. Then 20 s on the real clock, the daemon's way
//! (sleep until `poll_timeout`, handle it): 50,000 jobs with due times
//! spread 20 ms apart plus a burst of 1,000 due at the same instant, and
//! the firing lag (due time to the run's `Persist` being emitted) of every
//! run, as p50 / p99 / max.
//!
//! Run with `cargo bench -p sched-core --bench jobs` (a release build).
//! Persists are acknowledged at once, so the figures are the core's own
//! cost.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use drover_time::Timestamp;
use sched_core::app::{NetworkMode, PlacementSpec, Resources};
use sched_core::job::{ConcurrencyPolicy, JobName, JobSpec, RetryPolicy};
use sched_core::offer::Offer;
use sched_core::ports::PortRanges;
use sched_core::schedule::Schedule;
use sched_core::scheduler::{Command, CoreConfig, Effect, MesosCall, Scheduler, StoredState};

const JOBS: usize = 50_000;
/// Jobs that share one due minute: job `i` runs at minute `i % 50` of the hour.
const MINUTES: usize = 50;
/// 2026-01-01T00:00:00Z.
const T0: Timestamp = Timestamp::from_secs(1_767_225_600);

fn job(i: usize) -> JobSpec {
    let schedule = if i.is_multiple_of(2) {
        Schedule::parse_cron(&format!("{} * * * *", i % MINUTES), None).expect("cron")
    } else {
        let start = format!("2026-01-01T00:{:02}:00Z", i % MINUTES);
        Schedule::parse_iso8601(&format!("R/{start}/PT1H"), None, T0).expect("iso")
    };
    JobSpec {
        name: JobName::parse(&format!("job-{i:05}")).expect("name"),
        command: "true".into(),
        shell: true,
        arguments: Vec::new(),
        schedule: Some(schedule),
        parents: BTreeSet::new(),
        disabled: false,
        concurrency: ConcurrencyPolicy::Forbid,
        soft_error: false,
        retry: RetryPolicy::default(),
        starting_deadline: None,
        resources: Resources { cpus: 0.01, mem: 8.0, disk: 0.0, gpus: 0 },
        container: None,
        network: NetworkMode::Host,
        env: BTreeMap::new(),
        placement: PlacementSpec::default(),
        max_completion_time: None,
        owner: String::new(),
        owner_name: String::new(),
        description: String::new(),
        success_history_limit: 3,
        failure_history_limit: 3,
        version: T0,
    }
}

/// Performs every effect: persists succeed at once. Counts launches.
fn drain(s: &mut Scheduler, now: Timestamp) -> usize {
    let mut launches = 0;
    while let Some(e) = s.poll_effect() {
        match e {
            Effect::Persist { token, .. } => s.handle_persisted(token, Ok(()), now),
            Effect::Call(MesosCall::Accept { launches: l, .. }) => launches += l.len(),
            _ => {}
        }
    }
    launches
}

/// Handles `now` until nothing more is due then (jobs fire in batches;
/// `poll_timeout` stays at `now` while some wait), as the daemon does.
fn settle(s: &mut Scheduler, now: Timestamp) {
    loop {
        s.handle_timeout(now);
        drain(s, now);
        if s.poll_timeout() > now {
            return;
        }
    }
}

/// The process' resident set size (Linux `/proc/self/statm`, 4 KiB pages).
fn rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map_or(0, |pages| pages * 4096 / (1024 * 1024))
}

#[allow(clippy::disallowed_methods, reason = "a benchmark measures real time")]
fn main() {
    // Start just before minute 0 so the first tick fires nothing.
    let mut now = T0.minus(Duration::from_secs(30));
    let mut s = Scheduler::new(CoreConfig::default(), StoredState::default(), 7, now);
    s.handle_subscribed("fw".into(), now);
    drain(&mut s, now);

    let started = Instant::now();
    for i in 0..JOBS {
        s.handle_command(i as u64, Command::PutJob(Box::new(job(i))), now);
        drain(&mut s, now);
    }
    let saved = started.elapsed();
    println!("saved {JOBS} jobs in {saved:.2?} ({:.0} jobs/s)", JOBS as f64 / saved.as_secs_f64());
    println!("resident memory with {JOBS} jobs: {} MiB", rss_mib());

    // Idle ticks: nothing due for 29 seconds.
    let started = Instant::now();
    let idle_ticks = 29;
    for _ in 0..idle_ticks {
        now = now.plus(Duration::from_secs(1));
        s.handle_timeout(now);
        drain(&mut s, now);
    }
    let idle = started.elapsed() / idle_ticks;
    println!("idle tick (no job due): {idle:.2?}");

    // Minute 0: 1,000 jobs come due in one tick.
    now = T0;
    let started = Instant::now();
    settle(&mut s, now);
    let fired = started.elapsed();
    let snap = s.snapshot();
    let runs: usize = snap.runs.values().map(|r| r.len()).sum();
    println!(
        "fired {runs} due jobs at one instant: {fired:.2?} ({:.0} runs/s), each persisted with its instance",
        runs as f64 / fired.as_secs_f64()
    );
    assert_eq!(runs, JOBS / MINUTES, "every job due at minute 0 fired once");

    // Launch them on 100 agents' offers.
    let offers: Vec<Offer> = (0..100)
        .map(|i| {
            Offer::new(&format!("o-{i}"), &format!("agent-{i}"), &format!("host-{i}"))
                .with_resources(
                    "*",
                    Resources { cpus: 64.0, mem: 262_144.0, disk: 100_000.0, gpus: 0 },
                    PortRanges::new([(31_000, 32_000)]),
                )
        })
        .collect();
    let started = Instant::now();
    s.handle_offers(offers, now);
    let launched = drain(&mut s, now);
    println!("launched {launched} runs on 100 offers in {:.2?}", started.elapsed());
    assert_eq!(launched, runs);

    // The next minute fires the next 1,000 (the first are still running:
    // FORBID skips none, they are other jobs).
    now = T0.plus(Duration::from_secs(60));
    let started = Instant::now();
    settle(&mut s, now);
    println!("next minute's tick: {:.2?}", started.elapsed());
    let total: usize = s.snapshot().runs.values().map(|r| r.len()).sum();
    assert_eq!(total, 2 * JOBS / MINUTES);

    real_time();
}

fn wall() -> Timestamp {
    use drover_time::Clock as _;
    drover_time::SystemClock.now()
}

/// 20 s of real time: 49,000 jobs due 20 ms apart from `base` (every
/// 1,000 s), and 1,000 more all due at `base + 10 s`.
#[allow(clippy::disallowed_methods, reason = "a benchmark measures real time")]
fn real_time() {
    let base = wall().plus(Duration::from_secs(3));
    let mut now = wall();
    let mut s = Scheduler::new(CoreConfig::default(), StoredState::default(), 11, now);
    s.handle_subscribed("fw".into(), now);
    drain(&mut s, now);
    for i in 0..JOBS {
        let start = if i < 1_000 {
            base.plus(Duration::from_secs(10))
        } else {
            base.plus(Duration::from_millis(20 * (i as u64 - 1_000)))
        };
        let text = format!("R/{}/PT1000S", sched_core::format_version(start));
        let spec = JobSpec {
            schedule: Some(Schedule::parse_iso8601(&text, None, now).expect("iso")),
            ..job(i)
        };
        s.handle_command(i as u64, Command::PutJob(Box::new(spec)), now);
        drain(&mut s, now);
    }
    let end = base.plus(Duration::from_secs(20));
    let mut lags: Vec<i64> = Vec::new();
    let mut ticks = 0u64;
    let mut tick_time = Duration::ZERO;
    while now < end {
        let deadline = s.poll_timeout();
        let wait = deadline.as_millis() - wall().as_millis();
        if wait > 0 {
            std::thread::sleep(Duration::from_millis(wait as u64));
        }
        now = wall();
        let started = Instant::now();
        s.handle_timeout(now);
        while let Some(e) = s.poll_effect() {
            if let Effect::Persist { token, writes } = e {
                let emitted = wall();
                for w in &writes {
                    if let sched_core::scheduler::Write::PutRun(run) = w
                        && run.attempts == 1
                        && run.status == sched_core::job::RunStatus::Queued
                        && let sched_core::job::Trigger::Schedule(due) = run.trigger
                    {
                        lags.push(emitted.as_millis() - due.as_millis());
                    }
                }
                s.handle_persisted(token, Ok(()), now);
            }
        }
        tick_time += started.elapsed();
        ticks += 1;
    }
    // Due in the 20 s: the burst, and the spread jobs 0, 20, ..., 20,000 ms after `base`.
    let expected = 1_000 + (0..(JOBS - 1_000) as u64).filter(|k| 20 * k <= 20_000).count();
    assert_eq!(lags.len(), expected, "every run due in the 20 s fired once, none missed");
    lags.sort_unstable();
    let pct = |p: f64| lags[((lags.len() - 1) as f64 * p).round() as usize];
    println!(
        "real time, 20 s with 50,000 jobs: {} runs fired in {ticks} wake-ups ({:.2?} of work per wake-up); \
         firing lag p50 {} ms, p99 {} ms, max {} ms",
        lags.len(),
        tick_time / u32::try_from(ticks.max(1)).unwrap_or(u32::MAX),
        pct(0.5),
        pct(0.99),
        lags.last().copied().unwrap_or(0)
    );
}
