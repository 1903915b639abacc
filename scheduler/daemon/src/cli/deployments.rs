//! `drover deployments` (alias `deployment`): the deployments in progress
//! (`GET /v2/deployments`), and `cancel ID [--force]` (`DELETE
//! /v2/deployments/ID`): canceled and rolled back in a new deployment, or
//! with `--force` only stopped, leaving the apps as they are.

use anyhow::Context as _;
use http::{Method, StatusCode};

use super::format::{self, Table};
use super::http::{Client, api_error, encode};
use super::wire::{Deployed, Deployment};
use super::{ClientArgs, Output, emit};

/// `drover deployments`.
#[derive(Debug, clap::Args)]
pub(crate) struct DeploymentsArgs {
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    #[command(subcommand)]
    pub(crate) command: Option<DeploymentsCommand>,
}

/// The subcommands of `drover deployments` (none: list).
#[derive(Debug, clap::Subcommand)]
pub(crate) enum DeploymentsCommand {
    /// List the deployments in progress (the default).
    List,
    /// Cancel a deployment: its change is rolled back in a new deployment.
    Cancel {
        /// The deployment's id.
        id: String,
        /// Stop it without a rollback: the apps stay as they are, possibly
        /// with tasks of both versions.
        #[arg(long)]
        force: bool,
    },
}

/// Runs `drover deployments`.
pub(crate) async fn run(args: DeploymentsArgs) -> anyhow::Result<()> {
    let client = Client::from_args(&args.client)?;
    let json = args.client.output == Output::Json;
    match args.command.unwrap_or(DeploymentsCommand::List) {
        DeploymentsCommand::List => {
            let body = client.get("/v2/deployments").await?;
            if json {
                return emit(&format::pretty_json(&body)?);
            }
            let list: Vec<Deployment> =
                serde_json::from_slice(&body).context("unexpected answer from the API")?;
            emit(&render(&list))
        }
        DeploymentsCommand::Cancel { id, force } => {
            let path = format!("/v2/deployments/{}?force={force}", encode(&id));
            let (status, body) = client.exchange(Method::DELETE, &path, None).await?;
            if !status.is_success() {
                anyhow::bail!(api_error(status, &body));
            }
            if json {
                return if body.is_empty() { Ok(()) } else { emit(&format::pretty_json(&body)?) };
            }
            let rollback = if status == StatusCode::ACCEPTED || body.is_empty() {
                None
            } else {
                serde_json::from_slice::<Deployed>(&body)
                    .ok()
                    .and_then(|d| d.id().map(str::to_owned))
            };
            emit(&cancel_message(&id, rollback.as_deref()))
        }
    }
}

/// What `cancel` says.
pub(crate) fn cancel_message(id: &str, rollback: Option<&str>) -> String {
    match rollback {
        Some(r) => format!("deployment {id} canceled; rolling back in deployment {r}\n"),
        None => format!("deployment {id} canceled, not rolled back\n"),
    }
}

/// `drover deployments`: one row per deployment.
pub(crate) fn render(list: &[Deployment]) -> String {
    let mut table = Table::new(&["ID", "APPS", "STEP", "ACTIONS", "VERSION"]);
    for d in list {
        let actions: Vec<String> =
            d.current_actions.iter().map(|a| format!("{} {}", a.action, a.app)).collect();
        table.row(vec![
            d.id.clone(),
            d.affected_apps.join(", "),
            format!("{}/{}", d.current_step, d.total_steps),
            if actions.is_empty() { format::NONE.to_owned() } else { actions.join(", ") },
            format::utc(Some(&d.version)),
        ]);
    }
    table.render()
}
