//! `berth system info`, `berth container prune` and `berth top`: overview and
//! housekeeping verbs over the container store.

use std::io::{IsTerminal, Write};

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::runtime::store::{Status, Store};
use crate::runtime::{self, effective_state};

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum SystemCommand {
    /// Display system-wide information.
    Info,
    /// Show disk usage of images, containers, volumes and the build cache.
    Df(DfArgs),
    /// Remove stopped containers and unused images.
    Prune(SystemPruneArgs),
    /// Get real time events from berth's event journal.
    Events(EventsArgs),
}

// `events` / `system events`
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Show events created since this time (RFC 3339, Unix seconds or a duration: 10m).
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this time (the same forms); without it, follow.
    #[arg(long)]
    pub until: Option<String>,
    /// Filter (type=container, event=die, container=NAME, label=k[=v], image=…).
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Output format: json or a Go template (default: Docker's text lines).
    #[arg(long)]
    pub format: Option<String>,
}

/// Whether an event passes every filter (Docker's: same keys OR, different AND).
fn event_matches(e: &crate::runtime::events::Event, filters: &[String]) -> bool {
    let mut by_key: std::collections::BTreeMap<&str, Vec<&str>> = std::collections::BTreeMap::new();
    for f in filters {
        let (k, v) = f.split_once('=').unwrap_or((f.as_str(), ""));
        by_key.entry(k).or_default().push(v);
    }
    by_key.iter().all(|(k, vs)| {
        vs.iter().any(|v| match *k {
            "type" => e.kind == *v,
            "event" => e.action == *v || e.action.starts_with(&format!("{v}:")),
            "container" => e.id.starts_with(v) || e.attributes.get("name").is_some_and(|n| n == v),
            "image" => e.attributes.get("image").is_some_and(|i| i == v),
            "label" => match v.split_once('=') {
                Some((lk, lv)) => e.attributes.get(lk).is_some_and(|x| x == lv),
                None => e.attributes.contains_key(*v),
            },
            _ => false,
        })
    })
}

/// The event as Docker's JSON message.
fn event_json(e: &crate::runtime::events::Event) -> serde_json::Value {
    let (secs, _) = e.time();
    serde_json::json!({
        "status": e.action, "id": e.id, "from": e.attributes.get("image"),
        "Type": e.kind, "Action": e.action,
        "Actor": {"ID": e.id, "Attributes": e.attributes},
        "scope": "local", "time": secs, "timeNano": e.time_nano,
    })
}

