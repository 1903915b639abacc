//! Tests of app JSON parsing, validation, normalization and rendering.

use super::*;

fn errors(r: Result<AppSpec, ApiError>) -> ApiError {
    r.expect_err("should be rejected")
}

fn parse(v: Value) -> AppSpec {
    parse_app(&v, None).unwrap_or_else(|e| panic!("{v}: {e:?}"))
}

#[test]
fn minimal_app_gets_marathon_defaults() {
    let app = parse(json!({"id": "sleepy", "cmd": "sleep 600"}));
    assert_eq!(app.id.as_str(), "/sleepy");
    assert_eq!(app.instances, 1);
    assert_eq!(app.resources, Resources { cpus: 1.0, mem: 128.0, disk: 0.0, gpus: 0 });
    assert_eq!(app.backoff, BackoffPolicy::default());
    assert_eq!(app.kill_selection, KillSelection::YoungestFirst);
    assert_eq!(app.command, Some(CommandSpec::Shell("sleep 600".into())));
    assert_eq!(app.network, NetworkMode::Host);
    assert_eq!(app.port_definitions.len(), 1, "one port by default, as Marathon");
    assert_eq!(app.port_definitions[0].name.as_deref(), Some("default"));
    assert!(!app.require_ports);
}

#[test]
fn full_app_is_read() {
    let app = parse(
        json!({"id": "/a/b", "args": ["sleep", "1"], "instances": 3, "cpus": 0.1, "mem": 32, "disk": 5,
                "env": {"X": "1"}, "labels": {"l": "v"}, "backoffSeconds": 2, "backoffFactor": 2.0,
                "maxLaunchDelaySeconds": 60, "killSelection": "OLDEST_FIRST", "taskKillGracePeriodSeconds": 9,
                "portDefinitions": [], "requirePorts": true}),
    );
    assert_eq!(app.command, Some(CommandSpec::Argv(vec!["sleep".into(), "1".into()])));
    assert_eq!(app.instances, 3);
    assert_eq!(app.env["X"], "1");
    assert_eq!(app.backoff.initial, Duration::from_secs(2));
    assert_eq!(app.backoff.max, Duration::from_secs(60));
    assert_eq!(app.kill_selection, KillSelection::OldestFirst);
    assert_eq!(app.kill_grace, Some(Duration::from_secs(9)));
    assert!(app.port_definitions.is_empty());
    assert!(app.require_ports);
}

#[test]
fn bad_id_negative_resources_are_schema_errors_with_paths() {
    let e = errors(parse_app(
        &json!({"id": "/Bad_Id", "cmd": "x", "cpus": -1, "mem": -5, "instances": -1}),
        None,
    ));
    let ApiError::InvalidJson(details) = e else { panic!("{e:?}") };
    let paths: Vec<&str> = details.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(paths, vec!["/id", "/instances", "/cpus", "/mem"], "{details:?}");
    assert_eq!(details[1].errors, vec!["error.min"]);
    assert!(details[0].errors[0].starts_with("must fully match regular expression"));
}

#[test]
fn both_or_neither_command_is_invalid() {
    for body in [
        json!({"id": "/x", "cmd": "a", "args": ["b"]}),
        json!({"id": "/x"}),
        json!({"id": "/x", "args": []}),
    ] {
        let e = errors(parse_app(&body, None));
        assert_eq!(e, ApiError::InvalidObject(vec![FieldError::new("/", CMD_OR_ARGS)]), "{body}");
    }
}

#[test]
fn reserved_ids_and_wrong_types() {
    let e = errors(parse_app(&json!({"id": "/x/restart", "cmd": "a"}), None));
    assert!(matches!(e, ApiError::InvalidObject(ref d) if d[0].path == "/id"));
    let e =
        errors(parse_app(&json!({"id": "/x", "cmd": 5, "cpus": "lots", "env": {"A": 1}}), None));
    let ApiError::InvalidJson(d) = e else { panic!() };
    assert_eq!(d[0], FieldError::new("/cmd", "error.expected.jsstring"));
    assert_eq!(d[1], FieldError::new("/cpus", "error.expected.jsnumber"));
    assert_eq!(d[2], FieldError::new("/env/A", "error.expected.jsstring"));
    assert_eq!(
        errors(parse_app(&json!({"cmd": "a"}), None)),
        ApiError::InvalidJson(vec![FieldError::new("/id", "error.path.missing")])
    );
    assert!(matches!(errors(parse_app(&json!([1]), None)), ApiError::InvalidJson(_)));
    assert!(matches!(
        errors(parse_app(&json!({"id": "/x", "cmd": "a", "instances": 1.5}), None)),
        ApiError::InvalidJson(_)
    ));
}

