//! Tests of the scheduler subscription state machine, on a virtual clock.

use super::*;

const T0: Timestamp = Timestamp::from_secs(1_000);

fn info() -> mesos::FrameworkInfo {
    mesos::FrameworkInfo { user: "root".into(), name: "drover".into(), ..Default::default() }
}

fn master() -> Endpoint {
    Endpoint::parse("http://127.0.0.1:5050", SCHEDULER_PATH).unwrap()
}

fn subscribed_event(id: &str, heartbeat: f64) -> Event {
    let mut e = Event {
        subscribed: Some(event::Subscribed {
            framework_id: mesos::FrameworkId { value: id.into() },
            heartbeat_interval_seconds: Some(heartbeat),
            master_info: None,
        }),
        ..Default::default()
    };
    e.set_type(event::Type::Subscribed);
    e
}

fn heartbeat() -> Event {
    let mut e = Event::default();
    e.set_type(event::Type::Heartbeat);
    e
}

fn expect_subscribe(s: &mut Subscription) -> (ConnId, Endpoint, Call) {
    match s.poll_action() {
        Some(Action::Subscribe { conn, endpoint, call }) => (conn, endpoint, *call),
        other => panic!("expected Subscribe, got {other:?}"),
    }
}

/// Drives a fresh subscription to SUBSCRIBED and returns the stream's conn.
fn subscribe(s: &mut Subscription, now: Timestamp) -> ConnId {
    s.handle_timeout(now);
    let (conn, _, _) = expect_subscribe(s);
    s.handle_response(conn, 200, None, Some("stream-1"), now);
    s.handle_event(conn, subscribed_event("fw-1", 15.0), now).unwrap();
    conn
}

