//! Change feeds: what [`Store::watch`](crate::Store::watch) returns, and
//! the in-process fan-out ([`Hub`]) the memory and embedded stores use.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sched_core::scheduler::StoredState;
use tokio::sync::mpsc;

use crate::codec::{Record, decode};
use crate::layout::{Layout, RecordKey};
use crate::plan::Known;
use crate::{Revision, StoreError};

/// One change to one record.
#[allow(clippy::large_enum_variant)] // Moved once, like `Record`.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The record was written (created or replaced).
    Put(Record),
    /// The record was deleted.
    Delete(RecordKey),
}

/// The changes of one committed batch.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeBatch {
    /// The batch's revision.
    pub revision: Revision,
    /// Its changes, in the order of the batch's operations.
    pub changes: Vec<Change>,
}

/// A committed batch as stored bytes: `(key, Some(value))` for a put,
/// `(key, None)` for a delete.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawBatch {
    pub(crate) revision: Revision,
    pub(crate) changes: Vec<(String, Option<Vec<u8>>)>,
}

type Item = Result<Arc<RawBatch>, StoreError>;

/// Aborts a task when dropped.
#[derive(Debug)]
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An open change feed. Dropping it ends the watch.
#[derive(Debug)]
pub struct Watch {
    rx: mpsc::Receiver<Item>,
    layout: Layout,
    lagged: Arc<AtomicBool>,
    _task: Option<AbortOnDrop>,
}

impl Watch {
    pub(crate) fn new(
        rx: mpsc::Receiver<Item>,
        layout: Layout,
        lagged: Arc<AtomicBool>,
        task: Option<AbortOnDrop>,
    ) -> Watch {
        Watch { rx, layout, lagged, _task: task }
    }

    /// The next batch that changed records (batches that touched only
    /// foreign keys, such as the election key, are skipped). A watch does
    /// not end by itself: [`StoreError::WatchLagged`] when this reader fell
    /// too far behind, [`StoreError::WatchClosed`] when the store closed it.
    pub async fn next(&mut self) -> Result<ChangeBatch, StoreError> {
        loop {
            let raw = match self.rx.recv().await {
                Some(item) => item?,
                None if self.lagged.load(Ordering::Acquire) => return Err(StoreError::WatchLagged),
                None => return Err(StoreError::WatchClosed),
            };
            let mut changes = Vec::with_capacity(raw.changes.len());
            for (key, value) in &raw.changes {
                let Some(kind) = self.layout.parse(key) else { continue };
                changes.push(match value {
                    Some(bytes) => Change::Put(decode(key, &kind, bytes)?),
                    None => Change::Delete(kind),
                });
            }
            if !changes.is_empty() {
                return Ok(ChangeBatch { revision: raw.revision, changes });
            }
        }
    }
}

/// Batches kept for replay by the in-process stores.
const HISTORY: usize = 1024;
/// Batches a watcher may fall behind before it is dropped.
const WATCH_BUFFER: usize = 1024;

struct Subscriber {
    tx: mpsc::Sender<Item>,
    lagged: Arc<AtomicBool>,
}

/// Fan-out of committed batches to watchers, with a bounded history.
pub(crate) struct Hub {
    history: VecDeque<Arc<RawBatch>>,
    /// The oldest revision a new watch can start from.
    floor: Revision,
    subscribers: Vec<Subscriber>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("history", &self.history.len())
            .field("floor", &self.floor)
            .field("subscribers", &self.subscribers.len())
            .finish()
    }
}

impl Hub {
    /// A hub for a store at `current`: history starts after it.
    pub(crate) fn new(current: Revision) -> Hub {
        Hub { history: VecDeque::new(), floor: current + 1, subscribers: Vec::new() }
    }

    /// Sends a committed batch to every watcher; drops those that lag.
    pub(crate) fn publish(&mut self, batch: RawBatch) {
        let batch = Arc::new(batch);
        self.history.push_back(batch.clone());
        while self.history.len() > HISTORY {
            if let Some(old) = self.history.pop_front() {
                self.floor = old.revision + 1;
            }
        }
        self.subscribers.retain(|s| match s.tx.try_send(Ok(batch.clone())) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                s.lagged.store(true, Ordering::Release);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
    }

    /// A watch from `from` (0: the next batch after `current`).
    pub(crate) fn subscribe(
        &mut self,
        from: Revision,
        current: Revision,
        layout: &Layout,
    ) -> Result<Watch, StoreError> {
        let from = if from <= 0 { current + 1 } else { from };
        if from < self.floor {
            return Err(StoreError::Compacted { revision: from });
        }
        let replay: Vec<Arc<RawBatch>> =
            self.history.iter().filter(|b| b.revision >= from).cloned().collect();
        let (tx, rx) = mpsc::channel(WATCH_BUFFER + replay.len());
        for b in replay {
            // Cannot fail: the channel has room for the whole replay.
            let _ = tx.try_send(Ok(b));
        }
        let lagged = Arc::new(AtomicBool::new(false));
        self.subscribers.push(Subscriber { tx, lagged: lagged.clone() });
        Ok(Watch::new(rx, layout.clone(), lagged, None))
    }
}

/// The state held by `entries` (key, modification revision, bytes) and what
/// a handle that read them knows. Keys outside the layout are skipped.
pub(crate) fn assemble<'a>(
    layout: &Layout,
    entries: impl IntoIterator<Item = (&'a str, Revision, &'a [u8])>,
) -> Result<(StoredState, Known), StoreError> {
    let mut state = StoredState::default();
    let mut known = Known::new();
    for (key, revision, bytes) in entries {
        let Some(kind) = layout.parse(key) else { continue };
        known.insert(key.to_owned(), revision);
        match decode(key, &kind, bytes)? {
            Record::FrameworkId(id) => state.framework_id = Some(id),
            Record::App(a) => state.apps.push(a),
            Record::AppVersion(a) => state.versions.push(a),
            Record::Instance(i) => state.instances.push(i),
            Record::Deployment(d) => state.deployments.push(*d),
            Record::Job(j) => state.jobs.push(j),
            Record::JobState(name, st) => state.job_states.push((name, st)),
            Record::JobRun(r) => state.runs.push(r),
        }
    }
    // The same order whatever the key encoding: by id (and version).
    state.apps.sort_by(|a, b| a.id.cmp(&b.id));
    state.versions.sort_by(|a, b| (&a.id, a.version).cmp(&(&b.id, b.version)));
    state.instances.sort_by(|a, b| a.id.cmp(&b.id));
    state.deployments.sort_by(|a, b| a.id.cmp(&b.id));
    state.jobs.sort_by(|a, b| a.name.cmp(&b.name));
    state.job_states.sort_by(|a, b| a.0.cmp(&b.0));
    state.runs.sort_by(|a, b| (&a.job, &a.id).cmp(&(&b.job, &b.id)));
    Ok((state, known))
}
