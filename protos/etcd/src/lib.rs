//! Drover's etcd v3 client.
//!
//! - [`etcdserverpb`] and [`mvccpb`] are generated at build time from
//!   Drover's own `.proto` subset of etcd's gRPC API (`proto/`: etcd v3.5's
//!   names and field numbers; etcd 3.4 speaks the same messages) by protox
//!   and tonic: no system `protoc`.
//! - [`Client`] is a thin typed async client over them: connect with
//!   timeouts, get, paginated prefix listing at one revision, put, delete,
//!   transactions ([`txn`] builds compares and operations), compaction,
//!   leases with keep-alive ([`KeepAlive`]) and watches ([`WatchStream`]).
//! - Every failure is an [`Error`]; an answer that lacks what the protocol
//!   promises (a header, a `created` acknowledgement, ...) is
//!   [`Error::Malformed`], never a panic.
//! - `https://` endpoints speak TLS through rustls ([`TlsConfig`]: a CA
//!   bundle or the system's trust store, a client certificate for mutual
//!   TLS, a server name override); with [`Credentials`] the client logs in
//!   (`Auth.Authenticate`) and every request carries the token, renewed
//!   when etcd refuses it (see `auth`).
//!
//! The client holds one lazily (re)connecting gRPC channel: after etcd
//! restarts, the next request reconnects. Unary requests are bounded by
//! [`ClientConfig::request_timeout`]; streams are not (a watch may be quiet
//! for hours), but [`KeepAlive::keep_alive`] bounds each round trip.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

mod auth;
mod tls;
pub mod txn;

pub use auth::Credentials;
use auth::{Session, Ticket};
pub use tls::{TlsConfig, TlsIdentity};

#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
/// Generated from `proto/mvccpb/kv.proto` (etcd's package `mvccpb`).
pub mod mvccpb {
    include!(concat!(env!("OUT_DIR"), "/mvccpb.rs"));
}

#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
/// Generated from `proto/etcdserverpb/rpc.proto` (etcd's package
/// `etcdserverpb`): messages, client stubs and (for fakes) server traits.
pub mod etcdserverpb {
    include!(concat!(env!("OUT_DIR"), "/etcdserverpb.rs"));
}

use etcdserverpb::kv_client::KvClient;
use etcdserverpb::lease_client::LeaseClient;
use etcdserverpb::maintenance_client::MaintenanceClient;
use etcdserverpb::watch_client::WatchClient;
use etcdserverpb::{
    CompactionRequest, DeleteRangeRequest, LeaseGrantRequest, LeaseKeepAliveRequest,
    LeaseKeepAliveResponse, LeaseRevokeRequest, LeaseTimeToLiveRequest, PutRequest, RangeRequest,
    RangeResponse, StatusRequest, StatusResponse, TxnRequest, TxnResponse, WatchCreateRequest,
    WatchRequest, WatchResponse, watch_request,
};
pub use mvccpb::{Event, KeyValue, event::EventType};

