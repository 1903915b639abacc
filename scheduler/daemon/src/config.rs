//! `drover serve` settings: flags, an optional TOML config file, defaults.
//!
//! Precedence: a flag beats the config file, which beats the default. The
//! file uses the flags' long names with `_` for `-`, e.g.
//!
//! ```toml
//! master = "http://mesos.example:5050"
//! listen = "0.0.0.0:8080"
//! decline_offer_duration_secs = 120
//! etcd = ["https://etcd-1:2379", "https://etcd-2:2379"]
//! etcd_ca_file = "/etc/drover/etcd-ca.pem"
//! etcd_user = "drover"
//! etcd_password_file = "/etc/drover/etcd-password"
//! mesos_principal = "drover"
//! mesos_secret_file = "/etc/drover/mesos-secret"
//! secrets_dir = "/etc/drover/secrets"
//! ```
//!
//! The etcd password is read from a file (`--etcd-password-file`) or the
//! environment ([`ETCD_PASSWORD_ENV`]), never from a flag, which `ps` would
//! show; so is the Mesos framework secret (`--mesos-secret-file` or
//! [`MESOS_SECRET_ENV`]). Both are read at startup; neither is shown by
//! `Debug`, `/v2/info`, logs or errors.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use etcd_api::{Credentials, TlsConfig, TlsIdentity};
use mesos_http::Authorization;
use mesos_wire::ContentType;
use sched_api::LimitsConfig;
use sched_core::scheduler::CoreConfig;
use serde::Deserialize;

use crate::mesos_adapter::ExecutorSettings;
use crate::mesos_adapter::secrets::SecretSource;
use crate::serve::ServeConfig;

/// Flags of `drover serve`.
#[derive(Debug, Clone, Default, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServeArgs {
    /// A TOML file with any of these settings (flags win).
    #[arg(long, env = "DROVER_CONFIG")]
    #[serde(skip)]
    pub(crate) config: Option<PathBuf>,
    /// The Mesos master (any master of the cluster) [default: http://127.0.0.1:5050].
    #[arg(long)]
    pub(crate) master: Option<String>,
    /// Address of the REST API [default: 127.0.0.1:8080].
    #[arg(long)]
    pub(crate) listen: Option<SocketAddr>,
    /// Framework name registered with Mesos [default: drover].
    #[arg(long)]
    pub(crate) framework_name: Option<String>,
    /// User the agents run tasks as [default: the current user].
    #[arg(long)]
    pub(crate) mesos_user: Option<String>,
    /// Seconds Mesos keeps Drover's tasks while Drover is away [default: 604800].
    #[arg(long)]
    pub(crate) failover_timeout_secs: Option<u64>,
    /// Mesos API encoding: protobuf or json [default: protobuf].
    #[arg(long)]
    pub(crate) mesos_content_type: Option<String>,
    /// The framework's principal (`FrameworkInfo.principal`); with a secret
    /// (--mesos-secret-file or $DROVER_MESOS_SECRET) Drover authenticates
    /// to the master with HTTP Basic on every request.
    #[arg(long)]
    pub(crate) mesos_principal: Option<String>,
    /// File holding the principal's secret (a trailing newline is
    /// ignored).
    #[arg(long)]
    pub(crate) mesos_secret_file: Option<PathBuf>,
    /// Directory of secret values for apps' `secrets` (source `name` is the
    /// file `DIR/name`), read when a task is launched.
    #[arg(long)]
    pub(crate) secrets_dir: Option<PathBuf>,
    /// Path of drover-executor on the agents [default: next to this binary].
    #[arg(long)]
    pub(crate) executor_path: Option<String>,
    /// Log filter passed to the executors [default: info].
    #[arg(long)]
    pub(crate) executor_log: Option<String>,
    /// Docker daemon the executors use for container apps, e.g.
    /// `unix:///var/run/docker.sock` [default: the executor's default].
    #[arg(long, env = "DOCKER_HOST")]
    pub(crate) docker_host: Option<String>,
    /// Seconds a declined offer is refused [default: 120].
    #[arg(long)]
    pub(crate) decline_offer_duration_secs: Option<u64>,
    /// Minimum seconds between two REVIVE calls [default: 5].
    #[arg(long)]
    pub(crate) min_revive_offers_interval_secs: Option<u64>,
    /// Seconds between reconciliation rounds [default: 600].
    #[arg(long)]
    pub(crate) reconciliation_interval_secs: Option<u64>,
    /// Seconds a task may stay staging before it is killed [default: 300].
    #[arg(long)]
    pub(crate) task_launch_timeout_secs: Option<u64>,
    /// Most launches per offer [default: 100].
    #[arg(long)]
    pub(crate) max_instances_per_offer: Option<usize>,
    /// Events a /v2/events client may fall behind before it is
    /// disconnected [default: 1024].
    #[arg(long)]
    pub(crate) event_stream_max_outstanding_messages: Option<usize>,
    /// Largest API request body in bytes; larger bodies get 413 [default:
    /// 8388608].
    #[arg(long)]
    pub(crate) max_request_body_bytes: Option<usize>,
    /// Deepest nesting of arrays and objects in a JSON request body; deeper
    /// bodies get 400 [default: 32].
    #[arg(long)]
    pub(crate) max_json_depth: Option<usize>,
    /// Concurrent /v2/events streams, and gRPC Watch streams, per principal
    /// (per address when unauthenticated); more get 429 / RESOURCE_EXHAUSTED;
    /// 0: no limit [default: 32].
    #[arg(long)]
    pub(crate) max_event_streams_per_principal: Option<usize>,
    /// Sustained API requests per second per principal (per address when
    /// unauthenticated); more get 429 with Retry-After; 0: no limit
    /// [default: 200].
    #[arg(long)]
    pub(crate) rate_limit_per_second: Option<u32>,
    /// API requests a principal may send at once above the sustained rate
    /// [default: 400].
    #[arg(long)]
    pub(crate) rate_limit_burst: Option<u32>,
    /// Password verifications (requests with credentials not already known
    /// good) per second per address, bursts of twice that; more get 429
    /// with Retry-After before any verification; 0: no limit [default: 10].
    #[arg(long)]
    pub(crate) max_auth_attempts_per_second: Option<u32>,
    /// Largest RecordIO record accepted from the Mesos master; a larger one
    /// ends the subscription with an error (it is re-established)
    /// [default: 16777216].
    #[arg(long)]
    pub(crate) mesos_max_record_bytes: Option<usize>,
    /// Largest RecordIO record the executors accept from their agent
    /// (passed to them as DROVER_EXECUTOR_MAX_RECORD_BYTES) [default:
    /// 16777216].
    #[arg(long)]
    pub(crate) executor_max_record_bytes: Option<usize>,
    /// etcd endpoints, comma-separated (e.g. `http://127.0.0.1:2379`): the
    /// state lives in etcd and instances elect a leader there.
    #[arg(long, value_delimiter = ',')]
    pub(crate) etcd: Option<Vec<String>>,
    /// Key prefix in etcd [default: /drover].
    #[arg(long)]
    pub(crate) etcd_prefix: Option<String>,
    /// Seconds a leader's etcd lease lives without a keep-alive [default: 10].
    #[arg(long)]
    pub(crate) leader_ttl_secs: Option<u64>,
    /// PEM CA bundle that verifies etcd's certificate (https:// endpoints)
    /// [default: the system's trust store].
    #[arg(long)]
    pub(crate) etcd_ca_file: Option<PathBuf>,
    /// PEM client certificate for etcd's `--client-cert-auth` (with
    /// --etcd-key-file).
    #[arg(long)]
    pub(crate) etcd_cert_file: Option<PathBuf>,
    /// PEM private key of --etcd-cert-file.
    #[arg(long)]
    pub(crate) etcd_key_file: Option<PathBuf>,
    /// The name etcd's certificate must carry [default: the endpoint's
    /// host], e.g. for IP endpoints whose certificate names a DNS name.
    #[arg(long)]
    pub(crate) etcd_tls_server_name: Option<String>,
    /// etcd user to log in as (etcd `--auth`); the password comes from
    /// --etcd-password-file or $DROVER_ETCD_PASSWORD.
    #[arg(long)]
    pub(crate) etcd_user: Option<String>,
    /// File holding the etcd user's password (a trailing newline is
    /// ignored).
    #[arg(long)]
    pub(crate) etcd_password_file: Option<PathBuf>,
    /// Directory of the embedded on-disk store (single node, no etcd).
    #[arg(long)]
    pub(crate) data_dir: Option<PathBuf>,
    /// Keep state in memory only: it is lost when Drover stops.
    #[arg(long)]
    #[serde(default)]
    pub(crate) in_memory: bool,
    /// The `host:port` other instances and clients reach this API at
    /// [default: --listen]; it names the leader in `X-Marathon-Leader`.
    #[arg(long)]
    pub(crate) advertise_address: Option<String>,
    /// Kill tasks Mesos reports for this framework that the store does not
    /// know, instead of only reporting them.
    #[arg(long)]
    #[serde(default)]
    pub(crate) kill_unknown_tasks: bool,
    /// The API's principals: one `name:role:argon2id-hash` per line (roles
    /// read-only, deployer, admin); see `drover credentials add`. Clients
    /// send `name:secret` as HTTP Basic or as a bearer token.
    #[arg(long)]
    pub(crate) credentials_file: Option<PathBuf>,
    /// Serve the API without authentication: anyone who reaches it is an
    /// admin. Only for trusted networks.
    #[arg(long)]
    #[serde(default)]
    pub(crate) insecure_open: bool,
    /// The role that may create apps and jobs with privileged containers or
    /// host volumes: admin or deployer [default: admin].
    #[arg(long)]
    pub(crate) privileged_role: Option<String>,
    /// PEM certificate (chain) of the API: it then serves HTTPS (and gRPC
    /// over TLS) only (with --tls-key-file).
    #[arg(long)]
    pub(crate) tls_cert_file: Option<PathBuf>,
    /// PEM private key of --tls-cert-file.
    #[arg(long)]
    pub(crate) tls_key_file: Option<PathBuf>,
    /// PEM CA bundle: clients must present a certificate it signed (standbys
    /// forwarding to the leader present --tls-cert-file).
    #[arg(long)]
    pub(crate) tls_client_ca_file: Option<PathBuf>,
    /// PEM CA bundle that verifies the leader's certificate when a standby
    /// forwards a request [default: the system's trust store].
    #[arg(long)]
    pub(crate) tls_ca_file: Option<PathBuf>,
}

