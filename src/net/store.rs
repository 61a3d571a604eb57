//! User networks on disk (`<run>/networks/<name>.json`): the bridge, the
//! address pool and which container holds which address. Changes happen
//! under an exclusive lock on `<run>/networks/.lock`, and records are written
//! atomically.
//!
//! Owns network records and their bridges; never starts containers.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ipam::{host_routes, pick_subnet, IpamError, Pool, Subnet};
use super::link::{self, LinkError};

/// Errors of network records.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("network {0} not found")]
    NotFound(String),
    #[error("network with name {0} already exists")]
    Exists(String),
    #[error("network {0} has active endpoints: {1}")]
    InUse(String, String),
    #[error("driver option {0}: {1}")]
    Option(String, String),
    #[error("{0} is a pre-defined network and cannot be removed")]
    Predefined(String),
    #[error("invalid network name {0:?}")]
    BadName(String),
    #[error(transparent)]
    Ipam(#[from] IpamError),
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error("{0}: {1}")]
    Corrupt(PathBuf, String),
    #[error("setting up the network's forwarding rules: {0}")]
    Firewall(#[from] super::ports::PortError),
    #[error(transparent)]
    HostFirewall(#[from] super::firewall::FirewallError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> NetworkError + '_ {
    move |source| NetworkError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub name: String,
    pub id: String,
    pub driver: String,
    pub bridge: String,
    pub internal: bool,
    pub created: String,
    pub pool: Pool,
    /// Container id → its endpoint on this network.
    pub members: BTreeMap<String, Member>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Whether members find each other by name through the network's DNS
    /// responder (every network but the default `bridge`, as in Docker).
    #[serde(default)]
    pub dns: bool,
    /// The DNS responder's pid while the network has members (0: none).
    #[serde(default)]
    pub resolver_pid: i32,
    /// The IPv6 addresses, when the network has IPv6 (`--ipv6`).
    #[serde(default)]
    pub pool6: Option<Pool>,
    /// Driver options (`-o`), as given: the bridge's name and MTU, masquerade,
    /// the default host address for published ports.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

/// Driver options berth understands (Docker's names).
pub const OPT_BRIDGE_NAME: &str = "com.docker.network.bridge.name";
pub const OPT_MTU: &str = "com.docker.network.driver.mtu";
pub const OPT_MASQUERADE: &str = "com.docker.network.bridge.enable_ip_masquerade";
pub const OPT_HOST_BINDING: &str = "com.docker.network.bridge.host_binding_ipv4";

impl Network {
    /// The MTU of the bridge and its veths (`-o com.docker.network.driver.mtu`).
    pub fn mtu(&self) -> Option<u32> {
        self.options.get(OPT_MTU).and_then(|m| m.parse().ok())
    }

    /// Whether traffic leaving the network is masqueraded (default yes).
    pub fn masquerade(&self) -> bool {
        self.options.get(OPT_MASQUERADE).map(String::as_str) != Some("false")
    }

    /// The host address ports are published on when `-p` names none.
    pub fn host_binding(&self) -> Option<IpAddr> {
        self.options
            .get(OPT_HOST_BINDING)
            .and_then(|a| a.parse().ok())
    }
}

/// Checks driver options: known names, sensible values.
fn check_options(options: &BTreeMap<String, String>) -> Result<(), NetworkError> {
    for (k, v) in options {
        let ok = match k.as_str() {
            OPT_BRIDGE_NAME => crate::sys::id::valid_name(v) && v.len() <= 15,
            OPT_MTU => v.parse::<u32>().is_ok_and(|m| (68..=65535).contains(&m)),
            OPT_MASQUERADE => v == "true" || v == "false",
            OPT_HOST_BINDING => v.parse::<IpAddr>().is_ok(),
            _ => {
                return Err(NetworkError::Option(
                    k.clone(),
                    format!("not supported (berth knows {OPT_BRIDGE_NAME}, {OPT_MTU}, {OPT_MASQUERADE}, {OPT_HOST_BINDING})"),
                ))
            }
        };
        if !ok {
            return Err(NetworkError::Option(
                k.clone(),
                format!("invalid value {v:?}"),
            ));
        }
    }
    Ok(())
}

/// A container on a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub address: IpAddr,
    #[serde(default)]
    pub address6: Option<IpAddr>,
    /// Names it answers to on this network: container name, short id,
    /// aliases, the compose service.
    #[serde(default)]
    pub names: Vec<String>,
    /// Resolvers its other queries go to (`--dns`; empty: the network's).
    #[serde(default)]
    pub dns: Vec<String>,
}

/// What a container brings to a network besides an address.
#[derive(Debug, Clone, Default)]
pub struct Endpoint {
    /// A static IPv6 address (`--ip6`).
    pub ip6: Option<IpAddr>,
    pub names: Vec<String>,
    pub dns: Vec<String>,
}

/// The default network's name, as in Docker.
pub const DEFAULT_NETWORK: &str = "bridge";
/// The default network's bridge device.
pub const DEFAULT_BRIDGE: &str = "berth0";

/// What `network create` asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub subnet: Option<Subnet>,
    pub gateway: Option<IpAddr>,
    pub ip_range: Option<Subnet>,
    /// IPv6 beside IPv4: with `subnet6`, else a unique local /64.
    pub ipv6: bool,
    pub subnet6: Option<Subnet>,
    pub gateway6: Option<IpAddr>,
    /// Addresses kept out of allocation, by name (`--aux-address`).
    pub aux_addresses: BTreeMap<String, IpAddr>,
    /// Driver options (`-o`).
    pub options: BTreeMap<String, String>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
}

