//! Following a deployment, as pure decisions: the state of one deployment
//! (and of its rollback) built from what the API says ([`Progress::apply`]),
//! the lines of the live view ([`Progress::view`]) and the outcome
//! ([`Progress::outcome`], [`Progress::timed_out`]).
//!
//! Two sources feed it, in any order and with any overlap: the events of
//! `/v2/events` (`deployment_info`, `deployment_step_success`,
//! `deployment_success`, `deployment_failed`, `status_update_event`,
//! `health_status_changed_event`) and polls of `GET /v2/deployments` and
//! `GET /v2/apps/{id}` (with its tasks). Events are prompt and carry the
//! outcome and its reason; polls are the truth at one moment and the
//! fallback when the stream is unavailable. A poll replaces what events
//! said about an app's tasks.
//!
//! When a deployment fails, Drover rolls it back in a new deployment on
//! the same apps (unless an app has `rollbackOnFailure: false` or the
//! failure was a forced cancel). The rollback is recognised as the first
//! deployment of those apps not seen before the failure, and followed to
//! its end: the outcome says whether the change was rolled back.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::format;
use super::wire::{self, App, Deployment, EventData, Plan, Task};

/// One input of the state.
#[derive(Debug, Clone)]
pub(crate) enum Input {
    /// An event of the stream: its type and data.
    Event(String, EventData),
    /// `GET /v2/deployments`.
    Deployments(Vec<Deployment>),
    /// `GET /v2/apps/{id}` with its tasks; `None`: the app does not exist.
    App(String, Option<App>),
}

/// Where the followed change is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// The deployment runs.
    Running,
    /// It succeeded.
    Succeeded,
    /// It failed; a rollback is expected (`true`) or not.
    Failed { expect_rollback: bool },
    /// Its rollback (this deployment) runs.
    RollingBack(String),
    /// Its rollback ended: `None` succeeded, `Some(reason)` failed.
    RolledBack(String, Option<String>),
    /// It disappeared without an event saying how it ended (the stream was
    /// unavailable); a poll of its apps decides.
    Vanished,
}

/// What one affected app looks like.
#[derive(Debug, Clone, Default)]
struct AppState {
    /// The instances wanted; `None` while unknown, and for an app being
    /// deleted (then `deleting` is set).
    target: Option<u32>,
    deleting: bool,
    /// Tasks of this version or later run the target configuration.
    config_since: String,
    /// The target version (the app's `version`).
    version: String,
    health_checks: bool,
    /// Whether a poll found the app (`None`: not polled yet).
    exists: Option<bool>,
    tasks: BTreeMap<String, TaskState>,
    /// The last health check failure of a task of the target configuration.
    health_failure: Option<String>,
    /// The last failure of a task of the target configuration.
    task_failure: Option<String>,
}

#[derive(Debug, Clone)]
struct TaskState {
    state: String,
    healthy: Option<bool>,
    version: String,
}

/// Instances of an app by what they do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Running and healthy, of the target configuration.
    pub(crate) healthy: u32,
    /// Running, of the target configuration.
    pub(crate) running: u32,
    /// Staging or starting, of the target configuration.
    pub(crate) staging: u32,
    /// Active tasks of an older configuration.
    pub(crate) old: u32,
}

/// How following a deployment ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// True when the change is in place.
    pub(crate) success: bool,
    /// The line that says so.
    pub(crate) line: String,
    /// The same for scripts (`-o json`).
    pub(crate) json: Value,
}

/// The state of a followed deployment.
#[derive(Debug, Clone)]
pub(crate) struct Progress {
    /// The user's deployment.
    id: String,
    /// The version the change made (the answer's `version`).
    version: String,
    /// The change deletes its apps.
    delete: bool,
    phase: Phase,
    /// The deployment shown: the user's, then its rollback.
    shown: String,
    /// Of the shown deployment: 1-based current step, total steps.
    step: usize,
    total: Option<usize>,
    actions: Vec<wire::Action>,
    /// Every deployment seen before the failure (a rollback is new).
    seen: BTreeSet<String>,
    failure: Option<String>,
    apps: BTreeMap<String, AppState>,
    /// Polls of the deployments since the phase changed.
    quiet_polls: u32,
    /// The deployment ended unseen and its apps are not as it made them.
    unexplained: bool,
}

