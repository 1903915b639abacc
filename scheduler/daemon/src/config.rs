//! `drover serve` settings: flags, an optional TOML config file, defaults.
//!
//! Precedence: a flag beats the config file, which beats the default. The
//! file uses the flags' long names with `_` for `-`, e.g.
//!
//! ```toml
//! master = "http://mesos.example:5050"
//! listen = "0.0.0.0:8080"
//! decline_offer_duration_secs = 120
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use mesos_wire::ContentType;
use sched_core::scheduler::CoreConfig;
use serde::Deserialize;

use crate::mesos_adapter::ExecutorSettings;
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
    },
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

impl ServeArgs {
    /// Applies the config file (if any) under the flags and fills defaults.
    pub(crate) fn resolve(mut self) -> anyhow::Result<ServeConfig> {
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
                executor_path,
                executor_log,
                docker_host,
                decline_offer_duration_secs,
                min_revive_offers_interval_secs,
                reconciliation_interval_secs,
                task_launch_timeout_secs,
                max_instances_per_offer,
                event_stream_max_outstanding_messages,
                etcd,
                etcd_prefix,
                leader_ttl_secs,
                data_dir,
                advertise_address
            );
            self.in_memory |= file.in_memory;
            self.kill_unknown_tasks |= file.kill_unknown_tasks;
        }
        let content_type: ContentType = self
            .mesos_content_type
            .as_deref()
            .unwrap_or("protobuf")
            .parse()
            .map_err(|e: String| anyhow::anyhow!(e))?;
        let store = match (self.etcd.take(), self.data_dir.take(), self.in_memory) {
            (Some(endpoints), None, false) if !endpoints.is_empty() => StoreConfig::Etcd {
                endpoints,
                prefix: self.etcd_prefix.take().unwrap_or_else(|| "/drover".to_owned()),
                leader_ttl: Duration::from_secs(self.leader_ttl_secs.unwrap_or(10).max(1)),
            },
            (None, Some(dir), false) => StoreConfig::Embedded(dir),
            (None, None, true) => StoreConfig::Memory,
            (None, None, false) => anyhow::bail!(
                "choose where state lives: --etcd URL[,URL...], --data-dir DIR (embedded store) or --in-memory (lost on exit)"
            ),
            _ => anyhow::bail!(
                "--etcd, --data-dir and --in-memory are alternatives: give exactly one"
            ),
        };
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
        let listen = self.listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        Ok(ServeConfig {
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
            }
        );
        let disk = ServeArgs { data_dir: Some("/var/lib/drover".into()), ..Default::default() }
            .resolve()
            .unwrap();
        assert_eq!(disk.store, StoreConfig::Embedded("/var/lib/drover".into()));
    }
}
