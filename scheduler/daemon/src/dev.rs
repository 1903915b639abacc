//! `drover dev`: a real local Mesos 1.11 cluster (through
//! `integration/mesos-local`) plus Drover against it, in one command.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::config::ServeArgs;

/// Flags of `drover dev`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct DevArgs {
    /// Address of Drover's REST API.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) listen: SocketAddr,
    /// Port of the local Mesos master (agents share it).
    #[arg(long, default_value_t = 5050)]
    pub(crate) mesos_port: u16,
    /// Number of Mesos agents.
    #[arg(long, default_value_t = 1)]
    pub(crate) agents: u32,
    /// Resources of each agent.
    #[arg(long, default_value = "cpus:4;mem:4096;disk:8192;ports:[31000-32000]")]
    pub(crate) resources: String,
    /// Where Mesos keeps its work directories [default: $TMPDIR/drover-dev].
    #[arg(long)]
    pub(crate) work_dir: Option<PathBuf>,
    /// Path of the `integration/mesos-local/mesos-local` script [default: found from the current directory].
    #[arg(long, env = "DROVER_MESOS_LOCAL")]
    pub(crate) mesos_local: Option<PathBuf>,
    /// Require authentication even on a loopback --listen address: make a
    /// fresh admin token and print it. By default `drover dev` serves the
    /// API open on a loopback address (with a loud notice), and with a
    /// token on any other address.
    #[arg(long)]
    pub(crate) auth: bool,
}

const SCRIPT: &str = "integration/mesos-local/mesos-local";

fn find_script(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let mut starts = vec![std::env::current_dir().context("current directory")?];
    if let Ok(exe) = std::env::current_exe() {
        starts.push(exe);
    }
    for start in starts {
        for dir in start.ancestors() {
            let candidate = dir.join(SCRIPT);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    bail!(
        "cannot find {SCRIPT}; run `drover dev` inside the Drover repository or pass --mesos-local"
    )
}

async fn mesos_local(script: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = tokio::process::Command::new(script)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {}", script.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "`mesos-local {}` failed:\n{}{}",
            args.join(" "),
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(stdout)
}

/// Runs the development cluster until Ctrl-C.
pub(crate) async fn run(args: DevArgs) -> anyhow::Result<()> {
    // Open only where nobody else can connect.
    let open = !args.auth && args.listen.ip().is_loopback();
    let script = find_script(args.mesos_local.as_deref())?;
    let work_dir = args.work_dir.clone().unwrap_or_else(|| std::env::temp_dir().join("drover-dev"));
    // A fresh admin token for every run (unless the API runs open).
    let credentials = work_dir.join("credentials");
    let token = if open {
        None
    } else {
        std::fs::create_dir_all(&work_dir)
            .with_context(|| format!("creating {}", work_dir.display()))?;
        match std::fs::remove_file(&credentials) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("replacing {}", credentials.display()));
            }
            _ => {}
        }
        Some(crate::credentials::add(&credentials, "admin", sched_api::auth::Role::Admin)?)
    };
    let mesos_dir = work_dir.join("mesos");
    std::fs::create_dir_all(&mesos_dir)
        .with_context(|| format!("creating {}", mesos_dir.display()))?;
    let mesos_dir_s = mesos_dir.display().to_string();
    let port = args.mesos_port.to_string();
    let agents = args.agents.to_string();
    eprintln!("Starting a local Mesos 1.11 cluster (first run downloads and builds it)...");
    let ready = mesos_local(
        &script,
        &[
            "start",
            "--work-dir",
            &mesos_dir_s,
            "--port",
            &port,
            "--agents",
            &agents,
            "--resources",
            &args.resources,
        ],
    )
    .await?;
    let master = format!("http://127.0.0.1:{}", args.mesos_port);
    eprintln!("{}", ready.trim());

    let data_dir = work_dir.join("state");
    let serve = ServeArgs {
        master: Some(master.clone()),
        listen: Some(args.listen),
        failover_timeout_secs: Some(3600),
        data_dir: Some(data_dir.clone()),
        insecure_open: open,
        credentials_file: token.as_ref().map(|_| credentials.clone()),
        ..ServeArgs::default()
    };
    let config = match serve.resolve() {
        Ok(c) => c,
        Err(e) => {
            let _ = mesos_local(&script, &["stop", "--work-dir", &mesos_dir_s]).await;
            return Err(e);
        }
    };
    println!();
    println!("  Mesos master   {master}   (state: {master}/master/state)");
    println!("  Drover API     http://{}", args.listen);
    println!("  Mesos logs     {}/mesos.log", mesos_dir.display());
    println!("  Drover state   {} (embedded store)", data_dir.display());
    println!("  Executor       {}", config.executor.path);
    println!();
    let auth = match &token {
        Some(token) => {
            println!("  ************************************************************************");
            println!("  Admin token    {token}");
            println!("  ************************************************************************");
            println!("  (a new one every run; the API refuses requests without it)");
            println!("  export DROVER_TOKEN={token}   # for `drover apps ...` and curl below");
            println!();
            " -H \"Authorization: Bearer $DROVER_TOKEN\""
        }
        None => {
            println!(
                "  !!! THE API IS OPEN: served without authentication on loopback; anyone on this host is an admin (`drover dev --auth` makes a token) !!!"
            );
            println!();
            ""
        }
    };
    println!(
        "  Try: curl{auth} -X POST http://{}/v2/apps -H 'Content-Type: application/json' -d @deploy/examples/sleepy.json",
        args.listen
    );
    println!("       curl{auth} http://{}/v2/tasks", args.listen);
    println!();
    println!("  Ctrl-C stops Drover and the cluster.");
    let result = crate::serve::run(config, crate::shutdown_signal()).await;
    eprintln!("Stopping the Mesos cluster...");
    // Give executors a moment to report, then stop every process of the cluster.
    tokio::time::sleep(Duration::from_millis(200)).await;
    match mesos_local(&script, &["stop", "--work-dir", &mesos_dir_s]).await {
        Ok(out) => eprint!("{out}"),
        Err(e) => eprintln!("{e:#}"),
    }
    result
}
