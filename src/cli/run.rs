//! `berth run` and `berth create`: Docker's flags turned into a container
//! request for the runtime. Parsing and defaults only; the runtime does the rest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;

use crate::runtime::spec::{
    Limits, MountRequest, NetworkMode, RestartPolicy, RootfsSource, SpecRequest,
};
use crate::runtime::{self, process::DEFAULT_PATH, store::Store, CreateRequest};
use crate::spec::units::parse_bytes;

/// Flags shared by `run` and `create`.
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
    /// Host directories a compose bind mount creates when missing.
    #[arg(skip)]
    pub bind_dirs_to_create: Vec<PathBuf>,
    /// Anonymous volumes at these targets (compose `volumes: [/path]`).
    #[arg(skip)]
    pub anonymous_volumes: Vec<String>,
    /// Unpacked layer directories (lowest first) to run on instead of an
    /// image: a build's RUN steps; `args` is then the command.
    #[arg(skip)]
    pub layers: Vec<PathBuf>,
    /// A health check over the image's, as Docker's `Healthcheck` JSON
    /// (compose's `healthcheck:`); the `--health-*` flags go over it.
    #[arg(skip)]
    pub healthcheck: Option<serde_json::Value>,
}

impl CreateArgs {
    /// The health check these flags (and the engine's `healthcheck`) put
    /// over the image's, as Docker's `Healthcheck` JSON.
    fn healthcheck_over(&self) -> anyhow::Result<Option<serde_json::Value>> {
        if self.no_healthcheck {
            return Ok(Some(serde_json::json!({"Test": ["NONE"]})));
        }
        let mut h = self
            .healthcheck
            .as_ref()
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default();
        if let Some(cmd) = &self.health_cmd {
            h.insert("Test".into(), serde_json::json!(["CMD-SHELL", cmd]));
        }
        for (flag, key, value) in [
            ("--health-interval", "Interval", &self.health_interval),
            ("--health-timeout", "Timeout", &self.health_timeout),
            (
                "--health-start-period",
                "StartPeriod",
                &self.health_start_period,
            ),
            (
                "--health-start-interval",
                "StartInterval",
                &self.health_start_interval,
            ),
        ] {
            if let Some(text) = value {
                let ns = crate::spec::units::parse_duration(text)
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| {
                        anyhow::anyhow!("invalid {flag} {text:?}: a duration such as 30s or 1m30s")
                    })?;
                h.insert(key.into(), serde_json::json!(ns as u64));
            }
        }
        if let Some(r) = self.health_retries {
            h.insert("Retries".into(), serde_json::json!(r));
        }
        Ok((!h.is_empty()).then_some(serde_json::Value::Object(h)))
    }
}

