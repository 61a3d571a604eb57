//! The command line: clap definitions, logging set-up and dispatch to one
//! module per verb. Formatting of output lives here; business logic does not.
//!
//! Every verb enum is `defer`red: a verb's flags are defined only when the
//! command line names it (building all of them cost each invocation about
//! a millisecond). The flag structs therefore carry `//` comments, not doc
//! comments: a deferred doc comment would replace the verb's description
//! (`deferred_verb_definitions_keep_the_help_their_listing_shows`).

pub mod build;
pub mod completion;
pub mod compose;
pub mod containers;
pub mod copy;
pub mod df_verbose;
pub mod exit;
pub mod format;
pub mod images;
pub mod inspect;
pub mod listing;
pub mod logging;
pub mod network;
pub mod progress;
pub mod resident;
pub mod run;
pub mod system;
pub mod table;
pub mod version;
pub mod volume;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::runtime::store::Store;

/// berth — a daemonless container engine and compose orchestrator.
#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version = concat!("version ", env!("CARGO_PKG_VERSION")),
    about,
    disable_version_flag = true
)]
pub struct Cli {
    /// Print version information and quit.
    #[arg(short = 'v', long = "version", action = clap::ArgAction::Version)]
    version: Option<bool>,
    /// Enable debug mode (debug logs).
    #[arg(short = 'D', long, global = true)]
    pub debug: bool,
    /// More log output (--verbose debug, twice trace).
    #[arg(long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log level: error, warn, info, debug or trace (RUST_LOG applies when none of -D, --verbose or this is given).
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<logging::Level>,
    /// Where berth keeps its state (default: BERTH_ROOT or /var/lib/berth).
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<std::path::PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

// Not deferred: `compose`'s subcommands must be known when the `help`
// tree is made (the completion scripts list it). Its variants' own
// definitions are deferred one level down, in each verb enum.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Define and run multi-container applications.
    Compose(Box<compose::ComposeArgs>),
    /// Show the berth version information.
    Version(version::VersionArgs),
    #[command(flatten)]
    Containers(Box<ContainerVerb>),
    /// List containers.
    Ps(containers::PsArgs),
    /// Return low-level information on containers, images, networks or volumes.
    Inspect(containers::InspectArgs),
    #[command(flatten)]
    ImageVerbs(ImageVerb),
    /// List images.
    Images(images::ImagesArgs),
    /// Remove one or more images.
    Rmi(images::RmiArgs),
    /// Log in to a registry.
    Login(images::LoginArgs),
    /// Log out from a registry.
    Logout(images::LogoutArgs),
    /// Get real time events from berth's event journal.
    Events(system::EventsArgs),
    /// Display system-wide information.
    Info,
    /// Generate the shell completion script (bash, zsh, fish) or the manual page.
    Completion(completion::CompletionArgs),
    /// Manage containers.
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Manage images.
    #[command(subcommand)]
    Image(ImageCommand),
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

/// The container verbs, at the top level and under `container`.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum ContainerVerb {
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
    /// Attach this terminal to a running container's input and output.
    Attach(containers::AttachArgs),
    /// List a container's published ports.
    Port(containers::PortArgs),
    /// Execute a command in a running container.
    Exec(containers::ExecArgs),
    /// Copy files/folders between a container and the local filesystem.
    Cp(copy::CpArgs),
    /// Fetch the logs of a container (its output; what its shim itself has
    /// to say is in <run>/containers/<ID>/shim.log, see `berth info`).
    Logs(containers::LogsArgs),
    /// Block until containers stop, then print their exit codes.
    Wait(containers::NamesArgs),
    /// Pause all processes within containers.
    Pause(containers::NamesArgs),
    /// Unpause all processes within containers.
    Unpause(containers::NamesArgs),
    /// Display resource usage statistics.
    Stats(containers::StatsArgs),
    /// Display the running processes of a container.
    Top(system::TopArgs),
    /// Rename a container.
    Rename(containers::RenameArgs),
}

