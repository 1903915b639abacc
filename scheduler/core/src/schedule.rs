//! When a job runs: Chronos' ISO 8601 repeating intervals and (Drover's
//! extension) 5-field cron expressions, both in an optional IANA time zone.
//!
//! Everything here is arithmetic on the inputs: no clock is read. A caller
//! that needs "now" passes it in ([`Schedule::parse_iso8601`] for an empty
//! start, [`Schedule::describe`]).
//!
//! # ISO 8601 (`R[n]/<start>/<period>`, Chronos)
//!
//! Fire `k` (k = 0, 1, ...) is `start + k × period`, for `k < n` when the
//! schedule is `R<n>`; `R` alone repeats forever. `R0` is valid and never
//! fires: it is what Chronos (and [`Schedule::describe`]) write back once
//! `R<n>` is exhausted, so a client that reads a job and sends it back is not
//! refused.
//!
//! Each fire is computed from the start, never from the previous fire, so
//! nothing drifts: `2025-01-31/P1M` fires on Jan 31, Feb 28, Mar 31, Apr 30...
//! (a day past the month's end is clamped to its last day). The calendar
//! part of the period (years and months first, then weeks and days) moves
//! the start's wall-clock date; the exact part (hours, minutes, seconds)
//! is then added as a duration, `k × exact`.
//!
//! **With a time zone** (`scheduleTimeZone`), the start's wall-clock time is
//! read in that zone (its own offset, if it has one, is ignored, as in
//! Chronos), and the calendar part is added in local time, so a daily job
//! keeps its wall-clock time across DST changes while `PT1H` stays exactly
//! one hour. A local time that a zone's transition makes
//! - **skipped** (spring forward: 02:30 on 2025-03-30 in Europe/Berlin) is
//!   read with the offset in force *before* the gap, i.e. shifted later by
//!   the gap's length: the run fires at 03:30 CEST (01:30Z). The next day
//!   is back at 02:30. This is RFC 5545's rule and what `java.time` and
//!   Joda-Time (Chronos) do.
//! - **repeated** (fall back: 02:30 on 2025-10-26) fires once, at the
//!   first (earlier) instant, 02:30 CEST (00:30Z).
//!
//! (A zone that skips a whole calendar day, like Pacific/Apia on
//! 2011-12-30, puts that day's fire on the same instant as the next day's:
//! [`Schedule::next_after`] yields it once, [`Schedule::fires_between`]
//! counts both, and `R<n>` spends a repetition on each.)
//!
//! **Without a time zone** the start's own offset applies (`Z` when it has
//! none, or when the start is empty). A fixed offset has no DST, so days are
//! exactly 24 hours; months and years move the date in that offset.
//!
//! Starts: `YYYY-MM-DD`, optionally followed by `Thh`, `Thh:mm`, `Thh:mm:ss`
//! or `Thh:mm:ss.fff` (a longer fraction is truncated to milliseconds) and
//! an offset `Z`, `±hh`, `±hhmm` or `±hh:mm`. Periods:
//! `P[nY][nM][nW][nD][T[nH][nM][nS]]` with whole numbers, the seconds
//! optionally with a fraction of up to millisecond precision (`PT0.5S`).
//!
//! # Cron (Drover's extension)
//!
//! Five fields, `minute hour day-of-month month day-of-week`, with names
//! (`JAN`, `MON`), ranges, steps (`*/15`, `1-10/2`), lists and the
//! shorthands `@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily` and
//! `@hourly`, evaluated by the `croner` crate in the zone (UTC by default).
//! As in Vixie cron, a restricted day-of-month and a restricted day-of-week
//! combine with OR. croner's extensions (`L`, `W`, `#`, `?`, a `+` prefix
//! on the day-of-week for AND) are accepted too.
//!
//! DST follows Vixie cron (`cron(8)`), as croner implements it:
//! - a **fixed-time** job (a single minute and hour, like `30 2 * * *`)
//!   whose time a spring-forward transition skips runs at the first instant
//!   after the gap (03:00 CEST = 01:00Z on 2025-03-30 in Europe/Berlin), and
//!   a time that a fall-back transition repeats runs once, on its first pass
//!   (02:30 CEST = 00:30Z on 2025-10-26);
//! - a job with a wildcard or step in its minute or hour fields follows the
//!   wall clock: times in a gap do not exist and are skipped, times that are
//!   repeated run on both passes (`0 * * * *` fires 23 times on the spring
//!   day and 25 times on the autumn day).
//!
//! Kubernetes (through robfig/cron) skips a fixed-time run in a gap and can
//! run a repeated one twice; Drover deliberately follows Vixie cron for both.

