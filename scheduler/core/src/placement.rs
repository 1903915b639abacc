//! Placement: which waiting instance goes on which offer.
//!
//! Placement is a pipeline of small filters. Each looks at one [`Request`]
//! (the waiting instances of one app configuration: they all need the same)
//! and one offer (with what earlier placements in this round already took
//! from it), in a [`MatchCtx`] (which of the offer's role pools the request
//! may use, and where the app's instances already are), and either lets it
//! pass or rejects it with a [`Reason`]. Rejections are values, counted per
//! app in a [`PlacementReport`] that the API shows (`/v2/queue`), never
//! only log lines.
//!
//! [`place`] works request by request (in priority order) and, for each,
//! offer by offer, placing instances on an offer until it rejects the next
//! one. A round is thus about O(offers × requests), not O(offers ×
//! instances). It never overcommits an offer (each role's pool and its
//! ports are accounted separately), never places an instance twice, and is
//! deterministic: the same inputs give the same plan.

use std::collections::{BTreeMap, BTreeSet};

use crate::app::{PortRequest, Resources};
use crate::constraints::{Constraint, Field, Operator, Tally};
use crate::ids::{AppId, InstanceId};
use crate::offer::{AgentFacts, Offer, pool_order};
use crate::ports::PortRanges;

/// Slack for floating-point resource comparisons.
const EPSILON: f64 = 1e-6;

/// Why an offer could not take an instance (Marathon's reject reasons).
/// Declared in pipeline order: an offer is rejected for the first reason
/// that applies, so the order is also the funnel `/v2/queue` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// The offer already took the per-offer launch limit.
    MaxLaunchesPerOffer,
    /// The offer has no resources of a role the app accepts.
    UnfulfilledRole,
    /// The agent does not satisfy a constraint of the app.
    UnfulfilledConstraint,
    /// Not enough CPUs left in the offer.
    InsufficientCpus,
    /// Not enough memory.
    InsufficientMemory,
    /// Not enough disk.
    InsufficientDisk,
    /// Not enough GPUs.
    InsufficientGpus,
    /// The offer lacks the (free or required) host ports.
    InsufficientPorts,
}

impl Reason {
    /// Every reason, in pipeline order.
    pub const ALL: [Reason; 8] = [
        Reason::MaxLaunchesPerOffer,
        Reason::UnfulfilledRole,
        Reason::UnfulfilledConstraint,
        Reason::InsufficientCpus,
        Reason::InsufficientMemory,
        Reason::InsufficientDisk,
        Reason::InsufficientGpus,
        Reason::InsufficientPorts,
    ];

    /// The name shown by the API.
    pub fn name(self) -> &'static str {
        match self {
            Reason::MaxLaunchesPerOffer => "MaxLaunchesPerOffer",
            Reason::UnfulfilledRole => "UnfulfilledRole",
            Reason::UnfulfilledConstraint => "UnfulfilledConstraint",
            Reason::InsufficientCpus => "InsufficientCpus",
            Reason::InsufficientMemory => "InsufficientMemory",
            Reason::InsufficientDisk => "InsufficientDisk",
            Reason::InsufficientGpus => "InsufficientGpus",
            Reason::InsufficientPorts => "InsufficientPorts",
        }
    }
}

/// Where one of an app's instances runs: what constraints count.
#[derive(Debug, Clone, Copy)]
pub struct Placed<'a> {
    /// The agent's hostname.
    pub hostname: &'a str,
    /// The agent's fault domain and attributes.
    pub facts: &'a AgentFacts,
}

/// The waiting instances of one app configuration. They share everything
/// placement looks at, so they are matched together.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The app.
    pub app: AppId,
    /// The instances, in priority order.
    pub instances: Vec<InstanceId>,
    /// Each task's own resources.
    pub task: Resources,
    /// Each task's executor's resources.
    pub executor: Resources,
    /// The host ports each task needs.
    pub ports: Vec<PortRequest>,
    /// The resource roles the tasks may use (`*` = unreserved).
    pub roles: Vec<String>,
    /// The app's constraints.
    pub constraints: Vec<Constraint>,
    /// Where the app's live instances of this configuration run.
    pub placed: Vec<Placed<'a>>,
}

