//! `/v2/apps`: list, create, bulk update; and under `/v2/apps/{id}`: the app,
//! its tasks, its versions and restart.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use sched_core::app::{AppSpec, CommandSpec};
use sched_core::ids::{AppId, TaskId};
use sched_core::scheduler::{Command, Outcome};
use sched_core::{format_version, parse_version};
use serde_json::{Map, Value, json};

use super::{Params, flag, param, params, parse_body};
use crate::conn::Client;
use crate::{
    ApiError, ApiState, FieldError, app_json, deployment_headers, deployment_response,
    kill_tasks_command, render,
};

/// Publishes `api_post_event` for apps the API created or changed.
fn post_events(s: &ApiState, client: &Client, uri: &Uri, apps: &[AppSpec]) {
    let now = s.clock.now();
    for app in apps {
        s.events.publish_api_post(&client.ip(), uri.path(), app, now);
    }
}

/// What a path under `/v2/apps/` names.
enum AppPath {
    App(AppId),
    Tasks(AppId),
    Task(AppId, TaskId),
    Versions(AppId),
    Version(AppId, String),
    Restart(AppId),
}

fn app_id(raw: &str) -> Result<AppId, ApiError> {
    AppId::parse(raw).map_err(|e| ApiError::InvalidJson(vec![FieldError::new("/id", e.message())]))
}

fn parse_path(raw: &str) -> Result<AppPath, ApiError> {
    let path = format!("/{}", raw.trim_start_matches('/'));
    let split =
        |sep: &str| path.rsplit_once(sep).filter(|(app, rest)| !app.is_empty() && !rest.is_empty());
    if let Some((app, task)) = split("/tasks/") {
        return Ok(AppPath::Task(app_id(app)?, TaskId::from_raw(task)));
    }
    if let Some((app, v)) = split("/versions/") {
        return Ok(AppPath::Version(app_id(app)?, v.to_owned()));
    }
    for (suffix, make) in [
        ("/tasks", AppPath::Tasks as fn(AppId) -> AppPath),
        ("/versions", AppPath::Versions),
        ("/restart", AppPath::Restart),
    ] {
        if let Some(app) = path.strip_suffix(suffix).filter(|a| !a.is_empty()) {
            return Ok(make(app_id(app)?));
        }
    }
    Ok(AppPath::App(app_id(&path)?))
}

fn not_found(id: &AppId) -> ApiError {
    ApiError::NotFound(format!("App '{id}' does not exist"))
}

impl AppPath {
    /// The methods this kind of path answers (the `Allow` of a 405).
    fn allowed(&self) -> &'static str {
        match self {
            AppPath::App(_) => "GET, PUT, PATCH, DELETE",
            AppPath::Tasks(_) => "GET, DELETE",
            AppPath::Task(..) => "DELETE",
            AppPath::Versions(_) | AppPath::Version(..) => "GET",
            AppPath::Restart(_) => "POST",
        }
    }
}

fn method_not_allowed(path: &AppPath) -> ApiError {
    ApiError::MethodNotAllowed { allow: path.allowed() }
}

fn command_text(a: &AppSpec) -> String {
    match &a.command {
        Some(CommandSpec::Shell(c)) => c.clone(),
        Some(CommandSpec::Argv(v)) => v.join(" "),
        None => String::new(),
    }
}

