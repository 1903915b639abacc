//! The fake agent both daemon test binaries drive the real `drover-executor`
//! with.
//!
//! The fake agent serves `POST /slave(1)/api/v1/executor` in JSON: it
//! answers SUBSCRIBE with `200`, a `Mesos-Stream-Id` and a RecordIO event
//! stream, answers every UPDATE with `202` and ACKNOWLEDGEs it on the
//! stream. Every scenario has its own framework id, so scenarios that run
//! at once never see each other's containers. When the executor is given
//! `MESOS_EXECUTOR_AUTHENTICATION_TOKEN`, the fake agent requires
//! `Authorization: Bearer <token>` on every request and answers `401`
//! without it, as an agent with `--authenticate_http_executors` does; it
//! records every request's `Authorization` header either way.

#![allow(dead_code, reason = "each test binary uses a part of the harness")]

use std::convert::Infallible;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use drover_executor::task_info::encode_task_data;
use drover_protos::mesos::v1 as mesos;
use drover_protos::mesos::v1::executor::{Call, Event, call, event};
use exec_core::{Command, TaskSpec};
use exec_runtime::procs::live_with_env;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper_util::rt::TokioIo;
use mesos_wire::{ContentType, recordio};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::timeout;

pub(crate) const PATH: &str = "/slave(1)/api/v1/executor";
pub(crate) const WAIT: Duration = Duration::from_secs(15);

/// A response body fed by a channel: the never-ending event stream.
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

type Stream = Arc<Mutex<Option<mpsc::UnboundedSender<Bytes>>>>;

/// The `Authorization` header of every request the fake agent got.
pub(crate) type Seen = Arc<Mutex<Vec<Option<String>>>>;

async fn handle(
    req: hyper::Request<Incoming>,
    calls: mpsc::UnboundedSender<Call>,
    stream: Stream,
    required: Option<String>,
    seen: Seen,
) -> Result<hyper::Response<BoxBody<Bytes, Infallible>>, Infallible> {
    let reply = |status: u16| {
        let mut resp = hyper::Response::new(Empty::new().boxed());
        *resp.status_mut() =
            http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        Ok(resp)
    };
    if req.method() != http::Method::POST || req.uri().path() != PATH {
        return reply(404);
    }
    let auth = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("<not text>").to_owned());
    seen.lock().unwrap().push(auth.clone());
    if let Some(token) = &required
        && auth != Some(format!("Bearer {token}"))
    {
        return reply(401);
    }
    let ct = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(ContentType::from_mime);
    if ct != Some(ContentType::Json) {
        return reply(415);
    }
    let Ok(body) = req.into_body().collect().await else { return reply(400) };
    let Ok(call) = ContentType::Json.decode::<Call>(&body.to_bytes()) else {
        let mut resp = hyper::Response::new(Full::new(Bytes::from("bad call")).boxed());
        *resp.status_mut() = http::StatusCode::BAD_REQUEST;
        return Ok(resp);
    };
    let subscribe = call.r#type() == call::Type::Subscribe;
    let _ = calls.send(call);
    if !subscribe {
        return reply(202);
    }
    let (tx, rx) = mpsc::unbounded_channel();
    *stream.lock().unwrap() = Some(tx);
    let mut resp = hyper::Response::new(StreamBody(rx).boxed());
    resp.headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    resp.headers_mut().insert("Mesos-Stream-Id", http::HeaderValue::from_static("7c8a0d6e-stream"));
    Ok(resp)
}

/// The fake agent plus the executor process it serves.
pub(crate) struct Scenario {
    calls: mpsc::UnboundedReceiver<Call>,
    stream: Stream,
    pub(crate) executor: tokio::process::Child,
    dir: tempfile::TempDir,
    pub(crate) marker: String,
    /// This scenario's `MESOS_FRAMEWORK_ID`.
    pub(crate) framework_id: String,
    /// This scenario's `MESOS_EXECUTOR_ID`.
    pub(crate) executor_id: String,
    /// The `Authorization` header of every request, in order.
    pub(crate) authorizations: Seen,
}

/// The environment variable that marks a scenario's processes.
pub(crate) fn marker_pair(marker: &str) -> (String, String) {
    ("DROVER_TEST_MARKER".to_owned(), marker.to_owned())
}

pub(crate) fn marker_entry(marker: &str) -> String {
    format!("DROVER_TEST_MARKER={marker}")
}

impl Scenario {
    pub(crate) async fn start(shutdown_grace: &str) -> Scenario {
        Scenario::start_with(shutdown_grace, &[]).await
    }

