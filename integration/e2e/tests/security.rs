//! The Mesos side of security on a real Mesos 1.11 master and agent: the
//! master requires HTTP Basic authentication of frameworks
//! (`--authenticate_http_frameworks`, `--http_framework_authenticators=basic`,
//! `--credentials`); Drover subscribes with the right principal and secret
//! and is refused, with one clear error, with a wrong one. An app's env
//! secret from `--secrets-dir` reaches the task's environment and nothing
//! else: not the API, not the log (at trace level), not the master's state.

use std::path::{Path, PathBuf};
use std::time::Duration;

use drover_e2e::{Drover, MesosCluster, eventually};
use serde_json::{Value, json};

const RESOURCES: &str = "cpus:4;mem:4096;disk:8192;ports:[31000-32000]";
/// The framework's secret, known to the master.
const SECRET: &str = "s3cret-XYZ";
/// `base64("drover:s3cret-XYZ")`, what the header carries.
const SECRET_B64: &str = "ZHJvdmVyOnMzY3JldC1YWVo=";
/// A wrong secret.
const WRONG: &str = "wr0ng-s3cret-ABC";
/// An app's secret value, in the secrets directory.
const APP_SECRET: &str = "app-db-pa55-QRS";

fn write(path: &Path, text: &str) -> anyhow::Result<PathBuf> {
    std::fs::write(path, text)?;
    Ok(path.to_owned())
}

/// Every `stderr` file under `dir` (the executors' logs in the sandboxes).
fn stderr_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() && !path.is_symlink() {
            stderr_files(&path, out);
        } else if path.file_name().is_some_and(|n| n == "stderr") {
            out.push(path);
        }
    }
}

