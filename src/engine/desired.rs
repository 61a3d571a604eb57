//! What a project asks for, in berth's terms: per service, its replicas,
//! configuration hash and the container intent that creates one of its
//! containers; the project's networks and volumes with their real names.
//! Pure: reads the typed model only.
//!
//! Owns the translation of service keys; never touches the system.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::intent::{
    Attachment, ContainerIntent, DnsConfig, HealthOverride, HostAddress, Limits, Mount, Networking,
    PortRequest, PullPolicy, RestartPolicy, Security, Source, Ulimit,
};
use crate::spec::service::{self as spec, FileReference, MountType, Service};
use crate::spec::{labels, Project};

/// Why a service cannot be turned into containers.
#[derive(Debug, thiserror::Error)]
pub enum DesiredError {
    #[error("service {service}: {message}")]
    Service { service: String, message: String },
}

fn err(service: &str, message: impl Into<String>) -> DesiredError {
    DesiredError::Service {
        service: service.to_string(),
        message: message.into(),
    }
}

/// One network the project uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredNetwork {
    /// The key in the compose file (`default`, `back`…).
    pub key: String,
    /// The real name (`<project>_<key>`, or `name:`).
    pub name: String,
    pub external: bool,
    pub internal: bool,
    pub ipv6: bool,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub ip_range: Option<String>,
    pub driver_opts: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// One named volume the project uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredVolume {
    pub key: String,
    pub name: String,
    pub external: bool,
    pub labels: BTreeMap<String, String>,
}

/// A `volumes_from` entry: whose mounts, and whether read-only is forced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumesFrom {
    /// A container name (`container:NAME`) or the project's container of a
    /// service, already named `<project>-<service>-1`.
    pub container: String,
    /// `Some(true)` for `:ro`, `Some(false)` for `:rw`, else as the source.
    pub read_only: Option<bool>,
}

/// Where a secret's or config's content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileSource {
    Path(PathBuf),
    Text(String),
}

/// A secret or config as a read-only file in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMount {
    pub name: String,
    pub source: FileSource,
    pub target: String,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub mode: u32,
}

/// The `secrets:` or `configs:` of a service as files.
fn file_mounts(
    project: &Project,
    refs: &[FileReference],
    kind: &str,
    service: &str,
) -> Result<Vec<FileMount>, DesiredError> {
    let defs = if kind == "secrets" {
        &project.secrets
    } else {
        &project.configs
    };
    let mut out = Vec::new();
    for r in refs {
        let source = r.source.clone();
        let def = defs
            .get(&source)
            .ok_or_else(|| err(service, format!("{kind} {source} is not defined")))?;
        let content = if let Some(f) = &def.file {
            FileSource::Path(PathBuf::from(f))
        } else if let Some(var) = &def.environment {
            FileSource::Text(project.environment.get(var).cloned().ok_or_else(|| {
                err(
                    service,
                    format!("{kind} {source}: variable {var} is not set"),
                )
            })?)
        } else if let Some(c) = &def.content {
            FileSource::Text(c.clone())
        } else if def.external {
            return Err(err(
                service,
                format!(
                    "external {kind} ({source}) need a swarm; give a file, environment or content"
                ),
            ));
        } else {
            return Err(err(
                service,
                format!("{kind} {source} has no file, environment or content"),
            ));
        };
        let target = r.target.clone().unwrap_or_else(|| source.clone());
        let target = if target.starts_with('/') {
            target
        } else if kind == "secrets" {
            format!("/run/secrets/{target}")
        } else {
            format!("/{target}")
        };
        out.push(FileMount {
            name: source,
            source: content,
            target,
            uid: r.uid,
            gid: r.gid,
            mode: r.mode.unwrap_or(0o444),
        });
    }
    Ok(out)
}

/// Everything needed to create one container of a service.
#[derive(Debug, Clone)]
pub struct DesiredService {
    pub name: String,
    pub replicas: u32,
    pub hash: String,
    pub image: String,
    /// The container to make, but for what differs per container: its
    /// name and number, its secrets' and configs' files, the mounts of
    /// `volumes_from` and the anonymous volumes it takes over.
    pub intent: ContainerIntent,
    /// Secrets and configs, as files.
    pub files: Vec<FileMount>,
    pub volumes_from: Vec<VolumesFrom>,
    /// `container_name`: the one container's name instead of
    /// `<project>-<service>-1`.
    pub container_name: Option<String>,
}

impl DesiredService {
    /// The networks its containers join, by real name.
    pub fn networks(&self) -> Vec<String> {
        match &self.intent.networking {
            Networking::Networks(list) => list.iter().map(|a| a.network.clone()).collect(),
            _ => Vec::new(),
        }
    }

