//! A container to make, described once. `berth run`/`create` (cli/run.rs
//! parses the flags into it), a compose service (engine/desired.rs) and a
//! build's RUN step (build/run_step.rs) each fill in a [`ContainerIntent`];
//! [`realize`] turns it into what the runtime creates — the image resolved
//! and pulled when the policy says so, volumes made, host ports reserved,
//! every network checked — and [`create`] makes the container.
//!
//! Owns the typed description and its realization. Parses no flags and
//! reads no compose file (its callers do); starts nothing (the runtime does).

mod base;
mod realize;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use realize::{create, realize, IntentError};

pub use crate::net::ports::PortRequest;
pub use crate::runtime::spec::{AnonymousVolume, Limits, RestartPolicy};
pub use crate::runtime::DnsConfig;

/// When the image is pulled from its registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Every time.
    Always,
    /// When it is not in the store.
    #[default]
    Missing,
    /// Never: it must be in the store (built, loaded or pulled before).
    Never,
}

impl std::str::FromStr for PullPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "always" => Ok(PullPolicy::Always),
            "missing" => Ok(PullPolicy::Missing),
            "never" => Ok(PullPolicy::Never),
            other => Err(format!(
                "unknown pull policy {other:?} (always, missing or never)"
            )),
        }
    }
}

/// What the root filesystem comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// An image by reference; its config gives the defaults.
    Image { reference: String, pull: PullPolicy },
    /// A directory used as it is (`--rootfs`).
    Rootfs(PathBuf),
    /// Unpacked layer directories, lowest first (a build's RUN step).
    Layers(Vec<PathBuf>),
}

/// One filesystem mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// A host path. With `create_source`, a missing source directory is
    /// made (compose's `bind.create_host_path`, its default).
    Bind {
        source: PathBuf,
        target: String,
        read_only: bool,
        create_source: bool,
    },
    /// A tmpfs with mount options (`size=…`, `mode=…`).
    Tmpfs {
        target: String,
        options: Vec<String>,
    },
    /// A named volume, made when missing and filled from the image on first
    /// use unless `nocopy`; with `subpath`, a directory inside it that must
    /// exist (mounted as it is).
    Volume {
        name: String,
        target: String,
        read_only: bool,
        nocopy: bool,
        subpath: Option<String>,
    },
    /// A new anonymous volume, removed with the container.
    Anonymous { target: String },
}

impl Mount {
    pub fn target(&self) -> &str {
        match self {
            Mount::Bind { target, .. }
            | Mount::Tmpfs { target, .. }
            | Mount::Volume { target, .. }
            | Mount::Anonymous { target } => target,
        }
    }
}

/// The container on one network.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attachment {
    /// The network's name (`bridge` is the default network).
    pub network: String,
    /// Extra names it answers to there.
    pub aliases: Vec<String>,
    pub ipv4: Option<IpAddr>,
    pub ipv6: Option<IpAddr>,
}

/// The container's network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Networking {
    /// Its own, with loopback only.
    None,
    /// The host's.
    Host,
    /// Another container's (by name or id).
    Container(String),
    /// Its own, on these networks in order: the first is eth0 and carries
    /// the default route. Never empty (realize refuses an empty list).
    Networks(Vec<Attachment>),
}

impl Default for Networking {
    fn default() -> Self {
        Networking::Networks(vec![Attachment {
            network: crate::net::store::DEFAULT_NETWORK.into(),
            ..Attachment::default()
        }])
    }
}

/// `/etc/hosts` entry's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostAddress {
    Ip(IpAddr),
    /// The host as the container sees it (`host-gateway`).
    Gateway,
}

/// A resource limit (`RLIMIT_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ulimit {
    /// `RLIMIT_NOFILE`, …
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

/// Capabilities and the like.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Security {
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub read_only: bool,
}

