//! `/v2/deployments` and the launch queue `/v2/queue`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sched_core::ids::AppId;
use sched_core::scheduler::{Command, Outcome};
use serde_json::Value;

use super::{Params, flag};
use crate::{ApiError, ApiState, FieldError, deployment_response, render};

pub(crate) async fn list(State(s): State<ApiState>) -> Json<Value> {
    Json(render::deployments(&s.snap()))
}

pub(crate) async fn cancel(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    q: Params,
) -> Result<Response, ApiError> {
    let force = flag(&q, "force", false)?;
    match s.run(Command::CancelDeployment { id, force }).await? {
        Outcome::Deployed(d) => Ok(deployment_response(StatusCode::OK, &d, None)),
        _ => Ok(StatusCode::ACCEPTED.into_response()),
    }
}

pub(crate) async fn queue(State(s): State<ApiState>) -> Json<Value> {
    Json(render::queue(&s.snap(), s.clock.now()))
}

pub(crate) async fn reset_delay(
    State(s): State<ApiState>,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let Some(app) = raw.strip_suffix("/delay") else {
        return Err(ApiError::NotFound("Not found".into()));
    };
    let id = AppId::parse(app)
        .map_err(|e| ApiError::InvalidJson(vec![FieldError::new("/id", e.message())]))?;
    if !s.snap().queue.contains_key(&id) && !s.snap().delays.contains_key(&id) {
        return Err(ApiError::NotFound(format!("Application {id} not found in tasks queue.")));
    }
    s.run(Command::ResetDelay(id)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
