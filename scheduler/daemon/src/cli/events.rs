//! `drover events [--type T]...`: the event stream (`GET /v2/events`), one
//! line per event — `time type summary` — or, with `-o json`, each event's
//! JSON as sent, one per line; until Ctrl-C or the stream ends (an error:
//! Drover stopped, or cut a reader that fell behind).

use serde_json::Value;

use super::format::{self, NONE};
use super::http::Client;
use super::{ClientArgs, Output, emit};

/// `drover events`.
#[derive(Debug, clap::Args)]
pub(crate) struct EventsArgs {
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    /// Only events of this type (e.g. status_update_event,
    /// deployment_failed); repeat for more.
    #[arg(long = "type", short = 't', value_name = "TYPE")]
    pub(crate) types: Vec<String>,
}

/// Runs `drover events`.
pub(crate) async fn run(args: EventsArgs) -> anyhow::Result<()> {
    let client = Client::from_args(&args.client)?;
    let types: Vec<&str> = args.types.iter().map(String::as_str).collect();
    let mut stream = client.events(&types).await?;
    let json = args.client.output == Output::Json;
    loop {
        tokio::select! {
            event = stream.next() => match event {
                Some(Ok(event)) => {
                    let line = if json {
                        // As sent, on one line (the data is one JSON line).
                        event.data.replace('\n', " ")
                    } else {
                        render_line(&event.event, &event.data)
                    };
                    emit(&format!("{line}\n"))?;
                }
                Some(Err(e)) => return Err(e),
                None => anyhow::bail!("the event stream ended (Drover closed it)"),
            },
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

/// `RestartApplication /web, ScaleApplication /db`.
fn actions(step: &Value) -> String {
    let actions: Vec<String> = step["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| format!("{} {}", text(a, "action"), text(a, "app")))
        .collect();
    if actions.is_empty() { NONE.to_owned() } else { actions.join(", ") }
}

/// What an event says, in a few words.
fn summary(kind: &str, d: &Value) -> String {
    let with_message = |head: String, message: &str| {
        if message.is_empty() { head } else { format!("{head}: {message}") }
    };
    match kind {
        "status_update_event" => with_message(
            format!(
                "{} {} {} on {}",
                text(d, "appId"),
                text(d, "taskId"),
                text(d, "taskStatus"),
                text(d, "host")
            ),
            text(d, "message"),
        ),
        "instance_changed_event" => {
            format!("{} {} {}", text(d, "runSpecId"), text(d, "instanceId"), text(d, "condition"))
        }
        "health_status_changed_event" => format!(
            "{} {} {}",
            text(d, "appId"),
            text(d, "taskId"),
            if d["alive"] == true { "healthy" } else { "unhealthy" }
        ),
        "instance_health_changed_event" => format!(
            "{} {} {}",
            text(d, "runSpecId"),
            text(d, "instanceId"),
            if d["healthy"] == true { "healthy" } else { "unhealthy" }
        ),
        "deployment_info" => {
            format!("{} step: {}", text(&d["plan"], "id"), actions(&d["currentStep"]))
        }
        "deployment_step_success" => {
            format!("{} step done: {}", text(&d["plan"], "id"), actions(&d["currentStep"]))
        }
        "deployment_success" => {
            let apps: Vec<&str> = d["plan"]["steps"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|s| s["actions"].as_array().into_iter().flatten())
                .map(|a| text(a, "app"))
                .collect();
            let mut apps = apps;
            apps.sort_unstable();
            apps.dedup();
            format!("{} {}", text(d, "id"), apps.join(", ")).trim_end().to_owned()
        }
        "deployment_failed" => {
            let canceled = if d["canceled"] == true { " (canceled)" } else { "" };
            with_message(format!("{}{canceled}", text(d, "id")), text(d, "reason"))
        }
        "api_post_event" => format!(
            "{} {} {}",
            text(d, "clientIp"),
            text(d, "uri"),
            text(&d["appDefinition"], "id")
        ),
        "app_terminated_event" => text(d, "appId").to_owned(),
        "event_stream_attached" | "event_stream_detached" => text(d, "remoteAddress").to_owned(),
        "unknown_task_event" => format!(
            "{} {} on agent {}",
            text(d, "taskId"),
            text(d, "taskStatus"),
            text(d, "slaveId")
        ),
        _ => {
            // Whatever else: its fields, without the two every event has.
            let mut rest = d.clone();
            if let Some(o) = rest.as_object_mut() {
                o.remove("eventType");
                o.remove("timestamp");
            }
            super::apps::truncate(&rest.to_string(), 200)
        }
    }
}

/// One event as a line: `2026-08-21 03:15:00 status_update_event /web ...`.
pub(crate) fn render_line(kind: &str, data: &str) -> String {
    let Ok(value) = serde_json::from_str::<Value>(data) else {
        return format!("{NONE} {kind} {}", format::clean(data));
    };
    let time = format::utc(value["timestamp"].as_str());
    format::clean(&format!("{time} {kind} {}", summary(kind, &value)))
}
