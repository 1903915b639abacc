//! `/v2/groups`: the tree implied by hierarchical app ids.
//!
//! A group exists while apps live beneath it. Posting or putting a group
//! creates or updates all its apps (ids relative to the group) in one
//! deployment; deleting a group deletes every app beneath it.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use sched_core::app::AppSpec;
use sched_core::ids::AppId;
use sched_core::scheduler::Command;
use serde_json::{Map, Value};

use super::{Params, flag, params, parse_body};
use crate::{ApiError, ApiState, FieldError, app_json, deployment_response, render};

/// Normalizes a group path: `""` and `"/"` are the root.
fn group_path(raw: &str) -> Result<String, ApiError> {
    let trimmed = raw.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    AppId::parse(trimmed)
        .map(|id| id.as_str().to_owned())
        .map_err(|e| ApiError::InvalidJson(vec![FieldError::new("/id", e.message())]))
}

fn display(group: &str) -> &str {
    if group.is_empty() { "/" } else { group }
}

fn get(s: &ApiState, group: &str, q: &Params) -> Result<Json<Value>, ApiError> {
    let snap = s.snap();
    let embed = params(q, "embed");
    let tasks = embed.contains(&"group.apps.tasks");
    match render::group(&snap, group, tasks) {
        Some(g) => Ok(Json(g)),
        None => Err(ApiError::NotFound(format!("Group '{}' does not exist", display(group)))),
    }
}

pub(crate) async fn get_root(
    State(s): State<ApiState>,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    get(&s, "", &q)
}

pub(crate) async fn get_path(
    State(s): State<ApiState>,
    Path(raw): Path<String>,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let group = group_path(&raw)?;
    get(&s, &group, &q)
}

/// The apps a group body describes, with ids made absolute under `group`.
fn collect_apps(
    s: &ApiState,
    group: &str,
    body: &Map<String, Value>,
    path: &str,
    out: &mut Vec<AppSpec>,
) -> Result<(), ApiError> {
    let resolve = |raw: &str| -> String {
        if raw.starts_with('/') { raw.to_owned() } else { format!("{group}/{raw}") }
    };
    if let Some(apps) = body.get("apps") {
        let list = apps.as_array().ok_or_else(|| {
            ApiError::InvalidJson(vec![FieldError::new(
                format!("{path}/apps"),
                "error.expected.jsarray",
            )])
        })?;
        for (i, app) in list.iter().enumerate() {
            let obj = app.as_object().ok_or_else(|| {
                ApiError::InvalidJson(vec![FieldError::new(
                    format!("{path}/apps({i})"),
                    "error.expected.jsobject",
                )])
            })?;
            let raw = obj.get("id").and_then(Value::as_str).ok_or_else(|| {
                ApiError::InvalidJson(vec![FieldError::new(
                    format!("{path}/apps({i})/id"),
                    "error.path.missing",
                )])
            })?;
            let id = resolve(raw);
            let parsed = AppId::parse(&id).map_err(|e| {
                ApiError::InvalidJson(vec![FieldError::new(
                    format!("{path}/apps({i})/id"),
                    e.message(),
                )])
            })?;
            if !parsed.is_in_group(group) || parsed.as_str() == group {
                return Err(ApiError::InvalidObject(vec![FieldError::new(
                    format!("{path}/apps({i})/id"),
                    format!(
                        "identifier {id} is not child of {}. Hint: use relative paths.",
                        display(group)
                    ),
                )]));
            }
            let merged = match s.snap().apps.get(&parsed) {
                Some(existing) => app_json::merge(existing, obj),
                None => app.clone(),
            };
            out.push(app_json::parse_app(&merged, Some(parsed.as_str()))?);
        }
    }
    if let Some(groups) = body.get("groups") {
        let list = groups.as_array().ok_or_else(|| {
            ApiError::InvalidJson(vec![FieldError::new(
                format!("{path}/groups"),
                "error.expected.jsarray",
            )])
        })?;
        for (i, sub) in list.iter().enumerate() {
            let obj = sub.as_object().ok_or_else(|| {
                ApiError::InvalidJson(vec![FieldError::new(
                    format!("{path}/groups({i})"),
                    "error.expected.jsobject",
                )])
            })?;
            let raw = obj.get("id").and_then(Value::as_str).unwrap_or("");
            let sub_group = group_path(&resolve(raw))?;
            collect_apps(s, &sub_group, obj, &format!("{path}/groups({i})"), out)?;
        }
    }
    Ok(())
}