/// Who may use the API.
#[derive(Debug, Clone)]
pub(crate) enum ApiAuth {
    /// Neither --credentials-file nor --insecure-open: `drover serve`
    /// refuses to start.
    Unset,
    /// --insecure-open: everyone is an anonymous admin.
    Open,
    /// The principals of --credentials-file.
    Credentials(sched_api::auth::CredentialsFile),
}

/// The API's TLS settings (`Debug` shows none of them: they hold the key).
#[derive(Clone)]
pub(crate) struct ApiTls {
    /// What the server presents and accepts.
    pub(crate) server: std::sync::Arc<sched_api::tls::rustls::ServerConfig>,
    /// How a standby reaches the leader.
    pub(crate) forward: sched_api::tls::rustls::ClientConfig,
}

impl std::fmt::Debug for ApiTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiTls").finish_non_exhaustive()
    }
}

/// How the API is secured.
#[derive(Debug, Clone)]
pub(crate) struct ApiSecurity {
    /// Authentication.
    pub(crate) auth: ApiAuth,
    /// The role that may run privileged containers and mount host volumes.
    pub(crate) privileged_role: sched_api::auth::Role,
    /// HTTPS, when configured.
    pub(crate) tls: Option<ApiTls>,
}

/// Where the scheduler's state lives.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StoreConfig {
    /// In process memory (lost on exit).
    Memory,
    /// The embedded on-disk store under a directory.
    Embedded(PathBuf),
    /// etcd, with leader election.
    Etcd {
        /// The endpoints.
        endpoints: Vec<String>,
        /// The key prefix.
        prefix: String,
        /// The leader lease's time to live.
        leader_ttl: Duration,
        /// TLS settings (only with `https://` endpoints).
        tls: Option<TlsConfig>,
        /// The user to log in as, and its password.
        credentials: Option<Credentials>,
    },
}

/// The variable that may hold the etcd password (see `--etcd-user`).
pub(crate) const ETCD_PASSWORD_ENV: &str = "DROVER_ETCD_PASSWORD";

