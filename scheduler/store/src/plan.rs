//! From a commit's [`Write`]s to per-key operations, and from those to
//! batches under the request limits. Shared by every store, so all of them
//! split, compare and coalesce the same way.
//!
//! - Each key is written at most once per commit (etcd refuses a key twice
//!   in one transaction): a later write of the same key replaces the earlier
//!   one in place, so the outcome is the outcome of applying the writes in
//!   order.
//! - Each operation carries the compare of its key: the modification
//!   revision the store handle last saw, 0 for "absent".
//! - A commit whose operations do not fit one request is split into batches
//!   of at most [`Limits::max_ops`]` - 1` operations (one compare is kept
//!   for the fence) and [`Limits::max_request_bytes`] (estimated
//!   generously). Batches are applied one by one, in order; each is atomic.

use std::collections::{BTreeMap, BTreeSet};

use sched_core::scheduler::Write;

use crate::StoreError;
use crate::codec::{Record, encode};
use crate::layout::{Layout, RecordKey};

/// Request limits a commit is split under. The defaults are etcd's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// etcd `--max-txn-ops` (default 128): compares, and operations per
    /// branch, in one transaction.
    pub max_ops: usize,
    /// etcd `--max-request-bytes` (default 1.5 MiB): one request's size.
    pub max_request_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_ops: 128, max_request_bytes: 3 * 512 * 1024 }
    }
}

/// Room kept in each request for the fence compare and the envelope.
const RESERVED_BYTES: usize = 4096;

impl Limits {
    /// Operations per batch: one compare is kept for the fence.
    pub fn ops_per_batch(&self) -> usize {
        self.max_ops.saturating_sub(1).max(1)
    }

    /// Bytes per batch, by [`Op::cost`].
    pub fn bytes_per_batch(&self) -> usize {
        self.max_request_bytes.saturating_sub(RESERVED_BYTES).max(1)
    }
}

/// What happens to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    Put(Vec<u8>),
    Delete,
}

/// One key's operation in a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Op {
    pub(crate) key: String,
    pub(crate) record: RecordKey,
    pub(crate) action: Action,
    /// The key's modification revision as last seen (0: absent).
    pub(crate) expect: i64,
}

impl Op {
    /// An upper bound of the bytes this operation adds to an etcd
    /// transaction: its compare, its put or delete, and the read of the key
    /// in the failure branch, with framing.
    pub(crate) fn cost(&self) -> usize {
        let value = match &self.action {
            Action::Put(v) => v.len(),
            Action::Delete => 0,
        };
        3 * self.key.len() + value + 64
    }
}

/// What a store handle last saw: each existing key's modification revision.
pub(crate) type Known = BTreeMap<String, i64>;

struct Planner<'a> {
    layout: &'a Layout,
    known: &'a Known,
    ops: Vec<Op>,
    index: BTreeMap<String, usize>,
    /// Keys that exist once the writes so far are applied.
    present: BTreeSet<String>,
}

impl Planner<'_> {
    fn set(&mut self, record: RecordKey, action: Action) {
        let key = self.layout.key(&record);
        match &action {
            Action::Put(_) => self.present.insert(key.clone()),
            Action::Delete => self.present.remove(&key),
        };
        match self.index.get(&key) {
            Some(&i) => self.ops[i].action = action,
            None => {
                self.index.insert(key.clone(), self.ops.len());
                let expect = self.known.get(&key).copied().unwrap_or(0);
                self.ops.push(Op { key, record, action, expect });
            }
        }
    }

    fn put(&mut self, record: Record) -> Result<(), StoreError> {
        let bytes = encode(&record)?;
        let kind = record.key();
        // A record under a key that does not read back (a job run with an
        // empty id) would be stored but never loaded.
        let key = self.layout.key(&kind);
        if self.layout.parse(&key).as_ref() != Some(&kind) {
            return Err(StoreError::Unencodable {
                key,
                reason: "its key does not name a record".into(),
            });
        }
        self.set(kind, Action::Put(bytes));
        Ok(())
    }

    /// Deletes every key under `prefix` this handle knows of or wrote in
    /// this commit.
    fn delete_under(&mut self, prefix: &str) {
        let doomed: Vec<RecordKey> = self
            .present
            .range(prefix.to_owned()..)
            .take_while(|k| k.starts_with(prefix))
            .filter_map(|k| self.layout.parse(k))
            .collect();
        for record in doomed {
            self.set(record, Action::Delete);
        }
    }
}

