//! Marathon's app JSON: parsing and validation into an [`AppSpec`], and
//! rendering back.
//!
//! Parsing works on a `serde_json::Value` so that every problem is reported
//! at its JSON path, in Marathon's two tiers: schema problems (wrong type,
//! out of range, bad pattern) answer 422 "Invalid JSON" with Marathon's
//! `error.*` codes; semantic problems (both `cmd` and `args`, a port index
//! out of range) answer 422 "Object is not valid". All problems are
//! collected, not just the first.
//!
//! App ids in `/drover.jobs` are refused (422 "Object is not valid" at
//! `/id`): that group holds the synthetic apps job runs are launched as.
//!
//! Secrets (Marathon's `secrets: {"db": {"source": "..."}}` and env values
//! `{"secret": "db"}`) are references: the spec keeps the source, and the
//! value is read by the daemon only when it launches a task. Every env
//! secret must name a declared secret (422 "Object is not valid" at
//! `/env/<VAR>/secret` otherwise, as Marathon).
//!
//! Legacy shapes old clients still send are normalized first, as Marathon
//! does: `container.docker.network` becomes `networks`,
//! `container.docker.portMappings` becomes `container.portMappings`, and
//! `ports` becomes `portDefinitions`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use drover_time::Timestamp;
use sched_core::app::{
    AppSpec, BackoffPolicy, CommandSpec, ContainerSpec, DEFAULT_PROGRESS_DEADLINE, FRAMEWORK_ROLE,
    HealthCheckSpec, HealthProtocol, KillSelection, NetworkMode, PlacementSpec, PortDefinition,
    PortMapping, Resources, UpgradeStrategy, Volume, VolumeMode,
};
use sched_core::constraints::{Constraint, messages};
use sched_core::format_version;
use sched_core::ids::{AppId, IdError};
use sched_core::job::JOBS_GROUP;
use sched_core::offer::UNRESERVED;
use serde_json::{Map, Value, json};

use crate::error::{ApiError, FieldError};

const CMD_OR_ARGS: &str =
    "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'.";

/// The most instances one app may have: the core keeps a record per
/// instance, so `"instances": 4000000000` must be refused (`error.max`),
/// not allocated.
pub const MAX_INSTANCES: u32 = 10_000;

const NOT_SUPPORTED: &str = "is not supported by this version of Drover";

/// Fields Drover reads from app JSON (after legacy normalization).
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
    "secrets",
    "labels",
    "backoffSeconds",
    "backoffFactor",
    "maxLaunchDelaySeconds",
    "killSelection",
    "taskKillGracePeriodSeconds",
    "container",
    "networks",
    "portDefinitions",
    "requirePorts",
    "healthChecks",
    "upgradeStrategy",
    "dependencies",
    "progressDeadlineSeconds",
    "rollbackOnFailure",
    "constraints",
    "acceptedResourceRoles",
    "role",
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
        "readinessChecks" | "fetch" | "uris" | "check" | "resourceLimits" | "executorResources"
        | "residency" | "ipAddress" | "user" | "executor" => empty,
        "tty" => empty || *v == json!(false),
        "unreachableStrategy" => {
            empty
                || (v.get("inactiveAfterSeconds").and_then(Value::as_f64) == Some(0.0)
                    && v.get("expungeAfterSeconds").and_then(Value::as_f64) == Some(0.0))
        }
        _ => return None,
    };
    Some(ok)
}

/// Collected problems of one parse.
#[derive(Default)]
struct Problems {
    schema: Vec<FieldError>,
    semantic: Vec<FieldError>,
}

/// Reads typed fields of one JSON object, reporting problems at their path.
struct Reader<'a> {
    obj: &'a Map<String, Value>,
    path: String,
}

impl<'a> Reader<'a> {
    fn new(obj: &'a Map<String, Value>, path: impl Into<String>) -> Self {
        Reader { obj, path: path.into() }
    }

    fn at(&self, key: &str) -> String {
        format!("{}/{key}", self.path)
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.obj.get(key).filter(|v| !v.is_null())
    }

    fn err(&self, p: &mut Problems, key: &str, code: impl Into<String>) {
        p.schema.push(FieldError::new(self.at(key), code));
    }

    fn number(&self, p: &mut Problems, key: &str, min: f64) -> Option<f64> {
        let v = self.get(key)?;
        match v.as_f64() {
            Some(n) if n.is_finite() && n >= min => Some(n),
            Some(_) => {
                self.err(p, key, "error.min");
                None
            }
            None => {
                self.err(p, key, "error.expected.jsnumber");
                None
            }
        }
    }

