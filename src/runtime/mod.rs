//! berth's own container runtime: namespaces, overlayfs roots, pivot_root,
//! cgroups v1/v2, capabilities, seccomp, a tiny init and one shim per
//! container — no daemon, no runc.
//!
//! ```text
//! berth run ──create──▶ config.json + berth.json + state.json (store.rs)
//!           ──start───▶ berth __berth_shim ID (shim.rs, setsid unless foreground)
//!                          └─clone(NEWPID|NEWNS|NEWUTS|NEWIPC[|NEWNET])─▶ child (process.rs)
//!                               rootfs.rs → security.rs → exec berth-init (read-only bind) → command
//! ```
//!
//! The only place (with src/net/) that touches namespaces, mounts and
//! cgroups, and the only place with `unsafe`. Namespace work happens in the
//! single-threaded shim and its child, never in the CLI.

pub mod beneath;
pub mod cgroups;
pub mod copy;
pub mod events;
pub mod exec;
pub mod health;
pub mod init;
pub mod logs;
pub mod process;
pub mod reap;
pub mod relay;
pub mod rootfs;
pub mod security;
pub mod shim;
pub mod spec;
pub mod store;
pub mod terminal;
pub mod volumes;

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use spec::{build_spec, ContainerConfig, RootfsSource, SpecRequest};
use store::{State, Status, Store, StoreError};

/// Errors of container operations, as the CLI reports them.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Spec(#[from] spec::SpecBuildError),
    #[error("{0}")]
    Invalid(String),
    #[error("starting the shim: {0}")]
    Shim(std::io::Error),
    /// The container could not start: the exit code Docker would give and why.
    #[error("{message}")]
    Start { code: i32, message: String },
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("berth needs root to {0} (namespaces, cgroups and mounts need it): run it as root, for example with sudo")]
    NeedsRoot(&'static str),
    #[error("container {0} is running: stop it first or use --force")]
    Running(String),
    #[error("signal {0}: {1}")]
    Signal(String, nix::Error),
}

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
        };
        store.write_json(&dir.join("config.json"), &oci)?;
        store.write_json(&dir.join("berth.json"), &config)?;
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
        write_etc_files(store, &id, &etc)?;
        store.write_state(&id, &State::created())?;
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

fn write_etc_files(store: &Store, id: &str, etc: &EtcFiles) -> Result<(), RuntimeError> {
    let dir = store.container_dir(id);
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
    let files = [
        ("hosts", hosts),
        ("hostname", format!("{hostname}\n")),
        ("resolv.conf", etc.resolv_conf.to_string()),
    ];
    for (name, text) in files {
        let p = dir.join(name);
        crate::state::write_atomic(&p, text.as_bytes())
            .map_err(|source| StoreError::Io { path: p, source })?;
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

/// Starts a created or exited container through a new shim. In the
/// foreground the shim shares this terminal and this call returns the
/// container's exit code once it ends; in the background it returns once the
/// container runs (`Ok(None)`).
pub fn start(store: &Store, id: &str, foreground: bool) -> Result<Option<i32>, RuntimeError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(RuntimeError::NeedsRoot("start containers"));
    }
    let st = effective_state(store, id)?;
    if !st.can_start() {
        return Err(RuntimeError::Invalid(format!(
            "container {id} is already {}",
            st.status.as_str()
        )));
    }
    let _ = std::fs::remove_file(store.run_dir(id).join("stop"));
    let exe = std::env::current_exe().map_err(RuntimeError::Shim)?;
    let mut cmd = Command::new(exe);
    cmd.arg(shim::SHIM_ARG)
        .arg(id)
        .arg(if foreground { "fg" } else { "bg" })
        .env("BERTH_ROOT", &store.root)
        .env("BERTH_RUN", &store.run);
    if foreground {
        ignore_interrupts();
        let status = cmd.status().map_err(RuntimeError::Shim)?;
        return Ok(Some(status.code().unwrap_or(125)));
    }
    let line = crate::sys::helper::spawn_detached(&mut cmd, &shim_log(store, id))
        .map_err(RuntimeError::Shim)?;
    let line = line.as_str();
    if line.starts_with("ok") {
        return Ok(None);
    }
    let rest = line.strip_prefix("err ").unwrap_or(line);
    let (code, message) = rest.split_once(' ').unwrap_or(("125", rest));
    Err(RuntimeError::Start {
        code: code.parse().unwrap_or(125),
        message: if message.is_empty() {
            format!(
                "the shim exited before the container started (its log: {})",
                shim_log(store, id).display()
            )
        } else {
            message.into()
        },
    })
}

