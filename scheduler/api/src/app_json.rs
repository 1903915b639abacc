//! Marathon's app JSON: parsing and validation into an [`AppSpec`], and
//! rendering back.
//!
//! Parsing works on a `serde_json::Value` so that every problem is reported
//! at its JSON path, in Marathon's two tiers: schema problems (wrong type,
//! out of range, bad pattern) answer 422 "Invalid JSON" with Marathon's
//! `error.*` codes; semantic problems (both `cmd` and `args`) answer 422
//! "Object is not valid". All problems are collected, not just the first.

use std::collections::BTreeMap;
use std::time::Duration;

use drover_time::Timestamp;
use sched_core::app::{AppSpec, BackoffPolicy, CommandSpec, KillSelection, Resources};
use sched_core::format_version;
use sched_core::ids::{AppId, IdError};
use serde_json::{Map, Value, json};

use crate::error::{ApiError, FieldError};

const CMD_OR_ARGS: &str =
    "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'.";
const NOT_SUPPORTED: &str = "is not supported by this version of Drover";

/// Fields Drover reads from app JSON.
const KNOWN: &[&str] = &[
    "id",
    "cmd",
    "args",
    "instances",
    "cpus",
    "mem",
    "disk",
    "gpus",
    "env",
    "labels",
    "backoffSeconds",
    "backoffFactor",
    "maxLaunchDelaySeconds",
    "killSelection",
    "taskKillGracePeriodSeconds",
];

/// Read-only fields of `GET` responses, ignored when sent back.
const READ_ONLY: &[&str] = &[
    "version",
    "versionInfo",
    "tasksStaged",
    "tasksRunning",
    "tasksHealthy",
    "tasksUnhealthy",
    "deployments",
    "tasks",
    "lastTaskFailure",
    "readinessCheckResults",
    "taskStats",
];

/// Marathon fields Drover does not implement yet, with the values that mean
/// "not used" (accepted, so `GET` output and minimal clients round-trip).
fn unused_default(field: &str, v: &Value) -> Option<bool> {
    let empty = v.is_null()
        || v.as_array().is_some_and(Vec::is_empty)
        || v.as_object().is_some_and(Map::is_empty)
        || v.as_str().is_some_and(str::is_empty);
    let ok = match field {
        "container"
        | "constraints"
        | "healthChecks"
        | "readinessChecks"
        | "portDefinitions"
        | "ports"
        | "fetch"
        | "uris"
        | "dependencies"
        | "secrets"
        | "acceptedResourceRoles"
        | "check"
        | "resourceLimits"
        | "executorResources"
        | "residency"
        | "ipAddress"
        | "user"
        | "executor" => empty,
        "networks" => empty || *v == json!([{"mode": "host"}]),
        "requirePorts" | "tty" => empty || *v == json!(false),
        "role" => empty || *v == json!("*"),
        "upgradeStrategy" => {
            empty
                || (v.get("minimumHealthCapacity").and_then(Value::as_f64) == Some(1.0)
                    && v.get("maximumOverCapacity").and_then(Value::as_f64) == Some(1.0))
        }
        "unreachableStrategy" => {
            empty
                || (v.get("inactiveAfterSeconds").and_then(Value::as_f64) == Some(0.0)
                    && v.get("expungeAfterSeconds").and_then(Value::as_f64) == Some(0.0))
        }
        _ => return None,
    };
    Some(ok)
}

struct Fields<'a> {
    obj: &'a Map<String, Value>,
    schema: Vec<FieldError>,
}

