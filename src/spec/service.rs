//! The typed compose model: a service and its parts, the top-level
//! networks, volumes, secrets and configs, as Rust types with enums where
//! Compose offers a choice. Made by the loader's last phase (`typed`) from
//! the normalized tree, which is in long syntax with absolute paths — so
//! these types read one form of each key. Keys berth does not model are
//! kept by name in `other`, never dropped unseen.
//!
//! Owns the shape of the model; holds no I/O and decides nothing about
//! containers (engine/desired.rs does).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::Deserialize;
use serde_yaml::Value;

use super::model::Condition;

/// A scalar as compose writes it, as text (strings, numbers, booleans).
fn scalar(v: &Value) -> Option<String> {
    super::yaml::scalar_to_string(v)
}

fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => scalar(&v)
            .map(Some)
            .ok_or_else(|| de::Error::custom("expected a string, number or boolean")),
    }
}

fn text_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Sequence(s)) => s
            .iter()
            .map(|v| scalar(v).ok_or_else(|| de::Error::custom("expected a list of strings")))
            .collect(),
        Some(other) => scalar(&other)
            .map(|s| vec![s])
            .ok_or_else(|| de::Error::custom("expected a string or a list of strings")),
    }
}

/// A command: a list, or a string split as a shell would. `None` when the
/// key is absent or null (the image's applies).
fn command<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => super::units::split_shell_words(&s)
            .map(Some)
            .map_err(de::Error::custom),
        Some(Value::Sequence(s)) => s
            .iter()
            .map(|v| scalar(v).ok_or_else(|| de::Error::custom("expected a list of strings")))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(de::Error::custom("expected a string or a list")),
    }
}

/// A mapping, or a list of `KEY=VALUE`; a bare key or a null value is `None`.
fn opt_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Option<String>>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Mapping(m)) => m
            .iter()
            .map(|(k, v)| {
                let k = scalar(k).ok_or_else(|| de::Error::custom("expected a string key"))?;
                Ok((k, scalar(v)))
            })
            .collect(),
        Some(Value::Sequence(s)) => s
            .iter()
            .map(|v| {
                let kv = scalar(v).ok_or_else(|| de::Error::custom("expected KEY=VALUE"))?;
                Ok(match kv.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (kv, None),
                })
            })
            .collect(),
        Some(_) => Err(de::Error::custom("expected a mapping or a list")),
    }
}

/// [`opt_map`] with absent values as "".
fn map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(opt_map(d)?
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    match text(d)? {
        None => Ok(None),
        Some(s) => super::units::parse_duration(&s)
            .filter(|ns| *ns >= 0)
            .map(|ns| Some(Duration::from_nanos(ns as u64)))
            .ok_or_else(|| de::Error::custom(format!("invalid duration {s:?}"))),
    }
}

fn bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match text(d)? {
        None => Ok(None),
        Some(s) => super::units::parse_bytes(&s)
            .map(Some)
            .ok_or_else(|| de::Error::custom(format!("invalid size {s:?}"))),
    }
}

fn number<'de, D: Deserializer<'de>, T: std::str::FromStr>(d: D) -> Result<Option<T>, D::Error> {
    match text(d)? {
        None => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| de::Error::custom(format!("invalid number {s:?}"))),
    }
}

/// An octal file mode (`"0400"`, `0o400`, or a number as YAML reads it).
fn mode<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => u32::from_str_radix(s.trim_start_matches("0o"), 8)
            .map(Some)
            .map_err(|_| de::Error::custom(format!("invalid mode {s:?}"))),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(|m| Some(m as u32))
            .ok_or_else(|| de::Error::custom("invalid mode")),
        Some(_) => Err(de::Error::custom("expected a file mode")),
    }
}

/// `restart:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Restart {
    #[default]
    No,
    Always,
    UnlessStopped,
    /// With the most restarts, if given.
    OnFailure(Option<u32>),
}

