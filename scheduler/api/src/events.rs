//! The event bus and Marathon's `/v2/events` server-sent event stream.
//!
//! The daemon turns each [`Notification`] of the core into Marathon events
//! **once** ([`render`]) and publishes them on the [`EventBus`], a bounded
//! `broadcast` channel of pre-rendered SSE frames. Every client of
//! `/v2/events` gets its own forwarder task that filters by `event_type` and
//! hands frames to the client's response body through a bounded queue of the
//! same capacity (Marathon's `event_stream_max_outstanding_messages`,
//! default 1024).
//!
//! **Backpressure:** publishing never waits. A client that falls that many
//! events behind is disconnected (its connection is cut, see
//! [`crate::conn`]) with a log line, never silently skipped ahead, so it
//! knows to resynchronise (Marathon #6657). The scheduler never waits on an
//! event-stream reader.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use drover_time::Timestamp;
use sched_core::app::AppSpec;
use sched_core::deployment::Deployment;
use sched_core::format_version;
use sched_core::instance::TaskState;
use sched_core::scheduler::Notification;
use serde_json::{Map, Value, json};
use tokio::sync::{broadcast, mpsc, watch};

use crate::conn::Client;
use crate::limits::{Caller, StreamKind};
use crate::routes::{Params, params};
use crate::{ApiError, ApiState, app_json};

/// Marathon's default `event_stream_max_outstanding_messages`.
pub const DEFAULT_CAPACITY: usize = 1024;

/// Time between keep-alive comments on an idle stream.
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// A keep-alive comment line (ignored by SSE clients).
const KEEP_ALIVE_FRAME: &[u8] = b":\n\n";

/// One event, rendered once for every client.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedEvent {
    /// Marathon's event type (`status_update_event`, ...).
    pub event_type: &'static str,
    /// The whole SSE frame: `event: <type>\ndata: <json>\n\n`.
    pub frame: Bytes,
}

impl RenderedEvent {
    /// Renders `payload` (which gets `eventType` and `timestamp`) as an
    /// SSE frame.
    pub fn new(event_type: &'static str, mut payload: Map<String, Value>, now: Timestamp) -> Self {
        payload.insert("eventType".into(), json!(event_type));
        payload.insert("timestamp".into(), json!(format_version(now)));
        let data = Value::Object(payload).to_string();
        let frame = format!("event: {event_type}\ndata: {data}\n\n");
        RenderedEvent { event_type, frame: Bytes::from(frame) }
    }

    /// The JSON payload (the `data:` line).
    pub fn data(&self) -> &str {
        let text = std::str::from_utf8(&self.frame).unwrap_or("");
        text.split_once("\ndata: ").map_or("", |(_, rest)| rest.trim_end())
    }
}

#[derive(Debug)]
struct Inner {
    tx: broadcast::Sender<Arc<RenderedEvent>>,
    capacity: usize,
    keep_alive: Duration,
    closed: watch::Sender<bool>,
    published: AtomicU64,
    disconnected: AtomicU64,
}

/// The bus every event goes through: bounded, never blocking the publisher.
#[derive(Debug, Clone)]
pub struct EventBus(Arc<Inner>);

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new(DEFAULT_CAPACITY)
    }
}

impl EventBus {
    /// A bus whose clients may fall at most `capacity` events behind.
    pub fn new(capacity: usize) -> Self {
        EventBus::with_keep_alive(capacity, DEFAULT_KEEP_ALIVE)
    }

    /// A bus with a custom keep-alive interval.
    pub fn with_keep_alive(capacity: usize, keep_alive: Duration) -> Self {
        let capacity = capacity.max(1);
        EventBus(Arc::new(Inner {
            tx: broadcast::channel(capacity).0,
            capacity,
            keep_alive,
            closed: watch::channel(false).0,
            published: AtomicU64::new(0),
            disconnected: AtomicU64::new(0),
        }))
    }