use std::fmt;

use chrono::{
    DateTime, Days, FixedOffset, LocalResult, Months, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    TimeDelta, TimeZone, Utc,
};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use drover_time::Timestamp;

#[cfg(test)]
mod tests;

/// A job's schedule: Chronos' ISO 8601 repeating interval, or a cron
/// expression (Drover's extension).
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// `R[n]/<start>/<period>`.
    Iso8601(IsoSchedule),
    /// A 5-field cron expression in a zone.
    Cron(CronSchedule),
}

/// Why a schedule was refused: a sentence that names what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleError(pub String);

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScheduleError {}

fn err<T>(message: String) -> Result<T, ScheduleError> {
    Err(ScheduleError(message))
}

/// An ISO 8601 repeating interval, `R[n]/<start>/<period>` (see the module
/// documentation for its arithmetic).
#[derive(Debug, Clone, PartialEq)]
pub struct IsoSchedule {
    /// `n` of `R<n>`; `None` for `R` (forever).
    repetitions: Option<u32>,
    /// The wall-clock time of fire 0 in `zone`.
    start: NaiveDateTime,
    zone: Zone,
    period: Period,
    /// The text as given, with an empty start replaced by the resolved one.
    source: String,
}

/// A cron expression and the zone it is read in.
#[derive(Debug, Clone, PartialEq)]
pub struct CronSchedule {
    /// The expression, known to parse: croner's parsed pattern takes about
    /// 5 KiB, so it is not kept for each of 50,000 jobs; fire times come
    /// from a small per-thread cache of patterns by expression.
    expr: String,
    zone: Option<Tz>,
}

fn parse_pattern(expr: &str) -> Result<Cron, croner::errors::CronError> {
    CronParser::builder().seconds(Seconds::Disallowed).year(Year::Disallowed).build().parse(expr)
}

/// Parsed patterns by expression, per thread, at most this many: many jobs
/// share an expression (`0 * * * *`), so firing them parses it once. The
/// cache only saves work; results are the same without it.
const PATTERN_CACHE: usize = 1024;

thread_local! {
    static PATTERNS: std::cell::RefCell<std::collections::HashMap<String, std::rc::Rc<Cron>>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

fn cached_pattern(expr: &str) -> Option<std::rc::Rc<Cron>> {
    PATTERNS.with(|cache| {
        if let Some(c) = cache.borrow().get(expr) {
            return Some(c.clone());
        }
        let cron = std::rc::Rc::new(parse_pattern(expr).ok()?);
        let mut cache = cache.borrow_mut();
        if cache.len() >= PATTERN_CACHE {
            cache.clear();
        }
        cache.insert(expr.to_owned(), cron.clone());
        Some(cron)
    })
}

/// Where an ISO schedule's wall clock lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Zone {
    /// The start's own offset (no zone given): no DST.
    Fixed(FixedOffset),
    /// An IANA zone.
    Named(Tz),
}

