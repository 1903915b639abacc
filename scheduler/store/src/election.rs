//! Leader election over etcd, and the fence that makes a deposed leader's
//! writes fail.
//!
//! A candidate grants itself a lease of `ttl`, keeps it alive, and creates
//! the election key (holding its identity, attached to the lease) with a
//! create-if-absent transaction. The one that created it leads; the key's
//! *create revision* identifies that term and is the [`Fence`] every write
//! of the leader compares ([`EtcdStore::set_fence`](crate::EtcdStore::set_fence)).
//! Others watch the key and try again when it disappears (resigned, lease
//! revoked, or lease expired: etcd deletes a lease's keys).
//!
//! A [`Leadership`] reports its loss ([`Leadership::lost`]) when:
//! - the key is deleted or recreated by someone else ([`LossReason::KeyLost`]);
//! - etcd says the lease is gone ([`LossReason::LeaseExpired`]);
//! - no keep-alive succeeded for a whole TTL, counted from when the last
//!   successful one was sent ([`LossReason::KeepAliveFailed`]): by then etcd
//!   may have expired the lease, so the leader must assume it did;
//! - it resigned ([`LossReason::Resigned`]).
//!
//! Loss is only a signal: the holder stops its leader-only work. Safety does
//! not depend on noticing it in time — a paused leader that wakes up after
//! its lease expired is fenced off by etcd itself.
//!
//! ```no_run
//! # async fn demo(client: etcd_api::Client, store: sched_store::EtcdStore) -> Result<(), sched_store::StoreError> {
//! use std::time::Duration;
//! use sched_store::Election;
//! let election = Election::new(client, "/drover/leader");
//! let mut leadership = election.campaign("10.0.0.1:8080", Duration::from_secs(10)).await?;
//! store.set_fence(Some(leadership.fence()));
//! // ... lead until:
//! let why = leadership.lost().await;
//! # let _ = why; Ok(()) }
//! ```

use std::time::Duration;

use etcd_api::etcdserverpb::response_op::Response;
use etcd_api::{Client, EventType, txn, watch_key};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::watch::AbortOnDrop;
use crate::{Fence, Revision, StoreError};

/// Who leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderInfo {
    /// The identity the leader campaigned with (e.g. its API address).
    pub identity: String,
    /// The election key's create revision: the leader's term and fence.
    pub create_revision: Revision,
    /// The leader's lease.
    pub lease: i64,
}

/// Why a leadership ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LossReason {
    /// [`Leadership::resign`] was called.
    Resigned,
    /// etcd reported the lease expired or revoked.
    LeaseExpired,
    /// The election key was deleted or now belongs to another term.
    KeyLost,
    /// Keep-alives failed for a whole TTL (etcd unreachable or this process
    /// stalled): the lease must be assumed expired.
    KeepAliveFailed(String),
}

/// An election on one key.
#[derive(Debug, Clone)]
pub struct Election {
    client: Client,
    key: String,
}

/// Pause between retries after an etcd error while campaigning or watching.
const RETRY: Duration = Duration::from_millis(500);

impl Election {
    /// The election on `key` (Drover uses [`Layout::leader`](crate::Layout::leader)).
    pub fn new(client: Client, key: impl Into<String>) -> Election {
        Election { client, key: key.into() }
    }

    /// The election key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Who leads now, if anyone.
    pub async fn leader(&self) -> Result<Option<LeaderInfo>, StoreError> {
        let got = self.client.get(self.key.as_bytes()).await?;
        Ok(got.kv.map(|kv| LeaderInfo {
            identity: String::from_utf8_lossy(&kv.value).into_owned(),
            create_revision: kv.create_revision,
            lease: kv.lease,
        }))
    }

