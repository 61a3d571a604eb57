//! The container verbs around `run`: `start`, `stop`, `restart`, `kill`, `rm`,
//! `ps`, `logs`, `inspect`, `wait`, `pause`, `unpause`, `stats`. Output in
//! Docker's formats; the runtime does the work.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::runtime::logs::{self, ReadOptions};
use crate::runtime::spec::ContainerConfig;
use crate::runtime::store::{parse_rfc3339, State, Status, Store};
use crate::runtime::{self, effective_state};

// `start`
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach to the container's output and wait for it.
    #[arg(short, long)]
    pub attach: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

// `stop` / `restart`
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container.
    #[arg(short = 't', long = "time")]
    pub time: Option<u64>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

// `kill`
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send.
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

// `rm`
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Kill and remove running containers.
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

// `ps`
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    pub all: bool,
    /// Only display container ids.
    #[arg(short, long)]
    pub quiet: bool,
    /// Output format: table, json, table TEMPLATE or a Go template.
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Filter (name=…, status=…, health=…, id=…, label=…).
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
}

// `logs`
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow log output.
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end.
    #[arg(short = 'n', long)]
    pub tail: Option<String>,
    /// Show timestamps.
    #[arg(short, long)]
    pub timestamps: bool,
    /// Show logs since a timestamp or a relative time (e.g. 10m).
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp or a relative time (e.g. 10m).
    #[arg(long)]
    pub until: Option<String>,
    pub container: String,
}

// `exec`
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Detached mode: run the command in the background.
    #[arg(short, long)]
    pub detach: bool,
    /// Keep STDIN open.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables.
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Username or UID (format: name|uid[:group|gid]).
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    pub container: String,
    /// COMMAND [ARG...]
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

// `attach`
#[derive(Debug, Args)]
pub struct AttachArgs {
    pub container: String,
}

pub fn attach(store: &Store, args: AttachArgs) -> anyhow::Result<i32> {
    let id = store.resolve(&args.container)?;
    Ok(runtime::attach(store, &id)?)
}

// `port`
#[derive(Debug, Args)]
pub struct PortArgs {
    pub container: String,
    /// Only this container port: PORT[/PROTO].
    pub private_port: Option<String>,
}

pub fn port(store: &Store, args: PortArgs) -> anyhow::Result<i32> {
    let id = store.resolve(&args.container)?;
    let ports = config(store, &id)?.ports;
    let Some(filter) = &args.private_port else {
        for p in ports {
            println!("{p}");
        }
        return Ok(0);
    };
    let (port, proto) = filter.split_once('/').unwrap_or((filter, "tcp"));
    let port: u16 = port
        .parse()
        .with_context(|| format!("invalid port {filter:?}: use PORT[/PROTO]"))?;
    let matching: Vec<_> = ports
        .iter()
        .filter(|p| p.container_port == port && p.protocol == proto)
        .collect();
    if matching.is_empty() {
        anyhow::bail!(
            "no public port '{port}/{proto}' published for {}",
            args.container
        );
    }
    for p in matching {
        for b in p.bindings() {
            println!("{b}");
        }
    }
    Ok(0)
}

pub fn exec(store: &Store, args: ExecArgs) -> anyhow::Result<i32> {
    let id = store.resolve(&args.container)?;
    let req = runtime::exec::ExecRequest {
        args: args.command,
        env: args.env,
        user: args.user,
        workdir: args.workdir,
        detach: args.detach,
        interactive: args.interactive,
        tty: args.tty,
    };
    Ok(runtime::exec::exec(store, &id, &req)?)
}

// Verbs that take only container names.
#[derive(Debug, Args)]
pub struct NamesArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

// `stats`
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Print one sample and exit.
    #[arg(long)]
    pub no_stream: bool,
    /// Output format: table, json, table TEMPLATE or a Go template.
    #[arg(long, default_value = "table")]
    pub format: String,
    pub containers: Vec<String>,
}

fn config(store: &Store, id: &str) -> anyhow::Result<ContainerConfig> {
    Ok(store.read_json(&store.container_dir(id).join("berth.json"))?)
}

