//! `berth compose`: the project flags shared by every compose verb, turned into
//! `spec::ProjectOptions`, and dispatch to one module per verb.

pub mod config;
pub mod convert;
pub mod lifecycle;
pub mod logs;
pub mod monitor;
pub mod run;
pub mod verbs;
pub mod watch;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::spec::ProjectOptions;

// Flags of `berth compose` (before the verb).
#[derive(Debug, Args)]
pub struct ComposeArgs {
    /// Compose configuration files (`-` reads stdin). Default: COMPOSE_FILE, or
    /// compose.yaml and friends in the working directory or its parents.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Project name (default: COMPOSE_PROJECT_NAME, the file's `name:`, or the directory name).
    #[arg(short = 'p', long = "project-name", value_name = "NAME")]
    pub project_name: Option<String>,
    /// Alternate working directory (default: the directory of the first file).
    #[arg(long, value_name = "DIR")]
    pub project_directory: Option<PathBuf>,
    /// Alternate environment files (default: COMPOSE_ENV_FILES, or `.env`).
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_files: Vec<PathBuf>,
    /// Profiles to enable (default: COMPOSE_PROFILES).
    #[arg(long = "profile", value_name = "PROFILE")]
    pub profiles: Vec<String>,
    /// Progress output: auto, tty, plain, json or quiet.
    #[arg(long, default_value = "auto", env = "COMPOSE_PROGRESS",
          value_parser = ["auto", "tty", "plain", "json", "quiet"])]
    pub progress: String,
    /// Control characters on the terminal: never, always or auto.
    #[arg(long, default_value = "auto", env = "COMPOSE_ANSI",
          value_parser = ["never", "always", "auto"])]
    pub ansi: String,
    #[command(subcommand)]
    pub command: ComposeCommand,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum ComposeCommand {
    /// Parse, resolve and render the compose file in canonical format.
    Config(config::ConfigArgs),
    /// As config; with --kubernetes, the project as Kubernetes manifests.
    Convert(convert::ConvertArgs),
    /// Create and start containers.
    Up(lifecycle::UpArgs),
    /// Stop and remove containers, networks (and volumes with -v).
    Down(lifecycle::DownArgs),
    /// List containers.
    Ps(lifecycle::PsArgs),
    /// View output from containers.
    Logs(verbs::LogsArgs),
    /// Stop services.
    Stop(verbs::ServicesArgs),
    /// Start services.
    Start(verbs::ServicesArgs),
    /// Restart service containers.
    Restart(verbs::ServicesArgs),
    /// Removes stopped service containers.
    Rm(verbs::RmArgs),
    /// Force stop service containers.
    Kill(verbs::KillArgs),
    /// Execute a command in a running container.
    Exec(verbs::ExecArgs),
    /// Print the public port for a port binding.
    Port(verbs::PortArgs),
    /// Pause services.
    Pause(verbs::ServicesArgs),
    /// Unpause services.
    Unpause(verbs::ServicesArgs),
    /// Display the running processes.
    Top(verbs::ServicesArgs),
    /// List images used by the created containers.
    Images(verbs::ImagesArgs),
    /// List running compose projects.
    Ls(LsArgs),
    /// Receive real time events from containers.
    Events(monitor::EventsArgs),
    /// Display a live stream of container(s) resource usage statistics.
    Stats(monitor::StatsArgs),
    /// Block until the first service container stops.
    Wait(monitor::WaitArgs),
    /// Copy files/folders between a service container and the local filesystem.
    Cp(verbs::CpArgs),
    /// Run a one-off command on a service.
    Run(run::RunArgs),
    /// Creates containers for a service.
    Create(run::CreateArgs),
    /// Pull service images.
    Pull(run::PullArgs),
    /// Build or rebuild services.
    Build(run::BuildArgs),
    /// Watch the build context for services and rebuild/refresh containers when files are updated.
    Watch(watch::WatchArgs),
    /// Show the berth compose version information.
    Version(VersionArgs),
}

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Shows only the version number.
    #[arg(long)]
    pub short: bool,
    /// Format the output: pretty or json.
    #[arg(short = 'f', long, default_value = "pretty", value_parser = ["pretty", "json"])]
    pub format: String,
}