impl<'a> Fields<'a> {
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.obj.get(key).filter(|v| !v.is_null())
    }

    fn err(&mut self, key: &str, code: &str) {
        self.schema.push(FieldError::new(format!("/{key}"), code));
    }

    fn number(&mut self, key: &str, min: f64) -> Option<f64> {
        let v = self.get(key)?;
        match v.as_f64() {
            Some(n) if n.is_finite() && n >= min => Some(n),
            Some(_) => {
                self.err(key, "error.min");
                None
            }
            None => {
                self.err(key, "error.expected.jsnumber");
                None
            }
        }
    }

    fn integer(&mut self, key: &str, min: i64, max: i64) -> Option<i64> {
        let v = self.get(key)?;
        let n = v.as_i64().or_else(|| {
            v.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9e15).map(|f| f as i64)
        });
        match n {
            Some(n) if n < min => {
                self.err(key, "error.min");
                None
            }
            Some(n) if n > max => {
                self.err(key, "error.max");
                None
            }
            Some(n) => Some(n),
            None if v.is_number() => {
                self.err(key, "error.expected.int");
                None
            }
            None => {
                self.err(key, "error.expected.jsnumber");
                None
            }
        }
    }

    fn string(&mut self, key: &str) -> Option<&'a str> {
        let v = self.get(key)?;
        match v.as_str() {
            Some("") => {
                self.err(key, "error.minLength");
                None
            }
            Some(s) => Some(s),
            None => {
                self.err(key, "error.expected.jsstring");
                None
            }
        }
    }

    fn string_map(&mut self, key: &str, allow_secret: bool) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Some(v) = self.get(key) else { return out };
        let Some(obj) = v.as_object() else {
            self.err(key, "error.expected.jsobject");
            return out;
        };
        for (k, v) in obj {
            match v {
                Value::String(s) => {
                    out.insert(k.clone(), s.clone());
                }
                Value::Object(o) if allow_secret && o.contains_key("secret") => {
                    self.schema.push(FieldError::new(
                        format!("/{key}/{k}"),
                        format!("secret references {NOT_SUPPORTED}"),
                    ));
                }
                _ => self
                    .schema
                    .push(FieldError::new(format!("/{key}/{k}"), "error.expected.jsstring")),
            }
        }
        out
    }

    fn string_list(&mut self, key: &str) -> Option<Vec<String>> {
        let v = self.get(key)?;
        let Some(items) = v.as_array() else {
            self.err(key, "error.expected.jsarray");
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item.as_str() {
                Some(s) => out.push(s.to_owned()),
                None => self
                    .schema
                    .push(FieldError::new(format!("/{key}({i})"), "error.expected.jsstring")),
            }
        }
        Some(out)
    }
}

/// Parses and validates an app. `path_id`, when given (PUT), overrides the
/// body's `id`. Nothing about existing state is checked here.
pub fn parse_app(body: &Value, path_id: Option<&str>) -> Result<AppSpec, ApiError> {
    let Some(obj) = body.as_object() else {
        return Err(ApiError::InvalidJson(vec![FieldError::new("/", "error.expected.jsobject")]));
    };
    let mut f = Fields { obj, schema: Vec::new() };
    let mut semantic = Vec::new();

    let raw_id = match path_id {
        Some(p) => Some(p),
        None => {
            if f.get("id").is_none() {
                f.err("id", "error.path.missing");
            }
            f.string("id")
        }
    };
    let id = raw_id.and_then(|raw| match AppId::parse(raw) {
        Ok(id) => Some(id),
        Err(e @ (IdError::Pattern | IdError::Empty)) => {
            f.schema.push(FieldError::new("/id", e.message()));
            None
        }
        Err(e @ IdError::Reserved) => {
            semantic.push(FieldError::new("/id", e.message()));
            None
        }
    });

    let cmd = f.string("cmd");
    let args = f.string_list("args");
    let instances = f.integer("instances", 0, i64::from(u32::MAX)).unwrap_or(1);
    let cpus = f.number("cpus", 0.001).unwrap_or(1.0);
    let mem = f.number("mem", 0.0).unwrap_or(128.0);
    let disk = f.number("disk", 0.0).unwrap_or(0.0);
    let gpus = f.integer("gpus", 0, i64::from(u32::MAX)).unwrap_or(0);
    let env = f.string_map("env", true);
    let labels = f.string_map("labels", false);
    let backoff_seconds = f.number("backoffSeconds", 0.0).unwrap_or(1.0);
    let backoff_factor = f.number("backoffFactor", 1.0).unwrap_or(1.15);
    let max_delay = f.number("maxLaunchDelaySeconds", 0.0).unwrap_or(300.0);
    let grace = f.integer("taskKillGracePeriodSeconds", 0, 86_400 * 365);
    let kill_selection = match f.get("killSelection").map(|v| v.as_str()) {
        None => KillSelection::YoungestFirst,
        Some(Some("YOUNGEST_FIRST")) => KillSelection::YoungestFirst,
        Some(Some("OLDEST_FIRST")) => KillSelection::OldestFirst,
        Some(_) => {
            f.err("killSelection", "error.expected.enum: YOUNGEST_FIRST, OLDEST_FIRST");
            KillSelection::YoungestFirst
        }
    };

    for (key, value) in obj {
        if KNOWN.contains(&key.as_str()) || READ_ONLY.contains(&key.as_str()) {
            continue;
        }
        if unused_default(key, value) == Some(false) {
            semantic.push(FieldError::new(format!("/{key}"), NOT_SUPPORTED));
        }
    }

    let command = match (cmd, args) {
        (Some(c), None) => Some(CommandSpec::Shell(c.to_owned())),
        (None, Some(a)) if !a.is_empty() => Some(CommandSpec::Argv(a)),
        _ => {
            // Only report when both fields themselves were well-formed.
            if !f.schema.iter().any(|e| e.path == "/cmd" || e.path.starts_with("/args")) {
                semantic.push(FieldError::new("/", CMD_OR_ARGS));
            }
            None
        }
    };

    if !f.schema.is_empty() {
        return Err(ApiError::InvalidJson(f.schema));
    }
    if !semantic.is_empty() {
        return Err(ApiError::InvalidObject(semantic));
    }
    let (Some(id), Some(command)) = (id, command) else {
        return Err(ApiError::InvalidObject(vec![FieldError::new("/", CMD_OR_ARGS)]));
    };
    Ok(AppSpec {
        id,
        command,
        instances: u32::try_from(instances).unwrap_or(u32::MAX),
        resources: Resources { cpus, mem, disk, gpus: u32::try_from(gpus).unwrap_or(u32::MAX) },
        env,
        labels,
        backoff: BackoffPolicy {
            initial: Duration::from_secs_f64(backoff_seconds.min(1e9)),
            factor: backoff_factor,
            max: Duration::from_secs_f64(max_delay.min(1e9)),
        },
        kill_selection,
        kill_grace: grace.map(|g| Duration::from_secs(u64::try_from(g).unwrap_or(0))),
        version: Timestamp::EPOCH,
        last_scaling_at: Timestamp::EPOCH,
        last_config_change_at: Timestamp::EPOCH,
    })
}