/// The variable that may hold the Mesos framework secret (see
/// `--mesos-principal`).
pub(crate) const MESOS_SECRET_ENV: &str = "DROVER_MESOS_SECRET";

/// The secrets read from the environment at startup.
#[derive(Default)]
struct EnvSecrets {
    etcd_password: Option<String>,
    mesos_secret: Option<String>,
}

/// How Drover authenticates to the Mesos master.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct MesosAuth {
    /// `FrameworkInfo.principal`.
    pub(crate) principal: Option<String>,
    /// HTTP Basic credentials of the principal (redacted in `Debug`).
    pub(crate) authorization: Option<Authorization>,
}

/// Reads a one-line secret file: UTF-8, a trailing newline ignored, not empty.
fn read_secret_file(path: &Path, flag: &str) -> anyhow::Result<String> {
    let raw = read(path, flag)?;
    let text = String::from_utf8(raw)
        .map_err(|_| anyhow::anyhow!("--{flag} {} is not UTF-8", path.display()))?;
    let secret = text.trim_end_matches(['\n', '\r']);
    anyhow::ensure!(!secret.is_empty(), "--{flag} {} is empty", path.display());
    Ok(secret.to_owned())
}

macro_rules! merge {
    ($flags:ident, $file:ident, $($field:ident),*) => {
        $( if $flags.$field.is_none() { $flags.$field = $file.$field.take(); } )*
    };
}

fn current_user() -> String {
    std::env::var("USER").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "root".to_owned())
}

fn default_executor_path() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("drover-executor")))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "drover-executor".to_owned())
}

fn read(path: &Path, flag: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading --{flag} {}", path.display()))
}

/// Reads a PEM file and checks it holds a block whose label ends in `label`.
fn read_pem(path: &Path, flag: &str, label: &str) -> anyhow::Result<Vec<u8>> {
    let pem = read(path, flag)?;
    let text = String::from_utf8_lossy(&pem);
    let found = text.lines().any(|l| {
        l.strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
            .is_some_and(|l| l.ends_with(label))
    });
    anyhow::ensure!(found, "--{flag} {} holds no PEM {}", path.display(), label.to_lowercase());
    Ok(pem)
}

/// The API's limits: the flags' values, defaults for the rest.
fn limits_config(args: &ServeArgs) -> LimitsConfig {
    let d = LimitsConfig::default();
    LimitsConfig {
        max_request_body_bytes: args.max_request_body_bytes.unwrap_or(d.max_request_body_bytes),
        max_json_depth: args.max_json_depth.unwrap_or(d.max_json_depth),
        max_event_streams_per_principal: args
            .max_event_streams_per_principal
            .unwrap_or(d.max_event_streams_per_principal),
        rate_limit_per_second: args.rate_limit_per_second.unwrap_or(d.rate_limit_per_second),
        rate_limit_burst: args.rate_limit_burst.unwrap_or(d.rate_limit_burst),
        max_auth_attempts_per_second: args
            .max_auth_attempts_per_second
            .unwrap_or(d.max_auth_attempts_per_second),
    }
}

impl ServeArgs {
    /// Applies the config file (if any) under the flags and fills defaults.
    pub(crate) fn resolve(self) -> anyhow::Result<ServeConfig> {
        self.resolve_with_secrets(EnvSecrets {
            etcd_password: std::env::var(ETCD_PASSWORD_ENV).ok(),
            mesos_secret: std::env::var(MESOS_SECRET_ENV).ok(),
        })
    }

    /// The principal and credentials the Mesos flags ask for, the secret
    /// read and checked.
    fn mesos_auth(&self, env_secret: Option<String>) -> anyhow::Result<MesosAuth> {
        let Some(principal) = self.mesos_principal.clone() else {
            anyhow::ensure!(
                self.mesos_secret_file.is_none(),
                "--mesos-secret-file needs --mesos-principal"
            );
            // A secret in the environment alone is not used.
            return Ok(MesosAuth::default());
        };
        let secret = match &self.mesos_secret_file {
            Some(path) => Some(read_secret_file(path, "mesos-secret-file")?),
            None => env_secret.filter(|s| !s.is_empty()),
        };
        // A principal without a secret is valid Mesos (authorization without
        // authentication); a master that requires authentication answers 401,
        // which the driver reports.
        let authorization = match secret {
            Some(secret) => Some(
                Authorization::basic(&principal, &secret)
                    .map_err(|e| anyhow::anyhow!("--mesos-principal: {e}"))?,
            ),
            None => {
                anyhow::ensure!(!principal.is_empty(), "--mesos-principal is empty");
                None
            }
        };
        Ok(MesosAuth { principal: Some(principal), authorization })
    }

