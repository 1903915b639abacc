//! The `TaskInfo` → `TaskSpec` contract: round trips through the reference
//! encoder, the Mesos defaults, and every way a task can be refused.

use super::*;

fn task(data: Option<Vec<u8>>, grace_ns: Option<i64>) -> mesos::TaskInfo {
    mesos::TaskInfo {
        name: "web".into(),
        task_id: mesos::TaskId { value: "web.1".into() },
        agent_id: mesos::AgentId { value: "agent".into() },
        data,
        kill_policy: grace_ns.map(|nanoseconds| mesos::KillPolicy {
            grace_period: Some(mesos::DurationInfo { nanoseconds }),
        }),
        ..Default::default()
    }
}

fn scalar(name: &str, value: f64, role: &str) -> mesos::Resource {
    let mut r = mesos::Resource {
        name: name.into(),
        scalar: Some(mesos::value::Scalar { value }),
        allocation_info: Some(mesos::resource::AllocationInfo { role: Some(role.into()) }),
        ..Default::default()
    };
    r.set_type(mesos::value::Type::Scalar);
    r
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn data(
    command: Option<mesos::CommandInfo>,
    container: Option<mesos::ContainerInfo>,
    checks: Vec<drover::HealthCheck>,
) -> Vec<u8> {
    drover::TaskData { command, container, health_checks: checks, app_id: String::new() }
        .encode_to_vec()
}

fn spec_of(data: Vec<u8>) -> Result<TaskSpec, ExecutorError> {
    task_spec(&task(Some(data), None))
}

fn docker(image: &str) -> DockerSpec {
    DockerSpec::new(image)
}

fn container_proto(f: impl FnOnce(&mut mesos::ContainerInfo)) -> mesos::ContainerInfo {
    let mut c = mesos::ContainerInfo {
        docker: Some(mesos::container_info::DockerInfo {
            image: "busybox".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    c.set_type(mesos::container_info::Type::Docker);
    f(&mut c);
    c
}

fn check(probe: Probe) -> HealthCheck {
    HealthCheck {
        probe,
        delay: Duration::from_millis(1_500),
        interval: Duration::from_secs(2),
        timeout: Duration::from_secs(1),
        grace_period: Duration::from_secs(30),
        max_consecutive_failures: 3,
    }
}

#[test]
fn plain_commands_round_trip_with_environment_grace_app_and_limits() {
    let cases = [
        Command::Shell("echo hi; exit 3".into()),
        Command::Argv(vec!["sleep".into(), "100".into()]),
        Command::Argv(vec!["/bin/true".into()]),
    ];
    for command in cases {
        let spec = TaskSpec {
            app_id: Some("/web".into()),
            env: env(&[("FOO", "1"), ("EMPTY", "")]),
            ..TaskSpec::new("web.1", command)
        };
        let mut info = task(Some(encode_task_data(&spec)), Some(2_500_000_000));
        info.resources = vec![scalar("cpus", 0.25, "*"), scalar("mem", 48.0, "*")];
        let got = task_spec(&info).unwrap();
        assert_eq!(got.kill_grace, Some(Duration::from_millis(2_500)));
        assert_eq!(
            got.limits,
            Limits { nano_cpus: Some(250_000_000), memory_bytes: Some(48 << 20) }
        );
        assert_eq!(TaskSpec { kill_grace: None, limits: Limits::default(), ..got }, spec);
    }
}

#[test]
fn docker_tasks_round_trip_with_every_field_and_every_kind_of_health_check() {
    let spec = TaskSpec {
        app_id: Some("/db".into()),
        env: env(&[("PORT0", "31000")]),
        container: Some(DockerSpec {
            image: "127.0.0.1:5000/db:1.2".into(),
            force_pull: true,
            privileged: true,
            network: Network::Bridge,
            port_mappings: vec![
                PortMapping { host_port: 31000, container_port: 5432, protocol: "tcp".into() },
                PortMapping { host_port: 31001, container_port: 53, protocol: "udp".into() },
            ],
            volumes: vec![
                Volume {
                    host_path: "/data".into(),
                    container_path: "/var/db".into(),
                    read_only: false,
                },
                Volume {
                    host_path: "conf".into(),
                    container_path: "/etc/db".into(),
                    read_only: true,
                },
            ],
            parameters: vec![("label".into(), "a=b".into()), ("user".into(), "nobody".into())],
        }),
        health_checks: vec![
            check(Probe::Http {
                port: 31000,
                path: "/health".into(),
                ipv6: false,
                ignore_1xx: true,
            }),
            check(Probe::Tcp { port: 31001, ipv6: true }),
            check(Probe::Command {
                command: Command::Shell("test -f /ready".into()),
                env: env(&[("X", "1")]),
            }),
            check(Probe::Command {
                command: Command::Argv(vec!["pg_isready".into(), "-q".into()]),
                env: BTreeMap::new(),
            }),
        ],
        ..TaskSpec::new("db.1", Command::Argv(vec!["postgres".into(), "-F".into()]))
    };
    let got = task_spec(&task(Some(encode_task_data(&spec)), None)).unwrap();
    assert_eq!(TaskSpec { task_id: "db.1".into(), ..got }, spec);

    for command in [Command::ImageDefault, Command::Shell("exec httpd -f".into())] {
        let spec =
            TaskSpec { container: Some(docker("busybox")), ..TaskSpec::new("web.1", command) };
        assert_eq!(spec_of(encode_task_data(&spec)).unwrap(), spec);
    }
}

#[test]
fn the_mesos_command_info_defaults_apply() {
    // `shell` unset means true; `arguments` are then ignored.
    let info = mesos::CommandInfo {
        value: Some("exit 0".into()),
        arguments: vec!["ignored".into()],
        ..Default::default()
    };
    let spec = spec_of(data(Some(info), None, Vec::new())).unwrap();
    assert_eq!(spec.command, Command::Shell("exit 0".into()));
    assert_eq!((spec.kill_grace, spec.app_id, spec.container), (None, None, None));
    assert!(spec.env.is_empty() && spec.health_checks.is_empty());
    assert_eq!(spec.limits, Limits::default());
    // execvp semantics: arguments[0] is argv[0], replaced by `value`.
    let info = mesos::CommandInfo {
        shell: Some(false),
        value: Some("/bin/echo".into()),
        arguments: vec!["echo".into(), "a".into()],
        ..Default::default()
    };
    let spec = task_spec(&task(Some(data(Some(info), None, Vec::new())), Some(-5))).unwrap();
    assert_eq!(spec.command, Command::Argv(vec!["/bin/echo".into(), "a".into()]));
    assert_eq!(spec.kill_grace, Some(Duration::ZERO));
    let info = mesos::CommandInfo {
        shell: Some(false),
        arguments: vec!["ls".into()],
        ..Default::default()
    };
    let spec = spec_of(data(Some(info), None, Vec::new())).unwrap();
    assert_eq!(spec.command, Command::Argv(vec!["ls".into()]));
}

#[test]
fn docker_commands_follow_marathons_cmd_and_args() {
    let docker_cmd = |info: Option<mesos::CommandInfo>| {
        spec_of(data(info, Some(container_proto(|_| {})), Vec::new())).unwrap().command
    };
    // `cmd`: a shell line.
    let cmd = mesos::CommandInfo { value: Some("echo $HOME".into()), ..Default::default() };
    assert_eq!(docker_cmd(Some(cmd)), Command::Shell("echo $HOME".into()));
    // `args` as Marathon sends them: no value, the arguments.
    let args = mesos::CommandInfo {
        shell: Some(false),
        arguments: vec!["-f".into(), "-p".into(), "80".into()],
        ..Default::default()
    };
    assert_eq!(docker_cmd(Some(args)), Command::Argv(vec!["-f".into(), "-p".into(), "80".into()]));
    // The same argv with `value = argv[0]`, as the scheduler encodes it.
    let argv = mesos::CommandInfo {
        shell: Some(false),
        value: Some("httpd".into()),
        arguments: vec!["httpd".into(), "-f".into()],
        ..Default::default()
    };
    assert_eq!(docker_cmd(Some(argv)), Command::Argv(vec!["httpd".into(), "-f".into()]));
    // Neither: the image's own entrypoint and command.
    let env_only = mesos::CommandInfo {
        shell: Some(false),
        environment: Some(environment(&env(&[("A", "b")]))),
        ..Default::default()
    };
    let spec = spec_of(data(Some(env_only), Some(container_proto(|_| {})), Vec::new())).unwrap();
    assert_eq!((spec.command, spec.env), (Command::ImageDefault, env(&[("A", "b")])));
    assert_eq!(docker_cmd(Some(mesos::CommandInfo::default())), Command::ImageDefault);
    assert_eq!(docker_cmd(None), Command::ImageDefault);
}

#[test]
fn container_fields_convert_with_the_proto_defaults() {
    let c = container_proto(|c| {
        c.hostname = Some("box".into());
        let d = c.docker.as_mut().unwrap();
        d.set_network(mesos::container_info::docker_info::Network::Bridge);
        d.port_mappings.push(mesos::container_info::docker_info::PortMapping {
            host_port: 31000,
            container_port: 80,
            protocol: Some("udp,tcp".into()),
        });
        d.port_mappings.push(mesos::container_info::docker_info::PortMapping {
            host_port: 31001,
            container_port: 81,
            protocol: None,
        });
        d.parameters.push(mesos::Parameter { key: "cap-add".into(), value: "NET_ADMIN".into() });
    });
    let spec = spec_of(data(None, Some(c), Vec::new())).unwrap();
    let d = spec.container.unwrap();
    assert_eq!(d.network, Network::Bridge);
    assert!(!d.force_pull && !d.privileged);
    let mappings: Vec<(u16, u16, &str)> = d
        .port_mappings
        .iter()
        .map(|m| (m.host_port, m.container_port, m.protocol.as_str()))
        .collect();
    assert_eq!(mappings, [(31000, 80, "udp"), (31000, 80, "tcp"), (31001, 81, "tcp")]);
    assert_eq!(
        d.parameters,
        [("hostname".to_owned(), "box".to_owned()), ("cap-add".into(), "NET_ADMIN".into())]
    );
    // The network defaults to HOST.
    let spec = spec_of(data(None, Some(container_proto(|_| {})), Vec::new())).unwrap();
    assert_eq!(spec.container.unwrap().network, Network::Host);
}

#[test]
fn health_checks_take_the_proto_defaults_and_a_leading_slash() {
    let mut hc = mesos::HealthCheck {
        http: Some(mesos::health_check::HttpCheckInfo {
            port: 8080,
            path: Some("ping".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    hc.set_type(mesos::health_check::Type::Http);
    let checks = vec![drover::HealthCheck { check: Some(hc), ignore_http1xx: false }];
    let spec = spec_of(data(
        Some(mesos::CommandInfo { value: Some("x".into()), ..Default::default() }),
        None,
        checks,
    ))
    .unwrap();
    assert_eq!(
        spec.health_checks,
        [HealthCheck {
            probe: Probe::Http { port: 8080, path: "/ping".into(), ipv6: false, ignore_1xx: false },
            delay: Duration::from_secs(15),
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(20),
            grace_period: Duration::from_secs(10),
            max_consecutive_failures: 3,
        }]
    );
}

#[test]
fn resources_are_summed_over_roles_and_other_resources_are_ignored() {
    let mut info = task(
        Some(data(
            Some(mesos::CommandInfo { value: Some("x".into()), ..Default::default() }),
            None,
            Vec::new(),
        )),
        None,
    );
    info.resources = vec![
        scalar("cpus", 0.1, "*"),
        scalar("cpus", 0.4, "web"),
        scalar("mem", 0.5, "*"),
        scalar("disk", 100.0, "*"),
    ];
    let limits = task_spec(&info).unwrap().limits;
    assert_eq!(limits, Limits { nano_cpus: Some(500_000_000), memory_bytes: Some(524_288) });
    info.resources = vec![scalar("cpus", 0.0, "*")];
    assert_eq!(task_spec(&info).unwrap().limits, Limits::default());
}

#[test]
fn tasks_that_cannot_run_are_errors_not_panics() {
    let err = |data: Option<Vec<u8>>| task_spec(&task(data, None)).unwrap_err().to_string();
    let cmd = |info: mesos::CommandInfo| err(Some(data(Some(info), None, Vec::new())));
    assert!(err(None).contains("has no `data`"));
    assert!(err(Some(Vec::new())).contains("has no `data`"));
    assert!(err(Some(vec![0xff, 0xff, 0xff])).contains("not a protobuf `drover.v1.TaskData`"));
    let app_only = drover::TaskData { app_id: "/web".into(), ..Default::default() };
    assert_eq!(err(Some(app_only.encode_to_vec())), "the task's `data` has no `command`");
    assert_eq!(
        cmd(mesos::CommandInfo { value: Some("  ".into()), ..Default::default() }),
        "the command is empty"
    );
    assert_eq!(
        cmd(mesos::CommandInfo { shell: Some(false), ..Default::default() }),
        "the command is empty"
    );
    assert_eq!(
        cmd(mesos::CommandInfo {
            shell: Some(false),
            arguments: vec![String::new()],
            ..Default::default()
        }),
        "the command is empty"
    );
    assert!(
        cmd(mesos::CommandInfo {
            value: Some("x".into()),
            uris: vec![mesos::command_info::Uri {
                value: "http://x/y".into(),
                ..Default::default()
            }],
            ..Default::default()
        })
        .contains("uris")
    );
    assert!(
        cmd(mesos::CommandInfo {
            value: Some("x".into()),
            environment: Some(mesos::Environment {
                variables: vec![mesos::environment::Variable {
                    name: "S".into(),
                    r#type: Some(mesos::environment::variable::Type::Secret as i32),
                    ..Default::default()
                }],
            }),
            ..Default::default()
        })
        .contains("secret")
    );
}

#[test]
fn containers_that_cannot_run_are_refused_with_the_reason() {
    let err = |c: mesos::ContainerInfo| err_of(data(None, Some(c), Vec::new()));
    let mut mesos_container = container_proto(|_| {});
    mesos_container.set_type(mesos::container_info::Type::Mesos);
    assert_eq!(
        err(mesos_container),
        "unsupported container: only `DOCKER` containers can be run, not `MESOS`"
    );
    assert!(err(container_proto(|c| c.docker = None)).contains("needs `docker`"));
    assert!(err(container_proto(|c| c.docker.as_mut().unwrap().image.clear())).contains("image"));
    let user = container_proto(|c| {
        c.docker.as_mut().unwrap().set_network(mesos::container_info::docker_info::Network::User)
    });
    assert!(err(user).contains("`USER` networks"));
    let mapping = |host_port, protocol: &str| mesos::container_info::docker_info::PortMapping {
        host_port,
        container_port: 80,
        protocol: Some(protocol.into()),
    };
    let host_mapping =
        container_proto(|c| c.docker.as_mut().unwrap().port_mappings.push(mapping(31000, "tcp")));
    assert!(err(host_mapping).contains("need `BRIDGE`"));
    let bridge = |m| {
        container_proto(|c| {
            let d = c.docker.as_mut().unwrap();
            d.set_network(mesos::container_info::docker_info::Network::Bridge);
            d.port_mappings.push(m);
        })
    };
    assert!(err(bridge(mapping(0, "tcp"))).contains("out of range"));
    assert!(err(bridge(mapping(70_000, "tcp"))).contains("out of range"));
    assert!(err(bridge(mapping(31000, "sctp"))).contains("protocol `sctp`"));
    let no_host_path = container_proto(|c| {
        c.volumes.push(mesos::Volume { container_path: "/data".into(), ..Default::default() })
    });
    assert!(err(no_host_path).contains("only host-path volumes"));
}

fn err_of(data: Vec<u8>) -> String {
    crate::error_chain(&spec_of(data).unwrap_err())
}

#[test]
fn health_checks_that_cannot_run_are_refused_and_numbered() {
    use mesos::health_check::{HttpCheckInfo, TcpCheckInfo, Type};
    let err = |hc: mesos::HealthCheck| {
        let ok = drover::HealthCheck { check: Some(tcp(80)), ignore_http1xx: false };
        let checks = vec![ok, drover::HealthCheck { check: Some(hc), ignore_http1xx: false }];
        err_of(data(
            Some(mesos::CommandInfo { value: Some("x".into()), ..Default::default() }),
            None,
            checks,
        ))
    };
    fn tcp(port: u32) -> mesos::HealthCheck {
        let mut hc = mesos::HealthCheck {
            tcp: Some(TcpCheckInfo { port, ..Default::default() }),
            ..Default::default()
        };
        hc.set_type(Type::Tcp);
        hc
    }
    assert_eq!(err(mesos::HealthCheck::default()), "health check 2: the check has no `type`");
    assert_eq!(err(tcp(0)), "health check 2: port 0 is out of range");
    let mut https = mesos::HealthCheck {
        http: Some(HttpCheckInfo { port: 1, scheme: Some("https".into()), ..Default::default() }),
        ..Default::default()
    };
    https.set_type(Type::Http);
    assert!(err(https).contains("scheme `https` is not supported"));
    let mut no_http = mesos::HealthCheck::default();
    no_http.set_type(Type::Http);
    assert!(err(no_http).contains("needs `http`"));
    let mut no_command = mesos::HealthCheck::default();
    no_command.set_type(Type::Command);
    assert!(err(no_command).contains("needs `command`"));
    let mut empty_command = mesos::HealthCheck {
        command: Some(mesos::CommandInfo { value: Some(String::new()), ..Default::default() }),
        ..Default::default()
    };
    empty_command.set_type(Type::Command);
    assert_eq!(err(empty_command), "health check 2: the command is empty");
    assert!(
        err(mesos::HealthCheck { interval_seconds: Some(0.0), ..tcp(1) })
            .contains("`interval_seconds` is 0, expected a positive number")
    );
    assert!(err(mesos::HealthCheck { timeout_seconds: Some(f64::NAN), ..tcp(1) }).contains("NaN"));
    assert!(
        err(mesos::HealthCheck { delay_seconds: Some(-1.0), ..tcp(1) }).contains("non-negative")
    );
}

#[test]
fn kill_policies_of_kill_events_convert() {
    assert_eq!(kill_grace(None), None);
    assert_eq!(kill_grace(Some(&mesos::KillPolicy { grace_period: None })), None);
    let p = mesos::KillPolicy {
        grace_period: Some(mesos::DurationInfo { nanoseconds: 1_000_000_000 }),
    };
    assert_eq!(kill_grace(Some(&p)), Some(Duration::from_secs(1)));
}