/// A health check laid over the image's field by field (absent fields stay
/// the image's), or the image's turned off.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HealthOverride {
    pub disable: bool,
    /// Docker's `Test` form: `["CMD", …]`, `["CMD-SHELL", text]`, `["NONE"]`.
    pub test: Option<Vec<String>>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
    pub retries: Option<u32>,
}

impl HealthOverride {
    /// As Docker's `Healthcheck` JSON (durations in nanoseconds).
    pub fn to_docker(&self) -> serde_json::Value {
        if self.disable {
            return serde_json::json!({"Test": ["NONE"]});
        }
        let mut out = serde_json::Map::new();
        if let Some(t) = &self.test {
            out.insert("Test".into(), serde_json::json!(t));
        }
        for (key, d) in [
            ("Interval", self.interval),
            ("Timeout", self.timeout),
            ("StartPeriod", self.start_period),
            ("StartInterval", self.start_interval),
        ] {
            if let Some(d) = d {
                out.insert(key.into(), serde_json::json!(d.as_nanos() as u64));
            }
        }
        if let Some(r) = self.retries {
            out.insert("Retries".into(), serde_json::json!(r));
        }
        serde_json::Value::Object(out)
    }

    /// Whether it says anything.
    pub fn is_empty(&self) -> bool {
        *self == HealthOverride::default()
    }
}

/// Everything that describes one container to make.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerIntent {
    /// Its name (None: a generated one).
    pub name: Option<String>,
    pub source: Source,
    /// Replaces the image's entrypoint, and drops its cmd (Docker's rule);
    /// `Some(vec![])` clears it.
    pub entrypoint: Option<Vec<String>>,
    /// Replaces the image's cmd; empty keeps it.
    pub command: Vec<String>,
    /// Over the image's, in order (a later key wins).
    pub env: Vec<(String, String)>,
    pub workdir: Option<String>,
    /// `user`, `uid`, `user:group` or `uid:gid`.
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    /// berth's init as PID 1.
    pub init: bool,
    pub limits: Limits,
    pub security: Security,
    pub restart: RestartPolicy,
    /// Removed when it exits.
    pub auto_remove: bool,
    /// None: the image's, else SIGTERM.
    pub stop_signal: Option<String>,
    /// Seconds between the stop signal and SIGKILL.
    pub stop_timeout: u64,
    pub networking: Networking,
    pub ports: Vec<PortRequest>,
    pub mounts: Vec<Mount>,
    /// Anonymous volumes of a container this one replaces, used at their
    /// targets instead of new ones.
    pub inherited_volumes: Vec<AnonymousVolume>,
    pub dns: DnsConfig,
    pub extra_hosts: Vec<(String, HostAddress)>,
    pub sysctls: BTreeMap<String, String>,
    pub ulimits: Vec<Ulimit>,
    pub health: Option<HealthOverride>,
    /// Over the image's labels.
    pub labels: BTreeMap<String, String>,
    pub interactive: bool,
    pub tty: bool,
}

impl ContainerIntent {
    /// A container of `source` with Docker's defaults: on the default
    /// network, berth's init, no restart, a 10 s stop timeout.
    pub fn new(source: Source) -> ContainerIntent {
        ContainerIntent {
            name: None,
            source,
            entrypoint: None,
            command: Vec::new(),
            env: Vec::new(),
            workdir: None,
            user: None,
            hostname: None,
            domainname: None,
            init: true,
            limits: Limits::default(),
            security: Security::default(),
            restart: RestartPolicy::No,
            auto_remove: false,
            stop_signal: None,
            stop_timeout: 10,
            networking: Networking::default(),
            ports: Vec::new(),
            mounts: Vec::new(),
            inherited_volumes: Vec::new(),
            dns: DnsConfig::default(),
            extra_hosts: Vec::new(),
            sysctls: BTreeMap::new(),
            ulimits: Vec::new(),
            health: None,
            labels: BTreeMap::new(),
            interactive: false,
            tty: false,
        }
    }

    /// Sets `key` in the environment (replacing an earlier value).
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }
}
