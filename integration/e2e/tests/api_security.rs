//! The API secured end to end: `drover serve` with HTTPS on its API
//! (client certificates required), principals from a credentials file made
//! by `drover credentials add`, and its state in an etcd that serves mutual
//! TLS and has authentication enabled, against a real Mesos 1.11 master and
//! agent. Certificates are made by the test (rcgen). An admin deploys an
//! app over HTTPS and it runs; a read-only principal is refused (403), a
//! request without credentials too (401); gRPC over the same TLS port
//! answers UNAUTHENTICATED and PERMISSION_DENIED alike; the CLI works over
//! HTTPS with a token.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use bytes::Bytes;
use drover_e2e::{Drover, MesosCluster, bin_dir, eventually};
use etcd_api::{TlsConfig, TlsIdentity};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use sched_grpc::proto::v1 as pb;
use sched_grpc::proto::v1::drover_client::DroverClient;
use sched_store::testing::{ServerTls, TestEtcd, TestEtcdOptions};
use serde_json::Value;

const RESOURCES: &str = "cpus:4;mem:4096;disk:8192;ports:[31000-32000]";
/// etcd's root password.
const ETCD_PASSWORD: &str = "etcd-r00t-pw-TLS";

/// The test CA's files: a server certificate (localhost, 127.0.0.1) for
/// etcd and Drover, and a client certificate for everyone's clients.
struct Pki {
    ca: PathBuf,
    server: PathBuf,
    server_key: PathBuf,
    client: PathBuf,
    client_key: PathBuf,
}