    fn integer(&self, p: &mut Problems, key: &str, min: i64, max: i64) -> Option<i64> {
        let v = self.get(key)?;
        let n = v.as_i64().or_else(|| {
            v.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9e15).map(|f| f as i64)
        });
        match n {
            Some(n) if n < min => {
                self.err(p, key, "error.min");
                None
            }
            Some(n) if n > max => {
                self.err(p, key, "error.max");
                None
            }
            Some(n) => Some(n),
            None if v.is_number() => {
                self.err(p, key, "error.expected.int");
                None
            }
            None => {
                self.err(p, key, "error.expected.jsnumber");
                None
            }
        }
    }

    fn u32(&self, p: &mut Problems, key: &str, max: u32) -> Option<u32> {
        self.integer(p, key, 0, i64::from(max)).map(|n| u32::try_from(n).unwrap_or(max))
    }

    fn seconds(&self, p: &mut Problems, key: &str, default: f64) -> Duration {
        Duration::from_secs_f64(self.number(p, key, 0.0).unwrap_or(default).min(1e9))
    }

    fn boolean(&self, p: &mut Problems, key: &str) -> Option<bool> {
        let v = self.get(key)?;
        v.as_bool().or_else(|| {
            self.err(p, key, "error.expected.jsboolean");
            None
        })
    }

    fn string(&self, p: &mut Problems, key: &str) -> Option<&'a str> {
        let v = self.get(key)?;
        match v.as_str() {
            Some("") => {
                self.err(p, key, "error.minLength");
                None
            }
            Some(s) => Some(s),
            None => {
                self.err(p, key, "error.expected.jsstring");
                None
            }
        }
    }

    fn object(&self, p: &mut Problems, key: &str) -> Option<Reader<'a>> {
        let v = self.get(key)?;
        match v.as_object() {
            Some(o) => Some(Reader::new(o, self.at(key))),
            None => {
                self.err(p, key, "error.expected.jsobject");
                None
            }
        }
    }

    /// The objects of an array field, each with its own path (`/key(i)`).
    fn objects(&self, p: &mut Problems, key: &str) -> Option<Vec<Reader<'a>>> {
        let v = self.get(key)?;
        let Some(items) = v.as_array() else {
            self.err(p, key, "error.expected.jsarray");
            return None;
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item.as_object() {
                Some(o) => out.push(Reader::new(o, format!("{}({i})", self.at(key)))),
                None => p.schema.push(FieldError::new(
                    format!("{}({i})", self.at(key)),
                    "error.expected.jsobject",
                )),
            }
        }
        Some(out)
    }

    fn string_map(&self, p: &mut Problems, key: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Some(v) = self.get(key) else { return out };
        let Some(obj) = v.as_object() else {
            self.err(p, key, "error.expected.jsobject");
            return out;
        };
        for (k, v) in obj {
            match v {
                Value::String(s) => {
                    out.insert(k.clone(), s.clone());
                }
                _ => p.schema.push(FieldError::new(
                    format!("{}/{k}", self.at(key)),
                    "error.expected.jsstring",
                )),
            }
        }
        out
    }

    /// `env`: plain values, and secret references (`{"secret": "name"}`)
    /// returned apart as variable → secret name.
    fn env(&self, p: &mut Problems) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
        let (mut plain, mut secret) = (BTreeMap::new(), BTreeMap::new());
        let Some(v) = self.get("env") else { return (plain, secret) };
        let Some(obj) = v.as_object() else {
            self.err(p, "env", "error.expected.jsobject");
            return (plain, secret);
        };
        for (k, v) in obj {
            match v {
                Value::String(s) => {
                    plain.insert(k.clone(), s.clone());
                }
                Value::Object(o) if o.contains_key("secret") => {
                    let r = Reader::new(o, format!("{}/{k}", self.at("env")));
                    if r.get("secret").is_none() {
                        r.err(p, "secret", "error.path.missing");
                    }
                    if let Some(name) = r.string(p, "secret") {
                        secret.insert(k.clone(), name.to_owned());
                    }
                }
                _ => p.schema.push(FieldError::new(
                    format!("{}/{k}", self.at("env")),
                    "error.expected.jsstring",
                )),
            }
        }
        (plain, secret)
    }

    /// `secrets`: name → `{"source": "..."}`, returned as name → source.
    fn secrets(&self, p: &mut Problems) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Some(secrets) = self.object(p, "secrets") else { return out };
        for name in secrets.obj.keys() {
            if name.is_empty() {
                secrets.err(p, name, "error.minLength");
                continue;
            }
            let Some(def) = secrets.object(p, name) else { continue };
            if def.get("source").is_none() {
                def.err(p, "source", "error.path.missing");
            }
            if let Some(source) = def.string(p, "source") {
                out.insert(name.clone(), source.to_owned());
            }
        }
        out
    }

    fn string_list(&self, p: &mut Problems, key: &str) -> Option<Vec<String>> {
        let v = self.get(key)?;
        let Some(items) = v.as_array() else {
            self.err(p, key, "error.expected.jsarray");
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item.as_str() {
                Some(s) => out.push(s.to_owned()),
                None => p.schema.push(FieldError::new(
                    format!("{}({i})", self.at(key)),
                    "error.expected.jsstring",
                )),
            }
        }
        Some(out)
    }

    fn one_of(&self, p: &mut Problems, key: &str, allowed: &[&str]) -> Option<&'a str> {
        let s = self.string(p, key)?;
        if allowed.contains(&s) {
            Some(s)
        } else {
            self.err(p, key, format!("error.expected.enum: {}", allowed.join(", ")));
            None
        }
    }
}

const PROTOCOLS: &[&str] = &["tcp", "udp", "udp,tcp"];

