//! Logging set-up: `-v`/`--log-level` first, then `RUST_LOG`, then warnings only.
//! Output goes to stderr so stdout stays machine-readable.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// A log level as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        }
    }
}

/// Installs the global subscriber. Safe to call once per process.
pub fn init(verbose: u8, level: Option<Level>) {
    let from_flags = match (level, verbose) {
        (Some(l), _) => Some(l.as_str()),
        (None, 0) => None,
        (None, 1) => Some("debug"),
        (None, _) => Some("trace"),
    };
    let filter = match from_flags {
        Some(l) => EnvFilter::new(l),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .try_init();
}
