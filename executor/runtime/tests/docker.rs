//! The Docker runtime against a real Docker engine: the one `$DOCKER_HOST`
//! names, with the local image `drover-test/busybox:latest`
//! (`integration/docker-test-env.sh` provides both; `integration/test.sh`
//! always does). Without them these tests fail, they never skip.
//!
//! Every test uses its own framework id, so tests running at once (and the
//! end-to-end tier) never touch each other's containers.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{ListContainersOptions, RemoveContainerOptions};
use exec_core::{DockerSpec, Limits, Probe, ProbeOutcome};
use exec_runtime::docker::labels;
use exec_runtime::{
    Command, ContainerRuntime, DockerConfig, DockerRuntime, ExitStatus, RunningTask, Signal,
    TaskSpec, error_chain, probe, procs,
};

const IMAGE: &str = "drover-test/busybox:latest";
const EXECUTOR: &str = "ex-test";

static NEXT: AtomicU32 = AtomicU32::new(0);

fn docker_host() -> String {
    match std::env::var("DOCKER_HOST") {
        Ok(host) if !host.is_empty() => host,
        _ => panic!(
            "DOCKER_HOST is not set: these tests need a Docker engine with the image {IMAGE}. \
             Run integration/test.sh, or start one by hand with integration/docker-test-env.sh \
             (see its header)"
        ),
    }
}

/// A runtime with its own framework id and sandbox, and a client of the
/// same engine to look at what it did.
struct Env {
    rt: DockerRuntime,
    docker: Docker,
    dir: tempfile::TempDir,
    framework_id: String,
}

