//! A framework's connection to the master: the subscription stream, and the
//! calls sent on it in order.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use drover_protos::mesos::v1 as mesos;
use drover_protos::mesos::v1::scheduler::{Call, Event};
use drover_time::Clock;
use mesos_wire::Endpoint;
use mesos_wire::scheduler::{Action, Notice, Subscription, SubscriptionConfig};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::auth::Authorization;
use crate::transport::{self, CallError, CallOutcome, HttpClient, StreamMsg};

/// How the driver connects.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// The master (any master: redirects lead to the leader).
    pub master: Endpoint,
    /// The framework to subscribe as.
    pub framework_info: mesos::FrameworkInfo,
    /// The stored framework id, when re-subscribing after a restart.
    pub framework_id: Option<String>,
    /// Subscription tunables (content type, heartbeat, backoff).
    pub subscription: SubscriptionConfig,
    /// The largest RecordIO record accepted from the master.
    pub max_record_len: usize,
    /// Timeout of one call.
    pub call_timeout: Duration,
    /// Credentials sent on every request, SUBSCRIBE and calls (Mesos HTTP
    /// authentication: `Authorization::basic(principal, secret)`).
    pub authorization: Option<Authorization>,
    /// Seed for the backoff jitter.
    pub seed: u64,
}

/// What the driver tells the framework.
#[derive(Debug, Clone, PartialEq)]
pub enum SchedulerInput {
    /// Subscribed (or re-subscribed): calls may be sent.
    Subscribed {
        /// The framework id.
        framework_id: String,
        /// True when the framework had an id before this subscription.
        resubscribed: bool,
    },
    /// An event from the master (SUBSCRIBED included).
    Event(Box<Event>),
    /// The subscription is lost; the driver is re-subscribing.
    Disconnected {
        /// Why.
        reason: String,
    },
}

enum Cmd {
    Call(Box<Call>, oneshot::Sender<Result<(), CallError>>),
}

/// Sends calls through the driver. Calls are delivered in the order they
/// were enqueued.
#[derive(Clone, Debug)]
pub struct SchedulerHandle {
    tx: mpsc::Sender<Cmd>,
}

impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cmd")
    }
}

impl SchedulerHandle {
    /// Enqueues a call and returns a receiver for its outcome. Enqueue order
    /// is delivery order.
    pub async fn enqueue(&self, call: Call) -> oneshot::Receiver<Result<(), CallError>> {
        let (reply, rx) = oneshot::channel();
        if let Err(mpsc::error::SendError(Cmd::Call(_, reply))) =
            self.tx.send(Cmd::Call(Box::new(call), reply)).await
        {
            let _ = reply.send(Err(CallError::Stopped));
        }
        rx
    }

    /// Sends a call and waits for Mesos' answer.
    pub async fn call(&self, call: Call) -> Result<(), CallError> {
        self.enqueue(call).await.await.unwrap_or(Err(CallError::Stopped))
    }
}

/// Starts the driver. It subscribes at once and keeps the subscription up
/// until every handle and the input receiver are dropped.
pub fn spawn(
    config: SchedulerConfig,
    clock: Arc<dyn Clock>,
) -> (SchedulerHandle, mpsc::Receiver<SchedulerInput>, JoinHandle<()>) {
    // Bounded: the framework applies backpressure to the event stream.
    let (input_tx, input_rx) = mpsc::channel(1024);
    let (cmd_tx, cmd_rx) = mpsc::channel(1024);
    let now = clock.now();
    let fsm = Subscription::new(
        config.subscription.clone(),
        config.master.clone(),
        config.framework_info.clone(),
        config.framework_id.clone(),
        config.seed,
        now,
    );
    let driver = Driver {
        fsm,
        clock,
        config,
        client: transport::client(),
        streams: BTreeMap::new(),
        input_tx,
        connecting: None,
        last_failure: None,
    };
    let task = tokio::spawn(driver.run(cmd_rx));
    (SchedulerHandle { tx: cmd_tx }, input_rx, task)
}

struct Driver {
    fsm: Subscription,
    clock: Arc<dyn Clock>,
    config: SchedulerConfig,
    client: HttpClient,
    streams: BTreeMap<u64, JoinHandle<()>>,
    input_tx: mpsc::Sender<SchedulerInput>,
    /// The SUBSCRIBE stream still waiting for its response head.
    connecting: Option<u64>,
    /// The last reason a SUBSCRIBE failed, until one succeeds: each distinct
    /// failure is logged once, its repetitions only at debug level.
    last_failure: Option<String>,
}