impl Request<'_> {
    /// Everything one launch takes from an offer (task and executor).
    pub fn need(&self) -> Resources {
        self.task.plus(&self.executor)
    }
}

/// What is left of one role's pool of an offer.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolLeft {
    /// Scalar resources.
    pub resources: Resources,
    /// Ports.
    pub ports: PortRanges,
}

/// An offer during one placement round: what is left of it.
#[derive(Debug, Clone)]
pub struct OfferView<'a> {
    /// The offer.
    pub offer: &'a Offer,
    /// What earlier placements in this round left of each pool (indexed as
    /// `offer.pools`).
    pub left: Vec<PoolLeft>,
    /// How many launches this round already put on it.
    pub launches: usize,
    /// Pool indices in the order they are used (unreserved first).
    order: Vec<usize>,
}

impl<'a> OfferView<'a> {
    /// The offer before anything was taken from it.
    pub fn new(offer: &'a Offer) -> Self {
        let mut order: Vec<usize> = (0..offer.pools.len()).collect();
        order.sort_by(|a, b| {
            pool_order(&offer.pools[*a].role).cmp(&pool_order(&offer.pools[*b].role))
        });
        OfferView {
            offer,
            left: offer
                .pools
                .iter()
                .map(|p| PoolLeft { resources: p.resources, ports: p.ports.clone() })
                .collect(),
            launches: 0,
            order,
        }
    }

    /// Serves port requests from the free ports of the given pools: a
    /// literal port must be free in one of them; dynamic ones are the
    /// lowest free ports of the first pool that has any left (pools in the
    /// order they are used). `None` when they cannot all be served.
    pub fn assign_ports(&self, pools: &[usize], requests: &[PortRequest]) -> Option<Vec<u32>> {
        if let [one] = pools {
            return self.left[*one].ports.assign(requests);
        }
        let literal: Vec<u32> = requests.iter().flatten().copied().collect();
        let mut distinct = literal.clone();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() != literal.len()
            || !literal.iter().all(|l| pools.iter().any(|p| self.left[*p].ports.contains(*l)))
        {
            return None;
        }
        let dynamic = requests.iter().filter(|r| r.is_none()).count();
        let mut picked: Vec<u32> = Vec::with_capacity(dynamic);
        for p in pools {
            if picked.len() == dynamic {
                break;
            }
            let free = self.left[*p].ports.without(&literal);
            for &(a, b) in free.ranges() {
                let want = (dynamic - picked.len()) as u64;
                let n = (u64::from(b - a) + 1).min(want) as u32;
                picked.extend(a..a + n);
                if picked.len() == dynamic {
                    break;
                }
            }
        }
        if picked.len() < dynamic {
            return None;
        }
        let mut dynamic_ports = picked.into_iter();
        requests.iter().map(|r| r.or_else(|| dynamic_ports.next())).collect()
    }
}

/// What a filter knows besides the request and the offer.
#[derive(Debug)]
pub struct MatchCtx<'a> {
    /// The offer's pools (indices into `offer.pools`) whose role the
    /// request accepts, in the order they are used.
    pub accepted: &'a [usize],
    /// What the accepted pools have left, together.
    pub available: Resources,
    /// For each of the request's constraints: where the app's instances
    /// are, including those placed earlier in this round.
    pub tallies: &'a [Tally],
    /// For each of the request's constraints: how many distinct values its
    /// field has this round (in offers and where instances run).
    pub known_values: &'a [usize],
}

/// Tunables of placement.
#[derive(Debug, Clone)]
pub struct PlacementConfig {
    /// Most launches per offer per round.
    pub max_launches_per_offer: usize,
}

impl Default for PlacementConfig {
    fn default() -> Self {
        PlacementConfig { max_launches_per_offer: 100 }
    }
}

/// One check of the pipeline.
pub trait Filter: Send + Sync {
    /// The filter's name, for reports and tests.
    fn name(&self) -> &'static str;
    /// Passes or rejects one more instance of `request` on `offer`.
    fn check(
        &self,
        request: &Request<'_>,
        offer: &OfferView<'_>,
        ctx: &MatchCtx<'_>,
    ) -> Result<(), Reason>;
}

