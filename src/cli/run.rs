//! `berth run` and `berth create`: Docker's flags parsed into a container
//! intent (intent/), which makes the container. Parsing only: images,
//! volumes, networks and ports are the intent's to resolve.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;

use crate::intent::{
    Attachment, ContainerIntent, HealthOverride, HostAddress, Mount, Networking, PortRequest,
    Security, Source, Ulimit,
};
use crate::runtime::spec::{Limits, MountKind, MountRequest};
use crate::runtime::{self, store::Store};
use crate::spec::units::parse_bytes;

// Flags shared by `run` and `create`.
#[derive(Debug, Args, Clone)]
pub struct CreateArgs {
    /// Assign a name to the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables (KEY=VALUE, or KEY to pass it through).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read environment variables from a file.
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Bind mount a host path (SOURCE:TARGET[:ro]).
    #[arg(short = 'v', long = "volume", value_name = "SRC:DST[:ro]")]
    pub volumes: Vec<String>,
    /// Attach a filesystem mount (type=bind|tmpfs,source=…,target=…,readonly).
    #[arg(long = "mount", value_name = "SPEC")]
    pub mounts: Vec<String>,
    /// Mount a tmpfs (PATH[:OPTIONS]).
    #[arg(long = "tmpfs", value_name = "PATH")]
    pub tmpfs: Vec<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// User (name|uid[:group|gid]).
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Container host name.
    #[arg(short = 'h', long = "hostname")]
    pub hostname: Option<String>,
    /// Overwrite the default entrypoint.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Run berth's init as PID 1 (on by default; --init=false opts out).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub init: bool,
    /// Memory limit (e.g. 64m).
    #[arg(short = 'm', long = "memory")]
    pub memory: Option<String>,
    /// Memory soft limit.
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit (-1: unlimited swap).
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Number of CPUs.
    #[arg(long)]
    pub cpus: Option<f64>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Tune the container pids limit.
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Add Linux capabilities.
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities.
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container.
    #[arg(long)]
    pub privileged: bool,
    /// Mount the container's root filesystem as read only.
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Restart policy (no, always, unless-stopped, on-failure[:N]).
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// Signal to stop the container (default: the image's, else SIGTERM).
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Seconds to wait before killing the container on stop.
    #[arg(long = "stop-timeout", default_value_t = 10)]
    pub stop_timeout: u64,
    /// Network: bridge (the default network), none, host, container:NAME,
    /// or a network made with `network create`.
    #[arg(long = "network", visible_alias = "net", default_value = "bridge")]
    pub network: String,
    /// Another name for the container on its (user) network.
    #[arg(long = "network-alias", visible_alias = "net-alias")]
    pub network_aliases: Vec<String>,
    /// Publish a container port (`[HOST_IP:][HOST_PORT:]PORT[/tcp|udp]`; ranges allowed).
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// A DNS server for names the network does not know.
    #[arg(long = "dns")]
    pub dns: Vec<String>,
    /// A DNS search domain.
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// A resolver option (e.g. ndots:2).
    #[arg(long = "dns-option", visible_alias = "dns-opt")]
    pub dns_options: Vec<String>,
    /// The container's NIS domain name.
    #[arg(long)]
    pub domainname: Option<String>,
    /// The address on the user network (--network NAME).
    #[arg(long)]
    pub ip: Option<std::net::IpAddr>,
    /// The IPv6 address on the user network (one made with --ipv6).
    #[arg(long)]
    pub ip6: Option<std::net::IpAddr>,
    /// Ulimit options (name=soft[:hard]).
    #[arg(long = "ulimit")]
    pub ulimits: Vec<String>,
    /// Command to run to check health (a shell command line).
    #[arg(long = "health-cmd", value_name = "CMD")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h).
    #[arg(long = "health-interval", value_name = "DURATION")]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h).
    #[arg(long = "health-timeout", value_name = "DURATION")]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy.
    #[arg(long = "health-retries", value_name = "N")]
    pub health_retries: Option<u32>,
    /// Start period for the container to initialize before failures count (ms|s|m|h).
    #[arg(long = "health-start-period", value_name = "DURATION")]
    pub health_start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h).
    #[arg(long = "health-start-interval", value_name = "DURATION")]
    pub health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK.
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Namespaced kernel parameters (key=value).
    #[arg(long = "sysctl")]
    pub sysctls: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip).
    #[arg(long = "add-host")]
    pub add_hosts: Vec<String>,
    /// Set metadata on the container (key=value).
    #[arg(short = 'l', long = "label")]
    pub labels: Vec<String>,
    /// Keep STDIN open.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Run from this root filesystem directory instead of an image.
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,
    /// Pull the image before running: always, missing (default) or never.
    #[arg(long, default_value = "missing", value_parser = ["always", "missing", "never"])]
    pub pull: String,
    /// IMAGE [COMMAND] [ARG...], or with --rootfs: COMMAND [ARG...].
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

