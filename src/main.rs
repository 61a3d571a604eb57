//! The `berth` binary: parses the command line, sets up logging, dispatches,
//! and leaves exit codes and error text to `cli::exit`.
#![deny(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    // The container init, the shim and berth's other helpers (DNS responder,
    // port proxy, network teardown, detached watcher) are entered before any
    // parsing or logging.
    let args: Vec<String> = std::env::args().collect();
    if let Some(code) = berth::runtime::helpers::dispatch(&args) {
        return ExitCode::from(code as u8);
    }
    if args.get(1).map(String::as_str) == Some(berth::watch::WATCH_ARG) {
        let code = berth::watch::run::helper_main(&args[2..]).clamp(0, 255);
        return ExitCode::from(code as u8);
    }
    berth::cli::exit::compose_verb(berth::cli::run())
}
