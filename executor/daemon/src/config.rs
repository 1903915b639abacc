//! The executor's settings, read from the environment the agent gives it.
//!
//! The agent does not pass its own environment on, only `MESOS_*` variables
//! (see `shared/reference/real-mesos.md`, "What the executor sees"). Drover's
//! own knobs travel in the `ExecutorInfo`'s `CommandInfo.environment`:
//! `DROVER_EXECUTOR_CONTENT_TYPE` (`protobuf`, the default, or `json`),
//! `DROVER_LOG` (a tracing filter, read by `main`), `DOCKER_HOST` (the
//! Docker engine for container tasks, default `unix:///var/run/docker.sock`)
//! and `DROVER_EXECUTOR_MAX_RECORD_BYTES` (the largest RecordIO record taken
//! from the agent, default 16 MiB; set by `drover serve
//! --executor-max-record-bytes`).

use std::path::PathBuf;
use std::time::Duration;

use exec_runtime::DockerConfig;
use mesos_http::Authorization;
use mesos_http::executor::ExecutorClientConfig;
use mesos_wire::executor::ExecutorConfig;
use mesos_wire::{ContentType, DEFAULT_MAX_RECORD_LEN, Endpoint};

use crate::ExecutorError;
use crate::duration::parse_duration;

/// The variable that holds the executor's authentication token, when the
/// agent requires executors to authenticate.
pub const TOKEN_ENV: &str = "MESOS_EXECUTOR_AUTHENTICATION_TOKEN";

/// The executor API path below an agent's (libprocess) id.
const EXECUTOR_API: &str = "/api/v1/executor";

/// Everything the executor learns from its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `MESOS_FRAMEWORK_ID`.
    pub framework_id: String,
    /// `MESOS_EXECUTOR_ID`.
    pub executor_id: String,
    /// The agent's executor API, from `MESOS_SLAVE_PID` or `MESOS_AGENT_ENDPOINT`.
    pub agent: Endpoint,
    /// `MESOS_CHECKPOINT=1`: survive agent restarts.
    pub checkpoint: bool,
    /// `MESOS_RECOVERY_TIMEOUT` (default 15 minutes).
    pub recovery_timeout: Duration,
    /// `MESOS_SUBSCRIPTION_BACKOFF_MAX` (default 2 seconds).
    pub backoff_max: Duration,
    /// `MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD` (default 5 seconds).
    pub shutdown_grace: Duration,
    /// `MESOS_SANDBOX`, else `MESOS_DIRECTORY`, else `.`.
    pub sandbox: PathBuf,
    /// `Bearer <MESOS_EXECUTOR_AUTHENTICATION_TOKEN>`, sent on every call to
    /// the agent; its `Debug` does not show the token.
    pub authorization: Option<Authorization>,
    /// `DROVER_EXECUTOR_CONTENT_TYPE`.
    pub content_type: ContentType,
    /// The `PATH` given to tasks (the executor's own).
    pub path: String,
    /// `DOCKER_HOST`: where container tasks run.
    pub docker_host: String,
    /// `DROVER_EXECUTOR_MAX_RECORD_BYTES`: the largest RecordIO record
    /// accepted from the agent (default [`DEFAULT_MAX_RECORD_LEN`]); a larger
    /// one ends the subscription with an error.
    pub max_record_len: usize,
}

/// The variable that sets [`Settings::max_record_len`].
pub const MAX_RECORD_BYTES_ENV: &str = "DROVER_EXECUTOR_MAX_RECORD_BYTES";