/// The records under a run directory.
#[derive(Debug, Clone)]
pub struct NetworkStore {
    dir: PathBuf,
}

impl NetworkStore {
    pub fn new(run_dir: &Path) -> Self {
        NetworkStore {
            dir: run_dir.join("networks"),
        }
    }

    /// The records in `dir` itself (`<run>/networks`).
    pub fn from_dir(dir: &Path) -> Self {
        NetworkStore {
            dir: dir.to_path_buf(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// What identifies one version of a network's record: its inode (records
    /// are replaced by rename), modification time and length. Cheap to read
    /// where parsing the record is not.
    pub fn record_stamp(&self, name: &str) -> std::io::Result<(u64, std::time::SystemTime, u64)> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(self.path(name))?;
        Ok((m.ino(), m.modified()?, m.len()))
    }

    /// Holds the lock while `f` runs.
    fn locked<T>(&self, f: impl FnOnce() -> Result<T, NetworkError>) -> Result<T, NetworkError> {
        let lock_path = self.dir.join(".lock");
        let _guard = crate::state::lock_exclusive(&lock_path).map_err(io(&lock_path))?;
        f()
    }

    fn write(&self, n: &Network) -> Result<(), NetworkError> {
        let p = self.path(&n.name);
        let bytes = serde_json::to_vec_pretty(n)
            .map_err(|e| NetworkError::Corrupt(p.clone(), e.to_string()))?;
        crate::state::write_atomic_volatile(&p, &bytes).map_err(io(&p))
    }

    fn read(&self, name: &str) -> Result<Network, NetworkError> {
        let p = self.path(name);
        let bytes = std::fs::read(&p).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => NetworkError::NotFound(name.to_string()),
            _ => NetworkError::Io {
                path: p.clone(),
                source: e,
            },
        })?;
        serde_json::from_slice(&bytes).map_err(|e| NetworkError::Corrupt(p, e.to_string()))
    }

