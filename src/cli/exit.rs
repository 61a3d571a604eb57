//! The one place that decides exit codes and prints a failed command's
//! error. Container and image verbs exit as Docker's CLI does: 125 for
//! berth's own errors, the container's code when it could not start (126:
//! cannot run the command, 127: no such command), the command's own code
//! otherwise. Compose verbs exit 1 on error, as Docker Compose. A reader
//! that went away (`berth ps | head`) is not an error.
//!
//! Owns exit codes and the error's text on stderr; decides nothing else.

use std::process::ExitCode;

/// Exit code for berth's own errors, as Docker's 125.
pub const BERTH_ERROR: u8 = 125;
/// Exit code of a failed compose command, as Docker Compose's.
pub const COMPOSE_ERROR: u8 = 1;

fn code(c: i32) -> ExitCode {
    ExitCode::from(c.clamp(0, 255) as u8)
}

fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The exit of a container or image verb: its code, or its error printed
/// on one line with its causes and Docker's code for it.
pub fn container_verb(result: anyhow::Result<i32>) -> ExitCode {
    match result {
        Ok(c) => code(c),
        Err(e) if broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let c = e
                .chain()
                .find_map(|c| match c.downcast_ref::<crate::runtime::RuntimeError>() {
                    Some(crate::runtime::RuntimeError::Start { code, .. }) => Some(*code),
                    _ => None,
                })
                .unwrap_or(i32::from(BERTH_ERROR));
            eprintln!("error: {e:#}");
            code(c)
        }
    }
}

/// The exit of a compose verb (or of any command whose error reached the
/// top): the error and each cause on a line of its own, and 1.
pub fn compose_verb(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(c) => c,
        Err(e) if broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(COMPOSE_ERROR)
        }
    }
}
