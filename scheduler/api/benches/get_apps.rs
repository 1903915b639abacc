//! `GET /v2/apps` latency with 5,000 apps and 50,000 running tasks.
//!
//! Builds the state through the real scheduling core (each app is created,
//! offered resources, launched and reported RUNNING, so its deployment
//! finishes), publishes the snapshot, serves the real router on 127.0.0.1
//! and measures `GET /v2/apps`:
//!
//! 1. with `wrk` when it is installed (`apt-get install -y wrk`): one
//!    connection, then eight, for `BENCH_SECS` seconds each (default 15);
//! 2. always, with a sequential keep-alive client in this binary (200
//!    requests, then p50/p99/max).
//!
//! Run (release build): `cargo bench -p sched-api --bench get_apps`.
//! `BENCH_APPS`, `BENCH_TASKS_PER_APP` and `BENCH_SECS` change the sizes.
//! `BENCH_SERVE_ONLY=1` only serves (and prints the address) until killed,
//! for other load tools.

use std::net::SocketAddr;
use std::process::Command as Process;
use std::sync::Arc;
use std::time::Duration;

use drover_time::{ManualClock, Timestamp};
use sched_api::{ApiState, CommandRequest, EventBus, LimitsConfig, ServerInfo, app_json};
use sched_core::app::Resources;
use sched_core::instance::TaskState;
use sched_core::offer::Offer;
use sched_core::ports::PortRanges;
use sched_core::scheduler::{
    Command, CoreConfig, Effect, Scheduler, Snapshot, StatusUpdate, StoredState,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

const T0: Timestamp = Timestamp::from_secs(1_700_000_000);

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Performs the core's effects the way the daemon does (persists succeed at
/// once; calls are dropped) and returns the launched task ids.
fn drain(core: &mut Scheduler, now: Timestamp) -> Vec<String> {
    let mut launched = Vec::new();
    while let Some(effect) = core.poll_effect() {
        match effect {
            Effect::Persist { token, .. } => core.handle_persisted(token, Ok(()), now),
            Effect::Call(sched_core::scheduler::MesosCall::Accept { launches, .. }) => {
                launched.extend(launches.into_iter().map(|l| l.task_id.to_string()));
            }
            _ => {}
        }
    }
    launched
}

/// `apps` apps of `per_app` running tasks each, through the real core.
fn build(apps: usize, per_app: usize) -> Snapshot {
    let mut core = Scheduler::new(CoreConfig::default(), StoredState::default(), 7, T0);
    core.handle_subscribed("bench-framework".into(), T0);
    drain(&mut core, T0);
    for a in 0..apps {
        let now = T0.plus(Duration::from_millis(a as u64));
        let body = json!({
            "id": format!("/bench/group-{}/app-{a}", a % 50),
            "cmd": "sleep 3600",
            "instances": per_app,
            "cpus": 0.1,
            "mem": 32,
            "portDefinitions": [{"port": 0, "name": "http"}],
            "env": {"ROLE": "bench", "INDEX": a.to_string()},
            "labels": {"team": format!("team-{}", a % 20)},
            "healthChecks": [],
        });
        let spec = app_json::parse_app(&body, None).expect("a valid app");
        core.handle_command(
            a as u64,
            Command::CreateApp { spec: Box::new(spec), force: false },
            now,
        );
        drain(&mut core, now);
        let agent = a % 500;
        let offer = Offer::new(
            &format!("offer-{a}"),
            &format!("agent-{agent}"),
            &format!("agent-{agent}.bench"),
        )
        .with_resources(
            "*",
            Resources { cpus: 16.0, mem: 65536.0, disk: 10000.0, gpus: 0 },
            PortRanges::new([(31000, 31999)]),
        );
        core.handle_offers(vec![offer], now);
        let launched = drain(&mut core, now);
        assert_eq!(launched.len(), per_app, "app {a}: every instance launches");
        for task_id in launched {
            let status = StatusUpdate {
                task_id,
                state: TaskState::Running,
                agent_id: Some(format!("agent-{agent}")),
                message: None,
                reason: None,
                uuid: None,
                healthy: None,
            };
            core.handle_status(status, now);
            drain(&mut core, now);
        }
    }
    core.snapshot()
}

async fn serve(snapshot: Snapshot) -> SocketAddr {
    let (snap_tx, snap_rx) = watch::channel(Arc::new(snapshot));
    let (cmd_tx, cmd_rx) = mpsc::channel::<CommandRequest>(1);
    // Reads never reach the scheduler loop; nobody answers commands here.
    tokio::spawn(async move {
        let _keep = (snap_tx, cmd_rx);
        std::future::pending::<()>().await;
    });
    let info = Arc::new(ServerInfo {
        leader: "127.0.0.1:0".into(),
        master: "http://127.0.0.1:5050".into(),
        framework_name: "drover".into(),
        failover_timeout_secs: 604_800.0,
        decline_offer_duration_ms: 120_000,
        reconciliation_interval_ms: 600_000,
        min_revive_offers_interval_ms: 5000,
        executor: "drover-executor".into(),
        mesos_user: "root".into(),
        http_port: 0,
    });
    // The clock stands still, so no rate limit (its tokens would never come back).
    let state =
        ApiState::new(snap_rx, cmd_tx, info, Arc::new(ManualClock::new(T0)), EventBus::default())
            .with_limits(LimitsConfig { rate_limit_per_second: 0, ..LimitsConfig::default() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(sched_api::serve(listener, sched_api::router(state), std::future::pending()));
    addr
}

/// One keep-alive `GET`; returns the body size.
async fn get(stream: &mut TcpStream, addr: SocketAddr, path: &str, buf: &mut Vec<u8>) -> usize {
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    stream.write_all(req.as_bytes()).await.expect("send");
    buf.clear();
    let mut chunk = vec![0u8; 1 << 20];
    let (head_len, body_len) = loop {
        let n = stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "the server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..i]).expect("an HTTP head");
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse().ok())?
                })
                .expect("a content-length");
            break (i + 4, len);
        }
    };
    while buf.len() < head_len + body_len {
        let n = stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "the server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
    body_len
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

async fn client_loop(addr: SocketAddr, path: &str, requests: usize) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut buf = Vec::new();
    let mut size = 0;
    for _ in 0..3 {
        size = get(&mut stream, addr, path, &mut buf).await;
    }
    let mut times = Vec::with_capacity(requests);
    for _ in 0..requests {
        let start = tokio::time::Instant::now();
        get(&mut stream, addr, path, &mut buf).await;
        times.push(start.elapsed());
    }
    times.sort();
    println!(
        "client loop  GET {path}: {requests} sequential requests, body {:.1} MB: p50 {}  p99 {}  max {}",
        size as f64 / 1e6,
        ms(percentile(&times, 0.50)),
        ms(percentile(&times, 0.99)),
        ms(times[times.len() - 1]),
    );
}

