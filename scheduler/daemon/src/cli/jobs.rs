//! `drover jobs` (alias `job`): Chronos-style jobs through a Drover's
//! `/v1/scheduler` API.
//!
//! | command | request |
//! |---|---|
//! | `list` | `GET /v1/scheduler/jobs` and `GET /v1/scheduler/jobs/summary` (JSON: the first) |
//! | `show NAME` | `GET /v1/scheduler/job/NAME` |
//! | `add -f FILE` | `POST /v1/scheduler/iso8601`, or `/dependency` when the job has `parents` |
//! | `run NAME [--arg A]...` | `PUT /v1/scheduler/job/NAME?arguments=A&...` |
//! | `kill NAME` | `DELETE /v1/scheduler/task/kill/NAME` |
//! | `delete NAME` | `DELETE /v1/scheduler/job/NAME` |
//! | `history NAME` | `GET /v1/scheduler/job/NAME/runs` |
//!
//! The wire types here are the client's own reading of the API's JSON:
//! every field has a default, so a Drover that adds fields (or lacks one)
//! still lists.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http::Method;
use serde::Deserialize;
use serde_json::Value;

use super::format::{self, NONE, Table};
use super::http::{Client, encode};
use super::{ClientArgs, Output, emit};

/// `drover jobs`: its client options and subcommand.
#[derive(Debug, clap::Args)]
pub(crate) struct JobsArgs {
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    #[command(subcommand)]
    pub(crate) command: JobsCommand,
}

/// The subcommands of `drover jobs`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum JobsCommand {
    /// List every job: schedule, next run, last result, activity and counts.
    List,
    /// Show one job: schedule, command, container, counts, last results.
    Show {
        /// The job's name.
        name: String,
    },
    /// Create or replace a job from Chronos job JSON (a dependent job when
    /// it has `parents`).
    Add {
        /// The job's JSON file, or `-` to read it from stdin.
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: PathBuf,
    },
    /// Run a job now, whatever its schedule.
    Run {
        /// The job's name.
        name: String,
        /// An argument appended to the job's command (jobs with `shell:
        /// false`); repeat for more. The API splits arguments at commas, so
        /// an argument cannot contain one.
        #[arg(long = "arg", value_name = "ARG", allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Kill a job's active runs.
    Kill {
        /// The job's name.
        name: String,
    },
    /// Delete a job; its active runs are killed, its dependents take over
    /// its parents (or its schedule).
    Delete {
        /// The job's name.
        name: String,
    },
    /// A job's runs, oldest first: the active ones and the kept history.
    History {
        /// The job's name.
        name: String,
    },
}

/// Runs one `drover jobs` command.
pub(crate) async fn run(args: JobsArgs) -> anyhow::Result<()> {
    let client = Client::from_args(&args.client)?;
    let json = args.client.output == Output::Json;
    match args.command {
        JobsCommand::List if json => emit(&format::pretty_json(&client.get(JOBS).await?)?),
        JobsCommand::List => {
            let (jobs, summary) = tokio::try_join!(
                client.get_json::<Vec<Job>>(JOBS),
                client.get_json::<Summary>(SUMMARY)
            )?;
            emit(&render_list(&jobs, &summary.jobs))
        }
        JobsCommand::Show { name } => {
            let body = client.get(&job_path(&name)).await?;
            emit(&if json { format::pretty_json(&body)? } else { render_show(&decode(&body)?) })
        }
        JobsCommand::History { name } => {
            let body = client.get(&format!("{}/runs", job_path(&name))).await?;
            emit(&if json {
                format::pretty_json(&body)?
            } else {
                render_history(&decode::<Vec<Run>>(&body)?)
            })
        }
        JobsCommand::Add { file } => {
            let raw = read_job(&file)?;
            let (path, name) = add_request(&raw, &file)?;
            client.send(Method::POST, path, Some(Bytes::from(raw))).await?;
            done(json, &format!("job {name} saved"))
        }
        JobsCommand::Run { name, args } => {
            let query = run_query(&args)?;
            client.send(Method::PUT, &format!("{}{query}", job_path(&name)), None).await?;
            done(json, &format!("job {name} run queued"))
        }
        JobsCommand::Kill { name } => {
            let path = format!("/v1/scheduler/task/kill/{}", encode(&name));
            client.send(Method::DELETE, &path, None).await?;
            done(json, &format!("job {name} runs killed"))
        }
        JobsCommand::Delete { name } => {
            client.send(Method::DELETE, &job_path(&name), None).await?;
            done(json, &format!("job {name} deleted"))
        }
    }
}

const JOBS: &str = "/v1/scheduler/jobs";
const SUMMARY: &str = "/v1/scheduler/jobs/summary";

