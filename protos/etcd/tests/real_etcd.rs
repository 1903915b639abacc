//! The client against the real etcd that `integration/test.sh` starts
//! (`DROVER_TEST_ETCD`). Each test works under its own key prefix, so tests
//! run in parallel against one etcd.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use etcd_api::etcdserverpb::response_op::Response;
use etcd_api::{Client, ClientConfig, Error, EventType, txn, watch_prefix};

fn endpoint() -> String {
    std::env::var("DROVER_TEST_ETCD").unwrap_or_else(|_| {
        panic!(
            "DROVER_TEST_ETCD is not set: these tests need a real etcd. Run integration/test.sh, \
             or start etcd and set DROVER_TEST_ETCD=http://127.0.0.1:<port>"
        )
    })
}

fn prefix(name: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("/etcd-api-test/{}-{}-{name}/", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

async fn client() -> Client {
    Client::connect(ClientConfig::new([endpoint()])).await.expect("connect to DROVER_TEST_ETCD")
}

#[tokio::test]
async fn put_get_delete_round_trip() {
    let c = client().await;
    let p = prefix("kv");
    let key = format!("{p}a");
    assert_eq!(c.get(key.clone()).await.unwrap().kv, None);
    let rev = c.put(key.clone(), "1", 0).await.unwrap();
    let got = c.get(key.clone()).await.unwrap();
    let kv = got.kv.expect("present");
    assert_eq!(kv.value, b"1");
    assert_eq!((kv.mod_revision, kv.create_revision), (rev, rev));
    assert!(got.revision >= rev);
    assert_eq!(c.delete(key.clone()).await.unwrap(), 1);
    assert_eq!(c.delete(key).await.unwrap(), 0);
}

#[tokio::test]
async fn listing_a_prefix_pages_at_one_revision() {
    let c = client().await;
    let p = prefix("pages");
    for i in 0..25 {
        c.put(format!("{p}{i:03}"), i.to_string(), 0).await.unwrap();
    }
    // A key just outside the prefix is not listed.
    let outside = format!("{}X", p.trim_end_matches('/'));
    c.put(outside.clone(), "x", 0).await.unwrap();
    let listing = c.get_prefix(p.as_bytes(), 7).await.unwrap();
    let keys: Vec<String> =
        listing.kvs.iter().map(|kv| String::from_utf8(kv.key.clone()).unwrap()).collect();
    let want: Vec<String> = (0..25).map(|i| format!("{p}{i:03}")).collect();
    assert_eq!(keys, want);
    assert!(listing.revision > 0);
    assert_eq!(c.delete_prefix(p.as_bytes()).await.unwrap(), 25);
    c.delete(outside).await.unwrap();
    assert!(c.get_prefix(p.as_bytes(), 7).await.unwrap().kvs.is_empty());
}

#[tokio::test]
async fn transactions_compare_revisions() {
    let c = client().await;
    let p = prefix("txn");
    let k = format!("{p}k");
    let create = txn::when(
        vec![txn::absent(k.as_bytes())],
        vec![txn::put(k.as_bytes(), b"v1", 0)],
        vec![txn::get(k.as_bytes())],
    );
    let r = c.txn(create.clone()).await.unwrap();
    assert!(r.succeeded);
    let rev = r.header.unwrap().revision;
    // A second create-if-absent fails and reads the key instead.
    let r = c.txn(create).await.unwrap();
    assert!(!r.succeeded);
    let Some(Response::ResponseRange(range)) = &r.responses[0].response else { panic!("{r:?}") };
    assert_eq!(range.kvs[0].create_revision, rev);
    // Compare-and-swap on the mod revision.
    let swap = |expect: i64, value: &'static [u8]| {
        txn::when(
            vec![txn::mod_revision_is(k.as_bytes(), expect)],
            vec![txn::put(k.as_bytes(), value, 0)],
            vec![],
        )
    };
    assert!(c.txn(swap(rev, b"v2")).await.unwrap().succeeded);
    assert!(!c.txn(swap(rev, b"v3")).await.unwrap().succeeded);
    assert_eq!(c.get(k.clone()).await.unwrap().kv.unwrap().value, b"v2");
    // etcd refuses writing one key twice in a transaction.
    let twice = txn::when(
        vec![],
        vec![txn::put(k.as_bytes(), b"a", 0), txn::put(k.as_bytes(), b"b", 0)],
        vec![],
    );
    let e = c.txn(twice).await.unwrap_err();
    assert_eq!(e.code(), Some(tonic::Code::InvalidArgument), "{e:?}");
    c.delete_prefix(p.as_bytes()).await.unwrap();
}

#[tokio::test]
async fn leases_expire_their_keys_unless_kept_alive() {
    let c = client().await;
    let p = prefix("lease");
    let lease = c.lease_grant(2).await.unwrap();
    assert!(lease.ttl >= 2);
    let k = format!("{p}owned");
    c.put(k.clone(), "x", lease.id).await.unwrap();
    assert_eq!(c.get(k.clone()).await.unwrap().kv.unwrap().lease, lease.id);
    let mut ka = c.lease_keep_alive(lease.id).await.unwrap();
    for _ in 0..3 {
        assert!(ka.keep_alive().await.unwrap() >= 2);
        tokio::time::sleep(Duration::from_millis(800)).await;
    }
    assert!(c.get(k.clone()).await.unwrap().kv.is_some(), "kept alive past its TTL");
    assert!(c.lease_time_to_live(lease.id).await.unwrap().is_some());
    c.lease_revoke(lease.id).await.unwrap();
    assert_eq!(c.get(k).await.unwrap().kv, None, "revoking deletes the lease's keys");
    assert_eq!(c.lease_time_to_live(lease.id).await.unwrap(), None);
    assert!(matches!(c.lease_revoke(lease.id).await, Err(Error::LeaseExpired { .. })));
    assert!(matches!(ka.keep_alive().await, Err(Error::LeaseExpired { .. })));
}

#[tokio::test]
async fn watches_replay_from_a_revision_and_follow() {
    let c = client().await;
    let p = prefix("watch");
    let first = c.put(format!("{p}a"), "1", 0).await.unwrap();
    c.put(format!("{p}b"), "2", 0).await.unwrap();
    let mut w = c.watch(watch_prefix(p.as_bytes(), first)).await.unwrap();
    c.delete(format!("{p}a")).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let batch = tokio::time::timeout(Duration::from_secs(5), w.next()).await.unwrap().unwrap();
        for e in batch.events {
            let kv = e.kv.unwrap();
            seen.push((e.r#type, String::from_utf8(kv.key).unwrap(), kv.mod_revision));
        }
    }
    let kinds: Vec<(i32, String)> = seen.iter().map(|(t, k, _)| (*t, k.clone())).collect();
    assert_eq!(
        kinds,
        vec![
            (EventType::Put as i32, format!("{p}a")),
            (EventType::Put as i32, format!("{p}b")),
            (EventType::Delete as i32, format!("{p}a")),
        ]
    );
    assert!(seen.windows(2).all(|w| w[0].2 < w[1].2));
    c.delete_prefix(p.as_bytes()).await.unwrap();
}

// Compaction is tested in sched-store against a private etcd (`TestEtcd`):
// compacting the shared one would break other tests' watches.
