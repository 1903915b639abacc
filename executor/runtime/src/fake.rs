//! [`FakeRuntime`]: scripted tasks, for tests and simulations.
//!
//! A scripted task "runs" for a while on tokio's clock (so paused-time
//! tests are instant), then exits with a chosen status. SIGKILL ends it at
//! once with signal 9; SIGTERM ends it with signal 15 unless it is scripted
//! to ignore SIGTERM. Commands run beside a task ([`TaskControl::exec`])
//! exit with a per-task scripted status (0 unless [`FakeRuntime::script_exec`]
//! says otherwise). Every start, signal and command is recorded.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::{
    BoxFuture, Command, ContainerRuntime, ExecOutput, ExitStatus, RunningTask, RuntimeError,
    Signal, TaskControl, TaskId, TaskSpec,
};

/// How a scripted task behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeBehaviour {
    /// How long it runs before exiting by itself.
    pub run_for: Duration,
    /// How it exits by itself.
    pub exit: ExitStatus,
    /// It survives SIGTERM (only SIGKILL stops it).
    pub ignores_term: bool,
    /// `Some(error)`: it cannot be started.
    pub start_error: Option<String>,
}

impl FakeBehaviour {
    /// Runs for `run_for`, then exits with `code`.
    pub fn exits(run_for: Duration, code: i32) -> Self {
        FakeBehaviour {
            run_for,
            exit: ExitStatus::Code(code),
            ignores_term: false,
            start_error: None,
        }
    }
}

#[derive(Debug, Default)]
struct Record {
    scripts: BTreeMap<TaskId, FakeBehaviour>,
    exec_status: BTreeMap<TaskId, ExitStatus>,
    started: Vec<TaskId>,
    signals: Vec<(TaskId, Signal)>,
    execs: Vec<(TaskId, Command)>,
}

/// A runtime whose tasks follow a script.
#[derive(Debug, Clone)]
pub struct FakeRuntime {
    default: FakeBehaviour,
    record: Arc<Mutex<Record>>,
    next_pid: Arc<AtomicU32>,
}

impl FakeRuntime {
    /// A fake where unscripted tasks behave as `default`.
    pub fn new(default: FakeBehaviour) -> Self {
        FakeRuntime { default, record: Arc::default(), next_pid: Arc::new(AtomicU32::new(1000)) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Scripts the task `task_id`.
    pub fn script(&self, task_id: impl Into<TaskId>, behaviour: FakeBehaviour) {
        self.lock().scripts.insert(task_id.into(), behaviour);
    }

    /// From now on, commands run beside `task_id` exit with `status`.
    pub fn script_exec(&self, task_id: impl Into<TaskId>, status: ExitStatus) {
        self.lock().exec_status.insert(task_id.into(), status);
    }

    /// The commands run beside tasks so far, in order.
    pub fn execs(&self) -> Vec<(TaskId, Command)> {
        self.lock().execs.clone()
    }

    /// The tasks started so far, in order.
    pub fn started(&self) -> Vec<TaskId> {
        self.lock().started.clone()
    }

    /// The signals sent so far, in order.
    pub fn signals(&self) -> Vec<(TaskId, Signal)> {
        self.lock().signals.clone()
    }
}

impl ContainerRuntime for FakeRuntime {
    fn start(&self, spec: TaskSpec) -> BoxFuture<Result<RunningTask, RuntimeError>> {
        let behaviour =
            self.lock().scripts.get(&spec.task_id).cloned().unwrap_or_else(|| self.default.clone());
        if let Some(error) = behaviour.start_error {
            return Box::pin(async move { Err(RuntimeError::Scripted(error)) });
        }
        self.lock().started.push(spec.task_id.clone());
        let (tx, mut rx) = mpsc::unbounded_channel();
        let control = Arc::new(FakeControl {
            task_id: spec.task_id.clone(),
            record: self.record.clone(),
            tx,
        });
        let exit = Box::pin(async move {
            let sleep = tokio::time::sleep(behaviour.run_for);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    () = &mut sleep => return Ok(behaviour.exit),
                    signal = rx.recv() => match signal {
                        Some(Signal::Kill) => return Ok(ExitStatus::Signal(9)),
                        Some(Signal::Term) if !behaviour.ignores_term => return Ok(ExitStatus::Signal(15)),
                        Some(Signal::Term) => {}
                        // Nobody can signal it any more: it runs its course.
                        None => {
                            sleep.as_mut().await;
                            return Ok(behaviour.exit);
                        }
                    },
                }
            }
        });
        let pid = self.next_pid.fetch_add(1, Ordering::SeqCst);
        let container_id = spec.container.is_some().then(|| format!("fake-{pid}"));
        Box::pin(async move { Ok(RunningTask { pid, container_id, control, exit }) })
    }
}

