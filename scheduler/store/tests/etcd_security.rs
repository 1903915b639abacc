//! The etcd client and the store over TLS and with authentication, against
//! private etcds (`TestEtcd`): certificates are made at test time with
//! rcgen; authentication is enabled with `etcdctl`.

use std::error::Error as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use etcd_api::{Client, ClientConfig, Credentials, Error, TlsConfig, TlsIdentity, watch_prefix};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use sched_core::scheduler::Write;
use sched_store::contract;
use sched_store::testing::{ServerTls, TestEtcd, TestEtcdOptions};
use sched_store::{Election, EtcdStore, EtcdStoreConfig, Store};

/// A test CA, and a server and a client certificate it signed (PEM files).
struct Pki {
    ca: String,
    server: PathBuf,
    server_key: PathBuf,
    ca_file: PathBuf,
    client: String,
    client_key: String,
}

fn pki(dir: &Path) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "drover test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let leaf = |names: Vec<String>, usage: ExtendedKeyUsagePurpose, cn: &str| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(names).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![usage];
        (p.signed_by(&key, &issuer).unwrap().pem(), key.serialize_pem())
    };
    let (server, server_key) = leaf(
        vec!["localhost".into(), "127.0.0.1".into()],
        ExtendedKeyUsagePurpose::ServerAuth,
        "etcd",
    );
    let (client, client_key) = leaf(vec![], ExtendedKeyUsagePurpose::ClientAuth, "drover");
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    Pki {
        ca_file: write("ca.pem", &ca_pem),
        server: write("server.pem", &server),
        server_key: write("server-key.pem", &server_key),
        ca: ca_pem,
        client,
        client_key,
    }
}

impl Pki {
    /// Client TLS settings: with or without the CA and the client certificate.
    fn client_tls(&self, ca: bool, identity: bool) -> TlsConfig {
        TlsConfig {
            ca_pem: ca.then(|| self.ca.clone().into_bytes()),
            identity: identity.then(|| TlsIdentity {
                cert_pem: self.client.clone().into_bytes(),
                key_pem: self.client_key.clone().into_bytes(),
            }),
            server_name: None,
        }
    }
}

/// An etcd serving https that requires client certificates of the test CA.
async fn mutual_tls_etcd(dir: &Path) -> (TestEtcd, Pki) {
    let pki = pki(dir);
    let tls = ServerTls {
        cert_file: pki.server.clone(),
        key_file: pki.server_key.clone(),
        client_ca_file: Some(pki.ca_file.clone()),
        client: pki.client_tls(true, true),
    };
    let options = TestEtcdOptions { tls: Some(tls) };
    let etcd = TestEtcd::start_with(&dir.join("etcd"), options).await.expect("start a TLS etcd");
    (etcd, pki)
}

/// An error and its sources, as one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

fn quick(mut config: ClientConfig) -> ClientConfig {
    config.connect_timeout = Duration::from_secs(2);
    config.request_timeout = Duration::from_secs(2);
    config
}

/// Puts, reads back, and sees the put in a watch.
async fn kv_and_watch_work(client: &Client, prefix: &str) {
    let mut w = client.watch(watch_prefix(prefix.as_bytes(), 0)).await.expect("watch");
    let rev = client.put(format!("{prefix}k"), "v", 0).await.expect("put");
    let got = client.get(format!("{prefix}k")).await.expect("get");
    assert_eq!(got.kv.expect("present").value, b"v");
    let batch = tokio::time::timeout(Duration::from_secs(5), w.next())
        .await
        .expect("watch event in time")
        .expect("watch event");
    assert_eq!(batch.events[0].kv.as_ref().map(|kv| kv.mod_revision), Some(rev));
}

#[tokio::test]
async fn mutual_tls_serves_the_store_contract_and_elections() {
    let dir = tempfile::tempdir().unwrap();
    let (etcd, _pki) = mutual_tls_etcd(dir.path()).await;
    assert!(etcd.endpoint().starts_with("https://127.0.0.1:"));
    let client = Client::connect(etcd.client_config()).await.expect("connect over mutual TLS");
    kv_and_watch_work(&client, "/tls/").await;

    let store = |prefix: &str| {
        let config = EtcdStoreConfig { prefix: prefix.to_owned(), ..EtcdStoreConfig::default() };
        EtcdStore::new(client.clone(), config)
    };
    contract::run(&store("/drover"), &store("/drover")).await;

    let election = Election::new(client.clone(), "/drover/leader".to_owned());
    let leader = election.campaign("tls", Duration::from_secs(2)).await.expect("campaign");
    let fenced = store("/drover");
    fenced.set_fence(Some(leader.fence()));
    fenced.load().await.unwrap();
    fenced.commit(&[Write::FrameworkId("over-tls".into())]).await.expect("fenced commit");
    assert_eq!(election.leader().await.unwrap().unwrap().identity, "tls");
    leader.resign().await.unwrap();
}