#[test]
fn unsupported_fields_are_refused_unless_default() {
    let ok = json!({"id": "/x", "cmd": "a", "constraints": [], "networks": [{"mode": "host"}], "requirePorts": false,
                    "upgradeStrategy": {"minimumHealthCapacity": 1, "maximumOverCapacity": 1}, "role": "*",
                    "unknownField": 1});
    parse(ok);
    let e =
        errors(parse_app(&json!({"id": "/x", "cmd": "a", "fetch": [{"uri": "http://x"}]}), None));
    assert_eq!(e, ApiError::InvalidObject(vec![FieldError::new("/fetch", NOT_SUPPORTED)]));
}

#[test]
fn docker_app_needs_no_command_and_reads_every_container_field() {
    let app = parse(json!({
        "id": "/web", "instances": 2,
        "container": {"type": "DOCKER",
            "docker": {"image": "busybox", "forcePullImage": true, "privileged": false,
                       "parameters": [{"key": "label", "value": "a=b"}, {"key": "cap-add", "value": "NET_ADMIN"}]},
            "volumes": [{"containerPath": "/data", "hostPath": "/tmp/data", "mode": "RW"},
                        {"containerPath": "/etc/x", "hostPath": "/etc/x", "mode": "RO"}]},
        "healthChecks": [{"protocol": "HTTP", "path": "/health", "portIndex": 0}]
    }));
    assert_eq!(app.command, None);
    let c = app.container.unwrap();
    assert_eq!(c.image, "busybox");
    assert!(c.force_pull);
    assert_eq!(
        c.parameters,
        vec![("label".into(), "a=b".into()), ("cap-add".into(), "NET_ADMIN".into())]
    );
    assert_eq!(c.volumes[1].mode, VolumeMode::ReadOnly);
    assert!(c.port_mappings.is_empty());
    let h = &app.health_checks[0];
    assert_eq!(h.protocol, HealthProtocol::Http);
    assert_eq!(h.path, "/health");
    assert_eq!(h.port_index, Some(0));
    assert_eq!(h.grace_period, Duration::from_secs(300));
    assert_eq!(h.interval, Duration::from_secs(60));
    assert_eq!(h.timeout, Duration::from_secs(20));
    assert_eq!(h.max_consecutive_failures, 3);
    assert_eq!(h.delay, Duration::from_secs(15));
}

#[test]
fn legacy_docker_network_and_port_mappings_are_normalized() {
    let app = parse(json!({
        "id": "/old", "cmd": "httpd",
        "container": {"docker": {"image": "nginx", "network": "BRIDGE",
            "portMappings": [{"containerPort": 80, "hostPort": 0, "servicePort": 10080, "protocol": "tcp", "name": "http"}]}}
    }));
    assert_eq!(app.network, NetworkMode::Bridge);
    let m = &app.container.as_ref().unwrap().port_mappings;
    assert_eq!(m.len(), 1);
    assert_eq!((m[0].container_port, m[0].host_port, m[0].service_port), (80, Some(0), 10080));
    assert!(app.port_definitions.is_empty());
    assert_eq!(app.port_requests(), vec![None]);
    let host = parse(
        json!({"id": "/h", "cmd": "x", "container": {"docker": {"image": "i", "network": "HOST"}}}),
    );
    assert_eq!(host.network, NetworkMode::Host);
    let legacy_ports = parse(json!({"id": "/p", "cmd": "x", "ports": [0, 10005]}));
    let ports: Vec<u32> = legacy_ports.port_definitions.iter().map(|d| d.port).collect();
    assert_eq!(ports, vec![0, 10005]);
}

#[test]
fn bridge_defaults_to_one_mapping_and_needs_a_container() {
    let app = parse(
        json!({"id": "/b", "container": {"docker": {"image": "i"}}, "networks": [{"mode": "container/bridge"}]}),
    );
    let m = &app.container.unwrap().port_mappings;
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].name.as_deref(), Some("default"));
    let e = errors(parse_app(
        &json!({"id": "/b", "cmd": "x", "networks": [{"mode": "container/bridge"}]}),
        None,
    ));
    assert!(matches!(e, ApiError::InvalidObject(ref d) if d[0].path == "/networks"), "{e:?}");
}

