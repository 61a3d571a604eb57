//! `rm`: the container's records, cgroup and anonymous volumes (taken over by a
//! replacement when asked).

use std::collections::HashSet;
use std::os::fd::OwnedFd;

use super::*;

pub(super) fn remove_volumes(volumes: &[spec::AnonymousVolume]) {
    for dir in anonymous_volume_dirs(volumes) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The directories of the anonymous volumes among `volumes`.
fn anonymous_volume_dirs(volumes: &[spec::AnonymousVolume]) -> Vec<PathBuf> {
    volumes
        .iter()
        .filter(|v| !v.named)
        .filter_map(|v| v.data.parent().map(Path::to_path_buf))
        .collect()
}

/// Takes container `id`'s anonymous volumes away from it, so removing it
/// keeps their data, and returns them for the container that replaces it.
pub fn take_anonymous_volumes(
    store: &Store,
    id: &str,
) -> Result<Vec<spec::AnonymousVolume>, RuntimeError> {
    let path = store.container_dir(id).join("berth.json");
    let mut cfg: ContainerConfig = store.read_json(&path)?;
    let (taken, kept): (Vec<_>, Vec<_>) = cfg.volumes.drain(..).partition(|v| !v.named);
    cfg.volumes = kept;
    if !taken.is_empty() {
        store.write_json(&path, &cfg)?;
    }
    Ok(taken)
}

/// Removes a container; a running one only with `force` (it is killed first).
pub fn remove(store: &Store, id: &str, force: bool) -> Result<(), RuntimeError> {
    let st = effective_state(store, id)?;
    if !st.can_delete() {
        if !force {
            return Err(RuntimeError::Running(id.to_string()));
        }
        mark_stop(store, id)?;
        let _ = kill(Pid::from_raw(st.pid), Signal::SIGKILL);
        wait_exit(store, id, Some(Duration::from_secs(10)))?;
    }
    if let Ok(cfg) = store.read_json::<ContainerConfig>(&store.container_dir(id).join("berth.json"))
    {
        remove_volumes(&cfg.volumes);
    }
    // Recorded first: the record's attributes come from the container's files.
    events::record(store, id, "destroy", &[]);
    store.remove(id)?;
    Ok(())
}

/// Removes `--rm` container `id` as its shim's last step without waiting
/// for the deletion: its directories are renamed out of the store at once
/// (no listing sees it after this returns) and a fork of this process
/// deletes them and its cgroup behind it (`delete_behind`), after closing
/// `mount_ns` (the exited container's mount namespace, held open so its
/// mounts are torn down there, not in this shim's wait). Deletes them here
/// when no fork can do it; when the record cannot be retired, only the
/// cgroup goes (the record stays, for `rm`).
pub(super) fn remove_behind(
    store: &Store,
    cfg: &ContainerConfig,
    id: &str,
    mount_ns: Option<OwnedFd>,
) -> Result<(), RuntimeError> {
    events::record_for(store, cfg, "destroy", &[]);
    let retired = match store.retire(id) {
        Ok(r) => r,
        Err(e) => {
            remove_cgroup_of(id);
            return Err(e.into());
        }
    };
    let mut dirs = retired;
    dirs.extend(anonymous_volume_dirs(&cfg.volumes));
    let log = store.run.join("containers/sweep.log");
    if let Err((e, mount_ns)) = delete_behind(&dirs, mount_ns, &log) {
        tracing::warn!("deleting {id} here: it cannot be deleted behind: {e}");
        drop(mount_ns);
        remove_cgroup_of(id);
        for dir in &dirs {
            store::delete_removed(dir)?;
        }
    }
    Ok(())
}

/// Deletes `dirs` (retired directories first, as `retire` returned them)
/// in a fork of this process, detached: its own session, stdin and stdout
/// /dev/null, stderr appended to `log`, no other descriptor of this
/// process. The fork closes `mount_ns` once this process has closed its
/// copy, so the namespace's teardown is the fork's. Not waited for: it
/// outlives this process. A fork costs the caller less than starting a
/// program (no exec to wait out, no start-up of a C library), and the
/// fork needs no program of its own. Only for a single-threaded process
/// (a shim); otherwise, or when the fork fails, `mount_ns` is handed back.
fn delete_behind(
    dirs: &[PathBuf],
    mount_ns: Option<OwnedFd>,
    log: &Path,
) -> Result<(), (String, Option<OwnedFd>)> {
    if !super::start::single_threaded() {
        return Err(("this process runs threads".into(), mount_ns));
    }
    let (closed_r, closed_w) = match super::process::pipe() {
        Ok(p) => p,
        Err(e) => return Err((e.to_string(), mount_ns)),
    };
    // SAFETY: this process is single-threaded (checked above), so the fork
    // finds no lock held by another thread; the child ends with _exit and
    // runs no destructor or exit handler of this process.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => {
            // The namespace first: the fork waits for `closed_w` to close.
            drop(mount_ns);
            drop(closed_w);
            Ok(())
        }
        Ok(nix::unistd::ForkResult::Child) => {
            drop(closed_w);
            let code = deleter(dirs, mount_ns, closed_r, log);
            // SAFETY: ends the fork without running this process's exit
            // handlers (its stdout buffer is the caller's to flush).
            unsafe { libc::_exit(code) }
        }
        Err(e) => Err((format!("fork: {e}"), mount_ns)),
    }
}

