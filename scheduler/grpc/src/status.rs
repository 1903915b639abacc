//! Errors as gRPC statuses, in one place: the REST API's errors
//! ([`ApiError`], [`ChronosError`]), the store's ([`StoreError`]) and "this
//! instance does not lead".

use sched_api::{ApiError, ChronosError, FieldError, LeaderState};
use sched_store::StoreError;
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

/// The metadata entry naming the leader's address (`host:port`, the port
/// that serves both REST and gRPC).
pub const LEADER_METADATA: &str = "x-drover-leader";

/// The metadata entry listing the deployments that lock the apps
/// (comma-separated ids), on FAILED_PRECONDITION.
pub const DEPLOYMENTS_METADATA: &str = "x-drover-deployments";

/// `path: error, error; path: error` — the REST API's `details`, as text.
fn details(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.path, e.errors.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

fn with_metadata(mut status: Status, key: &'static str, value: &str) -> Status {
    if let Ok(v) = MetadataValue::try_from(value) {
        status.metadata_mut().insert(key, v);
    }
    status
}

/// An HTTP status of the REST API as the closest gRPC code.
fn code_of_http(code: u16) -> Code {
    match code {
        400 | 422 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::NotFound,
        405 | 501 => Code::Unimplemented,
        409 => Code::FailedPrecondition,
        502..=504 => Code::Unavailable,
        _ => Code::Unknown,
    }
}

/// A REST API error as a status. Validation errors keep the REST API's
/// message and details (`Object is not valid: /: scale and wipe are
/// mutually exclusive`).
pub(crate) fn api(e: ApiError) -> Status {
    match e {
        ApiError::MalformedJson(detail) => {
            Status::invalid_argument(format!("Invalid JSON: {detail}"))
        }
        ApiError::InvalidJson(errors) => {
            Status::invalid_argument(format!("Invalid JSON: {}", details(&errors)))
        }
        ApiError::InvalidObject(errors) => {
            Status::invalid_argument(format!("Object is not valid: {}", details(&errors)))
        }
        ApiError::NotFound(m) => Status::not_found(m),
        // The only conflict a mutation here can meet: the app exists.
        ApiError::Conflict(m) => Status::already_exists(m),
        ApiError::Locked(ids) => with_metadata(
            Status::failed_precondition(format!(
                "App is locked by one or more deployments ({}): retry with force to cancel them",
                ids.join(", ")
            )),
            DEPLOYMENTS_METADATA,
            &ids.join(","),
        ),
        ApiError::Unavailable(m) => Status::unavailable(m),
        ApiError::Status(code, m) => Status::new(code_of_http(code.as_u16()), m),
        ApiError::MethodNotAllowed { allow } => {
            Status::unimplemented(format!("Method not allowed (allowed: {allow})"))
        }
    }
}

/// A Chronos API error (job JSON) as a status.
pub(crate) fn chronos(e: ChronosError) -> Status {
    Status::new(code_of_http(e.code.as_u16()), e.message)
}

/// A store error of `GetState` or `Watch` as a status.
pub(crate) fn store(e: &StoreError) -> Status {
    match e {
        StoreError::Compacted { revision } => Status::out_of_range(format!(
            "changes from revision {revision} are no longer kept: \
             call GetState and watch from its revision + 1"
        )),
        StoreError::WatchLagged => Status::unavailable(
            "the watch fell too far behind and was dropped: \
             resume from the last received revision + 1",
        ),
        e if e.is_unavailable() => Status::unavailable(format!(
            "the state store is unreachable ({e}): retry, resuming from the last received revision + 1"
        )),
        e => Status::internal(format!("reading the state store failed: {e}")),
    }
}

/// `Ok` when this instance leads; UNAVAILABLE naming the leader otherwise.
pub(crate) fn require_leader(state: &LeaderState) -> Result<(), Status> {
    match state {
        LeaderState::Leader => Ok(()),
        LeaderState::Standby { leader: Some(leader) } => Err(with_metadata(
            Status::unavailable(format!(
                "this instance is a standby: send the request to the leader at {leader}"
            )),
            LEADER_METADATA,
            leader,
        )),
        LeaderState::Standby { leader: None } => {
            Err(Status::unavailable("this instance is a standby and no leader is known yet: retry"))
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;

    #[test]
    fn validation_errors_keep_the_rest_details() {
        let s = api(ApiError::InvalidObject(vec![
            FieldError::new("/", "scale and wipe are mutually exclusive"),
            FieldError { path: "/cpus".into(), errors: vec!["a".into(), "b".into()] },
        ]));
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(
            s.message(),
            "Object is not valid: /: scale and wipe are mutually exclusive; /cpus: a, b"
        );
    }

    #[test]
    fn locks_are_failed_preconditions_naming_the_deployments() {
        let s = api(ApiError::Locked(vec!["d1".into(), "d2".into()]));
        assert_eq!(s.code(), Code::FailedPrecondition);
        assert_eq!(s.metadata().get(DEPLOYMENTS_METADATA).unwrap(), "d1,d2");
        assert!(s.message().contains("d1, d2"), "{}", s.message());
    }

    #[test]
    fn rest_statuses_map_to_the_closest_code() {
        assert_eq!(api(ApiError::NotFound("x".into())).code(), Code::NotFound);
        assert_eq!(api(ApiError::Conflict("x".into())).code(), Code::AlreadyExists);
        assert_eq!(api(ApiError::Unavailable("x".into())).code(), Code::Unavailable);
        let bad = ApiError::Status(StatusCode::BAD_REQUEST, "nope".into());
        assert_eq!(api(bad).code(), Code::InvalidArgument);
        assert_eq!(chronos(ChronosError::no_job("etl")).code(), Code::NotFound);
    }

    #[test]
    fn compaction_tells_the_client_to_start_over() {
        let s = store(&StoreError::Compacted { revision: 7 });
        assert_eq!(s.code(), Code::OutOfRange);
        assert!(s.message().contains("call GetState"), "{}", s.message());
        assert_eq!(store(&StoreError::WatchLagged).code(), Code::Unavailable);
        assert_eq!(store(&StoreError::Unavailable("down".into())).code(), Code::Unavailable);
    }

    #[test]
    fn standbys_name_the_leader_in_the_message_and_the_metadata() {
        assert!(require_leader(&LeaderState::Leader).is_ok());
        let s = require_leader(&LeaderState::Standby { leader: Some("10.0.0.1:8080".into()) })
            .unwrap_err();
        assert_eq!(s.code(), Code::Unavailable);
        assert!(s.message().contains("10.0.0.1:8080"));
        assert_eq!(s.metadata().get(LEADER_METADATA).unwrap(), "10.0.0.1:8080");
        let s = require_leader(&LeaderState::Standby { leader: None }).unwrap_err();
        assert_eq!(s.code(), Code::Unavailable);
    }
}