fn job_path(name: &str) -> String {
    format!("/v1/scheduler/job/{}", encode(name))
}

fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> anyhow::Result<T> {
    serde_json::from_slice(body).context("unexpected answer from the API")
}

/// The confirmation of a change; the API answered without a body, so JSON
/// output is empty.
fn done(json: bool, message: &str) -> anyhow::Result<()> {
    if json { Ok(()) } else { emit(&format!("{message}\n")) }
}

/// The job file's bytes (`-`: stdin).
fn read_job(file: &Path) -> anyhow::Result<Vec<u8>> {
    if file == Path::new("-") {
        let mut raw = Vec::new();
        std::io::stdin().read_to_end(&mut raw).context("cannot read the job from stdin")?;
        Ok(raw)
    } else {
        std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))
    }
}

/// Where a job is posted (Chronos' dependent jobs have their own endpoint)
/// and its name. The file is sent as it is; the API checks the rest.
fn add_request(raw: &[u8], file: &Path) -> anyhow::Result<(&'static str, String)> {
    let source =
        if file == Path::new("-") { "stdin".to_owned() } else { file.display().to_string() };
    let job: Value = serde_json::from_slice(raw)
        .with_context(|| format!("{source} does not hold valid job JSON"))?;
    let Some(fields) = job.as_object() else {
        bail!("{source} must hold one job, a JSON object");
    };
    let name = fields.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
    let dependent = fields.get("parents").and_then(Value::as_array).is_some_and(|p| !p.is_empty());
    let path = if dependent { "/v1/scheduler/dependency" } else { "/v1/scheduler/iso8601" };
    Ok((path, name))
}

/// `?arguments=a&arguments=b` for a manual run ("" without arguments).
fn run_query(args: &[String]) -> anyhow::Result<String> {
    if let Some(bad) = args.iter().find(|a| a.contains(',')) {
        bail!(
            "--arg '{bad}': the API splits arguments at commas, so an argument cannot contain one"
        );
    }
    let pairs: Vec<String> = args.iter().map(|a| format!("arguments={}", encode(a))).collect();
    Ok(if pairs.is_empty() { String::new() } else { format!("?{}", pairs.join("&")) })
}

// ----- the API's JSON, as the client reads it -----------------------------------

/// A job (`GET /v1/scheduler/job/{name}`, one of `GET /v1/scheduler/jobs`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Job {
    name: String,
    description: String,
    owner: String,
    command: String,
    shell: Option<bool>,
    arguments: Vec<String>,
    schedule: Option<String>,
    schedule_time_zone: Option<String>,
    parents: Option<Vec<String>>,
    container: Option<Container>,
    cpus: Option<f64>,
    mem: Option<f64>,
    disk: Option<f64>,
    retries: Option<u32>,
    concurrency_policy: Option<String>,
    disabled: bool,
    success_count: u64,
    error_count: u64,
    errors_since_last_success: u64,
    last_success: Option<String>,
    last_error: Option<String>,
    next_run_at: Option<String>,
    last_run_status: Option<String>,
}

/// A job's container.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Container {
    image: String,
}

/// `GET /v1/scheduler/jobs/summary`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Summary {
    jobs: Vec<SummaryItem>,
}

/// One job of the summary. On the wire (as in Chronos) `status` is the last
/// result and `state` the activity.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct SummaryItem {
    name: String,
    /// `success`, `failure` or `fresh`.
    status: String,
    /// `idle`, `queued` or `<n> running`.
    state: String,
}

/// One run (`GET /v1/scheduler/job/{name}/runs`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Run {
    id: String,
    trigger: RunTrigger,
    status: String,
    attempts: u32,
    started_at: Option<String>,
    finished_at: Option<String>,
    message: String,
}

/// Why a run happened.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct RunTrigger {
    /// `schedule`, `dependency` or `manual`.
    #[serde(rename = "type")]
    kind: String,
    due_at: Option<String>,
    arguments: Vec<String>,
}

// ----- rendering --------------------------------------------------------------------

fn or_none(text: Option<&str>) -> String {
    match text.map(str::trim) {
        None | Some("") => NONE.to_owned(),
        Some(t) => t.to_owned(),
    }
}

/// The schedule as a list shows it: the schedule and its zone, or the
/// parents a dependent job runs after.
fn schedule_cell(job: &Job) -> String {
    match (job.schedule.as_deref(), job.parents.as_deref()) {
        (Some(s), _) if !s.is_empty() => match job.schedule_time_zone.as_deref() {
            Some(zone) if !zone.is_empty() => format!("{s} ({zone})"),
            _ => s.to_owned(),
        },
        (_, Some(parents)) if !parents.is_empty() => format!("after {}", parents.join(", ")),
        _ => NONE.to_owned(),
    }
}

