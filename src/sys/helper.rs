//! Detached helper processes: the shims, a network's DNS responder, the
//! port proxy, the deferred network teardown and the detached watcher are
//! berth re-executed in a hidden mode. `spawn_detached` starts one with its
//! stdin on /dev/null and its stdout a readiness pipe; the helper calls
//! `enter` first thing, which puts it in a session of its own, takes the
//! readiness pipe off its stdout (stdout is /dev/null from then on), and
//! sends its stderr and its `tracing` output to its log file — a file
//! beside its state, named by the spawner. The spawner reads the one line
//! the helper writes once ready (`ok PID`, `err MESSAGE`), or nothing when
//! it exits first.

use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The small binary holding only the resident helpers (the container init,
/// the shim, the port proxy, the DNS responder, the network teardown),
/// installed beside `berth`. Each container then maps that binary, not the
/// whole CLI; without it berth runs its helpers from its own binary.
pub const HELPER_BIN: &str = "berth-helper";

/// Which binary a helper runs from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binary {
    /// `berth-helper` when it is beside berth (see `executable`).
    Helper,
    /// berth itself: the helper needs more than the helper binary holds
    /// (the watcher runs the whole engine).
    Berth,
}

/// How long a resident helper (shim, init, DNS responder, port proxy) runs
/// before it gives back the pages its start-up touched: a container that
/// lives less than this never pays for it.
pub const SETTLE: std::time::Duration = std::time::Duration::from_secs(1);

/// The executable a helper is started from: `berth-helper` beside the
/// running binary when it is there, else the running binary itself (which
/// holds every helper too).
pub fn executable() -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let beside = exe.with_file_name(HELPER_BIN);
    match std::fs::metadata(&beside) {
        Ok(m) if m.is_file() => Ok(beside),
        _ => Ok(exe),
    }
}

/// Tells a helper it was started detached (and must take its readiness
/// pipe from stdout).
const DETACHED_ENV: &str = "BERTH_HELPER_DETACHED";
/// The log file a helper writes its stderr and `tracing` output to.
const LOG_ENV: &str = "BERTH_HELPER_LOG";

/// Why a helper process did not start.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    #[error("starting {0}: {1}")]
    Spawn(&'static str, std::io::Error),
    #[error("{0}: {1}")]
    Failed(&'static str, String),
}

/// Starts `cmd` detached, its log at `log`; returns the first line it
/// writes on its readiness pipe (empty when it exits without writing).
pub fn spawn_detached(cmd: &mut Command, log: &Path) -> std::io::Result<String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .env(DETACHED_ENV, "1")
        .env(LOG_ENV, log);
    let mut child = cmd.spawn()?;
    let ready = child.stdout.take();
    // Not waited for: it outlives this process (reaped by init after).
    drop(child);
    let mut line = String::new();
    if let Some(out) = ready {
        // A helper that dies before it writes closes the pipe: "" then.
        std::io::BufReader::new(out).read_line(&mut line)?;
    }
    Ok(line.trim().to_string())
}

/// Where a detached helper reports readiness.
pub struct Readiness(Option<std::fs::File>);

impl Readiness {
    /// Writes the one line the spawner waits for, then closes the pipe.
    pub fn report(&mut self, line: &str) {
        if let Some(mut f) = self.0.take() {
            if let Err(e) = writeln!(f, "{line}") {
                tracing::warn!("reporting readiness ({line}): {e}");
            }
        }
    }

    /// The pipe itself (None when not started detached).
    pub fn into_file(self) -> Option<std::fs::File> {
        self.0
    }

    /// The pipe as a writer; a sink when not started detached.
    pub fn into_writer(self) -> Box<dyn Write + Send> {
        match self.0 {
            Some(f) => Box::new(f),
            None => Box::new(std::io::sink()),
        }
    }
}

/// A helper's first step (see the module text). In a process that was not
/// started by `spawn_detached` it changes nothing and reports nowhere.
pub fn enter() -> Readiness {
    if std::env::var_os(DETACHED_ENV).is_none() {
        return Readiness(None);
    }
    let log = std::env::var_os(LOG_ENV);
    // Not for its children: a berth they run is no helper of this spawn.
    // (Single-threaded here: nothing else reads the environment yet.)
    std::env::remove_var(DETACHED_ENV);
    std::env::remove_var(LOG_ENV);
    // Its own session: no terminal's signals reach it. It is not a group
    // leader (the spawner's group), so this does not fail.
    if let Err(e) = nix::unistd::setsid() {
        tracing::warn!("setsid: {e}");
    }
    let ready = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .ok();
    let devnull = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null");
    if let Ok(null) = &devnull {
        use std::os::fd::AsRawFd;
        // The readiness pipe now lives only in `ready` (close-on-exec).
        let _ = nix::unistd::dup2(null.as_raw_fd(), 1);
    }
    if let Some(log) = log {
        log_to(Path::new(&log));
    }
    Readiness(ready)
}

