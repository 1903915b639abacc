//! The route table: every REST route once, with the handlers the router
//! mounts and the operations the OpenAPI document describes
//! ([`crate::openapi`]). Adding a route here documents it; a route cannot
//! be mounted without its [`Op`]s.

use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, post, put};
use serde_json::json;

use super::{apps, deployments, groups, jobs, misc, tasks};
use crate::openapi::{Body, Op, app_segment, group_segment, job_name};
use crate::{ApiState, events, leader, metrics, openapi};

/// One mounted route: an axum path (wildcards included), its handlers, and
/// the documented operations they serve (a wildcard serves several paths).
pub(crate) struct Endpoint {
    pub(crate) route: &'static str,
    pub(crate) handler: MethodRouter<ApiState>,
    pub(crate) ops: Vec<Op>,
}

fn endpoint(route: &'static str, handler: MethodRouter<ApiState>, ops: Vec<Op>) -> Endpoint {
    Endpoint { route, handler, ops }
}

const M: &[u16] = &[400, 404, 409, 422];
const C: &[u16] = &[400, 404, 409];

fn app(op: Op) -> Op {
    op.path_param("appId", app_segment(), "The app id (one segment here: `web` for `/web`)")
}

fn job(op: Op) -> Op {
    op.path_param("name", job_name(), "The job's name")
}

fn force(op: Op) -> Op {
    op.flag("force", "Override the deployments that lock the affected apps")
}

fn deployed(op: Op, status: u16) -> Op {
    op.ok(status, "A deployment started", "DeploymentResult").header(
        status,
        "Marathon-Deployment-Id",
        "The deployment's id",
    )
}

/// A string, one of `values`.
fn one_of(values: &[&str]) -> serde_json::Value {
    json!({"type": "string", "enum": values})
}

/// A string that means something when one of `values` (others are ignored,
/// as Marathon ignores unknown `embed`s).
fn known(values: &[&str]) -> serde_json::Value {
    json!({"anyOf": [one_of(values), {"type": "string"}]})
}

/// Component `a` or component `b`.
fn either(a: &str, b: &str) -> serde_json::Value {
    json!({"anyOf": [openapi::r(a), openapi::r(b)]})
}

fn killed(op: Op) -> Op {
    force(op)
        .flag("scale", "Scale the app down instead of replacing the tasks")
        .flag("wipe", "Forget the instances (no replacement)")
}