fn pki(dir: &Path) -> anyhow::Result<Pki> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "drover e2e CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_pem = ca.self_signed(&ca_key)?.pem();
    let issuer = Issuer::new(ca, ca_key);
    let leaf = |names: Vec<String>, usages: Vec<ExtendedKeyUsagePurpose>, cn: &str| {
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::new(names)?;
        p.distinguished_name.push(DnType::CommonName, cn);
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = usages;
        Ok::<_, anyhow::Error>((p.signed_by(&key, &issuer)?.pem(), key.serialize_pem()))
    };
    use ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
    let (server, server_key) = leaf(
        vec!["localhost".into(), "127.0.0.1".into()],
        vec![ServerAuth, ClientAuth],
        "drover-server",
    )?;
    let (client, client_key) = leaf(vec![], vec![ClientAuth], "drover-client")?;
    let write = |name: &str, text: &str| -> anyhow::Result<PathBuf> {
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        Ok(path)
    };
    Ok(Pki {
        ca: write("ca.pem", &ca_pem)?,
        server: write("server.pem", &server)?,
        server_key: write("server-key.pem", &server_key)?,
        client: write("client.pem", &client)?,
        client_key: write("client-key.pem", &client_key)?,
    })
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// `drover credentials add NAME --role ROLE --file FILE`: the token it prints.
fn add_principal(file: &Path, name: &str, role: &str) -> anyhow::Result<String> {
    let out = Command::new(bin_dir().join("drover"))
        .args(["credentials", "add", name, "--role", role, "--file"])
        .arg(file)
        .output()
        .context("running drover credentials add")?;
    if !out.status.success() {
        bail!("drover credentials add failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let token = String::from_utf8(out.stdout)?.trim().to_owned();
    if !token.starts_with(&format!("{name}:")) {
        bail!("unexpected token output");
    }
    Ok(token)
}

type Https = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// An HTTPS client that trusts the test CA, with or without the client
/// certificate.
fn https(pki: &Pki, with_cert: bool) -> anyhow::Result<Https> {
    let ca = std::fs::read(&pki.ca)?;
    let identity = if with_cert {
        Some((std::fs::read(&pki.client)?, std::fs::read(&pki.client_key)?))
    } else {
        None
    };
    let config =
        sched_api::tls::client_config(Some(&ca), identity.as_ref().map(|(c, k)| (&c[..], &k[..])))?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: Value,
    text: String,
}

async fn call(
    client: &Https,
    url: &str,
    method: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> anyhow::Result<Answer> {
    let mut req =
        http::Request::builder().method(method).uri(url).header("Content-Type", "application/json");
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let req = req.body(Full::new(Bytes::from(body.unwrap_or_default().to_owned())))?;
    let resp = tokio::time::timeout(Duration::from_secs(20), client.request(req))
        .await
        .map_err(|_| anyhow!("{method} {url} timed out"))?
        .with_context(|| format!("{method} {url}"))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await?.to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok(Answer { status, headers, body, text })
}

/// A gRPC client over TLS (client certificate included).
async fn grpc(pki: &Pki, url: &str) -> anyhow::Result<DroverClient<tonic::transport::Channel>> {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(&pki.ca)?))
        .identity(Identity::from_pem(std::fs::read(&pki.client)?, std::fs::read(&pki.client_key)?))
        .domain_name("localhost");
    let channel = Endpoint::from_shared(url.to_owned())?.tls_config(tls)?.connect().await?;
    Ok(DroverClient::new(channel))
}

fn with_token<T>(message: T, token: &str) -> anyhow::Result<tonic::Request<T>> {
    let mut req = tonic::Request::new(message);
    req.metadata_mut().insert("authorization", format!("Bearer {token}").parse()?);
    Ok(req)
}

const APP: &str = r#"{"id":"/secure","cmd":"sleep 600","cpus":0.1,"mem":32,"instances":1}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_deploys_over_https_with_credentials_against_an_etcd_with_tls_and_auth()
-> anyhow::Result<()> {
    let dir = tempfile::Builder::new().prefix("drover-e2e-api-security-").tempdir()?;
    let pki = pki(dir.path())?;

    // etcd: mutual TLS, then authentication (root with a password).
    let read = |p: &Path| std::fs::read(p).map_err(anyhow::Error::from);
    let etcd_client = TlsConfig {
        ca_pem: Some(read(&pki.ca)?),
        identity: Some(TlsIdentity {
            cert_pem: read(&pki.client)?,
            key_pem: read(&pki.client_key)?,
        }),
        server_name: None,
    };
    let tls = ServerTls {
        cert_file: pki.server.clone(),
        key_file: pki.server_key.clone(),
        client_ca_file: Some(pki.ca.clone()),
        client: etcd_client,
    };
    let etcd = TestEtcd::start_with(&dir.path().join("etcd"), TestEtcdOptions { tls: Some(tls) })
        .await
        .map_err(|e| anyhow!(e))?;
    let tls_flags =
        ["--cacert", &path(&pki.ca), "--cert", &path(&pki.client), "--key", &path(&pki.client_key)];
    let etcdctl = |args: &[&str]| {
        let all: Vec<&str> = tls_flags.iter().copied().chain(args.iter().copied()).collect();
        etcd.etcdctl(&all).map_err(|e| anyhow!(e))
    };
    etcdctl(&["user", "add", &format!("root:{ETCD_PASSWORD}")])?;
    etcdctl(&["auth", "enable"])?;
    // Anonymous etcd requests are refused now.
    assert!(etcdctl(&["put", "/x", "y"]).is_err(), "etcd authentication is enabled");

    // The API's principals, made by the CLI.
    let credentials = dir.path().join("credentials");
    let admin = add_principal(&credentials, "admin", "admin")?;
    let reader = add_principal(&credentials, "reader", "read-only")?;

    let mesos = MesosCluster::start(1, RESOURCES)?;
    let endpoint = etcd.endpoint();
    let flags = [
        "--etcd",
        &endpoint,
        "--etcd-prefix",
        "/drover-e2e-api-security",
        "--etcd-ca-file",
        &path(&pki.ca),
        "--etcd-cert-file",
        &path(&pki.client),
        "--etcd-key-file",
        &path(&pki.client_key),
        "--etcd-user",
        "root",
        "--credentials-file",
        &path(&credentials),
        "--tls-cert-file",
        &path(&pki.server),
        "--tls-key-file",
        &path(&pki.server_key),
        "--tls-client-ca-file",
        &path(&pki.ca),
        "--tls-ca-file",
        &path(&pki.ca),
    ];
    let env = [("DROVER_ETCD_PASSWORD", ETCD_PASSWORD)];
    let d = Drover::start_with_env(&mesos.master, &flags, &env).await?;
    assert!(d.url.starts_with("https://127.0.0.1:"), "{}", d.url);
    let client = https(&pki, true)?;
    let ping = format!("{}/ping", d.url);
    eventually("/ping over HTTPS", Duration::from_secs(20), || async {
        let r = call(&client, &ping, "GET", None, None).await?;
        Ok((r.status == 200 && r.text == "pong").then_some(()))
    })
    .await
    .map_err(|e| anyhow!("{e:#}\n{}", d.log_text()))?;

    // Without a client certificate there is no TLS connection; without TLS
    // there is no answer.
    let no_cert = https(&pki, false)?;
    assert!(
        call(&no_cert, &ping, "GET", None, None).await.is_err(),
        "a client certificate is required"
    );
    let plain = drover_e2e::http(&ping.replace("https://", "http://"), "GET", None).await;
    assert!(plain.is_err() || plain.is_ok_and(|(s, _)| s != 200), "no plain HTTP");

    // Authentication and authorization.
    let apps = format!("{}/v2/apps", d.url);
    let r = call(&client, &apps, "POST", None, Some(APP)).await?;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(r.body["message"], "Invalid username or password.");
    assert_eq!(r.headers["www-authenticate"], "Basic realm=\"drover\"");
    let r = call(&client, &apps, "GET", Some("admin:wrong-secret"), None).await?;
    assert_eq!(r.status, 401, "{}", r.text);
    let r = call(&client, &apps, "POST", Some(&reader), Some(APP)).await?;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.body["message"], "Not Authorized to perform this action!");
    let r = call(&client, &apps, "POST", Some(&admin), Some(APP)).await?;
    assert_eq!(r.status, 201, "{}", r.text);

    // It runs (read as the read-only principal).
    let app = format!("{}/v2/apps/secure", d.url);
    eventually("the app to run", Duration::from_secs(60), || async {
        let r = call(&client, &app, "GET", Some(&reader), None).await?;
        Ok((r.body["app"]["tasksRunning"] == 1).then_some(()))
    })
    .await
    .map_err(|e| anyhow!("{e:#}\n{}", d.log_text()))?;
    let framework = mesos.framework("drover").await?.context("drover is registered")?;
    assert_eq!(framework["tasks"].as_array().map(Vec::len), Some(1), "{framework}");

    // gRPC on the same TLS port, same rules.
    let mut g = grpc(&pki, &d.url).await?;
    let e = g.list_apps(pb::ListAppsRequest {}).await.expect_err("no credentials");
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
    let listed = g.list_apps(with_token(pb::ListAppsRequest {}, &reader)?).await?;
    assert_eq!(listed.into_inner().apps.len(), 1);
    let create = pb::CreateAppRequest {
        app_json: r#"{"id":"/other","cmd":"sleep 1"}"#.into(),
        force: false,
    };
    let e = g.create_app(with_token(create, &reader)?).await.expect_err("read-only");
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");

    // A standby forwards to the leader over mutual TLS, with the caller's
    // credentials, which the leader checks.
    let standby = Drover::start_with_env(&mesos.master, &flags, &env).await?;
    let leader = format!("{}/v2/leader", standby.url);
    let expected = d.url.trim_start_matches("https://").to_owned();
    eventually("the standby to know the leader", Duration::from_secs(30), || async {
        let r = call(&client, &leader, "GET", Some(&reader), None).await?;
        Ok((r.body["leader"] == expected.as_str()).then_some(()))
    })
    .await
    .map_err(|e| anyhow!("{e:#}\n{}", standby.log_text()))?;
    let via = format!("{}/v2/apps/secure", standby.url);
    let r = call(&client, &via, "GET", Some(&reader), None).await?;
    assert_eq!(r.status, 200, "{}\n{}", r.text, standby.log_text());
    assert_eq!(r.headers["x-marathon-leader"], d.url.as_str());
    assert_eq!(r.body["app"]["tasksRunning"], 1);
    let r = call(&client, &via, "PUT", Some(&reader), Some(r#"{"instances":2}"#)).await?;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = call(&client, &via, "GET", None, None).await?;
    assert_eq!(r.status, 401, "{}", r.text);
    let r = call(&client, &format!("{via}/restart"), "POST", Some(&admin), None).await?;
    assert_eq!(r.status, 200, "restart through the standby: {}", r.text);
    drop(standby);

    // The CLI over HTTPS, with a token.
    let out = Command::new(bin_dir().join("drover"))
        .args(["apps", "list", "-o", "json", "--url", &d.url])
        .args(["--ca-file", &path(&pki.ca)])
        .args(["--client-cert-file", &path(&pki.client)])
        .args(["--client-key-file", &path(&pki.client_key)])
        .env("DROVER_TOKEN", &reader)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("/secure"), "{stdout}");
    let out = Command::new(bin_dir().join("drover"))
        .args(["apps", "list", "--url", &d.url, "--ca-file", &path(&pki.ca)])
        .args(["--client-cert-file", &path(&pki.client)])
        .args(["--client-key-file", &path(&pki.client_key)])
        .env_remove("DROVER_TOKEN")
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("Invalid username or password."), "{stderr}");

    // No token or secret in the daemon's log.
    let log = d.log_text();
    for token in [&admin, &reader] {
        let secret = token.split_once(':').map_or("", |(_, s)| s);
        assert!(!log.contains(secret), "a secret is in the log");
    }
    assert!(!log.contains(ETCD_PASSWORD), "etcd's password is in the log");
    Ok(())
}
