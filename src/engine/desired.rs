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
mod tests {
    use super::*;
    use std::time::Duration;

    /// The desired service `web` of a project whose `web` has `body`
    /// (indented under it), beside a `db` service.
    fn web(body: &str) -> DesiredService {
        let mut yaml = String::from("services:\n  web:\n    image: busybox\n");
        for line in body.lines() {
            yaml.push_str("    ");
            yaml.push_str(line);
            yaml.push('\n');
        }
        yaml.push_str("  db:\n    image: busybox\n");
        yaml.push_str("networks:\n  back:\n  front:\n    name: shared-front\n");
        yaml.push_str("volumes:\n  data:\n  named:\n    name: real-name\n");
        yaml.push_str("secrets:\n  token:\n    environment: COMPOSE_PROJECT_NAME\n");
        yaml.push_str("configs:\n  site:\n    content: hello\n");
        let p = crate::spec::load_str_for_tests(&yaml);
        service(&p, "web").unwrap_or_else(|e| panic!("{e}"))
    }

    fn refused(body: &str) -> String {
        let yaml =
            format!("services:\n  web:\n    image: busybox\n    {body}\nvolumes:\n  data:\n");
        let p = crate::spec::load_str_for_tests(&yaml);
        match service(&p, "web") {
            Ok(_) => panic!("{body} was accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn image_and_pull_policy() {
        let w = web("");
        assert_eq!(w.image, "busybox");
        assert_eq!(
            w.intent.source,
            Source::Image {
                reference: "busybox".into(),
                pull: PullPolicy::Missing
            }
        );
        for (policy, want) in [
            ("always", PullPolicy::Always),
            ("never", PullPolicy::Never),
            ("build", PullPolicy::Never),
            ("if_not_present", PullPolicy::Missing),
            ("daily", PullPolicy::Missing),
        ] {
            let w = web(&format!("pull_policy: {policy}"));
            assert!(
                matches!(&w.intent.source, Source::Image { pull, .. } if *pull == want),
                "{policy}"
            );
        }
    }

    #[test]
    fn a_built_service_without_image_is_never_pulled() {
        let p = crate::spec::load_str_for_tests("services:\n  app:\n    build: .\n");
        let s = service(&p, "app").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.image, "g-app");
        assert!(matches!(
            s.intent.source,
            Source::Image {
                pull: PullPolicy::Never,
                ..
            }
        ));
    }

    #[test]
    fn environment_in_order_and_bare_keys_empty() {
        let w = web("environment:\n  B: two\n  A: one\n  EMPTY:");
        assert_eq!(
            w.intent.env,
            [
                ("A".to_string(), "one".to_string()),
                ("B".to_string(), "two".to_string()),
                ("EMPTY".to_string(), String::new())
            ]
        );
    }

    #[test]
    fn command_entrypoint_and_process_keys() {
        let w = web("entrypoint: [/bin/sh, -c]\ncommand: echo hi\nworking_dir: /srv\nuser: \"1000:1000\"\nhostname: h\ndomainname: example.test\ninit: false\ntty: true\nstdin_open: true\nstop_signal: SIGINT\nstop_grace_period: 1m30s");
        let i = &w.intent;
        assert_eq!(i.entrypoint, Some(vec!["/bin/sh".into(), "-c".into()]));
        assert_eq!(i.command, ["echo", "hi"]);
        assert_eq!(i.workdir.as_deref(), Some("/srv"));
        assert_eq!(i.user.as_deref(), Some("1000:1000"));
        assert_eq!(i.hostname.as_deref(), Some("h"));
        assert_eq!(i.domainname.as_deref(), Some("example.test"));
        assert!(!i.init && i.tty && i.interactive);
        assert_eq!(i.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(i.stop_timeout, 90);
        let d = web("");
        assert!(d.intent.init, "berth's init by default");
        assert_eq!(d.intent.stop_timeout, 10);
        assert_eq!(d.intent.entrypoint, None);
        assert!(d.intent.command.is_empty(), "the image's");
        // Rounded up to whole seconds.
        assert_eq!(web("stop_grace_period: 1500ms").intent.stop_timeout, 2);
    }

    #[test]
    fn limits_from_short_keys_and_deploy() {
        let w = web("mem_limit: 64m\nmem_reservation: 32m\nmemswap_limit: -1\ncpus: 0.5\ncpu_shares: 512\ncpuset: 0-1\npids_limit: 100");
        let l = &w.intent.limits;
        assert_eq!(l.memory, Some(64 << 20));
        assert_eq!(l.memory_reservation, Some(32 << 20));
        assert_eq!(l.memory_swap, Some(-1));
        assert_eq!(l.cpus, Some(0.5));
        assert_eq!(l.cpu_shares, Some(512));
        assert_eq!(l.cpuset.as_deref(), Some("0-1"));
        assert_eq!(l.pids, Some(100));
        let d = web("deploy:\n  replicas: 3\n  resources:\n    limits: {cpus: '0.25', memory: 16M, pids: 7}\n    reservations: {memory: 8M}");
        assert_eq!(d.replicas, 3);
        let l = &d.intent.limits;
        assert_eq!(
            (l.cpus, l.memory, l.pids, l.memory_reservation),
            (Some(0.25), Some(16 << 20), Some(7), Some(8 << 20))
        );
        assert_eq!(web("scale: 2").replicas, 2);
        assert_eq!(web("pids_limit: -1").intent.limits.pids, None, "unlimited");
    }

    #[test]
    fn security_keys() {
        let w = web("cap_add: [NET_ADMIN]\ncap_drop: [ALL]\nprivileged: true\nread_only: true");
        assert_eq!(
            w.intent.security,
            Security {
                cap_add: vec!["NET_ADMIN".into()],
                cap_drop: vec!["ALL".into()],
                privileged: true,
                read_only: true
            }
        );
    }

    #[test]
    fn restart_policies() {
        for (text, want) in [
            ("no", RestartPolicy::No),
            ("always", RestartPolicy::Always),
            ("unless-stopped", RestartPolicy::UnlessStopped),
            ("on-failure", RestartPolicy::OnFailure(None)),
            ("on-failure:3", RestartPolicy::OnFailure(Some(3))),
        ] {
            assert_eq!(web(&format!("restart: {text}")).intent.restart, want);
        }
        assert_eq!(web("").intent.restart, RestartPolicy::No);
    }

    #[test]
    fn healthcheck_over_the_image() {
        let w = web("healthcheck:\n  test: [\"CMD-SHELL\", \"test -f /ready\"]\n  interval: 2s\n  retries: 5\n  start_period: 1s");
        let h = w.intent.health.clone().unwrap_or_default();
        let j = h.to_docker();
        assert_eq!(
            j["Test"],
            serde_json::json!(["CMD-SHELL", "test -f /ready"])
        );
        assert_eq!(j["Interval"], 2_000_000_000u64);
        assert_eq!(j["Retries"], 5);
        assert_eq!(j["StartPeriod"], 1_000_000_000u64);
        assert!(j.get("Timeout").is_none(), "absent: the image's");
        let c = crate::runtime::health::Check::from_docker(&j).unwrap_or_else(|| panic!("a check"));
        assert_eq!(c.timeout, Duration::from_secs(30));
        let off = web("healthcheck:\n  test: [\"CMD\", \"true\"]\n  disable: true");
        let j = off.intent.health.unwrap_or_default().to_docker();
        assert_eq!(crate::runtime::health::Check::from_docker(&j), None);
        let none = web("healthcheck:\n  test: [\"NONE\"]");
        let j = none.intent.health.unwrap_or_default().to_docker();
        assert_eq!(crate::runtime::health::Check::from_docker(&j), None);
        let interval_only = web("healthcheck:\n  interval: 1s");
        let j = interval_only.intent.health.unwrap_or_default().to_docker();
        assert!(j.get("Test").is_none());
        assert_eq!(web("").intent.health, None);
    }

    #[test]
    fn kernel_and_resolver_keys() {
        let w = web("sysctls: [net.core.somaxconn=1024]\nulimits:\n  nofile: {soft: 10, hard: 20}\n  nproc: 5\ndns: [192.0.2.53]\ndns_search: [example.test]\ndns_opt: [ndots:2]\nextra_hosts: [\"h:192.0.2.1\", \"gw:host-gateway\"]");
        let i = &w.intent;
        assert_eq!(i.sysctls["net.core.somaxconn"], "1024");
        assert_eq!(
            i.ulimits,
            [
                Ulimit {
                    name: "RLIMIT_NOFILE".into(),
                    soft: 10,
                    hard: 20
                },
                Ulimit {
                    name: "RLIMIT_NPROC".into(),
                    soft: 5,
                    hard: 5
                }
            ]
        );
        assert_eq!(i.dns.servers, ["192.0.2.53"]);
        assert_eq!(i.dns.search, ["example.test"]);
        assert_eq!(i.dns.options, ["ndots:2"]);
        assert_eq!(
            i.extra_hosts,
            [
                ("gw".to_string(), HostAddress::Gateway),
                (
                    "h".to_string(),
                    HostAddress::Ip("192.0.2.1".parse().unwrap_or_else(|e| panic!("{e}")))
                )
            ],
            "sorted by host, as Compose normalizes them"
        );
        assert!(refused("extra_hosts: [\"h:nowhere\"]").contains("not an IP address"));
    }

    #[test]
    fn ports_keep_address_range_and_protocol() {
        let w = web("ports: [\"8080:80\", \"127.0.0.1:9000-9001:9000-9001/udp\", \"3000\", \"127.0.0.1:7000-7005:7000\"]");
        let p = &w.intent.ports;
        assert_eq!(p.len(), 5);
        assert_eq!(
            (p[0].host_ports, p[0].container_port, p[0].protocol.as_str()),
            (Some((8080, 8080)), 80, "tcp")
        );
        assert_eq!(
            p[1].host_ip,
            Some("127.0.0.1".parse().unwrap_or_else(|e| panic!("{e}")))
        );
        assert_eq!(
            (p[2].host_ports, p[2].container_port, p[2].protocol.as_str()),
            (Some((9001, 9001)), 9001, "udp")
        );
        assert_eq!((p[3].host_ports, p[3].container_port), (None, 3000));
        assert_eq!(
            p[4].host_ports,
            Some((7000, 7005)),
            "a host range for one port"
        );
    }

    #[test]
    fn volumes_of_every_kind() {
        let w = web("volumes:\n  - /srv/site:/site:ro\n  - data:/data\n  - named:/n\n  - /anon\n  - {type: tmpfs, target: /t, tmpfs: {size: 1m}}\n  - {type: volume, source: data, target: /sub, volume: {subpath: part, nocopy: true}}\n  - {type: bind, source: /srv/x, target: /x, bind: {create_host_path: false}}\ntmpfs: [/run]");
        let m = &w.intent.mounts;
        assert_eq!(
            m[0],
            Mount::Tmpfs {
                target: "/run".into(),
                options: Vec::new()
            }
        );
        assert_eq!(
            m[1],
            Mount::Bind {
                source: "/srv/site".into(),
                target: "/site".into(),
                read_only: true,
                create_source: true
            }
        );
        assert_eq!(
            m[2],
            Mount::Volume {
                name: "g_data".into(),
                target: "/data".into(),
                read_only: false,
                nocopy: false,
                subpath: None
            }
        );
        assert!(matches!(&m[3], Mount::Volume { name, .. } if name == "real-name"));
        assert_eq!(
            m[4],
            Mount::Anonymous {
                target: "/anon".into()
            }
        );
        assert_eq!(
            m[5],
            Mount::Tmpfs {
                target: "/t".into(),
                options: vec!["size=1048576".into()]
            }
        );
        assert!(
            matches!(&m[6], Mount::Volume { subpath: Some(s), nocopy: true, .. } if s == "part")
        );
        assert!(matches!(
            &m[7],
            Mount::Bind {
                create_source: false,
                ..
            }
        ));
        assert_eq!(w.named_volumes(), ["g_data", "real-name", "g_data"]);
        assert!(refused(
            "volumes: [{type: volume, source: data, target: /d, volume: {subpath: ../up}}]"
        )
        .contains("subpath"));
    }

    #[test]
    fn networks_in_priority_order_with_aliases_and_addresses() {
        let w = web("networks:\n  back:\n    aliases: [api]\n    ipv4_address: 10.5.0.5\n  front:\n    priority: 10\n    ipv6_address: fd00::5");
        let Networking::Networks(list) = &w.intent.networking else {
            panic!("{:?}", w.intent.networking)
        };
        assert_eq!(list.len(), 2, "all of them, not just the first");
        assert_eq!(
            list[0].network, "shared-front",
            "highest priority first, by its name:"
        );
        assert_eq!(
            list[0].ipv6,
            Some("fd00::5".parse().unwrap_or_else(|e| panic!("{e}")))
        );
        assert_eq!(list[1].network, "g_back");
        assert_eq!(list[1].aliases, ["api"]);
        assert_eq!(
            list[1].ipv4,
            Some("10.5.0.5".parse().unwrap_or_else(|e| panic!("{e}")))
        );
        assert_eq!(w.networks(), ["shared-front", "g_back"]);
        let d = web("");
        assert_eq!(d.networks(), ["g_default"], "the default network");
    }

    #[test]
    fn network_modes() {
        assert_eq!(
            web("network_mode: none").intent.networking,
            Networking::None
        );
        assert_eq!(
            web("network_mode: host").intent.networking,
            Networking::Host
        );
        assert_eq!(
            web("network_mode: \"service:db\"").intent.networking,
            Networking::Container("g-db-1".into())
        );
        assert_eq!(
            web("network_mode: \"container:other\"").intent.networking,
            Networking::Container("other".into())
        );
        assert_eq!(
            web("network_mode: bridge").intent.networking,
            Networking::default()
        );
        assert!(web("network_mode: none").networks().is_empty());
    }

    #[test]
    fn labels_carry_the_project_and_the_service() {
        let w = web("labels: {team: web}\ndepends_on: {db: {condition: service_healthy}}");
        let l = &w.intent.labels;
        assert_eq!(l["team"], "web");
        assert_eq!(l[labels::PROJECT], "g");
        assert_eq!(l[labels::SERVICE], "web");
        assert_eq!(l[labels::ONEOFF], "False");
        assert_eq!(l[labels::DEPENDS_ON], "db:service_healthy:false");
        assert_eq!(l[labels::CONFIG_HASH], w.hash);
        assert!(!w.hash.is_empty());
    }

    #[test]
    fn secrets_and_configs_become_files() {
        let w = web("secrets: [token]\nconfigs:\n  - source: site\n    target: /etc/site.txt\n    mode: 0440\n    uid: \"7\"");
        assert_eq!(w.files.len(), 2);
        assert_eq!(w.files[0].target, "/run/secrets/token");
        assert_eq!(w.files[0].mode, 0o444);
        assert_eq!(
            w.files[0].source,
            FileSource::Text("g".into()),
            "from the variable"
        );
        assert_eq!(w.files[1].target, "/etc/site.txt");
        assert_eq!(w.files[1].source, FileSource::Text("hello".into()));
        assert_eq!((w.files[1].mode, w.files[1].uid), (0o440, Some(7)));
    }

    #[test]
    fn volumes_from_names_containers() {
        let w = web("volumes_from: [\"db:ro\", \"container:other\"]");
        assert_eq!(
            w.volumes_from,
            [
                VolumesFrom {
                    container: "g-db-1".into(),
                    read_only: Some(true)
                },
                VolumesFrom {
                    container: "other".into(),
                    read_only: None
                }
            ]
        );
    }

    #[test]
    fn keys_berth_cannot_run_are_refused_by_name() {
        assert!(refused("runtime: runc").contains("`runtime`"));
        assert!(refused("platform: linux/arm64").contains("`platform`"));
        assert!(refused("devices: [/dev/null]").contains("`devices`"));
    }

    #[test]
    fn container_name_names_the_one_container_and_volumes_from_follows_it() {
        let p = crate::spec::load_str_for_tests(
            "name: demo\nservices:\n  db:\n    image: busybox\n    container_name: postgres\n  web:\n    image: busybox\n    volumes_from: [db]\n  app:\n    image: busybox\n",
        );
        let db = service(&p, "db").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(db.container_name.as_deref(), Some("postgres"));
        assert_eq!(container_name_of(&p, "db", 1), "postgres");
        assert_eq!(container_name_of(&p, "app", 2), "g-app-2");
        let web = service(&p, "web").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(web.volumes_from[0].container, "postgres");
    }

    #[test]
    fn container_name_with_more_than_one_replica_is_refused() {
        let p = crate::spec::load_str_for_tests(
            "name: demo\nservices:\n  db:\n    image: busybox\n    container_name: postgres\n    scale: 2\n",
        );
        let e = service(&p, "db").map(|_| ()).unwrap_err().to_string();
        assert!(
            e.contains("container_name \"postgres\"") && e.contains("scaled to 2"),
            "{e}"
        );
    }
}
