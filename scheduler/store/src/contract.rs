//! The behaviour every [`Store`](crate::Store) must have. Each
//! implementation's tests call [`run`] on a fresh, empty store.

use std::collections::BTreeMap;
use std::time::Duration;

use drover_time::Timestamp;
use sched_core::app::{
    AppSpec, BackoffPolicy, CommandSpec, ContainerSpec, HealthCheckSpec, HealthProtocol,
    KillSelection, NetworkMode, PortDefinition, Resources,
};
use sched_core::deployment::{Action, Deployment, Origin, StepAction};
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
        placement: sched_core::app::PlacementSpec::default(),
        env,
        labels,
        backoff: BackoffPolicy {
            initial: Duration::from_millis(1500),
            factor: 2.0,
            max: Duration::from_secs(60),
        },
        kill_selection: KillSelection::OldestFirst,
        upgrade: sched_core::app::UpgradeStrategy {
            minimum_health_capacity: 0.5,
            maximum_over_capacity: 0.25,
        },
        dependencies: Vec::new(),
        progress_deadline: std::time::Duration::from_secs(600),
        rollback_on_failure: true,
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
            facts: Default::default(),
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

/// A sample deployment restarting `app`.
pub fn sample_deployment(app: &AppSpec) -> Deployment {
    let mut target = app.clone();
    target.version = Timestamp::from_millis(99);
    Deployment {
        id: "d-1".into(),
        version: Timestamp::from_millis(99),
        steps: vec![vec![StepAction { action: Action::RestartApplication, app: app.id.clone() }]],
        current_step: 0,
        original: [(app.id.clone(), Some(app.clone()))].into_iter().collect(),
        target: [(app.id.clone(), Some(target))].into_iter().collect(),
        last_progress_at: Timestamp::from_millis(99),
        progress_mark: vec![(1, 2, 3)],
        origin: Origin::User,
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

    // Versions are kept apart from the current app, and can be pruned.
    let mut v1 = sample_app("/v", 1);
    v1.version = Timestamp::from_millis(100);
    let mut v2 = v1.clone();
    v2.version = Timestamp::from_millis(200);
    v2.instances = 2;
    store.commit(&[Write::PutApp(v1.clone()), Write::PutApp(v2.clone())]).await.expect("commit");
    let s = store.load().await.expect("load");
    assert_eq!(s.apps.iter().find(|a| a.id == v1.id), Some(&v2));
    let versions: Vec<i64> =
        s.versions.iter().filter(|a| a.id == v1.id).map(|a| a.version.as_millis()).collect();
    assert_eq!(versions, vec![100, 200]);
    store
        .commit(&[
            Write::RestoreApp(v1.clone()),
            Write::DeleteAppVersion(v1.id.clone(), v2.version),
        ])
        .await
        .expect("commit");
    let s = store.load().await.expect("load");
    assert_eq!(s.apps.iter().find(|a| a.id == v1.id), Some(&v1));
    assert_eq!(s.versions.iter().filter(|a| a.id == v1.id).count(), 1);
    store.commit(&[Write::DeleteApp(v1.id.clone())]).await.expect("commit");
    assert!(store.load().await.expect("load").versions.iter().all(|a| a.id != v1.id));

    // Deployments are stored and removed.
    let d = sample_deployment(&app);
    store.commit(&[Write::PutDeployment(Box::new(d.clone()))]).await.expect("commit");
    assert_eq!(store.load().await.expect("load").deployments, vec![d.clone()]);
    store.commit(&[Write::DeleteDeployment(d.id.clone())]).await.expect("commit");
    assert!(store.load().await.expect("load").deployments.is_empty());

    // The framework id can be replaced.
    store.commit(&[Write::FrameworkId("fw-2".into())]).await.expect("commit");
    assert_eq!(store.load().await.expect("load").framework_id.as_deref(), Some("fw-2"));
}
