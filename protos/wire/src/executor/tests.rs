//! Tests of the executor session state machine, on a virtual clock.

use super::*;

const T0: Timestamp = Timestamp::from_secs(5_000);

fn config(checkpoint: bool) -> ExecutorConfig {
    ExecutorConfig {
        framework_id: "fw".into(),
        executor_id: "ex".into(),
        checkpoint,
        recovery_timeout: Duration::from_secs(60),
        backoff_max: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(5),
    }
}

fn ev(kind: event::Type) -> Event {
    let mut e = Event::default();
    e.set_type(kind);
    e
}

fn launch(task_id: &str) -> Event {
    let mut e = ev(event::Type::Launch);
    e.launch = Some(event::Launch {
        task: mesos::TaskInfo {
            name: task_id.into(),
            task_id: mesos::TaskId { value: task_id.into() },
            agent_id: mesos::AgentId { value: "a".into() },
            ..Default::default()
        },
    });
    e
}

fn ack(task_id: &str, uuid: Vec<u8>) -> Event {
    let mut e = ev(event::Type::Acknowledged);
    e.acknowledged =
        Some(event::Acknowledged { task_id: mesos::TaskId { value: task_id.into() }, uuid });
    e
}

fn status(task_id: &str, state: mesos::TaskState) -> mesos::TaskStatus {
    let mut s = mesos::TaskStatus {
        task_id: mesos::TaskId { value: task_id.into() },
        ..Default::default()
    };
    s.set_state(state);
    s
}

fn connect(s: &mut ExecutorSession, now: Timestamp) -> (ConnId, Call) {
    s.handle_timeout(now);
    match s.poll_action() {
        Some(Action::Subscribe { conn, call }) => {
            s.handle_response(conn, 200, now);
            s.handle_event(conn, ev(event::Type::Subscribed), now);
            (conn, *call)
        }
        other => panic!("expected Subscribe, got {other:?}"),
    }
}

