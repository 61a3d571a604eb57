//! The per-service verbs of `berth compose`: logs, stop, start, restart,
//! rm, kill, exec and port — each finds the project's containers by their
//! labels and hands them to the runtime.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::lifecycle::project;
use super::ComposeArgs;
use crate::engine::observe::ActualContainer;
use crate::runtime::store::Store;

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow log output.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs for each container.
    #[arg(short = 'n', long = "tail")]
    pub tail: Option<String>,
    /// Show logs since a timestamp or relative time (e.g. 42m).
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp or relative time (e.g. 42m).
    #[arg(long)]
    pub until: Option<String>,
    /// Show timestamps.
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Produce monochrome output.
    #[arg(long = "no-color")]
    pub no_color: bool,
    /// Don't print a prefix.
    #[arg(long = "no-log-prefix")]
    pub no_log_prefix: bool,
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ServicesArgs {
    /// Seconds to wait before killing (stop, restart).
    #[arg(short = 't', long)]
    pub timeout: Option<u64>,
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Don't ask to confirm removal.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Stop the containers, if required, before removing.
    #[arg(short = 's', long)]
    pub stop: bool,
    /// Remove anonymous volumes attached to containers.
    #[arg(short = 'v', long)]
    pub volumes: bool,
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send.
    #[arg(short = 's', long, default_value = "SIGKILL")]
    pub signal: String,
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Detached mode: run the command in the background.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Set environment variables.
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Run the command as this user.
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Path to workdir directory for this command.
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// Index of the container if the service has several replicas.
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    /// Disable pseudo-TTY allocation (a TTY is given when stdin is one).
    #[arg(short = 'T', long = "no-tty")]
    pub no_tty: bool,
    pub service: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PortArgs {
    /// Index of the container if the service has several replicas.
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    /// tcp or udp.
    #[arg(long, default_value = "tcp")]
    pub protocol: String,
    pub service: String,
    pub private_port: u16,
}

#[derive(Debug, Args)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information).
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// Index of the container if the service has several replicas.
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    /// SERVICE:SRC_PATH or a host path.
    pub source: String,
    /// SERVICE:DEST_PATH or a host path.
    pub destination: String,
}

/// The project's containers of `services` (all when empty).
fn containers(
    compose: &ComposeArgs,
    store: &Store,
    services: &[String],
) -> anyhow::Result<(crate::spec::Project, Vec<ActualContainer>)> {
    let project = project(compose, &[])?;
    super::lifecycle::check_services(&project, services)?;
    let list = crate::engine::observe::containers(store, &project.name)?
        .into_iter()
        .filter(|c| !c.oneoff && (services.is_empty() || services.contains(&c.service)))
        .collect();
    Ok((project, list))
}

pub fn logs(compose: &ComposeArgs, store: &Store, args: &LogsArgs) -> anyhow::Result<ExitCode> {
    let (project, list) = containers(compose, store, &args.services)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let opts = crate::runtime::logs::ReadOptions {
        tail: match args.tail.as_deref() {
            None | Some("all") => None,
            Some(n) => Some(n.parse().with_context(|| format!("invalid --tail {n:?}"))?),
        },
        since: args
            .since
            .as_deref()
            .map(|s| {
                crate::runtime::logs::parse_since(s, now)
                    .with_context(|| format!("invalid --since {s:?}"))
            })
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(|s| {
                crate::runtime::logs::parse_since(s, now)
                    .with_context(|| format!("invalid --until {s:?}"))
            })
            .transpose()?,
        timestamps: args.timestamps,
    };
    let chosen: Vec<&ActualContainer> = list.iter().collect();
    let mut sources = super::logs::sources(store, &project.name, &chosen);
    let style = super::logs::Style::from_flags(args.timestamps, args.no_color, args.no_log_prefix);
    super::logs::print(store, &mut sources, &opts, &style, args.follow, None, false);
    Ok(ExitCode::SUCCESS)
}

/// Runs `f` on every container at once; the first error wins.
fn each(
    list: &[ActualContainer],
    f: impl Fn(&ActualContainer) -> anyhow::Result<()> + Sync,
) -> anyhow::Result<()> {
    crate::engine::execute::in_parallel(list, f)
}

