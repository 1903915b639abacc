//! Mesos events as the scheduler and the executor receive them: decoded with
//! `mesos_wire::ContentType` (protobuf through prost, JSON through Drover's
//! Mesos JSON mapping in `drover_protos::json`), then handled by the
//! subscription state machines (`mesos_wire::scheduler::Subscription`,
//! `mesos_wire::executor::ExecutorSession`).
//!
//! Input: byte 0 picks the API (bit 0: executor, else scheduler) and the
//! encoding (bit 1: JSON, else protobuf); the rest is one event record.
//!
//! Checks: no panic; a decoded event converts to Mesos JSON (which
//! `ContentType::encode` assumes cannot fail) and back to the same message
//! (doubles within a few ULPs, see [`same`]);
//! it re-encodes to protobuf that decodes to the same message; the state
//! machine takes it, and the calls it builds afterwards encode.
#![no_main]

use std::fmt::Debug;
use std::time::Duration;

use drover_protos::json;
use drover_protos::mesos::v1 as mesos;
use drover_protos::{Message, Name};
use drover_time::Timestamp;
use libfuzzer_sys::fuzz_target;
use mesos_wire::ContentType;
use mesos_wire::Endpoint;
use mesos_wire::executor::{self, ExecutorConfig, ExecutorSession};
use mesos_wire::scheduler::{self, SCHEDULER_PATH, Subscription, SubscriptionConfig};
use serde_json::Value;

const NOW: Timestamp = Timestamp::from_secs(1_700_000_000);

/// Decodes `bytes` as `M`; when it is one, checks that both encodings give
/// it back unchanged.
fn decode<M: Message + Name + Default + PartialEq + Debug>(
    content_type: ContentType,
    bytes: &[u8],
) -> Option<M> {
    let msg: M = content_type.decode(bytes).ok()?;
    let proto = msg.encode_to_vec();
    let from_proto = M::decode(proto.as_slice()).expect("re-encoded protobuf decodes");
    assert_eq!(from_proto.encode_to_vec(), proto, "protobuf round trip changed the message");
    let text = json::to_json(&msg).expect("a decoded message converts to JSON");
    let from_json: M = json::from_json(&text).unwrap_or_else(|e| {
        panic!("its own JSON does not decode: {e:?}\n{}", String::from_utf8_lossy(&text))
    });
    let again = json::to_json_value(&from_json).expect("converts to JSON");
    let first: Value = serde_json::from_slice(&text).expect("valid JSON");
    assert!(same(&first, &again), "JSON round trip changed the message\n{first}\n{again}");
    Some(msg)
}

/// `a` and `b` are the same JSON, up to a few ULPs in floating-point
/// numbers: serde_json (without its `float_roundtrip` feature) may parse a
/// double one ULP off, harmless for Mesos' scalars (0.001 precision).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
            x == y || (x - y).abs() <= 4.0 * f64::EPSILON * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// Both encodings of a call the state machine built.
fn encode_call<M: Message + Name>(call: &M) {
    json::to_json(call).expect("a call converts to JSON");
    let _ = ContentType::Protobuf.encode(call);
}

fn scheduler_event(content_type: ContentType, bytes: &[u8]) {
    let Some(event) = decode::<mesos::scheduler::Event>(content_type, bytes) else { return };
    let master = Endpoint::parse("http://127.0.0.1:5050", SCHEDULER_PATH).expect("valid");
    let info =
        mesos::FrameworkInfo { user: "root".into(), name: "drover".into(), ..Default::default() };
    let config = SubscriptionConfig { content_type, ..SubscriptionConfig::default() };
    let mut sub = Subscription::new(config, master, info, Some("fw".into()), 7, NOW);
    sub.handle_timeout(NOW);
    let Some(scheduler::Action::Subscribe { conn, .. }) = sub.poll_action() else {
        panic!("no SUBSCRIBE at start")
    };
    sub.handle_response(conn, 200, None, Some("stream"), NOW);
    let later = NOW.plus(Duration::from_secs(1));
    assert!(sub.handle_event(conn, event, later).is_some(), "the current stream's event");
    while sub.poll_notice().is_some() {}
    while sub.poll_action().is_some() {}
    let next = sub.poll_timeout();
    sub.handle_timeout(next);
    encode_call(&sub.subscribe_call());
}

fn executor_event(content_type: ContentType, bytes: &[u8]) {
    let Some(event) = decode::<mesos::executor::Event>(content_type, bytes) else { return };
    let config = ExecutorConfig {
        framework_id: "fw".into(),
        executor_id: "ex".into(),
        checkpoint: true,
        recovery_timeout: Duration::from_secs(900),
        backoff_max: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(10),
    };
    let mut session = ExecutorSession::new(config, 7, NOW);
    session.handle_timeout(NOW);
    let Some(executor::Action::Subscribe { conn, .. }) = session.poll_action() else {
        panic!("no SUBSCRIBE at start")
    };
    session.handle_response(conn, 200, NOW);
    let later = NOW.plus(Duration::from_secs(1));
    assert!(session.handle_event(conn, event, later).is_some(), "the current stream's event");
    session.send_update(mesos::TaskStatus::default(), later);
    while session.poll_action().is_some() {}
    let _ = session.unacknowledged_tasks().count();
    if let Some(next) = session.poll_timeout() {
        session.handle_timeout(next);
    }
    encode_call(&session.subscribe_call());
}

fuzz_target!(|data: &[u8]| {
    let [pick, bytes @ ..] = data else { return };
    let content_type = if pick & 2 == 0 { ContentType::Protobuf } else { ContentType::Json };
    if pick & 1 == 0 {
        scheduler_event(content_type, bytes);
    } else {
        executor_event(content_type, bytes);
    }
});
