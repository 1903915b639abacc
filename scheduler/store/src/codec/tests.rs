//! Round trips of every record kind, and bad documents as errors.

use expect_test::{Expect, expect};
use proptest::collection::{btree_map, btree_set, vec};
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
            secrets: b.3.iter().map(|(k, v)| (format!("s-{k}"), v.clone())).collect(),
            secret_env: b.3.keys().map(|k| (format!("SECRET_{k}"), format!("s-{k}"))).collect(),
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

fn job_name() -> impl Strategy<Value = JobName> {
    "[A-Za-z0-9_.-]{1,24}".prop_map(|n| JobName::parse(&n).expect("valid name"))
}

fn zone() -> impl Strategy<Value = Option<&'static str>> {
    option::of(prop_oneof![
        Just("Europe/Berlin"),
        Just("America/New_York"),
        Just("Asia/Kolkata"),
        Just("Pacific/Apia"),
        Just("UTC"),
    ])
}

/// ISO 8601 schedules (an empty start resolved at any `now`, or explicit
/// starts with and without offsets) and cron expressions, in or out of a
/// zone.
fn schedule() -> impl Strategy<Value = Schedule> {
    let start = prop_oneof![
        Just(String::new()),
        (
            1970i32..2100,
            1u32..13,
            1u32..29,
            0u32..24,
            0u32..60,
            prop_oneof![Just(""), Just("Z"), Just("+05:30"), Just("-08")],
        )
            .prop_map(|(y, m, d, h, mi, off)| format!(
                "{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:00{off}"
            )),
        (1970i32..2100, 1u32..13, 1u32..29).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}")),
    ];
    let period = prop_oneof![
        Just("P1D"),
        Just("PT1H"),
        Just("P1M"),
        Just("PT0.5S"),
        Just("P1Y2M3W4DT5H6M7.5S")
    ];
    let iso = (option::of(0u32..1000), start, period, zone(), ts()).prop_map(
        |(repetitions, start, period, tz, now)| {
            let r = repetitions.map_or("R".to_owned(), |n| format!("R{n}"));
            Schedule::parse_iso8601(&format!("{r}/{start}/{period}"), tz, now).expect("valid iso")
        },
    );
    let cron = (
        prop_oneof![
            Just("30 2 * * *"),
            Just("*/15 * * * MON-FRI"),
            Just("0 0 1,15 * *"),
            Just("0 9 * JAN,JUL SUN"),
            Just("@daily"),
        ],
        zone(),
    )
        .prop_map(|(expr, tz)| Schedule::parse_cron(expr, tz).expect("valid cron"));
    prop_oneof![iso, cron]
}

fn job() -> impl Strategy<Value = JobSpec> {
    let concurrency = prop_oneof![
        Just(ConcurrencyPolicy::Allow),
        Just(ConcurrencyPolicy::Forbid),
        Just(ConcurrencyPolicy::Replace)
    ];
    let retry = (any::<u32>(), duration(), float(), duration()).prop_map(
        |(retries, backoff, backoff_factor, max_backoff)| RetryPolicy {
            retries,
            backoff,
            backoff_factor,
            max_backoff,
        },
    );
    let resources = (float(), float(), float(), any::<u32>())
        .prop_map(|(cpus, mem, disk, gpus)| Resources { cpus, mem, disk, gpus });
    (
        (
            job_name(),
            text(),
            any::<bool>(),
            vec(text(), 0..3),
            option::of(schedule()),
            btree_set(job_name(), 0..3),
            any::<bool>(),
            concurrency,
        ),
        (
            any::<bool>(),
            retry,
            option::of(duration()),
            resources,
            option::of(container()),
            any::<bool>(),
            labels(),
            placement(),
        ),
        (option::of(duration()), text(), text(), text(), any::<u32>(), any::<u32>(), ts()),
    )
        .prop_map(|(a, b, c)| JobSpec {
            name: a.0,
            command: a.1,
            shell: a.2,
            arguments: a.3,
            schedule: a.4,
            parents: a.5,
            disabled: a.6,
            concurrency: a.7,
            soft_error: b.0,
            retry: b.1,
            starting_deadline: b.2,
            resources: b.3,
            container: b.4,
            network: if b.5 { NetworkMode::Bridge } else { NetworkMode::Host },
            env: b.6,
            placement: b.7,
            max_completion_time: c.0,
            owner: c.1,
            owner_name: c.2,
            description: c.3,
            success_history_limit: c.4,
            failure_history_limit: c.5,
            version: c.6,
        })
}

