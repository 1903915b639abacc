//! The behaviour every [`Store`](crate::Store) must have. Each
//! implementation's tests call [`run`] with two handles on one fresh, empty
//! store (as two processes would have). Failures panic: this is test code.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use drover_time::Timestamp;
use sched_core::app::{
    AppSpec, BackoffPolicy, CommandSpec, ContainerSpec, HealthCheckSpec, HealthProtocol,
    KillSelection, NetworkMode, PlacementSpec, PortDefinition, Resources,
};
use sched_core::constraints::Constraint;
use sched_core::deployment::{Action, Deployment, Origin, StepAction};
use sched_core::ids::{AppId, InstanceId};
use sched_core::instance::{Goal, Health, Instance, Task, TaskState};
use sched_core::job::{
    ConcurrencyPolicy, JobName, JobRun, JobSpec, JobState, RetryPolicy, RunStatus, Trigger,
};
use sched_core::offer::{AgentFacts, AttributeValue};
use sched_core::schedule::Schedule;
use sched_core::scheduler::Write;

use crate::{Change, ChangeBatch, Limits, Record, RecordKey, Store, StoreError, Watch};

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
        placement: PlacementSpec {
            constraints: vec![
                Constraint::parse("hostname", "UNIQUE", None).expect("constraint"),
                Constraint::parse("rack", "GROUP_BY", Some("2")).expect("constraint"),
            ],
            ..PlacementSpec::default()
        },
        env,
        secrets: BTreeMap::from([("db".to_owned(), "prod/db-password".to_owned())]),
        secret_env: BTreeMap::from([("DB_PASSWORD".to_owned(), "db".to_owned())]),
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
            facts: Arc::new(
                AgentFacts::default()
                    .with_domain("eu", "eu-1a")
                    .with_attribute("rack", AttributeValue::Text("r1".into()))
                    .with_attribute("cores", AttributeValue::Scalar(8.0)),
            ),
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

/// A sample job: an ISO 8601 schedule in a time zone, a container,
/// constraints, retries and a starting deadline.
pub fn sample_job(name: &str) -> JobSpec {
    JobSpec {
        name: JobName::parse(name).expect("valid name"),
        command: "etl --since \"$LAST\"".into(),
        shell: true,
        arguments: Vec::new(),
        schedule: Some(
            Schedule::parse_iso8601(
                "R/2025-03-01T02:30:00/P1D",
                Some("Europe/Berlin"),
                Timestamp::EPOCH,
            )
            .expect("valid schedule"),
        ),
        parents: Default::default(),
        disabled: false,
        concurrency: ConcurrencyPolicy::Replace,
        soft_error: true,
        retry: RetryPolicy {
            retries: 3,
            backoff: Duration::from_secs(30),
            backoff_factor: 2.0,
            max_backoff: Duration::from_millis(600_500),
        },
        starting_deadline: Some(Duration::from_secs(300)),
        resources: Resources { cpus: 0.5, mem: 256.0, disk: 10.0, gpus: 0 },
        container: Some(ContainerSpec {
            image: "registry.local/etl:2".into(),
            force_pull: true,
            privileged: false,
            parameters: vec![("label".into(), "job=etl".into())],
            volumes: vec![sched_core::app::Volume {
                container_path: "/data".into(),
                host_path: "/srv/data".into(),
                mode: sched_core::app::VolumeMode::ReadOnly,
            }],
            port_mappings: vec![],
        }),
        network: NetworkMode::Bridge,
        env: [("TARGET".to_owned(), "warehouse".to_owned())].into_iter().collect(),
        placement: PlacementSpec {
            constraints: vec![
                Constraint::parse("@zone", "GROUP_BY", Some("2")).expect("constraint"),
                Constraint::parse("rack", "LIKE", Some("r[0-9]+")).expect("constraint"),
            ],
            accepted_resource_roles: vec!["*".into(), "batch".into()],
            role: "batch".into(),
        },
        max_completion_time: Some(Duration::from_secs(3600)),
        owner: "data@example.com".into(),
        owner_name: "Data team".into(),
        description: "Nightly load into the warehouse".into(),
        success_history_limit: 10,
        failure_history_limit: 5,
        version: Timestamp::from_millis(1_740_000_000_000),
    }
}

