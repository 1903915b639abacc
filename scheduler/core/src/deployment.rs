//! Deployments: every change to apps is a plan of steps, each a set of
//! actions on apps, executed in order (Marathon's model).
//!
//! - [`plan`] turns a change (apps before and after) into steps, ordering
//!   starts by `dependencies` and stops in reverse.
//! - [`rollout`] is the heart of a running action: given an app's spec and
//!   its instances, it decides which instances to start and which to kill,
//!   honouring `upgradeStrategy` (`minimumHealthCapacity`,
//!   `maximumOverCapacity`), and whether the action is done.
//!
//! Both are pure functions; the scheduler applies their decisions.

use std::collections::{BTreeMap, BTreeSet};

use drover_time::Timestamp;

use crate::app::{AppSpec, KillSelection};
use crate::ids::{AppId, InstanceId};
use crate::instance::{Goal, Instance, TaskState};

/// The kind of change a deployment action makes (Marathon's action names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// A new app.
    StartApplication,
    /// A new instance count.
    ScaleApplication,
    /// A new configuration: every task is replaced.
    RestartApplication,
    /// App deleted.
    StopApplication,
}

impl Action {
    /// Marathon's name.
    pub fn name(self) -> &'static str {
        match self {
            Action::StartApplication => "StartApplication",
            Action::ScaleApplication => "ScaleApplication",
            Action::RestartApplication => "RestartApplication",
            Action::StopApplication => "StopApplication",
        }
    }
}

/// One action of a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepAction {
    /// What it does.
    pub action: Action,
    /// To which app.
    pub app: AppId,
}

/// Why a deployment exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A user's change.
    User,
    /// The automatic or requested rollback of another deployment.
    Rollback {
        /// The deployment rolled back.
        of: String,
    },
}

/// A deployment: a change in progress.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    /// Its id (a UUID).
    pub id: String,
    /// When it was created (Marathon's deployment `version`).
    pub version: Timestamp,
    /// The steps, executed one after the other.
    pub steps: Vec<Vec<StepAction>>,
    /// Index of the step in progress.
    pub current_step: usize,
    /// The affected apps before the change (`None`: did not exist).
    pub original: BTreeMap<AppId, Option<AppSpec>>,
    /// The affected apps after the change (`None`: deleted).
    pub target: BTreeMap<AppId, Option<AppSpec>>,
    /// When progress was last observed.
    pub last_progress_at: Timestamp,
    /// What progress looked like then (compared to detect progress).
    pub progress_mark: Vec<(u32, u32, u32)>,
    /// Why it exists.
    pub origin: Origin,
}

impl Deployment {
    /// The apps this deployment touches.
    pub fn affected_apps(&self) -> impl Iterator<Item = &AppId> {
        self.target.keys()
    }

    /// The actions of the current step.
    pub fn current_actions(&self) -> &[StepAction] {
        self.steps.get(self.current_step).map_or(&[], Vec::as_slice)
    }

    /// The progress deadline: the shortest of the affected target apps'.
    pub fn progress_deadline(&self) -> Option<std::time::Duration> {
        self.target.values().flatten().map(|a| a.progress_deadline).min()
    }

    /// True when a failure should roll the change back.
    pub fn rolls_back_on_failure(&self) -> bool {
        self.origin == Origin::User && self.target.values().flatten().all(|a| a.rollback_on_failure)
    }
}

/// Which action a change of one app is.
fn action_for(before: Option<&AppSpec>, after: Option<&AppSpec>) -> Option<Action> {
    match (before, after) {
        (None, Some(_)) => Some(Action::StartApplication),
        (Some(_), None) => Some(Action::StopApplication),
        (Some(b), Some(a))
            if b.config_differs(a) || b.last_config_change_at != a.last_config_change_at =>
        {
            Some(Action::RestartApplication)
        }
        (Some(_), Some(_)) => Some(Action::ScaleApplication),
        (None, None) => None,
    }
}

