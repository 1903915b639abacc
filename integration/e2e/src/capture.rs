//! Captures real scheduler events from a Mesos master, as raw RecordIO
//! records in either content type: SUBSCRIBED, HEARTBEAT, OFFERS and an
//! UPDATE (from a task launched under `drover-executor`).
//!
//! `capture-fixtures` writes them to `protos/types/tests/fixtures/`; the
//! e2e tier captures them live and decodes them with the same checks.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use bytes::{Bytes, BytesMut};
use drover_protos::Message;
use drover_protos::mesos::v1 as mesos;
use drover_protos::mesos::v1::scheduler::{Call, Event, call, event};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mesos_wire::ContentType;
use mesos_wire::recordio::Decoder;
use mesos_wire::scheduler::calls;

/// Raw records by event name (`SUBSCRIBED`, `HEARTBEAT`, `OFFERS`, `UPDATE`).
pub type Captured = BTreeMap<&'static str, Bytes>;

fn post(
    master: &str,
    ct: ContentType,
    call: &Call,
    stream_id: Option<&str>,
) -> anyhow::Result<http::Request<Full<Bytes>>> {
    let mut b = http::Request::post(format!("{master}/api/v1/scheduler"))
        .header("Content-Type", ct.mime())
        .header("Accept", ct.mime());
    if let Some(id) = stream_id {
        b = b.header("Mesos-Stream-Id", id);
    }
    b.body(Full::new(Bytes::from(ct.encode(call)))).context("request")
}

/// Subscribes to `master` with content type `ct`, launches one `sleep`
/// task under the executor at `executor_path`, and returns the first record
/// of each wanted event type. Tears the framework down afterwards.
pub async fn capture(
    master: &str,
    ct: ContentType,
    executor_path: &str,
) -> anyhow::Result<Captured> {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let info = mesos::FrameworkInfo {
        user: std::env::var("USER").unwrap_or_else(|_| "root".into()),
        name: format!("drover-fixtures-{ct}"),
        ..Default::default()
    };
    let resp = client
        .request(post(master, ct, &calls::subscribe(info, None), None)?)
        .await
        .context("SUBSCRIBE")?;
    if resp.status() != 200 {
        bail!("SUBSCRIBE answered {}", resp.status());
    }
    let stream_id = resp
        .headers()
        .get("Mesos-Stream-Id")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| anyhow!("no Mesos-Stream-Id"))?
        .to_owned();
    let mut body = resp.into_body();
    let mut decoder = Decoder::new(mesos_wire::DEFAULT_MAX_RECORD_LEN);
    let mut buf = BytesMut::new();
    let mut got = Captured::new();
    let mut framework_id = String::new();
    let mut launched = false;
    let deadline = tokio::time::sleep(Duration::from_secs(40));
    tokio::pin!(deadline);
    while got.len() < 4 {
        let frame = tokio::select! {
            f = body.frame() => f,
            () = &mut deadline => bail!("timed out; captured only {:?}", got.keys().collect::<Vec<_>>()),
        };
        let Some(frame) = frame else { bail!("the master closed the stream") };
        let Ok(data) = frame.context("reading the stream")?.into_data() else { continue };
        buf.extend_from_slice(&data);
        while let Some(record) = decoder.decode(&mut buf)? {
            let ev: Event = ct.decode(&record)?;
            let name = match ev.r#type() {
                event::Type::Subscribed => "SUBSCRIBED",
                event::Type::Heartbeat => "HEARTBEAT",
                event::Type::Offers => "OFFERS",
                event::Type::Update => "UPDATE",
                _ => continue,
            };
            got.entry(name).or_insert_with(|| record.clone());
            if let Some(s) = &ev.subscribed {
                framework_id = s.framework_id.value.clone();
            }
            if let (Some(offers), false) = (&ev.offers, launched)
                && let Some(offer) = offers.offers.first()
            {
                launched = true;
                let accept = launch_call(&framework_id, offer, executor_path);
                let r = client
                    .request(post(master, ct, &accept, Some(&stream_id))?)
                    .await
                    .context("ACCEPT")?;
                if r.status() != 202 {
                    bail!("ACCEPT answered {}", r.status());
                }
            }
            if let Some(u) = &ev.update
                && let (Some(uuid), Some(agent)) = (&u.status.uuid, &u.status.agent_id)
            {
                let task = &u.status.task_id.value;
                let ack = calls::acknowledge(&framework_id, &agent.value, task, uuid.clone());
                let _ = client.request(post(master, ct, &ack, Some(&stream_id))?).await;
            }
        }
    }
    let teardown = calls::teardown(&framework_id);
    let _ = client.request(post(master, ct, &teardown, Some(&stream_id))?).await;
    Ok(got)
}