/// A sample dependent job with a cron schedule (kept for when its parents
/// are deleted), no container, a program with arguments.
pub fn sample_cron_job(name: &str, parents: &[&str]) -> JobSpec {
    JobSpec {
        name: JobName::parse(name).expect("valid name"),
        command: "/usr/bin/report".into(),
        shell: false,
        arguments: vec!["--format".into(), "csv".into()],
        schedule: Some(Schedule::parse_cron("*/15 2 * * MON-FRI", None).expect("valid cron")),
        parents: parents.iter().map(|p| JobName::parse(p).expect("valid name")).collect(),
        disabled: true,
        concurrency: ConcurrencyPolicy::Forbid,
        soft_error: false,
        retry: RetryPolicy::default(),
        starting_deadline: None,
        resources: Resources { cpus: 0.1, mem: 32.0, disk: 0.0, gpus: 0 },
        container: None,
        network: NetworkMode::Host,
        env: BTreeMap::new(),
        placement: PlacementSpec::default(),
        max_completion_time: None,
        owner: String::new(),
        owner_name: String::new(),
        description: String::new(),
        success_history_limit: 0,
        failure_history_limit: 1,
        version: Timestamp::from_millis(7),
    }
}

/// A sample job state: fired, with counts and a pending parent.
pub fn sample_job_state() -> JobState {
    JobState {
        last_fired: Some(Timestamp::from_millis(1_740_792_600_000)),
        parents_done: [JobName::parse("extract").expect("valid name")].into_iter().collect(),
        success_count: 41,
        error_count: 2,
        missed_count: 1,
        last_success: Some(Timestamp::from_millis(1_740_792_900_000)),
        last_error: Some(Timestamp::from_millis(1_740_706_500_000)),
        errors_since_last_success: 0,
        exhausted: false,
    }
}

/// A sample run of `job` with id `id`, started by `trigger`, that
/// succeeded on its second attempt.
pub fn sample_run(job: &JobName, id: &str, trigger: Trigger) -> JobRun {
    let instance = InstanceId::new(&job.run_app_id(), "0f0e0d0c-0000-4000-8000-000000000001");
    JobRun {
        id: id.to_owned(),
        job: job.clone(),
        trigger,
        status: RunStatus::Succeeded,
        attempts: 2,
        task_ids: vec![instance.task_id(1).to_string(), instance.task_id(2).to_string()],
        created_at: Timestamp::from_millis(1_740_792_600_000),
        started_at: Some(Timestamp::from_millis(1_740_792_601_000)),
        finished_at: Some(Timestamp::from_millis(1_740_792_900_000)),
        message: "exited with status 0".into(),
        not_before: Timestamp::from_millis(1_740_792_630_000),
        instance_id: Some(instance),
    }
}

/// Runs the whole contract. `a` and `b` are two handles on the same empty
/// store. Panics (test failure) on a breach.
pub async fn run<S: Store>(a: &S, b: &S) {
    crud(a).await;
    jobs(a, b).await;
    conflicts(a, b).await;
    watch(a, b).await;
    large_commits(a, &Limits::default()).await;
    large_records(a, &Limits::default()).await;
}

/// CRUD of every record kind, app versions and their pruning.
pub async fn crud<S: Store>(store: &S) {
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

    // Leave no record but the framework id.
    store.commit(&[Write::DeleteInstance(i1b.id.clone())]).await.expect("commit");
    let s = store.load().await.expect("load");
    assert!(s.apps.is_empty() && s.versions.is_empty() && s.instances.is_empty());
}