    /// Campaigns until elected: returns only as leader, or with an error
    /// from etcd. `ttl` is rounded up to whole seconds (etcd may grant
    /// more; at least 2 s with default settings). Cancel by dropping the
    /// future: the lease it holds is then left to expire.
    pub async fn campaign(&self, identity: &str, ttl: Duration) -> Result<Leadership, StoreError> {
        let ttl_secs = i64::try_from(ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0))
            .unwrap_or(i64::MAX)
            .max(1);
        loop {
            let lease = self.client.lease_grant(ttl_secs).await?;
            let granted = Duration::from_secs(lease.ttl.unsigned_abs());
            let (lost_tx, lost_rx) = watch::channel(None);
            let keepalive = AbortOnDrop(tokio::spawn(keep_alive(
                self.client.clone(),
                lease.id,
                granted,
                lost_tx.clone(),
            )));
            match self.try_until_elected(identity, lease.id, lost_rx.clone()).await {
                Ok(Some(create_revision)) => {
                    let monitor = AbortOnDrop(tokio::spawn(monitor(
                        self.client.clone(),
                        self.key.clone(),
                        create_revision,
                        lost_tx.clone(),
                    )));
                    return Ok(Leadership {
                        client: self.client.clone(),
                        fence: Fence { key: self.key.clone(), create_revision },
                        identity: identity.to_owned(),
                        lease: lease.id,
                        ttl: granted,
                        lost_tx,
                        lost: lost_rx,
                        keepalive: Some(keepalive),
                        monitor: Some(monitor),
                    });
                }
                // Our lease ended while we waited: start over with a new one.
                Ok(None) => {}
                Err(e) => {
                    drop(keepalive);
                    let _ = self.client.lease_revoke(lease.id).await;
                    return Err(e);
                }
            }
        }
    }

    /// Tries to create the key; while someone else holds it, waits for it
    /// to go. `Ok(None)` when our own lease was lost meanwhile.
    async fn try_until_elected(
        &self,
        identity: &str,
        lease: i64,
        mut lost: watch::Receiver<Option<LossReason>>,
    ) -> Result<Option<Revision>, StoreError> {
        let key = self.key.as_bytes();
        loop {
            if lost.borrow().is_some() {
                return Ok(None);
            }
            let r = self
                .client
                .txn(txn::when(
                    vec![txn::absent(key)],
                    vec![txn::put(key, identity.as_bytes(), lease)],
                    vec![txn::get(key)],
                ))
                .await?;
            let revision = r.header.map_or(0, |h| h.revision);
            if r.succeeded {
                tracing::info!(key = %self.key, identity, revision, "Elected leader.");
                return Ok(Some(revision));
            }
            let holder = match r.responses.first().and_then(|op| op.response.as_ref()) {
                Some(Response::ResponseRange(range)) => range.kvs.first().cloned(),
                _ => None,
            };
            let Some(holder) = holder else { continue };
            tracing::info!(
                key = %self.key,
                leader = %String::from_utf8_lossy(&holder.value),
                "Standing by: another candidate leads."
            );
            // Wait for the key to go (watching from the read, so a deletion
            // between the read and the watch is not missed).
            let mut w = self.client.watch(watch_key(key, revision + 1)).await?;
            loop {
                tokio::select! {
                    batch = w.next() => match batch {
                        Ok(b) if b.events.iter().any(|e| e.r#type == EventType::Delete as i32) => break,
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "Election watch failed; retrying.");
                            tokio::time::sleep(RETRY).await;
                            break;
                        }
                    },
                    _ = lost.changed() => return Ok(None),
                }
            }
        }
    }
}

/// Refreshes the lease every third of its TTL; reports the first loss.
async fn keep_alive(
    client: Client,
    lease: i64,
    ttl: Duration,
    lost: watch::Sender<Option<LossReason>>,
) {
    let period = (ttl / 3).max(Duration::from_millis(200));
    let mut last_ok = Instant::now();
    let mut stream = None;
    loop {
        if last_ok.elapsed() >= ttl {
            report(
                &lost,
                LossReason::KeepAliveFailed(format!("no keep-alive succeeded for {ttl:?}")),
            );
            return;
        }
        let sent = Instant::now();
        let result = match &mut stream {
            Some(s) => etcd_api::KeepAlive::keep_alive(s).await,
            None => client.lease_keep_alive(lease).await.map(|s| {
                let ttl = s.ttl();
                stream = Some(s);
                ttl
            }),
        };
        match result {
            Ok(_) => {
                last_ok = sent;
                tokio::time::sleep_until(sent + period).await;
            }
            Err(etcd_api::Error::LeaseExpired { .. }) => {
                report(&lost, LossReason::LeaseExpired);
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, lease, "Lease keep-alive failed; retrying.");
                stream = None;
                let retry = (last_ok + ttl).min(Instant::now() + RETRY);
                tokio::time::sleep_until(retry).await;
            }
        }
    }
}

