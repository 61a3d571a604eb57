//! berth's tiny init, PID 1 of a container by default (as tini): it runs the
//! command as its child, forwards every signal it receives to it, reaps
//! zombies, and exits with the command's status (128+signal when killed).
//! It is berth's own binary, executed through a read-only bind mount that
//! only the container's detached old root holds, so /proc/1/exe cannot be
//! used to write the host binary.
//!
//! Entered before anything else in `main` (no argument parsing, no logging).

use std::ffi::CString;

use nix::sys::signal::{kill, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{execv, fork, ForkResult, Pid};

/// The argv[1] that selects the init.
pub const INIT_ARG: &str = "__berth_init";

/// Runs the init: `args` is `[executable, argv0, argv1, ...]`. Returns the exit code.
pub fn main(args: &[String]) -> i32 {
    let Some((exe, argv)) = args.split_first() else {
        eprintln!("berth-init: no command");
        return 127;
    };
    let all = SigSet::all();
    if sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), None).is_err() {
        eprintln!("berth-init: cannot block signals");
        return 125;
    }
    let (Ok(path), Ok(argv)) = (
        CString::new(exe.as_str()),
        argv.iter()
            .map(|a| CString::new(a.as_str()))
            .collect::<Result<Vec<_>, _>>(),
    ) else {
        eprintln!("berth-init: argument contains a NUL byte");
        return 125;
    };
    // SAFETY: the init is single-threaded; the child only execs or exits.
    let child = match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
            let err = match execv(&path, &argv) {
                Err(e) => e,
                Ok(never) => match never {},
            };
            eprintln!("berth-init: exec {exe}: {err}");
            // SAFETY: leave the forked child without running exit handlers.
            unsafe { libc::_exit(if err == nix::Error::EACCES { 126 } else { 127 }) };
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => {
            eprintln!("berth-init: fork: {e}");
            return 125;
        }
    };
    supervise(child, &all)
}

fn supervise(child: Pid, set: &SigSet) -> i32 {
    let mut settled = false;
    loop {
        let sig = if settled {
            set.wait()
        } else {
            match wait_until(set, crate::sys::helper::SETTLE) {
                Ok(Some(s)) => Ok(s),
                // Quiet a while: give back what start-up touched, once.
                Ok(None) => {
                    super::resident::shed();
                    settled = true;
                    continue;
                }
                Err(e) => Err(e),
            }
        };
        let sig = match sig {
            Ok(s) => s,
            Err(_) => continue,
        };
        if sig == Signal::SIGCHLD {
            if let Some(code) = reap(child) {
                return code;
            }
        } else {
            let _ = kill(child, sig);
        }
    }
}

/// Waits for a signal of `set` (all blocked) for at most `limit`; `None`
/// when none came.
fn wait_until(set: &SigSet, limit: std::time::Duration) -> nix::Result<Option<Signal>> {
    let ts = libc::timespec {
        tv_sec: limit.as_secs() as libc::time_t,
        tv_nsec: limit.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `set` and `ts` are valid for the call; no siginfo is asked for.
    let n = unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), &ts) };
    if n < 0 {
        return match nix::Error::last() {
            nix::Error::EAGAIN => Ok(None),
            e => Err(e),
        };
    }
    Signal::try_from(n).map(Some)
}

/// Reaps every exited child; returns the command's exit code once it is gone.
fn reap(child: Pid) -> Option<i32> {
    let mut result = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == child => result = Some(code),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == child => {
                result = Some(128 + sig as i32)
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return result,
            Ok(_) => {}
        }
    }
}

/// Docker's exit code for a wait status.
pub fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, c) => Some(c),
        WaitStatus::Signaled(_, s, _) => Some(128 + s as i32),
        _ => None,
    }
}
