//! [`EmbeddedStore`]: the store in a redb database file, for `drover dev`
//! and single-node use. Every committed batch is one durable redb write
//! transaction, so state survives a crash or restart of the process.
//!
//! Layout in the file: table `records` maps each key (the same keys as in
//! etcd, see [`crate::layout`]) to its modification revision (8 bytes,
//! little-endian) followed by the record's bytes; table `meta` holds the
//! store's `revision`. redb locks the file: one process at a time.
//! Watch history starts when the file is opened.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use redb::{Database, ReadableTable, TableDefinition};
use sched_core::scheduler::Write;

use crate::mem::{Entry, Table, check_and_apply};
use crate::plan::{self, Known, Limits, Op};
use crate::watch::{Hub, Watch, assemble};
use crate::{Layout, Loaded, Revision, Store, StoreError};

const RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("records");
const META: TableDefinition<&str, i64> = TableDefinition::new("meta");
const REVISION: &str = "revision";

fn db_error(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Embedded(Box::new(e.into()))
}

/// How to open an embedded store.
#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    /// The database file (created if missing, with its directory).
    pub path: PathBuf,
    /// Key prefix (default `/drover`).
    pub prefix: String,
    /// Commit split limits (etcd's defaults, for identical behaviour).
    pub limits: Limits,
}

impl EmbeddedConfig {
    /// The database `drover.redb` under `data_dir`, with defaults.
    pub fn in_dir(data_dir: &Path) -> Self {
        EmbeddedConfig {
            path: data_dir.join("drover.redb"),
            prefix: crate::layout::DEFAULT_PREFIX.to_owned(),
            limits: Limits::default(),
        }
    }
}

#[derive(Debug)]
struct Shared {
    db: Database,
    /// Held while writing: batches are published in commit order.
    hub: Mutex<Hub>,
}

/// The store in a local redb file.
#[derive(Debug)]
pub struct EmbeddedStore {
    shared: Arc<Shared>,
    layout: Layout,
    limits: Limits,
    known: tokio::sync::Mutex<Known>,
}

struct WriteTable<'a>(redb::Table<'a, &'static str, &'static [u8]>);

impl Table for WriteTable<'_> {
    fn modified(&self, key: &str) -> Result<Option<Revision>, StoreError> {
        let Some(v) = self.0.get(key).map_err(db_error)? else { return Ok(None) };
        Ok(Some(split_value(key, v.value())?.0))
    }
    fn put(&mut self, key: &str, entry: Entry) -> Result<(), StoreError> {
        let mut bytes = Vec::with_capacity(8 + entry.value.len());
        bytes.extend_from_slice(&entry.modified.to_le_bytes());
        bytes.extend_from_slice(&entry.value);
        self.0.insert(key, bytes.as_slice()).map_err(db_error)?;
        Ok(())
    }
    fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        self.0.remove(key).map_err(db_error)?;
        Ok(())
    }
}

fn split_value<'v>(key: &str, v: &'v [u8]) -> Result<(Revision, &'v [u8]), StoreError> {
    let Some((rev, value)) = v.split_first_chunk::<8>() else {
        return Err(StoreError::Corrupt { key: key.to_owned(), reason: "entry too short".into() });
    };
    Ok((i64::from_le_bytes(*rev), value))
}

impl EmbeddedStore {
    /// Opens (or creates) the database. Blocking: call it before serving,
    /// or from `spawn_blocking`.
    pub fn open(config: EmbeddedConfig) -> Result<EmbeddedStore, StoreError> {
        if let Some(dir) = config.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| db_error(redb::StorageError::Io(e)))?;
        }
        let db = Database::create(&config.path).map_err(db_error)?;
        // Create the tables, and read the revision.
        let tx = db.begin_write().map_err(db_error)?;
        let revision = {
            tx.open_table(RECORDS).map_err(db_error)?;
            let meta = tx.open_table(META).map_err(db_error)?;
            meta.get(REVISION).map_err(db_error)?.map_or(0, |v| v.value())
        };
        tx.commit().map_err(db_error)?;
        Ok(EmbeddedStore {
            shared: Arc::new(Shared { db, hub: Mutex::new(Hub::new(revision)) }),
            layout: Layout::new(&config.prefix),
            limits: config.limits,
            known: tokio::sync::Mutex::new(Known::new()),
        })
    }

    /// Another handle on the same database (it knows nothing until it
    /// loads).
    pub fn handle(&self) -> EmbeddedStore {
        EmbeddedStore {
            shared: self.shared.clone(),
            layout: self.layout.clone(),
            limits: self.limits,
            known: tokio::sync::Mutex::new(Known::new()),
        }
    }

    fn read(&self) -> Result<(Loaded, Known), StoreError> {
        let tx = self.shared.db.begin_read().map_err(db_error)?;
        let revision = tx.open_table(META).map_err(db_error)?.get(REVISION).map_err(db_error)?;
        let revision = revision.map_or(0, |v| v.value());
        let records = tx.open_table(RECORDS).map_err(db_error)?;
        let root = self.layout.root();
        let mut rows: Vec<(String, Revision, Vec<u8>)> = Vec::new();
        for row in records.range(root.as_str()..).map_err(db_error)? {
            let (k, v) = row.map_err(db_error)?;
            let key = k.value();
            if !key.starts_with(&root) {
                break;
            }
            let (rev, value) = split_value(key, v.value())?;
            rows.push((key.to_owned(), rev, value.to_vec()));
        }
        let (state, known) =
            assemble(&self.layout, rows.iter().map(|(k, r, v)| (k.as_str(), *r, v.as_slice())))?;
        Ok((Loaded { state, revision }, known))
    }

    fn apply(shared: &Shared, batch: &[Op]) -> Result<Revision, StoreError> {
        let mut hub = shared.hub.lock().unwrap_or_else(|e| e.into_inner());
        let tx = shared.db.begin_write().map_err(db_error)?;
        let (revision, raw) = {
            let mut meta = tx.open_table(META).map_err(db_error)?;
            let revision = meta.get(REVISION).map_err(db_error)?.map_or(0, |v| v.value()) + 1;
            let mut records = WriteTable(tx.open_table(RECORDS).map_err(db_error)?);
            // On a conflict the transaction is dropped: nothing is written.
            let raw = check_and_apply(&mut records, batch, revision)?;
            meta.insert(REVISION, revision).map_err(db_error)?;
            (revision, raw)
        };
        tx.commit().map_err(db_error)?;
        hub.publish(raw);
        Ok(revision)
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Unavailable(format!("embedded store task failed: {e}")))?
}