#[tokio::test]
async fn tls_needs_the_ca_a_client_certificate_and_the_right_name() {
    let dir = tempfile::tempdir().unwrap();
    let (etcd, pki) = mutual_tls_etcd(dir.path()).await;
    let with = |tls: TlsConfig| {
        let mut config = quick(etcd.client_config());
        config.tls = Some(tls);
        config
    };

    // Without the CA, the system's trust store does not know etcd's issuer.
    let e = Client::connect(with(pki.client_tls(false, true))).await.unwrap_err();
    let why = chain(&e);
    assert!(why.contains("certificate") || why.contains("native certs"), "{why}");

    // Without a client certificate, etcd (`--client-cert-auth`) refuses us.
    let e = Client::connect(with(pki.client_tls(true, false))).await.unwrap_err();
    assert!(matches!(e, Error::Rpc { .. }), "{e:?}");

    // The endpoint is an IP address: its certificate names 127.0.0.1 and
    // localhost. Another name is refused; `localhost` is accepted.
    let named =
        |name: &str| TlsConfig { server_name: Some(name.into()), ..pki.client_tls(true, true) };
    let e = Client::connect(with(named("etcd.example"))).await.unwrap_err();
    let why = chain(&e);
    assert!(why.contains("certificate"), "{why}");
    let c = Client::connect(with(named("localhost"))).await.expect("the overriding name");
    c.put("/named", "ok", 0).await.unwrap();

    // TLS settings with an http:// endpoint are an error, not plain text.
    let mut plain = with(pki.client_tls(true, true));
    plain.endpoints = vec![etcd.endpoint().replace("https://", "http://")];
    let e = Client::connect_lazy(plain).unwrap_err();
    assert!(matches!(e, Error::TlsWithoutHttps { .. }), "{e:?}");
    assert!(e.to_string().contains("is not https://"), "{e}");

    // A key that is not PEM is refused before connecting.
    let mut bad = pki.client_tls(true, true);
    if let Some(id) = &mut bad.identity {
        id.key_pem = b"not a key".to_vec();
    }
    let e = Client::connect_lazy(with(bad)).unwrap_err();
    assert!(matches!(e, Error::Tls { .. }), "{e:?}");
}

const PASSWORD: &str = "s3cret-pw";

/// A plain etcd with authentication enabled: user `root`, [`PASSWORD`].
async fn auth_etcd(dir: &Path) -> TestEtcd {
    let etcd = TestEtcd::start(dir).await.expect("start etcd");
    etcd.etcdctl(&["user", "add", &format!("root:{PASSWORD}")]).unwrap();
    etcd.etcdctl(&["auth", "enable"]).unwrap();
    etcd
}

fn as_root(etcd: &TestEtcd, password: &str) -> ClientConfig {
    let mut config = quick(etcd.client_config());
    config.credentials = Some(Credentials::new("root", password));
    config
}

/// Retries `op` while etcd is unreachable (it just restarted); any other
/// failure is returned.
async fn once_reachable<T, F: Future<Output = Result<T, Error>>>(
    op: impl Fn() -> F,
) -> Result<T, Error> {
    for _ in 0..50 {
        match op().await {
            Err(e) if e.is_unavailable() => tokio::time::sleep(Duration::from_millis(200)).await,
            r => return r,
        }
    }
    op().await
}

#[tokio::test]
async fn authentication_logs_in_and_renews_tokens_etcd_forgot() {
    let dir = tempfile::tempdir().unwrap();
    let mut etcd = auth_etcd(dir.path()).await;

    // Anonymous requests are refused.
    let anonymous = Client::connect_lazy(quick(etcd.client_config())).unwrap();
    assert!(anonymous.put("/a", "x", 0).await.is_err());

    let client = Client::connect(as_root(&etcd, PASSWORD)).await.expect("log in");
    kv_and_watch_work(&client, "/auth-1/").await;
    let lease = client.lease_grant(5).await.unwrap();
    client.put("/leased", "x", lease.id).await.unwrap();
    let mut keep_alive = client.lease_keep_alive(lease.id).await.unwrap();
    let mut old_watch = client.watch(watch_prefix(b"/old-watch/", 0)).await.unwrap();

    // Disabling auth forgets every token; the client logs in again by itself.
    etcd.etcdctl(&["--user", &format!("root:{PASSWORD}"), "auth", "disable"]).unwrap();
    etcd.etcdctl(&["auth", "enable"]).unwrap();
    kv_and_watch_work(&client, "/auth-2/").await;
    let lease2 = client.lease_grant(5).await.expect("lease after new login");
    assert!(keep_alive.keep_alive().await.expect("keep-alive after new login") > 0);
    client.put("/old-watch/k", "x", lease2.id).await.unwrap();
    let batch = tokio::time::timeout(Duration::from_secs(5), old_watch.next())
        .await
        .expect("event in time")
        .expect("the watch opened before goes on");
    assert_eq!(batch.events.len(), 1);
    let log = std::fs::read_to_string(dir.path().join("etcd.log")).unwrap();
    assert!(log.contains("invalid auth token"), "etcd refused the old token at least once");

    // etcd keeps simple tokens in memory: a restart forgets them too.
    drop((keep_alive, old_watch));
    etcd.restart().await.unwrap();
    once_reachable(|| client.put("/auth-3/k", "v", 0)).await.expect("put after etcd restarted");
    kv_and_watch_work(&client, "/auth-3/").await;

    // The store works over an authenticated client.
    let store = |prefix: &str| {
        let config = EtcdStoreConfig { prefix: prefix.to_owned(), ..EtcdStoreConfig::default() };
        EtcdStore::new(client.clone(), config)
    };
    contract::run(&store("/drover"), &store("/drover")).await;
}

#[tokio::test]
async fn a_wrong_password_is_a_clear_error_that_shows_no_password() {
    let dir = tempfile::tempdir().unwrap();
    let etcd = auth_etcd(dir.path()).await;
    let config = as_root(&etcd, "wrong-pw");
    let debug = format!("{config:?}");
    assert!(!debug.contains("wrong-pw") && debug.contains("root"), "{debug}");
    let e = Client::connect(config).await.unwrap_err();
    assert!(matches!(&e, Error::AuthFailed { user, .. } if user == "root"), "{e:?}");
    assert!(!e.is_unavailable());
    assert_eq!(e.to_string(), "etcd refused the credentials of user `root`");
    let why = format!("{e:?} {}", chain(&e));
    assert!(why.contains("authentication failed") && !why.contains("wrong-pw"), "{why}");
    assert!(e.source().is_some());
}
