//! Chronos job JSON (`sched_api::job_json`): parsed and validated into a
//! `JobSpec` as `POST /v1/scheduler/iso8601` and `/dependency` do, then
//! rendered as `GET /v1/scheduler/jobs` shows it.
//!
//! Input: a JSON document (anything else is skipped).
//!
//! Checks: no panic; a job that parses renders to JSON that parses back to
//! the same job, except its version (the scheduler stamps it) and its
//! schedule's text (read back as Chronos writes it: remaining repetitions
//! and next start), whose kind and zone must survive; what the scheduler
//! derives from a job (next due time, run app spec, retry delays) does not
//! panic.
#![no_main]

use drover_time::Timestamp;
use libfuzzer_sys::fuzz_target;
use sched_api::job_json::{Context, parse_job, render_job};
use sched_core::job::{JobSpec, JobState};
use serde_json::Value;

/// 2023-11-14T22:13:20Z.
const NOW: Timestamp = Timestamp::from_secs(1_700_000_000);

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else { return };
    let ctx = Context { now: NOW, mesos_user: "root" };
    let Ok(spec) = parse_job(&body, ctx) else { return };

    let view = render_job(&spec, &JobState::default(), None, ctx);
    let text = serde_json::to_string(&view).expect("a job view serializes");
    let value: Value = serde_json::from_str(&text).expect("serialized JSON parses");
    let back = parse_job(&value, ctx)
        .unwrap_or_else(|e| panic!("the rendered job is refused: {}\n{text}", e.message()));
    let kind = |s: &JobSpec| {
        s.schedule.as_ref().map(|s| (s.start().is_some(), s.time_zone().map(str::to_owned)))
    };
    assert_eq!(kind(&back), kind(&spec), "the schedule's kind or zone changed\n{text}");
    let normalize =
        |s: &JobSpec| JobSpec { version: Timestamp::EPOCH, schedule: None, ..s.clone() };
    assert_eq!(
        normalize(&back),
        normalize(&spec),
        "the rendered job reads back differently\n{text}"
    );

    let _ = spec.next_due(&JobState::default());
    let _ = spec.run_spec();
    for n in 0..=spec.retry.retries.min(64).saturating_add(1) {
        let _ = spec.retry.delay(n);
    }
});