/// `compose version`: what editors' Compose detection calls.
fn version(args: &VersionArgs) -> anyhow::Result<ExitCode> {
    let v = env!("CARGO_PKG_VERSION");
    if args.short {
        println!("{v}");
    } else if args.format == "json" {
        println!("{}", serde_json::json!({"version": format!("v{v}")}));
    } else {
        println!("berth compose version v{v}");
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Show all stopped compose projects too.
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display project names.
    #[arg(short, long)]
    pub quiet: bool,
    /// Format the output: table, json, table TEMPLATE or a Go template.
    #[arg(long, default_value = "table")]
    pub format: String,
}

impl ComposeArgs {
    /// The loader options for this invocation.
    pub fn project_options(
        &self,
        services: &[String],
        interpolate: bool,
    ) -> anyhow::Result<ProjectOptions> {
        let stdin = if self.files.iter().any(|f| f.as_os_str() == "-") {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading the compose file from stdin")?;
            Some(text)
        } else {
            None
        };
        Ok(ProjectOptions {
            files: self.files.clone(),
            project_name: self.project_name.clone(),
            project_directory: self.project_directory.clone(),
            env_files: self.env_files.clone(),
            profiles: self.profiles.clone(),
            services: services.to_vec(),
            interpolate,
            cwd: std::env::current_dir().context("finding the current directory")?,
            os_env: std::env::vars().collect(),
            stdin,
        })
    }
}

/// `--pull always|missing|never`, as the engine takes it.
fn pull_policy(flag: &Option<String>) -> anyhow::Result<Option<crate::intent::PullPolicy>> {
    flag.as_deref()
        .map(str::parse)
        .transpose()
        .map_err(anyhow::Error::msg)
}

pub fn run(args: ComposeArgs, store: &crate::runtime::store::Store) -> anyhow::Result<ExitCode> {
    crate::cli::progress::set_mode(crate::cli::progress::Mode::choose(
        &args.progress,
        &args.ansi,
    ));
    let result = dispatch(&args, store);
    crate::cli::progress::finish();
    result
}

fn dispatch(args: &ComposeArgs, store: &crate::runtime::store::Store) -> anyhow::Result<ExitCode> {
    match &args.command {
        ComposeCommand::Config(c) => config::run(args, c),
        ComposeCommand::Convert(c) => convert::run(args, store, c),
        ComposeCommand::Up(a) => lifecycle::up(args, store, a),
        ComposeCommand::Down(a) => lifecycle::down(args, store, a),
        ComposeCommand::Ps(a) => lifecycle::ps(args, store, a),
        ComposeCommand::Logs(a) => verbs::logs(args, store, a),
        ComposeCommand::Stop(a) => verbs::stop(args, store, a),
        ComposeCommand::Start(a) => verbs::start(args, store, a),
        ComposeCommand::Restart(a) => verbs::restart(args, store, a),
        ComposeCommand::Rm(a) => verbs::rm(args, store, a),
        ComposeCommand::Kill(a) => verbs::kill(args, store, a),
        ComposeCommand::Exec(a) => verbs::exec(args, store, a),
        ComposeCommand::Port(a) => verbs::port(args, store, a),
        ComposeCommand::Pause(a) => verbs::pause(args, store, a, true),
        ComposeCommand::Unpause(a) => verbs::pause(args, store, a, false),
        ComposeCommand::Top(a) => verbs::top(args, store, a),
        ComposeCommand::Images(a) => verbs::images(args, store, a),
        ComposeCommand::Ls(a) => verbs::ls(store, a),
        ComposeCommand::Events(a) => monitor::events(args, store, a),
        ComposeCommand::Stats(a) => monitor::stats(args, store, a),
        ComposeCommand::Wait(a) => monitor::wait(args, store, a),
        ComposeCommand::Cp(a) => verbs::cp(args, store, a),
        ComposeCommand::Run(a) => run::run(args, store, a),
        ComposeCommand::Create(a) => run::create(args, store, a),
        ComposeCommand::Pull(a) => run::pull(args, store, a),
        ComposeCommand::Build(a) => run::build(args, store, a),
        ComposeCommand::Watch(a) => watch::watch(args, store, a),
        ComposeCommand::Version(a) => version(a),
    }
}
