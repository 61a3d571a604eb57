//! `exec`: run another process in a running container — join its cgroup and
//! namespaces (setns through /proc/PID/ns; the pid namespace takes effect for
//! a second fork), then confine it as the container's own processes are
//! (user, capabilities, no_new_privs, seccomp) and exec.
//!
//! Runs in a forked child of the (single-threaded) CLI, never in a threaded process.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};

use nix::sched::{setns, CloneFlags};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult};
use oci_spec::runtime::Spec;

use super::init::exit_code;
use super::spec::ContainerConfig;
use super::store::Store;
use super::{cgroups, effective_state, process, security, shim, RuntimeError};

/// What to run and how.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub detach: bool,
    pub interactive: bool,
    /// Give the command a terminal.
    pub tty: bool,
}

const NAMESPACES: &[(&str, CloneFlags)] = &[
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

/// What joining a running container takes, read before forking: its
/// namespaces, cgroup, and how its own processes are confined.
pub(crate) struct Joining {
    ns_fds: Vec<(OwnedFd, CloneFlags)>,
    cg: Box<dyn cgroups::Cgroup>,
    env: Vec<String>,
    cwd: String,
    uid: u32,
    gid: u32,
    caps: Vec<String>,
    no_new_privs: bool,
    seccomp: Option<security::Filters>,
}

/// Prepares to run `req`'s user, environment and directory in container
/// `id`, whose PID 1 is `pid`.
pub(crate) fn joining(
    store: &Store,
    id: &str,
    pid: i32,
    req: &ExecRequest,
) -> Result<Joining, RuntimeError> {
    let dir = store.container_dir(id);
    let spec: Spec = store.read_json(&dir.join("config.json"))?;
    let config: ContainerConfig = store.read_json(&dir.join("berth.json"))?;
    let process = spec.process().clone().unwrap_or_default();
    let (uid, gid) = match &req.user {
        // Names are looked up in the container's own files, through its root.
        Some(u) => super::resolve_user(std::path::Path::new(&format!("/proc/{pid}/root")), u)?,
        None => (process.user().uid(), process.user().gid()),
    };
    let mut env = process.env().clone().unwrap_or_default();
    for kv in &req.env {
        let key = kv.split('=').next().unwrap_or("");
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    let cwd = req
        .workdir
        .clone()
        .unwrap_or_else(|| process.cwd().display().to_string());
    let caps = super::spec::capabilities_of(&spec);
    let seccomp = if config.seccomp {
        Some(
            security::cached_default_filter(&caps)
                .map_err(|e| RuntimeError::Invalid(e.to_string()))?,
        )
    } else {
        None
    };
    let mut ns_fds: Vec<(OwnedFd, CloneFlags)> = Vec::new();
    for (name, flag) in NAMESPACES {
        let path = format!("/proc/{pid}/ns/{name}");
        let host = format!("/proc/self/ns/{name}");
        // Joining the namespace one already is in is refused for some kinds; skip it.
        if std::fs::read_link(&path).ok() == std::fs::read_link(&host).ok() {
            continue;
        }
        let f = std::fs::File::open(&path)
            .map_err(|e| RuntimeError::Invalid(format!("{path}: {e}")))?;
        ns_fds.push((f.into(), *flag));
    }
    Ok(Joining {
        ns_fds,
        cg: cgroups::for_container(id, &shim::limits_of(&spec)),
        env,
        cwd,
        uid,
        gid,
        caps,
        no_new_privs: process.no_new_privileges().unwrap_or(true),
        seccomp,
    })
}

impl Joining {
    /// In a forked, single-threaded child: joins the cgroup and the
    /// namespaces, forks once more (the pid namespace takes effect for
    /// children) and waits for `args` there. The command's exit code, or
    /// why it could not run.
    pub(crate) fn enter_and_run(self, args: &[String]) -> Result<i32, String> {
        self.cg.join_self().map_err(|e| e.to_string())?;
        for (fd, flag) in &self.ns_fds {
            setns(fd.as_fd(), *flag).map_err(|e| format!("setns {flag:?}: {e}"))?;
        }
        // SAFETY: still single-threaded; the grandchild execs or exits.
        match unsafe { fork() }.map_err(|e| e.to_string())? {
            ForkResult::Parent { child } => {
                let status = waitpid(child, None).map_err(|e| e.to_string())?;
                Ok(exit_code(status).unwrap_or(125))
            }
            ForkResult::Child => Err(run_in_container(
                args,
                &self.env,
                &self.cwd,
                self.uid,
                self.gid,
                &self.caps,
                self.no_new_privs,
                self.seccomp.as_ref(),
            )),
        }
    }
}

/// The exit code Docker gives a command that could not run, from why.
pub(crate) fn failure_code(message: &str) -> i32 {
    if message.contains("not found") {
        127
    } else if message.contains("permission") {
        126
    } else {
        125
    }
}

/// Runs the command; returns its exit code (0 at once when detached).
pub fn exec(store: &Store, id: &str, req: &ExecRequest) -> Result<i32, RuntimeError> {
    let st = effective_state(store, id)?;
    if !st.can_kill() || st.status != super::store::Status::Running {
        return Err(RuntimeError::NotRunning(id.to_string()));
    }
    if req.args.is_empty() {
        return Err(RuntimeError::Invalid("exec needs a command".into()));
    }
    let join = joining(store, id, st.pid, req)?;
    let pty = if req.tty && !req.detach {
        Some(
            nix::pty::openpty(super::terminal::size().as_ref(), None)
                .map_err(|e| RuntimeError::Invalid(format!("allocating a terminal: {e}")))?,
        )
    } else {
        None
    };

    // SAFETY: the CLI is single-threaded; the child only joins namespaces,
    // forks and execs or exits.
    match unsafe { fork() }.map_err(|e| RuntimeError::Invalid(format!("fork: {e}")))? {
        ForkResult::Parent { child } => {
            if req.detach {
                return Ok(0);
            }
            if let Some(p) = pty {
                drop(p.slave);
                super::ignore_interrupts();
                relay_terminal(p.master, req.interactive);
            }
            let status =
                waitpid(child, None).map_err(|e| RuntimeError::Invalid(format!("wait: {e}")))?;
            Ok(exit_code(status).unwrap_or(125))
        }
        ForkResult::Child => {
            let code = (|| -> Result<i32, String> {
                if req.detach {
                    nix::unistd::setsid().map_err(|e| e.to_string())?;
                    let null = std::fs::File::open("/dev/null").map_err(|e| e.to_string())?;
                    for fd in 0..3 {
                        nix::unistd::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), fd)
                            .map_err(|e| e.to_string())?;
                    }
                } else if let Some(p) = &pty {
                    // The command's terminal: its own session, the follower on 0, 1, 2.
                    nix::unistd::setsid().map_err(|e| e.to_string())?;
                    for fd in 0..3 {
                        nix::unistd::dup2(std::os::fd::AsRawFd::as_raw_fd(&p.slave), fd)
                            .map_err(|e| e.to_string())?;
                    }
                    // SAFETY: TIOCSCTTY on fd 0 takes no pointer argument.
                    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
                        return Err(format!("controlling terminal: {}", nix::Error::last()));
                    }
                } else if !req.interactive {
                    let null = std::fs::File::open("/dev/null").map_err(|e| e.to_string())?;
                    nix::unistd::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), 0)
                        .map_err(|e| e.to_string())?;
                }
                join.enter_and_run(&req.args)
            })();
            let code = match code {
                Ok(c) => c,
                Err(msg) => {
                    eprintln!("berth: error: {msg}");
                    failure_code(&msg)
                }
            };
            // SAFETY: leave the forked child without the parent's exit handlers.
            unsafe { libc::_exit(code) }
        }
    }
}

