//! The event bus and `/v2/events`: payloads in Marathon's shapes, the
//! `Accept` and `event_type` rules, and, over real sockets on 127.0.0.1, the
//! stream itself and the disconnection of a client that does not read.

use std::collections::BTreeMap;
use std::time::Duration;

use expect_test::{Expect, expect};
use sched_core::deployment::{Action, Origin, StepAction};
use sched_core::ids::{AppId, InstanceId};
use sched_core::instance::TaskState;
use sched_core::scheduler::{Deployment, Notification};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;

use super::*;
use crate::events::{RenderedEvent, render};

fn check(n: &Notification, expect: Expect) {
    let text: Vec<String> = render(n, T0)
        .iter()
        .map(|e| {
            let data: Value = serde_json::from_str(e.data()).unwrap();
            assert!(e.frame.starts_with(format!("event: {}\ndata: {{", e.event_type).as_bytes()));
            assert!(e.frame.ends_with(b"}\n\n"));
            format!("{}\n{}", e.event_type, serde_json::to_string_pretty(&data).unwrap())
        })
        .collect();
    expect.assert_eq(&text.join("\n"));
}

fn app(id: &str) -> sched_core::app::AppSpec {
    app_json::parse_app(&json!({"id": id, "cmd": "sleep 600", "instances": 2}), None).unwrap()
}

fn deployment() -> Deployment {
    let id = AppId::parse("/web").unwrap();
    Deployment {
        id: "5ed4c0c5-9ff8-4a6f-a0cd-f57f59a34b43".into(),
        version: T0,
        steps: vec![vec![StepAction { action: Action::StartApplication, app: id.clone() }]],
        current_step: 0,
        original: BTreeMap::from([(id.clone(), None)]),
        target: BTreeMap::from([(id, Some(app("/web")))]),
        last_progress_at: T0,
        progress_mark: Vec::new(),
        origin: Origin::User,
    }
}

