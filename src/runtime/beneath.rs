//! Descriptor-relative file access that never leaves a directory: opening
//! paths with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), which refuses
//! `..` escapes and symlinks leading out (absolute ones included), and
//! extended attributes set through such descriptors. The safe surface over
//! the few calls that need raw descriptors; used by layer extraction.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

fn own(fd: std::os::fd::RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful open call and nothing
    // else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Opens a directory to work beneath.
pub fn open_dir(path: &Path) -> nix::Result<OwnedFd> {
    nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(own)
}

/// Opens `path` (relative) beneath `dir`; EXDEV or ELOOP when it would leave it.
pub fn open_beneath(dir: &OwnedFd, path: &Path, flags: OFlag, mode: Mode) -> nix::Result<OwnedFd> {
    let target: &Path = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .mode(mode)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    openat2(dir.as_raw_fd(), target, how).map(own)
}

/// Sets an extended attribute on `name` inside the directory `dir` (not
/// following a symlink at `name`).
pub fn set_xattr(dir: &OwnedFd, name: &str, key: &str, value: &[u8]) -> nix::Result<()> {
    let path = CString::new(format!("/proc/self/fd/{}/{name}", dir.as_raw_fd()))
        .map_err(|_| nix::Error::EINVAL)?;
    let key = CString::new(key).map_err(|_| nix::Error::EINVAL)?;
    // SAFETY: both strings are NUL-terminated and live for the call; `value`
    // is a valid buffer of the given length.
    let rc = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            key.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc < 0 {
        Err(nix::Error::last())
    } else {
        Ok(())
    }
}

/// Reads an extended attribute of a path (not following a final symlink).
pub fn get_xattr(path: &Path, key: &str) -> Option<Vec<u8>> {
    let p = CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    let k = CString::new(key).ok()?;
    let mut buf = vec![0u8; 256];
    // SAFETY: NUL-terminated strings and a buffer of the given length.
    let n = unsafe { libc::lgetxattr(p.as_ptr(), k.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (n >= 0).then(|| {
        buf.truncate(n as usize);
        buf
    })
}
