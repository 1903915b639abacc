//! Round trips of every record kind, and bad documents as errors.

use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;

use super::*;
use crate::layout::Layout;

fn round_trip(record: &Record) -> Result<Record, StoreError> {
    let layout = Layout::default();
    let kind = record.key();
    let key = layout.key(&kind);
    assert_eq!(layout.parse(&key).as_ref(), Some(&kind), "key {key}");
    decode(&key, &kind, &encode(record)?)
}

fn app_id() -> impl Strategy<Value = AppId> {
    vec("[a-z][a-z0-9-]{0,4}[a-z0-9]", 1..4)
        .prop_map(|segs| AppId::parse(&format!("/{}", segs.join("/"))).expect("valid id"))
}

fn duration() -> impl Strategy<Value = Duration> {
    (0u64..1_000_000, 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n))
}

fn ts() -> impl Strategy<Value = Timestamp> {
    (-1_000_000i64..4_000_000_000_000).prop_map(Timestamp::from_millis)
}

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,12}"
}

fn labels() -> impl Strategy<Value = BTreeMap<String, String>> {
    btree_map(text(), text(), 0..3)
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(0.1),
        -1e12f64..1e12,
        any::<f64>().prop_filter("finite", |f| f.is_finite())
    ]
}

fn health_check() -> impl Strategy<Value = HealthCheckSpec> {
    (
        prop_oneof![
            Just(HealthProtocol::Http),
            Just(HealthProtocol::Tcp),
            Just(HealthProtocol::Command)
        ],
        text(),
        text(),
        option::of(any::<u32>()),
        option::of(any::<u32>()),
        option::of(text()),
        (duration(), duration(), duration(), duration()),
        any::<u32>(),
        any::<bool>(),
    )
        .prop_map(
            |(protocol, protocol_name, path, port_index, port, command, d, max, ignore)| {
                HealthCheckSpec {
                    protocol,
                    protocol_name,
                    path,
                    port_index,
                    port,
                    command,
                    grace_period: d.0,
                    interval: d.1,
                    timeout: d.2,
                    max_consecutive_failures: max,
                    delay: d.3,
                    ignore_http1xx: ignore,
                }
            },
        )
}

fn container() -> impl Strategy<Value = ContainerSpec> {
    let volume = (text(), text(), any::<bool>()).prop_map(|(c, h, ro)| Volume {
        container_path: c,
        host_path: h,
        mode: if ro { VolumeMode::ReadOnly } else { VolumeMode::ReadWrite },
    });
    let mapping = (
        any::<u32>(),
        option::of(any::<u32>()),
        any::<u32>(),
        text(),
        option::of(text()),
        labels(),
    )
        .prop_map(|(container_port, host_port, service_port, protocol, name, labels)| {
            PortMapping { container_port, host_port, service_port, protocol, name, labels }
        });
    (
        text(),
        any::<bool>(),
        any::<bool>(),
        vec((text(), text()), 0..3),
        vec(volume, 0..3),
        vec(mapping, 0..3),
    )
        .prop_map(|(image, force_pull, privileged, parameters, volumes, port_mappings)| {
            ContainerSpec { image, force_pull, privileged, parameters, volumes, port_mappings }
        })
}

fn placement() -> impl Strategy<Value = PlacementSpec> {
    let constraint = prop_oneof![
        Just(("hostname", "UNIQUE", None)),
        Just(("@zone", "GROUP_BY", Some("3"))),
        Just(("rack", "LIKE", Some("r[0-9]+"))),
        Just(("rack", "UNLIKE", Some("r9"))),
        Just(("@region", "CLUSTER", Some("eu"))),
        Just(("hostname", "MAX_PER", Some("2"))),
        Just(("cores", "IS", Some("8"))),
    ]
    .prop_map(|(f, o, v)| Constraint::parse(f, o, v).expect("valid constraint"));
    (vec(constraint, 0..4), vec(text(), 0..3), text()).prop_map(|(constraints, roles, role)| {
        PlacementSpec { constraints, accepted_resource_roles: roles, role }
    })
}

fn facts() -> impl Strategy<Value = AgentFacts> {
    let value = prop_oneof![
        text().prop_map(AttributeValue::Text),
        float().prop_map(AttributeValue::Scalar),
        vec((any::<u64>(), any::<u64>()), 0..3).prop_map(AttributeValue::Ranges),
        vec(text(), 0..3).prop_map(AttributeValue::Set),
    ];
    (option::of(text()), option::of(text()), btree_map(text(), value, 0..3)).prop_map(
        |(region, zone, attrs)| AgentFacts {
            region,
            zone,
            attributes: attrs.into_iter().map(|(k, v)| (k, Attribute::new(v))).collect(),
        },
    )
}

