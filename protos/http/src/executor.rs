//! An executor's connection to its agent: the subscription stream and the
//! status updates, kept until acknowledged.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use drover_protos::mesos::v1 as mesos;
use drover_protos::mesos::v1::executor::{Call, Event};
use drover_time::Clock;
use mesos_wire::executor::{Action, ExecutorConfig, ExecutorSession};
use mesos_wire::{ContentType, Endpoint};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::auth::Authorization;
use crate::transport::{self, HttpClient, StreamMsg};

/// How the executor connects to its agent.
#[derive(Debug, Clone)]
pub struct ExecutorClientConfig {
    /// The agent's executor API, e.g. `http://127.0.0.1:5051/slave(1)/api/v1/executor`.
    pub agent: Endpoint,
    /// Identity and recovery settings.
    pub session: ExecutorConfig,
    /// The content type of calls and of the event stream.
    pub content_type: ContentType,
    /// The largest RecordIO record accepted from the agent.
    pub max_record_len: usize,
    /// Timeout of one call.
    pub call_timeout: Duration,
    /// `Authorization::bearer(MESOS_EXECUTOR_AUTHENTICATION_TOKEN)`, when the
    /// agent gave one: sent on SUBSCRIBE and on every call.
    pub authorization: Option<Authorization>,
    /// Seed for UUIDs and jitter.
    pub seed: u64,
}

/// What the driver tells the executor.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecutorInput {
    /// An event from the agent.
    Event(Box<Event>),
    /// The agent is gone for good: kill every task and exit.
    GaveUp {
        /// Why.
        reason: String,
    },
}

/// Sends status updates through the driver.
#[derive(Clone, Debug)]
pub struct ExecutorHandle {
    tx: mpsc::Sender<mesos::TaskStatus>,
}

impl ExecutorHandle {
    /// Queues a status update. The driver stamps it with a UUID, sends it
    /// when subscribed and re-sends it after reconnects until the agent
    /// acknowledges it. Returns false when the driver has stopped.
    pub async fn send_update(&self, status: mesos::TaskStatus) -> bool {
        self.tx.send(status).await.is_ok()
    }
}

/// Starts the driver.
pub fn spawn(
    config: ExecutorClientConfig,
    clock: Arc<dyn Clock>,
) -> (ExecutorHandle, mpsc::Receiver<ExecutorInput>, JoinHandle<()>) {
    let (input_tx, input_rx) = mpsc::channel(256);
    let (update_tx, update_rx) = mpsc::channel(256);
    let session = ExecutorSession::new(config.session.clone(), config.seed, clock.now());
    let driver = Driver {
        session,
        clock,
        config,
        client: transport::client(),
        streams: BTreeMap::new(),
        input_tx,
    };
    let task = tokio::spawn(driver.run(update_rx));
    (ExecutorHandle { tx: update_tx }, input_rx, task)
}

struct Driver {
    session: ExecutorSession,
    clock: Arc<dyn Clock>,
    config: ExecutorClientConfig,
    client: HttpClient,
    streams: BTreeMap<u64, JoinHandle<()>>,
    input_tx: mpsc::Sender<ExecutorInput>,
}

