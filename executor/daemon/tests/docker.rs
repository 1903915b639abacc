//! The real `drover-executor` running Docker tasks, against the fake agent
//! (`support`) and the real Docker engine `$DOCKER_HOST` names, with the
//! local image `drover-test/busybox:latest` (`integration/test.sh` always
//! provides both; without them these tests fail, they never skip).

mod support;

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::ListContainersOptions;
use drover_protos::mesos::v1 as mesos;
use drover_protos::mesos::v1::executor::event;
use exec_core::{Command, DockerSpec, HealthCheck, Limits, Probe, TaskSpec};
use exec_runtime::docker::labels;
use support::Scenario;
use tokio::time::Instant;

const IMAGE: &str = "drover-test/busybox:latest";

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

async fn docker() -> Docker {
    let host = docker_host();
    let docker = Docker::connect_with_host(&host)
        .unwrap_or_else(|e| panic!("the Docker engine at {host} is unreachable: {e}"));
    docker
        .negotiate_version()
        .await
        .unwrap_or_else(|e| panic!("the Docker engine at {host} is unreachable: {e}"))
}

/// A fake agent and an executor that reaches the test's Docker engine.
async fn scenario(shutdown_grace: &str) -> (Scenario, Docker) {
    let docker = docker().await;
    let s = Scenario::start_with(shutdown_grace, &[("DOCKER_HOST", &docker_host())]).await;
    (s, docker)
}

fn task(id: &str, line: &str) -> TaskSpec {
    let container = DockerSpec::new(IMAGE);
    TaskSpec {
        app_id: Some("/test".into()),
        container: Some(container),
        ..TaskSpec::new(id, Command::Shell(line.into()))
    }
}

/// Ids of the scenario's containers (any state).
async fn containers(docker: &Docker, s: &Scenario) -> Vec<String> {
    let filter = vec![format!("{}={}", labels::FRAMEWORK_ID, s.framework_id)];
    let options = ListContainersOptions {
        all: true,
        filters: Some(HashMap::from([("label".to_owned(), filter)])),
        ..Default::default()
    };
    let list = docker.list_containers(Some(options)).await.unwrap();
    list.into_iter().filter_map(|c| c.id).collect()
}

