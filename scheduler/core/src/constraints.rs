//! Marathon's placement constraints: `[field, OPERATOR]` or
//! `[field, OPERATOR, value]`.
//!
//! A constraint reads one *field* of an agent: `hostname` (or `@hostname`),
//! `@region` and `@zone` (the offer's fault domain), or any attribute, as
//! text (see [`Attribute::text`](crate::offer::Attribute::text)). An agent
//! that lacks the field matches only `UNLIKE`.
//!
//! | Operator | Value | An offer with field value `v` is accepted when |
//! |---|---|---|
//! | `UNIQUE` | none | no instance of the app is on `v` |
//! | `CLUSTER` | optional | `v` is the value; without one, `v` is the value the app is pinned to (see [`Tally`]) |
//! | `GROUP_BY` | optional `N` | `v` has no instance yet, or at least `N` values have instances and `v` has the fewest; without `N`, `N` is the number of values known this round (in offers and where instances run) |
//! | `LIKE` / `UNLIKE` | regex | `v` matches (does not match) the whole regex |
//! | `MAX_PER` | `N` | fewer than `N` instances are on `v` |
//! | `IS` | text or number | `v` is the value; a scalar attribute is compared as numbers rounded half-even to 0.001 |
//!
//! "Instances of the app" are those placed earlier (the caller lists where
//! they run) and those placed earlier in the same round: [`Tally`] counts
//! both, so constraints hold when many instances are placed at once.

use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;

use crate::offer::{AgentFacts, AttributeValue, format_scalar};

/// A constraint operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operator {
    /// One instance per value.
    Unique,
    /// Every instance on one value.
    Cluster,
    /// Spread evenly over values.
    GroupBy,
    /// The value matches a regex.
    Like,
    /// The value does not match a regex (or is missing).
    Unlike,
    /// At most N instances per value.
    MaxPer,
    /// The value equals the constraint's.
    Is,
}

impl Operator {
    /// Marathon's name.
    pub fn name(self) -> &'static str {
        match self {
            Operator::Unique => "UNIQUE",
            Operator::Cluster => "CLUSTER",
            Operator::GroupBy => "GROUP_BY",
            Operator::Like => "LIKE",
            Operator::Unlike => "UNLIKE",
            Operator::MaxPer => "MAX_PER",
            Operator::Is => "IS",
        }
    }

    /// Parses a name, in any case (Marathon upper-cases it).
    pub fn parse(name: &str) -> Option<Operator> {
        let all = [
            Operator::Unique,
            Operator::Cluster,
            Operator::GroupBy,
            Operator::Like,
            Operator::Unlike,
            Operator::MaxPer,
            Operator::Is,
        ];
        all.into_iter().find(|o| o.name().eq_ignore_ascii_case(name))
    }
}

/// What a constraint reads of an agent.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    /// `hostname` or `@hostname`.
    Hostname,
    /// `@region`.
    Region,
    /// `@zone`.
    Zone,
    /// An attribute.
    Attribute(String),
}

impl Field {
    /// The field a constraint names.
    pub fn parse(name: &str) -> Field {
        match name {
            "hostname" | "@hostname" => Field::Hostname,
            "@region" => Field::Region,
            "@zone" => Field::Zone,
            other => Field::Attribute(other.to_owned()),
        }
    }

    /// The field's value on an agent, as text; `None` when the agent lacks it.
    pub fn read<'a>(&self, hostname: &'a str, facts: &'a AgentFacts) -> Option<&'a str> {
        match self {
            Field::Hostname => Some(hostname),
            Field::Region => facts.region.as_deref(),
            Field::Zone => facts.zone.as_deref(),
            Field::Attribute(name) => facts.attributes.get(name).map(|a| a.text()),
        }
    }
}

