//! Token renewal against a fake etcd that hands out tokens and forgets them
//! on demand: a refused token costs one new login for any number of
//! requests, and open streams are re-opened where they were.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::etcdserverpb::{
    AuthenticateRequest, AuthenticateResponse, CompactionRequest, CompactionResponse,
    DeleteRangeRequest, DeleteRangeResponse, LeaseGrantRequest, LeaseGrantResponse,
    LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseRevokeRequest, LeaseRevokeResponse,
    LeaseTimeToLiveRequest, LeaseTimeToLiveResponse, PutRequest, PutResponse, RangeRequest,
    RangeResponse, ResponseHeader, StatusRequest, StatusResponse, TxnRequest, TxnResponse,
    WatchRequest, WatchResponse, auth_server, kv_server, lease_server, maintenance_server,
    watch_request, watch_server,
};
use crate::mvccpb::{Event, KeyValue};
use crate::{Client, ClientConfig, Credentials, Error, watch_key};

const PASSWORD: &str = "hunter2";

#[derive(Default)]
struct State {
    /// The one valid token ("" after [`Gatekeeper::forget_tokens`]).
    token: String,
    logins: u32,
    auth_disabled: bool,
    /// The start revision of every watch opened with a valid token.
    watch_starts: Vec<i64>,
    keep_alive_streams: u32,
}

/// A fake etcd that checks tokens like etcd does.
#[derive(Clone, Default)]
struct Gatekeeper(Arc<Mutex<State>>);

fn header() -> Option<ResponseHeader> {
    Some(ResponseHeader { revision: 10, ..ResponseHeader::default() })
}

impl Gatekeeper {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap()
    }

    fn check<T>(&self, r: &Request<T>) -> Result<(), Status> {
        let st = self.state();
        if st.auth_disabled {
            return Ok(());
        }
        match r.metadata().get("token") {
            None => Err(Status::invalid_argument("etcdserver: user name is empty")),
            Some(t) if !st.token.is_empty() && t == st.token.as_str() => Ok(()),
            Some(_) => Err(Status::unauthenticated("etcdserver: invalid auth token")),
        }
    }

    fn forget_tokens(&self) {
        self.state().token.clear();
    }

    fn logins(&self) -> u32 {
        self.state().logins
    }
}

#[tonic::async_trait]
impl auth_server::Auth for Gatekeeper {
    async fn authenticate(
        &self,
        r: Request<AuthenticateRequest>,
    ) -> Result<Response<AuthenticateResponse>, Status> {
        if r.metadata().get("token").is_some() {
            return Err(Status::internal("a token was sent to Authenticate"));
        }
        let mut st = self.state();
        if st.auth_disabled {
            return Err(Status::failed_precondition("etcdserver: authentication is not enabled"));
        }
        let r = r.into_inner();
        if r.name != "root" || r.password != PASSWORD {
            return Err(Status::invalid_argument(
                "etcdserver: authentication failed, invalid user ID or password",
            ));
        }
        st.logins += 1;
        st.token = format!("token.{}", st.logins);
        Ok(Response::new(AuthenticateResponse { header: header(), token: st.token.clone() }))
    }
}