fn wrk(addr: SocketAddr, path: &str, connections: usize, secs: usize) {
    let url = format!("http://{addr}{path}");
    let threads = connections.min(2).to_string();
    let args = [
        "-t",
        &threads,
        "-c",
        &connections.to_string(),
        "-d",
        &format!("{secs}s"),
        "--latency",
        &url,
    ];
    println!("$ wrk {}", args.join(" "));
    match Process::new("wrk").args(args).output() {
        Ok(out) => print!("{}", String::from_utf8_lossy(&out.stdout)),
        Err(e) => println!("wrk is not available ({e}); install it with `apt-get install -y wrk`."),
    }
}

fn main() {
    let apps = env("BENCH_APPS", 5000);
    let per_app = env("BENCH_TASKS_PER_APP", 10);
    let secs = env("BENCH_SECS", 15);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let setup = tokio::time::Instant::now();
    let snapshot = build(apps, per_app);
    let tasks = snapshot.instances.values().filter(|i| i.active_task().is_some()).count();
    println!(
        "state: {} apps, {tasks} running tasks, {} deployments (built through the core in {:.1} s)",
        snapshot.apps.len(),
        snapshot.deployments.len(),
        setup.elapsed().as_secs_f64()
    );
    runtime.block_on(async move {
        let addr = serve(snapshot).await;
        if std::env::var_os("BENCH_SERVE_ONLY").is_some() {
            println!("serving on http://{addr}/v2/apps until killed");
            std::future::pending::<()>().await;
        }
        client_loop(addr, "/v2/apps", 200).await;
        client_loop(addr, "/v2/apps?embed=apps.tasks", 50).await;
        tokio::task::spawn_blocking(move || {
            wrk(addr, "/v2/apps", 1, secs);
            wrk(addr, "/v2/apps", 8, secs);
        })
        .await
        .expect("wrk runs");
    });
}
