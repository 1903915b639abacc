//! `drover`: the scheduler daemon (`drover serve`) and the one-command
//! development cluster (`drover dev`).

mod config;
mod dev;
mod mesos_adapter;
mod serve;

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
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing();
    match cli.command {
        Cmd::Serve(args) => {
            let config = (*args).resolve()?;
            serve::run(config, shutdown_signal()).await
        }
        Cmd::Dev(args) => dev::run(args).await,
    }
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