/// How many polls in a row must show what only polls can see (a
/// deployment gone without its event) before it is believed.
const QUIET_POLLS: u32 = 2;

impl Progress {
    /// Following deployment `id`, which a change of `apps` started and
    /// which makes their `version` current (or deletes them).
    pub(crate) fn new(id: &str, version: &str, apps: &[String], delete: bool) -> Progress {
        Progress {
            id: id.to_owned(),
            version: version.to_owned(),
            delete,
            phase: Phase::Running,
            shown: id.to_owned(),
            step: 1,
            total: None,
            actions: Vec::new(),
            seen: [id.to_owned()].into(),
            failure: None,
            quiet_polls: 0,
            unexplained: false,
            apps: apps.iter().map(|a| (a.clone(), AppState::default())).collect(),
        }
    }

    /// The apps to poll.
    pub(crate) fn apps(&self) -> Vec<String> {
        self.apps.keys().cloned().collect()
    }

    /// Takes one input into account.
    pub(crate) fn apply(&mut self, input: Input) {
        match input {
            Input::Event(kind, data) => self.event(&kind, data),
            Input::Deployments(list) => self.deployments(&list),
            Input::App(id, app) => self.app(&id, app),
        }
    }

    fn event(&mut self, kind: &str, data: EventData) {
        match kind {
            "deployment_info" | "deployment_step_success" => {
                let plan = &data.plan;
                self.maybe_rollback(&plan.id, &plan.affected());
                if plan.id != self.shown {
                    self.note_seen(&plan.id);
                    return;
                }
                self.learn_plan(plan);
                let current = data.current_step.unwrap_or_default();
                if kind == "deployment_step_success" {
                    self.step = (self.step + 1).min(plan.steps.len().max(1));
                } else if let Some(i) =
                    plan.steps.iter().skip(self.step - 1).position(|s| *s == current)
                {
                    self.step += i;
                }
                self.actions = plan
                    .steps
                    .get(self.step - 1)
                    .map_or_else(|| current.actions.clone(), |s| s.actions.clone());
            }
            "deployment_success" => {
                let id = if data.id.is_empty() { data.plan.id.clone() } else { data.id.clone() };
                if id == self.id && matches!(self.phase, Phase::Running | Phase::Vanished) {
                    self.learn_plan(&data.plan);
                    self.set_phase(Phase::Succeeded);
                    self.step = self.total.unwrap_or(self.step).max(1);
                } else if self.phase == Phase::RollingBack(id.clone()) {
                    self.set_phase(Phase::RolledBack(id, None));
                } else {
                    self.note_seen(&id);
                }
            }
            "deployment_failed" => {
                let id = if data.id.is_empty() { data.plan.id.clone() } else { data.id.clone() };
                if id == self.id && matches!(self.phase, Phase::Running | Phase::Vanished) {
                    self.learn_plan(&data.plan);
                    let reason = if data.reason.is_empty() {
                        "the deployment failed".to_owned()
                    } else {
                        data.reason.clone()
                    };
                    // Drover rolls back a failure unless an app opted out
                    // or the deployment was canceled (a plain cancel
                    // rolls back too, and says so).
                    let opted_in = data.plan.target.apps.iter().all(App::rolls_back);
                    let expect_rollback = (!data.canceled && opted_in)
                        || (data.canceled && reason.contains("rolled back"));
                    self.failure = Some(reason);
                    self.set_phase(Phase::Failed { expect_rollback });
                } else if self.phase == Phase::RollingBack(id.clone()) {
                    let reason = if data.reason.is_empty() { "failed".into() } else { data.reason };
                    self.set_phase(Phase::RolledBack(id, Some(reason)));
                } else {
                    self.note_seen(&id);
                }
            }
            "status_update_event" => {
                let Some(app) = self.apps.get_mut(&data.app_id) else { return };
                let current = app.is_current(&data.version);
                if wire::is_terminal(&data.task_status) {
                    app.tasks.remove(&data.task_id);
                    let health_kill = data.message.contains("health check");
                    if current
                        && (wire::is_failure(&data.task_status) || health_kill)
                        && !data.message.is_empty()
                    {
                        app.task_failure =
                            Some(format!("{}: {}", data.task_status, format::clean(&data.message)));
                    }
                } else {
                    let healthy = app.tasks.get(&data.task_id).and_then(|t| t.healthy);
                    let task = TaskState {
                        state: data.task_status.clone(),
                        healthy,
                        version: data.version.clone(),
                    };
                    app.tasks.insert(data.task_id.clone(), task);
                }
            }
            "health_status_changed_event" => {
                let Some(app) = self.apps.get_mut(&data.app_id) else { return };
                if let Some(task) = app.tasks.get_mut(&data.task_id) {
                    task.healthy = data.alive;
                }
            }
            _ => {}
        }
    }