/// `drover jobs list`: one row per job, joined with the summary's last
/// result and activity by name.
pub(crate) fn render_list(jobs: &[Job], summary: &[SummaryItem]) -> String {
    let by_name: BTreeMap<&str, &SummaryItem> =
        summary.iter().map(|s| (s.name.as_str(), s)).collect();
    let mut table = Table::new(&[
        "NAME",
        "SCHEDULE",
        "NEXT RUN",
        "LAST RESULT",
        "ACTIVE",
        "SUCCESSES",
        "ERRORS",
        "DISABLED",
    ]);
    for job in jobs {
        let item = by_name.get(job.name.as_str());
        table.row(vec![
            job.name.clone(),
            schedule_cell(job),
            format::utc(job.next_run_at.as_deref()),
            or_none(item.map(|s| s.status.as_str())),
            or_none(item.map(|s| s.state.as_str())),
            job.success_count.to_string(),
            job.error_count.to_string(),
            format::yes_no(job.disabled),
        ]);
    }
    table.render()
}

/// `cpus 0.1, mem 32 MB, disk 256 MB`.
fn resources(job: &Job) -> String {
    let mut parts = Vec::new();
    for (what, value, unit) in
        [("cpus", job.cpus, ""), ("mem", job.mem, " MB"), ("disk", job.disk, " MB")]
    {
        if let Some(v) = value {
            parts.push(format!("{what} {v}{unit}"));
        }
    }
    if parts.is_empty() { NONE.to_owned() } else { parts.join(", ") }
}

/// `drover jobs show`: the job as a key/value block.
pub(crate) fn render_show(job: &Job) -> String {
    let shell = job.shell.unwrap_or(true);
    let command = if shell {
        job.command.clone()
    } else {
        let mut words = vec![job.command.clone()];
        words.extend(job.arguments.iter().cloned());
        format::shell_words(&words)
    };
    let parents = job.parents.as_deref().filter(|p| !p.is_empty()).map(|p| p.join(", "));
    let image = job.container.as_ref().map(|c| c.image.as_str());
    format::key_values(&[
        ("Name", job.name.clone()),
        ("Description", or_none(Some(&job.description))),
        ("Owner", or_none(Some(&job.owner))),
        ("Schedule", or_none(job.schedule.as_deref())),
        ("Time zone", or_none(job.schedule_time_zone.as_deref())),
        ("Next run", format::utc(job.next_run_at.as_deref())),
        ("Parents", or_none(parents.as_deref())),
        ("Command", command),
        ("Shell", format::yes_no(shell)),
        ("Container image", or_none(image)),
        ("Resources", resources(job)),
        ("Retries", job.retries.map_or_else(|| NONE.to_owned(), |r| r.to_string())),
        ("Concurrency", or_none(job.concurrency_policy.as_deref())),
        ("Disabled", format::yes_no(job.disabled)),
        ("Last run", or_none(job.last_run_status.as_deref())),
        ("Successes", job.success_count.to_string()),
        (
            "Errors",
            format!(
                "{} ({} since the last success)",
                job.error_count, job.errors_since_last_success
            ),
        ),
        ("Last success", format::utc(job.last_success.as_deref())),
        ("Last error", format::utc(job.last_error.as_deref())),
    ])
}

/// Characters of a run id `history` shows (ids are UUIDs).
const SHORT_ID: usize = 8;

fn trigger_cell(t: &RunTrigger) -> String {
    match t.kind.as_str() {
        "schedule" => format!("schedule {}", format::utc(t.due_at.as_deref())),
        "manual" if !t.arguments.is_empty() => {
            format!("manual {}", format::shell_words(&t.arguments))
        }
        "" => NONE.to_owned(),
        other => other.to_owned(),
    }
}

/// `drover jobs history`: one row per run, in the API's order (oldest
/// first).
pub(crate) fn render_history(runs: &[Run]) -> String {
    let mut table =
        Table::new(&["RUN ID", "TRIGGER", "STATUS", "ATTEMPTS", "STARTED", "DURATION", "MESSAGE"]);
    for run in runs {
        table.row(vec![
            run.id.chars().take(SHORT_ID).collect(),
            trigger_cell(&run.trigger),
            or_none(Some(&run.status)),
            run.attempts.to_string(),
            format::utc(run.started_at.as_deref()),
            format::elapsed(run.started_at.as_deref(), run.finished_at.as_deref()),
            run.message.clone(),
        ]);
    }
    table.render()
}

#[cfg(test)]
mod tests;