/// A number as Marathon prints it: integers without a fraction.
fn num(d: f64) -> Value {
    if d.fract() == 0.0 && d.abs() < 9e15 { json!(d as i64) } else { json!(d) }
}

/// The app definition as JSON (what `GET` shows, and what a partial `PUT`
/// is merged onto).
pub fn render_app(app: &AppSpec) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), json!(app.id.as_str()));
    match &app.command {
        CommandSpec::Shell(c) => m.insert("cmd".into(), json!(c)),
        CommandSpec::Argv(a) => m.insert("args".into(), json!(a)),
    };
    m.insert("backoffFactor".into(), json!(app.backoff.factor));
    m.insert("backoffSeconds".into(), num(app.backoff.initial.as_secs_f64()));
    m.insert("cpus".into(), json!(app.resources.cpus));
    m.insert("disk".into(), json!(app.resources.disk));
    if !app.env.is_empty() {
        m.insert("env".into(), json!(app.env));
    }
    m.insert("executor".into(), json!(""));
    m.insert("gpus".into(), json!(app.resources.gpus));
    m.insert("instances".into(), json!(app.instances));
    if !app.labels.is_empty() {
        m.insert("labels".into(), json!(app.labels));
    }
    m.insert("maxLaunchDelaySeconds".into(), num(app.backoff.max.as_secs_f64()));
    m.insert("mem".into(), json!(app.resources.mem));
    m.insert("networks".into(), json!([{"mode": "host"}]));
    m.insert("requirePorts".into(), json!(false));
    m.insert(
        "upgradeStrategy".into(),
        json!({"maximumOverCapacity": 1.0, "minimumHealthCapacity": 1.0}),
    );
    m.insert("version".into(), json!(format_version(app.version)));
    m.insert(
        "versionInfo".into(),
        json!({
            "lastScalingAt": format_version(app.last_scaling_at),
            "lastConfigChangeAt": format_version(app.last_config_change_at),
        }),
    );
    m.insert(
        "killSelection".into(),
        json!(match app.kill_selection {
            KillSelection::YoungestFirst => "YOUNGEST_FIRST",
            KillSelection::OldestFirst => "OLDEST_FIRST",
        }),
    );
    m.insert(
        "unreachableStrategy".into(),
        json!({"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0}),
    );
    m.insert("role".into(), json!("*"));
    if let Some(g) = app.kill_grace {
        m.insert("taskKillGracePeriodSeconds".into(), json!(g.as_secs()));
    }
    m
}

/// A partial update: `patch`'s top-level fields replace those of the
/// existing app; read-only fields are dropped.
pub fn merge(existing: &AppSpec, patch: &Map<String, Value>) -> Value {
    let mut base = render_app(existing);
    for k in READ_ONLY {
        base.remove(*k);
    }
    for (k, v) in patch {
        // `cmd` and `args` are alternatives: setting one drops the other.
        if k == "cmd" && !v.is_null() {
            base.remove("args");
        }
        if k == "args" && !v.is_null() {
            base.remove("cmd");
        }
        base.insert(k.clone(), v.clone());
    }
    Value::Object(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(r: Result<AppSpec, ApiError>) -> ApiError {
        r.expect_err("should be rejected")
    }

    #[test]
    fn minimal_app_gets_marathon_defaults() {
        let app = parse_app(&json!({"id": "sleepy", "cmd": "sleep 600"}), None).unwrap();
        assert_eq!(app.id.as_str(), "/sleepy");
        assert_eq!(app.instances, 1);
        assert_eq!(app.resources, Resources { cpus: 1.0, mem: 128.0, disk: 0.0, gpus: 0 });
        assert_eq!(app.backoff, BackoffPolicy::default());
        assert_eq!(app.kill_selection, KillSelection::YoungestFirst);
        assert_eq!(app.command, CommandSpec::Shell("sleep 600".into()));
    }

    #[test]
    fn full_app_is_read() {
        let app = parse_app(
            &json!({"id": "/a/b", "args": ["sleep", "1"], "instances": 3, "cpus": 0.1, "mem": 32, "disk": 5,
                    "env": {"X": "1"}, "labels": {"l": "v"}, "backoffSeconds": 2, "backoffFactor": 2.0,
                    "maxLaunchDelaySeconds": 60, "killSelection": "OLDEST_FIRST", "taskKillGracePeriodSeconds": 9}),
            None,
        )
        .unwrap();
        assert_eq!(app.command, CommandSpec::Argv(vec!["sleep".into(), "1".into()]));
        assert_eq!(app.instances, 3);
        assert_eq!(app.env["X"], "1");
        assert_eq!(app.backoff.initial, Duration::from_secs(2));
        assert_eq!(app.backoff.max, Duration::from_secs(60));
        assert_eq!(app.kill_selection, KillSelection::OldestFirst);
        assert_eq!(app.kill_grace, Some(Duration::from_secs(9)));
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
            assert_eq!(
                e,
                ApiError::InvalidObject(vec![FieldError::new("/", CMD_OR_ARGS)]),
                "{body}"
            );
        }
    }

    #[test]
    fn reserved_ids_and_wrong_types() {
        let e = errors(parse_app(&json!({"id": "/x/restart", "cmd": "a"}), None));
        assert!(matches!(e, ApiError::InvalidObject(ref d) if d[0].path == "/id"));
        let e = errors(parse_app(
            &json!({"id": "/x", "cmd": 5, "cpus": "lots", "env": {"A": 1}}),
            None,
        ));
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
        parse_app(&ok, None).unwrap();
        let e = errors(parse_app(
            &json!({"id": "/x", "cmd": "a", "constraints": [["hostname", "UNIQUE"]]}),
            None,
        ));
        assert_eq!(
            e,
            ApiError::InvalidObject(vec![FieldError::new("/constraints", NOT_SUPPORTED)])
        );
    }

    #[test]
    fn rendered_app_parses_back_to_the_same_spec() {
        let app = parse_app(
            &json!({"id": "/a", "cmd": "sleep 1", "instances": 2, "cpus": 0.5, "env": {"K": "V"}, "taskKillGracePeriodSeconds": 3}),
            None,
        )
        .unwrap();
        let back = parse_app(&Value::Object(render_app(&app)), None).unwrap();
        assert_eq!(back, app);
    }

    #[test]
    fn partial_update_changes_only_given_fields() {
        let app =
            parse_app(&json!({"id": "/a", "cmd": "sleep 1", "instances": 2, "mem": 64}), None)
                .unwrap();
        let merged = merge(&app, json!({"instances": 5}).as_object().unwrap());
        let updated = parse_app(&merged, Some("/a")).unwrap();
        assert_eq!(updated.instances, 5);
        assert_eq!(updated.resources.mem, 64.0);
        let merged = merge(&app, json!({"args": ["x"]}).as_object().unwrap());
        assert_eq!(
            parse_app(&merged, Some("/a")).unwrap().command,
            CommandSpec::Argv(vec!["x".into()])
        );
    }
}