/// Where container `id`'s shim (and its port proxy) log.
pub fn shim_log(store: &Store, id: &str) -> PathBuf {
    store.run_dir(id).join("shim.log")
}

/// The CLI waits for a foreground shim; Ctrl-C goes to the container, not here.
pub(crate) fn ignore_interrupts() {
    use nix::sys::signal::{signal, SigHandler};
    for s in [Signal::SIGINT, Signal::SIGQUIT] {
        // SAFETY: installing SIG_IGN runs no code in signal context.
        let _ = unsafe { signal(s, SigHandler::SigIgn) };
    }
}

static INTERRUPTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

extern "C" fn count_interrupt(_: libc::c_int) {
    INTERRUPTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

/// Counts SIGINT and SIGTERM instead of dying of them (an attached
/// `compose up` stops its containers gracefully on the first, kills on the
/// second). Returns the counter.
pub fn count_interrupts() -> &'static std::sync::atomic::AtomicUsize {
    use nix::sys::signal::{signal, SigHandler};
    for s in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only increments an atomic, which is
        // async-signal-safe.
        let _ = unsafe { signal(s, SigHandler::Handler(count_interrupt)) };
    }
    &INTERRUPTS
}

/// The recorded state, derived from the facts behind it: a container whose
/// shim is gone (killed, a reboot) is exited, whatever its record says, and
/// what it held is released (reap.rs); its recorded health is attached.
pub fn effective_state(store: &Store, id: &str) -> Result<State, RuntimeError> {
    let mut st = store.read_state(id)?;
    if matches!(
        st.status,
        Status::Running | Status::Paused | Status::Restarting
    ) && !reap::alive(st.shim_pid)
    {
        st = reap::settle(store, id, st);
    }
    st.health = health::read(store, id);
    Ok(st)
}

/// Parses a signal name or number (`TERM`, `SIGKILL`, `9`).
pub fn parse_signal(s: &str) -> Result<Signal, RuntimeError> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n)
            .map_err(|_| RuntimeError::Invalid(format!("invalid signal {s}")));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<Signal>()
        .map_err(|_| RuntimeError::Invalid(format!("invalid signal {s}")))
}

/// Sends a signal to the container's PID 1.
pub fn kill_container(store: &Store, id: &str, signal: Signal) -> Result<(), RuntimeError> {
    let st = effective_state(store, id)?;
    if !st.can_kill() {
        return Err(RuntimeError::NotRunning(id.to_string()));
    }
    mark_stop(store, id);
    kill(Pid::from_raw(st.pid), signal).map_err(|e| RuntimeError::Signal(signal.to_string(), e))?;
    events::record(
        store,
        id,
        "kill",
        &[("signal", (signal as i32).to_string())],
    );
    Ok(())
}

fn mark_stop(store: &Store, id: &str) {
    let _ = std::fs::create_dir_all(store.run_dir(id));
    let _ = std::fs::write(store.run_dir(id).join("stop"), b"");
}

/// Waits until the container is no longer running, up to `timeout`.
pub fn wait_exit(
    store: &Store,
    id: &str,
    timeout: Option<Duration>,
) -> Result<Option<State>, RuntimeError> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(2);
    loop {
        let st = effective_state(store, id)?;
        if matches!(st.status, Status::Exited | Status::Created) {
            return Ok(Some(st));
        }
        if timeout.is_some_and(|t| start.elapsed() >= t) {
            return Ok(None);
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(50));
    }
}

