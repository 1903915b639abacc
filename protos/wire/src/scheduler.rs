//! The scheduler side of the v1 HTTP API, without sockets.
//!
//! [`Subscription`] tracks one framework's subscription to the master: which
//! master it talks to (following `307` redirects to the leader), the
//! `Mesos-Stream-Id` every call must carry, the framework id to re-subscribe
//! with, and the heartbeat watchdog that re-subscribes with capped, jittered
//! backoff when the master goes quiet. The shell (`mesos-http`) performs the
//! [`Action`]s it yields and feeds back what happened; all decisions are here.
//!
//! The `calls` module builds every `Call` the scheduler sends.

use std::collections::VecDeque;
use std::time::Duration;

use drover_protos::mesos::v1 as mesos;
use drover_protos::mesos::v1::scheduler::{Call, Event, call, event};
use drover_time::{SplitMix64, Timestamp};

use crate::backoff::Backoff;
use crate::codec::ContentType;
use crate::endpoint::Endpoint;

/// The path of the scheduler API on a master.
pub const SCHEDULER_PATH: &str = "/api/v1/scheduler";

/// Identifies one attempt to open the subscription stream. Responses and
/// events carrying an older id are stale and ignored.
pub type ConnId = u64;

/// Tunables of the subscription.
#[derive(Debug, Clone)]
pub struct SubscriptionConfig {
    /// The content type of calls and of the event stream.
    pub content_type: ContentType,
    /// How many heartbeat intervals may pass without any event before the
    /// connection is considered dead.
    pub heartbeat_misses: u32,
    /// The heartbeat interval assumed until SUBSCRIBED announces the real one.
    pub default_heartbeat: Duration,
    /// How long to wait for the response headers of SUBSCRIBE.
    pub connect_timeout: Duration,
    /// First re-subscription delay.
    pub backoff_initial: Duration,
    /// Cap of the re-subscription delay.
    pub backoff_max: Duration,
    /// Redirects followed in a row before backing off.
    pub max_redirects: u32,
}

impl Default for SubscriptionConfig {
    fn default() -> Self {
        SubscriptionConfig {
            content_type: ContentType::Protobuf,
            heartbeat_misses: 5,
            default_heartbeat: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(10),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            max_redirects: 5,
        }
    }
}

/// What the shell must do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// POST `call` (a SUBSCRIBE) to `endpoint` and keep reading the streamed
    /// body, reporting the response head and every record under `conn`.
    Subscribe {
        /// The id to report results under.
        conn: ConnId,
        /// Where to send it.
        endpoint: Endpoint,
        /// The SUBSCRIBE call.
        call: Box<Call>,
    },
    /// Drop the stream `conn`.
    Close {
        /// The stream to drop.
        conn: ConnId,
    },
}

/// Something the framework should know about the subscription.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// SUBSCRIBED arrived: calls may be sent.
    Subscribed {
        /// The id the master assigned (or confirmed).
        framework_id: String,
        /// The master's heartbeat interval.
        heartbeat: Duration,
        /// True when this framework had subscribed before (in this process
        /// or with a stored id): the framework must reconcile.
        resubscribed: bool,
    },
    /// The subscription was lost; no call can be sent until the next
    /// `Subscribed`.
    Disconnected {
        /// Why, for operators.
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    /// Waiting to (re)connect at `retry_at`.
    Disconnected { retry_at: Timestamp },
    /// SUBSCRIBE sent on `conn`, no response head yet.
    Connecting { conn: ConnId, deadline: Timestamp },
    /// Streaming on `conn`; `subscribed` once SUBSCRIBED arrived.
    Streaming { conn: ConnId, stream_id: String, deadline: Timestamp, subscribed: bool },
}

/// The state machine of a scheduler's subscription.
#[derive(Debug)]
pub struct Subscription {
    config: SubscriptionConfig,
    /// The master configured by the operator; used again after repeated failures.
    seed_endpoint: Endpoint,
    /// The master believed to lead.
    endpoint: Endpoint,
    framework_info: mesos::FrameworkInfo,
    framework_id: Option<String>,
    heartbeat: Duration,
    phase: Phase,
    next_conn: ConnId,
    redirects: u32,
    backoff: Backoff,
    rng: SplitMix64,
    actions: VecDeque<Action>,
    notices: VecDeque<Notice>,
    ever_subscribed: bool,
}