/// Prints the journal's events (from `--since`, else from now on) and
/// follows it until `--until` or until the reader goes away.
pub fn events(store: &Store, args: EventsArgs) -> anyhow::Result<i32> {
    use std::io::Write;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let parse = |s: &Option<String>, what: &str| -> anyhow::Result<Option<i64>> {
        s.as_deref()
            .map(|t| {
                crate::runtime::logs::parse_since(t, now)
                    .ok_or_else(|| anyhow::anyhow!("invalid --{what} {t:?}"))
            })
            .transpose()
    };
    let since = parse(&args.since, "since")?;
    let until = parse(&args.until, "until")?;
    let format = match args.format.as_deref() {
        None => None,
        Some(f) => Some(super::format::Format::parse(f)?),
    };
    let mut offset = if since.is_some() {
        0
    } else {
        crate::runtime::events::end_offset(store)
    };
    let mut out = std::io::stdout();
    loop {
        let (batch, next) = crate::runtime::events::read_from(store, offset);
        offset = next;
        for e in &batch {
            let (secs, _) = e.time();
            if since.is_some_and(|s| secs < s) || !event_matches(e, &args.filter) {
                continue;
            }
            if until.is_some_and(|u| secs > u) {
                return Ok(0);
            }
            let line = match &format {
                Some(f) => f
                    .render(&[event_json(e)], &[])?
                    .unwrap_or_default()
                    .trim_end()
                    .to_string(),
                None => super::compose::monitor::event_line(e, "", false),
            };
            if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
                return Ok(0);
            }
        }
        // Everything up to `--until` has been read once the clock is past it.
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(now);
        if until.is_some_and(|u| clock >= u) {
            return Ok(0);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[derive(Debug, Args)]
pub struct SystemPruneArgs {
    /// Remove every image no container uses.
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

pub fn df(store: &Store, args: DfArgs) -> anyhow::Result<i32> {
    if args.verbose {
        return match args.format.as_str() {
            "table" => super::df_verbose::print(store, false),
            "json" | "{{json .}}" => super::df_verbose::print(store, true),
            other => anyhow::bail!(
                "system df -v prints its tables or, with --format json, one JSON document; not {other:?}"
            ),
        };
    }
    use super::images::{dir_usage, user_of};
    use super::listing::human_size;
    let images = crate::image::store::ImageStore::new(&store.root).list()?;
    let unused: u64 = images
        .iter()
        .filter(|i| user_of(store, &i.manifest_digest).is_none())
        .map(|i| i.size)
        .sum();
    let active_images = images
        .iter()
        .filter(|i| user_of(store, &i.manifest_digest).is_some())
        .count();
    let image_bytes = dir_usage(&store.root.join("layers")) + dir_usage(&store.root.join("blobs"));
    let ids = store.ids()?;
    let running = ids
        .iter()
        .filter(|id| effective_state(store, id).is_ok_and(|s| s.status == Status::Running))
        .count();
    let container_bytes: u64 = ids
        .iter()
        .map(|id| dir_usage(&store.container_dir(id).join("upper")))
        .sum();
    let volumes = crate::runtime::volumes::list(store)?;
    let volume_bytes: u64 = volumes
        .keys()
        .map(|n| dir_usage(&crate::runtime::volumes::data_path(store, n)))
        .sum();
    let cache = store.root.join("build-cache");
    let cache_entries = std::fs::read_dir(&cache)
        .map(|d| d.flatten().filter(|e| e.path().is_file()).count())
        .unwrap_or(0);
    let cache_bytes = dir_usage(&cache);
    let reclaimable = unused.min(image_bytes);
    let percent = (reclaimable * 100).checked_div(image_bytes).unwrap_or(0);
    let rows = [
        (
            "Images",
            images.len(),
            active_images,
            image_bytes,
            format!("{} ({percent}%)", human_size(reclaimable, 3)),
        ),
        (
            "Containers",
            ids.len(),
            running,
            container_bytes,
            human_size(0, 3),
        ),
        (
            "Local Volumes",
            volumes.len(),
            0,
            volume_bytes,
            human_size(volume_bytes, 3),
        ),
        (
            "Build Cache",
            cache_entries,
            0,
            cache_bytes,
            human_size(cache_bytes, 3),
        ),
    ];
    let items: Vec<serde_json::Value> = rows
        .iter()
        .map(|(kind, total, active, size, reclaim)| {
            serde_json::json!({
                "Active": active.to_string(),
                "Reclaimable": reclaim,
                "Size": human_size(*size, 4),
                "TotalCount": total.to_string(),
                "Type": kind,
            })
        })
        .collect();
    let format = super::format::Format::parse(&args.format)?;
    let headers = [("TotalCount", "TOTAL"), ("Reclaimable", "RECLAIMABLE")];
    super::format::print_or(&format, &items, &headers, || {
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|(kind, total, active, size, reclaim)| {
                vec![
                    kind.to_string(),
                    total.to_string(),
                    active.to_string(),
                    human_size(*size, 4),
                    reclaim.clone(),
                ]
            })
            .collect();
        super::table::render(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], &table)
    })?;
    Ok(0)
}

// `system df`
#[derive(Debug, Args)]
pub struct DfArgs {
    /// Output format: table, json, table TEMPLATE or a Go template.
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Show each image, container and volume, and the resident helpers
    /// with the memory each holds (`--verbose` is the global log option).
    #[arg(short = 'v', id = "df_verbose")]
    pub verbose: bool,
}

pub fn system_prune(store: &Store, args: SystemPruneArgs) -> anyhow::Result<i32> {
    if !args.force {
        anyhow::bail!("refusing to prune without confirmation: use --force");
    }
    prune(store, PruneArgs { force: true })?;
    let (lines, freed) = super::images::prune_images(store, args.all)?;
    for l in lines {
        println!("{l}");
    }
    println!(
        "Total reclaimed space from images: {:.1}MB",
        freed as f64 / 1e6
    );
    // The build cache: step records and RUN --mount=type=cache directories.
    let cache = store.root.join("build-cache");
    let size = super::images::dir_usage(&cache);
    if cache.exists() {
        std::fs::remove_dir_all(&cache)
            .with_context(|| format!("removing the build cache {}", cache.display()))?;
    }
    println!(
        "Total reclaimed space from the build cache: {:.1}MB",
        size as f64 / 1e6
    );
    Ok(0)
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    pub container: String,
}

fn cgroup_version() -> &'static str {
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
        && std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .is_ok_and(|c| c.contains("memory"))
    {
        "2"
    } else {
        "1"
    }
}