impl Zone {
    /// The instant (ms) of a wall-clock time: a skipped time with the offset
    /// before the gap, a repeated one at its first instant. `None` when out
    /// of range.
    fn resolve(self, local: NaiveDateTime) -> Option<i64> {
        let utc_millis = |offset: FixedOffset| {
            local
                .and_utc()
                .timestamp_millis()
                .checked_sub(i64::from(offset.local_minus_utc()) * 1000)
        };
        match self {
            Zone::Fixed(offset) => utc_millis(offset),
            Zone::Named(tz) => match tz.from_local_datetime(&local) {
                LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t.timestamp_millis()),
                LocalResult::None => {
                    // In a gap: the offset in force a day before it is the
                    // one before the transition (zones change their offset
                    // at most once in any realistic day).
                    let before = local.checked_sub_signed(TimeDelta::days(1))?;
                    utc_millis(tz.offset_from_utc_datetime(&before).fix())
                }
            },
        }
    }

    /// The offset in force at `millis`.
    fn offset_at(self, millis: i64) -> Option<FixedOffset> {
        match self {
            Zone::Fixed(offset) => Some(offset),
            Zone::Named(tz) => {
                let utc = DateTime::from_timestamp_millis(millis)?.naive_utc();
                Some(tz.offset_from_utc_datetime(&utc).fix())
            }
        }
    }

    /// `millis` as ISO 8601 with this zone's offset there:
    /// `2025-03-30T03:30:00.000+02:00`, or `...Z` for a zero offset.
    fn format(self, millis: i64) -> Option<String> {
        let offset = self.offset_at(millis)?;
        let local = DateTime::from_timestamp_millis(millis)?.with_timezone(&offset).naive_local();
        Some(format_local(local, offset))
    }
}

fn format_local(local: NaiveDateTime, offset: FixedOffset) -> String {
    let wall = local.format("%Y-%m-%dT%H:%M:%S%.3f");
    let secs = offset.local_minus_utc();
    if secs == 0 {
        return format!("{wall}Z");
    }
    let sign = if secs < 0 { '-' } else { '+' };
    let abs = secs.unsigned_abs();
    format!("{wall}{sign}{:02}:{:02}", abs / 3600, abs / 60 % 60)
}

/// An ISO 8601 duration, split into its calendar and exact parts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Period {
    /// Years × 12 + months.
    months: u32,
    /// Weeks × 7 + days.
    days: u32,
    /// Hours, minutes and seconds, in milliseconds.
    exact_ms: i64,
    /// As given.
    text: String,
}

/// Periods longer than this are refused (they could only overflow).
const MAX_YEARS: u64 = 10_000;
const MS_PER_DAY: i64 = 86_400_000;

impl Schedule {
    /// Parses Chronos' `R[n]/<start>/<period>`. An empty start means `now`.
    /// `time_zone` (IANA, e.g. `Europe/Berlin`; empty means none) overrides
    /// the start's offset: the start's wall-clock time is read in that zone,
    /// and calendar parts of the period (days, weeks, months, years) are
    /// added in local time, so a daily job keeps its wall-clock time across
    /// DST changes; hours/minutes/seconds are exact durations. Without a
    /// zone, the start's own offset (or Z) applies. See the module
    /// documentation for skipped and repeated local times.
    pub fn parse_iso8601(
        text: &str,
        time_zone: Option<&str>,
        now: Timestamp,
    ) -> Result<Schedule, ScheduleError> {
        let zone = parse_zone(time_zone)?;
        let text = text.trim();
        let parts: Vec<&str> = text.split('/').collect();
        let [repeat, start_text, period_text] = parts[..] else {
            return err(format!(
                "The schedule `{text}` is not an ISO 8601 repeating interval \
                 `R[n]/<start>/<period>` such as `R/2025-03-01T02:30:00Z/P1D`."
            ));
        };
        let repetitions = parse_repetitions(repeat)?;
        let period = parse_period(period_text)?;

        let (start, zone, start_text) = if start_text.trim().is_empty() {
            let zone = zone.map_or(Zone::Fixed(Utc.fix()), Zone::Named);
            let offset = zone.offset_at(now.as_millis()).ok_or_else(|| out_of_range(text))?;
            let local = DateTime::from_timestamp_millis(now.as_millis())
                .ok_or_else(|| out_of_range(text))?
                .with_timezone(&offset)
                .naive_local();
            (local, zone, format_local(local, offset))
        } else {
            let (local, offset) = parse_start(start_text)?;
            let zone = match (zone, offset) {
                (Some(tz), _) => Zone::Named(tz),
                (None, Some(offset)) => Zone::Fixed(offset),
                (None, None) => Zone::Fixed(Utc.fix()),
            };
            (local, zone, start_text.to_owned())
        };
        let schedule = IsoSchedule {
            repetitions,
            start,
            zone,
            period,
            source: format!("{repeat}/{start_text}/{period_text}"),
        };
        if schedule.fire(0).is_none() {
            return Err(out_of_range(text));
        }
        Ok(Schedule::Iso8601(schedule))
    }