    /// How far behind a client may fall before it is disconnected.
    pub fn capacity(&self) -> usize {
        self.0.capacity
    }

    /// Connected event-stream clients.
    pub fn subscribers(&self) -> usize {
        self.0.tx.receiver_count()
    }

    /// Events published so far.
    pub fn published(&self) -> u64 {
        self.0.published.load(Ordering::Relaxed)
    }

    /// Clients disconnected for falling behind, so far.
    pub fn disconnected(&self) -> u64 {
        self.0.disconnected.load(Ordering::Relaxed)
    }

    /// Publishes one event to every client. Never waits.
    pub fn publish(&self, event: RenderedEvent) {
        self.0.published.fetch_add(1, Ordering::Relaxed);
        // No receiver is fine: nobody listens.
        let _ = self.0.tx.send(Arc::new(event));
    }

    /// Renders and publishes a notification of the core. Does nothing (not
    /// even render) while no client listens.
    pub fn publish_notification(&self, n: &Notification, now: Timestamp) {
        if self.subscribers() == 0 {
            return;
        }
        for event in render(n, now) {
            self.publish(event);
        }
    }

    /// Publishes `api_post_event` for an app created or updated through the API.
    pub fn publish_api_post(&self, client_ip: &str, uri: &str, app: &AppSpec, now: Timestamp) {
        if self.subscribers() == 0 {
            return;
        }
        self.publish(api_post_event(client_ip, uri, app, now));
    }

    /// Ends every stream (at shutdown, so connections can drain).
    pub fn close(&self) {
        self.0.closed.send_replace(true);
    }

    /// A raw subscription, for in-process consumers and tests.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<RenderedEvent>> {
        self.0.tx.subscribe()
    }
}

/// Marathon's instance condition for a task state.
pub fn condition(state: TaskState) -> &'static str {
    match state {
        TaskState::Staging => "Staging",
        TaskState::Starting => "Starting",
        TaskState::Running => "Running",
        TaskState::Killing => "Killing",
        TaskState::Finished => "Finished",
        TaskState::Failed => "Failed",
        TaskState::Killed => "Killed",
        TaskState::Error => "Error",
        TaskState::Unreachable => "Unreachable",
        // Drover replaces a lost task at once; it is not expected back.
        TaskState::Lost | TaskState::Gone | TaskState::GoneByOperator => "Gone",
        TaskState::Dropped => "Dropped",
        TaskState::Unknown => "Unknown",
    }
}

