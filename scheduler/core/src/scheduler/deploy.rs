//! Driving deployments: each step's actions run [`rollout`] for their apps
//! (or stop them), the deployment advances when every action is done, and
//! fails (and is rolled back) when it makes no progress within the app's
//! progress deadline.

use drover_time::Timestamp;

use super::{Notification, Scheduler, Write};
use crate::deployment::{Action, rollout};
use crate::ids::{AppId, InstanceId};
use crate::instance::Goal;

impl Scheduler {
    /// Moves every deployment forward.
    pub(super) fn drive_deployments(&mut self, now: Timestamp) {
        let ids: Vec<String> = self.state.deployments.keys().cloned().collect();
        let mut writes = Vec::new();
        for id in ids {
            writes.extend(self.drive_one(&id, now));
        }
        self.persist(writes, Vec::new(), None, Vec::new());
    }

    fn drive_one(&mut self, id: &str, now: Timestamp) -> Vec<Write> {
        let mut writes = Vec::new();
        loop {
            let Some(dep) = self.state.deployments.get(id).cloned() else { return writes };
            let mut done = true;
            let mut marks = Vec::new();
            for action in dep.current_actions() {
                let (action_done, mark) = match action.action {
                    Action::StopApplication => self.stop_app(&action.app, now, &mut writes),
                    _ => self.roll_app(&action.app, now, &mut writes),
                };
                done &= action_done;
                marks.push(mark);
            }
            let Some(dep) = self.state.deployments.get_mut(id) else { return writes };
            if marks != dep.progress_mark {
                dep.progress_mark = marks;
                dep.last_progress_at = now;
            }
            if !done {
                let stalled =
                    dep.progress_deadline().is_some_and(|d| now >= dep.last_progress_at.plus(d));
                if stalled {
                    let secs = dep.progress_deadline().map_or(0, |d| d.as_secs());
                    writes.extend(self.fail_deployment(
                        id,
                        format!("no progress within the progress deadline of {secs}s"),
                        now,
                    ));
                }
                return writes;
            }
            let step_done = dep.clone();
            dep.current_step += 1;
            dep.progress_mark.clear();
            dep.last_progress_at = now;
            let finished = dep.current_step >= dep.steps.len();
            let snapshot = dep.clone();
            if !step_done.steps.is_empty() {
                self.notify(Notification::DeploymentStepSuccess(Box::new(step_done)));
            }
            if finished {
                self.state.deployments.remove(id);
                writes.push(Write::DeleteDeployment(id.to_owned()));
                self.notify(Notification::DeploymentSuccess(Box::new(snapshot)));
                return writes;
            }
            writes.push(Write::PutDeployment(Box::new(snapshot.clone())));
            self.notify(Notification::DeploymentInfo(Box::new(snapshot)));
        }
    }

    /// One rollout round for a running app; `(done, progress)`.
    fn roll_app(
        &mut self,
        app_id: &AppId,
        now: Timestamp,
        writes: &mut Vec<Write>,
    ) -> (bool, (u32, u32, u32)) {
        // The app may have been deleted by a later, forced change.
        let Some(app) = self.state.apps.get(app_id).cloned() else { return (true, (0, 0, 0)) };
        let decision = {
            let instances: Vec<_> =
                self.state.app_instances(app_id).map(|i| (i, self.state.is_current(i))).collect();
            rollout(&app, &instances)
        };
        for id in &decision.kill {
            writes.extend(self.decommission(id, now));
        }
        writes.extend(self.add_instances(&app, decision.start));
        (decision.done, decision.progress)
    }

    /// Stops every instance of a deleted app; done when none is left.
    fn stop_app(
        &mut self,
        app_id: &AppId,
        now: Timestamp,
        writes: &mut Vec<Write>,
    ) -> (bool, (u32, u32, u32)) {
        let running: Vec<InstanceId> = self
            .state
            .app_instances(app_id)
            .filter(|i| i.goal == Goal::Running)
            .map(|i| i.id.clone())
            .collect();
        for id in &running {
            writes.extend(self.decommission(id, now));
        }
        let left = u32::try_from(self.state.app_instances(app_id).count()).unwrap_or(u32::MAX);
        if left == 0 && !self.state.apps.contains_key(app_id) {
            self.state.versions.remove(app_id);
            self.notify(Notification::AppTerminated(app_id.clone()));
        }
        (left == 0, (0, left, 0))
    }

    /// Ends a deployment as failed and, unless the apps opted out, rolls it back.
    fn fail_deployment(&mut self, id: &str, reason: String, now: Timestamp) -> Vec<Write> {
        let Some(dep) = self.state.deployments.remove(id) else { return Vec::new() };
        let mut writes = vec![Write::DeleteDeployment(id.to_owned())];
        let rollback = dep.rolls_back_on_failure();
        self.notify(Notification::DeploymentFailed {
            deployment: Box::new(dep.clone()),
            reason,
            canceled: false,
        });
        if rollback {
            let (more, _) = self.start_rollback(&dep, now);
            writes.extend(more);
        }
        writes
    }
}
