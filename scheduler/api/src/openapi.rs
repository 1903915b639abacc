//! The REST API's OpenAPI 3.0 document, served at `GET /openapi.json`.
//!
//! It is generated, never hand-maintained: [`crate::routes::table`] is the
//! one list of routes, and each of its entries carries both the handler the
//! router mounts and the [`Op`]s (method, path, parameters, request body,
//! status codes and response schemas) this module turns into the document.
//! The component schemas ([`components`]) describe the JSON the renderers
//! write (`render`, `app_json::render_app`, `job_json::JobView`, the
//! handlers' views) and the error shapes of [`crate::error`]; the tests
//! render real responses of every kind and validate them against these
//! schemas, so a change to a renderer that the document does not follow
//! fails a test.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::app_json::MAX_INSTANCES;

/// Where a parameter goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum In {
    Path,
    Query,
}

/// One parameter of an operation.
#[derive(Debug, Clone)]
pub(crate) struct Param {
    pub(crate) name: &'static str,
    pub(crate) location: In,
    pub(crate) schema: Value,
    pub(crate) description: &'static str,
    /// Repeatable (`?embed=a&embed=b`): an array, exploded.
    pub(crate) repeated: bool,
}

/// What a response carries.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    /// `application/json` with this schema.
    Json(Value),
    /// `text/plain`.
    Text,
    /// The Prometheus text format.
    Metrics,
    /// `text/event-stream`.
    Events,
    /// Nothing.
    Empty,
}

