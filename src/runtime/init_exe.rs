//! The executable a container's init runs from, opened in the child before
//! pivot_root. Either way nothing inside the container can write a host
//! binary through `/proc/1/exe` (CVE-2019-5736):
//!
//! - the freestanding init (`tiny_init.rs`, embedded by `build.rs`) copied
//!   into a memfd sealed against every change: no host file at all;
//! - berth's own helper binary through a read-only bind mount that only the
//!   container's detached old root holds, where the memfd cannot be made
//!   or run (a kernel with `vm.memfd_noexec = 2`, an architecture without
//!   the freestanding init), or when `BERTH_INIT_FROM_HELPER=1` asks for it.
//!
//! Owns only these descriptors and that one bind mount; never execs.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

/// Set to `1` to run every container's init from berth's helper binary
/// instead of the freestanding init.
pub const FROM_HELPER_ENV: &str = "BERTH_INIT_FROM_HELPER";

/// The freestanding init, when it was built for this target.
#[cfg(berth_tiny_init)]
const TINY_INIT: Option<&[u8]> = Some(include_bytes!(env!("BERTH_TINY_INIT")));
#[cfg(not(berth_tiny_init))]
const TINY_INIT: Option<&[u8]> = None;

/// An opened init executable.
pub enum InitExe {
    /// The freestanding init in a sealed memfd (closed on exec).
    Sealed(OwnedFd),
    /// berth's helper binary through a read-only bind mount.
    Helper(OwnedFd),
}

impl InitExe {
    /// Opens the init: the sealed freestanding one when it can be, else the
    /// helper bound read-only at `at` (an existing or creatable file, in
    /// the child's private mount namespace, before pivot_root).
    pub fn open(at: &Path) -> Result<InitExe, String> {
        let wanted = std::env::var(FROM_HELPER_ENV).map_or(true, |v| v != "1");
        if let (true, Some(bytes)) = (wanted, TINY_INIT) {
            match sealed_memfd(bytes) {
                Ok(fd) => return Ok(InitExe::Sealed(fd)),
                Err(e) => tracing::debug!("the freestanding init cannot run from a memfd: {e}"),
            }
        }
        read_only_helper(at).map(InitExe::Helper)
    }

    /// The descriptor to execute.
    pub fn fd(&self) -> std::os::fd::RawFd {
        match self {
            InitExe::Sealed(fd) | InitExe::Helper(fd) => fd.as_raw_fd(),
        }
    }

    /// What to do when executing it failed.
    pub fn hint(&self) -> String {
        match self {
            InitExe::Sealed(_) => format!(
                " (a security module may refuse to run programs from memory: \
                 set {FROM_HELPER_ENV}=1 to run the init from berth's helper binary)"
            ),
            InitExe::Helper(_) => String::new(),
        }
    }

    /// The init's argv for running `exe` with `args` (its argv from argv0).
    pub fn argv(&self, exe: String, args: &[String]) -> Vec<String> {
        let mut argv = vec!["berth-init".to_string()];
        if let InitExe::Helper(_) = self {
            argv.push(super::init::INIT_ARG.to_string());
        }
        argv.push(exe);
        argv.extend(args.iter().cloned());
        argv
    }
}

/// `bytes` in a new memfd, executable, sealed against writing, growing,
/// shrinking and further sealing, closed on exec.
fn sealed_memfd(bytes: &[u8]) -> std::io::Result<OwnedFd> {
    // Linux 6.3's flag that asks for an executable memfd where the default
    // became not executable (`vm.memfd_noexec = 1`); older kernels refuse
    // the flag, and make every memfd executable.
    const MFD_EXEC: libc::c_uint = 0x0010;
    let name = c"berth-init";
    let base = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    let create = |flags: libc::c_uint| {
        // SAFETY: `name` is a NUL-terminated string alive for the call.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
        if fd < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            // SAFETY: `fd` was just returned by memfd_create and is owned
            // here only.
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        }
    };
    let fd = match create(base | MFD_EXEC) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => create(base)?,
        other => other?,
    };
    let mut file = std::fs::File::from(fd);
    std::io::Write::write_all(&mut file, bytes)?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: F_ADD_SEALS takes an int; `file` is an open memfd.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(file.into())
}

/// Opens berth's helper binary through a read-only bind mount at `at`
/// (inside the child's private mount namespace, before pivot_root). Once
/// the old root is detached, the returned descriptor is the only way to
/// the file, and every write through it fails: the mount is read-only.
fn read_only_helper(at: &Path) -> Result<OwnedFd, String> {
    use nix::mount::{mount, MsFlags};
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(at)
        .map_err(|e| format!("creating {}: {e}", at.display()))?;
    let err =
        |step: &'static str| move |e: nix::Error| format!("{step} berth at {}: {e}", at.display());
    // By path: the magic link would name a mount of the shim's namespace,
    // which cannot be bound from this one.
    let exe = crate::sys::helper::executable()
        .map_err(|e| format!("finding berth's helper binary: {e}"))?;
    mount(Some(&exe), at, None::<&str>, MsFlags::MS_BIND, None::<&str>).map_err(err("binding"))?;
    let ro = MsFlags::MS_BIND
        | MsFlags::MS_REMOUNT
        | MsFlags::MS_RDONLY
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV;
    mount(None::<&str>, at, None::<&str>, ro, None::<&str>).map_err(err("making read-only"))?;
    let fd = nix::fcntl::open(at, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(err("opening"))?;
    // SAFETY: `fd` was just returned by open(2) and is owned here only.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_freestanding_init_is_built_in_and_small() {
        let Some(bytes) = TINY_INIT else {
            eprintln!("skipped: no freestanding init for this target");
            return;
        };
        assert_eq!(&bytes[..4], b"\x7fELF");
        assert!(bytes.len() < 64 * 1024, "{} bytes", bytes.len());
    }

    #[test]
    fn a_sealed_memfd_holds_the_bytes_and_refuses_every_change() {
        let fd = sealed_memfd(b"#!/bin/true\n").unwrap_or_else(|e| panic!("{e}"));
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        assert_eq!(
            std::fs::read(&path).unwrap_or_else(|e| panic!("{e}")),
            b"#!/bin/true\n"
        );
        let mut file = std::fs::File::from(fd);
        assert!(std::io::Write::write_all(&mut file, b"x").is_err());
        assert!(file.set_len(1).is_err() && file.set_len(100).is_err());
        // SAFETY: F_GET_SEALS takes no argument.
        let seals = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GET_SEALS) };
        assert_eq!(
            seals,
            libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE
        );
        // SAFETY: F_GETFD takes no argument.
        let flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFD) };
        assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC, "closed on exec");
    }

    #[test]
    fn only_the_helper_init_is_told_which_helper_it_is() {
        let args = vec!["sh".to_string(), "-c".to_string(), "true".to_string()];
        let devnull =
            || OwnedFd::from(std::fs::File::open("/dev/null").unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(
            InitExe::Sealed(devnull()).argv("/bin/sh".into(), &args),
            ["berth-init", "/bin/sh", "sh", "-c", "true"]
        );
        assert_eq!(
            InitExe::Helper(devnull()).argv("/bin/sh".into(), &args),
            ["berth-init", "__berth_init", "/bin/sh", "sh", "-c", "true"]
        );
        // A memfd that cannot be run names the way out; the fallback has none.
        assert!(InitExe::Sealed(devnull())
            .hint()
            .contains("set BERTH_INIT_FROM_HELPER=1"));
        assert_eq!(InitExe::Helper(devnull()).hint(), "");
    }
}
