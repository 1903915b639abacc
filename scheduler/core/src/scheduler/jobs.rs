//! Batch jobs: schedules coming due, runs and their attempts, retries,
//! dependencies, and the job commands.
//!
//! A run's attempt is an [`Instance`] of the job's synthetic app
//! ([`JobName::run_app_id`]), so placement, launching, status handling and
//! reconciliation are the apps' own. What differs is what happens when the
//! task ends: the instance is forgotten and the run records the outcome
//! (success, a retry after backoff, or a final failure).
//!
//! **Invariants.**
//! - `JobState::last_fired` is written in the same `Persist` as the run it
//!   fired, so a new leader neither repeats nor loses a scheduled run.
//! - Due times missed while no leader ran are coalesced into one run (as
//!   Chronos 3), or recorded as missed past `starting_deadline`.
//! - An active run has at most one instance; an instance of a job app
//!   without an active run is killed and forgotten.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use drover_time::{Timestamp, format_uuid};

use super::{CommandError, Outcome, Scheduler, Write};
use crate::app::CommandSpec;
use crate::ids::{AppId, InstanceId};
use crate::instance::{Goal, Instance, Task, TaskState};
use crate::job::{
    ConcurrencyPolicy, JOBS_GROUP, JobName, JobRun, JobSpec, JobState, RunStatus, Trigger,
};
use crate::schedule::Schedule;

type Handled = Result<(Vec<Write>, Outcome), CommandError>;

/// Jobs fired per call of `jobs_tick`.
const FIRE_BATCH: usize = 100;

/// At most this many missed due times are counted when coalescing.
const MAX_COALESCED: u64 = 1_000_000;

/// Job bookkeeping that is derived from the snapshot (rebuilt on load).
#[derive(Debug, Default)]
pub(super) struct JobIndex {
    /// Next due time of each scheduled, enabled job.
    due: BTreeSet<(Timestamp, JobName)>,
    due_at: BTreeMap<JobName, Timestamp>,
    /// Runs waiting for a retry's backoff: `(not_before, job, run id)`.
    retries: BTreeSet<(Timestamp, JobName, String)>,
    /// The run each live attempt instance belongs to.
    run_of_instance: BTreeMap<InstanceId, (JobName, String)>,
    /// Dependent jobs of each job.
    children: BTreeMap<JobName, BTreeSet<JobName>>,
    /// The job behind each run app id.
    job_of_app: BTreeMap<AppId, JobName>,
}

impl Scheduler {
    // ----- loading ------------------------------------------------------

    /// Builds the job indexes from the loaded snapshot.
    pub(super) fn index_jobs(&mut self) {
        // States and runs of jobs that no longer exist are left-overs: not
        // loaded (their instances, if any, are killed as orphans).
        let stale: Vec<JobName> = (self.state.job_states.keys())
            .chain(self.state.runs.keys())
            .filter(|name| !self.state.jobs.contains_key(*name))
            .cloned()
            .collect();
        for name in stale {
            self.state.job_states.remove(&name);
            self.state.runs.remove(&name);
        }
        let jobs: Vec<JobSpec> = self.state.jobs.values().cloned().collect();
        for job in &jobs {
            self.index_job(job, None);
        }
        let runs: Vec<JobRun> =
            self.state.runs.values().flat_map(|r| r.values()).cloned().collect();
        for run in runs {
            if run.status.is_final() {
                continue;
            }
            match &run.instance_id {
                Some(inst) if self.state.instances.contains_key(inst) => {
                    self.jobs
                        .run_of_instance
                        .insert(inst.clone(), (run.job.clone(), run.id.clone()));
                    if let Some(job) = self.state.jobs.get(&run.job) {
                        let spec = job.run_spec();
                        self.state.run_specs.insert(spec.id.clone(), spec);
                    }
                }
                _ => {
                    self.jobs.retries.insert((run.not_before, run.job.clone(), run.id.clone()));
                }
            }
        }
    }