    /// The named volumes its containers mount, by real name.
    pub fn named_volumes(&self) -> Vec<String> {
        self.intent
            .mounts
            .iter()
            .filter_map(|m| match m {
                Mount::Volume { name, .. } => Some(name.clone()),
                _ => None,
            })
            .collect()
    }

    /// `up --pull` over the service's policy.
    pub fn set_pull(&mut self, policy: PullPolicy) {
        if let Source::Image { pull, .. } = &mut self.intent.source {
            *pull = policy;
        }
    }
}

/// The name of container `number` of service `service`: its
/// `container_name`, or `<project>-<service>-<n>` as Compose names them.
pub fn container_name_of(project: &Project, service: &str, number: u32) -> String {
    project
        .service(service)
        .and_then(|s| s.container_name.clone())
        .unwrap_or_else(|| format!("{}-{service}-{number}", project.name))
}

/// A named volume's `volume.subpath`: relative, never leaving the volume.
fn subpath(sub: Option<&String>, service: &str) -> Result<Option<String>, DesiredError> {
    let Some(sub) = sub else {
        return Ok(None);
    };
    let path = std::path::Path::new(sub);
    if path.is_absolute()
        || path
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(err(
            service,
            format!("volume subpath {sub:?} must be a relative path inside the volume"),
        ));
    }
    Ok(Some(sub.clone()))
}

/// The project's networks that services use (plus `default` when one does).
pub fn networks(project: &Project) -> Vec<DesiredNetwork> {
    project
        .networks
        .iter()
        .map(|(key, n)| {
            let pool = n
                .ipam
                .as_ref()
                .and_then(|i| i.config.first())
                .cloned()
                .unwrap_or_default();
            DesiredNetwork {
                name: project.network_name(key),
                key: key.clone(),
                external: n.external,
                internal: n.internal,
                ipv6: n.enable_ipv6,
                subnet: pool.subnet,
                gateway: pool.gateway,
                ip_range: pool.ip_range,
                driver_opts: n.driver_opts.clone(),
                labels: n.labels.clone(),
            }
        })
        .collect()
}

/// The project's named volumes.
pub fn volumes(project: &Project) -> Vec<DesiredVolume> {
    project
        .volumes
        .iter()
        .map(|(key, v)| DesiredVolume {
            name: project.volume_name(key),
            external: v.external,
            labels: v.labels.clone(),
            key: key.clone(),
        })
        .collect()
}

/// Keys berth does not run yet: refused by name rather than ignored.
const NOT_YET: &[(&str, &str)] = &[
    (
        "runtime",
        "other OCI runtimes are not supported: berth runs containers itself",
    ),
    (
        "platform",
        "berth runs images of this machine's platform only",
    ),
    ("devices", "device access is not supported yet"),
    ("gpus", "GPUs are not supported"),
];

/// How a service's pull policy reads for its image.
fn pull_of(svc: &Service) -> PullPolicy {
    if svc.build.is_some() && svc.image.is_none() {
        // `<project>-<service>` is made by the build, never pulled.
        return PullPolicy::Never;
    }
    match &svc.pull_policy {
        spec::PullPolicy::Always => PullPolicy::Always,
        spec::PullPolicy::Missing => PullPolicy::Missing,
        // Built ones are made before containers are created (engine/build).
        spec::PullPolicy::Never | spec::PullPolicy::Build => PullPolicy::Never,
        // A refresh period: berth has no record of when it last pulled, so
        // a present image is used as `missing` would.
        spec::PullPolicy::Refresh(_) => PullPolicy::Missing,
    }
}

fn restart_of(r: spec::Restart) -> RestartPolicy {
    match r {
        spec::Restart::No => RestartPolicy::No,
        spec::Restart::Always => RestartPolicy::Always,
        spec::Restart::UnlessStopped => RestartPolicy::UnlessStopped,
        spec::Restart::OnFailure(max) => RestartPolicy::OnFailure(max),
    }
}

/// A compose `healthcheck:` over the image's: absent fields stay the
/// image's; `disable: true` or `test: ["NONE"]` turn the check off.
pub fn health_of(h: &spec::Healthcheck) -> HealthOverride {
    HealthOverride {
        disable: h.disable,
        test: h.test.clone(),
        interval: h.interval,
        timeout: h.timeout,
        start_period: h.start_period,
        start_interval: h.start_interval,
        retries: h.retries,
    }
}

