//! On-disk state helpers: atomic file writes (temp file in the same
//! directory, fsync, rename), so a crash never leaves a half-written file,
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
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| std::io::Error::from(e))
}

/// Writes `bytes` to `path` atomically and durably: readers see the old file
/// or the new one, never a mix, and the new one survives a crash.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_replace(path, bytes, true)
}

/// Atomic but not flushed to disk: for runtime state under the run directory
/// (a tmpfs that does not survive a reboot anyway) and generated files.
pub fn write_atomic_volatile(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_replace(path, bytes, false)
}

fn write_replace(path: &Path, bytes: &[u8], durable: bool) -> std::io::Result<()> {
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
        if durable {
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        if durable {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
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
        write_atomic(&p, b"first").unwrap_or_else(|e| panic!("{e}"));
        write_atomic(&p, b"second").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(std::fs::read_to_string(&p).unwrap_or_default(), "second");
        let leftovers = std::fs::read_dir(&dir)
            .map(|r| r.filter_map(|e| e.ok()).count())
            .unwrap_or(0);
        assert_eq!(leftovers, 1);
        assert!(write_atomic(&dir.join("missing/x"), b"x").is_err());
    }
}
