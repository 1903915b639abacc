//! Golden and property tests of placement.

use std::fmt::Write as _;

use expect_test::{Expect, expect};
use proptest::prelude::*;

use super::*;

fn res(cpus: f64, mem: f64) -> Resources {
    Resources { cpus, mem, disk: 0.0, gpus: 0 }
}

fn offer(id: &str, cpus: f64, mem: f64) -> Offer {
    Offer {
        id: id.into(),
        agent_id: format!("agent-{id}"),
        hostname: format!("host-{id}"),
        resources: res(cpus, mem),
        ports: PortRanges::new([(31000, 31009)]),
        ignored_resources: 0,
    }
}

fn req(app: &str, n: u32, cpus: f64, mem: f64) -> Vec<Request> {
    let app_id = AppId::parse(app).unwrap();
    (0..n)
        .map(|i| Request {
            instance: InstanceId::new(&app_id, &format!("u{i}")),
            app: app_id.clone(),
            need: res(cpus, mem),
            ports: vec![],
        })
        .collect()
}

/// Renders a plan as text: one line per placement, then the reports.
fn check(offers: &[Offer], requests: &[Request], max_per_offer: usize, want: Expect) {
    let pipeline = default_pipeline(&PlacementConfig { max_launches_per_offer: max_per_offer });
    let plan = place(offers, requests, &pipeline);
    let mut out = String::new();
    for p in &plan.placements {
        writeln!(out, "launch {} -> {}", p.request.instance, offers[p.offer].id).unwrap();
    }
    for (app, r) in &plan.reports {
        let reasons: Vec<String> =
            r.rejected.iter().map(|(k, v)| format!("{}={v}", k.name())).collect();
        writeln!(
            out,
            "report {app} processed={} used={} {}",
            r.offers_processed,
            r.offers_used,
            reasons.join(" ")
        )
        .unwrap();
    }
    want.assert_eq(&out);
}

