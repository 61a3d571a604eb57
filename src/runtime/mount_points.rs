//! The shared mount-point layer: a read-only overlay layer, made once per
//! store at `<root>/mount-points`, that holds the empty directories and
//! files a container's root is mounted on (/proc, /dev, /sys, /etc/hosts,
//! /etc/hostname, /etc/resolv.conf). Laid over an image that lacks them,
//! the container's start finds them there instead of creating each in the
//! container's own upper directory (a new inode apiece, /etc copied up,
//! all deleted again with the container), as Docker's per-container init
//! layer does, but shared.
//!
//! Owns that directory and the rule of which images it may cover: only one
//! whose own entries at those paths are absent or of the same kind (a
//! directory for a directory, a file for a file), so it never hides
//! anything a container could see. Mounts nothing itself.

use std::path::{Path, PathBuf};

/// The layer's directory name under the store root.
pub const DIR_NAME: &str = "mount-points";

/// What the layer holds: each path and whether it is a directory.
const ENTRIES: &[(&str, bool)] = &[
    ("proc", true),
    ("dev", true),
    ("sys", true),
    ("etc", true),
    ("etc/hosts", false),
    ("etc/hostname", false),
    ("etc/resolv.conf", false),
];

/// The layer for a container whose lower layers are `lowers` (lowest
/// first), made if it is not there yet; `None` when the image has one of
/// its paths as something else (a symlink, a file for a directory), or the
/// layer cannot be made (the container then makes its mount points in its
/// own upper directory, as without it).
pub fn for_lowers(root: &Path, lowers: &[PathBuf]) -> Option<PathBuf> {
    if !fits(lowers) {
        return None;
    }
    match ensure(root) {
        Ok(dir) => Some(dir),
        Err(e) => {
            tracing::warn!(
                "the mount-point layer at {}: {e}",
                root.join(DIR_NAME).display()
            );
            None
        }
    }
}

/// The layer `dir` a container was created with, made again when it went
/// missing or lost an entry since (removed by hand); `None` when it cannot
/// be, and the container makes its mount points in its own upper directory.
pub fn restored(dir: &Path) -> Option<PathBuf> {
    if complete(dir) {
        return Some(dir.to_path_buf());
    }
    let root = dir.parent()?;
    if dir.file_name() != Some(std::ffi::OsStr::new(DIR_NAME)) {
        return None;
    }
    // An incomplete one is made again whole, not patched in place.
    let _ = std::fs::remove_dir_all(dir);
    match ensure(root) {
        Ok(d) => Some(d),
        Err(e) => {
            tracing::warn!("the mount-point layer at {}: {e}", dir.display());
            None
        }
    }
}