/// Stops a container: its stop signal, then SIGKILL after `timeout` seconds.
pub fn stop(store: &Store, id: &str, timeout: Option<u64>) -> Result<(), RuntimeError> {
    let st = effective_state(store, id)?;
    if st.status == Status::Restarting && st.pid == 0 {
        // Between two runs: the shim wakes from its back-off on the mark and
        // records the exit. One that was already starting the process again
        // sees the mark too late: that process is stopped as any other.
        mark_stop(store, id);
        if wait_exit(store, id, Some(Duration::from_secs(2)))?.is_some() {
            return Ok(());
        }
        if effective_state(store, id)?.can_kill() {
            return stop(store, id, timeout);
        }
        return Ok(());
    }
    if !st.can_kill() {
        mark_stop(store, id);
        return Ok(());
    }
    let config: ContainerConfig = store.read_json(&store.container_dir(id).join("berth.json"))?;
    let sig = parse_signal(&config.stop_signal).unwrap_or(Signal::SIGTERM);
    let timeout = Duration::from_secs(timeout.unwrap_or(config.stop_timeout));
    mark_stop(store, id);
    if st.status == Status::Paused {
        let _ = pause(store, id, false);
    }
    let _ = kill(Pid::from_raw(st.pid), sig);
    if wait_exit(store, id, Some(timeout))?.is_some() {
        events::record_for(store, &config, "stop", &[]);
        return Ok(());
    }
    let st = effective_state(store, id)?;
    if st.can_kill() {
        let _ = kill(Pid::from_raw(st.pid), Signal::SIGKILL);
        events::record_for(store, &config, "kill", &[("signal", "9".into())]);
    }
    wait_exit(store, id, Some(Duration::from_secs(10)))?;
    events::record_for(store, &config, "stop", &[]);
    Ok(())
}

/// Freezes or thaws a running container's cgroup.
pub fn pause(store: &Store, id: &str, frozen: bool) -> Result<(), RuntimeError> {
    let st = effective_state(store, id)?;
    let expected = if frozen {
        Status::Running
    } else {
        Status::Paused
    };
    if st.status != expected {
        return Err(RuntimeError::Invalid(format!(
            "container {id} is {}",
            st.status.as_str()
        )));
    }
    let cfg: oci_spec::runtime::Spec =
        store.read_json(&store.container_dir(id).join("config.json"))?;
    let cg = cgroups::for_container(id, &shim::limits_of(&cfg));
    cg.freeze(frozen)
        .map_err(|e| RuntimeError::Invalid(e.to_string()))?;
    let mut st = store.read_state(id)?;
    st.status = if frozen {
        Status::Paused
    } else {
        Status::Running
    };
    store.write_state(id, &st)?;
    events::record(store, id, if frozen { "pause" } else { "unpause" }, &[]);
    Ok(())
}