fn valid_port_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn port_name(r: &Reader<'_>, p: &mut Problems) -> Option<String> {
    let name = r.string(p, "name")?;
    if valid_port_name(name) {
        Some(name.to_owned())
    } else {
        r.err(p, "name", "error.pattern");
        None
    }
}

/// Rewrites Marathon's deprecated shapes into the current ones.
fn normalize_legacy(obj: &Map<String, Value>) -> Map<String, Value> {
    let mut out = obj.clone();
    if let Some(Value::Object(container)) = out.get_mut("container")
        && let Some(Value::Object(docker)) = container.get_mut("docker")
    {
        let network = docker.remove("network");
        let mappings = docker.remove("portMappings");
        if let Some(m) = mappings.filter(|m| !m.is_null()) {
            container.entry("portMappings").or_insert(m);
        }
        if let Some(Value::String(n)) = network {
            let mode = match n.as_str() {
                "BRIDGE" => json!([{"mode": "container/bridge"}]),
                "HOST" => json!([{"mode": "host"}]),
                "USER" => json!([{"mode": "container"}]),
                other => json!([{"mode": other.to_ascii_lowercase()}]),
            };
            out.entry("networks").or_insert(mode);
        }
    }
    if let Some(ports) = out.remove("ports")
        && let Some(list) = ports.as_array().filter(|_| !out.contains_key("portDefinitions"))
    {
        let defs: Vec<Value> = list.iter().map(|p| json!({"port": p})).collect();
        out.insert("portDefinitions".into(), Value::Array(defs));
    }
    out
}

/// Parses and validates an app. `path_id`, when given (PUT), overrides the
/// body's `id`. Nothing about existing state is checked here.
pub fn parse_app(body: &Value, path_id: Option<&str>) -> Result<AppSpec, ApiError> {
    let Some(raw) = body.as_object() else {
        return Err(ApiError::InvalidJson(vec![FieldError::new("/", "error.expected.jsobject")]));
    };
    let obj = normalize_legacy(raw);
    let r = Reader::new(&obj, "");
    let mut p = Problems::default();

    let raw_id = match path_id {
        Some(id) => Some(id),
        None => {
            if r.get("id").is_none() {
                r.err(&mut p, "id", "error.path.missing");
            }
            r.string(&mut p, "id")
        }
    };
    let id = raw_id.and_then(|raw| match AppId::parse(raw) {
        Ok(id) => Some(id),
        Err(e @ (IdError::Pattern | IdError::Empty)) => {
            p.schema.push(FieldError::new("/id", e.message()));
            None
        }
        Err(e @ IdError::Reserved) => {
            p.semantic.push(FieldError::new("/id", e.message()));
            None
        }
    });
    if let Some(reserved) = id.as_ref().filter(|id| id.is_in_group(JOBS_GROUP)) {
        p.semantic.push(FieldError::new(
            "/id",
            format!(
                "{reserved} is in {JOBS_GROUP}, which is reserved for the runs of jobs; manage \
                 jobs through /v1/scheduler"
            ),
        ));
    }

    let cmd = r.string(&mut p, "cmd");
    let args = r.string_list(&mut p, "args");
    let instances = r.u32(&mut p, "instances", MAX_INSTANCES).unwrap_or(1);
    let cpus = r.number(&mut p, "cpus", 0.001).unwrap_or(1.0);
    let mem = r.number(&mut p, "mem", 0.0).unwrap_or(128.0);
    let disk = r.number(&mut p, "disk", 0.0).unwrap_or(0.0);
    let gpus = r.u32(&mut p, "gpus", u32::MAX).unwrap_or(0);
    let (env, secret_env) = r.env(&mut p);
    let secrets = r.secrets(&mut p);
    for (var, name) in &secret_env {
        if !secrets.contains_key(name) {
            p.semantic.push(FieldError::new(
                format!("/env/{var}/secret"),
                "references an undefined secret",
            ));
        }
    }
    let labels = r.string_map(&mut p, "labels");
    let backoff_seconds = r.number(&mut p, "backoffSeconds", 0.0).unwrap_or(1.0);
    let backoff_factor = r.number(&mut p, "backoffFactor", 1.0).unwrap_or(1.15);
    let max_delay = r.number(&mut p, "maxLaunchDelaySeconds", 0.0).unwrap_or(300.0);
    let grace = r.u32(&mut p, "taskKillGracePeriodSeconds", 86_400 * 365);
    let kill_selection =
        match r.one_of(&mut p, "killSelection", &["YOUNGEST_FIRST", "OLDEST_FIRST"]) {
            Some("OLDEST_FIRST") => KillSelection::OldestFirst,
            _ => KillSelection::YoungestFirst,
        };
    let network = parse_networks(&r, &mut p);
    let container = parse_container(&r, &mut p, &network);
    let require_ports = r.boolean(&mut p, "requirePorts").unwrap_or(false);
    let port_definitions = parse_port_definitions(&r, &mut p, &network);
    let host_port_count = match network {
        NetworkMode::Host => port_definitions.len(),
        NetworkMode::Bridge => container
            .iter()
            .flat_map(|c| &c.port_mappings)
            .filter(|m| m.host_port.is_some())
            .count(),
    };
    let health_checks = parse_health_checks(&r, &mut p, host_port_count);
    let upgrade = parse_upgrade(&r, &mut p);
    let dependencies = parse_dependencies(&r, &mut p, id.as_ref());
    let progress_deadline =
        r.seconds(&mut p, "progressDeadlineSeconds", DEFAULT_PROGRESS_DEADLINE.as_secs_f64());
    let rollback_on_failure = r.boolean(&mut p, "rollbackOnFailure").unwrap_or(true);
    let placement = parse_placement(&r, &mut p);

    for (key, value) in &obj {
        if KNOWN.contains(&key.as_str()) || READ_ONLY.contains(&key.as_str()) {
            continue;
        }
        if unused_default(key, value) == Some(false) {
            p.semantic.push(FieldError::new(format!("/{key}"), NOT_SUPPORTED));
        }
    }

    let command = match (cmd, args) {
        (Some(c), None) => Some(CommandSpec::Shell(c.to_owned())),
        (None, Some(a)) if !a.is_empty() => Some(CommandSpec::Argv(a)),
        (None, None) if container.is_some() => None,
        (None, Some(_)) if container.is_some() => None,
        _ => {
            // Only report when both fields themselves were well-formed.
            if !p.schema.iter().any(|e| e.path == "/cmd" || e.path.starts_with("/args")) {
                p.semantic.push(FieldError::new("/", CMD_OR_ARGS));
            }
            None
        }
    };
    let invalid_container =
        obj.get("container").is_some_and(|c| !c.is_null()) && container.is_none();

    if !p.schema.is_empty() {
        return Err(ApiError::InvalidJson(p.schema));
    }
    if !p.semantic.is_empty() {
        return Err(ApiError::InvalidObject(p.semantic));
    }
    let Some(id) = id else {
        return Err(ApiError::InvalidJson(vec![FieldError::new("/id", "error.path.missing")]));
    };
    if command.is_none() && (container.is_none() || invalid_container) {
        return Err(ApiError::InvalidObject(vec![FieldError::new("/", CMD_OR_ARGS)]));
    }
    Ok(AppSpec {
        id,
        command,
        container,
        network,
        port_definitions,
        require_ports,
        health_checks,
        instances,
        resources: Resources { cpus, mem, disk, gpus },
        placement,
        env,
        secrets,
        secret_env,
        labels,
        backoff: BackoffPolicy {
            initial: Duration::from_secs_f64(backoff_seconds.min(1e9)),
            factor: backoff_factor,
            max: Duration::from_secs_f64(max_delay.min(1e9)),
        },
        kill_selection,
        upgrade,
        dependencies,
        progress_deadline,
        rollback_on_failure,
        kill_grace: grace.map(|g| Duration::from_secs(u64::from(g))),
        version: Timestamp::EPOCH,
        last_scaling_at: Timestamp::EPOCH,
        last_config_change_at: Timestamp::EPOCH,
    })
}