fn launch_call(framework_id: &str, offer: &mesos::Offer, executor_path: &str) -> Call {
    let scalar = |name: &str, value: f64| {
        let mut r = mesos::Resource {
            name: name.into(),
            scalar: Some(mesos::value::Scalar { value }),
            ..Default::default()
        };
        r.set_type(mesos::value::Type::Scalar);
        r
    };
    let command = mesos::CommandInfo {
        value: Some("sleep 30".into()),
        shell: Some(true),
        ..Default::default()
    };
    let mut executor = mesos::ExecutorInfo {
        executor_id: mesos::ExecutorId { value: "fixture-executor".into() },
        command: Some(mesos::CommandInfo {
            value: Some(executor_path.into()),
            shell: Some(false),
            arguments: vec![executor_path.into()],
            ..Default::default()
        }),
        resources: vec![scalar("cpus", 0.01), scalar("mem", 32.0)],
        ..Default::default()
    };
    executor.set_type(mesos::executor_info::Type::Custom);
    let task = mesos::TaskInfo {
        name: "fixture".into(),
        task_id: mesos::TaskId { value: "fixture.instance-1._app.1".into() },
        agent_id: offer.agent_id.clone(),
        resources: vec![scalar("cpus", 0.1), scalar("mem", 32.0)],
        executor: Some(executor),
        data: Some(command.encode_to_vec()),
        ..Default::default()
    };
    let mut c = calls::accept(
        framework_id,
        std::slice::from_ref(&offer.id.value),
        vec![calls::launch(vec![task])],
        1.0,
    );
    c.set_type(call::Type::Accept);
    c
}

/// The checks a fixture set must pass: each record decodes in its content
/// type into the event it is named after, with the fields Drover relies on.
pub fn check(ct: ContentType, got: &Captured) -> anyhow::Result<()> {
    let decode = |name: &str| -> anyhow::Result<Event> {
        let bytes = got.get(name).ok_or_else(|| anyhow!("no {name} captured"))?;
        ct.decode(bytes).with_context(|| format!("decoding {name} ({ct})"))
    };
    let s = decode("SUBSCRIBED")?;
    anyhow::ensure!(s.r#type() == event::Type::Subscribed);
    let sub = s.subscribed.ok_or_else(|| anyhow!("SUBSCRIBED without body"))?;
    anyhow::ensure!(!sub.framework_id.value.is_empty(), "no framework id");
    anyhow::ensure!(
        sub.heartbeat_interval_seconds.is_some_and(|h| h > 0.0),
        "no heartbeat interval"
    );
    let master = sub.master_info.ok_or_else(|| anyhow!("no master_info"))?;
    anyhow::ensure!(
        master.version.as_deref() == Some("1.11.0"),
        "master version {:?}",
        master.version
    );

    anyhow::ensure!(decode("HEARTBEAT")?.r#type() == event::Type::Heartbeat);

    let o = decode("OFFERS")?;
    let offers = o.offers.ok_or_else(|| anyhow!("OFFERS without body"))?.offers;
    let first = offers.first().ok_or_else(|| anyhow!("no offer"))?;
    anyhow::ensure!(
        !first.id.value.is_empty()
            && !first.agent_id.value.is_empty()
            && !first.hostname.is_empty()
    );
    let names: Vec<&str> = first.resources.iter().map(|r| r.name.as_str()).collect();
    for want in ["cpus", "mem", "disk", "ports"] {
        anyhow::ensure!(names.contains(&want), "offer lacks {want}: {names:?}");
    }
    let ports = first.resources.iter().find(|r| r.name == "ports").and_then(|r| r.ranges.as_ref());
    anyhow::ensure!(
        ports.is_some_and(|r| r.range.iter().all(|x| x.begin <= x.end)),
        "ports ranges"
    );

    let u = decode("UPDATE")?;
    let status = u.update.ok_or_else(|| anyhow!("UPDATE without body"))?.status;
    anyhow::ensure!(
        status.task_id.value == "fixture.instance-1._app.1",
        "task id {}",
        status.task_id.value
    );
    anyhow::ensure!(status.uuid.as_ref().is_some_and(|u| u.len() == 16), "uuid");
    anyhow::ensure!(status.agent_id.is_some(), "agent id");
    Ok(())
}
