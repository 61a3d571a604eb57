//! Creating the container process: clone into new pid, mount, uts, ipc and
//! (for network mode none) net namespaces and into its cgroup (born there on
//! cgroup v2; on v1 the child moves itself before anything else), enter a
//! new cgroup namespace, build the root (the overlay, /proc, /dev, /sys and
//! the mounts, while the shim sets up the network), wait for the shim's go,
//! bind the /etc files, pivot (rootfs.rs), confine (security.rs), and exec
//! — the command itself, or berth's init (`init_exe.rs`: from a sealed
//! memfd, or through a read-only bind mount that exists only in the
//! container's detached old root), so nothing inside can write a host binary
//! (CVE-2019-5736). Failures before exec are reported to the shim over a
//! close-on-exec pipe.
//!
//! Runs only in the single-threaded shim and its child; never in the CLI.

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::unistd::{dup2, sethostname, Pid};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::rootfs;
use super::security;
use super::spec::{ContainerConfig, RootfsSource};

/// Why a container process could not be created.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("{0}: {1}")]
    Sys(&'static str, nix::Error),
    #[error("{0}")]
    Io(String),
}

/// What the child needs, prepared by the shim before cloning.
pub struct Launch<'a> {
    pub spec: &'a Spec,
    pub config: &'a ContainerConfig,
    pub container_dir: &'a Path,
    /// When berth's init runs as PID 1: where its helper-binary fallback is
    /// bound read-only (`init_exe.rs`), one empty file for every container
    /// (`Store::init_target`), bound over in each child's own mount namespace.
    pub init: Option<&'a Path>,
    /// The fds that become the container's stdin, stdout and stderr.
    pub stdio: [RawFd; 3],
    /// The container's cgroup, which the child enters unless born in it.
    pub cgroup: &'a dyn super::cgroups::Cgroup,
    /// The cgroup's directory where a clone can place the child in it.
    pub cgroup_dir: Option<&'a OwnedFd>,
    /// The child blocks on this until the shim has set up its network.
    pub sync: RawFd,
    /// Where the child writes why it failed before exec.
    pub report: RawFd,
    /// A prepared network namespace to join instead of a new one.
    pub netns: Option<&'a OwnedFd>,
    /// Compiled seccomp filter, or none (privileged / unconfined).
    pub seccomp: Option<&'a security::Filters>,
}

/// The default PATH when the image gives none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A pipe whose ends close on exec.
pub fn pipe() -> Result<(OwnedFd, OwnedFd), ProcessError> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| ProcessError::Sys("pipe", e))
}

fn has_ns(spec: &Spec, t: LinuxNamespaceType) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == t))
}

/// Clones the container's first process. Returns its host pid.
pub fn spawn(launch: &Launch) -> Result<Pid, ProcessError> {
    let mut flags =
        libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;
    if has_ns(launch.spec, LinuxNamespaceType::Network) && launch.netns.is_none() {
        flags |= libc::CLONE_NEWNET;
    }
    let born_in_cgroup = launch.cgroup_dir.and_then(|dir| {
        clone_into_cgroup(flags as u64, dir)
            .map_err(|e| {
                // A kernel before 5.7, or a filter refusing clone3: the
                // child moves itself instead.
                tracing::debug!("clone3 into the cgroup: {e}; the child enters it itself");
            })
            .ok()
    });
    let in_cgroup = born_in_cgroup.is_some();
    let ret = born_in_cgroup.unwrap_or_else(|| fork_style_clone(flags));
    if ret < 0 {
        return Err(ProcessError::Sys("clone", nix::Error::last()));
    }
    if ret == 0 {
        let code = child_main(launch, in_cgroup);
        // SAFETY: _exit ends the child without running the parent's atexit
        // handlers or flushing buffers it shares with the parent.
        unsafe { libc::_exit(code) };
    }
    Ok(Pid::from_raw(ret as i32))
}

/// clone(2) without a new stack: the child continues as after fork.
fn fork_style_clone(flags: libc::c_int) -> libc::c_long {
    // SAFETY: the shim is single-threaded, so a fork-style clone (no new
    // stack) leaves the child a consistent copy of its memory; the caller's
    // child only runs `child_main`, which ends in exec or _exit.
    unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    }
}