/// The service's network namespace and networks, the first being eth0
/// (highest `priority` first, then by key).
fn networking_of(project: &Project, svc: &Service, name: &str) -> Result<Networking, DesiredError> {
    Ok(match &svc.network_mode {
        Some(spec::NetworkMode::None) => Networking::None,
        Some(spec::NetworkMode::Host) => Networking::Host,
        Some(spec::NetworkMode::Bridge) => Networking::default(),
        Some(spec::NetworkMode::Container(c)) => Networking::Container(c.clone()),
        Some(spec::NetworkMode::Service(other)) => {
            Networking::Container(container_name_of(project, other, 1))
        }
        Some(spec::NetworkMode::Network(n)) => Networking::Networks(vec![Attachment {
            network: n.clone(),
            ..Attachment::default()
        }]),
        None => {
            let mut listed: Vec<(i64, &String, Attachment)> = Vec::new();
            for (key, opts) in &svc.networks {
                let o = opts.clone().unwrap_or_default();
                let ip = |text: &Option<String>, what: &str| {
                    text.as_deref()
                        .map(|a| {
                            a.parse().map_err(|_| {
                                err(
                                    name,
                                    format!("networks.{key}.{what}: {a:?} is not an IP address"),
                                )
                            })
                        })
                        .transpose()
                };
                listed.push((
                    -o.priority.unwrap_or(0),
                    key,
                    Attachment {
                        network: project.network_name(key),
                        aliases: o.aliases.clone(),
                        ipv4: ip(&o.ipv4_address, "ipv4_address")?,
                        ipv6: ip(&o.ipv6_address, "ipv6_address")?,
                    },
                ));
            }
            listed.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
            if listed.is_empty() {
                Networking::None
            } else {
                Networking::Networks(listed.into_iter().map(|(_, _, a)| a).collect())
            }
        }
    })
}

/// The service's `volumes:` and `tmpfs:` as mounts.
fn mounts_of(project: &Project, svc: &Service, name: &str) -> Result<Vec<Mount>, DesiredError> {
    let mut out = Vec::new();
    for t in &svc.tmpfs {
        let m = crate::runtime::spec::MountRequest::parse_tmpfs(t)
            .map_err(|e| err(name, format!("tmpfs {t:?}: {e}")))?;
        out.push(Mount::Tmpfs {
            target: m.target,
            options: m.options,
        });
    }
    for v in &svc.volumes {
        let target = v.target.clone();
        let read_only = v.read_only;
        out.push(match (v.kind, &v.source) {
            (MountType::Bind, Some(src)) => Mount::Bind {
                source: PathBuf::from(src),
                target,
                read_only,
                create_source: v.bind.as_ref().is_none_or(|b| b.create_host_path),
            },
            (MountType::Volume, Some(key)) => {
                let opts = v.volume.clone().unwrap_or_default();
                Mount::Volume {
                    name: project.volume_name(key),
                    target,
                    read_only,
                    nocopy: opts.nocopy,
                    subpath: subpath(opts.subpath.as_ref(), name)?,
                }
            }
            (MountType::Volume, None) => Mount::Anonymous { target },
            (MountType::Tmpfs, _) => {
                let t = v.tmpfs.clone().unwrap_or_default();
                let mut options: Vec<String> =
                    t.size.map(|s| format!("size={s}")).into_iter().collect();
                options.extend(t.mode.map(|m| format!("mode={m:o}")));
                Mount::Tmpfs { target, options }
            }
            (MountType::Bind, None) => {
                return Err(err(name, format!("bind mount at {target} has no source")))
            }
            (other, _) => {
                return Err(err(
                    name,
                    format!(
                        "volume type {:?} is not supported",
                        format!("{other:?}").to_lowercase()
                    ),
                ))
            }
        });
    }
    Ok(out)
}

/// The service's `ports:` as requests.
fn ports_of(svc: &Service, name: &str) -> Result<Vec<PortRequest>, DesiredError> {
    svc.ports
        .iter()
        .map(|p| {
            PortRequest::new(
                p.host_ip.as_deref(),
                p.published.as_deref(),
                p.target.into(),
                &p.protocol,
            )
            .map_err(|e| err(name, format!("port {}: {e}", p.target)))
        })
        .collect()
}

/// The labels every container of the service carries.
fn labels_of(project: &Project, svc: &Service, name: &str, hash: &str) -> BTreeMap<String, String> {
    let mut labels = svc.labels.clone();
    labels.insert(labels::PROJECT.into(), project.name.clone());
    labels.insert(labels::SERVICE.into(), name.to_string());
    labels.insert(
        labels::WORKING_DIR.into(),
        project.working_dir.display().to_string(),
    );
    labels.insert(
        labels::CONFIG_FILES.into(),
        project
            .config_files
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(","),
    );
    labels.insert(labels::ONEOFF.into(), "False".into());
    labels.insert(labels::VERSION.into(), "2.40.3".into());
    labels.insert(labels::CONFIG_HASH.into(), hash.to_string());
    let depends: Vec<String> = project
        .dependencies(name)
        .iter()
        .map(|d| format!("{}:{}:{}", d.service.0, d.condition.as_str(), d.restart))
        .collect();
    labels.insert(labels::DEPENDS_ON.into(), depends.join(","));
    labels
}

