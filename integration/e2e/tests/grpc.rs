//! Drover's gRPC API against a real `drover serve` and a real Mesos 1.11
//! master and agent: an app created through gRPC, watched until its tasks
//! run, with the watch cut mid-deployment and resumed after the last
//! revision it saw — every change exactly once, in order.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use drover_e2e::{Drover, MesosCluster, eventually};
use sched_grpc::proto::v1 as pb;
use sched_grpc::proto::v1::change::Kind;
use sched_grpc::proto::v1::drover_client::DroverClient;
use serde_json::json;
use tonic::Streaming;
use tonic::transport::Channel;

const RESOURCES: &str = "cpus:4;mem:4096;disk:8192;ports:[31000-32000]";

/// The next watch message (30 s at most).
async fn next(stream: &mut Streaming<pb::WatchResponse>) -> anyhow::Result<pb::WatchResponse> {
    match tokio::time::timeout(Duration::from_secs(30), stream.message()).await {
        Ok(Ok(Some(m))) => Ok(m),
        Ok(Ok(None)) => bail!("the watch ended"),
        Ok(Err(status)) => bail!("the watch failed: {status:?}"),
        Err(_) => bail!("no watch message for 30 s"),
    }
}

/// Messages up to and including the first for which `done(all so far)`.
async fn read_until(
    stream: &mut Streaming<pb::WatchResponse>,
    done: impl Fn(&[pb::WatchResponse]) -> bool,
) -> anyhow::Result<Vec<pb::WatchResponse>> {
    let mut out = Vec::new();
    while out.is_empty() || !done(&out) {
        out.push(next(stream).await?);
    }
    Ok(out)
}

fn kinds(messages: &[pb::WatchResponse]) -> impl Iterator<Item = &Kind> {
    messages.iter().flat_map(|m| &m.changes).filter_map(|c| c.kind.as_ref())
}

fn has_job(messages: &[pb::WatchResponse], name: &str) -> bool {
    kinds(messages).any(|k| matches!(k, Kind::Job(j) if j.name == name))
}

fn deployment_ended(messages: &[pb::WatchResponse]) -> bool {
    kinds(messages).any(|k| matches!(k, Kind::DeploymentDeleted(_)))
}

async fn put_sentinel(c: &mut DroverClient<Channel>, name: &str) -> anyhow::Result<()> {
    let job = json!({"name": name, "command": "true", "schedule": "R/2030-01-01T00:00:00Z/P1D"});
    c.put_job(pb::PutJobRequest { job_json: job.to_string() }).await.context("PutJob")?;
    Ok(())
}

/// What a client keeps: tasks and deployments by key, from a `GetState`
/// kept current by watch changes.
#[derive(Debug, Default, PartialEq)]
struct Model {
    apps: BTreeMap<String, pb::App>,
    tasks: BTreeMap<String, pb::Task>,
    deployments: BTreeMap<String, pb::Deployment>,
    jobs: BTreeMap<String, pb::Job>,
}

impl Model {
    fn of(s: &pb::GetStateResponse) -> Model {
        Model {
            apps: s.apps.iter().map(|a| (a.id.clone(), a.clone())).collect(),
            tasks: s.tasks.iter().map(|t| (t.instance_id.clone(), t.clone())).collect(),
            deployments: s.deployments.iter().map(|d| (d.id.clone(), d.clone())).collect(),
            jobs: s.jobs.iter().map(|j| (j.name.clone(), j.clone())).collect(),
        }
    }

