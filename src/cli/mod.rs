//! The command line: clap definitions, logging set-up and dispatch to one
//! module per verb. Formatting of output lives here; business logic does not.

pub mod build;
pub mod compose;
pub mod containers;
pub mod copy;
pub mod format;
pub mod images;
pub mod listing;
pub mod logging;
pub mod network;
pub mod run;
pub mod system;
pub mod table;
pub mod version;
pub mod volume;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// berth — a daemonless container engine and compose orchestrator.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about, propagate_version = true)]
pub struct Cli {
    /// More log output (-v debug, -vv trace); given before the command.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log level: error, warn, info, debug or trace (RUST_LOG applies when neither this nor -v is given).
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<logging::Level>,
    /// Where berth keeps its state (default: BERTH_ROOT or /var/lib/berth).
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<std::path::PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Define and run multi-container applications.
    Compose(compose::ComposeArgs),
    /// Show the berth version information.
    Version(version::VersionArgs),
    /// Create and run a new container.
    #[command(disable_help_flag = true)]
    Run(RunCmd),
    /// Create a new container.
    #[command(disable_help_flag = true)]
    Create(CreateCmd),
    /// Start one or more stopped containers.
    Start(containers::StartArgs),
    /// Stop one or more running containers.
    Stop(containers::StopArgs),
    /// Restart one or more containers.
    Restart(containers::StopArgs),
    /// Kill one or more running containers.
    Kill(containers::KillArgs),
    /// Remove one or more containers.
    Rm(containers::RmArgs),
    /// List containers.
    Ps(containers::PsArgs),
    /// Attach this terminal to a running container's input and output.
    Attach(containers::AttachArgs),
    /// List a container's published ports.
    Port(containers::PortArgs),
    /// Execute a command in a running container.
    Exec(containers::ExecArgs),
    /// Copy files/folders between a container and the local filesystem.
    Cp(copy::CpArgs),
    /// Fetch the logs of a container.
    Logs(containers::LogsArgs),
    /// Return low-level information on containers.
    Inspect(containers::NamesArgs),
    /// Block until containers stop, then print their exit codes.
    Wait(containers::NamesArgs),
    /// Pause all processes within containers.
    Pause(containers::NamesArgs),
    /// Unpause all processes within containers.
    Unpause(containers::NamesArgs),
    /// Display resource usage statistics.
    Stats(containers::StatsArgs),
    /// Build an image from a Dockerfile.
    Build(build::BuildArgs),
    /// Import a root filesystem tar as a one-layer image.
    Import(images::ImportArgs),
    /// List images.
    Images(images::ImagesArgs),
    /// Log in to a registry.
    Login(images::LoginArgs),
    /// Log out from a registry.
    Logout(images::LogoutArgs),
    /// Download an image from a registry.
    Pull(images::PullArgs),
    /// Upload an image to a registry.
    Push(images::PushArgs),
    /// Save images to a tar archive (OCI layout plus Docker's manifest.json).
    Save(images::SaveArgs),
    /// Load images from a tar archive (docker save or OCI layout).
    Load(images::LoadArgs),
    /// Create a tag TARGET that refers to SOURCE.
    Tag(images::TagArgs),
    /// Remove one or more images.
    Rmi(images::RmiArgs),
    /// Manage images.
    #[command(subcommand)]
    Image(images::ImageCommand),
    /// Display the running processes of a container.
    Top(system::TopArgs),
    /// Manage containers.
    #[command(subcommand)]
    Container(system::ContainerCommand),
    /// Manage networks.
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// Manage volumes.
    #[command(subcommand)]
    Volume(volume::VolumeCommand),
    /// Manage berth.
    #[command(subcommand)]
    System(system::SystemCommand),
}

/// `run` with Docker's `-h` for the hostname (help is `--help`).
#[derive(Debug, clap::Args)]
pub struct RunCmd {
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    #[command(flatten)]
    pub args: run::RunArgs,
}

/// `create` with Docker's `-h` for the hostname (help is `--help`).
#[derive(Debug, clap::Args)]
pub struct CreateCmd {
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    #[command(flatten)]
    pub args: run::CreateArgs,
}

/// Exit code for berth's own errors, as Docker's 125.
pub const EXIT_BERTH_ERROR: i32 = 125;

