//! `compose watch`, and the watch half of `up --watch` / `up -d --watch`.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::lifecycle::project;
use super::ComposeArgs;
use crate::runtime::store::Store;

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Do not build & start services before watching.
    #[arg(long = "no-up")]
    pub no_up: bool,
    /// Prune dangling images on rebuild (berth keeps none: a rebuilt tag
    /// moves to the new image, so there is nothing to prune).
    #[arg(long)]
    pub prune: bool,
    /// Hide build output.
    #[arg(long)]
    pub quiet: bool,
    pub services: Vec<String>,
}

/// What the detached watcher needs to load the same project.
pub fn detached_args(
    compose: &ComposeArgs,
    services: &[String],
) -> crate::watch::run::DetachedArgs {
    crate::watch::run::DetachedArgs {
        // The watcher starts in this directory with this environment, so
        // the flags as given load the same project.
        files: compose.files.clone(),
        project_name: compose.project_name.clone(),
        project_directory: compose.project_directory.clone(),
        env_files: compose.env_files.clone(),
        profiles: compose.profiles.clone(),
        services: services.to_vec(),
    }
}

/// Starts the project's detached watcher and says so.
pub fn start_detached(
    compose: &ComposeArgs,
    store: &Store,
    project: &crate::spec::Project,
    services: &[String],
) -> anyhow::Result<()> {
    let pid =
        crate::watch::run::spawn_detached(store, &project.name, &detached_args(compose, services))
            .context("starting the watcher")?;
    eprintln!(
        " Watching in the background (pid {pid}; log: {}); `berth compose down` stops it",
        crate::watch::log_path(store, &project.name).display()
    );
    Ok(())
}

/// Watches in the foreground until Ctrl-C.
pub fn watch(compose: &ComposeArgs, store: &Store, args: &WatchArgs) -> anyhow::Result<ExitCode> {
    let project = project(compose, &args.services)?;
    super::lifecycle::check_services(&project, &args.services)?;
    // Checked before anything starts: a bad rule fails at once.
    let rules = crate::watch::rules::rules(&project, &args.services)?;
    if rules.is_empty() {
        return Err(crate::watch::run::WatchError::Nothing.into());
    }
    if !args.no_up {
        let opts = crate::engine::UpOptions {
            services: args.services.clone(),
            build: crate::engine::build::BuildRequest {
                quiet: args.quiet,
                ..Default::default()
            },
            ..Default::default()
        };
        crate::engine::up(store, &project, &opts, &crate::cli::progress::report)?;
    }
    let stop = crate::runtime::count_interrupts();
    let say = |line: &str| eprintln!("{line}");
    crate::watch::run::watch(store, &project, &args.services, &say, stop, &mut || {})?;
    Ok(ExitCode::SUCCESS)
}