fn for_each(
    store: &Store,
    names: &[String],
    mut f: impl FnMut(&str) -> anyhow::Result<()>,
) -> anyhow::Result<i32> {
    let mut failed = false;
    for n in names {
        let r = store
            .resolve(n)
            .map_err(anyhow::Error::from)
            .and_then(|id| f(&id));
        match r {
            Ok(()) => println!("{n}"),
            Err(e) => {
                eprintln!("error: {n}: {e:#}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

pub fn start(store: &Store, args: StartArgs) -> anyhow::Result<i32> {
    if args.attach {
        let [one] = args.containers.as_slice() else {
            anyhow::bail!("start --attach takes one container");
        };
        let id = store.resolve(one)?;
        return Ok(runtime::start(store, &id, true)?.unwrap_or(0));
    }
    for_each(store, &args.containers, |id| {
        runtime::ensure_started(store, id)?;
        Ok(())
    })
}

pub fn stop(store: &Store, args: StopArgs) -> anyhow::Result<i32> {
    for_each(store, &args.containers, |id| {
        Ok(runtime::stop(store, id, args.time)?)
    })
}

pub fn restart(store: &Store, args: StopArgs) -> anyhow::Result<i32> {
    for_each(store, &args.containers, |id| {
        runtime::stop(store, id, args.time)?;
        runtime::ensure_started(store, id)?;
        Ok(())
    })
}

pub fn kill(store: &Store, args: KillArgs) -> anyhow::Result<i32> {
    let sig = runtime::parse_signal(&args.signal)?;
    for_each(store, &args.containers, |id| {
        Ok(runtime::kill_container(store, id, sig)?)
    })
}

pub fn rm(store: &Store, args: RmArgs) -> anyhow::Result<i32> {
    for_each(store, &args.containers, |id| {
        Ok(runtime::remove(store, id, args.force)?)
    })
}

pub fn pause(store: &Store, args: NamesArgs, frozen: bool) -> anyhow::Result<i32> {
    for_each(store, &args.containers, |id| {
        Ok(runtime::pause(store, id, frozen)?)
    })
}

/// `wait`: prints each container's exit code once it stops.
pub fn wait(store: &Store, args: NamesArgs) -> anyhow::Result<i32> {
    let mut last = 0;
    for n in &args.containers {
        let id = store.resolve(n)?;
        let st = runtime::wait_exit(store, &id, None)?.unwrap_or_else(State::created);
        last = st.exit_code.unwrap_or(0);
        println!("{last}");
    }
    Ok(if args.containers.len() == 1 {
        0
    } else {
        last.min(0)
    })
}

/// "Up 3 seconds", "Exited (0) 2 minutes ago", as Docker words it.
pub(crate) fn status_text(st: &State) -> String {
    let ago = |t: &Option<String>| -> String {
        let Some((secs, _)) = t.as_deref().and_then(parse_rfc3339) else {
            return String::new();
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(secs);
        human((now - secs).max(0))
    };
    match st.status {
        Status::Created => "Created".into(),
        Status::Running => match health_status(st) {
            "" => format!("Up {}", ago(&st.started_at)),
            "starting" => format!("Up {} (health: starting)", ago(&st.started_at)),
            h => format!("Up {} ({h})", ago(&st.started_at)),
        },
        Status::Paused => format!("Up {} (Paused)", ago(&st.started_at)),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            st.exit_code.unwrap_or(0),
            ago(&st.finished_at)
        ),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            st.exit_code.unwrap_or(0),
            ago(&st.finished_at)
        ),
    }
}

/// `starting`, `healthy`, `unhealthy`, or "" without a check (or when the
/// container does not run: its last health is history).
pub(crate) fn health_status(st: &State) -> &str {
    match (&st.health, st.status) {
        (Some(h), Status::Running | Status::Paused) => h.status.as_str(),
        _ => "",
    }
}

fn human(secs: i64) -> String {
    match secs {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => format!("{s} seconds"),
        s if s < 120 => "About a minute".into(),
        s if s < 3600 => format!("{} minutes", s / 60),
        s if s < 7200 => "About an hour".into(),
        s if s < 86_400 => format!("{} hours", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

fn matches_filter(filter: &str, id: &str, cfg: &ContainerConfig, st: &State) -> bool {
    let (k, v) = filter.split_once('=').unwrap_or((filter, ""));
    match k {
        "name" => cfg.name.contains(v),
        "id" => id.starts_with(v),
        "status" => st.status.as_str() == v,
        "health" => match health_status(st) {
            "" => v == "none",
            h => h == v,
        },
        "label" => super::listing::label_matches(v, &cfg.labels),
        _ => false,
    }
}

pub fn ps(store: &Store, args: PsArgs) -> anyhow::Result<i32> {
    let mut rows = Vec::new();
    for id in store.ids()? {
        let (Ok(cfg), Ok(st)) = (config(store, &id), effective_state(store, &id)) else {
            continue;
        };
        if !args.all
            && !matches!(
                st.status,
                Status::Running | Status::Paused | Status::Restarting
            )
        {
            continue;
        }
        if !args
            .filter
            .iter()
            .all(|f| matches_filter(f, &id, &cfg, &st))
        {
            continue;
        }
        rows.push((id, cfg, st));
    }
    rows.sort_by(|a, b| b.1.created.cmp(&a.1.created));
    let mut out = std::io::stdout().lock();
    if args.quiet {
        for (id, _, _) in &rows {
            writeln!(
                out,
                "{}",
                if args.no_trunc {
                    id.as_str()
                } else {
                    &id[..12]
                }
            )?;
        }
        return Ok(0);
    }
    let format = super::format::Format::parse(&args.format)?;
    if !format.is_table() {
        let items: Vec<serde_json::Value> = rows
            .iter()
            .map(|(id, cfg, st)| {
                let image = cfg.image.clone().unwrap_or_else(|| rootfs_text(cfg));
                super::listing::container(id, cfg, st, &image, args.no_trunc)
            })
            .collect();
        let headers = [("ID", "CONTAINER ID"), ("RunningFor", "CREATED")];
        return super::format::print_or(&format, &items, &headers, String::new).map(|_| 0);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|(id, cfg, st)| {
            vec![
                if args.no_trunc {
                    id.clone()
                } else {
                    id[..12].to_string()
                },
                cfg.image.clone().unwrap_or_else(|| rootfs_text(cfg)),
                super::listing::command_text(cfg, args.no_trunc),
                super::listing::ago(&cfg.created),
                status_text(st),
                super::listing::ports_text(cfg),
                cfg.name.clone(),
            ]
        })
        .collect();
    // Docker's columns.
    let header = [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ];
    out.write_all(super::table::render(&header, &table).as_bytes())?;
    Ok(0)
}

fn rootfs_text(cfg: &ContainerConfig) -> String {
    match &cfg.rootfs {
        runtime::spec::RootfsSource::Dir(d) => d.display().to_string(),
        runtime::spec::RootfsSource::Layers(_) => "<layers>".into(),
    }
}

pub fn logs(store: &Store, args: LogsArgs) -> anyhow::Result<i32> {
    let id = store.resolve(&args.container)?;
    let path = store.container_dir(&id).join("log.jsonl");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let since = match &args.since {
        Some(s) => {
            Some(logs::parse_since(s, now).with_context(|| format!("invalid --since {s:?}"))?)
        }
        None => None,
    };
    let until = match &args.until {
        Some(s) => {
            Some(logs::parse_since(s, now).with_context(|| format!("invalid --until {s:?}"))?)
        }
        None => None,
    };
    let tail = match args.tail.as_deref() {
        None | Some("all") => None,
        Some(n) => Some(
            n.parse::<usize>()
                .with_context(|| format!("invalid --tail {n:?}"))?,
        ),
    };
    let opts = ReadOptions {
        tail,
        since,
        until,
        timestamps: args.timestamps,
    };
    if !args.follow {
        print_entries(&logs::read(&path, &opts), args.timestamps)?;
        return Ok(0);
    }
    // Follow: what is there (as asked), then what is appended until the
    // container stops, each entry read once.
    let mut follower = logs::Follower::from_start(&path);
    let mut first = logs::entries_of(&path.with_extension("jsonl.1"));
    first.extend(follower.poll());
    print_entries(&logs::select(first, &opts), args.timestamps)?;
    let since_only = ReadOptions {
        since,
        until,
        ..Default::default()
    };
    loop {
        let running = effective_state(store, &id)
            .map(|s| {
                matches!(
                    s.status,
                    Status::Running | Status::Restarting | Status::Paused
                )
            })
            .unwrap_or(false);
        print_entries(&logs::select(follower.poll(), &since_only), args.timestamps)?;
        if !running {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn print_entries(entries: &[logs::Entry], timestamps: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    for e in entries {
        let text = logs::render(e, timestamps);
        if e.stream == "stderr" {
            err.write_all(text.as_bytes())?;
        } else {
            out.write_all(text.as_bytes())?;
        }
    }
    out.flush()?;
    Ok(())
}

// `inspect` and `container inspect`
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format the output with a Go template (`{{.State.Status}}`).
    #[arg(short, long)]
    pub format: Option<String>,
    /// Only this kind of object: container, image, network or volume.
    #[arg(long = "type", value_parser = ["container", "image", "network", "volume"])]
    pub kind: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

pub fn inspect(store: &Store, args: InspectArgs) -> anyhow::Result<i32> {
    let mut all = Vec::new();
    for n in &args.names {
        all.push(super::inspect::container(store, &store.resolve(n)?)?);
    }
    super::format::print_inspect(&all, args.format.as_deref())?;
    Ok(0)
}

/// `inspect NAME…`: each name as a container, an image, a network or a
/// volume, the first that exists (as Docker looks them up).
pub fn inspect_any(store: &Store, args: InspectArgs) -> anyhow::Result<i32> {
    let nets = crate::net::store::NetworkStore::new(&store.run);
    let volumes = crate::runtime::volumes::list(store)?;
    let want = |k: &str| args.kind.as_deref().is_none_or(|t| t == k);
    let mut all = Vec::new();
    let mut failed = false;
    for n in &args.names {
        let found = if let Some(id) = want("container").then(|| store.resolve(n).ok()).flatten() {
            Some(super::inspect::container(store, &id)?)
        } else if let Some(r) = want("image")
            .then(|| super::images::record(store, n).ok())
            .flatten()
        {
            Some(r)
        } else if let Some(net) = want("network").then(|| nets.get(n).ok()).flatten() {
            Some(super::network::record(store, &net))
        } else {
            want("volume")
                .then(|| volumes.get(n))
                .flatten()
                .map(|labels| super::volume::record(store, n, labels))
        };
        match found {
            Some(r) => all.push(r),
            None => {
                eprintln!("error: no such object: {n}");
                failed = true;
            }
        }
    }
    super::format::print_inspect(&all, args.format.as_deref())?;
    Ok(if failed { 1 } else { 0 })
}

// `rename`
#[derive(Debug, Args)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

/// Gives a container a new name (its id, labels and state stay).
pub fn rename(store: &Store, args: RenameArgs) -> anyhow::Result<i32> {
    let id = store.resolve(&args.container)?;
    store
        .check_name(&args.new_name)
        .with_context(|| format!("renaming {} to {}", args.container, args.new_name))?;
    let path = store.container_dir(&id).join("berth.json");
    let mut cfg: ContainerConfig = store.read_json(&path)?;
    cfg.name = args.new_name.clone();
    store.write_json(&path, &cfg)?;
    runtime::events::record_for(store, &cfg, "rename", &[]);
    Ok(0)
}

pub fn stats(store: &Store, args: StatsArgs) -> anyhow::Result<i32> {
    let ids: Vec<String> = if args.containers.is_empty() {
        store
            .ids()?
            .into_iter()
            .filter(|id| effective_state(store, id).is_ok_and(|s| s.status == Status::Running))
            .collect()
    } else {
        args.containers
            .iter()
            .map(|n| store.resolve(n))
            .collect::<Result<_, _>>()?
    };
    let sample = |id: &String| runtime::stats(store, id).map(|s| (id.clone(), s));
    let format = super::format::Format::parse(&args.format)?;
    // Without a limit Docker shows the host's memory.
    let host_memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024);
    loop {
        let first: Vec<_> = ids.iter().map(sample).collect::<Result<_, _>>()?;
        std::thread::sleep(Duration::from_millis(500));
        let second: Vec<_> = ids.iter().map(sample).collect::<Result<_, _>>()?;
        let mut items = Vec::new();
        let mut table = Vec::new();
        for ((id, a), (_, b)) in first.iter().zip(&second) {
            let size = |n: u64| super::listing::human_size(n, 3);
            let net = format!("{} / {}", size(b.net_rx), size(b.net_tx));
            let (a, b) = (&a.cgroup, &b.cgroup);
            let cpu = (b.cpu_usage_ns.saturating_sub(a.cpu_usage_ns)) as f64 / 5_000_000.0;
            let name = config(store, id).map(|c| c.name).unwrap_or_default();
            let limit = b.memory_limit.unwrap_or(host_memory);
            let mem = format!(
                "{} / {}",
                super::listing::human_bytes(b.memory_usage),
                super::listing::human_bytes(limit)
            );
            let mem_perc = if limit > 0 {
                b.memory_usage as f64 * 100.0 / limit as f64
            } else {
                0.0
            };
            items.push(serde_json::json!({
                "BlockIO": "0B / 0B",
                "CPUPerc": format!("{cpu:.2}%"),
                "Container": name,
                "ID": &id[..12],
                "MemPerc": format!("{mem_perc:.2}%"),
                "MemUsage": mem,
                "Name": name,
                "NetIO": net,
                "PIDs": b.pids.to_string(),
            }));
            table.push(vec![
                id[..12].to_string(),
                name,
                format!("{cpu:.2}%"),
                mem,
                format!("{mem_perc:.2}%"),
                net,
                b.pids.to_string(),
            ]);
        }
        let header = [
            "CONTAINER ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "NET I/O",
            "PIDS",
        ];
        let headers = [
            ("ID", "CONTAINER ID"),
            ("CPUPerc", "CPU %"),
            ("MemUsage", "MEM USAGE / LIMIT"),
            ("MemPerc", "MEM %"),
            ("NetIO", "NET I/O"),
            ("BlockIO", "BLOCK I/O"),
        ];
        super::format::print_or(&format, &items, &headers, || {
            super::table::render(&header, &table)
        })?;
        if args.no_stream {
            return Ok(0);
        }
    }
}