async fn write(
    s: &ApiState,
    raw: &str,
    q: &Params,
    body: &Bytes,
    create: bool,
) -> Result<Response, ApiError> {
    let force = flag(q, "force", false)?;
    let value = parse_body(body)?;
    let obj = value.as_object().ok_or_else(|| {
        ApiError::InvalidJson(vec![FieldError::new("/", "error.expected.jsobject")])
    })?;
    let mut group = group_path(raw)?;
    if group.is_empty()
        && let Some(id) = obj.get("id").and_then(Value::as_str)
    {
        group = group_path(id)?;
    }
    let snap = s.snap();
    if create && snap.apps.keys().any(|a| a.is_in_group(&group)) && !group.is_empty() {
        return Err(ApiError::Conflict(format!(
            "Group {group} is already created. Use PUT to change this group."
        )));
    }
    let mut specs = Vec::new();
    if let Some(factor) = obj.get("scaleBy") {
        let factor = factor.as_f64().filter(|f| f.is_finite() && *f >= 0.0).ok_or_else(|| {
            ApiError::InvalidJson(vec![FieldError::new("/scaleBy", "error.expected.jsnumber")])
        })?;
        for app in snap.apps.values().filter(|a| a.id.is_in_group(&group)) {
            let mut spec = app.clone();
            let scaled = (f64::from(spec.instances) * factor).ceil();
            if scaled > f64::from(app_json::MAX_INSTANCES) {
                return Err(ApiError::InvalidObject(vec![FieldError::new(
                    "/scaleBy",
                    format!(
                        "{} would have {scaled} instances; at most {} are allowed",
                        app.id,
                        app_json::MAX_INSTANCES
                    ),
                )]));
            }
            spec.instances = scaled as u32;
            specs.push(spec);
        }
    } else {
        collect_apps(s, &group, obj, "", &mut specs)?;
    }
    if flag(q, "dryRun", false)? {
        let steps: Vec<Value> = specs
            .iter()
            .map(|a| serde_json::json!({"actions": [{"action": if snap.apps.contains_key(&a.id) { "ScaleApplication" } else { "StartApplication" }, "app": a.id.as_str()}]}))
            .collect();
        return Ok(axum::response::IntoResponse::into_response(Json(
            serde_json::json!({"steps": steps}),
        )));
    }
    let d = s.deploy(Command::PutApps { specs, force }).await?;
    let status = if create { StatusCode::CREATED } else { StatusCode::OK };
    Ok(deployment_response(status, &d, None))
}

pub(crate) async fn post_root(
    State(s): State<ApiState>,
    q: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    write(&s, "", &q, &body, true).await
}

pub(crate) async fn put_root(
    State(s): State<ApiState>,
    q: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    write(&s, "", &q, &body, false).await
}

pub(crate) async fn post_path(
    State(s): State<ApiState>,
    Path(raw): Path<String>,
    q: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    write(&s, &raw, &q, &body, true).await
}

pub(crate) async fn put_path(
    State(s): State<ApiState>,
    Path(raw): Path<String>,
    q: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    write(&s, &raw, &q, &body, false).await
}

async fn remove(s: &ApiState, raw: &str, q: &Params) -> Result<Response, ApiError> {
    let force = flag(q, "force", false)?;
    let group = group_path(raw)?;
    let ids: Vec<AppId> = s.snap().apps.keys().filter(|a| a.is_in_group(&group)).cloned().collect();
    if ids.is_empty() {
        return Err(ApiError::NotFound(format!("Group '{}' does not exist", display(&group))));
    }
    let d = s.deploy(Command::DeleteApps { ids, force }).await?;
    Ok(deployment_response(StatusCode::OK, &d, None))
}

pub(crate) async fn delete_root(
    State(s): State<ApiState>,
    q: Params,
) -> Result<Response, ApiError> {
    remove(&s, "", &q).await
}

pub(crate) async fn delete_path(
    State(s): State<ApiState>,
    Path(raw): Path<String>,
    q: Params,
) -> Result<Response, ApiError> {
    remove(&s, &raw, &q).await
}
