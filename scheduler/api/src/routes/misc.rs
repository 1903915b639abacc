//! `/ping`, `/v2/info`, `/v2/leader`.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::Value;

use crate::{ApiState, render};

pub(crate) async fn ping() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain")], "pong")
}

pub(crate) async fn info(State(s): State<ApiState>) -> Json<Value> {
    Json(render::info(&s.info, &s.snap()))
}
