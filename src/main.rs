//! The `berth` binary: parses the command line, sets up logging, dispatches,
//! and prints `error: …` with each cause once.

use std::process::ExitCode;

fn main() -> ExitCode {
    match berth::cli::run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(1)
        }
    }
}