struct LaunchLimit(usize);

impl Filter for LaunchLimit {
    fn name(&self) -> &'static str {
        "launch-limit"
    }
    fn check(
        &self,
        _: &Request<'_>,
        offer: &OfferView<'_>,
        _: &MatchCtx<'_>,
    ) -> Result<(), Reason> {
        if offer.launches < self.0 { Ok(()) } else { Err(Reason::MaxLaunchesPerOffer) }
    }
}

/// The offer must have resources of a role the app accepts.
struct Roles;

impl Filter for Roles {
    fn name(&self) -> &'static str {
        "roles"
    }
    fn check(&self, _: &Request<'_>, _: &OfferView<'_>, ctx: &MatchCtx<'_>) -> Result<(), Reason> {
        if ctx.accepted.is_empty() { Err(Reason::UnfulfilledRole) } else { Ok(()) }
    }
}

/// The agent must satisfy every constraint, given where the app's
/// instances already are.
struct Constraints;

impl Filter for Constraints {
    fn name(&self) -> &'static str {
        "constraints"
    }
    fn check(
        &self,
        request: &Request<'_>,
        offer: &OfferView<'_>,
        ctx: &MatchCtx<'_>,
    ) -> Result<(), Reason> {
        let o = offer.offer;
        let ok = request
            .constraints
            .iter()
            .zip(ctx.tallies)
            .zip(ctx.known_values)
            .all(|((c, t), k)| c.accepts_agent(&o.hostname, &o.facts, t, *k));
        if ok { Ok(()) } else { Err(Reason::UnfulfilledConstraint) }
    }
}

/// A scalar resource filter, over the accepted pools.
struct Scalar {
    name: &'static str,
    get: fn(&Resources) -> f64,
    reason: Reason,
}

impl Filter for Scalar {
    fn name(&self) -> &'static str {
        self.name
    }
    fn check(
        &self,
        request: &Request<'_>,
        _: &OfferView<'_>,
        ctx: &MatchCtx<'_>,
    ) -> Result<(), Reason> {
        if (self.get)(&request.need()) <= (self.get)(&ctx.available) + EPSILON {
            Ok(())
        } else {
            Err(self.reason)
        }
    }
}

/// Literal host ports must be free in an accepted pool; dynamic ones are
/// the lowest free ones.
struct Ports;

impl Filter for Ports {
    fn name(&self) -> &'static str {
        "ports"
    }
    fn check(
        &self,
        request: &Request<'_>,
        offer: &OfferView<'_>,
        ctx: &MatchCtx<'_>,
    ) -> Result<(), Reason> {
        if request.ports.is_empty() || offer.assign_ports(ctx.accepted, &request.ports).is_some() {
            Ok(())
        } else {
            Err(Reason::InsufficientPorts)
        }
    }
}

/// The filters, in order: Marathon's funnel (roles, then constraints, then
/// resources from CPUs to ports), after Drover's per-offer launch limit.
/// The order decides which reason is reported when several apply; every
/// check is cheap (no allocation except for port ranges).
pub fn default_pipeline(config: &PlacementConfig) -> Vec<Box<dyn Filter>> {
    vec![
        Box::new(LaunchLimit(config.max_launches_per_offer)),
        Box::new(Roles),
        Box::new(Constraints),
        Box::new(Scalar { name: "cpus", get: |r| r.cpus, reason: Reason::InsufficientCpus }),
        Box::new(Scalar { name: "mem", get: |r| r.mem, reason: Reason::InsufficientMemory }),
        Box::new(Scalar { name: "disk", get: |r| r.disk, reason: Reason::InsufficientDisk }),
        Box::new(Scalar {
            name: "gpus",
            get: |r| f64::from(r.gpus),
            reason: Reason::InsufficientGpus,
        }),
        Box::new(Ports),
    ]
}

/// What placement saw of an app's offers in one round.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlacementReport {
    /// Offers considered for the app.
    pub offers_processed: u32,
    /// Offers that took at least one of its instances.
    pub offers_used: u32,
    /// Why the others were rejected, by reason (the first that applied).
    pub rejected: BTreeMap<Reason, u32>,
}

