//! What a project asks for, in berth's terms: per service, its replicas,
//! configuration hash and the `run` flags that create one of its containers;
//! the project's networks and volumes with their real names. Pure: reads the
//! normalized model only.
//!
//! Owns the translation of service keys; never touches the system.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_yaml::{Mapping, Value};

use crate::spec::Project;

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

/// A service's attachment to one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The network's real name.
    pub network: String,
    pub aliases: Vec<String>,
    pub ipv4_address: Option<String>,
}

/// A named volume mounted by a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeUse {
    pub volume: String,
    pub target: String,
    pub read_only: bool,
    pub nocopy: bool,
    /// A directory inside the volume mounted instead of its root.
    pub subpath: Option<String>,
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

/// Octal mode as compose writes it (`"0400"`, or a number).
fn mode_of(v: Option<&Value>) -> Option<u32> {
    match v? {
        Value::String(s) => u32::from_str_radix(s.trim_start_matches("0o"), 8).ok(),
        Value::Number(n) => n.as_u64().map(|m| m as u32),
        _ => None,
    }
}

/// The `secrets:` or `configs:` of a service as files.
fn file_mounts(
    project: &Project,
    svc: &Mapping,
    kind: &str,
    service: &str,
) -> Result<Vec<FileMount>, DesiredError> {
    let mut out = Vec::new();
    let Some(Value::Sequence(list)) = svc.get(kind) else {
        return Ok(out);
    };
    for item in list {
        let (source, m) = match item {
            Value::Mapping(m) => (get_text(m, "source"), m.clone()),
            other => (text(other), Mapping::new()),
        };
        let source =
            source.ok_or_else(|| err(service, format!("a {kind} entry without source")))?;
        let def = project
            .resource(kind, &source)
            .ok_or_else(|| err(service, format!("{kind} {source} is not defined")))?;
        let content = if let Some(f) = get_text(def, "file") {
            FileSource::Path(PathBuf::from(f))
        } else if let Some(var) = get_text(def, "environment") {
            FileSource::Text(project.environment.get(&var).cloned().ok_or_else(|| {
                err(
                    service,
                    format!("{kind} {source}: variable {var} is not set"),
                )
            })?)
        } else if let Some(c) = get_text(def, "content") {
            FileSource::Text(c)
        } else if def.get("external").and_then(Value::as_bool) == Some(true) {
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
        let target = get_text(&m, "target").unwrap_or_else(|| source.clone());
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
            uid: get_text(&m, "uid").and_then(|u| u.parse().ok()),
            gid: get_text(&m, "gid").and_then(|g| g.parse().ok()),
            mode: mode_of(m.get("mode")).unwrap_or(0o444),
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
    /// `run` flags (without name, network, labels and the image).
    pub flags: crate::cli::run::CreateArgs,
    /// The command after the image (empty: the image's).
    pub command: Vec<String>,
    /// Networks in priority order; the first is eth0. Empty with network_mode.
    pub attachments: Vec<Attachment>,
    /// `host`, `none`, `container:ID`, `service:NAME`, or empty for networks.
    pub network_mode: String,
    pub volumes: Vec<VolumeUse>,
    /// Secrets and configs, as files.
    pub files: Vec<FileMount>,
    pub volumes_from: Vec<VolumesFrom>,
    /// Removed when it exits (one-off containers of `compose run --rm`).
    pub auto_remove: bool,
    pub labels: BTreeMap<String, String>,
    /// `container_name`: the one container's name instead of
    /// `<project>-<service>-1`.
    pub container_name: Option<String>,
}

/// The name of container `number` of service `service`: its
/// `container_name`, or `<project>-<service>-<n>` as Compose names them.
pub fn container_name_of(project: &Project, service: &str, number: u32) -> String {
    project
        .service(service)
        .and_then(|s| get_text(s, "container_name"))
        .unwrap_or_else(|| format!("{}-{service}-{number}", project.name))
}

/// A scalar as text (strings, numbers, booleans).
pub(crate) fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(crate) fn get_text(m: &Mapping, key: &str) -> Option<String> {
    m.get(key).and_then(text)
}

/// A list of words (a sequence, or a string split as a shell would).
pub(crate) fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Sequence(s)) => s.iter().filter_map(text).collect(),
        Some(Value::String(s)) => crate::spec::units::split_shell_words(s).unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// A mapping or a `KEY=VALUE` list as a map.
pub(crate) fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    match v {
        Some(Value::Mapping(m)) => m
            .iter()
            .filter_map(|(k, v)| Some((text(k)?, text(v).unwrap_or_default())))
            .collect(),
        Some(Value::Sequence(s)) => s
            .iter()
            .filter_map(text)
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (kv, String::new()),
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// A named volume's `volume.subpath`: relative, never leaving the volume.
fn subpath(v: &Mapping, service: &str) -> Result<Option<String>, DesiredError> {
    let Some(sub) = v
        .get("volume")
        .and_then(|o| o.get("subpath"))
        .and_then(text)
    else {
        return Ok(None);
    };
    let path = std::path::Path::new(&sub);
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
    Ok(Some(sub))
}

/// Seconds of a compose duration (`10s`, `1m30s`, `500ms`), rounded up.
fn seconds(s: &str) -> Option<u64> {
    crate::spec::units::parse_duration(s).map(|ns| (ns.max(0) as u64).div_ceil(1_000_000_000))
}

/// The project's networks that services use (plus `default` when one does).
pub fn networks(project: &Project) -> Vec<DesiredNetwork> {
    let mut out = Vec::new();
    for key in project.resource_names("networks") {
        let Some(m) = project.resource("networks", &key) else {
            continue;
        };
        let ipam_config = m
            .get("ipam")
            .and_then(|i| i.get("config"))
            .and_then(Value::as_sequence)
            .and_then(|c| c.first())
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default();
        out.push(DesiredNetwork {
            name: get_text(m, "name").unwrap_or_else(|| format!("{}_{key}", project.name)),
            key,
            external: m.get("external").and_then(Value::as_bool).unwrap_or(false),
            internal: m.get("internal").and_then(Value::as_bool).unwrap_or(false),
            ipv6: m
                .get("enable_ipv6")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            subnet: get_text(&ipam_config, "subnet"),
            gateway: get_text(&ipam_config, "gateway"),
            ip_range: get_text(&ipam_config, "ip_range"),
            driver_opts: string_map(m.get("driver_opts")),
            labels: string_map(m.get("labels")),
        });
    }
    out
}

/// The project's named volumes.
pub fn volumes(project: &Project) -> Vec<DesiredVolume> {
    project
        .resource_names("volumes")
        .into_iter()
        .filter_map(|key| {
            let m = project.resource("volumes", &key)?;
            Some(DesiredVolume {
                name: get_text(m, "name").unwrap_or_else(|| format!("{}_{key}", project.name)),
                external: m.get("external").and_then(Value::as_bool).unwrap_or(false),
                labels: string_map(m.get("labels")),
                key,
            })
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

/// Turns service `name` of `project` into what creates its containers.
pub fn service(project: &Project, name: &str) -> Result<DesiredService, DesiredError> {
    let svc = project
        .service(name)
        .ok_or_else(|| err(name, "not in the project"))?;
    for (key, why) in NOT_YET {
        if svc.contains_key(*key) {
            return Err(err(name, format!("`{key}`: {why}")));
        }
    }
    let image = super::build::image_name(project, name)
        .ok_or_else(|| err(name, "neither an image nor a build section"))?;
    let deploy = svc.get("deploy").and_then(Value::as_mapping);
    let replicas = get_text(svc, "scale")
        .or_else(|| deploy.and_then(|d| get_text(d, "replicas")))
        .map(|r| {
            r.parse::<u32>()
                .map_err(|_| err(name, format!("invalid scale {r:?}")))
        })
        .transpose()?
        .unwrap_or(1);
    let container_name = get_text(svc, "container_name");
    if let (Some(c), true) = (&container_name, replicas > 1) {
        return Err(err(
            name,
            format!("container_name {c:?} names one container, but it is scaled to {replicas}: container names must be unique"),
        ));
    }
    let limits = deploy
        .and_then(|d| d.get("resources"))
        .and_then(|r| r.get("limits"))
        .and_then(Value::as_mapping);
    let reservations = deploy
        .and_then(|d| d.get("resources"))
        .and_then(|r| r.get("reservations"))
        .and_then(Value::as_mapping);

    let mut f = crate::cli::run::CreateArgs::for_engine();
    if svc.contains_key("build") && !svc.contains_key("image") {
        // `<project>-<service>` is made by the build, never pulled.
        f.pull = "never".into();
    }
    f.env = string_map(svc.get("environment"))
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    f.workdir = get_text(svc, "working_dir");
    f.user = get_text(svc, "user");
    f.hostname = get_text(svc, "hostname");
    f.domainname = get_text(svc, "domainname");
    let entrypoint = strings(svc.get("entrypoint"));
    if svc.contains_key("entrypoint") {
        // berth's --entrypoint takes one word; the rest goes before the command.
        f.entrypoint = Some(entrypoint.first().cloned().unwrap_or_default());
    }
    f.init = svc.get("init").and_then(Value::as_bool).unwrap_or(true);
    f.memory = get_text(svc, "mem_limit").or_else(|| limits.and_then(|l| get_text(l, "memory")));
    f.memory_reservation = get_text(svc, "mem_reservation")
        .or_else(|| reservations.and_then(|l| get_text(l, "memory")));
    f.memory_swap = get_text(svc, "memswap_limit");
    f.cpus = get_text(svc, "cpus")
        .or_else(|| limits.and_then(|l| get_text(l, "cpus")))
        .map(|c| {
            c.parse()
                .map_err(|_| err(name, format!("invalid cpus {c:?}")))
        })
        .transpose()?;
    f.cpu_shares = get_text(svc, "cpu_shares").and_then(|c| c.parse().ok());
    f.cpuset_cpus = get_text(svc, "cpuset");
    f.pids_limit = get_text(svc, "pids_limit")
        .or_else(|| limits.and_then(|l| get_text(l, "pids")))
        .and_then(|p| p.parse().ok());
    f.cap_add = strings(svc.get("cap_add"));
    f.cap_drop = strings(svc.get("cap_drop"));
    f.privileged = svc
        .get("privileged")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    f.read_only = svc
        .get("read_only")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    f.restart = get_text(svc, "restart").unwrap_or_else(|| "no".into());
    f.stop_signal = get_text(svc, "stop_signal");
    f.healthcheck = svc
        .get("healthcheck")
        .and_then(Value::as_mapping)
        .map(super::health::docker_json);
    f.stop_timeout = get_text(svc, "stop_grace_period")
        .and_then(|d| seconds(&d))
        .unwrap_or(10);
    f.pull = match get_text(svc, "pull_policy").as_deref() {
        None | Some("missing") | Some("if_not_present") => "missing".into(),
        Some("always") => "always".into(),
        // Built ones are made before containers are created (engine/build).
        Some("never") | Some("build") => "never".into(),
        // A refresh period: berth has no record of when it last pulled, so
        // a present image is used as `missing` would.
        Some(p) if p == "daily" || p == "weekly" || p.starts_with("every_") => "missing".into(),
        Some(other) => return Err(err(name, format!("unknown pull_policy {other:?}"))),
    };
    f.tty = svc.get("tty").and_then(Value::as_bool).unwrap_or(false);
    f.interactive = svc
        .get("stdin_open")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    f.sysctls = string_map(svc.get("sysctls"))
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if let Some(Value::Mapping(u)) = svc.get("ulimits") {
        for (k, v) in u {
            let Some(k) = text(k) else { continue };
            let limit = match v {
                Value::Mapping(m) => format!(
                    "{k}={}:{}",
                    get_text(m, "soft").unwrap_or_default(),
                    get_text(m, "hard").unwrap_or_default()
                ),
                other => format!("{k}={}", text(other).unwrap_or_default()),
            };
            f.ulimits.push(limit);
        }
    }
    f.add_hosts = match svc.get("extra_hosts") {
        Some(Value::Mapping(m)) => m
            .iter()
            .filter_map(|(k, v)| Some(format!("{}:{}", text(k)?, text(v)?)))
            .collect(),
        other => strings(other)
            .into_iter()
            .map(|h| h.replacen('=', ":", 1))
            .collect(),
    };
    f.dns = strings(svc.get("dns"));
    f.dns_search = strings(svc.get("dns_search"));
    f.dns_options = strings(svc.get("dns_opt"));
    if let Some(Value::Sequence(ports)) = svc.get("ports") {
        for p in ports.iter().filter_map(Value::as_mapping) {
            let target = get_text(p, "target").ok_or_else(|| err(name, "a port without target"))?;
            let published = get_text(p, "published").unwrap_or_default();
            let host_ip = get_text(p, "host_ip");
            let proto = get_text(p, "protocol").unwrap_or_else(|| "tcp".into());
            let host = match host_ip {
                Some(ip) if ip.contains(':') => format!("[{ip}]:{published}:"),
                Some(ip) => format!("{ip}:{published}:"),
                None if published.is_empty() => String::new(),
                None => format!("{published}:"),
            };
            f.publish.push(format!("{host}{target}/{proto}"));
        }
    }
    for t in strings(svc.get("tmpfs")) {
        f.tmpfs.push(t);
    }
    let mut volumes = Vec::new();
    if let Some(Value::Sequence(vs)) = svc.get("volumes") {
        for v in vs.iter().filter_map(Value::as_mapping) {
            let kind = get_text(v, "type").unwrap_or_else(|| "volume".into());
            let target =
                get_text(v, "target").ok_or_else(|| err(name, "a volume without target"))?;
            let ro = v.get("read_only").and_then(Value::as_bool).unwrap_or(false);
            let source = get_text(v, "source");
            match (kind.as_str(), source) {
                ("bind", Some(src)) => {
                    let create = v
                        .get("bind")
                        .and_then(|b| b.get("create_host_path"))
                        .and_then(Value::as_bool)
                        .unwrap_or(true);
                    if create && !std::path::Path::new(&src).exists() {
                        f.bind_dirs_to_create.push(PathBuf::from(&src));
                    }
                    f.volumes
                        .push(format!("{src}:{target}{}", if ro { ":ro" } else { "" }));
                }
                ("volume", Some(key)) => {
                    let vname = project
                        .resource("volumes", &key)
                        .and_then(|m| get_text(m, "name"))
                        .unwrap_or_else(|| format!("{}_{key}", project.name));
                    volumes.push(VolumeUse {
                        volume: vname,
                        target,
                        read_only: ro,
                        nocopy: v
                            .get("volume")
                            .and_then(|o| o.get("nocopy"))
                            .and_then(Value::as_bool)
                            .unwrap_or(false),
                        subpath: subpath(v, name)?,
                    });
                }
                ("volume", None) => {
                    f.anonymous_volumes.push(target);
                }
                ("tmpfs", _) => {
                    let size = v
                        .get("tmpfs")
                        .and_then(|t| t.get("size"))
                        .and_then(text)
                        .map(|s| format!(":size={s}"))
                        .unwrap_or_default();
                    f.tmpfs.push(format!("{target}{size}"));
                }
                (other, _) => {
                    return Err(err(name, format!("volume type {other:?} is not supported")))
                }
            }
        }
    }
    let network_mode = get_text(svc, "network_mode").unwrap_or_default();
    let mut attachments = Vec::new();
    if network_mode.is_empty() {
        let mut listed: Vec<(i64, String, Attachment)> = Vec::new();
        if let Some(Value::Mapping(nets)) = svc.get("networks") {
            for (k, v) in nets {
                let Some(key) = text(k) else { continue };
                let real = project
                    .resource("networks", &key)
                    .and_then(|m| get_text(m, "name"))
                    .unwrap_or_else(|| format!("{}_{key}", project.name));
                let m = v.as_mapping().cloned().unwrap_or_default();
                let priority = get_text(&m, "priority")
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0);
                listed.push((
                    -priority,
                    key,
                    Attachment {
                        network: real,
                        aliases: strings(m.get("aliases")),
                        ipv4_address: get_text(&m, "ipv4_address"),
                    },
                ));
            }
        }
        listed.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        attachments = listed.into_iter().map(|(_, _, a)| a).collect();
    }
    let mut labels = string_map(svc.get("labels"));
    labels.insert(crate::spec::labels::PROJECT.into(), project.name.clone());
    labels.insert(crate::spec::labels::SERVICE.into(), name.to_string());
    labels.insert(
        crate::spec::labels::WORKING_DIR.into(),
        project.working_dir.display().to_string(),
    );
    labels.insert(
        crate::spec::labels::CONFIG_FILES.into(),
        project
            .config_files
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(","),
    );
    labels.insert(crate::spec::labels::ONEOFF.into(), "False".into());
    labels.insert(crate::spec::labels::VERSION.into(), "2.40.3".into());
    let hash = crate::spec::hash::service_hash(project, name).unwrap_or_default();
    labels.insert(crate::spec::labels::CONFIG_HASH.into(), hash.clone());
    let depends: Vec<String> = project
        .dependencies(name)
        .iter()
        .map(|d| format!("{}:{}:{}", d.service.0, d.condition.as_str(), d.restart))
        .collect();
    labels.insert(crate::spec::labels::DEPENDS_ON.into(), depends.join(","));
    let mut command = strings(svc.get("command"));
    if entrypoint.len() > 1 {
        let mut c = entrypoint[1..].to_vec();
        c.append(&mut command);
        command = c;
    }
    let volumes_from = strings(svc.get("volumes_from"))
        .into_iter()
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
    let mut files = file_mounts(project, svc, "secrets", name)?;
    files.extend(file_mounts(project, svc, "configs", name)?);
    Ok(DesiredService {
        container_name,
        files,
        volumes_from,
        auto_remove: false,
        name: name.to_string(),
        replicas,
        hash,
        image,
        flags: f,
        command,
        attachments,
        network_mode,
        volumes,
        labels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