/// Why `role` is not a valid Mesos role name (Marathon's rules), if it is not.
fn role_name_problem(role: &str) -> Option<String> {
    let named = [
        ('\u{09}', "horizontal tab (\\x09)"),
        ('\u{0a}', "line feed (\\x0a)"),
        ('\u{0b}', "vertical tab (\\x0b)"),
        ('\u{0c}', "form feed (\\x0c)"),
        ('\u{0d}', "carriage return (\\x0d)"),
        (' ', "space (\\x20)"),
        ('/', "slash (\\x2f)"),
        ('\u{7f}', "backspace (\\x7f)"),
    ];
    if matches!(role, "" | "." | "..") {
        return Some(format!("A role name must not be \"{role}\"."));
    }
    if role.starts_with('-') {
        return Some("A role name must not start with a '-'.".to_owned());
    }
    named
        .iter()
        .find(|(c, _)| role.contains(*c))
        .map(|(_, name)| format!("A role name must not include a {name} character."))
}

/// `role`, `acceptedResourceRoles` and `constraints`, with Marathon's
/// defaults and rules: the role is Drover's (the framework's) role; the
/// accepted roles are one or both of `*` and that role (default: both);
/// each constraint is `[field, OPERATOR]` or `[field, OPERATOR, value]`.
fn parse_placement(r: &Reader<'_>, p: &mut Problems) -> PlacementSpec {
    let mut spec = PlacementSpec::default();
    if let Some(role) = r.string(p, "role") {
        if let Some(problem) = role_name_problem(role) {
            p.semantic.push(FieldError::new("/role", problem));
        } else if role != FRAMEWORK_ROLE {
            p.semantic.push(FieldError::new(
                "/role",
                format!("got \"{role}\", expected one of: [{FRAMEWORK_ROLE}]"),
            ));
        } else {
            spec.role = role.to_owned();
        }
    }
    if let Some(list) = r.string_list(p, "acceptedResourceRoles").filter(|l| !l.is_empty()) {
        let mut roles: Vec<String> = Vec::new();
        for (i, role) in list.iter().enumerate() {
            if let Some(problem) = role_name_problem(role) {
                p.semantic.push(FieldError::new(format!("/acceptedResourceRoles({i})"), problem));
            } else if !roles.contains(role) {
                roles.push(role.clone());
            }
        }
        if roles.iter().any(|x| x != UNRESERVED && *x != spec.role) {
            let allowed = if spec.role == UNRESERVED {
                UNRESERVED.to_owned()
            } else {
                format!("{UNRESERVED} and {}", spec.role)
            };
            p.semantic.push(FieldError::new(
                "/acceptedResourceRoles",
                format!("acceptedResourceRoles can only contain {allowed}"),
            ));
        }
        spec.accepted_resource_roles = roles;
    }
    let Some(v) = r.get("constraints") else { return spec };
    let Some(items) = v.as_array() else {
        r.err(p, "constraints", "error.expected.jsarray");
        return spec;
    };
    for (i, item) in items.iter().enumerate() {
        let path = format!("/constraints({i})");
        let Some(parts) = item.as_array() else {
            p.schema.push(FieldError::new(path, "error.expected.jsarray"));
            continue;
        };
        let Some(strings) = parts.iter().map(Value::as_str).collect::<Option<Vec<&str>>>() else {
            p.schema.push(FieldError::new(path, "error.expected.jsstring"));
            continue;
        };
        let parsed = match strings.as_slice() {
            [field, op] => Constraint::parse(field, op, None),
            [field, op, value] => Constraint::parse(field, op, Some(value)),
            _ => Err(messages::ARITY.to_owned()),
        };
        match parsed {
            Ok(c) => spec.constraints.push(c),
            Err(e) => p.semantic.push(FieldError::new(path, e)),
        }
    }
    spec
}