/// `container …`: the container verbs, `ls`, `inspect` and `prune`.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum ContainerCommand {
    #[command(flatten)]
    Verb(Box<ContainerVerb>),
    /// List containers.
    #[command(visible_aliases = ["ps", "list"])]
    Ls(containers::PsArgs),
    /// Display detailed information on one or more containers.
    Inspect(containers::InspectArgs),
    /// Remove all stopped containers.
    Prune(system::PruneArgs),
}

/// The image verbs, at the top level and under `image`.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum ImageVerb {
    /// Build an image from a Dockerfile.
    Build(build::BuildArgs),
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
    /// Import a root filesystem tar as a one-layer image.
    Import(images::ImportArgs),
    /// Show the history of an image.
    History(images::HistoryArgs),
}

/// `image …`: the image verbs, `ls`, `rm`, `inspect` and `prune`.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum ImageCommand {
    #[command(flatten)]
    Verb(ImageVerb),
    /// List images.
    #[command(visible_alias = "list")]
    Ls(images::ImagesArgs),
    /// Remove one or more images.
    #[command(visible_alias = "remove")]
    Rm(images::RmiArgs),
    /// Display detailed information on one or more images.
    Inspect(images::InspectArgs),
    /// Remove unused images (-a: every image no container uses).
    Prune(images::PruneImagesArgs),
}

// `run` with Docker's `-h` for the hostname (help is `--help`).
#[derive(Debug, clap::Args)]
pub struct RunCmd {
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    #[command(flatten)]
    pub args: run::RunArgs,
}

// `create` with Docker's `-h` for the hostname (help is `--help`).
#[derive(Debug, clap::Args)]
pub struct CreateCmd {
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    #[command(flatten)]
    pub args: run::CreateArgs,
}

fn container_verb(result: anyhow::Result<i32>) -> anyhow::Result<ExitCode> {
    Ok(exit::container_verb(result))
}

fn container_verb_run(store: &Store, v: ContainerVerb) -> anyhow::Result<ExitCode> {
    container_verb(match v {
        ContainerVerb::Run(c) => run::run(store, c.args),
        ContainerVerb::Create(c) => run::create(store, c.args),
        ContainerVerb::Start(a) => containers::start(store, a),
        ContainerVerb::Stop(a) => containers::stop(store, a),
        ContainerVerb::Restart(a) => containers::restart(store, a),
        ContainerVerb::Kill(a) => containers::kill(store, a),
        ContainerVerb::Rm(a) => containers::rm(store, a),
        ContainerVerb::Attach(a) => containers::attach(store, a),
        ContainerVerb::Port(a) => containers::port(store, a),
        ContainerVerb::Exec(a) => containers::exec(store, a),
        ContainerVerb::Cp(a) => copy::cp(store, a),
        ContainerVerb::Logs(a) => containers::logs(store, a),
        ContainerVerb::Wait(a) => containers::wait(store, a),
        ContainerVerb::Pause(a) => containers::pause(store, a, true),
        ContainerVerb::Unpause(a) => containers::pause(store, a, false),
        ContainerVerb::Stats(a) => containers::stats(store, a),
        ContainerVerb::Top(a) => system::top(store, a),
        ContainerVerb::Rename(a) => containers::rename(store, a),
    })
}

fn image_verb_run(store: &Store, v: ImageVerb) -> anyhow::Result<ExitCode> {
    container_verb(match v {
        ImageVerb::Build(a) => build::build(store, a),
        ImageVerb::Pull(a) => images::pull(store, a),
        ImageVerb::Push(a) => images::push(store, a),
        ImageVerb::Save(a) => images::save(store, a),
        ImageVerb::Load(a) => images::load(store, a),
        ImageVerb::Tag(a) => images::tag(store, a),
        ImageVerb::Import(a) => images::import(store, a),
        ImageVerb::History(a) => images::history(store, a),
    })
}