impl Subscription {
    /// A subscription that will connect to `master` at `now`. `framework_id`
    /// is the stored id from an earlier run, if any.
    pub fn new(
        config: SubscriptionConfig,
        master: Endpoint,
        mut framework_info: mesos::FrameworkInfo,
        framework_id: Option<String>,
        seed: u64,
        now: Timestamp,
    ) -> Self {
        if let Some(id) = &framework_id {
            framework_info.id = Some(mesos::FrameworkId { value: id.clone() });
        }
        let backoff = Backoff::new(config.backoff_initial, config.backoff_max);
        let heartbeat = config.default_heartbeat;
        Subscription {
            seed_endpoint: master.clone(),
            endpoint: master,
            ever_subscribed: framework_id.is_some(),
            framework_info,
            framework_id,
            heartbeat,
            phase: Phase::Disconnected { retry_at: now },
            next_conn: 1,
            redirects: 0,
            backoff,
            rng: SplitMix64::new(seed),
            actions: VecDeque::new(),
            notices: VecDeque::new(),
            config,
        }
    }

    /// The content type to use for calls and streams.
    pub fn content_type(&self) -> ContentType {
        self.config.content_type
    }

    /// The master endpoint calls go to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The framework id, once known.
    pub fn framework_id(&self) -> Option<&str> {
        self.framework_id.as_deref()
    }

    /// The `Mesos-Stream-Id` to put on every call, while subscribed.
    pub fn stream_id(&self) -> Option<&str> {
        match &self.phase {
            Phase::Streaming { stream_id, subscribed: true, .. } => Some(stream_id),
            _ => None,
        }
    }

    /// True between SUBSCRIBED and the next disconnection.
    pub fn is_subscribed(&self) -> bool {
        self.stream_id().is_some()
    }

    /// The SUBSCRIBE call for the current state.
    pub fn subscribe_call(&self) -> Call {
        calls::subscribe(self.framework_info.clone(), self.framework_id.as_deref())
    }

    /// The response head of the SUBSCRIBE sent on `conn` arrived.
    pub fn handle_response(
        &mut self,
        conn: ConnId,
        status: u16,
        location: Option<&str>,
        stream_id: Option<&str>,
        now: Timestamp,
    ) {
        if !matches!(self.phase, Phase::Connecting { conn: c, .. } if c == conn) {
            return;
        }
        match status {
            200 => match stream_id {
                Some(id) if !id.is_empty() => {
                    let deadline = now.plus(self.heartbeat_window());
                    self.phase = Phase::Streaming {
                        conn,
                        stream_id: id.to_owned(),
                        deadline,
                        subscribed: false,
                    };
                }
                _ => self.fail(
                    conn,
                    "SUBSCRIBE answered without a Mesos-Stream-Id header".into(),
                    now,
                ),
            },
            307 => match location.map(|l| self.endpoint.resolve_location(l)) {
                Some(Ok(leader)) => {
                    self.redirects += 1;
                    self.endpoint = leader;
                    self.actions.push_back(Action::Close { conn });
                    if self.redirects > self.config.max_redirects {
                        self.fail_quietly(now);
                    } else {
                        self.phase = Phase::Disconnected { retry_at: now };
                    }
                }
                _ => self.fail(conn, "redirect without a valid Location header".into(), now),
            },
            other => self.fail(conn, format!("SUBSCRIBE answered HTTP {other}"), now),
        }
    }

