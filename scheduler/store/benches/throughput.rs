//! Sustained write throughput of `EtcdStore` against a real etcd, in
//! records per second. Not a timed test: run it by hand (see BENCHMARKS.md):
//!
//! ```text
//! DROVER_TEST_ETCD=http://127.0.0.1:2379 cargo bench -p sched-store --bench throughput
//! ```
//!
//! Workloads, each under a fresh key prefix (deleted afterwards):
//! - app creates, one commit per app (what `POST /v2/apps` persists: the
//!   app and its first version);
//! - instance records, one commit per record (a launch or status update);
//! - instance records, 3,000 per commit (a large scale-up, split into
//!   batches of 127);
//! - instance records, one commit per record from 8 writers at once
//!   (separate handles, disjoint keys).
//!
//! Arguments: `--apps N` (default 2000), `--instances N` (default 6000).

use std::time::Duration;

use anyhow::Context as _;
use sched_core::scheduler::Write;
use sched_store::contract::{sample_app, sample_instance};
use sched_store::testing::{ENV, unique_prefix};
use sched_store::{EtcdStore, EtcdStoreConfig, Store};
use tokio::time::Instant;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2).find(|w| w[0] == name).and_then(|w| w[1].parse().ok()).unwrap_or(default)
}

fn report(name: &str, records: usize, commits: usize, took: Duration) {
    let secs = took.as_secs_f64();
    println!(
        "{name:<44} {records:>6} records {commits:>6} commits {secs:>7.2} s {:>9.0} records/s",
        records as f64 / secs
    );
}

async fn store(client: &etcd_api::Client, name: &str) -> EtcdStore {
    let config = EtcdStoreConfig { prefix: unique_prefix(name), ..EtcdStoreConfig::default() };
    EtcdStore::new(client.clone(), config)
}

async fn cleanup(client: &etcd_api::Client, s: &EtcdStore) -> anyhow::Result<()> {
    client.delete_prefix(s.layout().root().as_bytes()).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing
    // we use either: both just run.
    let endpoint =
        std::env::var(ENV).with_context(|| format!("set {ENV} to an etcd client URL"))?;
    let client = etcd_api::Client::connect(etcd_api::ClientConfig::new([endpoint.clone()]))
        .await
        .with_context(|| format!("connecting to {endpoint}"))?;
    let status = client.status().await?;
    let (apps, instances) = (arg("--apps", 2000), arg("--instances", 6000));
    println!("etcd {} at {endpoint}", status.version);

    // App creates, one commit each.
    let s = store(&client, "bench-apps").await;
    let start = Instant::now();
    for i in 0..apps {
        s.commit(&[Write::PutApp(sample_app(&format!("/bench/app-{i}"), 1))]).await?;
    }
    report("app create (1 app per commit)", apps, apps, start.elapsed());
    anyhow::ensure!(s.load().await?.apps.len() == apps, "every app stored");
    cleanup(&client, &s).await?;

    // Instance records, one commit each.
    let app = sample_app("/bench/web", 1);
    let records: Vec<Write> = (0..instances)
        .map(|i| {
            Write::PutInstance(sample_instance(
                &app,
                &format!("{i:08x}-0000-4000-8000-000000000000"),
            ))
        })
        .collect();
    let s = store(&client, "bench-instances").await;
    let start = Instant::now();
    for w in &records {
        s.commit(std::slice::from_ref(w)).await?;
    }
    report("instance record (1 per commit)", instances, instances, start.elapsed());
    cleanup(&client, &s).await?;

    // Instance records, 3,000 per commit.
    let s = store(&client, "bench-batched").await;
    let start = Instant::now();
    let mut commits = 0;
    for chunk in records.chunks(3000) {
        s.commit(chunk).await?;
        commits += 1;
    }
    report("instance record (3000 per commit)", instances, commits, start.elapsed());
    anyhow::ensure!(s.load().await?.instances.len() == instances, "every instance stored");
    cleanup(&client, &s).await?;

    // Instance records from 8 writers at once, one commit each.
    let writers = 8;
    let s = store(&client, "bench-parallel").await;
    let prefix = s.layout().prefix().to_owned();
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for part in records.chunks(records.len().div_ceil(writers)) {
        let part = part.to_vec();
        let handle = EtcdStore::new(
            client.clone(),
            EtcdStoreConfig { prefix: prefix.clone(), ..EtcdStoreConfig::default() },
        );
        tasks.spawn(async move {
            for w in &part {
                handle.commit(std::slice::from_ref(w)).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    report("instance record (1 per commit, 8 writers)", instances, instances, start.elapsed());
    cleanup(&client, &s).await?;
    Ok(())
}
