//! Offers as the scheduling core sees them (converted from Mesos protos at
//! the daemon's boundary).

use crate::app::Resources;
use crate::ports::PortRanges;

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
    /// Unreserved `ports`.
    pub ports: PortRanges,
    /// Reserved or otherwise unusable resources, for reporting only.
    pub ignored_resources: usize,
}
