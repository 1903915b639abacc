//! Offers as the scheduling core sees them (converted from Mesos protos at
//! the daemon's boundary).

use crate::app::Resources;

/// A resource offer from one agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    /// The offer id.
    pub id: String,
    /// The agent.
    pub agent_id: String,
    /// The agent's hostname.
    pub hostname: String,
    /// Unreserved scalar resources usable by Drover.
    pub resources: Resources,
    /// Reserved or otherwise unusable resources, for reporting only.
    pub ignored_resources: usize,
}
