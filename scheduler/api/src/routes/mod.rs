//! The handlers, by resource.

pub(crate) mod apps;
pub(crate) mod deployments;
pub(crate) mod groups;
pub(crate) mod jobs;
pub(crate) mod misc;
pub(crate) mod table;
pub(crate) mod tasks;

use serde_json::Value;

use crate::{ApiError, FieldError};

/// Query parameters, repeats kept (`?embed=a&embed=b`).
pub(crate) type Params = axum::extract::Query<Vec<(String, String)>>;

pub(crate) fn param<'a>(p: &'a Params, key: &str) -> Option<&'a str> {
    p.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

pub(crate) fn params<'a>(p: &'a Params, key: &str) -> Vec<&'a str> {
    p.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
}

/// A boolean query parameter (`true`/`false`), `default` when absent.
pub(crate) fn flag(p: &Params, key: &str, default: bool) -> Result<bool, ApiError> {
    match param(p, key) {
        None => Ok(default),
        Some("true" | "") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(ApiError::InvalidJson(vec![FieldError::new(
            format!("/{key}"),
            format!("expected true or false, got `{other}`"),
        )])),
    }
}

/// A JSON request body, with the REST API's errors: empty or not JSON is
/// [`ApiError::MalformedJson`] (400).
pub fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Err(ApiError::MalformedJson("Please specify data in JSON format".into()));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::MalformedJson(e.to_string()))
}