#[test]
fn task_updates_render_as_status_update_and_instance_changed_events() {
    let app_id = AppId::parse("/web").unwrap();
    let instance = InstanceId::new(&app_id, "a1b2c3d4-0000-4000-8000-000000000001");
    let n = Notification::StatusUpdate {
        app_id,
        task_id: instance.task_id(1),
        instance_id: instance,
        state: TaskState::Running,
        message: "Reconciliation: Latest task state".into(),
        agent_id: "agent-1".into(),
        host: "10.0.0.7".into(),
        ports: vec![31001],
        version: T0,
    };
    check(
        &n,
        expect![[r#"
            status_update_event
            {
              "appId": "/web",
              "eventType": "status_update_event",
              "host": "10.0.0.7",
              "ipAddresses": [],
              "message": "Reconciliation: Latest task state",
              "ports": [
                31001
              ],
              "slaveId": "agent-1",
              "taskId": "web.instance-a1b2c3d4-0000-4000-8000-000000000001._app.1",
              "taskStatus": "TASK_RUNNING",
              "timestamp": "2023-11-14T22:13:20.000Z",
              "version": "2023-11-14T22:13:20.000Z"
            }
            instance_changed_event
            {
              "agentId": "agent-1",
              "condition": "Running",
              "eventType": "instance_changed_event",
              "host": "10.0.0.7",
              "instanceId": "web.instance-a1b2c3d4-0000-4000-8000-000000000001",
              "runSpecId": "/web",
              "runSpecVersion": "2023-11-14T22:13:20.000Z",
              "timestamp": "2023-11-14T22:13:20.000Z"
            }"#]],
    );
}

#[test]
fn health_changes_render_as_both_health_events() {
    let app_id = AppId::parse("/web").unwrap();
    let instance = InstanceId::new(&app_id, "a1b2c3d4-0000-4000-8000-000000000001");
    let n = Notification::HealthChanged {
        app_id,
        task_id: instance.task_id(1),
        instance_id: instance,
        version: T0,
        alive: false,
    };
    check(
        &n,
        expect![[r#"
            health_status_changed_event
            {
              "alive": false,
              "appId": "/web",
              "eventType": "health_status_changed_event",
              "instanceId": "web.instance-a1b2c3d4-0000-4000-8000-000000000001",
              "taskId": "web.instance-a1b2c3d4-0000-4000-8000-000000000001._app.1",
              "timestamp": "2023-11-14T22:13:20.000Z",
              "version": "2023-11-14T22:13:20.000Z"
            }
            instance_health_changed_event
            {
              "eventType": "instance_health_changed_event",
              "healthy": false,
              "instanceId": "web.instance-a1b2c3d4-0000-4000-8000-000000000001",
              "runSpecId": "/web",
              "runSpecVersion": "2023-11-14T22:13:20.000Z",
              "timestamp": "2023-11-14T22:13:20.000Z"
            }"#]],
    );
}

#[test]
fn deployment_failed_names_the_reason() {
    let n = Notification::DeploymentFailed {
        deployment: Box::new(deployment()),
        reason: "no progress within the progress deadline of 600s".into(),
        canceled: false,
    };
    let events = render(&n, T0);
    assert_eq!(events.len(), 1);
    let data: Value = serde_json::from_str(events[0].data()).unwrap();
    assert_eq!(data["eventType"], "deployment_failed");
    assert_eq!(data["id"], "5ed4c0c5-9ff8-4a6f-a0cd-f57f59a34b43");
    assert_eq!(data["reason"], "no progress within the progress deadline of 600s");
    assert_eq!(data["canceled"], false);
    assert_eq!(data["plan"]["id"], data["id"]);
}

#[test]
fn deployment_events_carry_the_plan_and_current_step() {
    let n = Notification::DeploymentInfo(Box::new(deployment()));
    let events = render(&n, T0);
    let data: Value = serde_json::from_str(events[0].data()).unwrap();
    let mut plan = data["plan"].clone();
    // The app definitions are app_json's business; keep the golden short.
    plan["target"]["apps"][0] = json!({"id": plan["target"]["apps"][0]["id"]});
    let shown = json!({"eventType": data["eventType"], "currentStep": data["currentStep"], "plan": plan, "timestamp": data["timestamp"]});
    expect![[r#"
        {
          "currentStep": {
            "actions": [
              {
                "action": "StartApplication",
                "app": "/web"
              }
            ]
          },
          "eventType": "deployment_info",
          "plan": {
            "id": "5ed4c0c5-9ff8-4a6f-a0cd-f57f59a34b43",
            "original": {
              "apps": [],
              "dependencies": [],
              "groups": [],
              "id": "/",
              "pods": [],
              "version": "2023-11-14T22:13:20.000Z"
            },
            "steps": [
              {
                "actions": [
                  {
                    "action": "StartApplication",
                    "app": "/web"
                  }
                ]
              }
            ],
            "target": {
              "apps": [
                {
                  "id": "/web"
                }
              ],
              "dependencies": [],
              "groups": [],
              "id": "/",
              "pods": [],
              "version": "2023-11-14T22:13:20.000Z"
            },
            "version": "2023-11-14T22:13:20.000Z"
          },
          "timestamp": "2023-11-14T22:13:20.000Z"
        }"#]]
    .assert_eq(&serde_json::to_string_pretty(&shown).unwrap());
    let types = |n: Notification| render(&n, T0).iter().map(|e| e.event_type).collect::<Vec<_>>();
    assert_eq!(
        types(Notification::DeploymentSuccess(Box::new(deployment()))),
        ["deployment_success"]
    );
    assert_eq!(
        types(Notification::DeploymentStepSuccess(Box::new(deployment()))),
        ["deployment_step_success"]
    );
    let terminated = render(&Notification::AppTerminated(AppId::parse("/web").unwrap()), T0);
    assert_eq!(
        serde_json::from_str::<Value>(terminated[0].data()).unwrap(),
        json!({"appId": "/web", "eventType": "app_terminated_event", "timestamp": "2023-11-14T22:13:20.000Z"})
    );
}

#[test]
fn api_post_event_carries_the_app_definition() {
    let e = crate::events::api_post_event("10.1.2.3", "/v2/apps", &app("/web"), T0);
    let data: Value = serde_json::from_str(e.data()).unwrap();
    assert_eq!(data["eventType"], "api_post_event");
    assert_eq!(data["clientIp"], "10.1.2.3");
    assert_eq!(data["uri"], "/v2/apps");
    assert_eq!(data["appDefinition"]["id"], "/web");
    assert_eq!(data["appDefinition"]["instances"], 2);
    assert_eq!(data["timestamp"], "2023-11-14T22:13:20.000Z");
}

#[tokio::test]
async fn the_stream_needs_accept_text_event_stream() {
    let s = state();
    for accept in [None, Some("application/json"), Some("*/*")] {
        let mut req = Request::builder().uri("/v2/events");
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        let resp = router(s.clone()).oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED, "{accept:?}");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert!(body["message"].as_str().unwrap().contains("text/event-stream"), "{body}");
    }
    assert_eq!(s.events.subscribers(), 0);
}

#[tokio::test]
async fn a_new_client_first_hears_that_it_attached() {
    let s = state();
    let req = Request::builder()
        .uri("/v2/events")
        .header("accept", "text/html, text/event-stream;q=0.9")
        .body(Body::empty())
        .unwrap();
    let resp = router(s.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
    let text = String::from_utf8(frame.to_vec()).unwrap();
    assert!(text.starts_with("event: event_stream_attached\ndata: {"), "{text}");
    assert!(text.contains(r#""remoteAddress":"""#), "no peer without a socket: {text}");
    assert_eq!(s.events.subscribers(), 1);
    drop(body);
    for _ in 0..100 {
        if s.events.subscribers() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the forwarder outlived its client");
}

// ----- over real sockets ---------------------------------------------------

/// Serves the harness's API on a free port of 127.0.0.1.
async fn serve_on_loopback(state: ApiState) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(crate::serve(listener, router(state), std::future::pending()));
    addr
}

/// A minimal SSE client: HTTP/1.1 with chunked transfer encoding.
struct SseClient {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Decoded body bytes not yet split into events.
    body: Vec<u8>,
}

impl SseClient {
    async fn connect(addr: std::net::SocketAddr, query: &str) -> SseClient {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "GET /v2/events{query} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
        );
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut c = SseClient { stream, buf: Vec::new(), body: Vec::new() };
        let head = c.read_until(b"\r\n\r\n").await;
        let head = String::from_utf8(head).unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.to_ascii_lowercase().contains("content-type: text/event-stream"), "{head}");
        assert!(head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "{head}");
        c
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 64 * 1024];
        let n = tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut chunk))
            .await
            .expect("no data from the event stream within 10s")
            .unwrap();
        assert!(n > 0, "the event stream closed");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    async fn read_until(&mut self, delimiter: &[u8]) -> Vec<u8> {
        loop {
            if let Some(i) = self.buf.windows(delimiter.len()).position(|w| w == delimiter) {
                let rest = self.buf.split_off(i + delimiter.len());
                return std::mem::replace(&mut self.buf, rest);
            }
            self.fill().await;
        }
    }

    /// The next event (type and payload), skipping keep-alive comments.
    async fn next_event(&mut self) -> (String, Value) {
        loop {
            if let Some(i) = self.body.windows(2).position(|w| w == b"\n\n") {
                let rest = self.body.split_off(i + 2);
                let frame = String::from_utf8(std::mem::replace(&mut self.body, rest)).unwrap();
                if frame.starts_with(':') {
                    continue;
                }
                let (event, data) = frame.trim_end().split_once('\n').unwrap();
                let event = event.strip_prefix("event: ").unwrap().to_owned();
                let data = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
                return (event, data);
            }
            let size = self.read_until(b"\r\n").await;
            let size =
                usize::from_str_radix(std::str::from_utf8(&size).unwrap().trim(), 16).unwrap();
            assert!(size > 0, "the event stream ended");
            while self.buf.len() < size + 2 {
                self.fill().await;
            }
            let rest = self.buf.split_off(size + 2);
            let chunk = std::mem::replace(&mut self.buf, rest);
            self.body.extend_from_slice(&chunk[..size]);
        }
    }

    /// The next `n` events.
    async fn events(&mut self, n: usize) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(self.next_event().await);
        }
        out
    }
}

/// One request over its own connection; the status and the JSON body.
async fn http(addr: std::net::SocketAddr, method: &str, path: &str, body: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut resp))
        .await
        .expect("no answer within 10s")
        .unwrap();
    let text = String::from_utf8(resp).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_hears_it_attached_then_the_post_and_its_deployment() {
    let h = harness(EventBus::default());
    let addr = serve_on_loopback(h.state.clone()).await;
    let mut all = SseClient::connect(addr, "").await;
    let (kind, data) = all.next_event().await;
    assert_eq!(kind, "event_stream_attached");
    assert_eq!(data["eventType"], "event_stream_attached");
    assert_eq!(data["remoteAddress"], "127.0.0.1");
    assert_eq!(data["timestamp"], "2023-11-14T22:13:20.000Z");
    let mut deployments_only =
        SseClient::connect(addr, "?event_type=deployment_info&event_type=app_terminated_event")
            .await;
    // The first client hears the second attach; the second does not (filtered).
    assert_eq!(all.next_event().await.0, "event_stream_attached");

    let (status, body) = http(addr, "POST", "/v2/apps", r#"{"id":"web","cmd":"sleep 600"}"#).await;
    assert_eq!(status, 201, "{body}");
    let deployment = body["deployments"][0]["id"].clone();
    // Ordering between events is not guaranteed (as in Marathon).
    let events: BTreeMap<String, Value> = all.events(2).await.into_iter().collect();
    let post = &events["api_post_event"];
    assert_eq!(post["clientIp"], "127.0.0.1");
    assert_eq!(post["uri"], "/v2/apps");
    assert_eq!(post["appDefinition"]["id"], "/web");
    assert_eq!(post["appDefinition"]["cmd"], "sleep 600");
    let info = &events["deployment_info"];
    assert_eq!(info["plan"]["id"], deployment);
    assert_eq!(info["currentStep"]["actions"][0]["action"], "StartApplication");
    assert_eq!(info["currentStep"]["actions"][0]["app"], "/web");

    let (kind, data) = deployments_only.next_event().await;
    assert_eq!((kind.as_str(), &data["plan"]["id"]), ("deployment_info", &deployment));
    // Deleting the app (it has no task yet) ends with app_terminated_event.
    let (status, _) = http(addr, "DELETE", "/v2/apps/web", "").await;
    assert_eq!(status, 200);
    let kinds: Vec<String> = deployments_only.events(2).await.into_iter().map(|e| e.0).collect();
    assert_eq!(kinds, ["deployment_info", "app_terminated_event"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_is_disconnected_and_nobody_waits_for_it() {
    let capacity = 16;
    let bus = EventBus::with_keep_alive(capacity, Duration::from_secs(3600));
    let h = harness(bus.clone());
    let addr = serve_on_loopback(h.state.clone()).await;

    // The slow client: a tiny receive buffer, and it never reads.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut slow = socket.connect(addr).await.unwrap();
    let req =
        format!("GET /v2/events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
    slow.write_all(req.as_bytes()).await.unwrap();
    wait_for("the slow client subscribed", || bus.subscribers() == 1).await;

    // A well-behaved client reads everything, in lockstep with the publisher.
    let mut fast = SseClient::connect(addr, "?event_type=status_update_event").await;
    wait_for("the fast client subscribed", || bus.subscribers() == 2).await;
    let (ack_tx, mut ack_rx) = mpsc::channel::<u64>(1);
    let reader = tokio::spawn(async move {
        loop {
            let (kind, data) = fast.next_event().await;
            assert_eq!(kind, "status_update_event");
            let seq = data["seq"].as_u64().unwrap();
            if ack_tx.send(seq).await.is_err() {
                return fast;
            }
        }
    });

    let padding = "x".repeat(64 * 1024);
    let mut published = 0u64;
    while bus.disconnected() == 0 {
        assert!(published < 2000, "the slow client was never disconnected");
        let payload = json!({"seq": published, "padding": padding});
        let Value::Object(payload) = payload else { unreachable!() };
        bus.publish(RenderedEvent::new("status_update_event", payload, T0));
        let seq = tokio::time::timeout(Duration::from_secs(10), ack_rx.recv()).await;
        assert_eq!(seq.unwrap(), Some(published), "the fast client missed an event");
        published += 1;
        // The API keeps answering while the slow client is stuck.
        if published.is_multiple_of(32) {
            assert_eq!(call(&h.state, "GET", "/ping", "").await.status, StatusCode::OK);
        }
    }
    assert_eq!(bus.disconnected(), 1, "only the slow client is disconnected");
    // The slow client's connection is closed: draining it ends in EOF (or a reset).
    let drained = tokio::time::timeout(Duration::from_secs(30), async {
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0usize;
        loop {
            match slow.read(&mut buf).await {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n,
            }
        }
    })
    .await
    .expect("the slow client's connection stayed open");
    assert!(drained > 0);
    assert!(
        (published as usize) > capacity,
        "it fell more than its buffer behind: {published} events published"
    );

    // The scheduler and the API still work, and the fast client still hears.
    let (status, _) = http(addr, "POST", "/v2/apps", r#"{"id":"after","cmd":"sleep 1"}"#).await;
    assert_eq!(status, 201);
    let payload = json!({"seq": published});
    let Value::Object(payload) = payload else { unreachable!() };
    bus.publish(RenderedEvent::new("status_update_event", payload, T0));
    let seq = tokio::time::timeout(Duration::from_secs(10), ack_rx.recv()).await.unwrap();
    assert_eq!(seq, Some(published));
    drop(ack_rx);
    wait_for("the slow client left the bus", || bus.subscribers() == 1).await;
    reader.abort();
}
