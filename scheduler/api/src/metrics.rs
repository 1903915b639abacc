//! `/metrics` in the Prometheus text format (version 0.0.4).
//!
//! Two sources:
//! - **What the scheduler decided** (launches, declined offers by reason,
//!   deployment outcomes, job runs and fires) is counted by the pure core as
//!   plain numbers in [`Snapshot::stats`]; together with gauges of the
//!   snapshot (apps, instances, tasks by state, subscribed, jobs, active
//!   runs) it is read from the latest
//!   published snapshot **at scrape time**, so the scheduler does no metric
//!   work.
//! - **HTTP latencies** are measured here, by a middleware around every
//!   route ([`track`]), labelled by method and matched route (never the raw
//!   path, which would have unbounded values).
//!
//! Names follow `<subsystem>_<name>_<unit>_total` for counters.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use sched_core::instance::{ALL_STATES, TaskState};
use sched_core::placement::Reason;
use sched_core::scheduler::{DECLINED_NO_DEMAND, Snapshot};
use tokio::sync::watch;

use crate::ApiState;
use crate::events::EventBus;

/// Upper bounds of the latency buckets, in seconds.
const LATENCY_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Labels of an HTTP request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

/// Labels of an HTTP response.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResponseLabels {
    method: &'static str,
    route: String,
    status: u16,
}

type LatencyFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The API's metrics registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    latency: LatencyFamily,
    responses: Family<ResponseLabels, prometheus_client::metrics::counter::Counter>,
}

impl Metrics {
    /// Metrics over the published snapshots and the event bus.
    pub fn new(snapshot: watch::Receiver<Arc<Snapshot>>, events: EventBus) -> Self {
        let mut registry = Registry::default();
        let latency = LatencyFamily::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "api_http_request_duration",
            "Time to answer an API request (to the response head), by method and route.",
            Unit::Seconds,
            latency.clone(),
        );
        let responses = Family::default();
        registry.register(
            "api_http_responses",
            "API responses, by method, route and status code.",
            responses.clone(),
        );
        registry.register_collector(Box::new(SnapshotCollector { snapshot, events }));
        Metrics { registry, latency, responses }
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }

    fn observe(&self, method: &'static str, route: String, status: u16, seconds: f64) {
        self.responses
            .get_or_create(&ResponseLabels { method, route: route.clone(), status })
            .inc();
        self.latency.get_or_create(&RouteLabels { method, route }).observe(seconds);
    }
}

/// A bounded set of method names for labels.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware: records each request's latency and status.
pub(crate) async fn track(State(s): State<ApiState>, req: Request, next: Next) -> Response {
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let start = tokio::time::Instant::now();
    let response = next.run(req).await;
    let seconds = start.elapsed().as_secs_f64();
    s.metrics.observe(method, route, response.status().as_u16(), seconds);
    response
}

/// `GET /metrics` (and `/metrics/prometheus`).
pub(crate) async fn scrape(State(s): State<ApiState>) -> Response {
    let body = s.metrics.render();
    let content_type =
        HeaderValue::from_static(prometheus_client::encoding::prometheus_text::CONTENT_TYPE);
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// Reads the latest snapshot at scrape time.
#[derive(Debug)]
struct SnapshotCollector {
    snapshot: watch::Receiver<Arc<Snapshot>>,
    events: EventBus,
}

fn counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(value);
    c.encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)
}