fn parse_upgrade(r: &Reader<'_>, p: &mut Problems) -> UpgradeStrategy {
    let Some(u) = r.object(p, "upgradeStrategy") else { return UpgradeStrategy::default() };
    let mut fraction = |key: &str| {
        let v = u.number(p, key, 0.0).unwrap_or(1.0);
        if v > 1.0 {
            u.err(p, key, "error.max");
        }
        v.min(1.0)
    };
    UpgradeStrategy {
        minimum_health_capacity: fraction("minimumHealthCapacity"),
        maximum_over_capacity: fraction("maximumOverCapacity"),
    }
}

/// Dependencies are path ids, relative ones resolved against the app's group.
fn parse_dependencies(r: &Reader<'_>, p: &mut Problems, id: Option<&AppId>) -> Vec<AppId> {
    let Some(list) = r.string_list(p, "dependencies") else { return Vec::new() };
    let group = id.map(|i| i.as_str().rsplit_once('/').map_or("", |(g, _)| g)).unwrap_or("");
    let mut out = Vec::new();
    for (i, raw) in list.iter().enumerate() {
        let absolute = if raw.starts_with('/') { raw.clone() } else { format!("{group}/{raw}") };
        match AppId::parse(&absolute) {
            Ok(dep) if Some(&dep) == id => p.semantic.push(FieldError::new(
                format!("/dependencies({i})"),
                "an app cannot depend on itself",
            )),
            Ok(dep) => out.push(dep),
            Err(e) => p.schema.push(FieldError::new(format!("/dependencies({i})"), e.message())),
        }
    }
    out.sort();
    out.dedup();
    out
}

fn parse_networks(r: &Reader<'_>, p: &mut Problems) -> NetworkMode {
    let Some(networks) = r.objects(p, "networks") else { return NetworkMode::Host };
    if networks.len() > 1 {
        p.semantic
            .push(FieldError::new("/networks", format!("more than one network {NOT_SUPPORTED}")));
    }
    match networks
        .first()
        .and_then(|n| n.one_of(p, "mode", &["host", "container/bridge", "container"]))
    {
        Some("container/bridge") => NetworkMode::Bridge,
        Some("container") => {
            p.semantic.push(FieldError::new(
                "/networks(0)/mode",
                format!("container networks {NOT_SUPPORTED}"),
            ));
            NetworkMode::Host
        }
        _ => NetworkMode::Host,
    }
}

