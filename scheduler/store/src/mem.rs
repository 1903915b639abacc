//! [`MemStore`]: the store in process memory, and the compare-and-apply
//! step it shares with the embedded store.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sched_core::scheduler::Write;

use crate::plan::{self, Action, Known, Limits, Op};
use crate::watch::{Hub, RawBatch, Watch, assemble};
use crate::{Layout, Loaded, Revision, Store, StoreError};

/// A key as the in-process stores keep it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) modified: Revision,
    pub(crate) value: Vec<u8>,
}

/// The key-value table a batch is applied to.
pub(crate) trait Table {
    /// The key's modification revision, if it exists.
    fn modified(&self, key: &str) -> Result<Option<Revision>, StoreError>;
    fn put(&mut self, key: &str, entry: Entry) -> Result<(), StoreError>;
    fn delete(&mut self, key: &str) -> Result<(), StoreError>;
}

/// Checks every compare of `batch`, then applies it at `revision`: all or
/// nothing. Returns the batch as a change for watchers.
pub(crate) fn check_and_apply<T: Table>(
    table: &mut T,
    batch: &[Op],
    revision: Revision,
) -> Result<RawBatch, StoreError> {
    for op in batch {
        if table.modified(&op.key)?.unwrap_or(0) != op.expect {
            return Err(StoreError::Conflict { key: op.key.clone() });
        }
    }
    let mut changes = Vec::with_capacity(batch.len());
    for op in batch {
        match &op.action {
            Action::Put(value) => {
                table.put(&op.key, Entry { modified: revision, value: value.clone() })?;
                changes.push((op.key.clone(), Some(value.clone())));
            }
            Action::Delete => {
                table.delete(&op.key)?;
                changes.push((op.key.clone(), None));
            }
        }
    }
    Ok(RawBatch { revision, changes })
}

impl Table for BTreeMap<String, Entry> {
    fn modified(&self, key: &str) -> Result<Option<Revision>, StoreError> {
        Ok(self.get(key).map(|e| e.modified))
    }
    fn put(&mut self, key: &str, entry: Entry) -> Result<(), StoreError> {
        self.insert(key.to_owned(), entry);
        Ok(())
    }
    fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        self.remove(key);
        Ok(())
    }
}

#[derive(Debug)]
struct Data {
    revision: Revision,
    entries: BTreeMap<String, Entry>,
    hub: Hub,
}

#[derive(Debug)]
struct Shared {
    data: Mutex<Data>,
    fail_next: Mutex<u32>,
    commits: AtomicU64,
}

/// A store in process memory, with fault injection for tests. State
/// survives a rebuild of the scheduler core, not a restart of the process.
/// Records are encoded exactly as the other stores encode them.
#[derive(Debug)]
pub struct MemStore {
    shared: Arc<Shared>,
    layout: Layout,
    limits: Limits,
    known: tokio::sync::Mutex<Known>,
}

impl Default for MemStore {
    fn default() -> Self {
        MemStore::with_limits(Limits::default())
    }
}

impl MemStore {
    /// An empty store, with etcd's default limits.
    pub fn new() -> Self {
        MemStore::default()
    }

    /// An empty store that splits commits under `limits`.
    pub fn with_limits(limits: Limits) -> Self {
        let data = Data { revision: 0, entries: BTreeMap::new(), hub: Hub::new(0) };
        MemStore {
            shared: Arc::new(Shared {
                data: Mutex::new(data),
                fail_next: Mutex::new(0),
                commits: AtomicU64::new(0),
            }),
            layout: Layout::default(),
            limits,
            known: tokio::sync::Mutex::new(Known::new()),
        }
    }

    /// Another handle on the same memory, as a second process would have:
    /// it knows nothing until it loads.
    pub fn handle(&self) -> MemStore {
        MemStore {
            shared: self.shared.clone(),
            layout: self.layout.clone(),
            limits: self.limits,
            known: tokio::sync::Mutex::new(Known::new()),
        }
    }

    /// Makes the next `n` commits fail (and change nothing).
    pub fn fail_next_commits(&self, n: u32) {
        *self.shared.fail_next.lock().unwrap_or_else(|e| e.into_inner()) = n;
    }

    /// How many commits succeeded.
    pub fn commit_count(&self) -> u64 {
        self.shared.commits.load(Ordering::Relaxed)
    }

    fn data(&self) -> std::sync::MutexGuard<'_, Data> {
        self.shared.data.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Store for MemStore {
    async fn snapshot(&self) -> Result<Loaded, StoreError> {
        let mut known = self.known.lock().await;
        let data = self.data();
        let entries =
            data.entries.iter().map(|(k, e)| (k.as_str(), e.modified, e.value.as_slice()));
        let (state, now_known) = assemble(&self.layout, entries)?;
        *known = now_known;
        Ok(Loaded { state, revision: data.revision })
    }

    async fn commit(&self, writes: &[Write]) -> Result<(), StoreError> {
        {
            let mut fail = self.shared.fail_next.lock().unwrap_or_else(|e| e.into_inner());
            if *fail > 0 {
                *fail -= 1;
                return Err(StoreError::Unavailable("injected failure".into()));
            }
        }
        let mut known = self.known.lock().await;
        let batches = plan::split(plan::plan(&self.layout, &known, writes)?, &self.limits)?;
        for batch in batches {
            let mut data = self.data();
            let revision = data.revision + 1;
            let raw = check_and_apply(&mut data.entries, &batch, revision)?;
            data.revision = revision;
            data.hub.publish(raw);
            plan::remember(&mut known, &batch, revision);
        }
        self.shared.commits.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn watch(&self, from: Revision) -> Result<Watch, StoreError> {
        let mut data = self.data();
        let current = data.revision;
        data.hub.subscribe(from, current, &self.layout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract;

    #[tokio::test]
    async fn mem_store_passes_the_contract() {
        let a = MemStore::new();
        contract::run(&a, &a.handle()).await;
    }

    #[tokio::test]
    async fn mem_store_splits_under_small_limits_too() {
        let a = MemStore::with_limits(Limits { max_ops: 16, max_request_bytes: 256 * 1024 });
        contract::large_commits(&a, &Limits { max_ops: 16, max_request_bytes: 256 * 1024 }).await;
    }

    #[tokio::test]
    async fn injected_failures_change_nothing() {
        let store = MemStore::new();
        store.fail_next_commits(1);
        let err = store.commit(&[Write::FrameworkId("x".into())]).await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)));
        assert!(err.is_unavailable());
        assert_eq!(store.load().await.unwrap().framework_id, None);
        store.commit(&[Write::FrameworkId("x".into())]).await.unwrap();
        assert_eq!(store.load().await.unwrap().framework_id.as_deref(), Some("x"));
        assert_eq!(store.commit_count(), 1);
    }
}
