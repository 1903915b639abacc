//! [`DispatchRuntime`]: one runtime for the executor, two behind it.
//!
//! A task with a container ([`TaskSpec::container`]) goes to the container
//! runtime (Docker), every other task to the process runtime. Orphan
//! clean-up and the final removal concern containers only.

use std::sync::Arc;

use crate::{BoxFuture, ContainerRuntime, RunningTask, RuntimeError, TaskSpec};

/// Sends container tasks to one runtime and plain tasks to another.
#[derive(Debug, Clone)]
pub struct DispatchRuntime {
    process: Arc<dyn ContainerRuntime>,
    container: Arc<dyn ContainerRuntime>,
}

impl DispatchRuntime {
    /// Plain tasks go to `process`, container tasks to `container`.
    pub fn new(process: Arc<dyn ContainerRuntime>, container: Arc<dyn ContainerRuntime>) -> Self {
        DispatchRuntime { process, container }
    }
}

impl ContainerRuntime for DispatchRuntime {
    fn start(&self, spec: TaskSpec) -> BoxFuture<Result<RunningTask, RuntimeError>> {
        if spec.container.is_some() { self.container.start(spec) } else { self.process.start(spec) }
    }

    fn reap_orphans(&self) -> BoxFuture<Result<Vec<String>, RuntimeError>> {
        self.container.reap_orphans()
    }

    fn remove_all(&self) -> BoxFuture<Result<Vec<String>, RuntimeError>> {
        self.container.remove_all()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use exec_core::DockerSpec;

    use super::*;
    use crate::{Command, FakeBehaviour, FakeRuntime};

    #[tokio::test(start_paused = true)]
    async fn container_tasks_go_to_the_container_runtime_and_the_rest_to_processes() {
        let processes = FakeRuntime::new(FakeBehaviour::exits(Duration::from_secs(1), 0));
        let containers = FakeRuntime::new(FakeBehaviour::exits(Duration::from_secs(1), 0));
        let rt = DispatchRuntime::new(Arc::new(processes.clone()), Arc::new(containers.clone()));
        let plain = TaskSpec::new("plain", Command::Shell("true".into()));
        let docker = DockerSpec::new("busybox");
        let boxed =
            TaskSpec { container: Some(docker), ..TaskSpec::new("boxed", Command::ImageDefault) };
        let p = rt.start(plain).await.unwrap();
        let c = rt.start(boxed).await.unwrap();
        assert_eq!((p.container_id, c.container_id.is_some()), (None, true));
        assert_eq!(processes.started(), ["plain".into()]);
        assert_eq!(containers.started(), ["boxed".into()]);
        assert!(rt.reap_orphans().await.unwrap().is_empty());
        assert!(rt.remove_all().await.unwrap().is_empty());
    }
}