#[tonic::async_trait]
impl kv_server::Kv for Gatekeeper {
    async fn range(&self, r: Request<RangeRequest>) -> Result<Response<RangeResponse>, Status> {
        self.check(&r)?;
        Ok(Response::new(RangeResponse { header: header(), ..RangeResponse::default() }))
    }
    async fn put(&self, r: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        self.check(&r)?;
        Ok(Response::new(PutResponse { header: header(), ..PutResponse::default() }))
    }
    async fn delete_range(
        &self,
        _: Request<DeleteRangeRequest>,
    ) -> Result<Response<DeleteRangeResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn txn(&self, _: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn compact(
        &self,
        _: Request<CompactionRequest>,
    ) -> Result<Response<CompactionResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn event(revision: i64) -> Event {
    let kv = KeyValue { key: b"k".to_vec(), mod_revision: revision, ..KeyValue::default() };
    Event { kv: Some(kv), ..Event::default() }
}

#[tonic::async_trait]
impl watch_server::Watch for Gatekeeper {
    type WatchStream = BoxStream<WatchResponse>;
    /// A watch opened with a refused token is canceled at once (etcd 3.5).
    /// The first accepted watch delivers one event, then etcd "forgets" the
    /// token and ends the stream with an auth error; later ones deliver one
    /// event and stay open.
    async fn watch(
        &self,
        r: Request<Streaming<WatchRequest>>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let refused = self.check(&r).err();
        let mut requests = r.into_inner();
        let Some(watch_request::RequestUnion::CreateRequest(create)) =
            requests.message().await?.and_then(|m| m.request_union)
        else {
            return Err(Status::invalid_argument("no create"));
        };
        let created = WatchResponse { header: header(), created: true, ..WatchResponse::default() };
        if let Some(status) = refused {
            let canceled = WatchResponse {
                canceled: true,
                cancel_reason: status.message().to_owned(),
                ..created
            };
            return Ok(Response::new(Box::pin(tokio_stream::iter([Ok(canceled)]))));
        }
        let first = {
            let mut st = self.state();
            st.watch_starts.push(create.start_revision);
            st.watch_starts.len() == 1
        };
        let revision = create.start_revision.max(11);
        let events = vec![event(revision)];
        let events = WatchResponse { header: header(), events, ..WatchResponse::default() };
        let answers = tokio_stream::iter([Ok(created), Ok(events)]);
        if first {
            let this = self.clone();
            let fail = tokio_stream::once(()).map(move |()| {
                this.forget_tokens();
                Err(Status::unauthenticated("etcdserver: invalid auth token"))
            });
            Ok(Response::new(Box::pin(answers.chain(fail))))
        } else {
            Ok(Response::new(Box::pin(answers.chain(tokio_stream::pending()))))
        }
    }
}

#[tonic::async_trait]
impl lease_server::Lease for Gatekeeper {
    async fn lease_grant(
        &self,
        r: Request<LeaseGrantRequest>,
    ) -> Result<Response<LeaseGrantResponse>, Status> {
        self.check(&r)?;
        Ok(Response::new(LeaseGrantResponse { header: header(), id: 7, ttl: 5, error: "".into() }))
    }
    async fn lease_revoke(
        &self,
        _: Request<LeaseRevokeRequest>,
    ) -> Result<Response<LeaseRevokeResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }
    type LeaseKeepAliveStream = BoxStream<LeaseKeepAliveResponse>;
    /// The first stream answers one refresh, then "forgets" the token and
    /// fails the next with an auth error; later streams answer every one.
    async fn lease_keep_alive(
        &self,
        r: Request<Streaming<LeaseKeepAliveRequest>>,
    ) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        self.check(&r)?;
        let first = {
            let mut st = self.state();
            st.keep_alive_streams += 1;
            st.keep_alive_streams == 1
        };
        let mut requests = r.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let this = self.clone();
        tokio::spawn(async move {
            let mut answered = 0;
            while let Ok(Some(request)) = requests.message().await {
                if first && answered == 1 {
                    this.forget_tokens();
                    let _ = tx
                        .send(Err(Status::unauthenticated("etcdserver: invalid auth token")))
                        .await;
                    return;
                }
                answered += 1;
                let answer = LeaseKeepAliveResponse { header: header(), id: request.id, ttl: 5 };
                if tx.send(Ok(answer)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
    async fn lease_time_to_live(
        &self,
        _: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }
}

#[tonic::async_trait]
impl maintenance_server::Maintenance for Gatekeeper {
    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        Ok(Response::new(StatusResponse { header: header(), ..StatusResponse::default() }))
    }
}

async fn gatekeeper(password: &str) -> (Gatekeeper, ClientConfig) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let fake = Gatekeeper::default();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(auth_server::AuthServer::new(fake.clone()))
            .add_service(kv_server::KvServer::new(fake.clone()))
            .add_service(watch_server::WatchServer::new(fake.clone()))
            .add_service(lease_server::LeaseServer::new(fake.clone()))
            .add_service(maintenance_server::MaintenanceServer::new(fake.clone()))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let mut config = ClientConfig::new([format!("http://{addr}")]);
    config.request_timeout = Duration::from_secs(2);
    config.credentials = Some(Credentials::new("root", password));
    (fake, config)
}

#[tokio::test]
async fn many_requests_refused_for_one_token_cost_one_new_login() {
    let (fake, config) = gatekeeper(PASSWORD).await;
    let client = Client::connect(config).await.expect("connect");
    client.put("k", "v", 0).await.expect("put");
    assert_eq!(fake.logins(), 1, "logged in once, on first use");

    fake.forget_tokens();
    let puts: Vec<_> = (0..8)
        .map(|i| {
            let c = client.clone();
            tokio::spawn(async move { c.put(format!("k{i}"), "v", 0).await })
        })
        .collect();
    for put in puts {
        put.await.unwrap().expect("retried with the new token");
    }
    client.get("k").await.expect("get");
    assert_eq!(fake.logins(), 2);
}

#[tokio::test]
async fn a_wrong_password_fails_and_is_never_shown() {
    let (fake, config) = gatekeeper("not-the-password").await;
    let client = Client::connect_lazy(config).unwrap();
    let e = client.put("k", "v", 0).await.unwrap_err();
    assert!(matches!(&e, Error::AuthFailed { user, .. } if user == "root"), "{e:?}");
    assert_eq!(fake.logins(), 0);
    let shown = format!("{client:?} {e:?} {e}");
    assert!(!shown.contains("not-the-password"), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
    let request = AuthenticateRequest { name: "root".into(), password: "not-the-password".into() };
    assert!(!format!("{request:?}").contains("not-the-password"));
}

#[tokio::test]
async fn without_auth_enabled_requests_carry_no_token_until_refused() {
    let (fake, config) = gatekeeper(PASSWORD).await;
    fake.state().auth_disabled = true;
    let client = Client::connect(config).await.expect("connect");
    client.put("k", "v", 0).await.expect("put without a token");
    assert_eq!(fake.logins(), 0);
    // Auth is enabled: the token-less request is refused, the client logs in.
    fake.state().auth_disabled = false;
    client.put("k", "v", 0).await.expect("put after logging in");
    assert_eq!(fake.logins(), 1);
}

#[tokio::test]
async fn streams_are_reopened_with_a_new_token_where_they_were() {
    let (fake, config) = gatekeeper(PASSWORD).await;
    let client = Client::connect(config).await.expect("connect");
    assert_eq!(fake.logins(), 1);

    // A watch opened with a forgotten token is retried after a new login.
    fake.forget_tokens();
    let mut w = client.watch(watch_key(b"k", 0)).await.expect("watch");
    assert_eq!(fake.logins(), 2);
    let rev = |b: &crate::WatchBatch| b.events[0].kv.as_ref().unwrap().mod_revision;
    assert_eq!(rev(&w.next().await.unwrap()), 11);
    // etcd ends the stream over the token: the watch logs in again and goes
    // on from the revision after the last event it delivered.
    let batch = tokio::time::timeout(Duration::from_secs(5), w.next()).await.unwrap().unwrap();
    assert_eq!(rev(&batch), 12);
    assert_eq!(fake.state().watch_starts, vec![0, 12]);
    assert_eq!(fake.logins(), 3);

    let lease = client.lease_grant(5).await.unwrap();
    let mut keep_alive = client.lease_keep_alive(lease.id).await.unwrap();
    assert_eq!(keep_alive.keep_alive().await.expect("re-opened keep-alive"), 5);
    assert_eq!(fake.state().keep_alive_streams, 2);
    assert_eq!(fake.logins(), 4);
    assert_eq!(keep_alive.keep_alive().await.unwrap(), 5);
}