impl Driver {
    async fn run(mut self, mut update_rx: mpsc::Receiver<mesos::TaskStatus>) {
        let (stream_tx, mut stream_rx) = mpsc::channel::<StreamMsg>(256);
        // Updates go out through one sender task, strictly in order: the
        // agent must see STARTING before RUNNING.
        let (call_tx, call_rx) = mpsc::unbounded_channel::<Call>();
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<bool>();
        let sender =
            tokio::spawn(send_calls(self.client.clone(), self.config.clone(), call_rx, out_tx));
        let mut updates_open = true;
        loop {
            if !self.perform(&stream_tx, &call_tx).await {
                break;
            }
            let deadline = self.session.poll_timeout();
            tokio::select! {
                Some(msg) = stream_rx.recv() => {
                    if !self.on_stream(msg).await {
                        break;
                    }
                }
                update = update_rx.recv(), if updates_open => match update {
                    Some(status) => {
                        self.session.send_update(status, self.clock.now());
                    }
                    None => updates_open = false,
                },
                Some(ok) = out_rx.recv() => {
                    if !ok {
                        self.session.handle_send_failure(self.clock.now());
                    }
                }
                () = async {
                    match deadline {
                        Some(d) => transport::sleep_until(&*self.clock, d, Duration::from_secs(1)).await,
                        None => std::future::pending().await,
                    }
                } => self.session.handle_timeout(self.clock.now()),
            }
        }
        sender.abort();
        for (_, s) in std::mem::take(&mut self.streams) {
            s.abort();
        }
    }

    async fn perform(
        &mut self,
        stream_tx: &mpsc::Sender<StreamMsg>,
        call_tx: &mpsc::UnboundedSender<Call>,
    ) -> bool {
        while let Some(action) = self.session.poll_action() {
            let ct = self.config.content_type;
            let auth = self.config.authorization.as_ref();
            match action {
                Action::Subscribe { conn, call } => {
                    match transport::request(&self.config.agent, ct, ct.encode(&*call), None, auth)
                    {
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
                        Err(_) => self.session.handle_stream_end(conn, self.clock.now()),
                    }
                }
                Action::Send(call) => {
                    let _ = call_tx.send(*call);
                }
                Action::Close { conn } => {
                    if let Some(task) = self.streams.remove(&conn) {
                        task.abort();
                    }
                }
                Action::GiveUp { reason } => {
                    tracing::error!(%reason, "Giving up on the agent.");
                    let _ = self.input_tx.send(ExecutorInput::GaveUp { reason }).await;
                    return false;
                }
            }
        }
        true
    }

    async fn on_stream(&mut self, msg: StreamMsg) -> bool {
        let now = self.clock.now();
        match msg {
            StreamMsg::Head { conn, status, .. } => self.session.handle_response(conn, status, now),
            StreamMsg::Record { conn, bytes } => {
                match self.config.content_type.decode::<Event>(&bytes) {
                    Ok(event) => {
                        if let Some(event) = self.session.handle_event(conn, event, now) {
                            return self
                                .input_tx
                                .send(ExecutorInput::Event(Box::new(event)))
                                .await
                                .is_ok();
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "Undecodable event from the agent; re-subscribing.");
                        if let Some(task) = self.streams.remove(&conn) {
                            task.abort();
                        }
                        self.session.handle_stream_end(conn, now);
                    }
                }
            }
            StreamMsg::End { conn, reason } => {
                tracing::info!(%reason, "The agent subscription ended.");
                self.streams.remove(&conn);
                self.session.handle_stream_end(conn, now);
            }
        }
        true
    }
}

/// POSTs calls one at a time, in order, reporting each outcome.
async fn send_calls(
    client: HttpClient,
    config: ExecutorClientConfig,
    mut rx: mpsc::UnboundedReceiver<Call>,
    out_tx: mpsc::UnboundedSender<bool>,
) {
    let ct = config.content_type;
    while let Some(call) = rx.recv().await {
        let req = transport::request(
            &config.agent,
            ct,
            ct.encode(&call),
            None,
            config.authorization.as_ref(),
        );
        let ok = match req {
            Ok(req) => match transport::post(&client, req, config.call_timeout).await {
                Ok(o) if (200..300).contains(&o.status) => true,
                Ok(o) => {
                    tracing::warn!(status = o.status, body = %o.body, "The agent refused a call.");
                    false
                }
                Err(e) => {
                    tracing::warn!(error = %e, "A call to the agent failed.");
                    false
                }
            },
            Err(_) => false,
        };
        if out_tx.send(ok).is_err() {
            return;
        }
    }
}
