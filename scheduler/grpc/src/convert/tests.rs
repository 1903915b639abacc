use std::collections::BTreeMap;

use sched_core::deployment::StepAction;
use sched_core::ids::InstanceId;
use sched_core::job::JobState;
use serde_json::json;

use super::*;

const T0: Timestamp = Timestamp::from_secs(1_700_000_000);

fn spec(body: serde_json::Value) -> AppSpec {
    sched_api::app_json::parse_app(&body, None).unwrap()
}

fn job_spec(body: serde_json::Value) -> JobSpec {
    let ctx = sched_api::job_json::Context { now: T0, mesos_user: "root" };
    sched_api::job_json::parse_job(&body, ctx).unwrap()
}

#[test]
fn apps_carry_their_command_image_and_whole_definition() {
    let shell = app(&spec(json!({"id": "/a", "cmd": "sleep 1", "labels": {"x": "y"}})));
    assert_eq!((shell.cmd.as_str(), shell.args.len(), shell.image.as_str()), ("sleep 1", 0, ""));
    assert_eq!(shell.labels["x"], "y");
    assert_eq!(shell.status, None);
    let definition: serde_json::Value = serde_json::from_str(&shell.app_json).unwrap();
    assert_eq!(definition["cmd"], "sleep 1");
    let docker = app(&spec(json!({"id": "/b", "args": ["run", "-x"],
        "container": {"type": "DOCKER", "docker": {"image": "busybox"}}})));
    assert_eq!(
        (docker.cmd.as_str(), docker.args.as_slice()),
        ("", &["run".into(), "-x".into()][..])
    );
    assert_eq!(docker.image, "busybox");
}

#[test]
fn an_instance_without_a_task_is_not_launched() {
    let id = AppId::parse("/a").unwrap();
    let inst = Instance::new(InstanceId::new(&id, "u-1"), id, T0);
    let t = task(&inst);
    assert_eq!(t.state, pb::TaskState::NotLaunched as i32);
    assert_eq!((t.id.as_str(), t.app_id.as_str(), t.version_ms), ("", "/a", T0.as_millis()));
    assert_eq!((t.staged_at_ms, t.health), (None, None));
    assert_eq!(t.goal, pb::InstanceGoal::Running as i32);
}

#[test]
fn deployment_steps_are_numbered_as_marathon_numbers_them() {
    let web = AppId::parse("/web").unwrap();
    let step = |action| vec![StepAction { action, app: web.clone() }];
    let mut d = Deployment {
        id: "d-1".into(),
        version: T0,
        steps: vec![step(Action::StartApplication), step(Action::ScaleApplication)],
        current_step: 0,
        original: BTreeMap::from([(web.clone(), None)]),
        target: BTreeMap::from([(web.clone(), None)]),
        last_progress_at: T0,
        progress_mark: Vec::new(),
        origin: Origin::Rollback { of: "d-0".into() },
    };
    let out = deployment(&d);
    assert_eq!((out.current_step, out.steps.len(), out.rollback_of.as_str()), (1, 2, "d-0"));
    assert_eq!(out.app_ids, ["/web"]);
    assert_eq!(out.steps[1].actions[0].kind, pb::DeploymentActionKind::ScaleApplication as i32);
    d.current_step = 5;
    assert_eq!(deployment(&d).current_step, 2, "never past the last step");
}

#[test]
fn jobs_get_status_and_next_run_only_with_their_state() {
    let spec =
        job_spec(json!({"name": "etl", "command": "x", "schedule": "R/2030-01-01T00:00:00Z/P1D"}));
    let stored = job(&spec);
    assert_eq!((stored.status, stored.next_run_at_ms), (None, None));
    assert_eq!(stored.schedule, "R/2030-01-01T00:00:00Z/P1D");
    let live = job_with_status(&spec, None);
    assert_eq!(live.next_run_at_ms, Some(1_893_456_000_000));
    assert_eq!(live.status.map(|s| s.success_count), Some(0));
    let exhausted = JobState { exhausted: true, success_count: 3, ..JobState::default() };
    let live = job_with_status(&spec, Some(&exhausted));
    assert_eq!(live.next_run_at_ms, None);
    assert_eq!(live.status.map(|s| (s.success_count, s.exhausted)), Some((3, true)));
}

#[test]
fn changes_carry_api_records_and_skip_the_others() {
    let a = spec(json!({"id": "/a", "cmd": "x"}));
    let put = change(&Change::Put(Record::App(a.clone()))).unwrap();
    assert_eq!(put.kind, Some(Kind::App(app(&a))));
    assert_eq!(change(&Change::Put(Record::AppVersion(a.clone()))), None);
    assert_eq!(change(&Change::Put(Record::FrameworkId("fw".into()))), None);
    assert_eq!(change(&Change::Delete(RecordKey::AppVersion(a.id.clone(), T0))), None);
    let gone = change(&Change::Delete(RecordKey::App(a.id))).unwrap();
    assert_eq!(gone.kind, Some(Kind::AppDeleted("/a".into())));
    let name = JobName::parse("etl").unwrap();
    let run_gone = change(&Change::Delete(RecordKey::JobRun(name.clone(), "r-1".into()))).unwrap();
    let key = pb::RunKey { job: "etl".into(), id: "r-1".into() };
    assert_eq!(run_gone.kind, Some(Kind::RunDeleted(key)));
    let status = change(&Change::Put(Record::JobState(name, JobState::default()))).unwrap();
    assert!(matches!(status.kind, Some(Kind::JobStatus(s)) if s.job == "etl"));
}