impl CreateArgs {
    /// The health check the `--health-*` flags lay over the image's.
    fn health_override(&self) -> anyhow::Result<Option<HealthOverride>> {
        if self.no_healthcheck {
            return Ok(Some(HealthOverride {
                disable: true,
                ..HealthOverride::default()
            }));
        }
        let duration = |flag: &str, value: &Option<String>| -> anyhow::Result<Option<Duration>> {
            let Some(text) = value else { return Ok(None) };
            let ns = crate::spec::units::parse_duration(text)
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    anyhow::anyhow!("invalid {flag} {text:?}: a duration such as 30s or 1m30s")
                })?;
            Ok(Some(Duration::from_nanos(ns as u64)))
        };
        let h = HealthOverride {
            disable: false,
            test: self
                .health_cmd
                .as_ref()
                .map(|cmd| vec!["CMD-SHELL".to_string(), cmd.clone()]),
            interval: duration("--health-interval", &self.health_interval)?,
            timeout: duration("--health-timeout", &self.health_timeout)?,
            start_period: duration("--health-start-period", &self.health_start_period)?,
            start_interval: duration("--health-start-interval", &self.health_start_interval)?,
            retries: self.health_retries,
        };
        Ok((!h.is_empty()).then_some(h))
    }
}

fn bytes(flag: &str, v: &Option<String>) -> anyhow::Result<Option<i64>> {
    match v {
        None => Ok(None),
        Some(s) => parse_bytes(s).map(Some).with_context(|| {
            format!("invalid {flag} {s:?}: use a number with an optional unit b, k, m or g")
        }),
    }
}

fn key_value(flag: &str, s: &str, sep: char) -> anyhow::Result<(String, String)> {
    s.split_once(sep)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .with_context(|| format!("invalid {flag} {s:?}: use KEY{sep}VALUE"))
}

/// `-v /path` (anonymous), `-v NAME:/path[:ro,nocopy]` (named) or
/// `-v HOST:/path[:ro]` (a bind: a source starting with `/`, `.` or `~`).
pub(crate) fn parse_volume_flag(spec: &str, cwd: &std::path::Path) -> anyhow::Result<Mount> {
    let parts: Vec<&str> = spec.split(':').collect();
    match parts.as_slice() {
        [target] if target.starts_with('/') => {
            return Ok(Mount::Anonymous {
                target: target.to_string(),
            })
        }
        [source, target, ..] if !source.starts_with(['/', '.', '~']) && !source.is_empty() => {
            if !crate::runtime::store::valid_name(source) {
                bail!("invalid volume {spec:?}: {source:?} is neither a host path (/…, ./…) nor a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)");
            }
            if !target.starts_with('/') {
                bail!("invalid volume {spec:?}: the target must be absolute");
            }
            let (mut read_only, mut nocopy) = (false, false);
            for o in parts
                .get(2)
                .copied()
                .unwrap_or("")
                .split(',')
                .filter(|o| !o.is_empty())
            {
                match o {
                    "ro" => read_only = true,
                    "nocopy" => nocopy = true,
                    "rw" | "z" | "Z" => {}
                    other => bail!("invalid volume {spec:?}: unknown option {other:?}"),
                }
            }
            return Ok(Mount::Volume {
                name: source.to_string(),
                target: target.to_string(),
                read_only,
                nocopy,
                subpath: None,
            });
        }
        _ => {}
    }
    let expanded = match spec.strip_prefix("~/") {
        Some(rest) => format!("{}/{rest}", std::env::var("HOME").unwrap_or_default()),
        None => spec.to_string(),
    };
    bind(MountRequest::parse_volume(&expanded, cwd)?)
}

/// A parsed bind or tmpfs as the intent's mount.
fn bind(m: MountRequest) -> anyhow::Result<Mount> {
    Ok(match (m.kind, m.source) {
        (MountKind::Bind, Some(source)) => Mount::Bind {
            source,
            target: m.target,
            read_only: m.read_only,
            create_source: false,
        },
        (MountKind::Bind, None) => bail!("bind mount {}: no source", m.target),
        (MountKind::Tmpfs, _) => Mount::Tmpfs {
            target: m.target,
            options: m.options,
        },
    })
}

