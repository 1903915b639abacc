//! The executor side of the v1 HTTP API, without sockets.
//!
//! [`ExecutorSession`] keeps what an executor must not lose while its agent
//! is away: every status update until the agent ACKNOWLEDGEs it, and every
//! task it launched until one of that task's updates is acknowledged. Both are
//! re-sent in the next SUBSCRIBE. With checkpointing the executor keeps
//! re-subscribing (capped, jittered backoff) for `MESOS_RECOVERY_TIMEOUT`,
//! then gives up; without checkpointing it gives up at once, as Mesos expects.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use drover_protos::mesos::v1 as mesos;
use drover_protos::mesos::v1::executor::{Call, Event, call, event};
use drover_time::{SplitMix64, Timestamp};

use crate::backoff::Backoff;

/// The identity and settings an executor learns from its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutorConfig {
    /// `MESOS_FRAMEWORK_ID`.
    pub framework_id: String,
    /// `MESOS_EXECUTOR_ID`.
    pub executor_id: String,
    /// `MESOS_CHECKPOINT` = `1`.
    pub checkpoint: bool,
    /// `MESOS_RECOVERY_TIMEOUT` (default 15 minutes).
    pub recovery_timeout: Duration,
    /// `MESOS_SUBSCRIPTION_BACKOFF_MAX` (default 2 seconds).
    pub backoff_max: Duration,
    /// How long to wait for the SUBSCRIBE response head.
    pub connect_timeout: Duration,
}

/// Identifies one attempt to open the subscription stream.
pub type ConnId = u64;

/// What the shell must do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// POST the SUBSCRIBE `call` and read its stream under `conn`.
    Subscribe {
        /// The id to report results under.
        conn: ConnId,
        /// The SUBSCRIBE call.
        call: Box<Call>,
    },
    /// POST a call (an UPDATE) on the current subscription.
    Send(Box<Call>),
    /// Drop the stream `conn`.
    Close {
        /// The stream to drop.
        conn: ConnId,
    },
    /// The agent is gone past the recovery timeout (or checkpointing is
    /// off): kill every task and exit.
    GiveUp {
        /// Why, for the log.
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Disconnected { since: Timestamp, retry_at: Timestamp },
    Connecting { conn: ConnId, since: Timestamp, deadline: Timestamp },
    Subscribed { conn: ConnId },
    GaveUp,
}

/// The executor's subscription and its unacknowledged state.
#[derive(Debug)]
pub struct ExecutorSession {
    config: ExecutorConfig,
    phase: Phase,
    next_conn: ConnId,
    /// Updates not yet acknowledged, in the order they were sent.
    unacked_updates: Vec<call::Update>,
    /// Tasks launched whose updates were never acknowledged, by task id.
    unacked_tasks: BTreeMap<String, mesos::TaskInfo>,
    backoff: Backoff,
    rng: SplitMix64,
    actions: VecDeque<Action>,
}

impl ExecutorSession {
    /// A session that connects at `now`.
    pub fn new(config: ExecutorConfig, seed: u64, now: Timestamp) -> Self {
        let backoff =
            Backoff::new(Duration::from_millis(100).min(config.backoff_max), config.backoff_max);
        ExecutorSession {
            config,
            phase: Phase::Disconnected { since: now, retry_at: now },
            next_conn: 1,
            unacked_updates: Vec::new(),
            unacked_tasks: BTreeMap::new(),
            backoff,
            rng: SplitMix64::new(seed),
            actions: VecDeque::new(),
        }
    }

    /// True while subscribed to the agent.
    pub fn is_subscribed(&self) -> bool {
        matches!(self.phase, Phase::Subscribed { .. })
    }

    /// Updates sent but not yet acknowledged.
    pub fn unacknowledged_updates(&self) -> &[call::Update] {
        &self.unacked_updates
    }

    /// Ids of tasks none of whose updates has been acknowledged yet.
    pub fn unacknowledged_tasks(&self) -> impl Iterator<Item = &str> {
        self.unacked_tasks.keys().map(String::as_str)
    }

    fn base(&self, kind: call::Type) -> Call {
        let mut c = Call {
            executor_id: mesos::ExecutorId { value: self.config.executor_id.clone() },
            framework_id: mesos::FrameworkId { value: self.config.framework_id.clone() },
            ..Default::default()
        };
        c.set_type(kind);
        c
    }

    /// The SUBSCRIBE call, carrying everything not yet acknowledged.
    pub fn subscribe_call(&self) -> Call {
        let mut c = self.base(call::Type::Subscribe);
        c.subscribe = Some(call::Subscribe {
            unacknowledged_tasks: self.unacked_tasks.values().cloned().collect(),
            unacknowledged_updates: self.unacked_updates.clone(),
        });
        c
    }

    /// The response head of the SUBSCRIBE on `conn` arrived.
    pub fn handle_response(&mut self, conn: ConnId, status: u16, now: Timestamp) {
        let Phase::Connecting { conn: c, since, .. } = self.phase else { return };
        if c != conn {
            return;
        }
        if status != 200 {
            self.actions.push_back(Action::Close { conn });
            self.disconnected(since, now);
        }
    }

