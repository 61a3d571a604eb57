//! The entry of berth's resident helpers — the container init (where the
//! freestanding one cannot run), the shim, the port proxy, the DNS
//! responder, the network teardown and the reaper of removed networks'
//! bridges —
//! chosen by argv[1] before any parsing or logging. Both binaries enter here:
//! `berth` (which also holds the detached watcher) and `berth-helper`
//! (which holds nothing else, so what every container maps stays small).
//! Owns only the choice; each helper's work is in its own module.

use super::{init, resident, shim};
use crate::net::{dns, proxy, store};

/// Runs the helper `args[1]` names with the arguments after it; `None`
/// when `args[1]` names none. The value is the helper's exit code.
pub fn dispatch(args: &[String]) -> Option<i32> {
    let rest = args.get(2..).unwrap_or_default();
    let code = match args.get(1).map(String::as_str)? {
        init::INIT_ARG => init::main(rest),
        shim::SHIM_ARG => shim::main(rest),
        proxy::PROXY_ARG => proxy::main(rest, resident::shed),
        store::TEARDOWN_ARG => store::teardown_main(rest),
        store::REAP_ARG => store::reap_main(rest),
        dns::DNS_ARG => dns::main(rest, resident::shed),
        _ => return None,
    };
    Some(code.clamp(0, 255))
}