    /// Notes a deployment; before the failure it cannot be the rollback.
    fn note_seen(&mut self, id: &str) {
        if matches!(self.phase, Phase::Running | Phase::Vanished) {
            self.seen.insert(id.to_owned());
        }
    }

    /// After the failure, the first new deployment of the same apps is
    /// the rollback.
    fn maybe_rollback(&mut self, id: &str, affected: &[String]) {
        if matches!(self.phase, Phase::Failed { .. })
            && !self.seen.contains(id)
            && affected.iter().any(|a| self.apps.contains_key(a))
        {
            self.set_phase(Phase::RollingBack(id.to_owned()));
            self.shown = id.to_owned();
            self.step = 1;
            self.total = None;
            self.actions.clear();
            for app in self.apps.values_mut() {
                // The rollback's plan says what is wanted now.
                app.target = None;
                app.deleting = false;
            }
        }
    }

    /// What a plan says about the shown deployment and its apps.
    fn learn_plan(&mut self, plan: &Plan) {
        self.total = Some(plan.steps.len());
        for step in &plan.steps {
            for action in &step.actions {
                self.apps.entry(action.app.clone()).or_default();
            }
        }
        for original in &plan.original.apps {
            let state = self.apps.entry(original.id.clone()).or_default();
            if !plan.target.apps.iter().any(|t| t.id == original.id) {
                state.deleting = true;
                state.target = None;
            }
        }
        for target in &plan.target.apps {
            let state = self.apps.entry(target.id.clone()).or_default();
            state.learn_spec(target);
        }
    }

    fn deployments(&mut self, list: &[Deployment]) {
        for d in list {
            self.maybe_rollback(&d.id, &d.affected_apps);
            if d.id == self.shown {
                self.step = d.current_step.max(1);
                self.total = Some(d.total_steps);
                self.actions = d.current_actions.clone();
                for app in &d.affected_apps {
                    self.apps.entry(app.clone()).or_default();
                }
            } else {
                self.note_seen(&d.id);
            }
        }
        let shown_open = list.iter().any(|d| d.id == self.shown);
        let rollback_open = list.iter().any(|d| {
            !self.seen.contains(&d.id) && d.affected_apps.iter().any(|a| self.apps.contains_key(a))
        });
        // What polls alone suggest is believed only after two polls in a
        // row: the event that says more (and comes at once) may be on its
        // way.
        let quiet = |p: &mut Progress| {
            p.quiet_polls += 1;
            p.quiet_polls >= QUIET_POLLS
        };
        match self.phase.clone() {
            // Gone without a word: its apps will tell.
            Phase::Running if !shown_open => {
                self.set_phase(Phase::Vanished);
                self.quiet_polls = 1;
            }
            // The rollback ended unseen (the stream is unavailable): the
            // apps are back where they were.
            Phase::RollingBack(id) if !shown_open && quiet(self) => {
                self.set_phase(Phase::RolledBack(id, None));
            }
            Phase::Failed { expect_rollback: true } if !rollback_open && quiet(self) => {
                self.set_phase(Phase::Failed { expect_rollback: false });
            }
            Phase::Vanished => {
                self.quiet_polls += 1;
            }
            _ => {}
        }
    }

    fn set_phase(&mut self, phase: Phase) {
        if self.phase != phase {
            self.phase = phase;
            self.quiet_polls = 0;
        }
    }

