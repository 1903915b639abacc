//! Marathon placement constraints (`sched_core::constraints`): validated
//! with `Constraint::parse`, rendered back, and evaluated against an agent
//! and a tally of where an app's instances run.
//!
//! Input, one part a line:
//!
//! ```text
//! <field>
//! <operator>
//! <value>            (no third line: no value; an empty line: "")
//! host <hostname>    then any number of agent facts and instances:
//! region <name> | zone <name>
//! text <attribute> <text> | scalar <attribute> <number>
//! ranges <attribute> <begin>-<end>,... | set <attribute> <item>,...
//! at <field value> | at-none        (an instance of the app there)
//! known <number of field values known this round>
//! ```
//!
//! Checks: no panic; a valid constraint renders (`to_strings`) to one that
//! parses back equal; a `LIKE`/`UNLIKE` value accepted is a regular
//! expression by itself (Marathon compiles the value alone, so a value such
//! as `a)|(b` must not slip through by completing Drover's anchoring
//! group); evaluating it against any agent and tally does not panic.
#![no_main]

use drover_fuzz::Parts;
use libfuzzer_sys::fuzz_target;
use sched_core::constraints::{Constraint, Operator, Tally};
use sched_core::offer::{AgentFacts, AttributeValue};

fuzz_target!(|data: &[u8]| {
    let Some(mut parts) = Parts::new(data) else { return };
    let field = parts.line().unwrap_or("");
    let operator = parts.line().unwrap_or("");
    let value = parts.line();
    let Ok(constraint) = Constraint::parse(field, operator, value) else { return };

    let strings = constraint.to_strings();
    let back = Constraint::parse(&strings[0], &strings[1], strings.get(2).map(String::as_str));
    assert_eq!(back.as_ref(), Ok(&constraint), "to_strings() = {strings:?} reads back differently");
    if matches!(constraint.operator, Operator::Like | Operator::Unlike) {
        let value = value.unwrap_or_default();
        assert!(regex::Regex::new(value).is_ok(), "`{value}` is not a regular expression alone");
    }

    let mut hostname = "agent-1";
    let mut facts = AgentFacts::default();
    let mut placed: Vec<Option<&str>> = Vec::new();
    let mut known = 0usize;
    for line in parts.remaining() {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
        let list = |t: &str| -> Vec<String> { t.split(',').map(str::to_owned).collect() };
        match word {
            "host" => hostname = rest,
            "region" => facts.region = Some(rest.to_owned()),
            "zone" => facts.zone = Some(rest.to_owned()),
            "at" => placed.push(Some(rest)),
            "at-none" => placed.push(None),
            "known" => known = rest.parse().unwrap_or(0),
            "text" => facts = facts.with_attribute(name, AttributeValue::Text(text.to_owned())),
            "scalar" => {
                let v = text.parse().unwrap_or(0.0);
                facts = facts.with_attribute(name, AttributeValue::Scalar(v));
            }
            "set" => facts = facts.with_attribute(name, AttributeValue::Set(list(text))),
            "ranges" => {
                let ranges = text
                    .split(',')
                    .filter_map(|r| r.split_once('-'))
                    .filter_map(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
                    .collect();
                facts = facts.with_attribute(name, AttributeValue::Ranges(ranges));
            }
            _ => {}
        }
    }

    // The tally as the placement round builds it: instances already placed,
    // then one more on this agent after each acceptance.
    let mut tally = Tally::new(placed.iter().copied());
    let here = constraint.field.read(hostname, &facts);
    for _ in 0..3 {
        if !constraint.accepts_agent(hostname, &facts, &tally, known) {
            break;
        }
        tally.add(here);
    }
    let _ = (tally.pinned(), tally.groups(), tally.min_count(), constraint.counts_instances());
    if let Some(v) = here {
        let _ = tally.count(v);
    }
});
