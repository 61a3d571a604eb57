//! `compose up`, `down` and `ps`: flags as Docker Compose takes them, the
//! engine does the work, output as Docker Compose prints it.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::ComposeArgs;
use crate::engine;
use crate::runtime::store::Store;

#[derive(Debug, Args)]
// `-V` is --renew-anon-volumes here, as in Docker Compose.
#[command(disable_version_flag = true)]
pub struct UpArgs {
    /// Detached mode: run containers in the background.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Wait for services to be running|healthy (implies detached mode).
    #[arg(long)]
    pub wait: bool,
    /// Maximum seconds to wait with --wait.
    #[arg(long = "wait-timeout")]
    pub wait_timeout: Option<u64>,
    /// Recreate containers even if their configuration and image haven't changed.
    #[arg(long = "force-recreate")]
    pub force_recreate: bool,
    /// If containers already exist, don't recreate them.
    #[arg(long = "no-recreate", conflicts_with = "force_recreate")]
    pub no_recreate: bool,
    /// Remove containers for services not defined in the compose file.
    #[arg(long = "remove-orphans")]
    pub remove_orphans: bool,
    /// Don't start linked services.
    #[arg(long = "no-deps")]
    pub no_deps: bool,
    /// Don't start the services after creating them.
    #[arg(long = "no-start")]
    pub no_start: bool,
    /// Scale SERVICE to NUM instances (SERVICE=NUM).
    #[arg(long)]
    pub scale: Vec<String>,
    /// Print the plan and change nothing.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// Pull images before running: always, missing or never (default: each service's pull_policy).
    #[arg(long, value_parser = ["always", "missing", "never"])]
    pub pull: Option<String>,
    /// Recreate anonymous volumes instead of retrieving data from the previous containers.
    #[arg(short = 'V', long = "renew-anon-volumes")]
    pub renew_anon_volumes: bool,
    /// Build images before starting containers.
    #[arg(long)]
    pub build: bool,
    /// Watch source code and rebuild/refresh containers when files are
    /// updated (with -d: a watcher in the background until `down`).
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Stop every container when one stops (attached mode).
    #[arg(long = "abort-on-container-exit")]
    pub abort_on_container_exit: bool,
    /// Exit with this service's exit code (implies --abort-on-container-exit).
    #[arg(long = "exit-code-from")]
    pub exit_code_from: Option<String>,
    /// Seconds to wait for containers to stop when interrupted.
    #[arg(short = 't', long)]
    pub timeout: Option<u64>,
    /// Show timestamps in the logs.
    #[arg(long)]
    pub timestamps: bool,
    /// Don't print a prefix in the logs.
    #[arg(long = "no-log-prefix")]
    pub no_log_prefix: bool,
    /// Produce monochrome output.
    #[arg(long = "no-color")]
    pub no_color: bool,
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Remove named volumes declared in the volumes section and anonymous ones.
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Remove containers for services not defined in the compose file.
    #[arg(long = "remove-orphans")]
    pub remove_orphans: bool,
    /// Shutdown timeout in seconds.
    #[arg(short = 't', long)]
    pub timeout: Option<u64>,
    /// Remove images used by services: "local" removes those without a
    /// custom tag (none until images are built), "all" every one.
    #[arg(long, value_parser = ["local", "all"])]
    pub rmi: Option<String>,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all stopped containers too.
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display ids.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Display services.
    #[arg(long)]
    pub services: bool,
    /// Filter by status (running, exited, paused, created, restarting).
    #[arg(long)]
    pub status: Vec<String>,
    /// table or json.
    #[arg(long, default_value = "table")]
    pub format: String,
    pub service_names: Vec<String>,
}

pub(crate) fn project(
    compose: &ComposeArgs,
    services: &[String],
) -> anyhow::Result<crate::spec::Project> {
    let options = compose.project_options(services, true)?;
    crate::spec::load(&options).map_err(anyhow::Error::new)
}

