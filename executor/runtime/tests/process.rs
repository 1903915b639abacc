//! The process runtime against real processes (`sh`, `sleep`, `env`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use exec_runtime::process::DEFAULT_PATH;
use exec_runtime::procs::live_with_env;
use exec_runtime::{
    Command, ContainerRuntime, ExitStatus, ProcessRuntime, RunningTask, RuntimeError, Signal,
    TaskSpec,
};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A marker unique to this test run, put in a task's environment to find
/// its processes in `/proc`.
fn marker() -> String {
    format!("DROVER_TEST_MARKER={}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst))
}

fn spec(command: Command, env: &[(&str, &str)]) -> TaskSpec {
    TaskSpec {
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
        ..TaskSpec::new("task-1", command)
    }
}

fn shell(line: &str) -> Command {
    Command::Shell(line.to_owned())
}

fn argv(args: &[&str]) -> Command {
    Command::Argv(args.iter().map(|s| (*s).to_owned()).collect())
}

async fn run(rt: &ProcessRuntime, command: Command) -> ExitStatus {
    let task = rt.start(spec(command, &[])).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), task.exit).await.unwrap().unwrap()
}

/// Waits until no live process carries `marker`, or fails after 5 s.
async fn assert_all_gone(marker: &str) {
    for _ in 0..500 {
        if live_with_env(marker).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("processes left behind: {:?}", live_with_env(marker));
}

fn start_marked(
    rt: &ProcessRuntime,
    line: &str,
    marker: &str,
) -> impl Future<Output = RunningTask> {
    let (k, v) = marker.split_once('=').unwrap();
    let task = rt.start(spec(shell(line), &[(k, v)]));
    async move { task.await.unwrap() }
}

#[tokio::test]
async fn exit_codes_and_signals_propagate() {
    let dir = tempfile::tempdir().unwrap();
    let rt = ProcessRuntime::new(dir.path(), DEFAULT_PATH);
    assert_eq!(run(&rt, shell("exit 3")).await, ExitStatus::Code(3));
    assert_eq!(run(&rt, argv(&["true"])).await, ExitStatus::Code(0));
    assert_eq!(run(&rt, argv(&["false"])).await, ExitStatus::Code(1));
    assert_eq!(run(&rt, shell("kill -SEGV $$")).await, ExitStatus::Signal(11));
}

#[tokio::test]
async fn output_is_appended_to_the_sandbox_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("stdout"), "earlier\n").unwrap();
    let rt = ProcessRuntime::new(dir.path(), DEFAULT_PATH);
    run(&rt, shell("echo out; echo err >&2")).await;
    run(&rt, argv(&["printf", "%s|", "a b", "c"])).await;
    assert_eq!(std::fs::read_to_string(dir.path().join("stdout")).unwrap(), "earlier\nout\na b|c|");
    assert_eq!(std::fs::read_to_string(dir.path().join("stderr")).unwrap(), "err\n");
}

#[tokio::test]
async fn tasks_get_a_clean_environment_in_the_sandbox() {
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some(), "the test needs a variable to leak");
    let dir = tempfile::tempdir().unwrap();
    let sandbox = dir.path().to_str().unwrap().to_owned();
    let rt = ProcessRuntime::new(dir.path(), "/usr/bin:/bin");
    let task = rt
        .start(spec(shell("env; pwd"), &[("FOO", "bar baz"), ("HOME", "/elsewhere")]))
        .await
        .unwrap();
    assert_eq!(task.exit.await.unwrap(), ExitStatus::Code(0));
    let out = std::fs::read_to_string(dir.path().join("stdout")).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    for want in [
        "PATH=/usr/bin:/bin".to_owned(),
        format!("MESOS_SANDBOX={sandbox}"),
        "MESOS_TASK_ID=task-1".to_owned(),
        "FOO=bar baz".to_owned(),
        "HOME=/elsewhere".to_owned(),
        sandbox.clone(),
    ] {
        assert!(lines.contains(&want.as_str()), "missing {want:?} in {out}");
    }
    assert!(!out.contains("CARGO_MANIFEST_DIR"), "leaked environment: {out}");
}

#[tokio::test]
async fn a_missing_program_or_an_empty_command_fails_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let rt = ProcessRuntime::new(dir.path(), DEFAULT_PATH);
    let err = rt.start(spec(argv(&["no-such-program-drover"]), &[])).await.unwrap_err();
    assert!(
        matches!(&err, RuntimeError::Spawn { program, .. } if program == "no-such-program-drover"),
        "{err:?}"
    );
    let err = rt.start(spec(argv(&[]), &[])).await.unwrap_err();
    assert!(matches!(err, RuntimeError::EmptyCommand), "{err:?}");
    let rt = ProcessRuntime::new(dir.path().join("missing"), DEFAULT_PATH);
    let err = rt.start(spec(shell("true"), &[])).await.unwrap_err();
    assert!(matches!(err, RuntimeError::Sandbox { .. }), "{err:?}");
}

