//! `EtcdStore` and `Election` against real etcd: the shared one of the test
//! run (`DROVER_TEST_ETCD`, each test under its own prefix), or a private
//! `TestEtcd` for tests that compact or stop etcd.

use std::time::Duration;

use etcd_api::{Client, ClientConfig};
use sched_core::scheduler::Write;
use sched_store::contract::{self, sample_app, sample_instance};
use sched_store::testing::{TestEtcd, etcd_client, unique_prefix};
use sched_store::{
    Election, EtcdStore, EtcdStoreConfig, Layout, Limits, LossReason, Store, StoreError,
};

fn store(client: &Client, prefix: &str) -> EtcdStore {
    EtcdStore::new(
        client.clone(),
        EtcdStoreConfig { prefix: prefix.to_owned(), ..EtcdStoreConfig::default() },
    )
}

/// Every key and value under `prefix`, straight from etcd.
async fn dump(client: &Client, prefix: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let listing = client.get_prefix(format!("{prefix}/").as_bytes(), 100).await.expect("list");
    listing.kvs.into_iter().map(|kv| (kv.key, kv.value)).collect()
}

#[tokio::test]
async fn etcd_store_passes_the_contract() {
    let client = etcd_client().await;
    let prefix = unique_prefix("contract");
    let (a, b) = (store(&client, &prefix), store(&client, &prefix));
    contract::run(&a, &b).await;
}

#[tokio::test]
async fn etcd_store_splits_under_configured_limits() {
    let client = etcd_client().await;
    let limits = Limits { max_ops: 20, max_request_bytes: 64 * 1024 };
    let s = EtcdStore::new(
        client,
        EtcdStoreConfig { prefix: unique_prefix("limits"), limits, page_size: 7 },
    );
    contract::large_commits(&s, &limits).await;
}

#[tokio::test]
async fn stores_under_different_prefixes_do_not_see_each_other() {
    let client = etcd_client().await;
    let (a, b) = (store(&client, &unique_prefix("iso-a")), store(&client, &unique_prefix("iso-b")));
    a.commit(&[Write::FrameworkId("a".into())]).await.unwrap();
    assert_eq!(b.load().await.unwrap().framework_id, None);
}

#[tokio::test]
async fn only_one_candidate_leads_and_a_revoked_lease_hands_over() {
    let client = etcd_client().await;
    let key = format!("{}/leader", unique_prefix("election"));
    let election = Election::new(client.clone(), key.clone());
    let mut first = election.campaign("first", Duration::from_secs(2)).await.unwrap();
    assert_eq!(election.leader().await.unwrap().unwrap().identity, "first");

    let e2 = election.clone();
    let second = tokio::spawn(async move { e2.campaign("second", Duration::from_secs(2)).await });
    tokio::time::sleep(Duration::from_secs(3)).await;
    if second.is_finished() {
        panic!("a second leader while the first keeps its lease: {:?}", second.await);
    }
    assert_eq!(first.loss(), None);

    // Revoking the leader's lease deletes the key: the standby takes over.
    client.lease_revoke(first.lease_id()).await.unwrap();
    let why =
        tokio::time::timeout(Duration::from_secs(5), first.lost()).await.expect("loss noticed");
    assert!(matches!(why, LossReason::KeyLost | LossReason::LeaseExpired), "{why:?}");
    let second = tokio::time::timeout(Duration::from_secs(5), second)
        .await
        .expect("handover")
        .unwrap()
        .unwrap();
    let info = election.leader().await.unwrap().unwrap();
    assert_eq!(info.identity, "second");
    assert_eq!(info.create_revision, second.fence().create_revision);
    assert!(second.fence().create_revision > first.fence().create_revision);
    second.resign().await.unwrap();
    assert_eq!(election.leader().await.unwrap(), None);
}

