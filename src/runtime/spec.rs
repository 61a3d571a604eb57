//! The container spec: the OCI runtime `Spec` (oci-spec types, written as
//! `config.json`) plus berth's extras (`berth.json`: name, rootfs source,
//! init, restart policy, stop signal, network mode…), built from a request
//! with Docker's defaults (capabilities, masked and read-only paths,
//! namespaces, no_new_privs).
//!
//! Pure: builds data; never touches the system.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxMemoryBuilder,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder,
    MountBuilder, PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder, Spec,
    SpecBuilder, UserBuilder,
};
use serde::{Deserialize, Serialize};

/// Why a spec could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SpecBuildError {
    #[error("unknown capability {0:?}")]
    UnknownCapability(String),
    #[error("invalid restart policy {0:?}: use no, always, unless-stopped or on-failure[:N]")]
    RestartPolicy(String),
    #[error("invalid mount {0:?}: {1}")]
    Mount(String, String),
    #[error("unknown ulimit {0:?}")]
    Ulimit(String),
    #[error("sysctl {0:?} is not allowed: {1}")]
    Sysctl(String, &'static str),
    #[error("building the OCI spec: {0}")]
    Oci(#[from] oci_spec::OciSpecError),
}

/// Docker's default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// Paths Docker hides from containers.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths Docker makes read-only.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// When the shim brings a container back after it exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case", tag = "name", content = "max")]
pub enum RestartPolicy {
    #[default]
    No,
    Always,
    UnlessStopped,
    OnFailure(Option<u32>),
}

impl FromStr for RestartPolicy {
    type Err = SpecBuildError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || SpecBuildError::RestartPolicy(s.to_string());
        Ok(match s {
            "" | "no" => RestartPolicy::No,
            "always" => RestartPolicy::Always,
            "unless-stopped" => RestartPolicy::UnlessStopped,
            "on-failure" => RestartPolicy::OnFailure(None),
            other => {
                let n = other.strip_prefix("on-failure:").ok_or_else(bad)?;
                RestartPolicy::OnFailure(Some(n.parse().map_err(|_| bad())?))
            }
        })
    }
}

impl RestartPolicy {
    /// Whether to restart after an exit with `code`, having restarted `count` times.
    pub fn should_restart(&self, code: i32, count: u32, stop_requested: bool) -> bool {
        if stop_requested {
            return false;
        }
        match self {
            RestartPolicy::No => false,
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
            RestartPolicy::OnFailure(max) => code != 0 && max.is_none_or(|m| count < m),
        }
    }

    pub fn as_docker(&self) -> String {
        match self {
            RestartPolicy::No => "no".into(),
            RestartPolicy::Always => "always".into(),
            RestartPolicy::UnlessStopped => "unless-stopped".into(),
            RestartPolicy::OnFailure(None) => "on-failure".into(),
            RestartPolicy::OnFailure(Some(n)) => format!("on-failure:{n}"),
        }
    }
}

/// The network a container gets (bridges come with the networks layer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// A fresh network namespace with only loopback.
    #[default]
    None,
    /// The host's network namespace.
    Host,
    /// The network namespace of another, running container (`container:NAME`).
    Container(String),
    /// A user network: a new namespace with a veth on the network's bridge.
    Bridge {
        network: String,
        ip: Option<std::net::IpAddr>,
    },
}

impl NetworkMode {
    /// Docker's name of the mode.
    pub fn as_docker(&self) -> String {
        match self {
            NetworkMode::None => "none".into(),
            NetworkMode::Host => "host".into(),
            NetworkMode::Container(id) => format!("container:{id}"),
            NetworkMode::Bridge { network, .. } => network.clone(),
        }
    }
}

/// Where the container's root filesystem comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RootfsSource {
    /// A directory used as the lower layer of an overlay.
    Dir(PathBuf),
    /// Image layers, lowest first.
    Layers(Vec<PathBuf>),
}

