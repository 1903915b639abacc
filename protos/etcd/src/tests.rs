//! The client against a fake etcd that answers badly: every bad answer is an
//! error, never a panic or a hang.

use std::pin::Pin;
use std::time::Duration;

use tokio_stream::Stream;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status, Streaming};

use super::*;
use crate::etcdserverpb::{
    CompactionResponse, DeleteRangeResponse, LeaseGrantResponse, LeaseRevokeResponse,
    LeaseTimeToLiveResponse, PutResponse, ResponseHeader, ResponseOp, kv_server, lease_server,
    maintenance_server, watch_server,
};

/// Answers every request with something the protocol forbids.
struct BadEtcd;

fn header() -> Option<ResponseHeader> {
    Some(ResponseHeader { revision: 7, ..ResponseHeader::default() })
}

#[tonic::async_trait]
impl kv_server::Kv for BadEtcd {
    async fn range(&self, r: Request<RangeRequest>) -> Result<Response<RangeResponse>, Status> {
        let r = r.into_inner();
        Ok(Response::new(match r.key.as_slice() {
            // `more` but nothing in the page: a client that trusted it would loop.
            b"more" => RangeResponse { header: header(), more: true, ..RangeResponse::default() },
            b"two" => RangeResponse {
                header: header(),
                kvs: vec![KeyValue::default(), KeyValue::default()],
                ..RangeResponse::default()
            },
            _ => RangeResponse::default(),
        }))
    }
    async fn put(&self, _: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        Ok(Response::new(PutResponse::default()))
    }
    async fn delete_range(
        &self,
        _: Request<DeleteRangeRequest>,
    ) -> Result<Response<DeleteRangeResponse>, Status> {
        Err(Status::invalid_argument("etcdserver: no"))
    }
    async fn txn(&self, r: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        let r = r.into_inner();
        Ok(Response::new(if r.success.len() == 1 {
            // One operation asked, none answered.
            TxnResponse { header: header(), succeeded: true, responses: vec![] }
        } else {
            // As many answers as operations, but empty ones.
            let responses = vec![ResponseOp::default(); r.success.len()];
            TxnResponse { header: header(), succeeded: true, responses }
        }))
    }
    async fn compact(
        &self,
        _: Request<CompactionRequest>,
    ) -> Result<Response<CompactionResponse>, Status> {
        std::future::pending().await
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl watch_server::Watch for BadEtcd {
    type WatchStream = BoxStream<WatchResponse>;
    async fn watch(
        &self,
        _: Request<Streaming<WatchRequest>>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        // Events before any `created`.
        let r = WatchResponse { header: header(), ..WatchResponse::default() };
        Ok(Response::new(Box::pin(tokio_stream::iter(vec![Ok(r)]))))
    }
}

#[tonic::async_trait]
impl lease_server::Lease for BadEtcd {
    async fn lease_grant(
        &self,
        r: Request<LeaseGrantRequest>,
    ) -> Result<Response<LeaseGrantResponse>, Status> {
        Ok(Response::new(if r.into_inner().ttl == 1 {
            LeaseGrantResponse { error: "too many leases".into(), ..LeaseGrantResponse::default() }
        } else {
            LeaseGrantResponse::default()
        }))
    }
    async fn lease_revoke(
        &self,
        _: Request<LeaseRevokeRequest>,
    ) -> Result<Response<LeaseRevokeResponse>, Status> {
        Err(Status::not_found("etcdserver: requested lease not found"))
    }
    type LeaseKeepAliveStream = BoxStream<LeaseKeepAliveResponse>;
    async fn lease_keep_alive(
        &self,
        r: Request<Streaming<LeaseKeepAliveRequest>>,
    ) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        let mut requests = r.into_inner();
        let first = requests.message().await?.map_or(0, |m| m.id);
        // Lease 1: an answer about another lease; lease 2: expired.
        let answer = if first == 1 {
            LeaseKeepAliveResponse { header: header(), id: 99, ttl: 5 }
        } else {
            LeaseKeepAliveResponse { header: header(), id: first, ttl: 0 }
        };
        Ok(Response::new(Box::pin(tokio_stream::iter(vec![Ok(answer)]))))
    }
    async fn lease_time_to_live(
        &self,
        _: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        Ok(Response::new(LeaseTimeToLiveResponse { ttl: -1, ..Default::default() }))
    }
}

#[tonic::async_trait]
impl maintenance_server::Maintenance for BadEtcd {
    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        Ok(Response::new(StatusResponse::default()))
    }
}