fn parse_container(
    r: &Reader<'_>,
    p: &mut Problems,
    network: &NetworkMode,
) -> Option<ContainerSpec> {
    let Some(c) = r.object(p, "container") else {
        if *network == NetworkMode::Bridge {
            p.semantic.push(FieldError::new(
                "/networks",
                "container/bridge networking needs a DOCKER container",
            ));
        }
        return None;
    };
    match c.one_of(p, "type", &["DOCKER", "MESOS"]) {
        Some("MESOS") => {
            p.semantic.push(FieldError::new(
                "/container/type",
                format!("the MESOS containerizer {NOT_SUPPORTED}; use DOCKER"),
            ));
            return None;
        }
        None if c.get("type").is_some() => return None,
        _ => {}
    }
    let Some(docker) = c.object(p, "docker") else {
        if c.get("docker").is_none() {
            c.err(p, "docker", "error.path.missing");
        }
        return None;
    };
    let image = docker.string(p, "image");
    if docker.get("image").is_none() {
        docker.err(p, "image", "error.path.missing");
    }
    let force_pull = docker.boolean(p, "forcePullImage").unwrap_or(false);
    let privileged = docker.boolean(p, "privileged").unwrap_or(false);
    let mut parameters = Vec::new();
    for param in docker.objects(p, "parameters").unwrap_or_default() {
        let key = param.string(p, "key");
        let value = param.get("value").and_then(Value::as_str);
        if param.get("value").is_some() && value.is_none() {
            param.err(p, "value", "error.expected.jsstring");
        }
        if param.get("key").is_none() {
            param.err(p, "key", "error.path.missing");
        }
        if let Some(k) = key {
            parameters.push((k.to_owned(), value.unwrap_or("").to_owned()));
        }
    }
    for key in ["credential", "pullConfig"] {
        if docker.get(key).is_some() {
            p.semantic.push(FieldError::new(docker.at(key), NOT_SUPPORTED));
        }
    }
    let mut volumes = Vec::new();
    for v in c.objects(p, "volumes").unwrap_or_default() {
        for unsupported in ["persistent", "external", "secret"] {
            if v.get(unsupported).is_some() {
                p.semantic.push(FieldError::new(
                    v.at(unsupported),
                    format!("{unsupported} volumes {NOT_SUPPORTED}"),
                ));
            }
        }
        let container_path = v.string(p, "containerPath");
        let host_path = v.string(p, "hostPath");
        let mode = match v.one_of(p, "mode", &["RO", "RW"]) {
            Some("RO") => Some(VolumeMode::ReadOnly),
            Some(_) => Some(VolumeMode::ReadWrite),
            None => {
                if v.get("mode").is_none() {
                    v.err(p, "mode", "error.path.missing");
                }
                None
            }
        };
        if v.get("containerPath").is_none() {
            v.err(p, "containerPath", "error.path.missing");
        }
        if v.get("hostPath").is_none()
            && v.get("persistent").is_none()
            && v.get("external").is_none()
        {
            v.err(p, "hostPath", "error.path.missing");
        }
        if let (Some(cp), Some(hp), Some(mode)) = (container_path, host_path, mode) {
            if !cp.starts_with('/') {
                p.semantic.push(FieldError::new(v.at("containerPath"), "must be an absolute path"));
            }
            volumes.push(Volume { container_path: cp.to_owned(), host_path: hp.to_owned(), mode });
        }
    }
    let mappings = c.objects(p, "portMappings");
    if *network == NetworkMode::Host && mappings.as_ref().is_some_and(|m| !m.is_empty()) {
        p.semantic.push(FieldError::new(
            "/container/portMappings",
            "port mappings need container/bridge networking",
        ));
    }
    let mut port_mappings = Vec::new();
    let mut names = BTreeSet::new();
    match mappings {
        Some(list) => {
            for m in list {
                let name = port_name(&m, p);
                if let Some(n) = &name
                    && !names.insert(n.clone())
                {
                    p.semantic.push(FieldError::new(m.at("name"), "port names must be unique"));
                }
                port_mappings.push(PortMapping {
                    container_port: m.u32(p, "containerPort", 65535).unwrap_or(0),
                    // In bridge mode a missing hostPort means "any".
                    host_port: Some(m.u32(p, "hostPort", 65535).unwrap_or(0)),
                    service_port: m.u32(p, "servicePort", 65535).unwrap_or(0),
                    protocol: m.one_of(p, "protocol", PROTOCOLS).unwrap_or("tcp").to_owned(),
                    name,
                    labels: m.string_map(p, "labels"),
                });
            }
        }
        None if *network == NetworkMode::Bridge => port_mappings.push(PortMapping {
            container_port: 0,
            host_port: Some(0),
            service_port: 0,
            protocol: "tcp".into(),
            name: Some("default".into()),
            labels: BTreeMap::new(),
        }),
        None => {}
    }
    Some(ContainerSpec {
        image: image?.to_owned(),
        force_pull,
        privileged,
        parameters,
        volumes,
        port_mappings,
    })
}

fn parse_port_definitions(
    r: &Reader<'_>,
    p: &mut Problems,
    network: &NetworkMode,
) -> Vec<PortDefinition> {
    let Some(list) = r.objects(p, "portDefinitions") else {
        // Marathon gives a host-networked app one port by default.
        return match network {
            NetworkMode::Host => vec![PortDefinition {
                port: 0,
                protocol: "tcp".into(),
                name: Some("default".into()),
                labels: BTreeMap::new(),
            }],
            NetworkMode::Bridge => Vec::new(),
        };
    };
    if *network == NetworkMode::Bridge && !list.is_empty() {
        p.semantic.push(FieldError::new(
            "/portDefinitions",
            "port definitions need host networking; use container.portMappings",
        ));
    }
    let mut names = BTreeSet::new();
    let mut ports = BTreeSet::new();
    let mut out = Vec::new();
    for d in list {
        let port = d.u32(p, "port", 65535).unwrap_or(0);
        if port != 0 && !ports.insert(port) {
            p.semantic.push(FieldError::new(d.at("port"), "ports must be unique"));
        }
        let name = port_name(&d, p);
        if let Some(n) = &name
            && !names.insert(n.clone())
        {
            p.semantic.push(FieldError::new(d.at("name"), "port names must be unique"));
        }
        out.push(PortDefinition {
            port,
            protocol: d.one_of(p, "protocol", PROTOCOLS).unwrap_or("tcp").to_owned(),
            name,
            labels: d.string_map(p, "labels"),
        });
    }
    out
}

