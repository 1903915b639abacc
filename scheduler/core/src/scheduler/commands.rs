//! User commands. Every change to apps becomes a deployment: the new specs
//! and the deployment are written first, the reply follows the write, and
//! the deployment then drives instances (see `deploy.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use drover_time::{Timestamp, format_uuid};

use super::{
    Command, CommandError, Deployed, Effect, Notification, Outcome, RequestId, SERVICE_PORTS,
    Scheduler, Write,
};
use crate::app::{AppSpec, NetworkMode};
use crate::deployment::{self, Deployment, Origin};
use crate::ids::{AppId, InstanceId, TaskId};
use crate::instance::{Goal, Instance};

/// One app in a change: its new spec (`None` = delete), and whether its
/// tasks must be replaced even if the configuration is the same.
struct Change {
    id: AppId,
    spec: Option<AppSpec>,
    restart: bool,
}

type Handled = Result<(Vec<Write>, Outcome), CommandError>;

impl Scheduler {
    /// A user command. The reply comes as an [`Effect::Reply`] for `request`,
    /// once the command's writes are persisted; a refused command changes
    /// nothing.
    pub fn handle_command(&mut self, request: RequestId, command: Command, now: Timestamp) {
        let result = match command {
            Command::CreateApp { spec, force } => {
                if self.state.apps.contains_key(&spec.id) {
                    Err(CommandError::AppExists(spec.id))
                } else {
                    self.change(
                        vec![Change { id: spec.id.clone(), spec: Some(*spec), restart: false }],
                        force,
                        now,
                    )
                }
            }
            Command::PutApps { specs, force } => {
                let changes = specs
                    .into_iter()
                    .map(|s| Change { id: s.id.clone(), spec: Some(s), restart: false })
                    .collect();
                self.change(changes, force, now)
            }
            Command::DeleteApps { ids, force } => match ids
                .iter()
                .find(|id| !self.state.apps.contains_key(*id))
            {
                Some(missing) => Err(CommandError::AppNotFound(missing.clone())),
                None => self.change(
                    ids.into_iter().map(|id| Change { id, spec: None, restart: false }).collect(),
                    force,
                    now,
                ),
            },
            Command::RestartApp { id, force } => match self.state.apps.get(&id).cloned() {
                None => Err(CommandError::AppNotFound(id)),
                Some(app) => {
                    self.change(vec![Change { id, spec: Some(app), restart: true }], force, now)
                }
            },
            Command::KillTasks { task_ids, scale, wipe, force } => {
                self.kill_tasks(&task_ids, scale, wipe, force, now)
            }
            Command::CancelDeployment { id, force } => self.cancel_deployment(&id, force, now),
            Command::ResetDelay(id) => {
                if self.state.apps.contains_key(&id) {
                    self.state.delays.remove(&id);
                    self.revive_wanted = true;
                    Ok((Vec::new(), Outcome::Done))
                } else {
                    Err(CommandError::AppNotFound(id))
                }
            }
            Command::PutJob(spec) => self.put_job(*spec, now),
            Command::DeleteJob(name) => self.delete_job(&name, now),
            Command::RunJob { name, arguments } => self.run_job(&name, arguments, now),
            Command::KillJob(name) => self.kill_job(&name, now),
            Command::MarkJobSuccess(name) => self.mark_job_success(&name, now),
        };
        match result {
            Ok((writes, outcome)) => {
                let reply = Effect::Reply { request, result: Ok(outcome) };
                self.persist(writes, vec![reply], Some(request), Vec::new());
            }
            Err(e) => self.effects.push_back(Effect::Reply { request, result: Err(e) }),
        }
        self.drive_deployments(now);
        self.update_offer_interest(now);
    }

    /// Deployments that hold any of `apps`.
    fn locking(&self, apps: &BTreeSet<AppId>) -> Vec<String> {
        self.state
            .deployments
            .values()
            .filter(|d| d.affected_apps().any(|a| apps.contains(a)))
            .map(|d| d.id.clone())
            .collect()
    }

