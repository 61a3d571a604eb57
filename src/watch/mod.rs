//! Watch mode (`compose watch`, `up --watch`, `up -d --watch`): a service's
//! `develop.watch` rules (rules.rs) decide what a file change does; events
//! from the `notify` crate are debounced into batches (batch.rs); a batch
//! is carried out (actions.rs: sync through the container's root, restart,
//! exec, rebuild); run.rs is the loop, in the foreground or as a detached
//! helper of the project (`berth __berth_watch`), whose pid and log live
//! beside the project's lock.
//!
//! Owns watching and the reactions to changes; the engine, the builder and
//! the runtime do the work.

pub mod actions;
pub mod batch;
pub mod rules;
pub mod run;

use std::path::PathBuf;

use crate::runtime::store::Store;

/// argv[1] of the detached watcher: `berth __berth_watch PROJECT OPTIONS-JSON`.
pub const WATCH_ARG: &str = "__berth_watch";

/// The detached watcher's pid file.
pub fn pid_path(store: &Store, project: &str) -> PathBuf {
    store.run.join("projects").join(format!("{project}.watch"))
}

/// The detached watcher's log.
pub fn log_path(store: &Store, project: &str) -> PathBuf {
    store
        .run
        .join("projects")
        .join(format!("{project}.watch.log"))
}

/// The pid of the project's detached watcher, if one runs.
pub fn running(store: &Store, project: &str) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pid_path(store, project))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    crate::sys::helper::is_helper(pid, &[WATCH_ARG, project]).then_some(pid)
}

/// Stops the project's detached watcher (`down`); waits a little for it.
pub fn stop(store: &Store, project: &str) -> bool {
    let Some(pid) = running(store, project) else {
        let _ = std::fs::remove_file(pid_path(store, project));
        return false;
    };
    // Not stop_helper: a watcher in the middle of a rebuild finishes it
    // rather than being killed after a grace.
    crate::sys::helper::terminate_helper(pid, &[WATCH_ARG, project]);
    crate::sys::helper::wait_exited(pid, std::time::Duration::from_secs(1));
    let _ = std::fs::remove_file(pid_path(store, project));
    true
}
