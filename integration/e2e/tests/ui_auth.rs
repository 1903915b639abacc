//! The web UI against an API that requires authentication, in Debian's
//! headless chromium (`browser/token.mjs`, playwright-core): the page asks
//! for a token, refuses a wrong one, and with the right one (kept in
//! `sessionStorage`, sent as a bearer token, the event stream included)
//! shows the apps and follows the event stream. Drover runs against a
//! master that is not there: the UI only needs the API.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use drover_e2e::{Drover, bin_dir, free_port, workspace};

fn browser_dir() -> PathBuf {
    workspace().join("integration/e2e/browser")
}

fn add_principal(file: &std::path::Path, name: &str, role: &str) -> anyhow::Result<String> {
    let out = Command::new(bin_dir().join("drover"))
        .args(["credentials", "add", name, "--role", role, "--file"])
        .arg(file)
        .output()
        .context("running drover credentials add")?;
    if !out.status.success() {
        bail!("drover credentials add failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_asks_for_a_token_and_uses_it() -> anyhow::Result<()> {
    let chromium = std::env::var("DROVER_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !std::path::Path::new(&chromium).is_file()
        || !browser_dir().join("node_modules/playwright-core/package.json").is_file()
    {
        bail!("chromium or playwright-core is missing (integration/test.sh installs them)");
    }
    let dir = tempfile::Builder::new().prefix("drover-e2e-ui-auth-").tempdir()?;
    let credentials = dir.path().join("credentials");
    let admin = add_principal(&credentials, "admin", "admin")?;
    let reader = add_principal(&credentials, "viewer", "read-only")?;
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let file = credentials.display().to_string();
    let d = Drover::start(&nowhere, &["--in-memory", "--credentials-file", &file]).await?;

    // An app to show (it never runs: there is no master).
    let app = r#"{"id":"/ui-auth","cmd":"sleep 600","cpus":0.1,"mem":32}"#;
    let req = http::Request::builder()
        .method("POST")
        .uri(format!("{}/v2/apps", d.url))
        .header("Content-Type", "application/json")
        .header("Authorization", format!("Bearer {admin}"))
        .body(http_body_util::Full::new(bytes::Bytes::from(app)))?;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let resp = tokio::time::timeout(Duration::from_secs(20), client.request(req)).await??;
    if resp.status() != 201 {
        bail!("POST /v2/apps as admin answered {}", resp.status());
    }

    let config = serde_json::json!({"url": d.url, "token": reader, "app": "/ui-auth"});
    let child = tokio::process::Command::new("node")
        .arg(browser_dir().join("token.mjs"))
        .arg(config.to_string())
        .current_dir(browser_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting `node`")?;
    let out = tokio::time::timeout(Duration::from_secs(180), child.wait_with_output())
        .await
        .context("token.mjs did not end in time")??;
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        bail!("token.mjs failed ({}):\n{text}\n--- drover log ---\n{}", out.status, d.log_text());
    }
    let secret = reader.split_once(':').map_or("", |(_, s)| s);
    assert!(!text.contains(secret) && !d.log_text().contains(secret), "the token leaked");
    Ok(())
}