async fn app_failure(d: &Drover, id: &str) -> anyhow::Result<Option<Value>> {
    let (_, body) = d.call("GET", &format!("/v2/apps{id}"), None).await?;
    let failure = &body["app"]["lastTaskFailure"];
    Ok((!failure.is_null()).then(|| failure.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drover_authenticates_to_the_master_and_app_secrets_reach_only_the_task()
-> anyhow::Result<()> {
    let dir = tempfile::Builder::new().prefix("drover-e2e-security-").tempdir()?;
    let credentials = write(
        &dir.path().join("credentials.json"),
        &json!({"credentials": [{"principal": "drover", "secret": SECRET}]}).to_string(),
    )?;
    let credentials = credentials.display().to_string();
    let mesos = MesosCluster::start_with_env(
        1,
        RESOURCES,
        &[
            ("MESOS_AUTHENTICATE_HTTP_FRAMEWORKS", "true"),
            ("MESOS_HTTP_FRAMEWORK_AUTHENTICATORS", "basic"),
            ("MESOS_CREDENTIALS", &credentials),
        ],
    )?;

    // --- A wrong secret: no subscription, one clear error, no secret in the log.
    let wrong_file = write(&dir.path().join("wrong"), &format!("{WRONG}\n"))?;
    let wrong_file = wrong_file.display().to_string();
    let mut wrong = Drover::start(
        &mesos.master,
        &[
            "--framework-name",
            "drover-wrong",
            "--mesos-principal",
            "drover",
            "--mesos-secret-file",
            &wrong_file,
        ],
    )
    .await?;
    let refused = "The Mesos master refused the framework's credentials";
    eventually("the 401 to be logged", Duration::from_secs(20), || async {
        Ok(wrong.log_text().contains(refused).then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}\n--- log ---\n{}", wrong.log_text()))?;
    // Let it retry with backoff a few times: still one error, never subscribed.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(mesos.framework("drover-wrong").await?.is_none(), "a wrong secret subscribed");
    wrong.stop();
    let log = wrong.log_text();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains(refused)).collect();
    assert_eq!(errors.len(), 1, "one error for repeated identical refusals:\n{log}");
    assert!(errors[0].contains("ERROR") && errors[0].contains("principal=drover"), "{log}");
    assert!(errors[0].contains("status=401"), "{log}");
    assert!(!log.contains(WRONG) && !log.contains(SECRET), "a secret in the log:\n{log}");
    let retries =
        log.lines().filter(|l| l.contains("Subscribing to the Mesos master again")).count();
    assert!(retries >= 2, "it retries (with backoff):\n{log}");

    // --- No credentials at all: the error says so.
    let mut bare = Drover::start(&mesos.master, &["--framework-name", "drover-bare"]).await?;
    eventually("the missing credentials to be logged", Duration::from_secs(20), || async {
        Ok(bare.log_text().contains("requires the framework to authenticate").then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}\n--- log ---\n{}", bare.log_text()))?;
    bare.stop();

    // --- The right secret (from the environment), everything logged at trace.
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets)?;
    write(&secrets.join("db"), &format!("{APP_SECRET}\n"))?;
    let out = dir.path().join("out");
    std::fs::create_dir(&out)?;
    let secrets_arg = secrets.display().to_string();
    let drover = Drover::start_with_env(
        &mesos.master,
        &["--mesos-principal", "drover", "--secrets-dir", &secrets_arg],
        &[("DROVER_MESOS_SECRET", SECRET), ("DROVER_LOG", "trace")],
    )
    .await?;
    let fw = eventually("framework drover", Duration::from_secs(20), || mesos.framework("drover"))
        .await
        .map_err(|e| anyhow::anyhow!("{e:#}\n--- log ---\n{}", drover.log_text()))?;
    assert_eq!(fw["principal"], "drover", "{fw}");

    // An env secret that is not declared: Marathon's 422.
    let (status, body) = drover
        .call(
            "POST",
            "/v2/apps",
            Some(r#"{"id":"/bad","cmd":"true","env":{"X":{"secret":"nope"}}}"#),
        )
        .await?;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["message"], "Object is not valid", "{body}");
    assert_eq!(
        body["details"],
        json!([{"path": "/env/X/secret", "errors": ["references an undefined secret"]}])
    );

    // The task sees the value in its environment.
    let out_file = out.join("db.txt");
    let app = json!({
        "id": "/secretive",
        "cmd": format!("printf %s \"$DB_PASSWORD\" > {}.tmp && mv {0}.tmp {0} && sleep 600", out_file.display()),
        "cpus": 0.1,
        "mem": 32,
        "env": {"DB_PASSWORD": {"secret": "db"}, "PLAIN": "visible"},
        "secrets": {"db": {"source": "db"}},
    });
    let (status, body) = drover.call("POST", "/v2/apps", Some(&app.to_string())).await?;
    assert_eq!(status, 201, "{body}");
    assert!(!body.to_string().contains(APP_SECRET));
    let seen = eventually("the task to write its secret", Duration::from_secs(30), || async {
        Ok(std::fs::read_to_string(&out_file).ok())
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}\n--- log ---\n{}", drover.log_text()))?;
    assert_eq!(seen, APP_SECRET);

    // The API shows the reference only.
    let (status, body) = drover.call("GET", "/v2/apps/secretive", None).await?;
    assert_eq!(status, 200);
    assert_eq!(body["app"]["env"], json!({"DB_PASSWORD": {"secret": "db"}, "PLAIN": "visible"}));
    assert_eq!(body["app"]["secrets"], json!({"db": {"source": "db"}}));
    for path in ["/v2/apps", "/v2/apps/secretive", "/v2/tasks", "/v2/info", "/v2/deployments"] {
        let (_, body) = drover.call("GET", path, None).await?;
        let text = body.to_string();
        assert!(!text.contains(APP_SECRET) && !text.contains(SECRET), "{path}: {text}");
    }
    // Mesos does not show it either (it travels inside TaskInfo.data).
    let state = mesos.state().await?.to_string();
    assert!(!state.contains(APP_SECRET) && !state.contains(SECRET), "in /master/state");

    // A secret whose file is missing fails the launch, naming the secret.
    let missing = json!({
        "id": "/missing-secret",
        "cmd": "sleep 600",
        "cpus": 0.1,
        "mem": 32,
        "env": {"TOKEN": {"secret": "gone"}},
        "secrets": {"gone": {"source": "gone-file"}},
    });
    let (status, body) = drover.call("POST", "/v2/apps", Some(&missing.to_string())).await?;
    assert_eq!(status, 201, "{body}");
    let failure = eventually("the launch to fail", Duration::from_secs(30), || {
        app_failure(&drover, "/missing-secret")
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}\n--- log ---\n{}", drover.log_text()))?;
    assert_eq!(failure["state"], "TASK_ERROR", "{failure}");
    let message = failure["message"].as_str().unwrap_or("");
    assert!(
        message.starts_with("secret `gone` for TOKEN cannot be resolved: cannot read ")
            && message.contains("gone-file"),
        "{message}"
    );

    // Neither secret is anywhere in Drover's log (at trace level), nor in
    // the executors' logs.
    let log = drover.log_text();
    assert!(log.contains("Subscribed to Mesos."), "{log}");
    for needle in [SECRET, SECRET_B64, APP_SECRET] {
        assert!(!log.contains(needle), "`{needle}` in Drover's log");
    }
    let mut logs = Vec::new();
    stderr_files(&mesos.work_dir, &mut logs);
    assert!(!logs.is_empty(), "no executor logs under {}", mesos.work_dir.display());
    for file in logs {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(!text.contains(APP_SECRET), "the secret in {}", file.display());
    }
    Ok(())
}

/// Every secret these tests use is listed for the log grep that
/// integration/test.sh runs after all tests.
#[test]
fn every_test_secret_is_grepped_for() {
    let listed: Vec<&str> = include_str!("../test-secrets.txt")
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for secret in [SECRET, WRONG, APP_SECRET] {
        assert!(listed.contains(&secret), "{secret} is missing from test-secrets.txt");
    }
}