/// One term of a label selector.
enum Selector {
    Exists(String),
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// Parses Marathon's label selector: comma-separated terms `key`,
/// `key==value`, `key!=value`, `key in (a, b)`, `key notin (a, b)`.
fn parse_selector(text: &str) -> Result<Vec<Selector>, ApiError> {
    let bad = || {
        ApiError::InvalidJson(vec![FieldError::new(
            "/label",
            format!("invalid label selector `{text}`"),
        )])
    };
    let mut terms = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    let mut parts = Vec::new();
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    for part in parts.into_iter().map(str::trim).filter(|p| !p.is_empty()) {
        let set = |rest: &str| -> Option<Vec<String>> {
            let inner = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
            Some(inner.split(',').map(|v| v.trim().to_owned()).collect())
        };
        let term = if let Some((k, v)) = part.split_once("==") {
            Selector::Eq(k.trim().into(), v.trim().into())
        } else if let Some((k, v)) = part.split_once("!=") {
            Selector::Ne(k.trim().into(), v.trim().into())
        } else if let Some((k, rest)) = part.split_once(" notin ") {
            Selector::NotIn(k.trim().into(), set(rest).ok_or_else(bad)?)
        } else if let Some((k, rest)) = part.split_once(" in ") {
            Selector::In(k.trim().into(), set(rest).ok_or_else(bad)?)
        } else if part.contains(char::is_whitespace) || part.contains('=') {
            return Err(bad());
        } else {
            Selector::Exists(part.into())
        };
        terms.push(term);
    }
    Ok(terms)
}

fn selects(terms: &[Selector], a: &AppSpec) -> bool {
    terms.iter().all(|t| match t {
        Selector::Exists(k) => a.labels.contains_key(k),
        Selector::Eq(k, v) => a.labels.get(k) == Some(v),
        Selector::Ne(k, v) => a.labels.get(k) != Some(v),
        Selector::In(k, vs) => a.labels.get(k).is_some_and(|x| vs.contains(x)),
        Selector::NotIn(k, vs) => a.labels.get(k).is_none_or(|x| !vs.contains(x)),
    })
}

pub(crate) async fn list(State(s): State<ApiState>, q: Params) -> Result<Response, ApiError> {
    let snap = s.snap();
    let selector = param(&q, "label").map(parse_selector).transpose()?.unwrap_or_default();
    let embed = params(&q, "embed");
    let tasks = embed.contains(&"apps.tasks");
    let failures = embed.contains(&"apps.lastTaskFailure") || embed.contains(&"apps.failures");
    let id = param(&q, "id").map(str::to_owned);
    let cmd = param(&q, "cmd").map(str::to_owned);
    // Thousands of apps take milliseconds to write: do it off the runtime's
    // workers, so the scheduler loop and small requests never queue behind it.
    let render = move || {
        let apps: Vec<&AppSpec> = snap
            .apps
            .values()
            .filter(|a| id.as_deref().is_none_or(|f| a.id.as_str().contains(f)))
            .filter(|a| cmd.as_deref().is_none_or(|f| command_text(a).contains(f)))
            .filter(|a| selects(&selector, a))
            .collect();
        render::apps_list(&snap, &apps, &s.specs, tasks, failures)
    };
    let body = tokio::task::spawn_blocking(render)
        .await
        .map_err(|e| ApiError::Unavailable(format!("rendering the apps failed: {e}")))?;
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body)
        .into_response())
}

pub(crate) async fn create(
    State(s): State<ApiState>,
    client: Client,
    uri: Uri,
    q: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let force = flag(&q, "force", false)?;
    let value = parse_body(&body)?;
    let spec = app_json::parse_app(&value, None)?;
    let id = spec.id.clone();
    let d = s.deploy(Command::CreateApp { spec: Box::new(spec), force }).await?;
    post_events(&s, &client, &uri, &d.apps);
    let app = d.apps.first().ok_or_else(|| ApiError::Unavailable("no app in the reply".into()))?;
    let mut body = render::app_info(app, &s.snap(), false, false);
    if let Some(obj) = body.as_object_mut() {
        obj.insert("deployments".into(), json!([{"id": d.deployment_id}]));
    }
    let mut headers = deployment_headers(&d.deployment_id);
    if let Ok(v) = HeaderValue::from_str(&format!("/v2/apps{id}")) {
        headers.insert(header::LOCATION, v);
    }
    Ok((StatusCode::CREATED, headers, Json(body)).into_response())
}

/// The spec a `PUT`/`PATCH` body asks for, for app `id`.
pub(crate) fn updated_spec(
    s: &ApiState,
    id: &AppId,
    body: &Map<String, Value>,
    partial: bool,
) -> Result<AppSpec, ApiError> {
    let snap = s.snap();
    // `{"version": v}` alone rolls the app back to that version.
    let only_version = body.keys().all(|k| k == "version" || k == "id");
    if let (true, Some(v)) = (only_version, body.get("version").and_then(Value::as_str)) {
        let version = parse_version(v).ok_or_else(|| {
            ApiError::InvalidJson(vec![FieldError::new("/version", "error.expected.datetime")])
        })?;
        return snap.versions.get(id).and_then(|vs| vs.get(&version)).cloned().ok_or_else(|| {
            ApiError::NotFound(format!("Version '{v}' of app '{id}' does not exist"))
        });
    }
    let merged = match snap.apps.get(id) {
        Some(existing) if partial => app_json::merge(existing, body),
        _ => Value::Object(body.clone()),
    };
    app_json::parse_app(&merged, Some(id.as_str()))
}

pub(crate) fn object(value: &Value) -> Result<&Map<String, Value>, ApiError> {
    value
        .as_object()
        .ok_or_else(|| ApiError::InvalidJson(vec![FieldError::new("/", "error.expected.jsobject")]))
}