/// Relays this terminal and the command's pty until the command's side closes.
fn relay_terminal(leader: OwnedFd, forward_input: bool) {
    let _raw = super::terminal::RawMode::enter(true);
    super::terminal::pump(
        leader.as_fd(),
        forward_input,
        None,
        super::terminal::write_stdout,
    );
}

#[allow(clippy::too_many_arguments)]
fn run_in_container(
    args: &[String],
    env: &[String],
    cwd: &str,
    uid: u32,
    gid: u32,
    caps: &[String],
    no_new_privs: bool,
    seccomp: Option<&security::Filters>,
) -> String {
    if let Err(e) = nix::unistd::chdir(cwd) {
        return format!("chdir to {cwd}: {e}");
    }
    let exe = match process::find_executable(&args[0], env) {
        Ok(p) => p,
        Err(process::ChildErrorKind::NotFound) => {
            return format!("exec: {:?}: executable file not found in $PATH", args[0])
        }
        Err(process::ChildErrorKind::Denied) => {
            return format!("exec: {:?}: permission denied", args[0])
        }
    };
    let set = security::cap_set(caps);
    let steps = security::drop_bounding(&set)
        .and_then(|_| security::switch_user(uid, gid, &[]))
        .and_then(|_| security::set_caps(&set))
        .and_then(|_| {
            if no_new_privs {
                security::no_new_privs()
            } else {
                Ok(())
            }
        });
    if let Err(e) = steps {
        return e.to_string();
    }
    // The command dies with the process that waits for it (a timed-out
    // health probe is killed there); set after the change of user, which
    // clears it.
    if let Err(e) = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL) {
        return format!("prctl(PR_SET_PDEATHSIG): {e}");
    }
    // SAFETY: close_range only marks this process's own fds close-on-exec.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if let Some(p) = seccomp {
        if let Err(e) = security::apply_seccomp(p) {
            return e.to_string();
        }
    }
    let to_c = |v: &[String]| {
        v.iter()
            .map(|s| CString::new(s.as_str()))
            .collect::<Result<Vec<_>, _>>()
    };
    let (Ok(argv), Ok(envc), Ok(path)) = (
        to_c(args),
        to_c(env),
        CString::new(exe.display().to_string()),
    ) else {
        return "argument contains a NUL byte".into();
    };
    match nix::unistd::execve(&path, &argv, &envc) {
        Err(e) => format!("exec {:?}: {e}", args[0]),
        Ok(never) => match never {},
    }
}