/// Jobs, their states and runs are stored and read back; deleting a run
/// removes that run; deleting a job removes it with its state and every
/// run, and nothing of a job whose name starts the same way.
pub async fn jobs<S: Store>(a: &S, b: &S) {
    let etl = sample_job("etl");
    // A name that `etl` is a prefix of, with its own state and run.
    let etl2 = sample_cron_job("etl-2", &["etl"]);
    let st = sample_job_state();
    let r1 = sample_run(&etl.name, "r1", Trigger::Schedule(Timestamp::from_millis(1_000)));
    let r2 = sample_run(&etl.name, "r2", Trigger::Manual { arguments: vec!["--full".into()] });
    let r3 = sample_run(&etl2.name, "r1", Trigger::Dependency);

    let start = a.snapshot().await.expect("snapshot").revision;
    let mut w = b.watch(start + 1).await.expect("watch");
    a.commit(&[
        Write::PutJob(Box::new(etl.clone())),
        Write::PutJobState(etl.name.clone(), Box::new(st.clone())),
        Write::PutRun(Box::new(r1.clone())),
        Write::PutRun(Box::new(r2.clone())),
        Write::PutJob(Box::new(etl2.clone())),
        Write::PutJobState(etl2.name.clone(), Box::default()),
        Write::PutRun(Box::new(r3.clone())),
    ])
    .await
    .expect("commit");
    let s = a.load().await.expect("load");
    assert_eq!(s.jobs, vec![etl.clone(), etl2.clone()]);
    assert_eq!(
        s.job_states,
        vec![(etl.name.clone(), st.clone()), (etl2.name.clone(), JobState::default())]
    );
    assert_eq!(s.runs, vec![r1.clone(), r2.clone(), r3.clone()]);
    assert_eq!(
        next_batch(&mut w).await.changes,
        vec![
            Change::Put(Record::Job(etl.clone())),
            Change::Put(Record::JobState(etl.name.clone(), st.clone())),
            Change::Put(Record::JobRun(r1.clone())),
            Change::Put(Record::JobRun(r2.clone())),
            Change::Put(Record::Job(etl2.clone())),
            Change::Put(Record::JobState(etl2.name.clone(), JobState::default())),
            Change::Put(Record::JobRun(r3.clone())),
        ]
    );

    // Deleting a run removes that run only.
    a.commit(&[Write::DeleteRun(etl.name.clone(), r1.id.clone())]).await.expect("commit");
    assert_eq!(a.load().await.expect("load").runs, vec![r2.clone(), r3.clone()]);
    assert_eq!(
        next_batch(&mut w).await.changes,
        vec![Change::Delete(RecordKey::JobRun(etl.name.clone(), r1.id.clone()))]
    );
    drop(w);

    // A handle that has not seen a new run (written, as the core does, with
    // the job's state) cannot delete the job: it would leave the run behind.
    b.load().await.expect("load");
    let r4 = sample_run(&etl.name, "r4", Trigger::Dependency);
    let mut st4 = st.clone();
    st4.success_count += 1;
    a.commit(&[
        Write::PutRun(Box::new(r4.clone())),
        Write::PutJobState(etl.name.clone(), Box::new(st4)),
    ])
    .await
    .expect("commit");
    assert!(matches!(
        b.commit(&[Write::DeleteJob(etl.name.clone())]).await,
        Err(StoreError::Conflict { .. })
    ));

    // Deleting a job removes it, its state, the runs known and those
    // written in the same commit; `etl-2` is untouched.
    b.load().await.expect("load");
    let r5 = sample_run(&etl.name, "r5", Trigger::Dependency);
    b.commit(&[Write::PutRun(Box::new(r5)), Write::DeleteJob(etl.name.clone())])
        .await
        .expect("commit");
    let s = a.load().await.expect("load");
    assert_eq!(s.jobs, vec![etl2.clone()]);
    assert_eq!(s.job_states, vec![(etl2.name.clone(), JobState::default())]);
    assert_eq!(s.runs, vec![r3.clone()]);

    // Deleting what does not exist is not an error; leave no job behind.
    a.commit(&[
        Write::DeleteJob(JobName::parse("nope").expect("valid name")),
        Write::DeleteRun(etl2.name.clone(), "nope".into()),
        Write::DeleteJob(etl2.name.clone()),
    ])
    .await
    .expect("commit");
    let s = b.load().await.expect("load");
    assert!(s.jobs.is_empty() && s.job_states.is_empty() && s.runs.is_empty(), "{s:?}");
}