/// Why an etcd request failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No endpoint was configured.
    #[error("no etcd endpoint given")]
    NoEndpoints,
    /// An endpoint is not a valid URL.
    #[error("invalid etcd endpoint `{endpoint}`")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What was wrong with it.
        #[source]
        source: tonic::transport::Error,
    },
    /// The TLS settings cannot be used (a bad certificate or key, no
    /// system trust store, ...).
    #[error("invalid TLS settings for etcd endpoint `{endpoint}`")]
    Tls {
        /// The endpoint.
        endpoint: String,
        /// What was wrong.
        #[source]
        source: tonic::transport::Error,
    },
    /// TLS settings were given for an endpoint that is not `https://`.
    #[error("etcd endpoint `{endpoint}` is not https://, but TLS settings were given")]
    TlsWithoutHttps {
        /// The endpoint.
        endpoint: String,
    },
    /// etcd refused the user name or password.
    #[error("etcd refused the credentials of user `{user}`")]
    AuthFailed {
        /// The user.
        user: String,
        /// etcd's answer.
        #[source]
        status: tonic::Status,
    },
    /// etcd answered a request with an error status (or the transport
    /// failed, which tonic reports as a status too).
    #[error("etcd {op} failed")]
    Rpc {
        /// The request, e.g. `"Txn"`.
        op: &'static str,
        /// The gRPC status.
        #[source]
        status: tonic::Status,
    },
    /// etcd did not answer in time.
    #[error("etcd {op} did not answer within {timeout:?}")]
    Timeout {
        /// The request.
        op: &'static str,
        /// The limit that passed.
        timeout: Duration,
    },
    /// etcd's answer lacks what the protocol promises.
    #[error("malformed answer from etcd to {op}: {what}")]
    Malformed {
        /// The request.
        op: &'static str,
        /// What was missing or wrong.
        what: &'static str,
    },
    /// etcd refused a request with a message in the answer body.
    #[error("etcd refused {op}: {message}")]
    Refused {
        /// The request.
        op: &'static str,
        /// etcd's explanation.
        message: String,
    },
    /// A watch asked for history that compaction removed.
    #[error("revision {revision} is compacted; the oldest available is {compact_revision}")]
    Compacted {
        /// The revision asked for.
        revision: i64,
        /// The oldest revision etcd still has.
        compact_revision: i64,
    },
    /// etcd canceled a watch for another reason.
    #[error("etcd canceled the watch: {reason}")]
    WatchCanceled {
        /// etcd's reason (may be empty).
        reason: String,
    },
    /// A lease no longer exists (expired or revoked).
    #[error("lease {id:#x} expired or was revoked")]
    LeaseExpired {
        /// The lease id.
        id: i64,
    },
    /// etcd closed a stream.
    #[error("etcd closed the {op} stream")]
    StreamClosed {
        /// The stream's request.
        op: &'static str,
    },
}

impl Error {
    /// The gRPC status code, when etcd (or the transport) answered with one.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            Error::Rpc { status, .. } => Some(status.code()),
            _ => None,
        }
    }

    /// True when etcd could not be reached or did not answer: retrying later
    /// may succeed. False when etcd answered and said no.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Rpc { status, .. } => matches!(
                status.code(),
                tonic::Code::Unavailable
                    | tonic::Code::DeadlineExceeded
                    | tonic::Code::Cancelled
                    | tonic::Code::Unknown
            ),
            Error::Timeout { .. } | Error::StreamClosed { .. } => true,
            _ => false,
        }
    }
}

fn rpc(op: &'static str) -> impl FnOnce(tonic::Status) -> Error {
    move |status| Error::Rpc { op, status }
}

/// How to reach etcd.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Endpoints such as `http://127.0.0.1:2379`; with several, requests are
    /// balanced over those that answer.
    pub endpoints: Vec<String>,
    /// Limit for opening a connection.
    pub connect_timeout: Duration,
    /// Limit for one unary request (and one keep-alive round trip).
    pub request_timeout: Duration,
    /// HTTP/2 keep-alive ping interval on open streams; detects a dead
    /// connection under a quiet watch. etcd rejects pings more often than
    /// every 5 s (`--grpc-keepalive-min-time`).
    pub keepalive_interval: Duration,
    /// TLS settings; only for `https://` endpoints, which use the system's
    /// trust store when this is `None`.
    pub tls: Option<TlsConfig>,
    /// Log in as this user (etcd's `--auth`); `None`: no authentication.
    pub credentials: Option<Credentials>,
}

impl ClientConfig {
    /// Defaults: 3 s to connect, 5 s per request, a ping every 10 s.
    pub fn new<S: Into<String>>(endpoints: impl IntoIterator<Item = S>) -> Self {
        ClientConfig {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(5),
            keepalive_interval: Duration::from_secs(10),
            tls: None,
            credentials: None,
        }
    }
}

