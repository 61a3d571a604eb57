//! `create`: a container's records made from a request — config.json (the
//! OCI spec), berth.json (berth's own record), state.json, /etc files, and
//! the anonymous volumes of the image's `VOLUME`s.

use super::*;
use crate::state::Flush;
use std::collections::BTreeMap;

/// What `create` needs beyond the spec request.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub name: Option<String>,
    pub rootfs: RootfsSource,
    pub image: Option<String>,
    /// The image's id (its config digest), when it runs one.
    pub image_id: Option<String>,
    /// `user`, `uid`, `user:group` or `uid:gid`, resolved in the rootfs.
    pub user: Option<String>,
    pub spec: SpecRequest,
    pub init: bool,
    pub restart: spec::RestartPolicy,
    pub auto_remove: bool,
    pub stop_signal: String,
    pub stop_timeout: u64,
    pub interactive: bool,
    pub labels: std::collections::BTreeMap<String, String>,
    pub extra_hosts: Vec<(String, String)>,
    /// From the image: exposed ports, health check, volume paths.
    pub exposed_ports: Vec<String>,
    pub healthcheck: Option<serde_json::Value>,
    pub image_volumes: Vec<String>,
    pub ports: Vec<crate::net::ports::Published>,
    /// Extra names on the first network (`--network-alias`).
    pub aliases: Vec<String>,
    /// Named volumes: their data directory mounted at a target, filled from
    /// the image on first use unless `nocopy`.
    pub named_volumes: Vec<NamedVolumeMount>,
    /// Anonymous volumes taken over from a container this one replaces
    /// (`take_anonymous_volumes`): used at their targets instead of new ones.
    pub inherited_volumes: Vec<spec::AnonymousVolume>,
    /// A static IPv6 address on the first network (`--ip6`).
    pub ip6: Option<std::net::IpAddr>,
    /// Networks joined besides the first, as eth1, eth2…
    pub extra_networks: Vec<ExtraNetwork>,
    pub dns: DnsConfig,
}

/// A network a container joins besides its first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraNetwork {
    pub name: String,
    pub aliases: Vec<String>,
    /// A static address there.
    pub ip: Option<std::net::IpAddr>,
}

/// A named volume in a container.
#[derive(Debug, Clone)]
pub struct NamedVolumeMount {
    pub data: PathBuf,
    pub target: String,
    pub read_only: bool,
    pub nocopy: bool,
}

/// `--dns`, `--dns-search`, `--dns-option`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsConfig {
    pub servers: Vec<String>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

const ADJECTIVES: &[&str] = &[
    "brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry",
    "nimble", "proud", "quiet", "rapid", "sharp", "tidy", "vivid", "witty", "zesty", "bold",
];
const NOUNS: &[&str] = &[
    "anchor", "beacon", "cove", "dock", "ferry", "galley", "harbor", "inlet", "jetty", "keel",
    "lagoon", "mast", "pier", "quay", "reef", "sail", "tide", "wharf", "buoy", "helm",
];

/// A free Docker-style name (`adjective_noun`), derived from the id.
fn generate_name(store: &Store, id: &str) -> Result<String, RuntimeError> {
    let bytes: Vec<usize> = (0..id.len() / 2)
        .filter_map(|i| usize::from_str_radix(&id[2 * i..2 * i + 2], 16).ok())
        .collect();
    for i in 0..bytes.len().saturating_sub(1) {
        let n = format!(
            "{}_{}",
            ADJECTIVES[bytes[i] % ADJECTIVES.len()],
            NOUNS[bytes[i + 1] % NOUNS.len()]
        );
        if store.check_name(&n).is_ok() {
            return Ok(n);
        }
    }
    Ok(format!("berth_{}", &id[..12]))
}

fn lookup(file: &Path, key: &str, by_name: bool) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        let hit = if by_name {
            f.first() == Some(&key)
        } else {
            f.get(2) == Some(&key)
        };
        if !hit {
            return None;
        }
        let id = f.get(2)?.parse().ok()?;
        let gid = f.get(3).and_then(|g| g.parse().ok()).unwrap_or(id);
        Some((id, gid))
    })
}