impl<'de> Deserialize<'de> for Restart {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = text(d)?.unwrap_or_default();
        match s.as_str() {
            "" | "no" => Ok(Restart::No),
            "always" => Ok(Restart::Always),
            "unless-stopped" => Ok(Restart::UnlessStopped),
            "on-failure" => Ok(Restart::OnFailure(None)),
            other => match other.strip_prefix("on-failure:").map(str::parse) {
                Some(Ok(n)) => Ok(Restart::OnFailure(Some(n))),
                _ => Err(de::Error::custom(format!(
                    "invalid restart policy {other:?} (no, always, unless-stopped, on-failure[:N])"
                ))),
            },
        }
    }
}

/// `pull_policy:`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PullPolicy {
    Always,
    /// `missing`, `if_not_present`, or no policy.
    #[default]
    Missing,
    Never,
    /// Built, never pulled.
    Build,
    /// `daily`, `weekly`, `every_<duration>`: pulled when older.
    Refresh(String),
}

impl<'de> Deserialize<'de> for PullPolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = text(d)?.unwrap_or_default();
        match s.as_str() {
            "" | "missing" | "if_not_present" => Ok(PullPolicy::Missing),
            "always" => Ok(PullPolicy::Always),
            "never" => Ok(PullPolicy::Never),
            "build" => Ok(PullPolicy::Build),
            p if p == "daily" || p == "weekly" || p.starts_with("every_") => {
                Ok(PullPolicy::Refresh(p.to_string()))
            }
            other => Err(de::Error::custom(format!("unknown pull_policy {other:?}"))),
        }
    }
}

/// `network_mode:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkMode {
    None,
    Host,
    /// `bridge` or `default` given explicitly.
    Bridge,
    Service(String),
    Container(String),
    /// Anything else: a network named so, as Docker reads it.
    Network(String),
}

impl<'de> Deserialize<'de> for NetworkMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = text(d)?.unwrap_or_default();
        Ok(match s.as_str() {
            "none" => NetworkMode::None,
            "host" => NetworkMode::Host,
            "bridge" | "default" => NetworkMode::Bridge,
            other => match (
                other.strip_prefix("service:"),
                other.strip_prefix("container:"),
            ) {
                (Some(s), _) => NetworkMode::Service(s.to_string()),
                (_, Some(c)) => NetworkMode::Container(c.to_string()),
                _ => NetworkMode::Network(other.to_string()),
            },
        })
    }
}

/// One `depends_on` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DependsOn {
    #[serde(default = "started", deserialize_with = "condition")]
    pub condition: Condition,
    #[serde(default)]
    pub restart: bool,
    #[serde(default = "yes")]
    pub required: bool,
}

fn started() -> Condition {
    Condition::Started
}

fn yes() -> bool {
    true
}

fn condition<'de, D: Deserializer<'de>>(d: D) -> Result<Condition, D::Error> {
    let s = text(d)?.unwrap_or_default();
    Condition::parse(&s).ok_or_else(|| de::Error::custom(format!("unknown condition {s:?}")))
}

/// One `ports:` entry (long syntax).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Port {
    pub target: u32,
    /// A port or a range `A-B`; None: one is picked.
    #[serde(default, deserialize_with = "text")]
    pub published: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub host_ip: Option<String>,
    #[serde(default = "tcp")]
    pub protocol: String,
    #[serde(default, deserialize_with = "text")]
    pub mode: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub app_protocol: Option<String>,
}

fn tcp() -> String {
    "tcp".into()
}

/// What a `volumes:` entry mounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    Volume,
    Bind,
    Tmpfs,
    Npipe,
    Cluster,
    Image,
}

/// `bind:` options of a bind mount.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct BindOptions {
    #[serde(default = "yes")]
    pub create_host_path: bool,
    #[serde(default, deserialize_with = "text")]
    pub propagation: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub selinux: Option<String>,
}