type Outgoing =
    (http::Request<http_body_util::Full<bytes::Bytes>>, oneshot::Sender<Result<(), CallError>>);

impl Driver {
    async fn run(mut self, mut cmd_rx: mpsc::Receiver<Cmd>) {
        let (stream_tx, mut stream_rx) = mpsc::channel::<StreamMsg>(256);
        // Calls go through one sender task, strictly in order.
        let (out_tx, out_rx) = mpsc::channel::<Outgoing>(1024);
        let (outcome_tx, mut outcome_rx) = mpsc::channel::<CallOutcome>(1024);
        let sender = tokio::spawn(send_calls(
            self.client.clone(),
            self.config.call_timeout,
            out_rx,
            outcome_tx,
        ));
        loop {
            if !self.perform(&stream_tx).await {
                break;
            }
            let deadline = self.fsm.poll_timeout();
            tokio::select! {
                Some(msg) = stream_rx.recv() => {
                    if !self.on_stream(msg).await {
                        break;
                    }
                }
                cmd = cmd_rx.recv() => match cmd {
                    Some(Cmd::Call(call, reply)) => self.on_call(*call, reply, &out_tx).await,
                    None => break,
                },
                Some(outcome) = outcome_rx.recv() => {
                    let now = self.clock.now();
                    self.fsm.handle_call_response(outcome.status, outcome.location.as_deref(), now);
                }
                () = transport::sleep_until(&*self.clock, deadline, Duration::from_secs(1)) => {
                    self.fsm.handle_timeout(self.clock.now());
                }
            }
        }
        sender.abort();
        for (_, s) in std::mem::take(&mut self.streams) {
            s.abort();
        }
    }