fn remove_volumes(volumes: &[spec::AnonymousVolume]) {
    for v in volumes.iter().filter(|v| !v.named) {
        if let Some(dir) = v.data.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Takes container `id`'s anonymous volumes away from it, so removing it
/// keeps their data, and returns them for the container that replaces it.
pub fn take_anonymous_volumes(
    store: &Store,
    id: &str,
) -> Result<Vec<spec::AnonymousVolume>, RuntimeError> {
    let path = store.container_dir(id).join("berth.json");
    let mut cfg: ContainerConfig = store.read_json(&path)?;
    let (taken, kept): (Vec<_>, Vec<_>) = cfg.volumes.drain(..).partition(|v| !v.named);
    cfg.volumes = kept;
    if !taken.is_empty() {
        store.write_json(&path, &cfg)?;
    }
    Ok(taken)
}

/// Removes a container; a running one only with `force` (it is killed first).
pub fn remove(store: &Store, id: &str, force: bool) -> Result<(), RuntimeError> {
    let st = effective_state(store, id)?;
    if !st.can_delete() {
        if !force {
            return Err(RuntimeError::Running(id.to_string()));
        }
        mark_stop(store, id);
        let _ = kill(Pid::from_raw(st.pid), Signal::SIGKILL);
        wait_exit(store, id, Some(Duration::from_secs(10)))?;
    }
    if let Ok(cfg) = store.read_json::<ContainerConfig>(&store.container_dir(id).join("berth.json"))
    {
        remove_volumes(&cfg.volumes);
    }
    // Recorded first: the record's attributes come from the container's files.
    events::record(store, id, "destroy", &[]);
    store.remove(id)?;
    Ok(())
}

/// Runs `f` with a short path to `dir/name`: unix socket paths are limited to
/// 108 bytes, so the directory is reached through /proc/self/fd.
pub fn with_short_path<T>(
    dir: &Path,
    name: &str,
    f: impl FnOnce(&Path) -> std::io::Result<T>,
) -> std::io::Result<T> {
    let handle = std::fs::File::open(dir)?;
    let short = PathBuf::from(format!("/proc/self/fd/{}/{name}", handle.as_raw_fd()));
    let r = f(&short);
    drop(handle);
    r
}

/// Attaches this terminal to a running container through its shim's socket:
/// its output here, this input there (when it was started with -i). Returns
/// the container's exit code once it ends.
pub fn attach(store: &Store, id: &str) -> Result<i32, RuntimeError> {
    use std::io::Write;
    use std::os::fd::AsFd;
    let st = effective_state(store, id)?;
    if st.status != Status::Running {
        return Err(RuntimeError::NotRunning(id.to_string()));
    }
    let config: ContainerConfig = store.read_json(&store.container_dir(id).join("berth.json"))?;
    let mut sock = with_short_path(&store.run_dir(id), "shim.sock", |p| {
        std::os::unix::net::UnixStream::connect(p)
    })
    .map_err(|e| RuntimeError::Invalid(format!("attaching to {id}: {e}")))?;
    let io_err = |e: std::io::Error| RuntimeError::Invalid(format!("attach: {e}"));
    if config.tty {
        if let Some(ws) = terminal::size() {
            writeln!(sock, "resize {} {}", ws.ws_row, ws.ws_col).map_err(io_err)?;
        }
    }
    let _raw = terminal::RawMode::enter(config.tty);
    writeln!(sock, "attach").map_err(io_err)?;
    ignore_interrupts();
    let mut pending = Vec::new();
    let detach = config.tty.then_some(terminal::DETACH_KEYS);
    let end = terminal::pump(sock.as_fd(), config.interactive, detach, |data| {
        if config.tty {
            terminal::write_stdout(data);
            return;
        }
        pending.extend_from_slice(data);
        for (stream, chunk) in relay::unframe(&mut pending) {
            if stream == relay::STDERR {
                let _ = std::io::stderr().write_all(&chunk);
            } else {
                terminal::write_stdout(&chunk);
            }
        }
    });
    drop(_raw);
    if end == terminal::PumpEnd::Detached {
        eprintln!("\r\nread escape sequence");
        return Ok(0);
    }
    let st = wait_exit(store, id, Some(Duration::from_secs(30)))?.unwrap_or_else(State::created);
    Ok(st.exit_code.unwrap_or(0))
}

/// The names a container answers to on `network`, and its resolvers: its
/// name, short id, compose service and aliases there.
pub fn endpoint(cfg: &ContainerConfig, network: &str) -> crate::net::store::Endpoint {
    let mut names = vec![cfg.name.clone(), cfg.id[..12.min(cfg.id.len())].to_string()];
    if let Some(service) = cfg.labels.get(crate::spec::labels::SERVICE) {
        names.push(service.clone());
    }
    names.extend(cfg.aliases.get(network).into_iter().flatten().cloned());
    let mut seen = std::collections::BTreeSet::new();
    names.retain(|n| seen.insert(n.to_ascii_lowercase()));
    let first =
        matches!(&cfg.network, spec::NetworkMode::Bridge { network: n, .. } if n == network);
    crate::net::store::Endpoint {
        ip6: cfg.ip6.filter(|_| first),
        names,
        dns: cfg.dns.clone(),
    }
}

/// The host end of a container's veth on its n-th network (0: eth0).
pub fn veth_name(id: &str, n: usize) -> String {
    if n == 0 {
        format!("vb{}", &id[..12])
    } else {
        format!("vb{}{n}", &id[..10])
    }
}

/// Puts a container (its PID 1 at `pid`) on a network as `eth<n>`: an
/// address, a veth from the bridge into its namespace, the address inside,
/// and the default route when it is the first network. Returns the network
/// and the address.
pub fn join_network(
    store: &Store,
    id: &str,
    pid: i32,
    network: &str,
    ip: Option<std::net::IpAddr>,
    n: usize,
    endpoint: &crate::net::store::Endpoint,
) -> Result<(crate::net::store::Network, std::net::IpAddr), String> {
    let nets = crate::net::store::NetworkStore::new(&store.run);
    let (net, addr) = nets
        .attach(network, id, ip, endpoint)
        .map_err(|e| e.to_string())?;
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))
        .map(std::os::fd::OwnedFd::from)
        .map_err(|e| format!("network namespace of the container: {e}"))?;
    let host_end = veth_name(id, n);
    // A previous run's pair goes away with its namespace, but not at once.
    if crate::net::link::exists(&host_end) {
        let _ = crate::net::link::delete(&host_end);
    }
    let ifname = format!("eth{n}");
    let fd = std::os::fd::AsFd::as_fd(&ns);
    let routed = n == 0 && !net.internal;
    let mut addresses = vec![crate::net::link::InsideAddress {
        address: addr,
        prefix: net.pool.subnet.prefix,
        gateway: routed.then_some(net.pool.gateway),
    }];
    let address6 = net.members.get(id).and_then(|m| m.address6);
    if let (Some(p6), Some(a6)) = (&net.pool6, address6) {
        addresses.push(crate::net::link::InsideAddress {
            address: a6,
            prefix: p6.subnet.prefix,
            gateway: routed.then_some(p6.gateway),
        });
    }
    let mac = match addr {
        std::net::IpAddr::V4(v4) => Some(crate::net::link::mac_for(v4)),
        std::net::IpAddr::V6(_) => None,
    };
    let result = crate::net::link::create_veth(&host_end, &ifname, fd, &net.bridge, net.mtu(), mac)
        .and_then(|_| crate::net::link::configure_inside(fd, &ifname, &addresses))
        .map_err(|e| e.to_string());
    if let Err(e) = result {
        let _ = nets.detach(network, id);
        return Err(e);
    }
    Ok((net, addr))
}