/// Fails on the first name that is not a service of the project.
pub(crate) fn check_services(
    project: &crate::spec::Project,
    services: &[String],
) -> anyhow::Result<()> {
    match services.iter().find(|s| project.service(s).is_none()) {
        Some(s) => anyhow::bail!("no such service: {s}"),
        None => Ok(()),
    }
}

/// `--scale SERVICE=NUM` flags.
pub(crate) fn parse_scale(
    project: &crate::spec::Project,
    flags: &[String],
) -> anyhow::Result<std::collections::BTreeMap<String, u32>> {
    let mut scale = std::collections::BTreeMap::new();
    for s in flags {
        let (k, v) = s
            .split_once('=')
            .with_context(|| format!("invalid --scale {s:?}: use SERVICE=NUM"))?;
        let n: u32 = v
            .parse()
            .with_context(|| format!("invalid --scale {s:?}: {v} is not a number"))?;
        check_services(project, &[k.to_string()])?;
        scale.insert(k.to_string(), n);
    }
    Ok(scale)
}

pub fn up(compose: &ComposeArgs, store: &Store, args: &UpArgs) -> anyhow::Result<ExitCode> {
    let project = project(compose, &args.services)?;
    let scale = parse_scale(&project, &args.scale)?;
    check_services(&project, &args.services)?;
    if let Some(s) = &args.exit_code_from {
        check_services(&project, std::slice::from_ref(s))?;
    }
    let opts = engine::UpOptions {
        plan: engine::plan::PlanOptions {
            force_recreate: args.force_recreate,
            no_recreate: args.no_recreate,
            remove_orphans: args.remove_orphans,
            scale,
        },
        services: args.services.clone(),
        no_deps: args.no_deps,
        no_start: args.no_start,
        wait: args.wait.then(|| {
            args.wait_timeout
                .map(Duration::from_secs)
                .unwrap_or(engine::execute::DEFAULT_WAIT)
        }),
        pull: super::pull_policy(&args.pull)?,
        renew_anon_volumes: args.renew_anon_volumes,
        build: engine::build::BuildRequest {
            force: args.build,
            ..Default::default()
        },
    };
    if args.dry_run {
        print!("{}", engine::plan_only(store, &project, &opts)?);
        return Ok(ExitCode::SUCCESS);
    }
    if args.watch {
        // A bad rule fails before anything starts.
        crate::watch::rules::rules(&project, &args.services)?;
    }
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    if let Err(e) = engine::up(store, &project, &opts, &crate::cli::progress::report) {
        return Err(anyhow::Error::new(e).context(format!(
            "project {}: `up` stopped here; run it again to converge, or `berth compose down` to remove what it made",
            project.name
        )));
    }
    if args.watch && (args.detach || args.wait) {
        super::watch::start_detached(compose, store, &project, &args.services)?;
    }
    if args.detach || args.wait {
        return Ok(ExitCode::SUCCESS);
    }
    if !args.watch {
        return attached(store, &project, args, started);
    }
    // Logs and watch events together; Ctrl-C ends both.
    let interrupts = crate::runtime::count_interrupts();
    std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let say = |line: &str| eprintln!("⦿ {line}");
            crate::watch::run::watch(
                store,
                &project,
                &args.services,
                &say,
                interrupts,
                &mut || {},
            )
        });
        let code = attached(store, &project, args, started);
        // The logs end when every container stopped or on Ctrl-C; the
        // watcher follows.
        interrupts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        match watcher.join() {
            Ok(Err(e)) => eprintln!("watch: {e}"),
            Err(_) => eprintln!("watch: the watcher failed"),
            Ok(Ok(())) => {}
        }
        code
    })
}