    fn apply(&mut self, m: &pb::WatchResponse) {
        for kind in m.changes.iter().filter_map(|c| c.kind.clone()) {
            match kind {
                Kind::App(a) => {
                    self.apps.insert(a.id.clone(), a);
                }
                Kind::AppDeleted(id) => {
                    self.apps.remove(&id);
                }
                Kind::Task(t) => {
                    self.tasks.insert(t.instance_id.clone(), t);
                }
                Kind::TaskDeleted(id) => {
                    self.tasks.remove(&id);
                }
                Kind::Deployment(d) => {
                    self.deployments.insert(d.id.clone(), d);
                }
                Kind::DeploymentDeleted(id) => {
                    self.deployments.remove(&id);
                }
                Kind::Job(j) => {
                    self.jobs.insert(j.name.clone(), j);
                }
                Kind::JobDeleted(name) => {
                    self.jobs.remove(&name);
                }
                _ => {}
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_created_through_grpc_is_watched_until_running_across_a_cut() -> anyhow::Result<()> {
    let mesos = MesosCluster::start(1, RESOURCES)?;
    let drover = Drover::start(&mesos.master, &[]).await?;
    eventually("framework drover", Duration::from_secs(20), || mesos.framework("drover")).await?;
    let result = scenario(&mesos, &drover).await;
    result.map_err(|e| anyhow!("{e:#}\n--- drover log ---\n{}", drover.log_text()))
}

async fn scenario(mesos: &MesosCluster, drover: &Drover) -> anyhow::Result<()> {
    // gRPC on the REST port.
    let mut c = DroverClient::connect(drover.url.clone()).await.context("connecting")?;
    let start = c.get_state(pb::GetStateRequest {}).await?.into_inner();
    let mut whole =
        c.watch(pb::WatchRequest { from_revision: start.revision + 1 }).await?.into_inner();
    let mut cut =
        c.watch(pb::WatchRequest { from_revision: start.revision + 1 }).await?.into_inner();

    let app =
        json!({"id": "/grpc-sleepy", "cmd": "sleep 600", "instances": 3, "cpus": 0.1, "mem": 32});
    let created = c
        .create_app(pb::CreateAppRequest { app_json: app.to_string(), force: false })
        .await?
        .into_inner();
    assert_eq!(created.app.as_ref().map(|a| a.instances), Some(3));

    // The cut watch reads until the first task is launched and is dropped:
    // the deployment is still running.
    let launched = |m: &[pb::WatchResponse]| {
        kinds(m).any(|k| matches!(k, Kind::Task(t) if t.state == pb::TaskState::Staging as i32))
    };
    let seen = read_until(&mut cut, launched).await?;
    drop(cut);
    assert!(!deployment_ended(&seen), "cut mid-deployment");
    // Changes go on while no watch is connected.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let last_seen = seen.last().map(|m| m.revision).context("no message")?;
    let mut resumed =
        c.watch(pb::WatchRequest { from_revision: last_seen + 1 }).await?.into_inner();
    // Watch until the tasks run and the deployment is over.
    let rest = read_until(&mut resumed, deployment_ended).await?;
    let mut model = Model::of(&start);
    seen.iter().chain(&rest).for_each(|m| model.apply(m));
    let running: Vec<&pb::Task> = model
        .tasks
        .values()
        .filter(|t| t.app_id == "/grpc-sleepy" && t.state == pb::TaskState::Running as i32)
        .collect();
    assert_eq!(running.len(), 3, "{:?}", model.tasks);
    assert!(model.deployments.is_empty());

    // The master runs exactly those tasks.
    let want: Vec<String> = running.iter().map(|t| t.id.clone()).collect();
    let listed = c.list_tasks(pb::ListTasksRequest { app_id: "/grpc-sleepy".into() }).await?;
    let mut listed: Vec<String> = listed.into_inner().tasks.into_iter().map(|t| t.id).collect();
    listed.sort();
    let mut sorted = want.clone();
    sorted.sort();
    assert_eq!(listed, sorted);
    let fw = mesos.framework("drover").await?.context("framework drover")?;
    let mut on_master: Vec<String> = fw["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["state"] == "TASK_RUNNING")
        .filter_map(|t| t["id"].as_str().map(str::to_owned))
        .collect();
    on_master.sort();
    assert_eq!(on_master, sorted);

    // Cut + resumed = uninterrupted: every change exactly once, in order.
    put_sentinel(&mut c, "sentinel").await?;
    let tail = read_until(&mut resumed, |m| has_job(m, "sentinel")).await?;
    let reference = read_until(&mut whole, |m| has_job(m, "sentinel")).await?;
    let mut joined = seen.clone();
    joined.extend(rest);
    joined.extend(tail);
    assert_eq!(joined, reference, "cut + resumed must equal the uninterrupted watch");
    assert!(reference.windows(2).all(|w| w[0].revision < w[1].revision));

    // GetState at R + Watch(R + 1) rebuilds a later GetState: apply the
    // changes up to its revision (a second sentinel bounds the read).
    let fresh = c.get_state(pb::GetStateRequest {}).await?.into_inner();
    put_sentinel(&mut c, "sentinel-2").await?;
    let more = read_until(&mut whole, |m| has_job(m, "sentinel-2")).await?;
    let mut rebuilt = Model::of(&start);
    reference.iter().chain(&more).filter(|m| m.revision <= fresh.revision).for_each(|m| {
        rebuilt.apply(m);
    });
    assert_eq!(rebuilt, Model::of(&fresh));
    Ok(())
}