/// The executor API URL of an agent, from `MESOS_SLAVE_PID`
/// (`slave(1)@127.0.0.1:5051` → `http://127.0.0.1:5051/slave(1)/api/v1/executor`)
/// or else `MESOS_AGENT_ENDPOINT` (`127.0.0.1:5051` → `http://127.0.0.1:5051/api/v1/executor`).
pub fn agent_endpoint(
    slave_pid: Option<&str>,
    agent_endpoint: Option<&str>,
) -> Result<Endpoint, ExecutorError> {
    if let Some(pid) = slave_pid.filter(|p| !p.is_empty()) {
        let invalid = || ExecutorError::InvalidEnv {
            name: "MESOS_SLAVE_PID",
            value: pid.to_owned(),
            expected: "a libprocess pid such as `slave(1)@127.0.0.1:5051`",
        };
        let (id, authority) = pid.split_once('@').ok_or_else(invalid)?;
        let bad = |s: &str| {
            s.is_empty() || s.contains(|c: char| c == '/' || c == '@' || c.is_whitespace())
        };
        if bad(id) || bad(authority) {
            return Err(invalid());
        }
        return Endpoint::parse(&format!("http://{authority}/{id}{EXECUTOR_API}"), EXECUTOR_API)
            .map_err(|_| invalid());
    }
    let endpoint = agent_endpoint
        .filter(|e| !e.is_empty())
        .ok_or(ExecutorError::MissingEnv("MESOS_AGENT_ENDPOINT"))?;
    let invalid = || ExecutorError::InvalidEnv {
        name: "MESOS_AGENT_ENDPOINT",
        value: endpoint.to_owned(),
        expected: "`host:port`",
    };
    if endpoint.contains(|c: char| c == '/' || c.is_whitespace()) {
        return Err(invalid());
    }
    Endpoint::parse(&format!("http://{endpoint}{EXECUTOR_API}"), EXECUTOR_API)
        .map_err(|_| invalid())
}