/// The operations of `writes`, coalesced per key, in first-write order.
pub(crate) fn plan(
    layout: &Layout,
    known: &Known,
    writes: &[Write],
) -> Result<Vec<Op>, StoreError> {
    let mut p = Planner {
        layout,
        known,
        ops: Vec::new(),
        index: BTreeMap::new(),
        present: known.keys().cloned().collect(),
    };
    for w in writes {
        match w {
            Write::FrameworkId(id) => p.put(Record::FrameworkId(id.clone()))?,
            Write::PutApp(app) | Write::RestoreApp(app) => {
                p.put(Record::App(app.clone()))?;
                p.put(Record::AppVersion(app.clone()))?;
            }
            Write::DeleteAppVersion(id, version) => {
                p.set(RecordKey::AppVersion(id.clone(), *version), Action::Delete);
            }
            Write::DeleteApp(id) => {
                p.set(RecordKey::App(id.clone()), Action::Delete);
                // Every version this handle knows of, or wrote in this commit.
                // Versions someone else added changed the app key too, so the
                // app key's compare catches them.
                p.delete_under(&layout.app_versions(id));
            }
            Write::PutDeployment(d) => p.put(Record::Deployment(d.clone()))?,
            Write::DeleteDeployment(id) => p.set(RecordKey::Deployment(id.clone()), Action::Delete),
            Write::PutInstance(i) => p.put(Record::Instance(i.clone()))?,
            Write::DeleteInstance(id) => p.set(RecordKey::Instance(id.clone()), Action::Delete),
            Write::PutJob(job) => p.put(Record::Job((**job).clone()))?,
            Write::PutJobState(name, st) => {
                p.put(Record::JobState(name.clone(), (**st).clone()))?
            }
            Write::PutRun(run) => p.put(Record::JobRun((**run).clone()))?,
            Write::DeleteRun(name, id) => {
                p.set(RecordKey::JobRun(name.clone(), id.clone()), Action::Delete);
            }
            Write::DeleteJob(name) => {
                p.set(RecordKey::Job(name.clone()), Action::Delete);
                p.set(RecordKey::JobState(name.clone()), Action::Delete);
                // Every run this handle knows of, or wrote in this commit.
                // The core writes a job's state with every run it creates,
                // so a run someone else added changed the state key too, and
                // that key's compare catches it.
                p.delete_under(&layout.job_runs(name));
            }
        }
    }
    Ok(p.ops)
}

