//! Apache Mesos 1.11 v1 protocol types, generated from Drover's own `.proto`
//! files in `protos/mesos/v1/` (wire contract: same packages, names, field
//! numbers and enums as Apache Mesos 1.11.0, see `protos/mesos/VERSION`),
//! and Drover's own messages from `protos/drover/v1/` (`drover::v1::TaskData`:
//! what a task runs, carried in `TaskInfo.data` to `drover-executor`).
//!
//! [`json`] implements Mesos' JSON form of the same messages: proto field names
//! (snake_case), enums by name, `bytes` as base64 and 64-bit integers as plain
//! JSON numbers.

#![allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]

pub mod json;

/// Generated Mesos messages.
pub mod mesos {
    /// Package `mesos.v1`.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/mesos.v1.rs"));

        /// Package `mesos.v1.scheduler`.
        pub mod scheduler {
            include!(concat!(env!("OUT_DIR"), "/mesos.v1.scheduler.rs"));
        }

        /// Package `mesos.v1.executor`.
        pub mod executor {
            include!(concat!(env!("OUT_DIR"), "/mesos.v1.executor.rs"));
        }
    }
}

/// Drover's own messages.
pub mod drover {
    /// Package `drover.v1`.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/drover.v1.rs"));
    }
}

/// The serialized `FileDescriptorSet` of the Mesos protos (with imports).
pub const MESOS_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/mesos_descriptor.bin"));

/// The Apache Mesos release these protos mirror.
pub const MESOS_VERSION: &str = include_str!("../../mesos/VERSION");

pub use prost;
pub use prost::Message;
pub use prost::Name;
