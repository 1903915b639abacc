//! Offers as the scheduling core sees them (converted from Mesos protos at
//! the daemon's boundary): the agent's hostname, fault domain and
//! attributes (what constraints read), and its resources split by role.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::app::Resources;
use crate::ports::PortRanges;

/// The role of unreserved resources.
pub const UNRESERVED: &str = "*";

/// The value of an agent attribute (Mesos' `Attribute`).
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    /// `TEXT`.
    Text(String),
    /// `SCALAR`.
    Scalar(f64),
    /// `RANGES`: inclusive `(begin, end)` pairs.
    Ranges(Vec<(u64, u64)>),
    /// `SET`.
    Set(Vec<String>),
}

/// An agent attribute with the text constraints compare (see
/// [`Attribute::text`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    value: AttributeValue,
    text: String,
}

impl Attribute {
    /// An attribute with this value.
    pub fn new(value: AttributeValue) -> Self {
        let text = match &value {
            AttributeValue::Text(t) => t.clone(),
            AttributeValue::Scalar(s) => format_scalar(*s),
            AttributeValue::Ranges(r) => {
                let mut r = r.clone();
                r.sort_unstable();
                let parts: Vec<String> = r.iter().map(|(a, b)| format!("{a}-{b}")).collect();
                format!("[{}]", parts.join(","))
            }
            AttributeValue::Set(items) => {
                let mut items = items.clone();
                items.sort();
                format!("{{{}}}", items.join(","))
            }
        };
        Attribute { value, text }
    }

    /// The value.
    pub fn value(&self) -> &AttributeValue {
        &self.value
    }

    /// The value as constraints compare it, as Marathon formats it: text as
    /// is; a scalar rounded half-even to three decimals, without trailing
    /// zeros (`2`, `0.5`, `1.235`); ranges as `[100-200,300-400]` sorted by
    /// begin; a set as `{a,b,c}` sorted.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// A scalar rounded half-even to three decimals (the precision of Mesos
/// scalars), printed without trailing zeros.
pub fn format_scalar(v: f64) -> String {
    // Rust rounds an exact decimal tie to even when formatting with a
    // precision, which is Java's HALF_EVEN on the double's exact value.
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".to_owned() } else { s.to_owned() }
}

/// Where an agent is, besides its hostname: its fault domain and attributes.
/// Offers carry it, and tasks keep a copy so constraints can count where an
/// app's instances already run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AgentFacts {
    /// `Offer.domain.fault_domain.region.name`.
    pub region: Option<String>,
    /// `Offer.domain.fault_domain.zone.name`.
    pub zone: Option<String>,
    /// Attributes by name.
    pub attributes: BTreeMap<String, Attribute>,
}

impl AgentFacts {
    /// Adds (or replaces) an attribute.
    pub fn with_attribute(mut self, name: &str, value: AttributeValue) -> Self {
        self.attributes.insert(name.to_owned(), Attribute::new(value));
        self
    }

    /// Sets the fault domain.
    pub fn with_domain(mut self, region: &str, zone: &str) -> Self {
        self.region = Some(region.to_owned());
        self.zone = Some(zone.to_owned());
        self
    }
}

/// The resources of an offer that belong to one role: unreserved (`*`) or
/// statically reserved for a role.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    /// `*` or the reservation's role.
    pub role: String,
    /// Scalar resources.
    pub resources: Resources,
    /// `ports`.
    pub ports: PortRanges,
}

/// A resource offer from one agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    /// The offer id.
    pub id: String,
    /// The agent.
    pub agent_id: String,
    /// The agent's hostname.
    pub hostname: String,
    /// The agent's fault domain and attributes.
    pub facts: Arc<AgentFacts>,
    /// Usable resources by role, one pool per role.
    pub pools: Vec<Pool>,
    /// Resources Drover cannot use (dynamically reserved, revocable,
    /// volumes, ...), for reporting only.
    pub ignored_resources: usize,
}

