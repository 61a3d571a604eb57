//! From an intent to the runtime's `CreateRequest`: the image's defaults
//! under the intent's values, volumes made, bind sources checked, networks
//! looked up (the default one made on first use), host ports reserved
//! against every other container's.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::base::{base, command_of};
use super::{ContainerIntent, HostAddress, Mount, Networking};
use crate::net::store::{Network, NetworkStore, DEFAULT_NETWORK};
use crate::runtime::spec::{ContainerConfig, MountKind, MountRequest, NetworkMode, SpecRequest};
use crate::runtime::store::{Status, Store};
use crate::runtime::{self, process::DEFAULT_PATH, CreateRequest, NamedVolumeMount};

/// Why an intent cannot be made into a container.
#[derive(Debug, thiserror::Error)]
pub enum IntentError {
    #[error(transparent)]
    Runtime(#[from] runtime::RuntimeError),
    #[error("give an image (berth run IMAGE [COMMAND...]) or a root filesystem (--rootfs DIR)")]
    NoImage,
    #[error(
        "no command specified: give one after the image or --rootfs DIR (e.g. sh -c 'echo hi')"
    )]
    NoCommand,
    #[error("rootfs {}: {source}", path.display())]
    Rootfs {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", pull_failed(image, *present))]
    Pull {
        image: String,
        present: bool,
        #[source]
        source: crate::image::store::ImageError,
    },
    #[error(
        "unable to find image {0:?} locally (berth pull, berth load or berth import make one)"
    )]
    ImageNotFound(String),
    #[error("image {image}: {source}")]
    Image {
        image: String,
        #[source]
        source: crate::image::store::ImageError,
    },
    #[error("network {name}: {source}")]
    Network {
        name: String,
        #[source]
        source: crate::net::store::NetworkError,
    },
    #[error("volume {name}: {source}")]
    Volume {
        name: String,
        #[source]
        source: runtime::volumes::VolumeError,
    },
    #[error("volume {volume} has no directory {subpath} (its subpath)")]
    NoSubpath { volume: String, subpath: String },
    #[error("bind mount source {}: {source}", path.display())]
    BindSource {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Ports(#[from] crate::net::ports::PortError),
    #[error("reading the containers' published ports: {0}")]
    Containers(#[source] runtime::store::StoreError),
    /// Options that cannot go together, or that the chosen network mode
    /// does not allow (the text says which and what to do).
    #[error("{0}")]
    Conflict(String),
}

fn pull_failed(image: &str, present: bool) -> String {
    if present {
        format!("pulling {image}")
    } else {
        format!("unable to find image {image:?} locally, and pulling it failed (pull it where its registry can be reached, or make it here with berth build, load or import)")
    }
}

fn conflict(text: &str) -> IntentError {
    IntentError::Conflict(text.to_string())
}

/// The network mode and, on bridge networks, the first network's record
/// (read once here) and the other networks to join.
struct Nets {
    mode: NetworkMode,
    first: Option<Network>,
    extra: Vec<runtime::ExtraNetwork>,
}

fn networks(store: &Store, intent: &ContainerIntent) -> Result<Nets, IntentError> {
    let nets = NetworkStore::new(&store.run);
    let lookup = |name: &str| -> Result<Network, IntentError> {
        let found = if name == DEFAULT_NETWORK || name == "default" {
            nets.ensure_default()
        } else {
            nets.get(name)
        };
        found.map_err(|source| IntentError::Network {
            name: name.to_string(),
            source,
        })
    };
    let list = match &intent.networking {
        Networking::None => return Ok(bare(NetworkMode::None)),
        Networking::Host => return Ok(bare(NetworkMode::Host)),
        Networking::Container(c) if c.is_empty() => {
            return Err(conflict(
                "network container:: give a container after container:",
            ))
        }
        Networking::Container(c) => return Ok(bare(NetworkMode::Container(c.clone()))),
        Networking::Networks(list) => list,
    };
    let Some((first, rest)) = list.split_first() else {
        return Err(conflict(
            "a container on bridge networks needs at least one",
        ));
    };
    let net = lookup(&first.network)?;
    let user_network = net.name != DEFAULT_NETWORK;
    if !first.aliases.is_empty() && !user_network {
        return Err(conflict("network-scoped aliases are supported only for containers on user-defined networks (create one with `berth network create NAME`)"));
    }
    if (first.ipv4.is_some() || first.ipv6.is_some()) && !user_network {
        return Err(conflict("--ip is supported only on user-defined networks (create one with `berth network create --subnet CIDR NAME`)"));
    }
    let mut extra = Vec::new();
    for a in rest {
        let n = lookup(&a.network)?;
        if a.ipv6.is_some() {
            return Err(IntentError::Conflict(format!(
                "network {}: a static IPv6 address is supported on a container's first network only",
                n.name
            )));
        }
        extra.push(runtime::ExtraNetwork {
            name: n.name,
            aliases: a.aliases.clone(),
            ip: a.ipv4,
        });
    }
    Ok(Nets {
        mode: NetworkMode::Bridge {
            network: net.name.clone(),
            ip: first.ipv4,
        },
        first: Some(net),
        extra,
    })
}

fn bare(mode: NetworkMode) -> Nets {
    Nets {
        mode,
        first: None,
        extra: Vec::new(),
    }
}

/// Mounts as the runtime takes them: binds and tmpfs, named volumes (made
/// when missing), and the targets of new anonymous volumes.
struct Mounts {
    mounts: Vec<MountRequest>,
    named: Vec<NamedVolumeMount>,
    anonymous: Vec<String>,
}

fn mounts(store: &Store, intent: &ContainerIntent) -> Result<Mounts, IntentError> {
    let mut out = Mounts {
        mounts: Vec::new(),
        named: Vec::new(),
        anonymous: Vec::new(),
    };
    for m in &intent.mounts {
        match m {
            Mount::Bind {
                source,
                target,
                read_only,
                create_source,
            } => {
                if *create_source && !source.exists() {
                    std::fs::create_dir_all(source).map_err(|e| IntentError::BindSource {
                        path: source.clone(),
                        source: e,
                    })?;
                }
                out.mounts.push(MountRequest {
                    kind: MountKind::Bind,
                    source: Some(source.clone()),
                    target: target.clone(),
                    read_only: *read_only,
                    options: Vec::new(),
                });
            }
            Mount::Tmpfs { target, options } => out.mounts.push(MountRequest {
                kind: MountKind::Tmpfs,
                source: None,
                target: target.clone(),
                read_only: false,
                options: options.clone(),
            }),
            Mount::Volume {
                name,
                target,
                read_only,
                nocopy,
                subpath,
            } => {
                // As Docker: a volume named and missing is made.
                runtime::volumes::create(store, name, &BTreeMap::new()).map_err(|source| {
                    IntentError::Volume {
                        name: name.clone(),
                        source,
                    }
                })?;
                let mut data = runtime::volumes::data_path(store, name);
                if let Some(sub) = subpath {
                    data.push(sub);
                    if !data.is_dir() {
                        return Err(IntentError::NoSubpath {
                            volume: name.clone(),
                            subpath: sub.clone(),
                        });
                    }
                }
                out.named.push(NamedVolumeMount {
                    data,
                    target: target.clone(),
                    read_only: *read_only,
                    // A subpath is mounted as it is, never filled from the image.
                    nocopy: *nocopy || subpath.is_some(),
                });
            }
            Mount::Anonymous { target } => out.anonymous.push(target.clone()),
        }
    }
    Ok(out)
}

/// The ports containers that are not exited publish.
fn published_by_others(store: &Store) -> Result<Vec<crate::net::ports::Published>, IntentError> {
    let mut taken = Vec::new();
    for id in store.ids().map_err(IntentError::Containers)? {
        // A container removed meanwhile, or one half made, holds nothing.
        let Ok(st) = runtime::effective_state(store, &id) else {
            continue;
        };
        if st.status == Status::Exited {
            continue;
        }
        if let Ok(other) =
            store.read_json::<ContainerConfig>(&store.container_dir(&id).join("berth.json"))
        {
            taken.extend(other.ports);
        }
    }
    Ok(taken)
}

/// Turns an intent into the runtime's request. `progress` hears about
/// pulls (`Image NAME  Pulling` … `Pulled`).
pub fn realize(
    store: &Store,
    intent: &ContainerIntent,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<CreateRequest, IntentError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(runtime::RuntimeError::NeedsRoot("create containers").into());
    }
    let base = base(store, &intent.source, progress)?;
    let command = command_of(&intent.entrypoint, &intent.command, &base);
    if command.is_empty() {
        return Err(IntentError::NoCommand);
    }
    let nets = networks(store, intent)?;
    for d in &intent.dns.servers {
        if crate::net::dns::parse_upstream(d).is_none() {
            return Err(IntentError::Conflict(format!(
                "invalid --dns {d:?}: give an IP address"
            )));
        }
    }
    let mounts = mounts(store, intent)?;
    let mut env: Vec<String> = vec![format!("PATH={DEFAULT_PATH}")];
    let mut set = |key: &str, kv: String| {
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv);
    };
    for kv in &base.env {
        set(kv.split('=').next().unwrap_or(""), kv.clone());
    }
    for (k, v) in &intent.env {
        set(k, format!("{k}={v}"));
    }
    let mut labels = base.labels.clone();
    labels.extend(intent.labels.clone());
    let mut extra_hosts = Vec::new();
    for (host, address) in &intent.extra_hosts {
        let ip = match address {
            HostAddress::Ip(ip) => ip.to_string(),
            // The host as the container sees it: its network's gateway.
            HostAddress::Gateway => match (&nets.mode, &nets.first) {
                (_, Some(net)) => net.pool.gateway.to_string(),
                (NetworkMode::Host, _) => "127.0.0.1".to_string(),
                _ => {
                    return Err(IntentError::Conflict(format!(
                        "--add-host {host}:host-gateway needs a bridge network (or host)"
                    )))
                }
            },
        };
        extra_hosts.push((host.clone(), ip));
    }
    let mut ports = Vec::new();
    if !intent.ports.is_empty() {
        if !matches!(nets.mode, NetworkMode::Bridge { .. }) {
            return Err(conflict("publishing ports needs a bridge network: run with --network bridge (the default) or a network made with `berth network create NAME`"));
        }
        let taken = published_by_others(store)?;
        let default_ip = nets.first.as_ref().and_then(|n| n.host_binding());
        ports = crate::net::ports::reserve(&intent.ports, &taken, default_ip)?;
    }
    if intent.auto_remove && intent.restart != runtime::spec::RestartPolicy::No {
        return Err(conflict("conflicting options: --restart and --rm"));
    }
    let first = match &intent.networking {
        Networking::Networks(list) => list.first(),
        _ => None,
    };
    let spec = SpecRequest {
        rootfs: PathBuf::new(),
        args: command,
        env,
        cwd: intent
            .workdir
            .clone()
            .or(base.workdir.clone())
            .unwrap_or_else(|| "/".into()),
        uid: 0,
        gid: 0,
        additional_gids: Vec::new(),
        hostname: intent.hostname.clone().unwrap_or_default(),
        domainname: intent.domainname.clone().unwrap_or_default(),
        cap_add: intent.security.cap_add.clone(),
        cap_drop: intent.security.cap_drop.clone(),
        privileged: intent.security.privileged,
        read_only: intent.security.read_only,
        tty: intent.tty,
        limits: intent.limits.clone(),
        mounts: mounts.mounts,
        sysctls: intent.sysctls.clone(),
        ulimits: intent
            .ulimits
            .iter()
            .map(|u| (u.name.clone(), u.soft, u.hard))
            .collect(),
        network: nets.mode,
    };
    let over = intent
        .health
        .as_ref()
        .filter(|h| !h.is_empty())
        .map(|h| h.to_docker());
    Ok(CreateRequest {
        name: intent.name.clone(),
        rootfs: base.rootfs,
        image: base.image,
        image_id: base.image_id,
        user: intent.user.clone().or(base.user),
        spec,
        init: intent.init,
        restart: intent.restart,
        auto_remove: intent.auto_remove,
        stop_signal: intent
            .stop_signal
            .clone()
            .or(base.stop_signal)
            .unwrap_or_else(|| "SIGTERM".into()),
        stop_timeout: intent.stop_timeout,
        interactive: intent.interactive,
        labels,
        extra_hosts,
        ports,
        exposed_ports: base.exposed_ports,
        healthcheck: runtime::health::merge(base.healthcheck.as_ref(), over.as_ref()),
        image_volumes: base.volumes.into_iter().chain(mounts.anonymous).collect(),
        aliases: first.map(|a| a.aliases.clone()).unwrap_or_default(),
        ip6: first.and_then(|a| a.ipv6),
        named_volumes: mounts.named,
        inherited_volumes: intent.inherited_volumes.clone(),
        extra_networks: nets.extra,
        dns: intent.dns.clone(),
    })
}

/// Realizes the intent and creates the container (not started); its id.
pub fn create(
    store: &Store,
    intent: &ContainerIntent,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<String, IntentError> {
    let req = realize(store, intent, progress)?;
    Ok(runtime::create(store, req)?)
}
