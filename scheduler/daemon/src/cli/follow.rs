//! Following a deployment until it ends (the I/O around
//! [`super::progress`]): events from `/v2/events`, opened before the change
//! is sent so that none is missed, plus polls of `GET /v2/deployments` and
//! of each affected app (every 2 s; every second when the stream is
//! unavailable or breaks). The live view goes to stderr — redrawn in place
//! on a terminal, one line per change otherwise — and the outcome line (or
//! JSON object) to stdout.

use std::time::Duration;

use anyhow::anyhow;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::http::{Client, EventStream, encode};
use super::progress::{Input, Outcome, Progress, new_lines};
use super::sse::SseEvent;
use super::wire::{App, AppEnvelope, Deployed, Deployment, EventData};
use super::{Output, Unsuccessful, emit, format};

/// The events a deployment is followed by.
const FOLLOWED: &[&str] = &[
    "deployment_info",
    "deployment_step_success",
    "deployment_success",
    "deployment_failed",
    "status_update_event",
    "health_status_changed_event",
];

/// Time between polls while the event stream works.
const POLL: Duration = Duration::from_secs(2);
/// Time between polls without the event stream.
const POLL_ALONE: Duration = Duration::from_secs(1);
/// Failed polls in a row after which following gives up.
const MAX_POLL_FAILURES: u32 = 15;

/// How a change is waited for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wait {
    /// Follow the deployment (else return once it started).
    pub(crate) wait: bool,
    /// Give up (exit 2) after this long.
    pub(crate) timeout: Duration,
    pub(crate) output: Output,
}

/// Opens the event stream a change will be followed with (before the
/// change, so none of its events is missed). Without it, polls alone
/// follow the change.
pub(crate) async fn subscribe(client: &Client, wait: &Wait) -> Option<EventStream> {
    if !wait.wait {
        return None;
    }
    match client.events(FOLLOWED).await {
        Ok(stream) => Some(stream),
        Err(e) => {
            eprintln!("note: no event stream ({e:#}); following by polling");
            None
        }
    }
}

/// Reports a change the API accepted, then (unless `--no-wait`) follows
/// its deployment to the end. `raw` is the API's answer; `what` says what
/// the change was (`/web scaled to 3`). A deployment that does not
/// succeed in time is [`Unsuccessful`].
pub(crate) async fn deployed(
    client: &Client,
    stream: Option<EventStream>,
    raw: &[u8],
    apps: &[String],
    delete: bool,
    what: &str,
    wait: &Wait,
) -> anyhow::Result<()> {
    let deployed: Deployed =
        serde_json::from_slice(raw).map_err(|e| anyhow!("unexpected answer from the API: {e}"))?;
    let Some(id) = deployed.id().map(str::to_owned) else {
        // Nothing to follow (an answer without a deployment).
        return if wait.output == Output::Json {
            emit(&format::pretty_json(raw)?)
        } else {
            emit(&format!("{what}\n"))
        };
    };
    if !wait.wait {
        return if wait.output == Output::Json {
            emit(&format::pretty_json(raw)?)
        } else {
            emit(&format!("{what}: deployment {id} started\n"))
        };
    }
    eprintln!("{what}: following deployment {id}");
    let progress = Progress::new(&id, &deployed.version, apps, delete);
    let outcome = follow(client, stream, progress, wait.timeout).await?;
    if wait.output == Output::Json {
        emit(&format!("{}\n", outcome.json))?;
    } else {
        emit(&format!("{}\n", outcome.line))?;
    }
    if outcome.success { Ok(()) } else { Err(Unsuccessful.into()) }
}

