//! The command line: clap definitions, logging set-up and dispatch to one
//! module per verb. Formatting of output lives here; business logic does not.

pub mod compose;
pub mod logging;
pub mod version;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// berth — a daemonless container engine and compose orchestrator.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about, propagate_version = true)]
pub struct Cli {
    /// More log output (-v debug, -vv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Log level: error, warn, info, debug or trace (RUST_LOG applies when neither this nor -v is given).
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<logging::Level>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Define and run multi-container applications.
    Compose(compose::ComposeArgs),
    /// Show the berth version information.
    Version(version::VersionArgs),
}

/// Parses the process arguments and runs the command.
pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    logging::init(cli.verbose, cli.log_level);
    match cli.command {
        Command::Compose(args) => compose::run(args),
        Command::Version(args) => version::run(args),
    }
}