impl CreateArgs {
    /// The flags as `run` defaults them, for callers that fill them in code
    /// (the compose engine).
    pub fn for_engine() -> CreateArgs {
        CreateArgs {
            name: None,
            env: Vec::new(),
            env_file: Vec::new(),
            volumes: Vec::new(),
            mounts: Vec::new(),
            tmpfs: Vec::new(),
            workdir: None,
            user: None,
            hostname: None,
            entrypoint: None,
            init: true,
            memory: None,
            memory_reservation: None,
            memory_swap: None,
            cpus: None,
            cpu_shares: None,
            cpuset_cpus: None,
            pids_limit: None,
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            privileged: false,
            read_only: false,
            restart: "no".into(),
            stop_signal: None,
            stop_timeout: 10,
            network: "bridge".into(),
            network_aliases: Vec::new(),
            publish: Vec::new(),
            dns: Vec::new(),
            dns_search: Vec::new(),
            dns_options: Vec::new(),
            domainname: None,
            ip: None,
            ip6: None,
            ulimits: Vec::new(),
            health_cmd: None,
            health_interval: None,
            health_timeout: None,
            health_retries: None,
            health_start_period: None,
            health_start_interval: None,
            no_healthcheck: false,
            healthcheck: None,
            sysctls: Vec::new(),
            add_hosts: Vec::new(),
            labels: Vec::new(),
            interactive: false,
            tty: false,
            rootfs: None,
            pull: "missing".into(),
            args: Vec::new(),
            bind_dirs_to_create: Vec::new(),
            anonymous_volumes: Vec::new(),
            layers: Vec::new(),
        }
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

/// What a `-v` or `--mount` asks for.
#[derive(Debug, PartialEq)]
enum Wanted {
    /// A host path (bind) or a tmpfs.
    Mount(MountRequest),
    /// A named volume, made when missing and filled from the image unless
    /// `nocopy`.
    Named {
        name: String,
        target: String,
        read_only: bool,
        nocopy: bool,
    },
    /// A new anonymous volume at this target.
    Anonymous(String),
}

/// `-v /path` (anonymous), `-v NAME:/path[:ro,nocopy]` (named) or
/// `-v HOST:/path[:ro]` (a bind: a source starting with `/`, `.` or `~`).
fn parse_volume_flag(spec: &str, cwd: &std::path::Path) -> anyhow::Result<Wanted> {
    let parts: Vec<&str> = spec.split(':').collect();
    match parts.as_slice() {
        [target] if target.starts_with('/') => return Ok(Wanted::Anonymous(target.to_string())),
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
            return Ok(Wanted::Named {
                name: source.to_string(),
                target: target.to_string(),
                read_only,
                nocopy,
            });
        }
        _ => {}
    }
    let expanded = match spec.strip_prefix("~/") {
        Some(rest) => format!("{}/{rest}", std::env::var("HOME").unwrap_or_default()),
        None => spec.to_string(),
    };
    Ok(Wanted::Mount(MountRequest::parse_volume(&expanded, cwd)?))
}

/// `--mount type=bind|volume|tmpfs,src=…,dst=…[,readonly][,volume-nocopy]`.
fn parse_mount(spec: &str) -> anyhow::Result<Wanted> {
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
        "tmpfs" => Wanted::Mount(MountRequest {
            kind: crate::runtime::spec::MountKind::Tmpfs,
            source: None,
            target,
            read_only: ro,
            options: opts,
        }),
        "bind" => {
            let Some(source) = source else {
                bail!("bind mount {spec:?} needs a source");
            };
            Wanted::Mount(MountRequest {
                kind: crate::runtime::spec::MountKind::Bind,
                source: Some(PathBuf::from(source)),
                target,
                read_only: ro,
                options: Vec::new(),
            })
        }
        _ => match source.filter(|s| !s.is_empty()) {
            None => Wanted::Anonymous(target),
            Some(name) => {
                if !crate::runtime::store::valid_name(&name) {
                    bail!("mount {spec:?}: invalid volume name {name:?}");
                }
                Wanted::Named {
                    name,
                    target,
                    read_only: ro,
                    nocopy,
                }
            }
        },
    })
}

fn parse_ulimit(s: &str) -> anyhow::Result<(String, u64, u64)> {
    let (name, vals) = key_value("--ulimit", s, '=')?;
    let (soft, hard) = vals
        .split_once(':')
        .unwrap_or((vals.as_str(), vals.as_str()));
    let n = |v: &str| {
        v.parse::<u64>()
            .with_context(|| format!("invalid --ulimit {s:?}"))
    };
    Ok((
        format!("RLIMIT_{}", name.to_ascii_uppercase()),
        n(soft)?,
        n(hard)?,
    ))
}

fn read_env_file(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading env file {}", path.display()))?;
    let pairs = crate::spec::dotenv::parse(&text, crate::spec::dotenv::Format::Raw, &|k| {
        std::env::var(k).ok()
    })
    .with_context(|| format!("env file {}", path.display()))?;
    Ok(pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect())
}

/// The root filesystem and the image defaults a request starts from.
struct Base {
    rootfs: RootfsSource,
    image: Option<String>,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    env: Vec<String>,
    workdir: Option<String>,
    user: Option<String>,
    stop_signal: Option<String>,
    labels: BTreeMap<String, String>,
    exposed_ports: Vec<String>,
    healthcheck: Option<serde_json::Value>,
    volumes: Vec<String>,
    /// The command-line arguments after the image name.
    args: Vec<String>,
}