    /// An event arrived on `conn`. Returns it when it belongs to the current
    /// stream.
    pub fn handle_event(&mut self, conn: ConnId, event: Event, now: Timestamp) -> Option<Event> {
        let current = match self.phase {
            Phase::Connecting { conn: c, .. } | Phase::Subscribed { conn: c } => c == conn,
            _ => false,
        };
        if !current {
            return None;
        }
        match event.r#type() {
            event::Type::Subscribed => {
                self.phase = Phase::Subscribed { conn };
                self.backoff.reset();
            }
            event::Type::Acknowledged => {
                if let Some(ack) = &event.acknowledged {
                    self.unacked_updates
                        .retain(|u| u.status.uuid.as_deref() != Some(&ack.uuid[..]));
                    self.unacked_tasks.remove(&ack.task_id.value);
                }
            }
            event::Type::Launch => {
                if let Some(task) = event.launch.as_ref().map(|l| l.task.clone()) {
                    self.unacked_tasks.insert(task.task_id.value.clone(), task);
                }
            }
            event::Type::LaunchGroup => {
                if let Some(group) = &event.launch_group {
                    for task in &group.task_group.tasks {
                        self.unacked_tasks.insert(task.task_id.value.clone(), task.clone());
                    }
                }
            }
            event::Type::Error => {
                self.actions.push_back(Action::Close { conn });
                self.disconnected(now, now);
            }
            _ => {}
        }
        Some(event)
    }

    /// The stream `conn` ended or failed.
    pub fn handle_stream_end(&mut self, conn: ConnId, now: Timestamp) {
        let since = match self.phase {
            Phase::Connecting { conn: c, since, .. } if c == conn => since,
            Phase::Subscribed { conn: c } if c == conn => now,
            _ => return,
        };
        self.disconnected(since, now);
    }

    /// Sends a status update: assigns it a fresh RFC 4122 UUID, marks it as
    /// coming from the executor, stamps it, and keeps it until acknowledged.
    /// The update goes out now when subscribed, otherwise with the next
    /// SUBSCRIBE.
    pub fn send_update(&mut self, mut status: mesos::TaskStatus, now: Timestamp) -> Vec<u8> {
        let uuid = self.rng.uuid_v4().to_vec();
        status.uuid = Some(uuid.clone());
        status.set_source(mesos::task_status::Source::Executor);
        status.timestamp = Some(now.as_secs_f64());
        status.executor_id = Some(mesos::ExecutorId { value: self.config.executor_id.clone() });
        let update = call::Update { status };
        self.unacked_updates.push(update.clone());
        if self.is_subscribed() {
            let mut c = self.base(call::Type::Update);
            c.update = Some(update);
            self.actions.push_back(Action::Send(Box::new(c)));
        }
        uuid
    }

    /// A call sent on the current subscription failed. The update it carried
    /// stays pending; the subscription is treated as lost.
    pub fn handle_send_failure(&mut self, now: Timestamp) {
        if let Phase::Subscribed { conn } = self.phase {
            self.actions.push_back(Action::Close { conn });
            self.disconnected(now, now);
        }
    }

    /// Time passed: reconnect, time out a connect, or give up once the agent
    /// has been unreachable for the recovery timeout.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        match self.phase {
            Phase::Disconnected { since, .. } | Phase::Connecting { since, .. }
                if now >= since.plus(self.config.recovery_timeout) =>
            {
                if let Phase::Connecting { conn, .. } = self.phase {
                    self.actions.push_back(Action::Close { conn });
                }
                self.phase = Phase::GaveUp;
                let secs = self.config.recovery_timeout.as_secs();
                self.actions.push_back(Action::GiveUp {
                    reason: format!("agent unreachable for the recovery timeout ({secs}s)"),
                });
            }
            Phase::Disconnected { since, retry_at } if now >= retry_at => {
                let conn = self.next_conn;
                self.next_conn += 1;
                self.phase = Phase::Connecting {
                    conn,
                    since,
                    deadline: now.plus(self.config.connect_timeout),
                };
                self.actions
                    .push_back(Action::Subscribe { conn, call: Box::new(self.subscribe_call()) });
            }
            Phase::Connecting { conn, since, deadline } if now >= deadline => {
                self.actions.push_back(Action::Close { conn });
                self.disconnected(since, now);
            }
            _ => {}
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let give_up = |since: Timestamp| since.plus(self.config.recovery_timeout);
        match self.phase {
            Phase::Disconnected { since, retry_at } => Some(retry_at.min(give_up(since))),
            Phase::Connecting { since, deadline, .. } => Some(deadline.min(give_up(since))),
            Phase::Subscribed { .. } | Phase::GaveUp => None,
        }
    }

    /// The next thing the shell must do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    fn disconnected(&mut self, since: Timestamp, now: Timestamp) {
        if !self.config.checkpoint
            && self.next_conn > 1
            && !matches!(self.phase, Phase::Connecting { .. })
        {
            self.phase = Phase::GaveUp;
            self.actions.push_back(Action::GiveUp {
                reason: "disconnected from the agent and the framework does not checkpoint".into(),
            });
            return;
        }
        let delay = self.backoff.next_delay(&mut self.rng);
        self.phase = Phase::Disconnected { since, retry_at: now.plus(delay) };
    }
}

#[cfg(test)]
mod tests;
