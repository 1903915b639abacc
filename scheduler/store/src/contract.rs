//! The behaviour every [`Store`](crate::Store) must have. Each
//! implementation's tests call [`run`] on a fresh, empty store.

use std::collections::BTreeMap;
use std::time::Duration;

use drover_time::Timestamp;
use sched_core::app::{
    AppSpec, BackoffPolicy, CommandSpec, ContainerSpec, HealthCheckSpec, HealthProtocol,
    KillSelection, NetworkMode, PortDefinition, Resources,
};
use sched_core::ids::{AppId, InstanceId};
use sched_core::instance::{Goal, Health, Instance, Task, TaskState};
use sched_core::scheduler::Write;

use crate::Store;

/// A sample app.
pub fn sample_app(id: &str, instances: u32) -> AppSpec {
    let mut env = BTreeMap::new();
    env.insert("A".to_owned(), "1".to_owned());
    let mut labels = BTreeMap::new();
    labels.insert("team".to_owned(), "x".to_owned());
    AppSpec {
        id: AppId::parse(id).expect("valid id"),
        command: Some(CommandSpec::Argv(vec!["sleep".into(), "10".into()])),
        container: Some(ContainerSpec {
            image: "busybox".into(),
            force_pull: false,
            privileged: false,
            parameters: vec![("label".into(), "x=y".into())],
            volumes: vec![],
            port_mappings: vec![],
        }),
        network: NetworkMode::Host,
        port_definitions: vec![PortDefinition {
            port: 10000,
            protocol: "tcp".into(),
            name: Some("http".into()),
            labels: BTreeMap::new(),
        }],
        require_ports: false,
        health_checks: vec![HealthCheckSpec {
            protocol: HealthProtocol::Tcp,
            protocol_name: "TCP".into(),
            path: "/".into(),
            port_index: Some(0),
            port: None,
            command: None,
            grace_period: Duration::from_secs(300),
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(20),
            max_consecutive_failures: 3,
            delay: Duration::from_secs(15),
            ignore_http1xx: false,
        }],
        instances,
        resources: Resources { cpus: 0.25, mem: 32.0, disk: 1.0, gpus: 0 },
        env,
        labels,
        backoff: BackoffPolicy {
            initial: Duration::from_millis(1500),
            factor: 2.0,
            max: Duration::from_secs(60),
        },
        kill_selection: KillSelection::OldestFirst,
        kill_grace: Some(Duration::from_secs(7)),
        version: Timestamp::from_millis(5),
        last_scaling_at: Timestamp::from_millis(5),
        last_config_change_at: Timestamp::from_millis(4),
    }
}

/// A sample instance of `app` with a running task.
pub fn sample_instance(app: &AppSpec, uuid: &str) -> Instance {
    let id = InstanceId::new(&app.id, uuid);
    Instance {
        task: Some(Task {
            id: id.task_id(2),
            agent_id: "agent-1".into(),
            hostname: "h1".into(),
            executor_id: "e".into(),
            state: TaskState::Running,
            staged_at: Timestamp::from_millis(10),
            started_at: Some(Timestamp::from_millis(11)),
            updated_at: Timestamp::from_millis(12),
            message: Some("ok".into()),
            kill_sent_at: None,
            host_ports: vec![31000],
            health: Some(Health {
                alive: true,
                first_success: Some(Timestamp::from_millis(13)),
                last_success: Some(Timestamp::from_millis(14)),
                last_failure: None,
                consecutive_failures: 0,
                last_failure_cause: None,
            }),
        }),
        incarnation: 2,
        goal: Goal::Running,
        app_version: app.version,
        app_id: app.id.clone(),
        id,
    }
}

/// Runs the contract on an empty store. Panics (test failure) on a breach.
pub async fn run<S: Store>(store: &S) {
    // Empty at first.
    let s = store.load().await.expect("load");
    assert_eq!(s.framework_id, None);
    assert!(s.apps.is_empty() && s.instances.is_empty());

    // Writes are read back exactly.
    let app = sample_app("/prod/web", 2);
    let i1 = sample_instance(&app, "11111111-1111-4111-8111-111111111111");
    let i2 = sample_instance(&app, "22222222-2222-4222-8222-222222222222");
    store
        .commit(&[
            Write::FrameworkId("fw-1".into()),
            Write::PutApp(app.clone()),
            Write::PutInstance(i1.clone()),
            Write::PutInstance(i2.clone()),
        ])
        .await
        .expect("commit");
    let s = store.load().await.expect("load");
    assert_eq!(s.framework_id.as_deref(), Some("fw-1"));
    assert_eq!(s.apps, vec![app.clone()]);
    let mut instances = s.instances.clone();
    instances.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(instances, vec![i1.clone(), i2.clone()]);

    // Later writes in one commit win; deletes remove.
    let mut app2 = app.clone();
    app2.instances = 1;
    let mut i1b = i1.clone();
    i1b.goal = Goal::Decommissioned;
    store
        .commit(&[
            Write::PutApp(app.clone()),
            Write::PutApp(app2.clone()),
            Write::PutInstance(i1b.clone()),
            Write::DeleteInstance(i2.id.clone()),
        ])
        .await
        .expect("commit");
    let s = store.load().await.expect("load");
    assert_eq!(s.apps, vec![app2.clone()]);
    assert_eq!(s.instances, vec![i1b.clone()]);

    // Deleting what does not exist is not an error.
    store
        .commit(&[
            Write::DeleteInstance(i2.id.clone()),
            Write::DeleteApp(AppId::parse("/nope").expect("id")),
        ])
        .await
        .expect("commit");

    // Deleting the app leaves instances to their own records.
    store.commit(&[Write::DeleteApp(app.id.clone())]).await.expect("commit");
    let s = store.load().await.expect("load");
    assert!(s.apps.is_empty());
    assert_eq!(s.instances.len(), 1);

    // The framework id can be replaced.
    store.commit(&[Write::FrameworkId("fw-2".into())]).await.expect("commit");
    assert_eq!(store.load().await.expect("load").framework_id.as_deref(), Some("fw-2"));
}