    /// Adds `job` to the indexes (replacing `old`).
    fn index_job(&mut self, job: &JobSpec, old: Option<&JobSpec>) {
        if let Some(old) = old {
            for p in &old.parents {
                if let Some(c) = self.jobs.children.get_mut(p) {
                    c.remove(&old.name);
                }
            }
        }
        for p in &job.parents {
            self.jobs.children.entry(p.clone()).or_default().insert(job.name.clone());
        }
        let app = job.name.run_app_id();
        // Kept only while the job has attempts (50,000 idle jobs need none).
        if self.state.run_specs.contains_key(&app) {
            self.state.run_specs.insert(app.clone(), job.run_spec());
        }
        self.jobs.job_of_app.insert(app, job.name.clone());
        self.reindex_due(&job.name);
    }

    /// Recomputes when `name` is next due.
    fn reindex_due(&mut self, name: &JobName) {
        if let Some(at) = self.jobs.due_at.remove(name) {
            self.jobs.due.remove(&(at, name.clone()));
        }
        let Some(job) = self.state.jobs.get(name) else { return };
        let st = self.state.job_states.get(name).cloned().unwrap_or_default();
        if let Some(at) = job.next_due(&st) {
            self.jobs.due.insert((at, name.clone()));
            self.jobs.due_at.insert(name.clone(), at);
        }
    }

    /// When the job is next due, if it is scheduled and enabled.
    pub fn job_next_due(&self, name: &JobName) -> Option<Timestamp> {
        self.jobs.due_at.get(name).copied()
    }

    // ----- commands -----------------------------------------------------

    /// Creates or replaces a job (Chronos' `POST /v1/scheduler/iso8601`
    /// and `/dependency`).
    pub(super) fn put_job(&mut self, mut job: JobSpec, now: Timestamp) -> Handled {
        if job.schedule.is_some() && !job.parents.is_empty() {
            return Err(CommandError::Invalid(format!(
                "job '{}' has both a schedule and parents",
                job.name
            )));
        }
        if job.parents.contains(&job.name) {
            return Err(CommandError::Invalid(format!(
                "job '{}' cannot be its own parent",
                job.name
            )));
        }
        if let Some(missing) = job.parents.iter().find(|p| !self.state.jobs.contains_key(*p)) {
            return Err(CommandError::Invalid(format!("parent job '{missing}' does not exist")));
        }
        if let Some(p) = job.parents.iter().find(|p| self.is_ancestor(&job.name, p)) {
            return Err(CommandError::Invalid(format!(
                "parent '{p}' depends on '{}': the dependency would form a cycle",
                job.name
            )));
        }
        let app = job.name.run_app_id();
        if let Some(other) = self.jobs.job_of_app.get(&app).filter(|o| **o != job.name) {
            return Err(CommandError::Invalid(format!(
                "job name '{}' clashes with job '{other}'; choose another name",
                job.name
            )));
        }
        let old = self.state.jobs.get(&job.name).cloned();
        job.version = match &old {
            Some(o) if o.version >= now => o.version.plus(Duration::from_millis(1)),
            _ => now,
        };
        let mut writes = vec![Write::PutJob(Box::new(job.clone()))];
        let mut st = self.state.job_states.get(&job.name).cloned().unwrap_or_default();
        let rescheduled = old.as_ref().map(|o| o.schedule.as_ref().map(Schedule::source))
            != Some(job.schedule.as_ref().map(Schedule::source));
        if rescheduled && (st.last_fired.is_some() || st.exhausted) {
            // A new schedule starts afresh.
            st.last_fired = None;
            st.exhausted = false;
        }
        // Parents that left the job no longer count.
        st.parents_done.retain(|p| job.parents.contains(p));
        if old.is_none() || self.state.job_states.get(&job.name) != Some(&st) {
            writes.push(self.set_job_state(&job.name, st));
        }
        self.state.jobs.insert(job.name.clone(), job.clone());
        self.index_job(&job, old.as_ref());
        Ok((writes, Outcome::Done))
    }

    /// True when `ancestor` is `job` or one of its (transitive) parents.
    fn is_ancestor(&self, ancestor: &JobName, job: &JobName) -> bool {
        let mut seen = BTreeSet::new();
        let mut stack = vec![job.clone()];
        while let Some(j) = stack.pop() {
            if j == *ancestor {
                return true;
            }
            if !seen.insert(j.clone()) {
                continue;
            }
            if let Some(spec) = self.state.jobs.get(&j) {
                stack.extend(spec.parents.iter().cloned());
            }
        }
        false
    }