fn base(store: &Store, args: &CreateArgs) -> anyhow::Result<Base> {
    if args.rootfs.is_some() || !args.layers.is_empty() {
        let rootfs = match &args.rootfs {
            Some(dir) => RootfsSource::Dir(
                dir.canonicalize()
                    .with_context(|| format!("rootfs {}", dir.display()))?,
            ),
            None => RootfsSource::Layers(args.layers.clone()),
        };
        return Ok(Base {
            rootfs,
            image: None,
            entrypoint: Vec::new(),
            cmd: Vec::new(),
            env: Vec::new(),
            workdir: None,
            user: None,
            stop_signal: None,
            labels: BTreeMap::new(),
            exposed_ports: Vec::new(),
            healthcheck: None,
            volumes: Vec::new(),
            args: args.args.clone(),
        });
    }
    let Some((name, rest)) = args.args.split_first() else {
        bail!("give an image (berth run IMAGE [COMMAND...]) or a root filesystem (--rootfs DIR)");
    };
    let images = crate::image::store::ImageStore::new(&store.root);
    let present = images.lookup(name).is_ok();
    if args.pull == "always" || (args.pull == "missing" && !present) {
        if !present {
            eprintln!("Unable to find image '{name}' locally");
        }
        // In the same frame as the rest of the progress: the image as an
        // object, the layers' lines beside it.
        let object = format!("Image {name}");
        super::progress::report(&format!("{object}  Pulling"));
        let progress = |line: &str| super::progress::report(line);
        let rt = super::images::runtime()?;
        let pulled = rt.block_on(crate::image::registry::pull(
            &images, name, &progress, false,
        ));
        super::progress::report(&format!(
            "{object}  {}",
            if pulled.is_ok() { "Pulled" } else { "Error" }
        ));
        pulled
        .with_context(|| {
            if present {
                format!("pulling {name}")
            } else {
                format!(
                    "unable to find image {name:?} locally, and pulling it failed (pull it where its registry can be reached, or make it here with berth build, load or import)"
                )
            }
        })?;
    }
    let image = images.resolve(name).with_context(|| {
        format!("unable to find image {name:?} locally (berth pull, berth load or berth import make one)")
    })?;
    let cfg = image.config.config().clone().unwrap_or_default();
    let mut labels: BTreeMap<String, String> = cfg
        .labels()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    labels.insert("berth.image.manifest".into(), image.manifest_digest.clone());
    // Docker's HEALTHCHECK is not in the OCI config type: read it from the raw blob.
    let raw: serde_json::Value = crate::image::store::ImageStore::new(&store.root)
        .read_blob(&image.config_digest)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let healthcheck = raw["config"]
        .get("Healthcheck")
        .filter(|h| !h.is_null())
        .cloned();
    Ok(Base {
        rootfs: RootfsSource::Layers(image.layers.clone()),
        image: Some(image.reference.clone()),
        entrypoint: cfg.entrypoint().clone().unwrap_or_default(),
        cmd: cfg.cmd().clone().unwrap_or_default(),
        env: cfg.env().clone().unwrap_or_default(),
        workdir: cfg.working_dir().clone().filter(|w| !w.is_empty()),
        user: cfg.user().clone().filter(|u| !u.is_empty()),
        stop_signal: cfg.stop_signal().clone(),
        labels,
        exposed_ports: cfg.exposed_ports().clone().unwrap_or_default(),
        healthcheck,
        volumes: cfg.volumes().clone().unwrap_or_default(),
        args: rest.to_vec(),
    })
}

/// Docker's precedence: `--entrypoint` replaces the image's entrypoint and
/// drops its cmd; arguments replace the cmd.
fn command_of(entrypoint_flag: &Option<String>, base: &Base) -> Vec<String> {
    let mut command: Vec<String> = match entrypoint_flag {
        Some(ep) if ep.is_empty() => Vec::new(),
        Some(ep) => vec![ep.clone()],
        None => base.entrypoint.clone(),
    };
    if !base.args.is_empty() {
        command.extend(base.args.iter().cloned());
    } else if entrypoint_flag.is_none() {
        command.extend(base.cmd.iter().cloned());
    }
    command
}