fn parse_health_checks(r: &Reader<'_>, p: &mut Problems, ports: usize) -> Vec<HealthCheckSpec> {
    const KINDS: &[&str] =
        &["HTTP", "HTTPS", "TCP", "COMMAND", "MESOS_HTTP", "MESOS_HTTPS", "MESOS_TCP"];
    let mut out = Vec::new();
    for h in r.objects(p, "healthChecks").unwrap_or_default() {
        let name = h.one_of(p, "protocol", KINDS).unwrap_or("HTTP");
        let protocol = match name {
            "TCP" | "MESOS_TCP" => HealthProtocol::Tcp,
            "COMMAND" => HealthProtocol::Command,
            "HTTPS" | "MESOS_HTTPS" => {
                p.semantic.push(FieldError::new(
                    h.at("protocol"),
                    format!("{name} health checks {NOT_SUPPORTED}"),
                ));
                HealthProtocol::Http
            }
            _ => HealthProtocol::Http,
        };
        let port_index = h.u32(p, "portIndex", 65535);
        let port = h.u32(p, "port", 65535);
        let command = h.object(p, "command").and_then(|c| c.string(p, "value").map(str::to_owned));
        match protocol {
            HealthProtocol::Command if command.is_none() => {
                p.semantic
                    .push(FieldError::new(h.at("command"), "COMMAND health checks need a command"));
            }
            HealthProtocol::Http | HealthProtocol::Tcp => {
                if port_index.is_some() && port.is_some() {
                    p.semantic
                        .push(FieldError::new(h.path.clone(), "use portIndex or port, not both"));
                }
                let index = port_index.unwrap_or(0) as usize;
                if port.is_none() && index >= ports {
                    p.semantic.push(FieldError::new(
                        h.at("portIndex"),
                        format!("index {index} is out of range: the app has {ports} host ports"),
                    ));
                }
            }
            HealthProtocol::Command => {}
        }
        let needs_port = protocol != HealthProtocol::Command;
        // Fields of another protocol are read (and type-checked) but not
        // kept: the spec holds what `render_health_check` writes back.
        let is_http = protocol == HealthProtocol::Http;
        let command = command.filter(|_| protocol == HealthProtocol::Command);
        out.push(HealthCheckSpec {
            protocol,
            protocol_name: name.to_owned(),
            path: h.string(p, "path").filter(|_| is_http).unwrap_or("/").to_owned(),
            port_index: if needs_port && port.is_none() {
                Some(port_index.unwrap_or(0))
            } else {
                None
            },
            port: if needs_port { port } else { None },
            command,
            grace_period: h.seconds(p, "gracePeriodSeconds", 300.0),
            interval: h.seconds(p, "intervalSeconds", 60.0),
            timeout: h.seconds(p, "timeoutSeconds", 20.0),
            max_consecutive_failures: h.u32(p, "maxConsecutiveFailures", u32::MAX).unwrap_or(3),
            delay: h.seconds(p, "delaySeconds", 15.0),
            ignore_http1xx: h.boolean(p, "ignoreHttp1xx").unwrap_or(false) && is_http,
        });
    }
    out
}

/// A number as Marathon prints it: integers without a fraction.
fn num(d: f64) -> Value {
    if d.fract() == 0.0 && d.abs() < 9e15 { json!(d as i64) } else { json!(d) }
}

fn labels_json(labels: &BTreeMap<String, String>, m: &mut Map<String, Value>) {
    if !labels.is_empty() {
        m.insert("labels".into(), json!(labels));
    }
}

fn render_container(c: &ContainerSpec, network: &NetworkMode) -> Value {
    let parameters: Vec<Value> =
        c.parameters.iter().map(|(k, v)| json!({"key": k, "value": v})).collect();
    let volumes: Vec<Value> = c
        .volumes
        .iter()
        .map(|v| {
            let mode = match v.mode {
                VolumeMode::ReadOnly => "RO",
                VolumeMode::ReadWrite => "RW",
            };
            json!({"containerPath": v.container_path, "hostPath": v.host_path, "mode": mode})
        })
        .collect();
    let mut out = json!({
        "type": "DOCKER",
        "docker": {
            "image": c.image,
            "forcePullImage": c.force_pull,
            "privileged": c.privileged,
            "parameters": parameters,
        },
        "volumes": volumes,
    });
    if *network == NetworkMode::Bridge
        && let Some(obj) = out.as_object_mut()
    {
        let mappings: Vec<Value> = c
            .port_mappings
            .iter()
            .map(|m| {
                let mut o = Map::new();
                o.insert("containerPort".into(), json!(m.container_port));
                if let Some(h) = m.host_port {
                    o.insert("hostPort".into(), json!(h));
                }
                o.insert("servicePort".into(), json!(m.service_port));
                o.insert("protocol".into(), json!(m.protocol));
                if let Some(n) = &m.name {
                    o.insert("name".into(), json!(n));
                }
                labels_json(&m.labels, &mut o);
                Value::Object(o)
            })
            .collect();
        obj.insert("portMappings".into(), json!(mappings));
    }
    out
}

