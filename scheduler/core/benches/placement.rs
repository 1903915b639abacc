//! Placement throughput: 100,000 instances (1,000 apps × 100) onto the
//! offers of 10,000 simulated agents, with UNIQUE, MAX_PER, GROUP_BY and
//! LIKE constraints on four apps in ten and host ports on half of them.
//!
//! Run with `cargo bench -p sched-core --bench placement` (a release
//! build). It times whole placement rounds (building the offers and
//! requests is not timed) and prints instances placed per second.

use std::time::Duration;

use sched_core::app::Resources;
use sched_core::constraints::Constraint;
use sched_core::ids::{AppId, InstanceId};
use sched_core::offer::{AgentFacts, AttributeValue, Offer};
use sched_core::placement::{PlacementConfig, Request, default_pipeline, place};
use sched_core::ports::PortRanges;

const AGENTS: usize = 10_000;
const APPS: usize = 1_000;
const INSTANCES: usize = 100;
const ROUNDS: usize = 7;

fn offers() -> Vec<Offer> {
    (0..AGENTS)
        .map(|i| {
            let facts = AgentFacts::default()
                .with_domain("region-1", &format!("zone-{}", i % 3))
                .with_attribute("rack", AttributeValue::Text(format!("rack-{}", i % 100)))
                .with_attribute("cores", AttributeValue::Scalar(16.0));
            Offer::new(&format!("offer-{i}"), &format!("agent-{i}"), &format!("host-{i}"))
                .with_facts(facts)
                .with_resources(
                    "*",
                    Resources { cpus: 16.0, mem: 65_536.0, disk: 100_000.0, gpus: 0 },
                    PortRanges::new([(31_000, 32_000)]),
                )
        })
        .collect()
}

fn constraints(app: usize) -> Vec<Constraint> {
    let c =
        |f: &str, o: &str, v: Option<&str>| Constraint::parse(f, o, v).expect("valid constraint");
    match app % 10 {
        0 => vec![c("hostname", "UNIQUE", None)],
        1 => vec![c("rack", "MAX_PER", Some("2"))],
        2 => vec![c("@zone", "GROUP_BY", None), c("hostname", "UNIQUE", None)],
        3 => vec![c("rack", "GROUP_BY", Some("10"))],
        4 => vec![c("rack", "LIKE", Some("rack-[0-4].*"))],
        _ => Vec::new(),
    }
}

fn requests() -> Vec<Request<'static>> {
    (0..APPS)
        .map(|a| {
            let app = AppId::parse(&format!("/team-{}/app-{a}", a % 20)).expect("valid id");
            Request {
                instances: (0..INSTANCES)
                    .map(|i| InstanceId::new(&app, &format!("{a:04}-{i:04}")))
                    .collect(),
                app,
                task: Resources {
                    cpus: 0.1 + 0.1 * (a % 4) as f64,
                    mem: 128.0,
                    disk: 0.0,
                    gpus: 0,
                },
                executor: Resources { cpus: 0.01, mem: 32.0, disk: 0.0, gpus: 0 },
                ports: if a % 2 == 0 { vec![None] } else { Vec::new() },
                roles: vec!["*".to_owned()],
                constraints: constraints(a),
                placed: Vec::new(),
            }
        })
        .collect()
}

// A benchmark measures wall time; the clock ban is for the cores.
#[allow(clippy::disallowed_methods)]
fn time<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = std::time::Instant::now();
    let out = f();
    (out, start.elapsed())
}

fn main() {
    let offers = offers();
    let requests = requests();
    let pipeline = default_pipeline(&PlacementConfig::default());
    let wanted = APPS * INSTANCES;
    let mut times = Vec::with_capacity(ROUNDS);
    let mut placed = 0;
    for _ in 0..ROUNDS {
        let (plan, took) = time(|| place(&offers, &requests, &pipeline));
        placed = plan.placements.len();
        times.push(took);
    }
    times.sort();
    let median = times[ROUNDS / 2];
    let rate = placed as f64 / median.as_secs_f64();
    println!(
        "placement: {placed} of {wanted} instances ({APPS} apps x {INSTANCES}) onto {AGENTS} offers"
    );
    println!(
        "placement: median {:.1} ms, best {:.1} ms over {ROUNDS} rounds: {:.0} instances placed per second",
        median.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        rate
    );
    assert_eq!(placed, wanted, "every instance should fit");
}
