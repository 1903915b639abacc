//! Job schedules (`sched_core::schedule`): ISO 8601 repeating intervals and
//! cron expressions, in an optional IANA time zone, then every question the
//! scheduler asks of a schedule that parsed.
//!
//! Input, one part a line (a missing or malformed number takes a default):
//!
//! ```text
//! iso | cron | (anything else: both)
//! <time zone, or `-` for none>
//! <now, ms since the epoch, up to 9999-12-30>
//! <after, ms since the epoch>
//! <window, ms>
//! <the schedule text: the rest of the input>
//! ```
//!
//! Checks: no panic; `source()` parses back (at another `now`) to an equal
//! schedule; an ISO schedule's `describe` (what clients read and send back)
//! parses again; `next_after(t)` is strictly after `t`; for times from the
//! epoch to 9999, `fires_between` agrees with `next_after` (a fire in the
//! window iff the next one is in it; the last one inside it).
#![no_main]

use drover_fuzz::Parts;
use drover_time::Timestamp;
use libfuzzer_sys::fuzz_target;
use sched_core::schedule::Schedule;

/// 2025-01-01T00:00:00Z.
const NOW: i64 = 1_735_689_600_000;
/// `now` is a clock reading: kept from the epoch to 9999-12-30 (an empty
/// ISO 8601 start resolves to it, and the start's text has four digits).
const LAST_NOW: i64 = 253_402_128_000_000;
/// `fires_between`'s cap as the scheduler uses it is larger; a cron walk
/// costs one evaluation per fire.
const CAP: u64 = 64;

fn check(
    schedule: &Schedule,
    zone: Option<&str>,
    now: Timestamp,
    after: Timestamp,
    until: Timestamp,
) {
    let iso = schedule.start().is_some();
    let again = if iso {
        Schedule::parse_iso8601(&schedule.source(), zone, Timestamp::from_millis(7))
    } else {
        Schedule::parse_cron(&schedule.source(), zone)
    };
    assert_eq!(
        again.as_ref(),
        Ok(schedule),
        "source() `{}` reads back differently",
        schedule.source()
    );
    let _ = (schedule.repetitions(), schedule.time_zone());

    let described = schedule.describe(now);
    if iso {
        if let Err(e) = Schedule::parse_iso8601(&described, zone, now) {
            panic!("describe() = `{described}` does not parse again: {e}");
        }
    } else {
        assert_eq!(described, schedule.source());
    }

    let next = schedule.next_after(after);
    if let Some(next) = next {
        assert!(next > after, "next_after({after:?}) = {next:?}");
    }
    let (count, last) = schedule.fires_between(after, until, CAP);
    // Times the scheduler passes (last fires, now) are clock readings; far
    // outside them only the absence of panics is checked.
    let clock = 0..=LAST_NOW;
    if !clock.contains(&after.as_millis()) || !clock.contains(&until.as_millis()) {
        return;
    }
    let next_inside = next.is_some_and(|n| n <= until);
    if until > after {
        assert_eq!(
            count > 0,
            next_inside,
            "fires_between({after:?}, {until:?}) = {count}, next {next:?}"
        );
    }
    assert_eq!(
        count > 0,
        last.is_some(),
        "fires_between({after:?}, {until:?}) = ({count}, {last:?})"
    );
    if let Some(last) = last {
        assert!(after < last && last <= until, "last fire {last:?} outside ({after:?}, {until:?}]");
        assert!(next.is_some_and(|n| n <= last), "last fire {last:?} before the next {next:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(mut parts) = Parts::new(data) else { return };
    let kind = parts.line().unwrap_or("");
    let zone = parts.line().filter(|z| *z != "-");
    let now = Timestamp::from_millis(parts.number(NOW).clamp(0, LAST_NOW));
    let after = Timestamp::from_millis(parts.number(NOW));
    let window: i64 = parts.number(86_400_000);
    let until = Timestamp::from_millis(after.as_millis().saturating_add(window));
    let text = parts.rest();

    if kind != "cron"
        && let Ok(s) = Schedule::parse_iso8601(&text, zone, now)
    {
        check(&s, zone, now, after, until);
    }
    if kind != "iso"
        && let Ok(s) = Schedule::parse_cron(&text, zone)
    {
        check(&s, zone, now, after, until);
    }
});