async fn put_app(
    s: &ApiState,
    (client, uri): (&Client, &Uri),
    id: AppId,
    q: &Params,
    body: &Bytes,
    patch: bool,
) -> Result<Response, ApiError> {
    let force = flag(q, "force", false)?;
    let partial = patch || flag(q, "partialUpdate", true)?;
    let value = parse_body(body)?;
    if patch && !s.snap().apps.contains_key(&id) {
        return Err(not_found(&id));
    }
    let spec = updated_spec(s, &id, object(&value)?, partial)?;
    let d = s.deploy(Command::PutApps { specs: vec![spec], force }).await?;
    post_events(s, client, uri, &d.apps);
    if d.created {
        Ok(deployment_response(StatusCode::CREATED, &d, Some(format!("/v2/apps{id}"))))
    } else {
        Ok(deployment_response(StatusCode::OK, &d, None))
    }
}

async fn put_apps(
    s: &ApiState,
    (client, uri): (&Client, &Uri),
    q: &Params,
    body: &Bytes,
    patch: bool,
) -> Result<Response, ApiError> {
    let force = flag(q, "force", false)?;
    let partial = patch || flag(q, "partialUpdate", true)?;
    let value = parse_body(body)?;
    let items = value.as_array().ok_or_else(|| {
        ApiError::InvalidJson(vec![FieldError::new("/", "error.expected.jsarray")])
    })?;
    let mut specs = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let obj = object(item)?;
        let raw = obj.get("id").and_then(Value::as_str).ok_or_else(|| {
            ApiError::InvalidJson(vec![FieldError::new(format!("({i})/id"), "error.path.missing")])
        })?;
        let id = app_id(raw)?;
        if patch && !s.snap().apps.contains_key(&id) {
            return Err(not_found(&id));
        }
        specs.push(updated_spec(s, &id, obj, partial)?);
    }
    let d = s.deploy(Command::PutApps { specs, force }).await?;
    post_events(s, client, uri, &d.apps);
    Ok(deployment_response(StatusCode::OK, &d, None))
}

pub(crate) async fn put_many(
    State(s): State<ApiState>,
    client: Client,
    uri: Uri,
    q: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    put_apps(&s, (&client, &uri), &q, &body, false).await
}

pub(crate) async fn patch_many(
    State(s): State<ApiState>,
    client: Client,
    uri: Uri,
    q: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    put_apps(&s, (&client, &uri), &q, &body, true).await
}

pub(crate) async fn get_path(
    State(s): State<ApiState>,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let snap = s.snap();
    match parse_path(&raw)? {
        AppPath::App(id) => {
            let app = snap.apps.get(&id).ok_or_else(|| not_found(&id))?;
            Ok(Json(json!({"app": render::app_info(app, &snap, true, true)})))
        }
        AppPath::Tasks(id) => {
            snap.apps.get(&id).ok_or_else(|| not_found(&id))?;
            Ok(Json(json!({"tasks": render::app_tasks(&snap, &id)})))
        }
        AppPath::Versions(id) => {
            snap.apps.get(&id).ok_or_else(|| not_found(&id))?;
            let versions: Vec<String> = snap
                .versions
                .get(&id)
                .map(|v| v.keys().rev().map(|t| format_version(*t)).collect())
                .unwrap_or_default();
            Ok(Json(json!({"versions": versions})))
        }
        AppPath::Version(id, v) => {
            snap.apps.get(&id).ok_or_else(|| not_found(&id))?;
            let spec =
                parse_version(&v).and_then(|t| snap.versions.get(&id).and_then(|vs| vs.get(&t)));
            let spec = spec.ok_or_else(|| {
                ApiError::NotFound(format!("Version '{v}' of app '{id}' does not exist"))
            })?;
            Ok(Json(Value::Object(app_json::render_app(spec))))
        }
        other @ (AppPath::Task(..) | AppPath::Restart(_)) => Err(method_not_allowed(&other)),
    }
}

pub(crate) async fn put_path(
    State(s): State<ApiState>,
    Path(raw): Path<String>,
    client: Client,
    uri: Uri,
    q: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    match parse_path(&raw)? {
        AppPath::App(id) => put_app(&s, (&client, &uri), id, &q, &body, false).await,
        other => Err(method_not_allowed(&other)),
    }
}

pub(crate) async fn patch_path(
    State(s): State<ApiState>,
    Path(raw): Path<String>,
    client: Client,
    uri: Uri,
    q: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    match parse_path(&raw)? {
        AppPath::App(id) => put_app(&s, (&client, &uri), id, &q, &body, true).await,
        other => Err(method_not_allowed(&other)),
    }
}