/// The kernel's `struct clone_args` (linux/sched.h), up to `cgroup`
/// (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// linux/sched.h: place the child in the cgroup `clone_args.cgroup` names.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// clone3(2), fork-style, with the child born in the cgroup whose directory
/// `dir` is. 0 in the child, its pid in the parent; the error when this
/// kernel or a seccomp filter around berth refuses it, before any child.
fn clone_into_cgroup(flags: u64, dir: &OwnedFd) -> Result<libc::c_long, nix::Error> {
    let args = CloneArgs {
        flags: flags | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: dir.as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    // SAFETY: as for `fork_style_clone` (stack 0: the child continues on a
    // copy of this one); `args` outlives the call and its size is passed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if ret < 0 {
        Err(nix::Error::last())
    } else {
        Ok(ret)
    }
}

/// A failure in the child: the exit code and the message for the shim.
struct ChildError(i32, String);

impl<E: std::fmt::Display> From<(i32, E)> for ChildError {
    fn from((code, e): (i32, E)) -> Self {
        ChildError(code, e.to_string())
    }
}

fn child_main(launch: &Launch, in_cgroup: bool) -> i32 {
    let setup = if in_cgroup {
        Ok(())
    } else {
        // First of all, so nothing the container does runs outside its limits.
        launch
            .cgroup
            .join_self()
            .map_err(|e| ChildError(125, format!("entering the container's cgroup: {e}")))
    };
    match setup.and_then(|()| child_setup(launch)) {
        Ok(never) => match never {},
        Err(ChildError(code, msg)) => {
            // SAFETY: `report` is a pipe write end owned by this process.
            let mut f = unsafe { std::fs::File::from_raw_fd(launch.report) };
            let _ = write!(f, "{code} {msg}");
            code
        }
    }
}

/// Looks a command up as execvp would, in the container's PATH.
pub fn find_executable(cmd: &str, env: &[String]) -> Result<PathBuf, ChildErrorKind> {
    if cmd.contains('/') {
        let p = PathBuf::from(cmd);
        return check_exec(&p).map(|_| p);
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    let mut denied = false;
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let p = Path::new(dir).join(cmd);
        match check_exec(&p) {
            Ok(()) => return Ok(p),
            Err(ChildErrorKind::Denied) => denied = true,
            Err(_) => {}
        }
    }
    Err(if denied {
        ChildErrorKind::Denied
    } else {
        ChildErrorKind::NotFound
    })
}

/// Why a command cannot run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildErrorKind {
    NotFound,
    Denied,
}

fn check_exec(p: &Path) -> Result<(), ChildErrorKind> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(p) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(()),
        Ok(_) => Err(ChildErrorKind::Denied),
        Err(_) => Err(ChildErrorKind::NotFound),
    }
}

fn cstrings(v: &[String]) -> Result<Vec<CString>, ChildError> {
    v.iter()
        .map(|s| {
            CString::new(s.as_str())
                .map_err(|_| ChildError(125, format!("{s:?} contains a NUL byte")))
        })
        .collect()
}

/// The overlay's lower dirs, lowest first: the image (or the rootfs
/// directory), then the mount-point layer when the container has it.
pub(crate) fn lower_dirs(config: &ContainerConfig) -> Vec<PathBuf> {
    let mut lowers = image_lowers(&config.rootfs);
    lowers.extend(
        config
            .mount_points
            .as_deref()
            .and_then(super::mount_points::restored),
    );
    lowers
}

/// The image's own lower dirs, lowest first.
pub(crate) fn image_lowers(rootfs: &RootfsSource) -> Vec<PathBuf> {
    match rootfs {
        RootfsSource::Dir(d) => vec![d.clone()],
        RootfsSource::Layers(l) => l.clone(),
    }
}

