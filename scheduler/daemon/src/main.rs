//! `drover`: the scheduler daemon (`drover serve`), the one-command
//! development cluster (`drover dev`) and the client commands that operate
//! a running Drover through its REST API (`drover apps`, `tasks`,
//! `deployments`, `queue`, `events`, `jobs`; see [`cli`]), plus shell
//! completions (`drover completions`).

mod cli;
mod config;
mod credentials;
mod dev;
mod mesos_adapter;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Drover: Marathon- and Chronos-compatible container scheduling on Apache Mesos.
#[derive(Debug, Parser)]
#[command(name = "drover", version, about, after_help = cli::EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the scheduler against a Mesos master and serve the API.
    Serve(Box<config::ServeArgs>),
    /// Start a real local Mesos cluster and Drover against it, until Ctrl-C.
    Dev(dev::DevArgs),
    /// Operate Marathon-style apps: list, show, deploy, scale, restart,
    /// delete (changes follow their deployment to the end).
    #[command(alias = "app")]
    Apps(cli::apps::AppsArgs),
    /// List tasks (of one app with --app), or watch them change (--watch).
    #[command(alias = "task")]
    Tasks(cli::tasks::TasksArgs),
    /// List the deployments in progress, or cancel one.
    #[command(alias = "deployment")]
    Deployments(cli::deployments::DeploymentsArgs),
    /// Show the apps waiting to launch and why offers did not fit them.
    Queue(cli::queue::QueueArgs),
    /// Print the event stream, one event per line, until Ctrl-C.
    Events(cli::events::EventsArgs),
    /// Operate Chronos-style jobs: list, show, add, run, kill, delete, history.
    #[command(alias = "job")]
    Jobs(cli::jobs::JobsArgs),
    /// Manage the API's credentials file: `drover credentials add NAME
    /// --role ROLE --file PATH` prints the new principal's token once.
    Credentials(credentials::CredentialsArgs),
    /// Print a completion script for a shell, e.g.
    /// `drover completions bash > /etc/bash_completion.d/drover`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DROVER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version are no errors; a wrong command line is exit
        // status 1 (2 means a failed deployment).
        Err(e) => {
            let _ = e.print();
            return Ok(if e.use_stderr() { ExitCode::FAILURE } else { ExitCode::SUCCESS });
        }
    };
    match cli.command {
        Cmd::Serve(args) => {
            init_tracing();
            let config = (*args).resolve()?;
            serve::run(config, shutdown_signal()).await?;
        }
        Cmd::Dev(args) => {
            init_tracing();
            dev::run(args).await?;
        }
        // Client commands report their own errors, without a debug dump.
        Cmd::Apps(args) => return Ok(cli::finish(cli::apps::run(args).await)),
        Cmd::Tasks(args) => return Ok(cli::finish(cli::tasks::run(args).await)),
        Cmd::Deployments(args) => return Ok(cli::finish(cli::deployments::run(args).await)),
        Cmd::Queue(args) => return Ok(cli::finish(cli::queue::run(args).await)),
        Cmd::Events(args) => return Ok(cli::finish(cli::events::run(args).await)),
        Cmd::Jobs(args) => return Ok(cli::finish(cli::jobs::run(args).await)),
        Cmd::Credentials(args) => return Ok(cli::finish(credentials::run(args))),
        Cmd::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "drover", &mut std::io::stdout());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "Cannot watch SIGTERM; only Ctrl-C stops Drover.");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("Shutting down.");
}