/// Steps for a change: apps are ordered by their `dependencies` among the
/// affected apps (a dependency starts, scales or restarts first); stops
/// run after the other actions, dependents first.
pub fn plan(
    original: &BTreeMap<AppId, Option<AppSpec>>,
    target: &BTreeMap<AppId, Option<AppSpec>>,
) -> Vec<Vec<StepAction>> {
    let mut actions: BTreeMap<AppId, Action> = BTreeMap::new();
    for (id, after) in target {
        let before = original.get(id).and_then(Option::as_ref);
        if let Some(a) = action_for(before, after.as_ref()) {
            actions.insert(id.clone(), a);
        }
    }
    let deps = |id: &AppId| -> BTreeSet<AppId> {
        let spec = target
            .get(id)
            .and_then(Option::as_ref)
            .or_else(|| original.get(id).and_then(Option::as_ref));
        spec.map(|s| {
            s.dependencies
                .iter()
                .filter(|d| actions.contains_key(*d) && *d != id)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
    };
    let layer = |ids: Vec<AppId>, reverse: bool| -> Vec<Vec<StepAction>> {
        // Kahn's algorithm by levels; a cycle (refused by validation) would
        // leave apps unlayered, so they go in one last step.
        let mut left: BTreeSet<AppId> = ids.into_iter().collect();
        let mut levels: Vec<Vec<AppId>> = Vec::new();
        while !left.is_empty() {
            let ready: Vec<AppId> = left
                .iter()
                .filter(|id| {
                    if reverse {
                        // A stop waits for the apps that depend on it.
                        !left.iter().any(|other| other != *id && deps(other).contains(*id))
                    } else {
                        deps(id).iter().all(|d| !left.contains(d))
                    }
                })
                .cloned()
                .collect();
            let ready = if ready.is_empty() { left.iter().cloned().collect() } else { ready };
            for id in &ready {
                left.remove(id);
            }
            levels.push(ready);
        }
        levels
            .into_iter()
            .map(|ids| {
                ids.into_iter().map(|app| StepAction { action: actions[&app], app }).collect()
            })
            .collect()
    };
    let (stops, others): (Vec<AppId>, Vec<AppId>) =
        actions.keys().cloned().partition(|id| actions[id] == Action::StopApplication);
    let mut steps = layer(others, false);
    steps.extend(layer(stops, true));
    steps
}

/// What [`rollout`] decided for one app.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rollout {
    /// New instances (of the current configuration) to create.
    pub start: u32,
    /// Instances to kill and forget.
    pub kill: Vec<InstanceId>,
    /// True when the app has converged: nothing else will happen.
    pub done: bool,
    /// `(ready current, current, outdated)`: changes mean progress.
    pub progress: (u32, u32, u32),
}

/// True when the instance serves: running, and healthy if the app has
/// health checks.
pub fn is_ready(app: &AppSpec, inst: &Instance) -> bool {
    inst.active_task().is_some_and(|t| {
        t.state == TaskState::Running
            && (app.health_checks.is_empty() || t.health.as_ref().is_some_and(|h| h.alive))
    })
}

/// Decides the next moves for an app whose spec is `app`, given its
/// instances (all goals) and whether each runs the current configuration.
///
/// The rules (Marathon's rolling upgrade, `n` = `instances`):
/// - at most `n` current instances; surplus ones go in the kill order;
/// - outdated instances that do not serve (not running, or unhealthy) go at once;
/// - the total of current, outdated and still-dying instances stays within
///   `n + ceil(n × maximumOverCapacity)`, but at least one above the
///   minimum, so a strategy of `{1, 0}` still progresses one at a time;
///   a killed instance frees its place only once its task has ended;
/// - a serving outdated instance is killed only while at least
///   `ceil(n × minimumHealthCapacity)` serving instances remain, and only
///   when it is redundant or its capacity is needed for a new instance.
pub fn rollout(app: &AppSpec, instances: &[(&Instance, bool)]) -> Rollout {
    let n = app.instances;
    let mut current: Vec<&Instance> = Vec::new();
    let mut outdated: Vec<&Instance> = Vec::new();
    for (inst, is_current) in instances.iter().filter(|(i, _)| i.goal == Goal::Running) {
        if *is_current {
            current.push(inst);
        } else {
            outdated.push(inst);
        }
    }
    let count = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    // Instances being killed still hold their resources and still run
    // (the master counts them): they count against the surge.
    let leaving_count =
        count(instances.iter().filter(|(i, _)| i.goal == Goal::Decommissioned).count());
    let leaving = leaving_count > 0;
    let mut out = Rollout {
        progress: (
            count(current.iter().filter(|i| is_ready(app, i)).count()),
            count(current.len()),
            count(outdated.len()),
        ),
        ..Rollout::default()
    };

    // Surplus current instances, in the app's kill order.
    let mut keep: Vec<&Instance> = current.clone();
    if count(current.len()) > n {
        let all: Vec<Instance> = current.iter().map(|i| (*i).clone()).collect();
        let victims = select_victims(&all, current.len() - n as usize, app.kill_selection);
        keep.retain(|i| !victims.contains(&i.id));
        out.kill.extend(victims);
    }
    let c = count(keep.len());
    let rc = count(keep.iter().filter(|i| is_ready(app, i)).count());

    // Outdated instances that do not serve go at once (those still
    // running keep their place until they are gone).
    let mut serving_old: Vec<&Instance> = Vec::new();
    let mut dying = leaving_count;
    for i in &outdated {
        if is_ready(app, i) {
            serving_old.push(i);
        } else {
            out.kill.push(i.id.clone());
            if i.active_task().is_some() {
                dying += 1;
            }
        }
    }
    let ro = count(serving_old.len());

    let fraction = |x: f64| (f64::from(n) * x - 1e-9).ceil().max(0.0) as u32;
    let min_ready = fraction(app.upgrade.minimum_health_capacity).min(n);
    let max_total = if n == 0 {
        0
    } else {
        n.saturating_add(fraction(app.upgrade.maximum_over_capacity)).max(min_ready + 1)
    };
    let desired = n - c;
    let room = max_total.saturating_sub(c + ro + dying);
    let killable = ro.min((rc + ro).saturating_sub(min_ready));
    let redundant = (rc + ro).saturating_sub(n);
    let for_room = desired.saturating_sub(room);
    let k = killable.min(redundant.max(for_room));
    // The oldest serving outdated instances go first.
    serving_old
        .sort_by_key(|i| (i.task.as_ref().map_or(Timestamp::EPOCH, |t| t.staged_at), i.id.clone()));
    out.kill.extend(serving_old.iter().take(k as usize).map(|i| i.id.clone()));

    // The `k` instances killed now still run: they keep their place too.
    out.start = desired.min(max_total.saturating_sub(c + ro + dying));
    out.done = outdated.is_empty() && count(current.len()) == n && rc == n && !leaving;
    out
}

/// Picks `count` instances to remove on scale-down: never-launched ones
/// first, then staging before running, then by the app's kill selection.
pub fn select_victims(
    instances: &[Instance],
    count: usize,
    selection: KillSelection,
) -> Vec<InstanceId> {
    let mut ranked: Vec<&Instance> = instances.iter().collect();
    ranked.sort_by(|a, b| {
        let key = |i: &Instance| match i.active_task() {
            None => (0, Timestamp::EPOCH),
            Some(t) if t.state != TaskState::Running => (1, t.staged_at),
            Some(t) => (2, t.started_at.unwrap_or(t.staged_at)),
        };
        let (ra, ta) = key(a);
        let (rb, tb) = key(b);
        ra.cmp(&rb).then_with(|| match selection {
            KillSelection::YoungestFirst => tb.cmp(&ta),
            KillSelection::OldestFirst => ta.cmp(&tb),
        })
    });
    ranked.into_iter().take(count).map(|i| i.id.clone()).collect()
}

#[cfg(test)]
mod tests;