/// Watches the election key for the end of the term that created it at
/// `create_revision`.
async fn monitor(
    client: Client,
    key: String,
    create_revision: Revision,
    lost: watch::Sender<Option<LossReason>>,
) {
    let mut from = create_revision + 1;
    loop {
        let mut w = match client.watch(watch_key(key.as_bytes(), from)).await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "Leader key watch failed; retrying.");
                // If history was compacted, check the key directly.
                if let Ok(got) = client.get(key.as_bytes()).await {
                    if got.kv.map(|kv| kv.create_revision) != Some(create_revision) {
                        report(&lost, LossReason::KeyLost);
                        return;
                    }
                    from = got.revision + 1;
                }
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        loop {
            match w.next().await {
                Ok(b) => {
                    for e in &b.events {
                        let Some(kv) = &e.kv else { continue };
                        if e.r#type == EventType::Delete as i32
                            || kv.create_revision != create_revision
                        {
                            report(&lost, LossReason::KeyLost);
                            return;
                        }
                        from = kv.mod_revision + 1;
                    }
                    from = from.max(b.revision + 1);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Leader key watch ended; reopening.");
                    tokio::time::sleep(RETRY).await;
                    break;
                }
            }
        }
    }
}

fn report(lost: &watch::Sender<Option<LossReason>>, why: LossReason) {
    lost.send_if_modified(|current| {
        if current.is_some() {
            return false;
        }
        tracing::warn!(reason = ?why, "Leadership lost.");
        *current = Some(why);
        true
    });
}

/// Being the leader, until [`Leadership::lost`] resolves. Dropping it stops
/// the keep-alive (the lease then expires after its TTL); prefer
/// [`Leadership::resign`] for a prompt handover.
#[derive(Debug)]
pub struct Leadership {
    client: Client,
    fence: Fence,
    identity: String,
    lease: i64,
    ttl: Duration,
    lost_tx: watch::Sender<Option<LossReason>>,
    lost: watch::Receiver<Option<LossReason>>,
    keepalive: Option<AbortOnDrop>,
    monitor: Option<AbortOnDrop>,
}

impl Leadership {
    /// The fence for the store's writes.
    pub fn fence(&self) -> Fence {
        self.fence.clone()
    }

    /// The identity this leader campaigned with.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The lease holding the election key.
    pub fn lease_id(&self) -> i64 {
        self.lease
    }

    /// The TTL etcd granted.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Why leadership ended, if it has.
    pub fn loss(&self) -> Option<LossReason> {
        self.lost.borrow().clone()
    }

    /// A receiver that turns `Some(reason)` when leadership ends (to select
    /// on in a main loop).
    pub fn subscribe(&self) -> watch::Receiver<Option<LossReason>> {
        self.lost.clone()
    }

    /// Resolves when leadership ends, with the reason.
    pub async fn lost(&mut self) -> LossReason {
        loop {
            if let Some(why) = self.lost.borrow_and_update().clone() {
                return why;
            }
            if self.lost.changed().await.is_err() {
                // Cannot happen while `self` holds the sender.
                return LossReason::KeyLost;
            }
        }
    }

    /// Stops refreshing the lease, as a stalled process would: it expires
    /// after its TTL. For fault-injection tests.
    pub fn stop_keepalive(&mut self) {
        self.keepalive = None;
    }

    /// Gives leadership up now: deletes the key if it is still this term's,
    /// and revokes the lease.
    pub async fn resign(mut self) -> Result<(), StoreError> {
        self.keepalive = None;
        self.monitor = None;
        report(&self.lost_tx, LossReason::Resigned);
        let key = self.fence.key.as_bytes();
        self.client
            .txn(txn::when(
                vec![txn::create_revision_is(key, self.fence.create_revision)],
                vec![txn::delete(key)],
                vec![],
            ))
            .await?;
        match self.client.lease_revoke(self.lease).await {
            Ok(()) | Err(etcd_api::Error::LeaseExpired { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