fn render_health_check(h: &HealthCheckSpec) -> Value {
    let mut o = Map::new();
    o.insert("protocol".into(), json!(h.protocol_name));
    match h.protocol {
        HealthProtocol::Http => {
            o.insert("path".into(), json!(h.path));
            o.insert("ignoreHttp1xx".into(), json!(h.ignore_http1xx));
        }
        HealthProtocol::Command => {
            o.insert("command".into(), json!({"value": h.command}));
        }
        HealthProtocol::Tcp => {}
    }
    if let Some(i) = h.port_index {
        o.insert("portIndex".into(), json!(i));
    }
    if let Some(port) = h.port {
        o.insert("port".into(), json!(port));
    }
    o.insert("gracePeriodSeconds".into(), num(h.grace_period.as_secs_f64()));
    o.insert("intervalSeconds".into(), num(h.interval.as_secs_f64()));
    o.insert("timeoutSeconds".into(), num(h.timeout.as_secs_f64()));
    o.insert("maxConsecutiveFailures".into(), json!(h.max_consecutive_failures));
    o.insert("delaySeconds".into(), num(h.delay.as_secs_f64()));
    Value::Object(o)
}

/// The app definition as JSON (what `GET` shows, and what a partial `PUT`
/// is merged onto).
pub fn render_app(app: &AppSpec) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), json!(app.id.as_str()));
    match &app.command {
        Some(CommandSpec::Shell(c)) => {
            m.insert("cmd".into(), json!(c));
        }
        Some(CommandSpec::Argv(a)) => {
            m.insert("args".into(), json!(a));
        }
        None => {}
    }
    m.insert("acceptedResourceRoles".into(), json!(app.placement.accepted_resource_roles));
    m.insert("backoffFactor".into(), json!(app.backoff.factor));
    m.insert("backoffSeconds".into(), num(app.backoff.initial.as_secs_f64()));
    if let Some(c) = &app.container {
        m.insert("container".into(), render_container(c, &app.network));
    }
    let constraints: Vec<Vec<String>> =
        app.placement.constraints.iter().map(Constraint::to_strings).collect();
    m.insert("constraints".into(), json!(constraints));
    m.insert("cpus".into(), json!(app.resources.cpus));
    m.insert("disk".into(), json!(app.resources.disk));
    if !app.env.is_empty() || !app.secret_env.is_empty() {
        let mut env: Map<String, Value> =
            app.env.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        for (var, name) in &app.secret_env {
            env.insert(var.clone(), json!({ "secret": name }));
        }
        m.insert("env".into(), Value::Object(env));
    }
    if !app.secrets.is_empty() {
        let secrets: Map<String, Value> = app
            .secrets
            .iter()
            .map(|(name, source)| (name.clone(), json!({ "source": source })))
            .collect();
        m.insert("secrets".into(), Value::Object(secrets));
    }
    m.insert("executor".into(), json!(""));
    m.insert("gpus".into(), json!(app.resources.gpus));
    if !app.health_checks.is_empty() {
        m.insert(
            "healthChecks".into(),
            app.health_checks.iter().map(render_health_check).collect(),
        );
    }
    m.insert("instances".into(), json!(app.instances));
    labels_json(&app.labels, &mut m);
    m.insert("maxLaunchDelaySeconds".into(), num(app.backoff.max.as_secs_f64()));
    m.insert("mem".into(), json!(app.resources.mem));
    let mode = match app.network {
        NetworkMode::Host => "host",
        NetworkMode::Bridge => "container/bridge",
    };
    m.insert("networks".into(), json!([{"mode": mode}]));
    if app.network == NetworkMode::Host {
        let defs: Vec<Value> = app
            .port_definitions
            .iter()
            .map(|d| {
                let mut o = Map::new();
                o.insert("port".into(), json!(d.port));
                o.insert("protocol".into(), json!(d.protocol));
                if let Some(n) = &d.name {
                    o.insert("name".into(), json!(n));
                }
                labels_json(&d.labels, &mut o);
                Value::Object(o)
            })
            .collect();
        m.insert("portDefinitions".into(), json!(defs));
    }
    m.insert("requirePorts".into(), json!(app.require_ports));
    m.insert(
        "upgradeStrategy".into(),
        json!({
            "maximumOverCapacity": app.upgrade.maximum_over_capacity,
            "minimumHealthCapacity": app.upgrade.minimum_health_capacity,
        }),
    );
    if !app.dependencies.is_empty() {
        let deps: Vec<&str> = app.dependencies.iter().map(AppId::as_str).collect();
        m.insert("dependencies".into(), json!(deps));
    }
    m.insert("progressDeadlineSeconds".into(), num(app.progress_deadline.as_secs_f64()));
    m.insert("rollbackOnFailure".into(), json!(app.rollback_on_failure));
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
    m.insert("role".into(), json!(app.placement.role));
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
        // Switching networks drops the other mode's port list.
        if k == "networks" {
            base.remove("portDefinitions");
        }
        base.insert(k.clone(), v.clone());
    }
    Value::Object(base)
}

#[cfg(test)]
mod tests;
