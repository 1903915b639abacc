//! Golden and property tests of placement.
//!
//! Golden tests describe a round in a tiny text language and compare the
//! plan, rendered as text, with the expectation (`UPDATE_EXPECT=1 cargo
//! test -p sched-core` refreshes them):
//!
//! ```text
//! agent a1 host=h1 cpus=4 mem=4096 ports=31000-31009 region=eu zone=eu-1 attr.rack=r1 prod:cpus=2
//! app /web n=2 cpus=1 mem=128 ports=0,0 roles=*,prod c=hostname:UNIQUE c=rack:GROUP_BY:2
//! run /web a1
//! limit 2
//! ```
//!
//! - `agent`: one offer; `cpus`/`mem`/`disk`/`gpus`/`ports` are unreserved,
//!   `ROLE:cpus=...` are reserved for `ROLE`; `attr.NAME=VALUE` is an
//!   attribute, typed as Mesos types `--attributes` (a number is a scalar,
//!   `[a-b,...]` ranges, `{a,b}` a set, anything else text).
//! - `app`: `n` waiting instances (`/web.instance-0`, ...), each needing
//!   `cpus`/`mem`/`disk`/`gpus` and host `ports` (0 = any, else that port),
//!   using `roles` (default `*`), with constraints `c=field:OP[:value]`.
//! - `run`: a live instance of an app on an agent (what constraints count).
//! - `limit`: launches per offer (default 100).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use expect_test::{Expect, expect};
use proptest::prelude::*;

use super::*;
use crate::offer::{AttributeValue, Pool};

fn res(cpus: f64, mem: f64) -> Resources {
    Resources { cpus, mem, disk: 0.0, gpus: 0 }
}

fn parse_ports(v: &str) -> PortRanges {
    PortRanges::new(v.split(',').filter(|s| !s.is_empty()).map(|r| {
        let (a, b) = r.split_once('-').unwrap_or((r, r));
        (a.parse().unwrap(), b.parse().unwrap())
    }))
}

/// An attribute value typed as Mesos types `--attributes`.
fn attribute(v: &str) -> AttributeValue {
    if let Ok(x) = v.parse::<f64>() {
        AttributeValue::Scalar(x)
    } else if let Some(inner) = v.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        AttributeValue::Ranges(
            inner
                .split(',')
                .map(|r| {
                    let (a, b) = r.split_once('-').unwrap();
                    (a.parse().unwrap(), b.parse().unwrap())
                })
                .collect(),
        )
    } else if let Some(inner) = v.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
        AttributeValue::Set(inner.split(',').map(str::to_owned).collect())
    } else {
        AttributeValue::Text(v.to_owned())
    }
}

fn set_resource(r: &mut Resources, key: &str, v: &str) {
    match key {
        "cpus" => r.cpus = v.parse().unwrap(),
        "mem" => r.mem = v.parse().unwrap(),
        "disk" => r.disk = v.parse().unwrap(),
        "gpus" => r.gpus = v.parse().unwrap(),
        other => panic!("unknown resource {other}"),
    }
}

/// An app of a scenario: id, waiting instances, needs, ports, roles, constraints.
type ScenarioApp = (AppId, u32, Resources, Vec<PortRequest>, Vec<String>, Vec<Constraint>);

struct Scenario {
    offers: Vec<Offer>,
    apps: Vec<ScenarioApp>,
    running: Vec<(AppId, usize)>,
    limit: usize,
}