    /// Deletes a job: its active runs are killed, its history dropped, and
    /// its children take over its parents (or its schedule), as Chronos.
    pub(super) fn delete_job(&mut self, name: &JobName, now: Timestamp) -> Handled {
        let Some(job) = self.state.jobs.get(name).cloned() else {
            return Err(CommandError::JobNotFound(name.clone()));
        };
        let mut writes = Vec::new();
        for run in self.active_runs(name) {
            writes.extend(self.end_run(run, RunStatus::Killed, "the job was deleted", now));
        }
        for p in &job.parents {
            if let Some(c) = self.jobs.children.get_mut(p) {
                c.remove(name);
            }
        }
        let children = self.jobs.children.remove(name).unwrap_or_default();
        self.state.jobs.remove(name);
        self.state.job_states.remove(name);
        self.state.runs.remove(name);
        self.jobs.retries.retain(|(_, j, _)| j != name);
        if let Some(at) = self.jobs.due_at.remove(name) {
            self.jobs.due.remove(&(at, name.clone()));
        }
        let app = name.run_app_id();
        self.jobs.job_of_app.remove(&app);
        self.state.run_specs.remove(&app);
        writes.push(Write::DeleteJob(name.clone()));
        for child in children {
            let Some(old) = self.state.jobs.get(&child).cloned() else { continue };
            let mut c = old.clone();
            c.parents.remove(name);
            c.parents.extend(job.parents.iter().cloned());
            if c.parents.is_empty() {
                c.schedule.clone_from(&job.schedule);
            }
            c.version = now.max(old.version.plus(Duration::from_millis(1)));
            let mut st = self.state.job_states.get(&child).cloned().unwrap_or_default();
            st.parents_done.remove(name);
            writes.push(self.set_job_state(&child, st));
            writes.push(Write::PutJob(Box::new(c.clone())));
            self.state.jobs.insert(child.clone(), c.clone());
            self.index_job(&c, Some(&old));
        }
        Ok((writes, Outcome::Done))
    }

    /// Starts a run now (Chronos' `PUT /v1/scheduler/job/{name}`), with
    /// extra arguments. Manual runs ignore `disabled` and the concurrency
    /// policy: the user asked for this run.
    pub(super) fn run_job(
        &mut self,
        name: &JobName,
        arguments: Vec<String>,
        now: Timestamp,
    ) -> Handled {
        if !self.state.jobs.contains_key(name) {
            return Err(CommandError::JobNotFound(name.clone()));
        }
        let mut st = self.state.job_states.get(name).cloned().unwrap_or_default();
        let mut writes = self.trigger(name, Trigger::Manual { arguments }, &mut st, now);
        writes.push(self.set_job_state(name, st));
        Ok((writes, Outcome::Done))
    }

    /// Kills every active run of a job (`DELETE /v1/scheduler/task/kill/{name}`).
    pub(super) fn kill_job(&mut self, name: &JobName, now: Timestamp) -> Handled {
        if !self.state.jobs.contains_key(name) {
            return Err(CommandError::JobNotFound(name.clone()));
        }
        let mut writes = Vec::new();
        for run in self.active_runs(name) {
            writes.extend(self.end_run(run, RunStatus::Killed, "killed by a user", now));
        }
        Ok((writes, Outcome::Done))
    }

    /// Records a success without running (`PUT /v1/scheduler/job/success/{name}`):
    /// the dependents are released.
    pub(super) fn mark_job_success(&mut self, name: &JobName, now: Timestamp) -> Handled {
        if !self.state.jobs.contains_key(name) {
            return Err(CommandError::JobNotFound(name.clone()));
        }
        let mut st = self.state.job_states.get(name).cloned().unwrap_or_default();
        st.success_count += 1;
        st.last_success = Some(now);
        st.errors_since_last_success = 0;
        let mut writes = vec![self.set_job_state(name, st)];
        writes.extend(self.release_dependents(name, now));
        Ok((writes, Outcome::Done))
    }

    // ----- time -----------------------------------------------------------

