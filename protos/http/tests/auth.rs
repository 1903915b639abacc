//! Both drivers against fake Mesos endpoints on 127.0.0.1 that require
//! credentials: a master that wants HTTP Basic on SUBSCRIBE and on every
//! call (answering 401 otherwise, as `--authenticate_http_frameworks`
//! does), and an agent that wants the executor's bearer token. The drivers'
//! logs are captured: a refusal is one clear error naming the principal, and
//! no line ever holds the secret. Also: a RecordIO record over the driver's
//! `max_record_len` ends the subscription with one warning, never a hang.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use drover_protos::mesos::v1 as mesos;
use drover_protos::mesos::v1::{executor, scheduler};
use drover_time::{Clock, SystemClock};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper_util::rt::TokioIo;
use mesos_http::Authorization;
use mesos_http::executor::{ExecutorClientConfig, ExecutorInput};
use mesos_http::scheduler::{SchedulerConfig, SchedulerInput};
use mesos_wire::executor::ExecutorConfig;
use mesos_wire::scheduler::{SCHEDULER_PATH, SubscriptionConfig, calls};
use mesos_wire::{ContentType, Endpoint, recordio};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::timeout;

const SECRET: &str = "s3cret-XYZ";
/// `base64("drover:s3cret-XYZ")`.
const BASIC: &str = "Basic ZHJvdmVyOnMzY3JldC1YWVo=";
const TOKEN: &str = "executor-token-42";
const WAIT: Duration = Duration::from_secs(10);

/// A never-ending response body fed by a channel (the event stream).
struct StreamBody(mpsc::UnboundedReceiver<Bytes>);

impl Body for StreamBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}

/// What the fake endpoint saw: each request's call type and `Authorization`.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A fake Mesos endpoint at `path` that requires `Authorization: want` and
/// answers SUBSCRIBE with a stream holding `first_event`, other calls 202.
async fn fake(path: &'static str, want: &'static str, first_event: Vec<u8>) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}{path}", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let senders: Arc<Mutex<Vec<mpsc::UnboundedSender<Bytes>>>> = Arc::default();
    let record = Bytes::from(recordio::encode(&first_event));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (seen, senders, record) = (log.clone(), senders.clone(), record.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                    let (seen, senders, record) = (seen.clone(), senders.clone(), record.clone());
                    async move {
                        let auth = req
                            .headers()
                            .get(http::header::AUTHORIZATION)
                            .map(|v| v.to_str().unwrap_or("").to_owned());
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let call: serde_json::Value =
                            serde_json::from_slice(&body).unwrap_or_default();
                        let kind = call["type"].as_str().unwrap_or("").to_owned();
                        seen.lock().unwrap().push((kind.clone(), auth.clone()));
                        let reply = |status: u16, text: &'static str| {
                            let mut r = hyper::Response::new(
                                Full::new(Bytes::from_static(text.as_bytes()))
                                    .map_err(|e| match e {})
                                    .boxed(),
                            );
                            *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
                            r
                        };
                        if auth.as_deref() != Some(want) {
                            let mut r = reply(401, "Unauthorized");
                            r.headers_mut().insert(
                                http::header::WWW_AUTHENTICATE,
                                http::HeaderValue::from_static("Basic realm=\"mesos\""),
                            );
                            return Ok::<_, Infallible>(r);
                        }
                        if kind != "SUBSCRIBE" {
                            return Ok(reply(202, ""));
                        }
                        let (tx, rx) = mpsc::unbounded_channel();
                        tx.send(record).unwrap();
                        senders.lock().unwrap().push(tx);
                        let body: BoxBody<Bytes, Infallible> = StreamBody(rx).boxed();
                        let mut r = hyper::Response::new(body);
                        r.headers_mut().insert(
                            http::header::CONTENT_TYPE,
                            http::HeaderValue::from_static("application/json"),
                        );
                        r.headers_mut()
                            .insert("Mesos-Stream-Id", http::HeaderValue::from_static("stream-1"));
                        Ok(r)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    (url, seen)
}

/// Captures every log line the drivers write (this test's thread only: a
/// current-thread runtime polls the drivers here).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn subscribed_event() -> Vec<u8> {
    let mut e = scheduler::Event::default();
    e.set_type(scheduler::event::Type::Subscribed);
    e.subscribed = Some(scheduler::event::Subscribed {
        framework_id: mesos::FrameworkId { value: "fw-1".into() },
        heartbeat_interval_seconds: Some(15.0),
        ..Default::default()
    });
    ContentType::Json.encode(&e)
}