/// berth's extras beside the OCI spec (`berth.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerConfig {
    pub id: String,
    pub name: String,
    pub created: String,
    pub rootfs: RootfsSource,
    pub image: Option<String>,
    pub init: bool,
    pub restart: RestartPolicy,
    pub auto_remove: bool,
    pub stop_signal: String,
    pub stop_timeout: u64,
    pub network: NetworkMode,
    pub tty: bool,
    pub interactive: bool,
    /// The command as given (entrypoint + cmd).
    pub command: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// Whether Docker's default seccomp profile applies.
    pub seccomp: bool,
    /// Ports the image declares (`EXPOSE`), for inspect and the networks layer.
    #[serde(default)]
    pub exposed_ports: Vec<String>,
    /// The container's health check as Docker's `Healthcheck` JSON (the
    /// image's, with compose's or `run`'s over it); the shim probes it.
    #[serde(default)]
    pub healthcheck: Option<serde_json::Value>,
    /// Anonymous volumes made for the image's `VOLUME`s.
    #[serde(default)]
    pub volumes: Vec<AnonymousVolume>,
    /// Published ports (`-p`), host ports settled at create time.
    #[serde(default)]
    pub ports: Vec<crate::net::ports::Published>,
    /// Networks joined besides the first (`network connect`), as eth1, eth2…
    #[serde(default)]
    pub extra_networks: Vec<String>,
    /// Network → the extra names the container answers to there
    /// (`--network-alias`, `network connect --alias`, compose aliases).
    #[serde(default)]
    pub aliases: BTreeMap<String, Vec<String>>,
    /// Resolvers for names the network's DNS does not know (`--dns`).
    #[serde(default)]
    pub dns: Vec<String>,
    /// The static IPv6 address asked for on the first network (`--ip6`).
    #[serde(default)]
    pub ip6: Option<std::net::IpAddr>,
    /// Static addresses asked for on the networks besides the first
    /// (compose's `ipv4_address`, `network connect --ip`).
    #[serde(default)]
    pub addresses: BTreeMap<String, std::net::IpAddr>,
    /// The user as given (`-u`, `user:`, the image's USER); "" for none.
    #[serde(default)]
    pub user: String,
    /// The /etc files as `create` made them (hosts, hostname, resolv.conf).
    /// The files beside the record are written without a flush: the shim
    /// makes one again from here when a power loss left it empty or gone.
    #[serde(default)]
    pub etc_files: BTreeMap<String, String>,
    /// The shared mount-point layer laid over the image (see
    /// `mount_points`), when the image can take it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_points: Option<PathBuf>,
}

/// A volume made for an image `VOLUME` path: filled with the image's content
/// at that path on first use, removed with the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnonymousVolume {
    pub target: String,
    pub data: PathBuf,
    /// A named volume: filled on first use like the others, but it outlives
    /// the container (compose volumes; `down -v` removes them).
    #[serde(default)]
    pub named: bool,
}

/// A bind or tmpfs mount requested for the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountRequest {
    pub kind: MountKind,
    pub source: Option<PathBuf>,
    pub target: String,
    pub read_only: bool,
    pub options: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    Bind,
    Tmpfs,
}

