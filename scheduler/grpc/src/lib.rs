//! Drover's own gRPC API: the `drover.v1.Drover` service
//! (`protos/drover/v1/api.proto`).
//!
//! - **Reads.** `GetState` answers everything stored with the store revision
//!   it was read at (one consistent read of the store); `ListApps`,
//!   `GetApp`, `ListTasks`, `ListDeployments`, `ListJobs`, `GetJob` and
//!   `ListRuns` read the leader's published snapshot, as the REST API does.
//! - **Mutations.** The REST API's, through the same parsers, validation and
//!   `Command`s (`sched_api::ApiState::run`); errors become gRPC statuses in
//!   one place (`status`).
//! - **`Watch(from_revision)`.** The store's change feed
//!   ([`sched_store::Store::watch`]) as typed changes: one message per
//!   committed store batch, carrying its revision, in revision order.
//!   Because a batch is never split across messages and the feed starts at
//!   exactly `from_revision`, a client that resumes from the last revision
//!   it received + 1 (or watches from a `GetState` revision + 1) gets every
//!   change exactly once. History the store no longer keeps is OUT_OF_RANGE.
//!
//! Wire types ([`proto`]) stay apart from the core's: `convert` is the only
//! place that knows both.
//!
//! **Serving.** [`with_grpc`] puts the service on the REST API's router:
//! requests with `content-type: application/grpc…` go to gRPC, the rest to
//! REST, on one port (HTTP/2 with prior knowledge for gRPC, HTTP/1.1 for
//! REST). A standby's leader address therefore names the leader's gRPC
//! endpoint too. The service is built from the REST API's own
//! [`ApiState`](sched_api::ApiState), so a layer on the combined router
//! (authentication, later) covers both APIs.

mod convert;
mod service;
mod status;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use sched_api::ApiState;
use sched_api::limits::Caller;
use sched_store::Store;
use tonic::service::Routes;
use tower::ServiceExt;

pub use service::{DroverService, WatchCloser};
pub use status::{DEPLOYMENTS_METADATA, LEADER_METADATA};

/// The generated `drover.v1` messages, server and client.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod proto {
    /// Package `drover.v1`.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/drover.v1.rs"));
    }
}

/// True for a gRPC request (`application/grpc`, `application/grpc+proto`).
fn is_grpc(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

/// The gRPC service and the REST API's state (for its limits).
#[derive(Clone)]
struct Grpc {
    routes: Routes,
    api: ApiState,
}

async fn dispatch(State(grpc): State<Grpc>, request: Request, next: Next) -> Response {
    if !is_grpc(&request) {
        return next.run(request).await;
    }
    // The REST API's per-principal rate, shared with it.
    let caller = Caller::of(request.extensions());
    if let Err(wait) = grpc.api.limits.check_rate(&caller, grpc.api.clock.now()) {
        let config = grpc.api.limits.config();
        let status = tonic::Status::resource_exhausted(format!(
            "Too many requests: at most {} per second (bursts of {}); retry in {} ms",
            config.rate_limit_per_second,
            config.rate_limit_burst,
            wait.as_millis().max(1)
        ));
        return status.into_http();
    }
    match grpc.routes.oneshot(request).await {
        Ok(response) => response.map(axum::body::Body::new),
        Err(never) => match never {},
    }
}

/// `rest` (the REST API's router) with `service` served beside it on the
/// same listener: gRPC requests, by content type, go to the service
/// (before the REST API's layers: standbys do not forward them), every
/// other request to `rest`. Serve it with `sched_api::serve`. Layers added
/// to the returned router (authentication, later) wrap both APIs; layers
/// added to `rest` before this call wrap REST only.
pub fn with_grpc<S: Store>(rest: Router, service: DroverService<S>) -> Router {
    let api = service.api().clone();
    let routes = Routes::new(proto::v1::drover_server::DroverServer::new(service)).prepare();
    rest.layer(axum::middleware::from_fn_with_state(Grpc { routes, api }, dispatch))
}