/// Builds the runtime request from the flags (and the image, when one is named).
pub fn request(
    store: &Store,
    args: &CreateArgs,
    auto_remove: bool,
) -> anyhow::Result<CreateRequest> {
    if !nix::unistd::geteuid().is_root() {
        return Err(crate::runtime::RuntimeError::NeedsRoot("create containers").into());
    }
    let base = base(store, args)?;
    let command = command_of(&args.entrypoint, &base);
    if command.is_empty() {
        bail!(
            "no command specified: give one after the image or --rootfs DIR (e.g. sh -c 'echo hi')"
        );
    }
    // The mode, and for bridge networks their record (read once here).
    let nets = crate::net::store::NetworkStore::new(&store.run);
    let (network, bridge) = match args.network.as_str() {
        "none" => (NetworkMode::None, None),
        "host" => (NetworkMode::Host, None),
        "bridge" | "default" => {
            let net = nets
                .ensure_default()
                .context("the default bridge network")?;
            let mode = NetworkMode::Bridge {
                network: net.name.clone(),
                ip: args.ip,
            };
            (mode, Some(net))
        }
        other => match other.strip_prefix("container:") {
            Some(name) if !name.is_empty() => (NetworkMode::Container(name.to_string()), None),
            Some(_) => bail!("network {other:?}: give a container after container:"),
            None => {
                // A user network: it must exist now.
                let net = nets
                    .get(other)
                    .with_context(|| format!("network {other}"))?;
                let mode = NetworkMode::Bridge {
                    network: other.to_string(),
                    ip: args.ip,
                };
                (mode, Some(net))
            }
        },
    };
    let user_network = bridge
        .as_ref()
        .is_some_and(|n| n.name != crate::net::store::DEFAULT_NETWORK);
    if !args.network_aliases.is_empty() && !user_network {
        bail!("network-scoped aliases are supported only for containers on user-defined networks (create one with `berth network create NAME`)");
    }
    if (args.ip.is_some() || args.ip6.is_some()) && !user_network {
        bail!("--ip is supported only on user-defined networks (create one with `berth network create --subnet CIDR NAME`)");
    }
    for d in &args.dns {
        if crate::net::dns::parse_upstream(d).is_none() {
            bail!("invalid --dns {d:?}: give an IP address");
        }
    }
    let cwd = std::env::current_dir().context("finding the current directory")?;
    let mut mounts = Vec::new();
    let mut named_volumes = Vec::new();
    let mut anonymous = args.anonymous_volumes.clone();
    let wanted: Vec<Wanted> = args
        .volumes
        .iter()
        .map(|v| parse_volume_flag(v, &cwd))
        .chain(args.mounts.iter().map(|m| parse_mount(m)))
        .collect::<anyhow::Result<_>>()?;
    for w in wanted {
        match w {
            Wanted::Mount(m) => mounts.push(m),
            Wanted::Anonymous(target) => anonymous.push(target),
            Wanted::Named {
                name,
                target,
                read_only,
                nocopy,
            } => {
                // As Docker: a volume named and missing is made.
                crate::engine::volumes::create(store, &name, &BTreeMap::new())
                    .with_context(|| format!("volume {name}"))?;
                named_volumes.push(crate::runtime::NamedVolumeMount {
                    data: crate::engine::volumes::data_path(store, &name),
                    target,
                    read_only,
                    nocopy,
                });
            }
        }
    }
    for t in &args.tmpfs {
        mounts.push(MountRequest::parse_tmpfs(t)?);
    }
    let hostname = args.hostname.clone().unwrap_or_default();
    let mut env: Vec<String> = vec![format!("PATH={DEFAULT_PATH}")];
    let mut set = |kv: String| {
        let key = kv.split('=').next().unwrap_or("").to_string();
        env.retain(|e| e.split('=').next() != Some(key.as_str()));
        env.push(kv);
    };
    for kv in &base.env {
        set(kv.clone());
    }
    for f in &args.env_file {
        for kv in read_env_file(f)? {
            set(kv);
        }
    }
    for e in &args.env {
        if e.contains('=') {
            set(e.clone());
        } else if let Ok(v) = std::env::var(e) {
            set(format!("{e}={v}"));
        }
    }
    let mut sysctls = BTreeMap::new();
    for s in &args.sysctls {
        let (k, v) = key_value("--sysctl", s, '=')?;
        sysctls.insert(k, v);
    }
    let mut labels = base.labels.clone();
    for l in &args.labels {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let mut extra_hosts = Vec::new();
    for h in &args.add_hosts {
        let (host, ip) = h
            .split_once(':')
            .or_else(|| h.split_once('='))
            .with_context(|| format!("invalid --add-host {h:?}: use HOST:IP"))?;
        let ip = if ip == "host-gateway" {
            // The host as the container sees it: its network's gateway.
            match (&network, &bridge) {
                (_, Some(net)) => net.pool.gateway.to_string(),
                (NetworkMode::Host, _) => "127.0.0.1".to_string(),
                _ => bail!("--add-host {h}: host-gateway needs a bridge network (or host)"),
            }
        } else {
            ip.parse::<std::net::IpAddr>()
                .with_context(|| format!("invalid --add-host {h:?}: {ip} is not an IP address"))?;
            ip.to_string()
        };
        extra_hosts.push((host.to_string(), ip));
    }
    let ulimits = args
        .ulimits
        .iter()
        .map(|u| parse_ulimit(u))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut ports = Vec::new();
    if !args.publish.is_empty() {
        if !matches!(network, NetworkMode::Bridge { .. }) {
            bail!("publishing ports needs a bridge network: run with --network bridge (the default) or a network made with `berth network create NAME`");
        }
        let mut taken = published_by_others(store)?;
        let default_ip = bridge.as_ref().and_then(|n| n.host_binding());
        for p in &args.publish {
            let mine = crate::net::ports::parse_and_reserve_on(p, &taken, default_ip)?;
            taken.extend(mine.iter().cloned());
            ports.extend(mine);
        }
    }
    let restart: RestartPolicy = args.restart.parse()?;
    if auto_remove && restart != RestartPolicy::No {
        bail!("conflicting options: --restart and --rm");
    }
    let spec = SpecRequest {
        rootfs: PathBuf::new(),
        args: command,
        env,
        cwd: args
            .workdir
            .clone()
            .or(base.workdir.clone())
            .unwrap_or_else(|| "/".into()),
        uid: 0,
        gid: 0,
        additional_gids: Vec::new(),
        hostname,
        domainname: args.domainname.clone().unwrap_or_default(),
        cap_add: args.cap_add.clone(),
        cap_drop: args.cap_drop.clone(),
        privileged: args.privileged,
        read_only: args.read_only,
        tty: args.tty,
        limits: Limits {
            memory: bytes("--memory", &args.memory)?,
            memory_reservation: bytes("--memory-reservation", &args.memory_reservation)?,
            memory_swap: bytes("--memory-swap", &args.memory_swap)?,
            cpus: args.cpus,
            cpu_shares: args.cpu_shares,
            cpuset: args.cpuset_cpus.clone(),
            pids: args.pids_limit.filter(|p| *p > 0),
        },
        mounts,
        sysctls,
        ulimits,
        network,
    };
    Ok(CreateRequest {
        name: args.name.clone(),
        rootfs: base.rootfs,
        image: base.image,
        user: args.user.clone().or(base.user),
        spec,
        init: args.init,
        restart,
        auto_remove,
        stop_signal: args
            .stop_signal
            .clone()
            .or(base.stop_signal)
            .unwrap_or_else(|| "SIGTERM".into()),
        stop_timeout: args.stop_timeout,
        interactive: args.interactive,
        labels,
        extra_hosts,
        ports,
        exposed_ports: base.exposed_ports,
        healthcheck: crate::runtime::health::merge(
            base.healthcheck.as_ref(),
            args.healthcheck_over()?.as_ref(),
        ),
        image_volumes: base.volumes.into_iter().chain(anonymous).collect(),
        aliases: args.network_aliases.clone(),
        ip6: args.ip6,
        named_volumes,
        inherited_volumes: Vec::new(),
        dns: crate::runtime::DnsConfig {
            servers: args.dns.clone(),
            search: args.dns_search.clone(),
            options: args.dns_options.clone(),
        },
    })
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

/// The ports containers that are not exited publish.
fn published_by_others(store: &Store) -> anyhow::Result<Vec<crate::net::ports::Published>> {
    let mut taken = Vec::new();
    for id in store.ids()? {
        let Ok(st) = crate::runtime::effective_state(store, &id) else {
            continue;
        };
        if st.status == crate::runtime::store::Status::Exited {
            continue;
        }
        if let Ok(other) = store.read_json::<crate::runtime::spec::ContainerConfig>(
            &store.container_dir(&id).join("berth.json"),
        ) {
            taken.extend(other.ports);
        }
    }
    Ok(taken)
}

/// Arguments of `berth run`.
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
    let req = request(store, &args.create, args.rm)?;
    let id = runtime::create(store, req)?;
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
    let req = request(store, &args, false)?;
    let id = runtime::create(store, req)?;
    println!("{id}");
    Ok(0)
}
