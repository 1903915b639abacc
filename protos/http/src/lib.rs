//! The hyper/tokio shells around `mesos-wire`'s state machines.
//!
//! This crate is the only code in Drover that opens sockets to Mesos. It
//! performs the actions the sans-io state machines yield (open a subscription
//! stream, POST a call, close a stream), feeds back response heads and
//! RecordIO records, and sleeps until the machine's next deadline. It makes no
//! protocol decision of its own.
//!
//! - [`scheduler`]: a framework's subscription to the master, and its calls.
//! - [`executor`]: an executor's subscription to its agent, and its updates.
//! - [`auth`]: the `Authorization` header both send (HTTP Basic for a
//!   framework, a bearer token for an executor), never shown in `Debug`.

pub mod auth;
pub mod executor;
pub mod scheduler;
mod transport;

pub use auth::{AuthError, Authorization};
pub use transport::CallError;