#[tokio::test]
async fn commands_run_beside_a_task_in_its_sandbox_with_its_environment() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ready"), "").unwrap();
    let rt = ProcessRuntime::new(dir.path(), DEFAULT_PATH);
    let task = rt.start(spec(shell("sleep 100"), &[("APP", "web")])).await.unwrap();
    let check = |line: &str| Command::Shell(line.to_owned());
    let env: BTreeMap<String, String> = [("FILE".to_owned(), "ready".to_owned())].into();
    let ok = task.control.exec(&check("test -f $FILE && test $APP = web"), &env).await.unwrap();
    assert_eq!(ok.status, ExitStatus::Code(0));
    let bad = task.control.exec(&check("echo nope >&2; exit 4"), &env).await.unwrap();
    assert_eq!((bad.status, bad.output.as_str()), (ExitStatus::Code(4), "nope"));
    let err = task.control.exec(&Command::ImageDefault, &env).await.unwrap_err();
    assert!(matches!(err, RuntimeError::EmptyCommand), "{err:?}");
    task.control.signal(Signal::Kill).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), task.exit).await.unwrap().unwrap();
    // A container task is not this runtime's.
    let boxed = TaskSpec {
        container: Some(exec_core::DockerSpec::new("busybox")),
        ..spec(Command::ImageDefault, &[])
    };
    assert!(matches!(rt.start(boxed).await.unwrap_err(), RuntimeError::InvalidContainer(_)));
}

#[tokio::test]
async fn sigterm_stops_a_plain_task() {
    let dir = tempfile::tempdir().unwrap();
    let rt = ProcessRuntime::new(dir.path(), DEFAULT_PATH);
    let m = marker();
    let task = start_marked(&rt, "sleep 100", &m).await;
    task.control.signal(Signal::Term).await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(5), task.exit).await.unwrap().unwrap();
    assert_eq!(status, ExitStatus::Signal(15));
    assert_all_gone(&m).await;
    task.control.signal(Signal::Kill).await.unwrap();
}

#[tokio::test]
async fn a_task_that_traps_sigterm_survives_it_until_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let rt = ProcessRuntime::new(dir.path(), DEFAULT_PATH);
    let m = marker();
    let task = start_marked(&rt, "trap '' TERM; sleep 100", &m).await;
    // Let the shell install its trap before signalling.
    tokio::time::sleep(Duration::from_millis(200)).await;
    task.control.signal(Signal::Term).await.unwrap();
    let mut exit = tokio::spawn(task.exit);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut exit).await.is_err(),
        "SIGTERM was not ignored"
    );
    assert!(!live_with_env(&m).is_empty());
    task.control.signal(Signal::Kill).await.unwrap();
    let status =
        tokio::time::timeout(Duration::from_secs(5), exit).await.unwrap().unwrap().unwrap();
    assert_eq!(status, ExitStatus::Signal(9));
    assert_all_gone(&m).await;
}

#[tokio::test]
async fn signals_reach_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let rt = ProcessRuntime::new(dir.path(), DEFAULT_PATH);
    let m = marker();
    let task = start_marked(&rt, "sleep 101 & sleep 102 & wait", &m).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(live_with_env(&m).len(), 3, "sh and two sleeps");
    task.control.signal(Signal::Kill).await.unwrap();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), task.exit).await.unwrap().unwrap(),
        ExitStatus::Signal(9)
    );
    assert_all_gone(&m).await;
}

#[tokio::test]
async fn stragglers_are_killed_when_the_main_process_exits() {
    let dir = tempfile::tempdir().unwrap();
    let rt = ProcessRuntime::new(dir.path(), DEFAULT_PATH);
    let m = marker();
    let task = start_marked(&rt, "sleep 103 & exit 4", &m).await;
    let status = tokio::time::timeout(Duration::from_secs(5), task.exit).await.unwrap().unwrap();
    assert_eq!(status, ExitStatus::Code(4));
    assert_all_gone(&m).await;
}

#[test]
fn a_task_dies_with_the_thread_that_started_it() {
    let dir = tempfile::tempdir().unwrap();
    let rt = ProcessRuntime::new(dir.path(), DEFAULT_PATH);
    let m = marker();
    let starter = {
        let (rt, m) = (rt.clone(), m.clone());
        std::thread::spawn(move || {
            let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            // The direct child: PR_SET_PDEATHSIG is not inherited across fork.
            let (k, v) = m.split_once('=').unwrap();
            let spec = spec(argv(&["sleep", "104"]), &[(k, v)]);
            let task = tokio.block_on(async { rt.start(spec).await.unwrap() });
            task.pid
        })
    };
    let pid = starter.join().unwrap();
    assert!(pid > 0);
    for _ in 0..500 {
        if live_with_env(&m).is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("PR_SET_PDEATHSIG did not kill {pid}");
}