fn app() -> impl Strategy<Value = AppSpec> {
    let command = option::of(prop_oneof![
        text().prop_map(CommandSpec::Shell),
        vec(text(), 0..4).prop_map(CommandSpec::Argv)
    ]);
    let port = (any::<u32>(), text(), option::of(text()), labels())
        .prop_map(|(port, protocol, name, labels)| PortDefinition { port, protocol, name, labels });
    let resources = (float(), float(), float(), any::<u32>())
        .prop_map(|(cpus, mem, disk, gpus)| Resources { cpus, mem, disk, gpus });
    let backoff = (duration(), float(), duration())
        .prop_map(|(initial, factor, max)| BackoffPolicy { initial, factor, max });
    let upgrade =
        (float(), float()).prop_map(|(minimum_health_capacity, maximum_over_capacity)| {
            UpgradeStrategy { minimum_health_capacity, maximum_over_capacity }
        });
    (
        (app_id(), command, option::of(container()), any::<bool>(), vec(port, 0..3), any::<bool>()),
        (
            vec(health_check(), 0..3),
            any::<u32>(),
            resources,
            labels(),
            labels(),
            backoff,
            placement(),
        ),
        (
            any::<bool>(),
            upgrade,
            vec(app_id(), 0..3),
            duration(),
            any::<bool>(),
            option::of(duration()),
        ),
        (ts(), ts(), ts()),
    )
        .prop_map(|(a, b, c, d)| AppSpec {
            id: a.0,
            command: a.1,
            container: a.2,
            network: if a.3 { NetworkMode::Bridge } else { NetworkMode::Host },
            port_definitions: a.4,
            require_ports: a.5,
            health_checks: b.0,
            instances: b.1,
            resources: b.2,
            placement: b.6,
            env: b.3,
            labels: b.4,
            backoff: b.5,
            kill_selection: if c.0 {
                KillSelection::OldestFirst
            } else {
                KillSelection::YoungestFirst
            },
            upgrade: c.1,
            dependencies: c.2,
            progress_deadline: c.3,
            rollback_on_failure: c.4,
            kill_grace: c.5,
            version: d.0,
            last_scaling_at: d.1,
            last_config_change_at: d.2,
        })
}

fn instance() -> impl Strategy<Value = Instance> {
    let health = (
        any::<bool>(),
        option::of(ts()),
        option::of(ts()),
        option::of(ts()),
        any::<u32>(),
        option::of(text()),
    )
        .prop_map(
            |(alive, first_success, last_success, last_failure, consecutive_failures, cause)| {
                Health {
                    alive,
                    first_success,
                    last_success,
                    last_failure,
                    consecutive_failures,
                    last_failure_cause: cause,
                }
            },
        );
    let task = (
        (text(), text(), text(), text(), 0..sched_core::instance::ALL_STATES.len()),
        (ts(), option::of(ts()), ts(), option::of(text()), option::of(ts())),
        (vec(any::<u32>(), 0..4), option::of(health), facts()),
    )
        .prop_map(|(a, b, c)| Task {
            id: TaskId::from_raw(a.0),
            agent_id: a.1,
            hostname: a.2,
            facts: Arc::new(c.2),
            executor_id: a.3,
            state: sched_core::instance::ALL_STATES[a.4],
            staged_at: b.0,
            started_at: b.1,
            updated_at: b.2,
            message: b.3,
            kill_sent_at: b.4,
            host_ports: c.0,
            health: c.1,
        });
    (app_id(), "[0-9a-f-]{1,36}", ts(), any::<bool>(), any::<u32>(), option::of(task)).prop_map(
        |(app, uuid, app_version, running, incarnation, task)| Instance {
            id: InstanceId::new(&app, &uuid),
            app_id: app,
            app_version,
            goal: if running { Goal::Running } else { Goal::Decommissioned },
            incarnation,
            task,
        },
    )
}

