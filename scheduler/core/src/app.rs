//! What a user wants for a long-running service: the app spec.

use std::collections::BTreeMap;
use std::time::Duration;

use drover_time::Timestamp;

use crate::ids::AppId;

/// Scalar resources of a task (or of an offer).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Resources {
    /// CPU shares.
    pub cpus: f64,
    /// Memory in MB.
    pub mem: f64,
    /// Disk in MB.
    pub disk: f64,
    /// Whole GPUs.
    pub gpus: u32,
}

impl Resources {
    /// `self + other`.
    pub fn plus(&self, other: &Resources) -> Resources {
        Resources {
            cpus: self.cpus + other.cpus,
            mem: self.mem + other.mem,
            disk: self.disk + other.disk,
            gpus: self.gpus + other.gpus,
        }
    }

    /// `self - other`, never below zero.
    pub fn minus(&self, other: &Resources) -> Resources {
        Resources {
            cpus: (self.cpus - other.cpus).max(0.0),
            mem: (self.mem - other.mem).max(0.0),
            disk: (self.disk - other.disk).max(0.0),
            gpus: self.gpus.saturating_sub(other.gpus),
        }
    }
}

/// How a task's command runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandSpec {
    /// `cmd`: run by `/bin/sh -c`.
    Shell(String),
    /// `args`: executed directly, no shell.
    Argv(Vec<String>),
}

/// Which instances go first when scaling down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KillSelection {
    /// The most recently started first (Marathon's default).
    #[default]
    YoungestFirst,
    /// The longest running first.
    OldestFirst,
}

/// Launch backoff after failed tasks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffPolicy {
    /// The first delay.
    pub initial: Duration,
    /// The multiplier per further failure.
    pub factor: f64,
    /// The cap.
    pub max: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            initial: Duration::from_secs(1),
            factor: 1.15,
            max: Duration::from_secs(300),
        }
    }
}

impl BackoffPolicy {
    /// The delay after `failures` consecutive failures (1 = the first).
    pub fn delay(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let exp = i32::try_from(failures - 1).unwrap_or(i32::MAX);
        let secs = self.initial.as_secs_f64() * self.factor.max(1.0).powi(exp);
        if secs.is_finite() {
            Duration::from_secs_f64(secs.max(0.0)).min(self.max)
        } else {
            self.max
        }
    }
}

/// A validated app: everything the scheduler needs to run it.
#[derive(Debug, Clone, PartialEq)]
pub struct AppSpec {
    /// The path id.
    pub id: AppId,
    /// The command.
    pub command: CommandSpec,
    /// Desired instance count.
    pub instances: u32,
    /// Resources of each task.
    pub resources: Resources,
    /// Environment variables given by the user.
    pub env: BTreeMap<String, String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Launch backoff.
    pub backoff: BackoffPolicy,
    /// Scale-down order.
    pub kill_selection: KillSelection,
    /// Time between SIGTERM and SIGKILL when a task is killed (`None` = the executor's default).
    pub kill_grace: Option<Duration>,
    /// The version: when this spec was last changed in any way.
    pub version: Timestamp,
    /// When the instance count last changed.
    pub last_scaling_at: Timestamp,
    /// When anything but the instance count last changed.
    pub last_config_change_at: Timestamp,
}

impl AppSpec {
    /// True when `other` differs from `self` in more than the instance count
    /// and the version stamps: the running tasks must be replaced.
    pub fn config_differs(&self, other: &AppSpec) -> bool {
        let normalize = |s: &AppSpec| AppSpec {
            instances: 0,
            version: Timestamp::EPOCH,
            last_scaling_at: Timestamp::EPOCH,
            last_config_change_at: Timestamp::EPOCH,
            ..s.clone()
        };
        normalize(self) != normalize(other)
    }

    /// The environment Marathon gives every task of this app, plus the
    /// user's `env` (which wins on conflicts).
    pub fn task_env(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        env.insert("MARATHON_APP_ID".to_owned(), self.id.to_string());
        env.insert("MARATHON_APP_VERSION".to_owned(), crate::format_version(self.version));
        env.insert("MARATHON_APP_RESOURCE_CPUS".to_owned(), self.resources.cpus.to_string());
        env.insert("MARATHON_APP_RESOURCE_MEM".to_owned(), self.resources.mem.to_string());
        env.insert("MARATHON_APP_RESOURCE_DISK".to_owned(), self.resources.disk.to_string());
        env.insert("MARATHON_APP_RESOURCE_GPUS".to_owned(), self.resources.gpus.to_string());
        let mut label_names = Vec::new();
        for (k, v) in &self.labels {
            let safe: String = k
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
                .collect();
            let safe = safe.to_ascii_uppercase();
            // Marathon skips labels whose values are too long for an env var.
            if v.len() <= 512 {
                env.insert(format!("MARATHON_APP_LABEL_{safe}"), v.clone());
                label_names.push(safe);
            }
        }
        env.insert("MARATHON_APP_LABELS".to_owned(), label_names.join(" "));
        for (k, v) in &self.env {
            env.insert(k.clone(), v.clone());
        }
        env
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn spec(id: &str) -> AppSpec {
        AppSpec {
            id: AppId::parse(id).unwrap(),
            command: CommandSpec::Shell("sleep 600".into()),
            instances: 1,
            resources: Resources { cpus: 1.0, mem: 128.0, disk: 0.0, gpus: 0 },
            env: BTreeMap::new(),
            labels: BTreeMap::new(),
            backoff: BackoffPolicy::default(),
            kill_selection: KillSelection::YoungestFirst,
            kill_grace: None,
            version: Timestamp::from_secs(1),
            last_scaling_at: Timestamp::from_secs(1),
            last_config_change_at: Timestamp::from_secs(1),
        }
    }

    #[test]
    fn backoff_grows_by_factor_and_caps() {
        let p = BackoffPolicy::default();
        assert_eq!(p.delay(0), Duration::ZERO);
        assert_eq!(p.delay(1), Duration::from_secs(1));
        assert!((p.delay(2).as_secs_f64() - 1.15).abs() < 1e-9);
        assert_eq!(p.delay(200), Duration::from_secs(300));
        let silly = BackoffPolicy {
            initial: Duration::from_secs(1),
            factor: f64::MAX,
            max: Duration::from_secs(9),
        };
        assert_eq!(silly.delay(5), Duration::from_secs(9));
    }

    #[test]
    fn scaling_is_not_a_config_change() {
        let a = spec("/a");
        let mut b = a.clone();
        b.instances = 5;
        b.version = Timestamp::from_secs(99);
        assert!(!a.config_differs(&b));
        b.command = CommandSpec::Shell("sleep 1".into());
        assert!(a.config_differs(&b));
    }

    #[test]
    fn task_env_has_marathon_variables_and_user_env_wins() {
        let mut a = spec("/prod/web");
        a.labels.insert("HAPROXY-group".into(), "ext".into());
        a.env.insert("MARATHON_APP_ID".into(), "override".into());
        a.env.insert("FOO".into(), "bar".into());
        let env = a.task_env();
        assert_eq!(env["MARATHON_APP_ID"], "override");
        assert_eq!(env["FOO"], "bar");
        assert_eq!(env["MARATHON_APP_LABEL_HAPROXY_GROUP"], "ext");
        assert_eq!(env["MARATHON_APP_LABELS"], "HAPROXY_GROUP");
        assert_eq!(env["MARATHON_APP_RESOURCE_MEM"], "128");
        assert_eq!(env["MARATHON_APP_VERSION"], "1970-01-01T00:00:01.000Z");
    }
}