    /// Every network, by name.
    /// Every network (none before the first is made). A directory that
    /// cannot be read is an error, not an empty list; a record that cannot
    /// be read is skipped with a warning naming it.
    pub fn list(&self) -> Result<Vec<Network>, NetworkError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&self.dir)(e)),
        };
        let mut out = Vec::new();
        for e in entries {
            let e = e.map_err(io(&self.dir))?;
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(n) = name.strip_suffix(".json") {
                match self.read(n) {
                    Ok(net) => out.push(net),
                    Err(err) => tracing::warn!("network record {}: {err}", e.path().display()),
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// A network by name or id prefix.
    pub fn get(&self, key: &str) -> Result<Network, NetworkError> {
        if let Ok(n) = self.read(key) {
            return Ok(n);
        }
        let found: Vec<Network> = self
            .list()?
            .into_iter()
            .filter(|n| n.id.starts_with(key))
            .collect();
        match found.as_slice() {
            [one] if !key.is_empty() => Ok(one.clone()),
            _ => Err(NetworkError::NotFound(key.to_string())),
        }
    }

    /// Creates the network and its bridge.
    pub fn create(&self, name: &str, opts: &CreateOptions) -> Result<Network, NetworkError> {
        self.create_then(name, opts, || {})
    }

    /// `create`, calling `recorded` once the network's record is written and
    /// before its bridge and rules come up. The store stays locked until
    /// they are up, so a container joining the network (under the same
    /// lock) never runs before its rules; one being created (which reads the
    /// record only) need not wait for them.
    pub fn create_then(
        &self,
        name: &str,
        opts: &CreateOptions,
        recorded: impl FnOnce(),
    ) -> Result<Network, NetworkError> {
        if !crate::sys::id::valid_name(name) {
            return Err(NetworkError::BadName(name.to_string()));
        }
        self.locked(|| {
            if self.path(name).exists() {
                return Err(NetworkError::Exists(name.to_string()));
            }
            let existing = self.list()?;
            let mut taken: Vec<Subnet> = existing.iter().map(|n| n.pool.subnet).collect();
            let subnet = match opts.subnet {
                Some(s) => {
                    if let Some(t) = taken.iter().find(|t| t.overlaps(&s)) {
                        return Err(IpamError::Overlap(s, *t).into());
                    }
                    s
                }
                None => {
                    taken.extend(host_routes(
                        &std::fs::read_to_string("/proc/thread-self/net/route").unwrap_or_default(),
                    ));
                    pick_subnet(&taken, false)?
                }
            };
            check_options(&opts.options)?;
            let aux = |v6: bool| -> BTreeMap<String, IpAddr> {
                opts.aux_addresses
                    .iter()
                    .filter(|(_, a)| a.is_ipv6() == v6)
                    .map(|(k, a)| (k.clone(), *a))
                    .collect()
            };
            let pool = Pool::new(subnet, opts.gateway, opts.ip_range, aux(false))?;
            let id = crate::sys::id::new_id().map_err(io(Path::new("/dev/urandom")))?;
            let pool6 = match (opts.ipv6 || opts.subnet6.is_some(), opts.subnet6) {
                (false, _) => None,
                (true, Some(s)) => {
                    if let Some(t) = existing
                        .iter()
                        .filter_map(|n| n.pool6.as_ref())
                        .find(|t| t.subnet.overlaps(&s))
                    {
                        return Err(IpamError::Overlap(s, t.subnet).into());
                    }
                    Some(Pool::new(s, opts.gateway6, None, aux(true))?)
                }
                (true, None) => Some(Pool::new(
                    unique_local_subnet(&id),
                    opts.gateway6,
                    None,
                    aux(true),
                )?),
            };
            let bridge = match opts.options.get(OPT_BRIDGE_NAME) {
                Some(b) => {
                    if existing.iter().any(|n| n.bridge == *b) || link::exists(b) {
                        return Err(NetworkError::Option(
                            OPT_BRIDGE_NAME.into(),
                            format!("a link named {b} already exists"),
                        ));
                    }
                    b.clone()
                }
                None => format!("br-{}", &id[..12]),
            };
            let net = Network {
                name: name.to_string(),
                bridge,
                id,
                driver: "bridge".into(),
                internal: opts.internal,
                created: crate::sys::clock::now_rfc3339(),
                pool,
                members: BTreeMap::new(),
                labels: opts.labels.clone(),
                dns: true,
                resolver_pid: 0,
                pool6,
                options: opts.options.clone(),
            };
            // The record first: a process killed while the bridge comes up
            // leaves a record that `down` or `network rm` tears down with
            // its bridge, never a bridge and rules no record names.
            self.write(&net)?;
            recorded();
            if let Err(e) = bring_up(&net) {
                tear_down(&net);
                let p = self.path(&net.name);
                if let Err(rm) = std::fs::remove_file(&p) {
                    tracing::warn!("{}: {rm}", p.display());
                }
                return Err(e);
            }
            Ok(net)
        })
    }

    /// The default `bridge` network: made on first use with Docker's
    /// 172.17.0.0/16 (or the next free pool when the host routes it), on the
    /// `berth0` device, without name resolution (as Docker's).
    pub fn ensure_default(&self) -> Result<Network, NetworkError> {
        if let Ok(n) = self.read(DEFAULT_NETWORK) {
            return Ok(n);
        }
        self.locked(|| {
            if let Ok(n) = self.read(DEFAULT_NETWORK) {
                return Ok(n);
            }
            let mut taken: Vec<Subnet> = self.list()?.iter().map(|n| n.pool.subnet).collect();
            taken.extend(host_routes(
                &std::fs::read_to_string("/proc/thread-self/net/route").unwrap_or_default(),
            ));
            let subnet = pick_subnet(&taken, true)?;
            let net = Network {
                name: DEFAULT_NETWORK.to_string(),
                id: crate::sys::id::new_id().map_err(io(Path::new("/dev/urandom")))?,
                driver: "bridge".into(),
                bridge: DEFAULT_BRIDGE.into(),
                internal: false,
                created: crate::sys::clock::now_rfc3339(),
                pool: Pool::new(subnet, None, None, BTreeMap::new())?,
                members: BTreeMap::new(),
                labels: BTreeMap::new(),
                dns: false,
                resolver_pid: 0,
                pool6: None,
                options: BTreeMap::new(),
            };
            self.write(&net)?;
            Ok(net)
        })
    }

    /// Removes a network without members, and its bridge.
    pub fn remove(&self, key: &str) -> Result<Network, NetworkError> {
        let net = self.get(key)?;
        if net.name == DEFAULT_NETWORK {
            return Err(NetworkError::Predefined(net.name));
        }
        self.locked(|| {
            let net = self.read(&net.name)?;
            if !net.members.is_empty() {
                let ids: Vec<String> = net
                    .members
                    .keys()
                    .map(|k| k[..12.min(k.len())].to_string())
                    .collect();
                return Err(NetworkError::InUse(net.name.clone(), ids.join(", ")));
            }
            // The rules go now; the bridge leaves service now (down, renamed)
            // and is deleted in the background (`reap_main`), so `network
            // rm` and `compose down` do not wait out the kernel's deletion.
            super::dns::stop(net.resolver_pid, &net.name);
            remove_rules(&net);
            if link::exists(&net.bridge) {
                let to = retired_name(&net.id);
                let alias = format!("{RETIRED_ALIAS}{}", net.bridge);
                if let Err(e) = link::retire(&net.bridge, &to, &alias) {
                    tracing::debug!("retiring {}: {e}; deleting it now", net.bridge);
                    link::delete(&net.bridge)?;
                }
            }
            let p = self.path(&net.name);
            std::fs::remove_file(&p).map_err(io(&p))?;
            // Also when this bridge was gone already: a removal killed after
            // retiring it, before the record went, left it to this reaper.
            schedule_reap(&self.dir);
            Ok(net)
        })
    }

    /// Gives a container an address on a network (its static one, if
    /// asked), bringing the bridge up and starting the DNS responder when it
    /// is the first member.
    pub fn attach(
        &self,
        key: &str,
        container: &str,
        wanted: Option<IpAddr>,
        endpoint: &Endpoint,
    ) -> Result<(Network, IpAddr), NetworkError> {
        let name = self.get(key)?.name;
        self.locked(|| {
            let mut net = self.read(&name)?;
            if !link::exists(&net.bridge) {
                bring_up(&net)?;
            }
            let (ip, ip6) = match net.members.get(container) {
                Some(m) => (m.address, m.address6),
                None => {
                    let ip = net.pool.allocate(wanted)?;
                    let ip6 = match net.pool6.as_mut() {
                        Some(p6) => match p6.allocate(endpoint.ip6) {
                            Ok(a) => Some(a),
                            Err(e) => {
                                net.pool.release(ip);
                                return Err(e.into());
                            }
                        },
                        None => None,
                    };
                    (ip, ip6)
                }
            };
            net.members.insert(
                container.to_string(),
                Member {
                    address: ip,
                    address6: ip6,
                    names: endpoint.names.clone(),
                    dns: endpoint.dns.clone(),
                },
            );
            self.write(&net)?;
            if net.dns && !super::dns::alive(net.resolver_pid, &net.name) {
                match super::dns::spawn(&self.dir, &net.name) {
                    Ok(pid) => net.resolver_pid = pid,
                    Err(e) => {
                        tracing::warn!("network {}: names will not resolve: {e}", net.name)
                    }
                }
                self.write(&net)?;
            }
            Ok((net, ip))
        })
    }

    /// Releases a container's address (nothing happens when it has none).
    /// When the last member leaves, a detached helper takes the bridge, its
    /// rules and the DNS responder down after `TEARDOWN_GRACE`, unless a
    /// member came back by then (deleting a bridge costs the kernel some
    /// 50 ms, which no `stop` or `run --rm` should wait for, and stacks
    /// that go down and up again keep their bridge). The network record
    /// stays; its bridge comes back with the next member.
    pub fn detach(&self, key: &str, container: &str) -> Result<(), NetworkError> {
        let Ok(net) = self.get(key) else {
            return Ok(());
        };
        self.locked(|| {
            let mut net = self.read(&net.name)?;
            if let Some(m) = net.members.remove(container) {
                net.pool.release(m.address);
                if let (Some(p6), Some(a6)) = (net.pool6.as_mut(), m.address6) {
                    p6.release(a6);
                }
                self.write(&net)?;
                if net.members.is_empty() {
                    schedule_teardown(&self.dir, &net.name);
                }
            }
            Ok(())
        })
    }
}

/// A unique local /64 (RFC 4193) whose global id comes from the network id.
fn unique_local_subnet(id: &str) -> Subnet {
    let hex = |i: usize| u16::from_str_radix(id.get(i..i + 4).unwrap_or("0"), 16).unwrap_or(0);
    let addr = std::net::Ipv6Addr::new(0xfd00 | (hex(0) >> 8), hex(2), hex(6), hex(10), 0, 0, 0, 0);
    Subnet {
        addr: IpAddr::V6(addr),
        prefix: 64,
    }
}

/// The bridge with its gateway addresses and its isolation rules.
fn bring_up(net: &Network) -> Result<(), NetworkError> {
    link::create_bridge(
        &net.bridge,
        net.pool.gateway,
        net.pool.subnet.prefix,
        net.mtu(),
    )?;
    if let Some(p6) = &net.pool6 {
        if let Err(e) = link::add_address(&net.bridge, p6.gateway, p6.subnet.prefix) {
            let _ = link::delete(&net.bridge);
            return Err(e.into());
        }
    }
    let subnet6 = net.pool6.as_ref().map(|p| p.subnet.to_string());
    let listing = match super::ports::isolate(
        &net.bridge,
        super::ports::Outside {
            internal: net.internal,
            masquerade: net.masquerade(),
        },
        &net.pool.subnet.to_string(),
        subnet6.as_deref(),
    ) {
        Ok(l) => l,
        Err(e) => {
            let _ = link::delete(&net.bridge);
            return Err(e.into());
        }
    };
    let bridge = super::firewall::Bridge {
        name: &net.bridge,
        internal: net.internal,
        ipv6: net.pool6.is_some(),
    };
    if let Err(e) = super::firewall::open(&bridge, &listing) {
        tear_down(net);
        return Err(e.into());
    }
    Ok(())
}

/// argv[1] that selects the deferred teardown of an empty network.
pub const TEARDOWN_ARG: &str = "__berth_net_down";

/// How long an empty network keeps its bridge.
pub const TEARDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

fn schedule_teardown(dir: &Path, name: &str) {
    let spawned = crate::sys::helper::executable().and_then(|exe| {
        let mut cmd = std::process::Command::new(exe);
        cmd.arg(TEARDOWN_ARG).arg(dir).arg(name);
        crate::sys::helper::spawn_detached(&mut cmd, &dir.join(format!("{name}.teardown.log")))
    });
    if let Err(e) = spawned {
        tracing::warn!("network {name}: its bridge stays until the next `network rm`: {e}");
    }
}

/// argv[1] that selects the reaper of removed networks' (retired) bridges.
pub const REAP_ARG: &str = "__berth_net_reap";

/// Names of retired bridges start with this (and go on with the network id).
pub const RETIRED_PREFIX: &str = "bgone-";
/// A retired bridge's alias: this, then the name it had.
const RETIRED_ALIAS: &str = "berth-retired:";

fn retired_name(network_id: &str) -> String {
    // IFNAMSIZ: 15 characters at most.
    format!(
        "{RETIRED_PREFIX}{}",
        network_id.get(..9).unwrap_or(network_id)
    )
}

/// Starts the reaper of retired bridges; when it cannot start, the
/// reaping is done here and now.
fn schedule_reap(dir: &Path) {
    let spawned = crate::sys::helper::executable().and_then(|exe| {
        let mut cmd = std::process::Command::new(exe);
        cmd.arg(REAP_ARG);
        crate::sys::helper::spawn_detached(&mut cmd, &dir.join("reap.log"))
    });
    if let Err(e) = spawned {
        tracing::debug!("reaping retired bridges here: {e}");
        reap();
    }
}

/// The reaper's entry point (no arguments).
pub fn reap_main(_args: &[String]) -> i32 {
    drop(crate::sys::helper::enter());
    reap();
    0
}

/// Deletes every retired bridge: the one just retired and any a reaper
/// killed earlier left behind (each is down and has no rules, so until
/// then it is only a name in `ip link`).
fn reap() {
    let retired = match link::with_prefix_and_alias(RETIRED_PREFIX) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("listing retired bridges: {e}");
            return;
        }
    };
    for (link, alias) in &retired {
        match link::delete(link) {
            Ok(()) => tracing::info!("deleted retired bridge {link} ({alias})"),
            // Another reaper got to it first.
            Err(e) if !link::exists(link) => tracing::debug!("{link}: {e}"),
            Err(e) => tracing::warn!("deleting retired bridge {link}: {e}"),
        }
    }
}

