//! `drover`: the scheduler daemon (`drover serve`), the one-command
//! development cluster (`drover dev`) and the client commands that operate
//! a running Drover through its REST API (`drover jobs`, see [`cli`]).

mod cli;
mod config;
mod dev;
mod mesos_adapter;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Drover: Marathon- and Chronos-compatible container scheduling on Apache Mesos.
#[derive(Debug, Parser)]
#[command(name = "drover", version, about)]
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
    /// Operate Chronos-style jobs: list, show, add, run, kill, delete, history.
    #[command(alias = "job")]
    Jobs(cli::jobs::JobsArgs),
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
    match Cli::parse().command {
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
        Cmd::Jobs(args) => return Ok(cli::finish(cli::jobs::run(args).await)),
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