fn obj(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// A group holding the given apps (Marathon puts groups in plans).
fn plan_group(apps: impl Iterator<Item = Option<AppSpec>>, version: Timestamp) -> Value {
    let apps: Vec<Value> =
        apps.flatten().map(|a| Value::Object(app_json::render_app(&a))).collect();
    json!({
        "id": "/",
        "apps": apps,
        "groups": [],
        "pods": [],
        "dependencies": [],
        "version": format_version(version),
    })
}

/// A deployment plan as Marathon puts it in events: `original` and
/// `target` hold the affected apps only.
fn plan(d: &Deployment) -> Value {
    let steps: Vec<Value> = d.steps.iter().map(|s| step(s)).collect();
    json!({
        "id": d.id,
        "version": format_version(d.version),
        "original": plan_group(d.original.values().cloned(), d.version),
        "target": plan_group(d.target.values().cloned(), d.version),
        "steps": steps,
    })
}

fn step(actions: &[sched_core::scheduler::StepAction]) -> Value {
    let actions: Vec<Value> =
        actions.iter().map(|a| json!({"action": a.action.name(), "app": a.app.as_str()})).collect();
    json!({"actions": actions})
}

/// Marathon's events for one notification (most have one; task changes
/// and health changes have two, as in Marathon).
pub fn render(n: &Notification, now: Timestamp) -> Vec<RenderedEvent> {
    match n {
        Notification::StatusUpdate {
            app_id,
            instance_id,
            task_id,
            state,
            message,
            agent_id,
            host,
            ports,
            version,
        } => {
            let status = obj(json!({
                "slaveId": agent_id,
                "taskId": task_id.as_str(),
                "taskStatus": state.mesos_name(),
                "message": message,
                "appId": app_id.as_str(),
                "host": host,
                "ipAddresses": [],
                "ports": ports,
                "version": format_version(*version),
            }));
            let changed = obj(json!({
                "instanceId": instance_id.as_str(),
                "condition": condition(*state),
                "runSpecId": app_id.as_str(),
                "agentId": agent_id,
                "host": host,
                "runSpecVersion": format_version(*version),
            }));
            vec![
                RenderedEvent::new("status_update_event", status, now),
                RenderedEvent::new("instance_changed_event", changed, now),
            ]
        }
        Notification::HealthChanged { app_id, instance_id, task_id, version, alive } => {
            let status = obj(json!({
                "appId": app_id.as_str(),
                "instanceId": instance_id.as_str(),
                "taskId": task_id.as_str(),
                "version": format_version(*version),
                "alive": alive,
            }));
            let instance = obj(json!({
                "instanceId": instance_id.as_str(),
                "runSpecId": app_id.as_str(),
                "runSpecVersion": format_version(*version),
                "healthy": alive,
            }));
            vec![
                RenderedEvent::new("health_status_changed_event", status, now),
                RenderedEvent::new("instance_health_changed_event", instance, now),
            ]
        }
        Notification::DeploymentInfo(d) => {
            let p = obj(json!({"plan": plan(d), "currentStep": step(d.current_actions())}));
            vec![RenderedEvent::new("deployment_info", p, now)]
        }
        Notification::DeploymentStepSuccess(d) => {
            let p = obj(json!({"plan": plan(d), "currentStep": step(d.current_actions())}));
            vec![RenderedEvent::new("deployment_step_success", p, now)]
        }
        Notification::DeploymentSuccess(d) => {
            let p = obj(json!({"id": d.id, "plan": plan(d)}));
            vec![RenderedEvent::new("deployment_success", p, now)]
        }
        Notification::DeploymentFailed { deployment, reason, canceled } => {
            // Marathon does not say why; Drover does.
            let p = obj(json!({
                "id": deployment.id,
                "plan": plan(deployment),
                "reason": reason,
                "canceled": canceled,
            }));
            vec![RenderedEvent::new("deployment_failed", p, now)]
        }
        Notification::AppTerminated(app_id) => {
            let p = obj(json!({"appId": app_id.as_str()}));
            vec![RenderedEvent::new("app_terminated_event", p, now)]
        }
        Notification::UnknownTask { task_id, state, agent_id } => {
            // Drover's own event: a task Mesos runs for this framework that
            // the store has no record of (reported, not killed).
            let p = obj(
                json!({"taskId": task_id, "taskStatus": state.mesos_name(), "slaveId": agent_id}),
            );
            vec![RenderedEvent::new("unknown_task_event", p, now)]
        }
    }
}

fn accepts_event_stream(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).any(|v| {
        v.split(',').any(|item| {
            item.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/event-stream"))
        })
    })
}

/// Which event types a client asked for (`None`: all).
#[derive(Debug, Clone)]
struct Filter(Option<BTreeSet<String>>);

impl Filter {
    fn admits(&self, event_type: &str) -> bool {
        self.0.as_ref().is_none_or(|types| types.contains(event_type))
    }
}

