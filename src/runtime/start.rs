//! `start`: the container's shim, detached (or in the foreground), and
//! what it answered on its readiness pipe.

use super::*;

/// Starts a created or exited container through a new shim. In the
/// foreground the shim shares this terminal (it is this process when no
/// other thread runs here) and this call returns the container's exit code
/// once it ends; in the background it returns once the
/// container runs (`Ok(None)`).
pub fn start(store: &Store, id: &str, foreground: bool) -> Result<Option<i32>, RuntimeError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(RuntimeError::NeedsRoot("start containers"));
    }
    let st = effective_state(store, id)?;
    if matches!(st.status, Status::Running | Status::Restarting) {
        return Err(RuntimeError::AlreadyStarted(id.into()));
    }
    if !st.can_start() {
        return Err(RuntimeError::Invalid(format!(
            "container {id} is {}",
            st.status.as_str()
        )));
    }
    let _ = std::fs::remove_file(store.run_dir(id).join("stop"));
    if foreground && single_threaded() {
        return Ok(Some(shim::serve_here(store, id)));
    }
    let exe = crate::sys::helper::executable().map_err(RuntimeError::Shim)?;
    let mut cmd = Command::new(exe);
    cmd.arg(shim::SHIM_ARG)
        .arg(id)
        .arg(if foreground { "fg" } else { "bg" })
        .env("BERTH_ROOT", &store.root)
        .env("BERTH_RUN", &store.run);
    if foreground {
        ignore_interrupts();
        let status = cmd.status().map_err(RuntimeError::Shim)?;
        return Ok(Some(status.code().unwrap_or(125)));
    }
    let line = crate::sys::helper::spawn_detached(&mut cmd, &shim_log(store, id))
        .map_err(RuntimeError::Shim)?;
    let line = line.as_str();
    if line.starts_with("ok") {
        return Ok(None);
    }
    if line.starts_with(shim::STARTED_ELSEWHERE) {
        return Err(RuntimeError::AlreadyStarted(id.into()));
    }
    let rest = line.strip_prefix("err ").unwrap_or(line);
    let (code, message) = rest.split_once(' ').unwrap_or(("125", rest));
    Err(RuntimeError::Start {
        code: code.parse().unwrap_or(125),
        message: if message.is_empty() {
            format!(
                "the shim exited before the container started (its log: {})",
                shim_log(store, id).display()
            )
        } else {
            message.into()
        },
    })
}

/// Starts `id` in the background unless it runs already (as Docker's
/// `start` of a running container, and what a converging `up` wants when
/// another start got there first). True when this call started it.
pub fn ensure_started(store: &Store, id: &str) -> Result<bool, RuntimeError> {
    match start(store, id, false) {
        Ok(_) => Ok(true),
        Err(RuntimeError::AlreadyStarted(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether this process runs one thread only. Asked on every foreground
/// `run` and again at a `--rm` container's exit, so by one stat: procfs
/// gives `/proc/self/task` a link count of 2 + the number of threads. Where
/// it reads otherwise, `/proc/self/status` (ten times the cost) answers.
pub(super) fn single_threaded() -> bool {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata("/proc/self/task").map(|m| m.nlink()) {
        Ok(links) if links >= 3 => links == 3,
        _ => std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .is_some_and(|n| n.trim() == "1")
        }),
    }
}

/// Where container `id`'s shim (and its port proxy) log.
pub fn shim_log(store: &Store, id: &str) -> PathBuf {
    store.run_dir(id).join("shim.log")
}

/// The CLI waits for a foreground shim; Ctrl-C goes to the container, not here.
pub(crate) fn ignore_interrupts() {
    use nix::sys::signal::{signal, SigHandler};
    for s in [Signal::SIGINT, Signal::SIGQUIT] {
        // SAFETY: installing SIG_IGN runs no code in signal context.
        let _ = unsafe { signal(s, SigHandler::SigIgn) };
    }
}

static INTERRUPTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

extern "C" fn count_interrupt(_: libc::c_int) {
    INTERRUPTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

/// Counts SIGINT and SIGTERM instead of dying of them (an attached
/// `compose up` stops its containers gracefully on the first, kills on the
/// second). Returns the counter.
pub fn count_interrupts() -> &'static std::sync::atomic::AtomicUsize {
    use nix::sys::signal::{signal, SigHandler};
    for s in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only increments an atomic, which is
        // async-signal-safe.
        let _ = unsafe { signal(s, SigHandler::Handler(count_interrupt)) };
    }
    &INTERRUPTS
}
