//! The shared test material (`../shared` beside the clone, or where
//! BERTH_SHARED points), for both test crates.

use std::path::{Path, PathBuf};

/// The shared material's directory. Without it the test says it was
/// skipped and why, and gets None; where BERTH_REQUIRE_SHARED is set (CI),
/// its absence fails.
pub fn shared_dir(what: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("BERTH_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    if dir.join("external").is_dir() && dir.join("hosts").is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("BERTH_REQUIRE_SHARED").is_none(),
        "the shared test material is required and missing at {}",
        dir.display()
    );
    // Straight to the terminal: the test harness captures eprintln!.
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!(
            "skipped: {what} needs the shared test material, missing at {}\n",
            dir.display()
        )
        .as_bytes(),
    );
    None
}
