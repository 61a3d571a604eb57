//! Copying files between the host and a container's root (`cp`, and the
//! sync of watch mode), bounded by the container's root: paths inside the
//! container are resolved with openat2(RESOLVE_IN_ROOT), so `..` and
//! symlinks (absolute ones included) stay inside it; below the resolved
//! directory every step is one name opened relative to its parent with
//! O_NOFOLLOW, so a symlink planted in the container never redirects a
//! write to the host. Files are written to a temporary name and renamed into
//! place: a program in the container never reads half a file.
//!
//! A running container's root is reached through its PID 1
//! (`/proc/PID/root`, with its volumes and bind mounts); a stopped one's by
//! mounting its overlay in a private mount namespace of a forked child.
//!
//! Owns these copies and removals; never changes a container's state.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{openat, openat2, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fchmod, fstatat, mkdirat, Mode, SFlag};
use nix::unistd::{fchownat, Gid, Uid, UnlinkatFlags};

use super::store::{Status, Store};

/// Why a copy failed, with the path it concerned.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("{path}: {message}")]
    Path { path: String, message: String },
    #[error("container {0} has no root to copy with: {1}")]
    Root(String, String),
}

type Result<T> = std::result::Result<T, CopyError>;

fn at(path: impl AsRef<Path>) -> impl Fn(nix::Error) -> CopyError {
    let path = path.as_ref().display().to_string();
    move |e| CopyError::Path {
        path: path.clone(),
        message: e.desc().to_string(),
    }
}

fn io_at(path: impl AsRef<Path>) -> impl Fn(std::io::Error) -> CopyError {
    let path = path.as_ref().display().to_string();
    move |e| CopyError::Path {
        path: path.clone(),
        message: e.to_string(),
    }
}

fn said(path: impl AsRef<Path>, message: &str) -> CopyError {
    CopyError::Path {
        path: path.as_ref().display().to_string(),
        message: message.to_string(),
    }
}

fn own(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful open call and nothing
    // else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Who owns what a copy creates in the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The source's uid and gid (`cp -a`).
    Keep,
    /// These ids (Docker's default for `cp` is root's).
    Set(u32, u32),
}