/// Part of a launch taken from one pool of the offer.
#[derive(Debug, Clone, PartialEq)]
pub struct Share {
    /// Index into the offer's `pools`.
    pub pool: usize,
    /// Scalar resources taken.
    pub resources: Resources,
    /// Host ports taken.
    pub ports: Vec<u32>,
}

/// One placement decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    /// Index into the offers given to [`place`].
    pub offer: usize,
    /// The app.
    pub app: AppId,
    /// The instance.
    pub instance: InstanceId,
    /// The host ports it got, in request order.
    pub host_ports: Vec<u32>,
    /// Where the task's resources (and its host ports) come from.
    pub task: Vec<Share>,
    /// Where the executor's resources come from.
    pub executor: Vec<Share>,
}

/// The result of a placement round.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Where each placed instance goes, by offer (then in placement order).
    pub placements: Vec<Placement>,
    /// Per app: what happened with each offer.
    pub reports: BTreeMap<AppId, PlacementReport>,
}

type Dim = (fn(&Resources) -> f64, fn(&mut Resources, f64));

const DIMS: [Dim; 3] = [
    (|r| r.cpus, |r, v| r.cpus = v),
    (|r| r.mem, |r, v| r.mem = v),
    (|r| r.disk, |r, v| r.disk = v),
];

/// Takes `need` from the given pools, in order, and returns what came from
/// each. The caller checked that the pools have enough.
fn take(need: &Resources, left: &mut [PoolLeft], pools: &[usize]) -> Vec<Share> {
    let mut parts: Vec<Share> = pools
        .iter()
        .map(|p| Share { pool: *p, resources: Resources::default(), ports: Vec::new() })
        .collect();
    for (get, set) in DIMS {
        let mut want = get(need);
        for (part, p) in parts.iter_mut().zip(pools) {
            if want <= 0.0 {
                break;
            }
            let have = get(&left[*p].resources);
            let t = want.min(have);
            if t > 0.0 {
                let sum = get(&part.resources) + t;
                set(&mut part.resources, sum);
                set(&mut left[*p].resources, have - t);
                want -= t;
            }
        }
    }
    let mut gpus = need.gpus;
    for (part, p) in parts.iter_mut().zip(pools) {
        let t = gpus.min(left[*p].resources.gpus);
        part.resources.gpus += t;
        left[*p].resources.gpus -= t;
        gpus -= t;
    }
    parts
}

/// Takes one launch of `request` from `view`'s accepted pools: ports first
/// (each from the pool that has it), then the task's and the executor's
/// scalars. `None` when the ports cannot be served.
fn allocate(
    request: &Request<'_>,
    view: &mut OfferView<'_>,
    pools: &[usize],
) -> Option<(Vec<u32>, Vec<Share>, Vec<Share>)> {
    let host_ports = if request.ports.is_empty() {
        Vec::new()
    } else {
        view.assign_ports(pools, &request.ports)?
    };
    let mut task = take(&request.task, &mut view.left, pools);
    for port in &host_ports {
        let i = pools.iter().position(|p| view.left[*p].ports.contains(*port))?;
        let p = pools[i];
        view.left[p].ports = view.left[p].ports.without(&[*port]);
        task[i].ports.push(*port);
    }
    let executor = take(&request.executor, &mut view.left, pools);
    let keep = |s: &Share| !s.ports.is_empty() || s.resources != Resources::default();
    task.retain(keep);
    let executor = executor.into_iter().filter(keep).collect();
    view.launches += 1;
    Some((host_ports, task, executor))
}

/// How many distinct values `field` has in the offers and where `placed`
/// instances run.
fn known_values<'o>(
    field: &Field,
    offers: &'o [Offer],
    cache: &mut BTreeMap<Field, BTreeSet<&'o str>>,
    placed: &[Placed<'_>],
) -> usize {
    let seen = cache.entry(field.clone()).or_insert_with(|| {
        offers.iter().filter_map(|o| field.read(&o.hostname, &o.facts)).collect()
    });
    let mut extra: BTreeSet<&str> = BTreeSet::new();
    for p in placed {
        if let Some(v) = field.read(p.hostname, p.facts)
            && !seen.contains(v)
        {
            extra.insert(v);
        }
    }
    seen.len() + extra.len()
}