/// Resolves `user[:group]` against the container's /etc/passwd and /etc/group.
pub fn resolve_user(root: &Path, user: &str) -> Result<(u32, u32), RuntimeError> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = root.join("etc/passwd");
    let (uid, mut gid) = if let Ok(n) = u.parse::<u32>() {
        (n, lookup(&passwd, u, false).map_or(0, |(_, g)| g))
    } else {
        lookup(&passwd, u, true).ok_or_else(|| {
            RuntimeError::Invalid(format!(
                "unable to find user {u}: no matching entries in passwd file"
            ))
        })?
    };
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup(&root.join("etc/group"), g, true)
                .map(|(id, _)| id)
                .ok_or_else(|| {
                    RuntimeError::Invalid(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                })?,
        };
    }
    Ok((uid, gid))
}

/// The groups of /etc/group that list `user` as a member (besides its primary group).
pub fn supplementary_groups(root: &Path, user: &str, primary: u32) -> Vec<u32> {
    let text = std::fs::read_to_string(root.join("etc/group")).unwrap_or_default();
    let mut gids: Vec<u32> = text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let gid: u32 = f.get(2)?.parse().ok()?;
            let members = f.get(3)?;
            members.split(',').any(|m| m.trim() == user).then_some(gid)
        })
        .filter(|g| *g != primary)
        .collect();
    gids.sort_unstable();
    gids.dedup();
    gids
}

/// The directory whose /etc/passwd and /etc/group describe the container's
/// users: the rootfs, or the topmost layer that has an /etc/passwd.
fn user_db_root(src: &RootfsSource) -> PathBuf {
    match src {
        RootfsSource::Dir(d) => d.clone(),
        RootfsSource::Layers(l) => l
            .iter()
            .rev()
            .find(|d| d.join("etc/passwd").is_file())
            .or_else(|| l.last())
            .cloned()
            .unwrap_or_default(),
    }
}

