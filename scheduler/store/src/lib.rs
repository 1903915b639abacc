//! The scheduler's durable state.
//!
//! [`Store`] is the interface the daemon persists through. Three
//! implementations pass the one shared [`contract`] suite:
//!
//! - [`EtcdStore`]: production, over etcd (Drover's own client, `etcd-api`);
//!   with [`Election`] for leader election and [`Fence`]d writes.
//! - [`EmbeddedStore`]: a redb database file under a data dir, for
//!   `drover dev` and single-node use; state survives a restart.
//! - [`MemStore`]: process memory, with fault injection, for tests and the
//!   simulator.
//!
//! # The contract
//!
//! - **One key per record** ([`layout`]), encoded as versioned JSON
//!   ([`codec`]).
//! - **Optimistic concurrency.** Each store *handle* remembers the
//!   modification revision of every key it last loaded or wrote. A commit
//!   compares each key it writes against that: if another writer changed
//!   (or created, or deleted) the key since, the commit fails with
//!   [`StoreError::Conflict`] and writes nothing; the caller reloads
//!   ([`Store::load`] refreshes what the handle knows) and re-plans.
//! - **Atomic commits, split when large.** A commit is one transaction when
//!   it fits the request limits ([`Limits`]: etcd's 128 operations and
//!   1.5 MiB by default). A larger one is split into batches that are
//!   applied one by one, in order, each atomically; if batch *k* fails,
//!   batches before it stay applied and none after it is tried. Every store
//!   splits the same way, so tests on [`MemStore`] see what etcd does.
//! - **Fencing** ([`EtcdStore::set_fence`]): every batch also requires the
//!   leader key to still have the create revision the leader got when it
//!   was elected; a deposed leader's commit fails with
//!   [`StoreError::Fenced`] and changes nothing.
//! - **Watch** ([`Store::watch`]): every change from a revision on, one
//!   [`ChangeBatch`] per committed batch, in revision order.

use std::future::Future;

use sched_core::scheduler::StoredState;

pub mod codec;
pub mod contract;
pub mod election;
mod embedded;
mod etcd;
pub mod layout;
mod mem;
mod plan;
pub mod testing;
mod watch;

pub use codec::Record;
pub use election::{Election, LeaderInfo, Leadership, LossReason};
pub use embedded::{EmbeddedConfig, EmbeddedStore};
pub use etcd::{EtcdStore, EtcdStoreConfig};
pub use layout::{Layout, RecordKey};
pub use mem::MemStore;
pub use plan::Limits;
pub use watch::{Change, ChangeBatch, Watch};

/// A store revision: it grows with every committed batch. etcd's revision
/// for [`EtcdStore`]; a counter of the database for the others.
pub type Revision = i64;

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or refused the request.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// An etcd request failed (see [`StoreError::is_unavailable`]).
    #[error("etcd request failed")]
    Etcd(#[source] etcd_api::Error),
    /// The embedded database failed.
    #[error("embedded database failed")]
    Embedded(#[source] Box<redb::Error>),
    /// Another writer changed `key` since this handle last read or wrote
    /// it: reload and re-plan. Nothing of the failed batch was written.
    #[error("revision conflict on `{key}`")]
    Conflict {
        /// The contested key.
        key: String,
    },
    /// The leader key no longer has the fence's create revision: this
    /// process is not the leader any more. Nothing was written.
    #[error("write fenced off: `{key}` is no longer held since revision {create_revision}")]
    Fenced {
        /// The leader key.
        key: String,
        /// The create revision the fence required.
        create_revision: Revision,
    },
    /// One record does not fit one request.
    #[error("record `{key}` needs {bytes} bytes, more than one request carries ({limit})")]
    TooLarge {
        /// The record's key.
        key: String,
        /// Its estimated size in a request.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// A record cannot be encoded.
    #[error("record {key} cannot be encoded: {reason}")]
    Unencodable {
        /// The record.
        key: String,
        /// Why.
        reason: String,
    },
    /// A stored record has a format version this Drover does not know.
    #[error("record `{key}` has unknown format version {version}")]
    UnknownVersion {
        /// The record's key.
        key: String,
        /// Its version.
        version: u64,
    },
    /// A stored record cannot be decoded.
    #[error("record `{key}` cannot be decoded: {reason}")]
    Corrupt {
        /// The record's key.
        key: String,
        /// Why.
        reason: String,
    },
    /// A watch asked for changes older than the store keeps.
    #[error("changes from revision {revision} are no longer kept")]
    Compacted {
        /// The revision asked for.
        revision: Revision,
    },
    /// A watcher read too slowly and was dropped.
    #[error("watch fell behind and was dropped")]
    WatchLagged,
    /// A watch ended (the store or its connection closed it).
    #[error("watch closed")]
    WatchClosed,
}

impl StoreError {
    /// True when the store could not be reached: retry later (the API
    /// answers 503). False for conflicts, fencing and bad data.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) | StoreError::WatchClosed => true,
            StoreError::Etcd(e) => e.is_unavailable(),
            _ => false,
        }
    }
}

impl From<etcd_api::Error> for StoreError {
    fn from(e: etcd_api::Error) -> Self {
        match e {
            etcd_api::Error::Compacted { revision, .. } => StoreError::Compacted { revision },
            e => StoreError::Etcd(e),
        }
    }
}

/// What every commit of a fenced store also requires: `key` (the election
/// key) still exists with this create revision, i.e. the leadership that
/// got it is still the current one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The election key.
    pub key: String,
    /// Its create revision when this leader won.
    pub create_revision: Revision,
}

/// The state, and the revision it was read at.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The records.
    pub state: StoredState,
    /// The store's revision at the read: watch from `revision + 1` to see
    /// every later change.
    pub revision: Revision,
}

/// Durable state of the scheduler. One value is one *handle*: it remembers
/// the revisions it last saw, which its commits compare against.
pub trait Store: Send + Sync + 'static {
    /// Everything a scheduler resumes from, with the revision it was read
    /// at. Refreshes what this handle knows (after a conflict, call this).
    fn snapshot(&self) -> impl Future<Output = Result<Loaded, StoreError>> + Send;

    /// Everything a scheduler resumes from ([`Store::snapshot`] without the
    /// revision).
    fn load(&self) -> impl Future<Output = Result<StoredState, StoreError>> + Send {
        async { self.snapshot().await.map(|l| l.state) }
    }

    /// Applies `writes` in order: atomically when they fit one request,
    /// else batch by batch (see the crate docs). Fails with
    /// [`StoreError::Conflict`] when a written key changed since this
    /// handle last saw it.
    fn commit(
        &self,
        writes: &[sched_core::scheduler::Write],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every change from revision `from` on (inclusive; `0`: from the next
    /// change), as it is committed. History a store no longer keeps is
    /// [`StoreError::Compacted`].
    fn watch(&self, from: Revision) -> impl Future<Output = Result<Watch, StoreError>> + Send;
}
