//! HTTP plumbing shared by the scheduler and executor drivers: one POST of a
//! call, and a streamed SUBSCRIBE whose RecordIO body is decoded record by
//! record.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mesos_wire::recordio::Decoder;
use mesos_wire::{ContentType, Endpoint, STREAM_ID_HEADER};
use tokio::sync::mpsc;

use crate::auth::Authorization;

/// How long the body of an error answer to SUBSCRIBE is waited for.
const ERROR_BODY_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub(crate) fn client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

/// Why a call did not reach Mesos.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// There is no subscription to send the call on.
    #[error("not subscribed")]
    NotSubscribed,
    /// Mesos answered with an error status.
    #[error("Mesos answered HTTP {status}: {body}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The response body (Mesos puts the reason there).
        body: String,
    },
    /// The request could not be sent or answered.
    #[error("request failed")]
    Http(#[source] hyper_util::client::legacy::Error),
    /// The request or response timed out.
    #[error("request timed out")]
    Timeout,
    /// The driver is gone (shutting down).
    #[error("the Mesos driver has stopped")]
    Stopped,
    /// The request could not be built (invalid header value or URL).
    #[error("invalid request")]
    Request(#[source] http::Error),
}

/// The answer to a call: the status and the `Location` header.
#[derive(Debug, Clone)]
pub(crate) struct CallOutcome {
    pub(crate) status: u16,
    pub(crate) location: Option<String>,
    pub(crate) body: String,
}

pub(crate) fn request(
    endpoint: &Endpoint,
    content_type: ContentType,
    body: Vec<u8>,
    stream_id: Option<&str>,
    authorization: Option<&Authorization>,
) -> Result<http::Request<Full<Bytes>>, CallError> {
    let mut builder = http::Request::post(endpoint.url())
        .header(http::header::CONTENT_TYPE, content_type.mime())
        .header(http::header::ACCEPT, content_type.mime());
    if let Some(id) = stream_id {
        builder = builder.header(STREAM_ID_HEADER, id);
    }
    if let Some(auth) = authorization {
        builder = builder.header(http::header::AUTHORIZATION, auth.header_value().clone());
    }
    builder.body(Full::new(Bytes::from(body))).map_err(CallError::Request)
}

/// POSTs one call and reads the (small) answer.
pub(crate) async fn post(
    client: &HttpClient,
    req: http::Request<Full<Bytes>>,
    timeout: Duration,
) -> Result<CallOutcome, CallError> {
    let fut = async {
        let resp = client.request(req).await.map_err(CallError::Http)?;
        let status = resp.status().as_u16();
        let location = header(&resp, http::header::LOCATION.as_str());
        let body = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let body = String::from_utf8_lossy(&body[..body.len().min(4096)]).into_owned();
        Ok(CallOutcome { status, location, body })
    };
    tokio::time::timeout(timeout, fut).await.map_err(|_| CallError::Timeout)?
}

pub(crate) fn header(resp: &http::Response<Incoming>, name: &str) -> Option<String> {
    resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// What a subscription stream reports to its driver.
#[derive(Debug)]
pub(crate) enum StreamMsg {
    /// The response head; an error answer (neither `200` nor `307`) comes
    /// with the start of its body, where Mesos puts the reason.
    Head {
        conn: u64,
        status: u16,
        location: Option<String>,
        stream_id: Option<String>,
        body: Option<String>,
    },
    /// One complete record.
    Record { conn: u64, bytes: Bytes },
    /// The stream ended (cleanly or not).
    End { conn: u64, reason: String },
}

/// Opens a subscription stream and forwards its head and records until it
/// ends, the driver goes away, or the task is aborted.
pub(crate) async fn run_stream(
    client: HttpClient,
    conn: u64,
    req: http::Request<Full<Bytes>>,
    max_record_len: usize,
    tx: mpsc::Sender<StreamMsg>,
) {
    let reason = match stream_inner(&client, conn, req, max_record_len, &tx).await {
        Ok(()) => "closed by Mesos".to_owned(),
        Err(e) => e,
    };
    let _ = tx.send(StreamMsg::End { conn, reason }).await;
}

async fn stream_inner(
    client: &HttpClient,
    conn: u64,
    req: http::Request<Full<Bytes>>,
    max_record_len: usize,
    tx: &mpsc::Sender<StreamMsg>,
) -> Result<(), String> {
    let resp = client.request(req).await.map_err(|e| format!("connect failed: {e}"))?;
    let status = resp.status().as_u16();
    let location = header(&resp, http::header::LOCATION.as_str());
    let stream_id = header(&resp, STREAM_ID_HEADER);
    if status != 200 {
        let text = if status == 307 {
            String::new()
        } else {
            // Error answers are short and complete; a bounded wait keeps a
            // misbehaving server from stalling the report.
            let read = tokio::time::timeout(ERROR_BODY_TIMEOUT, resp.into_body().collect());
            let body = match read.await {
                Ok(Ok(b)) => b.to_bytes(),
                _ => Bytes::new(),
            };
            String::from_utf8_lossy(&body[..body.len().min(512)]).trim().to_owned()
        };
        let body = (status != 307).then(|| text.clone());
        let head = StreamMsg::Head { conn, status, location, stream_id, body };
        tx.send(head).await.map_err(|_| "driver gone".to_owned())?;
        return Err(format!("HTTP {status}: {text}"));
    }
    let head = StreamMsg::Head { conn, status, location, stream_id, body: None };
    tx.send(head).await.map_err(|_| "driver gone".to_owned())?;
    let mut body = resp.into_body();
    let mut decoder = Decoder::new(max_record_len);
    let mut buf = BytesMut::new();
    loop {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                    loop {
                        match decoder.decode(&mut buf) {
                            Ok(Some(bytes)) => tx
                                .send(StreamMsg::Record { conn, bytes })
                                .await
                                .map_err(|_| "driver gone".to_owned())?,
                            Ok(None) => break,
                            Err(e) => return Err(format!("malformed RecordIO stream: {e}")),
                        }
                    }
                }
            }
            Some(Err(e)) => return Err(format!("read failed: {e}")),
            None => {
                return decoder.finish(&buf).map_err(|e| format!("malformed RecordIO stream: {e}"));
            }
        }
    }
}

/// Sleeps until `deadline` as measured by `clock` (never less than 1 ms,
/// never more than `cap`, so a clock change is noticed).
pub(crate) async fn sleep_until(
    clock: &dyn drover_time::Clock,
    deadline: drover_time::Timestamp,
    cap: Duration,
) {
    let wait = deadline.since(clock.now()).clamp(Duration::from_millis(1), cap);
    tokio::time::sleep(wait).await;
}