pub fn stop(compose: &ComposeArgs, store: &Store, args: &ServicesArgs) -> anyhow::Result<ExitCode> {
    let (project, list) = containers(compose, store, &args.services)?;
    let graph = crate::graph::ServiceGraph::new(&project)?;
    crate::engine::execute::in_stop_order(
        &graph,
        &list,
        |c| &c.service,
        |c| -> anyhow::Result<()> {
            crate::engine::hooks::before_stop(store, &project, &c.service, &c.id, &|line| {
                eprintln!(" ! {line}")
            });
            crate::runtime::stop(store, &c.id, args.timeout).with_context(|| c.name.clone())?;
            crate::cli::progress::report(&format!("Container {}  Stopped", c.name));
            Ok(())
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Starts stopped containers in dependency order.
pub fn start(
    compose: &ComposeArgs,
    store: &Store,
    args: &ServicesArgs,
) -> anyhow::Result<ExitCode> {
    let (project, list) = containers(compose, store, &args.services)?;
    let graph = crate::graph::ServiceGraph::new(&project)?;
    for layer in graph.start_layers() {
        let batch: Vec<ActualContainer> = list
            .iter()
            .filter(|c| layer.iter().any(|s| s.0 == c.service) && !c.running())
            .cloned()
            .collect();
        each(&batch, |c| {
            crate::runtime::ensure_started(store, &c.id).with_context(|| c.name.clone())?;
            crate::cli::progress::report(&format!("Container {}  Started", c.name));
            Ok(())
        })?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn restart(
    compose: &ComposeArgs,
    store: &Store,
    args: &ServicesArgs,
) -> anyhow::Result<ExitCode> {
    stop(compose, store, args)?;
    start(compose, store, args)
}

pub fn rm(compose: &ComposeArgs, store: &Store, args: &RmArgs) -> anyhow::Result<ExitCode> {
    let (_, list) = containers(compose, store, &args.services)?;
    let doomed: Vec<ActualContainer> = list
        .into_iter()
        .filter(|c| args.stop || !c.running())
        .collect();
    if doomed.is_empty() {
        eprintln!("No stopped containers");
        return Ok(ExitCode::SUCCESS);
    }
    if !args.force && std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        let names: Vec<&str> = doomed.iter().map(|c| c.name.as_str()).collect();
        eprint!(
            "Going to remove {}\n? Are you sure? [y/N] ",
            names.join(", ")
        );
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !answer.trim().eq_ignore_ascii_case("y") {
            return Ok(ExitCode::SUCCESS);
        }
    }
    each(&doomed, |c| {
        crate::engine::execute::remove_container(store, &c.id, None)?;
        crate::cli::progress::report(&format!("Container {}  Removed", c.name));
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn kill(compose: &ComposeArgs, store: &Store, args: &KillArgs) -> anyhow::Result<ExitCode> {
    let (_, list) = containers(compose, store, &args.services)?;
    let signal = crate::runtime::parse_signal(&args.signal)?;
    let running: Vec<ActualContainer> = list.into_iter().filter(|c| c.running()).collect();
    each(&running, |c| {
        crate::runtime::kill_container(store, &c.id, signal).with_context(|| c.name.clone())?;
        crate::cli::progress::report(&format!("Container {}  Killed", c.name));
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn one(
    compose: &ComposeArgs,
    store: &Store,
    service: &str,
    index: u32,
) -> anyhow::Result<ActualContainer> {
    let (project, list) = containers(compose, store, &[service.to_string()])?;
    list.into_iter()
        .find(|c| c.number == index)
        .with_context(|| {
            format!(
                "service \"{service}\" is not running (project {})",
                project.name
            )
        })
}

pub fn exec(compose: &ComposeArgs, store: &Store, args: &ExecArgs) -> anyhow::Result<ExitCode> {
    let c = one(compose, store, &args.service, args.index)?;
    let tty = !args.no_tty && std::io::IsTerminal::is_terminal(&std::io::stdin());
    let req = crate::runtime::exec::ExecRequest {
        args: args.command.clone(),
        env: args.env.clone(),
        user: args.user.clone(),
        workdir: args.workdir.clone(),
        detach: args.detach,
        interactive: !args.detach,
        tty,
    };
    let code = crate::runtime::exec::exec(store, &c.id, &req)?;
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// `compose cp`: `berth cp` with a service (and replica index) for the container.
pub fn cp(compose: &ComposeArgs, store: &Store, args: &CpArgs) -> anyhow::Result<ExitCode> {
    use crate::cli::copy;
    let (source, destination) = (
        copy::parse_end(&args.source),
        copy::parse_end(&args.destination),
    );
    let service = copy::container_side(&source, &destination)?;
    let c = one(compose, store, service, args.index)?;
    copy::copy_between(store, &source, &destination, &c.id, args.archive)?;
    Ok(ExitCode::SUCCESS)
}

pub fn port(compose: &ComposeArgs, store: &Store, args: &PortArgs) -> anyhow::Result<ExitCode> {
    let c = one(compose, store, &args.service, args.index)?;
    let cfg: crate::runtime::spec::ContainerConfig =
        store.read_json(&store.container_dir(&c.id).join("berth.json"))?;
    let p = cfg
        .ports
        .iter()
        .find(|p| p.container_port == args.private_port && p.protocol == args.protocol)
        .with_context(|| {
            format!(
                "no port {}/{} is published for {}",
                args.private_port, args.protocol, args.service
            )
        })?;
    if let Some(b) = p.bindings().first() {
        println!("{b}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Pauses (or unpauses) the services' running containers.
pub fn pause(
    compose: &ComposeArgs,
    store: &Store,
    args: &ServicesArgs,
    frozen: bool,
) -> anyhow::Result<ExitCode> {
    let (_, list) = containers(compose, store, &args.services)?;
    let live: Vec<ActualContainer> = list.into_iter().filter(|c| c.running()).collect();
    each(&live, |c| {
        crate::runtime::pause(store, &c.id, frozen).with_context(|| c.name.clone())?;
        crate::cli::progress::report(&format!(
            "Container {}  {}",
            c.name,
            if frozen { "Paused" } else { "Unpaused" }
        ));
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The processes of each running container, as `berth top` shows them.
pub fn top(compose: &ComposeArgs, store: &Store, args: &ServicesArgs) -> anyhow::Result<ExitCode> {
    let (_, list) = containers(compose, store, &args.services)?;
    for c in list.iter().filter(|c| c.running()) {
        println!("{}", c.name);
        crate::cli::system::top(
            store,
            crate::cli::system::TopArgs {
                container: c.id.clone(),
            },
        )?;
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

// `compose images`
#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Only display image ids.
    #[arg(short, long)]
    pub quiet: bool,
    /// Format the output: table, json, table TEMPLATE or a Go template.
    #[arg(long, default_value = "table")]
    pub format: String,
    pub services: Vec<String>,
}

/// The images the project's containers use.
pub fn images(compose: &ComposeArgs, store: &Store, args: &ImagesArgs) -> anyhow::Result<ExitCode> {
    let (_, list) = containers(compose, store, &args.services)?;
    let images = crate::image::store::ImageStore::new(&store.root);
    let mut items = Vec::new();
    let mut rows = Vec::new();
    for c in &list {
        let (repo, tag) = match c.image.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
            Some((r, t)) => (r.to_string(), t.to_string()),
            None => (c.image.clone(), "latest".to_string()),
        };
        let resolved = images.resolve(&c.image).ok();
        let id = resolved
            .as_ref()
            .map(|i| i.config_digest.clone())
            .unwrap_or_default();
        let created = resolved
            .as_ref()
            .and_then(|i| i.config.created().clone())
            .unwrap_or_default();
        let size: u64 = resolved
            .as_ref()
            .map(|i| {
                i.layers
                    .iter()
                    .map(|l| super::super::images::dir_usage(l))
                    .sum()
            })
            .unwrap_or(0);
        if args.quiet {
            println!("{id}");
            continue;
        }
        let short: String = id.trim_start_matches("sha256:").chars().take(12).collect();
        items.push(serde_json::json!({
            "ID": id, "ContainerName": c.name, "Repository": repo, "Tag": tag,
            "Platform": format!("linux/{}", if cfg!(target_arch = "aarch64") { "arm64" } else { "amd64" }),
            "Size": size, "LastTagTime": created,
        }));
        rows.push(vec![
            c.name.clone(),
            repo,
            tag,
            short,
            crate::cli::listing::human_size(size, 3),
        ]);
    }
    if args.quiet {
        return Ok(ExitCode::SUCCESS);
    }
    let format = crate::cli::format::Format::parse(&args.format)?;
    crate::cli::format::print_array_or(&format, items, &[("ContainerName", "CONTAINER")], || {
        crate::cli::table::render(
            &["CONTAINER", "REPOSITORY", "TAG", "IMAGE ID", "SIZE"],
            &rows,
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Every project with containers on this machine, with its states and files.
pub fn ls(store: &Store, args: &super::LsArgs) -> anyhow::Result<ExitCode> {
    let mut projects: std::collections::BTreeMap<String, (Vec<String>, String)> =
        std::collections::BTreeMap::new();
    for id in store.ids()? {
        let Ok(cfg) = store.read_json::<crate::runtime::spec::ContainerConfig>(
            &store.container_dir(&id).join("berth.json"),
        ) else {
            continue;
        };
        let Some(project) = cfg.labels.get(crate::spec::labels::PROJECT) else {
            continue;
        };
        let status = crate::runtime::effective_state(store, &id)
            .map(|s| s.status.as_str().to_string())
            .unwrap_or_else(|_| "exited".into());
        let entry = projects.entry(project.clone()).or_default();
        entry.0.push(status);
        entry.1 = cfg
            .labels
            .get(crate::spec::labels::CONFIG_FILES)
            .cloned()
            .unwrap_or_default();
    }
    let mut rows = Vec::new();
    let mut items = Vec::new();
    for (name, (states, files)) in projects {
        if !args.all && !states.iter().any(|s| s == "running") {
            continue;
        }
        let mut counts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
        for s in &states {
            *counts.entry(s.as_str()).or_default() += 1;
        }
        let mut status: Vec<String> = counts.iter().map(|(s, n)| format!("{s}({n})")).collect();
        if crate::watch::running(store, &name).is_some() {
            status.push("watching".into());
        }
        items.push(
            serde_json::json!({"Name": name, "Status": status.join(", "), "ConfigFiles": files}),
        );
        rows.push(vec![name, status.join(", "), files]);
    }
    if args.quiet {
        for r in &rows {
            println!("{}", r[0]);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let format = crate::cli::format::Format::parse(&args.format)?;
    crate::cli::format::print_array_or(&format, items, &[("ConfigFiles", "CONFIG FILES")], || {
        crate::cli::table::render(&["NAME", "STATUS", "CONFIG FILES"], &rows)
    })?;
    Ok(ExitCode::SUCCESS)
}