pub(crate) async fn post_path(
    State(s): State<ApiState>,
    Path(raw): Path<String>,
    q: Params,
) -> Result<Response, ApiError> {
    match parse_path(&raw)? {
        AppPath::Restart(id) => {
            let force = flag(&q, "force", false)?;
            let d = s.deploy(Command::RestartApp { id, force }).await?;
            Ok(deployment_response(StatusCode::OK, &d, None))
        }
        other => Err(method_not_allowed(&other)),
    }
}

/// Kills tasks; answers the tasks, or the deployment when scaling.
async fn kill(
    s: &ApiState,
    task_ids: Vec<TaskId>,
    q: &Params,
    single: bool,
) -> Result<Response, ApiError> {
    let scale = flag(q, "scale", false)?;
    let wipe = flag(q, "wipe", false)?;
    let force = flag(q, "force", false)?;
    match s.run(kill_tasks_command(task_ids, scale, wipe, force)?).await? {
        Outcome::Deployed(d) => Ok(deployment_response(StatusCode::OK, &d, None)),
        Outcome::Killed(instances) => {
            let snap = s.snap();
            let tasks: Vec<Value> =
                instances.iter().filter_map(|i| render::task_json(i, &snap)).collect();
            let body = if single {
                json!({"task": tasks.into_iter().next().unwrap_or(Value::Null)})
            } else {
                json!({"tasks": tasks})
            };
            Ok(Json(body).into_response())
        }
        Outcome::Done => Ok(StatusCode::OK.into_response()),
    }
}

pub(crate) async fn delete_path(
    State(s): State<ApiState>,
    Path(raw): Path<String>,
    q: Params,
) -> Result<Response, ApiError> {
    match parse_path(&raw)? {
        AppPath::App(id) => {
            // Marathon deletes with force by default.
            let force = flag(&q, "force", true)?;
            let d = s.deploy(Command::DeleteApps { ids: vec![id], force }).await?;
            Ok(deployment_response(StatusCode::OK, &d, None))
        }
        AppPath::Tasks(id) => {
            let snap = s.snap();
            snap.apps.get(&id).ok_or_else(|| not_found(&id))?;
            let host = param(&q, "host");
            let ids: Vec<TaskId> = snap
                .app_instances(&id)
                .filter_map(|i| i.active_task())
                .filter(|t| host.is_none_or(|h| t.hostname == h))
                .map(|t| t.id.clone())
                .collect();
            kill(&s, ids, &q, false).await
        }
        AppPath::Task(id, task) => {
            s.snap().apps.get(&id).ok_or_else(|| not_found(&id))?;
            kill(&s, vec![task], &q, true).await
        }
        other => Err(method_not_allowed(&other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_apps_and_their_sub_resources() {
        assert!(matches!(parse_path("a/b").unwrap(), AppPath::App(id) if id.as_str() == "/a/b"));
        assert!(
            matches!(parse_path("a/b/tasks").unwrap(), AppPath::Tasks(id) if id.as_str() == "/a/b")
        );
        assert!(
            matches!(parse_path("a/tasks/t.1").unwrap(), AppPath::Task(id, t) if id.as_str() == "/a" && t.as_str() == "t.1")
        );
        assert!(matches!(parse_path("a/versions").unwrap(), AppPath::Versions(_)));
        assert!(
            matches!(parse_path("a/versions/2020-01-01T00:00:00.000Z").unwrap(), AppPath::Version(_, v) if v.starts_with("2020"))
        );
        assert!(matches!(parse_path("a/restart").unwrap(), AppPath::Restart(_)));
        assert!(
            matches!(parse_path("tasks/x").unwrap(), AppPath::App(id) if id.as_str() == "/tasks/x")
        );
        assert!(parse_path("Bad").is_err());
    }

    #[test]
    fn label_selectors_follow_marathon() {
        let mut a = app_json::parse_app(
            &json!({"id": "/a", "cmd": "x", "labels": {"env": "prod", "tier": "web"}}),
            None,
        )
        .unwrap();
        let sel = |t: &str| selects(&parse_selector(t).unwrap(), &a);
        assert!(sel("env"));
        assert!(sel("env==prod"));
        assert!(!sel("env!=prod"));
        assert!(sel("tier in (web, db)"));
        assert!(sel("tier in (web,db),env==prod"));
        assert!(!sel("tier notin (web)"));
        assert!(sel("missing notin (x)"));
        assert!(!sel("missing"));
        a.labels.clear();
        assert!(!selects(&parse_selector("env").unwrap(), &a));
        assert!(parse_selector("a = b").is_err());
        assert!(parse_selector("a in b").is_err());
    }
}
