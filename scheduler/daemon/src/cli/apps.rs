//! `drover apps` (alias `app`): Marathon-style apps through a Drover's
//! `/v2` API.
//!
//! | command | request |
//! |---|---|
//! | `list` | `GET /v2/apps` |
//! | `show ID` | `GET /v2/apps/ID?embed=app.tasks` |
//! | `deploy -f FILE` | `GET /v2/apps/ID`, then `POST /v2/apps` (new) or `PUT /v2/apps/ID?partialUpdate=false` |
//! | `scale ID N` | `PUT /v2/apps/ID` with `{"instances": N}` |
//! | `restart ID` | `POST /v2/apps/ID/restart` |
//! | `delete ID` | `DELETE /v2/apps/ID` |
//!
//! Changes take `--force` (override the deployment that holds the app: it
//! is canceled, not rolled back) and follow the deployment they start
//! until it ends ([`super::follow`]), unless `--no-wait`.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::Value;

use super::follow::{self, Wait, app_path};
use super::format::{self, NONE, Table};
use super::http::{Client, api_error};
use super::wire::{App, AppEnvelope, Apps, HealthCheck, Task};
use super::{ClientArgs, EXIT_CODES, Output, emit};

/// `drover apps`: its client options and subcommand.
#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
pub(crate) struct AppsArgs {
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    #[command(subcommand)]
    pub(crate) command: AppsCommand,
}

/// How a change is sent and followed.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ChangeArgs {
    /// Override a deployment in progress on the app: it is canceled (not
    /// rolled back) and this change replaces it.
    #[arg(long)]
    pub(crate) force: bool,
    /// Return once the deployment started instead of following it.
    #[arg(long)]
    pub(crate) no_wait: bool,
    /// Give up following after this many seconds (exit status 2); the
    /// deployment goes on.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub(crate) timeout: u64,
}

impl ChangeArgs {
    fn wait(&self, output: Output) -> Wait {
        Wait { wait: !self.no_wait, timeout: Duration::from_secs(self.timeout), output }
    }

    fn query(&self) -> &'static str {
        if self.force { "force=true" } else { "force=false" }
    }
}