/// The next event of the stream, or never when there is none.
async fn next_event(stream: &mut Option<EventStream>) -> Option<anyhow::Result<SseEvent>> {
    match stream {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

async fn follow(
    client: &Client,
    mut stream: Option<EventStream>,
    mut progress: Progress,
    timeout: Duration,
) -> anyhow::Result<Outcome> {
    let start = Instant::now();
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut poll = tokio::time::interval(if stream.is_some() { POLL } else { POLL_ALONE });
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut view = View::stderr();
    // Where things stand before the first event.
    let _ = poll_once(client, &mut progress).await;
    let mut poll_failures = 0;
    let outcome = loop {
        tokio::select! {
            event = next_event(&mut stream) => match event {
                Some(Ok(event)) => {
                    if let Ok(data) = serde_json::from_str::<EventData>(&event.data) {
                        progress.apply(Input::Event(event.event, data));
                    }
                }
                end => {
                    let why = match end {
                        Some(Err(e)) => format!("{e:#}"),
                        _ => "Drover closed it".to_owned(),
                    };
                    view.note(&format!("note: the event stream ended ({why}); following by polling"));
                    stream = None;
                    poll = tokio::time::interval(POLL_ALONE);
                }
            },
            _ = poll.tick() => match poll_once(client, &mut progress).await {
                Ok(()) => poll_failures = 0,
                Err(e) => {
                    poll_failures += 1;
                    if poll_failures >= MAX_POLL_FAILURES {
                        view.finish();
                        return Err(e.context("following the deployment"));
                    }
                }
            },
            () = &mut deadline => break progress.timed_out(timeout.as_secs()),
        }
        if let Some(outcome) = progress.outcome() {
            // The counts the outcome reports, as the API has them now.
            let _ = poll_apps(client, &mut progress).await;
            break progress.outcome().unwrap_or(outcome);
        }
        view.draw(&progress.view(), start.elapsed());
    };
    view.draw(&progress.view(), start.elapsed());
    view.finish();
    Ok(outcome)
}

async fn poll_once(client: &Client, progress: &mut Progress) -> anyhow::Result<()> {
    let deployments: Vec<Deployment> = get(client, "/v2/deployments").await?;
    progress.apply(Input::Deployments(deployments));
    poll_apps(client, progress).await
}

async fn poll_apps(client: &Client, progress: &mut Progress) -> anyhow::Result<()> {
    for id in progress.apps() {
        let path = format!("/v2/apps{}?embed=app.tasks", app_path(&id));
        let (status, body) = client.exchange(http::Method::GET, &path, None).await?;
        let app: Option<App> = match status.as_u16() {
            404 => None,
            200..=299 => Some(
                serde_json::from_slice::<AppEnvelope>(&body)
                    .map_err(|e| anyhow!("unexpected answer from the API: {e}"))?
                    .app,
            ),
            _ => return Err(anyhow!(super::http::api_error(status, &body))),
        };
        progress.apply(Input::App(id, app));
    }
    Ok(())
}

async fn get<T: DeserializeOwned>(client: &Client, path: &str) -> anyhow::Result<T> {
    client.get_json(path).await
}

/// An app id as a URL path (`/prod/web`: each segment encoded).
pub(crate) fn app_path(id: &str) -> String {
    id.split('/').filter(|s| !s.is_empty()).map(|s| format!("/{}", encode(s))).collect()
}

/// The live view on stderr: redrawn in place on a terminal, otherwise each
/// line that changed, once.
pub(crate) struct View {
    term: console::Term,
    tty: bool,
    /// The lines shown last (on a terminal: on screen).
    shown: Vec<String>,
    /// Lines drawn on the terminal last time (to clear them).
    drawn: usize,
}

impl View {
    /// A view on stderr (a deployment's progress).
    pub(crate) fn stderr() -> View {
        View::on(console::Term::stderr())
    }

    /// A view on stdout (a watched table: the command's output).
    pub(crate) fn stdout() -> View {
        View::on(console::Term::stdout())
    }

    fn on(term: console::Term) -> View {
        let tty = term.is_term();
        View { term, tty, shown: Vec::new(), drawn: 0 }
    }

    /// Shows `lines` in place of the last ones on a terminal; otherwise
    /// all of them again, after a blank line.
    pub(crate) fn replace(&mut self, lines: &[String]) {
        if self.tty {
            let width = usize::from(self.term.size().1).max(20);
            let _ = self.term.clear_last_lines(self.drawn);
            for line in lines {
                let _ = self.term.write_line(&console::truncate_str(line, width, "…"));
            }
            self.drawn = lines.len();
        } else {
            if !self.shown.is_empty() {
                let _ = self.term.write_line("");
            }
            for line in lines {
                let _ = self.term.write_line(line);
            }
        }
        self.shown = lines.to_vec();
    }

    /// Shows `lines` (the first gets the elapsed time on a terminal).
    pub(crate) fn draw(&mut self, lines: &[String], elapsed: Duration) {
        if self.tty {
            let width = usize::from(self.term.size().1).max(20);
            let _ = self.term.clear_last_lines(self.drawn);
            for (i, line) in lines.iter().enumerate() {
                let line =
                    if i == 0 { format!("{line} [{}s]", elapsed.as_secs()) } else { line.clone() };
                let _ = self.term.write_line(&console::truncate_str(&line, width, "…"));
            }
            self.drawn = lines.len();
        } else {
            for line in new_lines(&self.shown, lines) {
                let _ = self.term.write_line(&line);
            }
        }
        self.shown = lines.to_vec();
    }

    /// A line above the view.
    pub(crate) fn note(&mut self, line: &str) {
        if self.tty {
            let _ = self.term.clear_last_lines(self.drawn);
            self.drawn = 0;
        }
        let _ = self.term.write_line(line);
        self.shown.clear();
    }

    /// Leaves the last view on screen.
    pub(crate) fn finish(&mut self) {
        self.drawn = 0;
    }
}