/// `volume:` options of a volume mount.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct VolumeOptions {
    #[serde(default)]
    pub nocopy: bool,
    #[serde(default, deserialize_with = "text")]
    pub subpath: Option<String>,
}

/// `tmpfs:` options of a tmpfs mount.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct TmpfsOptions {
    #[serde(default, deserialize_with = "bytes")]
    pub size: Option<i64>,
    #[serde(default, deserialize_with = "mode")]
    pub mode: Option<u32>,
}

/// One `volumes:` entry of a service (long syntax).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ServiceVolume {
    #[serde(rename = "type")]
    pub kind: MountType,
    /// A host path (bind), a volume key (volume), none (anonymous, tmpfs).
    #[serde(default, deserialize_with = "text")]
    pub source: Option<String>,
    pub target: String,
    #[serde(default)]
    pub read_only: bool,
    pub bind: Option<BindOptions>,
    pub volume: Option<VolumeOptions>,
    pub tmpfs: Option<TmpfsOptions>,
}

/// A service on one of its networks.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct ServiceNetwork {
    #[serde(default, deserialize_with = "text_list")]
    pub aliases: Vec<String>,
    #[serde(default, deserialize_with = "text")]
    pub ipv4_address: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub ipv6_address: Option<String>,
    #[serde(default, deserialize_with = "number")]
    pub priority: Option<i64>,
    #[serde(default, deserialize_with = "text")]
    pub mac_address: Option<String>,
}

/// `healthcheck:`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct Healthcheck {
    #[serde(default)]
    pub disable: bool,
    /// Docker's form: `["CMD", …]`, `["CMD-SHELL", text]`, `["NONE"]`.
    #[serde(default, deserialize_with = "health_test")]
    pub test: Option<Vec<String>>,
    #[serde(default, deserialize_with = "duration")]
    pub interval: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    pub timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    pub start_period: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    pub start_interval: Option<Duration>,
    #[serde(default, deserialize_with = "number")]
    pub retries: Option<u32>,
}

fn health_test<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(vec!["CMD-SHELL".into(), s])),
        Some(Value::Sequence(s)) => Ok(Some(s.iter().filter_map(scalar).collect())),
        Some(_) => Err(de::Error::custom("expected a string or a list")),
    }
}

/// One `secrets:` or `configs:` entry of a service (long syntax).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FileReference {
    pub source: String,
    #[serde(default, deserialize_with = "text")]
    pub target: Option<String>,
    #[serde(default, deserialize_with = "number")]
    pub uid: Option<u32>,
    #[serde(default, deserialize_with = "number")]
    pub gid: Option<u32>,
    #[serde(default, deserialize_with = "mode")]
    pub mode: Option<u32>,
}

/// A resource limit: one number (soft = hard) or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ulimit {
    pub soft: i64,
    pub hard: i64,
}

impl<'de> Deserialize<'de> for Ulimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        let n = |v: Option<&Value>| -> Result<i64, D::Error> {
            v.and_then(scalar)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| de::Error::custom("expected a number"))
        };
        match &v {
            Value::Mapping(m) => Ok(Ulimit {
                soft: n(m.get("soft"))?,
                hard: n(m.get("hard"))?,
            }),
            single => {
                let x = n(Some(single))?;
                Ok(Ulimit { soft: x, hard: x })
            }
        }
    }
}

/// Limits or reservations of `deploy.resources`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct Resources {
    #[serde(default, deserialize_with = "number")]
    pub cpus: Option<f64>,
    #[serde(default, deserialize_with = "bytes")]
    pub memory: Option<i64>,
    #[serde(default, deserialize_with = "number")]
    pub pids: Option<i64>,
}

/// `deploy.resources`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct DeployResources {
    pub limits: Option<Resources>,
    pub reservations: Option<Resources>,
}