    /// Refuses with `Locked` unless `force`; with `force`, cancels the
    /// locking deployments (their writes are returned).
    fn take_lock(
        &mut self,
        apps: &BTreeSet<AppId>,
        force: bool,
    ) -> Result<Vec<Write>, CommandError> {
        let locking = self.locking(apps);
        if locking.is_empty() {
            return Ok(Vec::new());
        }
        if !force {
            return Err(CommandError::Locked { deployments: locking });
        }
        let mut writes = Vec::new();
        for id in locking {
            if let Some(d) = self.state.deployments.remove(&id) {
                writes.push(Write::DeleteDeployment(id));
                self.notify(Notification::DeploymentFailed {
                    deployment: Box::new(d),
                    reason: "canceled by a forced change".into(),
                    canceled: true,
                });
            }
        }
        Ok(writes)
    }

    fn next_version(&self, now: Timestamp) -> Timestamp {
        let latest = self.state.apps.values().map(|a| a.version).max().unwrap_or(Timestamp::EPOCH);
        if latest >= now { latest.plus(Duration::from_millis(1)) } else { now }
    }

    /// Validates and applies a change of apps, and starts its deployment.
    fn change(&mut self, changes: Vec<Change>, force: bool, now: Timestamp) -> Handled {
        let ids: BTreeSet<AppId> = changes.iter().map(|c| c.id.clone()).collect();
        if ids.len() != changes.len() {
            return Err(CommandError::Invalid("an app appears twice in one change".into()));
        }
        let version = self.next_version(now);
        // Everything is checked before anything changes.
        let mut planned = Vec::with_capacity(changes.len());
        let mut taken_service_ports = BTreeSet::new();
        for c in changes {
            let old = self.state.apps.get(&c.id).cloned();
            let spec = match c.spec {
                None => None,
                Some(mut spec) => {
                    self.assign_service_ports(&mut spec, &ids, &mut taken_service_ports)?;
                    spec.version = version;
                    let restart = c.restart || old.as_ref().is_none_or(|o| o.config_differs(&spec));
                    let scaled = old.as_ref().is_none_or(|o| o.instances != spec.instances);
                    spec.last_config_change_at = if restart {
                        version
                    } else {
                        old.as_ref().map_or(version, |o| o.last_config_change_at)
                    };
                    spec.last_scaling_at = if restart || scaled {
                        version
                    } else {
                        old.as_ref().map_or(version, |o| o.last_scaling_at)
                    };
                    Some(spec)
                }
            };
            planned.push((c.id, old, spec));
        }
        self.check_dependencies(&planned)?;
        let mut writes = self.take_lock(&ids, force)?;

        let mut original = BTreeMap::new();
        let mut target = BTreeMap::new();
        let mut created = false;
        for (id, old, spec) in planned {
            created = old.is_none() && spec.is_some();
            match &spec {
                Some(s) => writes.extend(self.store_app(s.clone(), old.as_ref())),
                None => writes.extend(self.forget_app(&id)),
            }
            original.insert(id.clone(), old);
            target.insert(id, spec);
        }
        let created = created && target.len() == 1;
        let apps: Vec<AppSpec> = target.values().flatten().cloned().collect();
        let deployment_id = self.start_deployment(original, target, Origin::User, now, &mut writes);
        Ok((writes, Outcome::Deployed(Deployed { deployment_id, version, apps, created })))
    }

    /// Every dependency names an app that exists after the change, and the
    /// dependencies have no cycle.
    fn check_dependencies(
        &self,
        planned: &[(AppId, Option<AppSpec>, Option<AppSpec>)],
    ) -> Result<(), CommandError> {
        let mut after: BTreeMap<AppId, Vec<AppId>> =
            self.state.apps.values().map(|a| (a.id.clone(), a.dependencies.clone())).collect();
        for (id, _, spec) in planned {
            match spec {
                Some(s) => after.insert(id.clone(), s.dependencies.clone()),
                None => after.remove(id),
            };
        }
        for (id, _, spec) in planned {
            for dep in spec.iter().flat_map(|s| &s.dependencies) {
                if !after.contains_key(dep) {
                    return Err(CommandError::Invalid(format!(
                        "{id} depends on {dep}, which does not exist"
                    )));
                }
            }
        }
        // A cycle leaves apps that never become ready in a topological pass.
        let mut left: BTreeSet<&AppId> = after.keys().collect();
        loop {
            let ready: Vec<&AppId> = left
                .iter()
                .copied()
                .filter(|id| after[*id].iter().all(|d| !left.contains(d)))
                .collect();
            if ready.is_empty() {
                break;
            }
            for r in ready {
                left.remove(r);
            }
        }
        match left.into_iter().next() {
            Some(id) => {
                Err(CommandError::Invalid(format!("the dependencies of {id} form a cycle")))
            }
            None => Ok(()),
        }
    }