    /// An event arrived on `conn`. Returns it when it belongs to the current
    /// stream (stale streams are ignored).
    pub fn handle_event(&mut self, conn: ConnId, event: Event, now: Timestamp) -> Option<Event> {
        let window = self.heartbeat_window();
        let Phase::Streaming { conn: c, deadline, subscribed, .. } = &mut self.phase else {
            return None;
        };
        if *c != conn {
            return None;
        }
        *deadline = now.plus(window);
        match event.r#type() {
            event::Type::Subscribed => {
                let s = event.subscribed.clone().unwrap_or_default();
                let id = s.framework_id.value;
                let heartbeat = s
                    .heartbeat_interval_seconds
                    .filter(|h| h.is_finite() && *h > 0.0)
                    .and_then(|h| Duration::try_from_secs_f64(h).ok())
                    .unwrap_or(self.config.default_heartbeat);
                *subscribed = true;
                self.heartbeat = heartbeat;
                let window = self.heartbeat_window();
                if let Phase::Streaming { deadline, .. } = &mut self.phase {
                    *deadline = now.plus(window);
                }
                self.framework_info.id = Some(mesos::FrameworkId { value: id.clone() });
                self.framework_id = Some(id.clone());
                self.backoff.reset();
                self.redirects = 0;
                let resubscribed = self.ever_subscribed;
                self.ever_subscribed = true;
                self.notices.push_back(Notice::Subscribed {
                    framework_id: id,
                    heartbeat,
                    resubscribed,
                });
            }
            event::Type::Error => {
                let message = event.error.as_ref().map_or_else(String::new, |e| e.message.clone());
                self.fail(conn, format!("master sent ERROR: {message}"), now);
            }
            _ => {}
        }
        Some(event)
    }

    /// The stream `conn` ended or failed.
    pub fn handle_stream_end(&mut self, conn: ConnId, reason: &str, now: Timestamp) {
        let current = match &self.phase {
            Phase::Connecting { conn: c, .. } | Phase::Streaming { conn: c, .. } => *c == conn,
            Phase::Disconnected { .. } => false,
        };
        if current {
            self.fail(conn, format!("subscription stream ended: {reason}"), now);
        }
    }

    /// A non-SUBSCRIBE call got an HTTP answer. A `307` means the leader
    /// changed under us: re-subscribe with the new leader.
    pub fn handle_call_response(&mut self, status: u16, location: Option<&str>, now: Timestamp) {
        if status != 307 {
            return;
        }
        if let Some(Ok(leader)) = location.map(|l| self.endpoint.resolve_location(l)) {
            self.endpoint = leader;
        }
        if let Phase::Streaming { conn, .. } | Phase::Connecting { conn, .. } = self.phase {
            self.actions.push_back(Action::Close { conn });
            if self.is_subscribed() {
                self.notices.push_back(Notice::Disconnected {
                    reason: "the master redirected a call".into(),
                });
            }
            self.phase = Phase::Disconnected { retry_at: now };
        }
    }

    /// Time passed: run the heartbeat watchdog and the reconnect timer.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        match self.phase.clone() {
            Phase::Disconnected { retry_at } if now >= retry_at => {
                let conn = self.next_conn;
                self.next_conn += 1;
                self.phase =
                    Phase::Connecting { conn, deadline: now.plus(self.config.connect_timeout) };
                self.actions.push_back(Action::Subscribe {
                    conn,
                    endpoint: self.endpoint.clone(),
                    call: Box::new(self.subscribe_call()),
                });
            }
            Phase::Connecting { conn, deadline } if now >= deadline => {
                self.fail(conn, "SUBSCRIBE timed out".into(), now);
            }
            Phase::Streaming { conn, deadline, .. } if now >= deadline => {
                let missed = self.config.heartbeat_misses;
                self.fail(
                    conn,
                    format!("no event from the master for {missed} heartbeat intervals"),
                    now,
                );
            }
            _ => {}
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Timestamp {
        match &self.phase {
            Phase::Disconnected { retry_at } => *retry_at,
            Phase::Connecting { deadline, .. } | Phase::Streaming { deadline, .. } => *deadline,
        }
    }

    /// The next thing the shell must do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next notice for the framework.
    pub fn poll_notice(&mut self) -> Option<Notice> {
        self.notices.pop_front()
    }

    fn heartbeat_window(&self) -> Duration {
        self.heartbeat.saturating_mul(self.config.heartbeat_misses.max(1))
    }

    fn fail(&mut self, conn: ConnId, reason: String, now: Timestamp) {
        if self.is_subscribed() {
            self.notices.push_back(Notice::Disconnected { reason });
        }
        self.actions.push_back(Action::Close { conn });
        self.fail_quietly(now);
    }

    fn fail_quietly(&mut self, now: Timestamp) {
        let delay = self.backoff.next_delay(&mut self.rng);
        self.redirects = 0;
        // After repeated failures, go back to the configured master: the
        // leader we were redirected to may be gone for good.
        if self.backoff.attempts() > 2 {
            self.endpoint = self.seed_endpoint.clone();
        }
        self.phase = Phase::Disconnected { retry_at: now.plus(delay) };
    }
}

/// Builders for every call a scheduler sends.
pub mod calls {
    use super::*;

    fn base(kind: call::Type, framework_id: Option<&str>) -> Call {
        let mut c = Call {
            framework_id: framework_id.map(|v| mesos::FrameworkId { value: v.to_owned() }),
            ..Default::default()
        };
        c.set_type(kind);
        c
    }

    fn offer_ids(ids: &[String]) -> Vec<mesos::OfferId> {
        ids.iter().map(|v| mesos::OfferId { value: v.clone() }).collect()
    }

    fn filters(refuse_seconds: f64) -> mesos::Filters {
        mesos::Filters { refuse_seconds: Some(refuse_seconds) }
    }

    /// SUBSCRIBE; `framework_id` is set when re-subscribing.
    pub fn subscribe(mut framework_info: mesos::FrameworkInfo, framework_id: Option<&str>) -> Call {
        if let Some(id) = framework_id {
            framework_info.id = Some(mesos::FrameworkId { value: id.to_owned() });
        }
        let mut c = base(call::Type::Subscribe, framework_id);
        c.subscribe = Some(call::Subscribe { framework_info, ..Default::default() });
        c
    }

