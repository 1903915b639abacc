//! `/metrics`: the scheduler's counters (from the snapshot) and the API's
//! latency histograms move as apps are created and launched.

use sched_core::instance::TaskState;

use super::*;

/// The value of one sample line (`name{labels} value`).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map(|v| v.parse().unwrap())
}

async fn scrape(s: &ApiState) -> String {
    let r = call(s, "GET", "/metrics", "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    r.text
}

#[tokio::test]
async fn scrapes_show_launches_declines_deployments_and_latencies() {
    let h = harness(EventBus::default());
    let s = &h.state;
    let text = scrape(s).await;
    assert_eq!(sample(&text, "scheduler_launched_tasks_total"), Some(0.0));
    assert_eq!(sample(&text, "scheduler_subscribed"), Some(0.0));
    // Known label values show from the start.
    assert_eq!(sample(&text, r#"scheduler_declined_offers_total{reason="no_demand"}"#), Some(0.0));
    assert_eq!(
        sample(&text, r#"scheduler_declined_offers_total{reason="UnfulfilledConstraint"}"#),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, r#"scheduler_finished_deployments_total{outcome="failed"}"#),
        Some(0.0)
    );
    assert!(text.contains("# TYPE scheduler_launched_tasks_total counter"), "{text}");

    let r = call(s, "POST", "/v2/apps", r#"{"id":"web","cmd":"sleep 600","instances":2}"#).await;
    assert_eq!(r.status, StatusCode::CREATED);
    h.inputs.send(Input::Subscribed).await.unwrap();
    // Nothing waits for the first offer? It does: two instances.
    h.inputs.send(Input::Offers(vec![offer("o1", 4096.0)])).await.unwrap();
    until(s, "two tasks are staging", |snap| {
        snap.instances.values().filter_map(|i| i.active_task()).count() == 2
    })
    .await;
    // Now nothing waits: the next offer is declined for lack of demand.
    h.inputs.send(Input::Offers(vec![offer("o2", 4096.0)])).await.unwrap();
    until(s, "the idle offer is declined", |snap| {
        snap.stats.offers_declined.contains_key("no_demand")
    })
    .await;
    // An app asking more memory than any offer has.
    call(s, "POST", "/v2/apps", r#"{"id":"big","cmd":"sleep 600","mem":100000}"#).await;
    h.inputs.send(Input::Offers(vec![offer("o3", 4096.0)])).await.unwrap();
    until(s, "the small offer is declined", |snap| snap.stats.offers_declined.len() == 2).await;
    // The web tasks run: its deployment succeeds.
    for task_id in active_tasks(s) {
        h.inputs.send(Input::Status(status(&task_id, TaskState::Running, None))).await.unwrap();
    }
    until(s, "the web deployment succeeded", |snap| !snap.stats.deployments.is_empty()).await;

    let text = scrape(s).await;
    assert_eq!(sample(&text, "scheduler_launched_tasks_total"), Some(2.0), "{text}");
    assert_eq!(sample(&text, r#"scheduler_declined_offers_total{reason="no_demand"}"#), Some(1.0));
    assert_eq!(
        sample(&text, r#"scheduler_declined_offers_total{reason="InsufficientMemory"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"scheduler_finished_deployments_total{outcome="success"}"#),
        Some(1.0)
    );
    assert_eq!(sample(&text, "scheduler_apps"), Some(2.0));
    assert_eq!(sample(&text, "scheduler_instances"), Some(3.0));
    assert_eq!(sample(&text, r#"scheduler_tasks{state="TASK_RUNNING"}"#), Some(2.0));
    assert_eq!(sample(&text, r#"scheduler_tasks{state="TASK_STAGING"}"#), Some(0.0));
    assert_eq!(sample(&text, "scheduler_waiting_instances"), Some(1.0));
    assert_eq!(sample(&text, "scheduler_deployments"), Some(1.0));
    assert_eq!(sample(&text, "scheduler_subscribed"), Some(1.0));
    assert_eq!(sample(&text, "events_subscribers"), Some(0.0));
    // Latencies by method and matched route; the scrape itself is counted
    // once it has answered.
    let posts = r#"api_http_request_duration_seconds_count{method="POST",route="/v2/apps"}"#;
    assert_eq!(sample(&text, posts), Some(2.0), "{text}");
    assert!(
        text.contains(r#"api_http_request_duration_seconds_bucket{le="+Inf",method="POST",route="/v2/apps"} 2"#)
            || text.contains(r#"api_http_request_duration_seconds_bucket{method="POST",route="/v2/apps",le="+Inf"} 2"#),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"api_http_responses_total{method="POST",route="/v2/apps",status="201"}"#),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, r#"api_http_request_duration_seconds_count{method="GET",route="/metrics"}"#),
        Some(1.0)
    );
    // Unknown paths share one label value.
    call(s, "GET", "/no/such/path/123", "").await;
    let alias = call(s, "GET", "/metrics/prometheus", "").await.text;
    assert_eq!(
        sample(
            &alias,
            r#"api_http_request_duration_seconds_count{method="GET",route="unmatched"}"#
        ),
        Some(1.0),
        "{alias}"
    );
    assert!(!alias.contains("/no/such/path"));
}