#[test]
fn container_and_port_problems_are_reported_at_their_paths() {
    let cases = [
        (json!({"id": "/x", "container": {"docker": {}}}), "/container/docker/image"),
        (
            json!({"id": "/x", "container": {"type": "MESOS", "docker": {"image": "i"}}}),
            "/container/type",
        ),
        (
            json!({"id": "/x", "container": {"docker": {"image": "i"}, "volumes": [{"containerPath": "/a", "hostPath": "/b", "mode": "RX"}]}}),
            "/container/volumes(0)/mode",
        ),
        (
            json!({"id": "/x", "cmd": "a", "portDefinitions": [{"port": 70000}]}),
            "/portDefinitions(0)/port",
        ),
        (
            json!({"id": "/x", "cmd": "a", "portDefinitions": [{"port": 1, "name": "Bad_Name"}]}),
            "/portDefinitions(0)/name",
        ),
        (
            json!({"id": "/x", "cmd": "a", "portDefinitions": [{"port": 5}, {"port": 5}]}),
            "/portDefinitions(1)/port",
        ),
        (
            json!({"id": "/x", "cmd": "a", "portDefinitions": [], "healthChecks": [{"protocol": "TCP"}]}),
            "/healthChecks(0)/portIndex",
        ),
        (
            json!({"id": "/x", "cmd": "a", "healthChecks": [{"protocol": "COMMAND"}]}),
            "/healthChecks(0)/command",
        ),
        (
            json!({"id": "/x", "cmd": "a", "healthChecks": [{"protocol": "HTTPS"}]}),
            "/healthChecks(0)/protocol",
        ),
        (
            json!({"id": "/x", "cmd": "a", "healthChecks": [{"protocol": "SMTP"}]}),
            "/healthChecks(0)/protocol",
        ),
        (json!({"id": "/x", "cmd": "a", "networks": [{"mode": "container"}]}), "/networks(0)/mode"),
        (
            json!({"id": "/x", "container": {"docker": {"image": "i"}, "portMappings": [{"containerPort": 1}]}}),
            "/container/portMappings",
        ),
    ];
    for (body, path) in cases {
        let e = errors(parse_app(&body, None));
        let (ApiError::InvalidJson(d) | ApiError::InvalidObject(d)) = &e else { panic!("{e:?}") };
        assert!(d.iter().any(|x| x.path == path), "{body}: expected {path} in {d:?}");
    }
}

#[test]
fn rendered_apps_parse_back_to_the_same_spec() {
    for body in [
        json!({"id": "/a", "cmd": "sleep 1", "instances": 2, "cpus": 0.5, "env": {"K": "V"}, "taskKillGracePeriodSeconds": 3}),
        json!({"id": "/d", "container": {"docker": {"image": "busybox", "parameters": [{"key": "label", "value": "x=y"}]},
               "volumes": [{"containerPath": "/c", "hostPath": "/h", "mode": "RO"}]},
               "portDefinitions": [{"port": 10001, "name": "http", "labels": {"VIP": "1"}}], "requirePorts": true,
               "healthChecks": [{"protocol": "MESOS_HTTP", "path": "/", "intervalSeconds": 2, "ignoreHttp1xx": true},
                                {"protocol": "COMMAND", "command": {"value": "true"}}, {"protocol": "TCP", "port": 80}]}),
        json!({"id": "/b", "args": ["x"], "container": {"docker": {"image": "i"}, "portMappings": [
               {"containerPort": 80, "hostPort": 0, "servicePort": 10002, "name": "web"}]},
               "networks": [{"mode": "container/bridge"}]}),
        json!({"id": "/g/u", "cmd": "x", "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.25},
               "dependencies": ["/g/db"], "progressDeadlineSeconds": 42, "rollbackOnFailure": false}),
        json!({"id": "/s", "cmd": "x", "env": {"A": "1", "DB_PASSWORD": {"secret": "db"}},
               "secrets": {"db": {"source": "prod-db"}, "unused": {"source": "u"}}}),
    ] {
        let app = parse(body.clone());
        let back = parse(Value::Object(render_app(&app)));
        assert_eq!(back, app, "{body}");
    }
}

