//! Errors in Marathon's shapes (`{"message", "details"}`, [`ApiError`]) and
//! in Chronos' (`{"status", "message"}`, [`ChronosError`]), with the status
//! codes each API's clients expect.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One invalid field: a JSON pointer and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// JSON pointer to the field (`/cpus`, `/` for the whole object).
    pub path: String,
    /// The problems.
    pub errors: Vec<String>,
}

impl FieldError {
    /// One problem at one path.
    pub fn new(path: impl Into<String>, error: impl Into<String>) -> Self {
        FieldError { path: path.into(), errors: vec![error.into()] }
    }
}

/// An API error. Every variant maps to one status code and body.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// The body is not JSON at all: 400.
    MalformedJson(String),
    /// The JSON does not fit the schema (types, ranges, patterns): 422
    /// with message "Invalid JSON".
    InvalidJson(Vec<FieldError>),
    /// The object fits the schema but is not valid: 422 with message
    /// "Object is not valid".
    InvalidObject(Vec<FieldError>),
    /// 404 with a message.
    NotFound(String),
    /// 409 with a message.
    Conflict(String),
    /// 409: deployments lock the apps (Marathon's shape, with their ids).
    Locked(Vec<String>),
    /// 503: the scheduler could not take the command now.
    Unavailable(String),
    /// 405 for a method the path does not answer, with the `Allow` header
    /// (the methods it does answer, e.g. `"GET, DELETE"`).
    MethodNotAllowed {
        /// The value of `Allow`.
        allow: &'static str,
    },
    /// 406 and other plain-message errors.
    Status(StatusCode, String),
}

fn details(errors: &[FieldError]) -> Value {
    errors.iter().map(|e| json!({"path": e.path, "errors": e.errors})).collect()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            ApiError::MalformedJson(detail) => {
                (StatusCode::BAD_REQUEST, json!({"message": "Invalid JSON", "details": detail}))
            }
            ApiError::InvalidJson(errors) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"message": "Invalid JSON", "details": details(&errors)}),
            ),
            ApiError::InvalidObject(errors) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"message": "Object is not valid", "details": details(&errors)}),
            ),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, json!({"message": m})),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, json!({"message": m})),
            ApiError::Locked(ids) => {
                let first = ids.first().cloned().unwrap_or_default();
                let message = format!(
                    "App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/{first}'."
                );
                let deployments: Vec<Value> = ids.iter().map(|id| json!({"id": id})).collect();
                (StatusCode::CONFLICT, json!({"message": message, "deployments": deployments}))
            }
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, json!({"message": m})),
            ApiError::Status(code, m) => (code, json!({"message": m})),
            ApiError::MethodNotAllowed { allow } => {
                let body = Json(json!({"message": "Method not allowed"}));
                let allow = [(axum::http::header::ALLOW, allow)];
                return (StatusCode::METHOD_NOT_ALLOWED, allow, body).into_response();
            }
        };
        (status, Json(body)).into_response()
    }
}

/// An error of the Chronos API (`/v1/scheduler`), in Chronos' `ApiResult`
/// shape: `{"status": "<reason phrase>", "message": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChronosError {
    /// The HTTP status; its reason phrase is the body's `status`.
    pub code: StatusCode,
    /// What went wrong.
    pub message: String,
}

impl ChronosError {
    /// 400: the request cannot be honoured as sent.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ChronosError { code: StatusCode::BAD_REQUEST, message: message.into() }
    }

    /// 404 for a job that does not exist.
    pub fn no_job(name: &str) -> Self {
        ChronosError {
            code: StatusCode::NOT_FOUND,
            message: format!("Job '{name}' does not exist"),
        }
    }
}

impl From<ApiError> for ChronosError {
    /// Commands answer in Marathon's terms; Chronos clients get the same
    /// status (validation problems are 400 in Chronos) and one message.
    fn from(e: ApiError) -> Self {
        let joined = |errors: &[FieldError]| {
            errors.iter().flat_map(|e| e.errors.iter().cloned()).collect::<Vec<_>>().join("; ")
        };
        let (code, message) = match e {
            ApiError::MalformedJson(detail) => {
                (StatusCode::BAD_REQUEST, format!("the body is not valid JSON: {detail}"))
            }
            ApiError::InvalidJson(errors) | ApiError::InvalidObject(errors) => {
                (StatusCode::BAD_REQUEST, joined(&errors))
            }
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, m),
            ApiError::Locked(ids) => {
                (StatusCode::CONFLICT, format!("locked by deployments {}", ids.join(", ")))
            }
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m),
            ApiError::Status(code, m) => (code, m),
            ApiError::MethodNotAllowed { allow } => {
                (StatusCode::METHOD_NOT_ALLOWED, format!("Method not allowed (allowed: {allow})"))
            }
        };
        ChronosError { code, message }
    }
}

impl IntoResponse for ChronosError {
    fn into_response(self) -> Response {
        let status = self.code.canonical_reason().unwrap_or("Error");
        (self.code, Json(json!({"status": status, "message": self.message}))).into_response()
    }
}
