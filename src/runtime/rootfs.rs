//! The container's root filesystem, set up inside its new mount namespace:
//! the overlay (read-only lower dirs + per-container upper and work dirs),
//! /proc, /sys (read-only), a fresh /dev with only the standard nodes, devpts,
//! shm and mqueue, the spec's bind and tmpfs mounts with targets resolved
//! inside the root (openat2 RESOLVE_IN_ROOT, never string joins), the
//! /etc/hosts, /etc/hostname and /etc/resolv.conf binds, pivot_root, then
//! masked and read-only paths.
//!
//! Runs only in the single-threaded container child, before exec.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use nix::unistd::{chdir, pivot_root};

/// A failed step of the rootfs set-up, with the path it concerned.
#[derive(Debug, thiserror::Error)]
#[error("{what} {path}: {errno}")]
pub struct RootfsError {
    pub what: &'static str,
    pub path: String,
    pub errno: nix::Error,
}

type Result<T> = std::result::Result<T, RootfsError>;

fn fail(what: &'static str, path: impl AsRef<Path>) -> impl FnOnce(nix::Error) -> RootfsError {
    let path = path.as_ref().display().to_string();
    move |errno| RootfsError { what, path, errno }
}

/// Mount data the kernel accepts (one page, minus room for the rest).
const MAX_OVERLAY_OPTIONS: usize = 4000;

/// The name of a layer's short link: `<layers>/l/<first 12 of its name>`.
pub fn short_link(layer_dir: &Path) -> Option<PathBuf> {
    let name = layer_dir.file_name()?.to_str()?;
    let parent = layer_dir.parent()?;
    Some(parent.join("l").join(&name[..name.len().min(12)]))
}

/// For deep images: when the full lowerdir list would not fit in the mount
/// data, the lower dirs as names relative to their shared `l/` directory of
/// short links (to mount from inside it, as Docker's overlay2 does).
pub fn short_lowers(
    lower: &[PathBuf],
    upper: &Path,
    work: &Path,
) -> Option<(PathBuf, Vec<PathBuf>)> {
    if overlay_options(lower, upper, work).len() <= MAX_OVERLAY_OPTIONS {
        return None;
    }
    // The image's layers by their short links; a layer that is not one of
    // them (the shared mount-point layer) by its absolute path, which the
    // kernel takes as it is beside the relative ones.
    let dir = lower
        .iter()
        .find_map(|l| short_link(l).filter(|s| s.exists()))?
        .parent()?
        .to_path_buf();
    let names = lower
        .iter()
        .map(|l| match short_link(l) {
            Some(s) if s.parent() == Some(dir.as_path()) && s.exists() => {
                s.file_name().map(PathBuf::from)
            }
            _ if l.is_absolute() && !l.starts_with(dir.parent()?) => Some(l.clone()),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    (overlay_options(&names, upper, work).len() <= MAX_OVERLAY_OPTIONS).then_some((dir, names))
}

/// Mount options of the overlay, lower dirs given lowest first.
pub fn overlay_options(lower: &[PathBuf], upper: &Path, work: &Path) -> String {
    let lowers: Vec<String> = lower
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect();
    format!(
        "lowerdir={},upperdir={},workdir={}",
        lowers.join(":"),
        upper.display(),
        work.display()
    )
}

/// Makes every mount private so nothing propagates back to the host.
pub fn make_private() -> Result<()> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(fail("making mounts private at", "/"))
}

/// Mounts the overlay root at `target`.
pub fn mount_overlay(lower: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> Result<()> {
    if let Some((dir, names)) = short_lowers(lower, upper, work) {
        // Relative lower dirs resolve against the working directory at mount time.
        let back = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        chdir(&dir).map_err(fail("entering", &dir))?;
        let opts = overlay_options(&names, upper, work);
        let res = mount(
            Some("overlay"),
            target,
            Some("overlay"),
            MsFlags::empty(),
            Some(opts.as_str()),
        )
        .map_err(fail("mounting the overlay at", target));
        let _ = chdir(&back);
        return res;
    }
    let opts = overlay_options(lower, upper, work);
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(opts.as_str()),
    )
    .map_err(fail("mounting the overlay at", target))
}

/// Opens `path` (absolute, as seen inside the container) below `root`,
/// never leaving it, creating missing directories (and, when `file` is set,
/// the last component as an empty file).
pub fn open_in_root(root: &OwnedFd, path: &str, file: bool) -> Result<OwnedFd> {
    let rel: PathBuf = Path::new(path)
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect();
    let how = || {
        OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
    };
    let comps: Vec<_> = rel.components().collect();
    let mut cur = PathBuf::new();
    for (i, c) in comps.iter().enumerate() {
        cur.push(c);
        let last = i + 1 == comps.len();
        if openat2(root.as_raw_fd(), &cur, how()).is_ok() {
            continue;
        }
        // Create it through its parent, itself resolved inside the root.
        let parent_path = cur.parent().map(Path::to_path_buf).unwrap_or_default();
        let parent = if parent_path.as_os_str().is_empty() {
            openat2(root.as_raw_fd(), ".", how())
        } else {
            openat2(root.as_raw_fd(), &parent_path, how())
        }
        .map(owned)
        .map_err(fail("resolving", &parent_path))?;
        let name = c.as_os_str();
        let proc_parent = format!("/proc/self/fd/{}", parent.as_raw_fd());
        let full = Path::new(&proc_parent).join(name);
        let res = if last && file {
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&full)
                .map(|_| ())
        } else {
            std::fs::create_dir(&full)
        };
        if let Err(e) = res {
            if e.kind() != std::io::ErrorKind::AlreadyExists {
                return Err(RootfsError {
                    what: "creating",
                    path: cur.display().to_string(),
                    errno: nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
                });
            }
        }
    }
    let target = if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    };
    openat2(root.as_raw_fd(), &target, how())
        .map(owned)
        .map_err(fail("resolving", path))
}

