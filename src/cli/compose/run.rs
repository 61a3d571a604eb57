//! `compose run` (a one-off command in a new container of a service),
//! `compose create` (`up --no-start`), `compose pull` and `compose build`
//! (the services' images).

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::lifecycle::project;
use super::ComposeArgs;
use crate::engine;
use crate::runtime::store::Store;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run container in background and print container ID.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Automatically remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Don't start linked services.
    #[arg(long = "no-deps")]
    pub no_deps: bool,
    /// Set environment variables.
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Add or override a label.
    #[arg(short = 'l', long = "label")]
    pub labels: Vec<String>,
    /// Publish a container's port(s) to the host.
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Run command with all service's ports enabled and mapped to the host.
    #[arg(long = "service-ports")]
    pub service_ports: bool,
    /// Bind mount a volume.
    #[arg(short = 'v', long = "volume")]
    pub volumes: Vec<String>,
    /// Run as specified username or uid.
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// Override the entrypoint of the image.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Assign a name to the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Disable pseudo-TTY allocation (a TTY is given when stdin is one).
    #[arg(short = 'T', long = "no-TTY")]
    pub no_tty: bool,
    /// Keep STDIN open even if not attached.
    #[arg(short = 'i', long, default_value_t = true)]
    pub interactive: bool,
    /// Pull image before running: always, missing or never.
    #[arg(long, value_parser = ["always", "missing", "never"])]
    pub pull: Option<String>,
    pub service: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Runs a one-off command of a service; exits with its exit code.
pub fn run(compose: &ComposeArgs, store: &Store, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let project = project(compose, std::slice::from_ref(&args.service))?;
    if project.service(&args.service).is_none() {
        anyhow::bail!("no such service: {}", args.service);
    }
    let tty = !args.detach && !args.no_tty && std::io::IsTerminal::is_terminal(&std::io::stdin());
    let cwd = std::env::current_dir().context("finding the current directory")?;
    let mut publish = Vec::new();
    for p in &args.publish {
        publish.extend(crate::intent::PortRequest::parse(p)?);
    }
    let overrides = engine::oneoff::Overrides {
        command: args.command.clone(),
        entrypoint: args
            .entrypoint
            .as_ref()
            .map(|e| crate::spec::units::split_shell_words(e).unwrap_or_else(|_| vec![e.clone()])),
        env: crate::cli::run::env_pairs(&args.env),
        user: args.user.clone(),
        workdir: args.workdir.clone(),
        name: args.name.clone(),
        publish,
        service_ports: args.service_ports,
        volumes: args
            .volumes
            .iter()
            .map(|v| crate::cli::run::parse_volume_flag(v, &cwd))
            .collect::<anyhow::Result<_>>()?,
        labels: crate::cli::run::key_values(&args.labels),
        tty,
        interactive: args.interactive && !args.detach,
        remove: args.rm,
    };
    let (id, name) = engine::oneoff::create(
        store,
        &project,
        &args.service,
        args.no_deps,
        &overrides,
        &crate::cli::progress::report,
        super::pull_policy(&args.pull)?,
    )
    .with_context(|| {
        format!(
            "project {}: `run {}` stopped here; `berth compose down` removes what it made",
            project.name, args.service
        )
    })?;
    if args.detach {
        crate::runtime::start(store, &id, false).with_context(|| name.clone())?;
        println!("{name}");
        return Ok(ExitCode::SUCCESS);
    }
    // The container has the terminal from here on: the frame is done.
    crate::cli::progress::finish();
    let code = match crate::runtime::start(store, &id, true) {
        Ok(code) => code.unwrap_or(0),
        Err(e) => {
            if args.rm {
                let _ = crate::runtime::remove(store, &id, true);
            }
            return Err(anyhow::Error::new(e).context(name));
        }
    };
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Recreate containers even if their configuration and image haven't changed.
    #[arg(long = "force-recreate")]
    pub force_recreate: bool,
    /// If containers already exist, don't recreate them.
    #[arg(long = "no-recreate", conflicts_with = "force_recreate")]
    pub no_recreate: bool,
    /// Remove containers for services not defined in the compose file.
    #[arg(long = "remove-orphans")]
    pub remove_orphans: bool,
    /// Pull images before creating: always, missing or never.
    #[arg(long, value_parser = ["always", "missing", "never"])]
    pub pull: Option<String>,
    /// Scale SERVICE to NUM instances (SERVICE=NUM).
    #[arg(long)]
    pub scale: Vec<String>,
    /// Build images before creating containers.
    #[arg(long)]
    pub build: bool,
    pub services: Vec<String>,
}