    fn app(&mut self, id: &str, app: Option<App>) {
        let Some(state) = self.apps.get_mut(id) else { return };
        let Some(app) = app else {
            state.exists = Some(false);
            state.deleting = true;
            state.target = None;
            state.tasks.clear();
            if self.phase == Phase::Vanished && self.quiet_polls >= QUIET_POLLS {
                self.decide_vanished();
            }
            return;
        };
        state.exists = Some(true);
        // A poll during a deployment shows its target (the rollback's, once
        // it runs); a poll after the deployment ended shows where the app
        // stands, which is what the outcome reports.
        state.learn_spec(&app);
        state.tasks = app
            .tasks
            .iter()
            .filter(|t| !wire::is_terminal(&t.state))
            .map(|t| (t.id.clone(), TaskState::from_task(t)))
            .collect();
        let current = app.tasks.iter().filter(|t| state.is_current(&t.version));
        if let Some(cause) = current.clone().find_map(Task::failure_cause) {
            state.health_failure = Some(format::clean(cause));
        }
        if let Some(f) = &app.last_task_failure
            && state.is_current(&f.version)
            && !f.message.is_empty()
            && state.task_failure.is_none()
        {
            state.task_failure = Some(format!("{}: {}", f.state, format::clean(&f.message)));
        }
        if self.phase == Phase::Vanished && self.quiet_polls >= QUIET_POLLS {
            self.decide_vanished();
        }
    }

    /// A deployment that ended unseen succeeded when every app it changed
    /// is at the version the change made (or gone, when it deleted it).
    fn decide_vanished(&mut self) {
        let polled = self.apps.values().all(|a| a.exists.is_some());
        if !polled {
            return;
        }
        let at_version = self.apps.values().all(|a| match a.exists {
            Some(false) => self.delete,
            _ => !self.delete && newer_or_same(&a.version, &self.version),
        });
        if at_version {
            self.set_phase(Phase::Succeeded);
        } else {
            let wanted =
                if self.delete { "deleted".to_owned() } else { format!("at {}", self.version) };
            let found: Vec<String> = self
                .apps
                .iter()
                .map(|(id, a)| match a.exists {
                    Some(false) => format!("{id} does not exist"),
                    _ => format!("{id} is at {}", a.version),
                })
                .collect();
            self.failure = Some(format!(
                "the deployment ended, but {} (wanted: {wanted}): it was canceled, rolled back \
                 or replaced, and without the event stream the reason is unknown",
                found.join(", ")
            ));
            self.unexplained = true;
            self.set_phase(Phase::Failed { expect_rollback: false });
        }
    }

    /// The counts of one app.
    fn counts(app: &AppState) -> Counts {
        let mut c = Counts::default();
        for t in app.tasks.values() {
            if !app.deleting && app.is_current(&t.version) {
                match t.state.as_str() {
                    "TASK_RUNNING" => {
                        c.running += 1;
                        if t.healthy == Some(true) {
                            c.healthy += 1;
                        }
                    }
                    "TASK_KILLING" => {}
                    _ => c.staging += 1,
                }
            } else {
                c.old += 1;
            }
        }
        c
    }

    /// `/web 2/3 healthy` (or `running` without health checks, `deleted`).
    fn app_summary(id: &str, app: &AppState) -> String {
        let c = Progress::counts(app);
        if app.deleting {
            return if c.old == 0 { format!("{id} deleted") } else { format!("{id} stopping") };
        }
        let target = app.target.map_or_else(|| "?".to_owned(), |t| t.to_string());
        if app.health_checks {
            format!("{id} {}/{target} healthy", c.healthy)
        } else {
            format!("{id} {}/{target} running", c.running)
        }
    }