/// The deferred teardown's entry point: `args` is `[networks_dir, network]`.
pub fn teardown_main(args: &[String]) -> i32 {
    // Closing the readiness pipe at once lets the caller go on.
    drop(crate::sys::helper::enter());
    let (Some(dir), Some(name)) = (args.first(), args.get(1)) else {
        return 2;
    };
    std::thread::sleep(TEARDOWN_GRACE);
    let store = NetworkStore::from_dir(Path::new(dir));
    let done = store.locked(|| {
        let mut net = store.read(name)?;
        if net.members.is_empty() && (link::exists(&net.bridge) || net.resolver_pid != 0) {
            tear_down(&net);
            net.resolver_pid = 0;
            store.write(&net)?;
        }
        Ok(())
    });
    match done {
        Ok(()) | Err(NetworkError::NotFound(_)) => 0,
        Err(_) => 1,
    }
}

/// Stops the responder and removes the bridge and its rules, berth's own
/// and those in the host's firewall (best effort: each may already be
/// gone; what cannot be removed is logged).
fn tear_down(net: &Network) {
    super::dns::stop(net.resolver_pid, &net.name);
    remove_rules(net);
    if link::exists(&net.bridge) {
        if let Err(e) = link::delete(&net.bridge) {
            tracing::warn!("removing bridge {}: {e}", net.bridge);
        }
    }
}

/// Removes the bridge's rules, berth's own and those in the host's
/// firewall (best effort, logged).
fn remove_rules(net: &Network) {
    match super::nft::list_ruleset() {
        Ok(listing) => {
            if let Err(e) = super::ports::unpublish_in(&listing, &net.bridge) {
                tracing::warn!("removing the rules of {}: {e}", net.name);
            }
            if let Err(e) = super::firewall::close(&net.bridge, &listing) {
                tracing::warn!("network {}: {e}", net.name);
            }
        }
        Err(e) => tracing::warn!("removing the rules of {}: {e}", net.name),
    }
}