/// Parses the process arguments and runs the command.
pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let verbose = cli.verbose.max(u8::from(cli.debug));
    logging::init(verbose, cli.log_level);
    let store = || Store::from_env(cli.root.as_deref());
    match cli.command {
        Command::Compose(args) => compose::run(*args, &store()),
        Command::Version(args) => version::run(args),
        Command::Containers(v) => container_verb_run(&store(), *v),
        Command::Ps(a) => container_verb(containers::ps(&store(), a)),
        Command::Inspect(a) => container_verb(containers::inspect_any(&store(), a)),
        Command::ImageVerbs(v) => image_verb_run(&store(), v),
        Command::Images(a) => container_verb(images::images(&store(), a)),
        Command::Rmi(a) => container_verb(images::rmi(&store(), a)),
        Command::Login(a) => container_verb(images::login(a)),
        Command::Logout(a) => container_verb(images::logout(a)),
        Command::Events(a) => container_verb(system::events(&store(), a)),
        Command::Info => container_verb(system::info(&store())),
        Command::Completion(a) => container_verb(completion::run(a)),
        Command::Container(c) => match c {
            ContainerCommand::Verb(v) => container_verb_run(&store(), *v),
            ContainerCommand::Ls(a) => container_verb(containers::ps(&store(), a)),
            ContainerCommand::Inspect(a) => container_verb(containers::inspect(&store(), a)),
            ContainerCommand::Prune(a) => container_verb(system::prune(&store(), a)),
        },
        Command::Image(c) => match c {
            ImageCommand::Verb(v) => image_verb_run(&store(), v),
            ImageCommand::Ls(a) => container_verb(images::images(&store(), a)),
            ImageCommand::Rm(a) => container_verb(images::rmi(&store(), a)),
            ImageCommand::Inspect(a) => container_verb(images::inspect(&store(), a)),
            ImageCommand::Prune(a) => container_verb(images::prune(&store(), a)),
        },
        Command::Network(c) => container_verb(network::run(&store(), c)),
        Command::Volume(c) => container_verb(volume::run(&store(), c)),
        Command::System(c) => container_verb(match c {
            system::SystemCommand::Info => system::info(&store()),
            system::SystemCommand::Df(a) => system::df(&store(), a),
            system::SystemCommand::Prune(a) => system::system_prune(&store(), a),
            system::SystemCommand::Events(a) => system::events(&store(), a),
        }),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        // clap's own checks: unique flags, valid defaults, across every verb.
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }

    /// Every subcommand's one-line and long help, by its path.
    fn abouts(cmd: &clap::Command, path: &str, out: &mut Vec<(String, String)>) {
        for sub in cmd.get_subcommands() {
            let path = format!("{path} {}", sub.get_name());
            let text = format!(
                "{:?} / {:?}",
                sub.get_about().map(ToString::to_string),
                sub.get_long_about().map(ToString::to_string)
            );
            out.push((path.clone(), text));
            abouts(sub, &path, out);
        }
    }

    #[test]
    fn deferred_verb_definitions_keep_the_help_their_listing_shows() {
        // A verb's flags are defined only once the command line names it
        // (`defer`); its description in the listing is set before. Were
        // the deferred definition to set one of its own (a doc comment on
        // its flags' struct), `berth VERB --help` would say something else.
        let listed = <super::Cli as clap::CommandFactory>::command();
        let mut built = listed.clone();
        built.build();
        let (mut before, mut after) = (Vec::new(), Vec::new());
        abouts(&listed, "berth", &mut before);
        abouts(&built, "berth", &mut after);
        let after: std::collections::HashMap<_, _> = after.into_iter().collect();
        let changed: Vec<String> = before
            .iter()
            .filter(|(path, text)| after.get(path).is_some_and(|t| t != text))
            .map(|(path, text)| format!("{path}: {text} -> {}", after[path]))
            .collect();
        assert!(changed.is_empty(), "{changed:#?}");
        assert!(before.len() > 50, "the listing has {} verbs", before.len());
    }
}