#[test]
fn packs_several_instances_into_one_offer_without_overcommitting() {
    check(
        &[offer("o1", 2.5, 1024.0)],
        &req("/web", 3, 1.0, 128.0),
        100,
        expect![[r#"
            launch web.instance-u0 -> o1
            launch web.instance-u1 -> o1
            report /web processed=1 used=1 
        "#]],
    );
}

#[test]
fn spills_over_to_the_next_offer() {
    check(
        &[offer("o1", 1.0, 1024.0), offer("o2", 4.0, 1024.0)],
        &req("/web", 3, 1.0, 128.0),
        100,
        expect![[r#"
            launch web.instance-u0 -> o1
            launch web.instance-u1 -> o2
            launch web.instance-u2 -> o2
            report /web processed=2 used=2 
        "#]],
    );
}

#[test]
fn rejections_name_the_first_missing_resource() {
    check(
        &[offer("o1", 0.5, 64.0), offer("o2", 8.0, 64.0)],
        &[req("/big", 1, 1.0, 128.0), req("/small", 1, 0.1, 32.0)].concat(),
        100,
        expect![[r#"
            launch small.instance-u0 -> o1
            report /big processed=2 used=0 InsufficientCpus=1 InsufficientMemory=1
            report /small processed=1 used=1 
        "#]],
    );
}

#[test]
fn the_launch_limit_caps_each_offer() {
    check(
        &[offer("o1", 100.0, 100_000.0), offer("o2", 100.0, 100_000.0)],
        &req("/web", 3, 0.1, 1.0),
        2,
        expect![[r#"
            launch web.instance-u0 -> o1
            launch web.instance-u1 -> o1
            launch web.instance-u2 -> o2
            report /web processed=2 used=2 
        "#]],
    );
}

fn with_ports(mut reqs: Vec<Request>, ports: Vec<Option<u32>>) -> Vec<Request> {
    for r in &mut reqs {
        r.ports = ports.clone();
    }
    reqs
}

#[test]
fn dynamic_ports_are_distinct_across_instances_on_one_offer() {
    let pipeline = default_pipeline(&PlacementConfig::default());
    let plan = place(
        &[offer("o1", 8.0, 1024.0)],
        &with_ports(req("/web", 3, 0.1, 1.0), vec![None, None]),
        &pipeline,
    );
    let ports: Vec<Vec<u32>> = plan.placements.iter().map(|p| p.host_ports.clone()).collect();
    assert_eq!(ports, vec![vec![31000, 31001], vec![31002, 31003], vec![31004, 31005]]);
}

#[test]
fn required_ports_fit_once_per_offer() {
    check(
        &[offer("o1", 8.0, 1024.0), offer("o2", 8.0, 1024.0)],
        &with_ports(req("/web", 3, 0.1, 1.0), vec![Some(31005)]),
        100,
        expect![[r#"
            launch web.instance-u0 -> o1
            launch web.instance-u1 -> o2
            report /web processed=2 used=2 
        "#]],
    );
    check(
        &[offer("o1", 8.0, 1024.0)],
        &with_ports(req("/web", 1, 0.1, 1.0), vec![Some(80)]),
        100,
        expect![[r#"
            report /web processed=1 used=0 InsufficientPorts=1
        "#]],
    );
}

#[test]
fn exact_fit_is_accepted_despite_float_rounding() {
    check(
        &[offer("o1", 0.3, 96.0)],
        &req("/web", 3, 0.1, 32.0),
        100,
        expect![[r#"
            launch web.instance-u0 -> o1
            launch web.instance-u1 -> o1
            launch web.instance-u2 -> o1
            report /web processed=1 used=1 
        "#]],
    );
}

fn arb_offer() -> impl Strategy<Value = Offer> {
    (0u32..50, 0u32..80, 0u32..4).prop_map(|(c, m, g)| Offer {
        id: String::new(),
        agent_id: String::new(),
        hostname: String::new(),
        resources: Resources {
            cpus: f64::from(c) / 10.0,
            mem: f64::from(m) * 16.0,
            disk: 0.0,
            gpus: g,
        },
        ports: PortRanges::new([(31000, 31000 + c % 7)]),
        ignored_resources: 0,
    })
}

fn arb_requests() -> impl Strategy<Value = Vec<Request>> {
    proptest::collection::vec((1u32..6, 1u32..20, 1u32..30, 0u32..2), 0..6).prop_map(|apps| {
        apps.iter()
            .enumerate()
            .flat_map(|(i, (n, c, m, g))| {
                let app = AppId::parse(&format!("/app{i}")).unwrap();
                (0..*n).map(move |k| Request {
                    instance: InstanceId::new(&app, &format!("{k}")),
                    app: app.clone(),
                    need: Resources {
                        cpus: f64::from(*c) / 10.0,
                        mem: f64::from(*m) * 16.0,
                        disk: 0.0,
                        gpus: *g,
                    },
                    ports: vec![None; (*c % 3) as usize],
                })
            })
            .collect()
    })
}

proptest! {
    /// Property: the placements on an offer never need more than it offers,
    /// and never share a host port.
    #[test]
    fn never_overcommits_an_offer(offers in proptest::collection::vec(arb_offer(), 0..6), requests in arb_requests()) {
        let plan = place(&offers, &requests, &default_pipeline(&PlacementConfig::default()));
        for (i, o) in offers.iter().enumerate() {
            let mut ports: Vec<u32> = plan.placements.iter().filter(|p| p.offer == i).flat_map(|p| p.host_ports.clone()).collect();
            let n = ports.len();
            ports.sort_unstable();
            ports.dedup();
            prop_assert_eq!(ports.len(), n, "a port was given twice");
            prop_assert!(ports.iter().all(|p| o.ports.contains(*p)));
            let used = plan.placements.iter().filter(|p| p.offer == i).fold(Resources::default(), |acc, p| acc.plus(&p.request.need));
            prop_assert!(used.cpus <= o.resources.cpus + 1e-3);
            prop_assert!(used.mem <= o.resources.mem + 1e-3);
            prop_assert!(used.gpus <= o.resources.gpus);
        }
    }

    /// Property: no instance is placed twice, and only requested ones are placed.
    #[test]
    fn places_each_instance_at_most_once(offers in proptest::collection::vec(arb_offer(), 0..6), requests in arb_requests()) {
        let plan = place(&offers, &requests, &default_pipeline(&PlacementConfig::default()));
        let mut ids: Vec<_> = plan.placements.iter().map(|p| p.request.instance.clone()).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        prop_assert_eq!(ids.len(), n);
        prop_assert!(plan.placements.iter().all(|p| requests.contains(&p.request)));
    }

    /// Property: an instance left unplaced could not fit in what any offer had left.
    #[test]
    fn unplaced_instances_did_not_fit(offers in proptest::collection::vec(arb_offer(), 0..6), requests in arb_requests()) {
        let plan = place(&offers, &requests, &default_pipeline(&PlacementConfig::default()));
        let mut left: Vec<Resources> = offers.iter().map(|o| o.resources).collect();
        for p in &plan.placements {
            left[p.offer] = left[p.offer].minus(&p.request.need);
        }
        let mut left_ports: Vec<PortRanges> = offers.iter().map(|o| o.ports.clone()).collect();
        for p in &plan.placements {
            left_ports[p.offer] = left_ports[p.offer].without(&p.host_ports);
        }
        for r in &requests {
            if plan.placements.iter().any(|p| p.request.instance == r.instance) {
                continue;
            }
            for (l, lp) in left.iter().zip(&left_ports) {
                let fits = r.need.cpus <= l.cpus + 1e-6 && r.need.mem <= l.mem + 1e-6 && r.need.gpus <= l.gpus
                    && lp.assign(&r.ports).is_some();
                prop_assert!(!fits, "{:?} would fit in {:?}", r.need, l);
            }
        }
    }

    /// Property: placement is deterministic.
    #[test]
    fn same_inputs_same_plan(offers in proptest::collection::vec(arb_offer(), 0..6), requests in arb_requests()) {
        let p = default_pipeline(&PlacementConfig::default());
        prop_assert_eq!(place(&offers, &requests, &p), place(&offers, &requests, &p));
    }
}