fn instance_ids(n: usize, app: &AppSpec) -> Vec<Instance> {
    (0..n).map(|i| sample_instance(app, &format!("{i:08x}-0000-4000-8000-000000000000"))).collect()
}

/// Waits for the next batch of a watch (at most 10 s).
pub async fn next_batch(w: &mut Watch) -> ChangeBatch {
    tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .expect("a change within 10 s")
        .expect("watch")
}

/// A write of a key that another handle changed since this one last saw it
/// is a conflict, and nothing of the batch is written; after a reload the
/// write goes through.
pub async fn conflicts<S: Store>(a: &S, b: &S) {
    let app = sample_app("/conflict", 1);
    let [i1, i2]: [Instance; 2] = instance_ids(2, &app).try_into().expect("two");
    a.commit(&[Write::PutApp(app.clone()), Write::PutInstance(i1.clone())]).await.expect("commit");
    b.load().await.expect("load");

    // `a` changes i1; `b` still has the old revision of it.
    let mut i1a = i1.clone();
    i1a.incarnation = 7;
    a.commit(&[Write::PutInstance(i1a.clone())]).await.expect("commit");
    let mut i1b = i1.clone();
    i1b.incarnation = 9;
    let e = b
        .commit(&[Write::PutInstance(i2.clone()), Write::PutInstance(i1b.clone())])
        .await
        .expect_err("stale write");
    match e {
        StoreError::Conflict { key } => assert!(key.ends_with(i1.id.as_str()), "{key}"),
        e => panic!("expected a conflict, got {e:?}"),
    }
    let s = a.load().await.expect("load");
    assert_eq!(s.instances, vec![i1a.clone()], "nothing of the conflicting batch was written");

    // Creating a key someone else created since, or deleting one someone
    // else changed, conflicts too.
    let app2 = sample_app("/conflict2", 1);
    a.commit(&[Write::PutApp(app2.clone())]).await.expect("commit");
    assert!(matches!(
        b.commit(&[Write::PutApp(app2.clone())]).await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        b.commit(&[Write::DeleteInstance(i1.id.clone())]).await,
        Err(StoreError::Conflict { .. })
    ));

    // After a reload, `b` writes.
    b.load().await.expect("load");
    b.commit(&[Write::PutInstance(i1b.clone()), Write::DeleteApp(app2.id.clone())])
        .await
        .expect("commit");
    // And now `a` is the stale one.
    assert!(matches!(a.commit(&[Write::PutInstance(i1a)]).await, Err(StoreError::Conflict { .. })));
    a.load().await.expect("load");
    a.commit(&[Write::DeleteInstance(i1.id.clone()), Write::DeleteApp(app.id.clone())])
        .await
        .expect("commit");
    let s = b.load().await.expect("load");
    assert!(s.instances.is_empty() && s.apps.is_empty() && s.versions.is_empty(), "{s:?}");
}

/// Watches see every change of every handle from the revision asked, in
/// order, one batch per committed batch.
pub async fn watch<S: Store>(a: &S, b: &S) {
    let start = a.snapshot().await.expect("snapshot").revision;
    let mut w = b.watch(start + 1).await.expect("watch");
    let app = sample_app("/watched", 1);
    let [inst]: [Instance; 1] = instance_ids(1, &app).try_into().expect("one");
    a.commit(&[Write::PutApp(app.clone()), Write::PutInstance(inst.clone())])
        .await
        .expect("commit");
    let first = next_batch(&mut w).await;
    assert!(first.revision > start);
    assert_eq!(
        first.changes,
        vec![
            Change::Put(Record::App(app.clone())),
            Change::Put(Record::AppVersion(app.clone())),
            Change::Put(Record::Instance(inst.clone())),
        ]
    );
    a.commit(&[Write::DeleteInstance(inst.id.clone()), Write::DeleteApp(app.id.clone())])
        .await
        .expect("commit");
    let second = next_batch(&mut w).await;
    assert!(second.revision > first.revision);
    assert_eq!(
        second.changes,
        vec![
            Change::Delete(RecordKey::Instance(inst.id.clone())),
            Change::Delete(RecordKey::App(app.id.clone())),
            Change::Delete(RecordKey::AppVersion(app.id.clone(), app.version)),
        ]
    );
    // A watch from a past revision replays from there.
    let mut replay = a.watch(second.revision).await.expect("watch");
    assert_eq!(next_batch(&mut replay).await, second);
    // A watch from "now" sees only what comes next.
    let mut now = a.watch(0).await.expect("watch");
    a.commit(&[Write::FrameworkId("fw-watch".into())]).await.expect("commit");
    let third = next_batch(&mut now).await;
    assert_eq!(third.changes, vec![Change::Put(Record::FrameworkId("fw-watch".into()))]);
    assert_eq!(next_batch(&mut w).await, third);
}