    /// ACCEPT the offers with the given operations; unused resources are
    /// refused for `refuse_seconds`.
    pub fn accept(
        framework_id: &str,
        offers: &[String],
        operations: Vec<mesos::offer::Operation>,
        refuse_seconds: f64,
    ) -> Call {
        let mut c = base(call::Type::Accept, Some(framework_id));
        c.accept = Some(call::Accept {
            offer_ids: offer_ids(offers),
            operations,
            filters: Some(filters(refuse_seconds)),
        });
        c
    }

    /// A LAUNCH operation.
    pub fn launch(task_infos: Vec<mesos::TaskInfo>) -> mesos::offer::Operation {
        let mut op = mesos::offer::Operation {
            launch: Some(mesos::offer::operation::Launch { task_infos }),
            ..Default::default()
        };
        op.set_type(mesos::offer::operation::Type::Launch);
        op
    }

    /// DECLINE the offers for `refuse_seconds`.
    pub fn decline(framework_id: &str, offers: &[String], refuse_seconds: f64) -> Call {
        let mut c = base(call::Type::Decline, Some(framework_id));
        c.decline = Some(call::Decline {
            offer_ids: offer_ids(offers),
            filters: Some(filters(refuse_seconds)),
        });
        c
    }

    /// REVIVE offers (all roles when `roles` is empty).
    pub fn revive(framework_id: &str, roles: &[String]) -> Call {
        let mut c = base(call::Type::Revive, Some(framework_id));
        c.revive = Some(call::Revive { roles: roles.to_vec() });
        c
    }

    /// SUPPRESS offers (all roles when `roles` is empty).
    pub fn suppress(framework_id: &str, roles: &[String]) -> Call {
        let mut c = base(call::Type::Suppress, Some(framework_id));
        c.suppress = Some(call::Suppress { roles: roles.to_vec() });
        c
    }

    /// KILL a task, optionally overriding its kill policy's grace period.
    pub fn kill(
        framework_id: &str,
        task_id: &str,
        agent_id: Option<&str>,
        grace: Option<Duration>,
    ) -> Call {
        let mut c = base(call::Type::Kill, Some(framework_id));
        c.kill = Some(call::Kill {
            task_id: mesos::TaskId { value: task_id.to_owned() },
            agent_id: agent_id.map(|a| mesos::AgentId { value: a.to_owned() }),
            kill_policy: grace.map(|g| mesos::KillPolicy { grace_period: Some(duration_info(g)) }),
        });
        c
    }

    /// ACKNOWLEDGE a status update.
    pub fn acknowledge(framework_id: &str, agent_id: &str, task_id: &str, uuid: Vec<u8>) -> Call {
        let mut c = base(call::Type::Acknowledge, Some(framework_id));
        c.acknowledge = Some(call::Acknowledge {
            agent_id: mesos::AgentId { value: agent_id.to_owned() },
            task_id: mesos::TaskId { value: task_id.to_owned() },
            uuid,
        });
        c
    }

    /// RECONCILE the given `(task_id, agent_id)` pairs; an empty list asks
    /// for implicit reconciliation of every task the master knows.
    pub fn reconcile(framework_id: &str, tasks: &[(String, Option<String>)]) -> Call {
        let mut c = base(call::Type::Reconcile, Some(framework_id));
        c.reconcile = Some(call::Reconcile {
            tasks: tasks
                .iter()
                .map(|(t, a)| call::reconcile::Task {
                    task_id: mesos::TaskId { value: t.clone() },
                    agent_id: a.as_ref().map(|a| mesos::AgentId { value: a.clone() }),
                })
                .collect(),
        });
        c
    }

    /// SHUTDOWN an executor.
    pub fn shutdown(framework_id: &str, executor_id: &str, agent_id: &str) -> Call {
        let mut c = base(call::Type::Shutdown, Some(framework_id));
        c.shutdown = Some(call::Shutdown {
            executor_id: mesos::ExecutorId { value: executor_id.to_owned() },
            agent_id: mesos::AgentId { value: agent_id.to_owned() },
        });
        c
    }

    /// TEARDOWN the framework: the master kills every task and forgets it.
    pub fn teardown(framework_id: &str) -> Call {
        base(call::Type::Teardown, Some(framework_id))
    }

    /// A `DurationInfo` in nanoseconds.
    pub fn duration_info(d: Duration) -> mesos::DurationInfo {
        mesos::DurationInfo { nanoseconds: i64::try_from(d.as_nanos()).unwrap_or(i64::MAX) }
    }
}

#[cfg(test)]
mod tests;