    /// Starts the fake agent and the executor, with `env` added to the
    /// executor's environment (it may set `MESOS_FRAMEWORK_ID` and
    /// `MESOS_EXECUTOR_ID`; by default each scenario has its own framework).
    pub(crate) async fn start_with(shutdown_grace: &str, env: &[(&str, &str)]) -> Scenario {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (calls_tx, calls) = mpsc::unbounded_channel();
        let stream: Stream = Arc::default();
        let shared = stream.clone();
        let required = env
            .iter()
            .find(|(k, _)| *k == "MESOS_EXECUTOR_AUTHENTICATION_TOKEN")
            .map(|(_, v)| (*v).to_owned());
        let authorizations: Seen = Arc::default();
        let seen = authorizations.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (calls, stream) = (calls_tx.clone(), shared.clone());
                let (required, seen) = (required.clone(), seen.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        handle(req, calls.clone(), stream.clone(), required.clone(), seen.clone())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let sandbox = dir.path().join("sandbox");
        std::fs::create_dir(&sandbox).unwrap();
        let log = std::fs::File::create(dir.path().join("executor.log")).unwrap();
        let var = |name: &str| env.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned());
        let framework_id = var("MESOS_FRAMEWORK_ID")
            .unwrap_or_else(|| format!("fw-{}-{port}", std::process::id()));
        let executor_id = var("MESOS_EXECUTOR_ID").unwrap_or_else(|| "ex-1".to_owned());
        let executor = tokio::process::Command::new(env!("CARGO_BIN_EXE_drover-executor"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()))
            .envs(env.iter().copied())
            .env("MESOS_FRAMEWORK_ID", &framework_id)
            .env("MESOS_EXECUTOR_ID", &executor_id)
            .env("MESOS_SLAVE_ID", "agent-1")
            .env("MESOS_SLAVE_PID", format!("slave(1)@127.0.0.1:{port}"))
            .env("MESOS_AGENT_ENDPOINT", format!("127.0.0.1:{port}"))
            .env("MESOS_SANDBOX", &sandbox)
            .env("MESOS_DIRECTORY", &sandbox)
            .env("MESOS_CHECKPOINT", "0")
            .env("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", shutdown_grace)
            .env("DROVER_EXECUTOR_CONTENT_TYPE", "json")
            .env("DROVER_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let marker = format!("{}-{}", std::process::id(), port);
        Scenario { calls, stream, executor, dir, marker, framework_id, executor_id, authorizations }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("executor.log")).unwrap_or_default()
    }

    pub(crate) fn sandbox(&self) -> PathBuf {
        self.dir.path().join("sandbox")
    }

    pub(crate) async fn next_call(&mut self) -> Call {
        match timeout(WAIT, self.calls.recv()).await {
            Ok(Some(call)) => call,
            _ => panic!("no call from the executor\n{}", self.log()),
        }
    }

    pub(crate) fn send(&self, event: Event) {
        let record = recordio::encode(&ContentType::Json.encode(&event));
        let guard = self.stream.lock().unwrap();
        guard.as_ref().expect("not subscribed").send(Bytes::from(record)).unwrap();
    }