    /// One line of the view for an app.
    fn app_line(&self, id: &str, app: &AppState) -> String {
        let c = Progress::counts(app);
        if app.deleting {
            let running =
                matches!(self.phase, Phase::Running | Phase::Vanished | Phase::RollingBack(_));
            return match (c.old, running) {
                (0, false) => format!("  {id}: stopped"),
                (0, true) => format!("  {id}: stopping"),
                (n, _) => format!("  {id}: stopping, {n} left"),
            };
        }
        let target = app.target.map_or_else(|| "?".to_owned(), |t| t.to_string());
        let mut parts = Vec::new();
        if app.health_checks {
            parts.push(format!("{}/{target} healthy", c.healthy));
            parts.push(format!("{} running", c.running));
        } else {
            parts.push(format!("{}/{target} running", c.running));
        }
        if c.staging > 0 {
            parts.push(format!("{} starting", c.staging));
        }
        if c.old > 0 {
            let which = match self.phase {
                Phase::RollingBack(_) | Phase::RolledBack(..) => "the failed version",
                _ => "the previous version",
            };
            parts.push(format!("{} of {which}", c.old));
        }
        let mut line = format!("  {id}: {}", parts.join(", "));
        if let Some(cause) = &app.health_failure
            && c.healthy < app.target.unwrap_or(0)
        {
            // The gist (`HTTP 404`); the outcome quotes it whole.
            let gist = cause.rsplit(": ").next().unwrap_or(cause);
            line.push_str(&format!("; health check failing: {gist}"));
        }
        line
    }

    fn step_text(&self) -> String {
        let total = self.total.map_or_else(|| "?".to_owned(), |t| t.to_string());
        let actions: Vec<String> =
            self.actions.iter().map(|a| format!("{} {}", a.action, a.app)).collect();
        if self.total == Some(0) {
            return "no changes".to_owned();
        }
        if actions.is_empty() {
            format!("step {}/{total}", self.step)
        } else {
            format!("step {}/{total}: {}", self.step, actions.join(", "))
        }
    }

    /// The live view: what the deployment does, then one line per app.
    pub(crate) fn view(&self) -> Vec<String> {
        let head = match &self.phase {
            Phase::Running | Phase::Vanished => {
                format!("deployment {}: {}", self.id, self.step_text())
            }
            Phase::Succeeded => format!("deployment {}: done", self.id),
            Phase::Failed { .. } => format!(
                "deployment {} failed: {}",
                self.id,
                self.failure.as_deref().unwrap_or("unknown reason")
            ),
            Phase::RollingBack(id) => format!("rollback {id}: {}", self.step_text()),
            Phase::RolledBack(id, None) => format!("rollback {id}: done"),
            Phase::RolledBack(id, Some(reason)) => format!("rollback {id} failed: {reason}"),
        };
        let mut lines = vec![head];
        lines.extend(self.apps.iter().map(|(id, app)| self.app_line(id, app)));
        lines
    }

    /// Why the apps are not healthy, as far as the API says:
    /// `/web: health check failing: HTTP 404; last task failure: ...`.
    fn details(&self) -> Vec<String> {
        self.apps
            .iter()
            .filter_map(|(id, app)| {
                let mut parts = Vec::new();
                if let Some(cause) = &app.health_failure {
                    parts.push(format!("health check failing: {cause}"));
                }
                if let Some(failure) = &app.task_failure {
                    parts.push(format!("last task failure: {failure}"));
                }
                (!parts.is_empty()).then(|| format!("{id}: {}", parts.join("; ")))
            })
            .collect()
    }

    fn summaries(&self) -> String {
        let summaries: Vec<String> =
            self.apps.iter().map(|(id, app)| Progress::app_summary(id, app)).collect();
        summaries.join(", ")
    }

    fn apps_json(&self) -> Value {
        let apps: Vec<Value> = self
            .apps
            .iter()
            .map(|(id, app)| {
                let c = Progress::counts(app);
                json!({
                    "id": id, "deleted": app.deleting, "target": app.target,
                    "healthy": c.healthy, "running": c.running, "staging": c.staging,
                    "otherVersions": c.old,
                    "healthCheckFailure": app.health_failure, "lastTaskFailure": app.task_failure,
                })
            })
            .collect();
        json!(apps)
    }

    /// The failure line: reason, why the apps are unhealthy, the rollback.
    fn failed_line(&self, rollback: &str) -> String {
        let mut line = format!(
            "deployment {} failed: {}",
            self.id,
            self.failure.as_deref().unwrap_or("unknown reason")
        );
        let details = self.details();
        if !details.is_empty() {
            line.push_str(&format!(" ({})", details.join("; ")));
        }
        if !rollback.is_empty() {
            line.push_str("; ");
            line.push_str(rollback);
        }
        line
    }

