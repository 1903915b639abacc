//! `/v2/tasks` and `POST /v2/tasks/delete`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sched_core::ids::TaskId;
use sched_core::instance::TaskState;
use sched_core::scheduler::Outcome;
use serde_json::{Value, json};

use super::{Params, flag, params, parse_body};
use crate::{ApiError, ApiState, FieldError, deployment_response, kill_tasks_command, render};

pub(crate) async fn list(State(s): State<ApiState>, q: Params) -> Result<Json<Value>, ApiError> {
    let mut states = Vec::new();
    for status in params(&q, "status").into_iter().chain(params(&q, "status[]")) {
        match status {
            "running" => states.push(TaskState::Running),
            "staging" => states.push(TaskState::Staging),
            other => {
                return Err(ApiError::InvalidJson(vec![FieldError::new(
                    "/status",
                    format!("unknown status `{other}` (expected running or staging)"),
                )]));
            }
        }
    }
    let snap = s.snap();
    Ok(Json(json!({"tasks": render::all_tasks(&snap, &states)})))
}

pub(crate) async fn delete_many(
    State(s): State<ApiState>,
    q: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let value = parse_body(&body)?;
    let ids = value.get("ids").and_then(Value::as_array).ok_or_else(|| {
        ApiError::InvalidJson(vec![FieldError::new("/ids", "error.path.missing")])
    })?;
    let mut task_ids = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        let id = id.as_str().ok_or_else(|| {
            ApiError::InvalidJson(vec![FieldError::new(
                format!("/ids({i})"),
                "error.expected.jsstring",
            )])
        })?;
        task_ids.push(TaskId::from_raw(id));
    }
    let scale = flag(&q, "scale", false)?;
    let wipe = flag(&q, "wipe", false)?;
    let force = flag(&q, "force", false)?;
    // Marathon answers 400 for unknown ids here.
    let outcome =
        s.run(kill_tasks_command(task_ids, scale, wipe, force)?).await.map_err(|e| match e {
            ApiError::NotFound(m) => ApiError::Status(StatusCode::BAD_REQUEST, m),
            other => other,
        })?;
    match outcome {
        Outcome::Deployed(d) => Ok(deployment_response(StatusCode::OK, &d, None)),
        Outcome::Killed(instances) => {
            let snap = s.snap();
            let tasks: Vec<Value> =
                instances.iter().filter_map(|i| render::task_json(i, &snap)).collect();
            Ok(Json(json!({"tasks": tasks})).into_response())
        }
        Outcome::Done => Ok(StatusCode::OK.into_response()),
    }
}