    /// Waits for SUBSCRIBE and answers SUBSCRIBED.
    pub(crate) async fn subscribe(&mut self, task_killing_state: bool) {
        let call = self.next_call().await;
        assert_eq!(call.r#type(), call::Type::Subscribe, "{call:?}");
        assert_eq!(
            (call.framework_id.value.as_str(), call.executor_id.value.as_str()),
            (self.framework_id.as_str(), self.executor_id.as_str())
        );
        let mut framework_info = mesos::FrameworkInfo {
            user: "root".into(),
            name: "drover".into(),
            ..Default::default()
        };
        if task_killing_state {
            let mut cap = mesos::framework_info::Capability::default();
            cap.set_type(mesos::framework_info::capability::Type::TaskKillingState);
            framework_info.capabilities.push(cap);
        }
        let mut e = Event::default();
        e.set_type(event::Type::Subscribed);
        e.subscribed = Some(event::Subscribed {
            executor_info: mesos::ExecutorInfo {
                executor_id: mesos::ExecutorId { value: self.executor_id.clone() },
                ..Default::default()
            },
            framework_info,
            agent_info: mesos::AgentInfo {
                hostname: "127.0.0.1".into(),
                id: Some(mesos::AgentId { value: "agent-1".into() }),
                ..Default::default()
            },
            container_id: None,
        });
        self.send(e);
    }

    /// Launches a shell command carrying this scenario's marker.
    pub(crate) fn launch(&self, task_id: &str, command: &str, grace: Option<Duration>) {
        let env = [marker_pair(&self.marker)].into();
        self.launch_spec(&TaskSpec {
            env,
            kill_grace: grace,
            ..TaskSpec::new(task_id, Command::Shell(command.into()))
        });
    }

    /// Launches `spec`: its data, kill grace and limits (as `cpus` and
    /// `mem` resources) in a `TaskInfo`.
    pub(crate) fn launch_spec(&self, spec: &TaskSpec) {
        let scalar = |name: &str, value: f64| {
            let mut r = mesos::Resource {
                name: name.into(),
                scalar: Some(mesos::value::Scalar { value }),
                ..Default::default()
            };
            r.set_type(mesos::value::Type::Scalar);
            r
        };
        let mut resources = Vec::new();
        if let Some(nano) = spec.limits.nano_cpus {
            resources.push(scalar("cpus", nano as f64 / 1e9));
        }
        if let Some(bytes) = spec.limits.memory_bytes {
            resources.push(scalar("mem", bytes as f64 / 1_048_576.0));
        }
        let mut e = Event::default();
        e.set_type(event::Type::Launch);
        e.launch = Some(event::Launch {
            task: mesos::TaskInfo {
                name: spec.task_id.0.clone(),
                task_id: mesos::TaskId { value: spec.task_id.0.clone() },
                agent_id: mesos::AgentId { value: "agent-1".into() },
                resources,
                data: Some(encode_task_data(spec)),
                kill_policy: spec.kill_grace.map(|g| mesos::KillPolicy {
                    grace_period: Some(mesos::DurationInfo { nanoseconds: g.as_nanos() as i64 }),
                }),
                ..Default::default()
            },
        });
        self.send(e);
    }

    /// Sends KILL for `task_id` with a grace period.
    pub(crate) fn kill(&self, task_id: &str, grace: Duration) {
        let mut kill = self.simple(event::Type::Kill);
        kill.kill = Some(event::Kill {
            task_id: mesos::TaskId { value: task_id.into() },
            kill_policy: Some(mesos::KillPolicy {
                grace_period: Some(mesos::DurationInfo { nanoseconds: grace.as_nanos() as i64 }),
            }),
        });
        self.send(kill);
    }

    pub(crate) fn simple(&self, kind: event::Type) -> Event {
        let mut e = Event::default();
        e.set_type(kind);
        e
    }

    /// Waits for the next UPDATE, checks it, acknowledges it.
    pub(crate) async fn next_update(&mut self) -> mesos::TaskStatus {
        let call = self.next_call().await;
        assert_eq!(call.r#type(), call::Type::Update, "{call:?}");
        let status = call.update.expect("UPDATE without update").status;
        let uuid = status.uuid.clone().unwrap_or_default();
        assert!(
            uuid.len() == 16 && uuid[6] >> 4 == 4 && uuid[8] >> 6 == 0b10,
            "not an RFC 4122 version-4 UUID: {uuid:?}"
        );
        assert_eq!(status.source(), mesos::task_status::Source::Executor);
        assert!(status.timestamp.is_some());
        let mut ack = self.simple(event::Type::Acknowledged);
        ack.acknowledged = Some(event::Acknowledged { task_id: status.task_id.clone(), uuid });
        self.send(ack);
        status
    }

    pub(crate) async fn expect_update(
        &mut self,
        state: mesos::TaskState,
        message: Option<&str>,
    ) -> mesos::TaskStatus {
        let status = self.next_update().await;
        assert_eq!(
            (status.state(), status.message.as_deref()),
            (state, message),
            "unexpected update {status:?}\n{}",
            self.log()
        );
        status
    }

    /// Waits for the next update and checks its state only.
    pub(crate) async fn expect_update_state(
        &mut self,
        state: mesos::TaskState,
    ) -> mesos::TaskStatus {
        let status = self.next_update().await;
        assert_eq!(status.state(), state, "unexpected update {status:?}\n{}", self.log());
        status
    }

    pub(crate) async fn exit_code(&mut self) -> Option<i32> {
        match timeout(WAIT, self.executor.wait()).await {
            Ok(Ok(status)) => status.code(),
            _ => panic!("the executor did not exit\n{}", self.log()),
        }
    }

    /// No process carrying this scenario's marker is alive.
    pub(crate) async fn assert_nothing_left(&self) {
        let entry = marker_entry(&self.marker);
        for _ in 0..300 {
            if live_with_env(&entry).is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("task processes outlived the executor: {:?}\n{}", live_with_env(&entry), self.log());
    }
}