/// Every route of the REST API, in the router's order.
pub(crate) fn table() -> Vec<Endpoint> {
    use Method as V;
    vec![
        endpoint(
            "/openapi.json",
            get(openapi::serve),
            vec![Op::new(V::GET, "/openapi.json", "This document").answer(
                200,
                "The OpenAPI document",
                Body::Json(json!({"type": "object"})),
            )],
        ),
        endpoint(
            "/ping",
            get(misc::ping),
            vec![Op::new(V::GET, "/ping", "Liveness").answer(200, "`pong`", Body::Text)],
        ),
        endpoint(
            "/metrics",
            get(metrics::scrape),
            vec![Op::new(V::GET, "/metrics", "Prometheus metrics").answer(
                200,
                "The Prometheus text format",
                Body::Metrics,
            )],
        ),
        endpoint(
            "/metrics/prometheus",
            get(metrics::scrape),
            vec![Op::new(V::GET, "/metrics/prometheus", "Prometheus metrics").answer(
                200,
                "The Prometheus text format",
                Body::Metrics,
            )],
        ),
        endpoint(
            "/v2/events",
            get(events::stream),
            vec![
                Op::new(V::GET, "/v2/events", "The event stream (server-sent events)")
                    .query_many("event_type", json!({"type": "string"}), "Only these events")
                    .answer(200, "Events, until the client leaves", Body::Events)
                    .errors(&[405]),
            ],
        ),
        endpoint(
            "/v2/info",
            get(misc::info),
            vec![Op::new(V::GET, "/v2/info", "This server").ok(200, "Facts", "Info")],
        ),
        endpoint(
            "/v2/leader",
            get(leader::get_leader).delete(leader::abdicate),
            vec![
                Op::new(V::GET, "/v2/leader", "The leader")
                    .ok(200, "The leader's address", "Leader")
                    .errors(&[404]),
                Op::new(V::DELETE, "/v2/leader", "Abdicate: another instance (or this one) leads")
                    .ok(200, "Abdicated", "Message"),
            ],
        ),
        endpoint(
            "/v2/apps",
            get(apps::list).post(apps::create).put(apps::put_many).patch(apps::patch_many),
            vec![
                Op::new(V::GET, "/v2/apps", "List apps")
                    .query("id", json!({"type": "string"}), "Ids containing this")
                    .query("cmd", json!({"type": "string"}), "Commands containing this")
                    .query("label", json!({"type": "string"}), "A label selector")
                    .query_many(
                        "embed",
                        known(&[
                            "apps.tasks",
                            "apps.lastTaskFailure",
                            "apps.failures",
                            "apps.counts",
                            "apps.deployments",
                        ]),
                        "Embed tasks or the last task failure",
                    )
                    .ok(200, "The apps", "AppList")
                    .errors(&[422]),
                force(Op::new(V::POST, "/v2/apps", "Create an app"))
                    .body(openapi::r("AppCreate"))
                    .ok(201, "Created; a deployment started", "App")
                    .header(201, "Location", "The app's URL")
                    .header(201, "Marathon-Deployment-Id", "The deployment's id")
                    .errors(M),
                force(Op::new(V::PUT, "/v2/apps", "Create or update apps"))
                    .flag("partialUpdate", "Merge into the existing apps (the default)")
                    .body(openapi::r("AppUpdateList"))
                    .ok(200, "A deployment started", "DeploymentResult")
                    .header(200, "Marathon-Deployment-Id", "The deployment's id")
                    .errors(M),
                force(Op::new(V::PATCH, "/v2/apps", "Update existing apps"))
                    .body(openapi::r("AppUpdateList"))
                    .ok(200, "A deployment started", "DeploymentResult")
                    .header(200, "Marathon-Deployment-Id", "The deployment's id")
                    .errors(M),
            ],
        ),
        endpoint(
            "/v2/apps/{*path}",
            get(apps::get_path)
                .put(apps::put_path)
                .patch(apps::patch_path)
                .delete(apps::delete_path)
                .post(apps::post_path),
            vec![
                app(Op::new(V::GET, "/v2/apps/{appId}", "An app, with its tasks"))
                    .ok(200, "The app", "AppEnvelope")
                    .errors(&[404, 405, 422]),
                deployed(
                    force(app(Op::new(V::PUT, "/v2/apps/{appId}", "Create or replace an app")))
                        .flag("partialUpdate", "Merge into the existing app (the default)")
                        .body(openapi::r("AppDefinition")),
                    200,
                )
                .answer(201, "Created", Body::Json(openapi::r("DeploymentResult")))
                .header(201, "Location", "The app's URL")
                .header(201, "Marathon-Deployment-Id", "The deployment's id")
                .errors(&[400, 404, 405, 409, 422]),
                deployed(
                    force(app(Op::new(V::PATCH, "/v2/apps/{appId}", "Update an app")))
                        .body(openapi::r("AppDefinition")),
                    200,
                )
                .errors(&[400, 404, 405, 409, 422]),
                deployed(force(app(Op::new(V::DELETE, "/v2/apps/{appId}", "Delete an app"))), 200)
                    .errors(&[404, 405, 409, 422]),
                app(Op::new(V::GET, "/v2/apps/{appId}/tasks", "An app's tasks"))
                    .ok(200, "The tasks", "TaskList")
                    .errors(&[404, 405, 422]),
                killed(app(Op::new(V::DELETE, "/v2/apps/{appId}/tasks", "Kill an app's tasks")))
                    .query("host", json!({"type": "string"}), "Only the tasks on this host")
                    .answer(
                        200,
                        "The killed tasks, or the deployment that scales the app",
                        Body::Json(either("TaskList", "DeploymentResult")),
                    )
                    .errors(&[404, 405, 409, 422]),
                killed(app(Op::new(V::DELETE, "/v2/apps/{appId}/tasks/{taskId}", "Kill a task")))
                    .path_param("taskId", json!({"type": "string"}), "The task id")
                    .answer(
                        200,
                        "The killed task, or the deployment that scales the app",
                        Body::Json(either("KilledTask", "DeploymentResult")),
                    )
                    .errors(&[404, 405, 409, 422]),
                app(Op::new(V::GET, "/v2/apps/{appId}/versions", "An app's kept versions"))
                    .ok(200, "The versions, newest first", "Versions")
                    .errors(&[404, 405, 422]),
                app(Op::new(V::GET, "/v2/apps/{appId}/versions/{version}", "A kept version"))
                    .path_param("version", json!({"type": "string"}), "The version")
                    .ok(200, "The definition of that version", "AppSpec")
                    .errors(&[404, 405, 422]),
                deployed(
                    force(app(Op::new(V::POST, "/v2/apps/{appId}/restart", "Restart an app"))),
                    200,
                )
                .errors(&[404, 405, 409, 422]),
            ],
        ),
        endpoint(
            "/v2/tasks",
            get(tasks::list),
            vec![
                Op::new(V::GET, "/v2/tasks", "Every task")
                    .query_many(
                        "status",
                        json!({"type": "string", "enum": ["running", "staging"]}),
                        "Only tasks in these states",
                    )
                    .ok(200, "The tasks", "TaskList")
                    .errors(&[422]),
            ],
        ),
        endpoint(
            "/v2/tasks/delete",
            post(tasks::delete_many),
            vec![
                killed(Op::new(V::POST, "/v2/tasks/delete", "Kill tasks by id"))
                    .body(openapi::r("TaskIds"))
                    .answer(
                        200,
                        "The killed tasks, or the deployment that scales the apps",
                        Body::Json(either("TaskList", "DeploymentResult")),
                    )
                    .errors(&[400, 409, 422]),
            ],
        ),
        endpoint(
            "/v2/deployments",
            get(deployments::list),
            vec![Op::new(V::GET, "/v2/deployments", "Running deployments").ok(
                200,
                "The deployments",
                "DeploymentList",
            )],
        ),
        endpoint(
            "/v2/deployments/{id}",
            delete(deployments::cancel),
            vec![
                force(Op::new(V::DELETE, "/v2/deployments/{id}", "Cancel a deployment"))
                    .path_param("id", json!({"type": "string"}), "The deployment id")
                    .ok(200, "Rolled back by this deployment", "DeploymentResult")
                    .header(200, "Marathon-Deployment-Id", "The deployment's id")
                    .answer(202, "Cancelled without rollback (`force`)", Body::Empty)
                    .errors(&[404, 409, 422]),
            ],
        ),
        endpoint(
            "/v2/queue",
            get(deployments::queue),
            vec![Op::new(V::GET, "/v2/queue", "The launch queue").ok(200, "Waiting apps", "Queue")],
        ),
        endpoint(
            "/v2/queue/{*path}",
            delete(deployments::reset_delay),
            vec![
                app(Op::new(V::DELETE, "/v2/queue/{appId}/delay", "Reset an app's launch delay"))
                    .answer(204, "Reset", Body::Empty)
                    .errors(&[404, 409, 422]),
            ],
        ),
        endpoint(
            "/v2/groups",
            get(groups::get_root)
                .post(groups::post_root)
                .put(groups::put_root)
                .delete(groups::delete_root),
            group_ops("/v2/groups", false),
        ),
        endpoint(
            "/v2/groups/{*path}",
            get(groups::get_path)
                .post(groups::post_path)
                .put(groups::put_path)
                .delete(groups::delete_path),
            group_ops("/v2/groups/{groupId}", true),
        ),
        // Chronos 3.x (`routes::jobs`).
        endpoint(
            "/v1/scheduler/jobs",
            get(jobs::list),
            vec![Op::new(V::GET, "/v1/scheduler/jobs", "Every job").ok(200, "The jobs", "JobList")],
        ),
        endpoint(
            "/v1/scheduler/jobs/summary",
            get(jobs::summary),
            vec![Op::new(V::GET, "/v1/scheduler/jobs/summary", "Jobs in short").ok(
                200,
                "The summary",
                "JobSummary",
            )],
        ),
        endpoint(
            "/v1/scheduler/jobs/search",
            get(jobs::search),
            vec![
                Op::new(V::GET, "/v1/scheduler/jobs/search", "Search jobs")
                    .query("name", json!({"type": "string"}), "Name contains")
                    .query("command", json!({"type": "string"}), "Command contains")
                    .query("any", json!({"type": "string"}), "Name or command contains")
                    .query("limit", json!({"type": "integer", "minimum": 0}), "At most")
                    .query("offset", json!({"type": "integer", "minimum": 0}), "Skip")
                    .ok(200, "The jobs found", "JobList")
                    .chronos_errors(&[400]),
            ],
        ),
        endpoint(
            "/v1/scheduler/job/{name}",
            get(jobs::get_job).put(jobs::run_job).delete(jobs::delete_job),
            vec![
                job(Op::new(V::GET, "/v1/scheduler/job/{name}", "A job"))
                    .ok(200, "The job", "Job")
                    .chronos_errors(&[404]),
                job(Op::new(V::PUT, "/v1/scheduler/job/{name}", "Run a job now"))
                    .query_many("arguments", json!({"type": "string"}), "Arguments of this run")
                    .answer(204, "Queued", Body::Empty)
                    .chronos_errors(C),
                job(Op::new(V::DELETE, "/v1/scheduler/job/{name}", "Delete a job"))
                    .answer(204, "Deleted", Body::Empty)
                    .chronos_errors(C),
            ],
        ),
        endpoint(
            "/v1/scheduler/job/success/{name}",
            put(jobs::mark_success),
            vec![
                job(Op::new(V::PUT, "/v1/scheduler/job/success/{name}", "Mark a job successful"))
                    .answer(200, "Marked", Body::Text)
                    .chronos_errors(C),
            ],
        ),
        endpoint(
            "/v1/scheduler/job/stat/{name}",
            get(jobs::stat),
            vec![
                job(Op::new(V::GET, "/v1/scheduler/job/stat/{name}", "A job's statistics"))
                    .ok(200, "Durations and recent runs", "JobStat")
                    .chronos_errors(&[404]),
            ],
        ),
        endpoint(
            "/v1/scheduler/job/{name}/runs",
            get(jobs::runs),
            vec![
                job(Op::new(V::GET, "/v1/scheduler/job/{name}/runs", "A job's kept runs"))
                    .ok(200, "The runs, oldest first", "JobRuns")
                    .chronos_errors(&[404]),
            ],
        ),
        endpoint(
            "/v1/scheduler/job/{name}/task/{task}/progress",
            post(jobs::progress),
            vec![
                job(Op::new(
                    V::POST,
                    "/v1/scheduler/job/{name}/task/{task}/progress",
                    "Chronos' progress report (not tracked by Drover)",
                ))
                .path_param("task", json!({"type": "string"}), "The task id")
                .chronos_errors(&[400, 404]),
            ],
        ),
        endpoint(
            "/v1/scheduler/iso8601",
            post(jobs::put_scheduled).put(jobs::put_scheduled),
            [V::POST, V::PUT]
                .into_iter()
                .map(|m| {
                    Op::new(m, "/v1/scheduler/iso8601", "Create or replace a scheduled job")
                        .body(openapi::r("ScheduledJob"))
                        .answer(204, "Stored", Body::Empty)
                        .chronos_errors(C)
                })
                .collect(),
        ),
        endpoint(
            "/v1/scheduler/dependency",
            post(jobs::put_dependent).put(jobs::put_dependent),
            [V::POST, V::PUT]
                .into_iter()
                .map(|m| {
                    Op::new(m, "/v1/scheduler/dependency", "Create or replace a dependent job")
                        .body(openapi::r("DependentJob"))
                        .answer(204, "Stored", Body::Empty)
                        .chronos_errors(C)
                })
                .collect(),
        ),
        endpoint(
            "/v1/scheduler/task/kill/{name}",
            delete(jobs::kill),
            vec![
                job(Op::new(V::DELETE, "/v1/scheduler/task/kill/{name}", "Kill a job's runs"))
                    .answer(204, "Killed", Body::Empty)
                    .chronos_errors(C),
            ],
        ),
        endpoint(
            "/v1/scheduler/graph/dot",
            get(jobs::graph_dot),
            vec![
                Op::new(V::GET, "/v1/scheduler/graph/dot", "The dependency graph (Graphviz)")
                    .answer(200, "The graph", Body::Text),
            ],
        ),
        endpoint(
            "/v1/scheduler/graph/csv",
            get(jobs::graph_csv),
            vec![Op::new(V::GET, "/v1/scheduler/graph/csv", "The dependency graph (CSV)").answer(
                200,
                "The graph",
                Body::Text,
            )],
        ),
        endpoint(
            "/v1/scheduler/stats/{percentile}",
            get(jobs::stats),
            vec![
                Op::new(V::GET, "/v1/scheduler/stats/{percentile}", "Jobs by run duration")
                    .path_param(
                        "percentile",
                        one_of(&[
                            "99thPercentile",
                            "98thPercentile",
                            "95thPercentile",
                            "75thPercentile",
                            "median",
                            "mean",
                        ]),
                        "Which statistic",
                    )
                    .ok(200, "Jobs, slowest first", "JobStats")
                    .chronos_errors(&[400]),
            ],
        ),
        endpoint(
            "/v1/scheduler/leader",
            get(jobs::leader),
            vec![
                Op::new(V::GET, "/v1/scheduler/leader", "The leader")
                    .ok(200, "The leader's address", "Leader")
                    .chronos_errors(&[404]),
            ],
        ),
    ]
}