impl MountRequest {
    /// Parses `-v SRC:DST[:ro|rw]` (host paths only here; named volumes need the volume store).
    pub fn parse_volume(spec: &str, cwd: &Path) -> Result<MountRequest, SpecBuildError> {
        let parts: Vec<&str> = spec.split(':').collect();
        let (src, dst, opts) = match parts.as_slice() {
            [s, d] => (*s, *d, ""),
            [s, d, o] => (*s, *d, *o),
            _ => {
                return Err(SpecBuildError::Mount(
                    spec.into(),
                    "use SOURCE:TARGET[:ro]".into(),
                ))
            }
        };
        if !(src.starts_with('/') || src.starts_with('.')) {
            return Err(SpecBuildError::Mount(
                spec.into(),
                "the source must be a host path (named volumes come with compose volumes)".into(),
            ));
        }
        if !dst.starts_with('/') {
            return Err(SpecBuildError::Mount(
                spec.into(),
                "the target must be absolute".into(),
            ));
        }
        let mut read_only = false;
        for o in opts.split(',').filter(|o| !o.is_empty()) {
            match o {
                "ro" => read_only = true,
                "rw" | "z" | "Z" => {}
                other => {
                    return Err(SpecBuildError::Mount(
                        spec.into(),
                        format!("unknown option {other:?}"),
                    ))
                }
            }
        }
        let source = if Path::new(src).is_absolute() {
            PathBuf::from(src)
        } else {
            cwd.join(src)
        };
        Ok(MountRequest {
            kind: MountKind::Bind,
            source: Some(source),
            target: dst.to_string(),
            read_only,
            options: Vec::new(),
        })
    }

    /// Parses `--tmpfs DST[:OPTIONS]`.
    pub fn parse_tmpfs(spec: &str) -> Result<MountRequest, SpecBuildError> {
        let (dst, opts) = spec.split_once(':').unwrap_or((spec, ""));
        if !dst.starts_with('/') {
            return Err(SpecBuildError::Mount(
                spec.into(),
                "the target must be absolute".into(),
            ));
        }
        Ok(MountRequest {
            kind: MountKind::Tmpfs,
            source: None,
            target: dst.to_string(),
            read_only: false,
            options: opts
                .split(',')
                .filter(|o| !o.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }
}

/// Resource limits (`-m`, `--cpus`, `--pids-limit`, …).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    pub memory: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub memory_swap: Option<i64>,
    pub cpus: Option<f64>,
    pub cpu_shares: Option<u64>,
    pub cpuset: Option<String>,
    pub pids: Option<i64>,
}

/// Everything needed to build a spec.
#[derive(Debug, Clone, Default)]
pub struct SpecRequest {
    pub rootfs: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub hostname: String,
    /// NIS domain name (`--domainname`), set in the UTS namespace.
    pub domainname: String,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub read_only: bool,
    pub tty: bool,
    pub limits: Limits,
    pub mounts: Vec<MountRequest>,
    pub sysctls: BTreeMap<String, String>,
    /// `nofile=1024:2048` style limits: (name, soft, hard).
    pub ulimits: Vec<(String, u64, u64)>,
    pub network: NetworkMode,
}

fn cap_name(raw: &str) -> String {
    let up = raw.trim().to_ascii_uppercase();
    up.strip_prefix("CAP_").unwrap_or(&up).to_string()
}

/// The capability names (without `CAP_`) a spec grants.
pub fn capabilities_of(spec: &Spec) -> Vec<String> {
    spec.process()
        .as_ref()
        .and_then(|p| p.capabilities().as_ref())
        .and_then(|c| c.bounding().clone())
        .map(|s| s.iter().map(|c| c.to_string()).collect())
        .unwrap_or_default()
}

/// All capabilities this kernel knows (for `privileged` and `ALL`).
pub fn all_caps() -> Vec<String> {
    caps::all()
        .into_iter()
        .map(|c| cap_name(&c.to_string()))
        .collect()
}

/// Docker's rule: start from the defaults (or all when privileged), drop
/// `cap_drop` (ALL drops every one), then add `cap_add` (ALL adds every one).
pub fn effective_caps(req: &SpecRequest) -> Result<Vec<String>, SpecBuildError> {
    let mut set: Vec<String> = if req.privileged {
        all_caps()
    } else {
        DEFAULT_CAPS.iter().map(|s| s.to_string()).collect()
    };
    let known = all_caps();
    let check = |c: &str| -> Result<String, SpecBuildError> {
        let n = cap_name(c);
        if n == "ALL" || known.contains(&n) {
            Ok(n)
        } else {
            Err(SpecBuildError::UnknownCapability(c.to_string()))
        }
    };
    for c in &req.cap_drop {
        let n = check(c)?;
        if n == "ALL" {
            set.clear();
        } else {
            set.retain(|x| *x != n);
        }
    }
    for c in &req.cap_add {
        let n = check(c)?;
        if n == "ALL" {
            set = known.clone();
        } else if !set.contains(&n) {
            set.push(n);
        }
    }
    set.sort();
    Ok(set)
}

fn rlimit_type(name: &str) -> Result<PosixRlimitType, SpecBuildError> {
    let n = format!("RLIMIT_{}", name.to_ascii_uppercase());
    PosixRlimitType::from_str(&n).map_err(|_| SpecBuildError::Ulimit(name.to_string()))
}

/// Only kernel parameters the container's own namespaces hold may be set,
/// as Docker allows: IPC (`kernel.msg*`, `kernel.sem`, `kernel.shm*`,
/// `fs.mqueue.*`), UTS (`kernel.domainname`) and, with its own network
/// namespace, `net.*`.
pub fn check_sysctl(key: &str, network: &NetworkMode) -> Result<(), SpecBuildError> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
        "kernel.domainname",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        return Ok(());
    }
    if key.starts_with("net.") {
        return match network {
            NetworkMode::Host => Err(SpecBuildError::Sysctl(
                key.to_string(),
                "it would change the host's network namespace (network mode host)",
            )),
            NetworkMode::None | NetworkMode::Bridge { .. } => Ok(()),
            NetworkMode::Container(_) => Err(SpecBuildError::Sysctl(
                key.to_string(),
                "the network namespace belongs to another container",
            )),
        };
    }
    Err(SpecBuildError::Sysctl(
        key.to_string(),
        "only parameters of the container's own namespaces can be set",
    ))
}