/// Takes ownership of a descriptor nix returned as a raw fd.
fn owned(fd: std::os::fd::RawFd) -> OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: `fd` was just returned by a successful open call and nothing
    // else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

fn mount_at(
    root: &OwnedFd,
    target: &str,
    source: Option<&str>,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
    file: bool,
) -> Result<()> {
    let fd = open_in_root(root, target, file)?;
    mount(source, fd_path(&fd).as_str(), fstype, flags, data).map_err(fail("mounting", target))
}

/// The standard mounts and device nodes under the new root.
pub fn mount_standard(root_path: &Path, root: &OwnedFd, console: bool) -> Result<()> {
    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
    mount_at(
        root,
        "/proc",
        Some("proc"),
        Some("proc"),
        nosuid,
        None,
        false,
    )?;
    mount_at(
        root,
        "/dev",
        Some("tmpfs"),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
        false,
    )?;
    let dev = root_path.join("dev");
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        let p = dev.join(name);
        mknod(
            &p,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(major, minor),
        )
        .map_err(fail("creating device", &p))?;
        // mknod honours the umask; set the mode explicitly.
        nix::sys::stat::fchmodat(
            None,
            &p,
            Mode::from_bits_truncate(0o666),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
        .map_err(fail("chmod", &p))?;
    }
    for (link, to) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("core", "/proc/kcore"),
    ] {
        let p = dev.join(link);
        std::os::unix::fs::symlink(to, &p).map_err(|e| RootfsError {
            what: "linking",
            path: p.display().to_string(),
            errno: nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })?;
    }
    mount_at(
        root,
        "/dev/pts",
        Some("devpts"),
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
        false,
    )?;
    mount_at(
        root,
        "/dev/shm",
        Some("shm"),
        Some("tmpfs"),
        nosuid,
        Some("mode=1777,size=65536k"),
        false,
    )?;
    mount_at(
        root,
        "/dev/mqueue",
        Some("mqueue"),
        Some("mqueue"),
        nosuid,
        None,
        false,
    )?;
    if console {
        open_in_root(root, "/dev/console", true)?;
    }
    mount_at(
        root,
        "/sys",
        Some("sysfs"),
        Some("sysfs"),
        nosuid | MsFlags::MS_RDONLY,
        None,
        false,
    )?;
    Ok(())
}