/// The root of running container `id`, through its PID 1 (`None` when it
/// does not run).
fn live_root(store: &Store, id: &str) -> Result<Option<OwnedFd>> {
    let st =
        super::effective_state(store, id).map_err(|e| CopyError::Root(id.into(), e.to_string()))?;
    if !(matches!(st.status, Status::Running | Status::Paused) && st.pid > 0) {
        return Ok(None);
    }
    nix::fcntl::open(
        format!("/proc/{}/root", st.pid).as_str(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(|fd| Some(own(fd)))
    .map_err(|e| CopyError::Root(id.into(), e.desc().into()))
}

/// Runs `f` with the root of running container `id` only: for threaded
/// callers (watch mode), which must not fork to mount a stopped one.
pub fn with_live_root(
    store: &Store,
    id: &str,
    f: impl FnOnce(&OwnedFd) -> Result<()>,
) -> Result<()> {
    match live_root(store, id)? {
        Some(root) => f(&root),
        None => Err(CopyError::Root(id.into(), "it is not running".into())),
    }
}

/// Runs `f` with a descriptor of container `id`'s root directory; a
/// stopped container's overlay is mounted in a forked child, so call it
/// from a single-threaded process only.
pub fn with_root(store: &Store, id: &str, f: impl FnOnce(&OwnedFd) -> Result<()>) -> Result<()> {
    if let Some(root) = live_root(store, id)? {
        return f(&root);
    }
    let cfg: super::spec::ContainerConfig = store
        .read_json(&store.container_dir(id).join("berth.json"))
        .map_err(|e| CopyError::Root(id.into(), e.to_string()))?;
    let dir = store.container_dir(id);
    let lower = super::process::lower_dirs(&cfg);
    in_private_mount(
        &dir.join("merged"),
        |target| {
            super::rootfs::mount_overlay(&lower, &dir.join("upper"), &dir.join("work"), target)
                .map_err(|e| e.to_string())
        },
        f,
    )
    .map_err(|e| match e {
        InChild::Copy(c) => c,
        InChild::Other(m) => CopyError::Root(id.into(), m),
    })
}

enum InChild {
    Copy(CopyError),
    Other(String),
}

/// Forks a child that enters a private mount namespace, mounts with `mount`
/// at `target`, and runs `f` on it; the mount dies with the child.
fn in_private_mount(
    target: &Path,
    mount: impl FnOnce(&Path) -> std::result::Result<(), String>,
    f: impl FnOnce(&OwnedFd) -> Result<()>,
) -> std::result::Result<(), InChild> {
    std::fs::create_dir_all(target).map_err(|e| InChild::Other(e.to_string()))?;
    let (rd, wr) = nix::unistd::pipe().map_err(|e| InChild::Other(e.desc().into()))?;
    // SAFETY: the CLI is single-threaded when it copies; the child only runs
    // this function's code and leaves with _exit.
    match unsafe { nix::unistd::fork() } {
        Err(e) => Err(InChild::Other(format!("fork: {}", e.desc()))),
        Ok(nix::unistd::ForkResult::Child) => {
            drop(rd);
            let mut report = std::fs::File::from(wr);
            let outcome = (|| -> std::result::Result<(), String> {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
                    .map_err(|e| format!("unshare: {}", e.desc()))?;
                super::rootfs::make_private().map_err(|e| e.to_string())?;
                mount(target)?;
                let root = nix::fcntl::open(
                    target,
                    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map(own)
                .map_err(|e| e.desc().to_string())?;
                f(&root).map_err(|e| format!("copy:{e}"))
            })();
            let code = match outcome {
                Ok(()) => 0,
                Err(m) => {
                    let _ = report.write_all(m.as_bytes());
                    1
                }
            };
            // SAFETY: _exit ends the child without running the parent's
            // destructors or atexit handlers twice.
            unsafe { libc::_exit(code) }
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            drop(wr);
            let mut message = String::new();
            let _ = std::fs::File::from(rd).read_to_string(&mut message);
            let status = nix::sys::wait::waitpid(child, None)
                .map_err(|e| InChild::Other(format!("waiting: {}", e.desc())))?;
            match status {
                nix::sys::wait::WaitStatus::Exited(_, 0) => Ok(()),
                _ => Err(match message.strip_prefix("copy:") {
                    Some(m) => InChild::Copy(CopyError::Path {
                        path: String::new(),
                        message: m.to_string(),
                    }),
                    None => InChild::Other(message),
                }),
            }
        }
    }
}

/// The path relative to the root, without `.`/`..`/root components (they
/// are resolved by the kernel inside the root anyway).
fn relative(path: &str) -> PathBuf {
    let rel: PathBuf = Path::new(path)
        .components()
        .filter(|c| matches!(c, Component::Normal(_) | Component::ParentDir))
        .collect();
    if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    }
}

/// Opens `path` inside the root; `follow` follows a final symlink.
fn open_in(root: &OwnedFd, path: &str, flags: OFlag, follow: bool) -> nix::Result<OwnedFd> {
    let mut flags = flags | OFlag::O_CLOEXEC;
    if !follow {
        flags |= OFlag::O_NOFOLLOW;
    }
    let how = OpenHow::new()
        .flags(flags)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    openat2(root.as_raw_fd(), relative(path).as_path(), how).map(own)
}

fn is_dir(fd: &OwnedFd) -> bool {
    nix::sys::stat::fstat(fd.as_raw_fd())
        .is_ok_and(|s| SFlag::from_bits_truncate(s.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)
}

/// The last name of a container path and its parent (`/a/b` → `/a`, `b`).
fn split(path: &str) -> Option<(String, String)> {
    let trimmed = path.trim_end_matches('/');
    let (parent, name) = trimmed.rsplit_once('/').unwrap_or(("", trimmed));
    if name.is_empty() || name == "." || name == ".." {
        return None;
    }
    Some((
        if parent.is_empty() {
            "/".into()
        } else {
            parent.into()
        },
        name.into(),
    ))
}

/// Copies host `src` to `dest` in the container, as `cp SRC CONTAINER:DEST`
/// does: into `dest` when it is a directory (only the contents when `src`
/// ends in `/.`), else as `dest`.
pub fn copy_in(root: &OwnedFd, src: &Path, dest: &str, owner: Owner) -> Result<()> {
    let meta = std::fs::symlink_metadata(src).map_err(io_at(src))?;
    let contents_only = src.as_os_str().as_bytes().ends_with(b"/.");
    let existing = open_in(root, dest, OFlag::O_PATH, true).ok();
    match existing {
        Some(dir) if is_dir(&dir) => {
            let dir = open_in(root, dest, OFlag::O_RDONLY | OFlag::O_DIRECTORY, true)
                .map_err(at(dest))?;
            if meta.is_dir() && contents_only {
                copy_children(src, &dir, owner)
            } else {
                let name = src
                    .file_name()
                    .ok_or_else(|| said(src, "has no file name"))?;
                put(src, &dir, name, owner)
            }
        }
        Some(_) if meta.is_dir() => Err(said(dest, "cannot copy a directory to a file")),
        _ => {
            if dest.ends_with('/') && !meta.is_dir() {
                return Err(said(dest, "no such directory"));
            }
            let (parent, name) = split(dest).ok_or_else(|| said(dest, "is not a file name"))?;
            let dir = open_in(root, &parent, OFlag::O_RDONLY | OFlag::O_DIRECTORY, true)
                .map_err(at(&parent))?;
            put(src, &dir, OsStr::new(&name), owner)
        }
    }
}

fn copy_children(src: &Path, dir: &OwnedFd, owner: Owner) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(src)
        .map_err(io_at(src))?
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        put(&e.path(), dir, &e.file_name(), owner)?;
    }
    Ok(())
}

fn ids(meta: &std::fs::Metadata, owner: Owner) -> (Option<Uid>, Option<Gid>) {
    let (u, g) = match owner {
        Owner::Keep => (meta.uid(), meta.gid()),
        Owner::Set(u, g) => (u, g),
    };
    (Some(Uid::from_raw(u)), Some(Gid::from_raw(g)))
}

/// Opens directory `name` in the directory `fd`, never through a symlink.
fn subdir(fd: RawFd, name: &OsStr) -> nix::Result<OwnedFd> {
    openat(
        Some(fd),
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(own)
}

/// What is at `name` in `dir` (not following a symlink), if anything.
fn kind_at(dir: &OwnedFd, name: &OsStr) -> Option<SFlag> {
    fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .ok()
        .map(|s| SFlag::from_bits_truncate(s.st_mode) & SFlag::S_IFMT)
}

/// Puts host `src` at `name` in `dir`, replacing what is there.
fn put(src: &Path, dir: &OwnedFd, name: &OsStr, owner: Owner) -> Result<()> {
    let meta = std::fs::symlink_metadata(src).map_err(io_at(src))?;
    let (uid, gid) = ids(&meta, owner);
    let fd = dir.as_raw_fd();
    let existing = kind_at(dir, name);
    let ft = meta.file_type();
    if ft.is_dir() {
        if existing.is_some_and(|k| k != SFlag::S_IFDIR) {
            remove_at(dir, name).map_err(at(src))?;
        }
        if existing != Some(SFlag::S_IFDIR) {
            mkdirat(Some(fd), name, Mode::from_bits_truncate(0o700)).map_err(at(src))?;
        }
        let sub = subdir(fd, name).map_err(at(src))?;
        copy_children(src, &sub, owner)?;
        fchownat(Some(sub.as_raw_fd()), "", uid, gid, AtFlags::AT_EMPTY_PATH).map_err(at(src))?;
        fchmod(
            sub.as_raw_fd(),
            Mode::from_bits_truncate(meta.mode() & 0o7777),
        )
        .map_err(at(src))?;
        return Ok(());
    }
    // Files and links are made under a temporary name, then renamed over.
    let mut tmp = b".berth-cp-".to_vec();
    tmp.extend_from_slice(name.as_bytes());
    let tmp = OsStr::from_bytes(&tmp);
    let _ = nix::unistd::unlinkat(Some(fd), tmp, UnlinkatFlags::NoRemoveDir);
    if ft.is_symlink() {
        let target = std::fs::read_link(src).map_err(io_at(src))?;
        nix::unistd::symlinkat(target.as_path(), Some(fd), tmp).map_err(at(src))?;
        fchownat(Some(fd), tmp, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(at(src))?;
    } else if ft.is_file() {
        let out = openat(
            Some(fd),
            tmp,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map(own)
        .map_err(at(src))?;
        let mut out = std::fs::File::from(out);
        let mut input = std::fs::File::open(src).map_err(io_at(src))?;
        std::io::copy(&mut input, &mut out).map_err(io_at(src))?;
        fchownat(Some(out.as_raw_fd()), "", uid, gid, AtFlags::AT_EMPTY_PATH).map_err(at(src))?;
        out.set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(io_at(src))?;
        let _ = out.set_modified(
            meta.modified()
                .unwrap_or_else(|_| std::time::SystemTime::now()),
        );
    } else {
        tracing::warn!("{}: not a file, directory or link; skipped", src.display());
        return Ok(());
    }
    if existing == Some(SFlag::S_IFDIR) {
        remove_at(dir, name).map_err(at(src))?;
    }
    nix::fcntl::renameat(Some(fd), tmp, Some(fd), name).map_err(at(src))
}

/// Opens directory `path` inside the root, creating what is missing (owned
/// by `owner`'s ids), every step resolved inside the root.
fn mkdir_in(root: &OwnedFd, path: &str, owner: Owner) -> Result<OwnedFd> {
    let mut dir =
        open_in(root, "/", OFlag::O_RDONLY | OFlag::O_DIRECTORY, true).map_err(at("/"))?;
    let mut walked = String::new();
    for comp in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        walked.push('/');
        walked.push_str(comp);
        match open_in(root, &walked, OFlag::O_RDONLY | OFlag::O_DIRECTORY, true) {
            Ok(d) => dir = d,
            Err(nix::Error::ENOENT) => {
                mkdirat(Some(dir.as_raw_fd()), comp, Mode::from_bits_truncate(0o755))
                    .map_err(at(&walked))?;
                if let Owner::Set(u, g) = owner {
                    fchownat(
                        Some(dir.as_raw_fd()),
                        comp,
                        Some(Uid::from_raw(u)),
                        Some(Gid::from_raw(g)),
                        AtFlags::AT_SYMLINK_NOFOLLOW,
                    )
                    .map_err(at(&walked))?;
                }
                dir = open_in(root, &walked, OFlag::O_RDONLY | OFlag::O_DIRECTORY, true)
                    .map_err(at(&walked))?;
            }
            Err(e) => return Err(at(&walked)(e)),
        }
    }
    Ok(dir)
}

/// Puts host `src` exactly at `dest` in the container (replacing what is
/// there, making missing parent directories): watch mode's sync.
pub fn sync_to(root: &OwnedFd, src: &Path, dest: &str, owner: Owner) -> Result<()> {
    let (parent, name) = split(dest).ok_or_else(|| said(dest, "is not a file name"))?;
    let dir = mkdir_in(root, &parent, owner)?;
    put(src, &dir, OsStr::new(&name), owner)
}

/// Removes `name` in `dir`, a whole tree when it is a directory, never
/// following links.
fn remove_at(dir: &OwnedFd, name: &OsStr) -> nix::Result<()> {
    if kind_at(dir, name) == Some(SFlag::S_IFDIR) {
        let sub = subdir(dir.as_raw_fd(), name)?;
        for child in names(&sub)? {
            remove_at(&sub, &child)?;
        }
        return nix::unistd::unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::RemoveDir);
    }
    match nix::unistd::unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir) {
        Err(nix::Error::ENOENT) => Ok(()),
        other => other,
    }
}

/// The entries of a directory (without `.` and `..`), sorted.
fn names(dir: &OwnedFd) -> nix::Result<Vec<std::ffi::OsString>> {
    let fd = openat(
        Some(dir.as_raw_fd()),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut d = nix::dir::Dir::from_fd(fd)?;
    let mut out: Vec<std::ffi::OsString> = d
        .iter()
        .filter_map(|e| e.ok())
        .map(|e| OsStr::from_bytes(e.file_name().to_bytes()).to_os_string())
        .filter(|n| n != "." && n != "..")
        .collect();
    out.sort();
    Ok(out)
}

/// Removes `path` in the container (a whole tree for a directory); absent
/// is not an error.
pub fn remove(root: &OwnedFd, path: &str) -> Result<()> {
    let (parent, name) = split(path).ok_or_else(|| said(path, "is not a file name"))?;
    let dir = match open_in(root, &parent, OFlag::O_RDONLY | OFlag::O_DIRECTORY, true) {
        Ok(d) => d,
        Err(nix::Error::ENOENT) => return Ok(()),
        Err(e) => return Err(at(&parent)(e)),
    };
    remove_at(&dir, OsStr::new(&name)).map_err(at(path))
}

/// Copies `src` in the container to host `dest`, as `cp CONTAINER:SRC DEST`
/// does: into `dest` when it is a directory (only the contents when `src`
/// ends in `/.`), else as `dest`. A final symlink is copied as a link.
pub fn copy_out(root: &OwnedFd, src: &str, dest: &Path) -> Result<()> {
    let contents_only = src.ends_with("/.");
    let (parent, name) = if contents_only {
        (src.trim_end_matches("/.").to_string(), String::new())
    } else {
        split(src).unwrap_or_else(|| ("/".into(), String::new()))
    };
    let dir =
        open_in(root, &parent, OFlag::O_RDONLY | OFlag::O_DIRECTORY, true).map_err(at(&parent))?;
    if name.is_empty() {
        // The root, or a directory's contents.
        std::fs::create_dir_all(dest).map_err(io_at(dest))?;
        for child in names(&dir).map_err(at(src))? {
            get(&dir, &child, &dest.join(&child))?;
        }
        return Ok(());
    }
    let name = OsStr::new(&name);
    if kind_at(&dir, name).is_none() {
        return Err(said(src, "no such file or directory in the container"));
    }
    let target = if dest.is_dir() {
        dest.join(name)
    } else {
        dest.to_path_buf()
    };
    get(&dir, name, &target)
}

/// Copies `name` in `dir` to host path `dest`.
fn get(dir: &OwnedFd, name: &OsStr, dest: &Path) -> Result<()> {
    let fd = dir.as_raw_fd();
    let st = fstatat(Some(fd), name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(at(dest))?;
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    let mode = st.st_mode & 0o7777;
    if kind == SFlag::S_IFDIR {
        if !dest.is_dir() {
            std::fs::create_dir(dest).map_err(io_at(dest))?;
        }
        let sub = subdir(fd, name).map_err(at(dest))?;
        for child in names(&sub).map_err(at(dest))? {
            get(&sub, &child, &dest.join(&child))?;
        }
        return std::fs::set_permissions(dest, std::fs::Permissions::from_mode(mode))
            .map_err(io_at(dest));
    }
    if kind == SFlag::S_IFLNK {
        let target = nix::fcntl::readlinkat(Some(fd), name).map_err(at(dest))?;
        let _ = std::fs::remove_file(dest);
        return std::os::unix::fs::symlink(target, dest).map_err(io_at(dest));
    }
    if kind != SFlag::S_IFREG {
        tracing::warn!("{}: not a file, directory or link; skipped", dest.display());
        return Ok(());
    }
    let input = openat(
        Some(fd),
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(own)
    .map_err(at(dest))?;
    let mut input = std::fs::File::from(input);
    let mut out = std::fs::File::create(dest).map_err(io_at(dest))?;
    std::io::copy(&mut input, &mut out).map_err(io_at(dest))?;
    out.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io_at(dest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("berth-copy-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("scratch dir");
        d
    }

    fn root_of(dir: &Path) -> OwnedFd {
        nix::fcntl::open(dir, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())
            .map(own)
            .expect("open root")
    }

    #[test]
    fn a_symlink_in_the_root_never_leads_a_write_outside() {
        let base = scratch("escape");
        let root = base.join("root");
        let outside = base.join("outside");
        std::fs::create_dir_all(root.join("etc")).expect("mkdir");
        std::fs::create_dir_all(&outside).expect("mkdir");
        // An absolute link and a relative one, both aiming out of the root.
        std::os::unix::fs::symlink(&outside, root.join("abs")).expect("link");
        std::os::unix::fs::symlink("../../outside", root.join("etc/rel")).expect("link");
        std::os::unix::fs::symlink(outside.join("f"), root.join("etc/f")).expect("link");
        let src = base.join("f");
        std::fs::write(&src, "new").expect("write");
        let fd = root_of(&root);
        // Through links to directories: resolved inside the root, where
        // they lead nowhere or to the root's own directories.
        let _ = copy_in(&fd, &src, "/abs/", Owner::Keep);
        let _ = copy_in(&fd, &src, "/etc/rel/", Owner::Keep);
        // Onto a link to a file: the link is replaced, not followed.
        copy_in(&fd, &src, "/etc/f", Owner::Keep).expect("copy over a link");
        assert_eq!(std::fs::read_dir(&outside).expect("ls").count(), 0);
        assert_eq!(
            std::fs::read_to_string(root.join("etc/f")).expect("read"),
            "new"
        );
        assert!(!std::fs::symlink_metadata(root.join("etc/f"))
            .expect("stat")
            .is_symlink());
    }

    #[test]
    fn directories_copy_in_and_out_as_docker_cp_does() {
        let base = scratch("tree");
        let root = base.join("root");
        std::fs::create_dir_all(root.join("app")).expect("mkdir");
        let src = base.join("site");
        std::fs::create_dir_all(src.join("css")).expect("mkdir");
        std::fs::write(src.join("index.html"), "hi").expect("write");
        std::fs::write(src.join("css/a.css"), "body{}").expect("write");
        std::fs::set_permissions(
            src.join("index.html"),
            std::fs::Permissions::from_mode(0o640),
        )
        .expect("chmod");
        let fd = root_of(&root);
        // Into an existing directory: under the source's name.
        copy_in(&fd, &src, "/app", Owner::Keep).expect("copy dir");
        assert_eq!(
            std::fs::read_to_string(root.join("app/site/css/a.css")).expect("read"),
            "body{}"
        );
        let mode = std::fs::metadata(root.join("app/site/index.html"))
            .expect("stat")
            .mode();
        assert_eq!(mode & 0o777, 0o640);
        // `/.`: only the contents; to a new name: the directory renamed.
        copy_in(&fd, &src.join("."), "/app", Owner::Keep).expect("contents");
        assert!(root.join("app/index.html").is_file());
        copy_in(&fd, &src, "/www", Owner::Set(0, 0)).expect("new name");
        assert!(root.join("www/css/a.css").is_file());
        // A file to a missing directory is refused.
        assert!(copy_in(&fd, &src.join("index.html"), "/nope/", Owner::Keep).is_err());
        // Out again.
        let back = base.join("back");
        copy_out(&fd, "/www", &back).expect("copy out");
        assert_eq!(
            std::fs::read_to_string(back.join("index.html")).expect("read"),
            "hi"
        );
        assert!(copy_out(&fd, "/missing", &back).is_err());
        // Sync puts a file exactly at its path, making parents.
        sync_to(
            &fd,
            &src.join("index.html"),
            "/srv/deep/page.html",
            Owner::Keep,
        )
        .expect("sync");
        assert_eq!(
            std::fs::read_to_string(root.join("srv/deep/page.html")).expect("read"),
            "hi"
        );
        // Removal of a tree, and of what is not there.
        remove(&fd, "/www").expect("remove");
        assert!(!root.join("www").exists());
        remove(&fd, "/www").expect("remove again");
    }
}