#[tokio::test]
async fn a_stalled_leader_is_deposed_within_its_ttl_and_fenced_off() {
    let client = etcd_client().await;
    let prefix = unique_prefix("fence");
    let layout = Layout::new(&prefix);
    let election = Election::new(client.clone(), layout.leader());
    let mut old = election.campaign("old", Duration::from_secs(2)).await.unwrap();
    let ttl = old.ttl();

    // The leader writes, fenced.
    let old_store = store(&client, &prefix);
    old_store.set_fence(Some(old.fence()));
    let app = sample_app("/fenced", 1);
    old_store.commit(&[Write::FrameworkId("fw".into()), Write::PutApp(app.clone())]).await.unwrap();

    // It stalls: no more keep-alives. A standby takes over within the TTL
    // (plus etcd's lease expiry granularity).
    let e2 = election.clone();
    let standby = tokio::spawn(async move { e2.campaign("new", Duration::from_secs(2)).await });
    old.stop_keepalive();
    let stalled_at = tokio::time::Instant::now();
    let new = tokio::time::timeout(ttl + Duration::from_secs(3), standby)
        .await
        .expect("handover within TTL + 3 s")
        .unwrap()
        .unwrap();
    assert!(stalled_at.elapsed() <= ttl + Duration::from_secs(3));
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(3), old.lost()).await.unwrap(),
        LossReason::KeyLost
    );

    // The deposed leader's writes fail and change nothing.
    let before = dump(&client, &prefix).await;
    let mut app2 = app.clone();
    app2.instances = 9;
    let e = old_store
        .commit(&[Write::PutApp(app2.clone()), Write::PutInstance(sample_instance(&app2, "1"))])
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Fenced { .. }), "{e:?}");
    assert!(!e.is_unavailable());
    // Even a reload does not help: the fence is the term, not the data.
    old_store.load().await.unwrap();
    assert!(matches!(
        old_store.commit(&[Write::FrameworkId("zombie".into())]).await,
        Err(StoreError::Fenced { .. })
    ));
    let after = dump(&client, &prefix).await;
    // Only the election key changed hands.
    let records = |d: &[(Vec<u8>, Vec<u8>)]| -> Vec<(Vec<u8>, Vec<u8>)> {
        d.iter().filter(|(k, _)| k != layout.leader().as_bytes()).cloned().collect()
    };
    assert_eq!(records(&before), records(&after));

    // The new leader writes under its own fence.
    let new_store = store(&client, &prefix);
    new_store.set_fence(Some(new.fence()));
    new_store.load().await.unwrap();
    new_store.commit(&[Write::PutApp(app2.clone())]).await.unwrap();
    assert_eq!(new_store.load().await.unwrap().apps, vec![app2]);
    new.resign().await.unwrap();
}

#[tokio::test]
async fn resigning_hands_over_at_once() {
    let client = etcd_client().await;
    let election = Election::new(client.clone(), format!("{}/leader", unique_prefix("resign")));
    let leader = election.campaign("a", Duration::from_secs(30)).await.unwrap();
    let e2 = election.clone();
    let standby = tokio::spawn(async move { e2.campaign("b", Duration::from_secs(30)).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut watch_loss = leader.subscribe();
    leader.resign().await.unwrap();
    assert_eq!(*watch_loss.borrow_and_update(), Some(LossReason::Resigned));
    // Far sooner than the 30 s TTL.
    let b = tokio::time::timeout(Duration::from_secs(3), standby)
        .await
        .expect("prompt handover")
        .unwrap()
        .unwrap();
    assert_eq!(election.leader().await.unwrap().unwrap().identity, "b");
    b.resign().await.unwrap();
}

#[tokio::test]
async fn compacted_history_and_an_etcd_outage_are_reported_and_survived() {
    let dir = tempfile::tempdir().unwrap();
    let mut etcd = TestEtcd::start(dir.path()).await.expect("start a private etcd");
    let mut config = ClientConfig::new([etcd.endpoint()]);
    config.request_timeout = Duration::from_secs(1);
    let client = Client::connect(config).await.unwrap();
    let s = store(&client, "/drover");
    s.commit(&[Write::FrameworkId("a".into())]).await.unwrap();
    let old = s.snapshot().await.unwrap().revision;
    s.commit(&[Write::FrameworkId("b".into())]).await.unwrap();
    let now = s.snapshot().await.unwrap().revision;
    client.compact(now).await.unwrap();
    // etcd 3.4 confirms the watch, then cancels it; 3.5 refuses it at once.
    let e = match s.watch(old).await {
        Err(e) => e,
        Ok(mut w) => w.next().await.unwrap_err(),
    };
    assert!(matches!(e, StoreError::Compacted { revision } if revision == old), "{e:?}");

    // etcd goes away: commits fail as unavailable, change nothing.
    let mut w = s.watch(now + 1).await.unwrap();
    etcd.stop();
    let e = s.commit(&[Write::FrameworkId("c".into())]).await.unwrap_err();
    assert!(e.is_unavailable(), "{e:?}");
    assert!(w.next().await.is_err(), "the watch ends with an error");
    // It comes back: the same client and store work again.
    etcd.restart().await.unwrap();
    let mut ok = false;
    for _ in 0..50 {
        if s.commit(&[Write::FrameworkId("d".into())]).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ok, "commits succeed again after etcd returns");
    assert_eq!(s.load().await.unwrap().framework_id.as_deref(), Some("d"));
}
