//! [`EtcdStore`]: the production store, over etcd.
//!
//! Each batch of a commit is one etcd transaction:
//!
//! ```text
//! if   mod_revision(k) == seen(k)  for every key k of the batch   (0: absent)
//!  and create_revision(leader) == fence                          (when fenced)
//! then put/delete each key
//! else read each key's revisions, and the leader key's
//! ```
//!
//! On failure the reads tell which compare failed: the fence first
//! ([`StoreError::Fenced`]), then the first key whose revision moved
//! ([`StoreError::Conflict`]).

use std::sync::Mutex;

use etcd_api::etcdserverpb::response_op::Response;
use etcd_api::etcdserverpb::{ResponseOp, TxnRequest};
use etcd_api::{Client, txn};
use sched_core::scheduler::Write;
use tokio::sync::mpsc;

use crate::plan::{self, Action, Known, Limits, Op};
use crate::watch::{AbortOnDrop, RawBatch, Watch, assemble};
use crate::{Fence, Layout, Loaded, Revision, Store, StoreError};

/// How an [`EtcdStore`] uses etcd.
#[derive(Debug, Clone)]
pub struct EtcdStoreConfig {
    /// Key prefix (default `/drover`); several Drovers can share one etcd
    /// under different prefixes.
    pub prefix: String,
    /// Commit split limits: keep them at or under the etcd server's
    /// `--max-txn-ops` and `--max-request-bytes`.
    pub limits: Limits,
    /// Keys per page when loading.
    pub page_size: u32,
}

impl Default for EtcdStoreConfig {
    fn default() -> Self {
        EtcdStoreConfig {
            prefix: crate::layout::DEFAULT_PREFIX.to_owned(),
            limits: Limits::default(),
            page_size: 1000,
        }
    }
}

/// The store in etcd.
#[derive(Debug)]
pub struct EtcdStore {
    client: Client,
    layout: Layout,
    config: EtcdStoreConfig,
    known: tokio::sync::Mutex<Known>,
    fence: Mutex<Option<Fence>>,
}

/// Watch answers buffered between etcd and the reader.
const WATCH_BUFFER: usize = 256;

impl EtcdStore {
    /// A store handle over `client`. It knows nothing until it loads.
    pub fn new(client: Client, config: EtcdStoreConfig) -> EtcdStore {
        EtcdStore {
            client,
            layout: Layout::new(&config.prefix),
            config,
            known: tokio::sync::Mutex::new(Known::new()),
            fence: Mutex::new(None),
        }
    }

    /// Fences every later commit on `fence` (from
    /// [`Leadership::fence`](crate::Leadership::fence)), or stops fencing.
    pub fn set_fence(&self, fence: Option<Fence>) {
        *self.fence.lock().unwrap_or_else(|e| e.into_inner()) = fence;
    }

