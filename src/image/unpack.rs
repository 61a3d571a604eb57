//! Safe layer extraction: a layer tar (gzip or plain) unpacked into its own
//! directory with whiteouts as overlayfs expects them (`.wh.NAME` → a 0/0
//! character device, `.wh..wh..opq` → the opaque-dir xattr), hard links,
//! symlinks, devices, xattrs, ownership, modes and mtimes. Every entry is
//! resolved beneath the layer root: `..` names, symlinks (absolute or
//! relative) that lead out, symlinked parents and hard links to outside are
//! refused with an error naming the entry, and nothing outside is created,
//! changed or removed.
//!
//! Owns layer contents on disk; knows nothing of manifests or registries.

use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{
    fchmodat, makedev, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

use crate::runtime::beneath::{open_beneath, open_dir, set_xattr};

/// Why a layer could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("layer entry {entry:?}: {reason}")]
    Entry { entry: String, reason: String },
    #[error("reading the layer: {0}")]
    Read(#[from] std::io::Error),
    #[error("layer root {path}: {errno}")]
    Root { path: PathBuf, errno: nix::Error },
}

/// What an unpack did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UnpackStats {
    pub entries: usize,
    pub bytes: u64,
    pub whiteouts: usize,
}

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

fn entry_err(entry: &Path, reason: impl std::fmt::Display) -> UnpackError {
    UnpackError::Entry {
        entry: entry.display().to_string(),
        reason: reason.to_string(),
    }
}

/// The entry's path relative to the layer root: leading `/` and `./` dropped,
/// `..` refused.
pub fn clean_entry_path(raw: &Path) -> Result<PathBuf, UnpackError> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                return Err(entry_err(raw, "\"..\" in an entry name is refused"))
            }
            Component::Prefix(_) => return Err(entry_err(raw, "unsupported path prefix")),
        }
    }
    Ok(out)
}

/// Opens (creating as needed) the directory `rel` beneath `root`.
fn ensure_dir(root: &OwnedFd, rel: &Path, entry: &Path) -> Result<OwnedFd, UnpackError> {
    let mut cur = PathBuf::new();
    for c in rel.components() {
        let parent = open_beneath(
            root,
            &cur,
            OFlag::O_PATH | OFlag::O_DIRECTORY,
            Mode::empty(),
        )
        .map_err(|e| escape_err(entry, e))?;
        cur.push(c);
        match mkdirat(
            Some(parent.as_raw_fd()),
            c.as_os_str(),
            Mode::from_bits_truncate(0o755),
        ) {
            Ok(()) | Err(nix::Error::EEXIST) => {}
            Err(e) => return Err(entry_err(entry, format!("creating {}: {e}", cur.display()))),
        }
    }
    open_beneath(
        root,
        &cur,
        OFlag::O_PATH | OFlag::O_DIRECTORY,
        Mode::empty(),
    )
    .map_err(|e| escape_err(entry, e))
}

fn escape_err(entry: &Path, e: nix::Error) -> UnpackError {
    match e {
        nix::Error::EXDEV | nix::Error::ELOOP => {
            entry_err(entry, "its path leaves the layer root through a symlink")
        }
        nix::Error::ENOTDIR => entry_err(entry, "a parent of it is not a directory"),
        other => entry_err(entry, other),
    }
}

/// Removes whatever is at `name` in `dir` (a directory only when `dirs`).
fn remove_existing(dir: &OwnedFd, name: &str, dirs: bool) {
    if unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir).is_err() && dirs {
        let _ = remove_tree(dir, name);
    }
}

fn remove_tree(dir: &OwnedFd, name: &str) -> nix::Result<()> {
    let sub = open_beneath(
        dir,
        Path::new(name),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )?;
    let mut d = nix::dir::Dir::from_fd(std::os::fd::IntoRawFd::into_raw_fd(sub))?;
    let names: Vec<String> = d
        .iter()
        .flatten()
        .filter_map(|e| e.file_name().to_str().ok().map(str::to_string))
        .filter(|n| n != "." && n != "..")
        .collect();
    let sub_fd = open_beneath(
        dir,
        Path::new(name),
        OFlag::O_PATH | OFlag::O_DIRECTORY,
        Mode::empty(),
    )?;
    for n in names {
        if unlinkat(
            Some(sub_fd.as_raw_fd()),
            n.as_str(),
            UnlinkatFlags::NoRemoveDir,
        )
        .is_err()
        {
            remove_tree(&sub_fd, &n)?;
        }
    }
    unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::RemoveDir)
}