fn container_verb(result: anyhow::Result<i32>) -> anyhow::Result<ExitCode> {
    match result {
        Ok(code) => Ok(ExitCode::from(code.clamp(0, 255) as u8)),
        Err(e) => {
            let broken_pipe = e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            });
            if broken_pipe {
                // The reader went away (`berth ps | head`): not an error.
                return Ok(ExitCode::SUCCESS);
            }
            let code = match e.downcast_ref::<crate::runtime::RuntimeError>() {
                Some(crate::runtime::RuntimeError::Start { code, .. }) => *code,
                _ => EXIT_BERTH_ERROR,
            };
            eprintln!("error: {e:#}");
            Ok(ExitCode::from(code.clamp(0, 255) as u8))
        }
    }
}

/// Parses the process arguments and runs the command.
pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    logging::init(cli.verbose, cli.log_level);
    let store = || crate::runtime::store::Store::from_env(cli.root.as_deref());
    match cli.command {
        Command::Compose(args) => compose::run(args, &store()),
        Command::Version(args) => version::run(args),
        Command::Run(c) => container_verb(run::run(&store(), c.args)),
        Command::Create(c) => container_verb(run::create(&store(), c.args)),
        Command::Start(a) => container_verb(containers::start(&store(), a)),
        Command::Stop(a) => container_verb(containers::stop(&store(), a)),
        Command::Restart(a) => container_verb(containers::restart(&store(), a)),
        Command::Kill(a) => container_verb(containers::kill(&store(), a)),
        Command::Rm(a) => container_verb(containers::rm(&store(), a)),
        Command::Ps(a) => container_verb(containers::ps(&store(), a)),
        Command::Attach(a) => container_verb(containers::attach(&store(), a)),
        Command::Port(a) => container_verb(containers::port(&store(), a)),
        Command::Exec(a) => container_verb(containers::exec(&store(), a)),
        Command::Cp(a) => container_verb(copy::cp(&store(), a)),
        Command::Logs(a) => container_verb(containers::logs(&store(), a)),
        Command::Inspect(a) => container_verb(containers::inspect(&store(), a)),
        Command::Wait(a) => container_verb(containers::wait(&store(), a)),
        Command::Pause(a) => container_verb(containers::pause(&store(), a, true)),
        Command::Unpause(a) => container_verb(containers::pause(&store(), a, false)),
        Command::Stats(a) => container_verb(containers::stats(&store(), a)),
        Command::Build(a) => container_verb(build::build(&store(), a)),
        Command::Import(a) => container_verb(images::import(&store(), a)),
        Command::Images(a) => container_verb(images::images(&store(), a)),
        Command::Login(a) => container_verb(images::login(a)),
        Command::Logout(a) => container_verb(images::logout(a)),
        Command::Pull(a) => container_verb(images::pull(&store(), a)),
        Command::Push(a) => container_verb(images::push(&store(), a)),
        Command::Save(a) => container_verb(images::save(&store(), a)),
        Command::Load(a) => container_verb(images::load(&store(), a)),
        Command::Tag(a) => container_verb(images::tag(&store(), a)),
        Command::Rmi(a) => container_verb(images::rmi(&store(), a)),
        Command::Image(images::ImageCommand::Inspect(a)) => {
            container_verb(images::inspect(&store(), a))
        }
        Command::Image(images::ImageCommand::Ls(a)) => container_verb(images::images(&store(), a)),
        Command::Image(images::ImageCommand::Rm(a)) => container_verb(images::rmi(&store(), a)),
        Command::Image(images::ImageCommand::Prune(a)) => {
            container_verb(images::prune(&store(), a))
        }
        Command::Top(a) => container_verb(system::top(&store(), a)),
        Command::Network(c) => container_verb(network::run(&store(), c)),
        Command::Volume(c) => container_verb(volume::run(&store(), c)),
        Command::Container(system::ContainerCommand::Prune(a)) => {
            container_verb(system::prune(&store(), a))
        }
        Command::System(system::SystemCommand::Info) => container_verb(system::info(&store())),
        Command::System(system::SystemCommand::Df(a)) => container_verb(system::df(&store(), a)),
        Command::System(system::SystemCommand::Prune(a)) => {
            container_verb(system::system_prune(&store(), a))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        // clap's own checks: unique flags, valid defaults, across every verb.
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