/// `deploy:` (what a single engine can honour of it).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct Deploy {
    #[serde(default, deserialize_with = "number")]
    pub replicas: Option<u32>,
    pub resources: Option<DeployResources>,
    #[serde(default, deserialize_with = "map")]
    pub labels: BTreeMap<String, String>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

impl Deploy {
    /// The keys of `deploy` berth does not model that say something (an
    /// empty `placement: {}` says nothing).
    pub fn other_keys(&self) -> Vec<&str> {
        self.other
            .iter()
            .filter(|(_, v)| match v {
                Value::Null => false,
                Value::Mapping(m) => !m.is_empty(),
                Value::Sequence(s) => !s.is_empty(),
                _ => true,
            })
            .map(|(k, _)| k.as_str())
            .collect()
    }
}

/// `build:`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct Build {
    #[serde(default, deserialize_with = "text")]
    pub context: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub dockerfile: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub dockerfile_inline: Option<String>,
    #[serde(default, deserialize_with = "opt_map")]
    pub args: BTreeMap<String, Option<String>>,
    #[serde(default, deserialize_with = "text")]
    pub target: Option<String>,
    #[serde(default, deserialize_with = "map")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "text_list")]
    pub tags: Vec<String>,
    #[serde(default)]
    pub secrets: Vec<FileReference>,
    #[serde(default)]
    pub no_cache: bool,
    #[serde(default)]
    pub pull: bool,
    #[serde(default, deserialize_with = "text")]
    pub network: Option<String>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// What a watch rule does on a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WatchAction {
    Sync,
    Rebuild,
    Restart,
    #[serde(rename = "sync+restart")]
    SyncRestart,
    #[serde(rename = "sync+exec")]
    SyncExec,
}

/// One `develop.watch` rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WatchRule {
    pub action: WatchAction,
    pub path: PathBuf,
    #[serde(default, deserialize_with = "text")]
    pub target: Option<String>,
    #[serde(default, deserialize_with = "text_list")]
    pub ignore: Vec<String>,
    #[serde(default, deserialize_with = "text_list")]
    pub include: Vec<String>,
    #[serde(default)]
    pub initial_sync: bool,
    pub exec: Option<Hook>,
}

impl WatchAction {
    /// Whether it copies files into the container.
    pub fn syncs(self) -> bool {
        matches!(
            self,
            WatchAction::Sync | WatchAction::SyncRestart | WatchAction::SyncExec
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WatchAction::Sync => "sync",
            WatchAction::Rebuild => "rebuild",
            WatchAction::Restart => "restart",
            WatchAction::SyncRestart => "sync+restart",
            WatchAction::SyncExec => "sync+exec",
        }
    }
}

/// `develop:`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct Develop {
    #[serde(default)]
    pub watch: Vec<WatchRule>,
}

/// A `post_start` or `pre_stop` hook, or a watch rule's `exec`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Hook {
    #[serde(default, deserialize_with = "command")]
    pub command: Option<Vec<String>>,
    #[serde(default, deserialize_with = "text")]
    pub user: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub privileged: bool,
    #[serde(default, deserialize_with = "map")]
    pub environment: BTreeMap<String, String>,
}