/// Builds the OCI runtime spec.
pub fn build_spec(req: &SpecRequest) -> Result<Spec, SpecBuildError> {
    for key in req.sysctls.keys() {
        check_sysctl(key, &req.network)?;
    }
    let caps: HashSet<Capability> = effective_caps(req)?
        .iter()
        .filter_map(|c| Capability::from_str(c).ok())
        .collect();
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps.clone())
        .inheritable(HashSet::new())
        .ambient(HashSet::new())
        .build()?;
    let mut rlimits = Vec::new();
    for (name, soft, hard) in &req.ulimits {
        rlimits.push(
            PosixRlimitBuilder::default()
                .typ(rlimit_type(name)?)
                .soft(*soft)
                .hard(*hard)
                .build()?,
        );
    }
    let process = ProcessBuilder::default()
        .terminal(req.tty)
        .args(req.args.clone())
        .env(req.env.clone())
        .cwd(if req.cwd.is_empty() {
            "/".to_string()
        } else {
            req.cwd.clone()
        })
        .user(
            UserBuilder::default()
                .uid(req.uid)
                .gid(req.gid)
                .additional_gids(req.additional_gids.clone())
                .build()?,
        )
        .capabilities(capabilities)
        .rlimits(rlimits)
        .no_new_privileges(!req.privileged)
        .build()?;

    let mut namespaces = Vec::new();
    for t in [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Cgroup,
    ] {
        namespaces.push(LinuxNamespaceBuilder::default().typ(t).build()?);
    }
    if matches!(req.network, NetworkMode::None | NetworkMode::Bridge { .. }) {
        namespaces.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Network)
                .build()?,
        );
    }

    let l = &req.limits;
    let mut memory = LinuxMemoryBuilder::default();
    if let Some(m) = l.memory {
        memory = memory.limit(m);
    }
    if let Some(r) = l.memory_reservation {
        memory = memory.reservation(r);
    }
    if let Some(s) = l.memory_swap {
        memory = memory.swap(s);
    }
    let mut cpu = LinuxCpuBuilder::default();
    if let Some(c) = l.cpus {
        let period: u64 = 100_000;
        cpu = cpu.period(period).quota((c * period as f64).round() as i64);
    }
    if let Some(s) = l.cpu_shares {
        cpu = cpu.shares(s);
    }
    if let Some(set) = &l.cpuset {
        cpu = cpu.cpus(set.clone());
    }
    let mut resources = LinuxResourcesBuilder::default()
        .memory(memory.build()?)
        .cpu(cpu.build()?);
    if let Some(p) = l.pids {
        resources = resources.pids(LinuxPidsBuilder::default().limit(p).build()?);
    }
    let mut sysctl: HashMap<String, String> = req.sysctls.clone().into_iter().collect();
    // As Docker (20.10 on): in a network namespace of its own, any user may
    // bind any port, so a server dropped to its own user still listens on
    // 80 (pgAdmin, nginx as non-root). A --sysctl of the user's wins.
    if matches!(req.network, NetworkMode::None | NetworkMode::Bridge { .. }) {
        sysctl
            .entry("net.ipv4.ip_unprivileged_port_start".into())
            .or_insert_with(|| "0".into());
    }
    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(resources.build()?)
        .masked_paths(if req.privileged {
            Vec::new()
        } else {
            MASKED_PATHS.iter().map(|s| s.to_string()).collect()
        })
        .readonly_paths(if req.privileged {
            Vec::new()
        } else {
            READONLY_PATHS.iter().map(|s| s.to_string()).collect()
        })
        .sysctl(sysctl)
        .build()?;

    let mut mounts = Vec::new();
    for m in &req.mounts {
        let mut options = m.options.clone();
        let (typ, source) = match m.kind {
            MountKind::Bind => {
                options.push("rbind".into());
                ("bind", m.source.clone().unwrap_or_default())
            }
            MountKind::Tmpfs => ("tmpfs", PathBuf::from("tmpfs")),
        };
        options.push(if m.read_only {
            "ro".into()
        } else {
            "rw".into()
        });
        mounts.push(
            MountBuilder::default()
                .destination(PathBuf::from(&m.target))
                .typ(typ)
                .source(source)
                .options(options)
                .build()?,
        );
    }

    Ok(SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path(req.rootfs.clone())
                .readonly(req.read_only)
                .build()?,
        )
        .hostname(req.hostname.clone())
        .domainname(req.domainname.clone())
        .process(process)
        .linux(linux)
        .mounts(mounts)
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_caps_are_dockers_fourteen() {
        let caps = effective_caps(&SpecRequest::default()).unwrap_or_default();
        assert_eq!(caps.len(), 14);
        // The bit mask Docker's default set makes: 0xa80425fb.
        let mask: u64 = caps
            .iter()
            .filter_map(|c| caps::Capability::from_str(&format!("CAP_{c}")).ok())
            .map(|c| 1u64 << c.index())
            .sum();
        assert_eq!(mask, 0xa804_25fb);
    }

    #[test]
    fn cap_add_drop_and_all() {
        let req = SpecRequest {
            cap_add: vec!["NET_ADMIN".into(), "cap_sys_time".into()],
            cap_drop: vec!["CHOWN".into()],
            ..Default::default()
        };
        let caps = effective_caps(&req).unwrap_or_default();
        assert!(caps.contains(&"NET_ADMIN".to_string()));
        assert!(caps.contains(&"SYS_TIME".to_string()));
        assert!(!caps.contains(&"CHOWN".to_string()));
        let req = SpecRequest {
            cap_drop: vec!["ALL".into()],
            cap_add: vec!["KILL".into()],
            ..Default::default()
        };
        assert_eq!(effective_caps(&req).unwrap_or_default(), vec!["KILL"]);
        let req = SpecRequest {
            cap_add: vec!["NOPE".into()],
            ..Default::default()
        };
        assert!(effective_caps(&req).is_err());
        let req = SpecRequest {
            privileged: true,
            ..Default::default()
        };
        assert_eq!(
            effective_caps(&req).unwrap_or_default().len(),
            all_caps().len()
        );
    }

    #[test]
    fn restart_policies() {
        let p: RestartPolicy = "on-failure:2".parse().unwrap_or_default();
        assert_eq!(p, RestartPolicy::OnFailure(Some(2)));
        assert!(p.should_restart(1, 0, false));
        assert!(p.should_restart(1, 1, false));
        assert!(!p.should_restart(1, 2, false));
        assert!(!p.should_restart(0, 0, false));
        let a: RestartPolicy = "always".parse().unwrap_or_default();
        assert!(a.should_restart(0, 100, false));
        assert!(!a.should_restart(0, 0, true));
        assert!("sometimes".parse::<RestartPolicy>().is_err());
        assert_eq!(p.as_docker(), "on-failure:2");
    }

    #[test]
    fn spec_carries_limits_namespaces_and_mounts() {
        let req = SpecRequest {
            rootfs: "/r".into(),
            args: vec!["sh".into()],
            hostname: "h".into(),
            domainname: String::new(),
            limits: Limits {
                memory: Some(1 << 20),
                cpus: Some(0.5),
                pids: Some(20),
                ..Default::default()
            },
            mounts: vec![
                MountRequest::parse_volume("/src:/dst:ro", Path::new("/"))
                    .unwrap_or_else(|e| panic!("{e}")),
                MountRequest::parse_tmpfs("/t:size=1m").unwrap_or_else(|e| panic!("{e}")),
            ],
            ulimits: vec![("nofile".into(), 100, 200)],
            ..Default::default()
        };
        let spec = build_spec(&req).unwrap_or_else(|e| panic!("{e}"));
        let json = serde_json::to_value(&spec).unwrap_or_default();
        let linux = &json["linux"];
        assert_eq!(linux["resources"]["memory"]["limit"], 1 << 20);
        assert_eq!(linux["resources"]["cpu"]["quota"], 50_000);
        assert_eq!(linux["resources"]["pids"]["limit"], 20);
        let ns: Vec<&str> = linux["namespaces"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n["type"].as_str())
            .collect();
        assert!(ns.contains(&"network") && ns.contains(&"pid") && ns.contains(&"mount"));
        assert_eq!(json["process"]["noNewPrivileges"], true);
        assert_eq!(json["process"]["rlimits"][0]["type"], "RLIMIT_NOFILE");
        assert_eq!(
            json["mounts"][0]["options"],
            serde_json::json!(["rbind", "ro"])
        );
        assert_eq!(json["mounts"][1]["type"], "tmpfs");
        assert!(linux["maskedPaths"]
            .as_array()
            .is_some_and(|a| a.iter().any(|p| p == "/proc/kcore")));
    }

    #[test]
    fn only_namespaced_sysctls() {
        assert!(check_sysctl("net.ipv4.ip_forward", &NetworkMode::None).is_ok());
        assert!(check_sysctl("net.ipv4.ip_forward", &NetworkMode::Host).is_err());
        assert!(check_sysctl("kernel.shmmax", &NetworkMode::Host).is_ok());
        assert!(check_sysctl("fs.mqueue.msg_max", &NetworkMode::None).is_ok());
        assert!(check_sysctl("vm.swappiness", &NetworkMode::None).is_err());
        assert!(check_sysctl("kernel.hostname", &NetworkMode::None).is_err());
    }

    #[test]
    fn volume_and_tmpfs_parsing_errors() {
        assert!(MountRequest::parse_volume("named:/x", Path::new("/")).is_err());
        assert!(MountRequest::parse_volume("/a:rel", Path::new("/")).is_err());
        assert!(MountRequest::parse_volume("/a:/b:bogus", Path::new("/")).is_err());
        assert!(MountRequest::parse_tmpfs("rel").is_err());
        let m = MountRequest::parse_volume("./d:/d", Path::new("/cwd"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.source, Some(PathBuf::from("/cwd/./d")));
    }
}