fn group_ops(path: &'static str, param: bool) -> Vec<Op> {
    let with = |op: Op| {
        if param {
            op.path_param("groupId", group_segment(), "The group id (one segment here)")
        } else {
            op
        }
    };
    let written = either("DeploymentResult", "DryRun");
    vec![
        with(Op::new(Method::GET, path, "A group with its apps and subgroups"))
            .query_many(
                "embed",
                known(&["group.apps", "group.apps.tasks", "group.groups"]),
                "Embed the apps' tasks",
            )
            .ok(200, "The group", "Group")
            .errors(&[404, 422]),
        force(with(Op::new(Method::POST, path, "Create a group's apps")))
            .flag("dryRun", "Only show the deployment's steps")
            .body(openapi::r("GroupUpdate"))
            .answer(200, "The steps (`dryRun`)", Body::Json(openapi::r("DryRun")))
            .ok(201, "A deployment started", "DeploymentResult")
            .header(201, "Marathon-Deployment-Id", "The deployment's id")
            .errors(M),
        force(with(Op::new(Method::PUT, path, "Create or update a group's apps, or scale them")))
            .flag("dryRun", "Only show the deployment's steps")
            .body(openapi::r("GroupUpdate"))
            .answer(200, "A deployment started, or the steps (`dryRun`)", Body::Json(written))
            .errors(M),
        deployed(force(with(Op::new(Method::DELETE, path, "Delete every app of a group"))), 200)
            .errors(&[404, 409, 422]),
    ]
}

/// The OpenAPI document of [`table`].
pub(crate) fn document() -> serde_json::Value {
    let table = table();
    let ops: Vec<&Op> = table.iter().flat_map(|e| &e.ops).collect();
    openapi::document(&ops)
}
