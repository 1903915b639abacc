//! The scheduler's durable state.
//!
//! [`Store`] is the interface the daemon persists through: it loads the
//! state a scheduler resumes from, and commits the [`Write`]s of one
//! `Effect::Persist` atomically (all or nothing). Implementations must pass
//! the shared [`contract`] suite.
//!
//! [`MemStore`] keeps everything in process memory (state survives a
//! rebuild of the scheduler core, not a restart of the process). The etcd
//! and embedded on-disk stores implement the same trait.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;

use drover_time::Timestamp;
use sched_core::app::AppSpec;
use sched_core::deployment::Deployment;
use sched_core::ids::{AppId, InstanceId};
use sched_core::instance::Instance;
use sched_core::scheduler::{StoredState, Write};

pub mod contract;

/// Why the store could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or refused the request.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A compare-and-swap lost a race: reload and re-plan.
    #[error("revision conflict on `{key}`")]
    Conflict {
        /// The contested key.
        key: String,
    },
}

/// Durable state of the scheduler.
pub trait Store: Send + Sync + 'static {
    /// Everything a scheduler resumes from.
    fn load(&self) -> impl Future<Output = Result<StoredState, StoreError>> + Send;

    /// Applies `writes` atomically, in order.
    fn commit(&self, writes: &[Write]) -> impl Future<Output = Result<(), StoreError>> + Send;
}

#[derive(Debug, Default, Clone)]
struct Tables {
    framework_id: Option<String>,
    apps: BTreeMap<AppId, AppSpec>,
    versions: BTreeMap<(AppId, Timestamp), AppSpec>,
    instances: BTreeMap<InstanceId, Instance>,
    deployments: BTreeMap<String, Deployment>,
}

impl Tables {
    fn apply(&mut self, write: &Write) {
        match write {
            Write::FrameworkId(id) => self.framework_id = Some(id.clone()),
            Write::PutApp(app) | Write::RestoreApp(app) => {
                self.apps.insert(app.id.clone(), app.clone());
                self.versions.insert((app.id.clone(), app.version), app.clone());
            }
            Write::DeleteAppVersion(id, version) => {
                self.versions.remove(&(id.clone(), *version));
            }
            Write::DeleteApp(id) => {
                self.apps.remove(id);
                self.versions.retain(|(app, _), _| app != id);
            }
            Write::PutDeployment(d) => {
                self.deployments.insert(d.id.clone(), (**d).clone());
            }
            Write::DeleteDeployment(id) => {
                self.deployments.remove(id);
            }
            Write::PutInstance(inst) => {
                self.instances.insert(inst.id.clone(), inst.clone());
            }
            Write::DeleteInstance(id) => {
                self.instances.remove(id);
            }
        }
    }
}

/// A store in process memory, with fault injection for tests.
#[derive(Debug, Default)]
pub struct MemStore {
    tables: Mutex<Tables>,
    fail_next: Mutex<u32>,
    commits: Mutex<u64>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        MemStore::default()
    }

    /// Makes the next `n` commits fail (and change nothing).
    pub fn fail_next_commits(&self, n: u32) {
        *self.fail_next.lock().unwrap_or_else(|e| e.into_inner()) = n;
    }

    /// How many commits succeeded.
    pub fn commit_count(&self) -> u64 {
        *self.commits.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Store for MemStore {
    async fn load(&self) -> Result<StoredState, StoreError> {
        let t = self.tables.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Ok(StoredState {
            framework_id: t.framework_id,
            apps: t.apps.into_values().collect(),
            versions: t.versions.into_values().collect(),
            instances: t.instances.into_values().collect(),
            deployments: t.deployments.into_values().collect(),
        })
    }

    async fn commit(&self, writes: &[Write]) -> Result<(), StoreError> {
        {
            let mut fail = self.fail_next.lock().unwrap_or_else(|e| e.into_inner());
            if *fail > 0 {
                *fail -= 1;
                return Err(StoreError::Unavailable("injected failure".into()));
            }
        }
        // Apply to a copy and swap it in: all or nothing.
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = tables.clone();
        for w in writes {
            next.apply(w);
        }
        *tables = next;
        *self.commits.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn mem_store_passes_the_contract() {
        contract::run(&MemStore::new()).await;
    }

    #[tokio::test]
    async fn injected_failures_change_nothing() {
        let store = MemStore::new();
        store.fail_next_commits(1);
        let err = store.commit(&[Write::FrameworkId("x".into())]).await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)));
        assert_eq!(store.load().await.unwrap().framework_id, None);
        store.commit(&[Write::FrameworkId("x".into())]).await.unwrap();
        assert_eq!(store.load().await.unwrap().framework_id.as_deref(), Some("x"));
        assert_eq!(store.commit_count(), 1);
    }
}