async fn bad_etcd() -> Client {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(kv_server::KvServer::new(BadEtcd))
            .add_service(watch_server::WatchServer::new(BadEtcd))
            .add_service(lease_server::LeaseServer::new(BadEtcd))
            .add_service(maintenance_server::MaintenanceServer::new(BadEtcd))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let mut config = ClientConfig::new([format!("http://{addr}")]);
    config.request_timeout = Duration::from_millis(500);
    Client::connect_lazy(config).expect("client")
}

fn assert_malformed<T: std::fmt::Debug>(r: Result<T, Error>, what: &str) {
    match r {
        Err(Error::Malformed { what: w, .. }) => assert_eq!(w, what),
        other => panic!("expected malformed `{what}`, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_answers_are_errors_not_panics() {
    let c = bad_etcd().await;
    assert_malformed(c.status().await, "no header");
    assert_malformed(c.get("x").await, "no header");
    assert_malformed(c.get("two").await, "several keys for one key");
    assert_malformed(c.get_prefix(b"more", 10).await, "`more` with no keys");
    assert_malformed(c.put("k", "v", 0).await, "no header");
    assert_malformed(
        c.txn(txn::when(vec![], vec![txn::get(b"k")], vec![])).await,
        "wrong number of responses",
    );
    assert_malformed(
        c.txn(txn::when(vec![], vec![txn::get(b"a"), txn::get(b"b")], vec![])).await,
        "empty response operation",
    );
    assert_malformed(c.watch(watch_prefix(b"p", 0)).await, "first answer is not `created`");
    assert_malformed(c.lease_grant(5).await, "no lease id or ttl");
    assert!(matches!(c.lease_grant(1).await, Err(Error::Refused { .. })));
    assert!(matches!(c.lease_revoke(3).await, Err(Error::LeaseExpired { id: 3 })));
    assert_eq!(c.lease_time_to_live(3).await.expect("ttl"), None);
    assert_malformed(c.lease_keep_alive(1).await, "answer for another lease");
    assert!(matches!(c.lease_keep_alive(2).await, Err(Error::LeaseExpired { id: 2 })));
}

#[tokio::test]
async fn error_statuses_and_silence_are_reported() {
    let c = bad_etcd().await;
    let e = c.delete("k").await.unwrap_err();
    assert_eq!(e.code(), Some(tonic::Code::InvalidArgument));
    assert!(!e.is_unavailable());
    assert_eq!(e.to_string(), "etcd DeleteRange failed");
    let e = c.compact(3).await.unwrap_err();
    assert!(e.is_unavailable(), "{e:?}");
}

#[tokio::test]
async fn an_unreachable_etcd_is_unavailable() {
    // Bind and drop: nothing listens there any more.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut config = ClientConfig::new([format!("http://127.0.0.1:{port}")]);
    config.connect_timeout = Duration::from_millis(300);
    config.request_timeout = Duration::from_millis(500);
    let e = Client::connect(config).await.unwrap_err();
    assert!(e.is_unavailable(), "{e:?}");
}

#[test]
fn invalid_endpoints_are_errors() {
    assert!(matches!(
        Client::connect_lazy(ClientConfig::new(Vec::<String>::new())),
        Err(Error::NoEndpoints)
    ));
    let e = Client::connect_lazy(ClientConfig::new(["not a url"])).unwrap_err();
    assert!(matches!(e, Error::InvalidEndpoint { .. }), "{e:?}");
}

#[test]
fn prefix_end_is_the_first_key_after_the_prefix() {
    assert_eq!(prefix_end(b"/drover/"), b"/drover0".to_vec());
    assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
    assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
    assert_eq!(prefix_end(b""), vec![0]);
}
