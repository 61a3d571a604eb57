//! `rm`: the container's records and anonymous volumes (taken over by a
//! replacement when asked).

use super::*;

pub(super) fn remove_volumes(volumes: &[spec::AnonymousVolume]) {
    for v in volumes.iter().filter(|v| !v.named) {
        if let Some(dir) = v.data.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
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