    /// The API's authentication and TLS settings, with their files read
    /// and checked.
    fn api_security(&self) -> anyhow::Result<ApiSecurity> {
        use sched_api::auth::{CredentialsFile, Role};
        let auth = match (&self.credentials_file, self.insecure_open) {
            (Some(_), true) => {
                anyhow::bail!("--credentials-file and --insecure-open are alternatives: give one")
            }
            (Some(path), false) => {
                let file = CredentialsFile::load(path)
                    .map_err(|e| anyhow::anyhow!("--credentials-file {}: {e}", path.display()))?;
                anyhow::ensure!(
                    !file.is_empty(),
                    "--credentials-file {} defines no principal (add one with `drover credentials add`)",
                    path.display()
                );
                ApiAuth::Credentials(file)
            }
            (None, true) => ApiAuth::Open,
            (None, false) => ApiAuth::Unset,
        };
        let privileged_role = match self.privileged_role.as_deref() {
            None => Role::Admin,
            Some(r) => match r.parse::<Role>() {
                Ok(role @ (Role::Admin | Role::Deployer)) => role,
                _ => anyhow::bail!("--privileged-role must be admin or deployer, not `{r}`"),
            },
        };
        let tls = match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(cert), Some(key)) => {
                let cert = read_pem(cert, "tls-cert-file", "CERTIFICATE")?;
                let key = read_pem(key, "tls-key-file", "PRIVATE KEY")?;
                let client_ca = match &self.tls_client_ca_file {
                    Some(p) => Some(read_pem(p, "tls-client-ca-file", "CERTIFICATE")?),
                    None => None,
                };
                let ca = match &self.tls_ca_file {
                    Some(p) => Some(read_pem(p, "tls-ca-file", "CERTIFICATE")?),
                    None => None,
                };
                let server = sched_api::tls::server_config(&cert, &key, client_ca.as_deref())
                    .map_err(|e| anyhow::anyhow!("--tls-cert-file/--tls-key-file: {e}"))?;
                // Standbys present this instance's certificate when the
                // leader asks for one.
                let identity = client_ca.is_some().then_some((&cert[..], &key[..]));
                let forward = sched_api::tls::client_config(ca.as_deref(), identity)
                    .map_err(|e| anyhow::anyhow!("--tls-ca-file: {e}"))?;
                Some(ApiTls { server, forward })
            }
            (None, None) => {
                if let Some(flag) = [
                    (self.tls_client_ca_file.is_some(), "tls-client-ca-file"),
                    (self.tls_ca_file.is_some(), "tls-ca-file"),
                ]
                .into_iter()
                .find_map(|(set, flag)| set.then_some(flag))
                {
                    anyhow::bail!("--{flag} needs --tls-cert-file and --tls-key-file");
                }
                None
            }
            _ => anyhow::bail!(
                "--tls-cert-file and --tls-key-file go together: give both or neither"
            ),
        };
        Ok(ApiSecurity { auth, privileged_role, tls })
    }

    /// The secrets directory, checked to exist.
    fn secret_source(&self) -> anyhow::Result<SecretSource> {
        let Some(dir) = &self.secrets_dir else { return Ok(SecretSource::None) };
        let meta = std::fs::metadata(dir)
            .with_context(|| format!("reading --secrets-dir {}", dir.display()))?;
        anyhow::ensure!(meta.is_dir(), "--secrets-dir {} is not a directory", dir.display());
        Ok(SecretSource::Dir(dir.clone()))
    }

    /// The etcd TLS settings and credentials the flags ask for, with their
    /// files read and checked.
    fn etcd_security(
        &self,
        endpoints: &[String],
        env_password: Option<String>,
    ) -> anyhow::Result<(Option<TlsConfig>, Option<Credentials>)> {
        let tls_flag = [
            (self.etcd_ca_file.is_some(), "etcd-ca-file"),
            (self.etcd_cert_file.is_some(), "etcd-cert-file"),
            (self.etcd_key_file.is_some(), "etcd-key-file"),
            (self.etcd_tls_server_name.is_some(), "etcd-tls-server-name"),
        ]
        .into_iter()
        .find_map(|(set, flag)| set.then_some(flag));
        let tls = match tls_flag {
            None => None,
            Some(flag) => {
                if let Some(plain) = endpoints.iter().find(|e| !e.starts_with("https://")) {
                    anyhow::bail!(
                        "--{flag} needs https:// etcd endpoints, but `{plain}` is not https://"
                    );
                }
                let identity = match (&self.etcd_cert_file, &self.etcd_key_file) {
                    (Some(cert), Some(key)) => Some(TlsIdentity {
                        cert_pem: read_pem(cert, "etcd-cert-file", "CERTIFICATE")?,
                        key_pem: read_pem(key, "etcd-key-file", "PRIVATE KEY")?,
                    }),
                    (None, None) => None,
                    _ => anyhow::bail!(
                        "--etcd-cert-file and --etcd-key-file go together: give both or neither"
                    ),
                };
                let ca_pem = match &self.etcd_ca_file {
                    Some(ca) => Some(read_pem(ca, "etcd-ca-file", "CERTIFICATE")?),
                    None => None,
                };
                Some(TlsConfig { ca_pem, identity, server_name: self.etcd_tls_server_name.clone() })
            }
        };
        if self.etcd_user.is_none() && self.etcd_password_file.is_some() {
            anyhow::bail!("--etcd-password-file needs --etcd-user");
        }
        let password = match &self.etcd_password_file {
            Some(path) => {
                let raw = read(path, "etcd-password-file")?;
                let text = String::from_utf8(raw).map_err(|_| {
                    anyhow::anyhow!("--etcd-password-file {} is not UTF-8", path.display())
                })?;
                let password = text.trim_end_matches(['\n', '\r']);
                anyhow::ensure!(
                    !password.is_empty(),
                    "--etcd-password-file {} is empty",
                    path.display()
                );
                Some(password.to_owned())
            }
            None => env_password.filter(|p| !p.is_empty()),
        };
        let credentials = match (&self.etcd_user, password) {
            (Some(user), Some(password)) => Some(Credentials::new(user.clone(), password)),
            (Some(_), None) => anyhow::bail!(
                "--etcd-user needs a password: --etcd-password-file FILE or ${ETCD_PASSWORD_ENV}"
            ),
            // A password in the environment alone is not used.
            (None, _) => None,
        };
        Ok((tls, credentials))
    }

    /// [`ServeArgs::resolve`], with the value of [`ETCD_PASSWORD_ENV`].
    #[cfg(test)]
    fn resolve_with_env(self, env_password: Option<String>) -> anyhow::Result<ServeConfig> {
        self.resolve_with_secrets(EnvSecrets { etcd_password: env_password, mesos_secret: None })
    }

    /// [`ServeArgs::resolve`], with the secrets of the environment.
    fn resolve_with_secrets(mut self, env: EnvSecrets) -> anyhow::Result<ServeConfig> {
        if let Some(path) = self.config.clone() {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let mut file: ServeArgs =
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
            merge!(
                self,
                file,
                master,
                listen,
                framework_name,
                mesos_user,
                failover_timeout_secs,
                mesos_content_type,
                mesos_principal,
                mesos_secret_file,
                secrets_dir,
                executor_path,
                executor_log,
                docker_host,
                decline_offer_duration_secs,
                min_revive_offers_interval_secs,
                reconciliation_interval_secs,
                task_launch_timeout_secs,
                max_instances_per_offer,
                event_stream_max_outstanding_messages,
                max_request_body_bytes,
                max_json_depth,
                max_event_streams_per_principal,
                rate_limit_per_second,
                rate_limit_burst,
                max_auth_attempts_per_second,
                mesos_max_record_bytes,
                executor_max_record_bytes,
                etcd,
                etcd_prefix,
                leader_ttl_secs,
                etcd_ca_file,
                etcd_cert_file,
                etcd_key_file,
                etcd_tls_server_name,
                etcd_user,
                etcd_password_file,
                data_dir,
                advertise_address,
                credentials_file,
                privileged_role,
                tls_cert_file,
                tls_key_file,
                tls_client_ca_file,
                tls_ca_file
            );
            self.in_memory |= file.in_memory;
            self.kill_unknown_tasks |= file.kill_unknown_tasks;
            self.insecure_open |= file.insecure_open;
        }
        let content_type: ContentType = self
            .mesos_content_type
            .as_deref()
            .unwrap_or("protobuf")
            .parse()
            .map_err(|e: String| anyhow::anyhow!(e))?;
        let store = match (self.etcd.take(), self.data_dir.take(), self.in_memory) {
            (Some(endpoints), None, false) if !endpoints.is_empty() => {
                let (tls, credentials) = self.etcd_security(&endpoints, env.etcd_password)?;
                StoreConfig::Etcd {
                    endpoints,
                    prefix: self.etcd_prefix.take().unwrap_or_else(|| "/drover".to_owned()),
                    leader_ttl: Duration::from_secs(self.leader_ttl_secs.unwrap_or(10).max(1)),
                    tls,
                    credentials,
                }
            }
            (None, Some(dir), false) => StoreConfig::Embedded(dir),
            (None, None, true) => StoreConfig::Memory,
            (None, None, false) => anyhow::bail!(
                "choose where state lives: --etcd URL[,URL...], --data-dir DIR (embedded store) or --in-memory (lost on exit)"
            ),
            _ => anyhow::bail!(
                "--etcd, --data-dir and --in-memory are alternatives: give exactly one"
            ),
        };
        let etcd_only = [
            (self.etcd_ca_file.is_some(), "etcd-ca-file"),
            (self.etcd_cert_file.is_some(), "etcd-cert-file"),
            (self.etcd_key_file.is_some(), "etcd-key-file"),
            (self.etcd_tls_server_name.is_some(), "etcd-tls-server-name"),
            (self.etcd_user.is_some(), "etcd-user"),
            (self.etcd_password_file.is_some(), "etcd-password-file"),
        ];
        if !matches!(store, StoreConfig::Etcd { .. })
            && let Some((_, flag)) = etcd_only.iter().find(|(set, _)| *set)
        {
            anyhow::bail!("--{flag} needs --etcd");
        }
        let mut core =
            CoreConfig { kill_unknown_tasks: self.kill_unknown_tasks, ..CoreConfig::default() };
        if let Some(s) = self.decline_offer_duration_secs {
            core.decline_refuse = Duration::from_secs(s);
        }
        if let Some(s) = self.min_revive_offers_interval_secs {
            core.min_revive_interval = Duration::from_secs(s);
        }
        if let Some(s) = self.reconciliation_interval_secs {
            core.reconcile_interval = Duration::from_secs(s.max(1));
        }
        if let Some(s) = self.task_launch_timeout_secs {
            core.launch_timeout = Duration::from_secs(s);
        }
        if let Some(n) = self.max_instances_per_offer {
            core.placement.max_launches_per_offer = n.max(1);
        }
        let mesos_auth = self.mesos_auth(env.mesos_secret)?;
        let secrets = self.secret_source()?;
        let api = self.api_security()?;
        let listen = self.listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        let limits = limits_config(&self);
        Ok(ServeConfig {
            api,
            mesos_auth,
            secrets,
            store,
            advertise: self.advertise_address.unwrap_or_else(|| listen.to_string()),
            master: self.master.unwrap_or_else(|| "http://127.0.0.1:5050".to_owned()),
            listen,
            framework_name: self.framework_name.unwrap_or_else(|| "drover".to_owned()),
            mesos_user: self.mesos_user.unwrap_or_else(current_user),
            failover_timeout: Duration::from_secs(self.failover_timeout_secs.unwrap_or(604_800)),
            content_type,
            executor: ExecutorSettings {
                path: self.executor_path.unwrap_or_else(default_executor_path),
                env: [
                    Some((
                        "DROVER_LOG".to_owned(),
                        self.executor_log.unwrap_or_else(|| "info".to_owned()),
                    )),
                    self.docker_host.map(|h| ("DOCKER_HOST".to_owned(), h)),
                    self.executor_max_record_bytes.map(|n| {
                        ("DROVER_EXECUTOR_MAX_RECORD_BYTES".to_owned(), n.max(1).to_string())
                    }),
                ]
                .into_iter()
                .flatten()
                .collect(),
            },
            core,
            event_capacity: self
                .event_stream_max_outstanding_messages
                .unwrap_or(sched_api::events::DEFAULT_CAPACITY)
                .max(1),
            limits,
            mesos_max_record_len: self
                .mesos_max_record_bytes
                .unwrap_or(mesos_wire::DEFAULT_MAX_RECORD_LEN)
                .max(1),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_marathon_like() {
        let c = ServeArgs { in_memory: true, ..Default::default() }.resolve().unwrap();
        assert_eq!(c.store, StoreConfig::Memory);
        assert_eq!(c.advertise, "127.0.0.1:8080");
        assert_eq!(c.master, "http://127.0.0.1:5050");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.framework_name, "drover");
        assert_eq!(c.failover_timeout, Duration::from_secs(604_800));
        assert_eq!(c.core.decline_refuse, Duration::from_secs(120));
        assert_eq!(c.content_type, ContentType::Protobuf);
        assert_eq!(c.event_capacity, 1024);
    }

    #[test]
    fn flags_beat_the_file_which_beats_defaults() {
        let dir = std::env::temp_dir().join(format!("drover-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("drover.toml");
        std::fs::write(&path, "master = \"http://m:5050\"\nlisten = \"127.0.0.1:9999\"\nmesos_content_type = \"json\"\n").unwrap();
        let args = ServeArgs {
            config: Some(path.clone()),
            listen: Some("127.0.0.1:7777".parse().unwrap()),
            in_memory: true,
            ..Default::default()
        };
        let c = args.resolve().unwrap();
        assert_eq!(c.master, "http://m:5050");
        assert_eq!(c.listen.port(), 7777);
        assert_eq!(c.content_type, ContentType::Json);
        std::fs::write(&path, "nonsense = 1\n").unwrap();
        let err = ServeArgs { config: Some(path), in_memory: true, ..Default::default() }
            .resolve()
            .unwrap_err();
        assert!(format!("{err:#}").contains("unknown field"), "{err:#}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn bad_content_type_is_an_error() {
        let args = ServeArgs {
            mesos_content_type: Some("xml".into()),
            in_memory: true,
            ..Default::default()
        };
        assert!(args.resolve().is_err());
    }

    #[test]
    fn exactly_one_store_must_be_chosen() {
        assert!(ServeArgs::default().resolve().is_err(), "no store");
        let both =
            ServeArgs { in_memory: true, data_dir: Some("/tmp/x".into()), ..Default::default() };
        assert!(both.resolve().is_err());
        let etcd = ServeArgs {
            etcd: Some(vec!["http://127.0.0.1:2379".into(), "http://127.0.0.1:2380".into()]),
            leader_ttl_secs: Some(3),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(
            etcd.store,
            StoreConfig::Etcd {
                endpoints: vec!["http://127.0.0.1:2379".into(), "http://127.0.0.1:2380".into()],
                prefix: "/drover".into(),
                leader_ttl: Duration::from_secs(3),
                tls: None,
                credentials: None,
            }
        );
        let disk = ServeArgs { data_dir: Some("/var/lib/drover".into()), ..Default::default() }
            .resolve()
            .unwrap();
        assert_eq!(disk.store, StoreConfig::Embedded("/var/lib/drover".into()));
    }

    /// A directory of this test's own, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("drover-config-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn file(&self, name: &str, text: &str) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, text).unwrap();
            path
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";

    fn over_https() -> ServeArgs {
        ServeArgs { etcd: Some(vec!["https://10.0.0.1:2379".into()]), ..Default::default() }
    }

    fn etcd_settings(c: &ServeConfig) -> (Option<TlsConfig>, Option<Credentials>) {
        match &c.store {
            StoreConfig::Etcd { tls, credentials, .. } => (tls.clone(), credentials.clone()),
            other => panic!("not etcd: {other:?}"),
        }
    }

    fn error(args: ServeArgs) -> String {
        format!("{:#}", args.resolve_with_env(None).unwrap_err())
    }

    #[test]
    fn etcd_tls_and_login_come_from_files() {
        let dir = Scratch::new("etcd-files");
        let args = ServeArgs {
            etcd_ca_file: Some(dir.file("ca.pem", CERT)),
            etcd_cert_file: Some(dir.file("client.pem", CERT)),
            etcd_key_file: Some(dir.file("client-key.pem", KEY)),
            etcd_tls_server_name: Some("etcd.internal".into()),
            etcd_user: Some("drover".into()),
            etcd_password_file: Some(dir.file("password", "correct-horse\n")),
            ..over_https()
        };
        let c = args.resolve_with_env(Some("from-the-environment".into())).unwrap();
        let (tls, credentials) = etcd_settings(&c);
        let tls = tls.expect("tls");
        assert_eq!(tls.ca_pem.as_deref(), Some(CERT.as_bytes()));
        let identity = tls.identity.expect("client certificate");
        assert_eq!(
            (identity.cert_pem.as_slice(), identity.key_pem.as_slice()),
            (CERT.as_bytes(), KEY.as_bytes())
        );
        assert_eq!(tls.server_name.as_deref(), Some("etcd.internal"));
        // The file beats the environment; its trailing newline is not part of it.
        assert_eq!(credentials, Some(Credentials::new("drover", "correct-horse")));
        let shown = format!("{c:?}");
        assert!(!shown.contains("correct-horse") && !shown.contains("MIIE"), "{shown}");
    }

    #[test]
    fn the_etcd_password_may_come_from_the_environment_only_with_a_user() {
        let args = ServeArgs { etcd_user: Some("drover".into()), ..over_https() };
        let c = args.resolve_with_env(Some("from-env".into())).unwrap();
        assert_eq!(etcd_settings(&c), (None, Some(Credentials::new("drover", "from-env"))));
        let c = over_https().resolve_with_env(Some("from-env".into())).unwrap();
        assert_eq!(etcd_settings(&c), (None, None));
        let e = error(ServeArgs { etcd_user: Some("drover".into()), ..over_https() });
        assert!(e.contains("--etcd-user needs a password"), "{e}");
        assert!(e.contains("DROVER_ETCD_PASSWORD"), "{e}");
    }

    #[test]
    fn etcd_settings_come_from_the_config_file_too() {
        let dir = Scratch::new("etcd-toml");
        let ca = dir.file("ca.pem", CERT);
        let password = dir.file("password", "pw-in-a-file\r\n");
        let toml = format!(
            "etcd = [\"https://etcd:2379\"]\netcd_ca_file = {ca:?}\netcd_user = \"drover\"\n\
             etcd_password_file = {password:?}\netcd_tls_server_name = \"etcd.internal\"\n"
        );
        let config = dir.file("drover.toml", &toml);
        let args = ServeArgs { config: Some(config), ..Default::default() };
        let (tls, credentials) = etcd_settings(&args.resolve_with_env(None).unwrap());
        let tls = tls.expect("tls");
        assert_eq!(tls.ca_pem.as_deref(), Some(CERT.as_bytes()));
        assert_eq!(tls.server_name.as_deref(), Some("etcd.internal"));
        assert_eq!(credentials, Some(Credentials::new("drover", "pw-in-a-file")));
    }

    #[test]
    fn bad_etcd_security_settings_are_clear_errors() {
        let dir = Scratch::new("etcd-errors");
        let cert = dir.file("client.pem", CERT);
        let e = error(ServeArgs { etcd_cert_file: Some(cert.clone()), ..over_https() });
        assert_eq!(e, "--etcd-cert-file and --etcd-key-file go together: give both or neither");

        let plain = ServeArgs {
            etcd: Some(vec!["https://a:2379".into(), "http://b:2379".into()]),
            etcd_ca_file: Some(cert.clone()),
            ..Default::default()
        };
        assert_eq!(
            error(plain),
            "--etcd-ca-file needs https:// etcd endpoints, but `http://b:2379` is not https://"
        );

        let missing = dir.0.join("missing.pem");
        let e = error(ServeArgs { etcd_ca_file: Some(missing.clone()), ..over_https() });
        assert!(e.starts_with(&format!("reading --etcd-ca-file {}: ", missing.display())), "{e}");

        let not_pem = dir.file("ca.txt", "hello");
        let e = error(ServeArgs { etcd_ca_file: Some(not_pem.clone()), ..over_https() });
        assert_eq!(e, format!("--etcd-ca-file {} holds no PEM certificate", not_pem.display()));

        let key_as_cert = ServeArgs {
            etcd_cert_file: Some(cert.clone()),
            etcd_key_file: Some(cert.clone()),
            ..over_https()
        };
        let e = error(key_as_cert);
        assert_eq!(e, format!("--etcd-key-file {} holds no PEM private key", cert.display()));

        let empty = dir.file("empty", "\n");
        let args = ServeArgs {
            etcd_user: Some("drover".into()),
            etcd_password_file: Some(empty.clone()),
            ..over_https()
        };
        assert_eq!(error(args), format!("--etcd-password-file {} is empty", empty.display()));

        let no_user = ServeArgs { etcd_password_file: Some(empty), ..over_https() };
        assert_eq!(error(no_user), "--etcd-password-file needs --etcd-user");

        let memory =
            ServeArgs { in_memory: true, etcd_user: Some("drover".into()), ..Default::default() };
        assert_eq!(error(memory), "--etcd-user needs --etcd");
    }

    fn mesos_error(args: ServeArgs, env_secret: Option<&str>) -> String {
        let env = EnvSecrets { etcd_password: None, mesos_secret: env_secret.map(str::to_owned) };
        format!("{:#}", args.resolve_with_secrets(env).unwrap_err())
    }

    fn with_mesos(args: ServeArgs, env_secret: Option<&str>) -> ServeConfig {
        let env = EnvSecrets { etcd_password: None, mesos_secret: env_secret.map(str::to_owned) };
        args.resolve_with_secrets(env).unwrap()
    }

    fn in_memory() -> ServeArgs {
        ServeArgs { in_memory: true, ..Default::default() }
    }

    #[test]
    fn the_mesos_secret_comes_from_a_file_or_the_environment_and_is_never_shown() {
        let dir = Scratch::new("mesos-secret");
        let file = dir.file("secret", "s3cret-XYZ\n");
        let args = ServeArgs {
            mesos_principal: Some("drover".into()),
            mesos_secret_file: Some(file),
            ..in_memory()
        };
        let c = with_mesos(args, Some("from-env"));
        assert_eq!(c.mesos_auth.principal.as_deref(), Some("drover"));
        let auth = c.mesos_auth.authorization.clone().expect("credentials");
        // The file beats the environment; its trailing newline is not part of it.
        assert_eq!(auth, Authorization::basic("drover", "s3cret-XYZ").unwrap());
        let shown = format!("{c:?} {c:#?}");
        assert!(!shown.contains("s3cret") && !shown.contains("ZHJvdmVy"), "{shown}");
        assert!(shown.contains("drover"), "{shown}");

        let args = ServeArgs { mesos_principal: Some("drover".into()), ..in_memory() };
        let c = with_mesos(args, Some("env-secret"));
        assert_eq!(
            c.mesos_auth.authorization,
            Some(Authorization::basic("drover", "env-secret").unwrap())
        );
        // Without a principal the environment's secret is not used; without a
        // secret the principal is only declared.
        assert_eq!(with_mesos(in_memory(), Some("env-secret")).mesos_auth, MesosAuth::default());
        let args = ServeArgs { mesos_principal: Some("drover".into()), ..in_memory() };
        let c = with_mesos(args, None);
        assert_eq!(
            c.mesos_auth,
            MesosAuth { principal: Some("drover".into()), authorization: None }
        );
    }

    #[test]
    fn mesos_settings_come_from_the_config_file_too() {
        let dir = Scratch::new("mesos-toml");
        let secret = dir.file("secret", "pw\r\n");
        let secrets = dir.0.join("secrets");
        std::fs::create_dir_all(&secrets).unwrap();
        let toml = format!(
            "in_memory = true\nmesos_principal = \"fw\"\nmesos_secret_file = {secret:?}\n\
             secrets_dir = {secrets:?}\n"
        );
        let config = dir.file("drover.toml", &toml);
        let c = with_mesos(ServeArgs { config: Some(config), ..Default::default() }, None);
        assert_eq!(c.mesos_auth.authorization, Some(Authorization::basic("fw", "pw").unwrap()));
        assert_eq!(c.secrets, SecretSource::Dir(secrets));
    }

    #[test]
    fn bad_mesos_credentials_are_clear_errors_without_the_secret() {
        let dir = Scratch::new("mesos-errors");
        let secret = dir.file("secret", "hunter2\n");
        let e =
            mesos_error(ServeArgs { mesos_secret_file: Some(secret.clone()), ..in_memory() }, None);
        assert_eq!(e, "--mesos-secret-file needs --mesos-principal");
        let colon = ServeArgs {
            mesos_principal: Some("a:b".into()),
            mesos_secret_file: Some(secret.clone()),
            ..in_memory()
        };
        let e = mesos_error(colon, None);
        assert_eq!(
            e,
            "--mesos-principal: the principal `a:b` contains a `:` or a control character"
        );
        let empty = dir.file("empty", "\n");
        let args = ServeArgs {
            mesos_principal: Some("drover".into()),
            mesos_secret_file: Some(empty.clone()),
            ..in_memory()
        };
        assert_eq!(
            mesos_error(args, None),
            format!("--mesos-secret-file {} is empty", empty.display())
        );
        let missing = dir.0.join("missing");
        let args = ServeArgs {
            mesos_principal: Some("drover".into()),
            mesos_secret_file: Some(missing.clone()),
            ..in_memory()
        };
        let e = mesos_error(args, None);
        assert!(
            e.starts_with(&format!("reading --mesos-secret-file {}: ", missing.display())),
            "{e}"
        );
        let e = mesos_error(
            ServeArgs { mesos_principal: Some(String::new()), ..in_memory() },
            Some("x"),
        );
        assert_eq!(e, "--mesos-principal: the principal is empty");
        assert!(!e.contains("hunter2"));
    }

    #[test]
    fn the_secrets_dir_must_be_a_directory() {
        let dir = Scratch::new("secrets-dir");
        let c = with_mesos(ServeArgs { secrets_dir: Some(dir.0.clone()), ..in_memory() }, None);
        assert_eq!(c.secrets, SecretSource::Dir(dir.0.clone()));
        assert_eq!(with_mesos(in_memory(), None).secrets, SecretSource::None);
        let file = dir.file("f", "x");
        let e = mesos_error(ServeArgs { secrets_dir: Some(file.clone()), ..in_memory() }, None);
        assert_eq!(e, format!("--secrets-dir {} is not a directory", file.display()));
        let missing = dir.0.join("missing");
        let e = mesos_error(ServeArgs { secrets_dir: Some(missing.clone()), ..in_memory() }, None);
        assert!(e.starts_with(&format!("reading --secrets-dir {}: ", missing.display())), "{e}");
    }

    #[test]
    fn limits_come_from_flags_then_the_file_then_defaults() {
        let c = ServeArgs { in_memory: true, ..Default::default() }.resolve().unwrap();
        assert_eq!(c.limits, LimitsConfig::default());
        assert_eq!(c.limits.max_request_body_bytes, 8 << 20);
        assert_eq!(c.limits.max_json_depth, 32);
        assert_eq!(c.limits.max_event_streams_per_principal, 32);
        assert_eq!((c.limits.rate_limit_per_second, c.limits.rate_limit_burst), (200, 400));
        assert_eq!(c.limits.max_auth_attempts_per_second, 10);
        assert_eq!(c.mesos_max_record_len, mesos_wire::DEFAULT_MAX_RECORD_LEN);
        assert!(!c.executor.env.iter().any(|(k, _)| k == "DROVER_EXECUTOR_MAX_RECORD_BYTES"));

        let dir = Scratch::new("limits");
        let file = dir.file(
            "drover.toml",
            "max_request_body_bytes = 1000\nmax_json_depth = 5\nrate_limit_per_second = 0\n\
             max_event_streams_per_principal = 3\nrate_limit_burst = 7\n\
             max_auth_attempts_per_second = 2\n\
             mesos_max_record_bytes = 4096\nexecutor_max_record_bytes = 2048\n",
        );
        let c = ServeArgs {
            config: Some(file),
            in_memory: true,
            max_json_depth: Some(9),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(
            c.limits,
            LimitsConfig {
                max_request_body_bytes: 1000,
                max_json_depth: 9,
                max_event_streams_per_principal: 3,
                rate_limit_per_second: 0,
                rate_limit_burst: 7,
                max_auth_attempts_per_second: 2,
            }
        );
        assert_eq!(c.mesos_max_record_len, 4096);
        assert!(
            c.executor
                .env
                .contains(&("DROVER_EXECUTOR_MAX_RECORD_BYTES".to_owned(), "2048".to_owned())),
            "{:?}",
            c.executor.env
        );
    }

    fn api_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("drover-config-api-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_api_needs_credentials_or_an_explicit_open_flag() {
        let c = ServeArgs { in_memory: true, ..Default::default() }.resolve().unwrap();
        assert!(matches!(c.api.auth, ApiAuth::Unset));
        assert!(c.api.tls.is_none());
        assert_eq!(c.api.privileged_role, sched_api::auth::Role::Admin);
        let c = ServeArgs { in_memory: true, insecure_open: true, ..Default::default() }
            .resolve()
            .unwrap();
        assert!(matches!(c.api.auth, ApiAuth::Open));

        let dir = api_dir("credentials");
        let file = dir.join("credentials");
        crate::credentials::add(&file, "admin", sched_api::auth::Role::Admin).unwrap();
        let args = ServeArgs {
            in_memory: true,
            credentials_file: Some(file.clone()),
            privileged_role: Some("deployer".into()),
            ..Default::default()
        };
        let c = args.clone().resolve().unwrap();
        assert!(matches!(&c.api.auth, ApiAuth::Credentials(f) if f.contains("admin")));
        assert_eq!(c.api.privileged_role, sched_api::auth::Role::Deployer);
        // Debug shows no hash.
        assert!(!format!("{c:?}").contains("argon2"));

        let err = |args: ServeArgs| format!("{:#}", args.resolve().unwrap_err());
        let e = err(ServeArgs { insecure_open: true, ..args.clone() });
        assert!(e.contains("alternatives"), "{e}");
        let e = err(ServeArgs { privileged_role: Some("read-only".into()), ..args.clone() });
        assert!(e.contains("admin or deployer"), "{e}");
        std::fs::write(&file, "# principals\nadmin:admin:not-a-hash\n").unwrap();
        let e = err(args.clone());
        assert!(e.contains("line 2") && e.contains(&file.display().to_string()), "{e}");
        std::fs::write(&file, "# nobody\n").unwrap();
        let e = err(args);
        assert!(e.contains("defines no principal"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn api_tls_files_are_read_and_checked_at_startup() {
        let dir = api_dir("tls");
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let cert_file = dir.join("cert.pem");
        let key_file = dir.join("key.pem");
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, signing_key.serialize_pem()).unwrap();
        let args = ServeArgs {
            in_memory: true,
            insecure_open: true,
            tls_cert_file: Some(cert_file.clone()),
            tls_key_file: Some(key_file.clone()),
            tls_client_ca_file: Some(cert_file.clone()),
            tls_ca_file: Some(cert_file.clone()),
            ..Default::default()
        };
        let c = args.clone().resolve().unwrap();
        assert!(c.api.tls.is_some());
        let err = |args: ServeArgs| format!("{:#}", args.resolve().unwrap_err());
        let e = err(ServeArgs { tls_key_file: None, ..args.clone() });
        assert!(e.contains("go together"), "{e}");
        let e = err(ServeArgs {
            tls_cert_file: None,
            tls_key_file: None,
            tls_ca_file: None,
            ..args.clone()
        });
        assert!(e.contains("--tls-client-ca-file needs --tls-cert-file"), "{e}");
        let e = err(ServeArgs { tls_key_file: Some(cert_file.clone()), ..args });
        assert!(e.contains("--tls-key-file") && e.contains("private key"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn serve_refuses_to_start_without_api_authentication() {
        let c = ServeArgs { in_memory: true, ..Default::default() }.resolve().unwrap();
        let e = crate::serve::run(c, async {}).await.unwrap_err().to_string();
        assert!(e.contains("--credentials-file") && e.contains("--insecure-open"), "{e}");
    }
}