#[derive(Debug)]
struct FakeControl {
    task_id: TaskId,
    record: Arc<Mutex<Record>>,
    tx: mpsc::UnboundedSender<Signal>,
}

impl TaskControl for FakeControl {
    fn signal(&self, signal: Signal) -> BoxFuture<Result<(), RuntimeError>> {
        self.record
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .signals
            .push((self.task_id.clone(), signal));
        // After the exit the receiver is gone: signalling an exited task is a no-op.
        let _ = self.tx.send(signal);
        Box::pin(async { Ok(()) })
    }

    fn exec(
        &self,
        command: &Command,
        _env: &BTreeMap<String, String>,
    ) -> BoxFuture<Result<ExecOutput, RuntimeError>> {
        let mut record = self.record.lock().unwrap_or_else(PoisonError::into_inner);
        record.execs.push((self.task_id.clone(), command.clone()));
        let status = record.exec_status.get(&self.task_id).copied().unwrap_or(ExitStatus::Code(0));
        Box::pin(async move { Ok(ExecOutput { status, output: String::new() }) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: &str) -> TaskSpec {
        TaskSpec::new(id, Command::Shell("x".into()))
    }

    #[tokio::test(start_paused = true)]
    async fn scripted_tasks_exit_on_time_and_obey_signals() {
        let rt = FakeRuntime::new(FakeBehaviour::exits(Duration::from_secs(10), 3));
        rt.script(
            "stubborn",
            FakeBehaviour {
                ignores_term: true,
                ..FakeBehaviour::exits(Duration::from_secs(100), 0)
            },
        );
        rt.script(
            "broken",
            FakeBehaviour {
                start_error: Some("no image".into()),
                ..FakeBehaviour::exits(Duration::ZERO, 0)
            },
        );

        let plain = rt.start(spec("plain")).await.unwrap();
        let start = tokio::time::Instant::now();
        assert_eq!(plain.exit.await.unwrap(), ExitStatus::Code(3));
        assert_eq!(start.elapsed(), Duration::from_secs(10));

        let stubborn = rt.start(spec("stubborn")).await.unwrap();
        stubborn.control.signal(Signal::Term).await.unwrap();
        let exit = tokio::spawn(stubborn.exit);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!exit.is_finished(), "SIGTERM is ignored");
        stubborn.control.signal(Signal::Kill).await.unwrap();
        assert_eq!(exit.await.unwrap().unwrap(), ExitStatus::Signal(9));

        let polite = rt.start(spec("polite")).await.unwrap();
        polite.control.signal(Signal::Term).await.unwrap();
        assert_eq!(polite.exit.await.unwrap(), ExitStatus::Signal(15));

        let check = Command::Shell("true".into());
        let out = polite.control.exec(&check, &BTreeMap::new()).await.unwrap();
        assert_eq!(out.status, ExitStatus::Code(0));
        rt.script_exec("polite", ExitStatus::Code(1));
        let out = polite.control.exec(&check, &BTreeMap::new()).await.unwrap();
        assert_eq!(out.status, ExitStatus::Code(1));
        assert_eq!(rt.execs().len(), 2);

        let err = rt.start(spec("broken")).await.unwrap_err();
        assert_eq!(err.to_string(), "no image");
        assert_eq!(rt.started(), [TaskId::from("plain"), "stubborn".into(), "polite".into()]);
        assert_eq!(
            rt.signals(),
            [
                ("stubborn".into(), Signal::Term),
                ("stubborn".into(), Signal::Kill),
                ("polite".into(), Signal::Term)
            ]
        );
    }
}