    /// Parses a 5-field cron expression (minute hour day-of-month month
    /// day-of-week, with names, ranges, steps, lists, and the shorthands
    /// `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@hourly`)
    /// evaluated in `time_zone` (default UTC; empty means none), DST-correct
    /// as Vixie cron: a fixed-time job whose time a spring-forward
    /// transition skips runs at the first instant after the gap; a repeated
    /// autumn time runs once (see the module documentation).
    pub fn parse_cron(expr: &str, time_zone: Option<&str>) -> Result<Schedule, ScheduleError> {
        let zone = parse_zone(time_zone)?;
        let trimmed = expr.trim();
        if trimmed.is_empty() {
            return err(
                "The cron expression is empty: expected five fields (minute hour day-of-month \
                 month day-of-week) such as `30 2 * * *`, or a shorthand such as `@daily`."
                    .to_owned(),
            );
        }
        if let Some(name) = trimmed.strip_prefix('@') {
            const SHORTHANDS: [&str; 6] =
                ["yearly", "annually", "monthly", "weekly", "daily", "hourly"];
            if !SHORTHANDS.iter().any(|s| s.eq_ignore_ascii_case(name)) {
                return err(format!(
                    "The cron shorthand `{trimmed}` is not supported: use @yearly, @annually, \
                     @monthly, @weekly, @daily or @hourly."
                ));
            }
        } else {
            let fields = trimmed.split_whitespace().count();
            if fields != 5 {
                return err(format!(
                    "The cron expression `{trimmed}` has {fields} field{}: Drover expects five \
                     (minute hour day-of-month month day-of-week).",
                    if fields == 1 { "" } else { "s" }
                ));
            }
            // croner skips empty list items: `,` would be a field that
            // matches nothing, and finding that it never fires takes a
            // minute-by-minute search of 3,000 years (seconds of CPU).
            if let Some(field) =
                trimmed.split_whitespace().find(|f| f.split(',').any(str::is_empty))
            {
                return err(format!(
                    "The cron expression `{trimmed}` has an empty list item in `{field}`."
                ));
            }
        }
        parse_pattern(trimmed)
            .or_else(|e| err(format!("The cron expression `{trimmed}` is invalid: {e}")))?;
        let schedule = CronSchedule { expr: trimmed.to_owned(), zone };
        // Refuse what can never fire (`0 0 30 2 *`). A fixed reference time
        // keeps parsing deterministic; a date that exists once in 28 years
        // (Feb 29 on a Monday, OR-ed) is found from any reference.
        if schedule.next_after(Timestamp::EPOCH).is_none() {
            return err(format!("The cron expression `{trimmed}` never fires."));
        }
        Ok(Schedule::Cron(schedule))
    }