#[test]
fn first_subscribe_has_no_framework_id_and_learns_one() {
    let mut s = Subscription::new(SubscriptionConfig::default(), master(), info(), None, 1, T0);
    assert_eq!(s.poll_timeout(), T0);
    s.handle_timeout(T0);
    let (conn, endpoint, call) = expect_subscribe(&mut s);
    assert_eq!(endpoint.url(), "http://127.0.0.1:5050/api/v1/scheduler");
    assert_eq!(call.r#type(), call::Type::Subscribe);
    assert!(call.framework_id.is_none());
    assert!(call.subscribe.as_ref().unwrap().framework_info.id.is_none());
    assert!(!s.is_subscribed());

    s.handle_response(conn, 200, None, Some("stream-1"), T0);
    assert_eq!(s.stream_id(), None, "no calls before SUBSCRIBED");
    s.handle_event(conn, subscribed_event("fw-1", 15.0), T0).unwrap();
    assert_eq!(s.stream_id(), Some("stream-1"));
    assert_eq!(s.framework_id(), Some("fw-1"));
    assert_eq!(
        s.poll_notice(),
        Some(Notice::Subscribed {
            framework_id: "fw-1".into(),
            heartbeat: Duration::from_secs(15),
            resubscribed: false
        })
    );
    // The resubscription call now carries the id, in both places.
    let again = s.subscribe_call();
    assert_eq!(again.framework_id.unwrap().value, "fw-1");
    assert_eq!(again.subscribe.unwrap().framework_info.id.unwrap().value, "fw-1");
}

#[test]
fn stored_framework_id_is_used_on_the_first_subscribe() {
    let mut s = Subscription::new(
        SubscriptionConfig::default(),
        master(),
        info(),
        Some("fw-9".into()),
        1,
        T0,
    );
    s.handle_timeout(T0);
    let (conn, _, call) = expect_subscribe(&mut s);
    assert_eq!(call.framework_id.as_ref().unwrap().value, "fw-9");
    assert_eq!(call.subscribe.unwrap().framework_info.id.unwrap().value, "fw-9");
    s.handle_response(conn, 200, None, Some("x"), T0);
    s.handle_event(conn, subscribed_event("fw-9", 15.0), T0);
    assert!(matches!(s.poll_notice(), Some(Notice::Subscribed { resubscribed: true, .. })));
}

#[test]
fn heartbeats_keep_the_stream_alive_and_silence_kills_it() {
    let mut s = Subscription::new(SubscriptionConfig::default(), master(), info(), None, 1, T0);
    let conn = subscribe(&mut s, T0);
    s.poll_notice();
    // 5 misses of 15 s = 75 s window, refreshed by every event.
    assert_eq!(s.poll_timeout(), T0.plus(Duration::from_secs(75)));
    let t1 = T0.plus(Duration::from_secs(60));
    s.handle_event(conn, heartbeat(), t1);
    s.handle_timeout(T0.plus(Duration::from_secs(75)));
    assert!(s.is_subscribed(), "a heartbeat at +60s extends the deadline");
    assert_eq!(s.poll_action(), None);

    let dead = t1.plus(Duration::from_secs(75));
    s.handle_timeout(dead);
    assert!(!s.is_subscribed());
    assert_eq!(s.poll_action(), Some(Action::Close { conn }));
    assert!(
        matches!(s.poll_notice(), Some(Notice::Disconnected { reason }) if reason.contains("heartbeat"))
    );
    // Re-subscription waits for the jittered backoff (first delay in [0.5s, 1s]).
    let retry = s.poll_timeout();
    assert!(retry > dead && retry <= dead.plus(Duration::from_secs(1)), "{retry:?}");
    s.handle_timeout(retry);
    let (conn2, _, call) = expect_subscribe(&mut s);
    assert_ne!(conn2, conn);
    assert_eq!(call.framework_id.unwrap().value, "fw-1");
}

/// Found by `fuzz/fuzz_targets/mesos_event.rs`: a SUBSCRIBED whose
/// heartbeat interval is finite but longer than a `Duration` panicked.
#[test]
fn absurd_heartbeat_intervals_fall_back_to_the_default() {
    for bad in [1e300, f64::MAX, f64::INFINITY, f64::NAN, -1.0, 0.0] {
        let mut s = Subscription::new(SubscriptionConfig::default(), master(), info(), None, 1, T0);
        s.handle_timeout(T0);
        let (conn, _, _) = expect_subscribe(&mut s);
        s.handle_response(conn, 200, None, Some("stream-1"), T0);
        s.handle_event(conn, subscribed_event("fw-1", bad), T0).unwrap();
        assert!(
            matches!(s.poll_notice(), Some(Notice::Subscribed { heartbeat, .. }) if heartbeat == Duration::from_secs(15)),
            "{bad}"
        );
        assert_eq!(s.poll_timeout(), T0.plus(Duration::from_secs(75)), "{bad}");
    }
}

#[test]
fn repeated_failures_back_off_up_to_the_cap_with_jitter() {
    let config = SubscriptionConfig::default();
    let cap = config.backoff_max;
    let mut s = Subscription::new(config, master(), info(), None, 7, T0);
    let mut now = T0;
    let mut delays = Vec::new();
    for _ in 0..12 {
        s.handle_timeout(now);
        let (conn, _, _) = expect_subscribe(&mut s);
        s.handle_response(conn, 503, None, None, now);
        assert_eq!(s.poll_action(), Some(Action::Close { conn }));
        let retry = s.poll_timeout();
        delays.push(retry.since(now));
        now = retry;
    }
    assert!(delays.iter().all(|d| *d <= cap));
    assert!(delays[0] <= Duration::from_secs(1));
    assert!(delays[11] >= cap / 2, "{delays:?}");
    assert!(delays.windows(2).any(|w| w[0] != w[1]));
    // A success resets the backoff.
    s.handle_timeout(now);
    let (conn, _, _) = expect_subscribe(&mut s);
    s.handle_response(conn, 200, None, Some("s"), now);
    s.handle_event(conn, subscribed_event("fw", 1.0), now);
    s.handle_stream_end(conn, "reset by peer", now);
    assert!(s.poll_timeout() <= now.plus(Duration::from_secs(1)));
}

#[test]
fn redirect_to_leader_is_followed_immediately() {
    let mut s = Subscription::new(SubscriptionConfig::default(), master(), info(), None, 1, T0);
    s.handle_timeout(T0);
    let (conn, _, _) = expect_subscribe(&mut s);
    s.handle_response(conn, 307, Some("//127.0.0.2:5051/api/v1/scheduler"), None, T0);
    assert_eq!(s.poll_action(), Some(Action::Close { conn }));
    assert_eq!(s.poll_timeout(), T0);
    s.handle_timeout(T0);
    let (_, endpoint, _) = expect_subscribe(&mut s);
    assert_eq!(endpoint.url(), "http://127.0.0.2:5051/api/v1/scheduler");
    assert_eq!(s.endpoint(), &endpoint);
}

#[test]
fn endless_redirects_back_off() {
    let mut s = Subscription::new(SubscriptionConfig::default(), master(), info(), None, 1, T0);
    let mut now = T0;
    for i in 0..=5 {
        s.handle_timeout(now);
        let (conn, _, _) = expect_subscribe(&mut s);
        s.handle_response(conn, 307, Some("//127.0.0.2:5051"), None, now);
        s.poll_action();
        if i < 5 {
            assert_eq!(s.poll_timeout(), now);
        }
        now = s.poll_timeout();
    }
    assert!(now > T0, "the sixth redirect in a row waits");
}

#[test]
fn redirected_call_forces_a_resubscription_with_the_new_leader() {
    let mut s = Subscription::new(SubscriptionConfig::default(), master(), info(), None, 1, T0);
    let conn = subscribe(&mut s, T0);
    s.poll_notice();
    s.handle_call_response(202, None, T0);
    assert!(s.is_subscribed());
    s.handle_call_response(307, Some("//10.0.0.1:5050/api/v1/scheduler"), T0);
    assert!(!s.is_subscribed());
    assert_eq!(s.poll_action(), Some(Action::Close { conn }));
    assert!(matches!(s.poll_notice(), Some(Notice::Disconnected { .. })));
    s.handle_timeout(T0);
    let (_, endpoint, _) = expect_subscribe(&mut s);
    assert_eq!(endpoint.authority, "10.0.0.1:5050");
}

#[test]
fn stale_connections_are_ignored() {
    let mut s = Subscription::new(SubscriptionConfig::default(), master(), info(), None, 1, T0);
    let old = subscribe(&mut s, T0);
    s.poll_notice();
    s.handle_stream_end(old, "eof", T0);
    s.poll_action();
    s.poll_notice();
    s.handle_timeout(s.poll_timeout());
    let (new, _, _) = expect_subscribe(&mut s);
    assert!(s.handle_event(old, heartbeat(), T0).is_none());
    s.handle_response(old, 200, None, Some("old"), T0);
    s.handle_stream_end(old, "late", T0);
    assert_eq!(s.poll_action(), None);
    s.handle_response(new, 200, None, Some("new"), T0);
    s.handle_event(new, subscribed_event("fw-1", 15.0), T0);
    assert_eq!(s.stream_id(), Some("new"));
}

#[test]
fn error_event_and_missing_stream_id_disconnect() {
    let mut s = Subscription::new(SubscriptionConfig::default(), master(), info(), None, 1, T0);
    let conn = subscribe(&mut s, T0);
    s.poll_notice();
    let mut err = Event {
        error: Some(event::Error { message: "Framework has been removed".into() }),
        ..Default::default()
    };
    err.set_type(event::Type::Error);
    assert!(s.handle_event(conn, err, T0).is_some());
    assert!(!s.is_subscribed());
    assert!(
        matches!(s.poll_notice(), Some(Notice::Disconnected { reason }) if reason.contains("removed"))
    );

    s.poll_action();
    s.handle_timeout(s.poll_timeout());
    let (conn, _, _) = expect_subscribe(&mut s);
    s.handle_response(conn, 200, None, None, T0);
    assert_eq!(s.poll_action(), Some(Action::Close { conn }));
}

#[test]
fn subscribe_that_never_answers_times_out() {
    let config = SubscriptionConfig::default();
    let timeout = config.connect_timeout;
    let mut s = Subscription::new(config, master(), info(), None, 1, T0);
    s.handle_timeout(T0);
    let (conn, _, _) = expect_subscribe(&mut s);
    assert_eq!(s.poll_timeout(), T0.plus(timeout));
    s.handle_timeout(T0.plus(timeout));
    assert_eq!(s.poll_action(), Some(Action::Close { conn }));
}

#[test]
fn call_builders_set_framework_and_filters() {
    let c = calls::decline("fw", &["o1".into(), "o2".into()], 120.0);
    assert_eq!(c.r#type(), call::Type::Decline);
    let d = c.decline.unwrap();
    assert_eq!(d.offer_ids.len(), 2);
    assert_eq!(d.filters.unwrap().refuse_seconds, Some(120.0));
    let k = calls::kill("fw", "t1", Some("a1"), Some(Duration::from_secs(3))).kill.unwrap();
    assert_eq!(k.kill_policy.unwrap().grace_period.unwrap().nanoseconds, 3_000_000_000);
    let r = calls::reconcile("fw", &[]).reconcile.unwrap();
    assert!(r.tasks.is_empty());
    assert_eq!(calls::suppress("fw", &[]).r#type(), call::Type::Suppress);
    assert_eq!(calls::revive("fw", &[]).r#type(), call::Type::Revive);
    let a = calls::acknowledge("fw", "a1", "t1", vec![1; 16]);
    assert_eq!(a.framework_id.unwrap().value, "fw");
}
