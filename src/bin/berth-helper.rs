//! `berth-helper`: berth's resident helpers alone (the container init, the
//! shim, the port proxy, the DNS responder, the network teardown), so what
//! each running container keeps mapped is a small binary rather than the
//! whole CLI. berth starts it from beside itself; it is not run by hand.
#![deny(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match berth::runtime::helpers::dispatch(&args) {
        Some(code) => ExitCode::from(code as u8),
        None => {
            eprintln!(
                "berth-helper holds berth's container helpers; berth starts it (run `berth`)"
            );
            ExitCode::from(2)
        }
    }
}