fn scheduler_config(url: &str, authorization: Option<Authorization>) -> SchedulerConfig {
    SchedulerConfig {
        master: Endpoint::parse(url, SCHEDULER_PATH).unwrap(),
        framework_info: mesos::FrameworkInfo {
            user: "root".into(),
            name: "drover".into(),
            principal: Some("drover".into()),
            ..Default::default()
        },
        framework_id: None,
        subscription: SubscriptionConfig {
            content_type: ContentType::Json,
            backoff_initial: Duration::from_millis(20),
            backoff_max: Duration::from_millis(80),
            ..SubscriptionConfig::default()
        },
        max_record_len: 1 << 20,
        call_timeout: Duration::from_secs(5),
        authorization,
        seed: 7,
    }
}

#[tokio::test]
async fn the_framework_sends_its_basic_credentials_on_subscribe_and_on_every_call() {
    let (logs, _guard) = Logs::capture();
    let (url, seen) = fake(SCHEDULER_PATH, BASIC, subscribed_event()).await;
    let auth = Authorization::basic("drover", SECRET).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (handle, mut rx, task) =
        mesos_http::scheduler::spawn(scheduler_config(&url, Some(auth)), clock);
    let first = timeout(WAIT, rx.recv()).await.expect("no input").expect("driver gone");
    assert!(matches!(first, SchedulerInput::Event(_)), "{first:?}");
    let second = timeout(WAIT, rx.recv()).await.expect("no input").expect("driver gone");
    assert_eq!(
        second,
        SchedulerInput::Subscribed { framework_id: "fw-1".into(), resubscribed: false }
    );
    handle.call(calls::revive("fw-1", &[])).await.expect("REVIVE accepted");
    handle.call(calls::reconcile("fw-1", &[])).await.expect("RECONCILE accepted");
    let seen = seen.lock().unwrap().clone();
    let kinds: Vec<&str> = seen.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["SUBSCRIBE", "REVIVE", "RECONCILE"]);
    assert!(seen.iter().all(|(_, a)| a.as_deref() == Some(BASIC)), "{seen:?}");
    task.abort();
    let text = logs.text();
    assert!(text.contains("Subscribed to Mesos."), "{text}");
    assert!(!text.contains(SECRET) && !text.contains(&BASIC[6..]), "{text}");
}

#[tokio::test]
async fn a_refused_secret_is_one_clear_error_naming_the_principal_then_backoff() {
    let (logs, _guard) = Logs::capture();
    let (url, seen) = fake(SCHEDULER_PATH, BASIC, subscribed_event()).await;
    let wrong = Authorization::basic("drover", "not-the-s3cret").unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (_handle, mut rx, task) =
        mesos_http::scheduler::spawn(scheduler_config(&url, Some(wrong)), clock);
    // Backoff 20 ms doubling to 80 ms: a handful of attempts in a second,
    // not a storm, and none of them subscribes.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(rx.try_recv().is_err(), "the driver must not report a subscription");
    let attempts = seen.lock().unwrap().len();
    assert!((3..=30).contains(&attempts), "{attempts} attempts");
    task.abort();
    let text = logs.text();
    let errors: Vec<&str> = text.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "one error for {attempts} identical refusals:\n{text}");
    assert!(
        errors[0].contains("refused the framework's credentials")
            && errors[0].contains("principal=drover")
            && errors[0].contains("status=401"),
        "{text}"
    );
    assert!(!text.contains("not-the-s3cret") && !text.contains("Basic "), "{text}");
    let infos = text.lines().filter(|l| l.contains("Subscribing to the Mesos master.")).count();
    assert_eq!(infos, 1, "retries are logged at debug level only:\n{text}");
}

#[tokio::test]
async fn without_credentials_a_401_says_that_the_framework_has_none() {
    let (logs, _guard) = Logs::capture();
    let (url, _seen) = fake(SCHEDULER_PATH, BASIC, subscribed_event()).await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (_handle, _rx, task) = mesos_http::scheduler::spawn(scheduler_config(&url, None), clock);
    tokio::time::sleep(Duration::from_millis(300)).await;
    task.abort();
    let text = logs.text();
    assert!(text.contains("requires the framework to authenticate"), "{text}");
}

