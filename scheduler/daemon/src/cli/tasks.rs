//! `drover tasks`: the tasks Drover runs (`GET /v2/tasks`, or `GET
//! /v2/apps/ID/tasks` with `--app`), as a table or the API's JSON; with
//! `--watch`, redrawn whenever a task changes (`status_update_event`,
//! `health_status_changed_event`) until Ctrl-C.

use std::time::Duration;

use super::apps::{health_cell, ports_cell};
use super::follow::{View, app_path};
use super::format::{self, Table};
use super::http::Client;
use super::wire::{Task, Tasks};
use super::{ClientArgs, Output, emit};

/// `drover tasks`.
#[derive(Debug, clap::Args)]
pub(crate) struct TasksArgs {
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    /// Only the tasks of this app.
    #[arg(long, value_name = "ID")]
    pub(crate) app: Option<String>,
    /// Keep the table up to date as tasks change, until Ctrl-C.
    #[arg(long, short = 'w')]
    pub(crate) watch: bool,
}

/// The events after which a watched table is fetched again.
const CHANGES: &[&str] = &["status_update_event", "health_status_changed_event"];
/// Time between fetches of a watched table when nothing is heard.
const REFRESH: Duration = Duration::from_secs(10);
/// Time to let a burst of events pass before fetching.
const SETTLE: Duration = Duration::from_millis(200);

/// Runs `drover tasks`.
pub(crate) async fn run(args: TasksArgs) -> anyhow::Result<()> {
    let client = Client::from_args(&args.client)?;
    let path = match &args.app {
        Some(app) => format!("/v2/apps{}/tasks", app_path(app)),
        None => "/v2/tasks".to_owned(),
    };
    let json = args.client.output == Output::Json;
    if !args.watch {
        let body = client.get(&path).await?;
        return emit(&if json {
            format::pretty_json(&body)?
        } else {
            render(&decode(&body)?.tasks)
        });
    }
    watch(&client, &path, json).await
}

fn decode(body: &[u8]) -> anyhow::Result<Tasks> {
    use anyhow::Context as _;
    serde_json::from_slice(body).context("unexpected answer from the API")
}

/// Fetches and shows the table after every change, until Ctrl-C.
async fn watch(client: &Client, path: &str, json: bool) -> anyhow::Result<()> {
    let mut stream = client.events(CHANGES).await?;
    let mut view = View::stdout();
    let mut shown = String::new();
    loop {
        let body = client.get(path).await?;
        let text = if json {
            // One line per state, for tools that read lines.
            let value: serde_json::Value = serde_json::from_slice(&body)?;
            format!("{value}\n")
        } else {
            render(&decode(&body)?.tasks)
        };
        if text != shown {
            if json {
                emit(&text)?;
            } else {
                let lines: Vec<String> = text.lines().map(str::to_owned).collect();
                view.replace(&lines);
            }
            shown = text;
        }
        tokio::select! {
            event = stream.next() => match event {
                Some(Ok(_)) => {
                    // Let a burst of changes pass, then fetch once.
                    let settle = tokio::time::sleep(SETTLE);
                    tokio::pin!(settle);
                    loop {
                        tokio::select! {
                            event = stream.next() => match event {
                                Some(Ok(_)) => {}
                                Some(Err(e)) => return Err(e),
                                None => anyhow::bail!("the event stream ended (Drover closed it)"),
                            },
                            () = &mut settle => break,
                        }
                    }
                }
                Some(Err(e)) => return Err(e),
                None => anyhow::bail!("the event stream ended (Drover closed it)"),
            },
            () = tokio::time::sleep(REFRESH) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// `drover tasks`: one row per task, in the API's order.
pub(crate) fn render(tasks: &[Task]) -> String {
    let mut table = Table::new(&["ID", "APP", "HOST", "PORTS", "STATE", "HEALTH", "STARTED"]);
    for task in tasks {
        table.row(vec![
            task.id.clone(),
            task.app_id.clone(),
            task.host.clone(),
            ports_cell(&task.ports),
            task.state.clone(),
            health_cell(task),
            format::utc(task.started_at.as_deref()),
        ]);
    }
    table.render()
}