    /// Fires the jobs that came due and starts the retries whose backoff
    /// ended.
    pub(super) fn jobs_tick(&mut self, now: Timestamp) -> Vec<Write> {
        let mut writes = Vec::new();
        let mut fired = 0;
        while let Some((at, name)) = self.jobs.due.first().cloned() {
            // At most a batch per call: the daemon persists it while the
            // rest waits (`poll_timeout` is then `now`), so the first runs
            // of a burst of thousands are not held back by the last.
            if at > now || fired == FIRE_BATCH {
                break;
            }
            fired += 1;
            self.jobs.due.remove(&(at, name.clone()));
            self.jobs.due_at.remove(&name);
            writes.extend(self.fire(&name, now));
        }
        while let Some((at, name, id)) = self.jobs.retries.first().cloned() {
            if at > now {
                break;
            }
            self.jobs.retries.remove(&(at, name.clone(), id.clone()));
            if let Some(mut run) = self.run(&name, &id).filter(|r| !r.status.is_final()) {
                writes.extend(self.start_attempt(&mut run));
            }
        }
        writes
    }

    /// A scheduled job came due: one run for every due time since it last
    /// fired (coalesced), or a missed run past its starting deadline.
    fn fire(&mut self, name: &JobName, now: Timestamp) -> Vec<Write> {
        let Some(job) = self.state.jobs.get(name).cloned() else { return Vec::new() };
        let Some(schedule) = &job.schedule else { return Vec::new() };
        let mut st = self.state.job_states.get(name).cloned().unwrap_or_default();
        if job.disabled || st.exhausted {
            return Vec::new();
        }
        let (count, latest) =
            schedule.fires_between(job.fire_after(schedule, &st), now, MAX_COALESCED);
        let mut writes = Vec::new();
        if let Some(due) = latest {
            // Due times coalesced into this run were missed (but not those
            // before the job was saved: a start in the past).
            let counted = if st.last_fired.is_some() || count <= 1 {
                count
            } else {
                schedule
                    .fires_between(job.version.minus(Duration::from_millis(1)), now, MAX_COALESCED)
                    .0
            };
            st.missed_count += counted.saturating_sub(1);
            st.last_fired = Some(due);
            let lag = now.since(due);
            self.state.stats.record_fire_lag(lag);
            match job.starting_deadline {
                Some(deadline) if lag > deadline => {
                    st.missed_count += 1;
                    let message = format!(
                        "due at {} but the scheduler could only start it {}s later, past its starting deadline of {}s",
                        crate::format_version(due),
                        lag.as_secs(),
                        deadline.as_secs()
                    );
                    writes.extend(self.record_missed(name, Trigger::Schedule(due), message, now));
                }
                _ => writes.extend(self.trigger(name, Trigger::Schedule(due), &mut st, now)),
            }
        }
        let next = schedule.next_after(st.last_fired.unwrap_or(now));
        st.exhausted = next.is_none();
        writes.push(self.set_job_state(name, st));
        if let Some(at) = next {
            self.jobs.due.insert((at, name.clone()));
            self.jobs.due_at.insert(name.clone(), at);
        }
        writes
    }

    /// When a job next comes due or a retry's backoff ends, if ever.
    pub(super) fn next_job_wakeup(&self) -> Option<Timestamp> {
        let due = self.jobs.due.first().map(|(t, _)| *t);
        let retry = self.jobs.retries.first().map(|(t, _, _)| *t);
        due.into_iter().chain(retry).min()
    }

    /// Starts a run of `name` for `trigger`, under the job's concurrency
    /// policy (manual runs always start).
    fn trigger(
        &mut self,
        name: &JobName,
        trigger: Trigger,
        st: &mut JobState,
        now: Timestamp,
    ) -> Vec<Write> {
        let Some(job) = self.state.jobs.get(name) else { return Vec::new() };
        let policy = job.concurrency;
        let active = self.active_runs(name);
        let mut writes = Vec::new();
        if !active.is_empty() && !matches!(trigger, Trigger::Manual { .. }) {
            match policy {
                ConcurrencyPolicy::Allow => {}
                ConcurrencyPolicy::Forbid => {
                    st.missed_count += 1;
                    let message = "skipped: the previous run is still active (concurrent is false)";
                    return self.record_missed(name, trigger, message.into(), now);
                }
                ConcurrencyPolicy::Replace => {
                    for run in active {
                        writes.extend(self.end_run(
                            run,
                            RunStatus::Killed,
                            "replaced by a newer run",
                            now,
                        ));
                    }
                }
            }
        }
        let mut run = JobRun {
            id: format_uuid(&self.rng.uuid_v4()),
            job: name.clone(),
            trigger,
            status: RunStatus::Queued,
            attempts: 0,
            task_ids: Vec::new(),
            created_at: now,
            started_at: None,
            finished_at: None,
            message: String::new(),
            not_before: now,
            instance_id: None,
        };
        *self.state.stats.job_runs.entry("started").or_default() += 1;
        writes.extend(self.start_attempt(&mut run));
        writes
    }