impl Settings {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self, ExecutorError> {
        Settings::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `get` (the environment, or a test's map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ExecutorError> {
        let required = |name: &'static str| {
            get(name).filter(|v| !v.is_empty()).ok_or(ExecutorError::MissingEnv(name))
        };
        let duration = |name: &'static str, default: Duration| match get(name) {
            None => Ok(default),
            Some(value) => parse_duration(&value).ok_or(ExecutorError::InvalidEnv {
                name,
                value,
                expected: "a Mesos duration such as `5secs` or `15mins`",
            }),
        };
        let checkpoint = match get("MESOS_CHECKPOINT").as_deref() {
            None | Some("0" | "" | "false") => false,
            Some("1" | "true") => true,
            Some(other) => {
                return Err(ExecutorError::InvalidEnv {
                    name: "MESOS_CHECKPOINT",
                    value: other.to_owned(),
                    expected: "`1` or `0`",
                });
            }
        };
        let content_type = match get("DROVER_EXECUTOR_CONTENT_TYPE") {
            None => ContentType::Protobuf,
            Some(value) => value.parse().map_err(|_| ExecutorError::InvalidEnv {
                name: "DROVER_EXECUTOR_CONTENT_TYPE",
                value,
                expected: "`protobuf` or `json`",
            })?,
        };
        let max_record_len = match get(MAX_RECORD_BYTES_ENV) {
            None => DEFAULT_MAX_RECORD_LEN,
            Some(value) => match value.trim().parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => {
                    return Err(ExecutorError::InvalidEnv {
                        name: MAX_RECORD_BYTES_ENV,
                        value,
                        expected: "a positive number of bytes",
                    });
                }
            },
        };
        let sandbox = get("MESOS_SANDBOX")
            .or_else(|| get("MESOS_DIRECTORY"))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| ".".to_owned());
        Ok(Settings {
            framework_id: required("MESOS_FRAMEWORK_ID")?,
            executor_id: required("MESOS_EXECUTOR_ID")?,
            agent: agent_endpoint(
                get("MESOS_SLAVE_PID").as_deref(),
                get("MESOS_AGENT_ENDPOINT").as_deref(),
            )?,
            checkpoint,
            recovery_timeout: duration("MESOS_RECOVERY_TIMEOUT", Duration::from_secs(15 * 60))?,
            backoff_max: duration("MESOS_SUBSCRIPTION_BACKOFF_MAX", Duration::from_secs(2))?,
            shutdown_grace: duration(
                "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
                Duration::from_secs(5),
            )?,
            sandbox: PathBuf::from(sandbox),
            authorization: match get(TOKEN_ENV).filter(|t| !t.is_empty()) {
                None => None,
                Some(token) => Some(
                    Authorization::bearer(&token)
                        .map_err(|_| ExecutorError::InvalidSecretEnv(TOKEN_ENV))?,
                ),
            },
            content_type,
            path: get("PATH")
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| exec_runtime::process::DEFAULT_PATH.to_owned()),
            docker_host: get("DOCKER_HOST")
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| DockerConfig::DEFAULT_HOST.to_owned()),
            max_record_len,
        })
    }

    /// The Docker runtime's configuration (default timeouts).
    pub fn docker_config(&self) -> DockerConfig {
        DockerConfig::new(
            self.docker_host.clone(),
            self.framework_id.clone(),
            self.executor_id.clone(),
            self.sandbox.clone(),
        )
    }

    /// The `mesos-http` driver configuration; `seed` feeds UUIDs and jitter.
    pub fn client_config(&self, seed: u64) -> ExecutorClientConfig {
        ExecutorClientConfig {
            agent: self.agent.clone(),
            session: ExecutorConfig {
                framework_id: self.framework_id.clone(),
                executor_id: self.executor_id.clone(),
                checkpoint: self.checkpoint,
                recovery_timeout: self.recovery_timeout,
                backoff_max: self.backoff_max,
                connect_timeout: Duration::from_secs(10),
            },
            content_type: self.content_type,
            max_record_len: self.max_record_len,
            call_timeout: Duration::from_secs(10),
            authorization: self.authorization.clone(),
            seed,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ExecutorError> {
        let env: BTreeMap<String, String> =
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Settings::from_lookup(|name| env.get(name).cloned())
    }

    const BASE: [(&str, &str); 3] = [
        ("MESOS_FRAMEWORK_ID", "fw-1"),
        ("MESOS_EXECUTOR_ID", "ex-1"),
        ("MESOS_AGENT_ENDPOINT", "10.0.0.1:5051"),
    ];

    #[test]
    fn the_slave_pid_names_the_agent_process_in_the_url() {
        let e = agent_endpoint(Some("slave(1)@127.0.0.1:5051"), Some("ignored:1")).unwrap();
        assert_eq!(e.url(), "http://127.0.0.1:5051/slave(1)/api/v1/executor");
        let e = agent_endpoint(Some("slave(12)@agent.example:31"), None).unwrap();
        assert_eq!(e.url(), "http://agent.example:31/slave(12)/api/v1/executor");
        let e = agent_endpoint(None, Some("127.0.0.1:5052")).unwrap();
        assert_eq!(e.url(), "http://127.0.0.1:5052/api/v1/executor");
        let e = agent_endpoint(Some(""), Some("127.0.0.1:5052")).unwrap();
        assert_eq!(e.url(), "http://127.0.0.1:5052/api/v1/executor");
    }

    #[test]
    fn malformed_agent_addresses_are_errors() {
        for pid in ["slave(1)", "@127.0.0.1:5051", "slave(1)@", "slave(1)@a b:1", "slave/1@h:1"] {
            let err = agent_endpoint(Some(pid), None).unwrap_err();
            assert!(
                matches!(err, ExecutorError::InvalidEnv { name: "MESOS_SLAVE_PID", .. }),
                "{pid}: {err}"
            );
        }
        assert!(matches!(
            agent_endpoint(None, None),
            Err(ExecutorError::MissingEnv("MESOS_AGENT_ENDPOINT"))
        ));
        assert!(matches!(
            agent_endpoint(None, Some("h:1/x")),
            Err(ExecutorError::InvalidEnv { .. })
        ));
    }

    #[test]
    fn defaults_apply_when_optional_variables_are_absent() {
        let s = settings(&BASE).unwrap();
        assert_eq!(s.framework_id, "fw-1");
        assert_eq!(s.executor_id, "ex-1");
        assert_eq!(s.agent.url(), "http://10.0.0.1:5051/api/v1/executor");
        assert!(!s.checkpoint);
        assert_eq!(s.recovery_timeout, Duration::from_secs(900));
        assert_eq!(s.backoff_max, Duration::from_secs(2));
        assert_eq!(s.shutdown_grace, Duration::from_secs(5));
        assert_eq!(s.sandbox, PathBuf::from("."));
        assert_eq!(s.authorization, None);
        assert_eq!(s.content_type, ContentType::Protobuf);
        assert_eq!(s.path, exec_runtime::process::DEFAULT_PATH);
        assert_eq!(s.docker_host, "unix:///var/run/docker.sock");
        assert_eq!(s.client_config(1).max_record_len, DEFAULT_MAX_RECORD_LEN);
        let d = s.docker_config();
        assert_eq!((d.framework_id.as_str(), d.executor_id.as_str()), ("fw-1", "ex-1"));
        assert_eq!(d.host, s.docker_host);
    }

    #[test]
    fn every_variable_is_read() {
        let mut vars = BASE.to_vec();
        vars.extend([
            ("MESOS_SLAVE_PID", "slave(1)@127.0.0.1:5051"),
            ("MESOS_CHECKPOINT", "1"),
            ("MESOS_RECOVERY_TIMEOUT", "20secs"),
            ("MESOS_SUBSCRIPTION_BACKOFF_MAX", "500ms"),
            ("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "1mins"),
            ("MESOS_DIRECTORY", "/dir"),
            ("MESOS_EXECUTOR_AUTHENTICATION_TOKEN", "tok"),
            ("DROVER_EXECUTOR_CONTENT_TYPE", "json"),
            ("PATH", "/bin"),
            ("DOCKER_HOST", "unix:///tmp/d.sock"),
            ("DROVER_EXECUTOR_MAX_RECORD_BYTES", "65536"),
        ]);
        let s = settings(&vars).unwrap();
        assert_eq!(s.agent.url(), "http://127.0.0.1:5051/slave(1)/api/v1/executor");
        assert!(s.checkpoint);
        assert_eq!(s.recovery_timeout, Duration::from_secs(20));
        assert_eq!(s.backoff_max, Duration::from_millis(500));
        assert_eq!(s.shutdown_grace, Duration::from_secs(60));
        assert_eq!(s.sandbox, PathBuf::from("/dir"));
        let auth = s.authorization.as_ref().expect("a token");
        assert_eq!(auth.header_value(), "Bearer tok");
        assert_eq!(s.content_type, ContentType::Json);
        assert_eq!(s.path, "/bin");
        assert_eq!(s.docker_host, "unix:///tmp/d.sock");
        vars.push(("MESOS_SANDBOX", "/sandbox"));
        assert_eq!(settings(&vars).unwrap().sandbox, PathBuf::from("/sandbox"));
        let c = settings(&vars).unwrap().client_config(7);
        assert_eq!(c.session.recovery_timeout, Duration::from_secs(20));
        assert_eq!(c.max_record_len, 65536);
        assert_eq!(
            c.authorization.as_ref().map(|a| a.header_value().clone()).unwrap(),
            "Bearer tok"
        );
    }

    #[test]
    fn the_token_is_sent_as_a_bearer_but_never_shown() {
        let mut vars = BASE.to_vec();
        vars.push((TOKEN_ENV, "jwt-abc.def"));
        let s = settings(&vars).unwrap();
        let c = s.client_config(1);
        let shown = format!("{s:?} {c:?}");
        assert!(!shown.contains("jwt-abc"), "{shown}");
        assert!(shown.contains("Bearer"), "{shown}");
        assert_eq!(c.authorization.unwrap().header_value(), "Bearer jwt-abc.def");
    }

    #[test]
    fn invalid_values_are_reported_by_name() {
        let cases = [
            ("MESOS_RECOVERY_TIMEOUT", "15 minutes"),
            ("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "5"),
            ("MESOS_CHECKPOINT", "yes"),
            ("DROVER_EXECUTOR_CONTENT_TYPE", "xml"),
        ];
        for (name, value) in cases {
            let mut vars = BASE.to_vec();
            vars.push((name, value));
            match settings(&vars) {
                Err(ExecutorError::InvalidEnv { name: n, value: v, .. }) => {
                    assert_eq!((n, v.as_str()), (name, value))
                }
                other => panic!("{name}={value}: {other:?}"),
            }
        }
        let mut vars = BASE.to_vec();
        vars.push((TOKEN_ENV, "tok\nsecret-part"));
        let err = settings(&vars).unwrap_err();
        assert!(matches!(err, ExecutorError::InvalidSecretEnv(TOKEN_ENV)), "{err}");
        assert!(!err.to_string().contains("secret-part"), "{err}");
        let err = settings(&BASE[1..]).unwrap_err();
        assert_eq!(err.to_string(), "environment variable `MESOS_FRAMEWORK_ID` is not set");
    }

    #[test]
    fn the_record_size_must_be_a_positive_number() {
        for bad in ["0", "-1", "lots", ""] {
            let mut vars = BASE.to_vec();
            vars.push((MAX_RECORD_BYTES_ENV, bad));
            let err = settings(&vars).unwrap_err();
            assert!(
                matches!(err, ExecutorError::InvalidEnv { name: MAX_RECORD_BYTES_ENV, .. }),
                "{bad}: {err}"
            );
        }
    }
}