fn job_state() -> impl Strategy<Value = JobState> {
    (
        option::of(ts()),
        btree_set(job_name(), 0..3),
        (any::<u64>(), any::<u64>(), any::<u64>()),
        option::of(ts()),
        option::of(ts()),
        any::<u64>(),
        any::<bool>(),
    )
        .prop_map(
            |(last_fired, parents_done, counts, last_success, last_error, since, exhausted)| {
                JobState {
                    last_fired,
                    parents_done,
                    success_count: counts.0,
                    error_count: counts.1,
                    missed_count: counts.2,
                    last_success,
                    last_error,
                    errors_since_last_success: since,
                    exhausted,
                }
            },
        )
}

fn job_run() -> impl Strategy<Value = JobRun> {
    let trigger = prop_oneof![
        ts().prop_map(Trigger::Schedule),
        Just(Trigger::Dependency),
        vec(text(), 0..3).prop_map(|arguments| Trigger::Manual { arguments }),
    ];
    let status = prop_oneof![
        Just(RunStatus::Queued),
        Just(RunStatus::Running),
        Just(RunStatus::Succeeded),
        Just(RunStatus::Failed),
        Just(RunStatus::Killed),
        Just(RunStatus::Missed),
    ];
    let instance =
        (app_id(), "[0-9a-f-]{1,36}").prop_map(|(app, uuid)| InstanceId::new(&app, &uuid));
    (
        ("\\PC{1,36}", job_name(), trigger, status, any::<u32>(), vec(text(), 0..3)),
        (ts(), option::of(ts()), option::of(ts()), text(), ts(), option::of(instance)),
    )
        .prop_map(|(a, b)| JobRun {
            id: a.0,
            job: a.1,
            trigger: a.2,
            status: a.3,
            attempts: a.4,
            task_ids: a.5,
            created_at: b.0,
            started_at: b.1,
            finished_at: b.2,
            message: b.3,
            not_before: b.4,
            instance_id: b.5,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Every job spec, whatever its schedule, reads back exactly.
    #[test]
    fn jobs_round_trip(j in job()) {
        prop_assert_eq!(round_trip(&Record::Job(j.clone())).unwrap(), Record::Job(j));
    }

    /// Every job state reads back exactly, under its job's name.
    #[test]
    fn job_states_round_trip(name in job_name(), st in job_state()) {
        let r = Record::JobState(name, st);
        prop_assert_eq!(round_trip(&r).unwrap(), r);
    }

    /// Every run, whatever its trigger and status, reads back exactly.
    #[test]
    fn job_runs_round_trip(run in job_run()) {
        prop_assert_eq!(round_trip(&Record::JobRun(run.clone())).unwrap(), Record::JobRun(run));
    }

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
        let name = JobName::parse("j").unwrap();
        let _ = decode("k", &RecordKey::Job(name.clone()), &bytes);
        let _ = decode("k", &RecordKey::JobState(name.clone()), &bytes);
        let _ = decode("k", &RecordKey::JobRun(name, "r".into()), &bytes);
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

/// The stored bytes indented (two spaces a level), keys in their stored
/// order: golden documents that read like `etcdctl get -w json | jq`.
fn pretty(bytes: &[u8]) -> String {
    let text = std::str::from_utf8(bytes).expect("utf-8");
    let mut out = String::new();
    let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                match chars.peek() {
                    Some(&close @ ('}' | ']')) => {
                        out.push(close);
                        chars.next();
                    }
                    _ => {
                        depth += 1;
                        newline(&mut out, depth);
                    }
                }
            }
            '}' | ']' => {
                depth -= 1;
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            _ => out.push(c),
        }
    }
    out.push('\n');
    out
}

/// `record` as stored matches `golden`, and reads back exactly.
fn check_golden(record: Record, golden: Expect) {
    let bytes = encode(&record).unwrap();
    golden.assert_eq(&pretty(&bytes));
    assert_eq!(round_trip(&record).unwrap(), record);
}

#[test]
fn a_full_job_is_stored_with_its_schedule_as_text() {
    check_golden(
        Record::Job(crate::contract::sample_job("etl")),
        expect![[r#"
            {
              "v": 1,
              "job": {
                "name": "etl",
                "command": "etl --since \"$LAST\"",
                "shell": true,
                "arguments": [],
                "schedule": {
                  "kind": "iso8601",
                  "source": "R/2025-03-01T02:30:00/P1D",
                  "time_zone": "Europe/Berlin"
                },
                "parents": [],
                "disabled": false,
                "concurrency": "replace",
                "soft_error": true,
                "retry": {
                  "retries": 3,
                  "backoff": [
                    30,
                    0
                  ],
                  "backoff_factor": 2.0,
                  "max_backoff": [
                    600,
                    500000000
                  ]
                },
                "starting_deadline": [
                  300,
                  0
                ],
                "resources": {
                  "cpus": 0.5,
                  "mem": 256.0,
                  "disk": 10.0,
                  "gpus": 0
                },
                "container": {
                  "image": "registry.local/etl:2",
                  "force_pull": true,
                  "privileged": false,
                  "parameters": [
                    [
                      "label",
                      "job=etl"
                    ]
                  ],
                  "volumes": [
                    {
                      "container_path": "/data",
                      "host_path": "/srv/data",
                      "read_only": true
                    }
                  ],
                  "port_mappings": []
                },
                "network": "bridge",
                "env": {
                  "TARGET": "warehouse"
                },
                "placement": {
                  "constraints": [
                    [
                      "@zone",
                      "GROUP_BY",
                      "2"
                    ],
                    [
                      "rack",
                      "LIKE",
                      "r[0-9]+"
                    ]
                  ],
                  "accepted_resource_roles": [
                    "*",
                    "batch"
                  ],
                  "role": "batch"
                },
                "max_completion_time": [
                  3600,
                  0
                ],
                "owner": "data@example.com",
                "owner_name": "Data team",
                "description": "Nightly load into the warehouse",
                "success_history_limit": 10,
                "failure_history_limit": 5,
                "version": 1740000000000
              }
            }
        "#]],
    );
}

#[test]
fn a_dependent_cron_job_is_stored_with_its_parents() {
    check_golden(
        Record::Job(crate::contract::sample_cron_job("etl-2", &["etl", "extract"])),
        expect![[r#"
            {
              "v": 1,
              "job": {
                "name": "etl-2",
                "command": "/usr/bin/report",
                "shell": false,
                "arguments": [
                  "--format",
                  "csv"
                ],
                "schedule": {
                  "kind": "cron",
                  "source": "*/15 2 * * MON-FRI",
                  "time_zone": null
                },
                "parents": [
                  "etl",
                  "extract"
                ],
                "disabled": true,
                "concurrency": "forbid",
                "soft_error": false,
                "retry": {
                  "retries": 2,
                  "backoff": [
                    60,
                    0
                  ],
                  "backoff_factor": 1.0,
                  "max_backoff": [
                    3600,
                    0
                  ]
                },
                "starting_deadline": null,
                "resources": {
                  "cpus": 0.1,
                  "mem": 32.0,
                  "disk": 0.0,
                  "gpus": 0
                },
                "container": null,
                "network": "host",
                "env": {},
                "placement": {
                  "constraints": [],
                  "accepted_resource_roles": [
                    "*"
                  ],
                  "role": "*"
                },
                "max_completion_time": null,
                "owner": "",
                "owner_name": "",
                "description": "",
                "success_history_limit": 0,
                "failure_history_limit": 1,
                "version": 7
              }
            }
        "#]],
    );
}

#[test]
fn a_job_state_is_stored_with_its_jobs_name() {
    let name = JobName::parse("etl").unwrap();
    check_golden(
        Record::JobState(name, crate::contract::sample_job_state()),
        expect![[r#"
            {
              "v": 1,
              "job_state": {
                "job": "etl",
                "last_fired": 1740792600000,
                "parents_done": [
                  "extract"
                ],
                "success_count": 41,
                "error_count": 2,
                "missed_count": 1,
                "last_success": 1740792900000,
                "last_error": 1740706500000,
                "errors_since_last_success": 0,
                "exhausted": false
              }
            }
        "#]],
    );
}

#[test]
fn runs_are_stored_with_each_kind_of_trigger() {
    let name = JobName::parse("etl").unwrap();
    let run = |id: &str, trigger| Record::JobRun(crate::contract::sample_run(&name, id, trigger));
    check_golden(
        run(
            "3f1c9a52-0000-4000-8000-000000000001",
            Trigger::Schedule(Timestamp::from_millis(1_740_792_600_000)),
        ),
        expect![[r#"
            {
              "v": 1,
              "job_run": {
                "id": "3f1c9a52-0000-4000-8000-000000000001",
                "job": "etl",
                "trigger": {
                  "schedule": {
                    "due": 1740792600000
                  }
                },
                "status": "succeeded",
                "attempts": 2,
                "task_ids": [
                  "drover.jobs_etl-f0641b10.instance-0f0e0d0c-0000-4000-8000-000000000001._app.1",
                  "drover.jobs_etl-f0641b10.instance-0f0e0d0c-0000-4000-8000-000000000001._app.2"
                ],
                "created_at": 1740792600000,
                "started_at": 1740792601000,
                "finished_at": 1740792900000,
                "message": "exited with status 0",
                "not_before": 1740792630000,
                "instance_id": "drover.jobs_etl-f0641b10.instance-0f0e0d0c-0000-4000-8000-000000000001"
              }
            }
        "#]],
    );
    check_golden(
        run("3f1c9a52-0000-4000-8000-000000000002", Trigger::Dependency),
        expect![[r#"
            {
              "v": 1,
              "job_run": {
                "id": "3f1c9a52-0000-4000-8000-000000000002",
                "job": "etl",
                "trigger": "dependency",
                "status": "succeeded",
                "attempts": 2,
                "task_ids": [
                  "drover.jobs_etl-f0641b10.instance-0f0e0d0c-0000-4000-8000-000000000001._app.1",
                  "drover.jobs_etl-f0641b10.instance-0f0e0d0c-0000-4000-8000-000000000001._app.2"
                ],
                "created_at": 1740792600000,
                "started_at": 1740792601000,
                "finished_at": 1740792900000,
                "message": "exited with status 0",
                "not_before": 1740792630000,
                "instance_id": "drover.jobs_etl-f0641b10.instance-0f0e0d0c-0000-4000-8000-000000000001"
              }
            }
        "#]],
    );
    check_golden(
        run(
            "3f1c9a52-0000-4000-8000-000000000003",
            Trigger::Manual { arguments: vec!["--full".into(), "a b".into()] },
        ),
        expect![[r#"
            {
              "v": 1,
              "job_run": {
                "id": "3f1c9a52-0000-4000-8000-000000000003",
                "job": "etl",
                "trigger": {
                  "manual": {
                    "arguments": [
                      "--full",
                      "a b"
                    ]
                  }
                },
                "status": "succeeded",
                "attempts": 2,
                "task_ids": [
                  "drover.jobs_etl-f0641b10.instance-0f0e0d0c-0000-4000-8000-000000000001._app.1",
                  "drover.jobs_etl-f0641b10.instance-0f0e0d0c-0000-4000-8000-000000000001._app.2"
                ],
                "created_at": 1740792600000,
                "started_at": 1740792601000,
                "finished_at": 1740792900000,
                "message": "exited with status 0",
                "not_before": 1740792630000,
                "instance_id": "drover.jobs_etl-f0641b10.instance-0f0e0d0c-0000-4000-8000-000000000001"
              }
            }
        "#]],
    );
}

#[test]
fn an_iso_schedule_with_an_empty_start_reads_back_the_same_later() {
    let now = Timestamp::from_millis(1_740_000_123_456);
    let mut job = crate::contract::sample_job("etl");
    let schedule = Schedule::parse_iso8601("R5//PT1H", Some("Europe/Berlin"), now).unwrap();
    job.schedule = Some(schedule.clone());
    let Record::Job(back) = round_trip(&Record::Job(job)).unwrap() else { panic!("a job") };
    let back = back.schedule.expect("a schedule");
    assert_eq!(back, schedule);
    assert_eq!(back.next_after(now), schedule.next_after(now));
    assert_eq!(back.source(), "R5/2025-02-19T22:22:03.456+01:00/PT1H");
}

#[test]
fn job_documents_that_break_the_core_rules_are_corrupt() {
    let layout = Layout::default();
    let name = JobName::parse("etl").unwrap();
    let good = |r: &Record| String::from_utf8(encode(r).unwrap()).unwrap();
    let job = good(&Record::Job(crate::contract::sample_job("etl")));
    let state = good(&Record::JobState(name.clone(), crate::contract::sample_job_state()));
    let sample_run = crate::contract::sample_run(&name, "r1", Trigger::Dependency);
    let instance = sample_run.instance_id.clone().expect("an instance");
    let run = good(&Record::JobRun(sample_run));
    let job_key = RecordKey::Job(name.clone());
    let state_key = RecordKey::JobState(name.clone());
    let run_key = RecordKey::JobRun(name.clone(), "r1".into());
    let cases = [
        // Another job's document under this key.
        (&job_key, job.replace(r#""name":"etl""#, r#""name":"other""#)),
        // Not a job name.
        (&job_key, job.replace(r#""name":"etl""#, r#""name":"e t l""#)),
        // A schedule that does not parse, or of a kind Drover does not know.
        (&job_key, job.replace("R/2025-03-01T02:30:00/P1D", "R/2025-03-01T02:30:00/P1Q")),
        (&job_key, job.replace(r#""kind":"iso8601""#, r#""kind":"rrule""#)),
        (&job_key, job.replace(r#""Europe/Berlin""#, r#""Mars/Olympus""#)),
        // A parent that is not a job name.
        (&state_key, state.replace(r#"["extract"]"#, r#"["ex/tract"]"#)),
        // Another job's state, or run.
        (&state_key, state.replace(r#""job":"etl""#, r#""job":"etl-2""#)),
        (&run_key, run.replace(r#""job":"etl""#, r#""job":"etl-2""#)),
        (&run_key, run.replace(r#""id":"r1""#, r#""id":"r2""#)),
        // A trigger or status Drover does not know; not an instance id.
        (&run_key, run.replace(r#""trigger":"dependency""#, r#""trigger":"whim""#)),
        (&run_key, run.replace(r#""status":"succeeded""#, r#""status":"napping""#)),
        (
            &run_key,
            run.replace(&format!(r#""instance_id":"{instance}""#), r#""instance_id":"nope""#),
        ),
        // A duration with too many nanoseconds.
        (
            &job_key,
            job.replace(
                r#""starting_deadline":[300,0]"#,
                r#""starting_deadline":[300,1000000000]"#,
            ),
        ),
    ];
    for (kind, doc) in cases {
        assert!(![&job, &state, &run].contains(&&doc), "the case changes nothing: {doc}");
        let e = decode(&layout.key(kind), kind, doc.as_bytes()).unwrap_err();
        assert!(matches!(e, StoreError::Corrupt { .. }), "{doc}: {e:?}");
    }
}

#[test]
fn jobs_with_non_finite_floats_cannot_be_encoded() {
    let mut j = crate::contract::sample_job("etl");
    j.retry.backoff_factor = f64::INFINITY;
    assert!(matches!(encode(&Record::Job(j)), Err(StoreError::Unencodable { .. })));
    let mut j = crate::contract::sample_job("etl");
    j.resources.mem = f64::NAN;
    assert!(matches!(encode(&Record::Job(j)), Err(StoreError::Unencodable { .. })));
}

#[test]
fn an_app_stores_its_secrets_as_references_and_older_records_have_none() {
    let app = crate::contract::sample_app("/db-client", 1);
    let stored: serde_json::Value =
        serde_json::from_slice(&encode(&Record::App(app.clone())).unwrap()).unwrap();
    assert_eq!(stored["app"]["secrets"], serde_json::json!({"db": "prod/db-password"}));
    assert_eq!(stored["app"]["secret_env"], serde_json::json!({"DB_PASSWORD": "db"}));
    // A record written before apps had secrets reads back without any.
    let mut old = stored.clone();
    let fields = old["app"].as_object_mut().unwrap();
    fields.remove("secrets");
    fields.remove("secret_env");
    let kind = Record::App(app.clone()).key();
    let key = Layout::default().key(&kind);
    let Record::App(read) = decode(&key, &kind, &serde_json::to_vec(&old).unwrap()).unwrap() else {
        panic!("not an app");
    };
    assert!(read.secrets.is_empty() && read.secret_env.is_empty());
    assert_eq!(read.env, app.env);
}