#[tokio::test]
async fn the_executor_sends_its_bearer_token_on_subscribe_and_updates() {
    let (logs, _guard) = Logs::capture();
    let mut e = executor::Event::default();
    e.set_type(executor::event::Type::Subscribed);
    e.subscribed = Some(executor::event::Subscribed {
        executor_info: mesos::ExecutorInfo {
            executor_id: mesos::ExecutorId { value: "ex-1".into() },
            ..Default::default()
        },
        framework_info: mesos::FrameworkInfo {
            user: "root".into(),
            name: "drover".into(),
            ..Default::default()
        },
        agent_info: mesos::AgentInfo { hostname: "h".into(), ..Default::default() },
        container_id: None,
    });
    const PATH: &str = "/slave(1)/api/v1/executor";
    let (url, seen) = fake(PATH, "Bearer executor-token-42", ContentType::Json.encode(&e)).await;
    let config = ExecutorClientConfig {
        agent: Endpoint::parse(&url, PATH).unwrap(),
        session: ExecutorConfig {
            framework_id: "fw-1".into(),
            executor_id: "ex-1".into(),
            checkpoint: false,
            recovery_timeout: Duration::from_secs(5),
            backoff_max: Duration::from_millis(100),
            connect_timeout: Duration::from_secs(5),
        },
        content_type: ContentType::Json,
        max_record_len: 1 << 20,
        call_timeout: Duration::from_secs(5),
        authorization: Some(Authorization::bearer(TOKEN).unwrap()),
        seed: 3,
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (handle, mut rx, task) = mesos_http::executor::spawn(config, clock);
    let first = timeout(WAIT, rx.recv()).await.expect("no event").expect("driver gone");
    assert!(matches!(first, ExecutorInput::Event(_)), "{first:?}");
    let mut status =
        mesos::TaskStatus { task_id: mesos::TaskId { value: "t-1".into() }, ..Default::default() };
    status.set_state(mesos::TaskState::TaskRunning);
    assert!(handle.send_update(status).await);
    let updated = async {
        while !seen.lock().unwrap().iter().any(|(k, _)| k == "UPDATE") {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    timeout(WAIT, updated).await.expect("no UPDATE");
    task.abort();
    let seen = seen.lock().unwrap().clone();
    assert!(seen.iter().all(|(_, a)| a.as_deref() == Some("Bearer executor-token-42")), "{seen:?}");
    let text = logs.text();
    assert!(!text.contains(TOKEN), "{text}");
}

#[tokio::test]
async fn an_executor_without_the_token_is_refused_by_such_an_agent() {
    const PATH: &str = "/slave(1)/api/v1/executor";
    let (url, seen) = fake(PATH, "Bearer executor-token-42", Vec::new()).await;
    let config = ExecutorClientConfig {
        agent: Endpoint::parse(&url, PATH).unwrap(),
        session: ExecutorConfig {
            framework_id: "fw-1".into(),
            executor_id: "ex-1".into(),
            checkpoint: false,
            recovery_timeout: Duration::from_millis(300),
            backoff_max: Duration::from_millis(50),
            connect_timeout: Duration::from_secs(5),
        },
        content_type: ContentType::Json,
        max_record_len: 1 << 20,
        call_timeout: Duration::from_secs(5),
        authorization: None,
        seed: 3,
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (_handle, mut rx, _task) = mesos_http::executor::spawn(config, clock);
    let gave_up = timeout(WAIT, rx.recv()).await.expect("no input").expect("driver gone");
    assert!(matches!(gave_up, ExecutorInput::GaveUp { .. }), "{gave_up:?}");
    let seen = seen.lock().unwrap().clone();
    assert!(!seen.is_empty() && seen.iter().all(|(k, a)| k == "SUBSCRIBE" && a.is_none()));
}

/// A record longer than `max_record_len` ends the subscription with an
/// error at once (the stream stays open on the master's side, so waiting
/// for the record would hang) and the driver subscribes again.
#[tokio::test]
async fn an_oversize_record_ends_the_subscription_and_the_driver_subscribes_again() {
    let (logs, _guard) = Logs::capture();
    let event = subscribed_event();
    let (url, seen) = fake(SCHEDULER_PATH, BASIC, event.clone()).await;
    let auth = Authorization::basic("drover", SECRET).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let config =
        SchedulerConfig { max_record_len: event.len() - 1, ..scheduler_config(&url, Some(auth)) };
    let (_handle, mut rx, task) = mesos_http::scheduler::spawn(config, clock);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    while let Ok(input) = rx.try_recv() {
        assert!(!matches!(input, SchedulerInput::Subscribed { .. }), "{input:?}");
    }
    let attempts = seen.lock().unwrap().iter().filter(|(k, _)| k == "SUBSCRIBE").count();
    assert!(attempts >= 2, "the driver must subscribe again, not wait: {attempts} attempts");
    task.abort();
    let text = logs.text();
    let max = event.len() - 1;
    let warnings: Vec<&str> =
        text.lines().filter(|l| l.contains("The Mesos subscription ended")).collect();
    assert_eq!(warnings.len(), 1, "one warning for {attempts} identical failures:\n{text}");
    let reason = format!("record length {} exceeds the maximum of {max} bytes", event.len());
    assert!(warnings[0].contains(&reason), "{text}");
}