/// An etcd client: cheap to clone (clones share one channel).
#[derive(Debug, Clone)]
pub struct Client {
    channel: Channel,
    config: Arc<ClientConfig>,
    /// The login, shared by clones (`None` without credentials).
    session: Option<Arc<Session>>,
}

/// One key as read, and the store revision the read saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Got {
    /// The key, if it exists.
    pub kv: Option<KeyValue>,
    /// The store's revision at the read.
    pub revision: i64,
}

/// Every key under a prefix, read at one revision.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Listing {
    /// Keys in ascending order.
    pub kvs: Vec<KeyValue>,
    /// The revision every page was read at.
    pub revision: i64,
}

/// A granted lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The lease id.
    pub id: i64,
    /// The TTL etcd granted, in seconds (may exceed the one asked for).
    pub ttl: i64,
}

/// The key just past every key that starts with `prefix` (etcd's
/// `range_end` for a prefix). An empty or all-`0xff` prefix gives `[0]`,
/// meaning "to the end of the keyspace".
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

impl Client {
    /// A client whose connection opens on first use (and reopens after a
    /// failure), and which logs in on first use when it has credentials.
    /// Fails only on invalid endpoints or TLS settings.
    pub fn connect_lazy(config: ClientConfig) -> Result<Client, Error> {
        let mut endpoints = Vec::with_capacity(config.endpoints.len());
        for raw in &config.endpoints {
            let mut endpoint = Endpoint::from_shared(raw.clone())
                .map_err(|source| Error::InvalidEndpoint { endpoint: raw.clone(), source })?
                .connect_timeout(config.connect_timeout)
                .tcp_nodelay(true)
                .http2_keep_alive_interval(config.keepalive_interval)
                .keep_alive_timeout(config.request_timeout)
                .keep_alive_while_idle(false);
            if endpoint.uri().scheme_str() == Some("https") {
                let tls = config.tls.clone().unwrap_or_default();
                endpoint = endpoint
                    .tls_config(tls.to_tonic(config.connect_timeout))
                    .map_err(|source| Error::Tls { endpoint: raw.clone(), source })?;
            } else if config.tls.is_some() {
                // tonic would silently connect in plain text.
                return Err(Error::TlsWithoutHttps { endpoint: raw.clone() });
            }
            endpoints.push(endpoint);
        }
        let channel = match endpoints.len() {
            0 => return Err(Error::NoEndpoints),
            1 => endpoints.remove(0).connect_lazy(),
            _ => Channel::balance_list(endpoints.into_iter()),
        };
        let session = config.credentials.clone().map(|c| Arc::new(Session::new(c)));
        Ok(Client { channel, config: Arc::new(config), session })
    }

    /// A client, after checking that etcd answers (`Maintenance.Status`)
    /// and, with credentials, that it accepts them.
    pub async fn connect(config: ClientConfig) -> Result<Client, Error> {
        let client = Client::connect_lazy(config)?;
        client.status().await?;
        Ok(client)
    }

    /// Logs in now, if the client has credentials and has not yet (e.g. to
    /// check them at startup); [`Error::AuthFailed`] for a wrong password.
    pub async fn authenticate(&self) -> Result<(), Error> {
        self.ticket().await.map(|_| ())
    }

    /// The configuration this client was made with.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The token to send (none without credentials), logging in first if
    /// needed.
    async fn ticket(&self) -> Result<Ticket, Error> {
        match &self.session {
            Some(s) => s.ticket(&self.channel, self.config.request_timeout).await,
            None => Ok(Ticket::default()),
        }
    }

    /// Logs in again unless the token of generation `refused` was already
    /// replaced; the ticket to retry with.
    async fn renew(&self, refused: u64) -> Result<Ticket, Error> {
        match &self.session {
            Some(s) => s.renew(&self.channel, self.config.request_timeout, refused).await,
            None => Ok(Ticket::default()),
        }
    }