/// `--mount type=bind|volume|tmpfs,src=…,dst=…[,readonly][,volume-nocopy]`.
fn parse_mount(spec: &str) -> anyhow::Result<Mount> {
    let mut kind = "volume";
    let (mut source, mut target, mut ro, mut nocopy, mut opts) =
        (None, None, false, false, Vec::new());
    for part in spec.split(',') {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        match k {
            "type" => {
                kind = match v {
                    "tmpfs" => "tmpfs",
                    "bind" => "bind",
                    "volume" => "volume",
                    _ => bail!("unsupported mount type {v:?} in {spec:?} (bind, volume or tmpfs)"),
                }
            }
            "source" | "src" => source = Some(v.to_string()),
            "target" | "destination" | "dst" => target = Some(v.to_string()),
            "readonly" | "ro" => ro = v.is_empty() || v == "true" || v == "1",
            "volume-nocopy" => nocopy = v.is_empty() || v == "true" || v == "1",
            "tmpfs-size" => opts.push(format!("size={v}")),
            "tmpfs-mode" => opts.push(format!("mode={v}")),
            other => bail!("unknown mount option {other:?} in {spec:?}"),
        }
    }
    let target = target.with_context(|| format!("mount {spec:?} needs a target"))?;
    if !target.starts_with('/') {
        bail!("mount {spec:?}: the target must be absolute");
    }
    Ok(match kind {
        "tmpfs" => Mount::Tmpfs {
            target,
            options: opts,
        },
        "bind" => {
            let Some(source) = source else {
                bail!("bind mount {spec:?} needs a source");
            };
            Mount::Bind {
                source: PathBuf::from(source),
                target,
                read_only: ro,
                create_source: false,
            }
        }
        _ => match source.filter(|s| !s.is_empty()) {
            None => Mount::Anonymous { target },
            Some(name) => {
                if !crate::runtime::store::valid_name(&name) {
                    bail!("mount {spec:?}: invalid volume name {name:?}");
                }
                Mount::Volume {
                    name,
                    target,
                    read_only: ro,
                    nocopy,
                    subpath: None,
                }
            }
        },
    })
}

fn parse_ulimit(s: &str) -> anyhow::Result<Ulimit> {
    let (name, vals) = key_value("--ulimit", s, '=')?;
    let (soft, hard) = vals
        .split_once(':')
        .unwrap_or((vals.as_str(), vals.as_str()));
    let n = |v: &str| {
        v.parse::<u64>()
            .with_context(|| format!("invalid --ulimit {s:?}"))
    };
    Ok(Ulimit {
        name: format!("RLIMIT_{}", name.to_ascii_uppercase()),
        soft: n(soft)?,
        hard: n(hard)?,
    })
}

fn read_env_file(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading env file {}", path.display()))?;
    let pairs = crate::spec::dotenv::parse(&text, crate::spec::dotenv::Format::Raw, &|k| {
        std::env::var(k).ok()
    })
    .with_context(|| format!("env file {}", path.display()))?;
    Ok(pairs)
}

