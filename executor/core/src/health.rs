//! Health checks of one running task: when to probe, how results count,
//! when the task must die. Pure: the machine feeds it `now` and results.
//!
//! Marathon's semantics, per check:
//! - the first probe starts `delay` after the task became RUNNING, each
//!   next one `interval` after the previous result (never two at once);
//! - a probe slower than `timeout` failed (the shell reports it as
//!   [`ProbeOutcome::TimedOut`]);
//! - a failure is *counted* once the check has succeeded once or once
//!   `grace_period` has passed since RUNNING; failures before that change
//!   nothing;
//! - after `max_consecutive_failures` counted failures in a row (0: never)
//!   the task must be killed.
//!
//! The task is healthy when every check's last counted result is a
//! success, unhealthy as soon as one's is a failure, and unknown before
//! that. Only changes of that verdict are reported.

use std::time::Duration;

use drover_time::Timestamp;

use crate::task::{HealthCheck, Probe, ProbeOutcome};

/// A probe the shell must run now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DueProbe {
    pub(crate) check: usize,
    pub(crate) seq: u64,
    pub(crate) probe: Probe,
    pub(crate) timeout: Duration,
}

/// What one result changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// The task's health flipped (or became known): the new value and the
    /// status message.
    pub(crate) changed: Option<(bool, String)>,
    /// The task must be killed; the message of its terminal update.
    pub(crate) kill: Option<String>,
}

#[derive(Debug, Clone)]
struct CheckState {
    spec: HealthCheck,
    /// When the next probe is due; `None` while one is in flight.
    next_at: Option<Timestamp>,
    /// The sequence number of the probe in flight.
    in_flight: Option<u64>,
    consecutive: u32,
    succeeded: bool,
    /// The last counted result.
    last: Option<bool>,
    last_cause: String,
}

/// The health checks of one task, from RUNNING on.
#[derive(Debug, Clone)]
pub(crate) struct TaskHealth {
    checks: Vec<CheckState>,
    running_since: Timestamp,
    /// The health last reported.
    reported: Option<bool>,
    next_seq: u64,
}

impl TaskHealth {
    /// Starts the checks of a task that became RUNNING at `now`.
    pub(crate) fn new(checks: &[HealthCheck], now: Timestamp) -> Self {
        let checks = checks
            .iter()
            .map(|spec| CheckState {
                spec: spec.clone(),
                next_at: Some(now.plus(spec.delay)),
                in_flight: None,
                consecutive: 0,
                succeeded: false,
                last: None,
                last_cause: String::new(),
            })
            .collect();
        TaskHealth { checks, running_since: now, reported: None, next_seq: 0 }
    }

    /// The health last reported.
    #[cfg(test)]
    pub(crate) fn healthy(&self) -> Option<bool> {
        self.reported
    }

    /// When the next probe is due.
    pub(crate) fn next_deadline(&self) -> Option<Timestamp> {
        self.checks.iter().filter_map(|c| c.next_at).min()
    }

    /// The probes due at `now`, marked in flight.
    pub(crate) fn take_due(&mut self, now: Timestamp) -> Vec<DueProbe> {
        let mut due = Vec::new();
        for (check, state) in self.checks.iter_mut().enumerate() {
            if state.next_at.is_some_and(|at| at <= now) {
                self.next_seq += 1;
                state.next_at = None;
                state.in_flight = Some(self.next_seq);
                due.push(DueProbe {
                    check,
                    seq: self.next_seq,
                    probe: state.spec.probe.clone(),
                    timeout: state.spec.timeout,
                });
            }
        }
        due
    }