    /// The first fire time strictly after `after`; `None` when the schedule
    /// is exhausted (`R<n>`) or would fire beyond representable time.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        match self {
            Schedule::Iso8601(s) => s.next_after(after.as_millis()).map(Timestamp::from_millis),
            Schedule::Cron(s) => s.next_after(after),
        }
    }

    /// The fire times in `(after, until]`: how many there are (saturating at
    /// `cap`) and the last one (always the latest in the window, even when
    /// the count saturated). Used to coalesce missed runs into one and count
    /// them. For ISO schedules this is a handful of evaluations whatever the
    /// window (arithmetic for fixed-length periods, a galloping search
    /// otherwise); for cron it walks at most `cap` fires.
    pub fn fires_between(
        &self,
        after: Timestamp,
        until: Timestamp,
        cap: u64,
    ) -> (u64, Option<Timestamp>) {
        if until <= after {
            return (0, None);
        }
        match self {
            Schedule::Iso8601(s) => {
                let lo = s.first_after(after.as_millis());
                let hi = s.first_after(until.as_millis());
                let count = hi - lo;
                let last =
                    if count > 0 { s.fire(hi - 1).map(Timestamp::from_millis) } else { None };
                (count.min(cap), last)
            }
            Schedule::Cron(s) => s.fires_between(after, until, cap),
        }
    }

    /// An ISO 8601 schedule's start: its fire 0 (the start resolved in its
    /// zone), even for `R0`, which never fires. `None` for cron.
    pub fn start(&self) -> Option<Timestamp> {
        match self {
            Schedule::Iso8601(s) => s.fire(0).map(Timestamp::from_millis),
            Schedule::Cron(_) => None,
        }
    }

    /// `R<n>`'s n; `None` for `R` (forever) and for cron.
    pub fn repetitions(&self) -> Option<u32> {
        match self {
            Schedule::Iso8601(s) => s.repetitions,
            Schedule::Cron(_) => None,
        }
    }

    /// The IANA zone, if one was given.
    pub fn time_zone(&self) -> Option<&str> {
        match self {
            Schedule::Iso8601(IsoSchedule { zone: Zone::Named(tz), .. }) => Some(tz.name()),
            Schedule::Iso8601(_) => None,
            Schedule::Cron(s) => s.zone.map(|tz| tz.name()),
        }
    }

    /// The schedule as a Chronos client expects to read it back at `now`.
    /// ISO 8601: `R<remaining>/<next fire>/<period as given>`, where the
    /// fires at or before `now` count as done, the next fire is written with
    /// the zone's (or the start's) offset at that instant, or `Z`; `R/...`
    /// when infinite. An exhausted schedule reads `R0/<when the next would
    /// have been>/<period>` (valid, never fires). Cron: the expression.
    ///
    /// Read back with the same zone, the description gives the same future
    /// fires, except after a fire that a DST gap shifted (its shifted
    /// wall-clock time becomes the new start), as in Chronos.
    pub fn describe(&self, now: Timestamp) -> String {
        match self {
            Schedule::Iso8601(s) => s.describe(now.as_millis()),
            Schedule::Cron(s) => s.expr.clone(),
        }
    }

    /// The text originally given (without surrounding whitespace), with an
    /// empty start replaced by the start it resolved to: parsing it again
    /// with the same zone (at any `now`) gives back an equal schedule.
    pub fn source(&self) -> String {
        match self {
            Schedule::Iso8601(s) => s.source.clone(),
            Schedule::Cron(s) => s.expr.clone(),
        }
    }
}

impl IsoSchedule {
    /// Fire `k`'s instant (ms), ignoring the repetition limit; `None` past
    /// the representable range.
    fn fire(&self, k: u64) -> Option<i64> {
        let mut local = self.start;
        if self.period.months > 0 {
            let months = u32::try_from(k.checked_mul(u64::from(self.period.months))?).ok()?;
            local = local.checked_add_months(Months::new(months))?;
        }
        if self.period.days > 0 {
            local =
                local.checked_add_days(Days::new(k.checked_mul(u64::from(self.period.days))?))?;
        }
        let base = self.zone.resolve(local)?;
        let exact = i64::try_from(k).ok()?.checked_mul(self.period.exact_ms)?;
        base.checked_add(exact)
    }

    /// How many fires the schedule has (`u64::MAX` for forever).
    fn limit(&self) -> u64 {
        self.repetitions.map_or(u64::MAX, u64::from)
    }

    /// The fixed step (ms) when every fire is the same duration after the
    /// previous: no months, and days only in a fixed offset.
    fn fixed_step(&self) -> Option<i64> {
        let fixed_days = self.period.days == 0 || matches!(self.zone, Zone::Fixed(_));
        if self.period.months == 0 && fixed_days {
            Some(i64::from(self.period.days) * MS_PER_DAY + self.period.exact_ms)
        } else {
            None
        }
    }

    /// The number of fires at or before `t`: the index of the first fire
    /// strictly after `t` (the limit when there is none). Fires are
    /// non-decreasing in `k`, which makes this a search.
    fn first_after(&self, t: i64) -> u64 {
        let limit = self.limit();
        let at_or_before = |k: u64| matches!(self.fire(k), Some(f) if f <= t);
        if limit == 0 || !at_or_before(0) {
            return 0;
        }
        if let Some(step) = self.fixed_step() {
            let base = self.fire(0).unwrap_or(i64::MAX);
            let k = (i128::from(t) - i128::from(base)) / i128::from(step) + 1;
            return u64::try_from(k).unwrap_or(u64::MAX).min(limit);
        }
        // Gallop to bracket the answer, then bisect: fire(lo) <= t, and
        // fire(hi) > t or hi is the limit.
        let (mut lo, mut hi) = (0u64, 1u64.min(limit));
        while hi < limit && at_or_before(hi) {
            lo = hi;
            hi = hi.saturating_mul(2).min(limit);
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if at_or_before(mid) { lo = mid } else { hi = mid }
        }
        hi
    }