    /// Makes `spec` the app's current version and keeps it among the versions.
    fn store_app(&mut self, spec: AppSpec, old: Option<&AppSpec>) -> Vec<Write> {
        let mut writes = vec![Write::PutApp(spec.clone())];
        if old.is_none_or(|o| o.config_differs(&spec)) {
            self.state.delays.remove(&spec.id);
        }
        self.state.versions.entry(spec.id.clone()).or_default().insert(spec.version, spec.clone());
        self.state.apps.insert(spec.id.clone(), spec.clone());
        writes.extend(self.prune_versions(&spec.id));
        writes
    }

    /// Drops the oldest versions beyond the limit that no instance runs.
    fn prune_versions(&mut self, app: &AppId) -> Vec<Write> {
        let in_use: BTreeSet<Timestamp> =
            self.state.app_instances(app).map(|i| i.app_version).collect();
        let current = self.state.apps.get(app).map(|a| a.version);
        let Some(versions) = self.state.versions.get_mut(app) else { return Vec::new() };
        let mut writes = Vec::new();
        let excess = versions.len().saturating_sub(self.config.max_versions.max(1));
        let doomed: Vec<Timestamp> = versions
            .keys()
            .copied()
            .filter(|v| !in_use.contains(v) && Some(*v) != current)
            .take(excess)
            .collect();
        for v in doomed {
            versions.remove(&v);
            writes.push(Write::DeleteAppVersion(app.clone(), v));
        }
        writes
    }

    /// Removes a deleted app; its instances are stopped by the deployment.
    fn forget_app(&mut self, id: &AppId) -> Vec<Write> {
        self.state.apps.remove(id);
        self.state.delays.remove(id);
        self.state.queue.remove(id);
        self.state.last_failures.remove(id);
        vec![Write::DeleteApp(id.clone())]
    }

    /// Creates, stores and announces a deployment; returns its id.
    pub(super) fn start_deployment(
        &mut self,
        original: BTreeMap<AppId, Option<AppSpec>>,
        target: BTreeMap<AppId, Option<AppSpec>>,
        origin: Origin,
        now: Timestamp,
        writes: &mut Vec<Write>,
    ) -> String {
        let id = format_uuid(&self.rng.uuid_v4());
        let steps = deployment::plan(&original, &target);
        let d = Deployment {
            id: id.clone(),
            version: now,
            steps,
            current_step: 0,
            original,
            target,
            last_progress_at: now,
            progress_mark: Vec::new(),
            origin,
        };
        writes.push(Write::PutDeployment(Box::new(d.clone())));
        self.notify(Notification::DeploymentInfo(Box::new(d.clone())));
        self.state.deployments.insert(id.clone(), d);
        id
    }

    /// Rolls a deployment back: the affected apps return to their original
    /// specs (apps it created are deleted), in a new deployment.
    pub(super) fn start_rollback(
        &mut self,
        failed: &Deployment,
        now: Timestamp,
    ) -> (Vec<Write>, String) {
        let mut writes = Vec::new();
        let mut target = BTreeMap::new();
        let mut original = BTreeMap::new();
        for (id, before) in &failed.original {
            let current = self.state.apps.get(id).cloned();
            match before {
                Some(spec) => {
                    self.state
                        .versions
                        .entry(id.clone())
                        .or_default()
                        .insert(spec.version, spec.clone());
                    self.state.apps.insert(id.clone(), spec.clone());
                    writes.push(Write::RestoreApp(spec.clone()));
                }
                None => {
                    if current.is_some() {
                        writes.extend(self.forget_app(id));
                    }
                }
            }
            original.insert(id.clone(), current);
            target.insert(id.clone(), before.clone());
        }
        let id = self.start_deployment(
            original,
            target,
            Origin::Rollback { of: failed.id.clone() },
            now,
            &mut writes,
        );
        (writes, id)
    }

    fn cancel_deployment(&mut self, id: &str, force: bool, now: Timestamp) -> Handled {
        let Some(d) = self.state.deployments.remove(id) else {
            return Err(CommandError::DeploymentNotFound(id.to_owned()));
        };
        let mut writes = vec![Write::DeleteDeployment(id.to_owned())];
        let reason = if force { "canceled" } else { "canceled and rolled back" };
        self.notify(Notification::DeploymentFailed {
            deployment: Box::new(d.clone()),
            reason: reason.into(),
            canceled: true,
        });
        if force {
            return Ok((writes, Outcome::Done));
        }
        let (more, rollback) = self.start_rollback(&d, now);
        writes.extend(more);
        let apps = d.original.values().flatten().cloned().collect();
        Ok((
            writes,
            Outcome::Deployed(Deployed {
                deployment_id: rollback,
                version: now,
                apps,
                created: false,
            }),
        ))
    }

