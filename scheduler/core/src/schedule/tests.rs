use chrono::{DateTime, NaiveDateTime, TimeZone as _};
use chrono_tz::Tz;
use expect_test::{Expect, expect};
use proptest::prelude::*;

use super::*;

/// `2025-03-30T01:30:00Z` as a timestamp.
fn ts(text: &str) -> Timestamp {
    crate::parse_version(text).unwrap_or_else(|| panic!("bad test time {text}"))
}

/// A fixed "now" for parsing (no clock in tests either).
const NOW: Timestamp = Timestamp::from_millis(1_735_689_600_000); // 2025-01-01T00:00:00Z

fn iso(text: &str, zone: Option<&str>) -> Schedule {
    Schedule::parse_iso8601(text, zone, NOW).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn cron(expr: &str, zone: Option<&str>) -> Schedule {
    Schedule::parse_cron(expr, zone).unwrap_or_else(|e| panic!("{expr}: {e}"))
}

/// `t` as local time in `zone` and as UTC: `2025-03-30 03:30 +02:00 (01:30Z)`.
fn show(t: Timestamp, zone: &str) -> String {
    let tz: Tz = zone.parse().expect("test zone");
    let utc = DateTime::from_timestamp_millis(t.as_millis()).expect("in range");
    format!("{} ({})", utc.with_timezone(&tz).format("%Y-%m-%d %H:%M %:z"), utc.format("%H:%MZ"))
}

/// The next `n` fires after `from`, one a line, by chaining `next_after`.
fn check_fires(schedule: &Schedule, from: &str, n: usize, expect: Expect) {
    let zone = schedule.time_zone().unwrap_or("UTC");
    let mut lines = String::new();
    let mut t = ts(from);
    for _ in 0..n {
        match schedule.next_after(t) {
            Some(next) => {
                assert!(next > t, "next_after({t:?}) = {next:?} is not later");
                lines.push_str(&show(next, zone));
                lines.push('\n');
                t = next;
            }
            None => {
                lines.push_str("exhausted\n");
                break;
            }
        }
    }
    expect.assert_eq(&lines);
}

// ---------------------------------------------------------------------------
// DST, Europe/Berlin: 2025-03-30 02:00 CET -> 03:00 CEST, 2025-10-26 03:00
// CEST -> 02:00 CET.

#[test]
fn iso_daily_in_a_spring_gap_fires_shifted_by_the_gap_then_resumes() {
    let daily = iso("R/2025-03-28T02:30:00/P1D", Some("Europe/Berlin"));
    check_fires(
        &daily,
        "2025-03-28T00:00:00Z",
        5,
        expect![[r#"
            2025-03-28 02:30 +01:00 (01:30Z)
            2025-03-29 02:30 +01:00 (01:30Z)
            2025-03-30 03:30 +02:00 (01:30Z)
            2025-03-31 02:30 +02:00 (00:30Z)
            2025-04-01 02:30 +02:00 (00:30Z)
        "#]],
    );
}

#[test]
fn iso_daily_in_an_autumn_overlap_fires_once_at_the_first_pass() {
    let daily = iso("R/2025-10-24T02:30:00+02:00/P1D", Some("Europe/Berlin"));
    check_fires(
        &daily,
        "2025-10-24T00:00:00Z",
        4,
        expect![[r#"
            2025-10-24 02:30 +02:00 (00:30Z)
            2025-10-25 02:30 +02:00 (00:30Z)
            2025-10-26 02:30 +02:00 (00:30Z)
            2025-10-27 02:30 +01:00 (01:30Z)
        "#]],
    );
    // Not again at the second 02:30 (01:30Z).
    assert_eq!(daily.next_after(ts("2025-10-26T00:30:00Z")), Some(ts("2025-10-27T01:30:00Z")));
}

#[test]
fn iso_daily_at_noon_keeps_noon_local_on_both_sides_of_both_transitions() {
    let noon = iso("R/2025-03-29T12:00:00+01:00/P1D", Some("Europe/Berlin"));
    check_fires(
        &noon,
        "2025-03-29T00:00:00Z",
        3,
        expect![[r#"
            2025-03-29 12:00 +01:00 (11:00Z)
            2025-03-30 12:00 +02:00 (10:00Z)
            2025-03-31 12:00 +02:00 (10:00Z)
        "#]],
    );
    check_fires(
        &noon,
        "2025-10-25T00:00:00Z",
        3,
        expect![[r#"
            2025-10-25 12:00 +02:00 (10:00Z)
            2025-10-26 12:00 +01:00 (11:00Z)
            2025-10-27 12:00 +01:00 (11:00Z)
        "#]],
    );
}

#[test]
fn iso_hourly_is_exact_in_utc_across_both_transitions() {
    let hourly = iso("R/2025-03-30T00:00:00/PT1H", Some("Europe/Berlin"));
    check_fires(
        &hourly,
        "2025-03-29T22:00:00Z",
        4,
        expect![[r#"
            2025-03-30 00:00 +01:00 (23:00Z)
            2025-03-30 01:00 +01:00 (00:00Z)
            2025-03-30 03:00 +02:00 (01:00Z)
            2025-03-30 04:00 +02:00 (02:00Z)
        "#]],
    );
    // The spring day is 23 hours long, the autumn day 25.
    let spring_day = (ts("2025-03-29T22:59:59.999Z"), ts("2025-03-30T21:59:59.999Z"));
    assert_eq!(
        hourly.fires_between(spring_day.0, spring_day.1, 100),
        (23, Some(ts("2025-03-30T21:00:00Z")))
    );
    let autumn_day = (ts("2025-10-25T21:59:59.999Z"), ts("2025-10-26T22:59:59.999Z"));
    assert_eq!(
        hourly.fires_between(autumn_day.0, autumn_day.1, 100),
        (25, Some(ts("2025-10-26T22:00:00Z")))
    );
    check_fires(
        &hourly,
        "2025-10-25T23:30:00Z",
        4,
        expect![[r#"
            2025-10-26 02:00 +02:00 (00:00Z)
            2025-10-26 02:00 +01:00 (01:00Z)
            2025-10-26 03:00 +01:00 (02:00Z)
            2025-10-26 04:00 +01:00 (03:00Z)
        "#]],
    );
}

#[test]
fn cron_fixed_time_in_a_spring_gap_fires_when_the_gap_ends() {
    let nightly = cron("30 2 * * *", Some("Europe/Berlin"));
    check_fires(
        &nightly,
        "2025-03-29T00:00:00Z",
        3,
        expect![[r#"
            2025-03-29 02:30 +01:00 (01:30Z)
            2025-03-30 03:00 +02:00 (01:00Z)
            2025-03-31 02:30 +02:00 (00:30Z)
        "#]],
    );
}

#[test]
fn cron_fixed_time_in_an_autumn_overlap_fires_once() {
    let nightly = cron("30 2 * * *", Some("Europe/Berlin"));
    check_fires(
        &nightly,
        "2025-10-25T00:00:00Z",
        3,
        expect![[r#"
            2025-10-25 02:30 +02:00 (00:30Z)
            2025-10-26 02:30 +02:00 (00:30Z)
            2025-10-27 02:30 +01:00 (01:30Z)
        "#]],
    );
    let autumn_day = (ts("2025-10-25T21:59:59.999Z"), ts("2025-10-26T22:59:59.999Z"));
    assert_eq!(
        nightly.fires_between(autumn_day.0, autumn_day.1, 100),
        (1, Some(ts("2025-10-26T00:30:00Z")))
    );
}

#[test]
fn cron_hourly_fires_23_times_on_the_spring_day_and_25_on_the_autumn_day() {
    let hourly = cron("0 * * * *", Some("Europe/Berlin"));
    let spring_day = (ts("2025-03-29T22:59:59.999Z"), ts("2025-03-30T21:59:59.999Z"));
    assert_eq!(
        hourly.fires_between(spring_day.0, spring_day.1, 100),
        (23, Some(ts("2025-03-30T21:00:00Z")))
    );
    let autumn_day = (ts("2025-10-25T21:59:59.999Z"), ts("2025-10-26T22:59:59.999Z"));
    assert_eq!(
        hourly.fires_between(autumn_day.0, autumn_day.1, 100),
        (25, Some(ts("2025-10-26T22:00:00Z")))
    );
    check_fires(
        &hourly,
        "2025-10-25T23:30:00Z",
        3,
        expect![[r#"
            2025-10-26 02:00 +02:00 (00:00Z)
            2025-10-26 02:00 +01:00 (01:00Z)
            2025-10-26 03:00 +01:00 (02:00Z)
        "#]],
    );
}

// ---------------------------------------------------------------------------
// Repetitions, coalescing, arithmetic.

#[test]
fn r5_fires_exactly_five_times_then_is_exhausted() {
    let five = iso("R5/2025-01-01T00:00:00Z/PT1H", None);
    check_fires(
        &five,
        "2024-12-31T00:00:00Z",
        10,
        expect![[r#"
            2025-01-01 00:00 +00:00 (00:00Z)
            2025-01-01 01:00 +00:00 (01:00Z)
            2025-01-01 02:00 +00:00 (02:00Z)
            2025-01-01 03:00 +00:00 (03:00Z)
            2025-01-01 04:00 +00:00 (04:00Z)
            exhausted
        "#]],
    );
    assert_eq!(five.repetitions(), Some(5));
    assert_eq!(five.next_after(ts("2030-01-01T00:00:00Z")), None);
    assert_eq!(
        five.fires_between(ts("2024-01-01T00:00:00Z"), ts("2030-01-01T00:00:00Z"), 100),
        (5, Some(ts("2025-01-01T04:00:00Z")))
    );
}

#[test]
fn r0_is_valid_and_never_fires() {
    let none = iso("R0/2025-01-01T00:00:00Z/PT1H", None);
    assert_eq!(none.next_after(ts("2024-01-01T00:00:00Z")), None);
    assert_eq!(
        none.fires_between(ts("2024-01-01T00:00:00Z"), ts("2026-01-01T00:00:00Z"), 10),
        (0, None)
    );
    assert_eq!(none.describe(NOW), "R0/2025-01-01T00:00:00.000Z/PT1H");
}

#[test]
fn a_scheduler_down_for_three_periods_sees_three_missed_fires_and_the_last() {
    let hourly = iso("R/2025-01-01T00:00:00Z/PT1H", None);
    // Last fired at 00:00, back at 03:30: 01:00, 02:00 and 03:00 were missed.
    assert_eq!(
        hourly.fires_between(ts("2025-01-01T00:00:00Z"), ts("2025-01-01T03:30:00Z"), 100),
        (3, Some(ts("2025-01-01T03:00:00Z")))
    );
    // The window is (after, until]: a fire at `until` counts, one at `after` does not.
    assert_eq!(
        hourly.fires_between(ts("2025-01-01T00:00:00Z"), ts("2025-01-01T03:00:00Z"), 100),
        (3, Some(ts("2025-01-01T03:00:00Z")))
    );
    // The count saturates at the cap; the last is still the latest.
    assert_eq!(
        hourly.fires_between(ts("2025-01-01T00:00:00Z"), ts("2025-02-01T00:00:00Z"), 100),
        (100, Some(ts("2025-02-01T00:00:00Z")))
    );
    assert_eq!(
        hourly.fires_between(ts("2025-01-02T00:00:00Z"), ts("2025-01-01T00:00:00Z"), 100),
        (0, None)
    );
    let nightly = cron("0 3 * * *", None);
    assert_eq!(
        nightly.fires_between(ts("2025-01-01T03:00:00Z"), ts("2025-01-04T12:00:00Z"), 100),
        (3, Some(ts("2025-01-04T03:00:00Z")))
    );
    assert_eq!(
        nightly.fires_between(ts("2025-01-01T03:00:00Z"), ts("2026-01-01T12:00:00Z"), 2),
        (2, Some(ts("2026-01-01T03:00:00Z")))
    );
}

#[test]
fn fires_between_is_arithmetic_for_long_windows_of_short_periods() {
    let every_second = iso("R/2000-01-01T00:00:00Z/PT1S", None);
    let (count, last) = every_second.fires_between(
        ts("2000-01-01T00:00:00Z"),
        ts("2999-01-01T00:00:00Z"),
        u64::MAX,
    );
    assert_eq!(count, 31_525_459_200); // 364,878 days
    assert_eq!(last, Some(ts("2999-01-01T00:00:00Z")));
    // Zoned days and months are searched, not walked.
    let daily = iso("R/2000-01-01T02:30:00/P1D", Some("Europe/Berlin"));
    assert_eq!(
        daily.fires_between(ts("1999-12-31T00:00:00Z"), ts("2999-12-31T23:00:00Z"), u64::MAX).0,
        365_243
    );
    let monthly = iso("R/2000-01-31T12:00:00Z/P1M", None);
    assert_eq!(
        monthly.fires_between(ts("1999-12-31T00:00:00Z"), ts("2999-12-31T23:00:00Z"), u64::MAX).0,
        12_000
    );
}

#[test]
fn months_are_added_from_the_start_and_clamped_to_the_month_end() {
    check_fires(
        &iso("R/2025-01-31T10:00:00Z/P1M", None),
        "2025-01-01T00:00:00Z",
        4,
        expect![[r#"
            2025-01-31 10:00 +00:00 (10:00Z)
            2025-02-28 10:00 +00:00 (10:00Z)
            2025-03-31 10:00 +00:00 (10:00Z)
            2025-04-30 10:00 +00:00 (10:00Z)
        "#]],
    );
    check_fires(
        &iso("R/2024-02-29T00:00:00Z/P1Y", None),
        "2024-01-01T00:00:00Z",
        5,
        expect![[r#"
            2024-02-29 00:00 +00:00 (00:00Z)
            2025-02-28 00:00 +00:00 (00:00Z)
            2026-02-28 00:00 +00:00 (00:00Z)
            2027-02-28 00:00 +00:00 (00:00Z)
            2028-02-29 00:00 +00:00 (00:00Z)
        "#]],
    );
    // Calendar and exact parts together: a day and an hour, in local time.
    check_fires(
        &iso("R3/2025-03-29T01:00:00/P1DT1H", Some("Europe/Berlin")),
        "2025-03-01T00:00:00Z",
        4,
        expect![[r#"
            2025-03-29 01:00 +01:00 (00:00Z)
            2025-03-30 03:00 +02:00 (01:00Z)
            2025-03-31 03:00 +02:00 (01:00Z)
            exhausted
        "#]],
    );
}

#[test]
fn without_a_zone_the_start_offset_applies_and_days_are_24_hours() {
    let daily = iso("R/2025-03-29T02:30:00+01:00/P1D", None);
    check_fires(
        &daily,
        "2025-03-29T00:00:00Z",
        3,
        expect![[r#"
            2025-03-29 01:30 +00:00 (01:30Z)
            2025-03-30 01:30 +00:00 (01:30Z)
            2025-03-31 01:30 +00:00 (01:30Z)
        "#]],
    );
    assert_eq!(daily.time_zone(), None);
    assert_eq!(daily.describe(ts("2025-03-29T12:00:00Z")), "R/2025-03-30T02:30:00.000+01:00/P1D");
    // With a zone, the offset of the start is ignored: 02:30 local.
    let zoned = iso("R/2025-03-29T02:30:00Z/P1D", Some("Europe/Berlin"));
    assert_eq!(zoned.next_after(ts("2025-03-29T00:00:00Z")), Some(ts("2025-03-29T01:30:00Z")));
    assert_eq!(zoned.time_zone(), Some("Europe/Berlin"));
}

#[test]
fn cron_reads_names_ranges_steps_lists_and_shorthands() {
    check_fires(
        &cron("*/20 9-10 * JAN MON,fri", None),
        "2025-01-01T00:00:00Z",
        7,
        expect![[r#"
            2025-01-03 09:00 +00:00 (09:00Z)
            2025-01-03 09:20 +00:00 (09:20Z)
            2025-01-03 09:40 +00:00 (09:40Z)
            2025-01-03 10:00 +00:00 (10:00Z)
            2025-01-03 10:20 +00:00 (10:20Z)
            2025-01-03 10:40 +00:00 (10:40Z)
            2025-01-06 09:00 +00:00 (09:00Z)
        "#]],
    );
    // Day-of-month OR day-of-week, as in Vixie cron.
    check_fires(
        &cron("0 0 13 * FRI", None),
        "2025-06-01T00:00:00Z",
        3,
        expect![[r#"
            2025-06-06 00:00 +00:00 (00:00Z)
            2025-06-13 00:00 +00:00 (00:00Z)
            2025-06-20 00:00 +00:00 (00:00Z)
        "#]],
    );
    check_fires(
        &cron("@weekly", Some("America/New_York")),
        "2025-01-01T00:00:00Z",
        2,
        expect![[r#"
            2025-01-05 00:00 -05:00 (05:00Z)
            2025-01-12 00:00 -05:00 (05:00Z)
        "#]],
    );
    // Sub-second `after`: the fire in the same second is not after it.
    let minutely = cron("* * * * *", None);
    assert_eq!(
        minutely.next_after(ts("2025-01-01T10:00:00.500Z")),
        Some(ts("2025-01-01T10:01:00Z"))
    );
    assert_eq!(
        minutely.next_after(ts("2025-01-01T09:59:59.999Z")),
        Some(ts("2025-01-01T10:00:00Z"))
    );
    assert_eq!(minutely.repetitions(), None);
}

// ---------------------------------------------------------------------------
// Parsing, describe, source.

#[test]
fn parse_errors_name_what_is_wrong() {
    let cases: [(&str, Option<&str>); 23] = [
        ("", None),
        ("R/2025-01-01T00:00:00Z", None),
        ("R/2025-01-01T00:00:00Z/PT1H/x", None),
        ("X/2025-01-01T00:00:00Z/PT1H", None),
        ("R-1/2025-01-01T00:00:00Z/PT1H", None),
        ("R99999999999/2025-01-01T00:00:00Z/PT1H", None),
        ("R/2025-02-30T00:00:00Z/PT1H", None),
        ("R/2025-1-01T00:00:00Z/PT1H", None),
        ("R/2025-01-01T25:00:00Z/PT1H", None),
        ("R/2025-01-01T00:00:00.Z/PT1H", None),
        ("R/2025-01-01T00:00:00+25:00/PT1H", None),
        ("R/2025-01-01T00:00:00+1/PT1H", None),
        ("R/2025-01-01T00:00:00Z/1H", None),
        ("R/2025-01-01T00:00:00Z/P", None),
        ("R/2025-01-01T00:00:00Z/PT", None),
        ("R/2025-01-01T00:00:00Z/PT0S", None),
        ("R/2025-01-01T00:00:00Z/P0Y0M0DT0H", None),
        ("R/2025-01-01T00:00:00Z/PT1.5H", None),
        ("R/2025-01-01T00:00:00Z/P1H", None),
        ("R/2025-01-01T00:00:00Z/PT1M1H", None),
        ("R/2025-01-01T00:00:00Z/PT0.0001S", None),
        ("R/2025-01-01T00:00:00Z/P99999Y", None),
        ("R/2025-01-01T00:00:00Z/PT1H", Some("Europe/Berln")),
    ];
    let mut out = String::new();
    for (text, zone) in cases {
        let result = Schedule::parse_iso8601(text, zone, NOW);
        out.push_str(&format!(
            "{text:?} -> {}\n",
            result.err().map_or("ok".to_owned(), |e| e.to_string())
        ));
    }
    for expr in [
        "",
        "* * * *",
        "0 * * * * *",
        "61 * * * *",
        "0 0 30 2 *",
        "@reboot",
        "@every 5m",
        "0 0 * * FUNDAY",
    ] {
        let result = Schedule::parse_cron(expr, None);
        out.push_str(&format!(
            "cron {expr:?} -> {}\n",
            result.err().map_or("ok".to_owned(), |e| e.to_string())
        ));
    }
    let result = Schedule::parse_cron("0 * * * *", Some("Mars/Olympus"));
    out.push_str(&format!(
        "cron zone -> {}\n",
        result.err().map_or("ok".to_owned(), |e| e.to_string())
    ));
    expect![[r#"
        "" -> The schedule `` is not an ISO 8601 repeating interval `R[n]/<start>/<period>` such as `R/2025-03-01T02:30:00Z/P1D`.
        "R/2025-01-01T00:00:00Z" -> The schedule `R/2025-01-01T00:00:00Z` is not an ISO 8601 repeating interval `R[n]/<start>/<period>` such as `R/2025-03-01T02:30:00Z/P1D`.
        "R/2025-01-01T00:00:00Z/PT1H/x" -> The schedule `R/2025-01-01T00:00:00Z/PT1H/x` is not an ISO 8601 repeating interval `R[n]/<start>/<period>` such as `R/2025-03-01T02:30:00Z/P1D`.
        "X/2025-01-01T00:00:00Z/PT1H" -> The repetitions `X` are not `R` (forever) or `R<n>` with n a whole number (e.g. `R5`).
        "R-1/2025-01-01T00:00:00Z/PT1H" -> The repetitions `R-1` are not `R` (forever) or `R<n>` with n a whole number (e.g. `R5`).
        "R99999999999/2025-01-01T00:00:00Z/PT1H" -> The repetitions `R99999999999` are too many: at most R4294967295.
        "R/2025-02-30T00:00:00Z/PT1H" -> The start `2025-02-30T00:00:00Z` is not an ISO 8601 date-time such as `2025-03-01T02:30:00Z`: that day does not exist.
        "R/2025-1-01T00:00:00Z/PT1H" -> The start `2025-1-01T00:00:00Z` is not an ISO 8601 date-time such as `2025-03-01T02:30:00Z`: the date is not YYYY-MM-DD.
        "R/2025-01-01T25:00:00Z/PT1H" -> The start `2025-01-01T25:00:00Z` is not an ISO 8601 date-time such as `2025-03-01T02:30:00Z`: the time of day is out of range.
        "R/2025-01-01T00:00:00.Z/PT1H" -> The start `2025-01-01T00:00:00.Z` is not an ISO 8601 date-time such as `2025-03-01T02:30:00Z`: the fraction of a second is not 1 to 9 digits after the seconds.
        "R/2025-01-01T00:00:00+25:00/PT1H" -> The start `2025-01-01T00:00:00+25:00` is not an ISO 8601 date-time such as `2025-03-01T02:30:00Z`: the offset is beyond ±18:00.
        "R/2025-01-01T00:00:00+1/PT1H" -> The start `2025-01-01T00:00:00+1` is not an ISO 8601 date-time such as `2025-03-01T02:30:00Z`: the offset is not Z, ±hh, ±hhmm or ±hh:mm.
        "R/2025-01-01T00:00:00Z/1H" -> The period `1H` is not an ISO 8601 duration such as `PT1H` or `P1D`: it does not start with `P`.
        "R/2025-01-01T00:00:00Z/P" -> The period `P` is not an ISO 8601 duration such as `PT1H` or `P1D`: it names no years, months, weeks, days, hours, minutes or seconds.
        "R/2025-01-01T00:00:00Z/PT" -> The period `PT` is not an ISO 8601 duration such as `PT1H` or `P1D`: it names no years, months, weeks, days, hours, minutes or seconds.
        "R/2025-01-01T00:00:00Z/PT0S" -> The period `PT0S` is zero: a repeating schedule needs a positive period.
        "R/2025-01-01T00:00:00Z/P0Y0M0DT0H" -> The period `P0Y0M0DT0H` is zero: a repeating schedule needs a positive period.
        "R/2025-01-01T00:00:00Z/PT1.5H" -> The period `PT1.5H` is not an ISO 8601 duration such as `PT1H` or `P1D`: only seconds may have a fraction (e.g. `PT1H30M`, not `PT1.5H`).
        "R/2025-01-01T00:00:00Z/P1H" -> The period `P1H` is not an ISO 8601 duration such as `PT1H` or `P1D`: `H` is unknown or out of order here.
        "R/2025-01-01T00:00:00Z/PT1M1H" -> The period `PT1M1H` is not an ISO 8601 duration such as `PT1H` or `P1D`: `H` is unknown or out of order here.
        "R/2025-01-01T00:00:00Z/PT0.0001S" -> The period `PT0.0001S` is not an ISO 8601 duration such as `PT1H` or `P1D`: schedules have millisecond precision.
        "R/2025-01-01T00:00:00Z/P99999Y" -> The period `P99999Y` is not an ISO 8601 duration such as `PT1H` or `P1D`: it is longer than 10000 years.
        "R/2025-01-01T00:00:00Z/PT1H" -> The time zone `Europe/Berln` is not a known IANA time zone such as `Europe/Berlin` or `UTC`.
        cron "" -> The cron expression is empty: expected five fields (minute hour day-of-month month day-of-week) such as `30 2 * * *`, or a shorthand such as `@daily`.
        cron "* * * *" -> The cron expression `* * * *` has 4 fields: Drover expects five (minute hour day-of-month month day-of-week).
        cron "0 * * * * *" -> The cron expression `0 * * * * *` has 6 fields: Drover expects five (minute hour day-of-month month day-of-week).
        cron "61 * * * *" -> The cron expression `61 * * * *` is invalid: Component error: Number out of bounds.
        cron "0 0 30 2 *" -> The cron expression `0 0 30 2 *` never fires.
        cron "@reboot" -> The cron shorthand `@reboot` is not supported: use @yearly, @annually, @monthly, @weekly, @daily or @hourly.
        cron "@every 5m" -> The cron shorthand `@every 5m` is not supported: use @yearly, @annually, @monthly, @weekly, @daily or @hourly.
        cron "0 0 * * FUNDAY" -> The cron expression `0 0 * * FUNDAY` is invalid: Pattern contains illegal characters: CronPattern contains illegal character 'F' in part 'FUNDAY'
        cron zone -> The time zone `Mars/Olympus` is not a known IANA time zone such as `Europe/Berlin` or `UTC`.
    "#]].assert_eq(&out);
}

/// Found by `fuzz/fuzz_targets/schedule.rs`: a field with an empty list
/// item (`,`) matched nothing, and parsing took seconds to find that the
/// expression never fires.
#[test]
fn cron_fields_with_empty_list_items_are_refused_at_once() {
    for expr in [", 0 * * *", "1, * * * *", "0 0 ,1 * *", "0 0 * 1,,2 *", "0 0 * * ,"] {
        let e = Schedule::parse_cron(expr, Some("America/New_York")).expect_err(expr);
        assert!(e.0.contains("has an empty list item in `"), "{expr}: {e}");
    }
    assert!(Schedule::parse_cron("0,30 1,2 * * *", None).is_ok());
}

#[test]
fn valid_starts_and_periods_parse() {
    let mut out = String::new();
    for text in [
        "R/2025-01-01/P1D",
        "R/2025-01-01T10/PT1H",
        "R/2025-01-01T10:15/PT15M",
        "R/2025-01-01T10:15:30.5Z/PT0.25S",
        "R/2025-01-01T10:15:30.123456789+0530/P1W",
        "R/2025-01-01T10:15:30-03/P1Y2M3W4DT5H6M7.890S",
        "R10/2025-01-01T10:15:30,5+05:45/PT1,5S",
    ] {
        let s = iso(text, None);
        let first = s.next_after(ts("2024-01-01T00:00:00Z")).expect("fires");
        let second = s.next_after(first).expect("fires");
        out.push_str(&format!(
            "{text} -> {}, {}\n",
            crate::format_version(first),
            crate::format_version(second)
        ));
    }
    expect![[r#"
        R/2025-01-01/P1D -> 2025-01-01T00:00:00.000Z, 2025-01-02T00:00:00.000Z
        R/2025-01-01T10/PT1H -> 2025-01-01T10:00:00.000Z, 2025-01-01T11:00:00.000Z
        R/2025-01-01T10:15/PT15M -> 2025-01-01T10:15:00.000Z, 2025-01-01T10:30:00.000Z
        R/2025-01-01T10:15:30.5Z/PT0.25S -> 2025-01-01T10:15:30.500Z, 2025-01-01T10:15:30.750Z
        R/2025-01-01T10:15:30.123456789+0530/P1W -> 2025-01-01T04:45:30.123Z, 2025-01-08T04:45:30.123Z
        R/2025-01-01T10:15:30-03/P1Y2M3W4DT5H6M7.890S -> 2025-01-01T13:15:30.000Z, 2026-03-26T18:21:37.890Z
        R10/2025-01-01T10:15:30,5+05:45/PT1,5S -> 2025-01-01T04:30:30.500Z, 2025-01-01T04:30:32.000Z
    "#]].assert_eq(&out);
    assert_eq!(iso("R/2025-01-01T00:00:00Z/PT1H", Some("")).time_zone(), None);
}

#[test]
fn describe_counts_down_and_moves_the_start_like_chronos() {
    let five = iso("R5/2025-01-01T00:00:00Z/PT1H", None);
    let at = |t: &str| five.describe(ts(t));
    assert_eq!(at("2024-12-31T00:00:00Z"), "R5/2025-01-01T00:00:00.000Z/PT1H");
    assert_eq!(at("2025-01-01T00:00:00Z"), "R4/2025-01-01T01:00:00.000Z/PT1H");
    assert_eq!(at("2025-01-01T01:30:00Z"), "R3/2025-01-01T02:00:00.000Z/PT1H");
    assert_eq!(at("2025-01-01T04:00:00Z"), "R0/2025-01-01T05:00:00.000Z/PT1H");
    assert_eq!(at("2026-01-01T00:00:00Z"), "R0/2025-01-01T05:00:00.000Z/PT1H");
    let forever = iso("R/2025-01-01T00:00:00Z/PT1H", None);
    assert_eq!(forever.describe(ts("2025-01-01T01:30:00Z")), "R/2025-01-01T02:00:00.000Z/PT1H");
    // Zoned: the next fire with the zone's offset at that instant.
    let daily = iso("R3/2025-03-29T02:30:00/P1D", Some("Europe/Berlin"));
    assert_eq!(daily.describe(ts("2025-03-29T12:00:00Z")), "R2/2025-03-30T03:30:00.000+02:00/P1D");
    assert_eq!(daily.describe(ts("2025-03-30T12:00:00Z")), "R1/2025-03-31T02:30:00.000+02:00/P1D");
    let cron = cron("30 2 * * *", Some("Europe/Berlin"));
    assert_eq!(cron.describe(NOW), "30 2 * * *");
    assert_eq!(cron.source(), "30 2 * * *");
}

#[test]
fn source_round_trips_and_an_empty_start_does_not_move() {
    for (text, zone) in [
        ("R5/2025-01-01T00:00:00Z/PT1H", None),
        ("R/2025-03-29T02:30:00/P1D", Some("Europe/Berlin")),
        ("R/2025-03-29T02:30:00-04:00/P1M", None),
    ] {
        let s = iso(text, zone);
        assert_eq!(s.source(), text);
        assert_eq!(Schedule::parse_iso8601(&s.source(), zone, ts("2030-01-01T00:00:00Z")), Ok(s));
    }
    let created = ts("2025-07-01T10:20:30.456Z");
    let empty = Schedule::parse_iso8601("R3//PT1H", None, created).expect("valid");
    assert_eq!(empty.source(), "R3/2025-07-01T10:20:30.456Z/PT1H");
    assert_eq!(empty.next_after(ts("2025-07-01T00:00:00Z")), Some(created));
    assert_eq!(
        Schedule::parse_iso8601(&empty.source(), None, ts("2030-01-01T00:00:00Z")),
        Ok(empty)
    );
    let zoned = Schedule::parse_iso8601("R//P1D", Some("Europe/Berlin"), created).expect("valid");
    assert_eq!(zoned.source(), "R/2025-07-01T12:20:30.456+02:00/P1D");
    assert_eq!(zoned.next_after(ts("2025-07-01T00:00:00Z")), Some(created));
    assert_eq!(Schedule::parse_iso8601(&zoned.source(), Some("Europe/Berlin"), NOW), Ok(zoned));
    let cron = cron(" 0 12 * * * ", Some("Asia/Tokyo"));
    assert_eq!(cron.source(), "0 12 * * *");
    assert_eq!(Schedule::parse_cron(&cron.source(), cron.time_zone()), Ok(cron));
}

// ---------------------------------------------------------------------------
// Properties.

const ZONES: [Option<&str>; 9] = [
    None,
    Some("UTC"),
    Some("Europe/Berlin"),
    Some("America/New_York"),
    Some("Australia/Lord_Howe"), // 30-minute DST shift
    Some("America/Havana"),      // DST at midnight
    Some("Pacific/Chatham"),     // +12:45 / +13:45
    Some("Asia/Kolkata"),
    Some("America/Sao_Paulo"),
];

/// 2020-01-01 to 2030-01-01.
fn any_time() -> impl Strategy<Value = Timestamp> {
    (1_577_836_800_000i64..1_893_456_000_000).prop_map(Timestamp::from_millis)
}

fn any_zone() -> impl Strategy<Value = Option<&'static str>> {
    prop::sample::select(ZONES.to_vec())
}

fn any_period() -> impl Strategy<Value = String> {
    (0u32..2, 0u32..4, 0u32..2, 0u32..4, 0u32..30, 0u32..90, 0u32..100, 0u32..1000).prop_map(
        |(y, mo, w, d, h, mi, s, ms)| {
            let mut p = String::from("P");
            for (n, c) in [(y, 'Y'), (mo, 'M'), (w, 'W'), (d, 'D')] {
                if n > 0 {
                    p.push_str(&format!("{n}{c}"));
                }
            }
            if h + mi + s + ms > 0 || p == "P" {
                p.push('T');
                for (n, c) in [(h, 'H'), (mi, 'M')] {
                    if n > 0 {
                        p.push_str(&format!("{n}{c}"));
                    }
                }
                if ms > 0 {
                    p.push_str(&format!("{s}.{ms:03}S"));
                } else if s > 0 || p.ends_with('T') {
                    p.push_str(&format!("{}S", s.max(1)));
                }
            }
            p
        },
    )
}

fn format_start(t: Timestamp) -> String {
    crate::format_version(t)
}

fn any_iso() -> impl Strategy<Value = Schedule> {
    (prop::option::of(0u32..20), any_time(), any_period(), any_zone()).prop_map(
        |(n, start, period, zone)| {
            let repeat = n.map_or("R".to_owned(), |n| format!("R{n}"));
            iso(&format!("{repeat}/{}/{period}", format_start(start)), zone)
        },
    )
}

fn any_cron() -> impl Strategy<Value = Schedule> {
    let exprs = vec![
        "0 * * * *",
        "30 2 * * *",
        "0 2 * * *",
        "*/15 * * * *",
        "0 0 * * MON",
        "0 12 1 * *",
        "@daily",
        "15 1-3 * * *",
        "0 0 29 2 *",
        "45 23 * * 1-5",
        "0,30 0-3 * * *",
    ];
    (prop::sample::select(exprs), any_zone()).prop_map(|(e, z)| cron(e, z))
}

fn any_schedule() -> impl Strategy<Value = Schedule> {
    prop_oneof![any_iso(), any_cron()]
}

/// Roughly how long a period is, to size windows.
fn typical_gap(s: &Schedule) -> i64 {
    match s {
        Schedule::Iso8601(s) => {
            i64::from(s.period.months) * 30 * MS_PER_DAY
                + i64::from(s.period.days) * MS_PER_DAY
                + s.period.exact_ms
        }
        Schedule::Cron(_) => 3_600_000,
    }
}

/// `a <= b` with `None` as "never" (after everything).
fn le_or_never(a: Option<Timestamp>, b: Option<Timestamp>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a <= b,
        (_, None) => true,
        (None, Some(_)) => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Safety: a schedule never asks to fire at or before the time it was
    /// asked about (no run is fired twice, no loop spins on one instant).
    #[test]
    fn next_fire_is_strictly_after_the_time_asked(s in any_schedule(), t in any_time()) {
        if let Some(next) = s.next_after(t) {
            prop_assert!(next > t, "{:?}: next_after({:?}) = {:?}", s.source(), t, next);
        }
    }

    /// Safety: asking later never yields an earlier next fire (the due time
    /// the scheduler sleeps until never moves backwards).
    #[test]
    fn next_fire_is_monotonic_in_the_time_asked(s in any_schedule(), t in any_time(), d in 0i64..(40 * MS_PER_DAY)) {
        let later = Timestamp::from_millis(t.as_millis() + d);
        prop_assert!(le_or_never(s.next_after(t), s.next_after(later)), "{:?}: {:?} vs {:?}", s.source(), t, later);
    }

    /// Safety: counting missed fires agrees with walking them one by one:
    /// coalescing neither invents nor loses a run, and reports the same last one.
    #[test]
    fn fires_between_agrees_with_chaining_next_after(
        s in any_schedule(),
        after in any_time(),
        periods in 0i64..40,
        jitter in 0i64..3_600_000,
        cap in 1u64..50,
    ) {
        let until = Timestamp::from_millis(after.as_millis() + periods * typical_gap(&s) + jitter);
        let (mut count, mut last, mut t) = (0u64, None, after);
        while let Some(next) = s.next_after(t) {
            if next > until {
                break;
            }
            count += 1;
            last = Some(next);
            t = next;
            prop_assert!(count < 10_000, "runaway");
        }
        prop_assert_eq!(s.fires_between(after, until, u64::MAX), (count, last), "{:?}", s.source());
        prop_assert_eq!(s.fires_between(after, until, cap), (count.min(cap), last), "{:?}", s.source());
    }

    /// Safety: an `R<n>` schedule fires exactly n times over all time.
    #[test]
    fn r_n_fires_exactly_n_times(n in 0u32..30, start in any_time(), period in any_period(), zone in any_zone()) {
        let s = iso(&format!("R{n}/{}/{period}", format_start(start)), zone);
        let before = Timestamp::from_millis(start.as_millis() - 2 * MS_PER_DAY);
        let far = Timestamp::from_millis(start.as_millis() + 400 * 366 * MS_PER_DAY);
        prop_assert_eq!(s.fires_between(before, far, u64::MAX).0, u64::from(n));
    }

    /// Safety: a zoned daily (or weekly) job keeps its wall-clock time and
    /// never skips or doubles a day, except on a day whose wall-clock time
    /// does not exist, where it fires later by the gap and is back the day
    /// after.
    #[test]
    fn zoned_daily_jobs_keep_their_wall_clock_time(
        zone in prop::sample::select(ZONES[1..].to_vec()),
        start in any_time(),
        days in prop::sample::select(vec![1u32, 2, 7]),
    ) {
        let zone = zone.expect("named");
        let tz: Tz = zone.parse().expect("zone");
        let local_start = DateTime::from_timestamp_millis(start.as_millis()).expect("range").naive_utc();
        let s = iso(&format!("R/{}/P{days}D", local_start.format("%Y-%m-%dT%H:%M:%S%.3f")), Some(zone));
        let mut t = Timestamp::from_millis(start.as_millis() - 2 * MS_PER_DAY);
        for k in 0..(400 / days) {
            let fire = s.next_after(t).expect("forever");
            let local = DateTime::from_timestamp_millis(fire.as_millis()).expect("range").with_timezone(&tz).naive_local();
            let nominal: NaiveDateTime = local_start + chrono::Days::new(u64::from(k * days));
            if local != nominal {
                prop_assert!(tz.from_local_datetime(&nominal).single().is_none() && local.date() == nominal.date() && local > nominal,
                    "{}: fire {} at {} instead of {}", zone, k, local, nominal);
                prop_assert!(tz.from_local_datetime(&nominal).earliest().is_none(), "{}: {} exists but fired at {}", zone, nominal, local);
            }
            t = fire;
        }
    }

    /// Safety: what `describe` shows a Chronos client, sent back, fires at
    /// the same future times (for schedules without months or a zone: a
    /// zone's repeated hour and a month-end clamp move the start, as in
    /// Chronos).
    #[test]
    fn describe_read_back_gives_the_same_future_fires(
        n in prop::option::of(0u32..20),
        start in any_time(),
        period in any_period(),
        now_offset in 0i64..(30 * MS_PER_DAY),
        probe in 0i64..(60 * MS_PER_DAY),
    ) {
        prop_assume!(!period.contains('M') || period.contains('T') && !period.split('T').next().unwrap_or("").contains('M'));
        let repeat = n.map_or("R".to_owned(), |n| format!("R{n}"));
        let s = iso(&format!("{repeat}/{}/{period}", format_start(start)), None);
        let now = Timestamp::from_millis(start.as_millis() + now_offset);
        let back = Schedule::parse_iso8601(&s.describe(now), None, NOW).expect("describe parses");
        let t = Timestamp::from_millis(now.as_millis() + probe);
        prop_assert_eq!(back.next_after(t), s.next_after(t), "{} vs {}", s.source(), back.source());
        prop_assert_eq!(back.next_after(now), s.next_after(now));
    }
}

#[test]
fn a_calendar_day_that_a_zone_skips_fires_with_the_next_day() {
    // Samoa skipped 2011-12-30 (UTC-10 to UTC+14). The nominal fire of the
    // missing day, read with the offset before the gap, is the same instant
    // as the next day's: `next_after` yields it once, while `fires_between`
    // counts nominal fires (and `R<n>` spends a repetition on it).
    let daily = iso("R/2011-12-28T10:00:00/P1D", Some("Pacific/Apia"));
    check_fires(
        &daily,
        "2011-12-28T00:00:00Z",
        4,
        expect![[r#"
            2011-12-28 10:00 -10:00 (20:00Z)
            2011-12-29 10:00 -10:00 (20:00Z)
            2011-12-31 10:00 +14:00 (20:00Z)
            2012-01-01 10:00 +14:00 (20:00Z)
        "#]],
    );
    assert_eq!(
        daily.fires_between(ts("2011-12-28T00:00:00Z"), ts("2012-01-01T00:00:00Z"), 100),
        (5, Some(ts("2011-12-31T20:00:00Z")))
    );
}

/// Found by `fuzz/fuzz_targets/schedule.rs`: near the end of year 9999 the
/// next fire falls in year 10000, which `describe` wrote as `+10000-...`,
/// a start no client could send back. It describes the schedule as given.
#[test]
fn describe_past_year_9999_gives_a_start_that_parses() {
    let zone = Some("Europe/Berlin");
    let s = iso("R/2025-03-28T10:30:00/P9M", zone);
    let late = ts("9999-12-30T00:00:00Z");
    let described = s.describe(late);
    assert_eq!(described, "R/2025-03-28T10:30:00/P9M");
    Schedule::parse_iso8601(&described, zone, late).expect("parses again");
}
