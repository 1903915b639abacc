//! The committed protocol fixtures still describe what a real Mesos 1.11
//! master sends: capture the same events live, in both content types, and
//! run the same checks on them.

use drover_e2e::{MesosCluster, bin_dir, capture};
use mesos_wire::ContentType;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_events_from_the_real_master_decode_in_both_content_types() -> anyhow::Result<()> {
    let mesos = MesosCluster::start(1, "cpus:2;mem:2048;disk:1024;ports:[31000-31100]")?;
    let executor = bin_dir().join("drover-executor").display().to_string();
    for ct in [ContentType::Json, ContentType::Protobuf] {
        let got = capture::capture(&mesos.master, ct, &executor).await?;
        capture::check(ct, &got)?;
    }
    Ok(())
}