/// `GET /v2/events`.
pub(crate) async fn stream(
    State(s): State<ApiState>,
    headers: HeaderMap,
    q: Params,
    client: Client,
    caller: Caller,
) -> Response {
    if !accepts_event_stream(&headers) {
        return ApiError::Status(
            StatusCode::METHOD_NOT_ALLOWED,
            "HTTP method GET is not supported by this URL without Accept: text/event-stream".into(),
        )
        .into_response();
    }
    // Held by the response body: the slot is given back when it is dropped.
    let Some(slot) = s.limits.open_stream(StreamKind::Events, &caller) else {
        let message = s.limits.streams_message();
        return ApiError::Status(StatusCode::TOO_MANY_REQUESTS, message).into_response();
    };
    let types: BTreeSet<String> =
        params(&q, "event_type").into_iter().filter(|t| !t.is_empty()).map(str::to_owned).collect();
    let filter = Filter((!types.is_empty()).then_some(types));
    let bus = s.events.clone();
    let remote = client.ip();
    // Subscribe first, so the client sees its own `event_stream_attached`.
    let rx = bus.subscribe();
    let attached = obj(json!({"remoteAddress": remote}));
    bus.publish(RenderedEvent::new("event_stream_attached", attached, s.clock.now()));
    let (tx, mut frames) = mpsc::channel::<Bytes>(bus.capacity());
    tokio::spawn(forward(ForwardCtx { bus, rx, tx, filter, client, clock: s.clock.clone() }));
    let body = futures_util::stream::poll_fn(move |cx| {
        let _slot = &slot;
        frames.poll_recv(cx).map(|f| f.map(Ok::<_, std::convert::Infallible>))
    });
    let mut response = Body::from_stream(body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Proxies (nginx) must not buffer the stream.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

struct ForwardCtx {
    bus: EventBus,
    rx: broadcast::Receiver<Arc<RenderedEvent>>,
    tx: mpsc::Sender<Bytes>,
    filter: Filter,
    client: Client,
    clock: Arc<dyn drover_time::Clock>,
}

/// Why a client's stream ended.
enum End {
    /// The client went away (or the bus closed).
    Gone,
    /// The client fell `capacity` events behind.
    Slow,
}

/// Moves one client's events from the bus into its response body. Runs on
/// its own task, so a client that does not read is noticed even while its
/// connection is blocked writing.
async fn forward(mut c: ForwardCtx) {
    let mut closed = c.bus.0.closed.subscribe();
    let mut keep_alive = tokio::time::interval(c.bus.0.keep_alive);
    keep_alive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    keep_alive.tick().await;
    let end = loop {
        let frame = tokio::select! {
            r = c.rx.recv() => match r {
                Ok(event) if c.filter.admits(event.event_type) => event.frame.clone(),
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(_)) => break End::Slow,
                Err(broadcast::error::RecvError::Closed) => break End::Gone,
            },
            _ = keep_alive.tick() => Bytes::from_static(KEEP_ALIVE_FRAME),
            () = c.tx.closed() => break End::Gone,
            _ = closed.wait_for(|closed| *closed) => break End::Gone,
        };
        match c.tx.try_send(frame) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => break End::Slow,
            Err(mpsc::error::TrySendError::Closed(_)) => break End::Gone,
        }
    };
    let remote = c.client.ip();
    if let End::Slow = end {
        c.bus.0.disconnected.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            remote_address = %remote,
            capacity = c.bus.capacity(),
            "An event stream client fell too far behind; disconnecting it."
        );
        // Cut the connection even if the server is blocked writing to it;
        // without a cuttable connection, ending the body is all we can do.
        c.client.cut();
    }
    drop(c.rx);
    drop(c.tx);
    let detached = obj(json!({"remoteAddress": remote}));
    c.bus.publish(RenderedEvent::new("event_stream_detached", detached, c.clock.now()));
}

/// `api_post_event`: an app created or updated through the API.
pub fn api_post_event(client_ip: &str, uri: &str, app: &AppSpec, now: Timestamp) -> RenderedEvent {
    let mut p = Map::new();
    p.insert("clientIp".into(), json!(client_ip));
    p.insert("uri".into(), json!(uri));
    p.insert("appDefinition".into(), Value::Object(app_json::render_app(app)));
    RenderedEvent::new("api_post_event", p, now)
}