/// A bind mount of a host path at `target` inside the root.
pub fn bind(root: &OwnedFd, source: &Path, target: &str, read_only: bool) -> Result<()> {
    let is_file = source.metadata().map(|m| !m.is_dir()).unwrap_or(false);
    let fd = open_in_root(root, target, is_file)?;
    let path = fd_path(&fd);
    mount(
        Some(source),
        path.as_str(),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(fail("binding", target))?;
    if read_only {
        // Remount through a fresh handle: the old fd names the covered dir.
        let fd = open_in_root(root, target, is_file)?;
        mount(
            None::<&str>,
            fd_path(&fd).as_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(fail("making read-only", target))?;
    }
    Ok(())
}

/// A tmpfs at `target` inside the root.
pub fn tmpfs(root: &OwnedFd, target: &str, options: &[String], read_only: bool) -> Result<()> {
    let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    if read_only {
        flags |= MsFlags::MS_RDONLY;
    }
    let data: Vec<&str> = options
        .iter()
        .map(String::as_str)
        .filter(|o| !matches!(*o, "ro" | "rw" | "rbind" | "bind"))
        .collect();
    let data = data.join(",");
    mount_at(
        root,
        target,
        Some("tmpfs"),
        Some("tmpfs"),
        flags,
        (!data.is_empty()).then_some(data.as_str()),
        false,
    )
}

/// Fills an empty volume directory with what the container's root holds at
/// `target` (resolved inside the root): files, directories and symlinks with
/// their modes and owners, and the volume's own directory takes the owner and
/// mode of the image's (a server running as its own user writes there), as
/// Docker's copy-up does on first use.
pub fn copy_up(root: &OwnedFd, target: &str, data: &Path) -> Result<()> {
    let empty = std::fs::read_dir(data)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false);
    if !empty {
        return Ok(());
    }
    let Ok(src) = open_in_root_existing(root, target) else {
        return Ok(()); // nothing in the image there
    };
    let from = PathBuf::from(fd_path(&src));
    copy_tree(&from, data)
        .and_then(|()| copy_ownership(&from, data))
        .map_err(|e| RootfsError {
            what: "copying the image content into the volume at",
            path: target.to_string(),
            errno: nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })
}

/// The owner and mode of `from` onto `to`.
fn copy_ownership(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::metadata(from)?;
    std::os::unix::fs::chown(to, Some(meta.uid()), Some(meta.gid()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
}

fn open_in_root_existing(root: &OwnedFd, path: &str) -> nix::Result<OwnedFd> {
    let rel: PathBuf = Path::new(path)
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect();
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC | OFlag::O_DIRECTORY)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    openat2(root.as_raw_fd(), &rel, how).map(owned)
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&src)?;
        let ft = meta.file_type();
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if ft.is_dir() {
            std::fs::create_dir(&dst)?;
            copy_tree(&src, &dst)?;
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        } else if ft.is_file() {
            std::fs::copy(&src, &dst)?;
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        } else {
            continue; // devices, sockets and fifos are not copied up
        }
        std::os::unix::fs::lchown(&dst, Some(meta.uid()), Some(meta.gid()))?;
    }
    Ok(())
}

/// Swaps the root: the new root becomes `/`, the old one is detached.
pub fn pivot(new_root: &Path) -> Result<()> {
    chdir(new_root).map_err(fail("entering", new_root))?;
    pivot_root(".", ".").map_err(fail("pivot_root into", new_root))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(fail("detaching the old root", "/"))?;
    chdir("/").map_err(fail("entering", "/"))
}