/// One documented operation: a method on an OpenAPI path.
#[derive(Debug, Clone)]
pub(crate) struct Op {
    pub(crate) method: Method,
    pub(crate) path: &'static str,
    pub(crate) summary: &'static str,
    pub(crate) tag: &'static str,
    pub(crate) params: Vec<Param>,
    pub(crate) request: Option<Value>,
    pub(crate) responses: Vec<(u16, &'static str, Body)>,
    /// Headers a response with this status always carries.
    pub(crate) headers: Vec<(u16, &'static str, &'static str)>,
}

impl Op {
    pub(crate) fn new(method: Method, path: &'static str, summary: &'static str) -> Self {
        let tag = if path.starts_with("/v1/scheduler") {
            "chronos"
        } else if path.starts_with("/v2") {
            "marathon"
        } else {
            "server"
        };
        Op {
            method,
            path,
            summary,
            tag,
            params: Vec::new(),
            request: None,
            responses: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// A path parameter; every `{name}` of the path needs one.
    pub(crate) fn path_param(mut self, name: &'static str, schema: Value, d: &'static str) -> Self {
        self.params.push(Param {
            name,
            location: In::Path,
            schema,
            description: d,
            repeated: false,
        });
        self
    }

    /// An optional query parameter.
    pub(crate) fn query(mut self, name: &'static str, schema: Value, d: &'static str) -> Self {
        self.params.push(Param {
            name,
            location: In::Query,
            schema,
            description: d,
            repeated: false,
        });
        self
    }

    /// An optional query parameter that may repeat.
    pub(crate) fn query_many(mut self, name: &'static str, item: Value, d: &'static str) -> Self {
        self.params.push(Param {
            name,
            location: In::Query,
            schema: json!({"type": "array", "items": item}),
            description: d,
            repeated: true,
        });
        self
    }

    /// A boolean query flag (`true` or `false`; anything else is refused).
    pub(crate) fn flag(self, name: &'static str, d: &'static str) -> Self {
        self.query(name, json!({"type": "boolean"}), d)
    }

    /// A required JSON request body.
    pub(crate) fn body(mut self, schema: Value) -> Self {
        self.request = Some(schema);
        self
    }

    /// One answer.
    pub(crate) fn answer(mut self, status: u16, description: &'static str, body: Body) -> Self {
        self.responses.push((status, description, body));
        self
    }

    /// A header the answer with `status` always carries.
    pub(crate) fn header(
        mut self,
        status: u16,
        name: &'static str,
        description: &'static str,
    ) -> Self {
        self.headers.push((status, name, description));
        self
    }

    /// A JSON answer of component `name`.
    pub(crate) fn ok(self, status: u16, description: &'static str, name: &str) -> Self {
        self.answer(status, description, Body::Json(r(name)))
    }

    /// Marathon error answers (`Error`) with these codes.
    pub(crate) fn errors(mut self, codes: &[u16]) -> Self {
        for &code in codes {
            self.responses.push((code, error_text(code), Body::Json(r("Error"))));
        }
        self
    }

    /// Chronos error answers (`ChronosError`) with these codes.
    pub(crate) fn chronos_errors(mut self, codes: &[u16]) -> Self {
        for &code in codes {
            self.responses.push((code, error_text(code), Body::Json(r("ChronosError"))));
        }
        self
    }
}

fn error_text(code: u16) -> &'static str {
    match code {
        400 => "The request is malformed (not JSON, or a bad parameter)",
        401 => "No valid credentials",
        403 => "The credentials do not allow this",
        404 => "Not found",
        405 => "The path names a sub-resource that does not take this method",
        409 => "Conflicts with the current state (exists already, or locked by deployments)",
        413 => "The request body is too large",
        422 => "The request does not validate",
        429 => "Too many requests",
        502 => "Forwarding to the leader looped",
        503 => "No leader, or the state store is unreachable",
        _ => "Error",
    }
}

/// Answers any route may give whatever its handler does: from the
/// authentication, limit and leader-forwarding layers around every handler.
const LAYER_ERRORS: &[u16] = &[401, 403, 413, 429, 502, 503];

/// A reference to a component schema.
pub(crate) fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn string() -> Value {
    json!({"type": "string"})
}

fn nullable_string() -> Value {
    json!({"type": "string", "nullable": true})
}

fn integer() -> Value {
    json!({"type": "integer", "minimum": 0})
}

fn number() -> Value {
    json!({"type": "number"})
}

fn boolean() -> Value {
    json!({"type": "boolean"})
}

fn array(items: Value) -> Value {
    json!({"type": "array", "items": items})
}

/// An object with these properties, all of them `required`.
fn object(props: &[(&str, Value)]) -> Value {
    let required: Vec<&str> = props.iter().map(|(k, _)| *k).collect();
    object_with(props, &required)
}

/// An object with these properties, of which `required` are required.
fn object_with(props: &[(&str, Value)], required: &[&str]) -> Value {
    let properties: Map<String, Value> =
        props.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    let mut o = json!({"type": "object", "properties": properties});
    if !required.is_empty() {
        o["required"] = json!(required);
    }
    o
}

/// An object whose values all have schema `values`.
fn map_of(values: Value) -> Value {
    json!({"type": "object", "additionalProperties": values})
}

/// Marathon's time format (`2024-01-02T03:04:05.678Z`).
fn timestamp() -> Value {
    json!({"type": "string", "format": "date-time"})
}

/// A path segment of an app or group id (`web`; nested ids are more
/// segments, which a path parameter cannot hold).
pub(crate) fn app_segment() -> Value {
    json!({"type": "string", "pattern": SEGMENT, "example": "web"})
}

/// A path segment of a group id.
pub(crate) fn group_segment() -> Value {
    json!({"type": "string", "pattern": SEGMENT, "example": "prod"})
}

const SEGMENT: &str = "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$";

/// An app id, absolute or relative to the root group (`.` and `..` segments
/// included; `app_json` refuses misplaced dots).
const APP_ID: &str = "^/?[a-z0-9.]([a-z0-9.-]*[a-z0-9.])?(/[a-z0-9.]([a-z0-9.-]*[a-z0-9.])?)*$";

/// The common forms of an ISO 8601 repeating interval, `R[n]/[start]/period`.
const ISO_SCHEDULE: &str = "^R[0-9]{0,2}/\
    (20[3-9][0-9]-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z)?\
    /P([1-9][0-9]?[DW]|T[1-9][0-9]?[HM])$";

/// The common forms of a cron expression.
const CRON_SCHEDULE: &str = "^(@(yearly|annually|monthly|weekly|daily|hourly)|\
    ([0-9]|[1-5][0-9]|\\*/[1-9]|\\*) ([0-9]|1[0-9]|2[0-3]|\\*) \\* \\* \\*)$";

/// A Chronos job name.
pub(crate) fn job_name() -> Value {
    json!({"type": "string", "pattern": "^[A-Za-z0-9_.-]+$", "example": "report"})
}

/// The component schemas, by name.
pub(crate) fn components() -> Map<String, Value> {
    let mut c = BTreeMap::new();
    c.insert(
        "Error",
        object_with(
            &[
                ("message", string()),
                ("details", json!({"anyOf": [string(), array(r("FieldError"))]})),
                ("deployments", array(object(&[("id", string())]))),
            ],
            &["message"],
        ),
    );
    c.insert("FieldError", object(&[("path", string()), ("errors", array(string()))]));
    c.insert("ChronosError", object(&[("status", string()), ("message", string())]));
    c.insert("Message", object(&[("message", string())]));
    // What `POST /v2/apps` and `PUT /v2/apps/{id}` take: Marathon's app JSON
    // as `app_json::parse_app` reads it. Fields it does not know are refused
    // there (422) and so are left open here.
    c.insert(
        "AppDefinition",
        object_with(
            &[
                ("id", json!({"type": "string", "pattern": APP_ID})),
                ("cmd", json!({"type": "string", "minLength": 1, "nullable": true})),
                ("args", json!({"type": "array", "items": string(), "nullable": true})),
                ("instances", json!({"type": "integer", "minimum": 0, "maximum": MAX_INSTANCES})),
                ("cpus", json!({"type": "number", "minimum": 0.001})),
                ("mem", json!({"type": "number", "minimum": 0})),
                ("disk", json!({"type": "number", "minimum": 0})),
                ("gpus", integer()),
                ("env", map_of(json!({"anyOf": [string(), object(&[("secret", string())])]}))),
                ("secrets", map_of(object(&[("source", string())]))),
                ("labels", map_of(string())),
                ("constraints", array(array(string()))),
                ("acceptedResourceRoles", array(string())),
                ("role", string()),
                ("container", json!({"type": "object"})),
                ("healthChecks", array(json!({"type": "object"}))),
                ("portDefinitions", array(json!({"type": "object"}))),
                ("networks", array(object_with(&[("mode", string())], &["mode"]))),
                ("requirePorts", boolean()),
                ("backoffSeconds", json!({"type": "number", "minimum": 0})),
                ("backoffFactor", json!({"type": "number", "minimum": 1})),
                ("maxLaunchDelaySeconds", json!({"type": "number", "minimum": 0})),
                ("upgradeStrategy", json!({"type": "object"})),
                ("dependencies", array(string())),
                (
                    "killSelection",
                    json!({"type": "string", "enum": ["YOUNGEST_FIRST", "OLDEST_FIRST"]}),
                ),
                ("taskKillGracePeriodSeconds", integer()),
                ("progressDeadlineSeconds", json!({"type": "number", "minimum": 0})),
                ("rollbackOnFailure", boolean()),
                ("version", string()),
            ],
            &[],
        ),
    );
    c.insert(
        "AppCreate",
        json!({"allOf": [r("AppDefinition"), {"type": "object", "required": ["id"]}]}),
    );
    c.insert(
        "AppUpdateList",
        array(json!({"allOf": [r("AppDefinition"), {"type": "object", "required": ["id"]}]})),
    );
    // `app_json::render_app`: an app's definition as stored (also one kept
    // version, `GET /v2/apps/{id}/versions/{version}`).
    c.insert(
        "AppSpec",
        object_with(
            &[
                ("id", string()),
                ("cmd", string()),
                ("args", array(string())),
                ("acceptedResourceRoles", array(string())),
                ("backoffFactor", number()),
                ("backoffSeconds", number()),
                ("container", json!({"type": "object"})),
                ("constraints", array(array(string()))),
                ("cpus", number()),
                ("disk", number()),
                ("env", map_of(json!({"anyOf": [string(), object(&[("secret", string())])]}))),
                ("secrets", map_of(object(&[("source", string())]))),
                ("executor", string()),
                ("gpus", integer()),
                ("healthChecks", array(json!({"type": "object"}))),
                ("instances", integer()),
                ("labels", map_of(string())),
                ("maxLaunchDelaySeconds", number()),
                ("mem", number()),
                ("networks", array(object(&[("mode", string())]))),
                (
                    "portDefinitions",
                    array(object_with(
                        &[
                            ("port", integer()),
                            ("protocol", string()),
                            ("name", string()),
                            ("labels", map_of(string())),
                        ],
                        &["port", "protocol"],
                    )),
                ),
                ("requirePorts", boolean()),
                (
                    "upgradeStrategy",
                    object(&[
                        ("maximumOverCapacity", number()),
                        ("minimumHealthCapacity", number()),
                    ]),
                ),
                ("dependencies", array(string())),
                ("progressDeadlineSeconds", number()),
                ("rollbackOnFailure", boolean()),
                ("version", timestamp()),
                (
                    "versionInfo",
                    object(&[("lastScalingAt", timestamp()), ("lastConfigChangeAt", timestamp())]),
                ),
                (
                    "killSelection",
                    json!({"type": "string", "enum": ["YOUNGEST_FIRST", "OLDEST_FIRST"]}),
                ),
                (
                    "unreachableStrategy",
                    object(&[
                        ("inactiveAfterSeconds", number()),
                        ("expungeAfterSeconds", number()),
                    ]),
                ),
                ("role", string()),
                ("taskKillGracePeriodSeconds", integer()),
            ],
            &[
                "id",
                "acceptedResourceRoles",
                "backoffFactor",
                "backoffSeconds",
                "constraints",
                "cpus",
                "disk",
                "executor",
                "gpus",
                "instances",
                "maxLaunchDelaySeconds",
                "mem",
                "networks",
                "requirePorts",
                "upgradeStrategy",
                "progressDeadlineSeconds",
                "rollbackOnFailure",
                "version",
                "versionInfo",
                "killSelection",
                "unreachableStrategy",
                "role",
            ],
        ),
    );
    // `render::app_info`: the definition plus Marathon's read-only counts.
    c.insert(
        "App",
        json!({"allOf": [r("AppSpec"), object_with(
            &[
                ("tasksStaged", integer()),
                ("tasksRunning", integer()),
                ("tasksHealthy", integer()),
                ("tasksUnhealthy", integer()),
                ("deployments", array(object(&[("id", string())]))),
                ("tasks", array(r("Task"))),
                ("lastTaskFailure", r("TaskFailure")),
            ],
            &["tasksStaged", "tasksRunning", "tasksHealthy", "tasksUnhealthy"],
        )]}),
    );
    c.insert("AppList", object(&[("apps", array(r("App")))]));
    c.insert("AppEnvelope", object(&[("app", r("App"))]));
    c.insert("Versions", object(&[("versions", array(timestamp()))]));
    c.insert(
        "TaskFailure",
        object(&[
            ("appId", string()),
            ("host", string()),
            ("message", string()),
            ("state", string()),
            ("taskId", string()),
            ("timestamp", timestamp()),
            ("version", timestamp()),
            ("slaveId", string()),
        ]),
    );
    // `render::TaskView`.
    c.insert(
        "Task",
        object_with(
            &[
                ("appId", string()),
                (
                    "healthCheckResults",
                    array(object(&[
                        ("alive", boolean()),
                        ("consecutiveFailures", integer()),
                        ("firstSuccess", nullable_string()),
                        ("lastFailure", nullable_string()),
                        ("lastSuccess", nullable_string()),
                        ("lastFailureCause", nullable_string()),
                        ("instanceId", string()),
                    ])),
                ),
                ("host", string()),
                ("id", string()),
                ("ipAddresses", array(json!({}))),
                ("ports", array(integer())),
                ("servicePorts", array(integer())),
                ("slaveId", string()),
                ("state", string()),
                ("stagedAt", timestamp()),
                ("startedAt", timestamp()),
                ("version", timestamp()),
                ("localVolumes", array(json!({}))),
                ("role", string()),
            ],
            &[
                "appId",
                "healthCheckResults",
                "host",
                "id",
                "ipAddresses",
                "ports",
                "servicePorts",
                "slaveId",
                "state",
                "stagedAt",
                "version",
                "localVolumes",
                "role",
            ],
        ),
    );
    c.insert("TaskList", object(&[("tasks", array(r("Task")))]));
    c.insert("KilledTask", object(&[("task", json!({"allOf": [r("Task")], "nullable": true}))]));
    c.insert("TaskIds", object(&[("ids", array(string()))]));
    c.insert("DeploymentResult", object(&[("deploymentId", string()), ("version", timestamp())]));
    let action = object(&[("action", string()), ("app", string())]);
    c.insert(
        "Deployment",
        object(&[
            ("id", string()),
            ("version", timestamp()),
            ("affectedApps", array(string())),
            ("affectedPods", array(string())),
            ("steps", array(object(&[("actions", array(action.clone()))]))),
            (
                "currentActions",
                array(object(&[
                    ("action", string()),
                    ("app", string()),
                    ("readinessCheckResults", array(json!({}))),
                ])),
            ),
            ("currentStep", integer()),
            ("totalSteps", integer()),
        ]),
    );
    c.insert("DeploymentList", array(r("Deployment")));
    c.insert("DryRun", object(&[("steps", array(object(&[("actions", array(action))])))]));
    let reject = object(&[("reason", string()), ("declined", integer()), ("processed", integer())]);
    c.insert(
        "Queue",
        object(&[(
            "queue",
            array(object(&[
                ("app", r("App")),
                ("count", integer()),
                ("role", string()),
                ("delay", object(&[("timeLeftSeconds", integer()), ("overdue", boolean())])),
                ("since", timestamp()),
                (
                    "processedOffersSummary",
                    object(&[
                        ("processedOffersCount", integer()),
                        ("unusedOffersCount", integer()),
                        ("lastUnusedOfferAt", nullable_string()),
                        ("lastUsedOfferAt", nullable_string()),
                        ("rejectSummaryLastOffers", array(reject)),
                        ("rejectSummaryLaunchAttempt", array(json!({}))),
                    ]),
                ),
            ])),
        )]),
    );
    c.insert(
        "Group",
        object(&[
            ("id", string()),
            ("apps", array(r("App"))),
            ("groups", array(r("Group"))),
            ("pods", array(json!({}))),
            ("dependencies", array(string())),
            ("version", timestamp()),
            ("enforceRole", boolean()),
        ]),
    );
    c.insert(
        "GroupUpdate",
        object_with(
            &[
                ("id", string()),
                ("apps", array(r("AppDefinition"))),
                ("groups", array(r("GroupUpdate"))),
                ("scaleBy", json!({"type": "number", "minimum": 0})),
            ],
            &[],
        ),
    );
    c.insert(
        "Info",
        object(&[
            ("name", string()),
            ("version", string()),
            ("buildref", string()),
            ("elected", boolean()),
            ("leader", string()),
            ("frameworkId", nullable_string()),
            ("marathon_config", json!({"type": "object"})),
            ("http_config", object(&[("http_port", integer())])),
            ("subscribed", boolean()),
        ]),
    );
    c.insert("Leader", object(&[("leader", string())]));
    // Chronos: `job_json::JobView` and the views of `routes::jobs`.
    c.insert(
        "JobDefinition",
        object_with(
            &[
                ("name", job_name()),
                ("command", string()),
                ("schedule", string()),
                ("scheduleTimeZone", string()),
                ("parents", array(job_name())),
                ("shell", boolean()),
                ("retries", integer()),
                ("owner", string()),
                ("ownerName", string()),
                ("description", string()),
                ("cpus", number()),
                ("mem", number()),
                ("disk", number()),
                ("disabled", boolean()),
                ("softError", boolean()),
                ("arguments", array(string())),
                ("environmentVariables", array(object(&[("name", string()), ("value", string())]))),
                ("constraints", array(array(string()))),
                ("container", json!({"type": "object"})),
                ("concurrent", boolean()),
                (
                    "concurrencyPolicy",
                    json!({"type": "string", "enum": ["ALLOW", "FORBID", "REPLACE"]}),
                ),
                ("startingDeadlineSeconds", integer()),
                ("retryDelaySeconds", number()),
                ("retryBackoffFactor", number()),
                ("maxRetryDelaySeconds", number()),
                ("successfulRunsHistoryLimit", integer()),
                ("failedRunsHistoryLimit", integer()),
                ("maxCompletionTime", integer()),
            ],
            &["name", "command"],
        ),
    );
    // The schedule's common forms spelled out (so generated jobs are often
    // valid), then any string: `schedule::Schedule::parse_*` accept more
    // (any ISO 8601 start, zones, periods; any cron fields).
    c.insert(
        "ScheduledJob",
        json!({"allOf": [r("JobDefinition"), {
            "type": "object",
            "required": ["name", "command", "schedule"],
            "properties": {
                "schedule": {
                    "description": "An ISO 8601 repeating interval or a cron expression",
                    "anyOf": [
                        {"type": "string", "pattern": ISO_SCHEDULE},
                        {"type": "string", "pattern": CRON_SCHEDULE},
                        {"type": "string"},
                    ],
                },
            },
        }]}),
    );
    c.insert(
        "DependentJob",
        json!({"allOf": [r("JobDefinition"), {
            "type": "object",
            "required": ["name", "command", "parents"],
            "properties": {"parents": {"type": "array", "items": job_name(), "minItems": 1}},
        }]}),
    );
    c.insert(
        "Job",
        object_with(
            &[
                ("name", string()),
                ("command", string()),
                ("shell", boolean()),
                ("executor", string()),
                ("executorFlags", string()),
                ("taskInfoData", string()),
                ("retries", integer()),
                ("owner", string()),
                ("ownerName", string()),
                ("description", string()),
                ("successCount", integer()),
                ("errorCount", integer()),
                ("lastSuccess", string()),
                ("lastError", string()),
                ("cpus", number()),
                ("disk", number()),
                ("mem", number()),
                ("disabled", boolean()),
                ("softError", boolean()),
                ("dataProcessingJobType", boolean()),
                ("errorsSinceLastSuccess", integer()),
                ("fetch", array(json!({}))),
                ("uris", array(string())),
                ("environmentVariables", array(object(&[("name", string()), ("value", string())]))),
                ("arguments", array(string())),
                ("highPriority", boolean()),
                ("runAsUser", string()),
                ("concurrent", boolean()),
                ("maxCompletionTime", integer()),
                ("container", json!({"type": "object"})),
                ("constraints", array(array(string()))),
                ("schedule", string()),
                ("scheduleTimeZone", string()),
                ("parents", array(string())),
                ("concurrencyPolicy", string()),
                ("startingDeadlineSeconds", json!({"type": "integer", "nullable": true})),
                ("retryDelaySeconds", number()),
                ("retryBackoffFactor", number()),
                ("maxRetryDelaySeconds", number()),
                ("successfulRunsHistoryLimit", integer()),
                ("failedRunsHistoryLimit", integer()),
                ("nextRunAt", nullable_string()),
                ("lastRunStatus", nullable_string()),
            ],
            &[
                "name",
                "command",
                "shell",
                "retries",
                "owner",
                "successCount",
                "errorCount",
                "lastSuccess",
                "lastError",
                "cpus",
                "disk",
                "mem",
                "disabled",
                "softError",
                "environmentVariables",
                "arguments",
                "concurrent",
                "constraints",
                "concurrencyPolicy",
                "nextRunAt",
                "lastRunStatus",
            ],
        ),
    );
    c.insert("JobList", array(r("Job")));
    c.insert(
        "JobSummary",
        object(&[(
            "jobs",
            array(object(&[
                ("name", string()),
                ("status", string()),
                ("state", string()),
                ("schedule", string()),
                ("parents", array(string())),
                ("disabled", boolean()),
            ])),
        )]),
    );
    let histogram = object(&[
        ("75thPercentile", number()),
        ("95thPercentile", number()),
        ("98thPercentile", number()),
        ("99thPercentile", number()),
        ("median", number()),
        ("mean", number()),
        ("count", integer()),
    ]);
    c.insert(
        "JobStat",
        object(&[
            ("histogram", histogram),
            (
                "taskStatHistory",
                array(object_with(
                    &[
                        ("taskId", string()),
                        ("jobName", string()),
                        ("slaveId", string()),
                        ("startTime", string()),
                        ("endTime", string()),
                        ("duration", string()),
                        ("status", string()),
                        ("runId", string()),
                        ("runStatus", string()),
                    ],
                    &[
                        "taskId",
                        "jobName",
                        "slaveId",
                        "startTime",
                        "endTime",
                        "status",
                        "runId",
                        "runStatus",
                    ],
                )),
            ),
        ]),
    );
    c.insert("JobStats", array(object(&[("jobNameLabel", string()), ("time", number())])));
    c.insert(
        "JobRuns",
        array(object(&[
            ("id", string()),
            (
                "trigger",
                object_with(
                    &[
                        (
                            "type",
                            json!({"type": "string", "enum": ["schedule", "dependency", "manual"]}),
                        ),
                        ("dueAt", timestamp()),
                        ("arguments", array(string())),
                    ],
                    &["type"],
                ),
            ),
            ("status", string()),
            ("attempts", integer()),
            ("taskIds", array(string())),
            ("createdAt", timestamp()),
            ("startedAt", nullable_string()),
            ("finishedAt", nullable_string()),
            ("message", string()),
        ])),
    );
    c.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// The OpenAPI 3.0 document of `ops`.
pub(crate) fn document(ops: &[&Op]) -> Value {
    let mut paths: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    for op in ops {
        let params: Vec<Value> = op
            .params
            .iter()
            .map(|p| {
                let mut v = json!({
                    "name": p.name,
                    "in": if p.location == In::Path { "path" } else { "query" },
                    "required": p.location == In::Path,
                    "schema": p.schema,
                    "description": p.description,
                });
                if p.repeated {
                    v["style"] = json!("form");
                    v["explode"] = json!(true);
                }
                v
            })
            .collect();
        let mut responses = Map::new();
        let all = op.responses.iter().cloned().chain(
            LAYER_ERRORS
                .iter()
                .filter(|c| !op.responses.iter().any(|(s, ..)| s == *c))
                .map(|&c| (c, error_text(c), Body::Json(r("Message")))),
        );
        for (status, description, body) in all {
            let mut resp = json!({"description": description});
            let content = match body {
                Body::Json(schema) => Some(("application/json", schema)),
                Body::Text => Some(("text/plain", string())),
                Body::Metrics => Some(("text/plain", string())),
                Body::Events => Some(("text/event-stream", string())),
                Body::Empty => None,
            };
            if let Some((media, schema)) = content {
                resp["content"] = json!({ media: {"schema": schema} });
            }
            let headers: Map<String, Value> = op
                .headers
                .iter()
                .filter(|(s, ..)| *s == status)
                .map(|(_, name, d)| {
                    let h = json!({"description": d, "required": true, "schema": string()});
                    ((*name).to_owned(), h)
                })
                .collect();
            if !headers.is_empty() {
                resp["headers"] = Value::Object(headers);
            }
            responses.insert(status.to_string(), resp);
        }
        let mut operation = json!({
            "operationId": operation_id(op),
            "summary": op.summary,
            "tags": [op.tag],
            "parameters": params,
            "responses": responses,
        });
        if let Some(schema) = &op.request {
            operation["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": schema}},
            });
        }
        paths
            .entry(op.path)
            .or_default()
            .insert(op.method.as_str().to_ascii_lowercase(), operation);
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Drover",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Drover's REST API: Marathon's /v2 and Chronos' /v1/scheduler. \
                Generated from the router's route table (sched-api's `routes::table`).",
        },
        "paths": paths,
        "components": {"schemas": components()},
    })
}

/// `get /v2/apps/{appId}/tasks` → `get_v2_apps_appId_tasks`.
fn operation_id(op: &Op) -> String {
    let mut id = op.method.as_str().to_ascii_lowercase();
    for seg in op.path.split('/').filter(|s| !s.is_empty()) {
        id.push('_');
        id.extend(seg.chars().filter(|c| c.is_ascii_alphanumeric()));
    }
    id
}

/// `GET /openapi.json` (generated once).
pub(crate) async fn serve() -> Response {
    static DOCUMENT: OnceLock<Vec<u8>> = OnceLock::new();
    let body = DOCUMENT
        .get_or_init(|| serde_json::to_vec(&crate::routes::table::document()).unwrap_or_default());
    ([(header::CONTENT_TYPE, "application/json")], body.as_slice()).into_response()
}

#[cfg(test)]
pub(crate) mod tests;