fn parse_scenario(text: &str) -> Scenario {
    let mut s = Scenario { offers: Vec::new(), apps: Vec::new(), running: Vec::new(), limit: 100 };
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut words = line.split_whitespace();
        match words.next().unwrap() {
            "agent" => {
                let name = words.next().unwrap();
                let mut host = name.to_owned();
                let mut facts = AgentFacts::default();
                let mut pools: BTreeMap<String, (Resources, PortRanges)> = BTreeMap::new();
                for w in words {
                    let (k, v) = w.split_once('=').unwrap();
                    let (role, key) = k.split_once(':').unwrap_or(("*", k));
                    match key {
                        "host" => host = v.to_owned(),
                        "region" => facts.region = Some(v.to_owned()),
                        "zone" => facts.zone = Some(v.to_owned()),
                        "ports" => pools.entry(role.to_owned()).or_default().1 = parse_ports(v),
                        _ if key.starts_with("attr.") => {
                            facts = facts.with_attribute(&key[5..], attribute(v))
                        }
                        _ => set_resource(&mut pools.entry(role.to_owned()).or_default().0, key, v),
                    }
                }
                let mut o = Offer::new(name, &format!("agent-{name}"), &host).with_facts(facts);
                for (role, (r, p)) in pools {
                    o.add(&role, r, p);
                }
                s.offers.push(o);
            }
            "app" => {
                let id = AppId::parse(words.next().unwrap()).unwrap();
                let (mut n, mut need, mut ports, mut roles, mut cs) =
                    (1, Resources::default(), Vec::new(), vec!["*".to_owned()], Vec::new());
                for w in words {
                    let (k, v) = w.split_once('=').unwrap();
                    match k {
                        "n" => n = v.parse().unwrap(),
                        "ports" => {
                            ports = v
                                .split(',')
                                .map(|p| match p.parse::<u32>().unwrap() {
                                    0 => None,
                                    p => Some(p),
                                })
                                .collect();
                        }
                        "roles" => roles = v.split(',').map(str::to_owned).collect(),
                        "c" => {
                            let parts: Vec<&str> = v.splitn(3, ':').collect();
                            cs.push(
                                Constraint::parse(parts[0], parts[1], parts.get(2).copied())
                                    .unwrap(),
                            );
                        }
                        _ => set_resource(&mut need, k, v),
                    }
                }
                s.apps.push((id, n, need, ports, roles, cs));
            }
            "run" => {
                let id = AppId::parse(words.next().unwrap()).unwrap();
                let agent = words.next().unwrap();
                let at = s.offers.iter().position(|o| o.id == agent).expect("run on a known agent");
                s.running.push((id, at));
            }
            "limit" => s.limit = words.next().unwrap().parse().unwrap(),
            other => panic!("unknown line {other}"),
        }
    }
    s
}

fn requests_of(s: &Scenario) -> Vec<Request<'_>> {
    s.apps
        .iter()
        .map(|(id, n, need, ports, roles, cs)| Request {
            app: id.clone(),
            instances: (0..*n).map(|i| InstanceId::new(id, &i.to_string())).collect(),
            task: *need,
            executor: Resources::default(),
            ports: ports.clone(),
            roles: roles.clone(),
            constraints: cs.clone(),
            placed: s
                .running
                .iter()
                .filter(|(app, _)| app == id)
                .map(|(_, at)| Placed {
                    hostname: &s.offers[*at].hostname,
                    facts: &s.offers[*at].facts,
                })
                .collect(),
        })
        .collect()
}

fn share_text(offer: &Offer, shares: &[Share]) -> String {
    let parts: Vec<String> = shares
        .iter()
        .map(|s| {
            let r = &s.resources;
            let mut t = format!("{}:", offer.pools[s.pool].role);
            for (name, v) in
                [("cpus", r.cpus), ("mem", r.mem), ("disk", r.disk), ("gpus", f64::from(r.gpus))]
            {
                if v > 0.0 {
                    write!(t, " {name}={v}").unwrap();
                }
            }
            if !s.ports.is_empty() {
                write!(t, " ports={:?}", s.ports).unwrap();
            }
            t
        })
        .collect();
    parts.join("; ")
}

/// Places the scenario and renders the plan: one line per launch (with its
/// host ports, and where its resources come from when not only
/// unreserved), then one report line per app.
fn check(scenario: &str, want: Expect) {
    let s = parse_scenario(scenario);
    let requests = requests_of(&s);
    let pipeline = default_pipeline(&PlacementConfig { max_launches_per_offer: s.limit });
    let plan = place(&s.offers, &requests, &pipeline);
    let mut out = String::new();
    for p in &plan.placements {
        let offer = &s.offers[p.offer];
        write!(out, "launch {} -> {}", p.instance, offer.id).unwrap();
        if !p.host_ports.is_empty() {
            write!(out, " ports={:?}", p.host_ports).unwrap();
        }
        if p.task.iter().any(|sh| offer.pools[sh.pool].role != "*") {
            write!(out, " [{}]", share_text(offer, &p.task)).unwrap();
        }
        out.push('\n');
    }
    for (app, r) in &plan.reports {
        let reasons: Vec<String> =
            r.rejected.iter().map(|(k, v)| format!(" {}={v}", k.name())).collect();
        writeln!(
            out,
            "report {app} processed={} used={}{}",
            r.offers_processed,
            r.offers_used,
            reasons.concat()
        )
        .unwrap();
    }
    want.assert_eq(&out);
}

// ----- resources ---------------------------------------------------------