    /// Runs `attempt` with the current token; when etcd refuses the token,
    /// logs in again (once) and runs it again.
    async fn with_token<T, F>(&self, attempt: impl Fn(Ticket) -> F) -> Result<T, Error>
    where
        F: Future<Output = Result<T, Error>>,
    {
        if self.session.is_none() {
            return attempt(Ticket::default()).await;
        }
        let ticket = self.ticket().await?;
        match attempt(ticket.clone()).await {
            Err(e) if auth::rejects_token(&e) => {
                tracing::debug!(error = %e, "etcd refused the auth token.");
                attempt(self.renew(ticket.generation).await?).await
            }
            r => r,
        }
    }

    /// A unary request: bounded by the request timeout, and retried once
    /// with a new token when etcd refuses the token.
    async fn unary<M: Clone, T, F>(
        &self,
        op: &'static str,
        message: M,
        call: impl Fn(Channel, tonic::Request<M>) -> F,
    ) -> Result<T, Error>
    where
        F: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        if self.session.is_none() {
            let request = self.request(message, &Ticket::default());
            return self.once(op, call(self.channel.clone(), request)).await;
        }
        self.with_token(|ticket| {
            let request = self.request(message.clone(), &ticket);
            self.once(op, call(self.channel.clone(), request))
        })
        .await
    }

    async fn once<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, Error> {
        let timeout = self.config.request_timeout;
        match tokio::time::timeout(timeout, call).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(Error::Rpc { op, status }),
            Err(_) => Err(Error::Timeout { op, timeout }),
        }
    }

    fn request<T>(&self, message: T, ticket: &Ticket) -> tonic::Request<T> {
        let mut request = authorized(message, ticket);
        request.set_timeout(self.config.request_timeout);
        request
    }

    /// The answering member's status (a health check).
    pub async fn status(&self) -> Result<StatusResponse, Error> {
        let r = self
            .unary("Status", StatusRequest {}, |ch, r| async move {
                MaintenanceClient::new(ch).status(r).await
            })
            .await?;
        if r.header.is_none() {
            return Err(Error::Malformed { op: "Status", what: "no header" });
        }
        Ok(r)
    }

    /// A raw range request; the answer is checked to have a header.
    pub async fn range(&self, request: RangeRequest) -> Result<RangeResponse, Error> {
        let r = self
            .unary("Range", request, |ch, r| async move { KvClient::new(ch).range(r).await })
            .await?;
        if r.header.is_none() {
            return Err(Error::Malformed { op: "Range", what: "no header" });
        }
        Ok(r)
    }

    /// One key.
    pub async fn get(&self, key: impl Into<Vec<u8>>) -> Result<Got, Error> {
        let r = self.range(RangeRequest { key: key.into(), ..RangeRequest::default() }).await?;
        let revision = r.header.map_or(0, |h| h.revision);
        if r.kvs.len() > 1 {
            return Err(Error::Malformed { op: "Range", what: "several keys for one key" });
        }
        Ok(Got { kv: r.kvs.into_iter().next(), revision })
    }

    /// Every key starting with `prefix`, fetched `page_size` keys per request,
    /// all pages at the revision of the first (a consistent snapshot even
    /// while others write). Fails with [`Error::Compacted`]-like statuses if
    /// compaction overtakes a long listing.
    pub async fn get_prefix(&self, prefix: &[u8], page_size: u32) -> Result<Listing, Error> {
        let end = prefix_end(prefix);
        let mut listing = Listing::default();
        let mut from = prefix.to_vec();
        loop {
            let r = self
                .range(RangeRequest {
                    key: from.clone(),
                    range_end: end.clone(),
                    limit: i64::from(page_size.max(1)),
                    revision: listing.revision,
                    ..RangeRequest::default()
                })
                .await?;
            let revision = r.header.map_or(0, |h| h.revision);
            if listing.revision == 0 {
                listing.revision = revision;
            }
            let Some(last) = r.kvs.last() else {
                if r.more {
                    return Err(Error::Malformed { op: "Range", what: "`more` with no keys" });
                }
                return Ok(listing);
            };
            if last.key < from {
                return Err(Error::Malformed { op: "Range", what: "keys out of order" });
            }
            // The next page starts just after the last key.
            from = last.key.clone();
            from.push(0);
            let more = r.more;
            listing.kvs.extend(r.kvs);
            if !more {
                return Ok(listing);
            }
        }
    }

    /// Puts one key (with `lease`, or 0 for none); returns the new revision.
    pub async fn put(
        &self,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
        lease: i64,
    ) -> Result<i64, Error> {
        let request =
            PutRequest { key: key.into(), value: value.into(), lease, ..PutRequest::default() };
        let r = self
            .unary("Put", request, |ch, r| async move { KvClient::new(ch).put(r).await })
            .await?;
        r.header.map(|h| h.revision).ok_or(Error::Malformed { op: "Put", what: "no header" })
    }

    /// Deletes one key; returns how many keys were deleted (0 or 1).
    pub async fn delete(&self, key: impl Into<Vec<u8>>) -> Result<i64, Error> {
        self.delete_range(key.into(), Vec::new()).await
    }

    /// Deletes every key starting with `prefix`; returns how many.
    pub async fn delete_prefix(&self, prefix: &[u8]) -> Result<i64, Error> {
        self.delete_range(prefix.to_vec(), prefix_end(prefix)).await
    }

    async fn delete_range(&self, key: Vec<u8>, range_end: Vec<u8>) -> Result<i64, Error> {
        let request = DeleteRangeRequest { key, range_end, prev_kv: false };
        let r = self
            .unary("DeleteRange", request, |ch, r| async move {
                KvClient::new(ch).delete_range(r).await
            })
            .await?;
        if r.header.is_none() {
            return Err(Error::Malformed { op: "DeleteRange", what: "no header" });
        }
        Ok(r.deleted)
    }

    /// Runs a transaction ([`txn`] builds its parts). The answer is checked
    /// to have a header and one response per operation of the branch taken.
    pub async fn txn(&self, request: TxnRequest) -> Result<TxnResponse, Error> {
        let (success, failure) = (request.success.len(), request.failure.len());
        let r = self
            .unary("Txn", request, |ch, r| async move { KvClient::new(ch).txn(r).await })
            .await?;
        if r.header.is_none() {
            return Err(Error::Malformed { op: "Txn", what: "no header" });
        }
        let expected = if r.succeeded { success } else { failure };
        if r.responses.len() != expected {
            return Err(Error::Malformed { op: "Txn", what: "wrong number of responses" });
        }
        if r.responses.iter().any(|op| op.response.is_none()) {
            return Err(Error::Malformed { op: "Txn", what: "empty response operation" });
        }
        Ok(r)
    }

    /// Compacts history up to `revision`.
    pub async fn compact(&self, revision: i64) -> Result<(), Error> {
        let request = CompactionRequest { revision, physical: true };
        self.unary("Compact", request, |ch, r| async move { KvClient::new(ch).compact(r).await })
            .await?;
        Ok(())
    }

    /// Grants a lease of `ttl` seconds.
    pub async fn lease_grant(&self, ttl: i64) -> Result<Lease, Error> {
        let r = self
            .unary("LeaseGrant", LeaseGrantRequest { ttl, id: 0 }, |ch, r| async move {
                LeaseClient::new(ch).lease_grant(r).await
            })
            .await?;
        if !r.error.is_empty() {
            return Err(Error::Refused { op: "LeaseGrant", message: r.error });
        }
        if r.id == 0 || r.ttl <= 0 {
            return Err(Error::Malformed { op: "LeaseGrant", what: "no lease id or ttl" });
        }
        Ok(Lease { id: r.id, ttl: r.ttl })
    }

    /// Revokes a lease (its keys are deleted). A lease that is already gone
    /// is [`Error::LeaseExpired`].
    pub async fn lease_revoke(&self, id: i64) -> Result<(), Error> {
        match self
            .unary("LeaseRevoke", LeaseRevokeRequest { id }, |ch, r| async move {
                LeaseClient::new(ch).lease_revoke(r).await
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(Error::Rpc { status, .. }) if status.code() == tonic::Code::NotFound => {
                Err(Error::LeaseExpired { id })
            }
            Err(e) => Err(e),
        }
    }

    /// The remaining TTL of a lease in seconds, or `None` if it is gone.
    pub async fn lease_time_to_live(&self, id: i64) -> Result<Option<i64>, Error> {
        let request = LeaseTimeToLiveRequest { id, keys: false };
        let r = self
            .unary("LeaseTimeToLive", request, |ch, r| async move {
                LeaseClient::new(ch).lease_time_to_live(r).await
            })
            .await;
        match r {
            Ok(r) if r.ttl < 0 => Ok(None),
            Ok(r) => Ok(Some(r.ttl)),
            Err(Error::Rpc { status, .. }) if status.code() == tonic::Code::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Opens a keep-alive stream for lease `id`, refreshing the lease once
    /// (etcd answers a stream only once it has a request).
    pub async fn lease_keep_alive(&self, id: i64) -> Result<KeepAlive, Error> {
        self.with_token(|ticket| self.open_keep_alive(id, ticket)).await
    }

    async fn open_keep_alive(&self, id: i64, ticket: Ticket) -> Result<KeepAlive, Error> {
        let op = "LeaseKeepAlive";
        let mut c = LeaseClient::new(self.channel.clone());
        // One request in flight at a time; 4 is slack, not a queue.
        let (tx, rx) = mpsc::channel(4);
        tx.try_send(LeaseKeepAliveRequest { id }).map_err(|_| Error::StreamClosed { op })?;
        let timeout = self.config.request_timeout;
        let call = c.lease_keep_alive(authorized(ReceiverStream::new(rx), &ticket));
        let responses = match tokio::time::timeout(timeout, call).await {
            Ok(r) => r.map_err(rpc(op))?.into_inner(),
            Err(_) => return Err(Error::Timeout { op, timeout }),
        };
        let mut keep_alive = KeepAlive {
            client: self.clone(),
            generation: ticket.generation,
            id,
            tx,
            responses,
            timeout,
            ttl: 0,
        };
        keep_alive.ttl = keep_alive.receive().await?;
        Ok(keep_alive)
    }

    /// Opens a watch. `create` says what to watch (use [`watch_prefix`] for
    /// a prefix); the call returns once etcd confirmed the watch.
    pub async fn watch(&self, create: WatchCreateRequest) -> Result<WatchStream, Error> {
        self.with_token(|ticket| self.open_watch(create.clone(), ticket)).await
    }

    async fn open_watch(
        &self,
        create: WatchCreateRequest,
        ticket: Ticket,
    ) -> Result<WatchStream, Error> {
        let mut c = WatchClient::new(self.channel.clone());
        // The request side carries only the create (and a cancel): 4 is slack.
        let (tx, rx) = mpsc::channel(4);
        let start = create.start_revision;
        let request = WatchRequest {
            request_union: Some(watch_request::RequestUnion::CreateRequest(create.clone())),
        };
        tx.try_send(request).map_err(|_| Error::StreamClosed { op: "Watch" })?;
        let timeout = self.config.request_timeout;
        let call = c.watch(authorized(ReceiverStream::new(rx), &ticket));
        let mut responses = match tokio::time::timeout(timeout, call).await {
            Ok(r) => r.map_err(rpc("Watch"))?.into_inner(),
            Err(_) => return Err(Error::Timeout { op: "Watch", timeout }),
        };
        let first = match tokio::time::timeout(timeout, responses.message()).await {
            Ok(r) => r.map_err(rpc("Watch"))?.ok_or(Error::StreamClosed { op: "Watch" })?,
            Err(_) => return Err(Error::Timeout { op: "Watch", timeout }),
        };
        if first.canceled {
            return Err(canceled(&first, start));
        }
        if !first.created {
            return Err(Error::Malformed { op: "Watch", what: "first answer is not `created`" });
        }
        // "From now" is from just after the revision etcd created it at.
        let next_revision = match (start, &first.header) {
            (0, Some(h)) => h.revision + 1,
            _ => start,
        };
        let mut stream = WatchStream {
            _requests: tx,
            responses,
            watch_id: first.watch_id,
            start,
            pending: None,
            client: self.clone(),
            create,
            generation: ticket.generation,
            next_revision,
            reopened: false,
        };
        // etcd may put events in the `created` answer too (it does not today).
        if !first.events.is_empty() {
            stream.pending = Some(first);
        }
        Ok(stream)
    }
}

/// `message` as a request carrying the ticket's token (if any).
fn authorized<T>(message: T, ticket: &Ticket) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = &ticket.token {
        request.metadata_mut().insert(auth::TOKEN_KEY, token.clone());
    }
    request
}

/// A watch request for every key under `prefix`, from `start_revision`
/// (inclusive; 0 means "from now").
pub fn watch_prefix(prefix: &[u8], start_revision: i64) -> WatchCreateRequest {
    WatchCreateRequest {
        key: prefix.to_vec(),
        range_end: prefix_end(prefix),
        start_revision,
        ..WatchCreateRequest::default()
    }
}

/// A watch request for one key, from `start_revision` (0: from now).
pub fn watch_key(key: &[u8], start_revision: i64) -> WatchCreateRequest {
    WatchCreateRequest { key: key.to_vec(), start_revision, ..WatchCreateRequest::default() }
}

fn canceled(r: &WatchResponse, start: i64) -> Error {
    if r.compact_revision > 0 {
        Error::Compacted { revision: start, compact_revision: r.compact_revision }
    } else {
        Error::WatchCanceled { reason: r.cancel_reason.clone() }
    }
}

/// The keep-alive stream of one lease. When etcd refuses its token, it logs
/// in again and re-opens the stream.
#[derive(Debug)]
pub struct KeepAlive {
    client: Client,
    /// The generation of the token the stream was opened with.
    generation: u64,
    id: i64,
    tx: mpsc::Sender<LeaseKeepAliveRequest>,
    responses: tonic::Streaming<LeaseKeepAliveResponse>,
    timeout: Duration,
    ttl: i64,
}

impl KeepAlive {
    /// The lease.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The TTL etcd set at the last refresh, in seconds.
    pub fn ttl(&self) -> i64 {
        self.ttl
    }

    /// Refreshes the lease once; returns its new TTL in seconds.
    /// [`Error::LeaseExpired`] when the lease is gone.
    pub async fn keep_alive(&mut self) -> Result<i64, Error> {
        match self.refresh().await {
            Err(e) if auth::rejects_token(&e) && self.client.session.is_some() => {
                tracing::debug!(error = %e, "etcd refused the auth token of a keep-alive stream.");
                let client = self.client.clone();
                let ticket = client.renew(self.generation).await?;
                // Opening refreshes the lease once.
                *self = client.open_keep_alive(self.id, ticket).await?;
                Ok(self.ttl)
            }
            r => r,
        }
    }

    async fn refresh(&mut self) -> Result<i64, Error> {
        self.tx
            .send(LeaseKeepAliveRequest { id: self.id })
            .await
            .map_err(|_| Error::StreamClosed { op: "LeaseKeepAlive" })?;
        self.ttl = self.receive().await?;
        Ok(self.ttl)
    }

    async fn receive(&mut self) -> Result<i64, Error> {
        let op = "LeaseKeepAlive";
        let response = match tokio::time::timeout(self.timeout, self.responses.message()).await {
            Ok(r) => r.map_err(rpc(op))?.ok_or(Error::StreamClosed { op })?,
            Err(_) => return Err(Error::Timeout { op, timeout: self.timeout }),
        };
        if response.id != self.id {
            return Err(Error::Malformed { op, what: "answer for another lease" });
        }
        if response.ttl <= 0 {
            return Err(Error::LeaseExpired { id: self.id });
        }
        Ok(response.ttl)
    }
}

/// What one watch answer brought.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchBatch {
    /// The store revision the answer was sent at (with no events: a progress
    /// notification; every later event has a higher revision).
    pub revision: i64,
    /// Events, in revision order.
    pub events: Vec<Event>,
}