/// The fork's work: detach, wait for the parent's copy of the namespace to
/// close, close it, delete. The exit code: 0, or 1 when something stayed.
fn deleter(dirs: &[PathBuf], mount_ns: Option<OwnedFd>, closed: OwnedFd, log: &Path) -> i32 {
    let _ = nix::unistd::setsid();
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = nix::unistd::dup2(null.as_raw_fd(), 0);
        let _ = nix::unistd::dup2(null.as_raw_fd(), 1);
        let _ = nix::unistd::dup2(null.as_raw_fd(), 2);
    }
    if let Ok(f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let _ = nix::unistd::dup2(f.as_raw_fd(), 2);
    }
    let keep = [
        closed.as_raw_fd(),
        mount_ns.as_ref().map_or(-1, |f| f.as_raw_fd()),
    ];
    close_all_but(&keep);
    // EOF once the parent closed its end, which it does after its copy of
    // the namespace.
    let mut byte = [0u8; 1];
    let mut closed = std::fs::File::from(closed);
    while matches!(std::io::Read::read(&mut closed, &mut byte), Ok(n) if n > 0) {}
    drop(mount_ns);
    let mut code = 0;
    let mut gone = HashSet::new();
    for dir in dirs {
        if let Err(e) = delete_retired(dir, &mut gone) {
            tracing::error!("{e}");
            code = 1;
        }
    }
    code
}

/// Closes every descriptor of this process above 2 but `keep`.
fn close_all_but(keep: &[i32]) {
    let open: Vec<i32> = match std::fs::read_dir("/proc/self/fd") {
        Ok(entries) => entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect(),
        Err(_) => return,
    };
    for fd in open {
        if fd > 2 && !keep.contains(&fd) {
            // SAFETY: closes a descriptor of this process that nothing in
            // this (forked, single-threaded) process uses any more; the
            // directory listing's own is gone already or fails harmlessly.
            unsafe { libc::close(fd) };
        }
    }
}

/// Removes the cgroup a gone container `id` left (logged when it cannot).
fn remove_cgroup_of(id: &str) {
    if let Err(e) = cgroups::remove_once_empty(&*cgroups::of_removed(id)) {
        tracing::error!("removing the cgroup of {id}: {e}");
    }
}

/// Deletes one directory `Store::retire` renamed, the cgroup of the
/// container it held first (once a container's directories are gone
/// nothing names its cgroup any more) unless `gone` has its id already:
/// each container has two such directories.
fn delete_retired(dir: &Path, gone: &mut HashSet<String>) -> Result<(), RuntimeError> {
    let id = dir
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix(store::REMOVED_PREFIX));
    if let Some(id) = id {
        if gone.insert(id.to_string()) {
            remove_cgroup_of(id);
        }
    }
    Ok(store::delete_removed(dir)?)
}

/// Deletes what `--rm` containers left when their deletion behind was cut
/// short (the deleter killed, a crash): each directory retired at least
/// `age` ago, and its container's cgroup. The number of directories.
pub fn sweep_removed(store: &Store, age: Duration) -> Result<usize, RuntimeError> {
    let dirs = store.removed_before(age)?;
    let mut gone = HashSet::new();
    for dir in &dirs {
        delete_retired(dir, &mut gone)?;
    }
    Ok(dirs.len())
}