    /// Records a run that never started.
    fn record_missed(
        &mut self,
        name: &JobName,
        trigger: Trigger,
        message: String,
        now: Timestamp,
    ) -> Vec<Write> {
        *self.state.stats.job_runs.entry("missed").or_default() += 1;
        let run = JobRun {
            id: format_uuid(&self.rng.uuid_v4()),
            job: name.clone(),
            trigger,
            status: RunStatus::Missed,
            attempts: 0,
            task_ids: Vec::new(),
            created_at: now,
            started_at: None,
            finished_at: Some(now),
            message,
            not_before: now,
            instance_id: None,
        };
        let mut writes = vec![self.put_run(run)];
        writes.extend(self.prune_history(name));
        writes
    }

    /// Creates the instance of a run's next attempt.
    fn start_attempt(&mut self, run: &mut JobRun) -> Vec<Write> {
        let Some(job) = self.state.jobs.get(&run.job) else { return Vec::new() };
        let version = job.version;
        let app = run.job.run_app_id();
        if self.state.run_specs.get(&app).is_none_or(|s| s.version != version) {
            let spec = job.run_spec();
            self.state.run_specs.insert(app.clone(), spec);
        }
        let id = self.new_instance_id(&app);
        let inst = Instance::new(id.clone(), app, version);
        run.attempts += 1;
        run.task_ids.push(id.task_id(1).to_string());
        run.instance_id = Some(id.clone());
        self.jobs.run_of_instance.insert(id, (run.job.clone(), run.id.clone()));
        self.revive_wanted = true;
        self.put_instance(inst.clone());
        vec![Write::PutInstance(inst), self.put_run(run.clone())]
    }

    /// Ends a run that has not finished: its task is killed (the instance
    /// is forgotten once the kill is confirmed).
    fn end_run(
        &mut self,
        mut run: JobRun,
        status: RunStatus,
        message: &str,
        now: Timestamp,
    ) -> Vec<Write> {
        let mut writes = Vec::new();
        self.jobs.retries.remove(&(run.not_before, run.job.clone(), run.id.clone()));
        if let Some(inst) = run.instance_id.take() {
            writes.extend(self.decommission(&inst, now));
            if !self.state.instances.contains_key(&inst) {
                self.jobs.run_of_instance.remove(&inst);
                self.release_run_spec(&run.job.run_app_id());
            }
        }
        run.status = status;
        run.finished_at = Some(now);
        message.clone_into(&mut run.message);
        *self.state.stats.job_runs.entry(status.name()).or_default() += 1;
        let name = run.job.clone();
        writes.push(self.put_run(run));
        writes.extend(self.prune_history(&name));
        writes
    }

    // ----- tasks ----------------------------------------------------------

    /// The run an instance belongs to, when it is a job's attempt.
    pub(super) fn is_job_instance(&self, inst: &Instance) -> bool {
        inst.app_id.as_str().starts_with(JOBS_GROUP)
            && inst.app_id.as_str().as_bytes().get(JOBS_GROUP.len()) == Some(&b'/')
    }

    /// A job attempt's task started running.
    pub(super) fn job_task_running(&mut self, inst: &Instance, now: Timestamp) -> Vec<Write> {
        let Some((name, id)) = self.jobs.run_of_instance.get(&inst.id).cloned() else {
            return Vec::new();
        };
        match self.run(&name, &id) {
            Some(mut run) if run.status == RunStatus::Queued => {
                run.status = RunStatus::Running;
                run.started_at.get_or_insert(now);
                vec![self.put_run(run)]
            }
            _ => Vec::new(),
        }
    }