pub fn info(store: &Store) -> anyhow::Result<i32> {
    let (mut running, mut paused, mut stopped) = (0, 0, 0);
    let ids = store.ids()?;
    for id in &ids {
        match effective_state(store, id).map(|s| s.status) {
            Ok(Status::Running | Status::Restarting) => running += 1,
            Ok(Status::Paused) => paused += 1,
            _ => stopped += 1,
        }
    }
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let os = std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("PRETTY_NAME=")
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_default();
    let mem_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0);
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut out = std::io::stdout().lock();
    writeln!(out, "Containers: {}", ids.len())?;
    writeln!(out, " Running: {running}")?;
    writeln!(out, " Paused: {paused}")?;
    writeln!(out, " Stopped: {stopped}")?;
    writeln!(
        out,
        "Server Version: berth {} (daemonless)",
        env!("CARGO_PKG_VERSION")
    )?;
    writeln!(out, "Storage Driver: overlay")?;
    writeln!(out, "Logging Driver: json-file")?;
    writeln!(out, "Cgroup Version: {}", cgroup_version())?;
    writeln!(out, "Runtime: berth (built in)")?;
    writeln!(out, "Init Binary: berth-init (built in)")?;
    writeln!(
        out,
        "Security Options:\n seccomp\n  Profile: builtin\n no-new-privileges"
    )?;
    writeln!(out, "Kernel Version: {}", kernel.trim())?;
    writeln!(out, "Operating System: {os}")?;
    writeln!(out, "Architecture: {}", std::env::consts::ARCH)?;
    writeln!(out, "CPUs: {cpus}")?;
    writeln!(out, "Total Memory: {:.2}GiB", mem_kib as f64 / 1_048_576.0)?;
    writeln!(out, "Berth Root Dir: {}", store.root.display())?;
    writeln!(out, "Berth Run Dir: {}", store.run.display())?;
    let helpers = super::resident::list(store, &ids)?;
    let total: u64 = helpers.iter().filter_map(|h| h.pss_kib).sum();
    writeln!(
        out,
        "Resident Helpers: {} processes, {:.1}MiB PSS (what berth keeps running without a daemon; `system df -v` lists them)",
        helpers.len(),
        total as f64 / 1024.0
    )?;
    for (kind, plural) in super::resident::KINDS {
        let of_kind: Vec<_> = helpers.iter().filter(|h| h.kind == kind).collect();
        let kib: u64 = of_kind.iter().filter_map(|h| h.pss_kib).sum();
        writeln!(
            out,
            " {plural}: {} ({:.1}MiB)",
            of_kind.len(),
            kib as f64 / 1024.0
        )?;
    }
    writeln!(out, "Helper Logs:")?;
    let run = store.run.display();
    writeln!(
        out,
        " shims and port proxies: {run}/containers/<ID>/shim.log"
    )?;
    writeln!(out, " DNS responders: {run}/networks/<NETWORK>.dns.log")?;
    writeln!(
        out,
        " network teardown: {run}/networks/<NETWORK>.teardown.log"
    )?;
    writeln!(out, " retired bridges' reaper: {run}/networks/reap.log")?;
    writeln!(out, " watchers: {run}/projects/<PROJECT>.watch.log")?;
    Ok(0)
}

fn dir_size(p: &std::path::Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(p)
        .map(|rd| rd.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}

pub fn prune(store: &Store, args: PruneArgs) -> anyhow::Result<i32> {
    if !args.force {
        if !std::io::stdin().is_terminal() {
            anyhow::bail!("refusing to remove containers without confirmation: use --force");
        }
        eprint!("WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !answer.trim().eq_ignore_ascii_case("y") {
            return Ok(0);
        }
    }
    let mut removed = Vec::new();
    let mut reclaimed = 0u64;
    for id in store.ids()? {
        let st = effective_state(store, &id)?;
        if st.can_delete() {
            reclaimed += dir_size(&store.container_dir(&id).join("upper"));
            runtime::remove(store, &id, false)?;
            removed.push(id);
        }
    }
    // Creates killed part-way (older than any create still running).
    for id in store.unfinished(std::time::Duration::from_secs(600))? {
        reclaimed += dir_size(&store.container_dir(&id).join("upper"));
        store.remove(&id)?;
        removed.push(id);
    }
    // What `--rm` containers left when their deletion behind was cut short.
    runtime::sweep_removed(store, std::time::Duration::from_secs(60))?;
    let mut out = std::io::stdout().lock();
    if !removed.is_empty() {
        writeln!(out, "Deleted Containers:")?;
        for id in &removed {
            writeln!(out, "{id}")?;
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "Total reclaimed space: {:.1}kB",
        reclaimed as f64 / 1000.0
    )?;
    Ok(0)
}

pub fn top(store: &Store, args: TopArgs) -> anyhow::Result<i32> {
    let id = store.resolve(&args.container)?;
    let st = effective_state(store, &id)?;
    if st.status != Status::Running && st.status != Status::Paused {
        anyhow::bail!("container {} is not running", args.container);
    }
    let mut rows = Vec::new();
    for pid in runtime::processes(store, &id)? {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| {
                    l.strip_prefix(k)
                        .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
                })
                .unwrap_or_default()
        };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| {
                String::from_utf8_lossy(&b)
                    .replace('\0', " ")
                    .trim()
                    .to_string()
            })
            .unwrap_or_default();
        rows.push(vec![field("Uid:"), pid.to_string(), field("PPid:"), cmd]);
    }
    print!(
        "{}",
        super::table::render(&["UID", "PID", "PPID", "CMD"], &rows)
    );
    Ok(0)
}