/// Host pids of the container's processes, from its cgroup.
pub fn processes(store: &Store, id: &str) -> Result<Vec<i32>, RuntimeError> {
    let cfg: oci_spec::runtime::Spec =
        store.read_json(&store.container_dir(id).join("config.json"))?;
    let mut pids = cgroups::for_container(id, &shim::limits_of(&cfg)).procs();
    pids.sort_unstable();
    Ok(pids)
}

/// Resource usage of a running container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerStats {
    pub cgroup: cgroups::CgroupStats,
    /// Bytes received and sent on the container's interfaces (loopback excluded).
    pub net_rx: u64,
    pub net_tx: u64,
}

/// Sums a `/proc/net/dev` table, loopback excluded: (received, sent) bytes.
pub fn parse_net_dev(text: &str) -> (u64, u64) {
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (iface, rest) = l.split_once(':')?;
            if iface.trim() == "lo" {
                return None;
            }
            let f: Vec<u64> = rest
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            Some((*f.first()?, *f.get(8)?))
        })
        .fold((0, 0), |(r, t), (a, b)| (r + a, t + b))
}

/// Stats of a running container: its cgroup and its network namespace.
pub fn stats(store: &Store, id: &str) -> Result<ContainerStats, RuntimeError> {
    let cfg: oci_spec::runtime::Spec =
        store.read_json(&store.container_dir(id).join("config.json"))?;
    let cgroup = cgroups::for_container(id, &shim::limits_of(&cfg)).stats();
    let st = effective_state(store, id)?;
    let (net_rx, net_tx) = std::fs::read_to_string(format!("/proc/{}/net/dev", st.pid))
        .map(|t| parse_net_dev(&t))
        .unwrap_or((0, 0));
    Ok(ContainerStats {
        cgroup,
        net_rx,
        net_tx,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_resolve_in_the_container_files() {
        let root = std::env::temp_dir().join(format!("berth-user-{}", std::process::id()));
        let _ = std::fs::create_dir_all(root.join("etc"));
        let _ = std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nwww:x:33:34::/var/www:/bin/sh\n",
        );
        let _ = std::fs::write(root.join("etc/group"), "root:x:0:\nstaff:x:50:\n");
        assert_eq!(resolve_user(&root, "www").ok(), Some((33, 34)));
        assert_eq!(resolve_user(&root, "33").ok(), Some((33, 34)));
        assert_eq!(resolve_user(&root, "1000").ok(), Some((1000, 0)));
        assert_eq!(resolve_user(&root, "www:staff").ok(), Some((33, 50)));
        assert_eq!(resolve_user(&root, "1000:1001").ok(), Some((1000, 1001)));
        assert!(resolve_user(&root, "nobody").is_err());
        assert!(resolve_user(&root, "www:nogroup").is_err());
        let _ = std::fs::write(
            root.join("etc/group"),
            "root:x:0:\nstaff:x:50:www,bob\nwww:x:34:\naudio:x:63:bob,www\n",
        );
        assert_eq!(supplementary_groups(&root, "www", 34), vec![50, 63]);
        assert!(supplementary_groups(&root, "nobody", 0).is_empty());
    }

    #[test]
    fn net_dev_sums_all_but_loopback() {
        let text = "Inter-|   Receive |  Transmit\n face |bytes packets|bytes packets\n    lo:  100 1 0 0 0 0 0 0  100 1 0 0 0 0 0 0\n  eth0: 2000 5 0 0 0 0 0 0  300 3 0 0 0 0 0 0\n  eth1:   10 1 0 0 0 0 0 0    5 1 0 0 0 0 0 0\n";
        assert_eq!(parse_net_dev(text), (2010, 305));
    }

    #[test]
    fn resolv_conf_points_at_the_network_or_keeps_what_a_container_can_reach() {
        let host =
            "nameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch corp.example\noptions edns0\n";
        let none = DnsConfig::default();
        let gw: std::net::IpAddr = [10, 5, 0, 1].into();
        assert_eq!(
            resolv_conf(host, Some(gw), false, &none),
            "nameserver 10.5.0.1\nsearch corp.example\noptions ndots:0 edns0\n"
        );
        assert_eq!(
            resolv_conf(host, None, false, &none),
            "nameserver 10.0.0.2\nsearch corp.example\noptions edns0\n"
        );
        assert!(resolv_conf(host, None, true, &none).contains("nameserver 127.0.0.53\n"));
        let flags = DnsConfig {
            servers: vec!["10.9.9.9".into()],
            search: vec!["a.test".into(), "b.test".into()],
            options: vec!["ndots:2".into()],
        };
        assert_eq!(
            resolv_conf(host, None, false, &flags),
            "nameserver 10.9.9.9\nsearch a.test b.test\noptions ndots:2\n"
        );
        // On a network the responder stays the nameserver (it forwards to --dns).
        assert_eq!(
            resolv_conf(host, Some(gw), false, &flags),
            "nameserver 10.5.0.1\nsearch a.test b.test\noptions ndots:2\n"
        );
    }

    #[test]
    fn signals_parse() {
        assert_eq!(parse_signal("TERM").ok(), Some(Signal::SIGTERM));
        assert_eq!(parse_signal("SIGKILL").ok(), Some(Signal::SIGKILL));
        assert_eq!(parse_signal("9").ok(), Some(Signal::SIGKILL));
        assert!(parse_signal("NOPE").is_err());
    }
}
