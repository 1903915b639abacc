//! Drover's scheduling core: pure decisions, no I/O.
//!
//! This crate never opens a socket, reads a clock, spawns a task or touches
//! the store. It takes a snapshot of state, an input and `now`, and returns
//! what should happen as values ([`scheduler::Effect`]s). The daemon
//! (`scheduler/daemon`) performs those effects and feeds the results back.
//!
//! - [`ids`]: app, instance and task ids in Marathon's forms.
//! - [`app`]: the validated app spec.
//! - [`deployment`]: deployment plans and the rolling-upgrade rule.
//! - [`instance`]: instances and their tasks.
//! - [`offer`]: offers as the core sees them: agent facts and role pools.
//! - [`ports`]: port ranges and port assignment.
//! - [`job`]: batch jobs (Chronos' jobs) and the records of their runs.
//! - [`schedule`]: ISO 8601 repeating intervals and cron expressions.
//! - [`constraints`]: Marathon's placement constraints.
//! - [`placement`]: the filter pipeline that matches instances to offers.
//! - [`scheduler`]: the state machine that turns commands, offers and
//!   status updates into persist/call/reply effects.

pub mod app;
pub mod constraints;
pub mod deployment;
pub mod ids;
pub mod instance;
pub mod job;
pub mod offer;
pub mod placement;
pub mod ports;
pub mod schedule;
pub mod scheduler;

use drover_time::Timestamp;

/// Days since 1970-01-01 to a (year, month, day) civil date (proleptic
/// Gregorian), after H. Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) to days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats a timestamp as Marathon formats versions and times:
/// `2014-03-01T23:42:20.938Z` (UTC, always three fraction digits).
pub fn format_version(t: Timestamp) -> String {
    let ms = t.as_millis();
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, mo, d) = civil_from_days(days);
    let (h, mi, s, frac) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:03}Z")
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff]Z` (the form [`format_version`] writes).
pub fn parse_version(text: &str) -> Option<Timestamp> {
    let b = text.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(r)?;
        if s.bytes().all(|c| c.is_ascii_digit()) { s.parse().ok() } else { None }
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let rest = &text[19..];
    let frac_ms = if let Some(f) = rest.strip_prefix('.') {
        let digits = f.strip_suffix('Z')?;
        if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let padded = format!("{digits:0<3}");
        padded[..3].parse::<i64>().ok()?
    } else if rest == "Z" {
        0
    } else {
        return None;
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(y, mo as u32, d as u32);
    if civil_from_days(days) != (y, mo as u32, d as u32) {
        return None;
    }
    Some(Timestamp::from_millis(
        days * 86_400_000 + h * 3_600_000 + mi * 60_000 + s * 1000 + frac_ms,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn versions_format_like_marathon() {
        assert_eq!(format_version(Timestamp::EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_version(Timestamp::from_millis(1_393_717_340_938)),
            "2014-03-01T23:42:20.938Z"
        );
        assert_eq!(
            format_version(Timestamp::from_millis(951_782_400_000)),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn versions_parse_back() {
        assert_eq!(
            parse_version("2014-03-01T23:42:20.938Z"),
            Some(Timestamp::from_millis(1_393_717_340_938))
        );
        assert_eq!(
            parse_version("2014-03-01T23:42:20Z"),
            Some(Timestamp::from_millis(1_393_717_340_000))
        );
        assert_eq!(
            parse_version("2014-03-01T23:42:20.9Z"),
            Some(Timestamp::from_millis(1_393_717_340_900))
        );
        for bad in [
            "",
            "2014-02-30T00:00:00.000Z",
            "2014-03-01 23:42:20.938Z",
            "2014-03-01T23:42:20.938",
            "x",
        ] {
            assert_eq!(parse_version(bad), None, "{bad}");
        }
    }

    proptest! {
        /// Property: formatting then parsing a version gives the same instant.
        #[test]
        fn format_parse_round_trip(ms in 0i64..8_000_000_000_000) {
            let t = Timestamp::from_millis(ms);
            prop_assert_eq!(parse_version(&format_version(t)), Some(t));
        }
    }
}
