//! Where the directories of containers go on an ext4 filesystem without a
//! journal. Such a filesystem does not hand out an inode again within a
//! minute of its deletion (six while the inode's block is not yet written
//! back), and finding a free inode scans past every one of those in the
//! block group. A file is placed in its directory's group, so with every
//! container under one parent each new file of a container costs time in
//! proportion to the files of the containers removed in the last minutes:
//! on such a host a third of a `compose up`'s CPU went there. Marking the
//! parent a "top directory" (`chattr +T`) has ext4 place each new
//! container directory, and the files in it, in a group of its own choosing
//! across the filesystem, where few inodes were deleted lately.
//!
//! Only the parent of the record directories (`<root>/containers`, about a
//! dozen files and directories per container, and the overlay's work
//! files) is marked: placing a directory by group costs ext4 a few hundred
//! microseconds, more than the scan saves for the handful of files of a
//! container's run directory, which on most hosts is a tmpfs anyway.
//!
//! A journaled ext4 reuses inodes at once and any other filesystem places
//! files its own way: both are left as they are.
//!
//! Owns that placement hint and making the directory it marks; never
//! creates, moves or removes anything inside it.

use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// `FS_TOPDIR_FL` of `linux/fs.h`: lay out the directories beneath this one
/// as if each were at the top of the filesystem.
const FS_TOPDIR_FL: libc::c_int = 0x0002_0000;

/// What `spread_children` found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// The directory was marked now.
    Marked,
    /// It was marked already.
    AlreadyMarked,
    /// Not on ext4, or on an ext4 with a journal: left as it is.
    NotNeeded,
}

/// Marks `dir` so ext4 spreads the directories made in it over the
/// filesystem, when `dir` is on an ext4 filesystem without a journal.
pub fn spread_children(dir: &Path) -> std::io::Result<Placement> {
    let file = std::fs::File::open(dir)?;
    let mut flags: libc::c_int = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one int through the pointer, which
    // points at `flags`, alive for the call; the descriptor is open.
    if unsafe { libc::ioctl(file.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) } != 0 {
        let e = std::io::Error::last_os_error();
        // Filesystems without inode flags (tmpfs, overlay) say so.
        return match e.raw_os_error() {
            Some(libc::ENOTTY) | Some(libc::EOPNOTSUPP) | Some(libc::EINVAL) => {
                Ok(Placement::NotNeeded)
            }
            _ => Err(e),
        };
    }
    if flags & FS_TOPDIR_FL != 0 {
        return Ok(Placement::AlreadyMarked);
    }
    if !journalless_ext4(&file)? {
        return Ok(Placement::NotNeeded);
    }
    flags |= FS_TOPDIR_FL;
    // SAFETY: FS_IOC_SETFLAGS reads one int through the pointer, which
    // points at `flags`, alive for the call; the descriptor is open.
    if unsafe { libc::ioctl(file.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(Placement::Marked)
}

/// Makes `dir` (and its parents) and marks it as `spread_children` does,
/// once per process: the mark stays on disk and whether the filesystem has
/// a journal does not change while berth runs, so the containers of one
/// `up` pay for the look once. A failed mark is logged, not returned: the
/// hint changes where files go, never whether they can be made.
pub fn make_spread_parent(dir: &Path) -> std::io::Result<()> {
    static DONE: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    let mut done = DONE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if done.iter().any(|d| d == dir) {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    spread_children_or_log(dir);
    done.push(dir.to_path_buf());
    Ok(())
}

fn spread_children_or_log(dir: &Path) {
    match spread_children(dir) {
        Ok(Placement::Marked) => tracing::debug!(
            "{}: ext4 without a journal; its container directories are spread over the filesystem",
            dir.display()
        ),
        Ok(_) => {}
        Err(e) => tracing::debug!(
            "{}: not marked to spread its directories: {e}",
            dir.display()
        ),
    }
}

/// Whether the open directory is on an ext4 filesystem that has no journal
/// (the kernel's `/sys/fs/ext4/DEVICE/journal_task` says `<none>`).
fn journalless_ext4(dir: &std::fs::File) -> std::io::Result<bool> {
    let fs = nix::sys::statfs::fstatfs(dir).map_err(std::io::Error::from)?;
    if fs.filesystem_type() != nix::sys::statfs::EXT4_SUPER_MAGIC {
        return Ok(false);
    }
    let dev = dir.metadata()?.dev();
    let link = format!(
        "/sys/dev/block/{}:{}",
        nix::sys::stat::major(dev),
        nix::sys::stat::minor(dev)
    );
    let device = std::fs::read_link(&link)?;
    let Some(name) = device.file_name() else {
        return Ok(false);
    };
    let task = Path::new("/sys/fs/ext4").join(name).join("journal_task");
    match std::fs::read_to_string(&task) {
        Ok(text) => Ok(no_journal(&text)),
        // Kernels before the attribute: assume the common, journaled case.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// What `journal_task` reads when the filesystem has no journal.
fn no_journal(journal_task: &str) -> bool {
    journal_task.trim() == "<none>"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_task_without_a_journal() {
        assert!(no_journal("<none>\n"));
        assert!(!no_journal("1234\n"));
        assert!(!no_journal(""));
    }

    #[test]
    fn a_directory_elsewhere_is_left_alone() {
        // /proc has no inode flags at all; /dev is a devtmpfs.
        for dir in ["/proc/self", "/dev"] {
            let placed = spread_children(Path::new(dir)).unwrap_or_else(|e| panic!("{dir}: {e}"));
            assert_eq!(placed, Placement::NotNeeded, "{dir}");
        }
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        assert!(spread_children(Path::new("/nonexistent/berth-spread")).is_err());
    }
}