/// Hides paths (after pivot_root): /dev/null over files, an empty read-only
/// tmpfs over directories. Missing paths are skipped.
pub fn mask(paths: &[String]) -> Result<()> {
    for p in paths {
        let Ok(meta) = std::fs::metadata(p) else {
            continue;
        };
        if meta.is_dir() {
            mount(
                Some("tmpfs"),
                p.as_str(),
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None::<&str>,
            )
            .map_err(fail("masking", p))?;
        } else {
            mount(
                Some("/dev/null"),
                p.as_str(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(fail("masking", p))?;
        }
    }
    Ok(())
}

/// Makes paths read-only (after pivot_root). Missing paths are skipped.
pub fn read_only(paths: &[String]) -> Result<()> {
    for p in paths {
        if std::fs::symlink_metadata(p).is_err() {
            continue;
        }
        mount(
            Some(p.as_str()),
            p.as_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(fail("binding", p))?;
        mount(
            None::<&str>,
            p.as_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(fail("making read-only", p))?;
    }
    Ok(())
}

/// Remounts `/` read-only (`--read-only`).
pub fn read_only_root() -> Result<()> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .map_err(fail("making read-only", "/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_lists_upper_layers_first() {
        let o = overlay_options(
            &[PathBuf::from("/l/base"), PathBuf::from("/l/top")],
            Path::new("/c/upper"),
            Path::new("/c/work"),
        );
        assert_eq!(
            o,
            "lowerdir=/l/top:/l/base,upperdir=/c/upper,workdir=/c/work"
        );
    }

    #[test]
    fn deep_images_use_short_relative_lowers() {
        let base = std::env::temp_dir().join(format!("berth-deep-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let layers: Vec<PathBuf> = (0..100)
            .map(|i| base.join(format!("{:064x}", i + 0x00ab_c000_0000_u64)))
            .collect();
        let (upper, work) = (base.join("u"), base.join("w"));
        assert!(overlay_options(&layers, &upper, &work).len() > MAX_OVERLAY_OPTIONS);
        assert!(
            short_lowers(&layers, &upper, &work).is_none(),
            "no links yet: nothing to shorten with"
        );
        let _ = std::fs::create_dir_all(base.join("l"));
        for l in &layers {
            let _ = std::fs::create_dir_all(l);
            if let Some(link) = short_link(l) {
                let name = l.file_name().map(PathBuf::from).unwrap_or_default();
                let _ = std::os::unix::fs::symlink(Path::new("..").join(name), link);
            }
        }
        let (dir, names) = short_lowers(&layers, &upper, &work).unwrap_or_default();
        assert_eq!(dir, base.join("l"));
        assert_eq!(names.len(), 100);
        assert!(overlay_options(&names, &upper, &work).len() < MAX_OVERLAY_OPTIONS);
        assert!(
            short_lowers(&layers[..3], &upper, &work).is_none(),
            "short stacks keep full paths"
        );
        // The mount-point layer on top, outside the layers: by its path.
        let mut with_top = layers.clone();
        let top = std::env::temp_dir().join("berth-root").join("mount-points");
        with_top.push(top.clone());
        let (_, names) = short_lowers(&with_top, &upper, &work).unwrap_or_default();
        assert_eq!(names.len(), 101);
        assert_eq!(names.last(), Some(&top));
        // A layer among the layers without its short link: not shortened.
        let mut unlinked = layers.clone();
        unlinked.push(base.join(format!("ff{:062x}", 7)));
        assert!(short_lowers(&unlinked, &upper, &work).is_none());
    }

    #[test]
    fn open_in_root_never_leaves_the_root() {
        let base = std::env::temp_dir().join(format!("berth-rootfs-{}", std::process::id()));
        let root = base.join("root");
        let outside = base.join("outside");
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(root.join("etc")).unwrap_or_default();
        std::fs::create_dir_all(&outside).unwrap_or_default();
        // A symlink pointing out of the root: resolved inside it instead.
        let _ = std::os::unix::fs::symlink(&outside, root.join("escape"));
        let _ = std::os::unix::fs::symlink("../../outside", root.join("etc/rel"));
        let fd = nix::fcntl::open(&root, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())
            .map(owned)
            .unwrap_or_else(|e| panic!("{e}"));
        // Through symlinks that point out: created inside the root or refused.
        let _ = open_in_root(&fd, "/escape/made", false);
        let _ = open_in_root(&fd, "/etc/rel/file", true);
        open_in_root(&fd, "/../../x/y", false).unwrap_or_else(|e| panic!("{e}"));
        open_in_root(&fd, "/etc/hosts", true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            std::fs::read_dir(&outside).map(|d| d.count()).unwrap_or(1),
            0,
            "nothing outside"
        );
        assert!(root.join("x/y").is_dir());
        assert!(root.join("etc/hosts").is_file());
    }
}
