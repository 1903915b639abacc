//! The API over TLS on a real socket: handshakes do not hold up accepting,
//! client certificates are required when configured, plain HTTP gets
//! nothing.

use std::future::pending;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::routing::get;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rcgen::{CertifiedKey, generate_simple_self_signed};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::conn::serve_tls;

struct Pem {
    cert: Vec<u8>,
    key: Vec<u8>,
}

fn self_signed() -> Pem {
    let CertifiedKey { cert, signing_key } =
        generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    Pem { cert: cert.pem().into_bytes(), key: signing_key.serialize_pem().into_bytes() }
}

/// Serves `/ping` over TLS; its address.
async fn server(config: Arc<rustls::ServerConfig>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Router::new().route("/ping", get(|| async { "pong" }));
    tokio::spawn(serve_tls(listener, router, Some(config), pending()));
    addr
}

async fn ping(addr: std::net::SocketAddr, config: rustls::ClientConfig) -> Result<String, String> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .wrap_connector(http);
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let uri = format!("https://{addr}/ping").parse().unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(5), client.get(uri))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| format!("{e:?}"))?;
    let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn stalled_handshakes_do_not_hold_up_other_clients() {
    let pem = self_signed();
    let addr = server(server_config(&pem.cert, &pem.key, None).unwrap()).await;
    // Clients that connect and never finish (or start) a handshake.
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
        stalled.push(s);
    }
    stalled.push(TcpStream::connect(addr).await.unwrap());
    let client = client_config(Some(&pem.cert), None).unwrap();
    assert_eq!(ping(addr, client.clone()).await.unwrap(), "pong");
    assert_eq!(ping(addr, client).await.unwrap(), "pong");
    drop(stalled);
}

#[tokio::test]
async fn client_certificates_are_required_when_a_client_ca_is_set() {
    let server_pem = self_signed();
    let client_pem = self_signed();
    let config = server_config(&server_pem.cert, &server_pem.key, Some(&client_pem.cert)).unwrap();
    let addr = server(config).await;
    let without = client_config(Some(&server_pem.cert), None).unwrap();
    assert!(ping(addr, without).await.is_err());
    let with =
        client_config(Some(&server_pem.cert), Some((&client_pem.cert, &client_pem.key))).unwrap();
    assert_eq!(ping(addr, with).await.unwrap(), "pong");
    // A certificate the server does not trust: refused.
    let untrusted = client_config(None, None).unwrap();
    assert!(ping(addr, untrusted).await.is_err());
}

#[test]
fn unusable_files_are_errors_that_name_the_file() {
    let pem = self_signed();
    let e = server_config(b"not pem", &pem.key, None).unwrap_err().to_string();
    assert!(e.contains("the certificate"), "{e}");
    let e = server_config(&pem.cert, b"not pem", None).unwrap_err().to_string();
    assert!(e.contains("the key") && !e.contains("PRIVATE"), "{e}");
    let e = server_config(&pem.cert, &pem.key, Some(b"nothing")).unwrap_err().to_string();
    assert!(e.contains("the client CA"), "{e}");
    let other = self_signed();
    assert!(server_config(&pem.cert, &other.key, None).is_err(), "a key of another certificate");
}
