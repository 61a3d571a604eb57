//! `rm`: the container's records, cgroup and anonymous volumes (taken over by a
//! replacement when asked).

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

/// argv[1] that selects the deleter of removed containers' directories.
pub const SWEEP_ARG: &str = "__berth_sweep";

/// Removes `--rm` container `id` as its shim's last step without waiting
/// for the deletion: its directories are renamed out of the store at once
/// (no listing sees it after this returns) and a detached helper deletes
/// them and its cgroup, after closing `mount_ns` (the exited container's
/// mount namespace, held open so its mounts are torn down there, not in
/// this shim's wait). Deletes them here when the helper cannot start; when
/// the record cannot be retired, only the cgroup goes (the record stays,
/// for `rm`).
pub(super) fn remove_behind(
    store: &Store,
    cfg: &ContainerConfig,
    id: &str,
    mount_ns: Option<std::os::fd::OwnedFd>,
) -> Result<(), RuntimeError> {
    events::record_for(store, cfg, "destroy", &[]);
    let retired = match store.retire(id) {
        Ok(r) => r,
        Err(e) => {
            remove_cgroup_of(id);
            return Err(e.into());
        }
    };
    let anonymous = anonymous_volume_dirs(&cfg.volumes);
    let spawned = crate::sys::helper::executable().and_then(|exe| {
        let mut cmd = Command::new(exe);
        cmd.arg(SWEEP_ARG);
        match &mount_ns {
            Some(fd) => {
                // Inherited by the helper alone: this process starts no other.
                nix::fcntl::fcntl(
                    fd.as_raw_fd(),
                    nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
                )?;
                cmd.arg(fd.as_raw_fd().to_string());
            }
            None => {
                cmd.arg("-");
            }
        }
        cmd.args(&retired).args(&anonymous);
        crate::sys::helper::spawn_behind(&mut cmd, &store.run.join("containers/sweep.log"))
    });
    drop(mount_ns);
    if let Err(e) = spawned {
        tracing::warn!("deleting {id} here: no helper to delete it behind: {e}");
        remove_cgroup_of(id);
        for dir in retired.iter().chain(&anonymous) {
            store::delete_removed(dir)?;
        }
    }
    Ok(())
}

/// Removes the cgroup a gone container `id` left (logged when it cannot).
fn remove_cgroup_of(id: &str) {
    if let Err(e) = cgroups::remove_once_empty(&*cgroups::of_removed(id)) {
        tracing::error!("removing the cgroup of {id}: {e}");
    }
}

/// Deletes one directory `Store::retire` renamed, the cgroup of the
/// container it held first: once a container's directories are gone
/// nothing names its cgroup any more.
fn delete_retired(dir: &Path) -> Result<(), RuntimeError> {
    let id = dir
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix(store::REMOVED_PREFIX));
    if let Some(id) = id {
        remove_cgroup_of(id);
    }
    Ok(store::delete_removed(dir)?)
}

/// Deletes what `--rm` containers left when their deletion behind was cut
/// short (the deleter killed, a crash): each directory retired at least
/// `age` ago, and its container's cgroup. The number of directories.
pub fn sweep_removed(store: &Store, age: Duration) -> Result<usize, RuntimeError> {
    let dirs = store.removed_before(age)?;
    for dir in &dirs {
        delete_retired(dir)?;
    }
    Ok(dirs.len())
}

/// The deleter's entry: `[MOUNT-NS-FD|-, DIR...]`. Closes the inherited
/// mount namespace first (its mounts go now), then deletes each directory.
pub fn sweep_main(args: &[String]) -> i32 {
    drop(crate::sys::helper::enter());
    let Some((fd, dirs)) = args.split_first() else {
        return 2;
    };
    if let Ok(raw) = fd.parse::<std::os::fd::RawFd>() {
        // Only a descriptor the spawner left open for this process is taken.
        if nix::fcntl::fcntl(raw, nix::fcntl::FcntlArg::F_GETFD).is_ok() {
            // SAFETY: `raw` is open (checked above) and was inherited from
            // the shim for this process alone; nothing else here owns it.
            drop(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) });
        }
    }
    let mut code = 0;
    for dir in dirs {
        if let Err(e) = delete_retired(Path::new(dir)) {
            tracing::error!("{e}");
            code = 1;
        }
    }
    code
}