/// Turns service `name` of `project` into what creates its containers.
pub fn service(project: &Project, name: &str) -> Result<DesiredService, DesiredError> {
    let svc = project
        .service(name)
        .ok_or_else(|| err(name, "not in the project"))?;
    for (key, why) in NOT_YET {
        if svc.other.contains_key(*key) {
            return Err(err(name, format!("`{key}`: {why}")));
        }
    }
    let image = project
        .image_of(name)
        .ok_or_else(|| err(name, "neither an image nor a build section"))?;
    let deploy = svc.deploy.clone().unwrap_or_default();
    let replicas = svc.scale.or(deploy.replicas).unwrap_or(1);
    if let (Some(c), true) = (&svc.container_name, replicas > 1) {
        return Err(err(
            name,
            format!("container_name {c:?} names one container, but it is scaled to {replicas}: container names must be unique"),
        ));
    }
    let resources = deploy.resources.unwrap_or_default();
    let limits = resources.limits.unwrap_or_default();
    let reservations = resources.reservations.unwrap_or_default();
    let mut i = ContainerIntent::new(Source::Image {
        reference: image.clone(),
        pull: pull_of(svc),
    });
    for (k, v) in &svc.environment {
        i.set_env(k, v.as_deref().unwrap_or(""));
    }
    i.workdir = svc.working_dir.clone();
    i.user = svc.user.clone();
    i.hostname = svc.hostname.clone();
    i.domainname = svc.domainname.clone();
    i.entrypoint = svc.entrypoint.clone();
    i.command = svc.command.clone().unwrap_or_default();
    i.init = svc.init.unwrap_or(true);
    i.limits = Limits {
        memory: svc.mem_limit.or(limits.memory),
        memory_reservation: svc.mem_reservation.or(reservations.memory),
        memory_swap: svc.memswap_limit,
        cpus: svc.cpus.or(limits.cpus),
        cpu_shares: svc.cpu_shares,
        cpuset: svc.cpuset.clone(),
        pids: svc.pids_limit.or(limits.pids).filter(|p| *p > 0),
    };
    i.security = Security {
        cap_add: svc.cap_add.clone(),
        cap_drop: svc.cap_drop.clone(),
        privileged: svc.privileged,
        read_only: svc.read_only,
    };
    i.restart = restart_of(svc.restart);
    i.stop_signal = svc.stop_signal.clone();
    i.stop_timeout = svc
        .stop_grace_period
        .map(|d| d.as_nanos().div_ceil(1_000_000_000) as u64)
        .unwrap_or(10);
    i.health = svc.healthcheck.as_ref().map(health_of);
    i.tty = svc.tty;
    i.interactive = svc.stdin_open;
    i.sysctls = svc.sysctls.clone();
    for (k, u) in &svc.ulimits {
        let n = |v: i64| {
            u64::try_from(v).map_err(|_| err(name, format!("ulimits.{k}: {v} is not a limit")))
        };
        i.ulimits.push(Ulimit {
            name: format!("RLIMIT_{}", k.to_ascii_uppercase()),
            soft: n(u.soft)?,
            hard: n(u.hard)?,
        });
    }
    for (host, ip) in &svc.extra_hosts {
        let address = if ip == "host-gateway" {
            HostAddress::Gateway
        } else {
            HostAddress::Ip(ip.parse().map_err(|_| {
                err(
                    name,
                    format!("extra_hosts {host}: {ip:?} is not an IP address"),
                )
            })?)
        };
        i.extra_hosts.push((host.clone(), address));
    }
    i.dns = DnsConfig {
        servers: svc.dns.clone(),
        search: svc.dns_search.clone(),
        options: svc.dns_opt.clone(),
    };
    i.ports = ports_of(svc, name)?;
    i.mounts = mounts_of(project, svc, name)?;
    i.networking = networking_of(project, svc, name)?;
    let hash = crate::spec::hash::service_hash(project, name).unwrap_or_default();
    i.labels = labels_of(project, svc, name, &hash);
    let volumes_from = svc
        .volumes_from
        .iter()
        .map(|entry| {
            let (source, mode) = match entry.rsplit_once(':') {
                Some((s, m)) if m == "ro" || m == "rw" => (s.to_string(), Some(m == "ro")),
                _ => (entry.clone(), None),
            };
            let container = match source.strip_prefix("container:") {
                Some(c) => c.to_string(),
                None => container_name_of(project, &source, 1),
            };
            VolumesFrom {
                container,
                read_only: mode,
            }
        })
        .collect();
    let mut files = file_mounts(project, &svc.secrets, "secrets", name)?;
    files.extend(file_mounts(project, &svc.configs, "configs", name)?);
    Ok(DesiredService {
        container_name: svc.container_name.clone(),
        files,
        volumes_from,
        name: name.to_string(),
        replicas,
        hash,
        image,
        intent: i,
    })
}

#[cfg(test)]
#[path = "desired_tests.rs"]
mod tests;