    fn failed(&self, rollback: &str, rollback_json: Value) -> Outcome {
        Outcome {
            success: false,
            line: self.failed_line(rollback),
            json: json!({
                "deploymentId": self.id, "outcome": "failed", "reason": self.failure,
                "rollback": rollback_json, "apps": self.apps_json(),
            }),
        }
    }

    /// How it ended, once it has.
    pub(crate) fn outcome(&self) -> Option<Outcome> {
        match &self.phase {
            Phase::Running | Phase::Vanished | Phase::RollingBack(_) => None,
            Phase::Failed { expect_rollback: true } => None,
            Phase::Succeeded => Some(Outcome {
                success: true,
                line: format!("deployment {} succeeded: {}", self.id, self.summaries()),
                json: json!({
                    "deploymentId": self.id, "outcome": "succeeded", "apps": self.apps_json(),
                }),
            }),
            Phase::Failed { expect_rollback: false } if self.unexplained => {
                Some(self.failed("", Value::Null))
            }
            Phase::Failed { expect_rollback: false } => {
                Some(self.failed("not rolled back", Value::Null))
            }
            Phase::RolledBack(id, None) => Some(self.failed(
                &format!("rolled back by deployment {id}: {}", self.summaries()),
                json!({"deploymentId": id, "outcome": "succeeded"}),
            )),
            Phase::RolledBack(id, Some(reason)) => Some(self.failed(
                &format!("its rollback {id} failed too: {reason}"),
                json!({"deploymentId": id, "outcome": "failed", "reason": reason}),
            )),
        }
    }

    /// The outcome when `secs` passed before the end.
    pub(crate) fn timed_out(&self, secs: u64) -> Outcome {
        let json_of = |rollback: Value| {
            json!({
                "deploymentId": self.id, "outcome": "timeout", "timeoutSeconds": secs,
                "reason": self.failure, "rollback": rollback, "apps": self.apps_json(),
            })
        };
        let (line, json) = match &self.phase {
            Phase::RollingBack(id) => (
                self.failed_line(&format!(
                    "its rollback {id} was still running after {secs}s ({})",
                    self.step_text()
                )),
                json_of(json!({"deploymentId": id, "outcome": "running"})),
            ),
            Phase::Failed { .. } => (
                self.failed_line(&format!("no rollback seen within {secs}s")),
                json_of(Value::Null),
            ),
            _ => {
                let mut line = format!(
                    "deployment {} timed out after {secs}s at {}: {}",
                    self.id,
                    self.step_text(),
                    self.summaries()
                );
                let details = self.details();
                if !details.is_empty() {
                    line.push_str(&format!(" ({})", details.join("; ")));
                }
                line.push_str(&format!(
                    "; it goes on: cancel it with `drover deployments cancel {}`",
                    self.id
                ));
                (line, json_of(Value::Null))
            }
        };
        Outcome { success: false, line, json }
    }
}

impl AppState {
    /// True when a task of `version` runs the wanted configuration: it is
    /// no older than the configuration and no newer than the version (a
    /// rollback makes an older version current again).
    fn is_current(&self, version: &str) -> bool {
        newer_or_same(version, &self.config_since)
            && (self.version.is_empty() || newer_or_same(&self.version, version))
    }

    fn learn_spec(&mut self, app: &App) {
        self.target = Some(app.instances);
        self.deleting = false;
        self.config_since = app.config_since().to_owned();
        self.version = app.version.clone();
        self.health_checks = !app.health_checks.is_empty();
    }
}

impl TaskState {
    fn from_task(t: &Task) -> TaskState {
        TaskState { state: t.state.clone(), healthy: t.healthy(), version: t.version.clone() }
    }
}

/// `a >= b` for two API times (an empty `b` is older than everything).
fn newer_or_same(a: &str, b: &str) -> bool {
    if b.is_empty() {
        return true;
    }
    match (format::parse_time(a), format::parse_time(b)) {
        (Some(a), Some(b)) => a >= b,
        _ => a >= b,
    }
}

/// The lines of `next` that a log (a non-terminal) has not shown yet.
pub(crate) fn new_lines(shown: &[String], next: &[String]) -> Vec<String> {
    next.iter().filter(|l| !shown.contains(l)).cloned().collect()
}

#[cfg(test)]
mod tests;
