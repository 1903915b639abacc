//! The real `drover-executor` binary against a fake agent on 127.0.0.1.
//!
//! The fake agent serves `POST /slave(1)/api/v1/executor` in JSON: it
//! answers SUBSCRIBE with `200`, a `Mesos-Stream-Id` and a RecordIO event
//! stream, answers every UPDATE with `202` and ACKNOWLEDGEs it on the
//! stream. Each scenario launches a task and checks the updates, the
//! executor's exit code, and that no task process outlives the executor.

use std::convert::Infallible;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use drover_executor::task_info::encode_command;
use drover_protos::mesos::v1 as mesos;
use drover_protos::mesos::v1::executor::{Call, Event, call, event};
use exec_core::Command;
use exec_runtime::procs::live_with_env;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper_util::rt::TokioIo;
use mesos_wire::{ContentType, recordio};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

const PATH: &str = "/slave(1)/api/v1/executor";
const WAIT: Duration = Duration::from_secs(15);

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

async fn handle(
    req: hyper::Request<Incoming>,
    calls: mpsc::UnboundedSender<Call>,
    stream: Stream,
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
struct Scenario {
    calls: mpsc::UnboundedReceiver<Call>,
    stream: Stream,
    executor: tokio::process::Child,
    dir: tempfile::TempDir,
    marker: String,
}

fn marker_entry(marker: &str) -> String {
    format!("DROVER_TEST_MARKER={marker}")
}

impl Scenario {
    async fn start(shutdown_grace: &str) -> Scenario {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (calls_tx, calls) = mpsc::unbounded_channel();
        let stream: Stream = Arc::default();
        let shared = stream.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (calls, stream) = (calls_tx.clone(), shared.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        handle(req, calls.clone(), stream.clone())
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
        let executor = tokio::process::Command::new(env!("CARGO_BIN_EXE_drover-executor"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()))
            .env("MESOS_FRAMEWORK_ID", "fw-1")
            .env("MESOS_EXECUTOR_ID", "ex-1")
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
        Scenario { calls, stream, executor, dir, marker }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("executor.log")).unwrap_or_default()
    }

    fn sandbox(&self) -> PathBuf {
        self.dir.path().join("sandbox")
    }

    async fn next_call(&mut self) -> Call {
        match timeout(WAIT, self.calls.recv()).await {
            Ok(Some(call)) => call,
            _ => panic!("no call from the executor\n{}", self.log()),
        }
    }

    fn send(&self, event: Event) {
        let record = recordio::encode(&ContentType::Json.encode(&event));
        let guard = self.stream.lock().unwrap();
        guard.as_ref().expect("not subscribed").send(Bytes::from(record)).unwrap();
    }

    /// Waits for SUBSCRIBE and answers SUBSCRIBED.
    async fn subscribe(&mut self, task_killing_state: bool) {
        let call = self.next_call().await;
        assert_eq!(call.r#type(), call::Type::Subscribe, "{call:?}");
        assert_eq!(
            (call.framework_id.value.as_str(), call.executor_id.value.as_str()),
            ("fw-1", "ex-1")
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
                executor_id: mesos::ExecutorId { value: "ex-1".into() },
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

    fn launch(&self, task_id: &str, command: &str, grace: Option<Duration>) {
        let env = [("DROVER_TEST_MARKER".to_owned(), self.marker.clone())].into();
        let mut e = Event::default();
        e.set_type(event::Type::Launch);
        e.launch = Some(event::Launch {
            task: mesos::TaskInfo {
                name: task_id.into(),
                task_id: mesos::TaskId { value: task_id.into() },
                agent_id: mesos::AgentId { value: "agent-1".into() },
                data: Some(encode_command(&Command::Shell(command.into()), &env)),
                kill_policy: grace.map(|g| mesos::KillPolicy {
                    grace_period: Some(mesos::DurationInfo { nanoseconds: g.as_nanos() as i64 }),
                }),
                ..Default::default()
            },
        });
        self.send(e);
    }

    fn simple(&self, kind: event::Type) -> Event {
        let mut e = Event::default();
        e.set_type(kind);
        e
    }

    /// Waits for the next UPDATE, checks it, acknowledges it.
    async fn next_update(&mut self) -> mesos::TaskStatus {
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

    async fn expect_update(
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

    async fn exit_code(&mut self) -> Option<i32> {
        match timeout(WAIT, self.executor.wait()).await {
            Ok(Ok(status)) => status.code(),
            _ => panic!("the executor did not exit\n{}", self.log()),
        }
    }

    /// No process carrying this scenario's marker is alive.
    async fn assert_nothing_left(&self) {
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

#[tokio::test]
async fn a_failing_task_is_reported_with_its_exit_status_and_the_executor_exits() {
    let mut s = Scenario::start("5secs").await;
    s.subscribe(false).await;
    s.launch("job.1", "echo hi; echo oops >&2; exit 3", None);
    let starting = s.expect_update(mesos::TaskState::TaskStarting, None).await;
    assert_eq!(starting.task_id.value, "job.1");
    assert_eq!(starting.executor_id.as_ref().map(|e| e.value.as_str()), Some("ex-1"));
    s.expect_update(mesos::TaskState::TaskRunning, None).await;
    s.expect_update(mesos::TaskState::TaskFailed, Some("Command exited with status 3")).await;
    assert_eq!(s.exit_code().await, Some(0), "{}", s.log());
    assert_eq!(std::fs::read_to_string(s.sandbox().join("stdout")).unwrap(), "hi\n");
    assert_eq!(std::fs::read_to_string(s.sandbox().join("stderr")).unwrap(), "oops\n");
    let log = s.log();
    assert!(log.contains("Task status changed.") && log.contains("task_id=job.1"), "{log}");
}

#[tokio::test]
async fn a_killed_task_is_announced_stopped_within_its_grace_and_leaves_nothing() {
    let mut s = Scenario::start("5secs").await;
    s.subscribe(true).await;
    s.launch("web.1", "sleep 100", Some(Duration::from_secs(10)));
    s.expect_update(mesos::TaskState::TaskStarting, None).await;
    s.expect_update(mesos::TaskState::TaskRunning, None).await;
    let mut kill = s.simple(event::Type::Kill);
    kill.kill = Some(event::Kill {
        task_id: mesos::TaskId { value: "web.1".into() },
        kill_policy: Some(mesos::KillPolicy {
            grace_period: Some(mesos::DurationInfo { nanoseconds: 2_000_000_000 }),
        }),
    });
    let asked = Instant::now();
    s.send(kill);
    s.expect_update(mesos::TaskState::TaskKilling, None).await;
    s.expect_update(
        mesos::TaskState::TaskKilled,
        Some("Command terminated with signal Terminated"),
    )
    .await;
    assert!(asked.elapsed() < Duration::from_secs(2), "took {:?}", asked.elapsed());
    assert_eq!(s.exit_code().await, Some(0), "{}", s.log());
    s.assert_nothing_left().await;
}

#[tokio::test]
async fn shutdown_sigkills_a_task_that_ignores_sigterm_and_reaps_escaped_processes() {
    let mut s = Scenario::start("2secs").await;
    s.subscribe(false).await;
    // `setsid` puts a grandchild in its own session: only the subreaper
    // clean-up can find it once its parent is gone.
    s.launch(
        "stubborn.1",
        "setsid sleep 101 & trap '' TERM; sleep 100",
        Some(Duration::from_secs(30)),
    );
    s.expect_update(mesos::TaskState::TaskStarting, None).await;
    s.expect_update(mesos::TaskState::TaskRunning, None).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let asked = Instant::now();
    s.send(s.simple(event::Type::Shutdown));
    s.expect_update(mesos::TaskState::TaskKilled, Some("Command terminated with signal Killed"))
        .await;
    let took = asked.elapsed();
    // The task's 30 s grace is capped at the shutdown grace minus 1 s.
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(s.exit_code().await, Some(0), "{}", s.log());
    s.assert_nothing_left().await;
}

#[tokio::test]
async fn sigterm_to_the_executor_kills_its_tasks_like_a_shutdown() {
    let mut s = Scenario::start("5secs").await;
    s.subscribe(false).await;
    s.launch("svc.1", "sleep 100", None);
    s.expect_update(mesos::TaskState::TaskStarting, None).await;
    s.expect_update(mesos::TaskState::TaskRunning, None).await;
    let pid = s.executor.id().expect("executor pid");
    let status =
        std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    assert!(status.success());
    s.expect_update(
        mesos::TaskState::TaskKilled,
        Some("Command terminated with signal Terminated"),
    )
    .await;
    assert_eq!(s.exit_code().await, Some(0), "{}", s.log());
    s.assert_nothing_left().await;
}

#[tokio::test]
async fn undecodable_tasks_and_task_groups_are_errors_not_crashes() {
    let mut s = Scenario::start("5secs").await;
    s.subscribe(false).await;
    let mut launch = s.simple(event::Type::Launch);
    launch.launch = Some(event::Launch {
        task: mesos::TaskInfo {
            name: "bad".into(),
            task_id: mesos::TaskId { value: "bad.1".into() },
            agent_id: mesos::AgentId { value: "agent-1".into() },
            data: Some(b"\xff\xff not protobuf".to_vec()),
            ..Default::default()
        },
    });
    s.send(launch);
    let status = s.next_update().await;
    assert_eq!(status.state(), mesos::TaskState::TaskError);
    assert_eq!(status.reason(), mesos::task_status::Reason::TaskInvalid);
    assert!(
        status.message().starts_with("the task's `data` is not a protobuf `mesos.v1.CommandInfo`"),
        "{status:?}"
    );
    assert_eq!(s.exit_code().await, Some(0), "{}", s.log());

    let mut s = Scenario::start("5secs").await;
    s.subscribe(false).await;
    let mut group = s.simple(event::Type::LaunchGroup);
    let task = |id: &str| mesos::TaskInfo {
        name: id.into(),
        task_id: mesos::TaskId { value: id.into() },
        agent_id: mesos::AgentId { value: "agent-1".into() },
        ..Default::default()
    };
    group.launch_group = Some(event::LaunchGroup {
        task_group: mesos::TaskGroupInfo { tasks: vec![task("g.1"), task("g.2")] },
    });
    s.send(group);
    for id in ["g.1", "g.2"] {
        let status = s
            .expect_update(mesos::TaskState::TaskError, Some("task groups are not supported"))
            .await;
        assert_eq!(status.task_id.value, id);
    }
    assert_eq!(s.exit_code().await, Some(0), "{}", s.log());
}
