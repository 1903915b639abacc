//! Where each record lives: one key per record, under a configurable prefix
//! (default `/drover`). Never one big tree: every key stays far below
//! etcd's request limit, and a change touches only the keys it changes.
//!
//! | key | record |
//! |---|---|
//! | `<prefix>/framework-id` | the framework id |
//! | `<prefix>/apps/<safe app id>` | an app's current spec |
//! | `<prefix>/app-versions/<safe app id>/<version ms, 20 digits>` | one kept version of an app |
//! | `<prefix>/instances/<instance id>` | an instance and its task |
//! | `<prefix>/deployments/<deployment id>` | a deployment, with its plan and progress |
//! | `<prefix>/jobs/<job name>` | a job's spec |
//! | `<prefix>/job-states/<job name>` | what a job remembers between runs (last fire, counts) |
//! | `<prefix>/job-runs/<job name>/<run id>` | one run of a job (active, or kept in its history) |
//! | `<prefix>/leader` | the election key (see [`crate::election`]) |
//!
//! A *safe app id* is the path without its leading slash and with `/` as
//! `_` (`/prod/web` → `prod_web`): app ids never contain `_`, so it is
//! unambiguous, and `app-versions/prod_web/` never contains another app's
//! versions. Instance ids already start with their app's safe id, so
//! `instances/prod_web.` lists one app's instances. Version numbers are
//! zero-padded, so keys sort chronologically.
//!
//! Job names are `[A-Za-z0-9_.-]+`, safe in a key as they are; they never
//! contain `/`, so `job-runs/etl/` holds the runs of `etl` and never those
//! of `etl-2`. A run id is any non-empty text (a UUID in practice).

use drover_time::Timestamp;
use sched_core::ids::{AppId, InstanceId};
use sched_core::job::JobName;

/// The prefix used when none is configured.
pub const DEFAULT_PREFIX: &str = "/drover";

/// Which record a key holds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum RecordKey {
    /// The framework id.
    FrameworkId,
    /// An app's current spec.
    App(AppId),
    /// One kept version of an app.
    AppVersion(AppId, Timestamp),
    /// An instance.
    Instance(InstanceId),
    /// A deployment.
    Deployment(String),
    /// A job's spec.
    Job(JobName),
    /// What a job remembers between runs.
    JobState(JobName),
    /// One run of a job: the job and the run id.
    JobRun(JobName, String),
}

/// The key layout under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Without a trailing slash; may be empty.
    prefix: String,
}

impl Default for Layout {
    fn default() -> Self {
        Layout::new(DEFAULT_PREFIX)
    }
}

impl Layout {
    /// The layout under `prefix` (a trailing `/` is ignored).
    pub fn new(prefix: &str) -> Layout {
        Layout { prefix: prefix.trim_end_matches('/').to_owned() }
    }

    /// The prefix, without a trailing slash.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The prefix of every key of this layout (`<prefix>/`).
    pub fn root(&self) -> String {
        format!("{}/", self.prefix)
    }

    /// The framework id's key.
    pub fn framework_id(&self) -> String {
        format!("{}/framework-id", self.prefix)
    }

    /// An app's key.
    pub fn app(&self, id: &AppId) -> String {
        format!("{}/apps/{}", self.prefix, id.safe_path())
    }

    /// The prefix of every kept version of an app.
    pub fn app_versions(&self, id: &AppId) -> String {
        format!("{}/app-versions/{}/", self.prefix, id.safe_path())
    }

    /// One kept version's key.
    pub fn app_version(&self, id: &AppId, version: Timestamp) -> String {
        format!("{}{:020}", self.app_versions(id), version.as_millis())
    }

    /// An instance's key.
    pub fn instance(&self, id: &InstanceId) -> String {
        format!("{}/instances/{}", self.prefix, id.as_str())
    }

    /// A deployment's key.
    pub fn deployment(&self, id: &str) -> String {
        format!("{}/deployments/{id}", self.prefix)
    }

    /// The recommended election key.
    pub fn leader(&self) -> String {
        format!("{}/leader", self.prefix)
    }

    /// A job's key.
    pub fn job(&self, name: &JobName) -> String {
        format!("{}/jobs/{name}", self.prefix)
    }

    /// The key of a job's state.
    pub fn job_state(&self, name: &JobName) -> String {
        format!("{}/job-states/{name}", self.prefix)
    }

    /// The prefix of every run of a job (and of no other job's).
    pub fn job_runs(&self, name: &JobName) -> String {
        format!("{}/job-runs/{name}/", self.prefix)
    }

    /// One run's key.
    pub fn job_run(&self, name: &JobName, run_id: &str) -> String {
        format!("{}{run_id}", self.job_runs(name))
    }

    /// The key of `record`.
    pub fn key(&self, record: &RecordKey) -> String {
        match record {
            RecordKey::FrameworkId => self.framework_id(),
            RecordKey::App(id) => self.app(id),
            RecordKey::AppVersion(id, v) => self.app_version(id, *v),
            RecordKey::Instance(id) => self.instance(id),
            RecordKey::Deployment(id) => self.deployment(id),
            RecordKey::Job(name) => self.job(name),
            RecordKey::JobState(name) => self.job_state(name),
            RecordKey::JobRun(name, id) => self.job_run(name, id),
        }
    }

