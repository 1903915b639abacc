//! Sans-io Mesos v1 HTTP protocol.
//!
//! Everything here is a pure function or a state machine fed with bytes,
//! responses and `now`; nothing opens a socket, spawns a task or reads a
//! clock. `mesos-http` drives these types over hyper.
//!
//! - [`recordio`]: the streaming framing (`<length>\n<bytes>`).
//! - [`codec`]: `application/x-protobuf` and `application/json`.
//! - [`scheduler`]: call builders and the [`scheduler::Subscription`] state machine.
//! - [`executor`]: the [`executor::ExecutorSession`] state machine.

pub mod backoff;
pub mod codec;
pub mod endpoint;
pub mod executor;
pub mod recordio;
pub mod scheduler;

pub use codec::ContentType;
pub use endpoint::Endpoint;

/// The header carrying the subscription's stream id on every scheduler call.
pub const STREAM_ID_HEADER: &str = "Mesos-Stream-Id";

/// The default maximum RecordIO record size accepted from Mesos (16 MiB).
pub const DEFAULT_MAX_RECORD_LEN: usize = 16 << 20;
