//! Placement: which pending instance goes on which offer.
//!
//! Placement is a pipeline of small filters. Each looks at one request (an
//! instance that wants to launch) and one offer (with what earlier
//! placements in this round already took from it) and either lets it pass
//! or rejects it with a [`Reason`]. Rejections are values, counted per app
//! in a [`PlacementReport`] that the API shows (`/v2/queue`), never only
//! log lines. [`place`] never overcommits an offer and never places an
//! instance twice.

use std::collections::{BTreeMap, BTreeSet};

use crate::app::{PortRequest, Resources};
use crate::ids::{AppId, InstanceId};
use crate::offer::Offer;
use crate::ports::PortRanges;

/// Slack for floating-point resource comparisons.
const EPSILON: f64 = 1e-6;

/// Why an offer could not take an instance (Marathon's reject reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
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
    /// The offer already took the per-offer launch limit.
    MaxLaunchesPerOffer,
}

impl Reason {
    /// The name shown by the API.
    pub fn name(self) -> &'static str {
        match self {
            Reason::InsufficientCpus => "InsufficientCpus",
            Reason::InsufficientMemory => "InsufficientMemory",
            Reason::InsufficientDisk => "InsufficientDisk",
            Reason::InsufficientGpus => "InsufficientGpus",
            Reason::InsufficientPorts => "InsufficientPorts",
            Reason::MaxLaunchesPerOffer => "MaxLaunchesPerOffer",
        }
    }
}

/// An instance that wants to launch.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The instance.
    pub instance: InstanceId,
    /// Its app.
    pub app: AppId,
    /// Everything the launch takes from an offer (task and executor).
    pub need: Resources,
    /// The host ports the task needs.
    pub ports: Vec<PortRequest>,
}

/// An offer during one placement round: what is left of it.
#[derive(Debug, Clone)]
pub struct OfferView<'a> {
    /// The offer.
    pub offer: &'a Offer,
    /// What earlier placements in this round left.
    pub remaining: Resources,
    /// The ports earlier placements in this round left.
    pub free_ports: PortRanges,
    /// How many launches this round already put on it.
    pub launches: usize,
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
    /// Passes or rejects `request` on `offer`.
    fn check(&self, request: &Request, offer: &OfferView<'_>) -> Result<(), Reason>;
}

struct LaunchLimit(usize);

impl Filter for LaunchLimit {
    fn name(&self) -> &'static str {
        "launch-limit"
    }
    fn check(&self, _: &Request, offer: &OfferView<'_>) -> Result<(), Reason> {
        if offer.launches < self.0 { Ok(()) } else { Err(Reason::MaxLaunchesPerOffer) }
    }
}

/// A scalar resource filter.
struct Scalar {
    name: &'static str,
    get: fn(&Resources) -> f64,
    reason: Reason,
}

impl Filter for Scalar {
    fn name(&self) -> &'static str {
        self.name
    }
    fn check(&self, request: &Request, offer: &OfferView<'_>) -> Result<(), Reason> {
        if (self.get)(&request.need) <= (self.get)(&offer.remaining) + EPSILON {
            Ok(())
        } else {
            Err(self.reason)
        }
    }
}

struct Ports;

impl Filter for Ports {
    fn name(&self) -> &'static str {
        "ports"
    }
    fn check(&self, request: &Request, offer: &OfferView<'_>) -> Result<(), Reason> {
        if request.ports.is_empty() || offer.free_ports.assign(&request.ports).is_some() {
            Ok(())
        } else {
            Err(Reason::InsufficientPorts)
        }
    }
}

/// The filters, in order. Cheap checks first; the order also decides which
/// reason is reported when several apply (Marathon reports CPU first).
pub fn default_pipeline(config: &PlacementConfig) -> Vec<Box<dyn Filter>> {
    vec![
        Box::new(LaunchLimit(config.max_launches_per_offer)),
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
    /// Why the others were rejected, by reason.
    pub rejected: BTreeMap<Reason, u32>,
}

/// One placement decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    /// Index into the offers given to [`place`].
    pub offer: usize,
    /// The request placed there.
    pub request: Request,
    /// The host ports it got, in request order.
    pub host_ports: Vec<u32>,
}

/// The result of a placement round.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Where each placed instance goes, in offer order.
    pub placements: Vec<Placement>,
    /// Per app: what happened with each offer.
    pub reports: BTreeMap<AppId, PlacementReport>,
}

/// Places `requests` (in priority order) on `offers`. Pure and
/// deterministic: the same inputs give the same plan.
pub fn place(offers: &[Offer], requests: &[Request], pipeline: &[Box<dyn Filter>]) -> Plan {
    let mut plan = Plan::default();
    let mut placed: BTreeSet<&InstanceId> = BTreeSet::new();
    for (index, offer) in offers.iter().enumerate() {
        let mut view = OfferView {
            offer,
            remaining: offer.resources,
            free_ports: offer.ports.clone(),
            launches: 0,
        };
        // Per offer, the first rejection of an app is recorded; its other
        // instances have the same needs and are skipped.
        let mut seen: BTreeMap<&AppId, bool> = BTreeMap::new();
        for request in requests {
            if placed.contains(&request.instance) || seen.get(&request.app) == Some(&false) {
                continue;
            }
            let verdict = pipeline.iter().try_for_each(|f| f.check(request, &view));
            let first_look = !seen.contains_key(&request.app);
            let report = plan.reports.entry(request.app.clone()).or_default();
            let host_ports = verdict.and_then(|()| {
                view.free_ports.assign(&request.ports).ok_or(Reason::InsufficientPorts)
            });
            match host_ports {
                Ok(host_ports) => {
                    if first_look {
                        report.offers_processed += 1;
                        report.offers_used += 1;
                    }
                    seen.insert(&request.app, true);
                    view.remaining = view.remaining.minus(&request.need);
                    view.free_ports = view.free_ports.without(&host_ports);
                    view.launches += 1;
                    placed.insert(&request.instance);
                    plan.placements.push(Placement {
                        offer: index,
                        request: request.clone(),
                        host_ports,
                    });
                }
                Err(reason) => {
                    if first_look {
                        report.offers_processed += 1;
                        *report.rejected.entry(reason).or_default() += 1;
                    }
                    seen.insert(&request.app, false);
                }
            }
        }
    }
    plan
}

#[cfg(test)]
mod tests;