fn child_setup(launch: &Launch) -> Result<std::convert::Infallible, ChildError> {
    let spec = launch.spec;
    let sys = |what: &'static str| move |e: nix::Error| ChildError(125, format!("{what}: {e}"));
    for (i, fd) in launch.stdio.iter().enumerate() {
        if *fd != i as RawFd {
            dup2(*fd, i as RawFd).map_err(sys("dup2"))?;
        }
    }
    // Dies with the shim from here on (a shim killed while this child sets
    // up leaves nothing behind); renewed after the change of user below.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .map_err(|e| ChildError(125, format!("prctl(PR_SET_PDEATHSIG): {e}")))?;
    if let Some(ns) = launch.netns {
        nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(sys("joining the network namespace"))?;
    }
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
        .map_err(sys("unshare cgroup namespace"))?;
    nix::unistd::setsid().map_err(sys("setsid"))?;
    if launch.config.tty {
        // SAFETY: TIOCSCTTY on fd 0 (the pty follower) takes no pointer argument.
        if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
            return Err(ChildError(
                125,
                format!("setting the controlling terminal: {}", nix::Error::last()),
            ));
        }
    }

    rootfs::make_private().map_err(|e| ChildError(125, e.to_string()))?;
    let root_path = launch.container_dir.join("rootfs");
    rootfs::mount_overlay(
        &lower_dirs(launch.config),
        &launch.container_dir.join("upper"),
        &launch.container_dir.join("work"),
        &root_path,
    )
    .map_err(|e| ChildError(125, e.to_string()))?;
    let root = nix::fcntl::open(
        &root_path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("opening the root"))?;
    // SAFETY: `root` was just returned by open(2) and is owned here only.
    let root = unsafe { OwnedFd::from_raw_fd(root) };
    let console = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    rootfs::mount_standard(&root_path, &root, console)
        .map_err(|e| ChildError(125, e.to_string()))?;
    for v in &launch.config.volumes {
        rootfs::copy_up(&root, &v.target, &v.data).map_err(|e| ChildError(125, e.to_string()))?;
    }
    for m in spec.mounts().as_deref().unwrap_or_default() {
        let target = m.destination().display().to_string();
        let opts = m.options().clone().unwrap_or_default();
        let ro = opts.iter().any(|o| o == "ro");
        let res = match m.typ().as_deref() {
            Some("tmpfs") => rootfs::tmpfs(&root, &target, &opts, ro),
            _ => {
                let src = m.source().clone().unwrap_or_default();
                rootfs::bind(&root, &src, &target, ro)
            }
        };
        res.map_err(|e| ChildError(125, e.to_string()))?;
    }
    // The root is built while the shim sets up the network; from here on
    // the container needs what the shim makes (its /etc/hosts, rewritten
    // with its address, is bound next), so wait for the shim's go.
    {
        // SAFETY: `sync` is the read end of a pipe created for this child.
        let mut f = unsafe { std::fs::File::from_raw_fd(launch.sync) };
        let mut b = [0u8; 1];
        // End of file: the shim died before it let the container go.
        if !matches!(f.read(&mut b), Ok(1)) {
            return Err(ChildError(125, "the shim is gone".into()));
        }
    }
    for f in ["hosts", "hostname", "resolv.conf"] {
        let src = launch.container_dir.join(f);
        if src.exists() {
            rootfs::bind(&root, &src, &format!("/etc/{f}"), false)
                .map_err(|e| ChildError(125, e.to_string()))?;
        }
    }
    if console {
        // The terminal the container got is its console too.
        let tty = std::fs::read_link("/proc/self/fd/0")
            .map_err(|e| ChildError(125, format!("finding the terminal: {e}")))?;
        rootfs::bind(&root, &tty, "/dev/console", false)
            .map_err(|e| ChildError(125, e.to_string()))?;
    }
    let init = launch
        .init
        .map(super::init_exe::InitExe::open)
        .transpose()
        .map_err(|e| ChildError(125, e))?;
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        sethostname(h).map_err(sys("sethostname"))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        // SAFETY: the pointer and length describe `d`, alive for the call;
        // the kernel copies the bytes into this (new) UTS namespace.
        let rc = unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) };
        if rc != 0 {
            return Err(ChildError(
                125,
                format!("setdomainname: {}", std::io::Error::last_os_error()),
            ));
        }
    }
    drop(root);
    rootfs::pivot(&root_path).map_err(|e| ChildError(125, e.to_string()))?;

    let linux = spec.linux().clone().unwrap_or_default();
    if let Some(sysctls) = linux.sysctl() {
        for (k, v) in sysctls {
            let p = format!("/proc/sys/{}", k.replace('.', "/"));
            std::fs::write(&p, v).map_err(|e| ChildError(125, format!("sysctl {k}: {e}")))?;
        }
    }
    rootfs::mask(linux.masked_paths().as_deref().unwrap_or_default())
        .map_err(|e| ChildError(125, e.to_string()))?;
    rootfs::read_only(linux.readonly_paths().as_deref().unwrap_or_default())
        .map_err(|e| ChildError(125, e.to_string()))?;

    let process = spec.process().clone().unwrap_or_default();
    let cwd = process.cwd().clone();
    std::fs::create_dir_all(&cwd).map_err(|e| {
        ChildError(
            125,
            format!("creating working directory {}: {e}", cwd.display()),
        )
    })?;
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        rootfs::read_only_root().map_err(|e| ChildError(125, e.to_string()))?;
    }
    nix::unistd::chdir(&cwd)
        .map_err(|e| ChildError(125, format!("chdir to {}: {e}", cwd.display())))?;

    let rlimits: Vec<(String, u64, u64)> = process
        .rlimits()
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|r| (r.typ().to_string(), r.soft(), r.hard()))
        .collect();
    security::apply_rlimits(&rlimits).map_err(|e| ChildError(125, e.to_string()))?;

    let env = process.env().clone().unwrap_or_default();
    let args = process.args().clone().unwrap_or_default();
    let Some(cmd) = args.first() else {
        return Err(ChildError(125, "no command specified".into()));
    };
    let exe = find_executable(cmd, &env).map_err(|k| match k {
        ChildErrorKind::NotFound => ChildError(
            127,
            format!("exec: {cmd:?}: executable file not found in $PATH"),
        ),
        ChildErrorKind::Denied => ChildError(126, format!("exec: {cmd:?}: permission denied")),
    })?;

    // Confinement: bounding set, user, capability sets, no_new_privs, seccomp.
    let caps = super::spec::capabilities_of(spec);
    let capset = security::cap_set(&caps);
    security::drop_bounding(&capset).map_err(|e| ChildError(125, e.to_string()))?;
    let user = process.user();
    let groups = user.additional_gids().clone().unwrap_or_default();
    security::switch_user(user.uid(), user.gid(), &groups)
        .map_err(|e| ChildError(125, e.to_string()))?;
    // The container dies with its shim (set after the change of user, which
    // clears it; kept across exec): a container nobody monitors, logs or
    // reaps is never left running.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .map_err(|e| ChildError(125, format!("prctl(PR_SET_PDEATHSIG): {e}")))?;
    security::set_caps(&capset).map_err(|e| ChildError(125, e.to_string()))?;
    if process.no_new_privileges().unwrap_or(true) {
        security::no_new_privs().map_err(|e| ChildError(125, e.to_string()))?;
    }
    // Every fd but 0, 1 and 2 closes at exec (CVE-2024-21626).
    // SAFETY: close_range only changes flags on this process's own fds.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc < 0 {
        return Err(ChildError(
            125,
            format!("close_range: {}", nix::Error::last()),
        ));
    }
    if let Some(program) = launch.seccomp {
        security::apply_seccomp(program).map_err(|e| ChildError(125, e.to_string()))?;
    }

    let envc = cstrings(&env)?;
    let exe_text = exe.display().to_string();
    match init {
        Some(init) => {
            let argv = cstrings(&init.argv(exe_text, &args))?;
            // Blocked across exec until the init takes them: a stop signal
            // sent in between stays pending, where PID 1 of a namespace with
            // the default disposition would have dropped it (the init
            // unblocks them for the command it starts).
            nix::sys::signal::sigprocmask(
                nix::sys::signal::SigmaskHow::SIG_BLOCK,
                Some(&nix::sys::signal::SigSet::all()),
                None,
            )
            .map_err(sys("blocking signals"))?;
            let e = nix::unistd::fexecve(init.fd(), &argv, &envc)
                .map_err(|e| ChildError(125, format!("exec init: {e}{}", init.hint())))?;
            match e {}
        }
        None => {
            let path = CString::new(exe_text).map_err(|_| ChildError(125, "bad path".into()))?;
            let argv = cstrings(&args)?;
            let e = nix::unistd::execve(&path, &argv, &envc).map_err(|e| {
                let code = if e == nix::Error::EACCES { 126 } else { 127 };
                ChildError(code, format!("exec {cmd:?}: {e}"))
            })?;
            match e {}
        }
    }
}

/// Reads the child's report: `None` when it reached exec.
pub fn read_report(report: OwnedFd) -> Option<(i32, String)> {
    let mut f = std::fs::File::from(report);
    let mut s = String::new();
    let _ = f.read_to_string(&mut s);
    if s.is_empty() {
        return None;
    }
    let (code, msg) = s.split_once(' ').unwrap_or(("125", s.as_str()));
    Some((code.parse().unwrap_or(125), msg.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executables_are_found_in_path() {
        let env = vec!["PATH=/nonexistent:/bin:/usr/bin".to_string()];
        assert!(find_executable("sh", &env).is_ok());
        assert_eq!(
            find_executable("no-such-cmd-xyz", &env),
            Err(ChildErrorKind::NotFound)
        );
        assert_eq!(
            find_executable("/etc/passwd", &env),
            Err(ChildErrorKind::Denied)
        );
        assert!(find_executable("/bin/sh", &[]).is_ok());
    }
}
