//! Captures SUBSCRIBED, HEARTBEAT, OFFERS and UPDATE from a real Mesos master
//! into `protos/types/tests/fixtures/{json,protobuf}/`.
//!
//! ```sh
//! integration/mesos-local/mesos-local start --work-dir /tmp/fx --port 5099
//! cargo build --bins && cargo run -p drover-e2e --bin capture-fixtures -- http://127.0.0.1:5099
//! integration/mesos-local/mesos-local stop --work-dir /tmp/fx
//! ```

use anyhow::Context as _;
use drover_e2e::capture;
use mesos_wire::ContentType;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let master = std::env::args().nth(1).context("usage: capture-fixtures MASTER_URL")?;
    let executor = drover_e2e::bin_dir().join("drover-executor");
    let out = drover_e2e::workspace().join("protos/types/tests/fixtures");
    for (ct, dir, ext) in
        [(ContentType::Json, "json", "json"), (ContentType::Protobuf, "protobuf", "bin")]
    {
        let got = capture::capture(&master, ct, &executor.display().to_string()).await?;
        capture::check(ct, &got)?;
        std::fs::create_dir_all(out.join(dir))?;
        for (name, bytes) in &got {
            let path = out.join(dir).join(format!("{}.{ext}", name.to_lowercase()));
            std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
            println!("wrote {}", path.display());
        }
    }
    Ok(())
}