    /// Performs pending actions and forwards notices; false when the
    /// framework dropped its receiver.
    async fn perform(&mut self, stream_tx: &mpsc::Sender<StreamMsg>) -> bool {
        while let Some(action) = self.fsm.poll_action() {
            match action {
                Action::Subscribe { conn, endpoint, call } => {
                    let ct = self.fsm.content_type();
                    if self.last_failure.is_none() {
                        tracing::info!(master = %endpoint, "Subscribing to the Mesos master.");
                    } else {
                        tracing::debug!(master = %endpoint, "Subscribing to the Mesos master again.");
                    }
                    self.connecting = Some(conn);
                    match transport::request(
                        &endpoint,
                        ct,
                        ct.encode(&*call),
                        None,
                        self.config.authorization.as_ref(),
                    ) {
                        Ok(req) => {
                            let task = tokio::spawn(transport::run_stream(
                                self.client.clone(),
                                conn,
                                req,
                                self.config.max_record_len,
                                stream_tx.clone(),
                            ));
                            self.streams.insert(conn, task);
                        }
                        Err(e) => {
                            self.fsm.handle_stream_end(conn, &e.to_string(), self.clock.now())
                        }
                    }
                }
                Action::Close { conn } => {
                    if let Some(task) = self.streams.remove(&conn) {
                        task.abort();
                    }
                }
            }
        }
        while let Some(notice) = self.fsm.poll_notice() {
            let input = match notice {
                Notice::Subscribed { framework_id, heartbeat, resubscribed } => {
                    self.last_failure = None;
                    tracing::info!(%framework_id, heartbeat_secs = heartbeat.as_secs_f64(), "Subscribed to Mesos.");
                    SchedulerInput::Subscribed { framework_id, resubscribed }
                }
                Notice::Disconnected { reason } => {
                    tracing::warn!(%reason, "Lost the Mesos subscription.");
                    SchedulerInput::Disconnected { reason }
                }
            };
            if self.input_tx.send(input).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Handles what a stream reported; false when the framework dropped
    /// its receiver.
    async fn on_stream(&mut self, msg: StreamMsg) -> bool {
        let now = self.clock.now();
        match msg {
            StreamMsg::Head { conn, status, location, stream_id, body } => {
                if self.connecting == Some(conn) {
                    self.connecting = None;
                    if let Some(body) = body {
                        self.report_refusal(status, &body);
                    }
                }
                self.fsm.handle_response(
                    conn,
                    status,
                    location.as_deref(),
                    stream_id.as_deref(),
                    now,
                );
            }
            StreamMsg::Record { conn, bytes } => {
                match self.fsm.content_type().decode::<Event>(&bytes) {
                    Ok(event) => {
                        // Events are forwarded in stream order, before the notice
                        // (if any) that the event caused.
                        if let Some(event) = self.fsm.handle_event(conn, event, now) {
                            return self
                                .input_tx
                                .send(SchedulerInput::Event(Box::new(event)))
                                .await
                                .is_ok();
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "Undecodable event from the master; re-subscribing.");
                        self.fsm.handle_stream_end(conn, "undecodable event", now);
                    }
                }
            }
            StreamMsg::End { conn, reason } => {
                if self.connecting == Some(conn) {
                    // No answer at all: the master is unreachable.
                    self.connecting = None;
                    if self.first_report(&reason) {
                        tracing::warn!(%reason, "Cannot reach the Mesos master; retrying with backoff.");
                    }
                } else if self.streams.contains_key(&conn) && self.first_report(&reason) {
                    // An open subscription broke (a malformed or over-size
                    // record, a read error, the master went away).
                    tracing::warn!(%reason, "The Mesos subscription ended; subscribing again.");
                }
                self.streams.remove(&conn);
                self.fsm.handle_stream_end(conn, &reason, now);
            }
        }
        true
    }

    /// True the first time `failure` happens in a row of failed
    /// subscriptions (it is logged then); repetitions are logged at debug.
    fn first_report(&mut self, failure: &str) -> bool {
        if self.last_failure.as_deref() == Some(failure) {
            tracing::debug!(%failure, "Subscribing to the Mesos master failed again.");
            return false;
        }
        self.last_failure = Some(failure.to_owned());
        true
    }

    /// Logs why the master refused a SUBSCRIBE (once per distinct answer).
    /// Never logs the credentials, only the principal.
    fn report_refusal(&mut self, status: u16, body: &str) {
        if !self.first_report(&format!("HTTP {status}: {body}")) {
            return;
        }
        let auth = self.config.authorization.as_ref();
        let principal = auth.and_then(Authorization::principal).unwrap_or("");
        match (status, auth) {
            (401, Some(_)) => tracing::error!(
                %principal,
                status,
                detail = body,
                "The Mesos master refused the framework's credentials; check its principal and \
                 secret. Retrying with backoff."
            ),
            (401, None) => tracing::error!(
                status,
                detail = body,
                "The Mesos master requires the framework to authenticate, but it has no \
                 credentials (a principal and its secret). Retrying with backoff."
            ),
            (403, _) => tracing::error!(
                %principal,
                status,
                detail = body,
                "The Mesos master does not authorize the framework's principal to subscribe. \
                 Retrying with backoff."
            ),
            _ => tracing::warn!(
                %principal,
                status,
                detail = body,
                "The Mesos master refused the subscription; retrying with backoff."
            ),
        }
    }

    async fn on_call(
        &mut self,
        call: Call,
        reply: oneshot::Sender<Result<(), CallError>>,
        out: &mpsc::Sender<Outgoing>,
    ) {
        let Some(stream_id) = self.fsm.stream_id() else {
            let _ = reply.send(Err(CallError::NotSubscribed));
            return;
        };
        let ct = self.fsm.content_type();
        match transport::request(
            self.fsm.endpoint(),
            ct,
            ct.encode(&call),
            Some(stream_id),
            self.config.authorization.as_ref(),
        ) {
            Ok(req) => {
                if let Err(mpsc::error::SendError((_, reply))) = out.send((req, reply)).await {
                    let _ = reply.send(Err(CallError::Stopped));
                }
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }
}

async fn send_calls(
    client: HttpClient,
    timeout: Duration,
    mut rx: mpsc::Receiver<Outgoing>,
    outcomes: mpsc::Sender<CallOutcome>,
) {
    while let Some((req, reply)) = rx.recv().await {
        let result = transport::post(&client, req, timeout).await;
        let answer = match result {
            Ok(outcome) => {
                let ok = (200..300).contains(&outcome.status);
                let answer = if ok {
                    Ok(())
                } else {
                    Err(CallError::Status { status: outcome.status, body: outcome.body.clone() })
                };
                let _ = outcomes.send(outcome).await;
                answer
            }
            Err(e) => Err(e),
        };
        let _ = reply.send(answer);
    }
}