/// A service, normalized.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct Service {
    #[serde(default, deserialize_with = "text")]
    pub image: Option<String>,
    pub build: Option<Build>,
    #[serde(default)]
    pub pull_policy: PullPolicy,
    #[serde(default, deserialize_with = "command")]
    pub command: Option<Vec<String>>,
    #[serde(default, deserialize_with = "command")]
    pub entrypoint: Option<Vec<String>>,
    /// Env files already folded in; a `None` value is a bare `KEY`.
    #[serde(default, deserialize_with = "opt_map")]
    pub environment: BTreeMap<String, Option<String>>,
    #[serde(default, deserialize_with = "text")]
    pub working_dir: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub user: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub hostname: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub domainname: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub container_name: Option<String>,
    pub init: Option<bool>,
    #[serde(default, deserialize_with = "number")]
    pub scale: Option<u32>,
    pub deploy: Option<Deploy>,
    #[serde(default, deserialize_with = "bytes")]
    pub mem_limit: Option<i64>,
    #[serde(default, deserialize_with = "bytes")]
    pub mem_reservation: Option<i64>,
    #[serde(default, deserialize_with = "bytes")]
    pub memswap_limit: Option<i64>,
    #[serde(default, deserialize_with = "number")]
    pub cpus: Option<f64>,
    #[serde(default, deserialize_with = "number")]
    pub cpu_shares: Option<u64>,
    #[serde(default, deserialize_with = "text")]
    pub cpuset: Option<String>,
    #[serde(default, deserialize_with = "number")]
    pub pids_limit: Option<i64>,
    #[serde(default, deserialize_with = "text_list")]
    pub cap_add: Vec<String>,
    #[serde(default, deserialize_with = "text_list")]
    pub cap_drop: Vec<String>,
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub restart: Restart,
    #[serde(default, deserialize_with = "text")]
    pub stop_signal: Option<String>,
    #[serde(default, deserialize_with = "duration")]
    pub stop_grace_period: Option<Duration>,
    pub healthcheck: Option<Healthcheck>,
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub stdin_open: bool,
    #[serde(default, deserialize_with = "map")]
    pub sysctls: BTreeMap<String, String>,
    #[serde(default)]
    pub ulimits: BTreeMap<String, Ulimit>,
    /// `host=ip` entries, in order (a host may appear more than once).
    #[serde(default, deserialize_with = "extra_hosts")]
    pub extra_hosts: Vec<(String, String)>,
    #[serde(default, deserialize_with = "text_list")]
    pub dns: Vec<String>,
    #[serde(default, deserialize_with = "text_list")]
    pub dns_search: Vec<String>,
    #[serde(default, deserialize_with = "text_list")]
    pub dns_opt: Vec<String>,
    #[serde(default)]
    pub ports: Vec<Port>,
    #[serde(default, deserialize_with = "text_list")]
    pub expose: Vec<String>,
    #[serde(default, deserialize_with = "text_list")]
    pub tmpfs: Vec<String>,
    #[serde(default)]
    pub volumes: Vec<ServiceVolume>,
    #[serde(default, deserialize_with = "text_list")]
    pub volumes_from: Vec<String>,
    pub network_mode: Option<NetworkMode>,
    /// Network key → options (`None`: joined with none).
    #[serde(default)]
    pub networks: BTreeMap<String, Option<ServiceNetwork>>,
    #[serde(default, deserialize_with = "text_list")]
    pub links: Vec<String>,
    #[serde(default, deserialize_with = "text")]
    pub ipc: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub pid: Option<String>,
    #[serde(default)]
    pub depends_on: BTreeMap<String, DependsOn>,
    #[serde(default, deserialize_with = "map")]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub secrets: Vec<FileReference>,
    #[serde(default)]
    pub configs: Vec<FileReference>,
    #[serde(default, deserialize_with = "text_list")]
    pub profiles: Vec<String>,
    pub develop: Option<Develop>,
    #[serde(default)]
    pub post_start: Vec<Hook>,
    #[serde(default)]
    pub pre_stop: Vec<Hook>,
    /// Keys berth does not model, by name (`logging`, `security_opt`,
    /// `x-*`…): read by whoever must refuse or warn about them.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

fn extra_hosts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Mapping(m)) => m
            .iter()
            .map(|(k, v)| match (scalar(k), v) {
                (Some(k), Value::Sequence(ips)) => Ok(ips
                    .iter()
                    .filter_map(scalar)
                    .map(|ip| (k.clone(), ip))
                    .collect::<Vec<_>>()),
                (Some(k), v) => Ok(vec![(k, scalar(v).unwrap_or_default())]),
                (None, _) => Err(de::Error::custom("expected a host name")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.into_iter().flatten().collect()),
        Some(Value::Sequence(s)) => s
            .iter()
            .map(|v| {
                let h = scalar(v).ok_or_else(|| de::Error::custom("expected HOST=IP"))?;
                h.split_once('=')
                    .or_else(|| h.split_once(':'))
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| de::Error::custom(format!("invalid extra host {h:?}")))
            })
            .collect(),
        Some(_) => Err(de::Error::custom("expected a mapping or a list")),
    }
}