#[test]
fn updates_carry_valid_uuids_and_are_sent_while_subscribed() {
    let mut s = ExecutorSession::new(config(true), 3, T0);
    let (conn, call) = connect(&mut s, T0);
    assert_eq!(call.r#type(), call::Type::Subscribe);
    assert_eq!(call.framework_id.value, "fw");
    s.handle_event(conn, launch("t1"), T0);
    let uuid = s.send_update(status("t1", mesos::TaskState::TaskRunning), T0);
    assert_eq!(uuid.len(), 16);
    assert_eq!(uuid[6] >> 4, 4, "version 4");
    assert_eq!(uuid[8] >> 6, 0b10, "RFC 4122 variant");
    let Some(Action::Send(c)) = s.poll_action() else { panic!("update not sent") };
    let st = c.update.unwrap().status;
    assert_eq!(st.uuid.as_deref(), Some(&uuid[..]));
    assert_eq!(st.source(), mesos::task_status::Source::Executor);
    assert_eq!(st.timestamp, Some(T0.as_secs_f64()));
    assert_eq!(st.executor_id.unwrap().value, "ex");
}

#[test]
fn unacknowledged_updates_and_tasks_are_resent_on_resubscribe() {
    let mut s = ExecutorSession::new(config(true), 3, T0);
    let (conn, _) = connect(&mut s, T0);
    s.handle_event(conn, launch("t1"), T0);
    s.handle_event(conn, launch("t2"), T0);
    let u1 = s.send_update(status("t1", mesos::TaskState::TaskStarting), T0);
    let _u2 = s.send_update(status("t1", mesos::TaskState::TaskRunning), T0);
    let u3 = s.send_update(status("t2", mesos::TaskState::TaskStarting), T0);
    s.handle_event(conn, ack("t1", u1), T0);
    assert_eq!(s.unacknowledged_updates().len(), 2);
    assert_eq!(s.unacknowledged_tasks().collect::<Vec<_>>(), vec!["t2"]);

    while s.poll_action().is_some() {}
    s.handle_stream_end(conn, T0);
    assert!(!s.is_subscribed());
    // An update produced while disconnected is not sent, only kept.
    s.send_update(status("t2", mesos::TaskState::TaskRunning), T0);
    while let Some(a) = s.poll_action() {
        assert!(!matches!(a, Action::Send(_)), "sent while disconnected");
    }
    let later = s.poll_timeout().unwrap();
    let (conn2, call) = connect(&mut s, later);
    let sub = call.subscribe.unwrap();
    assert_eq!(sub.unacknowledged_updates.len(), 3);
    assert_eq!(sub.unacknowledged_tasks.len(), 1);
    assert_eq!(sub.unacknowledged_tasks[0].task_id.value, "t2");
    // Order of updates is preserved.
    let states: Vec<_> = sub.unacknowledged_updates.iter().map(|u| u.status.state()).collect();
    assert_eq!(
        states,
        vec![
            mesos::TaskState::TaskRunning,
            mesos::TaskState::TaskStarting,
            mesos::TaskState::TaskRunning
        ]
    );
    s.handle_event(conn2, ack("t2", u3), later);
    assert_eq!(s.unacknowledged_updates().len(), 2);
    assert_eq!(s.unacknowledged_tasks().count(), 0);
}

#[test]
fn gives_up_after_the_recovery_timeout() {
    let mut s = ExecutorSession::new(config(true), 3, T0);
    let (conn, _) = connect(&mut s, T0);
    let lost = T0.plus(Duration::from_secs(10));
    s.handle_stream_end(conn, lost);
    let mut now = lost;
    let mut attempts = 0;
    loop {
        let next = s.poll_timeout().expect("a timer while disconnected");
        assert!(next >= now);
        assert!(next.since(now) <= Duration::from_secs(5), "retries are capped");
        now = next;
        s.handle_timeout(now);
        match s.poll_action() {
            Some(Action::Subscribe { conn, .. }) => {
                attempts += 1;
                s.handle_response(conn, 503, now);
                s.poll_action();
            }
            Some(Action::GiveUp { reason }) => {
                assert!(reason.contains("recovery timeout"));
                break;
            }
            Some(Action::Close { .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(attempts > 10, "kept retrying ({attempts})");
    assert!(now >= lost.plus(Duration::from_secs(60)) && now <= lost.plus(Duration::from_secs(61)));
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn without_checkpointing_a_disconnection_is_final() {
    let mut s = ExecutorSession::new(config(false), 3, T0);
    let (conn, _) = connect(&mut s, T0);
    s.handle_stream_end(conn, T0);
    assert!(matches!(s.poll_action(), Some(Action::GiveUp { .. })));
}

#[test]
fn first_subscription_retries_while_the_agent_is_not_ready() {
    // Even without checkpointing, the very first SUBSCRIBE is retried.
    let mut s = ExecutorSession::new(config(false), 3, T0);
    s.handle_timeout(T0);
    let Some(Action::Subscribe { conn, .. }) = s.poll_action() else { panic!() };
    s.handle_response(conn, 503, T0);
    assert_eq!(s.poll_action(), Some(Action::Close { conn }));
    assert!(s.poll_timeout().unwrap() > T0);
}

#[test]
fn send_failure_keeps_the_update_and_reconnects() {
    let mut s = ExecutorSession::new(config(true), 3, T0);
    let (_conn, _) = connect(&mut s, T0);
    s.send_update(status("t1", mesos::TaskState::TaskFailed), T0);
    s.poll_action();
    s.handle_send_failure(T0);
    assert!(matches!(s.poll_action(), Some(Action::Close { .. })));
    let retry = s.poll_timeout().unwrap();
    let (_, call) = connect(&mut s, retry);
    assert_eq!(call.subscribe.unwrap().unacknowledged_updates.len(), 1);
}