/// Validation messages, as Marathon words them.
pub mod messages {
    /// A constraint is not `[field, OP]` or `[field, OP, value]`.
    pub const ARITY: &str = "Each constraint must have either 2 or 3 fields";
    /// Empty field.
    pub const FIELD: &str = "missing field for constraint declaration";
    /// Unknown operator.
    pub const OPERATOR: &str = "operator must be one of the following UNIQUE, CLUSTER, GROUP_BY, LIKE, MAX_PER, UNLIKE or IS";
    /// `UNIQUE` with a value.
    pub const UNIQUE: &str = "UNIQUE does not accept a value";
    /// `GROUP_BY` with a non-integer value.
    pub const GROUP_BY: &str = "GROUP BY must define an integer value or else no value at all";
    /// `MAX_PER` without an integer value.
    pub const MAX_PER: &str = "MAX_PER requires an integer value";
    /// `LIKE`/`UNLIKE` without a value.
    pub const REGEX_REQUIRED: &str =
        "LIKE and UNLIKE require a non-empty, regular expression value";
    /// `LIKE`/`UNLIKE` with a bad regex.
    pub const REGEX_INVALID: &str = "is not a valid regular expression";
    /// `IS` with a value that is neither Mesos text nor a number.
    pub const IS: &str = "IS only supports Mesos text and float values (see http://mesos.apache.org/documentation/latest/attributes-resources/)";
}

/// A compiled `LIKE`/`UNLIKE` pattern: Java's `String.matches`, i.e. the
/// whole value must match. Equal when their sources are.
#[derive(Clone)]
pub struct Pattern {
    source: String,
    regex: Regex,
}

impl Pattern {
    fn new(source: &str) -> Option<Pattern> {
        // The value must be a regex by itself (Marathon compiles it alone):
        // `a)|(b` is not, though it would complete the anchoring group below.
        Regex::new(source).ok()?;
        let regex = Regex::new(&format!("^(?:{source})$")).ok()?;
        Some(Pattern { source: source.to_owned(), regex })
    }

    fn matches(&self, v: &str) -> bool {
        self.regex.is_match(v)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.source)
    }
}

/// A validated constraint.
#[derive(Debug, Clone, PartialEq)]
pub struct Constraint {
    /// The field as the user wrote it.
    pub field_name: String,
    /// What it reads.
    pub field: Field,
    /// The operator.
    pub operator: Operator,
    /// The value as the user wrote it.
    pub value: Option<String>,
    pattern: Option<Pattern>,
    number: Option<i64>,
}

/// Rounds to 0.001, half-even (the precision of Mesos scalars).
fn milli(v: f64) -> Option<i64> {
    format_scalar(v).parse::<f64>().ok().map(|x| (x * 1000.0).round() as i64)
}