/// `ipam.config[]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct IpamPool {
    #[serde(default, deserialize_with = "text")]
    pub subnet: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub gateway: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub ip_range: Option<String>,
}

/// `ipam:`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct Ipam {
    #[serde(default, deserialize_with = "text")]
    pub driver: Option<String>,
    #[serde(default)]
    pub config: Vec<IpamPool>,
}

/// A top-level network.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct Network {
    #[serde(default, deserialize_with = "text")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub driver: Option<String>,
    #[serde(default, deserialize_with = "map")]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(default)]
    pub external: bool,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub enable_ipv6: bool,
    pub ipam: Option<Ipam>,
    #[serde(default, deserialize_with = "map")]
    pub labels: BTreeMap<String, String>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `x-kubernetes` of a top-level volume: the claim `compose convert
/// --kubernetes` makes for it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct KubernetesVolume {
    #[serde(default, deserialize_with = "text")]
    pub size: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub storage_class: Option<String>,
}

/// A top-level volume.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct Volume {
    #[serde(rename = "x-kubernetes")]
    pub kubernetes: Option<KubernetesVolume>,
    #[serde(default, deserialize_with = "text")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub driver: Option<String>,
    #[serde(default, deserialize_with = "map")]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(default)]
    pub external: bool,
    #[serde(default, deserialize_with = "map")]
    pub labels: BTreeMap<String, String>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// A top-level secret or config: where its content comes from.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct FileObject {
    #[serde(default, deserialize_with = "text")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub file: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub environment: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub content: Option<String>,
    #[serde(default)]
    pub external: bool,
    #[serde(default, deserialize_with = "map")]
    pub labels: BTreeMap<String, String>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// The typed sections of a normalized project.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Model {
    /// In declaration order.
    pub services: Vec<(String, Service)>,
    pub networks: BTreeMap<String, Network>,
    pub volumes: BTreeMap<String, Volume>,
    pub secrets: BTreeMap<String, FileObject>,
    pub configs: BTreeMap<String, FileObject>,
}

/// Why the normalized tree does not fit the typed model.
#[derive(Debug, thiserror::Error)]
#[error("{section}.{name}: {message}")]
pub struct TypedError {
    pub section: &'static str,
    pub name: String,
    pub message: String,
}

fn section<T: for<'de> Deserialize<'de>>(
    doc: &serde_yaml::Mapping,
    key: &'static str,
) -> Result<Vec<(String, T)>, TypedError> {
    let Some(Value::Mapping(m)) = doc.get(key) else {
        return Ok(Vec::new());
    };
    m.iter()
        .map(|(k, v)| {
            let name = scalar(k).unwrap_or_default();
            let v = if v.is_null() {
                Value::Mapping(Default::default())
            } else {
                v.clone()
            };
            serde_yaml::from_value(v)
                .map(|t| (name.clone(), t))
                .map_err(|e| TypedError {
                    section: key,
                    name,
                    message: e.to_string(),
                })
        })
        .collect()
}

impl Model {
    /// The typed model of a normalized document.
    pub fn from_normalized(doc: &serde_yaml::Mapping) -> Result<Model, TypedError> {
        Ok(Model {
            services: section(doc, "services")?,
            networks: section(doc, "networks")?.into_iter().collect(),
            volumes: section(doc, "volumes")?.into_iter().collect(),
            secrets: section(doc, "secrets")?.into_iter().collect(),
            configs: section(doc, "configs")?.into_iter().collect(),
        })
    }
}