/// Whether every path of the layer is, in the image made of `lowers`,
/// absent (or deleted by a whiteout) or of the layer's kind.
fn fits(lowers: &[PathBuf]) -> bool {
    use std::os::unix::fs::FileTypeExt;
    ENTRIES.iter().all(|(path, is_dir)| {
        // The topmost layer that says anything about the path decides.
        for layer in lowers.iter().rev() {
            match std::fs::symlink_metadata(layer.join(path)) {
                Ok(m) => {
                    let t = m.file_type();
                    // A whiteout (a 0:0 character device) deletes it.
                    if t.is_char_device() && std::os::unix::fs::MetadataExt::rdev(&m) == 0 {
                        return true;
                    }
                    return if *is_dir { t.is_dir() } else { t.is_file() };
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                // A layer that cannot be read here cannot be vouched for.
                Err(_) => return false,
            }
        }
        true
    })
}

/// Makes the layer once: built beside it and renamed into place, so a
/// reader sees it whole or not at all.
fn ensure(root: &Path) -> std::io::Result<PathBuf> {
    let dir = root.join(DIR_NAME);
    if complete(&dir) {
        return Ok(dir);
    }
    // One per call: `compose up` creates its containers from many threads
    // of one process.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = root.join(format!(".{DIR_NAME}.tmp-{}-{call}", std::process::id()));
    let built = (|| {
        for (path, is_dir) in ENTRIES {
            let p = tmp.join(path);
            if *is_dir {
                std::fs::create_dir_all(&p)?;
            } else {
                std::fs::write(&p, b"")?;
            }
        }
        std::fs::rename(&tmp, &dir)
    })();
    if let Err(e) = built {
        let _ = std::fs::remove_dir_all(&tmp);
        // Another process put it in place first.
        if !complete(&dir) {
            return Err(e);
        }
    }
    Ok(dir)
}

/// Whether `dir` holds every entry of the layer.
fn complete(dir: &Path) -> bool {
    ENTRIES.iter().all(|(path, is_dir)| {
        std::fs::symlink_metadata(dir.join(path)).is_ok_and(|m| m.is_dir() == *is_dir)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("berth-mp-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{e}"));
        d
    }

    #[test]
    fn the_layer_is_made_once_and_whole() {
        let root = tempdir("make");
        let dir = for_lowers(&root, &[]).unwrap_or_else(|| panic!("no layer"));
        assert!(dir.join("proc").is_dir() && dir.join("etc/resolv.conf").is_file());
        let again = for_lowers(&root, &[]).unwrap_or_else(|| panic!("no layer"));
        assert_eq!(dir, again);
        let names: Vec<_> = std::fs::read_dir(&root)
            .unwrap_or_else(|e| panic!("{e}"))
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(DIR_NAME)]);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn parallel_creates_share_one_layer_and_leave_nothing_else() {
        let root = tempdir("parallel");
        let made: Vec<Option<PathBuf>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8).map(|_| s.spawn(|| for_lowers(&root, &[]))).collect();
            handles
                .into_iter()
                .map(|h| h.join().ok().flatten())
                .collect()
        });
        assert!(
            made.iter()
                .all(|m| m.as_deref() == Some(root.join(DIR_NAME).as_path())),
            "{made:?}"
        );
        let names: Vec<_> = std::fs::read_dir(&root)
            .unwrap_or_else(|e| panic!("{e}"))
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(DIR_NAME)]);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_layer_removed_by_hand_is_made_again() {
        let root = tempdir("restore");
        let dir = for_lowers(&root, &[]).unwrap_or_else(|| panic!("no layer"));
        std::fs::remove_file(dir.join("etc/hostname")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(restored(&dir), Some(dir.clone()));
        assert!(dir.join("etc/hostname").is_file());
        std::fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(restored(&dir), Some(dir.clone()));
        assert!(complete(&dir));
        // Something else than the layer is never made or deleted.
        assert_eq!(restored(&root.join("elsewhere")), None);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn it_covers_only_images_whose_paths_are_absent_or_alike() {
        let root = tempdir("fits");
        let base = root.join("base");
        let top = root.join("top");
        for d in [&base, &top] {
            std::fs::create_dir_all(d.join("etc")).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(base.join("etc/hosts"), "x").unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir_all(base.join("proc")).unwrap_or_else(|e| panic!("{e}"));
        // Absent or alike: covered.
        assert!(fits(&[base.clone(), top.clone()]));
        // A symlinked /etc/resolv.conf in the top layer: not covered.
        std::os::unix::fs::symlink("../run/resolv.conf", top.join("etc/resolv.conf"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!fits(&[base.clone(), top.clone()]));
        // The lower layer alone still fits.
        assert!(fits(std::slice::from_ref(&base)));
        // /sys as a file: not covered.
        std::fs::write(base.join("sys"), "").unwrap_or_else(|e| panic!("{e}"));
        assert!(!fits(std::slice::from_ref(&base)));
        assert_eq!(for_lowers(&root, std::slice::from_ref(&base)), None);
        let _ = std::fs::remove_dir_all(&root);
    }
}