/// Found by `fuzz/fuzz_targets/app_json.rs`: a field of another protocol
/// (a `command` on an HTTP check, a `path` on a TCP one) was kept in the
/// spec but not rendered, so the app read back differently and sending
/// back what `GET` shows changed its configuration.
#[test]
fn health_check_fields_of_other_protocols_are_not_kept() {
    let app = parse(json!({"id": "/h", "cmd": "x", "healthChecks": [
        {"protocol": "HTTP", "command": {"value": "true"}},
        {"protocol": "TCP", "path": "/status", "ignoreHttp1xx": true},
        {"protocol": "COMMAND", "command": {"value": "true"}, "path": "/p", "ignoreHttp1xx": true}]}));
    let back = parse(Value::Object(render_app(&app)));
    assert_eq!(back, app);
    let kept: Vec<(Option<&str>, &str, bool)> = app
        .health_checks
        .iter()
        .map(|h| (h.command.as_deref(), h.path.as_str(), h.ignore_http1xx))
        .collect();
    assert_eq!(kept, vec![(None, "/", false), (None, "/", false), (Some("true"), "/", false)]);
}

#[test]
fn upgrade_strategy_dependencies_and_deadline_are_read() {
    let app = parse(
        json!({"id": "/prod/web", "cmd": "x", "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0},
                           "dependencies": ["db", "/infra/cache"], "progressDeadlineSeconds": 30, "rollbackOnFailure": false}),
    );
    assert_eq!(
        app.upgrade,
        UpgradeStrategy { minimum_health_capacity: 0.5, maximum_over_capacity: 0.0 }
    );
    let deps: Vec<&str> = app.dependencies.iter().map(AppId::as_str).collect();
    assert_eq!(deps, vec!["/infra/cache", "/prod/db"]);
    assert_eq!(app.progress_deadline, Duration::from_secs(30));
    assert!(!app.rollback_on_failure);
    let e = errors(parse_app(
        &json!({"id": "/x", "cmd": "a", "upgradeStrategy": {"minimumHealthCapacity": 1.5}}),
        None,
    ));
    assert_eq!(
        e,
        ApiError::InvalidJson(vec![FieldError::new(
            "/upgradeStrategy/minimumHealthCapacity",
            "error.max"
        )])
    );
    let e = errors(parse_app(&json!({"id": "/x", "cmd": "a", "dependencies": ["/x"]}), None));
    assert!(matches!(e, ApiError::InvalidObject(_)));
}

#[test]
fn partial_update_changes_only_given_fields() {
    let app = parse(json!({"id": "/a", "cmd": "sleep 1", "instances": 2, "mem": 64}));
    let merged = merge(&app, json!({"instances": 5}).as_object().unwrap());
    let updated = parse_app(&merged, Some("/a")).unwrap();
    assert_eq!(updated.instances, 5);
    assert_eq!(updated.resources.mem, 64.0);
    let merged = merge(&app, json!({"args": ["x"]}).as_object().unwrap());
    assert_eq!(
        parse_app(&merged, Some("/a")).unwrap().command,
        Some(CommandSpec::Argv(vec!["x".into()]))
    );
}

#[test]
fn placement_fields_default_to_the_framework_role() {
    let app = parse(json!({"id": "/x", "cmd": "a"}));
    assert!(app.placement.constraints.is_empty());
    assert_eq!(app.placement.accepted_resource_roles, vec!["*"]);
    assert_eq!(app.placement.role, "*");
    let out = render_app(&app);
    assert_eq!(out["constraints"], json!([]));
    assert_eq!(out["acceptedResourceRoles"], json!(["*"]));
    assert_eq!(out["role"], json!("*"));
    let empty = parse(json!({"id": "/x", "cmd": "a", "acceptedResourceRoles": []}));
    assert_eq!(empty.placement.accepted_resource_roles, vec!["*"], "empty means the default");
}

#[test]
fn constraints_are_read_and_rendered_back() {
    let app = parse(json!({"id": "/x", "cmd": "a", "role": "*", "acceptedResourceRoles": ["*"],
        "constraints": [["hostname", "UNIQUE"], ["rack", "group_by", "3"], ["@zone", "LIKE", "us-.*"],
                        ["rack", "MAX_PER", "2"], ["cores", "IS", "4"], ["rack", "CLUSTER"]]}));
    let rendered: Vec<Vec<String>> =
        app.placement.constraints.iter().map(|c| c.to_strings()).collect();
    assert_eq!(
        rendered,
        vec![
            vec!["hostname", "UNIQUE"],
            vec!["rack", "GROUP_BY", "3"],
            vec!["@zone", "LIKE", "us-.*"],
            vec!["rack", "MAX_PER", "2"],
            vec!["cores", "IS", "4"],
            vec!["rack", "CLUSTER"],
        ]
    );
    let back = parse(Value::Object(render_app(&app)));
    assert_eq!(back, app);
    assert_eq!(render_app(&app)["constraints"][1], json!(["rack", "GROUP_BY", "3"]));
}

