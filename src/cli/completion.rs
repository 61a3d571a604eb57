//! `berth completion bash|zsh|fish|man`: shell completion scripts
//! (clap_complete) and the manual page (clap_mangen), made from the same
//! clap definitions the commands parse with, so they never drift.

use clap::{Args, CommandFactory, ValueEnum};

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    Bash,
    Zsh,
    Fish,
    /// The manual page (roff), for `man -l -`.
    Man,
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// bash, zsh, fish, or man for the manual page.
    pub shell: Target,
}

pub fn run(args: CompletionArgs) -> anyhow::Result<i32> {
    let mut cmd = super::Cli::command();
    let mut out = std::io::stdout().lock();
    let shell = match args.shell {
        Target::Bash => clap_complete::Shell::Bash,
        Target::Zsh => clap_complete::Shell::Zsh,
        Target::Fish => clap_complete::Shell::Fish,
        Target::Man => {
            clap_mangen::Man::new(cmd).render(&mut out)?;
            return Ok(0);
        }
    };
    clap_complete::generate(shell, &mut cmd, "berth", &mut out);
    Ok(0)
}