/// An open watch. When etcd refuses its token, it logs in again and
/// re-opens the watch just after the last event it delivered.
#[derive(Debug)]
pub struct WatchStream {
    /// Kept open: closing the request side would end the watch.
    _requests: mpsc::Sender<WatchRequest>,
    responses: tonic::Streaming<WatchResponse>,
    watch_id: i64,
    start: i64,
    pending: Option<WatchResponse>,
    client: Client,
    /// What was asked, to re-open.
    create: WatchCreateRequest,
    /// The generation of the token the stream was opened with.
    generation: u64,
    /// Where a re-opened watch starts: just after the last delivered event.
    next_revision: i64,
    /// Re-opened and nothing delivered since: a second refusal is an error.
    reopened: bool,
}

impl WatchStream {
    /// etcd's id for this watch.
    pub fn watch_id(&self) -> i64 {
        self.watch_id
    }

    /// The next answer. A watch never ends by itself: a closed stream is
    /// [`Error::StreamClosed`], a canceled one [`Error::Compacted`] or
    /// [`Error::WatchCanceled`].
    pub async fn next(&mut self) -> Result<WatchBatch, Error> {
        loop {
            match self.receive().await {
                Ok(batch) => {
                    self.reopened = false;
                    if let Some(kv) = batch.events.last().and_then(|e| e.kv.as_ref()) {
                        self.next_revision = kv.mod_revision + 1;
                    }
                    return Ok(batch);
                }
                Err(e)
                    if !self.reopened
                        && self.client.session.is_some()
                        && auth::rejects_token(&e) =>
                {
                    tracing::debug!(error = %e, "etcd refused the auth token of a watch.");
                    let client = self.client.clone();
                    let ticket = client.renew(self.generation).await?;
                    let create = WatchCreateRequest {
                        start_revision: self.next_revision,
                        ..self.create.clone()
                    };
                    let mut stream = client.open_watch(create, ticket).await?;
                    stream.create = self.create.clone();
                    stream.reopened = true;
                    *self = stream;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn receive(&mut self) -> Result<WatchBatch, Error> {
        loop {
            let r = match self.pending.take() {
                Some(r) => r,
                None => self
                    .responses
                    .message()
                    .await
                    .map_err(rpc("Watch"))?
                    .ok_or(Error::StreamClosed { op: "Watch" })?,
            };
            if r.watch_id != self.watch_id {
                // Only one watch per stream: anything else is noise.
                continue;
            }
            if r.canceled {
                return Err(canceled(&r, self.start));
            }
            let Some(header) = r.header else {
                return Err(Error::Malformed { op: "Watch", what: "no header" });
            };
            if r.events.iter().any(|e| e.kv.is_none()) {
                return Err(Error::Malformed { op: "Watch", what: "event without a key" });
            }
            return Ok(WatchBatch { revision: header.revision, events: r.events });
        }
    }
}

#[cfg(test)]
mod tests;