#[test]
fn bad_constraints_are_refused_at_their_paths_with_marathon_messages() {
    let e = errors(parse_app(
        &json!({"id": "/x", "cmd": "a", "constraints": [
            ["hostname", "UNIQUE", "x"],
            ["rack", "LIKE", "rack-["],
            ["rack", "MAX_PER"],
            ["rack", "GROUP_BY", "many"],
            ["rack", "SOMETIMES"],
            ["rack"],
            ["", "UNIQUE"],
            ["rack", "LIKE"],
            ["rack", "IS", "{a,b}"],
        ]}),
        None,
    ));
    let ApiError::InvalidObject(d) = e else { panic!("{e:?}") };
    let got: Vec<(String, String)> =
        d.iter().map(|f| (f.path.clone(), f.errors.join(";"))).collect();
    let want: Vec<(String, String)> = [
        "UNIQUE does not accept a value",
        "'rack-[' is not a valid regular expression",
        "MAX_PER requires an integer value",
        "GROUP BY must define an integer value or else no value at all",
        "operator must be one of the following UNIQUE, CLUSTER, GROUP_BY, LIKE, MAX_PER, UNLIKE or IS",
        "Each constraint must have either 2 or 3 fields",
        "missing field for constraint declaration",
        "LIKE and UNLIKE require a non-empty, regular expression value",
        "IS only supports Mesos text and float values (see http://mesos.apache.org/documentation/latest/attributes-resources/)",
    ]
    .iter()
    .enumerate()
    .map(|(i, m)| (format!("/constraints({i})"), (*m).to_owned()))
    .collect();
    assert_eq!(got, want);
    let e = errors(parse_app(
        &json!({"id": "/x", "cmd": "a", "constraints": [["rack", 1], "hostname:UNIQUE"]}),
        None,
    ));
    assert_eq!(
        e,
        ApiError::InvalidJson(vec![
            FieldError::new("/constraints(0)", "error.expected.jsstring"),
            FieldError::new("/constraints(1)", "error.expected.jsarray"),
        ])
    );
    let e = errors(parse_app(&json!({"id": "/x", "cmd": "a", "constraints": {}}), None));
    assert_eq!(
        e,
        ApiError::InvalidJson(vec![FieldError::new("/constraints", "error.expected.jsarray")])
    );
}