fn deployment() -> impl Strategy<Value = Deployment> {
    let action = prop_oneof![
        Just(Action::StartApplication),
        Just(Action::ScaleApplication),
        Just(Action::RestartApplication),
        Just(Action::StopApplication)
    ];
    let step = (action, app_id()).prop_map(|(action, app)| StepAction { action, app });
    let apps = || btree_map(app_id(), option::of(app()), 0..3);
    (
        ("[a-z0-9-]{1,36}", ts(), vec(vec(step, 0..3), 0..3), 0usize..5),
        (apps(), apps(), ts(), vec(any::<(u32, u32, u32)>(), 0..3), option::of("[a-z0-9-]{1,36}")),
    )
        .prop_map(|(a, b)| Deployment {
            id: a.0,
            version: a.1,
            steps: a.2,
            current_step: a.3,
            original: b.0,
            target: b.1,
            last_progress_at: b.2,
            progress_mark: b.3,
            origin: b.4.map_or(Origin::User, |of| Origin::Rollback { of }),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Every app spec, current or kept version, reads back exactly as written.
    #[test]
    fn apps_round_trip(a in app()) {
        prop_assert_eq!(round_trip(&Record::App(a.clone())).unwrap(), Record::App(a.clone()));
        prop_assert_eq!(round_trip(&Record::AppVersion(a.clone())).unwrap(), Record::AppVersion(a));
    }

    /// Every instance, with or without a task and health, reads back exactly.
    #[test]
    fn instances_round_trip(i in instance()) {
        prop_assert_eq!(round_trip(&Record::Instance(i.clone())).unwrap(), Record::Instance(i));
    }

    /// Every deployment, with its plan, apps and progress, reads back exactly.
    #[test]
    fn deployments_round_trip(d in deployment()) {
        let r = Record::Deployment(Box::new(d));
        prop_assert_eq!(round_trip(&r).unwrap(), r);
    }

    /// Any framework id reads back exactly.
    #[test]
    fn framework_ids_round_trip(id in text()) {
        prop_assert_eq!(round_trip(&Record::FrameworkId(id.clone())).unwrap(), Record::FrameworkId(id));
    }

    /// Arbitrary bytes under any key are an error or a record, never a panic.
    #[test]
    fn garbage_never_panics(bytes in vec(any::<u8>(), 0..200)) {
        let _ = decode("k", &RecordKey::FrameworkId, &bytes);
        let _ = decode("k", &RecordKey::Deployment("d".into()), &bytes);
    }
}

#[test]
fn documents_carry_their_format_version() {
    let bytes = encode(&Record::FrameworkId("fw".into())).unwrap();
    assert_eq!(String::from_utf8(bytes).unwrap(), r#"{"v":1,"framework_id":"fw"}"#);
}

#[test]
fn an_unknown_version_is_an_error_not_a_panic() {
    let e =
        decode("/drover/framework-id", &RecordKey::FrameworkId, br#"{"v":2,"framework_id":"fw"}"#)
            .unwrap_err();
    assert!(matches!(e, StoreError::UnknownVersion { version: 2, .. }), "{e:?}");
    assert_eq!(e.to_string(), "record `/drover/framework-id` has unknown format version 2");
    let e = decode("k", &RecordKey::FrameworkId, br#"{"framework_id":"fw"}"#).unwrap_err();
    assert!(matches!(e, StoreError::Corrupt { .. }), "{e:?}");
}

#[test]
fn documents_that_break_the_core_rules_are_corrupt() {
    let app = AppId::parse("/a").unwrap();
    let layout = Layout::default();
    let kind = RecordKey::Instance(InstanceId::new(&app, "1"));
    let key = layout.key(&kind);
    let bad = [
        // Another instance's document under this key.
        r#"{"v":1,"instance":{"id":"b.instance-1","app_id":"/b","app_version":0,"goal":"running","incarnation":0,"task":null}}"#,
        // Not an instance id.
        r#"{"v":1,"instance":{"id":"nope","app_id":"/a","app_version":0,"goal":"running","incarnation":0,"task":null}}"#,
        // A task state Mesos does not have.
        r#"{"v":1,"instance":{"id":"a.instance-1","app_id":"/a","app_version":0,"goal":"running","incarnation":0,"task":{"id":"t","agent_id":"","hostname":"","executor_id":"","state":"TASK_NAPPING","staged_at":0,"started_at":null,"updated_at":0,"message":null,"kill_sent_at":null,"host_ports":[],"health":null}}}"#,
    ];
    for doc in bad {
        let e = decode(&key, &kind, doc.as_bytes()).unwrap_err();
        assert!(matches!(e, StoreError::Corrupt { .. }), "{doc}: {e:?}");
    }
}

#[test]
fn durations_with_too_many_nanoseconds_are_corrupt_not_a_panic() {
    let mut a = crate::contract::sample_app("/a", 1);
    a.kill_grace = Some(Duration::from_secs(1));
    let doc = String::from_utf8(encode(&Record::App(a)).unwrap()).unwrap();
    let doc =
        doc.replace(r#""kill_grace":[1,0]"#, r#""kill_grace":[18446744073709551615,4000000000]"#);
    let kind = RecordKey::App(AppId::parse("/a").unwrap());
    let e = decode("k", &kind, doc.as_bytes()).unwrap_err();
    assert!(matches!(e, StoreError::Corrupt { .. }), "{e:?}");
}

#[test]
fn non_finite_floats_cannot_be_encoded() {
    let mut a = crate::contract::sample_app("/a", 1);
    a.resources.cpus = f64::NAN;
    assert!(matches!(encode(&Record::App(a)), Err(StoreError::Unencodable { .. })));
}