/// The attached `up`: every container's log, prefixed, until they all stop;
/// Ctrl-C stops them gracefully, a second Ctrl-C kills them.
fn attached(
    store: &Store,
    project: &crate::spec::Project,
    args: &UpArgs,
    started: i64,
) -> anyhow::Result<ExitCode> {
    let interrupts = crate::runtime::count_interrupts();
    let containers = engine::observe::containers(store, &project.name)?;
    let chosen: Vec<_> = containers
        .iter()
        .filter(|c| !c.oneoff && (args.services.is_empty() || args.services.contains(&c.service)))
        .collect();
    let mut sources = super::logs::sources(store, &project.name, &chosen);
    let style = super::logs::Style::from_flags(args.timestamps, args.no_color, args.no_log_prefix);
    let abort = args.abort_on_container_exit || args.exit_code_from.is_some();
    // What the containers printed since this `up` began.
    let since_now = crate::runtime::logs::ReadOptions {
        since: Some(started),
        ..Default::default()
    };
    let exited = super::logs::print(
        store,
        &mut sources,
        &since_now,
        &style,
        true,
        Some((interrupts, 0)),
        abort,
    );
    let interrupted = interrupts.load(std::sync::atomic::Ordering::SeqCst) > 0;
    if interrupted || abort {
        if interrupted {
            eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
        } else if let Some(id) = &exited {
            let name = chosen
                .iter()
                .find(|c| c.id == *id)
                .map(|c| c.name.clone())
                .unwrap_or_default();
            eprintln!("{name} exited with code {}", exit_code_of(store, id));
            eprintln!("Aborting on container exit...");
        }
        let graph = crate::graph::ServiceGraph::new(project)?;
        stop_all(store, &graph, &chosen, args.timeout, interrupts);
    }
    if let Some(s) = &args.exit_code_from {
        if let Some(c) = chosen.iter().find(|c| c.service == *s) {
            return Ok(ExitCode::from(
                exit_code_of(store, &c.id).clamp(0, 255) as u8
            ));
        }
    }
    Ok(if interrupted {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

fn exit_code_of(store: &Store, id: &str) -> i32 {
    crate::runtime::effective_state(store, id)
        .ok()
        .and_then(|s| s.exit_code)
        .unwrap_or(0)
}

/// Stops containers in reverse dependency order (each layer in parallel);
/// a further interrupt kills them.
fn stop_all(
    store: &Store,
    graph: &crate::graph::ServiceGraph,
    containers: &[&engine::observe::ActualContainer],
    timeout: Option<u64>,
    interrupts: &std::sync::atomic::AtomicUsize,
) {
    let seen = interrupts.load(std::sync::atomic::Ordering::SeqCst);
    std::thread::scope(|s| {
        s.spawn(move || {
            let stopped = engine::execute::in_stop_order(
                graph,
                containers,
                |c| &c.service,
                |c| -> anyhow::Result<()> {
                    crate::runtime::stop(store, &c.id, timeout).with_context(|| c.name.clone())?;
                    crate::cli::progress::report(&format!("Container {}  Stopped", c.name));
                    Ok(())
                },
            );
            if let Err(e) = stopped {
                eprintln!(" ✘ {e:#}");
            }
        });
        s.spawn(move || loop {
            let all_done = containers.iter().all(|c| {
                crate::runtime::effective_state(store, &c.id)
                    .map(|st| st.status == crate::runtime::store::Status::Exited)
                    .unwrap_or(true)
            });
            if all_done {
                return;
            }
            if interrupts.load(std::sync::atomic::Ordering::SeqCst) > seen.max(1) {
                for c in containers {
                    let _ = crate::runtime::kill_container(
                        store,
                        &c.id,
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        });
    });
}

pub fn down(compose: &ComposeArgs, store: &Store, args: &DownArgs) -> anyhow::Result<ExitCode> {
    let project = project(compose, &[])?;
    let opts = engine::DownOptions {
        volumes: args.volumes,
        remove_orphans: args.remove_orphans,
        timeout: args.timeout,
    };
    if crate::watch::stop(store, &project.name) {
        crate::cli::progress::report("Watcher  Stopped");
    }
    engine::down(store, &project, &opts, &crate::cli::progress::report)?;
    if let Some(which) = &args.rmi {
        remove_images(store, &project, which == "all")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `down --rmi`: the services' images that no remaining container uses.
/// `local` takes only images with no custom tag: those compose named itself
/// (`<project>-<service>`, as builds name them).
fn remove_images(store: &Store, project: &crate::spec::Project, all: bool) -> anyhow::Result<()> {
    let images = crate::image::store::ImageStore::new(&store.root);
    let mut names: Vec<String> = Vec::new();
    for service in project.service_names() {
        let Some(image) = engine::build::image_name(project, &service.0) else {
            continue;
        };
        // "local": only the names compose gives built images itself.
        if !all && image != format!("{}-{}", project.name, service.0) {
            continue;
        }
        if !names.contains(&image) {
            names.push(image);
        }
    }
    for name in names {
        let Ok(manifest) = images.lookup(&name) else {
            continue;
        };
        if crate::cli::images::user_of(store, &manifest).is_some() {
            continue;
        }
        images
            .remove(&name, None, false)
            .with_context(|| format!("removing image {name}"))?;
        crate::cli::progress::report(&format!("Image {name}  Removed"));
    }
    Ok(())
}

pub fn ps(compose: &ComposeArgs, store: &Store, args: &PsArgs) -> anyhow::Result<ExitCode> {
    let project = project(compose, &[])?;
    let containers = engine::observe::containers(store, &project.name)?;
    let mut rows = Vec::new();
    for c in &containers {
        if !args.service_names.is_empty() && !args.service_names.contains(&c.service) {
            continue;
        }
        let Ok(st) = crate::runtime::effective_state(store, &c.id) else {
            continue;
        };
        let status = st.status.as_str();
        if !args.status.is_empty() {
            if !args.status.iter().any(|s| s == status) {
                continue;
            }
        } else if !args.all && !c.running() {
            continue;
        }
        rows.push((c, st));
    }
    if args.services {
        let mut names: Vec<&str> = rows.iter().map(|(c, _)| c.service.as_str()).collect();
        names.dedup();
        for n in names {
            println!("{n}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.quiet {
        for (c, _) in &rows {
            println!("{}", c.id);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let ports_of = |id: &str| -> String {
        store
            .read_json::<crate::runtime::spec::ContainerConfig>(
                &store.container_dir(id).join("berth.json"),
            )
            .map(|cfg| {
                cfg.ports
                    .iter()
                    .flat_map(|p| {
                        p.bindings()
                            .into_iter()
                            .map(move |b| format!("{b}->{}/{}", p.container_port, p.protocol))
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    let format = crate::cli::format::Format::parse(&args.format)?;
    if !format.is_table() {
        let items: Vec<serde_json::Value> = rows
            .iter()
            .filter_map(|(c, st)| {
                let cfg: crate::runtime::spec::ContainerConfig = store
                    .read_json(&store.container_dir(&c.id).join("berth.json"))
                    .ok()?;
                Some(crate::cli::listing::compose_container(
                    &project.name,
                    &c.service,
                    &c.id,
                    &cfg,
                    st,
                    &c.image,
                ))
            })
            .collect();
        let headers = [("ID", "CONTAINER ID"), ("RunningFor", "CREATED")];
        crate::cli::format::print_or(&format, &items, &headers, String::new)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Vec::new();
    for (c, st) in &rows {
        table.push(vec![
            c.name.clone(),
            c.image.clone(),
            c.service.clone(),
            crate::cli::containers::status_text(st),
            ports_of(&c.id),
        ]);
    }
    print!(
        "{}",
        crate::cli::table::render(&["NAME", "IMAGE", "SERVICE", "STATUS", "PORTS"], &table)
    );
    if let Some(pid) = crate::watch::running(store, &project.name) {
        eprintln!(
            "watch: running in the background (pid {pid}; log: {})",
            crate::watch::log_path(store, &project.name).display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