    /// A job attempt's task ended: the instance goes, and the run succeeds,
    /// retries or fails.
    pub(super) fn job_task_ended(
        &mut self,
        inst: &Instance,
        task: &Task,
        now: Timestamp,
    ) -> Vec<Write> {
        self.remove_instance(&inst.id);
        self.release_run_spec(&inst.app_id);
        let mut writes = vec![Write::DeleteInstance(inst.id.clone())];
        let Some((name, id)) = self.jobs.run_of_instance.remove(&inst.id) else { return writes };
        let Some(mut run) = self.run(&name, &id).filter(|r| !r.status.is_final()) else {
            return writes;
        };
        let Some(job) = self.state.jobs.get(&name).cloned() else { return writes };
        run.instance_id = None;
        run.message = task.message.clone().unwrap_or_else(|| task.state.mesos_name().to_owned());
        let mut st = self.state.job_states.get(&name).cloned().unwrap_or_default();
        if task.state == TaskState::Finished {
            run.status = RunStatus::Succeeded;
            run.finished_at = Some(now);
            st.success_count += 1;
            st.last_success = Some(now);
            st.errors_since_last_success = 0;
            *self.state.stats.job_runs.entry("succeeded").or_default() += 1;
            writes.push(self.put_run(run));
            writes.push(self.set_job_state(&name, st));
            writes.extend(self.release_dependents(&name, now));
        } else if inst.goal == Goal::Decommissioned {
            run.status = RunStatus::Killed;
            run.finished_at = Some(now);
            *self.state.stats.job_runs.entry("killed").or_default() += 1;
            writes.push(self.put_run(run));
        } else if run.attempts <= job.retry.retries {
            run.status = RunStatus::Queued;
            run.not_before = now.plus(job.retry.delay(run.attempts));
            self.jobs.retries.insert((run.not_before, name.clone(), run.id.clone()));
            writes.push(self.put_run(run));
        } else {
            run.status = RunStatus::Failed;
            run.finished_at = Some(now);
            st.error_count += 1;
            st.last_error = Some(now);
            st.errors_since_last_success += 1;
            *self.state.stats.job_runs.entry("failed").or_default() += 1;
            writes.push(self.put_run(run));
            writes.push(self.set_job_state(&name, st));
            if job.soft_error {
                writes.extend(self.release_dependents(&name, now));
            }
        }
        writes.extend(self.prune_history(&name));
        writes
    }