/// Creates the services' containers without starting them.
pub fn create(compose: &ComposeArgs, store: &Store, args: &CreateArgs) -> anyhow::Result<ExitCode> {
    let project = project(compose, &args.services)?;
    let opts = engine::UpOptions {
        plan: engine::plan::PlanOptions {
            force_recreate: args.force_recreate,
            no_recreate: args.no_recreate,
            remove_orphans: args.remove_orphans,
            scale: super::lifecycle::parse_scale(&project, &args.scale)?,
        },
        services: args.services.clone(),
        no_start: true,
        pull: super::pull_policy(&args.pull)?,
        build: engine::build::BuildRequest {
            force: args.build,
            ..Default::default()
        },
        ..Default::default()
    };
    super::lifecycle::check_services(&project, &args.services)?;
    engine::up(store, &project, &opts, &crate::cli::progress::report).with_context(|| {
        format!(
            "project {}: `create` stopped here; run it again to converge",
            project.name
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Pull without printing progress information.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Pull what it can and ignore images with pull failures.
    #[arg(long = "ignore-pull-failures")]
    pub ignore_pull_failures: bool,
    /// Also pull services declared as dependencies.
    #[arg(long = "include-deps")]
    pub include_deps: bool,
    pub services: Vec<String>,
}

/// Pulls the services' images (all at once), as `compose pull` does:
/// services with `pull_policy: never`, or built ones without an image, are
/// skipped.
pub fn pull(compose: &ComposeArgs, store: &Store, args: &PullArgs) -> anyhow::Result<ExitCode> {
    let selected = if args.include_deps {
        args.services.clone()
    } else {
        Vec::new()
    };
    let project = project(compose, &selected)?;
    super::lifecycle::check_services(&project, &args.services)?;
    let mut wanted: Vec<(String, String)> = Vec::new();
    for s in project.service_names() {
        let name = s.0;
        if !args.include_deps && !args.services.is_empty() && !args.services.contains(&name) {
            continue;
        }
        let Some(svc) = project.service(&name) else {
            continue;
        };
        let Some(image) = &svc.image else {
            continue;
        };
        if matches!(
            svc.pull_policy,
            crate::spec::service::PullPolicy::Never | crate::spec::service::PullPolicy::Build
        ) {
            continue;
        }
        if !wanted.iter().any(|(_, i)| i == image) {
            wanted.push((name, image.clone()));
        }
    }
    let images = crate::image::store::ImageStore::new(&store.root);
    let rt = crate::cli::images::runtime()?;
    let quiet = args.quiet;
    // One thread per image, each driving its pull on the shared runtime.
    let results: Vec<(String, String, Result<String, _>)> = std::thread::scope(|s| {
        let handles: Vec<_> = wanted
            .iter()
            .map(|(service, image)| {
                let (images, rt) = (&images, &rt);
                s.spawn(move || {
                    let say = |line: &str| {
                        if !quiet {
                            eprintln!(" {service} {line}");
                        }
                    };
                    let r = rt.block_on(crate::image::registry::pull(images, image, &say, false));
                    (service.clone(), image.clone(), r)
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let mut failed = false;
    for (service, image, r) in results {
        match r {
            Ok(_) => {
                if !quiet {
                    crate::cli::progress::report(&format!("{service}  Pulled"));
                }
            }
            Err(e) if args.ignore_pull_failures => {
                eprintln!(" ! {service} {image}: {e}");
            }
            Err(e) => {
                eprintln!(" ✘ {service} Error: {image}: {e}");
                failed = true;
            }
        }
    }
    if failed {
        anyhow::bail!("some service images could not be pulled (--ignore-pull-failures goes on)");
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Do not use cache when building the image.
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the base images.
    #[arg(long)]
    pub pull: bool,
    /// Don't print anything to stdout.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Set build-time variables for services (KEY=VALUE, or KEY from the environment).
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    pub services: Vec<String>,
}

/// Builds the images of the services with `build:` (all, or those named).
pub fn build(compose: &ComposeArgs, store: &Store, args: &BuildArgs) -> anyhow::Result<ExitCode> {
    let project = project(compose, &args.services)?;
    super::lifecycle::check_services(&project, &args.services)?;
    let names: Vec<String> = if args.services.is_empty() {
        project.service_names().into_iter().map(|s| s.0).collect()
    } else {
        args.services.clone()
    };
    if !names
        .iter()
        .any(|s| project.service(s).is_some_and(|m| m.build.is_some()))
    {
        eprintln!("No services to build");
        return Ok(ExitCode::SUCCESS);
    }
    let req = engine::build::BuildRequest {
        force: true,
        no_cache: args.no_cache,
        pull: args.pull,
        quiet: args.quiet,
        build_args: crate::cli::build::build_args(&args.build_args),
    };
    let quiet = args.quiet;
    let say = move |line: &str| {
        if !quiet {
            eprintln!(" {line}");
        }
    };
    engine::build::ensure_built(store, &project, &names, &req, &say)?;
    Ok(ExitCode::SUCCESS)
}