    /// Which record `key` holds; `None` for keys that hold no record of this
    /// layout (the election key, foreign keys).
    pub fn parse(&self, key: &str) -> Option<RecordKey> {
        let rest = key.strip_prefix(&self.prefix)?.strip_prefix('/')?;
        if rest == "framework-id" {
            return Some(RecordKey::FrameworkId);
        }
        if let Some(safe) = rest.strip_prefix("apps/") {
            return app_from_safe(safe).map(RecordKey::App);
        }
        if let Some(v) = rest.strip_prefix("app-versions/") {
            let (safe, version) = v.split_once('/')?;
            if version.len() != 20 || !version.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let ms: i64 = version.parse().ok()?;
            return Some(RecordKey::AppVersion(app_from_safe(safe)?, Timestamp::from_millis(ms)));
        }
        if let Some(id) = rest.strip_prefix("instances/") {
            return InstanceId::parse(id).map(RecordKey::Instance);
        }
        if let Some(id) = rest.strip_prefix("deployments/") {
            return (!id.is_empty()).then(|| RecordKey::Deployment(id.to_owned()));
        }
        if let Some(name) = rest.strip_prefix("jobs/") {
            return JobName::parse(name).ok().map(RecordKey::Job);
        }
        if let Some(name) = rest.strip_prefix("job-states/") {
            return JobName::parse(name).ok().map(RecordKey::JobState);
        }
        if let Some(run) = rest.strip_prefix("job-runs/") {
            // Names never contain `/`: the first one ends the name.
            let (name, id) = run.split_once('/')?;
            if id.is_empty() {
                return None;
            }
            return Some(RecordKey::JobRun(JobName::parse(name).ok()?, id.to_owned()));
        }
        None
    }
}

fn app_from_safe(safe: &str) -> Option<AppId> {
    let id = AppId::from_safe_path(safe)?;
    (id.safe_path() == safe).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_key_parses_back() {
        let l = Layout::new("/drover/");
        let app = AppId::parse("/prod/web").unwrap();
        let job = JobName::parse("etl.nightly_2-b").unwrap();
        let keys = [
            RecordKey::FrameworkId,
            RecordKey::App(app.clone()),
            RecordKey::AppVersion(app.clone(), Timestamp::from_millis(1_700_000_000_123)),
            RecordKey::Instance(InstanceId::new(&app, "5a9e0d6c-0000-4000-8000-000000000001")),
            RecordKey::Deployment("d-1".into()),
            RecordKey::Job(job.clone()),
            RecordKey::JobState(job.clone()),
            RecordKey::JobRun(job.clone(), "5a9e0d6c-0000-4000-8000-000000000001".into()),
            // Run ids are opaque: even one with a slash reads back.
            RecordKey::JobRun(job.clone(), "a/b".into()),
        ];
        for k in keys {
            assert_eq!(l.parse(&l.key(&k)), Some(k.clone()), "{}", l.key(&k));
        }
        assert_eq!(l.app(&app), "/drover/apps/prod_web");
        assert_eq!(
            l.app_version(&app, Timestamp::from_millis(5)),
            "/drover/app-versions/prod_web/00000000000000000005"
        );
        assert_eq!(l.job(&job), "/drover/jobs/etl.nightly_2-b");
        assert_eq!(l.job_state(&job), "/drover/job-states/etl.nightly_2-b");
        assert_eq!(l.job_run(&job, "r1"), "/drover/job-runs/etl.nightly_2-b/r1");
    }

    #[test]
    fn foreign_and_malformed_keys_are_not_records() {
        let l = Layout::default();
        for k in [
            "/drover/leader",
            "/drover/schedules/x",
            "/droverx/apps/a",
            "/other/apps/a",
            "/drover/apps/Bad_",
            "/drover/app-versions/a/12",
            "/drover/instances/nope",
            "/drover/deployments/",
            "/drover/jobs/",
            "/drover/jobs/a/b",
            "/drover/jobs/with space",
            "/drover/job-states/",
            "/drover/job-states/a/b",
            "/drover/job-runs/a",
            "/drover/job-runs/a/",
            "/drover/job-runs//r1",
            "/drover/job-runs/bad name/r1",
        ] {
            assert_eq!(l.parse(k), None, "{k}");
        }
    }

    #[test]
    fn one_apps_versions_prefix_excludes_other_apps() {
        let l = Layout::default();
        let a = AppId::parse("/prod").unwrap();
        let b = AppId::parse("/prod/web").unwrap();
        assert!(!l.app_version(&b, Timestamp::EPOCH).starts_with(&l.app_versions(&a)));
    }

    #[test]
    fn one_jobs_runs_prefix_excludes_other_jobs() {
        let l = Layout::default();
        let etl = JobName::parse("etl").unwrap();
        let etl2 = JobName::parse("etl-2").unwrap();
        assert!(!l.job_run(&etl2, "r1").starts_with(&l.job_runs(&etl)));
        assert!(l.job_run(&etl, "r1").starts_with(&l.job_runs(&etl)));
    }

    proptest::proptest! {
        /// Any job name and any non-empty run id make keys that read back.
        #[test]
        fn job_keys_round_trip(name in "[A-Za-z0-9_.-]{1,40}", run in "\\PC{1,40}") {
            let l = Layout::default();
            let name = JobName::parse(&name).unwrap();
            for k in [
                RecordKey::Job(name.clone()),
                RecordKey::JobState(name.clone()),
                RecordKey::JobRun(name.clone(), run.clone()),
            ] {
                proptest::prop_assert_eq!(l.parse(&l.key(&k)), Some(k));
            }
        }
    }
}
