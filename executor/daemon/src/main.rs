//! The `drover-executor` binary: settings, logging, the runtime (Docker for
//! container tasks, processes for the rest), the loop, and the final
//! clean-up of every process the tasks left behind.
//!
//! Exit codes: 0 after a normal exit (tasks done or shutdown), 1 when the
//! agent was lost or the executor could not start, 2 for a bad environment.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use drover_executor::config::Settings;
use drover_executor::{error_chain, main_loop};
use drover_time::{Clock, SystemClock};
use exec_core::ExitReason;
use exec_runtime::{DispatchRuntime, DockerRuntime, ProcessRuntime, procs};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let filter = std::env::var("DROVER_LOG").unwrap_or_else(|_| "info".to_owned());
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();

    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            tracing::error!(error = %error_chain(&e), "Invalid executor environment.");
            return ExitCode::from(2);
        }
    };
    // Orphaned grandchildren of the tasks are re-parented to us, so the
    // clean-up below finds them.
    if let Err(e) = procs::set_child_subreaper() {
        tracing::warn!(error = %error_chain(&e), "Cannot become a child subreaper.");
    }
    let code = match run(&settings) {
        Ok(ExitReason::TasksDone | ExitReason::Shutdown) => ExitCode::SUCCESS,
        Ok(ExitReason::AgentLost) => ExitCode::from(1),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "The executor failed.");
            ExitCode::from(1)
        }
    };
    let killed = procs::kill_all_children(Duration::from_secs(2));
    if killed > 0 {
        tracing::info!(killed, "Killed leftover processes.");
    }
    code
}

fn run(settings: &Settings) -> anyhow::Result<ExitReason> {
    // One thread: tasks are forked from the main thread, which lives as long
    // as the executor (their PR_SET_PDEATHSIG is tied to the forking thread).
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start tokio")?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let seed =
        u64::try_from(clock.now().as_millis()).unwrap_or(0) ^ (u64::from(std::process::id()) << 32);
    let runtime = Arc::new(DispatchRuntime::new(
        Arc::new(ProcessRuntime::new(&settings.sandbox, settings.path.clone())),
        Arc::new(DockerRuntime::new(settings.docker_config())),
    ));
    let reason =
        tokio.block_on(main_loop::run(settings, runtime, clock, seed)).context("main loop")?;
    // Dropping the runtime drops the tasks' exit watchers before the clean-up.
    drop(tokio);
    Ok(reason)
}