impl Store for EmbeddedStore {
    async fn snapshot(&self) -> Result<Loaded, StoreError> {
        let mut known = self.known.lock().await;
        let me = self.handle();
        let (loaded, now_known) = blocking(move || me.read()).await?;
        *known = now_known;
        Ok(loaded)
    }

    async fn commit(&self, writes: &[Write]) -> Result<(), StoreError> {
        let mut known = self.known.lock().await;
        let batches = plan::split(plan::plan(&self.layout, &known, writes)?, &self.limits)?;
        for batch in batches {
            let shared = self.shared.clone();
            let (revision, batch) = blocking(move || {
                let revision = EmbeddedStore::apply(&shared, &batch)?;
                Ok((revision, batch))
            })
            .await?;
            plan::remember(&mut known, &batch, revision);
        }
        Ok(())
    }

    async fn watch(&self, from: Revision) -> Result<Watch, StoreError> {
        let shared = self.shared.clone();
        let layout = self.layout.clone();
        blocking(move || {
            let mut hub = shared.hub.lock().unwrap_or_else(|e| e.into_inner());
            let tx = shared.db.begin_read().map_err(db_error)?;
            let meta = tx.open_table(META).map_err(db_error)?;
            let current = meta.get(REVISION).map_err(db_error)?.map_or(0, |v| v.value());
            hub.subscribe(from, current, &layout)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract;

    fn config(dir: &Path) -> EmbeddedConfig {
        EmbeddedConfig::in_dir(dir)
    }

    #[tokio::test]
    async fn embedded_store_passes_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let a = EmbeddedStore::open(config(dir.path())).unwrap();
        contract::run(&a, &a.handle()).await;
    }

    #[tokio::test]
    async fn state_survives_reopening_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let app = contract::sample_app("/kept", 2);
        let inst = contract::sample_instance(&app, "11111111-1111-4111-8111-111111111111");
        let revision = {
            let s = EmbeddedStore::open(config(dir.path())).unwrap();
            s.commit(&[
                Write::FrameworkId("fw".into()),
                Write::PutApp(app.clone()),
                Write::PutInstance(inst.clone()),
            ])
            .await
            .unwrap();
            s.snapshot().await.unwrap().revision
        };
        let s = EmbeddedStore::open(config(dir.path())).unwrap();
        let loaded = s.snapshot().await.unwrap();
        assert_eq!(loaded.revision, revision);
        assert_eq!(loaded.state.framework_id.as_deref(), Some("fw"));
        assert_eq!(loaded.state.apps, vec![app]);
        assert_eq!(loaded.state.instances, vec![inst.clone()]);
        // History before the reopen is gone; later changes are watched.
        assert!(matches!(s.watch(1).await, Err(StoreError::Compacted { revision: 1 })));
        let mut w = s.watch(0).await.unwrap();
        s.commit(&[Write::DeleteInstance(inst.id.clone())]).await.unwrap();
        let b = w.next().await.unwrap();
        assert_eq!(b.revision, revision + 1);
    }

    #[tokio::test]
    async fn a_second_process_cannot_open_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let _a = EmbeddedStore::open(config(dir.path())).unwrap();
        let e = EmbeddedStore::open(config(dir.path())).unwrap_err();
        assert!(matches!(e, StoreError::Embedded(_)), "{e:?}");
    }
}
