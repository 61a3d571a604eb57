//! On-disk state helpers: atomic file writes (temp file in the same
//! directory, flushed as the caller's `Flush` says, rename), so a crash never
//! leaves a half-written file,
//! and exclusive lock files for read-modify-write of shared records.
//!
//! Owns how files are written and locked; must not decide what goes in them.

use std::io::Write;
use std::path::Path;

/// Takes an exclusive lock on `path` (made, with its directory, when
/// missing), waiting for its holder; released when the guard drops.
pub fn lock_exclusive(path: &Path) -> std::io::Result<nix::fcntl::Flock<std::fs::File>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    lock_open(file)
}

/// Takes an exclusive lock on the directory `dir` itself (made when
/// missing), waiting for its holder: no lock file to make and remove.
/// Released when the guard drops.
pub fn lock_directory(dir: &Path) -> std::io::Result<nix::fcntl::Flock<std::fs::File>> {
    std::fs::create_dir_all(dir)?;
    lock_open(std::fs::File::open(dir)?)
}

/// An exclusive flock on an open file, waiting for its holder.
fn lock_open(file: std::fs::File) -> std::io::Result<nix::fcntl::Flock<std::fs::File>> {
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| std::io::Error::from(e))
}

/// How far an atomic write is flushed to disk before it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// The file and its directory entry: the new file survives a crash.
    Durable,
    /// The file's data but not its directory entry: it survives a crash
    /// once the directory is flushed, as the next `Durable` write in the
    /// same directory does (flushing a directory makes every entry in it
    /// durable). For the files of a record written before its last one.
    DataOnly,
    /// Nothing: atomic for readers only.
    Volatile,
}

/// Writes `bytes` to `path` atomically and durably: readers see the old file
/// or the new one, never a mix, and the new one survives a crash.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, bytes, Flush::Durable)
}

/// Atomic but not flushed to disk: for runtime state under the run directory
/// (a tmpfs that does not survive a reboot anyway) and generated files.
pub fn write_atomic_volatile(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, bytes, Flush::Volatile)
}

/// Writes `bytes` to `path` atomically (a temporary file in the same
/// directory, renamed over it), flushed as `flush` says.
pub fn write_atomic_with(path: &Path, bytes: &[u8], flush: Flush) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "file".to_string());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        if flush != Flush::Volatile {
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        if flush == Flush::Durable {
            match std::fs::File::open(dir)?.sync_all() {
                // A file system that cannot flush a directory (EINVAL) has
                // nothing more to make durable.
                Err(e) if e.raw_os_error() != Some(libc::EINVAL) => return Err(e),
                _ => {}
            }
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_file_and_leaves_no_temp() {
        let dir = std::env::temp_dir().join(format!("berth-atomic-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let p = dir.join("out.yaml");
        for flush in [Flush::Durable, Flush::DataOnly, Flush::Volatile] {
            write_atomic_with(&p, b"first", flush).unwrap_or_else(|e| panic!("{e}"));
            write_atomic_with(&p, b"second", flush).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(std::fs::read_to_string(&p).unwrap_or_default(), "second");
            let leftovers = std::fs::read_dir(&dir)
                .map(|r| r.filter_map(|e| e.ok()).count())
                .unwrap_or(0);
            assert_eq!(leftovers, 1, "{flush:?}");
            assert!(write_atomic_with(&dir.join("missing/x"), b"x", flush).is_err());
        }
    }

    #[test]
    fn a_directory_lock_excludes_another_holder_and_makes_no_file() {
        let dir = std::env::temp_dir().join(format!("berth-dirlock-{}/run", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let held = lock_directory(&dir).unwrap_or_else(|e| panic!("{e}"));
        // A second open file description of the same directory cannot
        // take the lock while the first holds it.
        let other = std::fs::File::open(&dir).unwrap_or_else(|e| panic!("{e}"));
        let other =
            match nix::fcntl::Flock::lock(other, nix::fcntl::FlockArg::LockExclusiveNonblock) {
                Ok(_) => panic!("the directory lock was taken twice"),
                Err((f, e)) => {
                    assert_eq!(e, nix::errno::Errno::EWOULDBLOCK);
                    f
                }
            };
        drop(held);
        assert!(
            nix::fcntl::Flock::lock(other, nix::fcntl::FlockArg::LockExclusiveNonblock).is_ok(),
            "released when the guard drops"
        );
        let entries = std::fs::read_dir(&dir)
            .map(|r| r.count())
            .unwrap_or(usize::MAX);
        assert_eq!(entries, 0, "no lock file");
    }
}