    fn next_after(&self, t: i64) -> Option<i64> {
        let k = self.first_after(t);
        if k < self.limit() { self.fire(k) } else { None }
    }

    fn describe(&self, now: i64) -> String {
        let done = self.first_after(now);
        let next = self.fire(done).and_then(|f| self.zone.format(f));
        // A next fire past year 9999 (`+10000-...`) is no ISO 8601 start a
        // client could send back: the schedule as given is.
        if next.as_ref().is_some_and(|t| !t.starts_with(|c: char| c.is_ascii_digit())) {
            return self.source.clone();
        }
        let start = next.unwrap_or_else(|| {
            let offset = self.zone.resolve(self.start).and_then(|f| self.zone.offset_at(f));
            format_local(self.start, offset.unwrap_or(Utc.fix()))
        });
        let repeat = match self.repetitions {
            Some(n) => format!("R{}", u64::from(n) - done.min(u64::from(n))),
            None => "R".to_owned(),
        };
        format!("{repeat}/{start}/{}", self.period.text)
    }
}

impl CronSchedule {
    fn tz(&self) -> Tz {
        self.zone.unwrap_or(Tz::UTC)
    }

    /// `t` in the zone, truncated to the second (cron fires on whole
    /// seconds, so "after t" is "after its second").
    fn at(&self, t: Timestamp) -> Option<DateTime<Tz>> {
        let secs = t.as_millis().div_euclid(1000);
        DateTime::from_timestamp(secs, 0).map(|utc| utc.with_timezone(&self.tz()))
    }

    /// The parsed pattern (the expression was validated when parsed).
    fn cron(&self) -> Option<std::rc::Rc<Cron>> {
        cached_pattern(&self.expr)
    }

    fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        self.next_with(&*self.cron()?, after)
    }

    fn next_with(&self, cron: &Cron, after: Timestamp) -> Option<Timestamp> {
        let from = self.at(after)?;
        let next = cron.find_next_occurrence(&from, false).ok()?;
        Some(Timestamp::from_millis(next.timestamp_millis()))
    }

    /// The last fire at or before `until`.
    fn last_until(&self, cron: &Cron, until: Timestamp) -> Option<Timestamp> {
        let from = self.at(until)?;
        let prev = cron.find_previous_occurrence(&from, true).ok()?;
        Some(Timestamp::from_millis(prev.timestamp_millis()))
    }

    fn fires_between(
        &self,
        after: Timestamp,
        until: Timestamp,
        cap: u64,
    ) -> (u64, Option<Timestamp>) {
        let Some(cron) = self.cron() else { return (0, None) };
        let (mut count, mut last, mut cursor) = (0u64, None, after);
        while count < cap {
            match self.next_with(&cron, cursor) {
                Some(next) if next <= until => {
                    count += 1;
                    last = Some(next);
                    cursor = next;
                }
                _ => return (count, last),
            }
        }
        // Saturated: the last fire is found searching back from `until`.
        let last = self.last_until(&cron, until).filter(|&t| t > after);
        (count, last)
    }
}

fn out_of_range(text: &str) -> ScheduleError {
    ScheduleError(format!("The schedule `{text}` starts outside the supported range of dates."))
}

fn parse_zone(time_zone: Option<&str>) -> Result<Option<Tz>, ScheduleError> {
    match time_zone.map(str::trim) {
        None | Some("") => Ok(None),
        Some(name) => name.parse::<Tz>().map(Some).or_else(|_| {
            err(format!(
                "The time zone `{name}` is not a known IANA time zone such as `Europe/Berlin` or `UTC`."
            ))
        }),
    }
}

