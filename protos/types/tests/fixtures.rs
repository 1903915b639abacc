//! Events captured from a real Apache Mesos 1.11.0 master (see
//! `integration/e2e/src/bin/capture-fixtures.rs`), committed in both
//! encodings, decode into the messages Drover relies on.

use drover_protos::json::from_json;
use drover_protos::mesos::v1 as mesos;
use drover_protos::mesos::v1::scheduler::{Event, event};
use drover_protos::{Message, json};

fn fixture(rel: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{rel}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The same event from both encodings (they come from two subscriptions,
/// so ids differ; everything compared here does not).
fn both(name: &str) -> [Event; 2] {
    let from_json: Event = from_json(&fixture(&format!("json/{name}.json"))).unwrap();
    let from_proto = Event::decode(&fixture(&format!("protobuf/{name}.bin"))[..]).unwrap();
    [from_json, from_proto]
}

#[test]
fn subscribed_carries_framework_id_heartbeat_and_master() {
    for e in both("subscribed") {
        assert_eq!(e.r#type(), event::Type::Subscribed);
        let s = e.subscribed.unwrap();
        assert!(s.framework_id.value.contains("-000"), "{}", s.framework_id.value);
        assert_eq!(s.heartbeat_interval_seconds, Some(15.0));
        let m = s.master_info.unwrap();
        assert_eq!(m.version.as_deref(), Some("1.11.0"));
        assert_eq!(m.hostname.as_deref(), Some("127.0.0.1"));
        let caps: Vec<i32> = m.capabilities.iter().map(|c| c.r#type.unwrap_or(0)).collect();
        assert!(
            caps.contains(&(mesos::master_info::capability::Type::AgentUpdate as i32)),
            "{caps:?}"
        );
    }
}

#[test]
fn heartbeat_is_just_a_type() {
    for e in both("heartbeat") {
        assert_eq!(e.r#type(), event::Type::Heartbeat);
        assert_eq!(e, Event { r#type: Some(event::Type::Heartbeat as i32), ..Default::default() });
    }
}

#[test]
fn offers_carry_agent_resources_and_ranges() {
    for e in both("offers") {
        assert_eq!(e.r#type(), event::Type::Offers);
        let offers = e.offers.unwrap().offers;
        assert_eq!(offers.len(), 1);
        let o = &offers[0];
        assert!(o.id.value.contains("-O"));
        assert!(o.agent_id.value.ends_with("-S0"));
        assert_eq!(o.hostname, "127.0.0.1");
        let scalar = |n: &str| {
            o.resources
                .iter()
                .find(|r| r.name == n)
                .and_then(|r| r.scalar.as_ref())
                .map(|s| s.value)
        };
        assert_eq!(scalar("cpus"), Some(4.0));
        assert_eq!(scalar("mem"), Some(4096.0));
        assert_eq!(scalar("disk"), Some(8192.0));
        let ports = o.resources.iter().find(|r| r.name == "ports").unwrap();
        assert_eq!(ports.r#type(), mesos::value::Type::Ranges);
        assert_eq!(
            ports.ranges.as_ref().unwrap().range,
            vec![mesos::value::Range { begin: 31000, end: 32000 }]
        );
    }
}

#[test]
fn update_from_drover_executor_has_uuid_source_and_container_status() {
    for e in both("update") {
        assert_eq!(e.r#type(), event::Type::Update);
        let s = e.update.unwrap().status;
        assert_eq!(s.task_id.value, "fixture.instance-1._app.1");
        assert_eq!(s.state(), mesos::TaskState::TaskStarting);
        assert_eq!(s.source(), mesos::task_status::Source::Executor);
        let uuid = s.uuid.unwrap();
        assert_eq!(uuid.len(), 16);
        assert_eq!(uuid[6] >> 4, 4, "RFC 4122 version 4");
        assert_eq!(s.executor_id.unwrap().value, "fixture-executor");
        assert!(s.agent_id.unwrap().value.ends_with("-S0"));
        assert!(s.container_status.unwrap().container_id.is_some());
    }
}

#[test]
fn json_fixtures_round_trip_through_our_json_form() {
    // Decoding Mesos' JSON and encoding it again gives the same document,
    // except for enum values our protos cannot name (the master writes them
    // as `{}` too).
    for name in ["offers", "update", "heartbeat"] {
        let text = fixture(&format!("json/{name}.json"));
        let parsed: Event = from_json(&text).unwrap();
        let ours = json::to_json_value(&parsed).unwrap();
        let theirs: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(ours, theirs, "{name}");
    }
}
