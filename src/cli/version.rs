//! `berth version`.

use std::process::ExitCode;

// Arguments of `berth version`.
#[derive(Debug, clap::Args)]
pub struct VersionArgs {
    /// Print only the version number.
    #[arg(long)]
    pub short: bool,
}

pub fn run(args: VersionArgs) -> anyhow::Result<ExitCode> {
    let version = env!("CARGO_PKG_VERSION");
    if args.short {
        println!("{version}");
    } else {
        println!("berth version {version}");
        println!(
            "  os/arch: {}/{}",
            std::env::consts::OS,
            std::env::consts::ARCH
        );
    }
    Ok(ExitCode::SUCCESS)
}