impl Constraint {
    /// Validates `[field, operator, value?]`. The error is Marathon's message.
    pub fn parse(field: &str, operator: &str, value: Option<&str>) -> Result<Constraint, String> {
        if field.is_empty() {
            return Err(messages::FIELD.to_owned());
        }
        let op = Operator::parse(operator).ok_or(messages::OPERATOR)?;
        let int = |v: Option<&str>| v.and_then(|v| v.parse::<i32>().ok()).map(i64::from);
        let mut pattern = None;
        let mut number = None;
        match op {
            Operator::Unique if value.is_some() => return Err(messages::UNIQUE.to_owned()),
            Operator::Unique | Operator::Cluster => {}
            Operator::GroupBy => {
                if value.is_some() {
                    number = Some(int(value).ok_or(messages::GROUP_BY)?);
                }
            }
            Operator::MaxPer => number = Some(int(value).ok_or(messages::MAX_PER)?),
            Operator::Like | Operator::Unlike => {
                let v = value.filter(|v| !v.is_empty()).ok_or(messages::REGEX_REQUIRED)?;
                pattern = Some(
                    Pattern::new(v).ok_or_else(|| format!("'{v}' {}", messages::REGEX_INVALID))?,
                );
            }
            Operator::Is => {
                let ok = value.is_some_and(|v| {
                    !v.is_empty()
                        && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"_/.-".contains(&b))
                });
                if !ok {
                    return Err(messages::IS.to_owned());
                }
            }
        }
        Ok(Constraint {
            field_name: field.to_owned(),
            field: Field::parse(field),
            operator: op,
            value: value.map(str::to_owned),
            pattern,
            number,
        })
    }

    /// The constraint as Marathon's JSON array elements.
    pub fn to_strings(&self) -> Vec<String> {
        let mut out = vec![self.field_name.clone(), self.operator.name().to_owned()];
        out.extend(self.value.clone());
        out
    }

    /// True when this constraint is satisfied by an agent whose field value
    /// is `v`, given where the app's instances are (`tally`).
    /// `known_values` is the number of distinct values of the field known
    /// this round (for `GROUP_BY` without a value).
    pub fn accepts(
        &self,
        v: Option<&str>,
        facts_value: Option<&AttributeValue>,
        tally: &Tally,
        known_values: usize,
    ) -> bool {
        let Some(v) = v else { return self.operator == Operator::Unlike };
        match self.operator {
            Operator::Like => self.pattern.as_ref().is_some_and(|p| p.matches(v)),
            Operator::Unlike => !self.pattern.as_ref().is_some_and(|p| p.matches(v)),
            Operator::Unique => tally.count(v) == 0,
            Operator::MaxPer => i64::from(tally.count(v)) < self.number.unwrap_or(0),
            Operator::Cluster => match (&self.value, tally.pinned()) {
                (Some(want), _) => v == want,
                (None, Some(pinned)) => v == pinned,
                (None, None) => true,
            },
            Operator::GroupBy => {
                let target = self.number.unwrap_or(known_values as i64);
                let here = tally.count(v);
                here == 0
                    || (tally.groups() as i64 >= target && here == tally.min_count().unwrap_or(0))
            }
            Operator::Is => {
                let want = self.value.as_deref().unwrap_or("");
                match facts_value {
                    Some(AttributeValue::Scalar(s)) => match want.parse::<f64>() {
                        Ok(w) if w.is_finite() => milli(*s) == milli(w),
                        _ => v == want,
                    },
                    _ => v == want,
                }
            }
        }
    }

    /// True when an agent (its hostname and facts) satisfies this
    /// constraint, given where the app's instances are.
    pub fn accepts_agent(
        &self,
        hostname: &str,
        facts: &AgentFacts,
        tally: &Tally,
        known_values: usize,
    ) -> bool {
        let raw = match &self.field {
            Field::Attribute(name) => facts.attributes.get(name).map(|a| a.value()),
            _ => None,
        };
        self.accepts(self.field.read(hostname, facts), raw, tally, known_values)
    }

    /// True when this constraint's verdict depends on where instances are
    /// (and can change as the round places more of them).
    pub fn counts_instances(&self) -> bool {
        matches!(
            self.operator,
            Operator::Unique | Operator::MaxPer | Operator::Cluster | Operator::GroupBy
        )
    }
}

/// Where an app's instances are, for one constraint's field: instances per
/// value. Instances on agents that lack the field are not counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    counts: BTreeMap<String, u32>,
    pinned: Option<String>,
}