fn parse_repetitions(text: &str) -> Result<Option<u32>, ScheduleError> {
    let bad = || {
        err(format!(
            "The repetitions `{text}` are not `R` (forever) or `R<n>` with n a whole number \
             (e.g. `R5`)."
        ))
    };
    let Some(digits) = text.strip_prefix('R') else { return bad() };
    if digits.is_empty() {
        return Ok(None);
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return bad();
    }
    digits
        .parse::<u32>()
        .map(Some)
        .or_else(|_| err(format!("The repetitions `{text}` are too many: at most R{}.", u32::MAX)))
}

/// Parses a start: the wall-clock time and its offset, if it has one.
fn parse_start(text: &str) -> Result<(NaiveDateTime, Option<FixedOffset>), ScheduleError> {
    let bad = |why: &str| {
        err(format!(
            "The start `{text}` is not an ISO 8601 date-time such as `2025-03-01T02:30:00Z`: {why}."
        ))
    };
    let (date_text, rest) = text.split_at(text.find('T').unwrap_or(text.len()));
    let date_fields: Vec<&str> = date_text.split('-').collect();
    let [y, m, d] = date_fields[..] else { return bad("the date is not YYYY-MM-DD") };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return bad("the date is not YYYY-MM-DD");
    }
    let (Some(y), Some(m), Some(d)) = (digits(y), digits(m), digits(d)) else {
        return bad("the date is not YYYY-MM-DD");
    };
    let Some(date) = i32::try_from(y).ok().and_then(|y| NaiveDate::from_ymd_opt(y, m, d)) else {
        return bad("that day does not exist");
    };
    let Some(rest) = rest.strip_prefix('T') else {
        return Ok((date.and_time(NaiveTime::MIN), None));
    };
    // Split the time from its offset.
    let offset_at = rest.find(['Z', '+', '-']).unwrap_or(rest.len());
    let (time_text, offset_text) = rest.split_at(offset_at);
    let (hms, fraction) = match time_text.split_once(['.', ',']) {
        Some((hms, f)) => (hms, Some(f)),
        None => (time_text, None),
    };
    let fields: Vec<&str> = hms.split(':').collect();
    if fields.is_empty() || fields.len() > 3 || fields.iter().any(|f| f.len() != 2) {
        return bad("the time is not hh:mm:ss");
    }
    let Some(values) = fields.iter().map(|f| digits(f)).collect::<Option<Vec<u32>>>() else {
        return bad("the time is not hh:mm:ss");
    };
    let (h, mi, s) =
        (values[0], values.get(1).copied().unwrap_or(0), values.get(2).copied().unwrap_or(0));
    let millis = match fraction {
        None => 0,
        Some(f)
            if fields.len() == 3
                && !f.is_empty()
                && f.len() <= 9
                && f.bytes().all(|b| b.is_ascii_digit()) =>
        {
            let padded = format!("{f:0<3}");
            digits(&padded[..3]).unwrap_or(0)
        }
        Some(_) => return bad("the fraction of a second is not 1 to 9 digits after the seconds"),
    };
    let Some(time) = NaiveTime::from_hms_milli_opt(h, mi, s, millis).filter(|_| s < 60) else {
        return bad("the time of day is out of range");
    };
    let offset = match offset_text {
        "" => None,
        "Z" => Some(Utc.fix()),
        _ => {
            let sign = if offset_text.starts_with('-') { -1 } else { 1 };
            let body = &offset_text[1..];
            if !body.is_ascii() {
                return bad("the offset is not Z, ±hh, ±hhmm or ±hh:mm");
            }
            let (hh, mm) = match body.len() {
                2 => (body, "00"),
                4 => body.split_at(2),
                5 if body.as_bytes()[2] == b':' => (&body[..2], &body[3..]),
                _ => return bad("the offset is not Z, ±hh, ±hhmm or ±hh:mm"),
            };
            let (Some(hh), Some(mm)) = (digits(hh), digits(mm)) else {
                return bad("the offset is not Z, ±hh, ±hhmm or ±hh:mm");
            };
            if hh > 18 || mm > 59 || hh * 60 + mm > 18 * 60 {
                return bad("the offset is beyond ±18:00");
            }
            let secs = i32::try_from((hh * 60 + mm) * 60).unwrap_or(0) * sign;
            FixedOffset::east_opt(secs)
        }
    };
    Ok((date.and_time(time), offset))
}