/// Creates a container: state directories, `config.json`, `berth.json`,
/// hosts files and a `created` state. Returns its id.
pub fn create(store: &Store, mut req: CreateRequest) -> Result<String, RuntimeError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(RuntimeError::NeedsRoot("create containers"));
    }
    let id = store::new_id()?;
    let name = match &req.name {
        Some(n) => {
            store.check_name(n)?;
            n.clone()
        }
        None => generate_name(store, &id)?,
    };
    let root_src = user_db_root(&req.rootfs);
    if !root_src.is_dir() {
        return Err(RuntimeError::Invalid(format!(
            "rootfs {} is not a directory",
            root_src.display()
        )));
    }
    if let Some(u) = &req.user {
        let (uid, gid) = resolve_user(&root_src, u)?;
        req.spec.uid = uid;
        req.spec.gid = gid;
        let name = u.split(':').next().unwrap_or("");
        req.spec.additional_gids = supplementary_groups(&root_src, name, gid);
    }
    if req.spec.hostname.is_empty() {
        req.spec.hostname = id[..12].to_string();
    }
    store.create_dirs(&id)?;
    let dir = store.container_dir(&id);
    req.spec.rootfs = dir.join("rootfs");
    let mut volumes = Vec::new();
    for v in &req.named_volumes {
        req.spec.mounts.push(spec::MountRequest {
            kind: spec::MountKind::Bind,
            source: Some(v.data.clone()),
            target: v.target.clone(),
            read_only: v.read_only,
            options: Vec::new(),
        });
        if !v.nocopy {
            volumes.push(spec::AnonymousVolume {
                target: v.target.clone(),
                data: v.data.clone(),
                named: true,
            });
        }
    }
    // Image VOLUMEs not covered by a mount get an anonymous volume each.
    for target in &req.image_volumes {
        if req
            .spec
            .mounts
            .iter()
            .any(|m| m.target.trim_end_matches('/') == target.trim_end_matches('/'))
        {
            continue;
        }
        let inherited = req
            .inherited_volumes
            .iter()
            .find(|v| v.target.trim_end_matches('/') == target.trim_end_matches('/'))
            .map(|v| v.data.clone());
        let data = match inherited {
            Some(data) => data,
            None => store
                .root
                .join("volumes")
                .join(store::new_id()?)
                .join("_data"),
        };
        std::fs::create_dir_all(&data).map_err(|source| StoreError::Io {
            path: data.clone(),
            source,
        })?;
        req.spec.mounts.push(spec::MountRequest {
            kind: spec::MountKind::Bind,
            source: Some(data.clone()),
            target: target.clone(),
            read_only: false,
            options: Vec::new(),
        });
        volumes.push(spec::AnonymousVolume {
            target: target.clone(),
            data,
            named: false,
        });
    }
    let result = (|| -> Result<ContainerConfig, RuntimeError> {
        let oci = build_spec(&req.spec)?;
        let resolver = match &req.spec.network {
            spec::NetworkMode::Bridge { network, .. } => {
                crate::net::store::NetworkStore::new(&store.run)
                    .get(network)
                    .ok()
                    .filter(|n| n.dns)
                    .map(|n| n.pool.gateway)
            }
            _ => None,
        };
        // A host without /etc/resolv.conf: the containers get berth's
        // resolver (or none); one that cannot be read is an error.
        let host = match std::fs::read_to_string("/etc/resolv.conf") {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(StoreError::Io {
                    path: "/etc/resolv.conf".into(),
                    source,
                }
                .into())
            }
        };
        let resolv = resolv_conf(
            &host,
            resolver,
            matches!(req.spec.network, spec::NetworkMode::Host),
            &req.dns,
        );
        let etc = EtcFiles {
            hostname: &req.spec.hostname,
            domainname: &req.spec.domainname,
            extra_hosts: &req.extra_hosts,
            resolv_conf: &resolv,
        };
        let config = ContainerConfig {
            id: id.clone(),
            name,
            created: store::now_rfc3339(),
            rootfs: req.rootfs.clone(),
            image: req.image.clone(),
            init: req.init,
            restart: req.restart,
            auto_remove: req.auto_remove,
            stop_signal: req.stop_signal.clone(),
            stop_timeout: req.stop_timeout,
            network: req.spec.network.clone(),
            tty: req.spec.tty,
            interactive: req.interactive,
            command: req.spec.args.clone(),
            labels: req.labels.clone(),
            seccomp: !req.spec.privileged,
            exposed_ports: req.exposed_ports.clone(),
            healthcheck: req.healthcheck.clone(),
            volumes: volumes.clone(),
            ports: req.ports.clone(),
            extra_networks: req.extra_networks.iter().map(|n| n.name.clone()).collect(),
            aliases: match &req.spec.network {
                spec::NetworkMode::Bridge { network, .. } if !req.aliases.is_empty() => {
                    [(network.clone(), req.aliases.clone())].into()
                }
                _ => std::collections::BTreeMap::new(),
            }
            .into_iter()
            .chain(
                req.extra_networks
                    .iter()
                    .filter(|n| !n.aliases.is_empty())
                    .map(|n| (n.name.clone(), n.aliases.clone())),
            )
            .collect(),
            addresses: req
                .extra_networks
                .iter()
                .filter_map(|n| Some((n.name.clone(), n.ip?)))
                .collect(),
            dns: req.dns.servers.clone(),
            ip6: req.ip6,
            user: req.user.clone().unwrap_or_default(),
            etc_files: etc_texts(&etc),
            mount_points: super::mount_points::for_lowers(
                &store.root,
                &super::process::image_lowers(&req.rootfs),
            ),
        };
        let (before, last) = record_flushes(req.auto_remove);
        store.write_json_with(&dir.join("config.json"), &oci, before)?;
        write_etc_files(store, &id, &config.etc_files)?;
        store.write_state(&id, &State::created())?;
        // berth.json last: the container exists for everyone who lists
        // containers once it is whole (a create killed before this leaves
        // a directory nobody takes for a container).
        store.write_json_with(&dir.join("berth.json"), &config, last)?;
        Ok(config)
    })();
    match result {
        Ok(config) => events::record_for(store, &config, "create", &[]),
        Err(e) => {
            remove_volumes(&volumes);
            let _ = store.remove(&id);
            return Err(e);
        }
    }
    Ok(id)
}

/// What goes into a container's /etc/hosts, /etc/hostname and /etc/resolv.conf.
struct EtcFiles<'a> {
    hostname: &'a str,
    domainname: &'a str,
    extra_hosts: &'a [(String, String)],
    resolv_conf: &'a str,
}