/// Places `requests` (in priority order) on `offers`. Pure and
/// deterministic: the same inputs give the same plan.
pub fn place(offers: &[Offer], requests: &[Request<'_>], pipeline: &[Box<dyn Filter>]) -> Plan {
    let mut plan = Plan::default();
    let mut views: Vec<OfferView<'_>> = offers.iter().map(OfferView::new).collect();
    let mut field_cache: BTreeMap<Field, BTreeSet<&str>> = BTreeMap::new();
    // Per offer, for the current request: `None` = not seen, `Some(Ok)` =
    // used, `Some(Err)` = rejected (the first reason).
    let mut outcome: Vec<Option<Result<(), Reason>>> = vec![None; offers.len()];
    let mut visited: Vec<usize> = Vec::new();
    let mut accepted: Vec<usize> = Vec::new();
    let mut placed_ids: BTreeSet<&InstanceId> = BTreeSet::new();
    for request in requests {
        let todo: Vec<&InstanceId> =
            request.instances.iter().filter(|i| !placed_ids.contains(*i)).collect();
        if todo.is_empty() {
            continue;
        }
        let mut tallies: Vec<Tally> = request
            .constraints
            .iter()
            .map(|c| Tally::new(request.placed.iter().map(|p| c.field.read(p.hostname, p.facts))))
            .collect();
        let known: Vec<usize> = request
            .constraints
            .iter()
            .map(|c| {
                if c.operator == Operator::GroupBy && c.value.is_none() {
                    known_values(&c.field, offers, &mut field_cache, &request.placed)
                } else {
                    0
                }
            })
            .collect();
        // GROUP_BY can accept an offer again once other values caught up,
        // so such requests go over the offers until nothing more fits.
        let again = request.constraints.iter().any(|c| c.operator == Operator::GroupBy);
        let mut next = 0;
        loop {
            let before = next;
            for (oi, view) in views.iter_mut().enumerate() {
                if next == todo.len() {
                    break;
                }
                if outcome[oi].is_none() {
                    visited.push(oi);
                }
                while next < todo.len() {
                    accepted.clear();
                    accepted.extend(view.order.iter().copied().filter(|p| {
                        let role = &view.offer.pools[*p].role;
                        request.roles.iter().any(|r| r == role)
                    }));
                    let available = accepted
                        .iter()
                        .fold(Resources::default(), |acc, p| acc.plus(&view.left[*p].resources));
                    let ctx = MatchCtx {
                        accepted: &accepted,
                        available,
                        tallies: &tallies,
                        known_values: &known,
                    };
                    let verdict = pipeline.iter().try_for_each(|f| f.check(request, view, &ctx));
                    let result = verdict.and_then(|()| {
                        allocate(request, view, &accepted).ok_or(Reason::InsufficientPorts)
                    });
                    match result {
                        Ok((host_ports, task, executor)) => {
                            outcome[oi] = Some(Ok(()));
                            let o = view.offer;
                            for (c, t) in request.constraints.iter().zip(tallies.iter_mut()) {
                                t.add(c.field.read(&o.hostname, &o.facts));
                            }
                            placed_ids.insert(todo[next]);
                            plan.placements.push(Placement {
                                offer: oi,
                                app: request.app.clone(),
                                instance: todo[next].clone(),
                                host_ports,
                                task,
                                executor,
                            });
                            next += 1;
                        }
                        Err(reason) => {
                            if outcome[oi].is_none() {
                                outcome[oi] = Some(Err(reason));
                            }
                            break;
                        }
                    }
                }
            }
            if !again || next == before || next == todo.len() {
                break;
            }
        }
        let report = plan.reports.entry(request.app.clone()).or_default();
        for oi in visited.drain(..) {
            report.offers_processed += 1;
            match outcome[oi].take() {
                Some(Ok(())) => report.offers_used += 1,
                Some(Err(reason)) => *report.rejected.entry(reason).or_default() += 1,
                None => {}
            }
        }
    }
    // By offer; within an offer, in placement order (the sort is stable).
    plan.placements.sort_by_key(|p| p.offer);
    plan
}

#[cfg(test)]
mod tests;