impl CreateArgs {
    /// The container these flags describe. `auto_remove` is `run --rm`.
    pub fn intent(&self, auto_remove: bool) -> anyhow::Result<ContainerIntent> {
        let mut args = self.args.iter();
        let source = match &self.rootfs {
            Some(dir) => Source::Rootfs(dir.clone()),
            None => {
                let Some(reference) = args.next() else {
                    bail!("give an image (berth run IMAGE [COMMAND...]) or a root filesystem (--rootfs DIR)");
                };
                Source::Image {
                    reference: reference.clone(),
                    pull: self.pull.parse().map_err(anyhow::Error::msg)?,
                }
            }
        };
        let mut i = ContainerIntent::new(source);
        i.name = self.name.clone();
        i.command = args.cloned().collect();
        i.entrypoint = self.entrypoint.as_ref().map(|ep| {
            if ep.is_empty() {
                Vec::new()
            } else {
                vec![ep.clone()]
            }
        });
        for f in &self.env_file {
            for (k, v) in read_env_file(f)? {
                i.set_env(&k, &v);
            }
        }
        for (k, v) in env_pairs(&self.env) {
            i.set_env(&k, &v);
        }
        i.workdir = self.workdir.clone();
        i.user = self.user.clone();
        i.hostname = self.hostname.clone();
        i.domainname = self.domainname.clone();
        i.init = self.init;
        i.limits = Limits {
            memory: bytes("--memory", &self.memory)?,
            memory_reservation: bytes("--memory-reservation", &self.memory_reservation)?,
            memory_swap: bytes("--memory-swap", &self.memory_swap)?,
            cpus: self.cpus,
            cpu_shares: self.cpu_shares,
            cpuset: self.cpuset_cpus.clone(),
            pids: self.pids_limit.filter(|p| *p > 0),
        };
        i.security = Security {
            cap_add: self.cap_add.clone(),
            cap_drop: self.cap_drop.clone(),
            privileged: self.privileged,
            read_only: self.read_only,
        };
        i.restart = self.restart.parse()?;
        i.auto_remove = auto_remove;
        i.stop_signal = self.stop_signal.clone();
        i.stop_timeout = self.stop_timeout;
        i.networking = match self.network.as_str() {
            "none" => Networking::None,
            "host" => Networking::Host,
            other => match other.strip_prefix("container:") {
                Some(c) => Networking::Container(c.to_string()),
                None => Networking::Networks(vec![Attachment {
                    network: other.to_string(),
                    aliases: self.network_aliases.clone(),
                    ipv4: self.ip,
                    ipv6: self.ip6,
                }]),
            },
        };
        if !self.network_aliases.is_empty() && !matches!(i.networking, Networking::Networks(_)) {
            bail!("network-scoped aliases are supported only for containers on user-defined networks (create one with `berth network create NAME`)");
        }
        for p in &self.publish {
            i.ports.extend(PortRequest::parse(p)?);
        }
        let cwd = std::env::current_dir().context("finding the current directory")?;
        for v in &self.volumes {
            i.mounts.push(parse_volume_flag(v, &cwd)?);
        }
        for m in &self.mounts {
            i.mounts.push(parse_mount(m)?);
        }
        for t in &self.tmpfs {
            i.mounts.push(bind(MountRequest::parse_tmpfs(t)?)?);
        }
        i.dns = runtime::DnsConfig {
            servers: self.dns.clone(),
            search: self.dns_search.clone(),
            options: self.dns_options.clone(),
        };
        for h in &self.add_hosts {
            let (host, ip) = h
                .split_once(':')
                .or_else(|| h.split_once('='))
                .with_context(|| format!("invalid --add-host {h:?}: use HOST:IP"))?;
            let address = if ip == "host-gateway" {
                HostAddress::Gateway
            } else {
                HostAddress::Ip(ip.parse().with_context(|| {
                    format!("invalid --add-host {h:?}: {ip} is not an IP address")
                })?)
            };
            i.extra_hosts.push((host.to_string(), address));
        }
        for s in &self.sysctls {
            let (k, v) = key_value("--sysctl", s, '=')?;
            i.sysctls.insert(k, v);
        }
        i.ulimits = self
            .ulimits
            .iter()
            .map(|u| parse_ulimit(u))
            .collect::<anyhow::Result<_>>()?;
        i.health = self.health_override()?;
        i.labels = key_values(&self.labels);
        i.interactive = self.interactive;
        i.tty = self.tty;
        Ok(i)
    }
}

/// `-e KEY=VALUE` flags as pairs; `-e KEY` passes this process's value
/// through, and is left out when it has none (as Docker).
pub(crate) fn env_pairs(flags: &[String]) -> Vec<(String, String)> {
    flags
        .iter()
        .filter_map(|e| match e.split_once('=') {
            Some((k, v)) => Some((k.to_string(), v.to_string())),
            None => std::env::var(e).ok().map(|v| (e.clone(), v)),
        })
        .collect()
}

/// `KEY=VALUE` list items as a map (a bare `KEY` maps to "").
pub(crate) fn key_values(list: &[String]) -> BTreeMap<String, String> {
    list.iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

// Arguments of `berth run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run in the background and print the container id.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    #[command(flatten)]
    pub create: CreateArgs,
}

/// `berth run`: create, start, and (in the foreground) wait for the exit code.
pub fn run(store: &Store, args: RunArgs) -> anyhow::Result<i32> {
    let intent = args.create.intent(args.rm)?;
    let id = crate::intent::create(store, &intent, &super::progress::report)?;
    match runtime::start(store, &id, !args.detach) {
        Ok(Some(code)) => Ok(code),
        Ok(None) => {
            println!("{id}");
            Ok(0)
        }
        Err(e) => {
            if args.rm {
                let _ = runtime::remove(store, &id, true);
            }
            Err(e.into())
        }
    }
}

/// `berth create`.
pub fn create(store: &Store, args: CreateArgs) -> anyhow::Result<i32> {
    let intent = args.intent(false)?;
    let id = crate::intent::create(store, &intent, &super::progress::report)?;
    println!("{id}");
    Ok(0)
}
