//! The `berth` binary: parses the command line, sets up logging, dispatches,
//! and leaves exit codes and error text to `cli::exit`.
#![deny(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    // The container init, the shim and berth's other helpers (DNS responder,
    // port proxy, network teardown, detached watcher) are entered before any
    // parsing or logging.
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some(berth::runtime::init::INIT_ARG) => {
            return ExitCode::from(berth::runtime::init::main(&args[2..]).clamp(0, 255) as u8)
        }
        Some(berth::runtime::shim::SHIM_ARG) => {
            return ExitCode::from(berth::runtime::shim::main(&args[2..]).clamp(0, 255) as u8)
        }
        Some(berth::net::proxy::PROXY_ARG) => {
            return ExitCode::from(berth::net::proxy::main(&args[2..]).clamp(0, 255) as u8)
        }
        Some(berth::net::store::TEARDOWN_ARG) => {
            return ExitCode::from(berth::net::store::teardown_main(&args[2..]).clamp(0, 255) as u8)
        }
        Some(berth::watch::WATCH_ARG) => {
            return ExitCode::from(berth::watch::run::helper_main(&args[2..]).clamp(0, 255) as u8)
        }
        Some(berth::net::dns::DNS_ARG) => {
            return ExitCode::from(berth::net::dns::main(&args[2..]).clamp(0, 255) as u8)
        }
        _ => {}
    }
    berth::cli::exit::compose_verb(berth::cli::run())
}