/// A counter by one label; the `known` label values are shown (as 0) before
/// they first happen, so rates work from the start.
fn labelled_counter(
    encoder: &mut DescriptorEncoder<'_>,
    (name, help): (&str, &str),
    label: &'static str,
    known: impl IntoIterator<Item = &'static str>,
    values: &BTreeMap<&'static str, u64>,
) -> Result<(), std::fmt::Error> {
    let mut all: BTreeMap<&'static str, u64> = known.into_iter().map(|k| (k, 0)).collect();
    all.extend(values.iter().map(|(k, v)| (*k, *v)));
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (value, n) in all {
        let labels = [(label, value)];
        ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    ConstGauge::new(value).encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let snap = self.snapshot.borrow().clone();
        let stats = &snap.stats;
        counter(
            &mut e,
            "scheduler_launched_tasks",
            "Tasks launched (launch operations sent in ACCEPT calls).",
            stats.tasks_launched,
        )?;
        labelled_counter(
            &mut e,
            (
                "scheduler_declined_offers",
                "Offers declined, by reason: no_demand when nothing waited, otherwise the placement reason (InsufficientMemory, ...).",
            ),
            "reason",
            std::iter::once(DECLINED_NO_DEMAND).chain(Reason::ALL.iter().map(|r| r.name())),
            &stats.offers_declined,
        )?;
        labelled_counter(
            &mut e,
            (
                "scheduler_finished_deployments",
                "Deployments that ended, by outcome: success, failed, canceled.",
            ),
            "outcome",
            ["success", "failed", "canceled"],
            &stats.deployments,
        )?;
        gauge(&mut e, "scheduler_apps", "Apps.", count(snap.apps.len()))?;
        gauge(
            &mut e,
            "scheduler_instances",
            "Instances (desired replicas).",
            count(snap.instances.len()),
        )?;
        let mut by_state: BTreeMap<TaskState, i64> = BTreeMap::new();
        let mut waiting = 0;
        for inst in snap.instances.values() {
            match inst.active_task() {
                Some(t) => *by_state.entry(t.state).or_default() += 1,
                None if inst.needs_launch() => waiting += 1,
                None => {}
            }
        }
        {
            let mut family = e.encode_descriptor(
                "scheduler_tasks",
                "Active tasks, by Mesos state.",
                None,
                MetricType::Gauge,
            )?;
            for state in ALL_STATES.iter().filter(|s| !s.needs_replacement()) {
                let labels = [("state", state.mesos_name())];
                let n = by_state.get(state).copied().unwrap_or(0);
                ConstGauge::new(n).encode(family.encode_family(&labels)?)?;
            }
        }
        gauge(
            &mut e,
            "scheduler_waiting_instances",
            "Instances waiting for an offer to launch.",
            waiting,
        )?;
        gauge(
            &mut e,
            "scheduler_deployments",
            "Deployments in progress.",
            count(snap.deployments.len()),
        )?;
        gauge(
            &mut e,
            "scheduler_unknown_tasks",
            "Tasks Mesos reported that Drover has no record of.",
            count(snap.unknown_tasks.len()),
        )?;
        gauge(
            &mut e,
            "scheduler_subscribed",
            "1 while subscribed to the Mesos master, else 0.",
            i64::from(snap.subscribed),
        )?;
        labelled_counter(
            &mut e,
            (
                "drover_job_runs",
                "Job runs, by event: started, succeeded, failed, killed, missed (skipped or too late to start).",
            ),
            "event",
            ["started", "succeeded", "failed", "killed", "missed"],
            &stats.job_runs,
        )?;
        counter(
            &mut e,
            "drover_job_fires",
            "Scheduled due times fired (missed ones coalesced into one run count once).",
            stats.job_fires,
        )?;
        FireLag(stats).encode(e.encode_descriptor(
            "drover_job_fire_lag_seconds",
            "Time from a scheduled run's due time to its fire (the run's record and instance written), in seconds.",
            None,
            MetricType::Histogram,
        )?)?;
        gauge(&mut e, "drover_jobs", "Jobs.", count(snap.jobs.len()))?;
        let active =
            snap.runs.values().flat_map(|r| r.values()).filter(|r| !r.status.is_final()).count();
        gauge(&mut e, "drover_job_runs_active", "Job runs queued or running.", count(active))?;
        gauge(
            &mut e,
            "events_subscribers",
            "Connected /v2/events clients.",
            count(self.events.subscribers()),
        )?;
        counter(
            &mut e,
            "events_published_events",
            "Events published on the event bus.",
            self.events.published(),
        )?;
        counter(
            &mut e,
            "events_disconnected_clients",
            "Event stream clients disconnected for falling too far behind.",
            self.events.disconnected(),
        )
    }
}

/// The core's fire-lag counts as a Prometheus histogram.
#[derive(Debug)]
struct FireLag<'a>(&'a sched_core::scheduler::Stats);

impl EncodeMetric for FireLag<'_> {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder,
    ) -> Result<(), std::fmt::Error> {
        let stats = self.0;
        let bounds = sched_core::scheduler::JOB_FIRE_LAG_BOUNDS_MS
            .iter()
            .map(|ms| *ms as f64 / 1000.0)
            .chain([f64::INFINITY]);
        let buckets: Vec<(f64, u64)> =
            bounds.zip(stats.job_fire_lag_buckets.iter().copied()).collect();
        encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            stats.job_fire_lag_ms as f64 / 1000.0,
            stats.job_fires,
            &buckets,
            None,
        )
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}
