//! Test support for code that needs a real etcd.
//!
//! - [`etcd_endpoint`]: the one etcd `integration/test.sh` starts for the
//!   whole run (`DROVER_TEST_ETCD`). Tests that need it fail, loudly, when it
//!   is not set: nothing is skipped.
//! - [`unique_prefix`]: each test works under its own key prefix, so tests
//!   run in parallel against that one etcd.
//! - [`TestEtcd`]: a private etcd process a test starts, stops and restarts
//!   itself (for "etcd goes away" tests), by PID; optionally serving TLS
//!   ([`TestEtcdOptions`]), and driven with `etcdctl` ([`TestEtcd::etcdctl`],
//!   e.g. to enable authentication).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use etcd_api::{Client, ClientConfig, TlsConfig};

/// The variable naming the test etcd's client URL.
pub const ENV: &str = "DROVER_TEST_ETCD";

/// The shared test etcd's endpoint. Panics with instructions when
/// [`ENV`] is unset.
pub fn etcd_endpoint() -> String {
    match std::env::var(ENV) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "{ENV} is not set: this test needs a real etcd. Run integration/test.sh (it starts one), \
             or start `etcd` yourself and set {ENV}=http://127.0.0.1:<client port>"
        ),
    }
}

/// A client of the shared test etcd.
pub async fn etcd_client() -> Client {
    let endpoint = etcd_endpoint();
    Client::connect(ClientConfig::new([endpoint.clone()]))
        .await
        .unwrap_or_else(|e| panic!("cannot reach the test etcd at {endpoint}: {e}"))
}

/// A key prefix no other test (or run) uses: `/drover-test/<pid>-<n>-<name>`.
pub fn unique_prefix(name: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("/drover-test/{}-{}-{name}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// How a [`TestEtcd`] serves its clients.
#[derive(Debug, Clone, Default)]
pub struct TestEtcdOptions {
    /// Serve `https://` with these files (plain `http://` when `None`).
    pub tls: Option<ServerTls>,
}

/// The TLS files of a [`TestEtcd`] (PEM).
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// etcd's certificate (`--cert-file`).
    pub cert_file: PathBuf,
    /// Its key (`--key-file`).
    pub key_file: PathBuf,
    /// Require client certificates signed by this CA (`--trusted-ca-file`
    /// and `--client-cert-auth`).
    pub client_ca_file: Option<PathBuf>,
    /// How [`TestEtcd`] itself connects to check that etcd answers.
    pub client: TlsConfig,
}

/// An etcd process of a test's own, on free loopback ports, with its data
/// under a directory the test gives. Stopped (by PID) when dropped.
#[derive(Debug)]
pub struct TestEtcd {
    dir: PathBuf,
    client_port: u16,
    peer_port: u16,
    options: TestEtcdOptions,
    child: Option<Child>,
}

impl TestEtcd {
    /// Starts etcd (`$DROVER_ETCD_BIN` or `etcd` on the `PATH`) with its
    /// data in `dir/data` and its log in `dir/etcd.log`, and waits until it
    /// answers.
    pub async fn start(dir: &Path) -> Result<TestEtcd, String> {
        TestEtcd::start_with(dir, TestEtcdOptions::default()).await
    }

    /// [`TestEtcd::start`], serving clients as `options` say.
    pub async fn start_with(dir: &Path, options: TestEtcdOptions) -> Result<TestEtcd, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let ports = (free_port(), free_port());
        let (Ok(client_port), Ok(peer_port)) = ports else {
            return Err("no free port".into());
        };
        let mut etcd =
            TestEtcd { dir: dir.to_owned(), client_port, peer_port, options, child: None };
        etcd.restart().await?;
        Ok(etcd)
    }

    /// The client URL (`https://` when serving TLS).
    pub fn endpoint(&self) -> String {
        let scheme = if self.options.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    /// A client configuration for this etcd (with the TLS settings it was
    /// started with).
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new([self.endpoint()]);
        config.tls = self.options.tls.as_ref().map(|t| t.client.clone());
        config
    }

    /// Runs `etcdctl` (`$DROVER_ETCDCTL_BIN` or `etcdctl` on the `PATH`,
    /// v3 API) against this etcd, which must serve plain `http://`; its
    /// standard output, or an error with its standard error.
    pub fn etcdctl(&self, args: &[&str]) -> Result<String, String> {
        let bin = std::env::var("DROVER_ETCDCTL_BIN").unwrap_or_else(|_| "etcdctl".into());
        let out = Command::new(&bin)
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoint()))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running {bin}: {e} (install Debian's etcd-client)"))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(format!(
                "etcdctl {} failed ({}): {}{}",
                args.join(" "),
                out.status,
                stdout,
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// The process id while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills etcd (SIGKILL, by PID) and reaps it. Its data stays.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts etcd again on the same ports and data (after [`TestEtcd::stop`]),
    /// and waits until it answers.
    pub async fn restart(&mut self) -> Result<(), String> {
        self.stop();
        let bin = std::env::var("DROVER_ETCD_BIN").unwrap_or_else(|_| "etcd".into());
        let log = std::fs::File::create(self.dir.join("etcd.log")).map_err(|e| e.to_string())?;
        let client = self.endpoint();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let mut command = Command::new(&bin);
        command
            .arg("--name=default")
            .arg(format!("--data-dir={}", self.dir.join("data").display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=default={peer}"));
        if let Some(tls) = &self.options.tls {
            command
                .arg(format!("--cert-file={}", tls.cert_file.display()))
                .arg(format!("--key-file={}", tls.key_file.display()));
            if let Some(ca) = &tls.client_ca_file {
                command
                    .arg(format!("--trusted-ca-file={}", ca.display()))
                    .arg("--client-cert-auth");
            }
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting {bin}: {e} (install Debian's etcd-server)"))?;
        self.child = Some(child);
        let mut config = self.client_config();
        config.request_timeout = Duration::from_secs(1);
        for _ in 0..100 {
            if let Ok(c) = Client::connect(config.clone()).await
                && c.status().await.is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.stop();
        Err(format!("etcd did not answer at {client}; see {}", self.dir.join("etcd.log").display()))
    }
}

impl Drop for TestEtcd {
    fn drop(&mut self) {
        self.stop();
    }
}