async fn assert_no_container(docker: &Docker, s: &Scenario) {
    for _ in 0..100 {
        if containers(docker, s).await.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("containers left: {:?}\n{}", containers(docker, s).await, s.log());
}

fn container_id(status: &mesos::TaskStatus) -> String {
    let labels = status.labels.as_ref().map(|l| l.labels.as_slice()).unwrap_or_default();
    labels
        .iter()
        .find(|l| l.key == "DROVER_CONTAINER_ID")
        .and_then(|l| l.value.clone())
        .unwrap_or_else(|| panic!("no DROVER_CONTAINER_ID label in {status:?}"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test]
async fn a_container_task_runs_reports_its_container_and_exits_with_its_code() {
    let (mut s, docker) = scenario("5secs").await;
    s.subscribe(false).await;
    let spec = TaskSpec {
        limits: Limits { nano_cpus: Some(200_000_000), memory_bytes: Some(32 << 20) },
        ..task("box.1", "echo hello from $MESOS_TASK_ID; echo oops >&2; sleep 1; exit 3")
    };
    s.launch_spec(&spec);
    s.expect_update(mesos::TaskState::TaskStarting, None).await;
    let running = s.next_update().await;
    assert_eq!(running.state(), mesos::TaskState::TaskRunning, "{running:?}\n{}", s.log());
    let id = container_id(&running);
    assert_eq!(running.message(), format!("Container {id} is running"));
    let info = docker.inspect_container(&id, None).await.unwrap();
    assert_eq!(info.host_config.unwrap().memory, Some(32 << 20));
    assert_eq!(info.config.unwrap().labels.unwrap()[labels::TASK_ID], "box.1");
    let failed =
        s.expect_update(mesos::TaskState::TaskFailed, Some("Command exited with status 3")).await;
    assert_eq!(container_id(&failed), id);
    assert_eq!(s.exit_code().await, Some(0), "{}", s.log());
    assert_eq!(std::fs::read_to_string(s.sandbox().join("stdout")).unwrap(), "hello from box.1\n");
    assert_eq!(std::fs::read_to_string(s.sandbox().join("stderr")).unwrap(), "oops\n");
    assert_no_container(&docker, &s).await;
}

/// Seconds from KILL to TASK_KILLED, and its message.
async fn kill_time(line: &str, grace: Duration) -> (Duration, String) {
    let (mut s, docker) = scenario("30secs").await;
    s.subscribe(true).await;
    s.launch_spec(&task("stop.1", line));
    s.expect_update(mesos::TaskState::TaskStarting, None).await;
    s.expect_update_state(mesos::TaskState::TaskRunning).await;
    // Let the shell install its trap.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let asked = Instant::now();
    s.kill("stop.1", grace);
    s.expect_update_state(mesos::TaskState::TaskKilling).await;
    let killed = s.expect_update_state(mesos::TaskState::TaskKilled).await;
    let took = asked.elapsed();
    assert_eq!(s.exit_code().await, Some(0), "{}", s.log());
    assert_no_container(&docker, &s).await;
    (took, killed.message().to_owned())
}

#[tokio::test]
async fn kill_gives_docker_stop_semantics_with_the_grace_period() {
    let grace = Duration::from_secs(3);
    let (polite, message) =
        kill_time("trap 'exit 0' TERM; while true; do sleep 1; done", grace).await;
    assert!(polite < Duration::from_millis(2_500), "took {polite:?}");
    assert_eq!(message, "Command exited with status 0");
    let (stubborn, message) = kill_time("trap '' TERM; while true; do sleep 1; done", grace).await;
    assert!(stubborn >= grace && stubborn < grace + Duration::from_secs(5), "took {stubborn:?}");
    assert_eq!(message, "Command terminated with signal Killed");
}

#[tokio::test]
async fn a_missing_image_is_task_failed_naming_the_image() {
    let (mut s, docker) = scenario("5secs").await;
    s.subscribe(false).await;
    let image = "127.0.0.1:1/drover-test/missing:1.0";
    let mut spec = task("ghost.1", "true");
    if let Some(c) = spec.container.as_mut() {
        c.image = image.into();
    }
    s.launch_spec(&spec);
    s.expect_update(mesos::TaskState::TaskStarting, None).await;
    let failed = s.expect_update_state(mesos::TaskState::TaskFailed).await;
    assert_eq!(failed.reason(), mesos::task_status::Reason::ContainerLaunchFailed);
    let message = failed.message();
    assert!(
        message
            .starts_with(&format!("Failed to launch the container: cannot pull image `{image}`: ")),
        "{message}"
    );
    assert!(message.contains("connection refused"), "{message}");
    assert_eq!(s.exit_code().await, Some(0), "{}", s.log());
    assert_no_container(&docker, &s).await;
}

fn check(probe: Probe) -> HealthCheck {
    HealthCheck {
        probe,
        delay: Duration::ZERO,
        interval: Duration::from_millis(500),
        timeout: Duration::from_secs(1),
        grace_period: Duration::from_secs(10),
        max_consecutive_failures: 2,
    }
}

/// Runs `spec`, waits for it to be healthy, breaks it with `docker exec
/// <breaker>`, and returns the unhealthy and the terminal updates.
async fn healthy_then_killed(
    spec: TaskSpec,
    breaker: &[&str],
) -> (mesos::TaskStatus, mesos::TaskStatus) {
    let (mut s, docker) = scenario("5secs").await;
    s.subscribe(false).await;
    s.launch_spec(&spec);
    s.expect_update(mesos::TaskState::TaskStarting, None).await;
    let running = s.expect_update_state(mesos::TaskState::TaskRunning).await;
    let id = container_id(&running);
    let healthy = s.expect_update(mesos::TaskState::TaskRunning, Some("Task is healthy")).await;
    assert_eq!(healthy.healthy, Some(true));
    assert_eq!(healthy.reason(), mesos::task_status::Reason::TaskHealthCheckStatusUpdated);
    assert_eq!(container_id(&healthy), id);
    let exec = bollard::models::ExecConfig {
        cmd: Some(breaker.iter().map(|s| (*s).to_owned()).collect()),
        ..Default::default()
    };
    let created = docker.create_exec(&id, exec).await.unwrap();
    let detach = bollard::exec::StartExecOptions { detach: true, ..Default::default() };
    docker.start_exec(&created.id, Some(detach)).await.unwrap();
    let sick = s.expect_update_state(mesos::TaskState::TaskRunning).await;
    assert_eq!(sick.healthy, Some(false), "{sick:?}");
    let killed = s.expect_update_state(mesos::TaskState::TaskKilled).await;
    assert_eq!(killed.healthy, Some(false));
    assert_eq!(killed.reason(), mesos::task_status::Reason::TaskHealthCheckStatusUpdated);
    assert_eq!(s.exit_code().await, Some(0), "{}", s.log());
    assert_no_container(&docker, &s).await;
    (sick, killed)
}

#[tokio::test]
async fn an_http_health_check_flips_healthy_then_kills_the_task_once_it_fails() {
    let port = free_port();
    let line = format!(
        "mkdir -p /tmp/www && echo ok > /tmp/www/health && exec httpd -f -p 127.0.0.1:{port} -h /tmp/www"
    );
    let probe = Probe::Http { port, path: "/health".into(), ipv6: false, ignore_1xx: false };
    let spec = TaskSpec { health_checks: vec![check(probe)], ..task("web.1", &line) };
    let (sick, killed) = healthy_then_killed(spec, &["rm", "/tmp/www/health"]).await;
    let name = format!("HTTP GET http://127.0.0.1:{port}/health");
    assert_eq!(sick.message(), format!("Health check 1 ({name}) failed: HTTP 404"));
    assert!(
        killed.message().starts_with(&format!(
            "Killed after failing health check 1 ({name}) 2 times in a row: HTTP 404. "
        )),
        "{killed:?}"
    );
}

#[tokio::test]
async fn a_command_health_check_runs_inside_the_container() {
    let probe = Probe::Command {
        command: Command::Shell("test -f /tmp/ready && test \"$MESOS_TASK_ID\" = cmd.1".into()),
        env: Default::default(),
    };
    let spec = TaskSpec {
        health_checks: vec![check(probe)],
        ..task("cmd.1", "touch /tmp/ready; trap 'exit 0' TERM; while true; do sleep 1; done")
    };
    let (sick, killed) = healthy_then_killed(spec, &["rm", "/tmp/ready"]).await;
    assert!(sick.message().ends_with("failed: exit status 1"), "{sick:?}");
    assert!(killed.message().ends_with("Command exited with status 0"), "{killed:?}");
}

#[tokio::test]
async fn the_executor_removes_untracked_containers_of_its_own_when_it_subscribes() {
    let docker = docker().await;
    let host = docker_host();
    // A container labelled as this executor's, which it never started. It
    // exists (running) before the executor does, so the executor's sweep
    // cannot race its creation.
    let framework_id = format!("fw-orphans-{}", std::process::id());
    let labels = [
        (labels::FRAMEWORK_ID, framework_id.as_str()),
        (labels::EXECUTOR_ID, "ex-1"),
        (labels::TASK_ID, "old.1"),
    ];
    let body = ContainerCreateBody {
        image: Some(IMAGE.into()),
        cmd: Some(vec!["sleep".into(), "300".into()]),
        labels: Some(labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()),
        host_config: Some(bollard::models::HostConfig {
            network_mode: Some("host".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let id = docker.create_container(None, body).await.unwrap().id;
    docker.start_container(&id, None).await.unwrap();
    let env = [
        ("DOCKER_HOST", host.as_str()),
        ("MESOS_FRAMEWORK_ID", framework_id.as_str()),
        ("MESOS_EXECUTOR_ID", "ex-1"),
    ];
    let mut s = Scenario::start_with("5secs", &env).await;
    s.subscribe(false).await;
    assert_no_container(&docker, &s).await;
    assert!(s.log().contains("Stopping an orphaned container."), "{}", s.log());
    s.send(s.simple(event::Type::Shutdown));
    assert_eq!(s.exit_code().await, Some(0), "{}", s.log());
}

#[tokio::test]
async fn the_next_executor_removes_the_containers_of_one_killed_by_sigkill() {
    let (mut first, docker) = scenario("5secs").await;
    first.subscribe(false).await;
    first.launch_spec(&task("sleepy.1", "exec sleep 300"));
    first.expect_update(mesos::TaskState::TaskStarting, None).await;
    first.expect_update_state(mesos::TaskState::TaskRunning).await;
    first.executor.start_kill().unwrap();
    first.executor.wait().await.unwrap();
    assert_eq!(containers(&docker, &first).await.len(), 1, "SIGKILL leaves the container");
    let host = docker_host();
    let env = [
        ("DOCKER_HOST", host.as_str()),
        ("MESOS_FRAMEWORK_ID", first.framework_id.as_str()),
        ("MESOS_EXECUTOR_ID", "ex-2"),
    ];
    let mut next = Scenario::start_with("5secs", &env).await;
    next.subscribe(false).await;
    assert_no_container(&docker, &next).await;
    next.send(next.simple(event::Type::Shutdown));
    assert_eq!(next.exit_code().await, Some(0), "{}", next.log());
}

#[tokio::test]
async fn shutdown_stops_and_removes_every_container() {
    let (mut s, docker) = scenario("3secs").await;
    s.subscribe(false).await;
    s.launch_spec(&task("a.1", "trap '' TERM; while true; do sleep 1; done"));
    s.launch_spec(&task("b.1", "trap 'exit 0' TERM; while true; do sleep 1; done"));
    let mut running = 0;
    while running < 2 {
        if s.next_update().await.state() == mesos::TaskState::TaskRunning {
            running += 1;
        }
    }
    assert_eq!(containers(&docker, &s).await.len(), 2);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let asked = Instant::now();
    s.send(s.simple(event::Type::Shutdown));
    let mut ends = Vec::new();
    for _ in 0..2 {
        let end = s.expect_update_state(mesos::TaskState::TaskKilled).await;
        ends.push((end.task_id.value.clone(), end.message().to_owned()));
    }
    ends.sort();
    assert_eq!(
        ends,
        [
            ("a.1".to_owned(), "Command terminated with signal Killed".to_owned()),
            ("b.1".to_owned(), "Command exited with status 0".to_owned())
        ]
    );
    // The stubborn one got the shutdown grace minus the 1 s margin.
    assert!(asked.elapsed() >= Duration::from_secs(2), "took {:?}", asked.elapsed());
    assert_eq!(s.exit_code().await, Some(0), "{}", s.log());
    assert_no_container(&docker, &s).await;
}