#[test]
fn packs_several_instances_into_one_offer_without_overcommitting() {
    check(
        "agent a1 cpus=2.5 mem=1024
         app /web n=3 cpus=1 mem=128",
        expect![[r#"
            launch web.instance-0 -> a1
            launch web.instance-1 -> a1
            report /web processed=1 used=1
        "#]],
    );
}

#[test]
fn spills_over_to_the_next_offer() {
    check(
        "agent a1 cpus=1 mem=1024
         agent a2 cpus=4 mem=1024
         app /web n=3 cpus=1 mem=128",
        expect![[r#"
            launch web.instance-0 -> a1
            launch web.instance-1 -> a2
            launch web.instance-2 -> a2
            report /web processed=2 used=2
        "#]],
    );
}

#[test]
fn rejections_name_the_first_missing_resource() {
    check(
        "agent a1 cpus=0.5 mem=64
         agent a2 cpus=8 mem=64
         agent a3 cpus=8 mem=1024 gpus=0
         app /big cpus=1 mem=128 gpus=1
         app /small cpus=0.1 mem=32",
        expect![[r#"
            launch small.instance-0 -> a1
            report /big processed=3 used=0 InsufficientCpus=1 InsufficientMemory=1 InsufficientGpus=1
            report /small processed=1 used=1
        "#]],
    );
}

#[test]
fn the_launch_limit_caps_each_offer() {
    check(
        "agent a1 cpus=100 mem=100000
         agent a2 cpus=100 mem=100000
         app /web n=3 cpus=0.1 mem=1
         limit 2",
        expect![[r#"
            launch web.instance-0 -> a1
            launch web.instance-1 -> a1
            launch web.instance-2 -> a2
            report /web processed=2 used=2
        "#]],
    );
}

#[test]
fn exact_fit_is_accepted_despite_float_rounding() {
    check(
        "agent a1 cpus=0.3 mem=96
         app /web n=3 cpus=0.1 mem=32",
        expect![[r#"
            launch web.instance-0 -> a1
            launch web.instance-1 -> a1
            launch web.instance-2 -> a1
            report /web processed=1 used=1
        "#]],
    );
}

// ----- ports -------------------------------------------------------------

#[test]
fn dynamic_ports_are_the_lowest_free_and_distinct_across_instances() {
    check(
        "agent a1 cpus=8 mem=1024 ports=31000-31009
         app /web n=3 cpus=0.1 mem=1 ports=0,0",
        expect![[r#"
            launch web.instance-0 -> a1 ports=[31000, 31001]
            launch web.instance-1 -> a1 ports=[31002, 31003]
            launch web.instance-2 -> a1 ports=[31004, 31005]
            report /web processed=1 used=1
        "#]],
    );
}

#[test]
fn required_ports_are_taken_literally_once_per_offer() {
    check(
        "agent a1 cpus=8 mem=1024 ports=31000-31009
         agent a2 cpus=8 mem=1024 ports=31000-31009
         app /web n=3 cpus=0.1 mem=1 ports=31005,0",
        expect![[r#"
            launch web.instance-0 -> a1 ports=[31005, 31000]
            launch web.instance-1 -> a2 ports=[31005, 31000]
            report /web processed=2 used=2
        "#]],
    );
}

#[test]
fn a_required_port_the_offer_lacks_is_insufficient_ports() {
    check(
        "agent a1 cpus=8 mem=1024 ports=31000-31009
         app /web cpus=0.1 mem=1 ports=80",
        expect![[r#"
            report /web processed=1 used=0 InsufficientPorts=1
        "#]],
    );
}

#[test]
fn dynamic_ports_run_out() {
    check(
        "agent a1 cpus=8 mem=1024 ports=31000-31002
         agent a2 cpus=8 mem=1024
         app /web n=2 cpus=0.1 mem=1 ports=0,0",
        expect![[r#"
            launch web.instance-0 -> a1 ports=[31000, 31001]
            report /web processed=2 used=1 InsufficientPorts=1
        "#]],
    );
}

// ----- roles -------------------------------------------------------------

#[test]
fn an_app_accepting_only_unreserved_resources_skips_reserved_offers() {
    check(
        "agent a1 prod:cpus=8 prod:mem=1024
         agent a2 cpus=1 mem=128 prod:cpus=8 prod:mem=1024
         app /web n=2 cpus=1 mem=128",
        expect![[r#"
            launch web.instance-0 -> a2
            report /web processed=2 used=1 UnfulfilledRole=1
        "#]],
    );
}

#[test]
fn an_app_accepting_a_reserved_role_uses_its_reservation() {
    check(
        "agent a1 prod:cpus=2 prod:mem=256 prod:ports=5000-5001
         app /web n=3 cpus=1 mem=128 ports=0 roles=prod",
        expect![[r#"
            launch web.instance-0 -> a1 ports=[5000] [prod: cpus=1 mem=128 ports=[5000]]
            launch web.instance-1 -> a1 ports=[5001] [prod: cpus=1 mem=128 ports=[5001]]
            report /web processed=1 used=1
        "#]],
    );
}

#[test]
fn a_reserved_role_the_app_does_not_accept_is_unfulfilled_role() {
    check(
        "agent a1 dev:cpus=8 dev:mem=1024
         app /web cpus=1 mem=128 roles=prod",
        expect![[r#"
            report /web processed=1 used=0 UnfulfilledRole=1
        "#]],
    );
}

#[test]
fn unreserved_resources_are_used_before_reserved_ones() {
    check(
        "agent a1 cpus=1.5 mem=1024 ports=31000 prod:cpus=4 prod:mem=1024 prod:ports=5000-5009
         app /web n=2 cpus=1 mem=512 ports=0,0 roles=*,prod",
        expect![[r#"
            launch web.instance-0 -> a1 ports=[31000, 5000] [*: cpus=1 mem=512 ports=[31000]; prod: ports=[5000]]
            launch web.instance-1 -> a1 ports=[5001, 5002] [*: cpus=0.5 mem=512; prod: cpus=0.5 ports=[5001, 5002]]
            report /web processed=1 used=1
        "#]],
    );
}

// ----- constraints -------------------------------------------------------

#[test]
fn unique_hostname_puts_one_instance_per_host() {
    check(
        "agent a1 cpus=8 mem=1024
         agent a2 cpus=8 mem=1024
         agent a3 host=a1 cpus=8 mem=1024
         app /web n=3 cpus=1 mem=1 c=hostname:UNIQUE",
        expect![[r#"
            launch web.instance-0 -> a1
            launch web.instance-1 -> a2
            report /web processed=3 used=2 UnfulfilledConstraint=1
        "#]],
    );
}

#[test]
fn unique_counts_running_instances_and_refuses_agents_without_the_attribute() {
    check(
        "agent a1 cpus=8 mem=1024 attr.rack=r1
         agent a2 cpus=8 mem=1024 attr.rack=r2
         agent a3 cpus=8 mem=1024
         app /web n=2 cpus=1 mem=1 c=rack:UNIQUE
         run /web a1",
        expect![[r#"
            launch web.instance-0 -> a2
            report /web processed=3 used=1 UnfulfilledConstraint=2
        "#]],
    );
}

#[test]
fn cluster_with_a_value_uses_only_agents_with_that_value() {
    check(
        "agent a1 cpus=8 mem=1024 attr.rack=r1
         agent a2 cpus=8 mem=1024 attr.rack=r2
         app /web n=2 cpus=1 mem=1 c=rack:CLUSTER:r2",
        expect![[r#"
            launch web.instance-0 -> a2
            launch web.instance-1 -> a2
            report /web processed=2 used=1 UnfulfilledConstraint=1
        "#]],
    );
}

#[test]
fn cluster_without_a_value_pins_to_the_first_placement() {
    check(
        "agent a1 cpus=1 mem=1024 attr.rack=r1
         agent a2 cpus=1 mem=1024 attr.rack=r2
         agent a3 cpus=1 mem=1024 attr.rack=r1
         app /web n=3 cpus=1 mem=1 c=rack:CLUSTER",
        expect![[r#"
            launch web.instance-0 -> a1
            launch web.instance-1 -> a3
            report /web processed=3 used=2 UnfulfilledConstraint=1
        "#]],
    );
}

#[test]
fn cluster_without_a_value_follows_running_instances() {
    check(
        "agent a1 cpus=8 mem=1024 host=h1
         agent a2 cpus=8 mem=1024 host=h2
         app /web n=2 cpus=1 mem=1 c=hostname:CLUSTER
         run /web a2",
        expect![[r#"
            launch web.instance-0 -> a2
            launch web.instance-1 -> a2
            report /web processed=2 used=1 UnfulfilledConstraint=1
        "#]],
    );
}

#[test]
fn group_by_with_a_value_spreads_over_that_many_values() {
    check(
        "agent a1 cpus=8 mem=1024 attr.rack=r1
         agent a2 cpus=8 mem=1024 attr.rack=r1
         agent a3 cpus=8 mem=1024 attr.rack=r2
         app /web n=4 cpus=1 mem=1 c=rack:GROUP_BY:2",
        expect![[r#"
            launch web.instance-0 -> a1
            launch web.instance-3 -> a1
            launch web.instance-1 -> a3
            launch web.instance-2 -> a3
            report /web processed=3 used=2 UnfulfilledConstraint=1
        "#]],
    );
}

#[test]
fn group_by_with_a_value_waits_for_missing_values() {
    check(
        "agent a1 cpus=8 mem=1024 attr.rack=r1
         agent a2 cpus=8 mem=1024 attr.rack=r2
         app /web n=4 cpus=1 mem=1 c=rack:GROUP_BY:3",
        expect![[r#"
            launch web.instance-0 -> a1
            launch web.instance-1 -> a2
            report /web processed=2 used=2
        "#]],
    );
}

#[test]
fn group_by_without_a_value_spreads_evenly_over_known_values() {
    check(
        "agent a1 cpus=8 mem=1024 attr.rack=r1
         agent a2 cpus=8 mem=1024 attr.rack=r2
         agent a3 cpus=8 mem=1024 attr.rack=r3
         app /web n=7 cpus=1 mem=1 c=rack:GROUP_BY
         run /web a1",
        expect![[r#"
            launch web.instance-3 -> a1
            launch web.instance-0 -> a2
            launch web.instance-4 -> a2
            launch web.instance-5 -> a2
            launch web.instance-1 -> a3
            launch web.instance-2 -> a3
            launch web.instance-6 -> a3
            report /web processed=3 used=3
        "#]],
    );
}

#[test]
fn like_and_unlike_match_the_whole_value() {
    check(
        "agent a1 cpus=1 mem=1024 attr.rack=rack-1
         agent a2 cpus=8 mem=1024 attr.rack=rack-12
         agent a3 cpus=8 mem=1024
         app /like cpus=1 mem=1 n=2 c=rack:LIKE:rack-[1-3]
         app /unlike cpus=1 mem=1 n=2 c=rack:UNLIKE:rack-1",
        expect![[r#"
            launch like.instance-0 -> a1
            launch unlike.instance-0 -> a2
            launch unlike.instance-1 -> a2
            report /like processed=3 used=1 UnfulfilledConstraint=2
            report /unlike processed=2 used=1 UnfulfilledConstraint=1
        "#]],
    );
}

#[test]
fn unlike_accepts_agents_without_the_attribute() {
    check(
        "agent a1 cpus=8 mem=1024 attr.rack=rack-1
         agent a2 cpus=8 mem=1024
         app /web cpus=1 mem=1 c=rack:UNLIKE:rack-.*",
        expect![[r#"
            launch web.instance-0 -> a2
            report /web processed=2 used=1 UnfulfilledConstraint=1
        "#]],
    );
}

#[test]
fn like_compares_sets_and_ranges_as_marathon_formats_them() {
    check(
        r"agent a1 cpus=8 mem=1024 attr.disks={ssd,hdd}
          agent a2 cpus=8 mem=1024 attr.disks={hdd} attr.slots=[300-400,100-200]
          app /ssd cpus=1 mem=1 c=disks:LIKE:\{.*ssd.*\}
          app /slots cpus=1 mem=1 c=slots:LIKE:\[100-200,300-400\]",
        expect![[r#"
            launch ssd.instance-0 -> a1
            launch slots.instance-0 -> a2
            report /slots processed=2 used=1 UnfulfilledConstraint=1
            report /ssd processed=1 used=1
        "#]],
    );
}

#[test]
fn max_per_caps_instances_per_value_within_one_round() {
    check(
        "agent a1 cpus=8 mem=1024 attr.rack=r1
         agent a2 cpus=8 mem=1024 attr.rack=r1
         agent a3 cpus=8 mem=1024 attr.rack=r2
         app /web n=5 cpus=1 mem=1 c=rack:MAX_PER:2
         run /web a1",
        expect![[r#"
            launch web.instance-0 -> a1
            launch web.instance-1 -> a3
            launch web.instance-2 -> a3
            report /web processed=3 used=2 UnfulfilledConstraint=1
        "#]],
    );
}

#[test]
fn is_matches_text_attributes_exactly() {
    check(
        "agent a1 cpus=8 mem=1024 attr.os=centos7
         agent a2 cpus=8 mem=1024 attr.os=ubuntu
         app /web cpus=1 mem=1 c=os:IS:ubuntu",
        expect![[r#"
            launch web.instance-0 -> a2
            report /web processed=2 used=1 UnfulfilledConstraint=1
        "#]],
    );
}

#[test]
fn is_compares_scalar_attributes_to_a_thousandth() {
    check(
        "agent a1 cpus=8 mem=1024 attr.generation=4.0004
         agent a2 cpus=8 mem=1024 attr.generation=4.01
         app /four cpus=1 mem=1 c=generation:IS:4
         app /precise cpus=1 mem=1 c=generation:IS:4.010",
        expect![[r#"
            launch four.instance-0 -> a1
            launch precise.instance-0 -> a2
            report /four processed=1 used=1
            report /precise processed=2 used=1 UnfulfilledConstraint=1
        "#]],
    );
}

#[test]
fn hostname_region_and_zone_fields_read_the_offer() {
    check(
        "agent a1 host=web-1 cpus=8 mem=1024 region=eu zone=eu-1
         agent a2 host=web-2 cpus=8 mem=1024 region=eu zone=eu-2
         agent a3 host=db-1 cpus=8 mem=1024 region=us zone=us-1
         app /host cpus=1 mem=1 c=@hostname:IS:db-1
         app /region cpus=1 mem=1 n=3 c=@region:IS:eu c=@zone:UNIQUE
         app /zone cpus=1 mem=1 c=@zone:LIKE:us-.*",
        expect![[r#"
            launch region.instance-0 -> a1
            launch region.instance-1 -> a2
            launch host.instance-0 -> a3
            launch zone.instance-0 -> a3
            report /host processed=3 used=1 UnfulfilledConstraint=2
            report /region processed=3 used=2 UnfulfilledConstraint=1
            report /zone processed=3 used=1 UnfulfilledConstraint=2
        "#]],
    );
}

#[test]
fn constraints_are_reported_before_resources() {
    check(
        "agent a1 cpus=0.1 mem=1 attr.rack=r1
         app /web cpus=1 mem=1 c=rack:IS:r2",
        expect![[r#"
            report /web processed=1 used=0 UnfulfilledConstraint=1
        "#]],
    );
}

// ----- properties --------------------------------------------------------

const RACKS: [&str; 3] = ["r1", "r2", "r3"];

fn arb_offer() -> impl Strategy<Value = Offer> {
    (
        (0u32..50, 0u32..80, 0u32..4, 0u32..7),
        proptest::option::of((0u32..30, 0u32..40, 0u32..5)),
        0usize..5,
        proptest::option::of(0usize..3),
    )
        .prop_map(|((c, m, g, p), prod, host, rack)| {
            let mut facts = AgentFacts::default();
            if let Some(r) = rack {
                facts = facts.with_attribute("rack", AttributeValue::Text(RACKS[r].into()));
            }
            let mut o = Offer::new("o", "a", &format!("h{host}")).with_facts(facts).with_resources(
                "*",
                Resources {
                    cpus: f64::from(c) / 10.0,
                    mem: f64::from(m) * 16.0,
                    disk: 0.0,
                    gpus: g,
                },
                PortRanges::new([(31000, 31000 + p)]),
            );
            if let Some((c, m, p)) = prod {
                o.add(
                    "prod",
                    Resources {
                        cpus: f64::from(c) / 10.0,
                        mem: f64::from(m) * 16.0,
                        disk: 0.0,
                        gpus: 0,
                    },
                    PortRanges::new([(5000, 5000 + p)]),
                );
            }
            o
        })
}

fn arb_constraint() -> impl Strategy<Value = Constraint> {
    let field = prop_oneof![Just("hostname"), Just("rack")];
    let op = prop_oneof![
        Just(("UNIQUE", None)),
        Just(("CLUSTER", None)),
        Just(("CLUSTER", Some("r2"))),
        Just(("GROUP_BY", None)),
        Just(("GROUP_BY", Some("2"))),
        Just(("MAX_PER", Some("2"))),
        Just(("LIKE", Some("r[12]|h[0-2]"))),
        Just(("UNLIKE", Some("r1|h1"))),
        Just(("IS", Some("r3"))),
    ];
    (field, op).prop_map(|(f, (o, v))| Constraint::parse(f, o, v).unwrap())
}

/// A scenario: offers, and per app (instances, cpus, mem, gpus, ports,
/// roles, constraints, agents its live instances run on).
type Apps = Vec<(u32, u32, u32, u32, usize, u8, Vec<Constraint>, Vec<usize>)>;

fn arb_scenario() -> impl Strategy<Value = (Vec<Offer>, Apps)> {
    (
        proptest::collection::vec(arb_offer(), 0..6),
        proptest::collection::vec(
            (
                1u32..6,
                1u32..20,
                1u32..30,
                0u32..2,
                0usize..3,
                0u8..3,
                proptest::collection::vec(arb_constraint(), 0..3),
                proptest::collection::vec(0usize..6, 0..3),
            ),
            0..5,
        ),
    )
}

fn requests_for<'a>(offers: &'a [Offer], apps: &Apps) -> Vec<Request<'a>> {
    apps.iter()
        .enumerate()
        .map(|(i, (n, c, m, g, ports, roles, cs, running))| {
            let app = AppId::parse(&format!("/app{i}")).unwrap();
            Request {
                instances: (0..*n).map(|k| InstanceId::new(&app, &k.to_string())).collect(),
                app,
                task: Resources {
                    cpus: f64::from(*c) / 10.0,
                    mem: f64::from(*m) * 16.0,
                    disk: 0.0,
                    gpus: *g,
                },
                executor: res(0.01, 8.0),
                ports: vec![None; *ports],
                roles: match roles {
                    0 => vec!["*".into()],
                    1 => vec!["prod".into()],
                    _ => vec!["*".into(), "prod".into()],
                },
                constraints: cs.clone(),
                placed: running
                    .iter()
                    .filter_map(|r| offers.get(*r))
                    .map(|o| Placed { hostname: &o.hostname, facts: &o.facts })
                    .collect(),
            }
        })
        .collect()
}

fn sum_shares<'p>(shares: impl Iterator<Item = &'p Share>) -> Resources {
    shares.fold(Resources::default(), |acc, s| acc.plus(&s.resources))
}

proptest! {
    /// Property: an offer is never overcommitted. For every role's pool,
    /// the launches on it take no more than the pool has, never share a
    /// host port, and only take ports the pool has; every launch takes
    /// exactly what its task and executor need, only from roles its app
    /// accepts.
    #[test]
    fn an_offer_is_never_overcommitted((offers, apps) in arb_scenario()) {
        let requests = requests_for(&offers, &apps);
        let plan = place(&offers, &requests, &default_pipeline(&PlacementConfig::default()));
        for (i, o) in offers.iter().enumerate() {
            let on: Vec<&Placement> = plan.placements.iter().filter(|p| p.offer == i).collect();
            for (pi, pool) in o.pools.iter().enumerate() {
                let shares = || on.iter().flat_map(|p| p.task.iter().chain(&p.executor)).filter(|s| s.pool == pi);
                let used = sum_shares(shares());
                prop_assert!(used.cpus <= pool.resources.cpus + 1e-3, "{used:?} > {pool:?}");
                prop_assert!(used.mem <= pool.resources.mem + 1e-3, "{used:?} > {pool:?}");
                prop_assert!(used.gpus <= pool.resources.gpus);
                let mut ports: Vec<u32> = shares().flat_map(|s| s.ports.clone()).collect();
                prop_assert!(ports.iter().all(|p| pool.ports.contains(*p)));
                let n = ports.len();
                ports.sort_unstable();
                ports.dedup();
                prop_assert_eq!(ports.len(), n, "a port was given twice");
            }
            for p in &on {
                let r = requests.iter().find(|r| r.app == p.app).unwrap();
                let (task, exec) = (sum_shares(p.task.iter()), sum_shares(p.executor.iter()));
                prop_assert!((task.cpus - r.task.cpus).abs() < 1e-3 && (task.mem - r.task.mem).abs() < 1e-3);
                prop_assert!((exec.cpus - r.executor.cpus).abs() < 1e-3 && task.gpus == r.task.gpus);
                let task_ports: Vec<u32> = p.task.iter().flat_map(|s| s.ports.clone()).collect();
                prop_assert_eq!(task_ports.len(), p.host_ports.len());
                for s in p.task.iter().chain(&p.executor) {
                    prop_assert!(r.roles.contains(&o.pools[s.pool].role));
                }
            }
        }
    }

    /// Property: a placed instance satisfies its constraints, given where
    /// its app's instances already were (live ones and those placed before
    /// it in the round): UNIQUE values hold one instance, MAX_PER values at
    /// most N, CLUSTER keeps one value, LIKE/UNLIKE/IS match, and no
    /// constraint but UNLIKE places on an agent lacking the field.
    #[test]
    fn a_placed_instance_satisfies_its_constraints((offers, apps) in arb_scenario()) {
        let requests = requests_for(&offers, &apps);
        let plan = place(&offers, &requests, &default_pipeline(&PlacementConfig::default()));
        for r in &requests {
            let mine: Vec<&Offer> = plan.placements.iter().filter(|p| p.app == r.app).map(|p| &offers[p.offer]).collect();
            for c in &r.constraints {
                let before: Vec<Option<&str>> = r.placed.iter().map(|p| c.field.read(p.hostname, p.facts)).collect();
                let new: Vec<Option<&str>> = mine.iter().map(|o| c.field.read(&o.hostname, &o.facts)).collect();
                let count = |v: &str| before.iter().chain(&new).filter(|x| **x == Some(v)).count();
                for (o, v) in mine.iter().zip(&new) {
                    let Some(v) = v else {
                        prop_assert_eq!(c.operator, Operator::Unlike, "{:?} placed on an agent without {:?}", c, c.field);
                        continue;
                    };
                    let want = c.value.as_deref();
                    match c.operator {
                        Operator::Unique => {
                            prop_assert_eq!(count(v), 1, "{:?}: {} twice", c, v);
                        }
                        Operator::MaxPer => {
                            prop_assert!(count(v) <= 2, "{:?}: {} has {}", c, v, count(v));
                        }
                        Operator::Cluster => match want {
                            Some(w) => prop_assert_eq!(*v, w),
                            None => prop_assert!(new.iter().all(|x| *x == Some(*v))),
                        },
                        Operator::Like | Operator::Unlike | Operator::Is => {
                            prop_assert!(c.accepts_agent(&o.hostname, &o.facts, &Tally::default(), 0));
                        }
                        Operator::GroupBy => {}
                    }
                }
            }
        }
    }

    /// Property: a rejection always carries a reason. Every offer placement
    /// looked at for an app either took one of its instances or is counted
    /// under a reason, and an instance left unplaced was offered every
    /// offer.
    #[test]
    fn a_rejection_always_carries_a_reason((offers, apps) in arb_scenario()) {
        let requests = requests_for(&offers, &apps);
        let plan = place(&offers, &requests, &default_pipeline(&PlacementConfig::default()));
        for r in &requests {
            let report = plan.reports.get(&r.app).cloned().unwrap_or_default();
            let rejected: u32 = report.rejected.values().sum();
            prop_assert_eq!(report.offers_processed, report.offers_used + rejected);
            let placed = plan.placements.iter().filter(|p| p.app == r.app).count();
            if placed < r.instances.len() {
                prop_assert_eq!(report.offers_processed as usize, offers.len());
            }
        }
    }

    /// Property: no instance is placed twice, and only requested ones are placed.
    #[test]
    fn places_each_instance_at_most_once((offers, apps) in arb_scenario()) {
        let requests = requests_for(&offers, &apps);
        let plan = place(&offers, &requests, &default_pipeline(&PlacementConfig::default()));
        let mut ids: Vec<_> = plan.placements.iter().map(|p| p.instance.clone()).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        prop_assert_eq!(ids.len(), n);
        prop_assert!(plan.placements.iter().all(|p| requests.iter().any(|r| r.app == p.app && r.instances.contains(&p.instance))));
    }

    /// Property: without constraints, an instance left unplaced could not
    /// fit in what any offer's accepted pools had left.
    #[test]
    fn unplaced_instances_did_not_fit((offers, mut apps) in arb_scenario()) {
        for a in &mut apps {
            a.6.clear();
        }
        let requests = requests_for(&offers, &apps);
        let plan = place(&offers, &requests, &default_pipeline(&PlacementConfig::default()));
        let mut views: Vec<OfferView<'_>> = offers.iter().map(OfferView::new).collect();
        for p in &plan.placements {
            for s in p.task.iter().chain(&p.executor) {
                let left = &mut views[p.offer].left[s.pool];
                left.resources = left.resources.minus(&s.resources);
                left.ports = left.ports.without(&s.ports);
            }
        }
        for r in &requests {
            let placed = plan.placements.iter().filter(|p| p.app == r.app).count();
            if placed == r.instances.len() {
                continue;
            }
            let need = r.need();
            for v in &views {
                let pools: Vec<usize> = (0..v.offer.pools.len()).filter(|p| r.roles.contains(&v.offer.pools[*p].role)).collect();
                let have = pools.iter().fold(Resources::default(), |acc, p| acc.plus(&v.left[*p].resources));
                let fits = !pools.is_empty()
                    && need.cpus <= have.cpus + 1e-6 && need.mem <= have.mem + 1e-6 && need.gpus <= have.gpus
                    && v.assign_ports(&pools, &r.ports).is_some();
                prop_assert!(!fits, "{:?} would fit in {:?}", need, have);
            }
        }
    }

    /// Property: placement is deterministic.
    #[test]
    fn placement_is_deterministic((offers, apps) in arb_scenario()) {
        let requests = requests_for(&offers, &apps);
        let p = default_pipeline(&PlacementConfig::default());
        prop_assert_eq!(place(&offers, &requests, &p), place(&offers, &requests, &p));
    }
}

#[test]
fn pools_are_used_unreserved_first_whatever_their_order() {
    let offer = Offer {
        pools: vec![
            Pool { role: "prod".into(), resources: res(4.0, 64.0), ports: PortRanges::default() },
            Pool { role: "*".into(), resources: res(1.0, 64.0), ports: PortRanges::default() },
        ],
        ..Offer::new("o", "a", "h")
    };
    let app = AppId::parse("/a").unwrap();
    let request = Request {
        instances: vec![InstanceId::new(&app, "0")],
        app,
        task: res(2.0, 32.0),
        executor: Resources::default(),
        ports: vec![],
        roles: vec!["*".into(), "prod".into()],
        constraints: vec![],
        placed: vec![],
    };
    let plan = place(
        std::slice::from_ref(&offer),
        &[request],
        &default_pipeline(&PlacementConfig::default()),
    );
    let pools: Vec<(usize, f64)> =
        plan.placements[0].task.iter().map(|s| (s.pool, s.resources.cpus)).collect();
    assert_eq!(pools, vec![(1, 1.0), (0, 1.0)]);
}