impl Tally {
    /// Counts instances on these field values.
    pub fn new<'a>(values: impl IntoIterator<Item = Option<&'a str>>) -> Self {
        let mut t = Tally::default();
        for v in values.into_iter().flatten() {
            *t.counts.entry(v.to_owned()).or_default() += 1;
        }
        // CLUSTER without a value pins to where the app already is: the
        // value holding most of its instances (the smallest on a tie).
        let mut best: Option<(&String, u32)> = None;
        for (k, n) in &t.counts {
            if best.is_none_or(|(_, m)| *n > m) {
                best = Some((k, *n));
            }
        }
        t.pinned = best.map(|(k, _)| k.clone());
        t
    }

    /// Records one more instance on `v`.
    pub fn add(&mut self, v: Option<&str>) {
        if let Some(v) = v {
            *self.counts.entry(v.to_owned()).or_default() += 1;
            if self.pinned.is_none() {
                self.pinned = Some(v.to_owned());
            }
        }
    }

    /// Instances on `v`.
    pub fn count(&self, v: &str) -> u32 {
        self.counts.get(v).copied().unwrap_or(0)
    }

    /// The value `CLUSTER` without a value is pinned to.
    pub fn pinned(&self) -> Option<&str> {
        self.pinned.as_deref()
    }

    /// Values with at least one instance.
    pub fn groups(&self) -> usize {
        self.counts.len()
    }

    /// The fewest instances on a value that has any.
    pub fn min_count(&self) -> Option<u32> {
        self.counts.values().copied().min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(field: &str, op: &str, value: Option<&str>) -> String {
        Constraint::parse(field, op, value).expect_err("should be refused")
    }

    #[test]
    fn validation_follows_marathon_messages() {
        assert_eq!(err("", "UNIQUE", None), messages::FIELD);
        assert_eq!(err("a", "SOMETIMES", None), messages::OPERATOR);
        assert_eq!(err("a", "UNIQUE", Some("x")), messages::UNIQUE);
        assert_eq!(err("a", "GROUP_BY", Some("three")), messages::GROUP_BY);
        assert_eq!(err("a", "MAX_PER", None), messages::MAX_PER);
        assert_eq!(err("a", "MAX_PER", Some("1.5")), messages::MAX_PER);
        assert_eq!(err("a", "LIKE", None), messages::REGEX_REQUIRED);
        assert_eq!(err("a", "UNLIKE", Some("")), messages::REGEX_REQUIRED);
        assert_eq!(err("a", "LIKE", Some("rack-[")), "'rack-[' is not a valid regular expression");
        assert_eq!(err("a", "IS", Some("{a,b}")), messages::IS);
        assert_eq!(err("a", "IS", None), messages::IS);
        for (f, o, v) in [
            ("hostname", "UNIQUE", None),
            ("rack", "cluster", None),
            ("rack", "CLUSTER", Some("r1")),
            ("rack", "GROUP_BY", None),
            ("rack", "GROUP_BY", Some("3")),
            ("rack", "MAX_PER", Some("2")),
            ("rack", "LIKE", Some("rack-[1-3]")),
            ("@zone", "IS", Some("us-east-1a")),
            ("cpus", "IS", Some("4.5")),
        ] {
            let c = Constraint::parse(f, o, v).unwrap();
            assert_eq!(c.to_strings()[1], o.to_ascii_uppercase());
        }
    }

    /// Found by `fuzz/fuzz_targets/constraints.rs`: a value that is no
    /// regex by itself but closes Drover's anchoring group (`^(?:a)|(b)$`)
    /// was accepted, and then matched any value starting with `a`.
    #[test]
    fn like_values_must_be_regexes_by_themselves() {
        for v in ["a)|(b", "r[0-9]+)|(.*", "x)(?:y"] {
            assert_eq!(err("rack", "LIKE", Some(v)), format!("'{v}' {}", messages::REGEX_INVALID));
            assert_eq!(
                err("rack", "UNLIKE", Some(v)),
                format!("'{v}' {}", messages::REGEX_INVALID)
            );
        }
    }

    #[test]
    fn fields_read_hostname_domain_and_attributes() {
        let facts = AgentFacts::default()
            .with_domain("eu", "eu-1")
            .with_attribute("rack", AttributeValue::Text("r1".into()));
        let read = |f: &str| Field::parse(f).read("h1", &facts).map(str::to_owned);
        assert_eq!(read("hostname").as_deref(), Some("h1"));
        assert_eq!(read("@hostname").as_deref(), Some("h1"));
        assert_eq!(read("@region").as_deref(), Some("eu"));
        assert_eq!(read("@zone").as_deref(), Some("eu-1"));
        assert_eq!(read("rack").as_deref(), Some("r1"));
        assert_eq!(read("gpu"), None);
    }

    #[test]
    fn is_compares_scalars_to_a_thousandth() {
        let c = Constraint::parse("cpus", "IS", Some("4.0")).unwrap();
        let t = Tally::default();
        let accepts = |s: f64| {
            let v = AttributeValue::Scalar(s);
            c.accepts(Some(&format_scalar(s)), Some(&v), &t, 0)
        };
        assert!(accepts(4.0));
        assert!(accepts(4.0004));
        assert!(!accepts(4.001));
        let text = Constraint::parse("os", "IS", Some("4.0")).unwrap();
        assert!(!text.accepts(Some("4"), Some(&AttributeValue::Text("4".into())), &t, 0));
    }
}