/// A string of ASCII digits as a number.
fn digits(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Parses `P[nY][nM][nW][nD][T[nH][nM][nS]]`.
fn parse_period(text: &str) -> Result<Period, ScheduleError> {
    let bad = |why: &str| {
        err(format!(
            "The period `{text}` is not an ISO 8601 duration such as `PT1H` or `P1D`: {why}."
        ))
    };
    let Some(body) = text.strip_prefix('P') else { return bad("it does not start with `P`") };
    let (date_part, time_part) = match body.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (body, None),
    };
    if body.is_empty() || time_part == Some("") {
        return bad("it names no years, months, weeks, days, hours, minutes or seconds");
    }
    // Each part: its number (whole, and for seconds optionally with a
    // fraction in milliseconds), in designator order.
    let mut values = [0u64; 7]; // Y M W D H M S
    let mut seconds_ms = 0u64;
    for (part, designators, first) in
        [(date_part, "YMWD", 0usize), (time_part.unwrap_or(""), "HMS", 4)]
    {
        let mut rest = part;
        let mut next = 0; // the next designator allowed
        while !rest.is_empty() {
            let end = rest.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(rest.len());
            let (number, tail) = rest.split_at(end);
            let Some(designator) = tail.chars().next() else {
                return bad(&format!("`{number}` has no designator"));
            };
            let Some(pos) = designators[next..].find(designator).map(|p| p + next) else {
                return bad(&format!("`{designator}` is unknown or out of order here"));
            };
            let slot = first + pos;
            let (whole, fraction) = match number.split_once(['.', ',']) {
                Some((w, f)) => (w, Some(f)),
                None => (number, None),
            };
            if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
                return bad(&format!("`{number}{designator}` is not a whole number of units"));
            }
            let Ok(whole) = whole.parse::<u64>() else {
                return bad(&format!("`{number}{designator}` is too large"));
            };
            values[slot] = whole;
            if let Some(f) = fraction {
                if slot != 6 {
                    return bad("only seconds may have a fraction (e.g. `PT1H30M`, not `PT1.5H`)");
                }
                if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
                    return bad("the fraction of a second is not digits");
                }
                let padded = format!("{f:0<3}");
                let (ms, finer) = padded.split_at(3);
                if finer.bytes().any(|b| b != b'0') {
                    return bad("schedules have millisecond precision");
                }
                seconds_ms = u64::from(digits(ms).unwrap_or(0));
            }
            next = pos + 1;
            rest = &tail[designator.len_utf8()..];
        }
    }
    let [years, months, weeks, days, hours, minutes, seconds] = values;
    let too_long = || bad(&format!("it is longer than {MAX_YEARS} years"));
    let total_months = years.checked_mul(12).and_then(|y| y.checked_add(months));
    let total_days = weeks.checked_mul(7).and_then(|w| w.checked_add(days));
    let exact_ms = hours
        .checked_mul(3600)
        .and_then(|h| minutes.checked_mul(60).and_then(|m| h.checked_add(m)))
        .and_then(|s| s.checked_add(seconds))
        .and_then(|s| s.checked_mul(1000))
        .and_then(|ms| ms.checked_add(seconds_ms));
    let (Some(total_months), Some(total_days), Some(exact_ms)) =
        (total_months, total_days, exact_ms)
    else {
        return too_long();
    };
    if total_months > MAX_YEARS * 12
        || total_days > MAX_YEARS * 366
        || exact_ms > MAX_YEARS * 366 * MS_PER_DAY as u64
    {
        return too_long();
    }
    if total_months == 0 && total_days == 0 && exact_ms == 0 {
        return err(format!(
            "The period `{text}` is zero: a repeating schedule needs a positive period."
        ));
    }
    Ok(Period {
        months: u32::try_from(total_months).unwrap_or(u32::MAX),
        days: u32::try_from(total_days).unwrap_or(u32::MAX),
        exact_ms: i64::try_from(exact_ms).unwrap_or(i64::MAX),
        text: text.to_owned(),
    })
}