    fn kill_tasks(
        &mut self,
        task_ids: &[TaskId],
        scale: bool,
        wipe: bool,
        force: bool,
        now: Timestamp,
    ) -> Handled {
        let mut found: Vec<Instance> = Vec::new();
        let mut missing = Vec::new();
        for t in task_ids {
            let inst = t.parse().and_then(|(i, _)| self.state.instances.get(&i)).filter(|i| {
                i.goal == Goal::Running
                    && i.task.as_ref().is_some_and(|task| task.id == *t && task.is_active())
            });
            match inst {
                Some(i) => found.push(i.clone()),
                None => missing.push(t.to_string()),
            }
        }
        if !missing.is_empty() {
            return Err(CommandError::TasksNotFound(missing));
        }
        found.sort_by(|a, b| a.id.cmp(&b.id));
        found.dedup_by(|a, b| a.id == b.id);
        if scale {
            let mut by_app: BTreeMap<AppId, Vec<InstanceId>> = BTreeMap::new();
            for i in &found {
                by_app.entry(i.app_id.clone()).or_default().push(i.id.clone());
            }
            let apps: BTreeSet<AppId> = by_app.keys().cloned().collect();
            if !force && !self.locking(&apps).is_empty() {
                return Err(CommandError::Locked { deployments: self.locking(&apps) });
            }
            let mut changes = Vec::new();
            for (app, instances) in &by_app {
                let Some(mut spec) = self.state.apps.get(app).cloned() else { continue };
                spec.instances = spec
                    .instances
                    .saturating_sub(u32::try_from(instances.len()).unwrap_or(u32::MAX));
                changes.push(Change { id: app.clone(), spec: Some(spec), restart: false });
            }
            let (mut writes, outcome) = self.change(changes, force, now)?;
            // The named instances go (not the kill order's choice).
            for id in by_app.values().flatten() {
                writes.extend(self.decommission(id, now));
            }
            return Ok((writes, outcome));
        }
        let mut writes = Vec::new();
        for i in &found {
            if wipe {
                writes.extend(self.decommission(&i.id, now));
                if let Some(spec) = self.state.apps.get(&i.app_id).cloned() {
                    writes.extend(self.add_instances(&spec, 1));
                }
            } else if let Some(mut inst) = self.state.instances.get(&i.id).cloned()
                && !self.launching.contains(&i.id)
                && let Some(task) = inst.task.as_mut()
            {
                task.kill_sent_at = Some(now);
                let call = super::kill_call(task);
                self.call(call);
                self.put_instance(inst);
            }
        }
        Ok((writes, Outcome::Killed(found)))
    }

    /// Gives every service port 0 of `spec` the lowest port in
    /// [`SERVICE_PORTS`] that no app outside the change uses.
    fn assign_service_ports(
        &self,
        spec: &mut AppSpec,
        changing: &BTreeSet<AppId>,
        taken: &mut BTreeSet<u32>,
    ) -> Result<(), CommandError> {
        let used: BTreeSet<u32> = self
            .state
            .apps
            .values()
            .filter(|a| a.id != spec.id && !changing.contains(&a.id))
            .flat_map(AppSpec::service_ports)
            .collect();
        taken.extend(spec.service_ports().into_iter().filter(|p| *p != 0));
        let mut next = || {
            let p = SERVICE_PORTS.clone().find(|p| !used.contains(p) && !taken.contains(p));
            if let Some(p) = p {
                taken.insert(p);
            }
            p.ok_or_else(|| CommandError::Invalid("no service port is left in 10000-20000".into()))
        };
        match spec.network {
            NetworkMode::Host => {
                for d in spec.port_definitions.iter_mut().filter(|d| d.port == 0) {
                    d.port = next()?;
                }
            }
            NetworkMode::Bridge => {
                for m in spec
                    .container
                    .iter_mut()
                    .flat_map(|c| c.port_mappings.iter_mut())
                    .filter(|m| m.service_port == 0)
                {
                    m.service_port = next()?;
                }
            }
        }
        Ok(())
    }
}