impl Offer {
    /// An offer with no resources yet.
    pub fn new(id: &str, agent_id: &str, hostname: &str) -> Self {
        Offer {
            id: id.to_owned(),
            agent_id: agent_id.to_owned(),
            hostname: hostname.to_owned(),
            facts: Arc::new(AgentFacts::default()),
            pools: Vec::new(),
            ignored_resources: 0,
        }
    }

    /// Adds resources of `role` (merged into its pool).
    pub fn with_resources(mut self, role: &str, resources: Resources, ports: PortRanges) -> Self {
        self.add(role, resources, ports);
        self
    }

    /// Sets the agent's facts.
    pub fn with_facts(mut self, facts: AgentFacts) -> Self {
        self.facts = Arc::new(facts);
        self
    }

    /// Adds resources of `role` to its pool, creating it if needed. Pools
    /// stay sorted: unreserved first, then by role.
    pub fn add(&mut self, role: &str, resources: Resources, ports: PortRanges) {
        match self.pools.iter_mut().find(|p| p.role == role) {
            Some(p) => {
                p.resources = p.resources.plus(&resources);
                let mut all = p.ports.ranges().to_vec();
                all.extend_from_slice(ports.ranges());
                p.ports = PortRanges::new(all);
            }
            None => {
                self.pools.push(Pool { role: role.to_owned(), resources, ports });
                self.pools.sort_by(|a, b| pool_order(&a.role).cmp(&pool_order(&b.role)));
            }
        }
    }

    /// All usable scalar resources, whatever their role.
    pub fn total(&self) -> Resources {
        self.pools.iter().fold(Resources::default(), |acc, p| acc.plus(&p.resources))
    }
}

/// The order pools are used in: unreserved first (reserved resources stay
/// for the apps that can only use them), then reserved roles by name.
pub fn pool_order(role: &str) -> (bool, &str) {
    (role != UNRESERVED, role)
}

/// Part of a launch's resources taken from one role's pool.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleResources {
    /// The pool's role (`*` = unreserved).
    pub role: String,
    /// Scalar resources taken.
    pub resources: Resources,
    /// Host ports taken.
    pub ports: Vec<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_format_as_marathon_compares_them() {
        let text = |v| Attribute::new(v).text().to_owned();
        assert_eq!(text(AttributeValue::Text("rack-1".into())), "rack-1");
        assert_eq!(text(AttributeValue::Scalar(2.0)), "2");
        assert_eq!(text(AttributeValue::Scalar(4096.0)), "4096");
        assert_eq!(text(AttributeValue::Scalar(0.5)), "0.5");
        assert_eq!(text(AttributeValue::Scalar(1.2345)), "1.234", "1.2345 is below the tie");
        assert_eq!(text(AttributeValue::Scalar(0.0625)), "0.062", "exact tie rounds to even");
        assert_eq!(text(AttributeValue::Scalar(0.1875)), "0.188", "exact tie rounds to even");
        assert_eq!(text(AttributeValue::Scalar(-0.0001)), "0");
        assert_eq!(text(AttributeValue::Ranges(vec![(300, 400), (100, 200)])), "[100-200,300-400]");
        assert_eq!(text(AttributeValue::Set(vec!["b".into(), "a".into()])), "{a,b}");
    }

    #[test]
    fn pools_merge_by_role_and_keep_unreserved_first() {
        let r = |cpus| Resources { cpus, mem: 0.0, disk: 0.0, gpus: 0 };
        let o = Offer::new("o", "a", "h")
            .with_resources("prod", r(1.0), PortRanges::new([(5, 6)]))
            .with_resources("*", r(2.0), PortRanges::default())
            .with_resources("prod", r(0.5), PortRanges::new([(7, 7)]));
        let roles: Vec<&str> = o.pools.iter().map(|p| p.role.as_str()).collect();
        assert_eq!(roles, ["*", "prod"]);
        assert_eq!(o.pools[1].resources.cpus, 1.5);
        assert_eq!(o.pools[1].ports.ranges(), &[(5, 7)]);
        assert_eq!(o.total().cpus, 3.5);
    }
}