/// 3,000 instance writes in one commit are split into batches under the
/// limits, applied in order; all are read back, and watchers see each batch.
pub async fn large_commits<S: Store>(store: &S, limits: &Limits) {
    const N: usize = 3000;
    let app = sample_app("/large", N as u32);
    let instances = instance_ids(N, &app);
    let start = store.snapshot().await.expect("snapshot").revision;
    let mut w = store.watch(start + 1).await.expect("watch");
    let mut writes = vec![Write::PutApp(app.clone())];
    writes.extend(instances.iter().cloned().map(Write::PutInstance));
    store.commit(&writes).await.expect("a large commit");
    let s = store.load().await.expect("load");
    assert_eq!(s.instances, instances);
    // Every change arrives, in batches under the limits, in revision order.
    let (mut seen, mut batches, mut last) = (0, 0, start);
    while seen < N + 2 {
        let b = next_batch(&mut w).await;
        assert!(b.revision > last, "batches in order");
        assert!(b.changes.len() < limits.max_ops, "{} changes in one batch", b.changes.len());
        last = b.revision;
        seen += b.changes.len();
        batches += 1;
    }
    assert_eq!(seen, N + 2);
    assert!(batches >= (N + 2).div_ceil(limits.max_ops - 1), "{batches} batches");
    // Deleting them all is large too.
    let mut deletes: Vec<Write> =
        instances.iter().map(|i| Write::DeleteInstance(i.id.clone())).collect();
    deletes.push(Write::DeleteApp(app.id.clone()));
    store.commit(&deletes).await.expect("a large delete");
    let s = store.load().await.expect("load");
    assert!(s.instances.is_empty() && s.apps.is_empty());
}

/// Commits whose bytes exceed one request are split by size; a single
/// record larger than a request is refused and nothing is written.
pub async fn large_records<S: Store>(store: &S, limits: &Limits) {
    // Each app is ~1/5 of a request (twice: current and version).
    let filler = "x".repeat(limits.max_request_bytes / 5);
    let apps: Vec<AppSpec> = (0..6)
        .map(|i| {
            let mut a = sample_app(&format!("/big/a{i}"), 1);
            a.env.insert("FILLER".into(), filler.clone());
            a
        })
        .collect();
    store
        .commit(&apps.iter().cloned().map(Write::PutApp).collect::<Vec<_>>())
        .await
        .expect("commit");
    let s = store.load().await.expect("load");
    let stored: Vec<&AppSpec> = s.apps.iter().filter(|a| a.id.is_in_group("/big")).collect();
    assert_eq!(stored, apps.iter().collect::<Vec<_>>());

    let mut huge = sample_app("/big/huge", 1);
    huge.env.insert("FILLER".into(), "y".repeat(limits.max_request_bytes));
    let e = store
        .commit(&[Write::FrameworkId("never".into()), Write::PutApp(huge)])
        .await
        .expect_err("too large");
    assert!(matches!(e, StoreError::TooLarge { .. }), "{e:?}");
    let s = store.load().await.expect("load");
    assert_ne!(s.framework_id.as_deref(), Some("never"));
    assert!(s.apps.iter().all(|a| a.id.as_str() != "/big/huge"));
    store
        .commit(&apps.iter().map(|a| Write::DeleteApp(a.id.clone())).collect::<Vec<_>>())
        .await
        .expect("commit");
}