    /// The fence in force.
    pub fn fence(&self) -> Option<Fence> {
        self.fence.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The key layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The etcd client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Another handle on the same etcd and prefix, as a second process
    /// would have: it knows nothing until it loads, and is not fenced.
    pub fn handle(&self) -> EtcdStore {
        EtcdStore::new(self.client.clone(), self.config.clone())
    }

    async fn apply(&self, batch: &[Op], fence: Option<&Fence>) -> Result<Revision, StoreError> {
        let mut compare = Vec::with_capacity(batch.len() + 1);
        let mut success = Vec::with_capacity(batch.len());
        let mut failure = Vec::with_capacity(batch.len() + 1);
        for op in batch {
            let key = op.key.as_bytes();
            compare.push(txn::mod_revision_is(key, op.expect));
            success.push(match &op.action {
                Action::Put(value) => txn::put(key, value, 0),
                Action::Delete => txn::delete(key),
            });
            failure.push(txn::get_revisions(key));
        }
        if let Some(f) = fence {
            compare.push(txn::create_revision_is(f.key.as_bytes(), f.create_revision));
            failure.push(txn::get_revisions(f.key.as_bytes()));
        }
        let r = self.client.txn(TxnRequest { compare, success, failure }).await?;
        let revision = r.header.map_or(0, |h| h.revision);
        if r.succeeded {
            return Ok(revision);
        }
        let read = |op: &ResponseOp| -> (Revision, Revision) {
            match &op.response {
                Some(Response::ResponseRange(range)) => {
                    range.kvs.first().map_or((0, 0), |kv| (kv.create_revision, kv.mod_revision))
                }
                _ => (0, 0),
            }
        };
        if let Some(f) = fence {
            let held = r.responses.last().map(read).unwrap_or_default().0;
            if held != f.create_revision {
                return Err(StoreError::Fenced {
                    key: f.key.clone(),
                    create_revision: f.create_revision,
                });
            }
        }
        for (op, response) in batch.iter().zip(&r.responses) {
            if read(response).1 != op.expect {
                return Err(StoreError::Conflict { key: op.key.clone() });
            }
        }
        // etcd said a compare failed, yet none did by its own reads.
        Err(StoreError::Etcd(etcd_api::Error::Malformed {
            op: "Txn",
            what: "compare failed but every read matches",
        }))
    }
}

impl Store for EtcdStore {
    async fn snapshot(&self) -> Result<Loaded, StoreError> {
        let mut known = self.known.lock().await;
        let listing =
            self.client.get_prefix(self.layout.root().as_bytes(), self.config.page_size).await?;
        let mut rows = Vec::with_capacity(listing.kvs.len());
        for kv in &listing.kvs {
            // Keys that are not UTF-8 are not Drover's records.
            if let Ok(key) = std::str::from_utf8(&kv.key) {
                rows.push((key, kv.mod_revision, kv.value.as_slice()));
            }
        }
        let (state, now_known) = assemble(&self.layout, rows)?;
        *known = now_known;
        Ok(Loaded { state, revision: listing.revision })
    }

    async fn commit(&self, writes: &[Write]) -> Result<(), StoreError> {
        let mut known = self.known.lock().await;
        let batches = plan::split(plan::plan(&self.layout, &known, writes)?, &self.config.limits)?;
        let fence = self.fence();
        for batch in batches {
            let revision = self.apply(&batch, fence.as_ref()).await?;
            plan::remember(&mut known, &batch, revision);
        }
        Ok(())
    }

    async fn watch(&self, from: Revision) -> Result<Watch, StoreError> {
        let request = etcd_api::watch_prefix(self.layout.root().as_bytes(), from.max(0));
        let mut stream = self.client.watch(request).await?;
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        let task = tokio::spawn(async move {
            loop {
                let batch = match stream.next().await {
                    Ok(b) => b,
                    Err(e) => {
                        let _ = tx.send(Err(e.into())).await;
                        return;
                    }
                };
                // One change batch per revision (one per etcd transaction).
                let mut current: Option<RawBatch> = None;
                for event in batch.events {
                    let Some(kv) = event.kv else { continue };
                    let Ok(key) = String::from_utf8(kv.key) else { continue };
                    let value =
                        (event.r#type == etcd_api::EventType::Put as i32).then_some(kv.value);
                    match &mut current {
                        Some(b) if b.revision == kv.mod_revision => b.changes.push((key, value)),
                        _ => {
                            if let Some(done) = current.take()
                                && tx.send(Ok(done.into())).await.is_err()
                            {
                                return;
                            }
                            current = Some(RawBatch {
                                revision: kv.mod_revision,
                                changes: vec![(key, value)],
                            });
                        }
                    }
                }
                if let Some(done) = current
                    && tx.send(Ok(done.into())).await.is_err()
                {
                    return;
                }
            }
        });
        let lagged = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        Ok(Watch::new(rx, self.layout.clone(), lagged, Some(AbortOnDrop(task))))
    }
}