fn is_dir_at(dir: &OwnedFd, name: &str) -> bool {
    open_beneath(
        dir,
        Path::new(name),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
    .is_ok()
}

/// Opens a possibly compressed layer stream: gzip and zstd are detected by
/// their magic bytes.
pub fn decompress<'a, R: Read + 'a>(reader: R) -> std::io::Result<Box<dyn Read + 'a>> {
    let mut buf = BufReader::new(reader);
    let head = buf.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::read::GzDecoder::new(buf)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Ok(Box::new(zstd::stream::read::Decoder::with_buffer(buf)?))
    } else {
        Ok(Box::new(buf))
    }
}

/// Unpacks a layer (tar, optionally gzip-compressed) into `root`.
pub fn unpack(reader: impl Read, root: &Path) -> Result<UnpackStats, UnpackError> {
    std::fs::create_dir_all(root)?;
    let root_fd = open_dir(root).map_err(|errno| UnpackError::Root {
        path: root.to_path_buf(),
        errno,
    })?;
    let is_root = nix::unistd::geteuid().is_root();
    let mut archive = tar::Archive::new(decompress(reader)?);
    let mut stats = UnpackStats::default();
    let mut dir_times: Vec<(PathBuf, i64)> = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = entry.path()?.to_path_buf();
        let rel = clean_entry_path(&raw)?;
        let kind = entry.header().entry_type();
        if rel.as_os_str().is_empty()
            || matches!(
                kind,
                tar::EntryType::XHeader | tar::EntryType::XGlobalHeader
            )
        {
            continue;
        }
        stats.entries += 1;
        let name = rel
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| entry_err(&raw, "the name is not UTF-8"))?
            .to_string();
        let parent_rel = rel.parent().map(Path::to_path_buf).unwrap_or_default();
        let parent = ensure_dir(&root_fd, &parent_rel, &raw)?;
        let pfd = Some(parent.as_raw_fd());

        if name == OPAQUE {
            set_xattr(&parent, ".", "trusted.overlay.opaque", b"y")
                .map_err(|e| entry_err(&raw, format!("marking the directory opaque: {e}")))?;
            stats.whiteouts += 1;
            continue;
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            if hidden.is_empty() || hidden.contains('/') {
                return Err(entry_err(&raw, "an invalid whiteout"));
            }
            remove_existing(&parent, hidden, true);
            mknodat(pfd, hidden, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
                .map_err(|e| entry_err(&raw, format!("creating the whiteout: {e}")))?;
            stats.whiteouts += 1;
            continue;
        }

        let header = entry.header().clone();
        let mode = Mode::from_bits_truncate(header.mode().unwrap_or(0o644) & 0o7777);
        match kind {
            tar::EntryType::Directory => {
                if !is_dir_at(&parent, &name) {
                    remove_existing(&parent, &name, false);
                    mkdirat(pfd, name.as_str(), mode).map_err(|e| entry_err(&raw, e))?;
                }
                dir_times.push((rel.clone(), header.mtime().unwrap_or(0) as i64));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                remove_existing(&parent, &name, true);
                let fd = open_beneath(
                    &parent,
                    Path::new(&name),
                    OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(|e| escape_err(&raw, e))?;
                let mut file = std::fs::File::from(fd);
                stats.bytes +=
                    std::io::copy(&mut entry, &mut file).map_err(|e| entry_err(&raw, e))?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()?
                    .ok_or_else(|| entry_err(&raw, "a symlink without a target"))?
                    .to_path_buf();
                remove_existing(&parent, &name, true);
                symlinkat(&target, pfd, name.as_str()).map_err(|e| entry_err(&raw, e))?;
            }
            tar::EntryType::Link => {
                let target_raw = entry
                    .link_name()?
                    .ok_or_else(|| entry_err(&raw, "a hard link without a target"))?
                    .to_path_buf();
                let target = clean_entry_path(&target_raw)
                    .map_err(|_| entry_err(&raw, "a hard link to outside the layer is refused"))?;
                let tname = target
                    .file_name()
                    .and_then(|n| n.to_str())
                    .ok_or_else(|| entry_err(&raw, "a hard link to the root"))?
                    .to_string();
                let tparent_rel = target.parent().map(Path::to_path_buf).unwrap_or_default();
                let tparent = open_beneath(
                    &root_fd,
                    &tparent_rel,
                    OFlag::O_PATH | OFlag::O_DIRECTORY,
                    Mode::empty(),
                )
                .map_err(|_| entry_err(&raw, "a hard link to outside the layer is refused"))?;
                remove_existing(&parent, &name, true);
                linkat(
                    Some(tparent.as_raw_fd()),
                    tname.as_str(),
                    pfd,
                    name.as_str(),
                    AtFlags::empty(),
                )
                .map_err(|e| entry_err(&raw, format!("linking to {}: {e}", target.display())))?;
                continue; // a hard link shares its target's metadata
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let kind_flag = match kind {
                    tar::EntryType::Char => SFlag::S_IFCHR,
                    tar::EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                let dev = makedev(
                    header.device_major().ok().flatten().unwrap_or(0) as u64,
                    header.device_minor().ok().flatten().unwrap_or(0) as u64,
                );
                remove_existing(&parent, &name, true);
                mknodat(pfd, name.as_str(), kind_flag, mode, dev)
                    .map_err(|e| entry_err(&raw, e))?;
            }
            _ => continue,
        }
        if is_root {
            let uid = header.uid().unwrap_or(0) as u32;
            let gid = header.gid().unwrap_or(0) as u32;
            fchownat(
                pfd,
                name.as_str(),
                Some(Uid::from_raw(uid)),
                Some(Gid::from_raw(gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| entry_err(&raw, format!("chown: {e}")))?;
        }
        if kind != tar::EntryType::Symlink {
            // The name was just created here and is no symlink: following it stays put.
            fchmodat(pfd, name.as_str(), mode, FchmodatFlags::FollowSymlink)
                .map_err(|e| entry_err(&raw, format!("chmod: {e}")))?;
            if let Ok(Some(exts)) = entry.pax_extensions() {
                for ext in exts.flatten() {
                    if let Some(key) = ext.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr."))
                    {
                        let _ = set_xattr(&parent, &name, key, ext.value_bytes());
                    }
                }
            }
        }
        let mtime = TimeSpec::new(header.mtime().unwrap_or(0) as i64, 0);
        let _ = utimensat(
            pfd,
            name.as_str(),
            &mtime,
            &mtime,
            UtimensatFlags::NoFollowSymlink,
        );
    }
    // Directory times last: writing inside a directory changes its mtime.
    for (rel, secs) in dir_times.into_iter().rev() {
        let t = TimeSpec::new(secs, 0);
        if let Ok(fd) = open_beneath(
            &root_fd,
            &rel,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
            Mode::empty(),
        ) {
            let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
            let _ = utimensat(None, path.as_str(), &t, &t, UtimensatFlags::FollowSymlink);
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("berth-unpack-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let _ = std::fs::create_dir_all(&d);
        d
    }

    /// A tar built entry by entry: (path, kind, content or link target).
    fn layer(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(if *kind == tar::EntryType::Directory {
                0o755
            } else {
                0o644
            });
            h.set_mtime(1_000_000);
            h.set_uid(0);
            h.set_gid(0);
            // Raw names: the builder would refuse the malicious ones.
            let name_bytes = path.as_bytes();
            let gnu = h.as_gnu_mut().map(|g| &mut g.name);
            if let Some(field) = gnu {
                field[..name_bytes.len()].copy_from_slice(name_bytes);
            }
            match kind {
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    h.set_size(0);
                    let _ = h.set_link_name(data);
                    h.set_cksum();
                    b.append(&h, std::io::empty()).unwrap_or_default();
                }
                _ => {
                    h.set_size(data.len() as u64);
                    h.set_cksum();
                    b.append(&h, data.as_bytes()).unwrap_or_default();
                }
            }
        }
        b.into_inner().unwrap_or_default()
    }

    use tar::EntryType as T;

    #[test]
    fn files_dirs_links_and_gzip() {
        let root = temp("basic").join("layer");
        let tar = layer(&[
            ("etc/", T::Directory, ""),
            ("etc/hostname", T::Regular, "box\n"),
            ("bin/sh", T::Regular, "#!"),
            ("bin/ash", T::Link, "bin/sh"),
            ("usr/bin/env", T::Symlink, "/bin/sh"),
        ]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap_or_default();
        let gz = gz.finish().unwrap_or_default();
        let stats = unpack(&gz[..], &root).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stats.entries, 5);
        assert_eq!(
            std::fs::read_to_string(root.join("etc/hostname")).unwrap_or_default(),
            "box\n"
        );
        let (a, b) = (
            root.join("bin/sh").metadata(),
            root.join("bin/ash").metadata(),
        );
        assert_eq!(
            a.map(|m| m.ino()).ok(),
            b.map(|m| m.ino()).ok(),
            "hard link shares the inode"
        );
        assert_eq!(
            std::fs::read_link(root.join("usr/bin/env")).ok(),
            Some(PathBuf::from("/bin/sh"))
        );
        assert_eq!(
            root.join("etc/hostname")
                .metadata()
                .map(|m| m.mtime())
                .unwrap_or(0),
            1_000_000
        );
    }

    #[test]
    fn zstd_layers_unpack() {
        let root = temp("zstd").join("layer");
        let tar = layer(&[("etc/zstd", T::Regular, "compressed\n")]);
        let z = zstd::stream::encode_all(&tar[..], 3).unwrap_or_default();
        unpack(&z[..], &root).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            std::fs::read_to_string(root.join("etc/zstd")).unwrap_or_default(),
            "compressed\n"
        );
    }

    #[test]
    fn whiteouts_and_opaque_dirs() {
        let root = temp("whiteout").join("layer");
        let tar = layer(&[
            ("etc/.wh.passwd", T::Regular, ""),
            ("var/cache/.wh..wh..opq", T::Regular, ""),
            ("var/cache/new", T::Regular, "n"),
        ]);
        let stats = unpack(&tar[..], &root).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stats.whiteouts, 2);
        let m = root
            .join("etc/passwd")
            .symlink_metadata()
            .unwrap_or_else(|e| panic!("{e}"));
        use std::os::unix::fs::FileTypeExt;
        assert!(m.file_type().is_char_device());
        assert_eq!(m.rdev(), 0);
        assert_eq!(
            crate::runtime::beneath::get_xattr(&root.join("var/cache"), "trusted.overlay.opaque"),
            Some(b"y".to_vec())
        );
    }

    /// Each malicious layer is refused, names its entry, and leaves `outside` as it was.
    #[test]
    fn malicious_layers_are_refused_without_touching_outside() {
        let base = temp("evil");
        let outside = base.join("outside");
        std::fs::create_dir_all(&outside).unwrap_or_default();
        std::fs::write(outside.join("victim"), "safe").unwrap_or_default();
        let out = outside.display().to_string();
        let rel_out = "../../outside";
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("dotdot", layer(&[("../outside/evil", T::Regular, "x")])),
            (
                "abs-symlink-parent",
                layer(&[("link", T::Symlink, &out), ("link/evil", T::Regular, "x")]),
            ),
            (
                "rel-symlink-parent",
                layer(&[
                    ("d/", T::Directory, ""),
                    ("d/up", T::Symlink, rel_out),
                    ("d/up/evil", T::Regular, "x"),
                ]),
            ),
            (
                "hardlink-out",
                layer(&[("h", T::Link, "../outside/victim")]),
            ),
            (
                "hardlink-through-symlink",
                layer(&[("link", T::Symlink, &out), ("h", T::Link, "link/victim")]),
            ),
            (
                "whiteout-through-symlink",
                layer(&[
                    ("link", T::Symlink, &out),
                    ("link/.wh.victim", T::Regular, ""),
                ]),
            ),
        ];
        for (name, tar) in cases {
            let root = base.join(name);
            let err = unpack(&tar[..], &root).expect_err(name);
            assert!(err.to_string().starts_with("layer entry"), "{name}: {err}");
            let listing: Vec<String> = std::fs::read_dir(&outside)
                .map(|r| {
                    r.flatten()
                        .map(|e| e.file_name().to_string_lossy().to_string())
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(listing, vec!["victim"], "{name} touched outside");
            assert_eq!(
                std::fs::read_to_string(outside.join("victim")).unwrap_or_default(),
                "safe",
                "{name}"
            );
        }
    }

    #[test]
    fn later_entries_replace_earlier_ones() {
        let root = temp("replace").join("layer");
        let tar = layer(&[
            ("a", T::Regular, "file"),
            ("a/", T::Directory, ""),
            ("a/b", T::Regular, "inner"),
            ("c", T::Symlink, "a"),
            ("c", T::Regular, "now a file"),
        ]);
        unpack(&tar[..], &root).unwrap_or_else(|e| panic!("{e}"));
        assert!(root.join("a").is_dir());
        assert_eq!(
            std::fs::read_to_string(root.join("c")).unwrap_or_default(),
            "now a file"
        );
    }

    #[test]
    fn entry_paths_are_cleaned() {
        assert_eq!(
            clean_entry_path(Path::new("/etc/x")).ok(),
            Some(PathBuf::from("etc/x"))
        );
        assert_eq!(
            clean_entry_path(Path::new("./a/./b")).ok(),
            Some(PathBuf::from("a/b"))
        );
        assert!(clean_entry_path(Path::new("a/../../b")).is_err());
    }
}