async fn env() -> Env {
    let host = docker_host();
    let dir = tempfile::tempdir().unwrap();
    let framework_id =
        format!("fw-runtime-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
    let mut config = DockerConfig::new(host.clone(), framework_id.clone(), EXECUTOR, dir.path());
    config.pull_timeout = Duration::from_secs(30);
    config.orphan_grace = Duration::from_secs(1);
    let rt = DockerRuntime::new(config);
    let docker = rt.client().await.unwrap_or_else(|e| {
        panic!("the Docker engine at {host} is unreachable: {}", error_chain(&e))
    });
    let present = docker.inspect_image(IMAGE).await;
    assert!(
        present.is_ok(),
        "the image {IMAGE} is missing: run integration/docker-test-env.sh build-image"
    );
    Env { rt, docker, dir, framework_id }
}

fn busybox() -> DockerSpec {
    DockerSpec::new(IMAGE)
}

fn task(id: &str, command: Command) -> TaskSpec {
    TaskSpec { container: Some(busybox()), ..TaskSpec::new(id, command) }
}

fn shell(line: &str) -> Command {
    Command::Shell(line.to_owned())
}

impl Env {
    async fn start(&self, spec: TaskSpec) -> RunningTask {
        self.rt.start(spec).await.unwrap_or_else(|e| panic!("start: {}", error_chain(&e)))
    }

    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// Ids of this test's containers (any state).
    async fn containers(&self) -> Vec<String> {
        let filter = vec![format!("{}={}", labels::FRAMEWORK_ID, self.framework_id)];
        let options = ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([("label".to_owned(), filter)])),
            ..Default::default()
        };
        let list = self.docker.list_containers(Some(options)).await.unwrap();
        list.into_iter().filter_map(|c| c.id).collect()
    }

    /// Creates and starts a `sleep` container with these labels, outside the runtime.
    async fn plant(&self, labels: BTreeMap<String, String>) -> String {
        let body = ContainerCreateBody {
            image: Some(IMAGE.into()),
            cmd: Some(vec!["sleep".into(), "300".into()]),
            labels: Some(labels.into_iter().collect()),
            host_config: Some(bollard::models::HostConfig {
                network_mode: Some("host".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let id = self.docker.create_container(None, body).await.unwrap().id;
        self.docker.start_container(&id, None).await.unwrap();
        id
    }

    async fn remove(&self, id: &str) {
        let options = RemoveContainerOptions { force: true, ..Default::default() };
        let _ = self.docker.remove_container(id, Some(options)).await;
    }
}

async fn exit_within(task: RunningTask, limit: Duration) -> ExitStatus {
    match tokio::time::timeout(limit, task.exit).await {
        Ok(result) => result.unwrap_or_else(|e| panic!("exit: {}", error_chain(&e))),
        Err(_) => panic!("the container did not exit within {limit:?}"),
    }
}

#[tokio::test]
async fn output_reaches_the_sandbox_files_and_exit_codes_propagate() {
    let e = env().await;
    std::fs::write(e.dir.path().join("stdout"), "earlier\n").unwrap();
    let t = e.start(task("out.1", shell("echo out; echo err >&2; exit 3"))).await;
    let id = t.container_id.clone().expect("a container id");
    assert_eq!(exit_within(t, Duration::from_secs(30)).await, ExitStatus::Code(3));
    assert_eq!(e.file("stdout"), "earlier\nout\n");
    assert_eq!(e.file("stderr"), "err\n");
    assert!(e.docker.inspect_container(&id, None).await.is_err(), "removed after the exit");

    // argv runs as the container's command; the sandbox and the variables are there.
    let argv = Command::Argv(vec![
        "sh".into(),
        "-c".into(),
        "echo $MESOS_TASK_ID $MESOS_SANDBOX $GREETING > $MESOS_SANDBOX/seen".into(),
    ]);
    let spec =
        TaskSpec { env: [("GREETING".to_owned(), "hi".to_owned())].into(), ..task("argv.1", argv) };
    assert_eq!(
        exit_within(e.start(spec).await, Duration::from_secs(30)).await,
        ExitStatus::Code(0)
    );
    assert_eq!(e.file("seen"), "argv.1 /mnt/mesos/sandbox hi\n");

    // No command: the image's own (`/bin/sh`, which exits at once without input).
    let t = e.start(task("default.1", Command::ImageDefault)).await;
    assert_eq!(exit_within(t, Duration::from_secs(30)).await, ExitStatus::Code(0));
    // A signal death is reported as one.
    let t = e.start(task("sig.1", shell("sh -c 'kill -KILL $$'; exit $?"))).await;
    assert_eq!(exit_within(t, Duration::from_secs(30)).await, ExitStatus::Signal(9));
    assert!(e.containers().await.is_empty());
}

#[tokio::test]
async fn limits_labels_and_parameters_are_set_on_the_container() {
    let e = env().await;
    let spec = TaskSpec {
        app_id: Some("/web".into()),
        limits: Limits { nano_cpus: Some(500_000_000), memory_bytes: Some(48 << 20) },
        container: Some(DockerSpec {
            parameters: vec![
                ("label".into(), "team=web".into()),
                ("env".into(), "EXTRA=1".into()),
                ("workdir".into(), "/tmp".into()),
            ],
            ..busybox()
        }),
        ..TaskSpec::new("limited.1", shell("exec sleep 300"))
    };
    let t = e.start(spec).await;
    assert!(t.pid > 0, "the container's init pid");
    let id = t.container_id.clone().unwrap();
    let info = e.docker.inspect_container(&id, None).await.unwrap();
    let host = info.host_config.unwrap();
    assert_eq!(host.memory, Some(48 << 20));
    assert_eq!(host.nano_cpus, Some(500_000_000));
    assert_eq!(host.network_mode.as_deref(), Some("host"));
    let config = info.config.unwrap();
    let labels = config.labels.unwrap();
    assert_eq!(labels[labels::FRAMEWORK_ID], e.framework_id);
    assert_eq!(labels[labels::EXECUTOR_ID], EXECUTOR);
    assert_eq!(labels[labels::TASK_ID], "limited.1");
    assert_eq!(labels[labels::APP_ID], "/web");
    assert_eq!(labels["team"], "web");
    assert!(config.env.unwrap().contains(&"EXTRA=1".to_owned()));
    assert_eq!(config.working_dir.as_deref(), Some("/tmp"));
    t.control.signal(Signal::Kill).await.unwrap();
    assert_eq!(exit_within(t, Duration::from_secs(30)).await, ExitStatus::Signal(9));
    assert!(e.containers().await.is_empty());

    let bad = TaskSpec {
        container: Some(DockerSpec {
            parameters: vec![("pid".into(), "host".into())],
            ..busybox()
        }),
        ..TaskSpec::new("bad.1", shell("true"))
    };
    let err = error_chain(&e.rt.start(bad).await.unwrap_err());
    assert!(err.starts_with("unsupported docker parameter `--pid`"), "{err}");
}

#[tokio::test]
async fn sigterm_stops_a_trapping_container_and_sigkill_one_that_ignores_it() {
    let e = env().await;
    let polite =
        e.start(task("polite.1", shell("trap 'exit 0' TERM; while true; do sleep 1; done"))).await;
    let stubborn =
        e.start(task("stubborn.1", shell("trap '' TERM; while true; do sleep 1; done"))).await;
    // Let the shells install their traps.
    tokio::time::sleep(Duration::from_millis(500)).await;
    polite.control.signal(Signal::Term).await.unwrap();
    stubborn.control.signal(Signal::Term).await.unwrap();
    assert_eq!(exit_within(polite, Duration::from_secs(5)).await, ExitStatus::Code(0));
    let mut exit = tokio::spawn(stubborn.exit);
    assert!(
        tokio::time::timeout(Duration::from_secs(3), &mut exit).await.is_err(),
        "SIGTERM was not ignored"
    );
    stubborn.control.signal(Signal::Kill).await.unwrap();
    let status =
        tokio::time::timeout(Duration::from_secs(10), exit).await.unwrap().unwrap().unwrap();
    assert_eq!(status, ExitStatus::Signal(9));
    // Signalling a container that is gone is not an error.
    stubborn.control.signal(Signal::Kill).await.unwrap();
    assert!(e.containers().await.is_empty());
}

#[tokio::test]
async fn a_missing_image_fails_the_start_naming_the_image_and_the_docker_error() {
    let e = env().await;
    // A registry on a closed loopback port: the pull fails at once.
    let image = "127.0.0.1:1/drover-test/missing:1.0";
    let spec = TaskSpec {
        container: Some(DockerSpec { image: image.into(), ..busybox() }),
        ..TaskSpec::new("ghost.1", shell("true"))
    };
    let err = error_chain(&e.rt.start(spec).await.unwrap_err());
    assert!(err.starts_with(&format!("cannot pull image `{image}`: ")), "{err}");
    assert!(err.contains("connection refused"), "the Docker error is kept: {err}");
    assert!(e.containers().await.is_empty());
}

#[tokio::test]
async fn orphans_are_stopped_and_removed_but_owned_and_living_containers_are_not() {
    let e = env().await;
    let me = e.rt.owner().clone();
    let labelled = |executor_id: &str, pid: u32, start: u64, task: &str| {
        let mut l = exec_runtime::docker::Owner {
            executor_id: executor_id.into(),
            pid,
            start_time: start,
            ..me.clone()
        }
        .labels();
        l.insert(labels::TASK_ID.into(), task.into());
        l
    };
    // A process that has exited: its pid and start time name a dead executor.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    let untracked = e.plant(labelled(EXECUTOR, me.pid, me.start_time, "lost.1")).await;
    let dead = e.plant(labelled("ex-dead", dead_pid, 1, "dead.1")).await;
    let alive = e.plant(labelled("ex-alive", me.pid, me.start_time, "alive.1")).await;
    let owned = e.start(task("owned.1", shell("exec sleep 300"))).await;
    let mut reaped = e.rt.reap_orphans().await.unwrap();
    reaped.sort();
    let mut want = vec![untracked.clone(), dead.clone()];
    want.sort();
    assert_eq!(reaped, want);
    let left = e.containers().await;
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(&alive) && left.contains(owned.container_id.as_ref().unwrap()));
    assert!(!procs::is_same_process_alive(dead_pid, 1));

    // At exit the executor removes its own containers, running or not.
    let removed = e.rt.remove_all().await.unwrap();
    assert_eq!(removed, [owned.container_id.clone().unwrap()]);
    assert_eq!(e.containers().await, std::slice::from_ref(&alive));
    // Its exit watcher learns that the container is gone.
    let gone = tokio::time::timeout(Duration::from_secs(30), owned.exit).await.unwrap();
    assert!(matches!(gone, Err(_) | Ok(ExitStatus::Signal(9))), "{gone:?}");
    e.remove(&alive).await;
}

#[tokio::test]
async fn probes_reach_a_container_over_http_tcp_and_docker_exec() {
    let e = env().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let line = format!(
        "mkdir -p /tmp/www && echo ok > /tmp/www/health && exec httpd -f -p 127.0.0.1:{port} -h /tmp/www"
    );
    let t = e.start(task("web.1", shell(&line))).await;
    let http = |path: &str| Probe::Http { port, path: path.into(), ipv6: false, ignore_1xx: false };
    let second = Duration::from_secs(1);
    let mut outcome = ProbeOutcome::TimedOut;
    for _ in 0..50 {
        outcome = probe::run(http("/health"), None, second).await;
        if outcome == ProbeOutcome::Healthy {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(outcome, ProbeOutcome::Healthy);
    assert_eq!(
        probe::run(http("/nope"), None, second).await,
        ProbeOutcome::Unhealthy("HTTP 404".into())
    );
    assert_eq!(
        probe::run(Probe::Tcp { port, ipv6: false }, None, second).await,
        ProbeOutcome::Healthy
    );

    let control = Some(t.control.clone());
    let check = |line: &str| Probe::Command {
        command: shell(line),
        env: [("WANT".to_owned(), "ok".to_owned())].into(),
    };
    assert_eq!(
        probe::run(check("test \"$(cat /tmp/www/health)\" = \"$WANT\""), control.clone(), second)
            .await,
        ProbeOutcome::Healthy
    );
    assert_eq!(
        probe::run(check("echo broken; exit 3"), control.clone(), second).await,
        ProbeOutcome::Unhealthy("exit status 3: broken".into())
    );
    assert_eq!(
        probe::run(check("sleep 5"), control, Duration::from_millis(300)).await,
        ProbeOutcome::TimedOut
    );
    t.control.signal(Signal::Kill).await.unwrap();
    exit_within(t, Duration::from_secs(30)).await;
}