/// The texts of a container's /etc/hosts, /etc/hostname and /etc/resolv.conf.
fn etc_texts(etc: &EtcFiles) -> BTreeMap<String, String> {
    let mut hosts = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for (h, ip) in etc.extra_hosts {
        hosts.push_str(&format!("{ip}\t{h}\n"));
    }
    let hostname = if etc.domainname.is_empty() {
        etc.hostname.to_string()
    } else {
        format!("{}.{}", etc.hostname, etc.domainname)
    };
    [
        ("hosts".to_string(), hosts),
        ("hostname".to_string(), format!("{hostname}\n")),
        ("resolv.conf".to_string(), etc.resolv_conf.to_string()),
    ]
    .into()
}

/// How `create` flushes a container's record: the files before
/// `berth.json`, and `berth.json` itself. A `--rm` container's record lasts
/// as long as its process: written without a flush (after a power loss it
/// may be gone, as `--rm` would have made it, or left empty and taken for
/// no container). Any other is flushed once: `config.json`'s data, then
/// `berth.json` with the directory, which makes every entry before it
/// durable.
fn record_flushes(auto_remove: bool) -> (Flush, Flush) {
    if auto_remove {
        (Flush::Volatile, Flush::Volatile)
    } else {
        (Flush::DataOnly, Flush::Durable)
    }
}

/// Writes the /etc files beside the record, without a flush: the record
/// holds their texts (`etc_files`) and the shim makes them again when a
/// power loss left them empty (`restore_etc_files`).
fn write_etc_files(
    store: &Store,
    id: &str,
    files: &BTreeMap<String, String>,
) -> Result<(), RuntimeError> {
    let dir = store.container_dir(id);
    for (name, text) in files {
        let p = dir.join(name);
        crate::state::write_atomic_volatile(&p, text.as_bytes())
            .map_err(|source| StoreError::Io { path: p, source })?;
    }
    Ok(())
}

/// Makes each /etc file of the record again where it is gone or empty (what
/// a power loss leaves of a file written without a flush); one the
/// container changed is kept as it is.
pub(crate) fn restore_etc_files(
    store: &Store,
    config: &ContainerConfig,
) -> Result<(), RuntimeError> {
    let dir = store.container_dir(&config.id);
    for (name, text) in &config.etc_files {
        let p = dir.join(name);
        let whole = std::fs::metadata(&p).is_ok_and(|m| m.len() > 0);
        if !whole && !text.is_empty() {
            tracing::warn!("{} was lost; made again from the record", p.display());
            crate::state::write_atomic_volatile(&p, text.as_bytes())
                .map_err(|source| StoreError::Io { path: p, source })?;
        }
    }
    Ok(())
}

/// A container's resolv.conf. On a network with name resolution the
/// network's responder (at `resolver`, the gateway) is the only nameserver
/// and `ndots:0` keeps short names from wandering through search domains,
/// as in Docker; elsewhere the `--dns` servers, or the host's minus loopback
/// ones a container cannot reach (the host network keeps them all). Search
/// domains and options come from the flags, else from the host.
pub fn resolv_conf(
    host: &str,
    resolver: Option<std::net::IpAddr>,
    host_network: bool,
    dns: &DnsConfig,
) -> String {
    let lines = |key: &str| -> Vec<String> {
        host.lines()
            .filter_map(|l| l.trim().strip_prefix(key))
            .filter(|rest| rest.starts_with([' ', '\t']))
            .flat_map(|rest| rest.split_whitespace().map(str::to_string))
            .collect()
    };
    let servers: Vec<String> = match resolver {
        Some(gw) => vec![gw.to_string()],
        None if !dns.servers.is_empty() => dns.servers.clone(),
        None => lines("nameserver")
            .into_iter()
            .filter(|s| host_network || !(s.starts_with("127.") || s == "::1"))
            .collect(),
    };
    let search = if dns.search.is_empty() {
        lines("search")
    } else {
        dns.search.clone()
    };
    let mut options = if dns.options.is_empty() {
        lines("options")
    } else {
        dns.options.clone()
    };
    if resolver.is_some() && !options.iter().any(|o| o.starts_with("ndots:")) {
        options.insert(0, "ndots:0".into());
    }
    let mut s = String::new();
    for ns in servers {
        s.push_str(&format!("nameserver {ns}\n"));
    }
    if !search.is_empty() && search != ["."] {
        s.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        s.push_str(&format!("options {}\n", options.join(" ")));
    }
    s
}