#[test]
fn roles_follow_marathon_rules() {
    let cases = [
        (json!({"role": "prod"}), "/role", "got \"prod\", expected one of: [*]"),
        (
            json!({"role": "a b"}),
            "/role",
            "A role name must not include a space (\\x20) character.",
        ),
        (
            json!({"acceptedResourceRoles": ["*", "slave_public"]}),
            "/acceptedResourceRoles",
            "acceptedResourceRoles can only contain *",
        ),
        (
            json!({"acceptedResourceRoles": ["-x"]}),
            "/acceptedResourceRoles(0)",
            "A role name must not start with a '-'.",
        ),
        (
            json!({"acceptedResourceRoles": [".."]}),
            "/acceptedResourceRoles(0)",
            "A role name must not be \"..\".",
        ),
    ];
    for (extra, path, message) in cases {
        let mut body = json!({"id": "/x", "cmd": "a"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let e = errors(parse_app(&body, None));
        assert_eq!(e, ApiError::InvalidObject(vec![FieldError::new(path, message)]), "{body}");
    }
    let e = errors(parse_app(&json!({"id": "/x", "cmd": "a", "acceptedResourceRoles": "*"}), None));
    assert_eq!(
        e,
        ApiError::InvalidJson(vec![FieldError::new(
            "/acceptedResourceRoles",
            "error.expected.jsarray"
        )])
    );
}

#[test]
fn env_secrets_are_kept_as_references_to_declared_secrets() {
    let body = json!({"id": "/s", "cmd": "x",
        "env": {"PLAIN": "1", "DB_PASSWORD": {"secret": "db"}, "API_KEY": {"secret": "api"}},
        "secrets": {"db": {"source": "prod-db"}, "api": {"source": "/vault/api"}}});
    let app = parse(body);
    assert_eq!(app.env, BTreeMap::from([("PLAIN".to_owned(), "1".to_owned())]));
    assert_eq!(
        app.secret_env,
        BTreeMap::from([
            ("API_KEY".to_owned(), "api".to_owned()),
            ("DB_PASSWORD".to_owned(), "db".to_owned())
        ])
    );
    assert_eq!(app.secrets["api"], "/vault/api");
    let refs = app.secret_refs();
    assert_eq!(
        (refs["DB_PASSWORD"].name.as_str(), refs["DB_PASSWORD"].source.as_str()),
        ("db", "prod-db")
    );
    // Rendered back as Marathon shows them: the reference, with the source.
    let shown = Value::Object(render_app(&app));
    assert_eq!(
        shown["env"],
        json!({"PLAIN": "1", "DB_PASSWORD": {"secret": "db"}, "API_KEY": {"secret": "api"}})
    );
    assert_eq!(
        shown["secrets"],
        json!({"db": {"source": "prod-db"}, "api": {"source": "/vault/api"}})
    );
    // An app without secrets shows no `secrets` field.
    let plain = Value::Object(render_app(&parse(json!({"id": "/p", "cmd": "x"}))));
    assert!(plain.get("secrets").is_none() && plain.get("env").is_none(), "{plain}");
}

#[test]
fn an_env_secret_that_is_not_declared_is_refused_in_marathons_shape() {
    let e = errors(parse_app(
        &json!({"id": "/s", "cmd": "x", "env": {"DB_PASSWORD": {"secret": "db"}, "B": {"secret": "b"}},
                "secrets": {"b": {"source": "b"}}}),
        None,
    ));
    assert_eq!(
        e,
        ApiError::InvalidObject(vec![FieldError::new(
            "/env/DB_PASSWORD/secret",
            "references an undefined secret"
        )])
    );
    let e =
        errors(parse_app(&json!({"id": "/s", "cmd": "x", "env": {"X": {"secret": "db"}}}), None));
    assert!(matches!(e, ApiError::InvalidObject(ref d) if d[0].path == "/env/X/secret"), "{e:?}");
}

#[test]
fn malformed_secrets_are_schema_errors_at_their_paths() {
    let e = errors(parse_app(
        &json!({"id": "/s", "cmd": "x",
                "env": {"A": {"secret": ""}, "B": {"secret": 5}, "C": {"other": "x"}},
                "secrets": {"a": {"source": ""}, "b": {}, "c": "plain", "d": {"source": 1}}}),
        None,
    ));
    let ApiError::InvalidJson(d) = e else { panic!("{e:?}") };
    let got: Vec<(&str, &str)> =
        d.iter().map(|f| (f.path.as_str(), f.errors[0].as_str())).collect();
    assert_eq!(
        got,
        vec![
            ("/env/A/secret", "error.minLength"),
            ("/env/B/secret", "error.expected.jsstring"),
            ("/env/C", "error.expected.jsstring"),
            ("/secrets/a/source", "error.minLength"),
            ("/secrets/b/source", "error.path.missing"),
            ("/secrets/c", "error.expected.jsobject"),
            ("/secrets/d/source", "error.expected.jsstring"),
        ]
    );
    let e = errors(parse_app(&json!({"id": "/s", "cmd": "x", "secrets": []}), None));
    assert_eq!(
        e,
        ApiError::InvalidJson(vec![FieldError::new("/secrets", "error.expected.jsobject")])
    );
}

#[test]
fn a_partial_update_keeps_the_secret_references() {
    let app = parse(json!({"id": "/s", "cmd": "x", "env": {"P": {"secret": "db"}},
                           "secrets": {"db": {"source": "prod-db"}}}));
    let patch = json!({"instances": 3});
    let merged = parse(merge(&app, patch.as_object().unwrap()));
    assert_eq!(
        (merged.secrets, merged.secret_env, merged.instances),
        (app.secrets, app.secret_env, 3)
    );
}

/// Found preparing the schemathesis run (`integration/schemathesis.sh`),
/// whose generated apps would hold it: `"instances": 4000000000` was
/// accepted, and the core then allocated a record per instance.
#[test]
fn instances_are_capped() {
    let app = parse(json!({"id": "big", "cmd": "x", "instances": MAX_INSTANCES}));
    assert_eq!(app.instances, MAX_INSTANCES);
    for n in [json!(MAX_INSTANCES + 1), json!(4_000_000_000u64)] {
        let e = errors(parse_app(&json!({"id": "big", "cmd": "x", "instances": n}), None));
        assert_eq!(
            e,
            ApiError::InvalidJson(vec![FieldError::new("/instances", "error.max")]),
            "{n}"
        );
    }
}