    /// Records the result of probe `seq` of `check`; `None` when no such
    /// probe is in flight.
    pub(crate) fn record(
        &mut self,
        check: usize,
        seq: u64,
        outcome: ProbeOutcome,
        now: Timestamp,
    ) -> Option<Verdict> {
        let running_since = self.running_since;
        let state = self.checks.get_mut(check).filter(|s| s.in_flight == Some(seq))?;
        state.in_flight = None;
        state.next_at = Some(now.plus(state.spec.interval));
        let cause = match outcome {
            ProbeOutcome::Healthy => {
                state.consecutive = 0;
                state.succeeded = true;
                state.last = Some(true);
                None
            }
            ProbeOutcome::Unhealthy(cause) => Some(cause),
            ProbeOutcome::TimedOut => Some(format!("timed out after {:?}", state.spec.timeout)),
        };
        if let Some(cause) = cause {
            let in_grace = !state.succeeded && now < running_since.plus(state.spec.grace_period);
            if in_grace {
                return Some(Verdict::default());
            }
            state.consecutive = state.consecutive.saturating_add(1);
            state.last = Some(false);
            state.last_cause = cause;
        }
        let mut verdict = Verdict::default();
        let state = &self.checks[check];
        let max = state.spec.max_consecutive_failures;
        if state.last == Some(false) && max > 0 && state.consecutive >= max {
            let times = match state.consecutive {
                1 => "once".to_owned(),
                n => format!("{n} times in a row"),
            };
            verdict.kill = Some(format!(
                "Killed after failing health check {} ({}) {times}: {}",
                check + 1,
                state.spec.probe,
                state.last_cause
            ));
        }
        let health = self.aggregate();
        if health.is_some() && health != self.reported {
            self.reported = health;
            verdict.changed = match health {
                Some(true) => Some((true, "Task is healthy".to_owned())),
                _ => self.first_failing(check).map(|(n, c)| {
                    (
                        false,
                        format!(
                            "Health check {} ({}) failed: {}",
                            n + 1,
                            c.spec.probe,
                            c.last_cause
                        ),
                    )
                }),
            };
        }
        Some(verdict)
    }

    /// Unhealthy if a check's last counted result failed; healthy when all
    /// succeeded; unknown otherwise.
    fn aggregate(&self) -> Option<bool> {
        if self.checks.iter().any(|c| c.last == Some(false)) {
            Some(false)
        } else if self.checks.iter().all(|c| c.last == Some(true)) {
            Some(true)
        } else {
            None
        }
    }