/// The subcommands of `drover apps`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum AppsCommand {
    /// List every app: instances, health, deployments, resources, image or
    /// command.
    List,
    /// Show one app: its definition in short and its tasks.
    Show {
        /// The app's id, e.g. /prod/web.
        id: String,
    },
    /// Create an app from Marathon app JSON, or replace it with the file's
    /// definition when it exists; then follow the deployment.
    Deploy {
        /// The app's JSON file, or `-` to read it from stdin.
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: PathBuf,
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// Change an app's number of instances; then follow the deployment.
    Scale {
        /// The app's id.
        id: String,
        /// The number of instances wanted.
        instances: u32,
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// Replace every task of an app (a rolling restart under its
    /// upgradeStrategy); then follow the deployment.
    Restart {
        /// The app's id.
        id: String,
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// Delete an app and stop its tasks; then follow the deployment.
    Delete {
        /// The app's id.
        id: String,
        #[command(flatten)]
        change: ChangeArgs,
    },
}

/// Runs one `drover apps` command.
pub(crate) async fn run(args: AppsArgs) -> anyhow::Result<()> {
    let client = Client::from_args(&args.client)?;
    let output = args.client.output;
    let json = output == Output::Json;
    match args.command {
        AppsCommand::List => {
            let body = client.get("/v2/apps").await?;
            emit(&if json {
                format::pretty_json(&body)?
            } else {
                render_list(&decode::<Apps>(&body)?.apps)
            })
        }
        AppsCommand::Show { id } => {
            let id = normalize(&id);
            let body = client.get(&format!("/v2/apps{}?embed=app.tasks", app_path(&id))).await?;
            emit(&if json {
                format::pretty_json(&body)?
            } else {
                render_show(&decode::<AppEnvelope>(&body)?.app)
            })
        }
        AppsCommand::Deploy { file, change } => {
            let raw = read_app(&file)?;
            let id = app_id_of(&raw, &file)?;
            let wait = change.wait(output);
            let (status, answer) =
                client.exchange(Method::GET, &format!("/v2/apps{}", app_path(&id)), None).await?;
            let exists = match status {
                StatusCode::NOT_FOUND => false,
                s if s.is_success() => true,
                s => bail!(api_error(s, &answer)),
            };
            let stream = follow::subscribe(&client, &wait).await;
            let (method, path, what) = if exists {
                let path =
                    format!("/v2/apps{}?partialUpdate=false&{}", app_path(&id), change.query());
                (Method::PUT, path, format!("app {id} updated"))
            } else {
                (Method::POST, format!("/v2/apps?{}", change.query()), format!("app {id} created"))
            };
            let body = client.send(method, &path, Some(Bytes::from(raw))).await.map_err(hint)?;
            follow::deployed(&client, stream, &body, &[id], false, &what, &wait).await
        }
        AppsCommand::Scale { id, instances, change } => {
            let id = normalize(&id);
            let wait = change.wait(output);
            let stream = follow::subscribe(&client, &wait).await;
            let path = format!("/v2/apps{}?{}", app_path(&id), change.query());
            let body = format!(r#"{{"instances": {instances}}}"#);
            let answer =
                client.send(Method::PUT, &path, Some(Bytes::from(body))).await.map_err(hint)?;
            let what = format!("app {id} scaled to {instances}");
            follow::deployed(&client, stream, &answer, &[id], false, &what, &wait).await
        }
        AppsCommand::Restart { id, change } => {
            let id = normalize(&id);
            let wait = change.wait(output);
            let stream = follow::subscribe(&client, &wait).await;
            let path = format!("/v2/apps{}/restart?{}", app_path(&id), change.query());
            let answer = client.send(Method::POST, &path, None).await.map_err(hint)?;
            let what = format!("app {id} restarting");
            follow::deployed(&client, stream, &answer, &[id], false, &what, &wait).await
        }
        AppsCommand::Delete { id, change } => {
            let id = normalize(&id);
            let wait = change.wait(output);
            let stream = follow::subscribe(&client, &wait).await;
            let path = format!("/v2/apps{}?{}", app_path(&id), change.query());
            let answer = client.send(Method::DELETE, &path, None).await.map_err(hint)?;
            let what = format!("app {id} deleted");
            follow::deployed(&client, stream, &answer, &[id], true, &what, &wait).await
        }
    }
}

/// A change refused because a deployment holds the app: says how to
/// override it from the command line.
fn hint(e: anyhow::Error) -> anyhow::Error {
    if e.to_string().contains("is locked by") {
        e.context("a deployment holds the app (see `drover deployments`); --force overrides it")
    } else {
        e
    }
}

/// `web` → `/web`: ids are absolute.
fn normalize(id: &str) -> String {
    format!("/{}", id.trim().trim_matches('/'))
}

fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> anyhow::Result<T> {
    serde_json::from_slice(body).context("unexpected answer from the API")
}

/// The app file's bytes (`-`: stdin).
fn read_app(file: &Path) -> anyhow::Result<Vec<u8>> {
    if file == Path::new("-") {
        let mut raw = Vec::new();
        std::io::stdin().read_to_end(&mut raw).context("cannot read the app from stdin")?;
        Ok(raw)
    } else {
        std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))
    }
}

/// The id of the app a file defines. The file is sent as it is; the API
/// checks the rest.
pub(crate) fn app_id_of(raw: &[u8], file: &Path) -> anyhow::Result<String> {
    let source =
        if file == Path::new("-") { "stdin".to_owned() } else { file.display().to_string() };
    let app: Value = serde_json::from_slice(raw)
        .with_context(|| format!("{source} does not hold valid app JSON"))?;
    let Some(fields) = app.as_object() else {
        bail!("{source} must hold one app, a JSON object");
    };
    match fields.get("id").and_then(Value::as_str).map(str::trim) {
        Some(id) if !id.trim_matches('/').is_empty() => Ok(normalize(id)),
        _ => bail!("{source}: the app has no \"id\""),
    }
}

// ----- rendering --------------------------------------------------------------------

/// Characters of an image or command a list shows.
const WHAT_WIDTH: usize = 40;

/// `text` cut to `width` characters, with `…` when it was longer.
pub(crate) fn truncate(text: &str, width: usize) -> String {
    let text = format::clean(text);
    if text.chars().count() <= width {
        text
    } else {
        let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// What an app runs: its image, else its command line.
fn what_runs(app: &App) -> String {
    if let Some(image) = app.container.as_ref().and_then(|c| c.docker.as_ref()).map(|d| &d.image)
        && !image.is_empty()
    {
        return image.clone();
    }
    match (&app.cmd, &app.args) {
        (Some(cmd), _) if !cmd.is_empty() => cmd.clone(),
        (_, Some(args)) if !args.is_empty() => format::shell_words(args),
        _ => NONE.to_owned(),
    }
}

/// A number as the API would write it, without a useless `.0`.
fn num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 { format!("{}", n as i64) } else { format!("{n}") }
}

/// `drover apps list`.
pub(crate) fn render_list(apps: &[App]) -> String {
    let mut table =
        Table::new(&["ID", "INSTANCES", "HEALTHY", "DEPLOYING", "CPUS", "MEM", "IMAGE/CMD"]);
    for app in apps {
        let healthy = if app.health_checks.is_empty() {
            NONE.to_owned()
        } else {
            format!("{}/{}", app.tasks_healthy, app.instances)
        };
        table.row(vec![
            app.id.clone(),
            format!("{}/{}", app.tasks_running, app.instances),
            healthy,
            format::yes_no(!app.deployments.is_empty()),
            num(app.cpus),
            num(app.mem),
            truncate(&what_runs(app), WHAT_WIDTH),
        ]);
    }
    table.render()
}

/// `HTTP /health on port index 0, every 1s (timeout 1s, grace 15s), killed after 3 failures`.
fn health_check_text(h: &HealthCheck) -> String {
    let mut out = h.protocol.clone();
    if let Some(path) = &h.path {
        out.push_str(&format!(" {path}"));
    }
    if let Some(cmd) = h.command.as_ref().and_then(|c| c["value"].as_str()) {
        out.push_str(&format!(" `{cmd}`"));
    }
    match (h.port, h.port_index) {
        (Some(port), _) => out.push_str(&format!(" on port {port}")),
        (None, Some(i)) => out.push_str(&format!(" on port index {i}")),
        _ => {}
    }
    out.push_str(&format!(
        ", every {}s (timeout {}s, grace {}s)",
        num(h.interval_seconds),
        num(h.timeout_seconds),
        num(h.grace_period_seconds)
    ));
    if h.max_consecutive_failures > 0 {
        out.push_str(&format!(", killed after {} failures", h.max_consecutive_failures));
    }
    out
}

fn ports_of(app: &App) -> String {
    let mappings = app.container.as_ref().map(|c| c.port_mappings.as_slice()).unwrap_or_default();
    let ports: Vec<String> = if mappings.is_empty() {
        app.port_definitions
            .iter()
            .map(|p| {
                let name = p.name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
                format!("{}/{}{name}", p.port, p.protocol)
            })
            .collect()
    } else {
        mappings
            .iter()
            .map(|m| {
                let host = m.host_port.map_or_else(|| "-".to_owned(), |h| h.to_string());
                let name = m.name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
                format!("{host}:{}/{}{name}", m.container_port, m.protocol)
            })
            .collect()
    };
    if ports.is_empty() { NONE.to_owned() } else { ports.join(", ") }
}

fn or_none(items: Vec<String>) -> String {
    if items.is_empty() { NONE.to_owned() } else { items.join(", ") }
}

/// A task's health: `healthy`, `unhealthy (HTTP 404)`, or `-` (no
/// results).
pub(crate) fn health_cell(task: &Task) -> String {
    match task.healthy() {
        None => NONE.to_owned(),
        Some(true) => "healthy".to_owned(),
        Some(false) => match task.failure_cause() {
            Some(cause) => format!("unhealthy ({})", truncate(cause, 40)),
            None => "unhealthy".to_owned(),
        },
    }
}

/// Ports as `31000,31001`.
pub(crate) fn ports_cell(ports: &[u32]) -> String {
    if ports.is_empty() {
        NONE.to_owned()
    } else {
        ports.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
    }
}

/// `drover apps show`: the definition in short, then the tasks.
pub(crate) fn render_show(app: &App) -> String {
    let container = app.container.as_ref().and_then(|c| c.docker.as_ref());
    let command = match (&app.cmd, &app.args) {
        (Some(cmd), _) => cmd.clone(),
        (_, Some(args)) => format::shell_words(args),
        _ => NONE.to_owned(),
    };
    let mut resources =
        format!("cpus {}, mem {} MB, disk {} MB", num(app.cpus), num(app.mem), num(app.disk));
    if app.gpus > 0.0 {
        resources.push_str(&format!(", gpus {}", num(app.gpus)));
    }
    let health = if app.health_checks.is_empty() {
        NONE.to_owned()
    } else {
        format!("{} healthy, {} unhealthy", app.tasks_healthy, app.tasks_unhealthy)
    };
    let constraints: Vec<String> = app.constraints.iter().map(|c| c.join(":")).collect();
    let labels: Vec<String> = app.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let upgrade = app.upgrade_strategy.as_ref().map_or_else(
        || NONE.to_owned(),
        |u| {
            format!(
                "minimumHealthCapacity {}, maximumOverCapacity {}",
                num(u.minimum_health_capacity),
                num(u.maximum_over_capacity)
            )
        },
    );
    let deployment = app.progress_deadline_seconds.map_or_else(
        || NONE.to_owned(),
        |d| {
            let rollback = if app.rolls_back() { "rolled back" } else { "not rolled back" };
            format!("fails after {}s without progress, then {rollback}", num(d))
        },
    );
    let deployments: Vec<String> = app.deployments.iter().map(|d| d.id.clone()).collect();
    let failure = app.last_task_failure.as_ref().map_or_else(
        || NONE.to_owned(),
        |f| format!("{} {}: {}", format::utc(Some(&f.timestamp)), f.state, f.message),
    );
    let mut pairs = vec![
        ("ID", app.id.clone()),
        ("Version", format::utc(Some(&app.version))),
        ("Config since", format::utc(Some(app.config_since()))),
    ];
    if let Some(docker) = container {
        pairs.push(("Image", docker.image.clone()));
    }
    pairs.extend([
        ("Command", command),
        (
            "Instances",
            format!(
                "{} wanted, {} running, {} staging",
                app.instances, app.tasks_running, app.tasks_staged
            ),
        ),
        ("Health", health),
        ("Resources", resources),
        ("Ports", ports_of(app)),
        ("Health checks", or_none(app.health_checks.iter().map(health_check_text).collect())),
        ("Constraints", or_none(constraints)),
        ("Labels", or_none(labels)),
        ("Upgrade", upgrade),
        ("Deployment", deployment),
        ("Deployments", or_none(deployments)),
        ("Last failure", failure),
    ]);
    let mut out = format::key_values(&pairs);
    out.push('\n');
    let mut table = Table::new(&["TASK", "HOST", "PORTS", "STATE", "HEALTH", "STARTED", "VERSION"]);
    for task in &app.tasks {
        table.row(vec![
            task.id.clone(),
            task.host.clone(),
            ports_cell(&task.ports),
            task.state.clone(),
            health_cell(task),
            format::utc(task.started_at.as_deref()),
            format::utc(Some(&task.version)),
        ]);
    }
    out.push_str(&table.render());
    out
}

#[cfg(test)]
mod tests;
