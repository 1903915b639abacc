//! Mesos' JSON form of the generated messages: field names, enums, bytes and
//! 64-bit integers exactly as the master writes and parses them.

use drover_protos::json::{from_json, to_json_value};
use drover_protos::mesos::v1 as mesos;
use drover_protos::mesos::v1::scheduler::{Call, Event, call, event};
use serde_json::json;

fn scalar(name: &str, v: f64) -> mesos::Resource {
    let mut r = mesos::Resource {
        name: name.into(),
        scalar: Some(mesos::value::Scalar { value: v }),
        ..Default::default()
    };
    r.set_type(mesos::value::Type::Scalar);
    r
}

#[test]
fn accept_call_uses_proto_names_enum_names_and_plain_64_bit_numbers() {
    let mut ports = mesos::Resource {
        name: "ports".into(),
        ranges: Some(mesos::value::Ranges {
            range: vec![mesos::value::Range { begin: 31000, end: 31001 }],
        }),
        ..Default::default()
    };
    ports.set_type(mesos::value::Type::Ranges);
    let task = mesos::TaskInfo {
        name: "web".into(),
        task_id: mesos::TaskId { value: "web.instance-1._app.1".into() },
        agent_id: mesos::AgentId { value: "a-S0".into() },
        resources: vec![scalar("cpus", 0.5), ports],
        data: Some(b"hi".to_vec()),
        ..Default::default()
    };
    let mut op = mesos::offer::Operation {
        launch: Some(mesos::offer::operation::Launch { task_infos: vec![task] }),
        ..Default::default()
    };
    op.set_type(mesos::offer::operation::Type::Launch);
    let mut c = Call {
        framework_id: Some(mesos::FrameworkId { value: "fw".into() }),
        accept: Some(call::Accept {
            offer_ids: vec![mesos::OfferId { value: "o1".into() }],
            operations: vec![op],
            filters: Some(mesos::Filters { refuse_seconds: Some(5.0) }),
        }),
        ..Default::default()
    };
    c.set_type(call::Type::Accept);
    let got = to_json_value(&c).unwrap();
    let want = json!({
        "framework_id": {"value": "fw"},
        "type": "ACCEPT",
        "accept": {
            "offer_ids": [{"value": "o1"}],
            "operations": [{
                "type": "LAUNCH",
                "launch": {"task_infos": [{
                    "name": "web",
                    "task_id": {"value": "web.instance-1._app.1"},
                    "agent_id": {"value": "a-S0"},
                    "resources": [
                        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}},
                        {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 31001}]}}
                    ],
                    "data": "aGk="
                }]}
            }],
            "filters": {"refuse_seconds": 5.0}
        }
    });
    assert_eq!(got, want);
    // And it parses back to the same message.
    let back: Call = from_json(&serde_json::to_vec(&got).unwrap()).unwrap();
    assert_eq!(back, c);
}

#[test]
fn explicitly_set_false_is_written_and_unset_is_omitted() {
    let info = mesos::FrameworkInfo {
        user: "root".into(),
        name: "drover".into(),
        checkpoint: Some(false),
        ..Default::default()
    };
    let v = to_json_value(&info).unwrap();
    assert_eq!(v, json!({"user": "root", "name": "drover", "checkpoint": false}));
}

#[test]
fn parsing_ignores_unknown_fields_and_accepts_camel_case() {
    let text = br#"{"type":"UPDATE","update":{"status":{"task_id":{"value":"t"},"state":"TASK_RUNNING",
        "agentId":{"value":"a"},"uuid":"AAECAwQFBgcICQoLDA0ODw==","future_field":{"x":1}}}, "also_new": 3}"#;
    let e: Event = from_json(text).unwrap();
    assert_eq!(e.r#type(), event::Type::Update);
    let s = e.update.unwrap().status;
    assert_eq!(s.state(), mesos::TaskState::TaskRunning);
    assert_eq!(s.agent_id.unwrap().value, "a");
    assert_eq!(s.uuid.unwrap(), (0u8..16).collect::<Vec<_>>());
}

#[test]
fn malformed_json_is_an_error_not_a_panic() {
    for bad in [&b"{"[..], b"[]", b"{\"type\":7.5}", b"null", b"{} trailing"] {
        assert!(from_json::<Event>(bad).is_err(), "{}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn unknown_enum_names_from_a_newer_master_are_ignored() {
    let e: Event = from_json(br#"{"type":"SOMETHING_NEW"}"#).unwrap();
    assert_eq!(e.r#type(), event::Type::Unknown);
}

#[test]
fn every_task_state_has_the_mesos_number() {
    use mesos::TaskState::*;
    let want = [
        (TaskStaging, 6),
        (TaskStarting, 0),
        (TaskRunning, 1),
        (TaskKilling, 8),
        (TaskFinished, 2),
        (TaskFailed, 3),
        (TaskKilled, 4),
        (TaskError, 7),
        (TaskLost, 5),
        (TaskDropped, 9),
        (TaskUnreachable, 10),
        (TaskGone, 11),
        (TaskGoneByOperator, 12),
        (TaskUnknown, 13),
    ];
    for (state, n) in want {
        assert_eq!(state as i32, n, "{state:?}");
    }
}