/// `ops` in batches under `limits`, in order. An operation that alone
/// exceeds the byte limit is [`StoreError::TooLarge`] (and nothing is
/// written).
pub(crate) fn split(ops: Vec<Op>, limits: &Limits) -> Result<Vec<Vec<Op>>, StoreError> {
    let (max_ops, max_bytes) = (limits.ops_per_batch(), limits.bytes_per_batch());
    let mut batches: Vec<Vec<Op>> = Vec::new();
    let mut current: Vec<Op> = Vec::new();
    let mut bytes = 0;
    for op in ops {
        let cost = op.cost();
        if cost > max_bytes {
            return Err(StoreError::TooLarge { key: op.key, bytes: cost, limit: max_bytes });
        }
        if !current.is_empty() && (current.len() == max_ops || bytes + cost > max_bytes) {
            batches.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += cost;
        current.push(op);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    Ok(batches)
}

/// Records what a successful batch at `revision` did to the handle's view.
pub(crate) fn remember(known: &mut Known, batch: &[Op], revision: i64) {
    for op in batch {
        match op.action {
            Action::Put(_) => known.insert(op.key.clone(), revision),
            Action::Delete => known.remove(&op.key),
        };
    }
}

#[cfg(test)]
mod tests {
    use drover_time::Timestamp;

    use super::*;
    use crate::contract::{sample_app, sample_instance};

    #[test]
    fn later_writes_of_a_key_replace_earlier_ones_in_place() {
        let layout = Layout::default();
        let a = sample_app("/a", 1);
        let mut b = a.clone();
        b.instances = 3;
        let ops = plan(
            &layout,
            &Known::new(),
            &[Write::PutApp(a.clone()), Write::FrameworkId("x".into()), Write::PutApp(b.clone())],
        )
        .unwrap();
        let keys: Vec<&str> = ops.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(
            keys,
            [layout.app(&a.id), layout.app_version(&a.id, a.version), layout.framework_id()]
        );
        assert_eq!(ops[0].action, Action::Put(encode(&Record::App(b)).unwrap()));
    }

    #[test]
    fn deleting_an_app_deletes_every_version_known_or_just_written() {
        let layout = Layout::default();
        let a = sample_app("/a", 1);
        let mut known = Known::new();
        known.insert(layout.app(&a.id), 3);
        known.insert(layout.app_version(&a.id, Timestamp::from_millis(1)), 2);
        known.insert(layout.app_version(&a.id, Timestamp::from_millis(2)), 3);
        // Another app whose safe id starts the same way is untouched.
        let other = AppIdHelper::id("/a-b");
        known.insert(layout.app_version(&other, Timestamp::from_millis(1)), 2);
        let ops =
            plan(&layout, &known, &[Write::PutApp(a.clone()), Write::DeleteApp(a.id.clone())])
                .unwrap();
        assert!(ops.iter().all(|o| o.action == Action::Delete), "{ops:?}");
        assert_eq!(ops.len(), 4);
        assert_eq!(ops[0].expect, 3);
        assert_eq!(ops[1].expect, 0, "the version written in this commit was unknown");
    }

    #[test]
    fn deleting_a_job_deletes_its_state_and_every_run_known_or_just_written() {
        use sched_core::job::{JobName, Trigger};

        use crate::contract::sample_run;

        let layout = Layout::default();
        let etl = JobName::parse("etl").unwrap();
        let etl2 = JobName::parse("etl-2").unwrap();
        let mut known = Known::new();
        known.insert(layout.job(&etl), 4);
        known.insert(layout.job_state(&etl), 5);
        known.insert(layout.job_run(&etl, "r1"), 2);
        known.insert(layout.job_run(&etl, "r2"), 3);
        // Another job whose name starts the same way is untouched.
        known.insert(layout.job(&etl2), 2);
        known.insert(layout.job_state(&etl2), 2);
        known.insert(layout.job_run(&etl2, "r1"), 2);
        let r3 = sample_run(&etl, "r3", Trigger::Dependency);
        let ops =
            plan(&layout, &known, &[Write::PutRun(Box::new(r3)), Write::DeleteJob(etl.clone())])
                .unwrap();
        assert!(ops.iter().all(|o| o.action == Action::Delete), "{ops:?}");
        let keys: Vec<(&str, i64)> = ops.iter().map(|o| (o.key.as_str(), o.expect)).collect();
        assert_eq!(
            keys,
            [
                ("/drover/job-runs/etl/r3", 0),
                ("/drover/jobs/etl", 4),
                ("/drover/job-states/etl", 5),
                ("/drover/job-runs/etl/r1", 2),
                ("/drover/job-runs/etl/r2", 3),
            ]
        );
    }

    #[test]
    fn a_record_whose_key_would_not_read_back_is_refused() {
        use sched_core::job::{JobName, Trigger};

        let name = JobName::parse("etl").unwrap();
        let run = crate::contract::sample_run(&name, "", Trigger::Dependency);
        let e =
            plan(&Layout::default(), &Known::new(), &[Write::PutRun(Box::new(run))]).unwrap_err();
        assert!(matches!(e, StoreError::Unencodable { .. }), "{e:?}");
    }

    struct AppIdHelper;
    impl AppIdHelper {
        fn id(raw: &str) -> sched_core::ids::AppId {
            sched_core::ids::AppId::parse(raw).unwrap()
        }
    }

    #[test]
    fn batches_respect_both_limits_and_keep_order() {
        let layout = Layout::default();
        let app = sample_app("/a", 1);
        let writes: Vec<Write> = (0..1000)
            .map(|i| Write::PutInstance(sample_instance(&app, &format!("{i:08}"))))
            .collect();
        let ops = plan(&layout, &Known::new(), &writes).unwrap();
        let limits = Limits { max_ops: 128, max_request_bytes: 64 * 1024 };
        let batches = split(ops.clone(), &limits).unwrap();
        assert!(batches.iter().all(|b| b.len() <= 127));
        assert!(
            batches
                .iter()
                .all(|b| b.iter().map(Op::cost).sum::<usize>() <= limits.bytes_per_batch())
        );
        assert_eq!(batches.concat(), ops);
        let by_ops = split(ops, &Limits::default()).unwrap();
        assert_eq!(by_ops.iter().map(Vec::len).collect::<Vec<_>>()[..7], [127; 7]);
    }

    #[test]
    fn a_record_larger_than_a_request_is_refused() {
        let layout = Layout::default();
        let mut app = sample_app("/big", 1);
        app.env.insert("X".into(), "x".repeat(10_000));
        let ops = plan(&layout, &Known::new(), &[Write::PutApp(app)]).unwrap();
        let e = split(ops, &Limits { max_ops: 128, max_request_bytes: 8192 }).unwrap_err();
        assert!(matches!(e, StoreError::TooLarge { .. }), "{e:?}");
    }
}