    /// Periodic checks of job attempts: kill those past their maximum
    /// completion time, and forget instances no run owns.
    pub(super) fn check_job_instances(&mut self, now: Timestamp) -> Vec<Write> {
        let mut writes = Vec::new();
        let start = InstanceId::group_lower_bound(&AppId::from_canonical(JOBS_GROUP.to_owned()));
        let ids: Vec<InstanceId> = self
            .state
            .instances
            .range(start.clone()..)
            .take_while(|(id, _)| id.as_str().starts_with(start.as_str()))
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            if self.launching.contains(&id) {
                continue;
            }
            let Some(inst) = self.state.instances.get(&id).cloned() else { continue };
            let Some((name, run_id)) = self.jobs.run_of_instance.get(&id).cloned() else {
                if inst.goal == Goal::Running {
                    writes.extend(self.decommission(&id, now));
                }
                continue;
            };
            let limit = self.state.jobs.get(&name).and_then(|j| j.max_completion_time);
            let (Some(limit), Some(task)) = (limit, inst.active_task()) else { continue };
            if task.kill_sent_at.is_some() || now < task.staged_at.plus(limit) {
                continue;
            }
            if let Some(mut run) = self.run(&name, &run_id) {
                run.message =
                    format!("killed after its maximum completion time of {}s", limit.as_secs());
                writes.push(self.put_run(run));
            }
            let call = super::kill_call(task);
            let mut inst = inst;
            if let Some(t) = inst.task.as_mut() {
                t.kill_sent_at = Some(now);
            }
            self.put_instance(inst.clone());
            writes.push(Write::PutInstance(inst));
            self.call(call);
        }
        writes
    }

    /// What a job attempt's launch adds to the job's spec: the run's id,
    /// its due time (`DROVER_JOB_SCHEDULED_AT`, for a scheduled run),
    /// Chronos' `mesos_task_id`, and a manual run's arguments.
    pub(super) fn job_launch_extras(
        &self,
        inst: &InstanceId,
        env: &mut BTreeMap<String, String>,
        command: &mut Option<CommandSpec>,
    ) {
        let Some((name, id)) = self.jobs.run_of_instance.get(inst) else { return };
        let Some(run) = self.state.runs.get(name).and_then(|r| r.get(id)) else { return };
        env.insert("DROVER_JOB_RUN_ID".into(), run.id.clone());
        env.insert("mesos_task_id".into(), inst.task_id(1).to_string());
        if let Trigger::Schedule(due) = run.trigger {
            env.insert("DROVER_JOB_SCHEDULED_AT".into(), crate::format_version(due));
        }
        if let Some(CommandSpec::Argv(argv)) = command {
            argv.extend(run.extra_arguments().iter().cloned());
        }
    }

    // ----- helpers ------------------------------------------------------

    /// Releases the dependents of `name` after it succeeded: each child
    /// whose parents have all succeeded since its last run starts a run.
    fn release_dependents(&mut self, name: &JobName, now: Timestamp) -> Vec<Write> {
        let children: Vec<JobName> =
            self.jobs.children.get(name).map(|c| c.iter().cloned().collect()).unwrap_or_default();
        let mut writes = Vec::new();
        for child in children {
            let Some(job) = self.state.jobs.get(&child) else { continue };
            let parents = job.parents.clone();
            let disabled = job.disabled;
            let mut st = self.state.job_states.get(&child).cloned().unwrap_or_default();
            st.parents_done.insert(name.clone());
            if parents.iter().all(|p| st.parents_done.contains(p)) && !disabled {
                st.parents_done.clear();
                writes.extend(self.trigger(&child, Trigger::Dependency, &mut st, now));
            }
            writes.push(self.set_job_state(&child, st));
        }
        writes
    }

    /// Drops a job's run spec once it has no instance left.
    pub(super) fn release_run_spec(&mut self, app: &AppId) {
        if self.state.app_instances(app).next().is_none() {
            self.state.run_specs.remove(app);
        }
    }

    /// The runs of `name` that have not finished.
    fn active_runs(&self, name: &JobName) -> Vec<JobRun> {
        self.state
            .runs
            .get(name)
            .map(|runs| runs.values().filter(|r| !r.status.is_final()).cloned().collect())
            .unwrap_or_default()
    }

    fn run(&self, name: &JobName, id: &str) -> Option<JobRun> {
        self.state.runs.get(name)?.get(id).cloned()
    }

    /// Records a run. Every path that creates a run also writes the job's
    /// state in the same `Persist` (the store's `DeleteJob` relies on it:
    /// a stale writer's delete then conflicts on the state key instead of
    /// leaving a run behind).
    fn put_run(&mut self, run: JobRun) -> Write {
        self.state.runs.entry(run.job.clone()).or_default().insert(run.id.clone(), run.clone());
        Write::PutRun(Box::new(run))
    }

    fn set_job_state(&mut self, name: &JobName, st: JobState) -> Write {
        self.state.job_states.insert(name.clone(), st.clone());
        Write::PutJobState(name.clone(), Box::new(st))
    }

    /// Drops the oldest finished runs beyond the job's history limits.
    fn prune_history(&mut self, name: &JobName) -> Vec<Write> {
        let Some(job) = self.state.jobs.get(name) else { return Vec::new() };
        let (keep_ok, keep_failed) =
            (job.success_history_limit as usize, job.failure_history_limit as usize);
        let Some(runs) = self.state.runs.get(name) else { return Vec::new() };
        let mut ok: Vec<(Timestamp, String)> = Vec::new();
        let mut failed: Vec<(Timestamp, String)> = Vec::new();
        for r in runs.values() {
            let key = (r.finished_at.unwrap_or(r.created_at), r.id.clone());
            match r.status {
                RunStatus::Succeeded => ok.push(key),
                s if s.is_final() => failed.push(key),
                _ => {}
            }
        }
        let mut drop = Vec::new();
        for (mut list, keep) in [(ok, keep_ok), (failed, keep_failed)] {
            if list.len() > keep {
                list.sort();
                let n = list.len() - keep;
                drop.extend(list.into_iter().take(n).map(|(_, id)| id));
            }
        }
        if drop.is_empty() {
            return Vec::new();
        }
        let runs = self.state.runs.entry(name.clone()).or_default();
        drop.into_iter()
            .map(|id| {
                runs.remove(&id);
                Write::DeleteRun(name.clone(), id)
            })
            .collect()
    }
}