/// Sends stderr and `tracing` (RUST_LOG as a level, else info) to `path`,
/// appended.
fn log_to(path: &Path) {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path);
    let Ok(file) = file else {
        // No log is no reason not to run; stderr stays /dev/null.
        return;
    };
    let _ = nix::unistd::dup2(file.as_raw_fd(), 2);
    // A level, not a directive filter: every container has a shim, and
    // the directive parser would cost each one its regex machinery.
    let level = std::env::var("RUST_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing_subscriber::filter::LevelFilter>().ok())
        .unwrap_or(tracing_subscriber::filter::LevelFilter::INFO);
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

/// Starts a helper detached (`berth-helper ARG…` or `berth ARG…`, logging to
/// `log`) that answers `ok PID` once ready or `err MESSAGE`; returns the
/// pid. `what` names it in errors ("the DNS responder").
pub fn spawn_helper(
    what: &'static str,
    binary: Binary,
    args: &[OsString],
    log: &Path,
) -> Result<i32, HelperError> {
    let exe = match binary {
        Binary::Helper => executable(),
        Binary::Berth => std::env::current_exe(),
    }
    .map_err(|e| HelperError::Spawn(what, e))?;
    let mut cmd = Command::new(exe);
    cmd.args(args);
    let line = spawn_detached(&mut cmd, log).map_err(|e| HelperError::Spawn(what, e))?;
    match line.strip_prefix("ok ") {
        Some(pid) => pid
            .parse()
            .map_err(|_| HelperError::Failed(what, format!("unexpected reply {line:?}"))),
        None => Err(HelperError::Failed(
            what,
            line.strip_prefix("err ")
                .map(str::to_string)
                .unwrap_or_else(|| {
                    format!("it exited before it was ready (its log: {})", log.display())
                }),
        )),
    }
}

/// Whether `pid` runs berth as the helper whose arguments start with
/// `args` (argv[1..]), so a recycled pid is never taken for it.
pub fn is_helper(pid: i32, args: &[&str]) -> bool {
    if pid <= 0 {
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let argv: Vec<&[u8]> = cmdline.split(|b| *b == 0).skip(1).collect();
    args.iter()
        .enumerate()
        .all(|(i, a)| argv.get(i) == Some(&a.as_bytes()))
}

/// Sends SIGTERM to a helper (see `is_helper`) and returns at once, for a
/// helper that finishes its work before it ends (the watcher); whether it
/// was there.
pub fn terminate_helper(pid: i32, args: &[&str]) -> bool {
    if !is_helper(pid, args) {
        return false;
    }
    // ESRCH: it exited between the check and the signal.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    );
    true
}

/// How long `stop_helper` waits for a helper to exit after SIGTERM before
/// it sends SIGKILL.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether a process exists and has not exited (a zombie has: only its
/// parent has yet to collect it, and its files, sockets among them, are
/// closed).
pub fn alive(pid: i32) -> bool {
    use nix::sys::signal::kill;
    if pid <= 0 || kill(nix::unistd::Pid::from_raw(pid), None).is_err() {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => true,
    }
}

/// Waits until `pid` has exited (see `alive`), `limit` at most; whether it
/// did.
pub fn wait_exited(pid: i32, limit: std::time::Duration) -> bool {
    let start = std::time::Instant::now();
    let mut pause = std::time::Duration::from_micros(200);
    while alive(pid) {
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(20));
    }
    true
}

/// Ends a helper (see `is_helper`) and returns once it has exited, so what
/// it held (a listening port, a socket on a bridge address) is free for the
/// next one: SIGTERM, then SIGKILL after `STOP_GRACE`. Nothing when it is
/// gone.
pub fn stop_helper(pid: i32, args: &[&str]) {
    use nix::sys::signal::{kill, Signal};
    if !terminate_helper(pid, args) {
        return;
    }
    let target = nix::unistd::Pid::from_raw(pid);
    // Once it exits its command line reads empty: a pid taken by another
    // process meanwhile is never killed for it.
    if !wait_exited(pid, STOP_GRACE) && is_helper(pid, args) {
        tracing::warn!("helper {pid} did not end on SIGTERM; killing it");
        let _ = kill(target, Signal::SIGKILL);
        if !wait_exited(pid, STOP_GRACE) {
            tracing::warn!("helper {pid} is still there after SIGKILL");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process that looks like a helper to `is_helper` (`sh -c SCRIPT`,
    /// a script that does not exec: its command line stays).
    fn fake_helper(script: &str) -> std::process::Child {
        let child = Command::new("sh")
            .args(["-c", script])
            .spawn()
            .unwrap_or_else(|e| panic!("sh: {e}"));
        // Until the shell has taken the trap, a SIGTERM would end it early.
        std::thread::sleep(std::time::Duration::from_millis(100));
        child
    }

    #[test]
    fn a_stopped_helper_has_exited_when_stop_returns() {
        let script = "trap 'exit 0' TERM; while :; do sleep 0.05; done";
        let mut child = fake_helper(script);
        let pid = child.id() as i32;
        assert!(alive(pid));
        stop_helper(pid, &["-c", script]);
        assert!(!alive(pid), "the helper still runs after stop_helper");
        let _ = child.wait();
    }

    #[test]
    fn a_helper_that_ignores_sigterm_is_killed() {
        let script = "trap '' TERM; while :; do sleep 0.05; done";
        let mut child = fake_helper(script);
        let pid = child.id() as i32;
        stop_helper(pid, &["-c", script]);
        assert!(!alive(pid), "the helper still runs after stop_helper");
        let status = child.wait().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
    }

    #[test]
    fn another_process_is_not_stopped() {
        let mut child = fake_helper("exec sleep 30");
        let pid = child.id() as i32;
        stop_helper(pid, &["--not-this-helper"]);
        assert!(alive(pid), "a process that is not the helper was stopped");
        let _ = child.kill();
        let _ = child.wait();
    }
}