    /// The failing check to blame: `preferred` if it fails, else the first.
    fn first_failing(&self, preferred: usize) -> Option<(usize, &CheckState)> {
        let failing = |(_, c): &(usize, &CheckState)| c.last == Some(false);
        self.checks
            .iter()
            .enumerate()
            .filter(failing)
            .find(|(n, _)| *n == preferred)
            .or_else(|| self.checks.iter().enumerate().find(failing))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::task::Command;

    const T0: Timestamp = Timestamp::from_secs(1_000);

    fn at(secs: u64) -> Timestamp {
        T0.plus(Duration::from_secs(secs))
    }

    fn check(port: u16, max: u32) -> HealthCheck {
        HealthCheck {
            probe: Probe::Tcp { port, ipv6: false },
            delay: Duration::from_secs(15),
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
            grace_period: Duration::from_secs(30),
            max_consecutive_failures: max,
        }
    }

    /// Runs the probe of `check` due at `now` and records `outcome`.
    fn probe(h: &mut TaskHealth, check: usize, now: Timestamp, outcome: ProbeOutcome) -> Verdict {
        let due = h.take_due(now);
        let p = due.iter().find(|p| p.check == check).expect("a probe is due");
        h.record(check, p.seq, outcome, now).expect("in flight")
    }

    fn fail(cause: &str) -> ProbeOutcome {
        ProbeOutcome::Unhealthy(cause.to_owned())
    }

    #[test]
    fn the_first_probe_waits_for_the_delay_and_the_next_for_the_interval_after_the_result() {
        let mut h = TaskHealth::new(&[check(80, 3)], T0);
        assert_eq!(h.next_deadline(), Some(at(15)));
        assert!(h.take_due(at(14)).is_empty());
        let due = h.take_due(at(15));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].timeout, Duration::from_secs(2));
        assert_eq!(h.next_deadline(), None, "nothing is due while a probe is in flight");
        assert!(h.take_due(at(100)).is_empty(), "never two probes of a check at once");
        h.record(0, due[0].seq, ProbeOutcome::Healthy, at(17)).unwrap();
        assert_eq!(h.next_deadline(), Some(at(27)));
    }

    #[test]
    fn results_of_probes_not_in_flight_are_refused() {
        let mut h = TaskHealth::new(&[check(80, 3)], T0);
        assert_eq!(h.record(0, 1, ProbeOutcome::Healthy, at(1)), None);
        let seq = h.take_due(at(15))[0].seq;
        assert_eq!(h.record(0, seq + 1, ProbeOutcome::Healthy, at(16)), None);
        assert_eq!(h.record(7, seq, ProbeOutcome::Healthy, at(16)), None);
        assert!(h.record(0, seq, ProbeOutcome::Healthy, at(16)).is_some());
        assert_eq!(h.record(0, seq, ProbeOutcome::Healthy, at(16)), None, "only once");
    }

    #[test]
    fn the_first_result_and_every_flip_are_reported_but_repeats_are_not() {
        let mut h = TaskHealth::new(&[check(80, 0)], T0);
        let v = probe(&mut h, 0, at(15), ProbeOutcome::Healthy);
        assert_eq!(v.changed, Some((true, "Task is healthy".to_owned())));
        assert_eq!(h.healthy(), Some(true));
        assert_eq!(probe(&mut h, 0, at(25), ProbeOutcome::Healthy), Verdict::default());
        let v = probe(&mut h, 0, at(35), fail("connection refused"));
        assert_eq!(
            v.changed,
            Some((
                false,
                "Health check 1 (TCP 127.0.0.1:80) failed: connection refused".to_owned()
            ))
        );
        assert_eq!(probe(&mut h, 0, at(45), fail("connection refused")), Verdict::default());
        let v = probe(&mut h, 0, at(55), ProbeOutcome::Healthy);
        assert_eq!(v.changed.map(|c| c.0), Some(true));
    }

    #[test]
    fn failures_in_the_grace_period_count_only_after_a_first_success() {
        let mut h = TaskHealth::new(&[check(80, 1)], T0);
        assert_eq!(probe(&mut h, 0, at(15), fail("refused")), Verdict::default());
        assert_eq!(probe(&mut h, 0, at(25), ProbeOutcome::TimedOut), Verdict::default());
        assert_eq!(h.healthy(), None);
        // Past the grace period (30 s) failures count.
        let v = probe(&mut h, 0, at(35), ProbeOutcome::TimedOut);
        assert_eq!(
            v.kill.as_deref(),
            Some("Killed after failing health check 1 (TCP 127.0.0.1:80) once: timed out after 2s")
        );
        assert_eq!(v.changed.map(|c| c.0), Some(false));

        // A success inside the grace period ends it early.
        let mut h = TaskHealth::new(&[check(80, 1)], T0);
        probe(&mut h, 0, at(15), ProbeOutcome::Healthy);
        let v = probe(&mut h, 0, at(25), fail("HTTP 503"));
        assert!(v.kill.is_some(), "{v:?}");
    }

    #[test]
    fn the_kill_comes_after_max_consecutive_failures_and_successes_reset_the_count() {
        let mut h = TaskHealth::new(&[check(80, 3)], T0);
        probe(&mut h, 0, at(15), ProbeOutcome::Healthy);
        assert!(probe(&mut h, 0, at(25), fail("a")).kill.is_none());
        assert!(probe(&mut h, 0, at(35), fail("b")).kill.is_none());
        probe(&mut h, 0, at(45), ProbeOutcome::Healthy);
        assert!(probe(&mut h, 0, at(55), fail("c")).kill.is_none());
        assert!(probe(&mut h, 0, at(65), fail("d")).kill.is_none());
        let v = probe(&mut h, 0, at(75), fail("e"));
        assert_eq!(
            v.kill.as_deref(),
            Some("Killed after failing health check 1 (TCP 127.0.0.1:80) 3 times in a row: e")
        );
    }

    #[test]
    fn zero_max_failures_never_kills() {
        let mut h = TaskHealth::new(&[check(80, 0)], T0);
        for n in 0..50 {
            assert!(probe(&mut h, 0, at(15 + 10 * n), fail("x")).kill.is_none());
        }
        assert_eq!(h.healthy(), Some(false));
    }

    #[test]
    fn a_task_is_healthy_only_when_every_check_passed_and_the_failing_one_is_named() {
        let mut cmd = check(0, 0);
        cmd.probe = Probe::Command {
            command: Command::Shell("test -f /ready".into()),
            env: BTreeMap::new(),
        };
        let mut h = TaskHealth::new(&[check(80, 0), cmd], T0);
        let due = h.take_due(at(15));
        assert_eq!(due.len(), 2);
        let v = h.record(0, due[0].seq, ProbeOutcome::Healthy, at(15)).unwrap();
        assert_eq!(v.changed, None, "the second check has no result yet");
        let v = h.record(1, due[1].seq, fail("exit status 1"), at(60)).unwrap();
        assert_eq!(
            v.changed,
            Some((false, "Health check 2 (COMMAND `test -f /ready`) failed: exit status 1".into()))
        );
        let v = probe(&mut h, 1, at(70), ProbeOutcome::Healthy);
        assert_eq!(v.changed.map(|c| c.0), Some(true));
    }
}
